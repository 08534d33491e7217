//! The pump: the one piece of glue that runs an [`Engine`] over I/O. Both
//! drivers, the benches, the fuzz target and the tests use it, so "feed the
//! engine, drain every transmit, hand over or send, count what failed,
//! publish the counters, sleep until the next deadline" is written once.
//!
//! A driver owns the sockets and gives the pump a [`Sink`]: where a
//! datagram goes out (a batch per socket role), where a hand-over goes (the
//! cross-core mesh), and a `flush` that sends what is batched and says what
//! the kernel refused. After every event the pump drains the engine
//! completely, so whatever one datagram produces (a CANCEL's 200 and the
//! CANCEL sipfront sends on) leaves in the same wake-up.

use super::mesh::Handover;
use crate::proxy::stats::Stats;
use crate::proxy::{Datagram, Engine, Socket, Transmit};
use sipfront_io::batch::{Flushed, SendError};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// NAT flows a worker lists for the admin API at most.
pub const NAT_FLOWS_PUBLISHED: usize = 1024;

/// How often a busy worker publishes its counters for `/metrics`, `/stats`
/// and the drain logic (a copy of `Stats`, a few KiB). A worker that went
/// quiet publishes once more this long after its last event, then sleeps.
pub const STATS_PUBLISH_PERIOD: Duration = Duration::from_millis(250);

/// Where the pump's output goes: the driver's sockets and mesh.
pub trait Sink {
    /// Queues `buf` for `to` from the socket with role `socket`. The sink
    /// may swap `buf` for a spare of its own (nothing is copied). A role
    /// the worker has no socket for is counted as a failure at `flush`.
    fn send(&mut self, socket: Socket, to: SocketAddr, buf: &mut Vec<u8>);
    /// Passes `h` to worker `worker`; false when its queue is full.
    fn hand_over(&mut self, worker: u8, h: Handover) -> bool;
    /// Sends everything queued; what the kernel refused, by reason.
    fn flush(&mut self) -> Flushed;
}

/// Adds the failures of `b` into `a`.
pub fn add_flushed(a: &mut Flushed, b: &Flushed) {
    a.sent += b.sent;
    for (x, y) in a.failed.iter_mut().zip(b.failed.iter()) {
        *x += y;
    }
}

/// Counts one failure of kind `e` in `f`.
pub fn count_failure(f: &mut Flushed, e: SendError) {
    f.failed[e as usize] += 1;
}

/// An engine with its glue.
pub struct Pump {
    engine: Engine,
    buf: Vec<u8>,
    /// Where the counters are published for other threads.
    stats_out: Option<Arc<Mutex<Stats>>>,
    last_publish: Instant,
    /// Something happened since the last publish.
    dirty: bool,
}

impl Pump {
    pub fn new(engine: Engine) -> Pump {
        Pump {
            engine,
            buf: Vec::with_capacity(4096),
            stats_out: None,
            last_publish: Instant::now(),
            dirty: false,
        }
    }

    /// A pump that publishes the engine's counters into `out`.
    pub fn publishing(engine: Engine, out: Arc<Mutex<Stats>>) -> Pump {
        Pump {
            stats_out: Some(out),
            ..Pump::new(engine)
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    pub fn into_engine(self) -> Engine {
        self.engine
    }

    /// A datagram received on the socket with role `d.socket`.
    pub fn datagram(&mut self, now: Instant, d: Datagram<'_>, sink: &mut impl Sink) {
        self.engine.handle(now, d);
        self.drain(sink);
    }

    /// A datagram another worker handed over.
    pub fn handover(&mut self, now: Instant, h: &Handover, sink: &mut impl Sink) {
        let d = Datagram {
            data: &h.data,
            src: h.src,
            socket: h.socket,
        };
        self.engine.handle_handover(now, d);
        self.drain(sink);
    }

    /// Runs the engine's timers when their deadline has come.
    pub fn timeout(&mut self, now: Instant, sink: &mut impl Sink) {
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
            self.drain(sink);
        }
    }

    /// Takes every transmit out of the engine into the sink.
    fn drain(&mut self, sink: &mut impl Sink) {
        self.dirty = true;
        while let Some(t) = self.engine.poll_transmit(&mut self.buf) {
            match t {
                Transmit::Send { socket, to } => sink.send(socket, to, &mut self.buf),
                Transmit::Handover {
                    worker,
                    src,
                    socket,
                } => {
                    let h = Handover {
                        data: std::mem::take(&mut self.buf),
                        src,
                        socket,
                    };
                    if !sink.hand_over(worker, h) {
                        self.engine.handover_failed();
                    }
                }
            }
        }
    }

    /// Sends what the sink holds and counts what the kernel refused.
    pub fn flush(&mut self, sink: &mut impl Sink) {
        let f = sink.flush();
        for (e, n) in f.failures() {
            self.engine.send_failed(e, u64::from(n));
        }
    }

    /// When the driver must call [`Pump::timeout`] or [`Pump::publish`]
    /// next: the engine's earliest timer, or the publishing of counters
    /// that changed. `None`: sleep until a datagram comes.
    pub fn next_wake(&self) -> Option<Instant> {
        let publish = (self.dirty && self.stats_out.is_some())
            .then(|| self.last_publish + STATS_PUBLISH_PERIOD);
        match (self.engine.poll_timeout(), publish) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Publishes the counters when they changed and the period has passed.
    pub fn publish(&mut self, now: Instant) {
        if !self.dirty || now < self.last_publish + STATS_PUBLISH_PERIOD {
            return;
        }
        self.publish_now(now);
    }

    /// Publishes the counters now.
    pub fn publish_now(&mut self, now: Instant) {
        self.dirty = false;
        self.last_publish = now;
        if let Some(out) = &self.stats_out {
            if let Ok(mut s) = out.lock() {
                s.clone_from(self.engine.stats());
                s.nat_flows = self.engine.nat_flows(NAT_FLOWS_PUBLISHED);
            }
        }
    }
}

/// One datagram a [`Capture`] sink took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub socket: Socket,
    pub to: SocketAddr,
    pub data: Vec<u8>,
}

/// A sink in memory, for tests, benches and the fuzz target: it keeps what
/// would have been sent and handed over, and can be told to fail sends.
#[derive(Debug, Default)]
pub struct Capture {
    pub sent: Vec<Sent>,
    pub handed_over: Vec<(u8, Handover)>,
    /// Datagrams queued and not yet flushed.
    pub queued: usize,
    /// Every send fails with this at flush, when set.
    pub fail_with: Option<SendError>,
    /// Hand-overs are refused (a full mesh queue), when set.
    pub mesh_full: bool,
    failed: Flushed,
    /// Buffers traded back to the pump, as a driver's batch slots are.
    spare: Vec<Vec<u8>>,
}

impl Capture {
    /// Takes what was sent so far.
    pub fn take(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.sent)
    }

    /// Forgets what was sent, keeping the buffers for reuse (a bench's
    /// sink allocates no more than a driver's).
    pub fn clear(&mut self) {
        for s in self.sent.drain(..) {
            self.spare.push(s.data);
        }
    }
}

impl Sink for Capture {
    fn send(&mut self, socket: Socket, to: SocketAddr, buf: &mut Vec<u8>) {
        match self.fail_with {
            Some(e) => count_failure(&mut self.failed, e),
            None => {
                self.queued += 1;
                let spare = self.spare.pop().unwrap_or_default();
                self.sent.push(Sent {
                    socket,
                    to,
                    data: std::mem::replace(buf, spare),
                });
            }
        }
    }

    fn hand_over(&mut self, worker: u8, h: Handover) -> bool {
        if self.mesh_full {
            return false;
        }
        self.handed_over.push((worker, h));
        true
    }

    fn flush(&mut self) -> Flushed {
        let mut f = std::mem::take(&mut self.failed);
        f.sent = std::mem::take(&mut self.queued);
        f
    }
}
