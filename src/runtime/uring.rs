//! The io_uring driver: one glommio `LocalExecutor` per worker, pinned to
//! its core. A task per socket receives through io_uring and feeds the pump;
//! a task per peer worker receives hand-overs (glommio's bounded shared
//! channels, which wake the executor without polling); a timer task sleeps
//! until the pump's next deadline and is woken earlier when an event brings
//! one closer. Sends leave in batches, with sendmmsg on the sockets' fds
//! (`MSG_DONTWAIT`, so the executor never blocks), after every event. Pure
//! I/O: the pump runs the engine.

use super::mesh::Handover;
use super::pump::{add_flushed, count_failure, Pump, Sink};
use super::WorkerSetup;
use crate::proxy::{stats::Stats, Datagram, Socket};
use glommio::channels::local_channel::{self, LocalSender};
use glommio::channels::shared_channel::{self, ConnectedSender, SharedReceiver, SharedSender};
use glommio::net::UdpSocket;
use glommio::{LocalExecutorBuilder, Placement};
use sipfront_io::batch::{Flushed, SendBatch, SendError};
use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Datagrams per sendmmsg.
const BATCH: usize = 32;
/// Longest sleep of the timer task: how soon a quiet worker notices the
/// shutdown flag (glommio's executor cannot be woken from another thread
/// without a channel the runtime would have to connect from inside it).
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// Channels of a full mesh: `senders[i][j]` sends from worker i to j.
pub struct Mesh {
    senders: Vec<Vec<Option<SharedSender<Handover>>>>,
    receivers: Vec<Vec<SharedReceiver<Handover>>>,
}

/// One worker's share of the mesh.
pub struct End {
    to: Vec<Option<SharedSender<Handover>>>,
    from: Vec<SharedReceiver<Handover>>,
}

impl Mesh {
    pub fn build(n: usize) -> Mesh {
        let mut senders: Vec<Vec<Option<SharedSender<Handover>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut receivers: Vec<Vec<SharedReceiver<Handover>>> =
            (0..n).map(|_| Vec::new()).collect();
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

/// The worker's sockets (by raw fd: glommio owns them) and mesh senders as
/// the pump's sink.
struct Sockets {
    fds: Vec<(RawFd, Socket)>,
    tx: Vec<SendBatch>,
    to: Vec<Option<ConnectedSender<Handover>>>,
    failed: Flushed,
}

impl Sink for Sockets {
    fn send(&mut self, socket: Socket, to: SocketAddr, buf: &mut Vec<u8>) {
        let Some(i) = self.fds.iter().position(|(_, k)| *k == socket) else {
            count_failure(&mut self.failed, SendError::Other);
            return;
        };
        let batch = &mut self.tx[i];
        std::mem::swap(batch.slot(), buf);
        batch.commit(to);
        if batch.is_full() {
            let f = batch.flush(self.fds[i].0);
            add_flushed(&mut self.failed, &f);
        }
    }

    fn hand_over(&mut self, worker: u8, h: Handover) -> bool {
        self.to
            .get(usize::from(worker))
            .and_then(|s| s.as_ref())
            .is_some_and(|s| s.try_send(h).is_ok())
    }

    fn flush(&mut self) -> Flushed {
        let mut f = std::mem::take(&mut self.failed);
        for (b, (fd, _)) in self.tx.iter_mut().zip(&self.fds) {
            if !b.is_empty() {
                add_flushed(&mut f, &b.flush(*fd));
            }
        }
        f
    }
}

/// The worker's state shared by its tasks (one thread: `RefCell`).
struct Shared {
    pump: RefCell<Pump>,
    sink: RefCell<Sockets>,
    /// When the timer task will wake next (`None` while it runs).
    sleeping_until: Cell<Option<Instant>>,
    /// Wakes the timer task early.
    nudge: LocalSender<()>,
}

impl Shared {
    /// Runs `f` on the pump, flushes, and wakes the timer task when the
    /// event brought the next deadline closer than it sleeps.
    fn event(&self, f: impl FnOnce(&mut Pump, &mut Sockets, Instant)) {
        let mut pump = self.pump.borrow_mut();
        let mut sink = self.sink.borrow_mut();
        let now = Instant::now();
        pump.timeout(now, &mut *sink);
        f(&mut pump, &mut sink, now);
        pump.flush(&mut *sink);
        // The timer task itself (not sleeping) looks again anyway.
        if let (Some(n), Some(s)) = (pump.next_wake(), self.sleeping_until.get()) {
            if n < s {
                // A nudge already waiting is as good as a second one.
                let _ = self.nudge.try_send(());
            }
        }
    }
}

/// Runs one worker on a glommio executor until shutdown.
pub fn run_worker(w: WorkerSetup, end: End) -> io::Result<Stats> {
    let WorkerSetup {
        id,
        cpu,
        sockets: socks,
        pump,
        shutdown,
    } = w;
    let ex = LocalExecutorBuilder::new(Placement::Fixed(cpu))
        .name(&format!("sipfront-w{id}"))
        .make()
        .map_err(|e| io::Error::other(format!("glommio executor: {e}")))?;
    sipfront_io::cpu::pin_to_cpu(cpu);
    ex.run(async move {
        let mut kinds = Vec::with_capacity(socks.len());
        let mut gsocks = Vec::with_capacity(socks.len());
        for (s, k) in socks {
            // io_uring fails a receive on an O_NONBLOCK socket with EAGAIN
            // instead of waiting: hand glommio a blocking one (sends use
            // MSG_DONTWAIT).
            if let Err(e) = s.set_nonblocking(false) {
                tracing::warn!(error = %e, "socket left non-blocking");
            }
            kinds.push(k);
            // SAFETY: each fd comes from a socket we own and give up here.
            gsocks.push(unsafe { UdpSocket::from_raw_fd(s.into_raw_fd()) });
        }
        let gsocks: Rc<Vec<UdpSocket>> = Rc::new(gsocks);
        let (nudge, nudged) = local_channel::new_bounded(1);
        let shared = Rc::new(Shared {
            pump: RefCell::new(pump),
            sink: RefCell::new(Sockets {
                fds: gsocks
                    .iter()
                    .zip(&kinds)
                    .map(|(s, k)| (s.as_raw_fd(), *k))
                    .collect(),
                tx: kinds.iter().map(|_| SendBatch::new(BATCH)).collect(),
                to: Vec::new(),
                failed: Flushed::default(),
            }),
            sleeping_until: Cell::new(None),
            nudge,
        });
        let mut tasks = Vec::new();
        // Receivers first: a sender's connect() waits for its peer's
        // receiver, so connecting senders before every worker has spawned
        // its receivers would deadlock the mesh.
        for rx in end.from {
            let shared = Rc::clone(&shared);
            tasks.push(glommio::spawn_local(async move {
                let rx = rx.connect().await;
                while let Some(h) = rx.recv().await {
                    shared.event(|p, s, now| p.handover(now, &h, s));
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
        shared.sink.borrow_mut().to = to;
        tracing::debug!(worker = id, "uring mesh connected");
        for (i, kind) in kinds.iter().copied().enumerate() {
            let (gsocks, shared) = (Rc::clone(&gsocks), Rc::clone(&shared));
            tasks.push(glommio::spawn_local(async move {
                let mut buf = vec![0u8; sipfront_io::batch::MAX_DGRAM];
                loop {
                    let (n, src) = match gsocks[i].recv_from(&mut buf).await {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "recv_from");
                            glommio::yield_if_needed().await;
                            continue;
                        }
                    };
                    let d = Datagram {
                        data: &buf[..n],
                        src,
                        socket: kind,
                    };
                    shared.event(|p, s, now| p.datagram(now, d, s));
                }
            }));
        }
        // The timer task: sleeps until the next deadline (or a nudge),
        // runs the timers, publishes the counters.
        while !shutdown.load(Ordering::Relaxed) {
            let now = Instant::now();
            let next = shared.pump.borrow().next_wake();
            let sleep = next.map_or(SHUTDOWN_POLL, |t| {
                t.saturating_duration_since(now).min(SHUTDOWN_POLL)
            });
            shared.sleeping_until.set(Some(now + sleep));
            futures_lite::future::or(
                async {
                    glommio::timer::sleep(sleep).await;
                },
                async {
                    nudged.recv().await;
                },
            )
            .await;
            shared.sleeping_until.set(None);
            shared.event(|p, _, now| p.publish(now));
        }
        for t in tasks {
            t.cancel().await;
        }
        let mut pump = shared.pump.borrow_mut();
        pump.publish_now(Instant::now());
        Ok(pump.engine().stats().clone())
    })
}
