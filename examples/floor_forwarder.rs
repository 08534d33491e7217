//! The floor: the least CPU a UDP forwarder in front of SIP backends can
//! spend per datagram on this kernel. One receive and one send per datagram
//! (batched with recvmmsg/sendmmsg, 32 at a time), no SIP parsing at all.
//!
//! It is a measuring stick for `loadtest/compare.py`, not a product: sipfront
//! does strictly more work per message (parse, Via, routing), so its CPU per
//! call divided by this one's says how much of its cost is SIP and how much is
//! the syscalls every forwarder pays.
//!
//! Shape (IPv4 only, std + libc + sipfront-io's batches and sockets):
//! - `--workers N` threads, each with its own SO_REUSEPORT listen socket
//!   (the kernel spreads clients over them by 4-tuple) and its own epoll.
//! - For each distinct client address a worker sees, it opens a dedicated
//!   upstream UDP socket, connect()ed to a backend picked by hashing the
//!   client address (a NAT-style binding). Datagrams from the client go out
//!   of that socket; whatever arrives on it (the backend answers to the
//!   source address of the request, as SIPp's uas does) goes back to the
//!   client from the worker's listen socket.
//! - Bindings idle for 60 s are closed; at most 16384 per worker (datagrams
//!   from further new clients are dropped and counted).
//!
//! Usage:
//!   cargo run --release --example floor_forwarder -- \
//!     --listen 127.0.0.1:5060 --backend 127.0.0.1:5070 --backend 127.0.0.1:5080 --workers 2

use sipfront_io::udp::bind_udp;
use sipfront_io::{Flushed, RecvBatch, SendBatch};
use std::collections::HashMap;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::raw::c_int;
use std::process::exit;
use std::ptr;
use std::time::{Duration, Instant};

const BATCH: usize = 32;
const BUF: usize = 16 * 1024;
const MAX_BINDINGS: usize = 16 * 1024;
const IDLE: Duration = Duration::from_secs(60);
const SWEEP_EVERY: Duration = Duration::from_secs(5);
const LISTEN_TOKEN: u64 = u64::MAX;
const SOCK_BUF: usize = 4 << 20;
const UPSTREAM_BUF: usize = 1 << 20;

struct Args {
    listen: SocketAddrV4,
    backends: Vec<SocketAddrV4>,
    workers: usize,
}

fn usage(msg: &str) -> ! {
    eprintln!("floor_forwarder: {msg}");
    eprintln!(
        "usage: floor_forwarder --listen IP:PORT --backend IP:PORT [--backend IP:PORT ...] [--workers N]"
    );
    exit(2)
}

fn parse_args() -> Args {
    let mut listen = None;
    let mut backends = Vec::new();
    let mut workers = 1usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut val = || {
            inline
                .clone()
                .or_else(|| it.next())
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--listen" => listen = Some(parse_addr(&val())),
            "--backend" => backends.push(parse_addr(&val())),
            "--workers" => {
                workers = val()
                    .parse()
                    .unwrap_or_else(|_| usage("--workers wants a number"));
            }
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let listen = listen.unwrap_or_else(|| usage("--listen is required"));
    if backends.is_empty() {
        usage("at least one --backend is required");
    }
    if workers == 0 || workers > 256 {
        usage("--workers must be 1..=256");
    }
    Args {
        listen,
        backends,
        workers,
    }
}

fn parse_addr(s: &str) -> SocketAddrV4 {
    // accept "sip:127.0.0.1:5070" and "udp:127.0.0.1:5060" too
    let s = s
        .strip_prefix("sip:")
        .or_else(|| s.strip_prefix("udp:"))
        .unwrap_or(s);
    s.parse()
        .unwrap_or_else(|_| usage(&format!("bad IPv4 address:port {s:?}")))
}

fn check(r: c_int, what: &str) -> io::Result<c_int> {
    if r < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(r)
    }
}

fn context(what: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The worker's SO_REUSEPORT listen socket. Sockets here are blocking for
/// sends (backpressure instead of drops on a full send buffer); receives
/// use MSG_DONTWAIT.
fn listen_socket(addr: SocketAddrV4) -> io::Result<UdpSocket> {
    let s = bind_udp(addr.into(), true, SOCK_BUF, SOCK_BUF).map_err(context("bind"))?;
    s.set_nonblocking(false)?;
    Ok(s)
}

/// A client's own upstream socket, connect()ed to its backend.
fn upstream_socket(backend: SocketAddrV4) -> io::Result<UdpSocket> {
    let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
    let s = bind_udp(any.into(), false, UPSTREAM_BUF, UPSTREAM_BUF)?;
    s.set_nonblocking(false)?;
    s.connect(backend)?;
    Ok(s)
}

fn key_of(sa: SocketAddrV4) -> u64 {
    ((u32::from(*sa.ip()) as u64) << 16) | sa.port() as u64
}

/// FNV-1a over the client's ip and port.
fn hash_key(k: u64) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in k.to_be_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

struct Binding {
    sock: UdpSocket,
    client: SocketAddr,
    key: u64,
    last_seen: Instant,
}

#[derive(Default)]
struct Counters {
    dropped_full: u64,
    dropped_trunc: u64,
    dropped_send: u64,
    dropped_socket: u64,
}

impl Counters {
    fn sent(&mut self, f: Flushed) {
        self.dropped_send += f.failed_total() as u64;
    }
}

struct Worker {
    id: usize,
    backends: Vec<SocketAddrV4>,
    listen: UdpSocket,
    ep: c_int,
    slots: Vec<Option<Binding>>,
    free: Vec<usize>,
    by_client: HashMap<u64, usize>,
    rx: RecvBatch,
    /// Client datagrams for one upstream socket (connected: no address).
    up: SendBatch,
    /// Backend datagrams for the clients, from the listen socket.
    down: SendBatch,
    order: [u8; BATCH],
    target: [RawFd; BATCH],
    c: Counters,
    now: Instant,
}

impl Worker {
    fn new(
        id: usize,
        listen_addr: SocketAddrV4,
        backends: Vec<SocketAddrV4>,
    ) -> io::Result<Worker> {
        let listen = listen_socket(listen_addr)?;
        // SAFETY: plain syscall; the fd lives as long as the worker.
        let ep = check(
            unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
            "epoll_create1",
        )?;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: LISTEN_TOKEN,
        };
        // SAFETY: ep and the listen fd are open; ev lives across the call.
        check(
            unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, listen.as_raw_fd(), &mut ev) },
            "epoll_ctl",
        )?;
        Ok(Worker {
            id,
            backends,
            listen,
            ep,
            slots: Vec::new(),
            free: Vec::new(),
            by_client: HashMap::new(),
            rx: RecvBatch::new(BATCH, BUF),
            // Buffers as large as the receive ones: forwarding trades
            // buffers between the batches instead of copying.
            up: SendBatch::with_buffer_capacity(BATCH, BUF),
            down: SendBatch::with_buffer_capacity(BATCH, BUF),
            order: [0; BATCH],
            target: [-1; BATCH],
            c: Counters::default(),
            now: Instant::now(),
        })
    }

    /// The binding for this client, created on first sight.
    fn binding_for(&mut self, sa: SocketAddrV4) -> Option<usize> {
        let key = key_of(sa);
        if let Some(&i) = self.by_client.get(&key) {
            if let Some(b) = self.slots[i].as_mut() {
                b.last_seen = self.now;
            }
            return Some(i);
        }
        if self.by_client.len() >= MAX_BINDINGS {
            self.c.dropped_full += 1;
            return None;
        }
        let backend = self.backends[(hash_key(key) % self.backends.len() as u64) as usize];
        let sock = match upstream_socket(backend) {
            Ok(s) => s,
            Err(_) => {
                self.c.dropped_socket += 1;
                return None;
            }
        };
        let idx = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: idx as u64,
        };
        // SAFETY: ep and the socket are open; ev lives across the call.
        if unsafe { libc::epoll_ctl(self.ep, libc::EPOLL_CTL_ADD, sock.as_raw_fd(), &mut ev) } < 0 {
            self.free.push(idx);
            self.c.dropped_socket += 1;
            return None;
        }
        self.slots[idx] = Some(Binding {
            sock,
            client: sa.into(),
            key,
            last_seen: self.now,
        });
        self.by_client.insert(key, idx);
        Some(idx)
    }

    /// Client → backend: drain the listen socket, send each datagram out of
    /// its client's upstream socket (one sendmmsg per upstream socket per batch).
    fn on_listen(&mut self) {
        loop {
            let n = self.rx.recv(self.listen.as_raw_fd()).unwrap_or(0);
            if n == 0 {
                return;
            }
            let mut m = 0;
            for i in 0..n {
                if self.rx.truncated(i) {
                    self.c.dropped_trunc += 1;
                    continue;
                }
                // The listen socket is IPv4: every source is.
                let Some(SocketAddr::V4(sa)) = self.rx.datagram(i).1 else {
                    continue;
                };
                if let Some(idx) = self.binding_for(sa) {
                    self.target[i] = self.slots[idx].as_ref().map_or(-1, |b| b.sock.as_raw_fd());
                    self.order[m] = i as u8;
                    m += 1;
                }
            }
            // group by upstream fd, keeping arrival order per client (insertion sort, m <= 32)
            for a in 1..m {
                let mut j = a;
                while j > 0
                    && self.target[self.order[j - 1] as usize] > self.target[self.order[j] as usize]
                {
                    self.order.swap(j - 1, j);
                    j -= 1;
                }
            }
            let mut s = 0;
            while s < m {
                let fd = self.target[self.order[s] as usize];
                let mut e = s;
                while e < m && self.target[self.order[e] as usize] == fd {
                    // The received buffer becomes the send slot: no copy.
                    self.rx.take_into(self.order[e] as usize, self.up.slot());
                    self.up.commit_connected();
                    e += 1;
                }
                let f = self.up.flush_wait(fd);
                self.c.sent(f);
                s = e;
            }
            if n < BATCH {
                return;
            }
        }
    }

    /// Backend → client: gather datagrams from every ready upstream socket
    /// into one batch and send them from the listen socket (one sendmmsg per 32).
    fn on_upstream(&mut self, ready: &[usize]) {
        for &idx in ready {
            let (fd, client) = match self.slots.get(idx).and_then(|s| s.as_ref()) {
                Some(b) => (b.sock.as_raw_fd(), b.client),
                None => continue,
            };
            loop {
                // An error (a pending ICMP error on the connected socket,
                // ECONNREFUSED) drops nothing but itself.
                let n = self.rx.recv(fd).unwrap_or(0);
                for i in 0..n {
                    if self.rx.truncated(i) {
                        self.c.dropped_trunc += 1;
                        continue;
                    }
                    self.rx.take_into(i, self.down.slot());
                    self.down.commit(client);
                    if self.down.is_full() {
                        self.flush_to_clients();
                    }
                }
                if n < BATCH {
                    break;
                }
            }
            if let Some(b) = self.slots[idx].as_mut() {
                b.last_seen = self.now;
            }
        }
        if !self.down.is_empty() {
            self.flush_to_clients();
        }
    }

    fn flush_to_clients(&mut self) {
        let f = self.down.flush_wait(self.listen.as_raw_fd());
        self.c.sent(f);
    }

    fn sweep(&mut self) {
        for idx in 0..self.slots.len() {
            let idle =
                matches!(&self.slots[idx], Some(b) if self.now.duration_since(b.last_seen) > IDLE);
            if idle {
                if let Some(b) = self.slots[idx].take() {
                    // SAFETY: ep and the socket are open (closed on drop below).
                    unsafe {
                        libc::epoll_ctl(
                            self.ep,
                            libc::EPOLL_CTL_DEL,
                            b.sock.as_raw_fd(),
                            ptr::null_mut(),
                        );
                    }
                    self.by_client.remove(&b.key);
                    self.free.push(idx);
                }
            }
        }
    }

    fn run(&mut self) -> ! {
        // SAFETY: epoll_event is plain data; all-zero is valid.
        let mut events: [libc::epoll_event; 64] = unsafe { mem::zeroed() };
        let mut ready: Vec<usize> = Vec::with_capacity(64);
        let mut last_sweep = Instant::now();
        let mut reported = 0u64;
        loop {
            // SAFETY: events is a live buffer of events.len() entries.
            let n = unsafe {
                libc::epoll_wait(self.ep, events.as_mut_ptr(), events.len() as c_int, 1000)
            };
            self.now = Instant::now();
            if n < 0 {
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                eprintln!(
                    "floor_forwarder[{}]: epoll_wait: {}",
                    self.id,
                    io::Error::last_os_error()
                );
                exit(1);
            }
            ready.clear();
            let mut listen_ready = false;
            for ev in &events[..n as usize] {
                let tok = ev.u64;
                if tok == LISTEN_TOKEN {
                    listen_ready = true;
                } else {
                    ready.push(tok as usize);
                }
            }
            if listen_ready {
                self.on_listen();
            }
            if !ready.is_empty() {
                let r = mem::take(&mut ready);
                self.on_upstream(&r);
                ready = r;
            }
            if self.now.duration_since(last_sweep) >= SWEEP_EVERY {
                last_sweep = self.now;
                self.sweep();
                let c = &self.c;
                let drops = c.dropped_full + c.dropped_trunc + c.dropped_send + c.dropped_socket;
                if drops != reported {
                    reported = drops;
                    eprintln!(
                        "floor_forwarder[{}]: dropped full={} trunc={} send={} socket={} bindings={}",
                        self.id,
                        c.dropped_full,
                        c.dropped_trunc,
                        c.dropped_send,
                        c.dropped_socket,
                        self.by_client.len()
                    );
                }
            }
        }
    }
}

fn main() {
    let args = parse_args();
    // Bind every worker's socket before any starts, so a bad address fails fast.
    let mut workers = Vec::new();
    for id in 0..args.workers {
        match Worker::new(id, args.listen, args.backends.clone()) {
            Ok(w) => workers.push(w),
            Err(e) => {
                eprintln!("floor_forwarder: worker {id}: {e}");
                exit(1);
            }
        }
    }
    eprintln!(
        "floor_forwarder: listening on udp:{} with {} worker(s), backends {}",
        args.listen,
        args.workers,
        args.backends
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let handles: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            std::thread::Builder::new()
                .name(format!("floor-{}", w.id))
                .spawn(move || w.run())
                .expect("spawn worker")
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}
