//! Fuzz the message parser, every typed view, validation, the proxy edits
//! and the stateless reply builder: none may panic, and a message that
//! parses must survive an edit round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipfront::sip::{self, writer, Edits, HeaderName, Message, StatusCode};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(data) else {
        return;
    };
    // No edits: byte identical.
    let mut e = Edits::new();
    let mut out = Vec::new();
    writer::write(&m, &mut e, &mut out).expect("no edits cannot fail");
    assert_eq!(out, m.as_bytes());

    // Every view.
    let _ = m.call_id();
    let _ = m.cseq();
    let _ = m.max_forwards();
    let _ = m.expires();
    let _ = m.from().map(|f| (f.tag(), f.uri.lr()));
    let _ = m.to();
    for v in m.vias() {
        let _ = v.map(|v| (v.has_cookie(), v.port_or_default()));
    }
    for c in m.contacts() {
        let _ = c.map(|c| c.addr().map(|a| (a.q(), a.expires())));
    }
    for r in m.routes().chain(m.record_routes()) {
        let _ = r.map(|r| r.lr());
    }
    for h in HeaderName::ALL {
        let _ = m.values(h).count();
    }
    let _ = sip::sdp::Sdp::parse(m.body());

    let valid = if m.is_request() {
        sip::validate_request(&m).is_ok()
    } else {
        sip::validate_response(&m).is_ok()
    };
    if !valid {
        return;
    }
    if m.is_request() {
        // A proxy's forwarding edits must produce a message that parses.
        let mut e = Edits::new();
        let src = std::net::IpAddr::from([192, 0, 2, 1]);
        writer::set_via_received(&m, &mut e, src, 5060).expect("validated");
        writer::add_via(&m, &mut e, b"SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKfz");
        let _ = writer::decrement_max_forwards(&m, &mut e);
        writer::remove_top_route(&m, &mut e);
        writer::add_record_route(&m, &mut e, b"sip:192.0.2.10;lr");
        out.clear();
        writer::write(&m, &mut e, &mut out).expect("non-overlapping edits");
        let again = Message::parse(&out).expect("edited message parses");
        assert!(again.top_via().is_ok());
        let mut reply = Vec::new();
        let opts = writer::ReplyOptions {
            to_tag: Some(b"fz"),
            source: Some((src, 5060)),
            ..Default::default()
        };
        writer::build_reply(&m, StatusCode::BAD_REQUEST, &opts, &mut reply).expect("validated");
        Message::parse(&reply).expect("reply parses");
    } else {
        let mut e = Edits::new();
        writer::remove_top_via(&m, &mut e);
        out.clear();
        writer::write(&m, &mut e, &mut out).expect("one edit");
    }
});
