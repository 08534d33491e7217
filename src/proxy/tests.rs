//! Proxy rules without sockets: each test feeds datagrams to a `Proxy` and
//! checks the bytes and destination that come out (RFC 3261 §16, §16.11).

use super::*;
use crate::dispatch::{Algorithm, BackendId, BackendSet, Destination, InactiveSet, Rules};
use crate::runtime::pump::{Capture, Pump};
use crate::sip::HeaderName;
use std::sync::Mutex;

const CLIENT: &str = "192.0.2.50:5062";
const B1: &str = "127.0.0.1:5070";
const B2: &str = "127.0.0.1:5080";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn routing(alg: Algorithm) -> Arc<Routing> {
    let set = BackendSet::new(
        "default",
        alg,
        vec![
            Destination::new(BackendId(0), "sip:127.0.0.1:5070", addr(B1)),
            Destination::new(BackendId(1), "sip:127.0.0.1:5080", addr(B2)),
        ],
    )
    .unwrap();
    Arc::new(Routing::new(vec![set], Rules::new(vec![], 0)))
}

/// Health the test sets per datagram.
#[derive(Default)]
struct Switch(Mutex<InactiveSet>);

impl Health for Switch {
    fn is_active(&self, id: BackendId) -> bool {
        self.0.lock().unwrap().is_active(id)
    }
}

/// A stateless engine in its pump, with the routing and health each test
/// datagram names.
struct Proxy {
    p: Pump,
    sink: Capture,
    routing: Arc<ArcSwap<Routing>>,
    health: Arc<Switch>,
}

impl Proxy {
    fn stats(&self) -> &Stats {
        self.p.engine().stats()
    }

    fn set_drain_flag(&mut self, flag: Arc<AtomicBool>) {
        self.p.engine_mut().set_drain_flag(flag);
    }
}

fn proxy(worker: u8) -> Proxy {
    proxy_with(worker, ProxyConfig::default())
}

fn proxy_with(worker: u8, cfg: ProxyConfig) -> Proxy {
    let listens = [addr("127.0.0.1:5060")];
    let egress = [addr("127.0.0.1:5061"), addr("127.0.0.1:5062")];
    let mut id = identity::Identity::new(&listens, &egress, None, &[]);
    // The workers of one process share the key.
    id.branch_key = branch::Key::new(1, 2);
    let routing = Arc::new(ArcSwap::new(routing(Algorithm::CallId)));
    let health = Arc::new(Switch::default());
    let e = Engine::new(
        cfg,
        Arc::new(id),
        worker,
        Arc::clone(&routing),
        Arc::clone(&health) as Arc<dyn Health + Send + Sync>,
    );
    Proxy {
        p: Pump::new(e),
        sink: Capture::default(),
        routing,
        health,
    }
}

fn invite(call_id: &str, extra: &str) -> String {
    format!(
        "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5062;rport;branch=z9hG4bK-{call_id}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@10.0.0.9:5062>\r\n\
{extra}Content-Length: 0\r\n\r\n"
    )
}

/// The BYE SIPp's built-in uac sends: to the proxy, no Route.
fn sipp_bye(call_id: &str) -> String {
    invite(call_id, "")
        .replace(
            "INVITE sip:bob@example.com",
            "BYE sip:service@127.0.0.1:5060",
        )
        .replace("CSeq: 1 INVITE", "CSeq: 2 BYE")
        .replace(
            "To: <sip:bob@example.com>",
            "To: <sip:bob@example.com>;tag=b9",
        )
}

/// What one datagram led to: the first datagram out, a hand-over, or the
/// drop that was counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Send { to: SocketAddr, from: Socket },
    Handover { worker: u8 },
    Drop(DropReason),
    Nothing,
}

struct Run {
    outcome: Outcome,
    out: String,
}

fn run(p: &mut Proxy, r: &Arc<Routing>, msg: &str, src: &str, socket: Socket) -> Run {
    run_health(p, r, &InactiveSet::new(), msg, src, socket)
}

fn run_health(
    p: &mut Proxy,
    r: &Arc<Routing>,
    h: &InactiveSet,
    msg: &str,
    src: &str,
    socket: Socket,
) -> Run {
    p.routing.store(Arc::clone(r));
    *p.health.0.lock().unwrap() = h.clone();
    let drops_before = p.stats().drops;
    let d = Datagram {
        data: msg.as_bytes(),
        src: addr(src),
        socket,
    };
    p.p.datagram(Instant::now(), d, &mut p.sink);
    let sent = p.sink.take();
    let handed = std::mem::take(&mut p.sink.handed_over);
    let (outcome, out) = if let Some(s) = sent.first() {
        (
            Outcome::Send {
                to: s.to,
                from: s.socket,
            },
            String::from_utf8_lossy(&s.data).into_owned(),
        )
    } else if let Some((worker, h)) = handed.first() {
        assert_eq!(h.data, msg.as_bytes(), "handed over unchanged");
        (Outcome::Handover { worker: *worker }, String::new())
    } else {
        let reason = DropReason::ALL
            .into_iter()
            .find(|r| p.stats().dropped(*r) > drops_before[*r as usize]);
        (
            reason.map_or(Outcome::Nothing, Outcome::Drop),
            String::new(),
        )
    };
    Run { outcome, out }
}

fn status(out: &str) -> u16 {
    out.get(8..11).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn forwards_initial_invite_with_proxy_edits_rfc3261_16_6() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(1);
    let got = run(&mut p, &r, &invite("c1", ""), CLIENT, Socket::Listen(0));
    let Outcome::Send { to, from } = got.outcome else {
        panic!("{:?}", got.outcome)
    };
    assert_eq!(from, Socket::Egress);
    assert!(to == addr(B1) || to == addr(B2));
    let m = Message::parse(got.out.as_bytes()).unwrap();
    // Step 8: sipfront's Via on top, naming worker 1's egress port.
    let top = m.top_via().unwrap();
    assert_eq!(top.host_raw, b"127.0.0.1");
    assert_eq!(top.port, Some(5062));
    let b = branch::parse(top.branch.unwrap()).unwrap();
    assert_eq!((b.worker, b.listen), (1, 0));
    // §18.2.1 + RFC 3581: received and rport on the client's Via.
    let client = m.vias().nth(1).unwrap().unwrap();
    assert_eq!(client.received, Some(&b"192.0.2.50"[..]));
    assert_eq!(client.rport, Some(Some(5062)));
    // Step 3: Max-Forwards decremented.
    assert_eq!(m.max_forwards().unwrap(), Some(69));
    // Step 4: Record-Route with lr on a dialog-creating request.
    let rr = m.record_routes().next().unwrap().unwrap();
    assert_eq!(rr.uri.raw, b"sip:127.0.0.1:5060;lr");
    assert_eq!(p.stats().requests_forwarded, 1);
}

#[test]
fn max_forwards_inserted_when_absent_rfc3261_16_6_step3() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    let msg = invite("c2", "").replace("Max-Forwards: 70\r\n", "");
    let got = run(&mut p, &r, &msg, CLIENT, Socket::Listen(0));
    let m = Message::parse(got.out.as_bytes()).unwrap();
    assert_eq!(m.max_forwards().unwrap(), Some(70));
}

#[test]
fn max_forwards_zero_gets_483_rfc3261_16_3_step3() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    let msg = invite("c3", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    let got = run(&mut p, &r, &msg, CLIENT, Socket::Listen(0));
    assert_eq!(status(&got.out), 483);
    // Back to the source (rport) from the socket it came in on.
    assert_eq!(
        got.outcome,
        Outcome::Send {
            to: addr(CLIENT),
            from: Socket::Listen(0)
        }
    );
    let m = Message::parse(got.out.as_bytes()).unwrap();
    assert!(m.to().unwrap().tag().is_some(), "§8.2.6.2 To-tag");
    assert_eq!(p.stats().replies_with(483), 1);
}

#[test]
fn options_to_sipfront_answered_not_forwarded_rfc3261_16_3() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    let opts = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bKo1\r\nMax-Forwards: 0\r\nFrom: <sip:peer@x>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        status(&run(&mut p, &r, opts, CLIENT, Socket::Listen(0)).out),
        200
    );
    // A keepalive with Max-Forwards > 0 is answered too.
    let ka = opts.replace("Max-Forwards: 0", "Max-Forwards: 70");
    assert_eq!(
        status(&run(&mut p, &r, &ka, CLIENT, Socket::Listen(0)).out),
        200
    );
    // OPTIONS with Max-Forwards 0 for someone else: 483.
    let other = opts.replace("OPTIONS sip:127.0.0.1:5060", "OPTIONS sip:bob@example.com");
    assert_eq!(
        status(&run(&mut p, &r, &other, CLIENT, Socket::Listen(0)).out),
        483
    );
}

#[test]
fn validation_failures_are_answered_rfc3261_16_3() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    let cases: Vec<(String, u16)> = vec![
        (
            invite("v1", "").replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS"),
            400,
        ),
        (
            invite("v2", "").replace(
                "INVITE sip:bob@example.com",
                "INVITE mailto:bob@example.com",
            ),
            416,
        ),
        (
            invite("v3", "").replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia"),
            505,
        ),
        (invite("v4", "").replace("INVITE sip:", "INVITE  sip:"), 400),
        (invite("v5", "Proxy-Require: foo\r\n"), 420),
        (
            invite("v6", "").replace("Content-Length: 0", "Content-Length: 9"),
            400,
        ),
    ];
    for (msg, code) in cases {
        let got = run(&mut p, &r, &msg, CLIENT, Socket::Listen(0));
        assert_eq!(status(&got.out), code, "{msg}");
        if code == 420 {
            assert!(got.out.contains("Unsupported: foo\r\n"));
        }
    }
}

#[test]
fn oversized_request_gets_513_rfc3261_18_1_1() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy_with(
        0,
        ProxyConfig {
            max_message_size: 1024,
            ..ProxyConfig::default()
        },
    );
    let big = invite("big", &format!("X-Pad: {}\r\n", "a".repeat(2000)));
    assert_eq!(
        status(&run(&mut p, &r, &big, CLIENT, Socket::Listen(0)).out),
        513
    );
}

#[test]
fn garbage_and_keepalives_are_dropped_and_counted() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    for g in [
        "\u{1}\u{2}garbage",
        "hello world\r\n\r\n",
        "SIP/2.0 2000 Bad\r\n\r\n",
    ] {
        assert_eq!(
            run(&mut p, &r, g, CLIENT, Socket::Listen(0)).outcome,
            Outcome::Drop(DropReason::Unparseable)
        );
    }
    assert_eq!(
        run(&mut p, &r, "\r\n\r\n", CLIENT, Socket::Listen(0)).outcome,
        Outcome::Drop(DropReason::KeepAlive)
    );
    assert_eq!(p.stats().dropped(DropReason::Unparseable), 3);
    // An invalid ACK is never answered (§17.2.3).
    let ack = invite("a1", "")
        .replace("INVITE", "ACK")
        .replace("CSeq: 1 ACK", "CSeq: 1 INVITE");
    assert_eq!(
        run(&mut p, &r, &ack, CLIENT, Socket::Listen(0)).outcome,
        Outcome::Drop(DropReason::BadAck)
    );
}

#[test]
fn in_dialog_requests_follow_the_call_id_hash_rfc3261_16_11() {
    // SIPp's built-in uac sends ACK and BYE to the proxy without Route.
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    for i in 0..50 {
        let cid = format!("{i}-4242@127.0.0.1");
        let first = run(&mut p, &r, &invite(&cid, ""), CLIENT, Socket::Listen(0)).outcome;
        let bye = sipp_bye(&cid);
        let later = run(&mut p, &r, &bye, CLIENT, Socket::Listen(0)).outcome;
        assert_eq!(first, later, "{cid}");
    }
}

#[test]
fn retransmission_and_cancel_get_the_same_branch_rfc3261_16_11() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    let inv = invite("r1", "");
    let a = run(&mut p, &r, &inv, CLIENT, Socket::Listen(0)).out;
    let b = run(&mut p, &r, &inv, CLIENT, Socket::Listen(0)).out;
    let cancel = inv
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let c = run(&mut p, &r, &cancel, CLIENT, Socket::Listen(0)).out;
    let br = |s: &str| {
        let m = Message::parse(s.as_bytes()).unwrap();
        m.top_via().unwrap().branch.unwrap().to_vec()
    };
    assert_eq!(br(&a), br(&b));
    assert_eq!(br(&a), br(&c));
    assert!(!c.contains("Record-Route"), "CANCEL creates no dialog");
}

#[test]
fn loop_is_482_and_spiral_continues_rfc3261_16_3_step4() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    let inv = invite("l1", "");
    let fwd = run(&mut p, &r, &inv, CLIENT, Socket::Listen(0)).out;
    // The backend sends it straight back to sipfront with its own Via.
    let back = fwd.replacen(
        "Via: ",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKb1\r\nVia: ",
        1,
    );
    let got = run(&mut p, &r, &back, B1, Socket::Listen(0));
    assert_eq!(status(&got.out), 482);
    // A spiral: the Request-URI changed, so processing continues.
    let spiral = back.replace("INVITE sip:bob@example.com", "INVITE sip:carol@example.com");
    let got = run(&mut p, &r, &spiral, B1, Socket::Listen(0));
    assert!(matches!(got.outcome, Outcome::Send { .. }), "{}", got.out);
}

#[test]
fn routes_naming_sipfront_are_removed_rfc3261_16_4() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    let msg = invite("rt", "Route: <sip:127.0.0.1:5060;lr>, <sip:127.0.0.1:5061;lr>\r\nRoute: <sip:198.51.100.7:5070;lr>\r\n")
        .replace("To: <sip:bob@example.com>", "To: <sip:bob@example.com>;tag=x");
    let got = run(&mut p, &r, &msg, CLIENT, Socket::Listen(0));
    // Next hop: the first Route that is not sipfront, from the listen side.
    assert_eq!(
        got.outcome,
        Outcome::Send {
            to: addr("198.51.100.7:5070"),
            from: Socket::Listen(0)
        }
    );
    let m = Message::parse(got.out.as_bytes()).unwrap();
    let routes: Vec<_> = m.routes().map(|r| r.unwrap().uri.raw.to_vec()).collect();
    assert_eq!(routes, vec![b"sip:198.51.100.7:5070;lr".to_vec()]);
    assert!(
        !got.out.contains("Record-Route"),
        "in-dialog: no Record-Route"
    );
}

#[test]
fn strict_router_compatibility_rfc3261_16_4() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    // A strict router put sipfront's Record-Route URI in the Request-URI and
    // the real target last in Route.
    let msg = invite("sr", "Route: <sip:127.0.0.1:5080>\r\n")
        .replace("INVITE sip:bob@example.com", "INVITE sip:127.0.0.1:5060;lr")
        .replace(
            "To: <sip:bob@example.com>",
            "To: <sip:bob@example.com>;tag=x",
        );
    let got = run(&mut p, &r, &msg, CLIENT, Socket::Listen(0));
    assert_eq!(
        got.outcome,
        Outcome::Send {
            to: addr(B2),
            from: Socket::Egress
        }
    );
}

#[test]
fn requests_from_a_backend_go_to_the_request_uri() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    let bye = "BYE sip:alice@192.0.2.50:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKbb\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b9\r\nTo: <sip:alice@example.com>;tag=a1\r\nCall-ID: fb\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n";
    let got = run(&mut p, &r, bye, B1, Socket::Listen(0));
    assert_eq!(
        got.outcome,
        Outcome::Send {
            to: addr("192.0.2.50:5062"),
            from: Socket::Listen(0)
        }
    );
}

#[test]
fn no_active_backend_gets_503() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    let down: InactiveSet = [BackendId(0), BackendId(1)].into_iter().collect();
    let got = run_health(
        &mut p,
        &r,
        &down,
        &invite("d1", ""),
        CLIENT,
        Socket::Listen(0),
    );
    assert_eq!(status(&got.out), 503);
    assert!(got.out.contains("Retry-After: 5\r\n"));
    // Inactive destinations are skipped.
    let one: InactiveSet = [BackendId(0)].into_iter().collect();
    let got = run_health(
        &mut p,
        &r,
        &one,
        &invite("d2", ""),
        CLIENT,
        Socket::Listen(0),
    );
    assert_eq!(
        got.outcome,
        Outcome::Send {
            to: addr(B2),
            from: Socket::Egress
        }
    );
}

fn response_for(fwd: &str, code: &str) -> String {
    // What a backend answers: the request's Vias, a To-tag.
    let m = Message::parse(fwd.as_bytes()).unwrap();
    let mut s = format!("SIP/2.0 {code}\r\n");
    for v in m.values(HeaderName::Via) {
        s.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    s.push_str("From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b9\r\n");
    s.push_str(&format!(
        "Call-ID: {}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        String::from_utf8_lossy(m.call_id().unwrap())
    ));
    s
}

#[test]
fn responses_follow_the_next_via_rfc3261_16_7_and_rfc3581() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    let fwd = run(&mut p, &r, &invite("rs", ""), CLIENT, Socket::Listen(0)).out;
    let resp = response_for(&fwd, "180 Ringing");
    let got = run(&mut p, &r, &resp, B1, Socket::Egress);
    // To received:rport of the client's Via, from the listen socket.
    assert_eq!(
        got.outcome,
        Outcome::Send {
            to: addr(CLIENT),
            from: Socket::Listen(0)
        }
    );
    let m = Message::parse(got.out.as_bytes()).unwrap();
    assert_eq!(m.vias().count(), 1);
    assert_eq!(m.top_via().unwrap().host_raw, b"10.0.0.9");
    assert_eq!(p.stats().responses_forwarded, 1);
}

#[test]
fn responses_not_ours_and_bad_next_hops_are_dropped() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    let foreign = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKzz\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: f\r\nCSeq: 1 INVITE\r\n\r\n";
    assert_eq!(
        run(&mut p, &r, foreign, B1, Socket::Egress).outcome,
        Outcome::Drop(DropReason::ResponseNotOurs)
    );
    // RFC 4475 §3.3.10 bcast: never send to a broadcast address.
    let fwd = run(&mut p, &r, &invite("bc", ""), CLIENT, Socket::Listen(0)).out;
    let resp = response_for(&fwd, "200 OK");
    let m = Message::parse(resp.as_bytes()).unwrap();
    let ours = String::from_utf8_lossy(m.values(HeaderName::Via).next().unwrap()).into_owned();
    let bcast = format!("SIP/2.0 200 OK\r\nVia: {ours}\r\nVia: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bKx\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: f\r\nCSeq: 1 INVITE\r\n\r\n");
    assert_eq!(
        run(&mut p, &r, &bcast, B1, Socket::Egress).outcome,
        Outcome::Drop(DropReason::BadNextHop)
    );
}

#[test]
fn response_for_another_worker_is_handed_over() {
    let r = routing(Algorithm::CallId);
    let mut w1 = proxy(1);
    let fwd = run(&mut w1, &r, &invite("ho", ""), CLIENT, Socket::Listen(0)).out;
    let resp = response_for(&fwd, "200 OK");
    let mut w0 = proxy(0);
    assert_eq!(
        run(&mut w0, &r, &resp, B1, Socket::Egress).outcome,
        Outcome::Handover { worker: 1 }
    );
    assert!(matches!(
        run(&mut w1, &r, &resp, B1, Socket::Egress).outcome,
        Outcome::Send { .. }
    ));
}

#[test]
fn weighted_and_round_robin_calls_stay_whole_without_route_rfc3261_16_11() {
    // Weighted picks by the weighted Call-ID hash, so the BYE (no Route)
    // follows its INVITE; round robin's in-dialog requests use the same
    // Call-ID hash (what the INVITE got depends on the cursor).
    let r = routing(Algorithm::Weighted);
    let mut p = proxy(0);
    for i in 0..50 {
        let cid = format!("w{i}-77@127.0.0.1");
        let first = run(&mut p, &r, &invite(&cid, ""), CLIENT, Socket::Listen(0)).outcome;
        let bye = sipp_bye(&cid);
        assert_eq!(
            first,
            run(&mut p, &r, &bye, CLIENT, Socket::Listen(0)).outcome,
            "{cid}"
        );
    }
    let rr = routing(Algorithm::RoundRobin);
    let dests: Vec<Outcome> = (0..4)
        .map(|i| {
            run(
                &mut p,
                &rr,
                &invite(&format!("rr{i}"), ""),
                CLIENT,
                Socket::Listen(0),
            )
            .outcome
        })
        .collect();
    assert_ne!(
        dests[0], dests[1],
        "round robin alternates initial requests"
    );
}

/// Graceful drain: new dialogs get 503 with Retry-After (RFC 3261
/// §21.5.4), in-dialog requests and CANCELs still go through.
#[test]
fn draining_refuses_new_dialogs_only() {
    let r = routing(Algorithm::CallId);
    let mut p = proxy(0);
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    p.set_drain_flag(Arc::clone(&flag));
    let got = run(&mut p, &r, &invite("dr1", ""), CLIENT, Socket::Listen(0));
    assert!(matches!(
        got.outcome,
        Outcome::Send {
            from: Socket::Egress,
            ..
        }
    ));
    flag.store(true, std::sync::atomic::Ordering::Relaxed);
    let got = run(&mut p, &r, &invite("dr2", ""), CLIENT, Socket::Listen(0));
    assert_eq!(status(&got.out), 503);
    assert!(got.out.contains("Retry-After: 5\r\n"));
    let got = run(&mut p, &r, &sipp_bye("dr1"), CLIENT, Socket::Listen(0));
    assert!(matches!(
        got.outcome,
        Outcome::Send {
            from: Socket::Egress,
            ..
        }
    ));
    let cancel = invite("dr1", "")
        .replace("INVITE sip:bob", "CANCEL sip:bob")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let got = run(&mut p, &r, &cancel, CLIENT, Socket::Listen(0));
    assert!(matches!(
        got.outcome,
        Outcome::Send {
            from: Socket::Egress,
            ..
        }
    ));
}
