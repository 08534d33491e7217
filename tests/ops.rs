//! Operations, whole binary: health probing of a killed backend under SIPp
//! load, admin disable, hot reload under load (and a refused broken
//! config), SIGTERM drain under load, `/metrics` against SIPp's counts,
//! and the container contract (environment-only config, probes endpoints,
//! token, SIGTERM) against the binary itself.
//!
//! Ports come from blocks in 20000-29999 on 127.0.0.1; processes are killed
//! by PID only. The SIPp tests take the shared load lock and fail in CI
//! without SIPp (skipped loudly elsewhere); each runs on both I/O drivers
//! and in both proxy modes (`portable::stateful::*`,
//! `uring::stateless::*`, ...), the container contract on both drivers.

mod common;
#[path = "common/ops.rs"]
mod ops;

use common::{load_lock, parse_received_requests, wait_until, Driver, TempDir};
use ops::{args, sample, skip_without_sipp, start_front, start_uac, start_uas, Front, OpsPorts};
use sipfront::admin::client::Action;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const INTERVAL_MS: u64 = 200;
const TIMEOUT_MS: u64 = 200;
const DOWN: u64 = 3;
const UP: u64 = 2;
/// What the tests allow beyond the configured bound: the prober's 10 ms
/// tick, the test's polling of `/backends`, a loaded two-core machine.
const SLACK: Duration = Duration::from_millis(400);

/// Generates `DRIVER::MODE::NAME` (drivers `portable`, `uring`; modes
/// `stateful`, `stateless`) for each test body in `per_mode` (it takes the
/// proxy mode and the I/O driver), and `DRIVER::NAME` for each in
/// `per_driver` (it takes the driver).
macro_rules! per_driver {
    (per_mode: [$($name:ident),* $(,)?], per_driver: [$($once:ident),* $(,)?] $(,)?) => {
        per_driver!(@driver portable, Portable, [$($name),*], [$($once),*]);
        per_driver!(@driver uring, Uring, [$($name),*], [$($once),*]);
    };
    (@driver $module:ident, $variant:ident, [$($name:ident),*], [$($once:ident),*]) => {
        mod $module {
            mod stateful {
                $(#[test]
                fn $name() {
                    crate::$name("stateful", crate::common::Driver::$variant)
                })*
            }
            mod stateless {
                $(#[test]
                fn $name() {
                    crate::$name("stateless", crate::common::Driver::$variant)
                })*
            }
            $(#[test]
            fn $once() {
                crate::$once(crate::common::Driver::$variant)
            })*
        }
    };
}

per_driver!(
    per_mode: [
        killed_backend_goes_inactive_within_thresholds_and_comes_back,
        admin_disable_drains_a_backend_without_losing_calls,
        reload_under_load_adds_a_backend_and_refuses_a_broken_config,
        sigterm_under_load_completes_accepted_calls_and_refuses_new_ones,
        metrics_scrape_matches_what_sipp_counted,
    ],
    per_driver: [container_contract_env_config_probes_token_and_sigterm],
);

fn uri(port: u16) -> String {
    format!("sip:127.0.0.1:{port}")
}

/// The start of every SIPp test: SIPp present (else skipped, or failed in
/// CI), the load lock, a scratch directory and a port block named after
/// the test, mode and driver.
fn sipp_test(
    test: &str,
    mode: &str,
    driver: Driver,
) -> Option<(std::sync::MutexGuard<'static, ()>, TempDir, OpsPorts)> {
    if skip_without_sipp() {
        return None;
    }
    let lock = load_lock();
    let name = format!("{test}-{mode}-{}", driver.as_str());
    Some((lock, TempDir::new(&name), OpsPorts::for_test(&name)))
}

/// A config with the test's listen/admin ports, fast probes, and
/// `backends` in set "default".
fn config(mode: &str, ports: &OpsPorts, backends: &[u16], drain: (u64, u64)) -> String {
    let mut s = format!(
        "[server]\nworkers = 2\nlisten = [\"udp:127.0.0.1:{}\"]\n\n\
         [proxy]\nmode = \"{}\"\n\n\
         [admin]\nlisten = \"127.0.0.1:{}\"\n\n\
         [probe]\nenabled = true\ninterval_ms = {INTERVAL_MS}\ntimeout_ms = {TIMEOUT_MS}\n\
         down_threshold = {DOWN}\nup_threshold = {UP}\n\n\
         [drain]\ngrace_ms = {}\nquiet_ms = {}\n\n\
         [[backend_set]]\nname = \"default\"\n",
        ports.listen(),
        mode,
        ports.admin(),
        drain.0,
        drain.1
    );
    for b in backends {
        s.push_str(&format!(
            "[[backend_set.destination]]\nuri = \"{}\"\n",
            uri(*b)
        ));
    }
    s
}

/// Replaces the file in one step, so a reload never reads half of it.
fn write_config(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// sipfront on `driver` with the config file `cfg`; None when io_uring is
/// unavailable here (the test then returns; in CI it fails).
fn start(dir: &TempDir, ports: &OpsPorts, cfg: &str, driver: Driver) -> Option<(Front, PathBuf)> {
    let path = dir.file("sipfront.toml");
    write_config(&path, cfg);
    let f = start_front(
        dir,
        &args(&["-c", path.to_str().unwrap()]),
        &[],
        ports.admin_url(),
        driver,
    )?;
    Some((f, path))
}

fn forwarded(f: &Front, u: &str) -> f64 {
    sample(
        &f.metrics(),
        "sipfront_requests_forwarded_total",
        &[("backend", u)],
    )
}

/// Waits for a published counter snapshot (workers publish every 250 ms).
fn settle() {
    std::thread::sleep(Duration::from_millis(600));
}

struct Uac {
    proc: common::Proc,
    stf: PathBuf,
}

impl Uac {
    fn finish(self, timeout: Duration) -> common::UacRun {
        common::finish_uac(self.proc, &self.stf, timeout)
    }
}

fn uac(dir: &TempDir, ports: &OpsPorts, rate: u32, calls: u32, pause_ms: u32) -> Uac {
    let (proc, stf) = start_uac(dir, ports, rate, calls, pause_ms);
    Uac { proc, stf }
}

fn uac_errors(dir: &TempDir) -> String {
    fs::read_to_string(dir.file("uac-errors.log"))
        .unwrap_or_default()
        .lines()
        .take(30)
        .collect::<Vec<_>>()
        .join("\n")
}

fn killed_backend_goes_inactive_within_thresholds_and_comes_back(mode: &str, driver: Driver) {
    let Some((_l, dir, ports)) = sipp_test("ops-kill", mode, driver) else {
        return;
    };
    let (_a, _) = start_uas(&dir, &ports, 0, "a");
    let (mut b, _) = start_uas(&dir, &ports, 1, "b1");
    let (a_uri, b_uri) = (uri(ports.backend(0)), uri(ports.backend(1)));
    let Some((front, _)) = start(
        &dir,
        &ports,
        &config(
            mode,
            &ports,
            &[ports.backend(0), ports.backend(1)],
            (5000, 1000),
        ),
        driver,
    ) else {
        return;
    };
    assert!(wait_until(Duration::from_secs(3), || {
        sample(
            &front.metrics(),
            "sipfront_probes_total",
            &[("backend", &b_uri), ("result", "ok")],
        ) >= 2.0
    }));
    assert_eq!(front.state_of(&b_uri), "active");

    let load = uac(&dir, &ports, 100, 1100, 0);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        forwarded(&front, &b_uri) > 0.0,
        "B got no calls before the kill"
    );

    b.kill();
    let killed = Instant::now();
    front
        .wait_state(&b_uri, "inactive", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("B not marked inactive:\n{}", front.log_text()));
    let detect = killed.elapsed();
    let bound = Duration::from_millis(INTERVAL_MS * DOWN + TIMEOUT_MS);
    eprintln!("dead backend detected in {detect:?} (bound {bound:?} + slack)");
    assert!(
        detect <= bound + SLACK,
        "detection took {detect:?}, bound {bound:?}"
    );
    let log = front.log_text();
    assert!(
        log.contains("backend state changed") && log.contains("failed probes"),
        "the transition is logged with its reason:\n{log}"
    );

    // No new calls while inactive.
    settle();
    let f1 = forwarded(&front, &b_uri);
    std::thread::sleep(Duration::from_secs(2));
    let f2 = forwarded(&front, &b_uri);
    assert_eq!(f1, f2, "B got requests while inactive");

    // Back: active again within the up threshold, and calls flow to it.
    let (_b2, _) = start_uas(&dir, &ports, 1, "b2");
    let back = front
        .wait_state(&b_uri, "active", Duration::from_secs(5))
        .expect("B active again");
    eprintln!("backend back in {back:?}");
    assert!(back <= Duration::from_millis(INTERVAL_MS * UP + TIMEOUT_MS) + SLACK);
    std::thread::sleep(Duration::from_millis(1500));
    let f3 = forwarded(&front, &b_uri);
    assert!(f3 > f2, "B got no calls after it came back ({f2} -> {f3})");
    assert!(forwarded(&front, &a_uri) > 0.0);

    let run = load.finish(Duration::from_secs(60));
    let ok = run.get("SuccessfulCall(C)");
    let failed = run.get("FailedCall(C)");
    eprintln!("calls: {ok} ok, {failed} failed (those sent to B as it died)");
    assert!(
        ok >= 900,
        "too few calls succeeded: {ok}; errors:\n{}",
        uac_errors(&dir)
    );
    let m = front.metrics();
    assert!(
        sample(
            &m,
            "sipfront_backend_transitions_total",
            &[("to", "inactive")]
        ) >= 1.0
    );
    assert!(
        sample(
            &m,
            "sipfront_backend_transitions_total",
            &[("to", "active")]
        ) >= 1.0
    );
    assert!(
        sample(
            &m,
            "sipfront_probes_total",
            &[("backend", &b_uri), ("result", "timeout")]
        ) >= DOWN as f64
    );
}

fn admin_disable_drains_a_backend_without_losing_calls(mode: &str, driver: Driver) {
    let Some((_l, dir, ports)) = sipp_test("ops-disable", mode, driver) else {
        return;
    };
    let (_a, _) = start_uas(&dir, &ports, 0, "a");
    let (_b, _) = start_uas(&dir, &ports, 1, "b");
    let b_uri = uri(ports.backend(1));
    let Some((front, _)) = start(
        &dir,
        &ports,
        &config(
            mode,
            &ports,
            &[ports.backend(0), ports.backend(1)],
            (5000, 1000),
        ),
        driver,
    ) else {
        return;
    };
    let ctl = |list: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sipfront"))
            .args(["ctl", "--admin", &ports.admin_url()])
            .args(list)
            .env_remove("SIPFRONT_ADMIN_TOKEN")
            .output()
            .expect("run sipfront ctl")
    };

    let load = uac(&dir, &ports, 100, 600, 0);
    std::thread::sleep(Duration::from_millis(1500));
    let out = ctl(&["set", "default", &b_uri, "disabled"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"state\":\"disabled\""));
    settle();
    let f1 = forwarded(&front, &b_uri);
    let p1 = sample(
        &front.metrics(),
        "sipfront_probes_total",
        &[("backend", &b_uri), ("result", "ok")],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let f2 = forwarded(&front, &b_uri);
    assert_eq!(f1, f2, "a disabled backend got new calls");
    // Probes go on, and do not override the admin.
    let p2 = sample(
        &front.metrics(),
        "sipfront_probes_total",
        &[("backend", &b_uri), ("result", "ok")],
    );
    assert!(p2 > p1);
    assert_eq!(front.state_of(&b_uri), "disabled");
    let listing = ctl(&["backends"]);
    assert!(String::from_utf8_lossy(&listing.stdout).contains("\"state\":\"disabled\""));

    let out = ctl(&["set", "default", &b_uri, "active"]);
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        forwarded(&front, &b_uri) > f2,
        "B got no calls once active again"
    );
    // Unknown destinations are refused with a non-zero exit.
    assert!(!ctl(&["set", "default", "sip:127.0.0.1:1", "drain"])
        .status
        .success());

    let run = load.finish(Duration::from_secs(60));
    common::assert_all_calls_ok(&run, 600, &dir);
}

fn reload_under_load_adds_a_backend_and_refuses_a_broken_config(mode: &str, driver: Driver) {
    let Some((_l, dir, ports)) = sipp_test("ops-reload", mode, driver) else {
        return;
    };
    let (_a, _) = start_uas(&dir, &ports, 0, "a");
    let (_c, _) = start_uas(&dir, &ports, 2, "c");
    let c_uri = uri(ports.backend(2));
    let Some((mut front, path)) = start(
        &dir,
        &ports,
        &config(mode, &ports, &[ports.backend(0)], (5000, 1000)),
        driver,
    ) else {
        return;
    };

    let load = uac(&dir, &ports, 100, 800, 0);
    std::thread::sleep(Duration::from_secs(2));
    // SIGHUP with a second backend.
    write_config(
        &path,
        &config(
            mode,
            &ports,
            &[ports.backend(0), ports.backend(2)],
            (5000, 1000),
        ),
    );
    front.proc.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(3), || front
            .api(&Action::Backends, None)
            .1
            .contains(&c_uri)),
        "C not listed after SIGHUP:\n{}",
        front.log_text()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        forwarded(&front, &c_uri) > 0.0,
        "the new backend got no calls"
    );

    // A broken config through the API: refused with where and why.
    let broken = config(
        mode,
        &ports,
        &[ports.backend(0), ports.backend(2)],
        (5000, 1000),
    )
    .replace(&format!("{}\"", ports.backend(2)), "99999\"");
    write_config(&path, &broken);
    let (status, body) = front.api(&Action::Reload, None);
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("sipfront.toml:") && body.contains("port out of range"),
        "{body}"
    );
    assert!(
        front.api(&Action::Backends, None).1.contains(&c_uri),
        "old config gone"
    );
    let before = forwarded(&front, &c_uri);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        forwarded(&front, &c_uri) > before,
        "traffic stopped after a refused reload"
    );

    let run = load.finish(Duration::from_secs(60));
    common::assert_all_calls_ok(&run, 800, &dir);
    let m = front.metrics();
    assert_eq!(
        sample(&m, "sipfront_reloads_total", &[("result", "ok")]),
        1.0
    );
    assert_eq!(
        sample(&m, "sipfront_reloads_total", &[("result", "failed")]),
        1.0
    );
}

fn sigterm_under_load_completes_accepted_calls_and_refuses_new_ones(mode: &str, driver: Driver) {
    let Some((_l, dir, ports)) = sipp_test("ops-drain", mode, driver) else {
        return;
    };
    let (mut a, a_trace) = start_uas(&dir, &ports, 0, "a");
    let (mut b, b_trace) = start_uas(&dir, &ports, 1, "b");
    let grace = Duration::from_millis(10_000);
    let Some((mut front, _)) = start(
        &dir,
        &ports,
        &config(
            mode,
            &ports,
            &[ports.backend(0), ports.backend(1)],
            (10_000, 2000),
        ),
        driver,
    ) else {
        return;
    };

    // 5 s of calls, each 1 s long; SIGTERM after 3 s.
    let load = uac(&dir, &ports, 50, 250, 1000);
    std::thread::sleep(Duration::from_secs(3));
    front.proc.signal(libc::SIGTERM);
    let t0 = Instant::now();
    assert!(
        wait_until(Duration::from_millis(500), || front
            .api(&Action::Ready, None)
            .0
            == 503),
        "/ready still 200 while draining"
    );
    let status = front
        .proc
        .wait_timeout(grace + Duration::from_secs(2))
        .expect("sipfront did not exit within the grace time");
    let took = t0.elapsed();
    eprintln!("drained and exited in {took:?}");
    assert!(status.success(), "exit {status}:\n{}", front.log_text());
    assert!(took < grace, "exit took {took:?}, grace {grace:?}");

    let run = load.finish(Duration::from_secs(60));
    let counters = common::final_counters(&front.log_text());
    let refused = common::counter(&counters, "replies_503");
    a.signal(libc::SIGTERM);
    b.signal(libc::SIGTERM);
    let _ = a.wait_timeout(Duration::from_secs(2));
    let _ = b.wait_timeout(Duration::from_secs(2));
    let mut answered = 0;
    for t in [&a_trace, &b_trace] {
        let r = parse_received_requests(&fs::read_to_string(t).unwrap_or_default());
        for (call, methods) in &r.calls {
            if methods.contains("INVITE") {
                answered += 1;
                assert!(
                    methods.contains("BYE"),
                    "call {call} reached a backend but never ended: {methods:?}"
                );
            }
        }
    }
    let ok = run.get("SuccessfulCall(C)");
    let failed = run.get("FailedCall(C)");
    let created = run.get("TotalCallCreated");
    eprintln!("{created} calls: {ok} completed, {failed} refused; sipfront sent {refused} 503s");
    assert_eq!(ok, answered, "every call a backend answered completed");
    assert_eq!(ok + failed, created);
    assert!(
        refused > 0 && failed > 0,
        "no call was refused while draining"
    );
    assert!(
        failed <= refused,
        "calls failed for another reason than 503:\n{}",
        uac_errors(&dir)
    );
}

fn metrics_scrape_matches_what_sipp_counted(mode: &str, driver: Driver) {
    let Some((_l, dir, ports)) = sipp_test("ops-metrics", mode, driver) else {
        return;
    };
    let (_a, _) = start_uas(&dir, &ports, 0, "a");
    let (_b, _) = start_uas(&dir, &ports, 1, "b");
    let Some((front, _)) = start(
        &dir,
        &ports,
        &config(
            mode,
            &ports,
            &[ports.backend(0), ports.backend(1)],
            (5000, 1000),
        ),
        driver,
    ) else {
        return;
    };
    let calls = 400u64;
    let run = uac(&dir, &ports, 100, calls as u32, 0).finish(Duration::from_secs(60));
    common::assert_all_calls_ok(&run, calls, &dir);
    settle();
    let m = front.metrics();
    let retrans = run.get("Retransmissions(C)");
    let by = |method: &str| {
        sample(
            &m,
            "sipfront_requests_forwarded_by_method_total",
            &[("method", method)],
        ) as u64
    };
    if retrans == 0 {
        assert_eq!(by("INVITE"), calls);
        assert_eq!(by("ACK"), calls);
        assert_eq!(by("BYE"), calls);
    } else {
        assert!(by("INVITE") >= calls && by("BYE") >= calls);
    }
    let per_backend = sample(&m, "sipfront_requests_forwarded_total", &[]);
    let all = sample(&m, "sipfront_requests_forwarded_all_total", &[]);
    assert_eq!(per_backend, all, "every request went to a listed backend");
    assert_eq!(all as u64, by("INVITE") + by("ACK") + by("BYE"));
    for u in [uri(ports.backend(0)), uri(ports.backend(1))] {
        assert!(sample(&m, "sipfront_requests_forwarded_total", &[("backend", &u)]) > 0.0);
        assert_eq!(
            sample(
                &m,
                "sipfront_backend_state",
                &[("backend", &u), ("state", "active")]
            ),
            1.0
        );
        assert!(
            sample(
                &m,
                "sipfront_probes_total",
                &[("backend", &u), ("result", "ok")]
            ) > 0.0
        );
    }
    let current = sample(&m, "sipfront_transactions_current", &[]);
    let total = sample(&m, "sipfront_transactions_total", &[]);
    if mode == "stateless" {
        assert_eq!((current, total), (0.0, 0.0));
    } else {
        // INVITE and BYE server transactions at least; completed ones
        // linger (64×T1) to absorb retransmissions.
        assert!(total >= 2.0 * calls as f64, "transactions_total {total}");
        assert!(current <= total);
        if retrans == 0 {
            // One 100 Trying per INVITE, sent by sipfront itself.
            let trying = sample(&m, "sipfront_replies_total", &[("code", "100")]);
            assert_eq!(trying as u64, calls);
        }
    }
    assert_eq!(sample(&m, "sipfront_ready", &[]), 1.0);
    assert_eq!(
        sample(&m, "sipfront_drops_total", &[("reason", "unparseable")]),
        0.0
    );
    // The same numbers as JSON.
    let (status, stats) = front.api(&Action::Stats, None);
    assert_eq!(status, 200);
    assert!(stats.contains(&format!("\"BYE\":{}", by("BYE"))), "{stats}");
}

/// The container contract, without a container: configuration from
/// `SIPFRONT_*` only, the probe endpoints, the token, the admin API's
/// robustness, 503 while draining, and exit within the grace time.
fn container_contract_env_config_probes_token_and_sigterm(driver: Driver) {
    let name = format!("ops-container-{}", driver.as_str());
    let dir = TempDir::new(&name);
    let ports = OpsPorts::for_test(&name);
    let dead = uri(ports.backend(0));
    let env = [
        (
            "SIPFRONT_LISTEN",
            format!("udp:127.0.0.1:{}", ports.listen()),
        ),
        ("SIPFRONT_BACKENDS", dead.clone()),
        ("SIPFRONT_WORKERS", "1".into()),
        (
            "SIPFRONT_ADMIN_LISTEN",
            format!("127.0.0.1:{}", ports.admin()),
        ),
        ("SIPFRONT_ADMIN_TOKEN", "s3cret".into()),
        ("SIPFRONT_PROBE", "on".into()),
        ("SIPFRONT_PROBE_INTERVAL_MS", "200".into()),
        ("SIPFRONT_DRAIN_GRACE_MS", "3000".into()),
        ("SIPFRONT_LOG_FORMAT", "json".into()),
    ];
    // The driver comes from the environment too (`SIPFRONT_IO_DRIVER`).
    let Some(mut front) = start_front(&dir, &[], &env, ports.admin_url(), driver) else {
        return;
    };
    assert_eq!(front.api(&Action::Health, None).0, 200);
    assert_eq!(front.api(&Action::Ready, None).0, 200);
    assert_eq!(front.api(&Action::Metrics, None).0, 401);
    assert_eq!(front.api(&Action::Backends, Some("wrong")).0, 401);
    let (st, body) = front.api(&Action::Metrics, Some("s3cret"));
    assert_eq!(st, 200);
    assert!(body.contains("# TYPE sipfront_probes_total counter"));

    // sipfront ctl, as a HEALTHCHECK would run it.
    let ctl = |list: &[&str], token: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sipfront"));
        c.args(["ctl", "--admin", &ports.admin_url()]).args(list);
        match token {
            Some(t) => c.env("SIPFRONT_ADMIN_TOKEN", t),
            None => c.env_remove("SIPFRONT_ADMIN_TOKEN"),
        };
        c.output().expect("sipfront ctl").status.code()
    };
    assert_eq!(ctl(&["health"], None), Some(0));
    assert_eq!(ctl(&["backends"], None), Some(1));
    assert_eq!(ctl(&["backends"], Some("s3cret")), Some(0));

    // Nothing listens on the backend: inactive within the probe bound.
    let t0 = Instant::now();
    assert!(wait_until(Duration::from_secs(3), || {
        let (_, b) = front.api(&Action::Backends, Some("s3cret"));
        b.contains("\"state\":\"inactive\"")
    }));
    eprintln!(
        "silent backend inactive after {:?} from the first check",
        t0.elapsed()
    );

    // Bad HTTP from the network is answered, and the API stays up.
    for (raw, want) in [
        (&b"BREW /pot HTTP/1.1\r\n\r\n"[..], "HTTP/1.1 401"),
        (b"GET /metrics HTTP/9\r\n\r\n", "HTTP/1.1 505"),
        (b"\x00\x01\x02\r\n\r\n", "HTTP/1.1 400"),
        (
            b"GET /health HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
            "HTTP/1.1 413",
        ),
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", ports.admin())).unwrap();
        s.write_all(raw).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(
            out.starts_with(want),
            "{:?} -> {out:?}",
            String::from_utf8_lossy(raw)
        );
    }
    let mut s = TcpStream::connect(("127.0.0.1", ports.admin())).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nX: ").unwrap();
    let _ = s.write_all(&vec![b'a'; 20_000]);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 431"), "{out:?}");
    assert_eq!(front.api(&Action::Health, None).0, 200);

    // SIGTERM: readiness false, new calls 503 with Retry-After, exit 0.
    front.proc.signal(libc::SIGTERM);
    let t0 = Instant::now();
    assert!(wait_until(Duration::from_millis(500), || front
        .api(&Action::Ready, None)
        .0
        == 503));
    let sock = UdpSocket::bind(("127.0.0.1", ports.uac())).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let invite = format!(
        "INVITE sip:svc@127.0.0.1:{l} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{u};branch=z9hG4bKdrain1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:svc@127.0.0.1>\r\n\
         Call-ID: drain-1@test\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:{u}>\r\nContent-Length: 0\r\n\r\n",
        l = ports.listen(),
        u = ports.uac()
    );
    sock.send_to(invite.as_bytes(), ("127.0.0.1", ports.listen()))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("an answer while draining");
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert!(reply.starts_with("SIP/2.0 503"), "{reply}");
    assert!(reply.contains("Retry-After:"), "{reply}");
    let status = front
        .proc
        .wait_timeout(Duration::from_secs(5))
        .expect("exit within the grace time");
    assert!(status.success());
    assert!(t0.elapsed() < Duration::from_millis(3000 + 500));
    let log = front.log_text();
    assert!(log.contains("draining"), "{log}");
}
