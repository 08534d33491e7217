//! The routing core, sans-I/O (DESIGN.md principle 2): a datagram, where it
//! came from and the routing snapshot go in; bytes to send and where, or a
//! counted drop, come out. The runtime performs the send.
//!
//! Stateless proxying per RFC 3261 §16 and §16.11:
//! - requests: validation (§16.3: 400/416/420/505/513, 483 at Max-Forwards 0,
//!   OPTIONS to sipfront answered 200, loop detection 482), Route processing
//!   (§16.4: Routes that name sipfront removed, strict-route compatibility),
//!   target selection (remaining Route, in-dialog remote target that is a
//!   backend, a request from a backend toward its Request-URI, else the
//!   dispatcher), then the forwarding edits (§16.6): received/rport on the
//!   client's Via (RFC 3581), sipfront's Via with a branch derived from the
//!   request, Max-Forwards decremented or inserted, Record-Route on
//!   dialog-creating requests;
//! - responses (§16.7 stateless): sipfront's Via removed, sent to the next
//!   Via (received/rport honoured) from the listen socket the request came in
//!   on; a response for another worker's branch is handed over.

pub mod branch;
pub mod identity;
mod stateful;
pub mod stats;
pub mod txn;

use crate::dispatch::{Algorithm, BackendSet, Health, Rules, SelectInput, Selector};
use crate::sip::{
    validate_request, validate_response, writer, Edits, HeaderName, Limits, Message, Method,
    Request, SipError, StatusCode, Uri,
};
use identity::Identity;
use stats::{DropReason, Stats};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            record_route: true,
            max_forwards: 70,
            max_message_size: 65_535,
            limits: Limits::default(),
            transactions: None,
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
    /// traffic from backends and in-dialog targets that are backends.
    backends: HashMap<SocketAddr, (usize, usize)>,
}

impl Routing {
    pub fn new(sets: Vec<BackendSet>, rules: Rules) -> Routing {
        let mut backends = HashMap::new();
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

/// Which of the worker's sockets a datagram arrived on or leaves from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Socket {
    /// The listen socket with this index (client side).
    Listen(u8),
    /// The worker's egress socket (backend side).
    Egress,
}

/// One received datagram.
#[derive(Clone, Copy, Debug)]
pub struct Inbound<'a> {
    pub data: &'a [u8],
    pub src: SocketAddr,
    pub socket: Socket,
}

/// What to do with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send the bytes written to `out` to `to` from `from`.
    Send { to: SocketAddr, from: Socket },
    /// Nothing to send; counted.
    Drop(DropReason),
    /// The datagram belongs to another worker's transaction: pass it on
    /// unchanged through the cross-core mesh.
    Handover { worker: u8 },
    /// Handled by the transaction layer: whatever must be sent (possibly
    /// nothing, for an absorbed retransmission) is in the proxy's queue.
    Queued,
}

/// A datagram the transaction layer wants sent (stateful mode): 100 Trying
/// plus the forwarded request, retransmissions, ACK and CANCEL toward
/// destinations, responses upstream. The driver takes them with
/// [`Proxy::drain_queue`].
#[derive(Debug)]
pub struct Queued {
    pub to: SocketAddr,
    pub from: Socket,
    pub data: Vec<u8>,
}

/// The proxy core of one worker.
pub struct Proxy {
    cfg: ProxyConfig,
    id: Arc<Identity>,
    worker: u8,
    selector: Selector,
    edits: Edits,
    /// Set by the runtime on SIGTERM: new dialogs get 503 (drain).
    draining: Option<Arc<AtomicBool>>,
    /// The transaction layer (stateful mode).
    txns: Option<Box<stateful::Stateful>>,
    /// Datagrams to send (stateful mode) and spare buffers for them.
    queue: Vec<Queued>,
    pool: Vec<Vec<u8>>,
    pub stats: Stats,
}

/// Where a request goes.
enum Target {
    Send {
        to: SocketAddr,
        from: Socket,
        backend: Option<usize>,
    },
    Reply(StatusCode),
}

impl Proxy {
    pub fn new(cfg: ProxyConfig, id: Arc<Identity>, worker: u8) -> Proxy {
        let txns = cfg
            .transactions
            .clone()
            .map(|c| Box::new(stateful::Stateful::new(c)));
        Proxy {
            cfg,
            id,
            worker,
            selector: Selector::new(usize::from(worker)),
            edits: Edits::with_capacity(16, 1024),
            draining: None,
            txns,
            queue: Vec::new(),
            pool: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Shares the runtime's drain flag: while it is set, requests outside
    /// a dialog (no To-tag) except ACK and CANCEL get 503 with Retry-After,
    /// and everything in flight or in a dialog goes on.
    pub fn set_drain_flag(&mut self, flag: Arc<AtomicBool>) {
        self.draining = Some(flag);
    }

    /// While draining: a request outside a dialog, other than ACK and
    /// CANCEL, is refused.
    fn refuses_new_dialog(&self, req: &Request<'_>) -> bool {
        req.to.tag().is_none()
            && !matches!(req.method, Method::Ack | Method::Cancel)
            && self
                .draining
                .as_ref()
                .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    pub fn worker(&self) -> u8 {
        self.worker
    }

    pub fn identity(&self) -> &Identity {
        &self.id
    }

    /// Handles one datagram. `out` is cleared and receives the bytes to send.
    pub fn handle(
        &mut self,
        routing: &Routing,
        health: &impl Health,
        pkt: Inbound<'_>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        out.clear();
        self.stats.datagrams_in += 1;
        if pkt.data.iter().all(|&b| b == b'\r' || b == b'\n') {
            // RFC 5626 §3.5.1 keepalive on UDP: nothing to route.
            self.stats.drop(DropReason::KeepAlive);
            return Outcome::Drop(DropReason::KeepAlive);
        }
        match Message::parse_with(pkt.data, &self.cfg.limits) {
            Ok(m) if m.is_request() => {
                self.stats.requests_in += 1;
                self.request(&m, routing, health, pkt, out)
            }
            Ok(m) => {
                self.stats.responses_in += 1;
                self.response(&m, health, pkt.src, out)
            }
            Err(e) => {
                // Answer what can be answered (505 for SIP/7.0, 400 for a
                // mangled request line or Content-Length, 513 when too large).
                let relaxed = Message::parse_relaxed(
                    pkt.data,
                    &Limits {
                        max_message_size: 65_535,
                        ..self.cfg.limits
                    },
                );
                match relaxed {
                    Ok(m) if m.is_request() => {
                        self.stats.requests_in += 1;
                        self.reply(&m, pkt, e.status(), out)
                    }
                    _ => {
                        self.stats.drop(DropReason::Unparseable);
                        Outcome::Drop(DropReason::Unparseable)
                    }
                }
            }
        }
    }

    /// Answers `req` with `code` (RFC 3261 §8.2.6), to its source.
    fn reply(
        &mut self,
        req: &Message<'_>,
        pkt: Inbound<'_>,
        code: StatusCode,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if req.method() == Some(Method::Ack) {
            // An ACK is never answered (§17.2.3, §16.11).
            self.stats.drop(DropReason::BadAck);
            return Outcome::Drop(DropReason::BadAck);
        }
        if self.local_reply(req, pkt.src, code, out).is_err() {
            out.clear();
            self.stats.drop(DropReason::Unanswerable);
            return Outcome::Drop(DropReason::Unanswerable);
        }
        self.stats.replied(code.as_u16());
        Outcome::Send {
            to: reply_addr(req.top_via().ok().as_ref(), pkt.src),
            from: pkt.socket,
        }
    }

    /// Writes sipfront's own answer `code` to `req`, which came from `src`.
    fn local_reply(
        &self,
        req: &Message<'_>,
        src: SocketAddr,
        code: StatusCode,
        out: &mut Vec<u8>,
    ) -> Result<(), SipError> {
        // A To-tag derived from the request, so a retransmission gets the
        // same reply (§8.2.6.2).
        let via = req.values(HeaderName::Via).next().unwrap_or(b"");
        let mut tag = [0u8; branch::LEN];
        branch::format(self.worker, 0, branch::request_hash(req, via), &mut tag);
        let unsupported;
        let mut extra: [&str; 2] = ["", ""];
        let mut n = 0;
        if code == StatusCode::BAD_EXTENSION {
            // §8.2.2.3: list what Proxy-Require asked for.
            let tags: Vec<&str> = req
                .values(HeaderName::ProxyRequire)
                .filter_map(|v| std::str::from_utf8(v).ok())
                .collect();
            unsupported = format!("Unsupported: {}", tags.join(", "));
            extra[n] = &unsupported;
            n += 1;
        }
        if code == StatusCode::SERVICE_UNAVAILABLE {
            extra[n] = "Retry-After: 5";
            n += 1;
        }
        let opts = writer::ReplyOptions {
            // A 100 Trying carries no tag (§8.2.6.2).
            to_tag: (code.as_u16() > 100).then_some(&tag[branch::PREFIX.len()..]),
            source: Some((src.ip(), src.port())),
            headers: &extra[..n],
            ..Default::default()
        };
        writer::build_reply(req, code, &opts, out)
    }

    /// An empty buffer from the pool (stateful mode).
    fn buffer(&mut self) -> Vec<u8> {
        let mut b = self.pool.pop().unwrap_or_default();
        b.clear();
        b
    }

    /// Queues a copy of `data` for `to` (stateful mode).
    fn queue_copy(&mut self, to: SocketAddr, from: Socket, data: &[u8]) {
        let mut b = self.buffer();
        b.extend_from_slice(data);
        self.queue.push(Queued { to, from, data: b });
    }

    /// Queues `data` itself for `to` (stateful mode).
    fn queue_owned(&mut self, to: SocketAddr, from: Socket, data: Vec<u8>) {
        self.queue.push(Queued { to, from, data });
    }

    /// Hands every queued datagram to `send`, which may swap the buffer for
    /// one of its own (the swapped-in buffer is kept for reuse).
    pub fn drain_queue(&mut self, mut send: impl FnMut(SocketAddr, Socket, &mut Vec<u8>)) {
        let mut q = std::mem::take(&mut self.queue);
        for mut d in q.drain(..) {
            send(d.to, d.from, &mut d.data);
            if self.pool.len() < 256 {
                self.pool.push(d.data);
            }
        }
        self.queue = q;
    }

    /// Whether datagrams wait in the queue.
    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    fn request(
        &mut self,
        m: &Message<'_>,
        routing: &Routing,
        health: &impl Health,
        pkt: Inbound<'_>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if pkt.data.len() > self.cfg.max_message_size {
            return self.reply(m, pkt, StatusCode::MESSAGE_TOO_LARGE, out);
        }
        let req = match validate_request(m) {
            Ok(r) => r,
            Err(e) => return self.reply(m, pkt, e.status(), out),
        };
        if self.txns.is_some() {
            // Retransmissions of accepted requests are absorbed even while
            // draining; the drain check follows the transaction lookup.
            return self.stateful_request(m, &req, routing, health, pkt, out);
        }
        if self.refuses_new_dialog(&req) {
            return self.reply(m, pkt, StatusCode::SERVICE_UNAVAILABLE, out);
        }
        self.stateless_request(m, &req, routing, health, pkt, out)
    }

    /// Counts a request forwarded, by method and backend.
    fn count_forward(&mut self, method: Method, backend: Option<usize>) {
        self.stats.requests_forwarded += 1;
        self.stats.forwarded_method(method);
        if let Some(b) = backend {
            self.stats.forwarded_to(b);
        }
    }

    /// Routes and forwards a request without keeping state (§16.11).
    fn stateless_request(
        &mut self,
        m: &Message<'_>,
        req: &Request<'_>,
        routing: &Routing,
        health: &impl Health,
        pkt: Inbound<'_>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        match self.route(m, req, routing, health, pkt) {
            Ok(Target::Reply(code)) => self.reply(m, pkt, code, out),
            Ok(Target::Send {
                to: dst,
                from,
                backend,
            }) => match self.forward(m, req, pkt, from, out, None) {
                Ok(()) => {
                    self.count_forward(req.method, backend);
                    Outcome::Send { to: dst, from }
                }
                Err(e) => self.reply(m, pkt, e.status(), out),
            },
            Err(e) => self.reply(m, pkt, e.status(), out),
        }
    }

    /// RFC 3261 §16.3 steps 3-4 and §16.4-16.5: where the request goes.
    fn route(
        &mut self,
        m: &Message<'_>,
        req: &Request<'_>,
        routing: &Routing,
        health: &impl Health,
        pkt: Inbound<'_>,
    ) -> Result<Target, SipError> {
        let method = req.method;
        let ruri = req.ruri;
        let ruri_is_me = ruri.host.is_some_and(|h| self.id.is_me(&h, ruri.port));
        let to_us = ruri_is_me && ruri.user.is_none();

        // §16.3 step 3: Max-Forwards. OPTIONS to sipfront is answered.
        if req.max_forwards == Some(0) {
            return Ok(Target::Reply(if method == Method::Options && ruri_is_me {
                StatusCode::OK
            } else {
                StatusCode::TOO_MANY_HOPS
            }));
        }
        // §16.3 step 4: a Via of ours whose branch this request would get
        // again is a loop; a different branch is a spiral.
        let vias: smallvec::SmallVec<[&[u8]; 8]> = m.values(HeaderName::Via).collect();
        for (i, v) in vias.iter().enumerate() {
            // Only Vias that carry a sipfront branch are decoded.
            if memchr::memmem::find(v, branch::PREFIX).is_none() {
                continue;
            }
            let Some(via) = crate::sip::Via::parse(v) else {
                continue;
            };
            let Some(b) = via.branch.and_then(branch::parse) else {
                continue;
            };
            if self.id.is_me(&via.host, via.port) {
                let below = vias.get(i + 1).copied().unwrap_or(b"");
                let below_via = crate::sip::Via::parse(below);
                let h = branch::request_hash_with(
                    m,
                    req.from.tag(),
                    req.call_id,
                    req.cseq.seq,
                    below_via.as_ref(),
                    below,
                );
                if h == b.hash {
                    return Ok(Target::Reply(StatusCode::LOOP_DETECTED));
                }
            }
        }
        // §16.4: Route values that name sipfront are removed when forwarding
        // (counted here, removed by `forward`); a Request-URI that is one of
        // sipfront's Record-Route URIs came through a strict router.
        let mut next_route: Option<Uri<'_>> = None;
        for r in m.routes() {
            let r = r?;
            if next_route.is_none() && !r.uri.host.is_some_and(|h| self.id.is_me(&h, r.uri.port)) {
                next_route = Some(r.uri);
            }
        }
        if to_us && ruri.lr() && m.header(HeaderName::Route).is_some() {
            // Strict-route compatibility: the last Route is the real target.
            if let Some(last) = m.routes().last() {
                let last = last?;
                return self.uri_target(&last.uri, routing, pkt);
            }
        }
        if let Some(r) = next_route {
            return self.uri_target(&r, routing, pkt);
        }
        if to_us && method == Method::Options {
            // A keepalive OPTIONS to sipfront itself.
            return Ok(Target::Reply(StatusCode::OK));
        }
        let from_backend = routing.backend_at(&pkt.src).is_some();
        let in_dialog = req.to.tag().is_some();
        if !ruri_is_me {
            if from_backend {
                // Toward a client: the Request-URI is the target.
                return self.uri_target(&ruri, routing, pkt);
            }
            // In-dialog request whose remote target is a backend.
            if in_dialog {
                if let Some(addr) = uri_addr(&ruri) {
                    if let Some(d) = routing.backend_at(&addr) {
                        return Ok(Target::Send {
                            to: d.addr,
                            from: Socket::Egress,
                            backend: Some(d.id.0 as usize),
                        });
                    }
                }
            }
        }
        // Stateful: a dialog whose INVITE failed over lives elsewhere than
        // its Call-ID hash says.
        if in_dialog {
            let found = self
                .txns
                .as_deref()
                .filter(|st| !st.affinity.is_empty())
                .and_then(|st| st.affinity.get(st.call_key(req.call_id)));
            if let Some((to, id)) = found {
                return Ok(Target::Send {
                    to,
                    from: Socket::Egress,
                    backend: Some(id.0 as usize),
                });
            }
        }
        // The dispatcher: a rule picks the set, the set's algorithm the
        // destination (in-dialog requests without Route hash the same way).
        let set_idx = routing.rules.pick(m, pkt.src.ip());
        let Some(set) = routing.sets.get(set_idx) else {
            return Ok(Target::Reply(StatusCode::SERVICE_UNAVAILABLE));
        };
        // Only what the set's algorithm hashes, from what validation decoded.
        let mut input = SelectInput::new(req.call_id, pkt.src.ip());
        match set.algorithm() {
            Algorithm::From => input.from_uri = Some(req.from.uri),
            Algorithm::To => input.to_uri = Some(req.to.uri),
            Algorithm::Ruri | Algorithm::RuriUser => input.ruri = Some(ruri),
            _ => {}
        }
        // Stateless mode keeps a dialog whole (§16.11): requests inside a
        // dialog, and the initial requests of algorithms that choose at
        // random (weighted, random), select by the weighted rendezvous hash
        // of the Call-ID, which every request of the dialog carries. Round
        // robin and priority-weighted choose per initial request; their
        // in-dialog requests follow the Route set when the UAs honour
        // Record-Route, else the Call-ID hash (docs/dispatch.md).
        let by_call_id =
            in_dialog || matches!(set.algorithm(), Algorithm::Weighted | Algorithm::Random);
        let chosen = match self.txns.as_deref_mut() {
            // Stateful: the whole ranking, for failover (initial requests).
            Some(st) if !in_dialog => {
                if by_call_id {
                    self.selector
                        .ranking_by_call_id(set, &input, health, &mut st.ranking);
                } else {
                    self.selector.ranking(set, &input, health, &mut st.ranking);
                }
                st.ranked_set = Some(set_idx);
                st.ranking.first().and_then(|id| set.get(*id))
            }
            _ if by_call_id => self.selector.select_by_call_id(set, &input, health),
            _ => self.selector.select(set, &input, health),
        };
        match chosen {
            Some(d) => Ok(Target::Send {
                to: d.addr,
                from: Socket::Egress,
                backend: Some(d.id.0 as usize),
            }),
            None => Ok(Target::Reply(StatusCode::SERVICE_UNAVAILABLE)),
        }
    }

    /// The address a URI routes to: an IP literal, or a backend's name.
    fn uri_target(
        &self,
        uri: &Uri<'_>,
        routing: &Routing,
        pkt: Inbound<'_>,
    ) -> Result<Target, SipError> {
        let Some(to) = uri_addr(uri) else {
            // No resolver on the message path: a name is not routable.
            return Ok(Target::Reply(
                StatusCode::new(478).unwrap_or(StatusCode::BAD_REQUEST),
            ));
        };
        if !usable(to.ip()) {
            return Ok(Target::Reply(
                StatusCode::new(478).unwrap_or(StatusCode::BAD_REQUEST),
            ));
        }
        match routing.backend_at(&to) {
            Some(d) => Ok(Target::Send {
                to,
                from: Socket::Egress,
                backend: Some(d.id.0 as usize),
            }),
            // Toward a client: from the socket clients know.
            None => Ok(Target::Send {
                to,
                from: match pkt.socket {
                    Socket::Listen(i) => Socket::Listen(i),
                    Socket::Egress => Socket::Listen(0),
                },
                backend: None,
            }),
        }
    }

    /// RFC 3261 §16.6: the forwarding edits, written into `out`.
    fn forward(
        &mut self,
        m: &Message<'_>,
        req: &Request<'_>,
        pkt: Inbound<'_>,
        from: Socket,
        out: &mut Vec<u8>,
        txn: Option<u64>,
    ) -> Result<(), SipError> {
        let id = Arc::clone(&self.id);
        let e = &mut self.edits;
        e.clear();
        let top = req.top_via.raw;
        // §18.2.1 / RFC 3581: where the request really came from.
        writer::set_received_on(m, &req.top_via, e, pkt.src.ip(), pkt.src.port());
        // §16.4: drop the Routes that name sipfront.
        let ours = if m.header(HeaderName::Route).is_none() {
            0
        } else {
            m.routes()
                .take_while(|r| {
                    r.as_ref()
                        .is_ok_and(|r| r.uri.host.is_some_and(|h| id.is_me(&h, r.uri.port)))
                })
                .count()
        };
        if ours > 0 {
            writer::remove_values(m, e, HeaderName::Route, ours);
        }
        // §16.6 step 8: sipfront's Via, from the worker's egress socket.
        let listen = match pkt.socket {
            Socket::Listen(i) => i,
            Socket::Egress => 0,
        };
        let mut b = [0u8; branch::LEN];
        let hash = branch::request_hash_with(
            m,
            req.from.tag(),
            req.call_id,
            req.cseq.seq,
            Some(&req.top_via),
            top,
        );
        let mut bt = [0u8; branch::LEN_TXN];
        let branch_text: &[u8] = match txn {
            Some(t) => {
                branch::format_txn(self.worker, listen, hash, t, &mut bt);
                &bt
            }
            None => {
                branch::format(self.worker, listen, hash, &mut b);
                &b
            }
        };
        let egress_port = id
            .egress
            .get(usize::from(self.worker))
            .map_or(5060, |a| a.port());
        let mut via = String::with_capacity(64);
        via.push_str("SIP/2.0/UDP ");
        via.push_str(&id.via_host);
        via.push(':');
        via.push_str(itoa(egress_port, &mut [0u8; 5]));
        via.push_str(";branch=");
        via.push_str(std::str::from_utf8(branch_text).unwrap_or(""));
        writer::add_via(m, e, via.as_bytes());
        // §16.6 step 3: Max-Forwards.
        if writer::decrement_max_forwards(m, e)?.is_none() {
            e.insert_fmt(
                m.headers_end(),
                format_args!("Max-Forwards: {}\r\n", self.cfg.max_forwards),
            );
        }
        // §16.6 step 4: Record-Route on a dialog-creating initial request.
        let initial = req.to.tag().is_none();
        let creates = req.method.creates_dialog();
        if self.cfg.record_route && initial && creates {
            if let Some(l) = id.listens.get(usize::from(listen)) {
                let rr = format!("sip:{}:{};lr", l.host, l.port);
                // A second entry when the backend side is another interface.
                let egress_ip = id.egress.get(usize::from(self.worker)).map(|a| a.ip());
                if from == Socket::Egress
                    && egress_ip.is_some_and(|ip| !ip.is_unspecified() && ip != l.addr.ip())
                {
                    let out_rr = format!("sip:{}:{};lr", id.via_host, egress_port);
                    writer::add_record_route(m, e, out_rr.as_bytes());
                }
                writer::add_record_route(m, e, rr.as_bytes());
            }
        }
        writer::write(m, e, out).map_err(|_| SipError::BadHeader(HeaderName::Via))
    }

    fn response(
        &mut self,
        m: &Message<'_>,
        health: &impl Health,
        src: SocketAddr,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let Ok(resp) = validate_response(m) else {
            self.stats.drop(DropReason::BadResponse);
            return Outcome::Drop(DropReason::BadResponse);
        };
        let top = resp.top_via;
        let ours = top
            .branch
            .and_then(branch::parse)
            .filter(|_| self.id.is_me(&top.host, top.port));
        let Some(b) = ours else {
            self.stats.drop(DropReason::ResponseNotOurs);
            return Outcome::Drop(DropReason::ResponseNotOurs);
        };
        if b.worker != self.worker && usize::from(b.worker) < self.id.egress.len() {
            self.stats.handovers_out += 1;
            return Outcome::Handover { worker: b.worker };
        }
        if let (Some(t), true) = (b.txn, self.txns.is_some()) {
            if let Some(o) = self.stateful_response(m, t, health, src, out) {
                return o;
            }
        }
        // §16.7 step 3 / §18.2.2: the next Via says where it goes.
        let Some(next) = resp.next_via else {
            self.stats.drop(DropReason::NoNextVia);
            return Outcome::Drop(DropReason::NoNextVia);
        };
        let ip = match next.received {
            Some(r) => crate::sip::host::parse_ip(r),
            None => next.host.ip(),
        };
        let port = match next.rport {
            Some(Some(p)) => p,
            _ => next.port_or_default(),
        };
        let Some(ip) = ip.filter(|ip| usable(*ip)) else {
            self.stats.drop(DropReason::BadNextHop);
            return Outcome::Drop(DropReason::BadNextHop);
        };
        let e = &mut self.edits;
        e.clear();
        writer::remove_top_via(m, e);
        if writer::write(m, e, out).is_err() {
            self.stats.drop(DropReason::BadResponse);
            return Outcome::Drop(DropReason::BadResponse);
        }
        self.stats.responses_forwarded += 1;
        let listen = if usize::from(b.listen) < self.id.listens.len() {
            b.listen
        } else {
            0
        };
        Outcome::Send {
            to: SocketAddr::new(ip, port),
            from: Socket::Listen(listen),
        }
    }
}

/// Where a response to a request with top Via `via` from `src` goes
/// (§18.2.2 with RFC 3581): the source address; the source port when rport
/// was asked for (or the Via does not parse), else the sent-by port.
fn reply_addr(via: Option<&crate::sip::Via<'_>>, src: SocketAddr) -> SocketAddr {
    let port = match via {
        Some(v) if v.rport.is_none() => v.port_or_default(),
        _ => src.port(),
    };
    SocketAddr::new(src.ip(), port)
}

/// The socket address of a URI whose host is an IP literal.
fn uri_addr(uri: &Uri<'_>) -> Option<SocketAddr> {
    let ip = uri
        .maddr()
        .and_then(|m| crate::sip::host::parse_host(m)?.ip())
        .or(uri.host?.ip())?;
    Some(SocketAddr::new(ip, uri.port.unwrap_or(uri.default_port())))
}

/// sipfront never sends to broadcast, multicast or unspecified addresses
/// (RFC 4475 §3.3.10 bcast).
fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_broadcast() || a.is_multicast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

/// Formats a u16 without allocating.
fn itoa(mut n: u16, buf: &mut [u8; 5]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod stateful_tests;
