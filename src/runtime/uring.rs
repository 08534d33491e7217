//! The io_uring driver: one glommio `LocalExecutor` per worker, pinned to
//! its core; a task per socket receives, runs the proxy core, and sends.
//! Handovers travel over glommio's bounded shared channels (one per pair of
//! workers), which wake the receiving executor without polling.

use super::{pin_to_cpu, WorkerSetup};
use crate::proxy::{stats::DropReason, stats::Stats, Inbound, Outcome, Socket};
use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use glommio::net::UdpSocket;
use glommio::{LocalExecutorBuilder, Placement};
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Item = (Vec<u8>, SocketAddr, Socket);

/// Channels of a full mesh: `senders[i][j]` sends from worker i to j.
pub struct Mesh {
    senders: Vec<Vec<Option<SharedSender<Item>>>>,
    receivers: Vec<Vec<SharedReceiver<Item>>>,
}

/// One worker's share of the mesh.
pub struct End {
    to: Vec<Option<SharedSender<Item>>>,
    from: Vec<SharedReceiver<Item>>,
}

impl Mesh {
    pub fn build(n: usize) -> Mesh {
        let mut senders: Vec<Vec<Option<SharedSender<Item>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut receivers: Vec<Vec<SharedReceiver<Item>>> = (0..n).map(|_| Vec::new()).collect();
        for (i, row) in senders.iter_mut().enumerate() {
            for (j, slot) in row.iter_mut().enumerate() {
                if i != j {
                    let (tx, rx) = shared_channel::new_bounded(super::mesh::DEPTH);
                    *slot = Some(tx);
                    receivers[j].push(rx);
                }
            }
        }
        Mesh { senders, receivers }
    }

    pub fn into_ends(self) -> Vec<End> {
        self.senders
            .into_iter()
            .zip(self.receivers)
            .map(|(to, from)| End { to, from })
            .collect()
    }
}

/// Sends `out` to `dst` from the worker's socket of kind `from`.
/// Moves the transaction layer's queued datagrams out, to be sent once the
/// worker state is no longer borrowed.
fn take_queued(proxy: &mut crate::proxy::Proxy, into: &mut Vec<(SocketAddr, Socket, Vec<u8>)>) {
    proxy.drain_queue(|to, from, data| into.push((to, from, std::mem::take(data))));
}

async fn send_from(
    gsocks: &[UdpSocket],
    kinds: &[Socket],
    from: Socket,
    out: &[u8],
    dst: SocketAddr,
) {
    if let Some(o) = kinds.iter().position(|k| *k == from) {
        if let Err(e) = gsocks[o].send_to(out, dst).await {
            tracing::warn!(error = %e, "send_to");
        }
    }
}

/// Runs one worker on a glommio executor until shutdown.
pub fn run_worker(mut w: WorkerSetup, end: End) -> io::Result<Stats> {
    let cpu = w.cpu;
    let socks = std::mem::take(&mut w.sockets);
    let ex = LocalExecutorBuilder::new(Placement::Fixed(cpu))
        .name(&format!("sipfront-w{}", w.id))
        .make()
        .map_err(|e| io::Error::other(format!("glommio executor: {e}")))?;
    pin_to_cpu(cpu);
    ex.run(async move {
        let shutdown = Arc::clone(&w.shutdown);
        let kinds: Vec<Socket> = socks.iter().map(|(_, k)| *k).collect();
        // SAFETY: each fd comes from a socket we own and give up here.
        let gsocks: Rc<Vec<UdpSocket>> = Rc::new(
            socks
                .into_iter()
                .map(|(s, _)| {
                    // io_uring fails a receive on an O_NONBLOCK socket with
                    // EAGAIN instead of waiting: hand glommio a blocking one.
                    let _ = s.set_nonblocking(false);
                    unsafe { UdpSocket::from_raw_fd(s.into_raw_fd()) }
                })
                .collect(),
        );
        let state = Rc::new(RefCell::new(w));
        let mut tasks = Vec::new();
        // Receivers first: a sender's connect() waits for its peer's
        // receiver, so connecting senders before every worker has spawned
        // its receivers would deadlock the mesh.
        for rx in end.from {
            let (gsocks, state, kinds) = (Rc::clone(&gsocks), Rc::clone(&state), kinds.clone());
            tasks.push(glommio::spawn_local(async move {
                let rx = rx.connect().await;
                let mut out = Vec::with_capacity(4096);
                let mut queued = Vec::new();
                while let Some((data, src, kind)) = rx.recv().await {
                    let outcome = {
                        let mut w = state.borrow_mut();
                        w.proxy.stats.handovers_in += 1;
                        let routing = w.routing.load_full();
                        let health = Arc::clone(&w.health);
                        let pkt = Inbound {
                            data: &data,
                            src,
                            socket: kind,
                        };
                        let o = w.proxy.handle(&routing, &*health, pkt, &mut out);
                        take_queued(&mut w.proxy, &mut queued);
                        o
                    };
                    if let Outcome::Send { to: dst, from } = outcome {
                        send_from(&gsocks, &kinds, from, &out, dst).await;
                    }
                    for (dst, from, data) in queued.drain(..) {
                        send_from(&gsocks, &kinds, from, &data, dst).await;
                    }
                }
            }));
        }
        let mut to = Vec::new();
        for s in end.to {
            to.push(match s {
                Some(s) => Some(s.connect().await),
                None => None,
            });
        }
        tracing::debug!(worker = state.borrow().id, "uring mesh connected");
        let to = Rc::new(to);
        for (i, kind) in kinds.iter().copied().enumerate() {
            let (gsocks, state, kinds, to) = (
                Rc::clone(&gsocks),
                Rc::clone(&state),
                kinds.clone(),
                Rc::clone(&to),
            );
            tasks.push(glommio::spawn_local(async move {
                let mut buf = vec![0u8; 65_535];
                let mut out = Vec::with_capacity(4096);
                let mut queued = Vec::new();
                loop {
                    let (n, src) = match gsocks[i].recv_from(&mut buf).await {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "recv_from");
                            glommio::yield_if_needed().await;
                            continue;
                        }
                    };
                    let outcome = {
                        let mut w = state.borrow_mut();
                        let routing = w.routing.load_full();
                        let health = Arc::clone(&w.health);
                        let pkt = Inbound {
                            data: &buf[..n],
                            src,
                            socket: kind,
                        };
                        w.proxy.tick(Instant::now(), &*health);
                        let o = w.proxy.handle(&routing, &*health, pkt, &mut out);
                        take_queued(&mut w.proxy, &mut queued);
                        w.publish_stats();
                        o
                    };
                    for (dst, from, data) in queued.drain(..) {
                        send_from(&gsocks, &kinds, from, &data, dst).await;
                    }
                    match outcome {
                        Outcome::Send { to: dst, from } => {
                            send_from(&gsocks, &kinds, from, &out, dst).await;
                        }
                        Outcome::Handover { worker } => {
                            let sent = to
                                .get(usize::from(worker))
                                .and_then(|s| s.as_ref())
                                .is_some_and(|s| {
                                    s.try_send((buf[..n].to_vec(), src, kind)).is_ok()
                                });
                            if !sent {
                                state
                                    .borrow_mut()
                                    .proxy
                                    .stats
                                    .drop(DropReason::HandoverFull);
                            }
                        }
                        Outcome::Drop(_) | Outcome::Queued => {}
                    }
                }
            }));
        }
        // Watch for shutdown and run the transaction timers; the timer
        // parks the executor between checks.
        let mut queued = Vec::new();
        while !shutdown.load(Ordering::Relaxed) {
            let wait = state
                .borrow()
                .proxy
                .next_timer()
                .map_or(Duration::from_millis(100), |d| {
                    d.clamp(Duration::from_millis(1), Duration::from_millis(100))
                });
            glommio::timer::sleep(wait).await;
            {
                let mut w = state.borrow_mut();
                let health = Arc::clone(&w.health);
                w.proxy.tick(Instant::now(), &*health);
                take_queued(&mut w.proxy, &mut queued);
                w.publish_stats();
            }
            for (dst, from, data) in queued.drain(..) {
                send_from(&gsocks, &kinds, from, &data, dst).await;
            }
        }
        for t in tasks {
            t.cancel().await;
        }
        let stats = state.borrow().proxy.stats.clone();
        Ok(stats)
    })
}
