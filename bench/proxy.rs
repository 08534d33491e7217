//! The stateless proxy core per message, sans-I/O: what a worker spends on
//! an INVITE from a client and on the 200 OK coming back, on top of the
//! kernel's receive and send.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sipfront::dispatch::{Algorithm, AllActive, BackendId, BackendSet, Destination, Rules};
use sipfront::proxy::{identity::Identity, Inbound, Outcome, Proxy, ProxyConfig, Routing, Socket};
use std::net::SocketAddr;
use std::sync::Arc;

fn setup() -> (Proxy, Routing) {
    let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
    let set = BackendSet::new(
        "default",
        Algorithm::CallId,
        vec![
            Destination::new(BackendId(0), "sip:127.0.0.1:5070", a("127.0.0.1:5070")),
            Destination::new(BackendId(1), "sip:127.0.0.1:5080", a("127.0.0.1:5080")),
        ],
    )
    .unwrap();
    let routing = Routing::new(vec![set], Rules::new(vec![], 0));
    let id = Identity::new(&[a("127.0.0.1:5060")], &[a("127.0.0.1:5061")], None, &[]);
    (Proxy::new(ProxyConfig::default(), Arc::new(id), 0), routing)
}

fn bench(c: &mut Criterion) {
    let (mut p, r) = setup();
    let invite = include_bytes!("data/invite.sip");
    let client: SocketAddr = "192.0.2.101:5060".parse().unwrap();
    let mut out = Vec::with_capacity(4096);
    let pkt = Inbound {
        data: invite,
        src: client,
        socket: Socket::Listen(0),
    };
    let Outcome::Send { .. } = p.handle(&r, &AllActive, pkt, &mut out) else {
        panic!("not forwarded")
    };
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
    c.bench_function("proxy/invite_forward", |b| {
        b.iter(|| {
            let pkt = Inbound {
                data: black_box(invite),
                src: client,
                socket: Socket::Listen(0),
            };
            p.handle(&r, &AllActive, pkt, &mut out)
        })
    });
    c.bench_function("proxy/200_back", |b| {
        b.iter(|| {
            let pkt = Inbound {
                data: black_box(&ok),
                src: backend,
                socket: Socket::Egress,
            };
            p.handle(&r, &AllActive, pkt, &mut out)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
