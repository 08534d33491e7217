//! The forwarding part both proxy modes share (RFC 3261 §16): who sipfront
//! is, where a request goes (§16.3 steps 3–4, §16.4, §16.5, the dispatcher)
//! and its ranking for failover, the forwarding edits (§16.6), sipfront's
//! own replies (§8.2.6), the stateless response relay (§16.7, §18.2.2), the
//! requests sipfront originates, the clock, the timer wheel, the output
//! queue and the counters. The modes own their state and call in here.

use super::identity::Identity;
use super::outbox::{Outbox, Transmit};
use super::stats::{DropReason, Originated, Stats};
use super::timer::Wheel;
use super::{branch, Datagram, ProxyConfig, Routing, Socket, Timer};
use crate::dispatch::{Algorithm, BackendId, Health, SelectInput, Selector};
use crate::nat::table::{self, Due, FlowId, FlowTable, Noted};
use crate::nat::{detect, fix, keepalive, ContactFix, Flow, NatConfig, RegisterFix};
use crate::sip::{
    writer, Edits, HeaderName, Message, Method, Request, Response, SipError, StatusCode, Uri,
};
use smallvec::SmallVec;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest UDP payload over IPv4 (65,535 less the IP and UDP headers).
pub(crate) const UDP_MAX_PAYLOAD: usize = 65_507;

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Send {
        to: SocketAddr,
        socket: Socket,
        backend: Option<BackendId>,
    },
    Reply(StatusCode),
}

/// The dispatcher's whole ranking for a request it placed: the set and its
/// destinations, best first (the first is the target).
pub(crate) type Ranking = Option<(usize, SmallVec<[BackendId; 8]>)>;

/// What `route` decided.
pub(crate) struct Route {
    pub target: Target,
    /// Filled when asked for and the dispatcher chose the target.
    pub ranking: Ranking,
}

impl From<Target> for Route {
    fn from(target: Target) -> Route {
        Route {
            target,
            ranking: None,
        }
    }
}

/// Where a response came from: the source, the socket, and sipfront's
/// branch on it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source {
    pub src: SocketAddr,
    pub branch: branch::Parsed,
    /// It came from a UA (not from a backend).
    pub ua: bool,
}

/// NAT handling's part of the forwarder: its settings and flow table.
pub(crate) struct NatPart {
    pub cfg: NatConfig,
    pub table: FlowTable,
    /// Count verdicts (false while stateful mode re-forwards a request it
    /// counted already, on failover).
    pub count: bool,
}

/// The URI parameter of sipfront's Record-Route and Path that names the
/// worker holding a dialog's or registration's NAT flow.
pub(crate) const WORKER_PARAM: &[u8] = b"sfw";

/// Where dialogs live whose INVITE failed over (stateful mode): consulted
/// by `route` for in-dialog requests without a Route set.
pub(crate) trait DialogAffinity {
    fn lookup(&self, call_id: &[u8]) -> Option<(SocketAddr, BackendId)>;
}

pub(crate) struct Forwarder {
    pub cfg: ProxyConfig,
    pub id: Arc<Identity>,
    pub worker: u8,
    pub selector: Selector,
    pub edits: Edits,
    pub out: Outbox,
    pub stats: Stats,
    pub timers: Wheel<Timer>,
    /// The clock: µs since `epoch`, never going back.
    pub now_us: u64,
    epoch: Instant,
    /// Set by the runtime on SIGTERM: new dialogs get 503 (drain).
    draining: Option<Arc<AtomicBool>>,
    /// `SIP/2.0/UDP host:port;branch=` of this worker's egress socket.
    via_prefix: Vec<u8>,
    /// Per listen socket: its Record-Route URI, and a second one naming
    /// the egress side when that is another interface.
    record_routes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// NAT traversal, when enabled.
    pub nat: Option<Box<NatPart>>,
    /// The routing snapshot, to tell backends from clients.
    routing: Arc<arc_swap::ArcSwap<Routing>>,
}

impl Forwarder {
    pub fn new(
        cfg: ProxyConfig,
        id: Arc<Identity>,
        worker: u8,
        routing: &Arc<arc_swap::ArcSwap<Routing>>,
    ) -> Forwarder {
        let egress = id.egress.get(usize::from(worker)).copied();
        let egress_port = egress.map_or(5060, |a| a.port());
        let via_prefix = format!("SIP/2.0/UDP {}:{egress_port};branch=", id.via_host).into_bytes();
        // With NAT handling, sipfront's Record-Route and Path name the
        // worker that holds the NAT flow (`sfw`), so the dialog's later
        // requests, whichever worker the kernel gives them to, are handed
        // to it.
        let sfw = if cfg.nat.is_some() {
            format!(";{}={worker}", String::from_utf8_lossy(WORKER_PARAM))
        } else {
            String::new()
        };
        let record_routes = id
            .listens
            .iter()
            .map(|l| {
                let rr = format!("sip:{}:{};lr{sfw}", l.host, l.port).into_bytes();
                let egress_ip = egress.map(|a| a.ip());
                let out_rr = egress_ip
                    .filter(|ip| !ip.is_unspecified() && *ip != l.addr.ip())
                    .map(|_| format!("sip:{}:{egress_port};lr{sfw}", id.via_host).into_bytes());
                (rr, out_rr)
            })
            .collect();
        let nat = cfg.nat.clone().map(|c| {
            Box::new(NatPart {
                table: FlowTable::new(c.max_flows),
                cfg: c,
                count: true,
            })
        });
        Forwarder {
            nat,
            routing: Arc::clone(routing),
            cfg,
            selector: Selector::new(usize::from(worker)),
            id,
            worker,
            edits: Edits::with_capacity(16, 1024),
            out: Outbox::new(),
            stats: Stats::default(),
            timers: Wheel::new(0),
            now_us: 0,
            epoch: Instant::now(),
            draining: None,
            via_prefix,
            record_routes,
        }
    }

    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Moves the clock to `now` (never back).
    pub fn set_now(&mut self, now: Instant) {
        let us = now.saturating_duration_since(self.epoch).as_micros() as u64;
        self.now_us = self.now_us.max(us);
    }

    pub fn now_ms(&self) -> u64 {
        self.now_us / 1000
    }

    /// The instant `ms` on this engine's clock.
    pub fn instant_at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// Arms `timer` to fire `after_ms` from now.
    pub fn arm(&mut self, after_ms: u64, timer: Timer) {
        self.timers.arm(self.now_ms() + after_ms, timer);
    }

    pub fn set_drain_flag(&mut self, flag: Arc<AtomicBool>) {
        self.draining = Some(flag);
    }

    /// While draining: a request outside a dialog, other than ACK and
    /// CANCEL, is refused.
    pub fn refuses_new_dialog(&self, req: &Request<'_>) -> bool {
        req.to.tag().is_none()
            && !matches!(req.method, Method::Ack | Method::Cancel)
            && self
                .draining
                .as_ref()
                .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// Counts a drop.
    pub fn drop(&mut self, r: DropReason) {
        self.stats.drop(r);
    }

    /// Queues `data` for `to` from the socket with role `socket`.
    pub fn send(&mut self, socket: Socket, to: SocketAddr, data: Vec<u8>) {
        if !self.out.push(Transmit::Send { socket, to }, data) {
            self.stats.drop(DropReason::OutboxFull);
        }
    }

    /// Queues a copy of `data`.
    pub fn send_copy(&mut self, socket: Socket, to: SocketAddr, data: &[u8]) {
        if !self.out.push_copy(Transmit::Send { socket, to }, data) {
            self.stats.drop(DropReason::OutboxFull);
        }
    }

    /// Sends a request of sipfront's own (not a forwarded one).
    pub fn originate(&mut self, kind: Originated, socket: Socket, to: SocketAddr, data: Vec<u8>) {
        self.stats.originate(kind);
        self.send(socket, to, data);
    }

    /// Passes a received datagram on to `worker` unchanged.
    pub fn hand_over(&mut self, worker: u8, d: Datagram<'_>) {
        self.stats.handovers_out += 1;
        let t = Transmit::Handover {
            worker,
            src: d.src,
            socket: d.socket,
        };
        if !self.out.push_copy(t, d.data) {
            self.stats.drop(DropReason::OutboxFull);
        }
    }

    /// Answers `req` with `code` (RFC 3261 §8.2.6), to its source.
    pub fn reply(&mut self, req: &Message<'_>, d: Datagram<'_>, code: StatusCode) {
        if req.method() == Some(Method::Ack) {
            // An ACK is never answered (§17.2.3, §16.11).
            self.stats.drop(DropReason::BadAck);
            return;
        }
        let mut out = self.out.buffer();
        if self.local_reply(req, None, d.src, code, &mut out).is_err() {
            self.out.recycle(out);
            self.stats.drop(DropReason::Unanswerable);
            return;
        }
        self.stats.replied(code.as_u16());
        let to = self.reply_to(req.top_via().ok().as_ref(), d.src);
        self.send(d.socket, to, out);
    }

    /// Where the responses to a request with top Via `via` from `src` go:
    /// [`reply_addr`], or with NAT handling on always the source port (as
    /// if the UA had asked for rport: Kamailio's `force_rport()`).
    pub fn reply_to(&self, via: Option<&crate::sip::Via<'_>>, src: SocketAddr) -> SocketAddr {
        if self.nat.is_some() {
            src
        } else {
            reply_addr(via, src)
        }
    }

    /// Writes sipfront's own answer `code` to `req`, which came from `src`;
    /// `top_via` is its top Via when validation decoded it already.
    pub fn local_reply(
        &self,
        req: &Message<'_>,
        top_via: Option<&crate::sip::Via<'_>>,
        src: SocketAddr,
        code: StatusCode,
        out: &mut Vec<u8>,
    ) -> Result<(), SipError> {
        // A To-tag derived from the request, so a retransmission gets the
        // same reply (§8.2.6.2); a 100 Trying carries none.
        let mut tag = [0u8; branch::LEN];
        let tagged = code.as_u16() > 100;
        if tagged {
            let via = req.values(HeaderName::Via).next().unwrap_or(b"");
            let h = branch::request_hash(req, via);
            branch::format(&self.id.branch_key, self.worker, 0, h, &mut tag);
        }
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
            to_tag: tagged.then_some(&tag[branch::PREFIX.len()..]),
            source: Some((src.ip(), src.port())),
            headers: &extra[..n],
            top_via,
            ..Default::default()
        };
        writer::build_reply(req, code, &opts, out)
    }

    /// Counts a request forwarded, by method and backend.
    pub fn count_forward(&mut self, method: Method, backend: Option<BackendId>) {
        self.stats.requests_forwarded += 1;
        self.stats.forwarded_method(method);
        if let Some(b) = backend {
            self.stats.forwarded_to(b.0 as usize);
        }
    }

    /// RFC 3261 §16.3 steps 3-4 and §16.4-16.5: where the request goes.
    /// With `want_ranking`, a target the dispatcher chose comes with the
    /// rest of its ranking (for failover); `affinity` places in-dialog
    /// requests of dialogs that failed over.
    #[allow(clippy::too_many_arguments)]
    pub fn route(
        &mut self,
        m: &Message<'_>,
        req: &Request<'_>,
        routing: &Routing,
        health: &dyn Health,
        d: Datagram<'_>,
        want_ranking: bool,
        affinity: Option<&dyn DialogAffinity>,
    ) -> Result<Route, SipError> {
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
            })
            .into());
        }
        // §16.3 step 4: a Via of ours whose branch this request would get
        // again is a loop; a different branch is a spiral.
        let vias: SmallVec<[&[u8]; 8]> = m.values(HeaderName::Via).collect();
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
                    return Ok(Target::Reply(StatusCode::LOOP_DETECTED).into());
                }
            }
        }
        // §16.4: Route values that name sipfront are removed when forwarding
        // (counted here, removed by `forward`); a Request-URI that is one of
        // sipfront's Record-Route URIs came through a strict router.
        let has_route = m.header(HeaderName::Route).is_some();
        let mut next_route: Option<Uri<'_>> = None;
        // A Route of sipfront's that carries a flow: the Path it wrote
        // into a REGISTER, used by the registrar (RFC 3327 §5.3).
        let mut path_flow: Option<Flow> = None;
        if has_route {
            for r in m.routes() {
                let r = r?;
                if next_route.is_some() {
                    continue;
                }
                if !r.uri.host.is_some_and(|h| self.id.is_me(&h, r.uri.port)) {
                    next_route = Some(r.uri);
                    if self.preloaded(req, routing, d) {
                        match self.cfg.preloaded_route {
                            super::PreloadedRoute::Honour => {}
                            super::PreloadedRoute::Reject => {
                                self.stats.preloaded_routes += 1;
                                return Ok(Target::Reply(StatusCode::FORBIDDEN).into());
                            }
                            super::PreloadedRoute::Ignore => {
                                // Dispatched as usual; `forward` removes them.
                                self.stats.preloaded_routes += 1;
                                next_route = None;
                                break;
                            }
                        }
                    }
                } else if path_flow.is_none() && self.nat.is_some() {
                    path_flow = fix::uri_flow(&r.uri).map(|f| f.0);
                }
            }
        }
        // A client's own Routes are followed only when the policy says so,
        // strict-route compatibility included.
        let routes_allowed = self.cfg.preloaded_route == super::PreloadedRoute::Honour
            || !has_route
            || !self.preloaded(req, routing, d);
        if to_us && ruri.lr() && has_route && routes_allowed {
            // Strict-route compatibility: the last Route is the real target.
            if let Some(last) = m.routes().last() {
                let last = last?;
                return Ok(self.uri_target(&last.uri, routing, d).into());
            }
        }
        if let Some(r) = next_route {
            return Ok(self.uri_target(&r, routing, d).into());
        }
        if let Some(f) = path_flow {
            return Ok(self.flow_target(f).into());
        }
        // A Request-URI with the flow of a NATed UA in it (an aliased or
        // `received` Contact used as a target: handle_ruri_alias).
        if self.nat.is_some() && !ruri_is_me {
            if let Some((f, _)) = fix::uri_flow(&ruri) {
                return Ok(self.flow_target(f).into());
            }
        }
        if to_us && method == Method::Options {
            // A keepalive OPTIONS to sipfront itself.
            return Ok(Target::Reply(StatusCode::OK).into());
        }
        let in_dialog = req.to.tag().is_some();
        if !ruri_is_me {
            if routing.backend_at(&d.src).is_some() {
                // From a backend toward a client: the Request-URI is the
                // target.
                return Ok(self.uri_target(&ruri, routing, d).into());
            }
            // In-dialog request whose remote target is a backend.
            if in_dialog {
                if let Some(dest) = uri_addr(&ruri).and_then(|a| routing.backend_at(&a)) {
                    return Ok(Target::Send {
                        to: dest.addr,
                        socket: Socket::Egress,
                        backend: Some(dest.id),
                    }
                    .into());
                }
            }
        }
        // Stateful: a dialog whose INVITE failed over lives elsewhere than
        // its Call-ID hash says.
        if in_dialog {
            if let Some((to, id)) = affinity.and_then(|a| a.lookup(req.call_id)) {
                return Ok(Target::Send {
                    to,
                    socket: Socket::Egress,
                    backend: Some(id),
                }
                .into());
            }
        }
        // The dispatcher: a rule picks the set, the set's algorithm the
        // destination (in-dialog requests without Route hash the same way).
        let set_idx = routing.rules.pick(m, d.src.ip());
        let Some(set) = routing.sets.get(set_idx) else {
            return Ok(Target::Reply(StatusCode::SERVICE_UNAVAILABLE).into());
        };
        // Only what the set's algorithm hashes, from what validation decoded.
        let mut input = SelectInput::new(req.call_id, d.src.ip());
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
        let mut ranking = None;
        let chosen = if want_ranking && !in_dialog {
            // The whole ranking, for failover (initial requests).
            let mut ids = SmallVec::new();
            if by_call_id {
                self.selector
                    .ranking_by_call_id(set, &input, &health, &mut ids);
            } else {
                self.selector.ranking(set, &input, &health, &mut ids);
            }
            let first = ids.first().and_then(|id| set.get(*id));
            ranking = Some((set_idx, ids));
            first
        } else if by_call_id {
            self.selector.select_by_call_id(set, &input, &health)
        } else {
            self.selector.select(set, &input, &health)
        };
        let target = match chosen {
            Some(dest) => Target::Send {
                to: dest.addr,
                socket: Socket::Egress,
                backend: Some(dest.id),
            },
            None => Target::Reply(StatusCode::SERVICE_UNAVAILABLE),
        };
        Ok(Route { target, ranking })
    }

    /// True when `src` is one of the backends.
    pub fn is_backend(&self, src: &SocketAddr) -> bool {
        self.routing.load().backend_at(src).is_some()
    }

    /// The worker a request belongs to when its top Route is sipfront's
    /// and names another worker (NAT handling's `sfw`): that worker holds
    /// the NAT flow the request is about.
    pub fn flow_owner(&self, m: &Message<'_>) -> Option<u8> {
        self.nat.as_ref()?;
        let top = m.routes().next()?.ok()?;
        let uri = &top.uri;
        if !uri.host.is_some_and(|h| self.id.is_me(&h, uri.port)) {
            return None;
        }
        let v = uri.params.value(WORKER_PARAM)??;
        let w: u8 = std::str::from_utf8(v).ok()?.parse().ok()?;
        (w != self.worker && usize::from(w) < self.id.egress.len()).then_some(w)
    }

    /// Where a request for the NAT flow `f` goes: the endpoint its contact
    /// moved to if the NAT rebound, from the listen socket the flow came in
    /// on (so the NAT's mapping matches).
    fn flow_target(&mut self, f: Flow) -> Target {
        let Some(nat) = self.nat.as_deref() else {
            return Target::Reply(StatusCode::SERVICE_UNAVAILABLE);
        };
        let cur = nat.table.current(&f);
        self.stats.nat.flows_resolved += 1;
        if cur != f {
            self.stats.nat.flows_rebound += 1;
        }
        if !usable(cur.addr.ip()) {
            return Target::Reply(StatusCode::new(478).unwrap_or(StatusCode::BAD_REQUEST));
        }
        let listen = if usize::from(cur.listen) < self.id.listens.len() {
            cur.listen
        } else {
            0
        };
        Target::Send {
            to: cur.addr,
            socket: Socket::Listen(listen),
            backend: None,
        }
    }

    /// True when `req`, from `d`'s source, is a client's initial request
    /// whose Route headers the preloaded-route policy rules on: not from a
    /// backend, no To-tag, and not an ACK or CANCEL (those follow their
    /// INVITE).
    fn preloaded(&self, req: &Request<'_>, routing: &Routing, d: Datagram<'_>) -> bool {
        req.to.tag().is_none()
            && !matches!(req.method, Method::Ack | Method::Cancel)
            && routing.backend_at(&d.src).is_none()
    }

    /// The address a URI routes to: an IP literal, or a backend's name.
    fn uri_target(&self, uri: &Uri<'_>, routing: &Routing, d: Datagram<'_>) -> Target {
        // No resolver on the message path: a name is not routable (478).
        let unresolvable = Target::Reply(StatusCode::new(478).unwrap_or(StatusCode::BAD_REQUEST));
        let Some(to) = uri_addr(uri) else {
            return unresolvable;
        };
        if !usable(to.ip()) {
            return unresolvable;
        }
        match routing.backend_at(&to) {
            Some(dest) => Target::Send {
                to,
                socket: Socket::Egress,
                backend: Some(dest.id),
            },
            // Toward a client: from the socket clients know.
            None => Target::Send {
                to,
                socket: match d.socket {
                    Socket::Listen(i) => Socket::Listen(i),
                    _ => Socket::Listen(0),
                },
                backend: None,
            },
        }
    }

    /// RFC 3261 §16.6: the forwarding edits, written into `out`. `txn`
    /// (stateful mode) names the transaction and attempt in the branch.
    pub fn forward(
        &mut self,
        m: &Message<'_>,
        req: &Request<'_>,
        d: Datagram<'_>,
        socket: Socket,
        out: &mut Vec<u8>,
        txn: Option<u64>,
    ) -> Result<(), SipError> {
        let ignore_preloaded = self.cfg.preloaded_route == super::PreloadedRoute::Ignore
            && m.header(HeaderName::Route).is_some()
            && {
                let routing = self.routing.load();
                self.preloaded(req, &routing, d)
            };
        let id = &*self.id;
        let e = &mut self.edits;
        e.clear();
        // §18.2.1 / RFC 3581: where the request really came from.
        writer::set_received_on(m, &req.top_via, e, d.src.ip(), d.src.port());
        let listen = match d.socket {
            Socket::Listen(i) => i,
            _ => 0,
        };
        let mut nat_flag = 0;
        if let Some(nat) = self.nat.as_deref_mut() {
            // Responses go back to the port the NAT mapped.
            writer::force_rport(m, &req.top_via, e, d.src.port());
            let rr = self
                .record_routes
                .get(usize::from(listen))
                .map(|r| &r.0[..]);
            let now_ms = self.now_us / 1000;
            let from_backend = self.routing.load().backend_at(&d.src).is_some();
            let (nated, new) = nat_request(
                nat,
                &mut self.stats,
                m,
                req,
                d,
                socket,
                listen,
                rr,
                e,
                now_ms,
                from_backend,
            );
            if nated {
                nat_flag = branch::NAT_FLAG;
            }
            if let Some(id) = new {
                let at = now_ms + nat.cfg.keepalive_interval_ms;
                self.timers.arm(at, Timer::NatPing(id));
            }
        }
        // §16.4: drop the Routes that name sipfront; all of them on a
        // client's initial request under the `ignore` policy.
        if ignore_preloaded {
            let all = m.routes().count();
            writer::remove_values(m, e, HeaderName::Route, all);
        } else if m.header(HeaderName::Route).is_some() {
            let ours = m
                .routes()
                .take_while(|r| {
                    r.as_ref()
                        .is_ok_and(|r| r.uri.host.is_some_and(|h| id.is_me(&h, r.uri.port)))
                })
                .count();
            if ours > 0 {
                writer::remove_values(m, e, HeaderName::Route, ours);
            }
        }
        // §16.6 step 8: sipfront's Via, from the worker's egress socket.
        let hash = branch::request_hash_with(
            m,
            req.from.tag(),
            req.call_id,
            req.cseq.seq,
            Some(&req.top_via),
            req.top_via.raw,
        );
        let mut via: SmallVec<[u8; 128]> = SmallVec::new();
        via.extend_from_slice(&self.via_prefix);
        let key = &self.id.branch_key;
        match txn {
            Some(t) => {
                let mut bt = [0u8; branch::LEN_TXN];
                branch::format_txn(key, self.worker, listen | nat_flag, hash, t, &mut bt);
                via.extend_from_slice(&bt);
            }
            None => {
                let mut b = [0u8; branch::LEN];
                branch::format(key, self.worker, listen | nat_flag, hash, &mut b);
                via.extend_from_slice(&b);
            }
        }
        writer::add_via(m, e, &via);
        // §16.6 step 3: Max-Forwards.
        if writer::decrement_max_forwards(m, e)?.is_none() {
            e.insert_fmt(
                m.headers_end(),
                format_args!("Max-Forwards: {}\r\n", self.cfg.max_forwards),
            );
        }
        // §16.6 step 4: Record-Route on a dialog-creating initial request.
        if self.cfg.record_route && req.to.tag().is_none() && req.method.creates_dialog() {
            if let Some((rr, out_rr)) = self.record_routes.get(usize::from(listen)) {
                // A second entry when the backend side is another interface.
                if let (Socket::Egress, Some(o)) = (socket, out_rr) {
                    writer::add_record_route(m, e, o);
                }
                writer::add_record_route(m, e, rr);
            }
        }
        writer::write(m, e, out).map_err(|_| SipError::BadHeader(HeaderName::Via))?;
        if out.len() > UDP_MAX_PAYLOAD {
            // Too large for a datagram once sipfront's headers are in: the
            // kernel would refuse it after it was counted as forwarded
            // (and, stateful, charged to the backend as a timeout). It is
            // answered 513 instead (RFC 3261 §18.1.1, §21.5.14).
            out.clear();
            return Err(SipError::MessageTooLarge);
        }
        Ok(())
    }

    /// True when `req` is an ACK for one of sipfront's own replies: its
    /// To-tag is one sipfront made for this very request (it carries the
    /// request's hash and verifies with the process's key). Such an ACK
    /// ends there (§17.2.1); forwarding it would hand a backend an ACK for
    /// a transaction it never saw.
    pub fn acks_own_reply(&self, m: &Message<'_>, req: &Request<'_>) -> bool {
        let Some(tag) = req.to.tag() else {
            return false;
        };
        if tag.len() + branch::PREFIX.len() != branch::LEN {
            return false;
        }
        let mut b = [0u8; branch::LEN];
        b[..branch::PREFIX.len()].copy_from_slice(branch::PREFIX);
        b[branch::PREFIX.len()..].copy_from_slice(tag);
        let Some(p) = branch::parse(&b) else {
            return false;
        };
        let via = m.values(HeaderName::Via).next().unwrap_or(b"");
        p.verify(&self.id.branch_key) && p.hash == branch::request_hash(m, via)
    }

    /// The branch of a response's top Via when sipfront wrote it (its MAC
    /// not checked yet: [`branch::Parsed::verify`]).
    pub fn our_branch(&self, resp: &Response<'_>) -> Option<branch::Parsed> {
        let top = &resp.top_via;
        top.branch
            .and_then(branch::parse)
            .filter(|_| self.id.is_me(&top.host, top.port))
    }

    /// Writes response `m`, which came `from`, without sipfront's Via into
    /// `out` (§16.7 step 9), with NAT handling's edits, and counts it
    /// relayed; false when it cannot be written.
    pub fn strip_via(&mut self, m: &Message<'_>, from: &Source, out: &mut Vec<u8>) -> bool {
        self.edits.clear();
        writer::remove_top_via(m, &mut self.edits);
        if self.nat.is_some() {
            self.nat_response(m, from);
        }
        if writer::write(m, &mut self.edits, out).is_err() {
            return false;
        }
        self.stats.responses_forwarded += 1;
        true
    }

    /// The stateless response relay (§16.7 step 3, §18.2.2): sipfront's
    /// Via removed, sent to the next Via (received/rport honoured) from the
    /// listen socket the request came in on.
    pub fn relay_response(&mut self, m: &Message<'_>, resp: &Response<'_>, from: &Source) {
        let b = &from.branch;
        let Some(next) = &resp.next_via else {
            self.stats.drop(DropReason::NoNextVia);
            return;
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
            return;
        };
        let mut out = self.out.buffer();
        if !self.strip_via(m, from, &mut out) {
            self.out.recycle(out);
            self.stats.drop(DropReason::BadResponse);
            return;
        }
        self.send(self.upstream_socket(b), SocketAddr::new(ip, port), out);
    }

    /// The listen socket a response goes out of: the one the request came
    /// in on, as its branch says.
    pub fn upstream_socket(&self, b: &branch::Parsed) -> Socket {
        if usize::from(b.listen) < self.id.listens.len() {
            Socket::Listen(b.listen)
        } else {
            Socket::Listen(0)
        }
    }
}

impl Forwarder {
    /// NAT handling of a response being relayed (its edits go with the
    /// Via removal): a UA's answer (not from a backend) has its
    /// Contact fixed when the UA is behind NAT; an answer a backend sends
    /// toward a NATed UA teaches the flow table (a REGISTER's 2xx binds the
    /// registration, an INVITE's 2xx starts a dialog).
    fn nat_response(&mut self, m: &Message<'_>, from: &Source) {
        let Some(nat) = self.nat.as_deref_mut() else {
            return;
        };
        let now_ms = self.now_us / 1000;
        let code = m.status().map_or(0, |c| c.as_u16());
        let cseq = m.cseq().map(|c| c.method).unwrap_or(Method::Other);
        let keep = nat.cfg.keepalive != keepalive::Keepalive::Off;
        let mut new = None;
        if from.ua {
            let listen = from.branch.listen;
            let hit = detect::response(m, from.src, nat.cfg.tests);
            if hit.is_empty() {
                return;
            }
            self.stats.nat.nated_responses += 1;
            self.stats.nat.count_verdict(hit);
            let flow = Flow::udp(from.src, listen);
            if let Some(how) = nat.cfg.contact {
                let n = fix::fix_contacts(m, &mut self.edits, &flow, how);
                count_fixed(&mut self.stats.nat, how, n);
            }
            if keep && cseq == Method::Invite && (200..300).contains(&code) {
                if let Ok(cid) = m.call_id() {
                    let until = now_ms + nat.cfg.dialog_timeout_ms;
                    new = noted(nat.table.dialog(now_ms, &flow, table::call_key(cid), until));
                }
            }
        } else if from.branch.nat && keep && (200..300).contains(&code) {
            // The UA's flow: where the response goes (the next Via,
            // with the received/rport sipfront wrote).
            let Some(Ok(next)) = m.vias().nth(1) else {
                return;
            };
            // No `received` when the sent-by address was the source.
            let ip = next.received.and_then(crate::sip::host::parse_ip);
            let Some(ip) = ip.or(next.host.ip()) else {
                return;
            };
            let Some(Some(port)) = next.rport else {
                return;
            };
            let flow = Flow::udp(SocketAddr::new(ip, port), from.branch.listen);
            match cseq {
                Method::Register => {
                    let expires = register_expires(m);
                    nat.table.register_confirmed(now_ms, &flow, expires);
                }
                Method::Invite => {
                    if let Ok(cid) = m.call_id() {
                        let until = now_ms + nat.cfg.dialog_timeout_ms;
                        new = noted(nat.table.dialog(now_ms, &flow, table::call_key(cid), until));
                    }
                }
                _ => {}
            }
        }
        if let Some(id) = new {
            self.timers
                .arm(now_ms + nat.cfg.keepalive_interval_ms, Timer::NatPing(id));
        }
        self.nat_gauges();
    }

    fn nat_gauges(&mut self) {
        if let Some(nat) = self.nat.as_deref() {
            let t = nat.table.stats;
            let s = &mut self.stats.nat;
            s.flows = nat.table.len() as u64;
            s.flows_refused = t.refused;
            s.flows_expired = t.expired;
            s.flows_dead = t.dead;
            s.contacts_moved = t.rebound;
        }
    }

    /// A flow's keepalive timer fired: ping it (and re-arm), or let it go.
    pub fn nat_ping(&mut self, id: FlowId) {
        let Some(nat) = self.nat.as_deref_mut() else {
            return self.stats.internal_fault();
        };
        let now_ms = self.now_us / 1000;
        let kind = nat.cfg.keepalive;
        let failures = if kind.is_sip() {
            nat.cfg.keepalive_failures
        } else {
            0
        };
        if let Due::Ping(flow, seq) = nat.table.due(id, now_ms, failures) {
            let listen = usize::from(flow.listen).min(self.id.listens.len().saturating_sub(1));
            if let Some(l) = self.id.listens.get(listen) {
                let sender = keepalive::Sender {
                    key: &self.id.branch_key,
                    worker: self.worker,
                    listen_host: &l.host,
                    listen_port: l.port,
                    from: &nat.cfg.keepalive_from,
                };
                let mut b = self.out.buffer();
                keepalive::write(kind, &sender, &flow, id.to_u64(), seq, &mut b);
                self.stats.nat.keepalives_sent += 1;
                let socket = Socket::Listen(listen as u8);
                match kind {
                    keepalive::Keepalive::Options => self.stats.originate(Originated::Options),
                    keepalive::Keepalive::Notify => self.stats.originate(Originated::Notify),
                    _ => {}
                }
                if !self.out.push(
                    Transmit::Send {
                        socket,
                        to: flow.addr,
                    },
                    b,
                ) {
                    self.stats.drop(DropReason::OutboxFull);
                }
            }
            let interval = nat.cfg.keepalive_interval_ms;
            self.timers.arm(now_ms + interval, Timer::NatPing(id));
        }
        self.nat_gauges();
    }

    /// An answer to the keepalive whose branch suffix is `txn`.
    pub fn nat_answered(&mut self, txn: u64) {
        let id = FlowId::from_u64(txn & !keepalive::BRANCH_FLAG);
        if let Some(nat) = self.nat.as_deref_mut() {
            if nat.table.answered(id) {
                self.stats.nat.keepalives_answered += 1;
            }
        } else {
            self.stats.drop(DropReason::ResponseNotOurs);
        }
    }

    /// The flows kept open, for the admin API.
    pub fn nat_flows(&self, limit: usize) -> Vec<crate::nat::FlowInfo> {
        self.nat
            .as_deref()
            .map(|n| n.table.list(self.now_us / 1000, limit))
            .unwrap_or_default()
    }
}

/// The flow to arm a keepalive for (a full table is counted by the table).
fn noted(n: Noted) -> Option<FlowId> {
    match n {
        Noted::New(id) => Some(id),
        Noted::Known | Noted::Full => None,
    }
}

fn count_fixed(s: &mut crate::nat::NatStats, how: ContactFix, n: usize) {
    let n = n as u64;
    match how {
        ContactFix::Alias => s.contacts_aliased += n,
        ContactFix::Rewrite => s.contacts_rewritten += n,
        ContactFix::Received => s.contacts_received += n,
    }
}

/// How long a REGISTER's 2xx binds: the largest `expires` of its
/// Contacts, else its Expires header; 0 without Contacts (RFC 3261
/// §10.3 step 8: the 2xx lists the current bindings).
fn register_expires(m: &Message<'_>) -> u32 {
    let header = m.expires().ok().flatten();
    let mut best: Option<u32> = None;
    for c in m.contacts().flatten() {
        if let Some(a) = c.addr() {
            let e = a.expires().or(header).unwrap_or(3600);
            best = Some(best.map_or(e, |b| b.max(e)));
        }
    }
    best.unwrap_or(0)
}

/// NAT handling of a request being forwarded (its edits join the
/// forwarding edits in `e`). Returns whether the sender is behind NAT, and
/// a new flow whose keepalive must be armed.
#[allow(clippy::too_many_arguments)]
fn nat_request(
    nat: &mut NatPart,
    stats: &mut Stats,
    m: &Message<'_>,
    req: &Request<'_>,
    d: Datagram<'_>,
    socket: Socket,
    listen: u8,
    path_uri: Option<&[u8]>,
    e: &mut crate::sip::Edits,
    now_ms: u64,
    from_backend: bool,
) -> (bool, Option<FlowId>) {
    if req.method == Method::Bye {
        // The dialog ends: its flow is kept no longer for it.
        nat.table.end_dialog(table::call_key(req.call_id));
    }
    if let Socket::Listen(_) = socket {
        // Toward a UA: a flow in the Request-URI is removed
        // (handle_ruri_alias); the request goes to the flow.
        if let Some((_, p)) = fix::uri_flow(&req.ruri) {
            fix::remove_ruri_param(m, e, &p);
        }
        return (false, None);
    }
    if from_backend {
        // From a backend: not a UA's flow.
        return (false, None);
    }
    let hit = detect::request(m, &req.top_via, d.src, nat.cfg.tests);
    if hit.is_empty() {
        return (false, None);
    }
    if nat.count {
        stats.nat.nated_requests += 1;
        stats.nat.count_verdict(hit);
    }
    let flow = Flow::udp(d.src, listen);
    let count = nat.count;
    let fixed = |how: ContactFix, e: &mut crate::sip::Edits, stats: &mut Stats| {
        let n = fix::fix_contacts(m, e, &flow, how);
        if count {
            count_fixed(&mut stats.nat, how, n);
        }
    };
    let mut new = None;
    if req.method == Method::Register {
        match nat.cfg.register {
            RegisterFix::Path => {
                if let Some(uri) = path_uri {
                    fix::add_path(m, e, uri, &flow);
                    if count {
                        stats.nat.paths_added += 1;
                    }
                }
            }
            RegisterFix::Received => fixed(ContactFix::Received, e, stats),
            RegisterFix::Contact => {
                if let Some(how) = nat.cfg.contact {
                    fixed(how, e, stats);
                }
            }
        }
        if nat.cfg.keepalive != keepalive::Keepalive::Off {
            let aor = &req.to.uri;
            let header = m.expires().ok().flatten();
            for c in m.contacts().flatten() {
                let Some(a) = c.addr() else { continue };
                let u = &a.uri;
                let key = table::contact_key(
                    aor.user.unwrap_or(b""),
                    aor.host_raw,
                    u.user.unwrap_or(b""),
                    u.host_raw,
                    u.port_or_default(),
                );
                let expires = a.expires().or(header).unwrap_or(3600);
                if let Noted::New(id) = nat.table.register_sent(now_ms, &flow, key, expires) {
                    new = Some(id);
                }
            }
        }
    } else if let Some(how) = nat.cfg.contact {
        fixed(how, e, stats);
    }
    (true, new)
}

/// Where a response to a request with top Via `via` from `src` goes
/// (§18.2.2 with RFC 3581): the source address; the source port when rport
/// was asked for (or the Via does not parse), else the sent-by port.
pub(crate) fn reply_addr(via: Option<&crate::sip::Via<'_>>, src: SocketAddr) -> SocketAddr {
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
