//! Per-worker counters of the proxy core (DESIGN.md principle 6). Each
//! worker owns its `Stats` and increments plain integers; the admin side
//! sums snapshots across workers.

use std::fmt;

/// Why a datagram was dropped without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Not parseable as SIP, even enough to answer (RFC 4475 §3.1.2 garbage).
    Unparseable,
    /// A request that failed validation but could not be answered either
    /// (no usable Via/From/To/Call-ID/CSeq).
    Unanswerable,
    /// An ACK that failed validation: an ACK is never answered (RFC 3261 §17.2.3).
    BadAck,
    /// A response that failed validation.
    BadResponse,
    /// A response whose top Via is not sipfront's.
    ResponseNotOurs,
    /// A response with no Via left after sipfront's.
    NoNextVia,
    /// A response whose next Via names no usable address (a name without
    /// `received`, or broadcast/multicast/unspecified: RFC 4475 §3.3.10).
    BadNextHop,
    /// A request toward a destination sipfront refuses to send to
    /// (broadcast, multicast, unspecified).
    BadDestination,
    /// A handover to another worker whose queue was full.
    HandoverFull,
    /// Keepalive datagrams (CRLF) carry nothing to route.
    KeepAlive,
    /// The engine's output queue was full (`proxy::outbox::CAPACITY`).
    OutboxFull,
    /// A datagram handed over by another worker that names yet another
    /// worker: never handed on twice.
    HandoverLoop,
    /// A datagram on a control-protocol socket no client is using.
    NoControlClient,
    /// A parked response whose deadline passed.
    ParkTimeout,
    /// A response whose branch names sipfront but whose MAC does not
    /// verify: forged, to make sipfront reflect it.
    ForgedBranch,
    /// An ACK for one of sipfront's own replies (absorbed, §17.2.1).
    OwnReplyAck,
    /// A request from a source `proxy.allow_sources`/`deny_sources` refuse.
    SourceDenied,
}

impl DropReason {
    pub const ALL: [DropReason; 17] = [
        DropReason::Unparseable,
        DropReason::Unanswerable,
        DropReason::BadAck,
        DropReason::BadResponse,
        DropReason::ResponseNotOurs,
        DropReason::NoNextVia,
        DropReason::BadNextHop,
        DropReason::BadDestination,
        DropReason::HandoverFull,
        DropReason::KeepAlive,
        DropReason::OutboxFull,
        DropReason::HandoverLoop,
        DropReason::NoControlClient,
        DropReason::ParkTimeout,
        DropReason::ForgedBranch,
        DropReason::OwnReplyAck,
        DropReason::SourceDenied,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::Unparseable => "unparseable",
            DropReason::Unanswerable => "unanswerable",
            DropReason::BadAck => "bad_ack",
            DropReason::BadResponse => "bad_response",
            DropReason::ResponseNotOurs => "response_not_ours",
            DropReason::NoNextVia => "no_next_via",
            DropReason::BadNextHop => "bad_next_hop",
            DropReason::BadDestination => "bad_destination",
            DropReason::HandoverFull => "handover_full",
            DropReason::KeepAlive => "keepalive",
            DropReason::OutboxFull => "outbox_full",
            DropReason::HandoverLoop => "handover_loop",
            DropReason::NoControlClient => "no_control_client",
            DropReason::ParkTimeout => "park_timeout",
            DropReason::ForgedBranch => "forged_branch",
            DropReason::OwnReplyAck => "own_reply_ack",
            DropReason::SourceDenied => "source_denied",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Requests sipfront originates (sends on its own, not forwarded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Originated {
    /// The hop-by-hop ACK of a non-2xx final response (RFC 3261 §17.1.1.3).
    Ack,
    /// The CANCEL of a pending branch (§9.1, §16.10).
    Cancel,
    /// An OPTIONS of sipfront's own (keepalives toward NATed clients).
    Options,
    /// A NOTIFY keepalive toward a NATed client.
    Notify,
}

impl Originated {
    pub const ALL: [Originated; 4] = [
        Originated::Ack,
        Originated::Cancel,
        Originated::Options,
        Originated::Notify,
    ];

    /// The SIP method, also the metric label.
    pub fn method(&self) -> &'static str {
        match self {
            Originated::Ack => "ACK",
            Originated::Cancel => "CANCEL",
            Originated::Options => "OPTIONS",
            Originated::Notify => "NOTIFY",
        }
    }
}

/// Why a datagram could not be sent: the one list, from the I/O layer.
pub use sipfront_io::SendError;

/// Counters of one worker.
#[derive(Clone, Debug)]
pub struct Stats {
    pub datagrams_in: u64,
    pub requests_in: u64,
    pub responses_in: u64,
    pub requests_forwarded: u64,
    pub responses_forwarded: u64,
    /// Requests answered by sipfront itself, by status code (index code-100).
    pub replies: [u64; 600],
    pub drops: [u64; DropReason::ALL.len()],
    /// Responses that arrived on another worker's behalf and were handed over.
    pub handovers_out: u64,
    pub handovers_in: u64,
    /// Requests forwarded per backend (index = BackendId).
    pub per_backend: Vec<u64>,
    /// Requests forwarded per method (index = `Method as usize`).
    pub per_method: [u64; METHODS],
    /// Live transactions (stateful mode): a gauge, summed over workers.
    pub transactions_current: u64,
    /// Live transactions that have not answered upstream finally yet (what
    /// a graceful drain waits for): a gauge.
    pub transactions_pending: u64,
    /// Transactions created since start.
    pub transactions_total: u64,
    /// New requests refused with 503 because the worker's table was full.
    pub transactions_refused: u64,
    /// Retransmitted requests absorbed (answered with the last response or
    /// ignored) instead of forwarded again.
    pub retransmissions_absorbed: u64,
    /// Requests and final responses retransmitted by sipfront's timers
    /// (RFC 3261 §17 timers A, E, G).
    pub retransmissions_sent: u64,
    /// Requests sent on to the next destination after a timeout or a
    /// failover code.
    pub failovers: u64,
    /// Client transactions that timed out without a final response.
    pub timeouts: u64,
    /// CANCELs matched to a pending INVITE.
    pub cancels: u64,
    /// INVITE sent → first response, per backend (stateful mode).
    pub latency: Vec<Histogram>,
    /// Datagrams the kernel refused to send, by [`SendError`].
    pub send_failures: [u64; SendError::ALL.len()],
    /// Internal faults: states the code holds impossible (a timer of the
    /// wrong mode, a stored request sipfront cannot read back). Never bad
    /// input; any count here is a bug to report.
    pub internal_faults: u64,
    /// Requests originated, by [`Originated`].
    pub originated: [u64; Originated::ALL.len()],
    /// Messages parked since start, parked now (a gauge), refused because
    /// the table was full, resumed, and answered at their deadline.
    pub parked_total: u64,
    pub parked_current: u64,
    /// Clients' initial requests whose own Route headers were ignored or
    /// refused (`proxy.preloaded_route`).
    pub preloaded_routes: u64,
    /// NAT traversal.
    pub nat: crate::nat::NatStats,
    /// The NAT flows kept open, as last published (the engine's own
    /// `Stats` leave this empty; the pump fills the published copy).
    pub nat_flows: Vec<crate::nat::FlowInfo>,
    pub park_refused: u64,
    pub park_resumed: u64,
    pub park_timeouts: u64,
}

/// Number of `Method` variants.
pub const METHODS: usize = 15;
const _: () = assert!(crate::sip::Method::Other as usize + 1 == METHODS);

/// Upper bounds (seconds) of the latency histogram buckets; the last
/// bucket is +Inf.
pub const LATENCY_BOUNDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A fixed-bucket histogram (Prometheus semantics once made cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Observations per bucket, not cumulative; the last is above every bound.
    pub buckets: [u64; LATENCY_BOUNDS.len() + 1],
    pub count: u64,
    /// Sum of the observations, in microseconds.
    pub sum_us: u64,
}

impl Histogram {
    pub fn observe(&mut self, d: std::time::Duration) {
        let s = d.as_secs_f64();
        let i = LATENCY_BOUNDS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.buckets[i] += 1;
        self.count += 1;
        self.sum_us += d.as_micros() as u64;
    }

    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a += b;
        }
        self.count += o.count;
        self.sum_us += o.sum_us;
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            datagrams_in: 0,
            requests_in: 0,
            responses_in: 0,
            requests_forwarded: 0,
            responses_forwarded: 0,
            replies: [0; 600],
            drops: [0; DropReason::ALL.len()],
            handovers_out: 0,
            handovers_in: 0,
            per_backend: Vec::new(),
            per_method: [0; METHODS],
            transactions_current: 0,
            transactions_pending: 0,
            transactions_total: 0,
            transactions_refused: 0,
            retransmissions_absorbed: 0,
            retransmissions_sent: 0,
            failovers: 0,
            timeouts: 0,
            cancels: 0,
            latency: Vec::new(),
            send_failures: [0; SendError::ALL.len()],
            internal_faults: 0,
            originated: [0; Originated::ALL.len()],
            parked_total: 0,
            parked_current: 0,
            preloaded_routes: 0,
            nat: crate::nat::NatStats::default(),
            nat_flows: Vec::new(),
            park_refused: 0,
            park_resumed: 0,
            park_timeouts: 0,
        }
    }
}

impl Stats {
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    /// Counts `n` datagrams the kernel refused, by why.
    pub fn send_failed(&mut self, why: SendError, n: u64) {
        self.send_failures[why as usize] += n;
    }

    pub fn send_failures_by(&self, why: SendError) -> u64 {
        self.send_failures[why as usize]
    }

    /// Counts an internal fault (see [`Stats::internal_faults`]).
    pub fn internal_fault(&mut self) {
        self.internal_faults += 1;
    }

    pub fn originate(&mut self, kind: Originated) {
        self.originated[kind as usize] += 1;
    }

    pub fn originated_of(&self, kind: Originated) -> u64 {
        self.originated[kind as usize]
    }

    pub fn replied(&mut self, code: u16) {
        if let Some(c) = self.replies.get_mut(usize::from(code).wrapping_sub(100)) {
            *c += 1;
        }
    }

    pub fn replies_with(&self, code: u16) -> u64 {
        self.replies
            .get(usize::from(code).wrapping_sub(100))
            .copied()
            .unwrap_or(0)
    }

    pub fn forwarded_to(&mut self, backend: usize) {
        if backend >= self.per_backend.len() {
            self.per_backend.resize(backend + 1, 0);
        }
        self.per_backend[backend] += 1;
    }

    /// Adds another worker's counters into these.
    pub fn merge(&mut self, o: &Stats) {
        self.datagrams_in += o.datagrams_in;
        self.requests_in += o.requests_in;
        self.responses_in += o.responses_in;
        self.requests_forwarded += o.requests_forwarded;
        self.responses_forwarded += o.responses_forwarded;
        for (a, b) in self.replies.iter_mut().zip(o.replies.iter()) {
            *a += b;
        }
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
        self.handovers_out += o.handovers_out;
        self.handovers_in += o.handovers_in;
        if self.per_backend.len() < o.per_backend.len() {
            self.per_backend.resize(o.per_backend.len(), 0);
        }
        for (a, b) in self.per_backend.iter_mut().zip(o.per_backend.iter()) {
            *a += b;
        }
        for (a, b) in self.per_method.iter_mut().zip(o.per_method.iter()) {
            *a += b;
        }
        self.transactions_current += o.transactions_current;
        self.transactions_pending += o.transactions_pending;
        self.transactions_total += o.transactions_total;
        self.transactions_refused += o.transactions_refused;
        self.retransmissions_absorbed += o.retransmissions_absorbed;
        self.retransmissions_sent += o.retransmissions_sent;
        self.failovers += o.failovers;
        self.timeouts += o.timeouts;
        self.cancels += o.cancels;
        if self.latency.len() < o.latency.len() {
            self.latency.resize(o.latency.len(), Histogram::default());
        }
        for (a, b) in self.latency.iter_mut().zip(o.latency.iter()) {
            a.merge(b);
        }
        for (a, b) in self.send_failures.iter_mut().zip(o.send_failures.iter()) {
            *a += b;
        }
        self.internal_faults += o.internal_faults;
        for (a, b) in self.originated.iter_mut().zip(o.originated.iter()) {
            *a += b;
        }
        self.parked_total += o.parked_total;
        self.parked_current += o.parked_current;
        self.park_refused += o.park_refused;
        self.park_resumed += o.park_resumed;
        self.park_timeouts += o.park_timeouts;
        self.preloaded_routes += o.preloaded_routes;
        self.nat.merge(&o.nat);
        self.nat_flows.extend(o.nat_flows.iter().cloned());
    }

    /// Counts a request forwarded with `method`.
    pub fn forwarded_method(&mut self, method: crate::sip::Method) {
        if let Some(c) = self.per_method.get_mut(method as usize) {
            *c += 1;
        }
    }

    /// Records INVITE → first response time for `backend`.
    pub fn observe_latency(&mut self, backend: usize, d: std::time::Duration) {
        if backend >= self.latency.len() {
            self.latency.resize(backend + 1, Histogram::default());
        }
        self.latency[backend].observe(d);
    }

    /// One line per non-zero counter, `name value`, for logs and the demo.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "datagrams_in {}\nrequests_in {}\nresponses_in {}\nrequests_forwarded {}\nresponses_forwarded {}\nhandovers {}\n",
            self.datagrams_in,
            self.requests_in,
            self.responses_in,
            self.requests_forwarded,
            self.responses_forwarded,
            self.handovers_out
        );
        for (i, n) in self.replies.iter().enumerate().filter(|(_, n)| **n > 0) {
            s.push_str(&format!("replies_{} {}\n", i + 100, n));
        }
        for r in DropReason::ALL {
            if self.dropped(r) > 0 {
                s.push_str(&format!("drops_{} {}\n", r.as_str(), self.dropped(r)));
            }
        }
        for (i, n) in self.per_backend.iter().enumerate() {
            s.push_str(&format!("forwarded_backend_{i} {n}\n"));
        }
        for e in SendError::ALL {
            if self.send_failures_by(e) > 0 {
                s.push_str(&format!(
                    "send_failures_{} {}\n",
                    e.as_str(),
                    self.send_failures_by(e)
                ));
            }
        }
        for k in Originated::ALL {
            if self.originated_of(k) > 0 {
                s.push_str(&format!(
                    "originated_{} {}\n",
                    k.method(),
                    self.originated_of(k)
                ));
            }
        }
        for (name, v) in [
            ("transactions_current", self.transactions_current),
            ("transactions_pending", self.transactions_pending),
            ("transactions_total", self.transactions_total),
            ("transactions_refused", self.transactions_refused),
            ("retransmissions_absorbed", self.retransmissions_absorbed),
            ("retransmissions_sent", self.retransmissions_sent),
            ("failovers", self.failovers),
            ("timeouts", self.timeouts),
            ("cancels", self.cancels),
            ("internal_faults", self.internal_faults),
            ("parked_total", self.parked_total),
            ("park_refused", self.park_refused),
            ("park_timeouts", self.park_timeouts),
            ("preloaded_routes", self.preloaded_routes),
        ] {
            if v > 0 {
                s.push_str(&format!("{name} {v}\n"));
            }
        }
        for (i, t) in crate::nat::Test::ALL.iter().enumerate() {
            if self.nat.detected[i] > 0 {
                s.push_str(&format!(
                    "nat_detected_{} {}\n",
                    t.name(),
                    self.nat.detected[i]
                ));
            }
        }
        for (name, v) in self.nat.fields() {
            if v > 0 {
                s.push_str(&format!("{name} {v}\n"));
            }
        }
        s
    }
}
