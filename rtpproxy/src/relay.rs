//! The media workers: one thread per worker, each owning its streams and
//! their sockets, an epoll instance, and pre-allocated recvmmsg/sendmmsg
//! batches. The control thread talks to a worker only through a bounded
//! channel plus an eventfd wake-up; nothing on the packet path is shared
//! except single-writer statistics counters (see [`crate::stats`]).
//!
//! Packet path per readable socket: one `recvmmsg` of up to [`BATCH`]
//! datagrams into fixed buffers; for each, latch check and statistics;
//! then one `sendmmsg` from the other leg's socket. The batches are
//! `sipfront_io`'s: a relayed datagram's receive buffer trades places with a
//! send slot ([`RecvBatch::take_into`]), so nothing is copied or allocated.
//! The socket is found from the epoll token (slot << 2 | leg << 1 | rtcp):
//! no hashing.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use sipfront_io::{RecvBatch, SendBatch};

use crate::session::{LatchMode, PeerUpdate, StreamId};
use crate::stats::{bump, LegStats, RtpSeen, RtpTracker, StreamStats, WorkerCounters};

/// Datagrams per recvmmsg/sendmmsg call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram; longer datagrams are dropped (truncated).
pub const BUF_LEN: usize = 2048;
/// Control messages queued per worker before the control thread waits.
pub const CHANNEL_DEPTH: usize = 4096;

const EVENTFD_TOKEN: u64 = u64::MAX;

/// The process clock epoch shared by workers and the control thread.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since the process clock epoch (the `now` of the control core).
pub fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

fn now_us() -> u64 {
    epoch().elapsed().as_micros() as u64
}

/// The two sockets of one leg: RTP and RTCP (RTP port + 1).
#[derive(Debug)]
pub struct LegSockets {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

/// What the control thread asks of a worker.
#[derive(Debug)]
pub enum WorkerMsg {
    Open {
        stream: StreamId,
        legs: Box<[LegSockets; 2]>,
        stats: Arc<StreamStats>,
    },
    Peer {
        stream: StreamId,
        leg: usize,
        peer: PeerUpdate,
    },
    Close {
        stream: StreamId,
    },
    Shutdown,
}

/// The control thread's handle on one worker.
#[derive(Debug)]
pub struct WorkerHandle {
    tx: SyncSender<WorkerMsg>,
    wake: Arc<OwnedFd>,
    pub counters: Arc<WorkerCounters>,
    join: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Queues a message and wakes the worker; waits if the queue is full.
    pub fn send(&self, msg: WorkerMsg) {
        let msg = match self.tx.try_send(msg) {
            Ok(()) => None,
            Err(TrySendError::Full(m)) => Some(m),
            Err(TrySendError::Disconnected(_)) => return,
        };
        wake(self.wake.as_raw_fd());
        if let Some(m) = msg {
            let _ = self.tx.send(m);
            wake(self.wake.as_raw_fd());
        }
    }

    /// Asks the worker to stop and waits for it.
    pub fn stop(&mut self) {
        self.send(WorkerMsg::Shutdown);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn wake(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writing 8 bytes from a valid u64 to an eventfd.
    unsafe {
        libc::write(fd, (&one as *const u64).cast(), 8);
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Starts worker `index`, pinned to CPU `cpu` when given.
pub fn spawn(index: usize, cpu: Option<usize>) -> io::Result<WorkerHandle> {
    // SAFETY: plain syscalls; the returned fds are owned right away.
    let efd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(efd) });
    let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    epoll_add(ep.as_raw_fd(), wake.as_raw_fd(), EVENTFD_TOKEN)?;
    let (tx, rx) = sync_channel(CHANNEL_DEPTH);
    let counters = Arc::new(WorkerCounters::default());
    let c2 = counters.clone();
    let w2 = wake.clone();
    let join = std::thread::Builder::new()
        .name(format!("rtp-worker-{index}"))
        .spawn(move || {
            if let Some(cpu) = cpu {
                sipfront_io::cpu::pin_to_cpu(cpu);
            }
            let mut w = Worker::new(ep, w2, rx, c2);
            w.run();
        })?;
    Ok(WorkerHandle {
        tx,
        wake,
        counters,
        join: Some(join),
    })
}

fn epoll_add(ep: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: valid epoll fd and event pointer.
    cvt(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(|_| ())
}

fn epoll_del(ep: RawFd, fd: RawFd) {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: valid epoll fd and event pointer.
    unsafe {
        libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, &mut ev);
    }
}

/// One leg's relay state: the party it faces, where to send, how to learn.
#[derive(Debug)]
pub struct LegState {
    /// Current destinations (signalled, then learned).
    pub rtp_peer: Option<SocketAddr>,
    pub rtcp_peer: Option<SocketAddr>,
    /// The signalled RTP address (strict mode compares its IP).
    pub signalled: Option<SocketAddr>,
    pub mode: LatchMode,
    /// The next accepted packet latches (re-armed by every update).
    pub rtp_armed: bool,
    pub rtcp_armed: bool,
}

impl Default for LegState {
    fn default() -> Self {
        LegState {
            rtp_peer: None,
            rtcp_peer: None,
            signalled: None,
            mode: LatchMode::Auto,
            rtp_armed: true,
            rtcp_armed: true,
        }
    }
}

/// Outcome of [`LegState::accept`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    Yes,
    /// Not from the latched (or, strict, the signalled) source.
    WrongSource,
}

impl LegState {
    /// Applies a signalled update (see the latching rules in [`crate::session`]).
    pub fn update(&mut self, p: &PeerUpdate) {
        self.mode = p.mode;
        self.signalled = p.rtp;
        if p.reset || self.rtp_peer.is_none() || p.mode == LatchMode::Asymmetric {
            self.rtp_peer = p.rtp;
            self.rtcp_peer = p.rtcp;
        }
        self.rtp_armed = true;
        self.rtcp_armed = true;
    }

    /// Decides whether a packet from `src` (received on this leg's RTP or
    /// RTCP socket) is accepted, latching when armed.
    #[inline]
    pub fn accept(&mut self, src: SocketAddr, rtcp: bool) -> Accept {
        let (peer, armed) = if rtcp {
            (&mut self.rtcp_peer, &mut self.rtcp_armed)
        } else {
            (&mut self.rtp_peer, &mut self.rtp_armed)
        };
        match self.mode {
            LatchMode::Asymmetric => Accept::Yes,
            LatchMode::Handover => {
                *peer = Some(src);
                *armed = false;
                Accept::Yes
            }
            LatchMode::Auto | LatchMode::Strict => {
                if *peer == Some(src) {
                    *armed = false;
                    return Accept::Yes;
                }
                let allowed = match (self.mode, self.signalled) {
                    (LatchMode::Strict, Some(s)) => s.ip() == src.ip(),
                    _ => true,
                };
                if *armed && allowed {
                    *peer = Some(src);
                    *armed = false;
                    if !rtcp && self.rtcp_armed {
                        // Until RTCP latches on its own, guess RTP port + 1.
                        self.rtcp_peer =
                            Some(SocketAddr::new(src.ip(), src.port().wrapping_add(1)));
                    }
                    Accept::Yes
                } else {
                    Accept::WrongSource
                }
            }
        }
    }
}

struct Leg {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    state: LegState,
    tracker: RtpTracker,
}

struct WStream {
    id: StreamId,
    legs: [Leg; 2],
    stats: Arc<StreamStats>,
}

struct Worker {
    ep: OwnedFd,
    wake: Arc<OwnedFd>,
    rx: Receiver<WorkerMsg>,
    counters: Arc<WorkerCounters>,
    slots: Vec<Option<WStream>>,
    free_slots: Vec<usize>,
    by_id: HashMap<StreamId, usize>,
    recv_batch: RecvBatch,
    send_batch: SendBatch,
}

impl Worker {
    fn new(
        ep: OwnedFd,
        wake: Arc<OwnedFd>,
        rx: Receiver<WorkerMsg>,
        counters: Arc<WorkerCounters>,
    ) -> Worker {
        Worker {
            ep,
            wake,
            rx,
            counters,
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_id: HashMap::new(),
            recv_batch: RecvBatch::new(BATCH, BUF_LEN),
            // As large as a receive buffer, so received datagrams trade
            // places with send slots instead of being copied.
            send_batch: SendBatch::with_buffer_capacity(BATCH, BUF_LEN),
        }
    }

    fn run(&mut self) {
        // SAFETY: epoll_event is plain data.
        let mut events: Vec<libc::epoll_event> = vec![unsafe { std::mem::zeroed() }; 256];
        loop {
            // SAFETY: the buffer holds `events.len()` entries.
            let n = unsafe {
                libc::epoll_wait(
                    self.ep.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as i32,
                    1000,
                )
            };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!("epoll_wait failed: {}", io::Error::last_os_error());
                return;
            }
            let ready = events.get(..n as usize).unwrap_or(&[]);
            // Commands first: a peer update signalled before a packet was
            // sent must apply to that packet (re-INVITE then media).
            if ready.iter().any(|ev| ev.u64 == EVENTFD_TOKEN) && !self.drain_commands() {
                self.close_all();
                return;
            }
            for ev in ready {
                let token = ev.u64;
                if token != EVENTFD_TOKEN {
                    self.readable(token);
                }
            }
        }
    }

    /// Applies queued messages; false on shutdown.
    fn drain_commands(&mut self) -> bool {
        let mut v: u64 = 0;
        // SAFETY: reading 8 bytes into a u64 from our eventfd.
        unsafe {
            libc::read(self.wake.as_raw_fd(), (&mut v as *mut u64).cast(), 8);
        }
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                WorkerMsg::Open {
                    stream,
                    legs,
                    stats,
                } => self.open(stream, *legs, stats),
                WorkerMsg::Peer { stream, leg, peer } => {
                    if let Some(s) = self
                        .by_id
                        .get(&stream)
                        .and_then(|i| self.slots.get_mut(*i))
                        .and_then(Option::as_mut)
                    {
                        if let Some(l) = s.legs.get_mut(leg) {
                            l.state.update(&peer);
                        }
                    }
                }
                WorkerMsg::Close { stream } => self.close(stream),
                WorkerMsg::Shutdown => return false,
            }
        }
        true
    }

    fn open(&mut self, id: StreamId, legs: [LegSockets; 2], stats: Arc<StreamStats>) {
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let [a, b] = legs;
        let mk = |s: LegSockets| Leg {
            rtp: s.rtp,
            rtcp: s.rtcp,
            state: LegState::default(),
            tracker: RtpTracker::default(),
        };
        let st = WStream {
            id,
            legs: [mk(a), mk(b)],
            stats,
        };
        let ep = self.ep.as_raw_fd();
        for (l, leg) in st.legs.iter().enumerate() {
            let base = (slot as u64) << 2 | (l as u64) << 1;
            for (fd, t) in [
                (leg.rtp.as_raw_fd(), base),
                (leg.rtcp.as_raw_fd(), base | 1),
            ] {
                if let Err(e) = epoll_add(ep, fd, t) {
                    tracing::error!("epoll_ctl add failed: {e}");
                }
            }
        }
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Some(st);
        }
        self.by_id.insert(id, slot);
    }

    fn close(&mut self, id: StreamId) {
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        if let Some(st) = self.slots.get_mut(slot).and_then(Option::take) {
            for leg in &st.legs {
                epoll_del(self.ep.as_raw_fd(), leg.rtp.as_raw_fd());
                epoll_del(self.ep.as_raw_fd(), leg.rtcp.as_raw_fd());
            }
            debug_assert_eq!(st.id, id);
            self.free_slots.push(slot);
        }
    }

    fn close_all(&mut self) {
        let ids: Vec<StreamId> = self.by_id.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
    }

    /// One batch from the socket behind `token`.
    fn readable(&mut self, token: u64) {
        let slot = (token >> 2) as usize;
        let l = ((token >> 1) & 1) as usize;
        let rtcp = token & 1 == 1;
        let Some(Some(st)) = self.slots.get_mut(slot) else {
            bump(&self.counters.dropped_unknown_socket, 1);
            return;
        };
        let [leg0, leg1] = &mut st.legs;
        let (from, to) = if l == 0 { (leg0, leg1) } else { (leg1, leg0) };
        let fd = if rtcp {
            from.rtcp.as_raw_fd()
        } else {
            from.rtp.as_raw_fd()
        };
        let (rx, tx) = (&mut self.recv_batch, &mut self.send_batch);
        let n = match rx.recv(fd) {
            Ok(n) if n > 0 => n,
            _ => return,
        };
        let now = now_us();
        let now_ms = (now / 1000).max(1);
        let stats: &LegStats = &st.stats.legs[l];
        let dest = if rtcp {
            to.state.rtcp_peer
        } else {
            to.state.rtp_peer
        };
        let (mut bytes, mut wrong, mut trunc, mut out) = (0u64, 0u64, 0u64, 0usize);
        for i in 0..n {
            if rx.truncated(i) {
                trunc += 1;
                continue;
            }
            let (pkt, src) = rx.datagram(i);
            bytes += pkt.len() as u64;
            let Some(src) = src else {
                wrong += 1;
                continue;
            };
            if from.state.accept(src, rtcp) == Accept::WrongSource {
                wrong += 1;
                continue;
            }
            if !rtcp && from.tracker.on_packet(pkt, now, stats) == RtpSeen::Rtcp {
                bump(&stats.rtcp_packets, 1);
            }
            if let Some(d) = dest {
                rx.take_into(i, tx.slot());
                tx.commit(d);
                out += 1;
            }
        }
        let accepted = n as u64 - wrong - trunc;
        let no_dest = if dest.is_none() { accepted } else { 0 };
        // Statistics before the send, so a query that follows a relayed
        // packet sees it; send failures are taken back below.
        if rtcp {
            bump(&stats.rtcp_packets, n as u64);
            bump(&stats.rtcp_bytes, bytes);
        } else {
            bump(&stats.packets, n as u64);
            bump(&stats.bytes, bytes);
        }
        stats.last_packet_ms.store(now_ms, Relaxed);
        bump(&stats.relayed, out as u64);
        bump(&stats.dropped, wrong + trunc + no_dest);
        let c = &self.counters;
        bump(&c.received, n as u64);
        bump(&c.relayed, out as u64);
        if wrong > 0 {
            bump(&c.dropped_wrong_source, wrong);
        }
        if trunc > 0 {
            bump(&c.dropped_truncated, trunc);
        }
        if no_dest > 0 {
            bump(&c.dropped_no_destination, no_dest);
        }
        if tx.is_empty() {
            return;
        }
        let out_fd = if rtcp {
            to.rtcp.as_raw_fd()
        } else {
            to.rtp.as_raw_fd()
        };
        let send_err = tx.flush(out_fd).failed_total() as u64;
        if send_err > 0 {
            take_back(&stats.relayed, send_err);
            bump(&stats.dropped, send_err);
            take_back(&self.counters.relayed, send_err);
            bump(&self.counters.dropped_send_error, send_err);
        }
    }
}

/// Subtracts from a single-writer counter (packets counted as relayed
/// before a send that failed).
fn take_back(c: &std::sync::atomic::AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_sub(n), Relaxed);
}

/// Binds a leg's RTP and RTCP sockets (non-blocking) on `ip`.
pub fn bind_leg(ip: IpAddr, port: u16) -> io::Result<LegSockets> {
    let rtp = UdpSocket::bind(SocketAddr::new(ip, port))?;
    let rtcp = UdpSocket::bind(SocketAddr::new(ip, port.wrapping_add(1)))?;
    rtp.set_nonblocking(true)?;
    rtcp.set_nonblocking(true)?;
    Ok(LegSockets { rtp, rtcp })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn update(rtp: &str, mode: LatchMode, reset: bool) -> PeerUpdate {
        let a = sa(rtp);
        PeerUpdate {
            rtp: Some(a),
            rtcp: Some(SocketAddr::new(a.ip(), a.port() + 1)),
            mode,
            reset,
        }
    }

    // Reference §1.3 latching (symmetric): the first packet's source replaces
    // the signalled address; others are then dropped.
    #[test]
    fn auto_latches_first_source() {
        let mut l = LegState::default();
        l.update(&update("10.0.0.1:4000", LatchMode::Auto, true));
        assert_eq!(l.rtp_peer, Some(sa("10.0.0.1:4000")));
        assert_eq!(l.accept(sa("203.0.113.5:6000"), false), Accept::Yes);
        assert_eq!(l.rtp_peer, Some(sa("203.0.113.5:6000")));
        assert_eq!(l.rtcp_peer, Some(sa("203.0.113.5:6001")));
        assert_eq!(l.accept(sa("198.51.100.1:1"), false), Accept::WrongSource);
        assert_eq!(l.accept(sa("203.0.113.5:6000"), false), Accept::Yes);
        // RTCP latches on its own.
        assert_eq!(l.accept(sa("203.0.113.5:7777"), true), Accept::Yes);
        assert_eq!(l.rtcp_peer, Some(sa("203.0.113.5:7777")));
    }

    // Re-INVITE rule: an update re-arms; the same address keeps the learned
    // destination until the next packet; a new address is used at once.
    #[test]
    fn update_rearms_latch() {
        let mut l = LegState::default();
        l.update(&update("10.0.0.1:4000", LatchMode::Auto, true));
        l.accept(sa("203.0.113.5:6000"), false);
        l.update(&update("10.0.0.1:4000", LatchMode::Auto, false));
        assert_eq!(
            l.rtp_peer,
            Some(sa("203.0.113.5:6000")),
            "refresh keeps learned"
        );
        assert_eq!(
            l.accept(sa("203.0.113.9:6100"), false),
            Accept::Yes,
            "moved party"
        );
        assert_eq!(l.rtp_peer, Some(sa("203.0.113.9:6100")));
        l.update(&update("10.0.0.2:5000", LatchMode::Auto, true));
        assert_eq!(l.rtp_peer, Some(sa("10.0.0.2:5000")));
    }

    // Strict: only the signalled IP, any port.
    #[test]
    fn strict_accepts_signalled_ip_only() {
        let mut l = LegState::default();
        l.update(&update("10.0.0.1:4000", LatchMode::Strict, true));
        assert_eq!(l.accept(sa("10.0.0.2:4000"), false), Accept::WrongSource);
        assert_eq!(l.accept(sa("10.0.0.1:4100"), false), Accept::Yes);
        assert_eq!(l.rtp_peer, Some(sa("10.0.0.1:4100")));
    }

    // Asymmetric (rtpproxy A): never latch; handover: always the newest source.
    #[test]
    fn asymmetric_and_handover() {
        let mut l = LegState::default();
        l.update(&update("10.0.0.1:4000", LatchMode::Asymmetric, true));
        assert_eq!(l.accept(sa("10.9.9.9:1"), false), Accept::Yes);
        assert_eq!(l.rtp_peer, Some(sa("10.0.0.1:4000")));
        l.update(&update("10.0.0.1:4000", LatchMode::Handover, false));
        l.accept(sa("10.9.9.9:1"), false);
        l.accept(sa("10.8.8.8:2"), false);
        assert_eq!(l.rtp_peer, Some(sa("10.8.8.8:2")));
    }

    // A worker relays between two legs, latching the caller's source.
    #[test]
    fn worker_relays_packets() {
        let mut w = spawn(0, None).unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // Tests may use 50000-50999: find two free RTP/RTCP pairs there.
        let mut legs = (50000..50996)
            .step_by(4)
            .filter_map(|p| Some((bind_leg(ip, p).ok()?, bind_leg(ip, p + 2).ok()?)));
        let (a, b) = legs.next().unwrap();
        let pa = a.rtp.local_addr().unwrap();
        let pb = b.rtp.local_addr().unwrap();
        let stats = Arc::new(StreamStats::default());
        w.send(WorkerMsg::Open {
            stream: 1,
            legs: Box::new([a, b]),
            stats: stats.clone(),
        });
        let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
        let callee = UdpSocket::bind("127.0.0.1:0").unwrap();
        caller
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        callee
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        // The callee is signalled on leg 1; the caller will be latched on leg 0.
        w.send(WorkerMsg::Peer {
            stream: 1,
            leg: 1,
            peer: PeerUpdate {
                rtp: Some(callee.local_addr().unwrap()),
                rtcp: None,
                mode: LatchMode::Auto,
                reset: true,
            },
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        let pkt = rtp_rs::RtpPacketBuilder::new()
            .payload_type(0)
            .sequence(7.into())
            .ssrc(1)
            .payload(&[1u8; 160])
            .build()
            .unwrap();
        caller.send_to(&pkt, pa).unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = callee.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &pkt[..]);
        assert_eq!(from, pb);
        callee.send_to(b"back", pb).unwrap();
        let (n, from) = caller.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"back"[..], pa));
        assert_eq!(stats.legs[0].packets.load(Relaxed), 1);
        assert_eq!(stats.legs[0].expected.load(Relaxed), 1);
        assert_eq!(w.counters.relayed.load(Relaxed), 2);
        w.send(WorkerMsg::Close { stream: 1 });
        w.stop();
    }
}
