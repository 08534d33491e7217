//! Thread-per-core runtime (DESIGN.md principle 1, "I/O drivers"): one
//! worker per core, pinned, owning its SO_REUSEPORT listen sockets, its
//! egress socket (a distinct port per worker, named in its Via, so replies
//! come back to it), its engine and counters. One [`pump`] runs the engine;
//! two drivers do the I/O around it: io_uring through glommio, and a
//! portable epoll + recvmmsg/sendmmsg driver for hosts and containers where
//! io_uring is blocked. Sockets, batches and CPU pinning come from the
//! shared `sipfront_io` crate.

pub mod mesh;
pub mod portable;
pub mod pump;
pub mod uring;

pub use pump::STATS_PUBLISH_PERIOD;
/// UDP sockets for the workers (re-exported from the shared I/O crate).
pub use sipfront_io::udp as sockets;

use crate::dispatch::HealthTable;
use crate::proxy::{identity::Identity, stats::Stats, Engine, ProxyConfig, Routing, Socket};
use arc_swap::ArcSwap;
use pump::Pump;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Which I/O driver runs the workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    Uring,
    Portable,
}

impl Driver {
    pub fn as_str(&self) -> &'static str {
        match self {
            Driver::Uring => "uring",
            Driver::Portable => "portable",
        }
    }
}

/// The driver asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverChoice {
    Auto,
    Uring,
    Portable,
}

/// Probes io_uring with an `io_uring_setup` syscall: blocked by seccomp
/// (EPERM), missing (ENOSYS) or disabled by sysctl, it fails.
pub fn probe_uring() -> io::Result<()> {
    // struct io_uring_params is 120 bytes; zero means defaults.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup(entries, params) writes into params only.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is the ring we just made.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

/// Resolves the driver choice. `auto` takes the portable driver: on this
/// project's benchmarks it costs less CPU per call than glommio's UDP path
/// (no batching, a copy per send; docs/performance.md), and it runs
/// everywhere. `uring` fails at startup when io_uring is unavailable.
pub fn choose_driver(choice: DriverChoice) -> io::Result<(Driver, String)> {
    match choice {
        DriverChoice::Portable => Ok((Driver::Portable, "forced by configuration".into())),
        DriverChoice::Uring => match probe_uring() {
            Ok(()) => Ok((Driver::Uring, "forced by configuration".into())),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("io_uring unavailable: {e}"),
            )),
        },
        DriverChoice::Auto => Ok((
            Driver::Portable,
            match probe_uring() {
                Ok(()) => "auto: io_uring available, portable driver measured faster".into(),
                Err(e) => format!("auto: io_uring unavailable ({e})"),
            },
        )),
    }
}

/// Runtime settings.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub workers: usize,
    pub driver: DriverChoice,
    pub listens: Vec<SocketAddr>,
    /// Egress port of worker 0; worker w uses `egress_port_base + w`. 0 means
    /// the first listen port + 1.
    pub egress_port_base: u16,
    pub recv_buffer: usize,
    pub send_buffer: usize,
    /// `host[:port]` written in Via and Record-Route instead of the socket
    /// addresses (behind NAT, in a container).
    pub advertise: Option<(String, Option<u16>)>,
}

/// What a worker needs; handed to its thread.
pub struct WorkerSetup {
    pub id: usize,
    pub cpu: usize,
    pub sockets: Vec<(UdpSocket, Socket)>,
    pub pump: Pump,
    pub shutdown: Arc<AtomicBool>,
}

/// One worker's end of the cross-core mesh, in its driver's kind.
enum WorkerMesh {
    Portable(mesh::MeshEnd),
    Uring(uring::End),
}

/// The running workers.
pub struct Runtime {
    pub driver: Driver,
    pub identity: Arc<Identity>,
    pub routing: Arc<ArcSwap<Routing>>,
    pub health: Arc<HealthTable>,
    /// Set on SIGTERM: every worker's proxy answers new dialogs 503
    /// (`Proxy::set_drain_flag`).
    pub drain: Arc<AtomicBool>,
    shutdown: Arc<AtomicBool>,
    /// Wake the portable workers' loops (they sleep until a deadline).
    wakers: Vec<mesh::Waker>,
    handles: Vec<JoinHandle<io::Result<Stats>>>,
    stats: Vec<Arc<Mutex<Stats>>>,
    alive: Arc<AtomicUsize>,
}

/// A cloneable, thread-safe view of the running workers for the admin
/// thread: their published counters and whether they all still run.
#[derive(Clone)]
pub struct Observer {
    stats: Vec<Arc<Mutex<Stats>>>,
    alive: Arc<AtomicUsize>,
}

impl Observer {
    /// The workers' counters as last published (at most
    /// [`STATS_PUBLISH_PERIOD`] old).
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for s in &self.stats {
            if let Ok(s) = s.lock() {
                total.merge(&s);
            }
        }
        total
    }

    /// True while every worker thread runs.
    pub fn healthy(&self) -> bool {
        self.alive.load(Ordering::Relaxed) == self.stats.len()
    }

    pub fn workers(&self) -> usize {
        self.stats.len()
    }
}

/// Counts a worker thread out when it ends, however it ends.
struct AliveGuard(Arc<AtomicUsize>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Binds every socket and starts the workers.
pub fn start(
    cfg: &RuntimeConfig,
    proxy_cfg: ProxyConfig,
    routing: Routing,
    health: Arc<HealthTable>,
) -> io::Result<Runtime> {
    let (driver, why) = choose_driver(cfg.driver)?;
    let n = cfg.workers.max(1);
    if n > 255 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "at most 255 workers",
        ));
    }
    let cpus = sipfront_io::cpu::allowed_cpus();
    // Listen sockets: worker 0 binds first (resolving port 0), the others
    // join the same address with SO_REUSEPORT.
    let mut listen_socks: Vec<Vec<UdpSocket>> = (0..n).map(|_| Vec::new()).collect();
    let mut listens = Vec::new();
    for l in &cfg.listens {
        // SO_REUSEPORT would let a second instance share the port and
        // split the traffic (issue 14): refuse a port in use.
        sockets::ensure_unused(*l)?;
        let first = sockets::bind_udp(*l, true, cfg.recv_buffer, cfg.send_buffer)?;
        let addr = first.local_addr()?;
        let (r, s) = sockets::buffer_sizes(&first);
        tracing::info!(listen = %addr, recv_buffer = r, send_buffer = s, "listening");
        listen_socks[0].push(first);
        for socks in listen_socks.iter_mut().skip(1) {
            socks.push(sockets::bind_udp(
                addr,
                true,
                cfg.recv_buffer,
                cfg.send_buffer,
            )?);
        }
        listens.push(addr);
    }
    let first = *listens
        .first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no listen address"))?;
    let base = if cfg.egress_port_base == 0 {
        first.port().checked_add(1)
    } else {
        Some(cfg.egress_port_base)
    };
    let mut egress_socks = Vec::with_capacity(n);
    let mut egress = Vec::with_capacity(n);
    for w in 0..n {
        let port = base.and_then(|b| b.checked_add(w as u16)).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "egress port out of range")
        })?;
        sockets::ensure_unused(SocketAddr::new(first.ip(), port))?;
        let s = sockets::bind_udp(
            SocketAddr::new(first.ip(), port),
            false,
            cfg.recv_buffer,
            cfg.send_buffer,
        )?;
        egress.push(s.local_addr()?);
        egress_socks.push(s);
    }
    // For a wildcard listen address, name the address that reaches the
    // first backend.
    let mut local_ips: Vec<IpAddr> = Vec::new();
    if first.ip().is_unspecified() {
        if let Some(d) = routing
            .sets
            .iter()
            .flat_map(|s| s.destinations().iter())
            .next()
        {
            if let Some(ip) = sockets::local_ip_toward(d.addr) {
                local_ips.push(ip);
            }
        }
        local_ips.push(if first.is_ipv6() {
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        } else {
            IpAddr::from([127, 0, 0, 1])
        });
    }
    let advertise = cfg.advertise.as_ref().map(|(h, p)| (h.as_str(), *p));
    let identity = Arc::new(Identity::new(&listens, &egress, advertise, &local_ips));
    tracing::info!(driver = driver.as_str(), reason = %why, workers = n, egress = ?egress, "starting workers");

    let routing = Arc::new(ArcSwap::from_pointee(routing));
    let shutdown = Arc::new(AtomicBool::new(false));
    let drain = Arc::new(AtomicBool::new(false));
    let alive = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(n);
    let mut stats = Vec::with_capacity(n);
    // Each driver gets its own kind of mesh; only that one is built.
    let mut meshes: Vec<WorkerMesh> = match driver {
        Driver::Portable => mesh::build(n)?
            .into_iter()
            .map(WorkerMesh::Portable)
            .collect(),
        Driver::Uring => uring::Mesh::build(n)
            .into_ends()
            .into_iter()
            .map(WorkerMesh::Uring)
            .collect(),
    };
    let wakers = meshes
        .iter()
        .filter_map(|m| match m {
            WorkerMesh::Portable(end) => Some(end.waker()),
            WorkerMesh::Uring(_) => None,
        })
        .collect();
    // Popped from the back: worker 0 first.
    meshes.reverse();
    for (w, (lsocks, esock)) in listen_socks.into_iter().zip(egress_socks).enumerate() {
        let worker_mesh = meshes
            .pop()
            .ok_or_else(|| io::Error::other("mesh has fewer ends than workers"))?;
        let mut socks: Vec<(UdpSocket, Socket)> = lsocks
            .into_iter()
            .enumerate()
            .map(|(i, s)| (s, Socket::Listen(i as u8)))
            .collect();
        socks.push((esock, Socket::Egress));
        let out = Arc::new(Mutex::new(Stats::default()));
        stats.push(Arc::clone(&out));
        let mut engine = Engine::new(
            proxy_cfg.clone(),
            Arc::clone(&identity),
            w as u8,
            Arc::clone(&routing),
            Arc::clone(&health) as Arc<dyn crate::dispatch::Health + Send + Sync>,
        );
        engine.set_drain_flag(Arc::clone(&drain));
        let setup = WorkerSetup {
            id: w,
            cpu: cpus.get(w % cpus.len().max(1)).copied().unwrap_or(w),
            sockets: socks,
            pump: Pump::publishing(engine, out),
            shutdown: Arc::clone(&shutdown),
        };
        alive.fetch_add(1, Ordering::Relaxed);
        let guard = AliveGuard(Arc::clone(&alive));
        let h = std::thread::Builder::new()
            .name(format!("sipfront-w{w}"))
            .spawn(move || {
                let _alive = guard;
                block_signals();
                match worker_mesh {
                    WorkerMesh::Uring(end) => uring::run_worker(setup, end),
                    WorkerMesh::Portable(end) => portable::run_worker(setup, end),
                }
            })?;
        handles.push(h);
    }
    Ok(Runtime {
        driver,
        identity,
        routing,
        health,
        drain,
        shutdown,
        wakers,
        handles,
        stats,
        alive,
    })
}

/// Workers leave SIGINT/SIGTERM/SIGHUP to the main thread.
pub fn block_signals() {
    // SAFETY: manipulating this thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

impl Runtime {
    /// The workers' counters as last published (at most
    /// [`STATS_PUBLISH_PERIOD`] old).
    pub fn stats(&self) -> Stats {
        self.observer().stats()
    }

    /// A view of the workers for another thread (the admin API).
    pub fn observer(&self) -> Observer {
        Observer {
            stats: self.stats.clone(),
            alive: Arc::clone(&self.alive),
        }
    }

    /// Starts draining: new dialogs get 503 with Retry-After, everything
    /// in flight or in a dialog goes on.
    pub fn start_drain(&self) {
        self.drain.store(true, Ordering::Relaxed);
    }

    /// Tells the workers to stop and waits for them; returns the final counters.
    pub fn stop(self) -> Stats {
        self.shutdown.store(true, Ordering::Relaxed);
        for w in &self.wakers {
            w.wake();
        }
        let mut total = Stats::default();
        for h in self.handles {
            match h.join() {
                Ok(Ok(s)) => total.merge(&s),
                Ok(Err(e)) => tracing::error!(error = %e, "worker failed"),
                Err(_) => tracing::error!("worker panicked"),
            }
        }
        total
    }

    /// True while every worker thread runs.
    pub fn healthy(&self) -> bool {
        self.handles.iter().all(|h| !h.is_finished())
    }
}
