//! The process wiring: binds the control listeners (ng over UDP, classic
//! over UDP and Unix stream sockets), starts the media workers, and runs
//! the control loop on the calling thread: poll the listeners, feed the
//! [`Control`] core, send replies, hand [`Action`]s to the workers, expire
//! sessions once a second, and shut down cleanly when told to.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::Duration;

use crate::control::{Channel, Control};
use crate::relay::{self, LegSockets, WorkerHandle, WorkerMsg};
use crate::session::{Action, Config as TableConfig, LatchMode, PortBinder, SessionTable};
use crate::stats::Totals;

/// A classic control listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlAddr {
    Udp(SocketAddr),
    Unix(PathBuf),
}

impl std::str::FromStr for ControlAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err("unix: needs a path".into());
            }
            return Ok(ControlAddr::Unix(PathBuf::from(p)));
        }
        parse_udp(s).map(ControlAddr::Udp)
    }
}

/// `udp:IP:PORT` (IPv6 as `udp:[::1]:PORT`).
pub fn parse_udp(s: &str) -> Result<SocketAddr, String> {
    let rest = s
        .strip_prefix("udp:")
        .ok_or_else(|| format!("{s:?}: expected udp:IP:PORT"))?;
    rest.parse()
        .map_err(|_| format!("{s:?}: expected udp:IP:PORT"))
}

/// `LOW-HIGH`.
pub fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected LOW-HIGH"))?;
    let a: u16 = a
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: bad low port"))?;
    let b: u16 = b
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: bad high port"))?;
    if a == 0 || b <= a {
        return Err(format!("{s:?}: need 0 < LOW < HIGH"));
    }
    Ok((a, b))
}

/// Everything the server needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub ng: Vec<SocketAddr>,
    pub control: Vec<ControlAddr>,
    pub media_ip: IpAddr,
    pub advertise_ip: IpAddr,
    pub ports: (u16, u16),
    pub workers: usize,
    pub max_sessions: usize,
    pub session_timeout: Duration,
    pub offer_timeout: Duration,
    pub latch: LatchMode,
    /// Pin worker k to CPU k.
    pub pin: bool,
}

/// Final counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub sessions_created: u64,
    pub sessions_closed_at_exit: usize,
    pub offer_timeouts: u64,
    pub media_timeouts: u64,
    pub relay: Totals,
}

/// Binds media sockets for the session table and keeps them until the
/// stream is opened on its worker.
struct Binder {
    ip: IpAddr,
    pending: HashMap<u16, LegSockets>,
}

impl PortBinder for Binder {
    fn bind(&mut self, _worker: usize, port: u16) -> bool {
        match relay::bind_leg(self.ip, port) {
            Ok(s) => {
                self.pending.insert(port, s);
                true
            }
            Err(_) => false,
        }
    }

    fn release(&mut self, _worker: usize, port: u16) {
        self.pending.remove(&port);
    }
}

enum Listener {
    Ng(UdpSocket),
    ClassicUdp(UdpSocket),
    ClassicUnix(UnixListener, PathBuf),
}

impl Listener {
    /// `ng udp:IP:PORT`, `control udp:IP:PORT`, `control unix:PATH`, with
    /// the port the kernel bound.
    fn describe(&self) -> String {
        let udp = |s: &UdpSocket| {
            s.local_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string())
        };
        match self {
            Listener::Ng(s) => format!("ng udp:{}", udp(s)),
            Listener::ClassicUdp(s) => format!("control udp:{}", udp(s)),
            Listener::ClassicUnix(_, p) => format!("control unix:{}", p.display()),
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Listener::Ng(s) | Listener::ClassicUdp(s) => s.as_raw_fd(),
            Listener::ClassicUnix(l, _) => l.as_raw_fd(),
        }
    }
}

/// Binds every listener; an error names the one that failed.
fn bind_listeners(cfg: &ServerConfig) -> Result<Vec<Listener>, String> {
    let mut out = Vec::new();
    let udp = |a: SocketAddr, what: &str| -> Result<UdpSocket, String> {
        let s =
            UdpSocket::bind(a).map_err(|e| format!("cannot bind {what} listener udp:{a}: {e}"))?;
        s.set_nonblocking(true)
            .map_err(|e| format!("{what} listener udp:{a}: {e}"))?;
        Ok(s)
    };
    for a in &cfg.ng {
        out.push(Listener::Ng(udp(*a, "ng")?));
    }
    for c in &cfg.control {
        match c {
            ControlAddr::Udp(a) => out.push(Listener::ClassicUdp(udp(*a, "control")?)),
            ControlAddr::Unix(p) => {
                if let Ok(m) = std::fs::symlink_metadata(p) {
                    if m.file_type().is_socket() {
                        let _ = std::fs::remove_file(p);
                    }
                }
                let l = UnixListener::bind(p).map_err(|e| {
                    format!("cannot bind control listener unix:{}: {e}", p.display())
                })?;
                l.set_nonblocking(true)
                    .map_err(|e| format!("control listener unix:{}: {e}", p.display()))?;
                out.push(Listener::ClassicUnix(l, p.clone()));
            }
        }
    }
    Ok(out)
}

/// Runs until `stop_fd` (an eventfd or pipe) becomes readable.
pub fn run(cfg: &ServerConfig, stop_fd: RawFd) -> Result<Summary, String> {
    let listeners = bind_listeners(cfg)?;
    // Worker k pins to the k-th CPU this process may use (taskset,
    // container cpusets), not to CPU k of the machine.
    let cpus = sipfront_io::cpu::allowed_cpus();
    let workers = cfg.workers.max(1);
    let mut handles: Vec<WorkerHandle> = Vec::with_capacity(workers);
    for k in 0..workers {
        let cpu = if cfg.pin && !cpus.is_empty() {
            cpus.get(k % cpus.len()).copied()
        } else {
            None
        };
        handles.push(relay::spawn(k, cpu).map_err(|e| format!("cannot start worker {k}: {e}"))?);
    }
    let table = SessionTable::new(TableConfig {
        workers,
        port_low: cfg.ports.0,
        port_high: cfg.ports.1,
        max_sessions: cfg.max_sessions,
        session_timeout_ms: cfg.session_timeout.as_millis() as u64,
        offer_timeout_ms: cfg.offer_timeout.as_millis() as u64,
        latch: cfg.latch,
        advertise: cfg.advertise_ip,
    });
    let unix_offset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        .saturating_sub(relay::now_ms());
    let mut control = Control::new(
        table,
        handles.iter().map(|h| h.counters.clone()).collect(),
        unix_offset,
    );
    let mut binder = Binder {
        ip: cfg.media_ip,
        pending: HashMap::new(),
    };
    // The readiness line is part of the CLI contract: on stderr whatever the
    // log level, naming the addresses really bound (port 0 resolved).
    let bound: Vec<String> = listeners.iter().map(Listener::describe).collect();
    eprintln!(
        "sipfront-rtpproxy ready: {} media {} advertised {} ports {}-{} workers {}",
        bound.join(" "),
        cfg.media_ip,
        cfg.advertise_ip,
        cfg.ports.0,
        cfg.ports.1,
        workers
    );
    let mut pfds: Vec<libc::pollfd> = std::iter::once(stop_fd)
        .chain(listeners.iter().map(Listener::fd))
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut actions = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut last_tick = relay::now_ms();
    loop {
        // SAFETY: pfds is a valid array of pollfd.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 250) };
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(format!("poll failed: {}", io::Error::last_os_error()));
        }
        if pfds.first().is_some_and(|p| p.revents != 0) {
            break;
        }
        for (i, l) in listeners.iter().enumerate() {
            if pfds.get(i + 1).is_none_or(|p| p.revents == 0) {
                continue;
            }
            serve(
                l,
                &mut control,
                &mut binder,
                &mut actions,
                &mut buf,
                &handles,
            );
        }
        let now = relay::now_ms();
        if now.saturating_sub(last_tick) >= 1000 {
            last_tick = now;
            let expired = control.tick(now, &mut actions);
            if expired > 0 {
                tracing::debug!(expired, "sessions timed out");
            }
            dispatch(&mut actions, &mut binder, &handles);
        }
    }
    tracing::info!("shutting down");
    control.table.shut_down();
    let closed = control.table.delete_all(&mut actions);
    dispatch(&mut actions, &mut binder, &handles);
    for h in &mut handles {
        h.stop();
    }
    for l in &listeners {
        if let Listener::ClassicUnix(_, p) = l {
            let _ = std::fs::remove_file(p);
        }
    }
    let c = control.table.counters;
    Ok(Summary {
        sessions_created: c.sessions_created,
        sessions_closed_at_exit: closed,
        offer_timeouts: c.offer_timeouts,
        media_timeouts: c.media_timeouts,
        relay: control.totals(),
    })
}

/// Serves what is waiting on one listener (bounded per wake-up).
fn serve(
    l: &Listener,
    control: &mut Control,
    binder: &mut Binder,
    actions: &mut Vec<Action>,
    buf: &mut [u8],
    workers: &[WorkerHandle],
) {
    match l {
        Listener::Ng(s) | Listener::ClassicUdp(s) => {
            for _ in 0..64 {
                let (n, src) = match s.recv_from(buf) {
                    Ok(x) => x,
                    Err(_) => return,
                };
                let data = buf.get(..n).unwrap_or(&[]);
                let now = relay::now_ms();
                let reply = match l {
                    Listener::Ng(_) => control.ng(data, src, now, binder, actions),
                    _ => control.classic(data, Channel::Datagram(src), now, binder, actions),
                };
                // The workers get their orders before the reply leaves, so
                // media sent after the reply meets the new state.
                dispatch(actions, binder, workers);
                if let Some(r) = reply {
                    if let Err(e) = s.send_to(&r, src) {
                        tracing::debug!("reply to {src}: {e}");
                    }
                }
            }
        }
        Listener::ClassicUnix(listener, _) => {
            for _ in 0..16 {
                let Ok((mut conn, _)) = listener.accept() else {
                    return;
                };
                // Stream mode (reference §1.1): read one command, answer,
                // close. Kamailio writes the command in one writev without
                // a newline and then waits: take the first read (waiting at
                // most 200 ms for it) and whatever has already arrived.
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
                let cap = buf.len().min(crate::classic::MAX_COMMAND_LEN + 1);
                let mut len = conn.read(&mut buf[..cap]).unwrap_or_default();
                let _ = conn.set_nonblocking(true);
                while len > 0 && len < cap {
                    match conn.read(&mut buf[len..cap]) {
                        Ok(k) if k > 0 => len += k,
                        _ => break,
                    }
                }
                if len == 0 {
                    continue;
                }
                let now = relay::now_ms();
                let _ = conn.set_nonblocking(false);
                let reply = control.classic(&buf[..len], Channel::Stream, now, binder, actions);
                dispatch(actions, binder, workers);
                if let Some(r) = reply {
                    let _ = conn.write_all(&r);
                }
            }
        }
    }
}

/// Hands the core's actions to the workers.
fn dispatch(actions: &mut Vec<Action>, binder: &mut Binder, workers: &[WorkerHandle]) {
    for a in actions.drain(..) {
        match a {
            Action::Open {
                worker,
                stream,
                ports,
                stats,
            } => {
                let (Some(x), Some(y)) = (
                    binder.pending.remove(&ports[0]),
                    binder.pending.remove(&ports[1]),
                ) else {
                    tracing::error!(stream, "sockets for a new stream are missing");
                    continue;
                };
                if let Some(w) = workers.get(worker) {
                    w.send(WorkerMsg::Open {
                        stream,
                        legs: Box::new([x, y]),
                        stats,
                    });
                }
            }
            Action::Peer {
                worker,
                stream,
                leg,
                peer,
            } => {
                if let Some(w) = workers.get(worker) {
                    w.send(WorkerMsg::Peer { stream, leg, peer });
                }
            }
            Action::Close { worker, stream, .. } => {
                if let Some(w) = workers.get(worker) {
                    w.send(WorkerMsg::Close { stream });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_address_forms() {
        assert_eq!(
            parse_udp("udp:127.0.0.1:2223"),
            Ok("127.0.0.1:2223".parse().unwrap())
        );
        assert_eq!(parse_udp("udp:[::1]:22"), Ok("[::1]:22".parse().unwrap()));
        assert!(parse_udp("127.0.0.1:2223").is_err());
        assert_eq!(
            "unix:/tmp/x.sock".parse::<ControlAddr>(),
            Ok(ControlAddr::Unix("/tmp/x.sock".into()))
        );
        assert!("unix:".parse::<ControlAddr>().is_err());
        assert_eq!(parse_ports("30000-39999"), Ok((30000, 39999)));
        assert!(parse_ports("3-1").is_err());
        assert!(parse_ports("0-10").is_err());
    }
}
