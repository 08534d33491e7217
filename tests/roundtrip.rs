//! Property tests over whole messages: a parsed message written back with no
//! edits is byte identical; every generated header is indexed with the right
//! name and value; proxy edits always produce a message that parses again;
//! arbitrary bytes never panic the parser or the views.

use proptest::prelude::*;
use sipfront::sip::{writer, Edits, HeaderName, Message};

/// Header names: long forms, compact forms, odd case, and extension names.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Via".to_string()),
        Just("v".to_string()),
        Just("MaX-fOrWaRdS".to_string()),
        Just("Call-ID".to_string()),
        Just("i".to_string()),
        Just("Contact".to_string()),
        Just("m".to_string()),
        Just("Route".to_string()),
        Just("Subject".to_string()),
        "X-[A-Za-z0-9-]{1,12}",
    ]
}

/// A header value: printable text without CR/LF, possibly folded onto a
/// continuation line at a space (RFC 3261 §7.3.1).
fn header_value() -> impl Strategy<Value = (String, bool)> {
    ("[ -~]{0,40}[!-~]", any::<bool>())
}

#[derive(Debug, Clone)]
struct Generated {
    bytes: Vec<u8>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn message() -> impl Strategy<Value = Generated> {
    (
        prop_oneof![
            "(INVITE|ACK|OPTIONS|BYE|REGISTER|NEWMETHOD) sip:[a-z]{1,8}@[a-z]{1,8}\\.example\\.com SIP/2\\.0",
            "SIP/2\\.0 [1-6][0-9][0-9] [A-Za-z ]{0,12}",
        ],
        prop::collection::vec((header_name(), header_value()), 0..40),
        prop::collection::vec(any::<u8>(), 0..300),
        0usize..3,
        any::<bool>(),
    )
        .prop_map(|(start, hs, body, crlfs, compact_cl)| {
            let mut bytes = Vec::new();
            for _ in 0..crlfs {
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(start.as_bytes());
            bytes.extend_from_slice(b"\r\n");
            let mut headers = Vec::new();
            for (name, (value, fold)) in hs {
                let value = value.trim_start().to_string();
                // Fold at the first inner space when asked.
                let written = match (fold, value.find(' ')) {
                    (true, Some(i)) if i > 0 => format!("{}\r\n {}", &value[..i], &value[i + 1..]),
                    _ => value.clone(),
                };
                bytes.extend_from_slice(format!("{name}: {written}\r\n").as_bytes());
                headers.push((name, written.trim().to_string()));
            }
            let cl_name = if compact_cl { "l" } else { "Content-Length" };
            bytes.extend_from_slice(format!("{cl_name}: {}\r\n\r\n", body.len()).as_bytes());
            headers.push((cl_name.to_string(), body.len().to_string()));
            bytes.extend_from_slice(&body);
            Generated {
                bytes,
                headers,
                body,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Parse, then write with no edits: byte identical (issue: round trip).
    #[test]
    fn parse_then_write_is_identity(g in message()) {
        let m = Message::parse(&g.bytes).expect("generated message parses");
        let mut e = Edits::new();
        let mut out = Vec::new();
        writer::write(&m, &mut e, &mut out).unwrap();
        prop_assert_eq!(&out, &g.bytes);
        prop_assert_eq!(m.body(), &g.body[..]);
        prop_assert_eq!(m.headers().len(), g.headers.len());
        for (h, (name, value)) in m.headers().iter().zip(&g.headers) {
            prop_assert_eq!(m.slice(h.name_span()), name.as_bytes());
            prop_assert_eq!(m.slice(h.value()), value.as_bytes());
            prop_assert_eq!(h.name, HeaderName::from_bytes(name.as_bytes()));
        }
    }

    /// Proxy edits on a valid request always give a message that parses, with
    /// the new Via on top and Max-Forwards decremented.
    #[test]
    fn proxy_edits_reparse(
        branch in "[a-zA-Z0-9]{1,20}",
        mf in 1u32..100,
        extra in prop::collection::vec(("X-[A-Za-z]{1,8}", "[!-~][ -~]{0,20}[!-~]"), 0..10),
    ) {
        let mut msg = format!(
            "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;rport;branch=z9hG4bK{branch}\r\nMax-Forwards: {mf}\r\nTo: <sip:b@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: {branch}@x\r\nCSeq: 1 INVITE\r\n"
        );
        for (n, v) in &extra {
            msg.push_str(&format!("{n}: {v}\r\n"));
        }
        msg.push_str("Content-Length: 0\r\n\r\n");
        let m = Message::parse(msg.as_bytes()).unwrap();
        sipfront::sip::validate_request(&m).unwrap();
        let mut e = Edits::new();
        writer::set_via_received(&m, &mut e, "192.0.2.9".parse().unwrap(), 4000).unwrap();
        writer::add_via(&m, &mut e, b"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKlb");
        writer::decrement_max_forwards(&m, &mut e).unwrap();
        writer::add_record_route(&m, &mut e, b"sip:192.0.2.1;lr");
        let mut out = Vec::new();
        writer::write(&m, &mut e, &mut out).unwrap();
        let m2 = Message::parse(&out).unwrap();
        sipfront::sip::validate_request(&m2).unwrap();
        prop_assert_eq!(m2.top_via().unwrap().branch, Some(&b"z9hG4bKlb"[..]));
        prop_assert_eq!(m2.max_forwards().unwrap(), Some(mf - 1));
        let second = m2.vias().nth(1).unwrap().unwrap();
        prop_assert_eq!(second.rport, Some(Some(4000)));
        prop_assert_eq!(second.received, Some(&b"192.0.2.9"[..]));
        prop_assert!(m2.record_routes().next().unwrap().unwrap().lr());
    }

    /// Arbitrary bytes never panic the parser or any view.
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(m) = Message::parse(&data) {
            let _ = (m.top_via(), m.from(), m.to(), m.cseq(), m.call_id(), m.max_forwards());
            let _ = m.contacts().count() + m.routes().count() + m.vias().count();
            let _ = sipfront::sip::validate_request(&m);
        }
    }

    /// Mutated real messages never panic either (closer to a fuzzer's reach).
    #[test]
    fn mutated_invite_never_panics(pos in 0usize..905, byte in any::<u8>(), cut in 0usize..905) {
        let mut data = include_bytes!("../bench/data/invite.sip").to_vec();
        if pos < data.len() { data[pos] = byte; }
        data.truncate(cut.max(1));
        if let Ok(m) = Message::parse(&data) {
            let _ = sipfront::sip::validate_request(&m);
            let _ = m.contacts().count();
        }
    }
}
