//! The proxy core sans-I/O: what a worker spends on top of the kernel's
//! receive and send: an INVITE from a client and the 200 OK coming back
//! (stateless), and a whole call as SIPp places it (INVITE, 180 and 200
//! from the backend, ACK, BYE and its 200) in each mode, with the clock
//! moved on every 1000 calls so lingering transactions expire as they
//! would.

#[path = "support.rs"]
mod support;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sipfront::proxy::txn::TxnConfig;
use sipfront::proxy::{Datagram, ProxyConfig, Socket};
use sipfront::runtime::pump::{Capture, Pump};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::answer;

fn setup() -> Pump {
    setup_with(ProxyConfig::default())
}

fn setup_with(cfg: ProxyConfig) -> Pump {
    support::pump(cfg)
}

/// One call's messages through the core, stateful or not; returns the
/// time spent in the pump (the engine and its drain) only.
fn calls(iters: u64, stateful: bool) -> Duration {
    let cfg = ProxyConfig {
        transactions: stateful.then(|| TxnConfig {
            max_transactions: 1 << 20,
            ..TxnConfig::default()
        }),
        ..ProxyConfig::default()
    };
    let mut p = setup_with(cfg);
    let epoch = p.engine().epoch();
    let mut sink = Capture::default();
    let invite = String::from_utf8(include_bytes!("data/invite.sip").to_vec()).unwrap();
    let client: SocketAddr = "192.0.2.101:5060".parse().unwrap();
    let backend: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut total = Duration::ZERO;
    let clock = std::cell::Cell::new(0u64);
    let mut run = |p: &mut Pump, data: &[u8], from_client: bool, sent: &mut Vec<Vec<u8>>| {
        let d = Datagram {
            data,
            src: if from_client { client } else { backend },
            socket: if from_client {
                Socket::Listen(0)
            } else {
                Socket::Egress
            },
        };
        let now = epoch + Duration::from_micros(clock.get());
        let t0 = Instant::now();
        p.datagram(now, d, &mut sink);
        let e = t0.elapsed();
        sent.extend(sink.take().into_iter().map(|s| s.data));
        e
    };
    for i in 0..iters {
        let cid = format!("call{i}@192.0.2.101");
        let inv = invite
            .replace("3848276298220188511@192.0.2.101", &cid)
            .replace("z9hG4bK74bf9.1a2b3c4d5e", &format!("z9hG4bK-inv{i}"));
        sent.clear();
        total += run(&mut p, inv.as_bytes(), true, &mut sent);
        let fwd = sent
            .iter()
            .find(|d| d.starts_with(b"INVITE"))
            .unwrap()
            .clone();
        total += run(&mut p, &answer(&fwd, "180 Ringing"), false, &mut sent);
        total += run(&mut p, &answer(&fwd, "200 OK"), false, &mut sent);
        let ack = format!(
            "ACK sip:bob@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK-ack{i};rport\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\nTo: <sip:bob@biloxi.example.com>;tag=8321234356\r\nCall-ID: {cid}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        total += run(&mut p, ack.as_bytes(), true, &mut sent);
        let bye = ack
            .replace("ACK sip", "BYE sip")
            .replace("CSeq: 1 ACK", "CSeq: 2 BYE")
            .replace(&format!("-ack{i}"), &format!("-bye{i}"));
        sent.clear();
        total += run(&mut p, bye.as_bytes(), true, &mut sent);
        let fbye = sent.iter().find(|d| d.starts_with(b"BYE")).unwrap().clone();
        total += run(&mut p, &answer(&fbye, "200 OK"), false, &mut sent);
        if i % 1000 == 999 {
            clock.set(clock.get() + 40_000_000);
            let mut timers = Capture::default();
            let t0 = Instant::now();
            p.timeout(epoch + Duration::from_micros(clock.get()), &mut timers);
            total += t0.elapsed();
        }
    }
    total
}

fn bench(c: &mut Criterion) {
    let mut p = setup();
    let invite = include_bytes!("data/invite.sip");
    let client: SocketAddr = "192.0.2.101:5060".parse().unwrap();
    let mut sink = Capture::default();
    let d = Datagram {
        data: invite,
        src: client,
        socket: Socket::Listen(0),
    };
    p.datagram(Instant::now(), d, &mut sink);
    let out = sink.take().pop().expect("forwarded").data;
    // The backend's 200 OK to the forwarded INVITE.
    let fwd = sipfront::sip::Message::parse(&out).unwrap();
    let mut ok = b"SIP/2.0 200 OK\r\n".to_vec();
    for v in fwd.values(sipfront::sip::HeaderName::Via) {
        ok.extend_from_slice(b"Via: ");
        ok.extend_from_slice(v);
        ok.extend_from_slice(b"\r\n");
    }
    ok.extend_from_slice(b"From: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\nTo: <sip:bob@biloxi.example.com>;tag=8321234356\r\nCall-ID: 3848276298220188511@192.0.2.101\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n");
    let backend: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    // Each iteration forwards and hands the datagram to a sink that keeps
    // nothing, as a driver's batch would.
    let now = Instant::now();
    c.bench_function("proxy/invite_forward", |b| {
        b.iter(|| {
            let d = Datagram {
                data: black_box(invite),
                src: client,
                socket: Socket::Listen(0),
            };
            p.datagram(now, d, &mut sink);
            sink.clear();
        })
    });
    c.bench_function("proxy/200_back", |b| {
        b.iter(|| {
            let d = Datagram {
                data: black_box(&ok),
                src: backend,
                socket: Socket::Egress,
            };
            p.datagram(now, d, &mut sink);
            sink.clear();
        })
    });
}

fn bench_calls(c: &mut Criterion) {
    c.bench_function("proxy/stateless_call", |b| {
        b.iter_custom(|n| calls(n, false))
    });
    c.bench_function("proxy/stateful_call", |b| b.iter_custom(|n| calls(n, true)));
}

criterion_group!(benches, bench, bench_calls);
criterion_main!(benches);
