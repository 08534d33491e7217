//! Fuzzes the ng protocol (reference Part 2): the bencode decoder (depth,
//! size and count limits), request decoding, the control core's
//! offer/answer/delete/query/list handling including the SDP rewrite, and
//! the client's reply decoder. Nothing may panic; a decoded value re-encodes
//! to the same bytes (bencode is canonical for what the decoder accepts).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipfront_rtpproxy::bencode::{self, Encoder};
use sipfront_rtpproxy::control::Control;
use sipfront_rtpproxy::ng;
use sipfront_rtpproxy::session::{Config, NoBind, SessionTable};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = bencode::decode(data) {
        let mut e = Encoder::new();
        e.value(&v);
        assert_eq!(e.buf, data);
    }
    let _ = ng::decode_request(data);
    let _ = ng::Reply::decode(data);
    let cfg = Config {
        workers: 2,
        port_low: 40000,
        port_high: 40063,
        max_sessions: 8,
        ..Config::default()
    };
    let mut c = Control::new(SessionTable::new(cfg), Vec::new(), 0);
    let src = "127.0.0.1:5060".parse().unwrap();
    let mut actions = Vec::new();
    // The whole input as one datagram, then (to chain offer → answer →
    // query → delete) the pieces between 0xff bytes, each with its own cookie.
    let _ = c.ng(data, src, 0, &mut NoBind, &mut actions);
    for (i, part) in data.split(|b| *b == 0xff).take(8).enumerate() {
        let mut msg = format!("f_{i} ").into_bytes();
        msg.extend_from_slice(part);
        if let Some(reply) = c.ng(&msg, src, i as u64 * 5_000, &mut NoBind, &mut actions) {
            let (cookie, doc) = ng::split(&reply).expect("replies carry the cookie");
            assert_eq!(cookie, format!("f_{i}").as_bytes());
            assert!(ng::Reply::decode(doc).is_ok(), "our replies decode");
        }
    }
    assert!(c.table.len() <= 8);
});
