//! The portable I/O driver: one pinned thread per worker, epoll over the
//! worker's own sockets and its mesh eventfd, datagrams received and sent
//! in batches with recvmmsg/sendmmsg (`sipfront_io::batch`). It runs where
//! io_uring is blocked (the default seccomp profiles of Docker and
//! containerd) and needs nothing but Linux. Pure I/O: the pump runs the
//! engine. It sleeps until the pump's next deadline, or until a datagram,
//! a hand-over or the shutdown wake-up comes.

use super::mesh::{Handover, MeshEnd};
use super::pump::{add_flushed, count_failure, Sink};
use super::WorkerSetup;
use crate::proxy::{stats::Stats, Datagram, Socket};
use sipfront_io::batch::{Flushed, RecvBatch, SendBatch, SendError, MAX_DGRAM};
use std::io;
use std::mem::zeroed;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
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
    tx: Vec<SendBatch>,
    mesh: &'a MeshEnd,
    /// Failures of batches that went out early (full) or had no socket.
    failed: Flushed,
}

impl Sink for Sockets<'_> {
    fn send(&mut self, socket: Socket, to: SocketAddr, buf: &mut Vec<u8>) {
        let Some(i) = self.socks.iter().position(|(_, k)| *k == socket) else {
            count_failure(&mut self.failed, SendError::Other);
            return;
        };
        let batch = &mut self.tx[i];
        std::mem::swap(batch.slot(), buf);
        batch.commit(to);
        if batch.is_full() {
            let f = batch.flush(self.socks[i].0.as_raw_fd());
            add_flushed(&mut self.failed, &f);
        }
    }

    fn hand_over(&mut self, worker: u8, h: Handover) -> bool {
        self.mesh.send(worker, h)
    }

    fn flush(&mut self) -> Flushed {
        let mut f = std::mem::take(&mut self.failed);
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

/// Runs one worker until shutdown.
pub fn run_worker(w: WorkerSetup, mesh: MeshEnd) -> io::Result<Stats> {
    let WorkerSetup {
        id,
        cpu,
        sockets: socks,
        mut pump,
        shutdown,
    } = w;
    sipfront_io::cpu::pin_to_cpu(cpu);
    // SAFETY: plain epoll syscalls on fds this worker owns.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
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

    let mut rx = RecvBatch::new(BATCH, MAX_DGRAM);
    let mut sink = Sockets {
        socks: &socks,
        tx: socks.iter().map(|_| SendBatch::new(BATCH)).collect(),
        mesh: &mesh,
        failed: Flushed::default(),
    };
    // SAFETY: all-zero is a valid epoll_event.
    let mut events: [libc::epoll_event; 16] = unsafe { zeroed() };
    while !shutdown.load(Ordering::Relaxed) {
        let wait = wait_ms(pump.next_wake(), Instant::now());
        // SAFETY: events is a live buffer of 16 entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 16, wait) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // SAFETY: ep is this worker's epoll fd.
            unsafe { libc::close(ep) };
            return Err(e);
        }
        let mut now = Instant::now();
        pump.timeout(now, &mut sink);
        for ev in events.iter().take(n as usize) {
            let token = ev.u64;
            if token == MESH_TOKEN {
                mesh.clear_wake();
                while let Some(h) = mesh.try_recv() {
                    pump.handover(now, &h, &mut sink);
                }
                continue;
            }
            let Some((sock, role)) = socks.get(token as usize) else {
                continue;
            };
            loop {
                let got = match rx.recv(sock.as_raw_fd()) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::debug!(worker = id, error = %e, "recvmmsg");
                        0
                    }
                };
                for i in 0..got {
                    let (data, src) = rx.datagram(i);
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
    }
    // SAFETY: ep is this worker's epoll fd.
    unsafe { libc::close(ep) };
    pump.publish_now(Instant::now());
    Ok(pump.engine().stats().clone())
}
