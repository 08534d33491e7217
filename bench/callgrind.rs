//! Instruction counts of the proxy core, for `valgrind --tool=callgrind`
//! (recipe and the breakdown it prints: `bench/callgrind.sh`).
//!
//! Each scenario warms the core up with the same traffic first (the first
//! datagrams grow buffers, maps and pools), then runs [`RUNS`] more through
//! `step_*` functions that are never inlined and carry unmangled names, so
//! `--toggle-collect=sf_step_*` counts exactly what the core spends on
//! them: `Proxy::handle` plus draining its queue into a driver-like sink
//! that swaps in spare buffers, as the portable driver's send batch does.
//! Building the test messages and copying what was sent stay outside.
//!
//! Scenarios (first argument, default all):
//! - `invite`: bench/data/invite.sip from a client, forwarded statelessly
//!   (`proxy/invite_forward` of bench/proxy.rs);
//! - `ok200`: the backend's 200 OK to it, relayed statelessly;
//! - `stateless-call`, `stateful-call`: a whole SIPp call (INVITE, 180,
//!   200, ACK, BYE, 200) as in `proxy/stateless_call` and
//!   `proxy/stateful_call`, one `step_*` function per message so the
//!   annotate output splits the call, and the clock moved on after each
//!   batch so the lingering transactions expire (`sf_step_tick`).
//!
//! It also counts heap allocations per measured run with a counting
//! global allocator (a few instructions per allocation under callgrind).

use sipfront::dispatch::{Algorithm, AllActive, BackendId, BackendSet, Destination, Rules};
use sipfront::proxy::txn::TxnConfig;
use sipfront::proxy::{identity::Identity, Inbound, Outcome, Proxy, ProxyConfig, Routing, Socket};
use sipfront::sip::{HeaderName, Message};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Measured runs per scenario (after as many warm-up runs).
const RUNS: u64 = 1000;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static FREES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREES.fetch_add(1, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What a driver does with queued datagrams: swaps a spare buffer in and
/// keeps the datagram (the portable driver's `SendBatch` slots).
struct Sink {
    spares: Vec<Vec<u8>>,
    sent: Vec<(SocketAddr, Vec<u8>)>,
}

impl Sink {
    fn new() -> Sink {
        Sink {
            spares: (0..64).map(|_| Vec::with_capacity(2048)).collect(),
            sent: Vec::with_capacity(64),
        }
    }

    #[inline(always)]
    fn take(&mut self, to: SocketAddr, d: &mut Vec<u8>) {
        let mut b = self.spares.pop().unwrap_or_default();
        std::mem::swap(d, &mut b);
        self.sent.push((to, b));
    }

    /// Outside the measurement: gives the buffers back, returns the bytes.
    fn collect(&mut self, o: Outcome, out: &[u8]) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        if let Outcome::Send { .. } = o {
            v.push(out.to_vec());
        }
        for (_, mut b) in self.sent.drain(..) {
            v.push(b.clone());
            b.clear();
            self.spares.push(b);
        }
        v
    }
}

struct Core {
    p: Proxy,
    r: Routing,
    out: Vec<u8>,
    sink: Sink,
    client: SocketAddr,
    backend: SocketAddr,
    /// Allocations and frees inside the measured steps.
    allocs: (u64, u64),
}

#[inline(always)]
fn drive(c: &mut Core, data: &[u8], from_client: bool) -> Outcome {
    let pkt = Inbound {
        data,
        src: if from_client { c.client } else { c.backend },
        socket: if from_client {
            Socket::Listen(0)
        } else {
            Socket::Egress
        },
    };
    let o = c.p.handle(&c.r, &AllActive, pkt, &mut c.out);
    let sink = &mut c.sink;
    c.p.drain_queue(|to, _, d| sink.take(to, d));
    o
}

macro_rules! steps {
    ($($name:ident = $k:literal),*) => {$(
        #[inline(never)]
        #[no_mangle]
        fn $name(c: &mut Core, data: &[u8], from_client: bool) -> Outcome {
            // A distinct constant, so the linker does not fold the bodies
            // into one symbol.
            black_box($k);
            drive(c, black_box(data), from_client)
        }
    )*};
}

// One per message kind, so callgrind_annotate splits a call by message.
steps!(
    sf_step_invite = 1u8,
    sf_step_180 = 2u8,
    sf_step_200 = 3u8,
    sf_step_ack = 4u8,
    sf_step_bye = 5u8,
    sf_step_bye_200 = 6u8
);

/// A measured step.
type Step = fn(&mut Core, &[u8], bool) -> Outcome;

/// Not measured: the warm-up runs.
#[inline(never)]
fn warm(c: &mut Core, data: &[u8], from_client: bool) -> Outcome {
    drive(c, black_box(data), from_client)
}

#[inline(never)]
#[no_mangle]
fn sf_step_tick(c: &mut Core, now_us: u64) {
    c.p.tick_us(now_us, &AllActive);
    let sink = &mut c.sink;
    c.p.drain_queue(|to, _, d| sink.take(to, d));
}

fn core(stateful: bool) -> Core {
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
    let r = Routing::new(vec![set], Rules::new(vec![], 0));
    let id = Identity::new(&[a("127.0.0.1:5060")], &[a("127.0.0.1:5061")], None, &[]);
    let cfg = ProxyConfig {
        transactions: stateful.then(|| TxnConfig {
            max_transactions: 1 << 20,
            ..TxnConfig::default()
        }),
        ..ProxyConfig::default()
    };
    Core {
        p: Proxy::new(cfg, Arc::new(id), 0),
        r,
        out: Vec::with_capacity(4096),
        sink: Sink::new(),
        client: a("192.0.2.101:5060"),
        backend: a("127.0.0.1:5070"),
        allocs: (0, 0),
    }
}

/// A backend's answer `status` to the forwarded request `fwd`.
fn answer(fwd: &[u8], status: &str) -> Vec<u8> {
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

const INVITE: &[u8] = include_bytes!("data/invite.sip");

fn allocs() -> (u64, u64) {
    (
        ALLOCS.load(Ordering::Relaxed),
        FREES.load(Ordering::Relaxed),
    )
}

/// `executed`: every run, warm-up included (callgrind counts the calls of
/// all of them, and the costs of the measured ones only).
fn report(name: &str, c: &Core, executed: u64) {
    println!(
        "{name}: {RUNS} measured runs; per run {:.2} allocations (realloc included), {:.2} frees; executed {executed}",
        c.allocs.0 as f64 / RUNS as f64,
        c.allocs.1 as f64 / RUNS as f64
    );
}

/// The INVITE forwarded statelessly, and the 200 OK relayed back.
fn single(which: &str) {
    let mut c = core(false);
    let o = warm(&mut c, INVITE, true);
    let fwd = c.sink.collect(o, &c.out).remove(0);
    let ok = answer(&fwd, "200 OK");
    let (data, from_client, step): (&[u8], bool, Step) = match which {
        "invite" => (INVITE, true, sf_step_invite),
        _ => (&ok, false, sf_step_200),
    };
    for _ in 0..RUNS {
        let o = warm(&mut c, data, from_client);
        assert!(matches!(o, Outcome::Send { .. }), "{which}: {o:?}");
    }
    let a = allocs();
    for _ in 0..RUNS {
        let o = step(&mut c, data, from_client);
        if !matches!(o, Outcome::Send { .. }) {
            panic!("{which}: {o:?}");
        }
    }
    let b = allocs();
    c.allocs = (b.0 - a.0, b.1 - a.1);
    report(which, &c, 2 * RUNS + 1);
}

/// Whole calls; `n` warm-up calls then `n` measured, a tick after each
/// batch (the clock moves 40 s, so every lingering entry of the batch ends).
fn calls(stateful: bool) {
    let mut c = core(stateful);
    let invite = String::from_utf8(INVITE.to_vec()).unwrap();
    let mut now_us = 0;
    for i in 0..2 * RUNS {
        let measured = i >= RUNS;
        let run = |c: &mut Core,
                   step: fn(&mut Core, &[u8], bool) -> Outcome,
                   data: &[u8],
                   from_client: bool| {
            let o = if measured {
                let a = allocs();
                let o = step(c, data, from_client);
                c.allocs.0 += ALLOCS.load(Ordering::Relaxed) - a.0;
                c.allocs.1 += FREES.load(Ordering::Relaxed) - a.1;
                o
            } else {
                warm(c, data, from_client)
            };
            c.sink.collect(o, &c.out)
        };
        let cid = format!("call{i}@192.0.2.101");
        let inv = invite
            .replace("3848276298220188511@192.0.2.101", &cid)
            .replace("z9hG4bK74bf9.1a2b3c4d5e", &format!("z9hG4bK-inv{i}"));
        let sent = run(&mut c, sf_step_invite, inv.as_bytes(), true);
        let fwd = sent.into_iter().find(|d| d.starts_with(b"INVITE")).unwrap();
        run(&mut c, sf_step_180, &answer(&fwd, "180 Ringing"), false);
        let s = run(&mut c, sf_step_200, &answer(&fwd, "200 OK"), false);
        assert!(
            s.iter().any(|d| d.starts_with(b"SIP/2.0 200")),
            "200 relayed"
        );
        let ack = format!(
            "ACK sip:bob@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK-ack{i};rport\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\nTo: <sip:bob@biloxi.example.com>;tag=8321234356\r\nCall-ID: {cid}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        run(&mut c, sf_step_ack, ack.as_bytes(), true);
        let bye = ack
            .replace("ACK sip", "BYE sip")
            .replace("CSeq: 1 ACK", "CSeq: 2 BYE")
            .replace(&format!("-ack{i}"), &format!("-bye{i}"));
        let sent = run(&mut c, sf_step_bye, bye.as_bytes(), true);
        let fbye = sent.into_iter().find(|d| d.starts_with(b"BYE")).unwrap();
        let s = run(&mut c, sf_step_bye_200, &answer(&fbye, "200 OK"), false);
        assert!(s.iter().any(|d| d.starts_with(b"SIP/2.0 200")), "BYE's 200");
        if i % RUNS == RUNS - 1 {
            now_us += 40_000_000;
            if measured {
                let a = allocs();
                sf_step_tick(&mut c, now_us);
                c.allocs.0 += ALLOCS.load(Ordering::Relaxed) - a.0;
                c.allocs.1 += FREES.load(Ordering::Relaxed) - a.1;
            } else {
                c.p.tick_us(now_us, &AllActive);
            }
            c.sink.collect(Outcome::Handover { worker: 0 }, &[]);
        }
    }
    let name = if stateful {
        "stateful-call"
    } else {
        "stateless-call"
    };
    report(name, &c, 2 * RUNS);
}

fn main() {
    // `cargo bench` passes `--bench`: run everything once, quickly.
    let which = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "all".into());
    let all = which == "all";
    if all || which == "invite" {
        single("invite");
    }
    if all || which == "ok200" {
        single("ok200");
    }
    if all || which == "stateless-call" {
        calls(false);
    }
    if all || which == "stateful-call" {
        calls(true);
    }
}
