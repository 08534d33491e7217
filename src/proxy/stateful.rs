//! Stateful proxying (RFC 3261 §16.7–§16.10 over the §17 transactions of
//! [`super::txn`]): the request and response paths of stateful mode and the
//! timers that drive retransmission, timeouts and failover.
//!
//! - A new request creates an entry; an INVITE is answered 100 Trying at
//!   once (§16.2 / §17.2.1). The request is forwarded with a branch naming
//!   the entry and attempt, and retransmitted on timers A/E.
//! - A retransmitted request is absorbed and answered with the last
//!   response sent upstream (§17.2.1, §17.2.2).
//! - Responses: 100 is absorbed; other provisional responses are relayed as
//!   they come; a 2xx to an INVITE is relayed every time (§16.7 step 5); the
//!   first other final response is relayed once and retransmitted on timer G
//!   until the ACK (hop by hop, §17.2.1). A non-2xx to an INVITE is ACKed
//!   toward the destination by sipfront (§17.1.1.3).
//! - Failover (Kamailio's `t_relay` + `ds_next_dst`): no response within
//!   `fr_timeout`, Timer C, or a final response with a failover code sends
//!   the request to the next destination of the ranking, up to `max_tries`.
//!   The destination is reported to the health table (timeout, failure,
//!   Retry-After).
//! - CANCEL (§16.10): answered 200 hop by hop; sent on to the pending
//!   branch once it has answered provisionally (§9.1); the INVITE then ends
//!   with the branch's 487, or a 487 of sipfront's own if the branch stays
//!   silent.
//! - An ACK for a 2xx, a CANCEL that matches nothing and a response that
//!   matches no entry are handled statelessly, as §16.10/§16.7 require.

use super::txn::timer::{Timer, Wheel};
use super::txn::{hop, kind, CancelState, ClientState, ServerState, Table, Txn, TxnConfig};
use super::*;
use crate::dispatch::{BackendId, Passive};
use smallvec::SmallVec;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

/// The transaction layer of one worker.
pub(crate) struct Stateful {
    pub cfg: TxnConfig,
    pub table: Table,
    wheel: Wheel,
    fired: Vec<Timer>,
    /// Last attempt id handed out (ids are unique per worker).
    next_id: u32,
    /// The clock, µs from `epoch`, as of the last tick.
    now_us: u64,
    epoch: Instant,
    /// The ranking `route` computed for the request in hand, and its set.
    pub ranking: SmallVec<[BackendId; 8]>,
    pub ranked_set: Option<usize>,
    /// Dialogs that failed over: Call-ID → the destination that answered.
    pub affinity: Affinity,
    /// Entries that have sent no final answer upstream yet: the work a
    /// drain must wait for.
    pending: usize,
    /// The health generation last seen (a destination went down since).
    health_gen: u64,
}

/// Where the dialogs live whose INVITE failed over. In-dialog requests
/// without a Route (SIPp's built-in scenarios, UAs that ignore
/// Record-Route) are placed by the Call-ID hash, which names the
/// destination that failed; this map sends them where the dialog really
/// is. Bounded: the oldest entry goes when it is full; a BYE's final
/// answer removes its dialog.
pub(crate) struct Affinity {
    map: HashMap<u64, (SocketAddr, BackendId), ahash::RandomState>,
    order: std::collections::VecDeque<u64>,
    cap: usize,
}

impl Affinity {
    fn new(cap: usize) -> Affinity {
        Affinity {
            map: HashMap::with_hasher(ahash::RandomState::new()),
            order: std::collections::VecDeque::new(),
            cap: cap.max(1),
        }
    }

    pub fn get(&self, key: u64) -> Option<(SocketAddr, BackendId)> {
        if self.map.is_empty() {
            return None;
        }
        self.map.get(&key).copied()
    }

    fn insert(&mut self, key: u64, v: (SocketAddr, BackendId)) {
        if self.map.insert(key, v).is_none() {
            if self.order.len() >= self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
            self.order.push_back(key);
        }
    }

    fn remove(&mut self, key: u64) {
        if self.map.remove(&key).is_some() {
            self.order.retain(|k| *k != key);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Stateful {
    pub fn new(cfg: TxnConfig) -> Stateful {
        let cfg_cap = cfg.max_transactions;
        Stateful {
            table: Table::new(cfg.max_transactions),
            cfg,
            wheel: Wheel::new(0),
            fired: Vec::new(),
            next_id: 0,
            now_us: 0,
            epoch: Instant::now(),
            ranking: SmallVec::new(),
            ranked_set: None,
            affinity: Affinity::new(cfg_cap),
            pending: 0,
            health_gen: 0,
        }
    }

    fn now_ms(&self) -> u64 {
        self.now_us / 1000
    }

    /// The affinity key of a Call-ID.
    pub fn call_key(&self, call_id: &[u8]) -> u64 {
        let mut h = self.table.hasher.build_hasher();
        h.write(call_id);
        h.write_u8(0xfe);
        h.finish()
    }

    fn new_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        if self.next_id == 0 {
            self.next_id = 1;
        }
        self.next_id
    }

    fn arm(&mut self, slot: u32, t: &mut Txn, k: u8, after_ms: u64) {
        let tok = &mut t.tokens[usize::from(k)];
        *tok = tok.wrapping_add(1);
        let timer = Timer {
            slot,
            gen: t.id,
            kind: k,
            token: *tok,
        };
        self.wheel.arm(self.now_ms() + after_ms, timer);
    }
}

fn disarm(t: &mut Txn, k: u8) {
    let tok = &mut t.tokens[usize::from(k)];
    *tok = tok.wrapping_add(1);
}

/// Stops every client-side timer of the current attempt.
fn disarm_client(t: &mut Txn) {
    for k in [kind::RETRANSMIT, kind::NO_RESPONSE, kind::NO_FINAL] {
        disarm(t, k);
    }
}

/// The value of a Retry-After (RFC 3261 §20.33): delta-seconds before any
/// comment or parameter.
fn retry_after(m: &Message<'_>) -> Option<Duration> {
    let v = m.values(HeaderName::RetryAfter).next()?;
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    let secs: u64 = std::str::from_utf8(v.get(..digits)?).ok()?.parse().ok()?;
    Some(Duration::from_secs(secs.min(86_400)))
}

impl Proxy {
    /// Moves the transaction clock to `now` and runs every timer due.
    /// Drivers call it once per loop turn, before handling a batch.
    pub fn tick(&mut self, now: Instant, health: &impl Health) {
        let Some(st) = self.txns.as_deref_mut() else {
            return;
        };
        let us = now.saturating_duration_since(st.epoch).as_micros() as u64;
        self.tick_us(us, health);
    }

    /// [`Proxy::tick`] with the clock given in µs since the proxy started
    /// (tests drive time this way).
    pub fn tick_us(&mut self, now_us: u64, health: &impl Health) {
        let Some(st) = self.txns.as_deref_mut() else {
            return;
        };
        st.now_us = st.now_us.max(now_us);
        let now_ms = st.now_ms();
        let mut fired = std::mem::take(&mut st.fired);
        st.wheel.expire(now_ms, &mut fired);
        let gen = health.generation();
        let went_down = gen != st.health_gen;
        st.health_gen = gen;
        for t in fired.drain(..) {
            self.on_timer(t, health);
        }
        if let Some(st) = self.txns.as_deref_mut() {
            st.fired = fired;
        }
        if went_down {
            self.abandon_dead_branches(health);
        }
    }

    /// A destination was taken out of selection (probing, an admin): every
    /// request still waiting on it gives up its branch now, as on Timer C
    /// (CANCEL if it rang) and fails over, instead of waiting minutes for a
    /// final answer that will not come from a dead server.
    fn abandon_dead_branches(&mut self, health: &impl Health) {
        let Some(st) = self.txns.as_deref() else {
            return;
        };
        let doomed: Vec<u32> = st
            .table
            .slots()
            .filter(|(_, t)| {
                t.server == ServerState::Proceeding
                    && t.client != ClientState::Completed
                    && t.backend.is_some_and(|b| !health.is_active(b))
            })
            .map(|(slot, _)| slot)
            .collect();
        for slot in doomed {
            let Some(mut t) = self.txns.as_deref_mut().and_then(|st| st.table.take(slot)) else {
                continue;
            };
            if t.invite && t.client == ClientState::Proceeding && t.cancel == CancelState::None {
                self.send_cancel(slot, &mut t);
                t.cancel = CancelState::None;
            }
            t.client = ClientState::Completed;
            disarm_client(&mut t);
            self.branch_failed(slot, &mut t, StatusCode::REQUEST_TIMEOUT, None, true);
            self.put(slot, t);
        }
    }

    /// How long the driver may sleep before the next [`Proxy::tick`].
    pub fn next_timer(&self) -> Option<Duration> {
        let st = self.txns.as_deref()?;
        let at = st.wheel.next_deadline_ms()?;
        Some(Duration::from_millis(at.saturating_sub(st.now_ms())))
    }

    /// Live transactions and the bytes they hold (the memory figure of
    /// docs/performance.md).
    pub fn transaction_memory(&self) -> (usize, usize) {
        self.txns
            .as_deref()
            .map_or((0, 0), |st| (st.table.live(), st.table.bytes()))
    }

    /// The §17.2.3 server key: top Via branch (with the magic cookie),
    /// sent-by and method class; without the cookie, the RFC 2543 fields
    /// (Request-URI, From tag, Call-ID, CSeq number, top Via).
    fn server_key(&self, m: &Message<'_>, req: &Request<'_>, class: &[u8]) -> u64 {
        let Some(st) = self.txns.as_deref() else {
            return 0;
        };
        let mut h = st.table.hasher.build_hasher();
        let v = &req.top_via;
        match v.branch {
            Some(b) if v.has_cookie() => {
                h.write(b);
                h.write_u8(0xff);
                h.write(v.host_raw);
                h.write_u16(v.port.unwrap_or(0));
            }
            _ => {
                h.write(m.request_uri().unwrap_or(b""));
                h.write_u8(0xff);
                h.write(req.from.tag().unwrap_or(b""));
                h.write_u8(0xff);
                h.write(req.call_id);
                h.write_u8(0xff);
                h.write_u32(req.cseq.seq);
                h.write(v.raw);
                h.write_u8(0xff);
            }
        }
        h.write(class);
        h.finish()
    }

    pub(super) fn stateful_request(
        &mut self,
        m: &Message<'_>,
        req: &Request<'_>,
        routing: &Routing,
        health: &impl Health,
        pkt: Inbound<'_>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        match req.method {
            Method::Ack => {
                if let Some(o) = self.ack_in(m, req) {
                    return o;
                }
                // An ACK for a 2xx is a transaction of its own, forwarded
                // statelessly (§16.7 step 10 / RFC 6026).
                return self.stateless_request(m, req, routing, health, pkt, out);
            }
            Method::Cancel => {
                let key = self.server_key(m, req, b"INVITE");
                let found = self.txns.as_deref().and_then(|st| st.table.find(key));
                let Some(slot) = found else {
                    // §16.10: no matching transaction: forward statelessly.
                    return self.stateless_request(m, req, routing, health, pkt, out);
                };
                // §9.2 / §16.10: answered 200 hop by hop.
                let o = self.reply(m, pkt, StatusCode::OK, out);
                self.cancel_in(slot, health);
                return o;
            }
            _ => {}
        }
        let class = m.method_bytes().unwrap_or(b"");
        let key = self.server_key(m, req, class);
        let Some(st) = self.txns.as_deref_mut() else {
            return Outcome::Drop(DropReason::Unanswerable);
        };
        if let Some(slot) = st.table.find(key) {
            // §17.2.1 / §17.2.2: a retransmission; answered with the last
            // response, if any, and not forwarded again.
            self.stats.retransmissions_absorbed += 1;
            let mut b = self.buffer();
            let to = self
                .txns
                .as_deref()
                .and_then(|st| st.table.get(slot))
                .filter(|t| !t.last.is_empty())
                .map(|t| {
                    b.extend_from_slice(&t.last);
                    (t.upstream, t.upstream_socket)
                });
            match to {
                Some((to, from)) => self.queue_owned(to, from, b),
                None => self.pool.push(b),
            }
            return Outcome::Queued;
        }
        if self.refuses_new_dialog(req) {
            return self.reply(m, pkt, StatusCode::SERVICE_UNAVAILABLE, out);
        }
        let Some(st) = self.txns.as_deref_mut() else {
            return Outcome::Drop(DropReason::Unanswerable);
        };
        if st.table.is_full() {
            self.stats.transactions_refused += 1;
            return self.reply(m, pkt, StatusCode::SERVICE_UNAVAILABLE, out);
        }
        st.ranked_set = None;
        let (dest, dest_socket, backend) = match self.route(m, req, routing, health, pkt) {
            Ok(Target::Send { to, from, backend }) => (to, from, backend),
            Ok(Target::Reply(code)) => return self.reply(m, pkt, code, out),
            Err(e) => return self.reply(m, pkt, e.status(), out),
        };
        let Some(st) = self.txns.as_deref_mut() else {
            return Outcome::Drop(DropReason::Unanswerable);
        };
        // The rest of the ranking, for failover.
        let mut candidates = SmallVec::new();
        if let Some(set) = st.ranked_set.and_then(|i| routing.sets.get(i)) {
            let more = usize::from(st.cfg.max_tries.saturating_sub(1));
            for id in st.ranking.iter().skip(1).take(more) {
                if let Some(d) = set.get(*id) {
                    candidates.push((d.addr, d.id));
                }
            }
        }
        let invite = req.method == Method::Invite;
        let id = st.new_id();
        // Stored buffers are exact-size copies: they live as long as the
        // transaction, pooled ones are sized for any datagram.
        let orig = pkt.data.to_vec();
        let t = Txn {
            id,
            key,
            invite,
            method: req.method,
            upstream: reply_addr(Some(&req.top_via), pkt.src),
            upstream_socket: pkt.socket,
            server: ServerState::Proceeding,
            last: Vec::new(),
            final_interval: st.cfg.t1_ms,
            orig,
            src: pkt.src,
            in_socket: pkt.socket,
            fwd: Vec::new(),
            dest,
            dest_socket,
            backend: backend.map(|b| BackendId(b as u32)),
            candidates,
            attempt: id,
            client: ClientState::Calling,
            interval: st.cfg.t1_ms,
            sent_us: st.now_us,
            cancel: CancelState::None,
            cancel_interval: st.cfg.t1_ms,
            tokens: [0; kind::COUNT],
        };
        let Some(slot) = st.table.insert(t) else {
            self.stats.transactions_refused += 1;
            return self.reply(m, pkt, StatusCode::SERVICE_UNAVAILABLE, out);
        };
        self.stats.transactions_total += 1;
        self.stats.transactions_current = st.table.live() as u64;
        st.pending += 1;
        self.stats.transactions_pending = st.pending as u64;
        let Some(mut t) = st.table.take(slot) else {
            return Outcome::Queued;
        };
        if invite {
            // §16.2 / §17.2.1: 100 Trying at once, so the client stops
            // retransmitting; it is also the answer to retransmissions.
            let mut trying = self.buffer();
            if self
                .local_reply(m, pkt.src, StatusCode::TRYING, &mut trying)
                .is_ok()
            {
                t.last = trying.clone();
                self.queue_owned(t.upstream, t.upstream_socket, trying);
                self.stats.replied(100);
            }
        }
        if self.send_attempt(slot, &mut t, Some((m, req))).is_err() {
            // Could not write the forwarded request: answer it instead.
            let code = StatusCode::BAD_REQUEST;
            self.final_local(slot, &mut t, code);
        }
        self.put(slot, t);
        Outcome::Queued
    }

    fn put(&mut self, slot: u32, t: Box<Txn>) {
        if let Some(st) = self.txns.as_deref_mut() {
            st.table.put(slot, t);
        }
    }

    /// Forwards the request of `t` to its current destination as a new
    /// attempt (new branch), and arms timers A/E and the failure timer.
    /// `parsed` is the request when the caller has it parsed already.
    fn send_attempt(
        &mut self,
        slot: u32,
        t: &mut Txn,
        parsed: Option<(&Message<'_>, &Request<'_>)>,
    ) -> Result<(), SipError> {
        let Some(st) = self.txns.as_deref_mut() else {
            return Ok(());
        };
        if t.attempt != t.id || !t.fwd.is_empty() {
            t.attempt = st.new_id();
        }
        t.client = ClientState::Calling;
        t.interval = st.cfg.t1_ms;
        t.sent_us = st.now_us;
        let txn_id = (u64::from(slot) << 32) | u64::from(t.attempt);
        let mut fwd = self.buffer();
        let pkt = Inbound {
            data: &t.orig,
            src: t.src,
            socket: t.in_socket,
        };
        let r = match parsed {
            Some((m, req)) => self.forward(m, req, pkt, t.dest_socket, &mut fwd, Some(txn_id)),
            None => Message::parse_with(&t.orig, &self.cfg.limits).and_then(|m| {
                let req = validate_request(&m)?;
                self.forward(&m, &req, pkt, t.dest_socket, &mut fwd, Some(txn_id))
            }),
        };
        if let Err(e) = r {
            self.pool.push(fwd);
            return Err(e);
        }
        t.fwd.clear();
        t.fwd.extend_from_slice(&fwd);
        t.fwd.shrink_to_fit();
        self.queue_owned(t.dest, t.dest_socket, fwd);
        self.count_forward(t.method, t.backend.map(|b| b.0 as usize));
        let Some(st) = self.txns.as_deref_mut() else {
            return Ok(());
        };
        let (t1, fr, t1x64) = (st.cfg.t1_ms, st.cfg.fr_ms, st.cfg.t1x64());
        st.arm(slot, t, kind::RETRANSMIT, t1);
        st.arm(slot, t, kind::NO_RESPONSE, fr.min(t1x64));
        disarm(t, kind::NO_FINAL);
        Ok(())
    }

    /// An ACK that matches an INVITE entry: the ACK of a non-2xx final
    /// response sipfront sent, absorbed (§17.2.1). `None`: not ours.
    fn ack_in(&mut self, m: &Message<'_>, req: &Request<'_>) -> Option<Outcome> {
        let key = self.server_key(m, req, b"INVITE");
        let st = self.txns.as_deref_mut()?;
        let slot = st.table.find(key)?;
        let mut t = st.table.take(slot)?;
        let handled = match t.server {
            ServerState::Completed if t.invite => {
                // Confirmed: timer G stops, timer I (T4) ends the entry.
                t.server = ServerState::Confirmed;
                disarm(&mut t, kind::RETRANSMIT_FINAL);
                let t4 = st.cfg.t4_ms;
                st.arm(slot, &mut t, kind::END, t4);
                true
            }
            ServerState::Confirmed => {
                self.stats.retransmissions_absorbed += 1;
                true
            }
            _ => false,
        };
        self.put(slot, t);
        handled.then_some(Outcome::Queued)
    }

    /// A CANCEL matching the INVITE in `slot` (its 200 is already written).
    fn cancel_in(&mut self, slot: u32, health: &impl Health) {
        let Some(mut t) = self.txns.as_deref_mut().and_then(|st| st.table.take(slot)) else {
            return;
        };
        if t.server != ServerState::Proceeding || t.cancel != CancelState::None {
            // Already answered finally, or a retransmitted CANCEL.
            if t.cancel != CancelState::None {
                self.stats.retransmissions_absorbed += 1;
            }
            self.put(slot, t);
            return;
        }
        self.stats.cancels += 1;
        match t.client {
            ClientState::Proceeding => self.send_cancel(slot, &mut t),
            // §9.1: not before the branch has answered provisionally.
            ClientState::Calling => t.cancel = CancelState::Pending,
            // Between attempts: nothing pending downstream.
            ClientState::Completed => {
                t.cancel = CancelState::Answered;
                self.final_local(slot, &mut t, StatusCode::REQUEST_TERMINATED);
            }
        }
        let _ = health;
        self.put(slot, t);
    }

    /// Sends the CANCEL of the current attempt (§9.1) and arms its timers.
    fn send_cancel(&mut self, slot: u32, t: &mut Txn) {
        let mut buf = self.buffer();
        if self.write_hop(t, "CANCEL", None, None, &mut buf) {
            self.queue_owned(t.dest, t.dest_socket, buf);
        } else {
            self.pool.push(buf);
        }
        t.cancel = CancelState::Sent;
        if let Some(st) = self.txns.as_deref_mut() {
            t.cancel_interval = st.cfg.t1_ms;
            let (t1, t1x64) = (st.cfg.t1_ms, st.cfg.t1x64());
            st.arm(slot, t, kind::RETRANSMIT_CANCEL, t1);
            st.arm(slot, t, kind::CANCEL_GIVE_UP, t1x64);
        }
    }

    /// Writes an ACK or CANCEL for `t`'s forwarded request. `via` is the
    /// Via of the attempt (the current one when `None`), `to` the To of the
    /// response being ACKed.
    fn write_hop(
        &self,
        t: &Txn,
        method: &str,
        via: Option<&[u8]>,
        to: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> bool {
        let Ok(fwd) = Message::parse_with(&t.fwd, &self.cfg.limits) else {
            return false;
        };
        let Some(via) = via.or_else(|| fwd.values(HeaderName::Via).next()) else {
            return false;
        };
        hop::build(&fwd, method, via, to, out).is_some()
    }

    /// Sends sipfront's own final answer `code` upstream for `t`.
    fn final_local(&mut self, slot: u32, t: &mut Txn, code: StatusCode) {
        let mut buf = self.buffer();
        let ok = match Message::parse_with(&t.orig, &self.cfg.limits) {
            Ok(m) => self.local_reply(&m, t.src, code, &mut buf).is_ok(),
            Err(_) => false,
        };
        if ok {
            self.stats.replied(code.as_u16());
            self.final_upstream(slot, t, buf);
        } else {
            // Nothing can be sent; the entry ends.
            self.pool.push(buf);
            self.answered(t);
            t.server = ServerState::Completed;
            if let Some(st) = self.txns.as_deref_mut() {
                st.arm(slot, t, kind::END, 0);
            }
        }
    }

    /// `t` leaves Proceeding (its final answer goes upstream now): it is no
    /// longer work a drain waits for.
    fn answered(&mut self, t: &Txn) {
        if t.server != ServerState::Proceeding {
            return;
        }
        if let Some(st) = self.txns.as_deref_mut() {
            st.pending = st.pending.saturating_sub(1);
            self.stats.transactions_pending = st.pending as u64;
        }
    }

    /// Sends the final response `bytes` upstream, keeps it for
    /// retransmissions, and moves the server side on (§17.2.1, §17.2.2).
    fn final_upstream(&mut self, slot: u32, t: &mut Txn, bytes: Vec<u8>) {
        let two = bytes.get(8) == Some(&b'2');
        t.last.clear();
        t.last.extend_from_slice(&bytes);
        t.last.shrink_to_fit();
        self.queue_owned(t.upstream, t.upstream_socket, bytes);
        disarm_client(t);
        disarm(t, kind::RETRANSMIT_CANCEL);
        disarm(t, kind::CANCEL_GIVE_UP);
        self.answered(t);
        let Some(st) = self.txns.as_deref_mut() else {
            return;
        };
        let (t1, t1x64) = (st.cfg.t1_ms, st.cfg.t1x64());
        if t.invite && two {
            // RFC 6026 Accepted: absorb INVITE retransmissions (timer L);
            // nothing needs to be kept.
            t.server = ServerState::Accepted;
            t.release(false, &mut self.pool);
        } else if t.invite {
            // Completed: timer G until the ACK, timer H bounds the wait.
            t.server = ServerState::Completed;
            t.final_interval = t1;
            st.arm(slot, t, kind::RETRANSMIT_FINAL, t1);
        } else {
            // Completed: timer J absorbs retransmissions with this answer.
            t.server = ServerState::Completed;
            t.release(true, &mut self.pool);
        }
        st.arm(slot, t, kind::END, t1x64);
    }

    /// The current attempt failed (timeout, Timer C, or a failover code):
    /// the next destination, or the final answer upstream — `resp` (the
    /// branch's response, ready to relay) or sipfront's own `code`.
    fn branch_failed(
        &mut self,
        slot: u32,
        t: &mut Txn,
        code: StatusCode,
        resp: Option<Vec<u8>>,
        failover: bool,
    ) {
        if t.server != ServerState::Proceeding {
            if let Some(b) = resp {
                self.pool.push(b);
            }
            return;
        }
        if failover && t.cancel == CancelState::None && !t.candidates.is_empty() {
            let (addr, id) = t.candidates.remove(0);
            t.dest = addr;
            t.backend = Some(id);
            self.stats.failovers += 1;
            if let Some(b) = resp {
                self.pool.push(b);
            }
            if self.send_attempt(slot, t, None).is_ok() {
                return;
            }
            return self.final_local(slot, t, StatusCode::SERVICE_UNAVAILABLE);
        }
        match resp {
            Some(b) => self.final_upstream(slot, t, b),
            None if t.cancel != CancelState::None => {
                self.final_local(slot, t, StatusCode::REQUEST_TERMINATED)
            }
            None => self.final_local(slot, t, code),
        }
    }

    fn on_timer(&mut self, tm: Timer, health: &impl Health) {
        let Some(st) = self.txns.as_deref_mut() else {
            return;
        };
        let Some(mut t) = st.table.take(tm.slot) else {
            return;
        };
        if t.id != tm.gen || t.tokens.get(usize::from(tm.kind)) != Some(&tm.token) {
            st.table.put(tm.slot, t);
            return;
        }
        let slot = tm.slot;
        let (t1, t2) = (st.cfg.t1_ms, st.cfg.t2_ms);
        match tm.kind {
            kind::RETRANSMIT => {
                // Timer A doubles without bound (bounded by B); E doubles up
                // to T2, and stays at T2 once a provisional came.
                let quiet_invite = t.invite && t.client != ClientState::Calling;
                if t.client != ClientState::Completed && !quiet_invite && !t.fwd.is_empty() {
                    self.queue_copy(t.dest, t.dest_socket, &t.fwd);
                    self.stats.retransmissions_sent += 1;
                    t.interval = if t.invite {
                        t.interval * 2
                    } else if t.client == ClientState::Proceeding {
                        t2
                    } else {
                        (t.interval * 2).min(t2)
                    };
                    if let Some(st) = self.txns.as_deref_mut() {
                        let d = t.interval;
                        st.arm(slot, &mut t, kind::RETRANSMIT, d);
                    }
                }
            }
            kind::NO_RESPONSE if t.client == ClientState::Calling => {
                // Nothing at all from this destination (Kamailio's
                // fr_timer): it failed; try the next one.
                self.stats.timeouts += 1;
                if let Some(b) = t.backend {
                    health.report(b, Passive::Timeout);
                }
                t.client = ClientState::Completed;
                disarm_client(&mut t);
                self.branch_failed(slot, &mut t, StatusCode::REQUEST_TIMEOUT, None, true);
            }
            kind::NO_FINAL if t.client == ClientState::Proceeding => {
                // Timer C (§16.8): CANCEL the branch and treat it as 408.
                // Non-INVITE: timer F.
                self.stats.timeouts += 1;
                if t.invite && t.cancel == CancelState::None {
                    self.send_cancel(slot, &mut t);
                    // A cancel of sipfront's own does not stop failover.
                    t.cancel = CancelState::None;
                }
                if let Some(b) = t.backend {
                    health.report(b, Passive::Timeout);
                }
                t.client = ClientState::Completed;
                disarm_client(&mut t);
                self.branch_failed(slot, &mut t, StatusCode::REQUEST_TIMEOUT, None, true);
            }
            kind::RETRANSMIT_FINAL if t.server == ServerState::Completed && t.invite => {
                // Timer G.
                self.queue_copy(t.upstream, t.upstream_socket, &t.last);
                self.stats.retransmissions_sent += 1;
                t.final_interval = (t.final_interval * 2).min(t2);
                if let Some(st) = self.txns.as_deref_mut() {
                    let d = t.final_interval;
                    st.arm(slot, &mut t, kind::RETRANSMIT_FINAL, d);
                }
            }
            kind::RETRANSMIT_CANCEL if t.cancel == CancelState::Sent => {
                let mut buf = self.buffer();
                if self.write_hop(&t, "CANCEL", None, None, &mut buf) {
                    self.queue_owned(t.dest, t.dest_socket, buf);
                    self.stats.retransmissions_sent += 1;
                } else {
                    self.pool.push(buf);
                }
                t.cancel_interval = (t.cancel_interval * 2).min(t2);
                if let Some(st) = self.txns.as_deref_mut() {
                    let d = t.cancel_interval;
                    st.arm(slot, &mut t, kind::RETRANSMIT_CANCEL, d);
                }
            }
            kind::CANCEL_GIVE_UP if t.server == ServerState::Proceeding => {
                // The branch never answered the INVITE after the CANCEL.
                t.client = ClientState::Completed;
                self.final_local(slot, &mut t, StatusCode::REQUEST_TERMINATED);
            }
            kind::END => {
                self.answered(&t);
                let Some(st) = self.txns.as_deref_mut() else {
                    return;
                };
                st.table.remove_taken(slot, &t);
                self.stats.transactions_current = st.table.live() as u64;
                t.release(false, &mut self.pool);
                self.pool.truncate(256);
                return;
            }
            _ => {}
        }
        let _ = t1;
        self.put(slot, t);
    }

    /// A response whose branch names transaction `txn` of this worker.
    /// `None`: no such entry (handled statelessly by the caller).
    pub(super) fn stateful_response(
        &mut self,
        m: &Message<'_>,
        txn: u64,
        health: &impl Health,
        src: SocketAddr,
        out: &mut Vec<u8>,
    ) -> Option<Outcome> {
        let slot = (txn >> 32) as u32;
        let attempt = txn as u32;
        let st = self.txns.as_deref_mut()?;
        let t = st.table.take(slot)?;
        let mine = attempt.wrapping_sub(t.id) <= t.attempt.wrapping_sub(t.id);
        if !mine {
            st.table.put(slot, t);
            return None;
        }
        let mut t = t;
        let o = self.response_in(slot, &mut t, m, (attempt, src), health, out);
        self.put(slot, t);
        Some(o)
    }

    /// The response `m` without sipfront's Via, in a pooled buffer.
    fn relayable(&mut self, m: &Message<'_>) -> Option<Vec<u8>> {
        let mut buf = self.buffer();
        buf.clear();
        self.edits.clear();
        writer::remove_top_via(m, &mut self.edits);
        if writer::write(m, &mut self.edits, &mut buf).is_err() {
            self.pool.push(buf);
            return None;
        }
        self.stats.responses_forwarded += 1;
        Some(buf)
    }

    fn response_in(
        &mut self,
        slot: u32,
        t: &mut Txn,
        m: &Message<'_>,
        (attempt, src): (u32, SocketAddr),
        health: &impl Health,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let code = m.status().map_or(0, |c| c.as_u16());
        let cseq = m.cseq().map(|c| c.method).unwrap_or(Method::Other);
        if cseq == Method::Cancel {
            // The answer to sipfront's CANCEL: stop retransmitting it.
            if attempt == t.attempt && code >= 200 && t.cancel == CancelState::Sent {
                t.cancel = CancelState::Answered;
                disarm(t, kind::RETRANSMIT_CANCEL);
            }
            return Outcome::Queued;
        }
        if attempt != t.attempt {
            // An earlier attempt of a failover answers late.
            if t.invite && code >= 300 {
                // Its ACK goes where that attempt went: the sender.
                self.ack(t, m, src);
                return Outcome::Queued;
            }
            if t.invite && (200..300).contains(&code) {
                // A 2xx is relayed whatever happened (§16.7 step 5); the
                // caller ends the extra dialog (§13.2.2.4).
                if let Some(b) = self.relayable(m) {
                    let (to, from) = (t.upstream, t.upstream_socket);
                    out.clear();
                    out.extend_from_slice(&b);
                    self.pool.push(b);
                    return Outcome::Send { to, from };
                }
            }
            return Outcome::Queued;
        }
        if t.client == ClientState::Calling {
            // The first response of this attempt.
            disarm(t, kind::NO_RESPONSE);
            if let Some(b) = t.backend {
                health.report(b, Passive::Answered);
                if t.invite {
                    let now = self.txns.as_deref().map_or(0, |st| st.now_us);
                    let d = Duration::from_micros(now.saturating_sub(t.sent_us));
                    self.stats.observe_latency(b.0 as usize, d);
                }
            }
        }
        match code {
            100..=199 => {
                let Some(st) = self.txns.as_deref_mut() else {
                    return Outcome::Queued;
                };
                if t.client == ClientState::Calling {
                    t.client = ClientState::Proceeding;
                    if t.invite {
                        disarm(t, kind::RETRANSMIT);
                    } else {
                        t.interval = st.cfg.t2_ms;
                    }
                    let d = if t.invite {
                        st.cfg.fr_inv_ms
                    } else {
                        st.cfg.t1x64()
                    };
                    st.arm(slot, t, kind::NO_FINAL, d);
                } else if t.invite && t.client == ClientState::Proceeding {
                    // §16.8: each provisional response restarts Timer C.
                    let d = st.cfg.fr_inv_ms;
                    st.arm(slot, t, kind::NO_FINAL, d);
                }
                if t.cancel == CancelState::Pending {
                    self.send_cancel(slot, t);
                }
                // §16.7 step 5: 100 is not forwarded; the others are, while
                // no final response went upstream.
                if code > 100 && t.server == ServerState::Proceeding {
                    if let Some(b) = self.relayable(m) {
                        t.last.clear();
                        t.last.extend_from_slice(&b);
                        t.last.shrink_to_fit();
                        self.queue_owned(t.upstream, t.upstream_socket, b);
                    }
                }
            }
            200..=299 if t.invite => {
                // Every 2xx goes upstream (§16.7 step 5, RFC 6026).
                if t.attempt != t.id && t.server == ServerState::Proceeding {
                    // A failed-over dialog: remember where it lives.
                    if let (Some(st), Some(b), Ok(cid)) =
                        (self.txns.as_deref_mut(), t.backend, m.call_id())
                    {
                        let k = st.call_key(cid);
                        st.affinity.insert(k, (t.dest, b));
                    }
                }
                t.client = ClientState::Completed;
                disarm_client(t);
                if let Some(b) = self.relayable(m) {
                    if t.server == ServerState::Accepted {
                        self.queue_owned(t.upstream, t.upstream_socket, b);
                    } else {
                        self.final_upstream(slot, t, b);
                    }
                }
            }
            _ => {
                if t.invite {
                    // §17.1.1.3: ACK every non-2xx final, retransmissions too.
                    self.ack(t, m, t.dest);
                }
                if t.client == ClientState::Completed {
                    self.stats.retransmissions_absorbed += 1;
                    return Outcome::Queued;
                }
                t.client = ClientState::Completed;
                disarm_client(t);
                let failover_code = self
                    .txns
                    .as_deref()
                    .is_some_and(|st| st.cfg.failover_codes.contains(&code));
                if let Some(b) = t.backend {
                    match retry_after(m).filter(|_| code == 503) {
                        Some(d) => health.report(b, Passive::RetryAfter(d)),
                        None if failover_code => health.report(b, Passive::Failed(code)),
                        None => {}
                    }
                }
                if cseq == Method::Bye && code >= 200 {
                    if let (Some(st), Ok(cid)) = (self.txns.as_deref_mut(), m.call_id()) {
                        let k = st.call_key(cid);
                        st.affinity.remove(k);
                    }
                }
                let resp = self.relayable(m);
                let sc = StatusCode::new(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                // Only requests the dispatcher placed have candidates.
                self.branch_failed(slot, t, sc, resp, failover_code && code >= 300);
            }
        }
        Outcome::Queued
    }

    /// Sends the ACK of the non-2xx final response `m` (§17.1.1.3).
    fn ack(&mut self, t: &Txn, m: &Message<'_>, to: SocketAddr) {
        let via = m.values(HeaderName::Via).next();
        let to_hdr = m.values(HeaderName::To).next();
        let mut buf = self.buffer();
        if self.write_hop(t, "ACK", via, to_hdr, &mut buf) {
            self.queue_owned(to, t.dest_socket, buf);
        } else {
            self.pool.push(buf);
        }
    }
}
