//! Fuzzes the NAT flow decoders (src/nat/flow.rs): the `alias` and
//! `received` URI parameter values sipfront reads back from Request-URIs
//! and Routes a backend sends. Any input must decode or be refused without
//! panicking, and a decoded flow must survive its own encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipfront::nat::fix::uri_flow;
use sipfront::nat::Flow;
use sipfront::sip::Uri;

fuzz_target!(|data: &[u8]| {
    if let Some(f) = Flow::parse_alias(data) {
        let mut v = Vec::new();
        f.write_alias(&mut v);
        assert_eq!(Flow::parse_alias(&v), Some(f), "alias does not round-trip");
        assert_ne!(f.addr.port(), 0);
    }
    if let Some(f) = Flow::parse_received(data) {
        let mut v = Vec::new();
        f.write_received(&mut v);
        let back = Flow::parse_received(&v).expect("a written received decodes");
        assert_eq!((back.addr, back.transport), (f.addr, f.transport));
    }
    // The same values inside a URI, as a Request-URI or Route carries them.
    if let Ok(u) = Uri::parse(data) {
        if let Some((f, p)) = uri_flow(&u) {
            assert!(p.value.is_some());
            assert_ne!(f.addr.port(), 0);
        }
    }
});
