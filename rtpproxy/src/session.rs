//! The session table, sans I/O: sessions keyed by Call-ID and tags, their
//! media streams, port allocation per worker, timeouts. Both control
//! protocols drive it; it returns [`Action`]s for the media workers.
//!
//! # Parties, legs and ports
//!
//! A session has two parties: party 0 is the one whose tag created it (the
//! From tag of the first U/offer), party 1 the other. Each media stream has
//! two legs; leg `p` *faces* party `p`: party `p` sends to leg `p`'s local
//! port, and the relay sends to party `p` from that port. A packet received
//! on leg `p` leaves through leg `1 - p`.
//!
//! An update names the party whose media address it carries (the *owner*):
//! for U/offer the party of `from_tag`, for L/answer the other party
//! (reference §1.3: "for non-UPDATE ops `i = NOT(i)`"). The address goes to
//! the owner's leg; the reply is the port of the other leg, which goes into
//! the SDP sent to the other party.
//!
//! # Latching and re-latching
//!
//! Each leg starts sending to the signalled address and learns the real one
//! from the first packet it accepts (`auto`: any source; `strict`: only
//! the signalled IP, any port). Every update carrying the owner's address
//! re-arms latching on the owner's leg: the next accepted packet latches
//! again. When the signalled address is unchanged the leg keeps sending to
//! the address it had learned until then (no gap on a session refresh);
//! when it changed, the new address is used at once. So a party that moved
//! (new SDP address, or same SDP but a new NAT binding) is learned again on
//! its first packet after the re-INVITE.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use smallvec::SmallVec;

use crate::stats::StreamStats;

/// A stream's id, unique for the process lifetime.
pub type StreamId = u64;

/// How a leg learns its peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatchMode {
    /// Latch to the first packet's source, from anywhere (rtpproxy symmetric).
    Auto,
    /// Accept only packets from the signalled IP (any port); latch the port.
    Strict,
    /// Never latch; send to the signalled address (rtpproxy `A`, ng `asymmetric`).
    Asymmetric,
    /// Re-latch to every new source (ng `media handover`).
    Handover,
}

impl std::str::FromStr for LatchMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(LatchMode::Auto),
            "strict" => Ok(LatchMode::Strict),
            _ => Err(format!("latch mode must be auto or strict, not {s:?}")),
        }
    }
}

/// Table limits and timing.
#[derive(Clone, Debug)]
pub struct Config {
    pub workers: usize,
    /// Inclusive media port range; RTP ports are the even ones, RTCP = RTP + 1.
    pub port_low: u16,
    pub port_high: u16,
    pub max_sessions: usize,
    pub session_timeout_ms: u64,
    pub offer_timeout_ms: u64,
    pub latch: LatchMode,
    /// Address written into SDP and U/L replies.
    pub advertise: IpAddr,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 1,
            port_low: 30000,
            port_high: 39999,
            max_sessions: 10000,
            session_timeout_ms: 60_000,
            offer_timeout_ms: 30_000,
            latch: LatchMode::Auto,
            advertise: IpAddr::from([127, 0, 0, 1]),
        }
    }
}

/// Where a leg sends and how it learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerUpdate {
    pub rtp: Option<SocketAddr>,
    pub rtcp: Option<SocketAddr>,
    pub mode: LatchMode,
    /// The signalled address changed: send there now (drop the learned one).
    pub reset: bool,
}

/// What the media workers must do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Start relaying a stream: `ports[p]` is leg `p`'s RTP port (sockets
    /// for it and port + 1 were bound by the [`PortBinder`]).
    Open {
        worker: usize,
        stream: StreamId,
        ports: [u16; 2],
        stats: Arc<StreamStats>,
    },
    /// Set leg `leg`'s signalled peer and re-arm its latch.
    Peer {
        worker: usize,
        stream: StreamId,
        leg: usize,
        peer: PeerUpdate,
    },
    /// Stop relaying and close the stream's sockets.
    Close {
        worker: usize,
        stream: StreamId,
        ports: [u16; 2],
    },
}

/// Binds the sockets of an RTP port pair (the I/O side); tests fake it.
pub trait PortBinder {
    /// Binds RTP `port` and RTCP `port + 1` for `worker`; false if either
    /// is unusable (in use by another process).
    fn bind(&mut self, worker: usize, port: u16) -> bool;
    /// Releases a pair bound by [`PortBinder::bind`] that will not be opened.
    fn release(&mut self, worker: usize, port: u16);
}

/// A binder that always succeeds and holds nothing (tests, dry runs).
#[derive(Debug, Default)]
pub struct NoBind;

impl PortBinder for NoBind {
    fn bind(&mut self, _: usize, _: u16) -> bool {
        true
    }
    fn release(&mut self, _: usize, _: u16) {}
}

/// One media stream (one `m=` line, or one `;N`).
#[derive(Debug)]
pub struct Stream {
    /// 1-based media number.
    pub media: u32,
    pub id: StreamId,
    pub worker: usize,
    /// `ports[p]`: RTP port of the leg facing party `p`.
    pub ports: [u16; 2],
    /// Signalled RTP address of each party.
    pub signalled: [Option<SocketAddr>; 2],
    pub stats: Arc<StreamStats>,
}

/// One call (Call-ID + tags).
#[derive(Debug)]
pub struct Session {
    pub call_id: Box<[u8]>,
    /// `tags[0]` created the session; `tags[1]` is learned from the first
    /// command that names it.
    pub tags: [Option<Box<[u8]>>; 2],
    pub streams: SmallVec<[Stream; 2]>,
    pub created_ms: u64,
    pub last_signal_ms: u64,
    /// An L/answer was seen (switches from the offer timeout to the media timeout).
    pub answered: bool,
    strong: bool,
    weak: [bool; 2],
}

impl Session {
    /// Last media packet or signal, ms.
    pub fn last_activity(&self) -> u64 {
        self.streams
            .iter()
            .map(|s| s.stats.last_packet())
            .fold(self.last_signal_ms, u64::max)
    }

    pub fn stream(&self, media: u32) -> Option<&Stream> {
        self.streams.iter().find(|s| s.media == media)
    }

    fn party_of(&self, tag: &[u8]) -> Option<usize> {
        self.tags.iter().position(|t| t.as_deref() == Some(tag))
    }
}

/// Why an update failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateError {
    /// L/answer for a session that does not exist.
    NotFound,
    /// `max_sessions` reached.
    SessionLimit,
    /// No free port pair on any worker.
    NoPorts,
    /// The table is shutting down.
    ShuttingDown,
}

/// One U/L (or one m= line of an offer/answer).
#[derive(Clone, Copy, Debug)]
pub struct Update<'a> {
    pub call_id: &'a [u8],
    pub from_tag: &'a [u8],
    pub to_tag: Option<&'a [u8]>,
    /// 1-based media number.
    pub media: u32,
    /// L/answer rather than U/offer.
    pub lookup: bool,
    /// The owner's RTP/RTCP address; `None` = hold / unknown.
    pub rtp: Option<SocketAddr>,
    pub rtcp: Option<SocketAddr>,
    /// Overrides the configured latch mode for this leg.
    pub mode: Option<LatchMode>,
    /// rtpproxy `W`.
    pub weak: bool,
}

/// A successful update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Updated {
    /// Port for the other party's SDP.
    pub port: u16,
    /// The owner party (0 or 1).
    pub owner: usize,
    pub created_session: bool,
}

/// Table counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCounters {
    pub sessions_created: u64,
    pub sessions_deleted: u64,
    pub offer_timeouts: u64,
    pub media_timeouts: u64,
    pub rejected_limit: u64,
    pub rejected_ports: u64,
}

/// The table.
#[derive(Debug)]
pub struct SessionTable {
    cfg: Config,
    calls: HashMap<Box<[u8]>, SmallVec<[Session; 1]>>,
    sessions: usize,
    streams: usize,
    free: Vec<VecDeque<u16>>,
    next_stream: StreamId,
    shutting_down: bool,
    pub counters: TableCounters,
}

/// The even RTP ports of `[low, high]` whose RTCP port is also in range,
/// split into `workers` contiguous ranges.
pub fn worker_ranges(low: u16, high: u16, workers: usize) -> Vec<VecDeque<u16>> {
    let first = low.saturating_add(low % 2);
    let ports: Vec<u16> = (u32::from(first)..u32::from(high))
        .step_by(2)
        .filter_map(|p| u16::try_from(p).ok())
        .collect();
    let workers = workers.max(1);
    let per = ports.len() / workers;
    let extra = ports.len() % workers;
    let mut out = Vec::with_capacity(workers);
    let mut at = 0;
    for k in 0..workers {
        let n = per + usize::from(k < extra);
        out.push(
            ports
                .get(at..at + n)
                .unwrap_or(&[])
                .iter()
                .copied()
                .collect(),
        );
        at += n;
    }
    out
}

impl SessionTable {
    pub fn new(cfg: Config) -> SessionTable {
        let free = worker_ranges(cfg.port_low, cfg.port_high, cfg.workers);
        SessionTable {
            cfg,
            calls: HashMap::new(),
            sessions: 0,
            streams: 0,
            free,
            next_stream: 1,
            shutting_down: false,
            counters: TableCounters::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn len(&self) -> usize {
        self.sessions
    }

    pub fn is_empty(&self) -> bool {
        self.sessions == 0
    }

    pub fn stream_count(&self) -> usize {
        self.streams
    }

    /// Free RTP port pairs per worker.
    pub fn free_ports(&self) -> Vec<usize> {
        self.free.iter().map(VecDeque::len).collect()
    }

    /// Refuses new sessions from now on (shutdown).
    pub fn shut_down(&mut self) {
        self.shutting_down = true;
    }

    /// Finds a session by Call-ID and tags; returns it and the party of
    /// `from_tag` (reference §1.4: from_tag matches index 0, or to_tag does).
    fn find_idx(&self, call_id: &[u8], from: &[u8], to: Option<&[u8]>) -> Option<(usize, usize)> {
        let list = self.calls.get(call_id)?;
        for (i, s) in list.iter().enumerate() {
            if let Some(p) = s.party_of(from) {
                return Some((i, p));
            }
        }
        let to = to?;
        for (i, s) in list.iter().enumerate() {
            if let Some(p) = s.party_of(to) {
                return Some((i, 1 - p));
            }
        }
        None
    }

    /// The session and the party of `from_tag`.
    pub fn find(
        &self,
        call_id: &[u8],
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Option<(&Session, usize)> {
        let (i, p) = self.find_idx(call_id, from, to)?;
        Some((self.calls.get(call_id)?.get(i)?, p))
    }

    /// Every session of a Call-ID.
    pub fn sessions_of(&self, call_id: &[u8]) -> &[Session] {
        self.calls.get(call_id).map(|l| l.as_slice()).unwrap_or(&[])
    }

    pub fn call_ids(&self) -> impl Iterator<Item = &[u8]> {
        self.calls.keys().map(|k| &k[..])
    }

    fn alloc_port(&mut self, worker: usize, binder: &mut dyn PortBinder) -> Option<u16> {
        let q = self.free.get_mut(worker)?;
        for _ in 0..q.len().min(64) {
            let p = q.pop_front()?;
            if binder.bind(worker, p) {
                return Some(p);
            }
            // In use elsewhere: retry it later, after the others.
            q.push_back(p);
        }
        None
    }

    fn free_port(&mut self, worker: usize, port: u16) {
        if let Some(q) = self.free.get_mut(worker) {
            q.push_back(port);
        }
    }

    /// Allocates a stream on the worker with the most free ports.
    fn new_stream(&mut self, media: u32, binder: &mut dyn PortBinder) -> Option<(Stream, Action)> {
        let worker = (0..self.free.len()).max_by_key(|k| (self.free[*k].len(), usize::MAX - k))?;
        let a = self.alloc_port(worker, binder)?;
        let Some(b) = self.alloc_port(worker, binder) else {
            binder.release(worker, a);
            self.free_port(worker, a);
            return None;
        };
        let id = self.next_stream;
        self.next_stream += 1;
        let stats = Arc::new(StreamStats::default());
        let open = Action::Open {
            worker,
            stream: id,
            ports: [a, b],
            stats: stats.clone(),
        };
        self.streams += 1;
        Some((
            Stream {
                media,
                id,
                worker,
                ports: [a, b],
                signalled: [None, None],
                stats,
            },
            open,
        ))
    }

    /// U / L / offer / answer for one media stream.
    pub fn update(
        &mut self,
        u: &Update<'_>,
        now: u64,
        binder: &mut dyn PortBinder,
        actions: &mut Vec<Action>,
    ) -> Result<Updated, UpdateError> {
        let found = self.find_idx(u.call_id, u.from_tag, u.to_tag);
        let (idx, fp, created) = match found {
            Some((i, p)) => (i, p, false),
            None if u.lookup => return Err(UpdateError::NotFound),
            None => {
                if self.shutting_down {
                    return Err(UpdateError::ShuttingDown);
                }
                if self.sessions >= self.cfg.max_sessions {
                    self.counters.rejected_limit += 1;
                    return Err(UpdateError::SessionLimit);
                }
                let s = Session {
                    call_id: u.call_id.into(),
                    tags: [Some(u.from_tag.into()), u.to_tag.map(Into::into)],
                    streams: SmallVec::new(),
                    created_ms: now,
                    last_signal_ms: now,
                    answered: false,
                    strong: false,
                    weak: [false; 2],
                };
                let list = self.calls.entry(u.call_id.into()).or_default();
                list.push(s);
                self.sessions += 1;
                self.counters.sessions_created += 1;
                (list.len() - 1, 0, true)
            }
        };
        let owner = if u.lookup { 1 - fp } else { fp };
        let need_stream = self
            .calls
            .get(u.call_id)
            .and_then(|l| l.get(idx))
            .is_some_and(|s| s.stream(u.media).is_none());
        let new = if need_stream {
            match self.new_stream(u.media, binder) {
                Some(x) => Some(x),
                None => {
                    self.counters.rejected_ports += 1;
                    if created {
                        self.remove_at(u.call_id, idx, actions);
                        self.counters.sessions_created -= 1;
                    }
                    return Err(UpdateError::NoPorts);
                }
            }
        } else {
            None
        };
        let default_mode = self.cfg.latch;
        let Some(s) = self.calls.get_mut(u.call_id).and_then(|l| l.get_mut(idx)) else {
            return Err(UpdateError::NotFound);
        };
        // Learn the other tag the first time it is named.
        if let Some(to) = u.to_tag {
            let other = 1 - fp;
            if s.tags[other].is_none() {
                s.tags[other] = Some(to.into());
            }
        }
        if u.weak {
            s.weak[owner] = true;
        } else {
            s.strong = true;
        }
        s.last_signal_ms = now;
        if u.lookup {
            s.answered = true;
        }
        if let Some((stream, open)) = new {
            actions.push(open);
            s.streams.push(stream);
        }
        let Some(st) = s.streams.iter_mut().find(|x| x.media == u.media) else {
            return Err(UpdateError::NotFound);
        };
        let reset = st.signalled[owner] != u.rtp;
        st.signalled[owner] = u.rtp;
        actions.push(Action::Peer {
            worker: st.worker,
            stream: st.id,
            leg: owner,
            peer: PeerUpdate {
                rtp: u.rtp,
                rtcp: u.rtcp.or(u
                    .rtp
                    .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)))),
                mode: u.mode.unwrap_or(default_mode),
                reset,
            },
        });
        Ok(Updated {
            port: st.ports[1 - owner],
            owner,
            created_session: created,
        })
    }

    fn remove_at(&mut self, call_id: &[u8], idx: usize, actions: &mut Vec<Action>) {
        let Some(list) = self.calls.get_mut(call_id) else {
            return;
        };
        if idx >= list.len() {
            return;
        }
        let s = list.remove(idx);
        if list.is_empty() {
            self.calls.remove(call_id);
        }
        self.sessions -= 1;
        self.release(s, actions);
    }

    fn release(&mut self, s: Session, actions: &mut Vec<Action>) {
        for st in s.streams {
            actions.push(Action::Close {
                worker: st.worker,
                stream: st.id,
                ports: st.ports,
            });
            self.free_port(st.worker, st.ports[0]);
            self.free_port(st.worker, st.ports[1]);
            self.streams -= 1;
        }
    }

    /// D (reference §1.2): `weak` clears the weak flag of the from_tag's
    /// side, else the strong flag; the session goes when no flag remains.
    /// Returns false when no session matches.
    pub fn delete(
        &mut self,
        call_id: &[u8],
        from: &[u8],
        to: Option<&[u8]>,
        weak: bool,
        actions: &mut Vec<Action>,
    ) -> bool {
        let Some((idx, fp)) = self.find_idx(call_id, from, to) else {
            return false;
        };
        let gone = match self.calls.get_mut(call_id).and_then(|l| l.get_mut(idx)) {
            Some(s) => {
                if weak {
                    s.weak[fp] = false;
                } else {
                    s.strong = false;
                }
                !s.strong && !s.weak[0] && !s.weak[1]
            }
            None => false,
        };
        if gone {
            self.remove_at(call_id, idx, actions);
            self.counters.sessions_deleted += 1;
        }
        true
    }

    /// Deletes every session (X, shutdown). Returns how many.
    pub fn delete_all(&mut self, actions: &mut Vec<Action>) -> usize {
        let n = self.sessions;
        let calls = std::mem::take(&mut self.calls);
        for (_, list) in calls {
            for s in list {
                self.release(s, actions);
            }
        }
        self.sessions = 0;
        self.counters.sessions_deleted += n as u64;
        n
    }

    /// Seconds left before the session times out (rtpproxy `ttl`).
    pub fn ttl_secs(&self, s: &Session, now: u64) -> u64 {
        let limit = if s.answered {
            self.cfg.session_timeout_ms
        } else {
            self.cfg.offer_timeout_ms
        };
        (s.last_activity() + limit).saturating_sub(now) / 1000
    }

    /// Expires sessions: no answer within the offer timeout, or no media
    /// and no signal within the session timeout. Returns how many went.
    pub fn tick(&mut self, now: u64, actions: &mut Vec<Action>) -> usize {
        let (st, ot) = (self.cfg.session_timeout_ms, self.cfg.offer_timeout_ms);
        let mut expired: Vec<(Box<[u8]>, usize, bool)> = Vec::new();
        for (cid, list) in &self.calls {
            for (i, s) in list.iter().enumerate() {
                let limit = if s.answered { st } else { ot };
                if now.saturating_sub(s.last_activity()) > limit {
                    expired.push((cid.clone(), i, s.answered));
                }
            }
        }
        // Highest index first so earlier indices stay valid.
        expired.sort_by_key(|e| std::cmp::Reverse(e.1));
        let n = expired.len();
        for (cid, i, answered) in expired {
            if answered {
                self.counters.media_timeouts += 1;
            } else {
                self.counters.offer_timeouts += 1;
            }
            self.remove_at(&cid, i, actions);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            workers: 2,
            port_low: 40000,
            port_high: 40019,
            max_sessions: 3,
            ..Config::default()
        }
    }

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    fn up<'a>(
        cid: &'a [u8],
        from: &'a [u8],
        to: Option<&'a [u8]>,
        lookup: bool,
        a: &str,
    ) -> Update<'a> {
        Update {
            call_id: cid,
            from_tag: from,
            to_tag: to,
            media: 1,
            lookup,
            rtp: addr(a),
            rtcp: None,
            mode: None,
            weak: false,
        }
    }

    #[test]
    fn port_ranges_split_per_worker() {
        let r = worker_ranges(30001, 30010, 2);
        assert_eq!(r[0], vec![30002, 30004]);
        assert_eq!(r[1], vec![30006, 30008]);
        assert_eq!(worker_ranges(30000, 30001, 3)[0], vec![30000]);
    }

    // Reference §1.3: U from the caller returns the callee-facing port; L with
    // the callee's address returns the caller-facing port; addresses prefill
    // the leg facing their owner.
    #[test]
    fn offer_answer_ports_and_prefill() {
        let mut t = SessionTable::new(cfg());
        let mut acts = Vec::new();
        let u = t
            .update(
                &up(b"c1", b"A", None, false, "10.0.0.2:16000"),
                0,
                &mut NoBind,
                &mut acts,
            )
            .unwrap();
        assert!(u.created_session);
        assert_eq!(u.owner, 0);
        let (s, _) = t.find(b"c1", b"A", None).unwrap();
        let ports = s.streams[0].ports;
        assert_eq!(u.port, ports[1]);
        assert!(matches!(acts[0], Action::Open { .. }));
        let Action::Peer { leg, peer, .. } = acts[1] else {
            panic!()
        };
        assert_eq!(leg, 0);
        assert_eq!(peer.rtp, addr("10.0.0.2:16000"));
        assert_eq!(peer.rtcp, addr("10.0.0.2:16001"));
        acts.clear();
        let l = t
            .update(
                &up(b"c1", b"A", Some(b"B"), true, "10.0.0.3:17000"),
                1,
                &mut NoBind,
                &mut acts,
            )
            .unwrap();
        assert_eq!(l.owner, 1);
        assert_eq!(l.port, ports[0]);
        let Action::Peer { leg, .. } = acts[0] else {
            panic!()
        };
        assert_eq!(leg, 1);
        assert!(t.find(b"c1", b"B", None).unwrap().0.answered);
    }

    // Reference §1.2: L for an unknown session is "not found" (reply 0).
    #[test]
    fn lookup_unknown() {
        let mut t = SessionTable::new(cfg());
        let r = t.update(
            &up(b"x", b"A", Some(b"B"), true, "1.1.1.1:1"),
            0,
            &mut NoBind,
            &mut vec![],
        );
        assert_eq!(r, Err(UpdateError::NotFound));
    }

    // A re-INVITE from the callee (U with from = callee tag) is found by its
    // from_tag (§1.4) and updates the callee's leg; the changed address resets.
    #[test]
    fn reinvite_from_callee_relatches() {
        let mut t = SessionTable::new(cfg());
        let mut acts = Vec::new();
        t.update(
            &up(b"c", b"A", None, false, "10.0.0.2:16000"),
            0,
            &mut NoBind,
            &mut acts,
        )
        .unwrap();
        t.update(
            &up(b"c", b"A", Some(b"B"), true, "10.0.0.3:17000"),
            0,
            &mut NoBind,
            &mut acts,
        )
        .unwrap();
        acts.clear();
        let r = t
            .update(
                &up(b"c", b"B", Some(b"A"), false, "10.0.0.9:18000"),
                0,
                &mut NoBind,
                &mut acts,
            )
            .unwrap();
        assert_eq!(r.owner, 1);
        let Action::Peer { leg, peer, .. } = acts[0] else {
            panic!()
        };
        assert_eq!((leg, peer.reset), (1, true));
        acts.clear();
        // The same address again: re-armed, not reset.
        t.update(
            &up(b"c", b"B", Some(b"A"), false, "10.0.0.9:18000"),
            0,
            &mut NoBind,
            &mut acts,
        )
        .unwrap();
        let Action::Peer { peer, .. } = acts[0] else {
            panic!()
        };
        assert!(!peer.reset);
    }

    // Bounded state (DESIGN principle 4): max_sessions, then out of ports.
    #[test]
    fn limits() {
        let mut t = SessionTable::new(cfg());
        let mut acts = Vec::new();
        for c in [&b"1"[..], b"2", b"3"] {
            t.update(
                &up(c, b"A", None, false, "1.1.1.1:2"),
                0,
                &mut NoBind,
                &mut acts,
            )
            .unwrap();
        }
        assert_eq!(
            t.update(
                &up(b"4", b"A", None, false, "1.1.1.1:2"),
                0,
                &mut NoBind,
                &mut acts
            ),
            Err(UpdateError::SessionLimit)
        );
        // 10 RTP ports = 5 streams; 3 used; a second media on c1 and c2 fill it.
        let mut m2 = up(b"1", b"A", None, false, "1.1.1.1:4");
        m2.media = 2;
        t.update(&m2, 0, &mut NoBind, &mut acts).unwrap();
        m2.call_id = b"2";
        assert_eq!(
            t.update(&m2, 0, &mut NoBind, &mut acts),
            Err(UpdateError::NoPorts)
        );
        assert_eq!(t.counters.rejected_ports, 1);
        assert_eq!(t.free_ports().iter().sum::<usize>(), 2);
    }

    // A port the binder refuses (in use) is skipped.
    #[test]
    fn busy_ports_are_skipped() {
        struct Busy;
        impl PortBinder for Busy {
            fn bind(&mut self, _: usize, p: u16) -> bool {
                p != 40000
            }
            fn release(&mut self, _: usize, _: u16) {}
        }
        let mut t = SessionTable::new(cfg());
        t.update(
            &up(b"1", b"A", None, false, "1.1.1.1:2"),
            0,
            &mut Busy,
            &mut vec![],
        )
        .unwrap();
        let ports = t.find(b"1", b"A", None).unwrap().0.streams[0].ports;
        assert!(!ports.contains(&40000));
    }

    // Reference §1.2 D w: weak flags; a session goes when no flag remains.
    #[test]
    fn delete_weak_and_strong() {
        let mut t = SessionTable::new(cfg());
        let mut acts = Vec::new();
        let mut u = up(b"c", b"A", None, false, "1.1.1.1:2");
        u.weak = true;
        t.update(&u, 0, &mut NoBind, &mut acts).unwrap();
        u.weak = false;
        t.update(&u, 0, &mut NoBind, &mut acts).unwrap();
        assert!(t.delete(b"c", b"A", None, true, &mut acts));
        assert_eq!(t.len(), 1);
        acts.clear();
        assert!(t.delete(b"c", b"A", None, false, &mut acts));
        assert_eq!(t.len(), 0);
        assert!(matches!(acts[0], Action::Close { .. }));
        assert!(!t.delete(b"c", b"A", None, false, &mut acts));
        assert_eq!(t.free_ports().iter().sum::<usize>(), 10);
    }

    // Offer without answer expires after the offer timeout; an answered call
    // after the session timeout without media; media keeps it alive.
    #[test]
    fn timeouts() {
        let mut c = cfg();
        c.offer_timeout_ms = 1000;
        c.session_timeout_ms = 5000;
        let mut t = SessionTable::new(c);
        let mut acts = Vec::new();
        t.update(
            &up(b"o", b"A", None, false, "1.1.1.1:2"),
            0,
            &mut NoBind,
            &mut acts,
        )
        .unwrap();
        t.update(
            &up(b"a", b"A", None, false, "1.1.1.1:2"),
            0,
            &mut NoBind,
            &mut acts,
        )
        .unwrap();
        t.update(
            &up(b"a", b"A", Some(b"B"), true, "1.1.1.1:4"),
            0,
            &mut NoBind,
            &mut acts,
        )
        .unwrap();
        assert_eq!(t.tick(1000, &mut acts), 0);
        assert_eq!(t.tick(1001, &mut acts), 1);
        assert_eq!(t.counters.offer_timeouts, 1);
        let (s, _) = t.find(b"a", b"A", None).unwrap();
        assert_eq!(t.ttl_secs(s, 1001), 3);
        s.streams[0].stats.legs[0]
            .last_packet_ms
            .store(4000, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(t.tick(8000, &mut acts), 0);
        assert_eq!(t.tick(9001, &mut acts), 1);
        assert_eq!(t.counters.media_timeouts, 1);
        assert!(t.is_empty());
    }
}
