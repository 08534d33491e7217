//! Stateful mode without sockets: every transaction transition and timer
//! of RFC 3261 §16.7–§16.10 and §17, driven by a fake clock.

use super::txn::TxnConfig;
use super::*;
use crate::dispatch::{Algorithm, BackendId, BackendSet, Destination, Passive, Rules};
use crate::runtime::pump::{Capture, Pump};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

const CLIENT: &str = "192.0.2.50:5062";
const B1: &str = "127.0.0.1:5070";
const B2: &str = "127.0.0.1:5080";
const B3: &str = "127.0.0.1:5090";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Records the passive signals; everything is active unless marked down.
#[derive(Default)]
struct Recorder {
    down: Mutex<Vec<u32>>,
    signals: Mutex<Vec<(u32, Passive)>>,
}

impl Health for Recorder {
    fn is_active(&self, id: BackendId) -> bool {
        !self.down.lock().unwrap().contains(&id.0)
    }
    fn report(&self, id: BackendId, s: Passive) {
        self.signals.lock().unwrap().push((id.0, s));
    }
    fn generation(&self) -> u64 {
        self.down.lock().unwrap().len() as u64
    }
}

/// The engine under test in its pump, with an in-memory sink and a fake
/// clock.
struct H {
    p: Pump,
    sink: Capture,
    r: Arc<Routing>,
    health: Arc<Recorder>,
    now_us: u64,
}

/// One datagram out: destination, socket, text.
#[derive(Debug)]
struct Sent {
    to: SocketAddr,
    from: Socket,
    text: String,
}

impl Sent {
    fn status(&self) -> u16 {
        if self.text.starts_with("SIP/2.0 ") {
            self.text[8..11].parse().unwrap_or(0)
        } else {
            0
        }
    }
    fn method(&self) -> &str {
        self.text.split(' ').next().unwrap_or("")
    }
}

fn cfg() -> TxnConfig {
    TxnConfig::default()
}

impl H {
    fn new(alg: Algorithm, tc: TxnConfig) -> H {
        let set = BackendSet::new(
            "default",
            alg,
            vec![
                Destination::new(BackendId(0), "sip:127.0.0.1:5070", addr(B1)),
                Destination::new(BackendId(1), "sip:127.0.0.1:5080", addr(B2)),
                Destination::new(BackendId(2), "sip:127.0.0.1:5090", addr(B3)),
            ],
        )
        .unwrap();
        let listens = [addr("127.0.0.1:5060")];
        let egress = [addr("127.0.0.1:5061")];
        let id = identity::Identity::new(&listens, &egress, None, &[]);
        let pc = ProxyConfig {
            transactions: Some(tc),
            ..ProxyConfig::default()
        };
        let r = Arc::new(Routing::new(vec![set], Rules::new(vec![], 0)));
        let health = Arc::new(Recorder::default());
        let e = Engine::new(
            pc,
            Arc::new(id),
            0,
            Arc::new(ArcSwap::new(Arc::clone(&r))),
            Arc::clone(&health) as Arc<dyn Health + Send + Sync>,
        );
        H {
            p: Pump::new(e),
            sink: Capture::default(),
            r,
            health,
            now_us: 0,
        }
    }

    fn now(&self) -> Instant {
        self.p.engine().epoch() + Duration::from_micros(self.now_us)
    }

    fn stats(&self) -> &Stats {
        self.p.engine().stats()
    }

    /// What the engine sent since the last look.
    fn collect(&mut self) -> Vec<Sent> {
        self.sink
            .take()
            .into_iter()
            .map(|s| Sent {
                to: s.to,
                from: s.socket,
                text: String::from_utf8_lossy(&s.data).into_owned(),
            })
            .collect()
    }

    /// A datagram from `src` on `socket`.
    fn recv(&mut self, msg: &str, src: &str, socket: Socket) -> Vec<Sent> {
        let now = self.now();
        self.p.timeout(now, &mut self.sink);
        let d = Datagram {
            data: msg.as_bytes(),
            src: addr(src),
            socket,
        };
        self.p.datagram(now, d, &mut self.sink);
        self.collect()
    }

    fn client_sends(&mut self, msg: &str) -> Vec<Sent> {
        self.recv(msg, CLIENT, Socket::Listen(0))
    }

    fn backend_sends(&mut self, msg: &str, b: &str) -> Vec<Sent> {
        self.recv(msg, b, Socket::Egress)
    }

    /// Moves the clock on by `ms` in 5 ms steps; everything the timers sent.
    fn advance(&mut self, ms: u64) -> Vec<Sent> {
        let mut v = Vec::new();
        let end = self.now_us + ms * 1000;
        while self.now_us < end {
            self.now_us = (self.now_us + 5000).min(end);
            let now = self.now();
            self.p.timeout(now, &mut self.sink);
            v.extend(self.collect());
        }
        v
    }

    fn live(&self) -> usize {
        self.p.engine().transaction_memory().0
    }
}

fn invite(call_id: &str) -> String {
    format!(
        "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.50:5062;branch=z9hG4bK-{call_id}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.50:5062>\r\n\
Content-Length: 0\r\n\r\n"
    )
}

fn request(method: &str, call_id: &str, to_tag: Option<&str>, branch: &str, seq: u32) -> String {
    let to = match to_tag {
        Some(t) => format!("<sip:bob@example.com>;tag={t}"),
        None => "<sip:bob@example.com>".into(),
    };
    format!(
        "{method} sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.50:5062;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: {to}\r\n\
Call-ID: {call_id}\r\n\
CSeq: {seq} {method}\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// A backend's response to the forwarded request `req` (Vias copied, To
/// tagged unless 100).
fn answer(req: &str, code: u16, extra: &str) -> String {
    let mut s = format!("SIP/2.0 {code} Whatever\r\n");
    for line in req.split("\r\n") {
        let name = line.split(':').next().unwrap_or("");
        match name {
            "Via" | "From" | "Call-ID" | "CSeq" | "Record-Route" => {
                s.push_str(line);
                s.push_str("\r\n");
            }
            "To" => {
                s.push_str(line);
                if code > 100 && !line.contains("tag=") {
                    s.push_str(";tag=b9");
                }
                s.push_str("\r\n");
            }
            _ => {}
        }
    }
    s.push_str(extra);
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

fn only<'a>(v: &'a [Sent], what: &str) -> &'a Sent {
    assert_eq!(v.len(), 1, "{what}: expected one datagram, got {v:#?}");
    &v[0]
}

/// Sends an INVITE; returns the forwarded copy (asserting the 100 Trying).
fn start(h: &mut H, call_id: &str) -> Sent {
    let v = h.client_sends(&invite(call_id));
    assert_eq!(v.len(), 2, "{v:#?}");
    assert_eq!(v[0].status(), 100);
    assert_eq!(v[0].to, addr(CLIENT));
    v.into_iter().nth(1).unwrap()
}

#[test]
fn invite_gets_100_trying_and_one_forward_rfc3261_16_2_17_2_1() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c1");
    assert_eq!(fwd.method(), "INVITE");
    assert_eq!(fwd.from, Socket::Egress);
    assert!(fwd.text.contains(";branch=z9hG4bKsf"));
    // The 100 has no To tag (§8.2.6.2), sipfront's Via is not in it.
    assert_eq!(h.live(), 1);
    assert_eq!(h.stats().transactions_total, 1);
}

#[test]
fn retransmitted_invite_is_absorbed_and_answered_with_the_last_response_rfc3261_17_2_1() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c2");
    let v = h.client_sends(&invite("c2"));
    assert_eq!(only(&v, "retransmission").status(), 100);
    // After a 180 the retransmission gets the 180.
    let v = h.backend_sends(&answer(&fwd.text, 180, ""), &fwd.to.to_string());
    assert_eq!(only(&v, "180 relayed").status(), 180);
    assert!(!v[0].text.contains("z9hG4bKsf"), "sipfront's Via removed");
    let v = h.client_sends(&invite("c2"));
    assert_eq!(only(&v, "retransmission").status(), 180);
    assert_eq!(h.stats().retransmissions_absorbed, 2);
}

#[test]
fn provisional_100_is_absorbed_others_relayed_rfc3261_16_7_step5() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c3");
    let b = fwd.to.to_string();
    assert!(h.backend_sends(&answer(&fwd.text, 100, ""), &b).is_empty());
    let v = h.backend_sends(&answer(&fwd.text, 183, ""), &b);
    assert_eq!(only(&v, "183").status(), 183);
    assert_eq!(v[0].to, addr(CLIENT));
    assert_eq!(v[0].from, Socket::Listen(0));
}

#[test]
fn every_2xx_is_relayed_and_retransmissions_after_it_are_absorbed_rfc6026() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c4");
    let b = fwd.to.to_string();
    let ok = answer(&fwd.text, 200, "");
    assert_eq!(h.stats().transactions_pending, 1);
    assert_eq!(only(&h.backend_sends(&ok, &b), "200").status(), 200);
    // Answered: nothing left for a drain to wait for, though it lingers.
    assert_eq!(h.stats().transactions_pending, 0);
    assert_eq!(h.stats().transactions_current, 1);
    // A retransmitted 2xx is relayed again (the UAS retransmits until ACK).
    assert_eq!(only(&h.backend_sends(&ok, &b), "200 again").status(), 200);
    // The INVITE retransmitted after the 2xx is absorbed silently (Accepted).
    assert!(h.client_sends(&invite("c4")).is_empty());
    // Nothing of the message is kept while the entry lingers.
    let (live, bytes) = h.p.engine().transaction_memory();
    assert_eq!(live, 1);
    assert!(bytes < 2048, "{bytes}");
    // Timer L (64×T1) ends it.
    h.advance(32_010);
    assert_eq!(h.live(), 0);
    assert_eq!(h.stats().transactions_current, 0);
}

#[test]
fn non_2xx_final_is_acked_hop_by_hop_and_retransmitted_until_ack_rfc3261_17_1_1_3_17_2_1() {
    let mut tc = cfg();
    tc.failover_codes = vec![];
    let mut h = H::new(Algorithm::CallId, tc);
    let fwd = start(&mut h, "c5");
    let b = fwd.to.to_string();
    let busy = answer(&fwd.text, 486, "");
    let v = h.backend_sends(&busy, &b);
    assert_eq!(v.len(), 2, "{v:#?}");
    let ack = v.iter().find(|s| s.method() == "ACK").unwrap();
    assert_eq!(ack.to, fwd.to);
    assert!(ack.text.contains("tag=b9"));
    let via_fwd = fwd.text.lines().find(|l| l.starts_with("Via:")).unwrap();
    assert!(ack.text.contains(via_fwd), "ACK has the INVITE's branch");
    let up = v.iter().find(|s| s.status() == 486).unwrap();
    assert_eq!(up.to, addr(CLIENT));
    // A retransmitted 486 is ACKed again, not relayed.
    let v = h.backend_sends(&busy, &b);
    assert_eq!(only(&v, "re-ACK").method(), "ACK");
    // Timer G: the 486 goes upstream again at T1, 2T1, ... until the ACK.
    let v = h.advance(500);
    assert_eq!(only(&v, "G1").status(), 486);
    let v = h.advance(1000);
    assert_eq!(only(&v, "G2").status(), 486);
    let ack_up = request("ACK", "c5", Some("b9"), "z9hG4bK-c5", 1);
    assert!(h.client_sends(&ack_up).is_empty(), "ACK absorbed");
    assert!(h.advance(4000).is_empty(), "no more G after the ACK");
    // Timer I (T4) ends it.
    h.advance(1100);
    assert_eq!(h.live(), 0);
}

#[test]
fn timer_a_doubles_and_stops_at_a_provisional_rfc3261_17_1_1_2() {
    let mut tc = cfg();
    tc.fr_ms = 10_000;
    let mut h = H::new(Algorithm::CallId, tc);
    let fwd = start(&mut h, "c6");
    let mut at = Vec::new();
    let mut t = 0;
    for _ in 0..700 {
        let v = h.advance(5);
        t += 5;
        for s in v {
            assert_eq!(s.text, fwd.text, "a retransmission is identical");
            at.push(t);
        }
    }
    assert_eq!(at, [500, 1500, 3500]);
    h.backend_sends(&answer(&fwd.text, 100, ""), &fwd.to.to_string());
    assert!(h.advance(8000).iter().all(|s| s.method() != "INVITE"));
}

#[test]
fn no_answer_fails_over_to_the_next_destination_in_ranking_order() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c7");
    // fr_timeout (2 s): two retransmissions, then the next destination.
    let v = h.advance(2000);
    let invites: Vec<_> = v.iter().filter(|s| s.method() == "INVITE").collect();
    assert_eq!(invites.len(), 3, "{v:#?}");
    let second = invites[2];
    assert_ne!(second.to, fwd.to);
    assert_eq!(h.stats().failovers, 1);
    assert_eq!(h.stats().timeouts, 1);
    let b0 = h.r.backend_at(&fwd.to).unwrap().id.0;
    assert!(h
        .health
        .signals
        .lock()
        .unwrap()
        .contains(&(b0, Passive::Timeout)));
    // A new branch for the new attempt (§17.1.3).
    let branch = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("Via:"))
            .unwrap()
            .to_string()
    };
    assert_ne!(branch(&second.text), branch(&fwd.text));
    // The new destination answers; the call completes there.
    let v = h.backend_sends(&answer(&second.text, 200, ""), &second.to.to_string());
    assert_eq!(only(&v, "200").status(), 200);
}

#[test]
fn failover_codes_move_on_and_retry_after_suspends_rfc3261_21_5_4() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c8");
    let v = h.backend_sends(
        &answer(&fwd.text, 503, "Retry-After: 30\r\n"),
        &fwd.to.to_string(),
    );
    assert_eq!(v.len(), 2, "{v:#?}");
    assert!(v.iter().any(|s| s.method() == "ACK" && s.to == fwd.to));
    let next = v.iter().find(|s| s.method() == "INVITE").unwrap();
    assert_ne!(next.to, fwd.to);
    let b0 = h.r.backend_at(&fwd.to).unwrap().id.0;
    assert!(h
        .health
        .signals
        .lock()
        .unwrap()
        .contains(&(b0, Passive::RetryAfter(std::time::Duration::from_secs(30)))));
    // The last destination's failure code is relayed when none is left.
    let v = h.backend_sends(&answer(&next.text, 500, ""), &next.to.to_string());
    let third = v
        .iter()
        .find(|s| s.method() == "INVITE")
        .unwrap()
        .clone_text();
    let to3 = v.iter().find(|s| s.method() == "INVITE").unwrap().to;
    let v = h.backend_sends(&answer(&third, 502, ""), &to3.to_string());
    assert!(v.iter().any(|s| s.status() == 502 && s.to == addr(CLIENT)));
    assert_eq!(h.stats().failovers, 2);
}

impl Sent {
    fn clone_text(&self) -> String {
        self.text.clone()
    }
}

#[test]
fn other_final_codes_are_relayed_without_failover() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c9");
    let v = h.backend_sends(&answer(&fwd.text, 486, ""), &fwd.to.to_string());
    assert!(v.iter().any(|s| s.status() == 486));
    assert!(v.iter().all(|s| s.method() != "INVITE"));
    assert_eq!(h.stats().failovers, 0);
}

#[test]
fn cancel_after_ringing_is_answered_and_sent_on_rfc3261_16_10() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c10");
    let b = fwd.to.to_string();
    h.backend_sends(&answer(&fwd.text, 180, ""), &b);
    let cancel = request("CANCEL", "c10", None, "z9hG4bK-c10", 1);
    let v = h.client_sends(&cancel);
    assert_eq!(v.len(), 2, "{v:#?}");
    let ok = v.iter().find(|s| s.status() == 200).unwrap();
    assert_eq!(ok.to, addr(CLIENT));
    assert!(ok.text.contains("CSeq: 1 CANCEL"));
    let c = v.iter().find(|s| s.method() == "CANCEL").unwrap();
    assert_eq!(c.to, fwd.to);
    let via_fwd = fwd.text.lines().find(|l| l.starts_with("Via:")).unwrap();
    assert!(
        c.text.contains(via_fwd),
        "CANCEL has the INVITE's branch (§9.1)"
    );
    assert_eq!(h.stats().cancels, 1);
    // The backend answers the CANCEL and the INVITE.
    assert!(h.backend_sends(&answer(&c.text, 200, ""), &b).is_empty());
    let v = h.backend_sends(&answer(&fwd.text, 487, ""), &b);
    assert!(v.iter().any(|s| s.status() == 487 && s.to == addr(CLIENT)));
    assert!(v.iter().any(|s| s.method() == "ACK"));
    // No failover after a CANCEL, and no CANCEL retransmission.
    assert!(h
        .advance(3000)
        .iter()
        .all(|s| s.method() != "INVITE" && s.method() != "CANCEL"));
}

#[test]
fn cancel_before_any_provisional_waits_for_one_rfc3261_9_1() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c11");
    let v = h.client_sends(&request("CANCEL", "c11", None, "z9hG4bK-c11", 1));
    assert_eq!(only(&v, "only the 200").status(), 200);
    let v = h.backend_sends(&answer(&fwd.text, 180, ""), &fwd.to.to_string());
    assert!(v.iter().any(|s| s.method() == "CANCEL"), "{v:#?}");
}

#[test]
fn cancelled_silent_branch_gets_487_from_sipfront() {
    let mut h = H::new(Algorithm::CallId, cfg());
    start(&mut h, "c12");
    h.client_sends(&request("CANCEL", "c12", None, "z9hG4bK-c12", 1));
    let v = h.advance(2100);
    assert!(
        v.iter().any(|s| s.status() == 487 && s.to == addr(CLIENT)),
        "{v:#?}"
    );
    assert!(v.iter().all(|s| s.method() != "INVITE" || s.to != addr(B3)));
    assert_eq!(h.stats().failovers, 0);
}

#[test]
fn cancel_matching_nothing_is_forwarded_statelessly_rfc3261_16_10() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let v = h.client_sends(&request("CANCEL", "c13", None, "z9hG4bK-c13", 1));
    assert_eq!(only(&v, "forwarded").method(), "CANCEL");
    assert_eq!(v[0].from, Socket::Egress);
}

#[test]
fn timer_c_cancels_a_ringing_branch_and_fails_over_rfc3261_16_8() {
    let mut tc = cfg();
    tc.fr_inv_ms = 10_000;
    let mut h = H::new(Algorithm::CallId, tc);
    let fwd = start(&mut h, "c14");
    h.backend_sends(&answer(&fwd.text, 180, ""), &fwd.to.to_string());
    let v = h.advance(10_000);
    assert!(
        v.iter().any(|s| s.method() == "CANCEL" && s.to == fwd.to),
        "{v:#?}"
    );
    let next = v.iter().find(|s| s.method() == "INVITE").unwrap();
    assert_ne!(next.to, fwd.to);
}

#[test]
fn in_dialog_request_to_a_dead_backend_gets_408_promptly() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let bye = request("BYE", "c15", Some("b9"), "z9hG4bK-bye15", 2);
    let v = h.client_sends(&bye);
    let fwd = only(&v, "BYE forwarded");
    assert_eq!(fwd.method(), "BYE");
    // Timer E: 500, 1000 (+500), 2000 would be next; fr_timeout is 2 s.
    let v = h.advance(2000);
    assert_eq!(
        v.iter().filter(|s| s.method() == "BYE").count(),
        2,
        "{v:#?}"
    );
    let r = v.iter().find(|s| s.status() == 408).expect("408 upstream");
    assert_eq!(r.to, addr(CLIENT));
    assert_eq!(
        h.stats().failovers,
        0,
        "in-dialog requests do not fail over"
    );
    // A retransmitted BYE gets the 408 again (timer J).
    let v = h.client_sends(&bye);
    assert_eq!(only(&v, "408 again").status(), 408);
}

#[test]
fn non_invite_final_is_relayed_once_and_answers_retransmissions_rfc3261_17_2_2() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let bye = request("BYE", "c16", Some("b9"), "z9hG4bK-bye16", 2);
    let v = h.client_sends(&bye);
    let fwd = &v[0];
    let ok = answer(&fwd.text, 200, "");
    let v = h.backend_sends(&ok, &fwd.to.to_string());
    assert_eq!(only(&v, "200").status(), 200);
    assert!(h.backend_sends(&ok, &fwd.to.to_string()).is_empty());
    assert_eq!(only(&h.client_sends(&bye), "again").status(), 200);
    // Timer J = 64×T1.
    h.advance(32_010);
    assert_eq!(h.live(), 0);
}

#[test]
fn timer_e_doubles_up_to_t2_rfc3261_17_1_2_2() {
    let mut tc = cfg();
    tc.fr_ms = 60_000;
    let mut h = H::new(Algorithm::CallId, tc);
    h.client_sends(&request("OPTIONS", "c17", None, "z9hG4bK-o17", 1));
    let mut at = Vec::new();
    let mut t = 0;
    for _ in 0..(16_000 / 5) {
        t += 5;
        if !h.advance(5).is_empty() {
            at.push(t);
        }
    }
    assert_eq!(at, [500, 1500, 3500, 7500, 11500, 15500]);
}

#[test]
fn request_without_magic_cookie_matches_by_rfc2543_fields_rfc3261_17_2_3() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let old = invite("c18").replace(";branch=z9hG4bK-c18", "");
    let v = h.client_sends(&old);
    assert_eq!(v.len(), 2);
    let v = h.client_sends(&old);
    assert_eq!(only(&v, "absorbed").status(), 100);
}

#[test]
fn a_full_table_refuses_new_requests_with_503() {
    let mut tc = cfg();
    tc.max_transactions = 2;
    let mut h = H::new(Algorithm::CallId, tc);
    start(&mut h, "f1");
    start(&mut h, "f2");
    let v = h.client_sends(&invite("f3"));
    let r = only(&v, "503");
    assert_eq!(r.status(), 503);
    assert!(r.text.contains("Retry-After:"));
    assert_eq!(h.stats().transactions_refused, 1);
    // Retransmissions of accepted requests are still absorbed.
    assert_eq!(only(&h.client_sends(&invite("f1")), "abs").status(), 100);
}

#[test]
fn draining_absorbs_retransmissions_but_refuses_new_dialogs() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let flag = Arc::new(AtomicBool::new(false));
    h.p.engine_mut().set_drain_flag(Arc::clone(&flag));
    start(&mut h, "d1");
    flag.store(true, Ordering::Relaxed);
    assert_eq!(only(&h.client_sends(&invite("d1")), "abs").status(), 100);
    assert_eq!(only(&h.client_sends(&invite("d2")), "503").status(), 503);
}

#[test]
fn late_answers_of_an_abandoned_attempt() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c19");
    let v = h.advance(2000);
    let second = v
        .iter()
        .find(|s| s.method() == "INVITE" && s.to != fwd.to)
        .unwrap();
    let second_to = second.to;
    // The first destination's late 486 is ACKed to it, not relayed.
    let v = h.backend_sends(&answer(&fwd.text, 486, ""), &fwd.to.to_string());
    let a = only(&v, "ACK of the stale attempt");
    assert_eq!((a.method(), a.to), ("ACK", fwd.to));
    // Its late 2xx is relayed (§16.7 step 5).
    let v = h.backend_sends(&answer(&fwd.text, 200, ""), &fwd.to.to_string());
    assert_eq!(only(&v, "stale 2xx").status(), 200);
    assert_ne!(second_to, fwd.to);
}

#[test]
fn memory_per_live_invite_transaction() {
    let mut h = H::new(Algorithm::CallId, cfg());
    for i in 0..1000 {
        start(&mut h, &format!("mem{i}"));
    }
    let (live, bytes) = h.p.engine().transaction_memory();
    assert_eq!(live, 1000);
    let per = bytes / live;
    eprintln!("bytes per live INVITE transaction (proceeding): {per}");
    assert!(per < 4096, "{per}");
}

/// SIPp's built-in uac sends ACK and BYE without Route; after a failover
/// they must reach the destination that answered, not the Call-ID hash's.
#[test]
fn in_dialog_requests_follow_a_failed_over_dialog() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c20");
    let v = h.backend_sends(&answer(&fwd.text, 503, ""), &fwd.to.to_string());
    let next = v.iter().find(|s| s.method() == "INVITE").unwrap();
    let (to2, text2) = (next.to, next.text.clone());
    h.backend_sends(&answer(&text2, 200, ""), &to2.to_string());
    let ack = request("ACK", "c20", Some("b9"), "z9hG4bK-ack20", 1);
    let v = h.client_sends(&ack);
    assert_eq!(only(&v, "ACK").to, to2);
    let bye = request("BYE", "c20", Some("b9"), "z9hG4bK-bye20", 2);
    let v = h.client_sends(&bye);
    let b = only(&v, "BYE");
    assert_eq!(b.to, to2);
    // The BYE's answer ends the affinity.
    let bye_text = b.text.clone();
    h.backend_sends(&answer(&bye_text, 200, ""), &to2.to_string());
    let v = h.client_sends(&request("BYE", "c20", Some("b9"), "z9hG4bK-bye20b", 3));
    assert_eq!(only(&v, "hash again").to, fwd.to);
}

/// RFC 3261 §17.2.1 timer H: without an ACK, the non-2xx final is
/// retransmitted on timer G (doubling to T2) until 64×T1, then the entry
/// ends.
#[test]
fn timer_h_ends_a_completed_invite_without_ack_rfc3261_17_2_1() {
    let mut tc = cfg();
    tc.failover_codes = vec![];
    let mut h = H::new(Algorithm::CallId, tc);
    let fwd = start(&mut h, "c21");
    h.backend_sends(&answer(&fwd.text, 486, ""), &fwd.to.to_string());
    let mut at = Vec::new();
    let mut t = 0;
    for _ in 0..(33_000 / 5) {
        t += 5;
        if h.advance(5).iter().any(|s| s.status() == 486) {
            at.push(t);
        }
    }
    // G: T1, 2T1, 4T1, then T2 (4 s) until H (32 s) fires.
    assert_eq!(&at[..4], &[500, 1500, 3500, 7500]);
    assert!(at.iter().all(|&x| x < 32_000), "{at:?}");
    assert_eq!(h.live(), 0);
}

/// RFC 3261 §16.7 step 10 / RFC 6026: the ACK of a 2xx is its own
/// end-to-end request, forwarded statelessly, never absorbed.
#[test]
fn ack_for_2xx_is_forwarded_rfc6026() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c22");
    h.backend_sends(&answer(&fwd.text, 200, ""), &fwd.to.to_string());
    let ack = request("ACK", "c22", Some("b9"), "z9hG4bK-ack22", 1);
    let v = h.client_sends(&ack);
    let a = only(&v, "ACK");
    assert_eq!((a.method(), a.to), ("ACK", fwd.to));
    assert_eq!(h.live(), 1, "the ACK makes no transaction");
}

/// A request from a backend toward a client (the callee hangs up) is a
/// transaction too: relayed from the listen socket, its answer relayed back
/// to the backend from the egress socket.
#[test]
fn request_from_a_backend_toward_the_client() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let bye = "BYE sip:alice@192.0.2.50:5062 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-uas-bye1\r\n\
Max-Forwards: 70\r\n\
From: <sip:bob@example.com>;tag=b9\r\n\
To: <sip:alice@example.com>;tag=a1\r\n\
Call-ID: c23\r\n\
CSeq: 1 BYE\r\n\
Content-Length: 0\r\n\r\n";
    let v = h.backend_sends(bye, B1);
    let f = only(&v, "BYE toward the client");
    assert_eq!(
        (f.method(), f.to, f.from),
        ("BYE", addr(CLIENT), Socket::Listen(0))
    );
    let v = h.recv(&answer(&f.text, 200, ""), CLIENT, Socket::Listen(0));
    let r = only(&v, "200 back");
    assert_eq!((r.status(), r.to, r.from), (200, addr(B1), Socket::Egress));
}

/// A destination taken out by the health logic while a call rings on it:
/// the branch is CANCELled and the INVITE fails over within one health
/// watch, rather than after Timer C (minutes) for a server that will never
/// answer.
#[test]
fn ringing_branch_on_a_destination_gone_down_fails_over() {
    let mut h = H::new(Algorithm::CallId, cfg());
    let fwd = start(&mut h, "c24");
    h.backend_sends(&answer(&fwd.text, 180, ""), &fwd.to.to_string());
    let b0 = h.r.backend_at(&fwd.to).unwrap().id.0;
    h.health.down.lock().unwrap().push(b0);
    let v = h.advance(super::stateful::HEALTH_WATCH_MS);
    assert!(
        v.iter().any(|s| s.method() == "CANCEL" && s.to == fwd.to),
        "{v:#?}"
    );
    let next = v
        .iter()
        .find(|s| s.method() == "INVITE")
        .expect("failed over");
    assert_ne!(next.to, fwd.to);
    assert_eq!(h.stats().failovers, 1);
    // Other transactions are left alone: nothing more happens.
    assert!(h.advance(5).is_empty());
}
