//! Fuzz the proxy core in both modes: the input is a sequence of datagrams
//! (split on `\0\0`), each arriving from the client or from a backend
//! (by its first byte), with the clock moving on between them so the
//! transaction timers fire. Nothing may panic, the table stays within its
//! bound, and every datagram sipfront sends is SIP it can parse again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipfront::dispatch::{Algorithm, AllActive, BackendId, BackendSet, Destination, Rules};
use sipfront::proxy::identity::Identity;
use sipfront::proxy::txn::TxnConfig;
use sipfront::proxy::{Inbound, Outcome, Proxy, ProxyConfig, Routing, Socket};
use sipfront::sip::Message;
use std::net::SocketAddr;
use std::sync::Arc;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn check(out: &[u8]) {
    if !out.is_empty() {
        assert!(Message::parse(out).is_ok(), "sent unparseable bytes");
    }
}

fuzz_target!(|data: &[u8]| {
    let backends = ["127.0.0.1:5070", "127.0.0.1:5080", "127.0.0.1:5090"];
    let dests = backends
        .iter()
        .enumerate()
        .map(|(i, b)| Destination::new(BackendId(i as u32), format!("sip:{b}"), addr(b)))
        .collect();
    let set = BackendSet::new("default", Algorithm::CallId, dests).unwrap();
    let routing = Routing::new(vec![set], Rules::new(vec![], 0));
    let id = Arc::new(Identity::new(
        &[addr("127.0.0.1:5060")],
        &[addr("127.0.0.1:5061")],
        None,
        &[],
    ));
    for stateful in [false, true] {
        let cfg = ProxyConfig {
            transactions: stateful.then(|| TxnConfig {
                max_transactions: 16,
                ..TxnConfig::default()
            }),
            ..ProxyConfig::default()
        };
        let mut p = Proxy::new(cfg, Arc::clone(&id), 0);
        let mut now_us = 0u64;
        let mut out = Vec::new();
        for (i, dgram) in split(data).enumerate() {
            let Some((&sel, body)) = dgram.split_first() else {
                continue;
            };
            let (src, socket) = match sel % 4 {
                0 => (addr("192.0.2.50:5062"), Socket::Listen(0)),
                k => (addr(backends[usize::from(k - 1)]), Socket::Egress),
            };
            now_us += u64::from(sel) * 25_000 + 1;
            p.tick_us(now_us, &AllActive);
            let o = p.handle(&routing, &AllActive, Inbound { data: body, src, socket }, &mut out);
            if let Outcome::Send { .. } = o {
                check(&out);
            }
            p.drain_queue(|_, _, d| check(d));
            assert!(p.transaction_memory().0 <= 16);
            assert!(p.stats.transactions_pending <= p.stats.transactions_current);
            if i > 64 {
                break;
            }
        }
        // Let every timer run out: the table empties.
        for _ in 0..200 {
            now_us += 1_000_000;
            p.tick_us(now_us, &AllActive);
            p.drain_queue(|_, _, d| check(d));
        }
        assert_eq!(p.transaction_memory().0, 0, "transactions left after 200 s");
        assert_eq!(p.stats.transactions_pending, 0);
    }
});

fn split(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.windows(2).position(|w| w == b"\0\0") {
            Some(i) => {
                let (a, b) = rest.split_at(i);
                rest = &b[2..];
                Some(a)
            }
            None => Some(std::mem::take(&mut rest)),
        }
    })
}
