//! The engine's API in memory, quinn style: engines of two workers and
//! fake backends driven by the test through the pump every driver uses —
//! the one output path, the deadlines, demux, hand-overs between workers,
//! the requests sipfront originates, parking, and the counting of what the
//! I/O layer could not send.

use super::txn::TxnConfig;
use super::*;
use crate::dispatch::{Algorithm, AllActive, BackendId, BackendSet, Destination, Rules};
use crate::runtime::pump::{Capture, Pump, Sent};
use crate::sip::HeaderName;
use sipfront_io::batch::SendError;

const CLIENT: &str = "192.0.2.50:5062";
const B1: &str = "127.0.0.1:5070";
const B2: &str = "127.0.0.1:5080";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn routing() -> Arc<ArcSwap<Routing>> {
    let set = BackendSet::new(
        "default",
        Algorithm::CallId,
        vec![
            Destination::new(BackendId(0), "sip:127.0.0.1:5070", addr(B1)),
            Destination::new(BackendId(1), "sip:127.0.0.1:5080", addr(B2)),
        ],
    )
    .unwrap();
    Arc::new(ArcSwap::from_pointee(Routing::new(
        vec![set],
        Rules::new(vec![], 0),
    )))
}

/// Worker `worker` of a two-worker process, stateful or not.
fn engine(worker: u8, stateful: bool) -> Pump {
    engine_with(worker, stateful, |_| {})
}

/// [`engine`] with its settings changed by `tune`.
fn engine_with(worker: u8, stateful: bool, tune: impl FnOnce(&mut ProxyConfig)) -> Pump {
    let mut id = identity::Identity::new(
        &[addr("127.0.0.1:5060")],
        &[addr("127.0.0.1:5061"), addr("127.0.0.1:5062")],
        None,
        &[],
    );
    // The workers of one process share the key.
    id.branch_key = branch::Key::new(1, 2);
    let mut cfg = ProxyConfig {
        transactions: stateful.then(TxnConfig::default),
        max_parked: 2,
        ..ProxyConfig::default()
    };
    tune(&mut cfg);
    Pump::new(Engine::new(
        cfg,
        Arc::new(id),
        worker,
        routing(),
        Arc::new(AllActive),
    ))
}

fn invite(call_id: &str) -> String {
    format!(
        "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.50:5062;rport;branch=z9hG4bK-{call_id}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.50:5062>\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// A backend's answer `status` to the forwarded request `fwd`.
fn answer(fwd: &[u8], status: &str) -> Vec<u8> {
    let m = Message::parse(fwd).unwrap();
    let mut r = format!("SIP/2.0 {status}\r\n").into_bytes();
    for v in m.values(HeaderName::Via) {
        r.extend_from_slice(b"Via: ");
        r.extend_from_slice(v);
        r.extend_from_slice(b"\r\n");
    }
    for (name, h) in [
        ("From", HeaderName::From),
        ("Call-ID", HeaderName::CallId),
        ("CSeq", HeaderName::CSeq),
    ] {
        r.extend_from_slice(name.as_bytes());
        r.extend_from_slice(b": ");
        r.extend_from_slice(m.values(h).next().unwrap());
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"To: <sip:bob@example.com>;tag=b9\r\nContent-Length: 0\r\n\r\n");
    r
}

fn dgram<'a>(data: &'a [u8], src: &str, socket: Socket) -> Datagram<'a> {
    Datagram {
        data,
        src: addr(src),
        socket,
    }
}

fn first_line(s: &Sent) -> String {
    String::from_utf8_lossy(&s.data)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Sends `data` from the client at `ms`.
fn from_client(p: &mut Pump, ms: u64, data: &str, c: &mut Capture) {
    let now = at(p, ms);
    p.datagram(now, dgram(data.as_bytes(), CLIENT, Socket::Listen(0)), c);
}

/// Sends `inv` from the client at time 0 and returns the INVITE sipfront
/// forwarded.
fn forwarded_invite(p: &mut Pump, c: &mut Capture, inv: &str) -> Sent {
    let now = at(p, 0);
    p.datagram(now, dgram(inv.as_bytes(), CLIENT, Socket::Listen(0)), c);
    c.take()
        .into_iter()
        .find(|s| s.data.starts_with(b"INVITE"))
        .expect("the INVITE forwarded")
}

fn at(p: &Pump, ms: u64) -> Instant {
    p.engine().epoch() + Duration::from_millis(ms)
}

/// A response that reaches worker 0 for worker 1's branch is handed over
/// unchanged, worker 1 relays it, and a hand-over is never handed on again.
#[test]
fn two_workers_hand_over_a_response_once() {
    let (mut w0, mut w1) = (engine(0, false), engine(1, false));
    let mut sink = Capture::default();
    let inv = invite("ho1");
    w1.datagram(
        at(&w1, 0),
        dgram(inv.as_bytes(), CLIENT, Socket::Listen(0)),
        &mut sink,
    );
    let fwd = sink.take().pop().unwrap();
    assert_eq!(fwd.socket, Socket::Egress);
    let ok = answer(&fwd.data, "200 OK");
    let backend = fwd.to.to_string();
    // The 200 lands on worker 0's egress socket.
    w0.datagram(at(&w0, 0), dgram(&ok, &backend, Socket::Egress), &mut sink);
    assert!(sink.take().is_empty());
    let (to, h) = sink.handed_over.pop().expect("handed over");
    assert_eq!((to, h.data.as_slice(), h.src), (1, &ok[..], fwd.to));
    assert_eq!(w0.engine().stats().handovers_out, 1);
    // Worker 1 relays it toward the client, without sipfront's Via.
    w1.handover(at(&w1, 0), &h, &mut sink);
    let out = sink.take().pop().expect("relayed");
    assert_eq!((out.to, out.socket), (addr(CLIENT), Socket::Listen(0)));
    assert!(!String::from_utf8_lossy(&out.data).contains("z9hG4bKsf"));
    assert_eq!(w1.engine().stats().handovers_in, 1);
    // Worker 0 handed the same response over by mistake: never again.
    w0.handover(at(&w0, 0), &h, &mut sink);
    assert!(sink.take().is_empty() && sink.handed_over.is_empty());
    assert_eq!(w0.engine().stats().dropped(DropReason::HandoverLoop), 1);
}

/// A hand-over the mesh refuses (the other worker's queue is full) is
/// counted, not lost silently.
#[test]
fn a_refused_hand_over_is_counted() {
    let (mut w0, mut w1) = (engine(0, false), engine(1, false));
    let mut sink = Capture::default();
    let inv = invite("ho2");
    w1.datagram(
        at(&w1, 0),
        dgram(inv.as_bytes(), CLIENT, Socket::Listen(0)),
        &mut sink,
    );
    let fwd = sink.take().pop().unwrap();
    let ok = answer(&fwd.data, "200 OK");
    sink.mesh_full = true;
    w0.datagram(
        at(&w0, 0),
        dgram(&ok, &fwd.to.to_string(), Socket::Egress),
        &mut sink,
    );
    assert_eq!(w0.engine().stats().dropped(DropReason::HandoverFull), 1);
}

/// A datagram the kernel refuses is counted by its reason in the engine's
/// counters (and so in /metrics).
#[test]
fn send_failures_are_counted_by_reason() {
    let mut p = engine(0, false);
    let mut sink = Capture::default();
    sink.fail_with = Some(SendError::WouldBlock);
    for i in 0..3 {
        let inv = invite(&format!("sf{i}"));
        p.datagram(
            at(&p, 0),
            dgram(inv.as_bytes(), CLIENT, Socket::Listen(0)),
            &mut sink,
        );
    }
    p.flush(&mut sink);
    let s = p.engine().stats();
    assert_eq!(s.send_failures_by(SendError::WouldBlock), 3);
    assert_eq!(s.send_failures_by(SendError::Unreachable), 0);
    assert!(s.summary().contains("send_failures_would_block 3"));
}

/// One output path, in order: an INVITE's 100 Trying (§16.2) leaves before
/// the forwarded INVITE, both from the single queue.
#[test]
fn one_output_path_in_order() {
    let mut p = engine(0, true);
    let mut sink = Capture::default();
    let inv = invite("o1");
    p.datagram(
        at(&p, 0),
        dgram(inv.as_bytes(), CLIENT, Socket::Listen(0)),
        &mut sink,
    );
    let v = sink.take();
    let lines: Vec<String> = v.iter().map(first_line).collect();
    assert_eq!(
        lines,
        ["SIP/2.0 100 Trying", "INVITE sip:bob@example.com SIP/2.0"]
    );
    assert_eq!(v[0].socket, Socket::Listen(0));
    assert_eq!(v[1].socket, Socket::Egress);
}

/// RFC 3261 §16.10: the 200 for a CANCEL and sipfront's own CANCEL to the
/// ringing branch come out of the same event, so a driver sends both in
/// the same wake-up.
#[test]
fn cancel_to_a_ringing_branch_leaves_with_its_200_rfc3261_16_10() {
    let mut p = engine(0, true);
    let mut sink = Capture::default();
    let inv = invite("cx1");
    p.datagram(
        at(&p, 0),
        dgram(inv.as_bytes(), CLIENT, Socket::Listen(0)),
        &mut sink,
    );
    let fwd = sink.take().pop().unwrap();
    let ringing = answer(&fwd.data, "180 Ringing");
    p.datagram(
        at(&p, 10),
        dgram(&ringing, &fwd.to.to_string(), Socket::Egress),
        &mut sink,
    );
    sink.take();
    let cancel = inv
        .replace("INVITE sip:bob", "CANCEL sip:bob")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    p.datagram(
        at(&p, 20),
        dgram(cancel.as_bytes(), CLIENT, Socket::Listen(0)),
        &mut sink,
    );
    let v = sink.take();
    let lines: Vec<String> = v.iter().map(first_line).collect();
    assert_eq!(
        lines,
        ["SIP/2.0 200 OK", "CANCEL sip:bob@example.com SIP/2.0"]
    );
    assert_eq!(v[1].to, fwd.to);
    assert_eq!(p.engine().stats().originated_of(Originated::Cancel), 1);
}

/// Timers live on one wheel in both modes, and the engine says exactly
/// when it next needs the clock: nothing for an idle stateless engine, T1
/// for a fresh INVITE transaction (timer A, §17.1.1.2), and nothing once
/// every transaction has ended.
#[test]
fn poll_timeout_names_the_next_deadline_exactly() {
    let mut sl = engine(0, false);
    let mut sink = Capture::default();
    let inv = invite("t1");
    sl.datagram(
        at(&sl, 0),
        dgram(inv.as_bytes(), CLIENT, Socket::Listen(0)),
        &mut sink,
    );
    assert_eq!(sl.engine().poll_timeout(), None, "stateless keeps no timer");

    let mut st = engine(0, true);
    st.datagram(
        at(&st, 0),
        dgram(inv.as_bytes(), CLIENT, Socket::Listen(0)),
        &mut sink,
    );
    let fwd = sink.take().pop().unwrap();
    // The health watch (100 ms) comes first, then timer A at T1.
    assert_eq!(st.engine().poll_timeout(), Some(at(&st, 100)));
    let ok = answer(&fwd.data, "200 OK");
    st.datagram(
        at(&st, 50),
        dgram(&ok, &fwd.to.to_string(), Socket::Egress),
        &mut sink,
    );
    // Answered: the rest is the lingering of the entry (64×T1, RFC 6026
    // timer L) and stale timers; run them all out.
    let mut now = 50;
    while let Some(t) = st.engine().poll_timeout() {
        assert!(t > at(&st, now), "a deadline in the past");
        now = (t - st.engine().epoch()).as_millis() as u64;
        st.timeout(t, &mut sink);
        assert!(now <= 33_000, "timers beyond 64×T1: {now} ms");
    }
    assert_eq!(st.engine().transaction_memory().0, 0);
}

/// The ACK of a non-2xx (§17.1.1.3) is a request sipfront originates,
/// counted as such; features originate theirs the same way.
#[test]
fn originated_requests_share_the_output_path() {
    let mut p = engine(0, true);
    let mut sink = Capture::default();
    let inv = invite("or1");
    p.datagram(
        at(&p, 0),
        dgram(inv.as_bytes(), CLIENT, Socket::Listen(0)),
        &mut sink,
    );
    let fwd = sink.take().pop().unwrap();
    let busy = answer(&fwd.data, "486 Busy Here");
    p.datagram(
        at(&p, 5),
        dgram(&busy, &fwd.to.to_string(), Socket::Egress),
        &mut sink,
    );
    let v = sink.take();
    let ack = v.iter().find(|s| first_line(s).starts_with("ACK")).unwrap();
    assert_eq!((ack.to, ack.socket), (fwd.to, Socket::Egress));
    assert!(v.iter().any(|s| first_line(s) == "SIP/2.0 486 Busy Here"));
    assert_eq!(p.engine().stats().originated_of(Originated::Ack), 1);
    // An OPTIONS of sipfront's own (a keepalive, later) goes out the same way.
    let opts = b"OPTIONS sip:192.0.2.50:5062 SIP/2.0\r\n\r\n";
    p.engine_mut()
        .originate(Originated::Options, Socket::Listen(0), addr(CLIENT), opts);
    let mut buf = Vec::new();
    assert_eq!(
        p.engine_mut().poll_transmit(&mut buf),
        Some(Transmit::Send {
            socket: Socket::Listen(0),
            to: addr(CLIENT)
        })
    );
    assert_eq!(buf, opts);
    assert_eq!(p.engine().stats().originated_of(Originated::Options), 1);
    assert_eq!(p.engine().stats().originated_of(Originated::Ack), 1);
}

/// A parked request resumes through the normal path; one nobody resumes
/// is answered at its deadline; the table is bounded and counted; an id is
/// good once.
#[test]
fn park_resume_timeout_and_bound() {
    let mut p = engine(0, false);
    let mut sink = Capture::default();
    let (a, b, c) = (invite("pk1"), invite("pk2"), invite("pk3"));
    fn d(s: &str) -> Datagram<'_> {
        dgram(s.as_bytes(), CLIENT, Socket::Listen(0))
    }
    let sc = StatusCode::new(504).unwrap();
    let ia = p
        .engine_mut()
        .park(d(&a), Duration::from_millis(200), sc)
        .unwrap();
    let _ib = p
        .engine_mut()
        .park(d(&b), Duration::from_millis(100), sc)
        .unwrap();
    assert!(p
        .engine_mut()
        .park(d(&c), Duration::from_millis(100), sc)
        .is_none());
    assert_eq!(p.engine().stats().park_refused, 1);
    assert_eq!(p.engine().parked(), 2);
    // Nothing leaves while parked.
    p.flush(&mut sink);
    assert!(sink.take().is_empty());
    assert_eq!(p.engine().poll_timeout(), Some(at(&p, 100)));
    // The first is resumed by its event: forwarded as if just arrived.
    let t50 = at(&p, 50);
    assert!(p.engine_mut().resume(t50, ia));
    assert!(!p.engine_mut().resume(t50, ia), "resumed once");
    let mut buf = Vec::new();
    let t = p.engine_mut().poll_transmit(&mut buf).unwrap();
    assert!(matches!(
        t,
        Transmit::Send {
            socket: Socket::Egress,
            ..
        }
    ));
    assert!(buf.starts_with(b"INVITE sip:bob@example.com"));
    // The second times out: answered 504 toward the client.
    p.timeout(at(&p, 100), &mut sink);
    let v = sink.take();
    assert_eq!(v.len(), 1);
    assert_eq!(first_line(&v[0]), "SIP/2.0 504 Server Time-out");
    assert_eq!(v[0].to, addr(CLIENT));
    let s = p.engine().stats();
    assert_eq!(
        (
            s.parked_total,
            s.park_resumed,
            s.park_timeouts,
            s.parked_current
        ),
        (2, 1, 1, 0)
    );
    // The first one's deadline passes: nothing happens, it is gone.
    p.timeout(at(&p, 200), &mut sink);
    assert!(sink.take().is_empty());
    assert_eq!(p.engine().poll_timeout(), None);
}

/// Demux before parse: a control socket's datagram never reaches the SIP
/// parser; a CRLF keepalive (RFC 5626 §3.5.1) is recognised and counted.
#[test]
fn demux_by_socket_role_and_keepalive_before_parse() {
    let mut p = engine(0, false);
    let mut sink = Capture::default();
    let ng = b"5:cookie d7:command4:pinge";
    p.datagram(at(&p, 0), dgram(ng, B1, Socket::Control(0)), &mut sink);
    p.datagram(
        at(&p, 0),
        dgram(b"\r\n\r\n", CLIENT, Socket::Listen(0)),
        &mut sink,
    );
    assert!(sink.take().is_empty());
    let s = p.engine().stats();
    assert_eq!(s.dropped(DropReason::NoControlClient), 1);
    assert_eq!(s.dropped(DropReason::KeepAlive), 1);
    assert_eq!(s.dropped(DropReason::Unparseable), 0);
}

/// Issue 14: a datagram aimed at the egress port whose top Via names
/// sipfront with a branch it did not write is not reflected to its next
/// Via, in either mode.
#[test]
fn forged_responses_are_not_reflected() {
    for stateful in [false, true] {
        let mut p = engine(0, stateful);
        let mut c = Capture::default();
        let inv = invite("forge1");
        let fwd = forwarded_invite(&mut p, &mut c, &inv);
        let real = String::from_utf8(answer(&fwd.data, "200 OK")).unwrap();
        // The real branch, its MAC altered; and a made-up one.
        let m = Message::parse(&fwd.data).unwrap();
        let branch = m.top_via().unwrap().branch.unwrap().to_vec();
        let branch = String::from_utf8(branch).unwrap();
        let mut altered = branch.clone().into_bytes();
        let at_mac = branch::PREFIX.len() + 20;
        altered[at_mac] = if altered[at_mac] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        let made_up = format!("z9hG4bKsf000{}", "0123456789abcdef01234567");
        for b in [altered, made_up] {
            let forged = real
                .replace(&branch, &b)
                .replace("192.0.2.50:5062", "198.51.100.99:9");
            p.datagram(
                at(&p, 10),
                dgram(forged.as_bytes(), B1, Socket::Egress),
                &mut c,
            );
            assert!(c.take().is_empty(), "a forged response was relayed");
        }
        assert_eq!(p.engine().stats().dropped(DropReason::ForgedBranch), 2);
        // The real one still goes through.
        p.datagram(
            at(&p, 20),
            dgram(real.as_bytes(), B1, Socket::Egress),
            &mut c,
        );
        assert!(c.take().iter().any(|s| s.to == addr(CLIENT)));
    }
}

/// Issue 14: the ACK of sipfront's own non-2xx reply ends at sipfront
/// (RFC 3261 §17.2.1), in both modes; it used to be forwarded to a backend.
#[test]
fn acks_for_sipfronts_own_replies_are_absorbed() {
    for stateful in [false, true] {
        let mut p = engine(0, stateful);
        let mut c = Capture::default();
        // Max-Forwards 0: answered 483 by sipfront itself.
        let inv = invite("own1").replace("Max-Forwards: 70", "Max-Forwards: 0");
        from_client(&mut p, 0, &inv, &mut c);
        let reply = c
            .take()
            .into_iter()
            .find(|s| first_line(s).starts_with("SIP/2.0 483"))
            .expect("483");
        let m = Message::parse(&reply.data).unwrap();
        let tag = String::from_utf8(m.to().unwrap().tag().unwrap().to_vec()).unwrap();
        let ack = inv
            .replace("INVITE sip:bob@example.com", "ACK sip:bob@example.com")
            .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
            .replace(
                "To: <sip:bob@example.com>",
                &format!("To: <sip:bob@example.com>;tag={tag}"),
            );
        from_client(&mut p, 5, &ack, &mut c);
        assert!(c.take().is_empty(), "the ACK of sipfront's 483 went on");
        assert_eq!(p.engine().stats().dropped(DropReason::OwnReplyAck), 1);
        // An ACK with someone else's tag is forwarded as before.
        let other = ack.replace(&tag, "b9");
        from_client(&mut p, 6, &other, &mut c);
        assert_eq!(p.engine().stats().dropped(DropReason::OwnReplyAck), 1);
    }
}

/// Issue 14: a legal request beyond the header limits is answered 513
/// (RFC 3261 §21.5.14), not dropped in silence.
#[test]
fn too_many_headers_or_too_long_a_line_get_513() {
    for stateful in [false, true] {
        let mut p = engine(0, stateful);
        let mut c = Capture::default();
        let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
        let long = format!("X-Long: {}\r\n", "a".repeat(9000));
        for (n, extra) in [many, long].into_iter().enumerate() {
            let inv = invite(&format!("big{n}")).replace(
                "Content-Length: 0\r\n",
                &format!("{extra}Content-Length: 0\r\n"),
            );
            from_client(&mut p, 0, &inv, &mut c);
            let sent = c.take();
            assert_eq!(sent.len(), 1, "{n}");
            assert_eq!(first_line(&sent[0]), "SIP/2.0 513 Message Too Large");
        }
    }
}

/// Issue 14: a request that fits a datagram but not once sipfront's Via
/// and Record-Route are in is answered 513, never sent, and never charged
/// to a backend (RFC 3261 §18.1.1).
#[test]
fn a_request_too_large_after_the_edits_gets_513() {
    for stateful in [false, true] {
        let mut p = engine(0, stateful);
        let mut c = Capture::default();
        let base = invite("huge");
        let pad = forward::UDP_MAX_PAYLOAD - base.len() - 20;
        let inv = base.replace(
            "Content-Length: 0\r\n",
            &format!("X-Pad: {}\r\nContent-Length: 0\r\n", "p".repeat(pad)),
        );
        assert!(inv.len() <= forward::UDP_MAX_PAYLOAD);
        from_client(&mut p, 0, &inv, &mut c);
        let sent = c.take();
        assert!(
            sent.iter().all(|s| s.to == addr(CLIENT)),
            "sent to a backend"
        );
        assert!(
            sent.iter()
                .any(|s| first_line(s) == "SIP/2.0 513 Message Too Large"),
            "{:?}",
            sent.iter().map(first_line).collect::<Vec<_>>()
        );
        assert_eq!(p.engine().stats().requests_forwarded, 0);
        // Nothing is left to time out against a backend.
        p.timeout(at(&p, 40_000), &mut c);
        assert!(c.take().iter().all(|s| s.to == addr(CLIENT)));
        assert_eq!(p.engine().stats().timeouts, 0);
    }
}

/// Issue 14: a Route header a client puts on its initial request does not
/// make sipfront send anywhere it likes: ignored and removed (the
/// default), refused 403, or followed when the operator says so; a
/// backend's Route and in-dialog Routes are followed as before.
#[test]
fn preloaded_routes_follow_the_policy() {
    let victim = "198.51.100.99:9";
    let inv = invite("pre1").replace(
        "Max-Forwards: 70\r\n",
        &format!("Route: <sip:{victim};lr>\r\nMax-Forwards: 70\r\n"),
    );
    for (policy, stateful) in [
        (PreloadedRoute::Ignore, false),
        (PreloadedRoute::Ignore, true),
        (PreloadedRoute::Reject, false),
        (PreloadedRoute::Reject, true),
        (PreloadedRoute::Honour, false),
    ] {
        let mut p = engine_with(0, stateful, |c| c.preloaded_route = policy);
        let mut c = Capture::default();
        from_client(&mut p, 0, &inv, &mut c);
        let sent = c.take();
        let to_victim = sent.iter().filter(|s| s.to == addr(victim)).count();
        match policy {
            PreloadedRoute::Ignore => {
                assert_eq!(to_victim, 0);
                let fwd = sent.iter().find(|s| s.data.starts_with(b"INVITE")).unwrap();
                assert!(
                    [addr(B1), addr(B2)].contains(&fwd.to),
                    "dispatched as usual"
                );
                let t = String::from_utf8_lossy(&fwd.data);
                assert!(!t.contains("\r\nRoute:"), "the client's Route removed: {t}");
            }
            PreloadedRoute::Reject => {
                assert_eq!(to_victim, 0);
                assert!(sent
                    .iter()
                    .any(|s| first_line(s) == "SIP/2.0 403 Forbidden"));
            }
            PreloadedRoute::Honour => assert_eq!(to_victim, 1),
        }
        let counted = p.engine().stats().preloaded_routes;
        assert_eq!(counted, u64::from(policy != PreloadedRoute::Honour));
    }
    // A backend's request with a Route is followed.
    let mut p = engine(0, false);
    let mut c = Capture::default();
    p.datagram(at(&p, 0), dgram(inv.as_bytes(), B1, Socket::Egress), &mut c);
    assert_eq!(c.take().iter().filter(|s| s.to == addr(victim)).count(), 1);
}

/// Found by the proxy fuzz target: a backend that sends a non-2xx final
/// after its 2xx on the same INVITE branch (RFC 3261 §17.1.1 forbids it)
/// gets no ACK (the request is released by then) and costs nothing else.
#[test]
fn a_non_2xx_after_a_2xx_on_one_branch_is_dropped() {
    let mut p = engine(0, true);
    let mut c = Capture::default();
    let fwd = forwarded_invite(&mut p, &mut c, &invite("late1"));
    p.datagram(
        at(&p, 10),
        dgram(&answer(&fwd.data, "200 OK"), B1, Socket::Egress),
        &mut c,
    );
    assert!(c
        .take()
        .iter()
        .any(|s| first_line(s).starts_with("SIP/2.0 200")));
    let bad = p.engine().stats().dropped(DropReason::BadResponse);
    p.datagram(
        at(&p, 20),
        dgram(&answer(&fwd.data, "483 Too Many Hops"), B1, Socket::Egress),
        &mut c,
    );
    assert!(c.take().is_empty(), "nothing relayed or ACKed");
    assert_eq!(p.engine().stats().dropped(DropReason::BadResponse), bad + 1);
    assert_eq!(p.engine().stats().internal_faults, 0);
}

/// The preloaded-route policy also covers RFC 3261 §16.4's strict-route
/// form (a Request-URI naming sipfront with `lr`, the target in the last
/// Route): a client cannot use it to get around `ignore`.
#[test]
fn the_strict_route_form_does_not_get_around_the_policy() {
    let victim = "198.51.100.99:9";
    let inv = invite("strict1")
        .replace("INVITE sip:bob@example.com", "INVITE sip:127.0.0.1:5060;lr")
        .replace(
            "Max-Forwards: 70\r\n",
            &format!("Route: <sip:{victim}>\r\nMax-Forwards: 70\r\n"),
        );
    let mut p = engine(0, false);
    let mut c = Capture::default();
    from_client(&mut p, 0, &inv, &mut c);
    let sent = c.take();
    assert!(
        sent.iter().all(|s| s.to != addr(victim)),
        "followed the client's strict route"
    );
}

/// Issue 14: `proxy.deny_sources` / `allow_sources` (Kamailio's
/// `permissions`): a refused source's requests are dropped and counted;
/// backends always pass; a v4-mapped source is judged as IPv4.
#[test]
fn the_source_acl_drops_refused_requests_and_never_a_backends() {
    let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
    let deny = SourceAcl {
        allow: vec![],
        deny: vec![net("192.0.2.0/24")],
    };
    let allow = SourceAcl {
        allow: vec![net("198.51.100.0/24")],
        deny: vec![],
    };
    for (acl, passes) in [(deny, false), (allow, false)] {
        let mut p = engine_with(0, false, |c| c.sources = acl.clone());
        let mut c = Capture::default();
        // The client at 192.0.2.50 is denied (or not allowed).
        from_client(&mut p, 0, &invite("acl1"), &mut c);
        assert_eq!(!c.take().is_empty(), passes);
        assert_eq!(p.engine().stats().dropped(DropReason::SourceDenied), 1);
        // Its v4-mapped form too.
        let mapped = "[::ffff:192.0.2.50]:5062";
        p.datagram(
            at(&p, 1),
            dgram(invite("acl2").as_bytes(), mapped, Socket::Listen(0)),
            &mut c,
        );
        assert!(c.take().is_empty());
        // A backend is never refused.
        p.datagram(
            at(&p, 2),
            dgram(invite("acl3").as_bytes(), B1, Socket::Egress),
            &mut c,
        );
        assert!(!c.take().is_empty());
        assert_eq!(p.engine().stats().dropped(DropReason::SourceDenied), 2);
    }
    // An allowed source passes.
    let acl = SourceAcl {
        allow: vec![net("192.0.2.0/24")],
        deny: vec![],
    };
    let mut p = engine_with(0, false, |c| c.sources = acl);
    let mut c = Capture::default();
    from_client(&mut p, 0, &invite("acl4"), &mut c);
    assert!(!c.take().is_empty());
}
