//! Fuzz the engine in both modes, through the pump every driver uses: the
//! input is a sequence of datagrams (split on `\0\0`), each arriving from
//! the client, from a backend or on a control socket (by its first byte),
//! with the clock moving on between them so the timers fire; some are
//! parked and resumed, some hand-overs fail; NAT traversal is on for
//! odd-length inputs. A backend's response gets the Vias of the last
//! request sipfront sent, so its branch verifies. Nothing may panic, the tables
//! stay within their bounds, every datagram sipfront sends is SIP it can
//! parse again, and no internal fault is counted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipfront::dispatch::{Algorithm, AllActive, BackendId, BackendSet, Destination, Rules};
use sipfront::proxy::identity::Identity;
use sipfront::proxy::txn::TxnConfig;
use sipfront::proxy::{Datagram, Engine, ProxyConfig, Routing, Socket};
use sipfront::runtime::pump::{Capture, Pump};
use sipfront::sip::{Message, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
    let routing = Arc::new(arc_swap::ArcSwap::from_pointee(Routing::new(
        vec![set],
        Rules::new(vec![], 0),
    )));
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
            max_parked: 8,
            // NAT traversal on for odd-length inputs: detection, Contact
            // and Path edits, flows from Route/R-URI, keepalives.
            nat: (data.len() % 2 == 1).then(|| sipfront::nat::NatConfig {
                enabled: true,
                keepalive_interval_ms: 100,
                max_flows: 4,
                dialog_timeout_ms: 60_000,
                ..sipfront::nat::NatConfig::default()
            }),
            ..ProxyConfig::default()
        };
        let e = Engine::new(cfg, Arc::clone(&id), 0, Arc::clone(&routing), Arc::new(AllActive));
        let mut p = Pump::new(e);
        let epoch = p.engine().epoch();
        let mut sink = Capture::default();
        let mut now_us = 0u64;
        let mut parked = Vec::new();
        // The last request sipfront sent: a response from a backend is
        // given its Vias, so its branch verifies (a fuzzer cannot forge the
        // MAC) and the response paths are reached.
        let mut last_request: Option<Vec<u8>> = None;
        let mut owned;
        for (i, dgram) in split(data).enumerate() {
            let Some((&sel, body)) = dgram.split_first() else {
                continue;
            };
            let (src, socket) = match sel % 8 {
                0 | 4 => (addr("192.0.2.50:5062"), Socket::Listen(0)),
                5 => (addr("192.0.2.50:5062"), Socket::Control(0)),
                k => (addr(backends[usize::from(k % 3)]), Socket::Egress),
            };
            now_us += u64::from(sel) * 25_000 + 1;
            let now = epoch + Duration::from_micros(now_us);
            sink.mesh_full = sel & 0x40 != 0;
            p.timeout(now, &mut sink);
            let body = match (&last_request, socket) {
                (Some(req), Socket::Egress) if body.starts_with(b"SIP/2.0 ") => {
                    owned = with_vias_of(body, req);
                    &owned[..]
                }
                _ => body,
            };
            let d = Datagram { data: body, src, socket };
            if sel & 0x80 != 0 {
                // Parked, resumed by a later datagram or timed out.
                if let Some(id) = p.engine_mut().park(d, Duration::from_millis(u64::from(sel)), StatusCode::SERVER_ERROR) {
                    parked.push(id);
                }
            } else if sel & 0x20 != 0 {
                if let Some(id) = parked.pop() {
                    p.engine_mut().resume(now, id);
                }
                p.datagram(now, d, &mut sink);
            } else {
                p.datagram(now, d, &mut sink);
            }
            for s in sink.take() {
                check(&s.data);
                if !s.data.starts_with(b"SIP/2.0") && s.socket == Socket::Egress {
                    last_request = Some(s.data);
                }
            }
            let e = p.engine();
            assert!(e.transaction_memory().0 <= 16);
            assert!(e.parked() <= 8);
            assert!(e.stats().nat.flows <= 4, "the NAT flow table outgrew max_flows");
            assert!(e.stats().transactions_pending <= e.stats().transactions_current);
            assert_eq!(e.stats().internal_faults, 0);
            if i > 64 {
                break;
            }
        }
        // Let every timer run out: the tables empty. The longest chain is
        // Timer C (181 s), the CANCEL's 64·T1 and Timer H: 300 s covers it.
        for _ in 0..300 {
            now_us += 1_000_000;
            p.timeout(epoch + Duration::from_micros(now_us), &mut sink);
            for s in sink.take() {
                check(&s.data);
            }
        }
        let e = p.engine();
        assert_eq!(e.transaction_memory().0, 0, "transactions left after 300 s");
        assert_eq!(e.stats().transactions_pending, 0);
        assert_eq!(e.parked(), 0, "parked messages left after 300 s");
        assert_eq!(e.stats().internal_faults, 0);
        // Only a NAT flow a registration keeps (its expiry is the input's) may
        // still have a keepalive timer.
        assert!(
            e.poll_timeout().is_none() || e.stats().nat.flows > 0,
            "timers left after 300 s"
        );
    }
});

/// `resp` with its Via lines replaced by those of `req`.
fn with_vias_of(resp: &[u8], req: &[u8]) -> Vec<u8> {
    let Ok(m) = Message::parse(req) else {
        return resp.to_vec();
    };
    let end = resp.windows(2).position(|w| w == b"\r\n").unwrap_or(resp.len());
    let mut out = resp[..end].to_vec();
    out.extend_from_slice(b"\r\n");
    for v in m.values(sipfront::sip::HeaderName::Via) {
        out.extend_from_slice(b"Via: ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    let rest = resp.get(end + 2..).unwrap_or(&[]);
    for line in rest.split_inclusive(|&b| b == b'\n') {
        let l = line.to_ascii_lowercase();
        if l.starts_with(b"via:") || l.starts_with(b"v:") {
            continue;
        }
        out.extend_from_slice(line);
    }
    out
}

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
