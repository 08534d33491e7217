//! Stateful mode (RFC 3261 §16.7–§16.10 over the §17 transactions of
//! [`super::txn`]): the request and response paths of stateful mode and the
//! timers that drive retransmission, timeouts and failover. [`Stateful`]
//! owns the transaction table, the dialog affinity and the drain count; the
//! forwarding, the clock, the wheel and the output are the shared
//! [`Forwarder`]'s.
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
//!   toward the destination by sipfront (§17.1.1.3), a request it
//!   originates.
//! - Failover (Kamailio's `t_relay` + `ds_next_dst`): no response within
//!   `fr_timeout`, Timer C, or a final response with a failover code sends
//!   the request to the next destination of the ranking, up to `max_tries`.
//!   The destination is reported to the health table (timeout, failure,
//!   Retry-After).
//! - CANCEL (§16.10): answered 200 hop by hop; sipfront's own CANCEL goes to
//!   the pending branch once it has answered provisionally (§9.1); the
//!   INVITE then ends with the branch's 487, or a 487 of sipfront's own if
//!   the branch stays silent.
//! - An ACK for a 2xx, a CANCEL that matches nothing and a response that
//!   matches no entry are handled statelessly, as §16.10/§16.7 require.
//! - A destination taken out of selection (probing, an admin) gives up its
//!   pending branches at once: a health watch on the wheel looks every
//!   [`HEALTH_WATCH_MS`] while branches wait.

use super::forward::{DialogAffinity, Forwarder, Source, Target};
use super::stats::{Originated, Stats};
use super::txn::{hop, CancelState, ClientState, ServerState, Table, TimerKind, Txn, TxnConfig};
use super::{stateless, Datagram, Routing, Timer};
use crate::dispatch::{BackendId, Health, Passive};
use crate::sip::{HeaderName, Message, Method, Request, SipError, StatusCode};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

/// How often pending branches look at their destination's health.
pub const HEALTH_WATCH_MS: u64 = 100;

/// The transaction layer of one worker.
pub(crate) struct Stateful {
    pub cfg: TxnConfig,
    pub table: Table,
    /// Last attempt id handed out (ids are unique per worker).
    next_id: u32,
    /// Dialogs that failed over: Call-ID → the destination that answered.
    affinity: Affinity,
    /// Entries that have sent no final answer upstream yet: the work a
    /// drain must wait for.
    pending: usize,
    /// The health generation last seen (a destination went down since).
    health_gen: u64,
    /// Whether a health watch is armed.
    watching: bool,
}

/// Where the dialogs live whose INVITE failed over. In-dialog requests
/// without a Route (SIPp's built-in scenarios, UAs that ignore
/// Record-Route) are placed by the Call-ID hash, which names the
/// destination that failed; this map sends them where the dialog really
/// is. Bounded: the oldest entry goes when it is full; a BYE's final
/// answer removes its dialog.
struct Affinity {
    map: HashMap<u64, (SocketAddr, BackendId), ahash::RandomState>,
    order: std::collections::VecDeque<u64>,
    cap: usize,
    hasher: ahash::RandomState,
}

impl Affinity {
    fn new(cap: usize) -> Affinity {
        Affinity {
            map: HashMap::with_hasher(ahash::RandomState::new()),
            order: std::collections::VecDeque::new(),
            cap: cap.max(1),
            hasher: ahash::RandomState::new(),
        }
    }

    fn key(&self, call_id: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(call_id);
        h.finish()
    }

    fn insert(&mut self, call_id: &[u8], v: (SocketAddr, BackendId)) {
        let key = self.key(call_id);
        if self.map.insert(key, v).is_none() {
            if self.order.len() >= self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
            self.order.push_back(key);
        }
    }

    fn remove(&mut self, call_id: &[u8]) {
        if self.map.is_empty() {
            return;
        }
        let key = self.key(call_id);
        if self.map.remove(&key).is_some() {
            self.order.retain(|k| *k != key);
        }
    }
}

impl DialogAffinity for Affinity {
    fn lookup(&self, call_id: &[u8]) -> Option<(SocketAddr, BackendId)> {
        if self.map.is_empty() {
            return None;
        }
        self.map.get(&self.key(call_id)).copied()
    }
}

fn disarm(t: &mut Txn, k: TimerKind) {
    let tok = &mut t.tokens[k as usize];
    *tok = tok.wrapping_add(1);
}

/// Stops every client-side timer of the current attempt.
fn disarm_client(t: &mut Txn) {
    for k in [
        TimerKind::Retransmit,
        TimerKind::NoResponse,
        TimerKind::NoFinal,
    ] {
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

/// A timer of the transaction in `slot`, as armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TxnTimer {
    pub slot: u32,
    /// The entry's id when armed (a reused slot has another).
    pub gen: u32,
    pub kind: TimerKind,
    /// The entry's token for that kind when armed.
    pub token: u32,
}

impl Stateful {
    pub fn new(cfg: TxnConfig) -> Stateful {
        Stateful {
            table: Table::new(cfg.max_transactions),
            affinity: Affinity::new(cfg.max_transactions),
            cfg,
            next_id: 0,
            pending: 0,
            health_gen: 0,
            watching: false,
        }
    }

    fn new_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        if self.next_id == 0 {
            self.next_id = 1;
        }
        self.next_id
    }

    fn arm(&self, fw: &mut Forwarder, slot: u32, t: &mut Txn, kind: TimerKind, after_ms: u64) {
        let tok = &mut t.tokens[kind as usize];
        *tok = tok.wrapping_add(1);
        let timer = TxnTimer {
            slot,
            gen: t.id,
            kind,
            token: *tok,
        };
        fw.arm(after_ms, Timer::Txn(timer));
    }

    /// Live transactions and the bytes they hold (the memory figure of
    /// docs/performance.md).
    pub fn memory(&self) -> (usize, usize) {
        (self.table.live(), self.table.bytes())
    }

    fn update_gauges(&self, stats: &mut Stats) {
        stats.transactions_current = self.table.live() as u64;
        stats.transactions_pending = self.pending as u64;
    }

    /// The §17.2.3 server key: top Via branch (with the magic cookie),
    /// sent-by and method class; without the cookie, the RFC 2543 fields
    /// (Request-URI, From tag, Call-ID, CSeq number, top Via).
    fn server_key(&self, m: &Message<'_>, req: &Request<'_>, class: &[u8]) -> u64 {
        let mut h = self.table.hasher.build_hasher();
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

    /// A validated request. Retransmissions of accepted requests are
    /// absorbed even while draining; the drain check follows the lookup.
    #[allow(clippy::too_many_arguments)]
    pub fn request(
        &mut self,
        fw: &mut Forwarder,
        m: &Message<'_>,
        req: &Request<'_>,
        routing: &Routing,
        health: &dyn Health,
        d: Datagram<'_>,
    ) {
        match req.method {
            Method::Ack => {
                if self.ack_in(fw, m, req) {
                    return;
                }
                // An ACK for a 2xx is a transaction of its own, forwarded
                // statelessly (§16.7 step 10 / RFC 6026).
                return stateless::forward(fw, m, req, routing, health, d, Some(&self.affinity));
            }
            Method::Cancel => {
                let key = self.server_key(m, req, b"INVITE");
                let Some(slot) = self.table.find(key) else {
                    // §16.10: no matching transaction: forward statelessly.
                    return stateless::forward(
                        fw,
                        m,
                        req,
                        routing,
                        health,
                        d,
                        Some(&self.affinity),
                    );
                };
                // §9.2 / §16.10: answered 200 hop by hop, before sipfront's
                // own CANCEL goes downstream.
                fw.reply(m, d, StatusCode::OK);
                return self.cancel_in(fw, slot);
            }
            _ => {}
        }
        let class = m.method_bytes().unwrap_or(b"");
        let key = self.server_key(m, req, class);
        if let Some(slot) = self.table.find(key) {
            // §17.2.1 / §17.2.2: a retransmission; answered with the last
            // response, if any, and not forwarded again.
            fw.stats.retransmissions_absorbed += 1;
            if let Some(t) = self.table.get(slot).filter(|t| !t.last.is_empty()) {
                fw.send_copy(t.upstream_socket, t.upstream, &t.last);
            }
            return;
        }
        if fw.refuses_new_dialog(req) {
            return fw.reply(m, d, StatusCode::SERVICE_UNAVAILABLE);
        }
        if self.table.is_full() {
            fw.stats.transactions_refused += 1;
            return fw.reply(m, d, StatusCode::SERVICE_UNAVAILABLE);
        }
        let route = match fw.route(m, req, routing, health, d, true, Some(&self.affinity)) {
            Ok(r) => r,
            Err(e) => return fw.reply(m, d, e.status()),
        };
        let (dest, dest_socket, backend) = match route.target {
            Target::Send {
                to,
                socket,
                backend,
            } => (to, socket, backend),
            Target::Reply(code) => return fw.reply(m, d, code),
        };
        // The rest of the ranking, for failover.
        let mut candidates = SmallVec::new();
        if let Some((set, ids)) = &route.ranking {
            if let Some(set) = routing.sets.get(*set) {
                let more = usize::from(self.cfg.max_tries.saturating_sub(1));
                for id in ids.iter().skip(1).take(more) {
                    if let Some(dst) = set.get(*id) {
                        candidates.push((dst.addr, dst.id));
                    }
                }
            }
        }
        let invite = req.method == Method::Invite;
        let id = self.new_id();
        // Stored buffers are exact-size copies: they live as long as the
        // transaction, pooled ones are sized for any datagram.
        let t = Txn {
            id,
            key,
            invite,
            method: req.method,
            upstream: fw.reply_to(Some(&req.top_via), d.src),
            upstream_socket: d.socket,
            server: ServerState::Proceeding,
            last: Vec::new(),
            final_interval: self.cfg.t1_ms,
            orig: d.data.to_vec(),
            src: d.src,
            in_socket: d.socket,
            fwd: Vec::new(),
            dest,
            dest_socket,
            backend,
            candidates,
            attempt: id,
            client: ClientState::Calling,
            interval: self.cfg.t1_ms,
            sent_us: fw.now_us,
            cancel: CancelState::None,
            cancel_interval: self.cfg.t1_ms,
            tokens: [0; TimerKind::COUNT],
        };
        let Some(slot) = self.table.insert(t) else {
            fw.stats.transactions_refused += 1;
            return fw.reply(m, d, StatusCode::SERVICE_UNAVAILABLE);
        };
        fw.stats.transactions_total += 1;
        self.pending += 1;
        self.update_gauges(&mut fw.stats);
        self.watch(fw, health);
        let Some(mut t) = self.table.take(slot) else {
            return fw.stats.internal_fault();
        };
        if invite {
            // §16.2 / §17.2.1: 100 Trying at once, so the client stops
            // retransmitting; it is also the answer to retransmissions.
            let mut trying = fw.out.buffer();
            if fw
                .local_reply(
                    m,
                    Some(&req.top_via),
                    d.src,
                    StatusCode::TRYING,
                    &mut trying,
                )
                .is_ok()
            {
                t.last = trying.clone();
                fw.send(t.upstream_socket, t.upstream, trying);
                fw.stats.replied(100);
            } else {
                fw.out.recycle(trying);
            }
        }
        if let Err(e) = self.send_attempt(fw, slot, &mut t, Some((m, req))) {
            // Could not write the forwarded request (too large for UDP once
            // sipfront's headers are in: 513): answer it instead, and no
            // backend is charged.
            self.final_local(fw, slot, &mut t, e.status());
        }
        self.table.put(slot, t);
    }

    /// Keeps a health watch armed while branches wait on destinations.
    fn watch(&mut self, fw: &mut Forwarder, health: &dyn Health) {
        if !self.watching {
            self.watching = true;
            self.health_gen = health.generation();
            fw.arm(HEALTH_WATCH_MS, Timer::HealthWatch);
        }
    }

    /// The health watch fired: abandon branches toward destinations that
    /// went down, and watch on while anything is pending.
    pub fn on_health_watch(&mut self, fw: &mut Forwarder, health: &dyn Health) {
        self.watching = false;
        self.check_health(fw, health);
        if self.pending > 0 {
            self.watch(fw, health);
        }
    }

    /// Abandons dead branches when the health generation moved.
    pub fn check_health(&mut self, fw: &mut Forwarder, health: &dyn Health) {
        let gen = health.generation();
        if gen != self.health_gen {
            self.health_gen = gen;
            self.abandon_dead_branches(fw, health);
        }
    }

    /// A destination went down (probes or live traffic found it dead; an
    /// admin's disable or drain is not that): every request still waiting
    /// on it gives up its branch now, as on Timer C
    /// (CANCEL if it rang) and fails over, instead of waiting minutes for a
    /// final answer that will not come from a dead server.
    fn abandon_dead_branches(&mut self, fw: &mut Forwarder, health: &dyn Health) {
        let doomed: Vec<u32> = self
            .table
            .slots()
            .filter(|(_, t)| {
                t.server == ServerState::Proceeding
                    && t.client != ClientState::Completed
                    && t.backend.is_some_and(|b| health.is_down(b))
            })
            .map(|(slot, _)| slot)
            .collect();
        for slot in doomed {
            let Some(mut t) = self.table.take(slot) else {
                continue;
            };
            if t.invite && t.client == ClientState::Proceeding && t.cancel == CancelState::None {
                self.send_cancel(fw, slot, &mut t);
                t.cancel = CancelState::None;
            }
            t.client = ClientState::Completed;
            disarm_client(&mut t);
            self.branch_failed(fw, slot, &mut t, StatusCode::REQUEST_TIMEOUT, None, true);
            self.table.put(slot, t);
        }
    }

    /// Forwards the request of `t` to its current destination as a new
    /// attempt (new branch), and arms timers A/E and the failure timer.
    /// `parsed` is the request when the caller has it parsed already.
    fn send_attempt(
        &mut self,
        fw: &mut Forwarder,
        slot: u32,
        t: &mut Txn,
        parsed: Option<(&Message<'_>, &Request<'_>)>,
    ) -> Result<(), SipError> {
        if t.attempt != t.id || !t.fwd.is_empty() {
            t.attempt = self.new_id();
        }
        t.client = ClientState::Calling;
        t.interval = self.cfg.t1_ms;
        t.sent_us = fw.now_us;
        let txn_id = (u64::from(slot) << 32) | u64::from(t.attempt);
        let mut fwd = fw.out.buffer();
        let d = Datagram {
            data: &t.orig,
            src: t.src,
            socket: t.in_socket,
        };
        let r = match parsed {
            Some((m, req)) => fw.forward(m, req, d, t.dest_socket, &mut fwd, Some(txn_id)),
            None => Message::parse_with(&t.orig, &fw.cfg.limits).and_then(|m| {
                let req = crate::sip::validate_request(&m)?;
                // A failover: NAT handling counted this request already.
                if let Some(n) = fw.nat.as_deref_mut() {
                    n.count = false;
                }
                let r = fw.forward(&m, &req, d, t.dest_socket, &mut fwd, Some(txn_id));
                if let Some(n) = fw.nat.as_deref_mut() {
                    n.count = true;
                }
                r
            }),
        };
        if let Err(e) = r {
            fw.out.recycle(fwd);
            return Err(e);
        }
        // An exact-size copy: it lives as long as the attempt.
        t.fwd = fwd.clone();
        fw.send(t.dest_socket, t.dest, fwd);
        fw.count_forward(t.method, t.backend);
        let (t1, fr, t1x64) = (self.cfg.t1_ms, self.cfg.fr_ms, self.cfg.t1x64());
        self.arm(fw, slot, t, TimerKind::Retransmit, t1);
        self.arm(fw, slot, t, TimerKind::NoResponse, fr.min(t1x64));
        disarm(t, TimerKind::NoFinal);
        Ok(())
    }

    /// An ACK that matches an INVITE entry: the ACK of a non-2xx final
    /// response sipfront sent, absorbed (§17.2.1). False: not ours.
    fn ack_in(&mut self, fw: &mut Forwarder, m: &Message<'_>, req: &Request<'_>) -> bool {
        let key = self.server_key(m, req, b"INVITE");
        let Some(slot) = self.table.find(key) else {
            return false;
        };
        let Some(mut t) = self.table.take(slot) else {
            return false;
        };
        let handled = match t.server {
            ServerState::Completed if t.invite => {
                // Confirmed: timer G stops, timer I (T4) ends the entry.
                t.server = ServerState::Confirmed;
                disarm(&mut t, TimerKind::RetransmitFinal);
                let t4 = self.cfg.t4_ms;
                self.arm(fw, slot, &mut t, TimerKind::End, t4);
                true
            }
            ServerState::Confirmed => {
                fw.stats.retransmissions_absorbed += 1;
                true
            }
            _ => false,
        };
        self.table.put(slot, t);
        handled
    }

    /// A CANCEL matching the INVITE in `slot` (its 200 is already queued).
    fn cancel_in(&mut self, fw: &mut Forwarder, slot: u32) {
        let Some(mut t) = self.table.take(slot) else {
            return;
        };
        if t.server != ServerState::Proceeding || t.cancel != CancelState::None {
            // Already answered finally, or a retransmitted CANCEL.
            if t.cancel != CancelState::None {
                fw.stats.retransmissions_absorbed += 1;
            }
            self.table.put(slot, t);
            return;
        }
        fw.stats.cancels += 1;
        match t.client {
            ClientState::Proceeding => self.send_cancel(fw, slot, &mut t),
            // §9.1: not before the branch has answered provisionally.
            ClientState::Calling => t.cancel = CancelState::Pending,
            // Between attempts: nothing pending downstream.
            ClientState::Completed => {
                t.cancel = CancelState::Answered;
                self.final_local(fw, slot, &mut t, StatusCode::REQUEST_TERMINATED);
            }
        }
        self.table.put(slot, t);
    }

    /// Originates the CANCEL of the current attempt (§9.1) and arms its
    /// timers.
    fn send_cancel(&mut self, fw: &mut Forwarder, slot: u32, t: &mut Txn) {
        self.originate_hop(fw, t, Originated::Cancel, None, None, t.dest);
        t.cancel = CancelState::Sent;
        t.cancel_interval = self.cfg.t1_ms;
        let (t1, t1x64) = (self.cfg.t1_ms, self.cfg.t1x64());
        self.arm(fw, slot, t, TimerKind::RetransmitCancel, t1);
        self.arm(fw, slot, t, TimerKind::CancelGiveUp, t1x64);
    }

    /// Originates an ACK or CANCEL for `t`'s forwarded request toward
    /// `to`. `via` is the Via of the attempt (the current one when `None`),
    /// `to_hdr` the To of the response being ACKed. False when the stored
    /// request cannot be read back (never: sipfront wrote it).
    fn originate_hop(
        &self,
        fw: &mut Forwarder,
        t: &Txn,
        kind: Originated,
        via: Option<&[u8]>,
        to_hdr: Option<&[u8]>,
        to: SocketAddr,
    ) -> bool {
        let mut buf = fw.out.buffer();
        let built = Message::parse_with(&t.fwd, &fw.cfg.limits)
            .ok()
            .and_then(|fwd| {
                let via = via.or_else(|| fwd.values(HeaderName::Via).next())?;
                hop::build(&fwd, kind.method(), via, to_hdr, &mut buf)
            })
            .is_some();
        if built {
            fw.originate(kind, t.dest_socket, to, buf);
        } else {
            fw.out.recycle(buf);
            fw.stats.internal_fault();
        }
        built
    }

    /// Sends sipfront's own final answer `code` upstream for `t`.
    fn final_local(&mut self, fw: &mut Forwarder, slot: u32, t: &mut Txn, code: StatusCode) {
        let mut buf = fw.out.buffer();
        let ok = match Message::parse_with(&t.orig, &fw.cfg.limits) {
            Ok(m) => fw.local_reply(&m, None, t.src, code, &mut buf).is_ok(),
            Err(_) => false,
        };
        if ok {
            fw.stats.replied(code.as_u16());
            self.final_upstream(fw, slot, t, buf);
        } else {
            // Nothing can be sent; the entry ends.
            fw.out.recycle(buf);
            self.answered(fw, t);
            t.server = ServerState::Completed;
            self.arm(fw, slot, t, TimerKind::End, 0);
        }
    }

    /// `t` leaves Proceeding (its final answer goes upstream now): it is no
    /// longer work a drain waits for.
    fn answered(&mut self, fw: &mut Forwarder, t: &Txn) {
        if t.server != ServerState::Proceeding {
            return;
        }
        self.pending = self.pending.saturating_sub(1);
        self.update_gauges(&mut fw.stats);
    }

    /// Sends the final response `bytes` upstream, keeps it for
    /// retransmissions, and moves the server side on (§17.2.1, §17.2.2).
    fn final_upstream(&mut self, fw: &mut Forwarder, slot: u32, t: &mut Txn, bytes: Vec<u8>) {
        let two = bytes.get(8) == Some(&b'2');
        t.last = bytes.clone();
        fw.send(t.upstream_socket, t.upstream, bytes);
        disarm_client(t);
        disarm(t, TimerKind::RetransmitCancel);
        disarm(t, TimerKind::CancelGiveUp);
        self.answered(fw, t);
        let (t1, t1x64) = (self.cfg.t1_ms, self.cfg.t1x64());
        if t.invite && two {
            // RFC 6026 Accepted: absorb INVITE retransmissions (timer L);
            // nothing needs to be kept.
            t.server = ServerState::Accepted;
            t.release(false, |b| fw.out.recycle(b));
        } else if t.invite {
            // Completed: timer G until the ACK, timer H bounds the wait.
            t.server = ServerState::Completed;
            t.final_interval = t1;
            self.arm(fw, slot, t, TimerKind::RetransmitFinal, t1);
        } else {
            // Completed: timer J absorbs retransmissions with this answer.
            t.server = ServerState::Completed;
            t.release(true, |b| fw.out.recycle(b));
        }
        self.arm(fw, slot, t, TimerKind::End, t1x64);
    }

    /// The current attempt failed (timeout, Timer C, or a failover code):
    /// the next destination, or the final answer upstream — `resp` (the
    /// branch's response, ready to relay) or sipfront's own `code`.
    fn branch_failed(
        &mut self,
        fw: &mut Forwarder,
        slot: u32,
        t: &mut Txn,
        code: StatusCode,
        resp: Option<Vec<u8>>,
        failover: bool,
    ) {
        if t.server != ServerState::Proceeding {
            if let Some(b) = resp {
                fw.out.recycle(b);
            }
            return;
        }
        if failover && t.cancel == CancelState::None && !t.candidates.is_empty() {
            let (addr, id) = t.candidates.remove(0);
            t.dest = addr;
            t.backend = Some(id);
            fw.stats.failovers += 1;
            if let Some(b) = resp {
                fw.out.recycle(b);
            }
            if self.send_attempt(fw, slot, t, None).is_ok() {
                return;
            }
            return self.final_local(fw, slot, t, StatusCode::SERVICE_UNAVAILABLE);
        }
        match resp {
            Some(b) => self.final_upstream(fw, slot, t, b),
            None if t.cancel != CancelState::None => {
                self.final_local(fw, slot, t, StatusCode::REQUEST_TERMINATED)
            }
            None => self.final_local(fw, slot, t, code),
        }
    }

    /// A transaction timer fired.
    pub fn on_timer(&mut self, fw: &mut Forwarder, tm: TxnTimer, health: &dyn Health) {
        let Some(mut t) = self.table.take(tm.slot) else {
            return;
        };
        if t.id != tm.gen || t.tokens[tm.kind as usize] != tm.token {
            // Stale: the entry was reused or the timer disarmed.
            self.table.put(tm.slot, t);
            return;
        }
        let slot = tm.slot;
        let t2 = self.cfg.t2_ms;
        match tm.kind {
            TimerKind::Retransmit => {
                // Timer A doubles without bound (bounded by B); E doubles up
                // to T2, and stays at T2 once a provisional came.
                let quiet_invite = t.invite && t.client != ClientState::Calling;
                if t.client != ClientState::Completed && !quiet_invite && !t.fwd.is_empty() {
                    fw.send_copy(t.dest_socket, t.dest, &t.fwd);
                    fw.stats.retransmissions_sent += 1;
                    t.interval = if t.invite {
                        t.interval * 2
                    } else if t.client == ClientState::Proceeding {
                        t2
                    } else {
                        (t.interval * 2).min(t2)
                    };
                    let d = t.interval;
                    self.arm(fw, slot, &mut t, TimerKind::Retransmit, d);
                }
            }
            TimerKind::NoResponse if t.client == ClientState::Calling => {
                // Nothing at all from this destination (Kamailio's
                // fr_timer): it failed; try the next one.
                fw.stats.timeouts += 1;
                if let Some(b) = t.backend {
                    health.report(b, Passive::Timeout);
                }
                t.client = ClientState::Completed;
                disarm_client(&mut t);
                self.branch_failed(fw, slot, &mut t, StatusCode::REQUEST_TIMEOUT, None, true);
            }
            TimerKind::NoFinal if t.client == ClientState::Proceeding => {
                // Timer C (§16.8): CANCEL the branch and treat it as 408.
                // Non-INVITE: timer F.
                fw.stats.timeouts += 1;
                if t.invite && t.cancel == CancelState::None {
                    self.send_cancel(fw, slot, &mut t);
                    // A cancel of sipfront's own does not stop failover.
                    t.cancel = CancelState::None;
                }
                if let Some(b) = t.backend {
                    health.report(b, Passive::Timeout);
                }
                t.client = ClientState::Completed;
                disarm_client(&mut t);
                self.branch_failed(fw, slot, &mut t, StatusCode::REQUEST_TIMEOUT, None, true);
            }
            TimerKind::RetransmitFinal if t.server == ServerState::Completed && t.invite => {
                // Timer G.
                fw.send_copy(t.upstream_socket, t.upstream, &t.last);
                fw.stats.retransmissions_sent += 1;
                t.final_interval = (t.final_interval * 2).min(t2);
                let d = t.final_interval;
                self.arm(fw, slot, &mut t, TimerKind::RetransmitFinal, d);
            }
            TimerKind::RetransmitCancel if t.cancel == CancelState::Sent => {
                if self.originate_hop(fw, &t, Originated::Cancel, None, None, t.dest) {
                    fw.stats.retransmissions_sent += 1;
                }
                t.cancel_interval = (t.cancel_interval * 2).min(t2);
                let d = t.cancel_interval;
                self.arm(fw, slot, &mut t, TimerKind::RetransmitCancel, d);
            }
            TimerKind::CancelGiveUp if t.server == ServerState::Proceeding => {
                // The branch never answered the INVITE after the CANCEL.
                t.client = ClientState::Completed;
                self.final_local(fw, slot, &mut t, StatusCode::REQUEST_TERMINATED);
            }
            TimerKind::End => {
                self.answered(fw, &t);
                self.table.remove_taken(slot, &t);
                self.update_gauges(&mut fw.stats);
                t.release(false, |b| fw.out.recycle(b));
                return;
            }
            _ => {}
        }
        self.table.put(slot, t);
    }

    /// A response whose branch names transaction `txn` of this worker.
    /// False: no such entry (the caller relays it statelessly).
    pub fn response(
        &mut self,
        fw: &mut Forwarder,
        m: &Message<'_>,
        txn: u64,
        health: &dyn Health,
        from: &Source,
    ) -> bool {
        let slot = (txn >> 32) as u32;
        let attempt = txn as u32;
        let Some(mut t) = self.table.take(slot) else {
            return false;
        };
        let mine = attempt.wrapping_sub(t.id) <= t.attempt.wrapping_sub(t.id);
        if mine {
            self.response_in(fw, slot, &mut t, m, (attempt, from), health);
        }
        self.table.put(slot, t);
        mine
    }

    /// The response `m` without sipfront's Via, in a pooled buffer.
    fn relayable(fw: &mut Forwarder, m: &Message<'_>, from: &Source) -> Option<Vec<u8>> {
        let mut buf = fw.out.buffer();
        if fw.strip_via(m, from, &mut buf) {
            Some(buf)
        } else {
            fw.out.recycle(buf);
            None
        }
    }

    fn response_in(
        &mut self,
        fw: &mut Forwarder,
        slot: u32,
        t: &mut Txn,
        m: &Message<'_>,
        (attempt, from): (u32, &Source),
        health: &dyn Health,
    ) {
        let src = from.src;
        let code = m.status().map_or(0, |c| c.as_u16());
        let cseq = m.cseq().map(|c| c.method).unwrap_or(Method::Other);
        if cseq == Method::Cancel {
            // The answer to sipfront's CANCEL: stop retransmitting it.
            if attempt == t.attempt && code >= 200 && t.cancel == CancelState::Sent {
                t.cancel = CancelState::Answered;
                disarm(t, TimerKind::RetransmitCancel);
            }
            return;
        }
        if attempt != t.attempt {
            // An earlier attempt of a failover answers late.
            if t.invite && code >= 300 {
                // Its ACK goes where that attempt went: the sender.
                self.ack(fw, t, m, src);
            } else if t.invite && (200..300).contains(&code) {
                // A 2xx is relayed whatever happened (§16.7 step 5); the
                // caller ends the extra dialog (§13.2.2.4).
                if let Some(b) = Self::relayable(fw, m, from) {
                    fw.send(t.upstream_socket, t.upstream, b);
                }
            }
            return;
        }
        if t.client == ClientState::Calling {
            // The first response of this attempt.
            disarm(t, TimerKind::NoResponse);
            if let Some(b) = t.backend {
                health.report(b, Passive::Answered);
                if t.invite {
                    let d = Duration::from_micros(fw.now_us.saturating_sub(t.sent_us));
                    fw.stats.observe_latency(b.0 as usize, d);
                }
            }
        }
        match code {
            100..=199 => {
                if t.client == ClientState::Calling {
                    t.client = ClientState::Proceeding;
                    if t.invite {
                        disarm(t, TimerKind::Retransmit);
                    } else {
                        t.interval = self.cfg.t2_ms;
                    }
                    let d = if t.invite {
                        self.cfg.fr_inv_ms
                    } else {
                        self.cfg.t1x64()
                    };
                    self.arm(fw, slot, t, TimerKind::NoFinal, d);
                } else if t.invite && t.client == ClientState::Proceeding {
                    // §16.8: each provisional response restarts Timer C.
                    let d = self.cfg.fr_inv_ms;
                    self.arm(fw, slot, t, TimerKind::NoFinal, d);
                }
                if t.cancel == CancelState::Pending {
                    self.send_cancel(fw, slot, t);
                }
                // §16.7 step 5: 100 is not forwarded; the others are, while
                // no final response went upstream.
                if code > 100 && t.server == ServerState::Proceeding {
                    if let Some(b) = Self::relayable(fw, m, from) {
                        t.last = b.clone();
                        fw.send(t.upstream_socket, t.upstream, b);
                    }
                }
            }
            200..=299 if t.invite => {
                // Every 2xx goes upstream (§16.7 step 5, RFC 6026).
                if t.attempt != t.id && t.server == ServerState::Proceeding {
                    // A failed-over dialog: remember where it lives.
                    if let (Some(b), Ok(cid)) = (t.backend, m.call_id()) {
                        self.affinity.insert(cid, (t.dest, b));
                    }
                }
                t.client = ClientState::Completed;
                disarm_client(t);
                if let Some(b) = Self::relayable(fw, m, from) {
                    if t.server == ServerState::Accepted {
                        fw.send(t.upstream_socket, t.upstream, b);
                    } else {
                        self.final_upstream(fw, slot, t, b);
                    }
                }
            }
            _ => {
                if t.invite {
                    // §17.1.1.3: ACK every non-2xx final, retransmissions too.
                    self.ack(fw, t, m, t.dest);
                }
                if t.client == ClientState::Completed {
                    fw.stats.retransmissions_absorbed += 1;
                    return;
                }
                t.client = ClientState::Completed;
                disarm_client(t);
                let failover_code = self.cfg.failover_codes.contains(&code);
                if let Some(b) = t.backend {
                    match retry_after(m).filter(|_| code == 503) {
                        Some(d) => health.report(b, Passive::RetryAfter(d)),
                        None if failover_code => health.report(b, Passive::Failed(code)),
                        None => {}
                    }
                }
                if cseq == Method::Bye && code >= 200 {
                    if let Ok(cid) = m.call_id() {
                        self.affinity.remove(cid);
                    }
                }
                let resp = Self::relayable(fw, m, from);
                let sc = StatusCode::new(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                // Only requests the dispatcher placed have candidates.
                self.branch_failed(fw, slot, t, sc, resp, failover_code && code >= 300);
            }
        }
    }

    /// Originates the ACK of the non-2xx final response `m` (§17.1.1.3).
    fn ack(&self, fw: &mut Forwarder, t: &Txn, m: &Message<'_>, to: SocketAddr) {
        if t.fwd.is_empty() {
            // The request was released when a 2xx went upstream: a non-2xx
            // final after a 2xx on the same INVITE breaks §17.1.1 (found
            // by the proxy fuzz target). Nothing to ACK with; dropped.
            return fw.stats.drop(super::stats::DropReason::BadResponse);
        }
        let via = m.values(HeaderName::Via).next();
        let to_hdr = m.values(HeaderName::To).next();
        self.originate_hop(fw, t, Originated::Ack, via, to_hdr, to);
    }
}
