//! NAT traversal through the engine, in memory (issue 11): a phone behind
//! a NAT at 203.0.113.5:40312 whose messages claim 10.0.0.5:5060, a
//! registrar and a call server as backends, in both proxy modes. Each test
//! names the nathelper / RFC behaviour it checks.

use super::txn::TxnConfig;
use super::*;
use crate::dispatch::{Algorithm, AllActive, BackendId, BackendSet, Destination, Rules};
use crate::nat::{ContactFix, Keepalive, NatConfig, RegisterFix};
use crate::runtime::pump::{Capture, Pump, Sent};
use crate::sip::HeaderName;

/// The phone's NAT mapping, and what the phone believes.
const PUBLIC: &str = "203.0.113.5:40312";
const BACKEND: &str = "127.0.0.1:5070";
const LISTEN: &str = "198.51.100.10:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn nat_cfg(keepalive: Keepalive, register: RegisterFix, contact: Option<ContactFix>) -> NatConfig {
    NatConfig {
        enabled: true,
        keepalive,
        register,
        contact,
        keepalive_interval_ms: 1000,
        keepalive_failures: 2,
        ..NatConfig::default()
    }
}

/// The usual edge: OPTIONS keepalives, Path on REGISTER, Contact alias.
fn phone_edge(stateful: bool) -> Pump {
    engine(
        stateful,
        nat_cfg(
            Keepalive::Options,
            RegisterFix::Path,
            Some(ContactFix::Alias),
        ),
    )
}

fn engine(stateful: bool, nat: NatConfig) -> Pump {
    engine_of(stateful, nat, 0)
}

/// Worker `worker` of two.
fn engine_of(stateful: bool, nat: NatConfig, worker: u8) -> Pump {
    let egress = [addr("127.0.0.1:5061"), addr("127.0.0.1:5062")];
    let mut id = identity::Identity::new(&[addr(LISTEN)], &egress, None, &[]);
    // The workers of one process share the key.
    id.branch_key = branch::Key::new(1, 2);
    let set = BackendSet::new(
        "default",
        Algorithm::CallId,
        vec![Destination::new(
            BackendId(0),
            "sip:127.0.0.1:5070",
            addr(BACKEND),
        )],
    )
    .unwrap();
    let routing = Arc::new(ArcSwap::from_pointee(Routing::new(
        vec![set],
        Rules::new(vec![], 0),
    )));
    let cfg = ProxyConfig {
        transactions: stateful.then(TxnConfig::default),
        nat: Some(nat),
        ..ProxyConfig::default()
    };
    Pump::new(Engine::new(
        cfg,
        Arc::new(id),
        worker,
        routing,
        Arc::new(AllActive),
    ))
}

fn request(method: &str, ruri: &str, call_id: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} {ruri} SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-{call_id}-{method}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 {method}\r\n\
Contact: <sip:alice@10.0.0.5:5060>\r\n\
{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The answer `status` to `fwd` with its Vias, dialog headers and Contact.
fn answer(fwd: &[u8], status: &str, contact: Option<&str>) -> Vec<u8> {
    let m = Message::parse(fwd).unwrap();
    let mut r = format!("SIP/2.0 {status}\r\n").into_bytes();
    for v in m.values(HeaderName::Via) {
        r.extend_from_slice(format!("Via: {}\r\n", String::from_utf8_lossy(v)).as_bytes());
    }
    for (name, h) in [
        ("From", HeaderName::From),
        ("To", HeaderName::To),
        ("Call-ID", HeaderName::CallId),
        ("CSeq", HeaderName::CSeq),
    ] {
        let v = String::from_utf8_lossy(m.values(h).next().unwrap()).to_string();
        let v = if h == HeaderName::To && !v.contains("tag=") {
            format!("{v};tag=b9")
        } else {
            v
        };
        r.extend_from_slice(format!("{name}: {v}\r\n").as_bytes());
    }
    if let Some(c) = contact {
        r.extend_from_slice(format!("Contact: {c}\r\n").as_bytes());
    }
    r.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    r
}

fn from_phone(p: &mut Pump, ms: u64, data: &[u8], c: &mut Capture) {
    let now = at(p, ms);
    let d = Datagram {
        data,
        src: addr(PUBLIC),
        socket: Socket::Listen(0),
    };
    p.datagram(now, d, c);
}

fn from_backend(p: &mut Pump, ms: u64, data: &[u8], socket: Socket, c: &mut Capture) {
    let now = at(p, ms);
    let d = Datagram {
        data,
        src: addr(BACKEND),
        socket,
    };
    p.datagram(now, d, c);
}

fn text(s: &Sent) -> String {
    String::from_utf8_lossy(&s.data).to_string()
}

/// The one message sent to `to` (100 Trying aside).
fn sent_to(sent: &[Sent], to: &str) -> Sent {
    let all: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.to == addr(to) && !text(s).starts_with("SIP/2.0 100"))
        .collect();
    assert_eq!(
        all.len(),
        1,
        "expected one message to {to}, got {:#?}",
        sent
    );
    all[0].clone()
}

fn at(p: &Pump, ms: u64) -> Instant {
    p.engine().epoch() + Duration::from_millis(ms)
}

/// Registers the phone through sipfront: returns the REGISTER the
/// registrar got.
fn register(p: &mut Pump, c: &mut Capture, expires: u32) -> String {
    let reg = request(
        "REGISTER",
        "sip:example.com",
        "reg1",
        &format!("Expires: {expires}\r\n"),
    );
    from_phone(p, 0, &reg, c);
    let fwd = sent_to(&c.take(), BACKEND);
    // The registrar binds the contact as received and lists it.
    let contact = format!("<sip:alice@10.0.0.5:5060>;expires={expires}");
    let ok = answer(&fwd.data, "200 OK", Some(&contact));
    from_backend(p, 5, &ok, Socket::Egress, c);
    let back = sent_to(&c.take(), PUBLIC);
    assert_eq!(back.socket, Socket::Listen(0));
    assert!(text(&back).starts_with("SIP/2.0 200 OK"));
    text(&fwd)
}

#[test]
fn register_gets_path_with_the_flow_and_rport_rfc3327_rfc3581() {
    for stateful in [false, true] {
        let mut p = phone_edge(stateful);
        let mut c = Capture::default();
        let fwd = register(&mut p, &mut c, 3600);
        assert!(
            fwd.contains(
                "\r\nPath: <sip:198.51.100.10:5060;lr;sfw=0;alias=203.0.113.5~40312~1>\r\n"
            ),
            "{fwd}"
        );
        // force_rport: the phone's Via now says where its NAT maps it.
        assert!(fwd.contains("Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-reg1-REGISTER;received=203.0.113.5;rport=40312"), "{fwd}");
        // With Path, the Contact is left as the UA wrote it.
        assert!(
            fwd.contains("Contact: <sip:alice@10.0.0.5:5060>\r\n"),
            "{fwd}"
        );
        let s = p.engine().stats();
        assert_eq!(s.nat.paths_added, 1);
        assert_eq!(s.nat.nated_requests, 1);
        assert_eq!(s.nat.detected[crate::nat::Test::ContactPrivate as usize], 1);
        assert_eq!(s.nat.flows, 1);
    }
}

#[test]
fn keepalives_hold_a_registration_from_the_listen_socket_and_stop_when_unanswered() {
    for stateful in [false, true] {
        let mut p = phone_edge(stateful);
        let mut c = Capture::default();
        register(&mut p, &mut c, 3600);
        assert_eq!(p.engine().nat_flows(10).len(), 1);
        // One interval later: an OPTIONS to the public address, from the
        // listen socket (so the NAT's mapping matches).
        p.timeout(at(&p, 1100), &mut c);
        let ping = sent_to(&c.take(), PUBLIC);
        assert_eq!(ping.socket, Socket::Listen(0));
        assert!(
            text(&ping).starts_with("OPTIONS sip:203.0.113.5:40312 SIP/2.0\r\n"),
            "{}",
            text(&ping)
        );
        // The phone answers (through its NAT): the flow is alive.
        let ok = answer(&ping.data, "200 OK", None);
        from_phone(&mut p, 1150, &ok, &mut c);
        assert!(c.take().is_empty(), "a keepalive's answer is not relayed");
        assert_eq!(p.engine().stats().nat.keepalives_answered, 1);
        // Then it goes silent: after keepalive_failures unanswered pings,
        // the flow is dropped and nothing more is sent.
        for ms in [2200, 3300] {
            p.timeout(at(&p, ms), &mut c);
            assert_eq!(c.take().len(), 1);
        }
        p.timeout(at(&p, 4400), &mut c);
        assert!(c.take().is_empty());
        assert_eq!(p.engine().stats().nat.flows_dead, 1);
        assert_eq!(p.engine().stats().nat.flows, 0);
        p.timeout(at(&p, 9000), &mut c);
        assert!(c.take().is_empty());
    }
}

#[test]
fn a_challenged_register_is_not_kept_alive() {
    let mut p = engine(
        false,
        nat_cfg(Keepalive::Crlf, RegisterFix::Path, Some(ContactFix::Alias)),
    );
    let mut c = Capture::default();
    let reg = request("REGISTER", "sip:example.com", "reg2", "");
    from_phone(&mut p, 0, &reg, &mut c);
    let fwd = sent_to(&c.take(), BACKEND);
    from_backend(
        &mut p,
        5,
        &answer(&fwd.data, "401 Unauthorized", None),
        Socket::Egress,
        &mut c,
    );
    c.take();
    // Pending keepalives while the REGISTER could still succeed, then none.
    let mut pings = 0;
    for s in 1..=40 {
        p.timeout(at(&p, s * 1000 + 10), &mut c);
        pings += c.take().len();
    }
    assert!(pings > 0 && pings <= 32, "{pings}");
    assert_eq!(p.engine().stats().nat.flows, 0);
    assert_eq!(p.engine().stats().nat.flows_expired, 1);
}

#[test]
fn an_incoming_call_through_the_path_reaches_the_flow_from_the_listen_socket() {
    for stateful in [false, true] {
        let mut p = phone_edge(stateful);
        let mut c = Capture::default();
        register(&mut p, &mut c, 3600);
        // The registrar's INVITE: Route is the stored Path, the R-URI the
        // private contact.
        let inv = "INVITE sip:alice@10.0.0.5:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-in1\r\n\
Route: <sip:198.51.100.10:5060;lr;alias=203.0.113.5~40312~1>\r\n\
Max-Forwards: 69\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>\r\n\
Call-ID: in1\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";
        from_backend(&mut p, 10, inv.as_bytes(), Socket::Listen(0), &mut c);
        let out = sent_to(&c.take(), PUBLIC);
        assert_eq!(out.socket, Socket::Listen(0));
        let t = text(&out);
        assert!(
            t.starts_with("INVITE sip:alice@10.0.0.5:5060 SIP/2.0\r\n"),
            "{t}"
        );
        assert!(
            !t.contains("\r\nRoute:"),
            "sipfront's Route is consumed: {t}"
        );
        assert_eq!(p.engine().stats().nat.flows_resolved, 1);
    }
}

#[test]
fn a_call_from_the_phone_gets_an_alias_and_the_backends_bye_finds_the_flow() {
    for stateful in [false, true] {
        let mut p = phone_edge(stateful);
        let mut c = Capture::default();
        let inv = request("INVITE", "sip:bob@example.com", "out1", "");
        from_phone(&mut p, 0, &inv, &mut c);
        let fwd = sent_to(&c.take(), BACKEND);
        let t = text(&fwd);
        // set_contact_alias.
        assert!(
            t.contains("Contact: <sip:alice@10.0.0.5:5060;alias=203.0.113.5~40312~1>\r\n"),
            "{t}"
        );
        let ok = answer(&fwd.data, "200 OK", Some("<sip:bob@127.0.0.1:5070>"));
        from_backend(&mut p, 5, &ok, Socket::Egress, &mut c);
        assert!(text(&sent_to(&c.take(), PUBLIC)).starts_with("SIP/2.0 200 OK"));
        // The dialog keeps the flow open.
        assert_eq!(p.engine().nat_flows(10)[0].dialogs, 1);
        // The backend hangs up: its BYE targets the aliased Contact.
        let bye = "BYE sip:alice@10.0.0.5:5060;alias=203.0.113.5~40312~1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bye1\r\n\
Route: <sip:198.51.100.10:5060;lr>\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b9\r\nTo: <sip:alice@example.com>;tag=a1\r\n\
Call-ID: out1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
        from_backend(&mut p, 20, bye.as_bytes(), Socket::Listen(0), &mut c);
        let out = sent_to(&c.take(), PUBLIC);
        assert_eq!(out.socket, Socket::Listen(0));
        // handle_ruri_alias: the alias is gone from the Request-URI.
        assert!(
            text(&out).starts_with("BYE sip:alice@10.0.0.5:5060 SIP/2.0\r\n"),
            "{}",
            text(&out)
        );
        // The BYE ended the dialog: the flow is dropped at its next tick
        // (stateful mode may retransmit the BYE; no keepalive goes out).
        p.timeout(at(&p, 1100), &mut c);
        assert!(c.take().iter().all(|s| !text(s).starts_with("OPTIONS")));
        assert_eq!(p.engine().stats().nat.flows, 0);
    }
}

#[test]
fn rewrite_strategy_puts_the_public_address_in_the_contact_fix_nated_contact() {
    let mut p = engine(
        true,
        nat_cfg(
            Keepalive::Off,
            RegisterFix::Contact,
            Some(ContactFix::Rewrite),
        ),
    );
    let mut c = Capture::default();
    let reg = request("REGISTER", "sip:example.com", "reg3", "");
    from_phone(&mut p, 0, &reg, &mut c);
    let t = text(&sent_to(&c.take(), BACKEND));
    assert!(
        t.contains("Contact: <sip:alice@203.0.113.5:40312>\r\n"),
        "{t}"
    );
    assert!(!t.contains("Path:"));
    // Keepalives off: no flow is kept.
    assert_eq!(p.engine().nat_flows(10).len(), 0);
}

#[test]
fn received_strategy_for_registrars_without_path_add_rcv_param() {
    let mut p = engine(
        false,
        nat_cfg(
            Keepalive::Off,
            RegisterFix::Received,
            Some(ContactFix::Alias),
        ),
    );
    let mut c = Capture::default();
    from_phone(
        &mut p,
        0,
        &request("REGISTER", "sip:example.com", "reg4", ""),
        &mut c,
    );
    let t = text(&sent_to(&c.take(), BACKEND));
    assert!(
        t.contains("Contact: <sip:alice@10.0.0.5:5060;received=sip:203.0.113.5:40312>\r\n"),
        "{t}"
    );
    // The registrar's INVITE to that contact comes back to the flow.
    let inv = "INVITE sip:alice@10.0.0.5:5060;received=sip:203.0.113.5:40312 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-in4\r\nMax-Forwards: 69\r\n\
From: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>\r\nCall-ID: in4\r\n\
CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    from_backend(&mut p, 10, inv.as_bytes(), Socket::Egress, &mut c);
    let out = sent_to(&c.take(), PUBLIC);
    assert!(
        text(&out).starts_with("INVITE sip:alice@10.0.0.5:5060 SIP/2.0\r\n"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_nated_callees_answer_gets_its_contact_fixed() {
    for stateful in [false, true] {
        let mut p = phone_edge(stateful);
        let mut c = Capture::default();
        let inv = "INVITE sip:alice@10.0.0.5:5060;alias=203.0.113.5~40312~1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-in5\r\nMax-Forwards: 69\r\n\
From: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>\r\nCall-ID: in5\r\n\
CSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";
        from_backend(&mut p, 0, inv.as_bytes(), Socket::Egress, &mut c);
        let out = sent_to(&c.take(), PUBLIC);
        // The phone answers with its private Contact.
        let ok = answer(&out.data, "200 OK", Some("<sip:alice@10.0.0.5:5060>"));
        from_phone(&mut p, 10, &ok, &mut c);
        let back = sent_to(&c.take(), BACKEND);
        let t = text(&back);
        assert!(
            t.contains("Contact: <sip:alice@10.0.0.5:5060;alias=203.0.113.5~40312~1>\r\n"),
            "{t}"
        );
        assert_eq!(p.engine().stats().nat.nated_responses, 1);
        // The answered dialog keeps the flow open.
        assert_eq!(p.engine().nat_flows(10).len(), 1);
    }
}

#[test]
fn a_ua_not_behind_nat_is_left_alone() {
    let mut p = phone_edge(false);
    let mut c = Capture::default();
    let reg = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5:40312;branch=z9hG4bK-p\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:alice@example.com>\r\n\
Call-ID: pub\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@203.0.113.5:40312>\r\nContent-Length: 0\r\n\r\n";
    from_phone(&mut p, 0, reg.as_bytes(), &mut c);
    let t = text(&sent_to(&c.take(), BACKEND));
    assert!(!t.contains("Path:") && !t.contains("alias="), "{t}");
    assert_eq!(p.engine().stats().nat.nated_requests, 0);
    assert_eq!(p.engine().nat_flows(10).len(), 0);
}

#[test]
fn a_rebinding_nat_moves_the_registration_and_the_old_flow_gets_nothing() {
    let mut p = phone_edge(false);
    let mut c = Capture::default();
    register(&mut p, &mut c, 3600);
    // The NAT rebinds: the refresh comes from another public port.
    let reg = request("REGISTER", "sip:example.com", "reg1", "Expires: 3600\r\n");
    let d = Datagram {
        data: &reg,
        src: addr("203.0.113.5:40999"),
        socket: Socket::Listen(0),
    };
    p.datagram(at(&p, 100), d, &mut c);
    let fwd = sent_to(&c.take(), BACKEND);
    assert!(text(&fwd).contains("alias=203.0.113.5~40999~1"));
    let ok = answer(
        &fwd.data,
        "200 OK",
        Some("<sip:alice@10.0.0.5:5060>;expires=3600"),
    );
    from_backend(&mut p, 105, &ok, Socket::Egress, &mut c);
    c.take();
    assert_eq!(p.engine().stats().nat.contacts_moved, 1);
    let flows = p.engine().nat_flows(10);
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].flow.addr, addr("203.0.113.5:40999"));
    // Keepalives go to the new port only.
    p.timeout(at(&p, 1200), &mut c);
    let sent = c.take();
    assert!(
        sent.iter().all(|s| s.to == addr("203.0.113.5:40999")),
        "{sent:#?}"
    );
    // A request still aimed at the old mapping goes to the new one.
    let inv = "INVITE sip:alice@10.0.0.5:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-in6\r\n\
Route: <sip:198.51.100.10:5060;lr;alias=203.0.113.5~40312~1>\r\nMax-Forwards: 69\r\n\
From: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>\r\nCall-ID: in6\r\n\
CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    from_backend(&mut p, 1300, inv.as_bytes(), Socket::Listen(0), &mut c);
    let sent = c.take();
    assert!(sent.iter().any(|s| s.to == addr("203.0.113.5:40999")));
    assert!(sent.iter().all(|s| s.to != addr(PUBLIC)));
    assert_eq!(p.engine().stats().nat.flows_rebound, 1);
}

#[test]
fn a_backends_own_requests_are_never_judged_behind_nat() {
    let mut p = phone_edge(false);
    let mut c = Capture::default();
    // A backend whose Via names a private address and another port, with
    // a private Contact, calling a public UA.
    let inv = "INVITE sip:bob@192.0.2.99:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.9.9.9:5999;branch=z9hG4bK-b1\r\nMax-Forwards: 70\r\n\
From: <sip:pbx@example.com>;tag=p1\r\nTo: <sip:bob@example.com>\r\nCall-ID: b1\r\n\
CSeq: 1 INVITE\r\nContact: <sip:pbx@10.9.9.9:5999>\r\nContent-Length: 0\r\n\r\n";
    from_backend(&mut p, 0, inv.as_bytes(), Socket::Listen(0), &mut c);
    let t = text(&sent_to(&c.take(), "192.0.2.99:5060"));
    assert!(!t.contains("alias="), "{t}");
    assert_eq!(p.engine().stats().nat.nated_requests, 0);
}

#[test]
fn a_public_via_with_a_nated_port_is_still_learned_rfc3581() {
    // The UA knows its public address but not the port its NAT picked.
    let mut p = phone_edge(false);
    let mut c = Capture::default();
    let reg = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK-r7\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:alice@example.com>\r\n\
Call-ID: r7\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@203.0.113.5:5060>\r\nContent-Length: 0\r\n\r\n";
    from_phone(&mut p, 0, reg.as_bytes(), &mut c);
    let fwd = sent_to(&c.take(), BACKEND);
    assert!(
        text(&fwd).contains("Path: <sip:198.51.100.10:5060;lr;sfw=0;alias=203.0.113.5~40312~1>")
    );
    let ok = answer(
        &fwd.data,
        "200 OK",
        Some("<sip:alice@203.0.113.5:5060>;expires=600"),
    );
    from_backend(&mut p, 5, &ok, Socket::Egress, &mut c);
    assert_eq!(sent_to(&c.take(), PUBLIC).socket, Socket::Listen(0));
    let flows = p.engine().nat_flows(10);
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].flow.addr, addr(PUBLIC));
    assert!(flows[0].expires_in_s > 500, "{flows:?}");
}

#[test]
fn a_dialogs_requests_go_to_the_worker_that_holds_its_flow() {
    for stateful in [false, true] {
        let cfg = nat_cfg(
            Keepalive::Options,
            RegisterFix::Path,
            Some(ContactFix::Alias),
        );
        let mut w0 = engine_of(stateful, cfg.clone(), 0);
        let mut w1 = engine_of(stateful, cfg, 1);
        let mut c = Capture::default();
        // The phone's INVITE lands on worker 0, which records the route
        // with its own number.
        let inv = request("INVITE", "sip:bob@example.com", "w1", "");
        from_phone(&mut w0, 0, &inv, &mut c);
        let t = text(&sent_to(&c.take(), BACKEND));
        assert!(
            t.contains("Record-Route: <sip:198.51.100.10:5060;lr;sfw=0>"),
            "{t}"
        );
        // The backend's BYE reaches worker 1 (the kernel picks by its
        // address): handed over to worker 0, unchanged.
        let bye = "BYE sip:alice@10.0.0.5:5060;alias=203.0.113.5~40312~1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-byew\r\nRoute: <sip:198.51.100.10:5060;lr;sfw=0>\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b9\r\nTo: <sip:alice@example.com>;tag=a1\r\n\
Call-ID: w1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
        from_backend(&mut w1, 10, bye.as_bytes(), Socket::Listen(0), &mut c);
        let sent = c.take();
        assert!(sent.is_empty(), "{sent:#?}");
        let (to, h) = c.handed_over.pop().expect("handed over");
        assert_eq!(to, 0);
        assert_eq!(w1.engine().stats().handovers_out, 1);
        // Worker 0 forwards it to the flow.
        w0.handover(at(&w0, 11), &h, &mut c);
        let out = sent_to(&c.take(), PUBLIC);
        assert!(text(&out).starts_with("BYE sip:alice@10.0.0.5:5060 SIP/2.0"));
        // A Route naming this worker, or no worker, is not handed over.
        from_backend(&mut w0, 12, bye.as_bytes(), Socket::Listen(0), &mut c);
        assert!(c.handed_over.is_empty());
    }
}
