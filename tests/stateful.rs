//! Stateful mode against real SIPp user agents (RFC 3261 §16–§17 with
//! failover): a backend killed under load, a backend refusing with 503, a
//! caller that CANCELs while ringing, a caller that retransmits, and packet
//! loss between sipfront and its backends.
//!
//! Same harness and rules as `tests/integration.rs`: ports from the test's
//! own block in 30000-39999, processes killed by PID on drop, the SIPp load
//! lock, failing in CI when SIPp is missing and skipping loudly outside it.

mod common;

use common::{
    counter, final_counters, require_tool, start_sipfront, start_uac, start_uac_with, start_uas,
    start_uas_with, Driver, Ports, TempDir,
};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn scenario(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name)
        .display()
        .to_string()
}

/// The start of every test here: SIPp present (else skipped, or failed in
/// CI), the load lock, a port block and a scratch directory named `name`.
fn sipp_test(name: &str) -> Option<(std::sync::MutexGuard<'static, ()>, Ports, TempDir)> {
    if !require_tool("sipp") {
        return None;
    }
    let lock = common::load_lock();
    Some((lock, Ports::for_test(name), TempDir::new(name)))
}

/// sipfront on the portable driver with [`sipfront_args`].
fn start_stateful(
    dir: &TempDir,
    ports: &Ports,
    backends: &[u16],
    transaction: &str,
) -> common::Sipfront {
    start_sipfront(
        dir,
        &sipfront_args(dir, ports, backends, transaction),
        Driver::Portable,
    )
    .expect("the portable driver runs everywhere")
}

/// sipfront, stateful, 2 workers, in front of `backends` (ports), the
/// call-id hash, with `transaction` lines in `[transaction]` (they may open
/// further sections); written as a config file in `dir`.
fn sipfront_args(dir: &TempDir, ports: &Ports, backends: &[u16], transaction: &str) -> Vec<String> {
    let mut cfg = format!(
        "[server]\nlisten = [\"udp:127.0.0.1:{}\"]\nworkers = 2\n\n[proxy]\nmode = \"stateful\"\n\n[transaction]\n{transaction}\n\n[[backend_set]]\nname = \"default\"\nalgorithm = \"call-id\"\n",
        ports.listen()
    );
    for b in backends {
        cfg.push_str(&format!(
            "\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1:{b}\"\n"
        ));
    }
    let path = dir.file("stateful.toml");
    std::fs::write(&path, cfg).expect("write config");
    vec!["-c".into(), path.display().to_string()]
}

/// RFC 3261 §16.7 with failover: a backend SIGKILLed mid-run, with OPTIONS
/// probing on. Every call whose INVITE arrives after the kill completes on
/// the other backend, INVITEs that went to the dead one included
/// (fr_timeout, then the next destination), and so does a call that was
/// ringing on it (taken out by the probes, its branch is CANCELled and the
/// INVITE fails over). The only calls allowed to fail are those the dead
/// backend had already answered: their BYE gets sipfront's 408 after
/// fr_timeout, promptly rather than after SIPp's 32 s.
#[test]
fn backend_killed_mid_run_calls_fail_over() {
    let name = "stateful::backend_killed_mid_run";
    let Some((_load, ports, dir)) = sipp_test(name) else {
        return;
    };
    let mut uas0 = start_uas_with(&dir, &ports, 0, &["-sn", "uas", "-aa"]);
    let mut uas1 = start_uas_with(&dir, &ports, 1, &["-sn", "uas", "-aa"]);
    let backends = [ports.backend(0), ports.backend(1)];
    // SIPp's -aa answers the OPTIONS probes.
    let probe =
        "\n[probe]\nenabled = true\ninterval_ms = 200\ntimeout_ms = 200\ndown_threshold = 3";
    let mut sf = start_stateful(&dir, &ports, &backends, probe);
    let (rate, calls) = (300, 3000);
    let started = Instant::now();
    let (uac, stf) = start_uac(&dir, &ports, rate, calls);
    std::thread::sleep(Duration::from_secs(3));
    uas1.proc.kill();
    let killed_at = started.elapsed();
    let run = common::finish_uac(uac, &stf, Duration::from_secs(90));
    let took = started.elapsed();
    let log = sf.stop(Duration::from_secs(5));
    let c = final_counters(&log);
    let alive = uas0.stop_and_read();
    let dead = uas1.stop_and_read();
    let ok = run.get("SuccessfulCall(C)");
    let failed = run.get("FailedCall(C)");
    // Why each failed call failed, from SIPp's error log: the call id and
    // the message that aborted it. (The dead backend's own trace cannot say
    // which calls it answered: SIGKILL loses what SIPp had not flushed.)
    let errors = std::fs::read_to_string(dir.file("uac-errors.log")).unwrap_or_default();
    let aborted: Vec<(String, String)> = errors
        .split("Aborting call on unexpected message for Call-Id '")
        .skip(1)
        .map(|rest| {
            let (cid, tail) = rest.split_once('\'').unwrap_or((rest, ""));
            let what = tail.lines().next().unwrap_or("").to_string();
            (cid.to_string(), what)
        })
        .collect();
    eprintln!(
        "{name}: killed at {killed_at:.1?}, {ok} ok, {failed} failed, took {took:.1?}; aborted {aborted:?}; counters {c:?}"
    );
    assert_eq!(ok + failed, u64::from(calls), "every call ended");
    assert_eq!(
        aborted.len() as u64,
        failed,
        "each failed call aborted once"
    );
    for (cid, what) in &aborted {
        // Failed at its BYE (SIPp's uac index 8: the BYE's 200), answered
        // 408 by sipfront: the call had been answered, by a backend that
        // then died (the live one answered none of these).
        assert!(
            what.contains("(index 8)") && what.contains("SIP/2.0 408"),
            "{cid}: {what}"
        );
        assert!(
            !alive.answered.contains(cid),
            "{cid} was on the live backend"
        );
    }
    let _ = dead;
    assert!(
        counter(&c, "failovers") > 0,
        "INVITEs to the dead backend failed over: {c:?}"
    );
    // The stranded BYEs got a prompt 408 from sipfront.
    assert!(counter(&c, "replies_408") >= failed, "{c:?}");
    // After the kill, the live backend took the dead one's share.
    assert!(alive.answered.len() as u64 + dead.answered.len() as u64 >= ok);
    assert!(
        took < Duration::from_secs(u64::from(calls / rate) + 20),
        "the run took {took:?}: calls waited for long timers"
    );
}

/// A backend answering every INVITE with 503: each call it is offered
/// fails over (503 is a failover code), is ACKed hop by hop (§17.1.1.3),
/// and lands on the other backend; the caller never sees the 503.
#[test]
fn backend_answering_503_gets_no_call() {
    let name = "stateful::backend_answering_503";
    let Some((_load, ports, dir)) = sipp_test(name) else {
        return;
    };
    let mut good = start_uas(&dir, &ports, 0);
    let sf_503 = scenario("uas_503.xml");
    let mut bad = start_uas_with(&dir, &ports, 1, &["-sf", &sf_503]);
    let backends = [ports.backend(0), ports.backend(1)];
    let mut sf = start_stateful(&dir, &ports, &backends, "");
    let calls = 1500;
    let run = common::run_uac(&dir, &ports, 300, calls);
    let log = sf.stop(Duration::from_secs(5));
    let c = final_counters(&log);
    let good = good.stop_and_read();
    let bad = bad.stop_and_read();
    eprintln!(
        "{name}: good backend {} calls, 503 backend {} INVITEs / {} ACKs; counters {c:?}",
        good.calls.len(),
        bad.invites,
        bad.per_method.get("ACK").copied().unwrap_or(0)
    );
    common::assert_all_calls_ok(&run, u64::from(calls), &dir);
    assert_eq!(
        good.answered.len(),
        calls as usize,
        "all calls on the good backend"
    );
    assert!(bad.invites > 0, "the 503 backend was offered calls");
    assert_eq!(counter(&c, "failovers"), bad.calls.len() as u64);
    assert_eq!(
        bad.per_method.get("ACK").copied().unwrap_or(0),
        bad.invites,
        "each 503 ACKed by sipfront"
    );
    assert_eq!(counter(&c, "replies_503"), 0);
}

/// A test backend speaking just enough SIP for the CANCEL test: 180 to an
/// INVITE; 200 to a CANCEL followed by 487 to the INVITE; counts what it got.
struct CancelUas {
    stop: Arc<AtomicBool>,
    cancels: Arc<AtomicUsize>,
    acks: Arc<AtomicUsize>,
    invites: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

fn header_lines<'a>(msg: &'a str, names: &[&str]) -> Vec<&'a str> {
    msg.split("\r\n")
        .take_while(|l| !l.is_empty())
        .filter(|l| {
            let n = l.split(':').next().unwrap_or("").trim();
            names.iter().any(|x| n.eq_ignore_ascii_case(x))
        })
        .collect()
}

fn response_to(req: &str, status: &str, to_tag: Option<&str>) -> String {
    let mut s = format!("SIP/2.0 {status}\r\n");
    for l in header_lines(req, &["Via", "From", "Call-ID", "CSeq"]) {
        s.push_str(l);
        s.push_str("\r\n");
    }
    for l in header_lines(req, &["To"]) {
        s.push_str(l);
        if let Some(t) = to_tag {
            if !l.contains("tag=") {
                s.push_str(";tag=");
                s.push_str(t);
            }
        }
        s.push_str("\r\n");
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

/// Where a response goes: the top Via's sent-by.
fn via_addr(msg: &str) -> Option<SocketAddr> {
    let v = header_lines(msg, &["Via"]).into_iter().next()?;
    let sent_by = v.split_whitespace().nth(2)?.split(';').next()?;
    sent_by.parse().ok()
}

fn call_id(msg: &str) -> String {
    header_lines(msg, &["Call-ID"])
        .first()
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

impl CancelUas {
    fn start(port: u16) -> CancelUas {
        let sock = UdpSocket::bind(("127.0.0.1", port)).expect("bind test uas");
        sock.set_read_timeout(Some(Duration::from_millis(100))).ok();
        let stop = Arc::new(AtomicBool::new(false));
        let (cancels, acks, invites): (Arc<AtomicUsize>, Arc<AtomicUsize>, Arc<AtomicUsize>) =
            Default::default();
        let counters = (
            Arc::clone(&cancels),
            Arc::clone(&acks),
            Arc::clone(&invites),
        );
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut pending: HashMap<String, String> = HashMap::new();
            let mut buf = vec![0u8; 65_535];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, _)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let Some(to) = via_addr(&msg) else { continue };
                let cid = call_id(&msg);
                if msg.starts_with("INVITE ") {
                    invites.fetch_add(1, Ordering::Relaxed);
                    let _ = sock.send_to(
                        response_to(&msg, "180 Ringing", Some("uas1")).as_bytes(),
                        to,
                    );
                    pending.insert(cid, msg);
                } else if msg.starts_with("CANCEL ") {
                    cancels.fetch_add(1, Ordering::Relaxed);
                    let _ = sock.send_to(response_to(&msg, "200 OK", Some("uas1")).as_bytes(), to);
                    if let Some(inv) = pending.remove(&cid) {
                        let r = response_to(&inv, "487 Request Terminated", Some("uas1"));
                        let _ = sock.send_to(r.as_bytes(), via_addr(&inv).unwrap_or(to));
                    }
                } else if msg.starts_with("ACK ") {
                    acks.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        CancelUas {
            stop,
            cancels: counters.0,
            acks: counters.1,
            invites: counters.2,
            thread: Some(thread),
        }
    }
}

impl Drop for CancelUas {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// RFC 3261 §9 and §16.10: a caller CANCELs while ringing. sipfront answers
/// the CANCEL 200, sends a CANCEL to the ringing backend, relays its 487 to
/// the caller and ACKs the 487 hop by hop.
#[test]
fn caller_cancels_while_ringing() {
    let name = "stateful::caller_cancels_while_ringing";
    let Some((_load, ports, dir)) = sipp_test(name) else {
        return;
    };
    let uas = CancelUas::start(ports.backend(0));
    let mut sf = start_stateful(&dir, &ports, &[ports.backend(0)], "");
    let calls = 300;
    let sc = scenario("uac_cancel.xml");
    let (p, stf) = start_uac_with(&dir, &ports, 100, calls, &["-sf", &sc]);
    let run = common::finish_uac(p, &stf, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(200));
    let log = sf.stop(Duration::from_secs(5));
    let c = final_counters(&log);
    let (inv, can, ack) = (
        uas.invites.load(Ordering::Relaxed),
        uas.cancels.load(Ordering::Relaxed),
        uas.acks.load(Ordering::Relaxed),
    );
    eprintln!("{name}: backend got {inv} INVITEs, {can} CANCELs, {ack} ACKs; counters {c:?}");
    common::assert_all_calls_ok(&run, u64::from(calls), &dir);
    assert_eq!(inv, calls as usize);
    assert_eq!(can, calls as usize, "the backend saw each CANCEL once");
    assert_eq!(ack, calls as usize, "each 487 ACKed by sipfront");
    assert_eq!(counter(&c, "cancels"), u64::from(calls));
    assert_eq!(
        counter(&c, "replies_200"),
        u64::from(calls),
        "200 to each CANCEL"
    );
}

/// A test-only UDP relay: what arrives on `front` goes, as `up` rewrites
/// it (or drops it: `None`), from `back` to `forward`; what arrives on
/// `back` goes from `front` to its top Via's sent-by unless `down` drops it
/// (`false`). Counts what it dropped.
struct Relay {
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    fn start(
        front: u16,
        back: u16,
        forward: SocketAddr,
        mut up: impl FnMut(&[u8]) -> Option<Vec<u8>> + Send + 'static,
        mut down: impl FnMut(&str) -> bool + Send + 'static,
    ) -> Relay {
        let f = UdpSocket::bind(("127.0.0.1", front)).expect("bind relay front");
        let b = UdpSocket::bind(("127.0.0.1", back)).expect("bind relay back");
        f.set_nonblocking(true).ok();
        b.set_nonblocking(true).ok();
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (s2, d2) = (Arc::clone(&stop), Arc::clone(&dropped));
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_535];
            while !s2.load(Ordering::Relaxed) {
                let mut idle = true;
                if let Ok((n, _)) = f.recv_from(&mut buf) {
                    idle = false;
                    match up(&buf[..n]) {
                        Some(out) => {
                            let _ = b.send_to(&out, forward);
                        }
                        None => {
                            d2.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                if let Ok((n, _)) = b.recv_from(&mut buf) {
                    idle = false;
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if !down(&msg) {
                        d2.fetch_add(1, Ordering::Relaxed);
                    } else if let Some(to) = via_addr(&msg) {
                        let _ = f.send_to(&buf[..n], to);
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        });
        Relay {
            stop,
            dropped,
            thread: Some(thread),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Between the caller and sipfront: loses every 100 Trying sipfront sends,
/// so the caller keeps retransmitting its INVITE (timer A) until the 180.
/// It adds `rport` to the caller's Via so sipfront answers through it
/// (RFC 3581).
fn trying_eater(front: u16, back: u16, sipfront: u16) -> Relay {
    let add_rport = |d: &[u8]| {
        let msg = String::from_utf8_lossy(d).into_owned();
        // rport at the end of the top Via's line.
        Some(match msg.find("\r\nVia:") {
            Some(i) => {
                let eol = msg[i + 2..].find("\r\n").map_or(msg.len(), |e| i + 2 + e);
                format!("{};rport{}", &msg[..eol], &msg[eol..]).into_bytes()
            }
            None => d.to_vec(),
        })
    };
    let to: SocketAddr = ([127, 0, 0, 1], sipfront).into();
    Relay::start(front, back, to, add_rport, |m: &str| {
        !m.starts_with("SIP/2.0 100 ")
    })
}

/// A loss pattern: one datagram in `one_in`, from a fixed seed.
fn lossy(one_in: u64, seed: u64) -> impl FnMut() -> bool {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % one_in == 0
    }
}

/// RFC 3261 §17.2.1: a caller that retransmits its INVITE (it never hears
/// sipfront's 100 Trying) toward a backend that answers late (100 at once,
/// 180/200 after 2 s). sipfront absorbs every retransmission and answers it
/// with its last response; the backend sees each INVITE once.
#[test]
fn caller_retransmissions_are_absorbed() {
    let name = "stateful::caller_retransmissions_are_absorbed";
    let Some((_load, ports, dir)) = sipp_test(name) else {
        return;
    };
    let late = scenario("uas_late.xml");
    let mut uas = start_uas_with(&dir, &ports, 0, &["-sf", &late]);
    let mut sf = start_stateful(&dir, &ports, &[ports.backend(0)], "");
    // The eater sits on backend(1)'s ports: free in this test.
    let (front, back) = (ports.backend(1), ports.backend(1) + 1);
    let eater = trying_eater(front, back, ports.listen());
    let calls = 100;
    let (p, stf) = common::start_uac_to(&dir, &ports, front, 50, calls, &["-sn", "uac", "-d", "0"]);
    let run = common::finish_uac(p, &stf, Duration::from_secs(60));
    let log = sf.stop(Duration::from_secs(5));
    let c = final_counters(&log);
    let got = uas.stop_and_read();
    let eaten = eater.dropped.load(Ordering::Relaxed);
    eprintln!(
        "{name}: backend got {:?}; uac retransmissions {}; 100s eaten {eaten}; counters {c:?}",
        got.per_method,
        run.get("Retransmissions(C)")
    );
    common::assert_all_calls_ok(&run, u64::from(calls), &dir);
    assert!(
        run.get("Retransmissions(C)") >= u64::from(calls),
        "SIPp retransmitted its INVITEs"
    );
    assert_eq!(
        got.per_method.get("INVITE").copied().unwrap_or(0),
        calls as usize,
        "the backend saw each INVITE once"
    );
    assert!(
        counter(&c, "retransmissions_absorbed") >= u64::from(calls),
        "{c:?}"
    );
    assert!(
        eaten > calls as usize,
        "each retransmission was answered with a 100 again"
    );
}

/// In front of a backend: drops one datagram in `one_in` both ways,
/// sipfront → relay → backend, and backend (SIPp with `-rsa` pointing at
/// the relay) → relay → the top Via (sipfront).
///
/// Two kinds of datagram are never dropped, because SIPp's uas cannot
/// recover from their loss where a real UAS's transaction layer would: its
/// 100 Trying (without it sipfront's timer A retransmits the INVITE, and
/// SIPp aborts a call that gets a retransmitted INVITE after its 200), and
/// its final answer to a BYE (SIPp ends the call when it sends it and
/// ignores the retransmitted BYE as a "dead call").
fn lossy_relay(front: u16, back: u16, backend: u16, one_in: u64) -> Relay {
    let mut lose_up = lossy(one_in, 0x2545_f491_4f6c_dd1d);
    let mut lose_down = lossy(one_in, 0x9e37_79b9_7f4a_7c15);
    let up = move |d: &[u8]| (!lose_up()).then(|| d.to_vec());
    let down = move |msg: &str| {
        let bye_final = msg.starts_with("SIP/2.0 2")
            && header_lines(msg, &["CSeq"])
                .first()
                .is_some_and(|l| l.ends_with("BYE"));
        bye_final || msg.starts_with("SIP/2.0 100 ") || !lose_down()
    };
    Relay::start(front, back, ([127, 0, 0, 1], backend).into(), up, down)
}

/// RFC 3261 §17.1.1.2 / §17.1.2.2: with 1 datagram in 10 lost between
/// sipfront and its backends, both ways, calls still complete through
/// sipfront's retransmissions (timers A and E) and the backends' own.
#[test]
fn packet_loss_toward_backends_is_repaired_by_retransmissions() {
    let name = "stateful::packet_loss_toward_backends";
    let Some((_load, ports, dir)) = sipp_test(name) else {
        return;
    };
    // Backends on backend(i); relays' front ports on backend(i)+1, back
    // ports on backend(i)+2.
    let mut relays = Vec::new();
    let mut uases = Vec::new();
    for i in 0..2u16 {
        let p = ports.backend(i);
        relays.push(lossy_relay(p + 1, p + 2, p, 10));
        let rsa = format!("127.0.0.1:{}", p + 2);
        let sc = scenario("uas_trying.xml");
        uases.push(start_uas_with(&dir, &ports, i, &["-sf", &sc, "-rsa", &rsa]));
    }
    let fronts = [ports.backend(0) + 1, ports.backend(1) + 1];
    let mut sf = start_stateful(&dir, &ports, &fronts, "fr_timeout_ms = 8000");
    let calls = 400;
    let run = common::run_uac(&dir, &ports, 40, calls);
    let log = sf.stop(Duration::from_secs(5));
    let c = final_counters(&log);
    let dropped: usize = relays
        .iter()
        .map(|r| r.dropped.load(Ordering::Relaxed))
        .sum();
    eprintln!("{name}: relays dropped {dropped} datagrams; counters {c:?}");
    for u in &mut uases {
        u.stop_and_read();
    }
    common::assert_all_calls_ok(&run, u64::from(calls), &dir);
    assert!(dropped > 50, "the relays dropped only {dropped}");
    assert!(counter(&c, "retransmissions_sent") > 0, "{c:?}");
}
