//! Instruction counts of the proxy core, for `valgrind --tool=callgrind`
//! (recipe and the breakdown it prints: `bench/callgrind.sh`).
//!
//! Each scenario warms the core up with the same traffic first (the first
//! datagrams grow buffers, maps and pools), then runs [`RUNS`] more through
//! `step_*` functions that are never inlined and carry unmangled names, so
//! `--toggle-collect=sf_step_*` counts exactly what the core spends on
//! them: the pump feeding the engine and draining every transmit into a
//! sink that swaps in spare buffers, as the portable driver's send batch
//! does (`runtime::pump::Capture`).
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

#[path = "support.rs"]
mod support;
use sipfront::proxy::txn::TxnConfig;
use sipfront::proxy::{Datagram, ProxyConfig, Socket};
use sipfront::runtime::pump::{Capture, Pump};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::answer;

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

struct Core {
    p: Pump,
    sink: Capture,
    epoch: Instant,
    now_us: u64,
    client: SocketAddr,
    backend: SocketAddr,
    /// Allocations and frees inside the measured steps.
    allocs: (u64, u64),
}

impl Core {
    /// Outside the measurement: what was sent, buffers kept for reuse.
    fn collect(&mut self) -> Vec<Vec<u8>> {
        let v = self.sink.sent.iter().map(|s| s.data.clone()).collect();
        self.sink.clear();
        v
    }
}

/// Datagrams sent by one step.
#[inline(always)]
fn drive(c: &mut Core, data: &[u8], from_client: bool) -> usize {
    let d = Datagram {
        data,
        src: if from_client { c.client } else { c.backend },
        socket: if from_client {
            Socket::Listen(0)
        } else {
            Socket::Egress
        },
    };
    let now = c.epoch + Duration::from_micros(c.now_us);
    c.p.datagram(now, d, &mut c.sink);
    c.sink.sent.len()
}

macro_rules! steps {
    ($($name:ident = $k:literal),*) => {$(
        #[inline(never)]
        #[no_mangle]
        fn $name(c: &mut Core, data: &[u8], from_client: bool) -> usize {
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
type Step = fn(&mut Core, &[u8], bool) -> usize;

/// Not measured: the warm-up runs.
#[inline(never)]
fn warm(c: &mut Core, data: &[u8], from_client: bool) -> usize {
    drive(c, black_box(data), from_client)
}

#[inline(never)]
#[no_mangle]
fn sf_step_tick(c: &mut Core) {
    let now = c.epoch + Duration::from_micros(c.now_us);
    c.p.timeout(now, &mut c.sink);
}

/// With `nat`, NAT traversal is on and the client's datagrams come from
/// a NAT's public address (its Via names 192.0.2.101:5060): every call is
/// detected, gets force_rport and a Contact alias, and its dialog keeps a
/// flow in the keepalive table until the BYE.
fn core(stateful: bool, nat: bool) -> Core {
    let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
    let cfg = ProxyConfig {
        transactions: stateful.then(|| TxnConfig {
            max_transactions: 1 << 20,
            ..TxnConfig::default()
        }),
        nat: nat.then(|| sipfront::nat::NatConfig {
            enabled: true,
            ..sipfront::nat::NatConfig::default()
        }),
        ..ProxyConfig::default()
    };
    let p = support::pump(cfg);
    Core {
        epoch: p.engine().epoch(),
        now_us: 0,
        p,
        sink: Capture::default(),
        client: if nat {
            a("203.0.113.5:40312")
        } else {
            a("192.0.2.101:5060")
        },
        backend: a("127.0.0.1:5070"),
        allocs: (0, 0),
    }
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
    let mut c = core(false, false);
    warm(&mut c, INVITE, true);
    let fwd = c.collect().remove(0);
    let ok = answer(&fwd, "200 OK");
    let (data, from_client, step): (&[u8], bool, Step) = match which {
        "invite" => (INVITE, true, sf_step_invite),
        _ => (&ok, false, sf_step_200),
    };
    for _ in 0..RUNS {
        assert_eq!(warm(&mut c, data, from_client), 1, "{which}");
        c.sink.clear();
    }
    let a = allocs();
    for _ in 0..RUNS {
        let n = step(&mut c, data, from_client);
        if n != 1 {
            panic!("{which}: {n} sent");
        }
        c.sink.clear();
    }
    let b = allocs();
    c.allocs = (b.0 - a.0, b.1 - a.1);
    report(which, &c, 2 * RUNS + 1);
}

/// Whole calls; `n` warm-up calls then `n` measured, a tick after each
/// batch (the clock moves 40 s, so every lingering entry of the batch ends).
fn calls(stateful: bool, nat: bool) {
    let mut c = core(stateful, nat);
    let invite = String::from_utf8(INVITE.to_vec()).unwrap();
    for i in 0..2 * RUNS {
        let measured = i >= RUNS;
        let run = |c: &mut Core, step: Step, data: &[u8], from_client: bool| {
            if measured {
                let a = allocs();
                step(c, data, from_client);
                c.allocs.0 += ALLOCS.load(Ordering::Relaxed) - a.0;
                c.allocs.1 += FREES.load(Ordering::Relaxed) - a.1;
            } else {
                warm(c, data, from_client);
            }
            c.collect()
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
            c.now_us += 40_000_000;
            if measured {
                let a = allocs();
                sf_step_tick(&mut c);
                c.allocs.0 += ALLOCS.load(Ordering::Relaxed) - a.0;
                c.allocs.1 += FREES.load(Ordering::Relaxed) - a.1;
            } else {
                let now = c.epoch + Duration::from_micros(c.now_us);
                c.p.timeout(now, &mut c.sink);
            }
            c.collect();
        }
    }
    let name = match (stateful, nat) {
        (true, false) => "stateful-call",
        (false, false) => "stateless-call",
        (true, true) => "stateful-call-nat",
        (false, true) => "stateless-call-nat",
    };
    if nat {
        let n = &c.p.engine().stats().nat;
        assert_eq!(
            n.nated_requests,
            3 * 2 * RUNS,
            "every INVITE, ACK and BYE detected"
        );
        assert_eq!(
            n.contacts_aliased,
            2 * RUNS,
            "every INVITE's Contact aliased"
        );
    }
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
        calls(false, false);
    }
    if all || which == "stateful-call" {
        calls(true, false);
    }
    if all || which == "stateless-call-nat" {
        calls(false, true);
    }
    if all || which == "stateful-call-nat" {
        calls(true, true);
    }
}
