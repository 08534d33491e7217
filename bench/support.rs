//! What the proxy benches share: the engine of worker 0 in front of two
//! backends, in the pump every driver uses, and a backend's answer to a
//! forwarded request. Included by `bench/proxy.rs` and `bench/callgrind.rs`.

use arc_swap::ArcSwap;
use sipfront::dispatch::{Algorithm, AllActive, BackendId, BackendSet, Destination, Rules};
use sipfront::proxy::{identity::Identity, Engine, ProxyConfig, Routing};
use sipfront::runtime::pump::Pump;
use sipfront::sip::{HeaderName, Message};
use std::net::SocketAddr;
use std::sync::Arc;

/// The engine of worker 0 (listen 127.0.0.1:5060) hashing Call-IDs over
/// backends 127.0.0.1:5070 and :5080.
pub fn pump(cfg: ProxyConfig) -> Pump {
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
    let routing = Arc::new(ArcSwap::from_pointee(Routing::new(
        vec![set],
        Rules::new(vec![], 0),
    )));
    let id = Identity::new(&[a("127.0.0.1:5060")], &[a("127.0.0.1:5061")], None, &[]);
    Pump::new(Engine::new(
        cfg,
        Arc::new(id),
        0,
        routing,
        Arc::new(AllActive),
    ))
}

/// A backend's answer `status` to the forwarded request `fwd`.
pub fn answer(fwd: &[u8], status: &str) -> Vec<u8> {
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
    r.extend_from_slice(b"To: <sip:bob@biloxi.example.com>;tag=8321234356\r\nContact: <sip:bob@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n");
    r
}
