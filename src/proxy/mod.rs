//! The proxy engine, sans-I/O (DESIGN.md principle 2 and "The engine"): one
//! [`Engine`] per worker, shaped like `quinn_proto::Endpoint`. The runtime
//! feeds it datagrams ([`Engine::handle`]) and the passing of time
//! ([`Engine::handle_timeout`]), and drains what it wants sent
//! ([`Engine::poll_transmit`]) and when it next needs the clock
//! ([`Engine::poll_timeout`]). Nothing here touches a socket; one pump
//! (`runtime::pump`) runs an engine over sockets for both I/O drivers, the
//! benches, the fuzz target and the tests.
//!
//! Inside, per datagram:
//! - **demux** by the socket's role before any parsing: SIP sockets
//!   (listen, egress) go to the SIP path, CRLF keepalives (RFC 5626 §3.5.1)
//!   are recognised and counted; a relay control socket has no client yet
//!   and its datagrams are counted apart;
//! - **requests**: validation (§16.3: 400/416/420/505/513, 483 at
//!   Max-Forwards 0, OPTIONS to sipfront answered 200, loop detection 482),
//!   then the mode: [`stateless`] (§16.11, like Kamailio's `forward()`) or
//!   [`stateful`] (§17 transactions, failover, like `tm` + `dispatcher`);
//!   routing and the forwarding edits are the shared [`forward`] part;
//! - **responses**: sipfront's Via recognised by its branch, whose MAC
//!   must verify (a forged one is dropped, never reflected); another
//!   worker's is handed over; a NAT keepalive's answer ends at its flow; a
//!   transaction's goes to stateful mode; the rest is relayed statelessly
//!   (§16.7, §18.2.2);
//! - **NAT traversal** (`crate::nat`, when `[nat]` is on): requests in a
//!   dialog whose flow another worker holds are handed to it first; the
//!   forwarding edits, routing to flows and the response hook live in
//!   [`forward`], the keepalives on the wheel as `Timer::NatPing`.
//!
//! Every output goes through one queue ([`outbox`]); every deadline is a
//! typed [`Timer`] on one wheel ([`timer`]) in both modes. The engine can
//! originate requests of its own ([`Engine::originate`]; the hop-by-hop ACK
//! and CANCEL of stateful mode are such requests) and park a received
//! message until an event or a timeout resumes it ([`Engine::park`]), bounded
//! and counted: the seams the NAT and media work plug into.

pub mod branch;
mod forward;
pub mod identity;
pub mod outbox;
pub mod park;
mod stateful;
mod stateless;
pub mod stats;
pub mod timer;
pub mod txn;

use crate::dispatch::{BackendSet, Health, Rules};
use crate::sip::{validate_request, validate_response, Limits, Message, StatusCode};
use arc_swap::ArcSwap;
use forward::Forwarder;
pub use outbox::Transmit;
use park::{ParkId, ParkTable};
use stateful::{Stateful, TxnTimer};
use stateless::Stateless;
use stats::{DropReason, Originated, Stats};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Proxy settings (from `[proxy]` in the config).
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Record-Route dialog-creating requests (RFC 3261 §16.6 step 4).
    pub record_route: bool,
    /// Max-Forwards inserted when a request has none (§16.6 step 3).
    pub max_forwards: u32,
    /// Requests larger than this get 513 (§18.1.1, RFC 3261 §21.5.14).
    pub max_message_size: usize,
    /// Parser limits.
    pub limits: Limits,
    /// Stateful mode (RFC 3261 §17 transactions) when set; stateless when
    /// `None`.
    pub transactions: Option<txn::TxnConfig>,
    /// Most messages one worker may hold parked.
    pub max_parked: usize,
    /// NAT traversal (`[nat]`), when enabled.
    pub nat: Option<crate::nat::NatConfig>,
    /// What a client's initial request with Route headers of its own gets.
    pub preloaded_route: PreloadedRoute,
    /// Who may send requests (backends always may).
    pub sources: SourceAcl,
}

/// Which sources other than the backends may send requests (issue 14,
/// like Kamailio's `permissions` module): a denied network is dropped
/// first; with an allow list, only its networks pass. Dropped requests
/// get no answer and are counted (`source_denied`). v4-mapped IPv6
/// sources are judged as IPv4.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceAcl {
    /// Empty: everyone not denied.
    pub allow: Vec<ipnet::IpNet>,
    pub deny: Vec<ipnet::IpNet>,
}

impl SourceAcl {
    /// True when `ip` may send requests.
    pub fn admits(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        !self.deny.iter().any(|n| n.contains(&ip))
            && (self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip)))
    }

    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// What happens to Route headers a client put on an initial request
/// (RFC 3261 §16.4 "preloaded" routes): at an edge, a way to make sipfront
/// send anywhere (issue 14).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PreloadedRoute {
    /// Dispatched as if they were not there, and removed when forwarding
    /// (the default).
    #[default]
    Ignore,
    /// Answered 403.
    Reject,
    /// Followed, as a plain proxy would.
    Honour,
}

impl PreloadedRoute {
    pub const ALL: [PreloadedRoute; 3] = [
        PreloadedRoute::Ignore,
        PreloadedRoute::Reject,
        PreloadedRoute::Honour,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            PreloadedRoute::Ignore => "ignore",
            PreloadedRoute::Reject => "reject",
            PreloadedRoute::Honour => "honour",
        }
    }
}

impl std::str::FromStr for PreloadedRoute {
    type Err = String;
    fn from_str(s: &str) -> Result<PreloadedRoute, String> {
        let t = s.trim().to_ascii_lowercase();
        PreloadedRoute::ALL
            .into_iter()
            .find(|k| k.name() == t || (t == "honor" && *k == PreloadedRoute::Honour))
            .ok_or_else(|| format!("{s:?}: expected ignore, reject or honour"))
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            record_route: true,
            max_forwards: 70,
            max_message_size: 65_535,
            limits: Limits::default(),
            transactions: None,
            max_parked: park::DEFAULT_CAPACITY,
            nat: None,
            preloaded_route: PreloadedRoute::default(),
            sources: SourceAcl::default(),
        }
    }
}

/// The backend sets and routing rules, published to workers as an immutable
/// snapshot (DESIGN.md "Shared, read-mostly state").
#[derive(Debug)]
pub struct Routing {
    pub sets: Vec<BackendSet>,
    pub rules: Rules,
    /// Address of every destination → (set, index in set), to recognise
    /// traffic from backends and in-dialog targets that are backends
    /// (looked up per request: ahash, not SipHash; the keys come from the
    /// config, not from the network).
    backends: HashMap<SocketAddr, (usize, usize), ahash::RandomState>,
}

impl Routing {
    pub fn new(sets: Vec<BackendSet>, rules: Rules) -> Routing {
        let mut backends = HashMap::with_hasher(ahash::RandomState::new());
        for (si, set) in sets.iter().enumerate() {
            for (di, d) in set.destinations().iter().enumerate() {
                backends.entry(d.addr).or_insert((si, di));
            }
        }
        Routing {
            sets,
            rules,
            backends,
        }
    }

    /// The destination at `addr`, if it is a backend.
    pub fn backend_at(&self, addr: &SocketAddr) -> Option<&crate::dispatch::Destination> {
        let (s, d) = *self.backends.get(addr)?;
        self.sets.get(s)?.destinations().get(d)
    }
}

/// A worker's socket, by its role: what arrives there is demultiplexed by
/// the role before anything is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Socket {
    /// The SIP listen socket with this index (client side).
    Listen(u8),
    /// The worker's SIP egress socket (backend side).
    Egress,
    /// A control-protocol client socket (a media relay's ng or classic
    /// control) with this index.
    Control(u8),
}

/// One received datagram and where it came from.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    pub data: &'a [u8],
    pub src: SocketAddr,
    pub socket: Socket,
}

/// What a deadline on the engine's wheel is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// A transaction timer (stateful mode).
    Txn(TxnTimer),
    /// A parked message's deadline.
    Park(ParkId),
    /// Pending branches look at their destinations' health.
    HealthWatch,
    /// A NAT flow's keepalive is due.
    NatPing(crate::nat::table::FlowId),
}

/// The proxy mode and the state it owns.
enum Mode {
    Stateless(Stateless),
    Stateful(Box<Stateful>),
}

/// The proxy engine of one worker.
pub struct Engine {
    fw: Forwarder,
    mode: Mode,
    parked: ParkTable,
    routing: Arc<ArcSwap<Routing>>,
    health: Arc<dyn Health + Send + Sync>,
    /// Timers that fired, reused between expiries.
    fired: Vec<Timer>,
}

impl Engine {
    /// The engine of worker `worker`, routing by the snapshot `routing`
    /// and asking `health` which destinations may be chosen.
    pub fn new(
        cfg: ProxyConfig,
        id: Arc<identity::Identity>,
        worker: u8,
        routing: Arc<ArcSwap<Routing>>,
        health: Arc<dyn Health + Send + Sync>,
    ) -> Engine {
        let mode = match &cfg.transactions {
            Some(t) => Mode::Stateful(Box::new(Stateful::new(t.clone()))),
            None => Mode::Stateless(Stateless),
        };
        let parked = ParkTable::new(cfg.max_parked);
        Engine {
            fw: Forwarder::new(cfg, id, worker, &routing),
            mode,
            parked,
            routing,
            health,
            fired: Vec::new(),
        }
    }

    /// Shares the runtime's drain flag: while it is set, requests outside
    /// a dialog (no To-tag) except ACK and CANCEL get 503 with Retry-After,
    /// and everything in flight or in a dialog goes on.
    pub fn set_drain_flag(&mut self, flag: Arc<AtomicBool>) {
        self.fw.set_drain_flag(flag);
    }

    pub fn worker(&self) -> u8 {
        self.fw.worker
    }

    pub fn identity(&self) -> &identity::Identity {
        &self.fw.id
    }

    pub fn stats(&self) -> &Stats {
        &self.fw.stats
    }

    /// Where the engine's clock starts: `now` values are taken relative to
    /// it (tests build instants from it).
    pub fn epoch(&self) -> Instant {
        self.fw.epoch()
    }

    /// Live transactions and the bytes they hold (stateful mode).
    pub fn transaction_memory(&self) -> (usize, usize) {
        match &self.mode {
            Mode::Stateful(st) => st.memory(),
            Mode::Stateless(_) => (0, 0),
        }
    }

    /// Messages parked now.
    pub fn parked(&self) -> usize {
        self.parked.live()
    }

    /// The NAT flows this worker keeps open (at most `limit`).
    pub fn nat_flows(&self, limit: usize) -> Vec<crate::nat::FlowInfo> {
        self.fw.nat_flows(limit)
    }

    /// Handles one received datagram.
    pub fn handle(&mut self, now: Instant, d: Datagram<'_>) {
        self.fw.set_now(now);
        self.fw.stats.datagrams_in += 1;
        self.dispatch(d, true);
    }

    /// Handles a datagram another worker handed over: it is never handed
    /// on again.
    pub fn handle_handover(&mut self, now: Instant, d: Datagram<'_>) {
        self.fw.set_now(now);
        self.fw.stats.handovers_in += 1;
        self.dispatch(d, false);
    }

    /// The next datagram to send or hand over; its bytes are swapped into
    /// `buf` (the old buffer is kept for reuse, so nothing is copied).
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.fw.out.pop(buf)
    }

    /// When [`Engine::handle_timeout`] must run next: the earliest timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.fw
            .timers
            .next_deadline_ms()
            .map(|ms| self.fw.instant_at(ms))
    }

    /// Moves the clock to `now` and runs every timer due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.fw.set_now(now);
        let mut fired = std::mem::take(&mut self.fired);
        self.fw.timers.expire(self.fw.now_ms(), &mut fired);
        let health = Arc::clone(&self.health);
        for t in fired.drain(..) {
            match t {
                Timer::Txn(tt) => match &mut self.mode {
                    Mode::Stateful(st) => st.on_timer(&mut self.fw, tt, &*health),
                    Mode::Stateless(_) => self.fw.stats.internal_fault(),
                },
                Timer::HealthWatch => match &mut self.mode {
                    Mode::Stateful(st) => st.on_health_watch(&mut self.fw, &*health),
                    Mode::Stateless(_) => self.fw.stats.internal_fault(),
                },
                Timer::Park(id) => self.park_expired(id),
                Timer::NatPing(id) => self.fw.nat_ping(id),
            }
        }
        self.fired = fired;
    }

    /// Counts a datagram the runtime could not send, by why.
    pub fn send_failed(&mut self, why: sipfront_io::SendError, n: u64) {
        self.fw.stats.send_failed(why, n);
    }

    /// Counts a hand-over the runtime could not deliver (the other
    /// worker's queue was full).
    pub fn handover_failed(&mut self) {
        self.fw.stats.drop(DropReason::HandoverFull);
    }

    /// Sends a request of sipfront's own, `data`, to `to` from the socket
    /// with role `socket` (a keepalive OPTIONS, a relay control command).
    pub fn originate(&mut self, kind: Originated, socket: Socket, to: SocketAddr, data: &[u8]) {
        let mut b = self.fw.out.buffer();
        b.extend_from_slice(data);
        self.fw.originate(kind, socket, to, b);
    }

    /// Holds the received datagram `d` until [`Engine::resume`] or, after
    /// `timeout`, answers it (a request) with `on_timeout`. `None` when the
    /// table is full: counted, and the caller answers at once.
    pub fn park(
        &mut self,
        d: Datagram<'_>,
        timeout: Duration,
        on_timeout: StatusCode,
    ) -> Option<ParkId> {
        let mut data = self.fw.out.buffer();
        data.extend_from_slice(d.data);
        match self.parked.insert(data, d.src, d.socket, on_timeout) {
            Some(id) => {
                self.fw.stats.parked_total += 1;
                self.fw.stats.parked_current = self.parked.live() as u64;
                self.fw.arm(timeout.as_millis() as u64, Timer::Park(id));
                Some(id)
            }
            None => {
                self.fw.stats.park_refused += 1;
                None
            }
        }
    }

    /// Resumes the parked message `id`: it is handled now as if it had just
    /// arrived. False when it was resumed already or timed out.
    pub fn resume(&mut self, now: Instant, id: ParkId) -> bool {
        self.fw.set_now(now);
        let Some(p) = self.parked.take(id) else {
            return false;
        };
        self.fw.stats.park_resumed += 1;
        self.fw.stats.parked_current = self.parked.live() as u64;
        let d = Datagram {
            data: &p.data,
            src: p.src,
            socket: p.socket,
        };
        self.dispatch(d, true);
        self.fw.out.recycle(p.data);
        true
    }

    /// A parked message's deadline passed: a request gets its answer, a
    /// response is dropped.
    fn park_expired(&mut self, id: ParkId) {
        let Some(p) = self.parked.take(id) else {
            // Resumed before its deadline.
            return;
        };
        self.fw.stats.park_timeouts += 1;
        self.fw.stats.parked_current = self.parked.live() as u64;
        let d = Datagram {
            data: &p.data,
            src: p.src,
            socket: p.socket,
        };
        match Message::parse_with(d.data, &self.fw.cfg.limits) {
            Ok(m) if m.is_request() => self.fw.reply(&m, d, p.on_timeout),
            _ => self.fw.drop(DropReason::ParkTimeout),
        }
        self.fw.out.recycle(p.data);
    }

    /// Demux by socket role, then the SIP path.
    fn dispatch(&mut self, d: Datagram<'_>, may_hand_over: bool) {
        if let Mode::Stateful(st) = &mut self.mode {
            st.check_health(&mut self.fw, &*self.health);
        }
        if let Socket::Control(_) = d.socket {
            // No control-protocol client runs yet (media anchoring).
            return self.fw.drop(DropReason::NoControlClient);
        }
        if d.data.iter().all(|&b| b == b'\r' || b == b'\n') {
            // RFC 5626 §3.5.1 keepalive on UDP: nothing to route.
            return self.fw.drop(DropReason::KeepAlive);
        }
        match Message::parse_with(d.data, &self.fw.cfg.limits) {
            Ok(m) if m.is_request() => {
                self.fw.stats.requests_in += 1;
                self.request(&m, d, may_hand_over);
            }
            Ok(m) => {
                self.fw.stats.responses_in += 1;
                self.response(&m, d, may_hand_over);
            }
            Err(e) => {
                // Answer what can be answered (505 for SIP/7.0, 400 for a
                // mangled request line or Content-Length, 513 when too large).
                // The limits that refused it do not apply to reading enough
                // of it to answer (a datagram is at most 64 KB): too many
                // headers or too long a line get their 513 (issue 14).
                let relaxed = Message::parse_relaxed(
                    d.data,
                    &Limits {
                        max_message_size: 65_535,
                        max_headers: 65_535,
                        max_line_len: 65_535,
                    },
                );
                match relaxed {
                    Ok(m) if m.is_request() => {
                        self.fw.stats.requests_in += 1;
                        self.fw.reply(&m, d, e.status());
                    }
                    _ => self.fw.drop(DropReason::Unparseable),
                }
            }
        }
    }

    fn request(&mut self, m: &Message<'_>, d: Datagram<'_>, may_hand_over: bool) {
        if !self.fw.cfg.sources.is_open()
            && !self.fw.cfg.sources.admits(d.src.ip())
            && !self.fw.is_backend(&d.src)
        {
            return self.fw.drop(DropReason::SourceDenied);
        }
        if d.data.len() > self.fw.cfg.max_message_size {
            return self.fw.reply(m, d, StatusCode::MESSAGE_TOO_LARGE);
        }
        if may_hand_over {
            if let Some(w) = self.fw.flow_owner(m) {
                // In a dialog (or toward a registration) whose NAT flow
                // another worker holds.
                return self.fw.hand_over(w, d);
            }
        }
        let req = match validate_request(m) {
            Ok(r) => r,
            Err(e) => return self.fw.reply(m, d, e.status()),
        };
        let routing = self.routing.load();
        match &mut self.mode {
            Mode::Stateless(sl) => sl.request(&mut self.fw, m, &req, &routing, &*self.health, d),
            Mode::Stateful(st) => st.request(&mut self.fw, m, &req, &routing, &*self.health, d),
        }
    }

    fn response(&mut self, m: &Message<'_>, d: Datagram<'_>, may_hand_over: bool) {
        let Ok(resp) = validate_response(m) else {
            return self.fw.drop(DropReason::BadResponse);
        };
        let Some(b) = self.fw.our_branch(&resp) else {
            return self.fw.drop(DropReason::ResponseNotOurs);
        };
        if !b.verify(&self.fw.id.branch_key) {
            // Names sipfront, but sipfront never sent its request: a
            // forged response meant to be reflected to the next Via.
            return self.fw.drop(DropReason::ForgedBranch);
        }
        if b.worker != self.fw.worker && usize::from(b.worker) < self.fw.id.egress.len() {
            if !may_hand_over {
                // Handed over to this worker, and not its own either.
                return self.fw.drop(DropReason::HandoverLoop);
            }
            return self.fw.hand_over(b.worker, d);
        }
        if let Some(t) = b
            .txn
            .filter(|t| t & crate::nat::keepalive::BRANCH_FLAG != 0)
        {
            // The answer to a NAT keepalive: the flow is alive.
            return self.fw.nat_answered(t);
        }
        let from = forward::Source {
            src: d.src,
            branch: b,
            ua: self.fw.nat.is_some() && !self.fw.is_backend(&d.src),
        };
        if let (Some(t), Mode::Stateful(st)) = (b.txn, &mut self.mode) {
            if st.response(&mut self.fw, m, t, &*self.health, &from) {
                return;
            }
        }
        self.fw.relay_response(m, &resp, &from);
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod stateful_tests;

#[cfg(test)]
mod engine_tests;

#[cfg(test)]
mod nat_tests;
