//! The floor: the least CPU a UDP forwarder in front of SIP backends can
//! spend per datagram on this kernel. One receive and one send per datagram
//! (batched with recvmmsg/sendmmsg, 32 at a time), no SIP parsing at all.
//!
//! It is a measuring stick for `loadtest/compare.py`, not a product: sipfront
//! does strictly more work per message (parse, Via, routing), so its CPU per
//! call divided by this one's says how much of its cost is SIP and how much is
//! the syscalls every forwarder pays.
//!
//! Shape (IPv4 only, std + libc):
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

use std::collections::HashMap;
use std::io;
use std::mem;
use std::net::SocketAddrV4;
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
const SOCK_BUF: c_int = 4 << 20;

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

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    let mut sa: libc::sockaddr_in = unsafe { mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = a.port().to_be();
    sa.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    sa
}

fn check(r: c_int, what: &str) -> io::Result<c_int> {
    if r < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(r)
    }
}

fn setopt(fd: c_int, level: c_int, name: c_int, v: c_int) {
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &v as *const c_int as *const _,
            mem::size_of::<c_int>() as libc::socklen_t,
        );
    }
}

/// UDP socket, blocking for sends (backpressure instead of drops on a full
/// send buffer); receives use MSG_DONTWAIT.
fn udp_socket() -> io::Result<c_int> {
    check(
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) },
        "socket",
    )
}

fn listen_socket(addr: SocketAddrV4) -> io::Result<c_int> {
    let fd = udp_socket()?;
    setopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1);
    setopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, SOCK_BUF);
    setopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, SOCK_BUF);
    let sa = sockaddr(addr);
    check(
        unsafe {
            libc::bind(
                fd,
                &sa as *const _ as *const libc::sockaddr,
                mem::size_of::<libc::sockaddr_in>() as u32,
            )
        },
        "bind",
    )?;
    Ok(fd)
}

fn upstream_socket(backend: SocketAddrV4) -> io::Result<c_int> {
    let fd = udp_socket()?;
    setopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 1 << 20);
    setopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 1 << 20);
    let sa = sockaddr(backend);
    let r = unsafe {
        libc::connect(
            fd,
            &sa as *const _ as *const libc::sockaddr,
            mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        unsafe { libc::close(fd) };
        return Err(e);
    }
    Ok(fd)
}

fn key_of(sa: &libc::sockaddr_in) -> u64 {
    ((u32::from_be(sa.sin_addr.s_addr) as u64) << 16) | u16::from_be(sa.sin_port) as u64
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
    fd: c_int,
    client: libc::sockaddr_in,
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

/// One receive batch: buffers plus the recvmmsg/sendmmsg headers over them.
struct Batch {
    bufs: Vec<u8>,
    iov: [libc::iovec; BATCH],
    hdr: [libc::mmsghdr; BATCH],
    names: [libc::sockaddr_in; BATCH],
}

impl Batch {
    fn new() -> Box<Batch> {
        let mut b = Box::new(Batch {
            bufs: vec![0u8; BUF * BATCH],
            iov: unsafe { mem::zeroed() },
            hdr: unsafe { mem::zeroed() },
            names: unsafe { mem::zeroed() },
        });
        for i in 0..BATCH {
            b.iov[i].iov_base = unsafe { b.bufs.as_mut_ptr().add(i * BUF) } as *mut _;
            b.iov[i].iov_len = BUF;
        }
        b
    }

    /// Point headers [from, from+n) at their buffers for a receive.
    fn arm_recv(&mut self, from: usize, n: usize, want_name: bool) {
        for i in from..from + n {
            self.iov[i].iov_len = BUF;
            let h = &mut self.hdr[i].msg_hdr;
            h.msg_iov = &mut self.iov[i];
            h.msg_iovlen = 1;
            h.msg_control = ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            if want_name {
                h.msg_name = &mut self.names[i] as *mut _ as *mut _;
                h.msg_namelen = mem::size_of::<libc::sockaddr_in>() as u32;
            } else {
                h.msg_name = ptr::null_mut();
                h.msg_namelen = 0;
            }
            self.hdr[i].msg_len = 0;
        }
    }
}

/// recvmmsg into slots [from, from+n); returns how many arrived (0 if none / error).
fn recv_batch(fd: c_int, b: &mut Batch, from: usize, n: usize, want_name: bool) -> usize {
    b.arm_recv(from, n, want_name);
    loop {
        let r = unsafe {
            libc::recvmmsg(
                fd,
                b.hdr.as_mut_ptr().add(from),
                n as u32,
                libc::MSG_DONTWAIT,
                ptr::null_mut(),
            )
        };
        if r >= 0 {
            return r as usize;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            // EAGAIN: drained. ECONNREFUSED: a pending ICMP on a connected socket; drop it.
            _ => return 0,
        }
    }
}

/// sendmmsg all of hdrs on fd, skipping messages the kernel refuses.
fn send_all(fd: c_int, hdrs: &mut [libc::mmsghdr], c: &mut Counters) {
    let mut off = 0;
    while off < hdrs.len() {
        let r =
            unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr().add(off), (hdrs.len() - off) as u32, 0) };
        if r > 0 {
            off += r as usize;
        } else if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            c.dropped_send += 1;
            off += 1;
        }
    }
}

struct Worker {
    id: usize,
    backends: Vec<SocketAddrV4>,
    listen: c_int,
    ep: c_int,
    slots: Vec<Option<Binding>>,
    free: Vec<usize>,
    by_client: HashMap<u64, usize>,
    rx: Box<Batch>,
    send_hdr: [libc::mmsghdr; BATCH],
    order: [u8; BATCH],
    target: [c_int; BATCH],
    c: Counters,
    now: Instant,
}

// The raw pointers in the mmsghdr/iovec arrays only ever point into this
// worker's own boxed buffers; the worker moves to its thread once, before use.
unsafe impl Send for Worker {}

impl Worker {
    fn new(
        id: usize,
        listen_addr: SocketAddrV4,
        backends: Vec<SocketAddrV4>,
    ) -> io::Result<Worker> {
        let listen = listen_socket(listen_addr)?;
        let ep = check(
            unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
            "epoll_create1",
        )?;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: LISTEN_TOKEN,
        };
        check(
            unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, listen, &mut ev) },
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
            rx: Batch::new(),
            send_hdr: unsafe { mem::zeroed() },
            order: [0; BATCH],
            target: [-1; BATCH],
            c: Counters::default(),
            now: Instant::now(),
        })
    }

    /// The binding for this client, created on first sight.
    fn binding_for(&mut self, sa: &libc::sockaddr_in) -> Option<usize> {
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
        let fd = match upstream_socket(backend) {
            Ok(fd) => fd,
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
        if unsafe { libc::epoll_ctl(self.ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            unsafe { libc::close(fd) };
            self.free.push(idx);
            self.c.dropped_socket += 1;
            return None;
        }
        self.slots[idx] = Some(Binding {
            fd,
            client: *sa,
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
            let n = recv_batch(self.listen, &mut self.rx, 0, BATCH, true);
            if n == 0 {
                return;
            }
            let mut m = 0;
            for i in 0..n {
                if self.rx.hdr[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    self.c.dropped_trunc += 1;
                    continue;
                }
                let sa = self.rx.names[i];
                if let Some(idx) = self.binding_for(&sa) {
                    self.target[i] = self.slots[idx].as_ref().map_or(-1, |b| b.fd);
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
                    let i = self.order[e] as usize;
                    let k = e - s;
                    self.rx.iov[i].iov_len = self.rx.hdr[i].msg_len as usize;
                    let h = &mut self.send_hdr[k].msg_hdr;
                    h.msg_name = ptr::null_mut();
                    h.msg_namelen = 0;
                    h.msg_iov = &mut self.rx.iov[i];
                    h.msg_iovlen = 1;
                    h.msg_control = ptr::null_mut();
                    h.msg_controllen = 0;
                    h.msg_flags = 0;
                    e += 1;
                }
                send_all(fd, &mut self.send_hdr[..e - s], &mut self.c);
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
        let mut k = 0usize;
        for &idx in ready {
            let (fd, client) = match self.slots.get(idx).and_then(|s| s.as_ref()) {
                Some(b) => (b.fd, b.client),
                None => continue,
            };
            loop {
                let space = BATCH - k;
                let n = recv_batch(fd, &mut self.rx, k, space, false);
                for i in k..k + n {
                    if self.rx.hdr[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                        self.c.dropped_trunc += 1;
                        self.rx.hdr[i].msg_len = 0; // sent as nothing: skip below
                    }
                    self.rx.names[i] = client;
                }
                k += n;
                if k == BATCH {
                    self.flush_to_clients(k);
                    k = 0;
                }
                if n < space {
                    break;
                }
            }
            if let Some(b) = self.slots[idx].as_mut() {
                b.last_seen = self.now;
            }
        }
        if k > 0 {
            self.flush_to_clients(k);
        }
    }

    fn flush_to_clients(&mut self, k: usize) {
        let mut m = 0;
        for i in 0..k {
            let len = self.rx.hdr[i].msg_len as usize;
            if len == 0 {
                continue;
            }
            self.rx.iov[i].iov_len = len;
            let h = &mut self.send_hdr[m].msg_hdr;
            h.msg_name = &mut self.rx.names[i] as *mut _ as *mut _;
            h.msg_namelen = mem::size_of::<libc::sockaddr_in>() as u32;
            h.msg_iov = &mut self.rx.iov[i];
            h.msg_iovlen = 1;
            h.msg_control = ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            m += 1;
        }
        let (listen, hdrs) = (self.listen, &mut self.send_hdr[..m]);
        send_all(listen, hdrs, &mut self.c);
    }

    fn sweep(&mut self) {
        for idx in 0..self.slots.len() {
            let idle =
                matches!(&self.slots[idx], Some(b) if self.now.duration_since(b.last_seen) > IDLE);
            if idle {
                if let Some(b) = self.slots[idx].take() {
                    unsafe {
                        libc::epoll_ctl(self.ep, libc::EPOLL_CTL_DEL, b.fd, ptr::null_mut());
                        libc::close(b.fd);
                    }
                    self.by_client.remove(&b.key);
                    self.free.push(idx);
                }
            }
        }
    }

    fn run(&mut self) -> ! {
        let mut events: [libc::epoll_event; 64] = unsafe { mem::zeroed() };
        let mut ready: Vec<usize> = Vec::with_capacity(64);
        let mut last_sweep = Instant::now();
        let mut reported = 0u64;
        loop {
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
