//! Fuzzes the classic rtpproxy control protocol (reference Part 1): any
//! bytes, as a datagram (cookie first) and as a stream-mode command, go
//! through the parser and the whole control core (session table with a
//! no-op port binder), and any reply body through the client's reply
//! parser. Nothing may panic; every datagram gets exactly one reply that
//! starts with its cookie when it had one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipfront_rtpproxy::classic::{self, Reply};
use sipfront_rtpproxy::control::{Channel, Control};
use sipfront_rtpproxy::session::{Config, NoBind, SessionTable};

fuzz_target!(|data: &[u8]| {
    let _ = classic::parse_stream(data);
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
    // Several commands per input (split on '|') to reach U-then-Q/L/D paths.
    for (i, part) in data.split(|b| *b == b'|').take(16).enumerate() {
        let now = i as u64 * 7_000;
        let reply = c
            .classic(part, Channel::Datagram(src), now, &mut NoBind, &mut actions)
            .expect("a datagram always gets a reply");
        if let Ok(req) = classic::parse_datagram(part) {
            let cookie = req.cookie.expect("datagram mode has a cookie");
            assert!(reply.starts_with(cookie));
            // Client side: the body parses, and a command re-encodes.
            let _ = Reply::parse(&reply[cookie.len()..]);
            let again = req.command.to_bytes(Some(cookie));
            let _ = classic::parse_datagram(&again);
        }
        let _ = c.classic(part, Channel::Stream, now, &mut NoBind, &mut actions);
        c.tick(now, &mut actions);
    }
    assert!(c.table.len() <= 8);
});
