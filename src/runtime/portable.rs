//! The portable I/O driver: one pinned thread per worker, epoll over the
//! worker's own sockets and its mesh eventfd, datagrams received and sent
//! in batches with recvmmsg/sendmmsg (`sipfront_io::batch`). It runs where
//! io_uring is blocked (the default seccomp profiles of Docker and
//! containerd) and needs nothing but Linux. Pure I/O: the pump runs the
//! engine. It sleeps until the pump's next deadline, or until a datagram,
//! a hand-over or the shutdown wake-up comes.

use super::mesh::{Handover, MeshEnd};
use super::pump::{add_flushed, count_failure, Pump, Sink};
use super::WorkerSetup;
use crate::proxy::{stats::Stats, Datagram, Socket};
use sipfront_io::batch::{Flushed, RecvBatch, SendBatch, SendError, MAX_DGRAM};
use std::io;
use std::mem::zeroed;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Datagrams per recvmmsg/sendmmsg call.
const BATCH: usize = 32;
/// Token of the mesh eventfd in epoll.
const MESH_TOKEN: u64 = u64::MAX;

/// The worker's sockets as the pump's sink: a send batch per socket, the
/// mesh for hand-overs.
struct Sockets<'a> {
    socks: &'a [(UdpSocket, Socket)],
    tx: &'a mut [SendBatch],
    mesh: &'a MeshEnd,
    /// Failures of batches that went out early (full) or had no socket.
    failed: &'a mut Flushed,
}

impl Sink for Sockets<'_> {
    fn send(&mut self, socket: Socket, to: SocketAddr, buf: &mut Vec<u8>) {
        let Some(i) = self.socks.iter().position(|(_, k)| *k == socket) else {
            count_failure(self.failed, SendError::Other);
            return;
        };
        let batch = &mut self.tx[i];
        std::mem::swap(batch.slot(), buf);
        batch.commit(to);
        if batch.is_full() {
            let f = batch.flush(self.socks[i].0.as_raw_fd());
            add_flushed(self.failed, &f);
        }
    }

    fn hand_over(&mut self, worker: u8, h: Handover) -> bool {
        self.mesh.send(worker, h)
    }

    fn flush(&mut self) -> Flushed {
        let mut f = std::mem::take(self.failed);
        for (b, (s, _)) in self.tx.iter_mut().zip(self.socks) {
            if !b.is_empty() {
                add_flushed(&mut f, &b.flush(s.as_raw_fd()));
            }
        }
        f
    }
}

/// Milliseconds until `at` (rounded up), for epoll_wait; -1: no deadline.
fn wait_ms(at: Option<Instant>, now: Instant) -> i32 {
    match at {
        None => -1,
        Some(t) => t
            .saturating_duration_since(now)
            .as_micros()
            .div_ceil(1000)
            .min(i32::MAX as u128) as i32,
    }
}

/// One worker's event loop state: its epoll, sockets, batches and pump.
pub(crate) struct Worker {
    id: usize,
    ep: OwnedFd,
    socks: Vec<(UdpSocket, Socket)>,
    mesh: MeshEnd,
    rx: RecvBatch,
    tx: Vec<SendBatch>,
    failed: Flushed,
    pub(crate) pump: Pump,
}

impl Worker {
    pub(crate) fn new(
        id: usize,
        socks: Vec<(UdpSocket, Socket)>,
        mesh: MeshEnd,
        pump: Pump,
    ) -> io::Result<Worker> {
        // SAFETY: epoll_create1 returns a new fd or -1.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: ep is a fresh descriptor we own.
        let ep = unsafe { OwnedFd::from_raw_fd(ep) };
        let add = |fd: i32, token: u64| -> io::Result<()> {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: token,
            };
            // SAFETY: ev lives across the call; both fds are open.
            if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        };
        for (i, (s, _)) in socks.iter().enumerate() {
            add(s.as_raw_fd(), i as u64)?;
        }
        add(mesh.wake_fd(), MESH_TOKEN)?;
        let tx = socks.iter().map(|_| SendBatch::new(BATCH)).collect();
        Ok(Worker {
            id,
            ep,
            socks,
            mesh,
            rx: RecvBatch::new(BATCH, MAX_DGRAM),
            tx,
            failed: Flushed::default(),
            pump,
        })
    }

    /// One wake-up: waits for an event at most until the pump's next
    /// deadline (and at most `limit`, when given), then handles everything
    /// ready and sends everything it produced before returning.
    pub(crate) fn turn(&mut self, limit: Option<std::time::Duration>) -> io::Result<()> {
        let now = Instant::now();
        let wake = match (self.pump.next_wake(), limit.map(|l| now + l)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // SAFETY: all-zero is a valid epoll_event.
        let mut events: [libc::epoll_event; 16] = unsafe { zeroed() };
        // SAFETY: events is a live buffer of 16 entries.
        let n = unsafe {
            libc::epoll_wait(
                self.ep.as_raw_fd(),
                events.as_mut_ptr(),
                16,
                wait_ms(wake, now),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(()),
                _ => Err(e),
            };
        }
        let mut sink = Sockets {
            socks: &self.socks,
            tx: &mut self.tx,
            mesh: &self.mesh,
            failed: &mut self.failed,
        };
        let pump = &mut self.pump;
        let mut now = Instant::now();
        pump.timeout(now, &mut sink);
        for ev in events.iter().take(n as usize) {
            let token = ev.u64;
            if token == MESH_TOKEN {
                self.mesh.clear_wake();
                while let Some(h) = self.mesh.try_recv() {
                    pump.handover(now, &h, &mut sink);
                }
                continue;
            }
            let Some((sock, role)) = self.socks.get(token as usize) else {
                continue;
            };
            loop {
                let got = match self.rx.recv(sock.as_raw_fd()) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::debug!(worker = self.id, error = %e, "recvmmsg");
                        0
                    }
                };
                for i in 0..got {
                    let (data, src) = self.rx.datagram(i);
                    let Some(src) = src else { continue };
                    let d = Datagram {
                        data,
                        src,
                        socket: *role,
                    };
                    pump.datagram(now, d, &mut sink);
                }
                // Everything this batch produced leaves now.
                pump.flush(&mut sink);
                if got < BATCH {
                    break;
                }
                now = Instant::now();
                pump.timeout(now, &mut sink);
            }
        }
        pump.flush(&mut sink);
        pump.publish(Instant::now());
        Ok(())
    }
}

/// Runs one worker until shutdown.
pub fn run_worker(w: WorkerSetup, mesh: MeshEnd) -> io::Result<Stats> {
    let WorkerSetup {
        id,
        cpu,
        sockets,
        pump,
        shutdown,
    } = w;
    sipfront_io::cpu::pin_to_cpu(cpu);
    let mut w = Worker::new(id, sockets, mesh, pump)?;
    while !shutdown.load(Ordering::Relaxed) {
        w.turn(None)?;
    }
    w.pump.publish_now(Instant::now());
    Ok(w.pump.engine().stats().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{Algorithm, AllActive, BackendId, BackendSet, Destination, Rules};
    use crate::proxy::identity::Identity;
    use crate::proxy::txn::TxnConfig;
    use crate::proxy::{Engine, ProxyConfig, Routing};
    use arc_swap::ArcSwap;
    use std::sync::Arc;
    use std::time::Duration;

    fn udp() -> UdpSocket {
        sipfront_io::udp::bind_udp("127.0.0.1:0".parse().unwrap(), false, 1 << 16, 1 << 16).unwrap()
    }

    /// A one-worker process (listen and egress sockets on loopback) whose
    /// only backend is `backend`; with the listen and egress addresses.
    fn worker(backend: SocketAddr, cfg: ProxyConfig) -> (Worker, SocketAddr, SocketAddr) {
        let (listen, egress) = (udp(), udp());
        let (l, e) = (listen.local_addr().unwrap(), egress.local_addr().unwrap());
        let set = BackendSet::new(
            "default",
            Algorithm::CallId,
            vec![Destination::new(
                BackendId(0),
                format!("sip:{backend}"),
                backend,
            )],
        )
        .unwrap();
        let routing = Arc::new(ArcSwap::from_pointee(Routing::new(
            vec![set],
            Rules::new(vec![], 0),
        )));
        let id = Arc::new(Identity::new(&[l], &[e], None, &[]));
        let engine = Engine::new(cfg, id, 0, routing, Arc::new(AllActive));
        let mesh = crate::runtime::mesh::build(1).unwrap().pop().unwrap();
        let socks = vec![(listen, Socket::Listen(0)), (egress, Socket::Egress)];
        let w = Worker::new(0, socks, mesh, Pump::new(engine)).unwrap();
        (w, l, e)
    }

    /// Everything waiting on `s`, without blocking.
    fn drain(s: &UdpSocket) -> Vec<String> {
        let mut v = Vec::new();
        let mut buf = [0u8; 65_535];
        while let Ok((n, _)) = s.recv_from(&mut buf) {
            v.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        v
    }

    fn first_lines(v: &[String]) -> Vec<&str> {
        v.iter().map(|m| m.lines().next().unwrap_or("")).collect()
    }

    /// RFC 3261 §16.10 on real sockets, one wake-up at a time: the CANCEL
    /// sipfront sends to a ringing branch leaves in the same wake-up as the
    /// 200 that answers the client's CANCEL (the old loop queued it until
    /// its next turn).
    #[test]
    fn cancel_leaves_in_the_same_wake_up_as_its_200_rfc3261_16_10() {
        let (client, backend) = (udp(), udp());
        let cfg = ProxyConfig {
            transactions: Some(TxnConfig::default()),
            ..ProxyConfig::default()
        };
        let (mut w, l, e) = worker(backend.local_addr().unwrap(), cfg);
        let turn = |w: &mut Worker| w.turn(Some(Duration::from_secs(2))).unwrap();

        let c = client.local_addr().unwrap();
        let invite = format!(
            "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP {c};rport;branch=z9hG4bK-cx\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: cx@test\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n"
        );
        client.send_to(invite.as_bytes(), l).unwrap();
        turn(&mut w);
        assert_eq!(first_lines(&drain(&client)), ["SIP/2.0 100 Trying"]);
        let fwd = drain(&backend);
        assert_eq!(first_lines(&fwd), ["INVITE sip:bob@example.com SIP/2.0"]);
        // The backend rings.
        let m = crate::sip::Message::parse(fwd[0].as_bytes()).unwrap();
        let mut ringing = String::from("SIP/2.0 180 Ringing\r\n");
        for v in m.values(crate::sip::HeaderName::Via) {
            ringing.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
        }
        ringing.push_str(
            "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b9\r\n\
Call-ID: cx@test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        );
        backend.send_to(ringing.as_bytes(), e).unwrap();
        turn(&mut w);
        assert_eq!(first_lines(&drain(&client)), ["SIP/2.0 180 Ringing"]);
        // The CANCEL: one wake-up sends both its 200 and sipfront's CANCEL.
        let cancel = invite
            .replace("INVITE sip:bob", "CANCEL sip:bob")
            .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
        client.send_to(cancel.as_bytes(), l).unwrap();
        turn(&mut w);
        assert_eq!(first_lines(&drain(&client)), ["SIP/2.0 200 OK"]);
        assert_eq!(
            first_lines(&drain(&backend)),
            ["CANCEL sip:bob@example.com SIP/2.0"]
        );
    }

    /// A datagram the kernel refuses (here: an IPv6 destination from an
    /// IPv4 socket, EAFNOSUPPORT) is counted by its reason, and the worker
    /// goes on.
    #[test]
    fn a_send_the_kernel_refuses_is_counted() {
        let client = udp();
        let (mut w, l, _) = worker("[::1]:5070".parse().unwrap(), ProxyConfig::default());
        let c = client.local_addr().unwrap();
        for i in 0..3 {
            let invite = format!(
                "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP {c};rport;branch=z9hG4bK-sf{i}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: sf{i}@test\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n"
            );
            client.send_to(invite.as_bytes(), l).unwrap();
        }
        w.turn(Some(Duration::from_secs(2))).unwrap();
        let s = w.pump.engine().stats();
        assert_eq!(s.requests_forwarded, 3);
        assert_eq!(s.send_failures_by(SendError::Other), 3, "{}", s.summary());
    }
}
