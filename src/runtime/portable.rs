//! The portable I/O driver: one pinned thread per worker, epoll over the
//! worker's own sockets, datagrams received and sent in batches with
//! recvmmsg/sendmmsg. It runs where io_uring is blocked (the default
//! seccomp profiles of Docker and containerd) and needs nothing but Linux.

use super::{mesh, pin_to_cpu, WorkerSetup};
use crate::proxy::{Inbound, Outcome, Socket};
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Datagrams per recvmmsg/sendmmsg call.
const BATCH: usize = 32;
/// Largest UDP datagram.
const MAX_DGRAM: usize = 65_535;
/// Token of the mesh eventfd in epoll.
const MESH_TOKEN: u64 = u64::MAX;
/// How often a quiet worker looks at the shutdown flag.
const TICK: Duration = Duration::from_millis(100);

fn to_sockaddr(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    // SAFETY: sockaddr_storage is large and aligned enough for both forms;
    // the writes stay inside it.
    unsafe {
        match addr {
            SocketAddr::V4(a) => {
                let sin = out as *mut _ as *mut libc::sockaddr_in;
                (*sin).sin_family = libc::AF_INET as libc::sa_family_t;
                (*sin).sin_port = a.port().to_be();
                (*sin).sin_addr = libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                };
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                let sin6 = out as *mut _ as *mut libc::sockaddr_in6;
                (*sin6).sin6_family = libc::AF_INET6 as libc::sa_family_t;
                (*sin6).sin6_port = a.port().to_be();
                (*sin6).sin6_flowinfo = a.flowinfo();
                (*sin6).sin6_addr = libc::in6_addr {
                    s6_addr: a.ip().octets(),
                };
                (*sin6).sin6_scope_id = a.scope_id();
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }
}

fn from_sockaddr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    // SAFETY: the family field says which layout the kernel wrote.
    unsafe {
        match i32::from(s.ss_family) {
            libc::AF_INET => {
                let sin = &*(s as *const _ as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                let sin6 = &*(s as *const _ as *const libc::sockaddr_in6);
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// Receive-side batch: buffers, addresses and headers for recvmmsg.
struct RecvBatch {
    bufs: Vec<Box<[u8]>>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl RecvBatch {
    fn new() -> Self {
        let mut b = RecvBatch {
            bufs: (0..BATCH)
                .map(|_| vec![0u8; MAX_DGRAM].into_boxed_slice())
                .collect(),
            // SAFETY: all-zero is a valid sockaddr_storage / iovec / mmsghdr.
            addrs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            iovs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            hdrs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
        };
        for i in 0..BATCH {
            b.iovs[i].iov_base = b.bufs[i].as_mut_ptr() as *mut libc::c_void;
            b.iovs[i].iov_len = MAX_DGRAM;
        }
        b
    }

    /// Receives up to BATCH datagrams; returns how many.
    fn recv(&mut self, fd: i32) -> io::Result<usize> {
        for i in 0..BATCH {
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = &mut self.addrs[i] as *mut _ as *mut libc::c_void;
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: every header points at live buffers owned by self.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        Ok(n as usize)
    }

    fn datagram(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let len = (self.hdrs[i].msg_len as usize).min(MAX_DGRAM);
        (&self.bufs[i][..len], from_sockaddr(&self.addrs[i]))
    }
}

/// Send-side batch for one socket.
struct SendBatch {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<libc::socklen_t>,
    n: usize,
}

impl SendBatch {
    fn new() -> Self {
        SendBatch {
            bufs: (0..BATCH).map(|_| Vec::with_capacity(4096)).collect(),
            // SAFETY: all-zero is a valid sockaddr_storage.
            addrs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            lens: vec![0; BATCH],
            n: 0,
        }
    }

    /// The next free output buffer; `commit` makes it part of the batch.
    fn slot(&mut self) -> &mut Vec<u8> {
        &mut self.bufs[self.n]
    }

    fn commit(&mut self, to: SocketAddr) {
        self.lens[self.n] = to_sockaddr(&to, &mut self.addrs[self.n]);
        self.n += 1;
    }

    fn is_full(&self) -> bool {
        self.n == BATCH
    }

    /// Sends everything queued; datagrams the kernel refuses are counted by
    /// the caller through the return value (sent, failed).
    fn flush(&mut self, fd: i32) -> (usize, usize) {
        if self.n == 0 {
            return (0, 0);
        }
        // SAFETY: all-zero is valid for iovec and mmsghdr; they point at
        // buffers owned by self that outlive the call.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..self.n {
            iovs[i].iov_base = self.bufs[i].as_ptr() as *mut libc::c_void;
            iovs[i].iov_len = self.bufs[i].len();
            hdrs[i].msg_hdr.msg_name = &mut self.addrs[i] as *mut _ as *mut libc::c_void;
            hdrs[i].msg_hdr.msg_namelen = self.lens[i];
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        let mut done = 0usize;
        let mut failed = 0usize;
        while done < self.n {
            // SAFETY: see above; `done..n` are initialised headers.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    hdrs.as_mut_ptr().add(done),
                    (self.n - done) as libc::c_uint,
                    0,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // This datagram cannot go (unreachable, full buffer): skip it.
                failed += 1;
                done += 1;
            } else {
                done += r as usize;
            }
        }
        self.n = 0;
        (done - failed, failed)
    }
}

/// Queues the datagram the proxy wrote into `scratch` for `to`: the
/// buffers are traded with the batch slot instead of copied; a full batch
/// goes out at once.
fn queue(batch: &mut SendBatch, sock: &UdpSocket, scratch: &mut Vec<u8>, to: SocketAddr) {
    std::mem::swap(batch.slot(), scratch);
    batch.commit(to);
    if batch.is_full() {
        batch.flush(sock.as_raw_fd());
    }
}

/// Moves the transaction layer's queued datagrams (stateful mode) into the
/// send batches.
fn drain(proxy: &mut crate::proxy::Proxy, tx: &mut [SendBatch], socks: &[(UdpSocket, Socket)]) {
    if !proxy.has_queued() {
        return;
    }
    proxy.drain_queue(|to, from, data| {
        if let Some(i) = socks.iter().position(|(_, k)| *k == from) {
            queue(&mut tx[i], &socks[i].0, data, to);
        }
    });
}

/// Runs one worker until shutdown.
pub fn run_worker(
    mut w: WorkerSetup,
    mesh: mesh::MeshEnd,
) -> io::Result<crate::proxy::stats::Stats> {
    pin_to_cpu(w.cpu);
    // SAFETY: plain epoll syscalls on fds this worker owns.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    let socks: Vec<(UdpSocket, Socket)> = std::mem::take(&mut w.sockets);
    let add = |fd: i32, token: u64| -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: ev lives across the call; fd is open.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    for (i, (s, _)) in socks.iter().enumerate() {
        add(s.as_raw_fd(), i as u64)?;
    }
    add(mesh.wake_fd(), MESH_TOKEN)?;

    let mut rx = RecvBatch::new();
    let mut tx: Vec<SendBatch> = socks.iter().map(|_| SendBatch::new()).collect();
    let sock_index = |s: Socket| socks.iter().position(|(_, k)| *k == s);
    // SAFETY: all-zero is a valid epoll_event.
    let mut events: [libc::epoll_event; 16] = unsafe { zeroed() };
    let mut scratch = Vec::with_capacity(4096);
    while !w.shutdown.load(Ordering::Relaxed) {
        // Sleep until the next transaction timer is due, at most a TICK.
        let wait = w
            .proxy
            .next_timer()
            .map_or(TICK, |d| d.min(TICK))
            .as_micros()
            .div_ceil(1000) as i32;
        // SAFETY: events is a live buffer of 16 entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 16, wait) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            unsafe { libc::close(ep) };
            return Err(e);
        }
        w.proxy.tick(Instant::now(), &*w.health);
        drain(&mut w.proxy, &mut tx, &socks);
        for ev in events.iter().take(n as usize) {
            let token = ev.u64;
            if token == MESH_TOKEN {
                mesh.clear_wake();
                while let Some(h) = mesh.try_recv() {
                    w.proxy.stats.handovers_in += 1;
                    let pkt = Inbound {
                        data: &h.data,
                        src: h.src,
                        socket: h.socket,
                    };
                    let routing = w.routing.load();
                    match w.proxy.handle(&routing, &*w.health, pkt, &mut scratch) {
                        Outcome::Send { to, from } => {
                            if let Some(i) = sock_index(from) {
                                queue(&mut tx[i], &socks[i].0, &mut scratch, to);
                            }
                        }
                        // Handed over once already: never bounce again.
                        Outcome::Handover { .. } | Outcome::Drop(_) | Outcome::Queued => {}
                    }
                    drain(&mut w.proxy, &mut tx, &socks);
                }
                continue;
            }
            let si = token as usize;
            let Some((sock, kind)) = socks.get(si) else {
                continue;
            };
            loop {
                let got = match rx.recv(sock.as_raw_fd()) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::debug!(worker = w.id, error = %e, "recvmmsg");
                        0
                    }
                };
                if got == 0 {
                    break;
                }
                let routing = w.routing.load();
                for i in 0..got {
                    let (data, src) = rx.datagram(i);
                    let Some(src) = src else { continue };
                    let pkt = Inbound {
                        data,
                        src,
                        socket: *kind,
                    };
                    match w.proxy.handle(&routing, &*w.health, pkt, &mut scratch) {
                        Outcome::Send { to, from } => {
                            let Some(o) = sock_index(from) else { continue };
                            queue(&mut tx[o], &socks[o].0, &mut scratch, to);
                        }
                        Outcome::Drop(_) => {}
                        Outcome::Queued => drain(&mut w.proxy, &mut tx, &socks),
                        Outcome::Handover { worker } => {
                            if !mesh.send(
                                worker,
                                mesh::Handover {
                                    data: data.to_vec(),
                                    src,
                                    socket: *kind,
                                },
                            ) {
                                w.proxy
                                    .stats
                                    .drop(crate::proxy::stats::DropReason::HandoverFull);
                            }
                        }
                    }
                }
                for (i, b) in tx.iter_mut().enumerate() {
                    b.flush(socks[i].0.as_raw_fd());
                }
                if got < BATCH {
                    break;
                }
            }
        }
        for (i, b) in tx.iter_mut().enumerate() {
            b.flush(socks[i].0.as_raw_fd());
        }
        w.publish_stats();
    }
    // SAFETY: ep is this worker's epoll fd.
    unsafe { libc::close(ep) };
    Ok(w.proxy.stats.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for a in ["127.0.0.1:5060", "[2001:db8::1]:5070", "[::1]:1"] {
            let a: SocketAddr = a.parse().unwrap();
            // SAFETY: zeroed sockaddr_storage is valid.
            let mut s: libc::sockaddr_storage = unsafe { zeroed() };
            to_sockaddr(&a, &mut s);
            assert_eq!(from_sockaddr(&s), Some(a));
        }
    }
}
