//! NAT traversal end to end (issue 11), through a real NAT that the test
//! builds itself in network namespaces:
//!
//! ```text
//!  phone netns            router netns                    edge netns
//!  SIPp phone  ──veth──  10.77.0.1 | 198.51.100.1  ──veth──  198.51.100.10
//!  10.77.0.2:5060         MASQUERADE, UDP conntrack         sipfront :5060
//!                         timeout 4 s                       Kamailio registrar :5070
//!                                                           SIPp call backend :5080
//!                                                           SIPp caller :5090
//! ```
//!
//! The phone registers through sipfront (which adds a Path naming itself
//! with the phone's flow) to Kamailio, a plain registrar with no NAT
//! handling of its own; stays idle for more than three times the router's
//! UDP timeout while sipfront's keepalives hold the NAT mapping open; then
//! takes an incoming call that Kamailio routes along the stored Path; then
//! calls a SIPp backend through sipfront, which hangs up: its BYE must find
//! the phone behind the NAT. The same run with keepalives off must lose the
//! incoming call (the mapping expired): that test proves this one can fail.
//!
//! The edge has no route to the phone's private network (only the router's
//! public side is on-link), so nothing reaches the phone but through the
//! NAT mapping. Namespace names carry the test process's PID and a sequence
//! number (`sfnat-PID-N-phone`), so parallel runs never collide; they are
//! deleted on drop, panics included, together with any process left in them
//! (all of which this test started), and namespaces left behind by a test
//! process that no longer exists are swept at the start. Needs root, `ip`,
//! `iptables`, SIPp and Kamailio: missing ones fail the test in CI and skip
//! it loudly elsewhere. The tests take the load lock: they mostly sleep,
//! but SIPp and Kamailio share the machine's two cores with other tests.

mod common;

use common::{
    counter, final_counters, parse_received_requests, require_tool, skip, start_sipfront_in,
    udp_port_bound_in_netns_of, wait_until, Driver, Proc, TempDir,
};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const PHONE_IP: &str = "10.77.0.2";
const ROUTER_PRIVATE_IP: &str = "10.77.0.1";
const ROUTER_PUBLIC_IP: &str = "198.51.100.1";
const EDGE_IP: &str = "198.51.100.10";
/// The phone's SIP port: it registers and takes the incoming call from the
/// same one, which the NAT maps to one public port.
const PHONE_PORT: u16 = 5060;
const SIPFRONT_PORT: u16 = 5060;
const REGISTRAR_PORT: u16 = 5070;
const CALL_BACKEND_PORT: u16 = 5080;
const CALLER_PORT: u16 = 5090;
/// The router's UDP conntrack timeout (both the unreplied and the
/// "stream" one), seconds.
const NAT_UDP_TIMEOUT_S: u64 = 4;
/// How long the phone stays idle between its REGISTER and the incoming
/// call: more than three times the NAT's UDP timeout.
const IDLE: Duration = Duration::from_secs(3 * NAT_UDP_TIMEOUT_S + 1);
/// sipfront's keepalive interval: well inside the NAT's UDP timeout.
const KEEPALIVE_INTERVAL_MS: u64 = 1000;

/// Generates one `#[test]` per line: `name: body(mode, driver);`.
macro_rules! nat_tests {
    ($($name:ident: $body:ident($mode:literal, $driver:ident);)*) => {
        $(#[test]
        fn $name() {
            $body(stringify!($name), $mode, Driver::$driver)
        })*
    };
}

nat_tests! {
    stateful_portable_keepalives_hold_the_nat_open_for_calls: keepalives_hold_the_nat_open_for_calls("stateful", Portable);
    stateless_portable_keepalives_hold_the_nat_open_for_calls: keepalives_hold_the_nat_open_for_calls("stateless", Portable);
    stateful_uring_keepalives_hold_the_nat_open_for_calls: keepalives_hold_the_nat_open_for_calls("stateful", Uring);
    stateless_uring_keepalives_hold_the_nat_open_for_calls: keepalives_hold_the_nat_open_for_calls("stateless", Uring);
    // Keepalives off is the same in both drivers: one driver is enough to
    // prove that the test above can fail.
    stateful_portable_incoming_call_is_lost_without_keepalives: incoming_call_is_lost_without_keepalives("stateful", Portable);
    stateless_portable_incoming_call_is_lost_without_keepalives: incoming_call_is_lost_without_keepalives("stateless", Portable);
}

/// Issue 11, "What must be shown": the phone registers through the NAT and
/// sipfront, idles for over three NAT timeouts, and still takes an incoming
/// call (sipfront's keepalives held the mapping); then its call to a SIPp
/// backend completes and the backend's BYE reaches it.
fn keepalives_hold_the_nat_open_for_calls(name: &str, mode: &str, driver: Driver) {
    let Some(run) = nat_run(name, mode, driver, "options") else {
        return;
    };
    let r = &run.report;
    let diag = run.diagnostics();
    assert!(r.registered, "the phone's REGISTER failed\n{diag}");
    assert!(
        r.register_seen_from_nat,
        "sipfront did not see the REGISTER from the router's public address\n{diag}"
    );
    assert!(
        r.phone_keepalives > 0,
        "no keepalive reached the phone during {IDLE:?} idle\n{diag}"
    );
    assert!(
        r.flow_listed,
        "`sipfront ctl nat` does not list the phone's public endpoint after the idle time: {}\n{diag}",
        r.nat_flows
    );
    for name in [
        "nat_paths_added",
        "nat_keepalives_answered",
        "nat_flows_resolved",
    ] {
        assert!(
            counter(&run.counters, name) > 0,
            "{name} is 0 in sipfront's final counters\n{diag}"
        );
    }
    assert!(
        r.registrar_routed_via_sipfront,
        "Kamailio did not route the incoming INVITE along the Path to sipfront\n{diag}"
    );
    assert!(
        r.phone_invites > 0,
        "the incoming INVITE did not reach the phone after {IDLE:?} idle\n{diag}"
    );
    assert!(
        r.incoming_completed,
        "the incoming call did not complete (caller {:?}, phone answered: {})\n{diag}",
        r.caller_status, r.phone_answered
    );
    assert!(
        r.phone_bye_answered,
        "the caller's BYE did not reach the phone\n{diag}"
    );
    let out = r.outgoing.as_ref().expect("the outgoing call ran");
    assert!(
        out.backend_bye_reached_phone,
        "the backend's BYE did not reach the phone (phone {:?}, backend {:?})\n{diag}",
        out.phone_status, out.backend_status
    );
    assert!(
        out.completed,
        "the outgoing call did not complete (phone {:?}, backend {:?})\n{diag}",
        out.phone_status, out.backend_status
    );
    eprintln!(
        "{name}: {} keepalives reached the phone in {IDLE:?} idle; counters {:?}",
        r.phone_keepalives, run.counters
    );
}

/// The same run with `keepalive = "off"`: the phone still registers through
/// the NAT, the registrar still routes the incoming INVITE along the Path
/// to sipfront, but the router forgot the phone's mapping during the idle
/// time, so the INVITE never reaches the phone and the call fails.
fn incoming_call_is_lost_without_keepalives(name: &str, mode: &str, driver: Driver) {
    let Some(run) = nat_run(name, mode, driver, "off") else {
        return;
    };
    let r = &run.report;
    let diag = run.diagnostics();
    // Everything up to the incoming call works as with keepalives ...
    assert!(r.registered, "the phone's REGISTER failed\n{diag}");
    assert!(
        r.register_seen_from_nat,
        "sipfront did not see the REGISTER from the router's public address\n{diag}"
    );
    assert_eq!(
        r.phone_keepalives, 0,
        "keepalives reached the phone with keepalive = \"off\"\n{diag}"
    );
    assert_eq!(
        counter(&run.counters, "nat_keepalives_sent"),
        0,
        "sipfront sent keepalives with keepalive = \"off\"\n{diag}"
    );
    assert!(
        counter(&run.counters, "nat_paths_added") > 0,
        "sipfront added no Path to the REGISTER\n{diag}"
    );
    assert!(
        r.registrar_routed_via_sipfront,
        "Kamailio did not route the incoming INVITE along the Path to sipfront\n{diag}"
    );
    // sipfront sent the INVITE to the flow the Path named (the phone's
    // public endpoint) ...
    assert!(
        counter(&run.counters, "nat_flows_resolved") > 0,
        "sipfront did not send the INVITE to the flow the Path named\n{diag}"
    );
    // ... but the NAT mapping had expired: the call is lost.
    assert_eq!(
        r.phone_invites, 0,
        "an INVITE reached the phone after {IDLE:?} idle without keepalives: the NAT \
         mapping did not expire, so the keepalive test proves nothing\n{diag}"
    );
    assert!(
        !r.incoming_completed && !r.caller_status.is_some_and(|s| s.success()),
        "the incoming call completed without keepalives\n{diag}"
    );
    assert!(
        r.caller_statuses.iter().all(|s| *s != 200),
        "the caller got a 200 without keepalives: {:?}\n{diag}",
        r.caller_statuses
    );
    eprintln!(
        "{name}: incoming call lost as it should be; caller got {:?}",
        r.caller_statuses
    );
}

// ------------------------------------------------------------------ the run

/// What one run observed.
#[derive(Debug, Default)]
struct Report {
    /// The phone's REGISTER got its 200.
    registered: bool,
    /// sipfront saw it from the router's public address (the 200's top Via
    /// says `received=198.51.100.1`): the NAT is in the path.
    register_seen_from_nat: bool,
    /// Keepalive requests (OPTIONS/NOTIFY) the phone received while it
    /// waited for the incoming call.
    phone_keepalives: usize,
    /// `sipfront ctl nat` after the idle time.
    nat_flows: String,
    /// It lists the phone's public endpoint (the router's address and the
    /// port it mapped the phone's to).
    flow_listed: bool,
    /// Kamailio's lookup routed the incoming INVITE to sipfront (the Path).
    registrar_routed_via_sipfront: bool,
    /// INVITEs the phone received (retransmissions included).
    phone_invites: usize,
    /// The phone answered the caller's BYE with 200.
    phone_bye_answered: bool,
    /// Status codes the caller received.
    caller_statuses: Vec<u16>,
    /// The caller's SIPp exit status (None: stopped, it hung).
    caller_status: Option<ExitStatus>,
    /// The phone answered the incoming INVITE with 200.
    phone_answered: bool,
    /// The caller ran its scenario to the end, the phone answered the
    /// INVITE and the BYE.
    incoming_completed: bool,
    /// The phone's call to the backend (only run with keepalives on).
    outgoing: Option<Outgoing>,
}

#[derive(Debug, Default)]
struct Outgoing {
    phone_status: Option<ExitStatus>,
    backend_status: Option<ExitStatus>,
    /// The phone received the backend's BYE.
    backend_bye_reached_phone: bool,
    completed: bool,
}

/// A finished run: the report, sipfront's final counters and where the logs
/// are (kept when the test fails).
struct Run {
    report: Report,
    counters: BTreeMap<String, u64>,
    dir: TempDir,
}

impl Run {
    /// Everything needed to see why a run failed: the last lines of each
    /// log, and where the full logs are.
    fn diagnostics(&self) -> String {
        let mut out = format!(
            "report: {:#?}\ncounters: {:?}\nlogs in {} (kept on failure)\n",
            self.report,
            self.counters,
            self.dir.path.display()
        );
        let mut names: Vec<PathBuf> = fs::read_dir(&self.dir.path)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        names.sort();
        for p in names {
            let text = common::read_log(&p);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(25)..];
            out.push_str(&format!(
                "--- {} (last {} lines)\n{}\n",
                p.file_name().unwrap_or_default().to_string_lossy(),
                tail.len(),
                tail.join("\n")
            ));
        }
        out
    }
}

fn nat_dir_file(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/nat")
        .join(name)
        .display()
        .to_string()
}

/// The whole scenario with sipfront's `keepalive` setting; None when the
/// test cannot run here (after [`skip`], which fails in CI).
fn nat_run(name: &str, mode: &str, driver: Driver, keepalive: &str) -> Option<Run> {
    for tool in ["ip", "iptables", "sipp", "kamailio"] {
        if !require_tool(tool) {
            return None;
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip("the NAT test needs root (network namespaces, iptables)");
        return None;
    }
    let _load = common::load_lock();
    let dir = TempDir::new(name);
    // Dropped last: every process below is gone before the namespaces.
    let net = Topology::new()?;

    // The edge: Kamailio, the call backend, sipfront.
    let _registrar = Kamailio::start(&dir, &net.edge);
    let mut backend = sipp(
        &dir,
        &net.edge,
        "backend",
        EDGE_IP,
        CALL_BACKEND_PORT,
        &nat_dir_file("backend_hangup.xml"),
        &[
            "-m",
            "1",
            "-timeout",
            &timeout(IDLE + Duration::from_secs(60)),
        ],
        None,
    );
    await_udp(&mut backend.proc, CALL_BACKEND_PORT);
    let config = sipfront_config(&dir, mode, keepalive);
    let mut sf = start_sipfront_in(
        &dir,
        &["-c".into(), config.display().to_string(), "-v".into()],
        driver,
        Some(&net.edge),
    )?;

    let mut r = Report::default();
    // 1. The phone registers through the NAT and sipfront.
    let mut reg = sipp(
        &dir,
        &net.phone,
        "phone-register",
        PHONE_IP,
        PHONE_PORT,
        &nat_dir_file("phone_register.xml"),
        &["-m", "1", "-s", "phone", "-aa", "-timeout", "10s"],
        Some(EDGE_IP.to_string() + ":" + &SIPFRONT_PORT.to_string()),
    );
    r.registered = succeeded(finish(&mut reg.proc, Duration::from_secs(20)));
    let reg_trace = reg.messages();
    r.register_seen_from_nat = reg_trace.contains(&format!("received={ROUTER_PUBLIC_IP}"));

    // 2. On the same port, the phone waits for the incoming call, idle
    //    (bar keepalives, which SIPp's -aa answers) for IDLE.
    let answer_limit = IDLE + Duration::from_secs(25);
    let mut answer = sipp(
        &dir,
        &net.phone,
        "phone-answer",
        PHONE_IP,
        PHONE_PORT,
        &nat_dir_file("phone_answer.xml"),
        &["-s", "phone", "-aa", "-timeout", &timeout(answer_limit)],
        None,
    );
    std::thread::sleep(IDLE);
    // What sipfront's flow table holds after the idle time.
    r.nat_flows = ctl_nat(&dir, &net.edge);
    r.flow_listed = r
        .nat_flows
        .contains(&format!("\"address\":\"{ROUTER_PUBLIC_IP}:{PHONE_PORT}\""));
    let mut caller = sipp(
        &dir,
        &net.edge,
        "caller",
        EDGE_IP,
        CALLER_PORT,
        &nat_dir_file("caller.xml"),
        &["-m", "1", "-s", "phone", "-timeout", "20s"],
        Some(format!("{EDGE_IP}:{REGISTRAR_PORT}")),
    );
    let caller_status = finish(&mut caller.proc, Duration::from_secs(30));
    r.caller_status = caller_status;
    r.caller_statuses = received_statuses(&caller.messages());
    // The phone has answered the BYE (or will never get the call): stop it
    // (the keepalives' Call-ID keeps it running, see phone_answer.xml).
    finish(&mut answer.proc, Duration::from_millis(500));
    let phone = parse_received_requests(&answer.messages());
    r.phone_keepalives = phone.per_method.get("OPTIONS").copied().unwrap_or(0)
        + phone.per_method.get("NOTIFY").copied().unwrap_or(0);
    r.phone_invites = phone.invites;
    r.phone_bye_answered = !phone.bye_answered.is_empty();
    r.phone_answered = !phone.answered.is_empty();
    r.incoming_completed = succeeded(caller_status) && r.phone_answered && r.phone_bye_answered;
    r.registrar_routed_via_sipfront = common::read_log(&dir.file("kamailio.log"))
        .lines()
        .any(|l| l.contains("lookup: INVITE") && l.contains(&format!("{EDGE_IP}:{SIPFRONT_PORT}")));

    // 3. The phone calls the backend through sipfront; the backend hangs up.
    if keepalive != "off" {
        let mut call = sipp(
            &dir,
            &net.phone,
            "phone-call",
            PHONE_IP,
            PHONE_PORT,
            &nat_dir_file("phone_call.xml"),
            &["-m", "1", "-s", "phone", "-aa", "-timeout", "15s"],
            Some(EDGE_IP.to_string() + ":" + &SIPFRONT_PORT.to_string()),
        );
        let phone_status = finish(&mut call.proc, Duration::from_secs(25));
        let backend_status = finish(&mut backend.proc, Duration::from_secs(10));
        let phone = parse_received_requests(&call.messages());
        r.outgoing = Some(Outgoing {
            phone_status,
            backend_status,
            backend_bye_reached_phone: phone.per_method.contains_key("BYE"),
            completed: succeeded(phone_status) && succeeded(backend_status),
        });
    }

    let log = sf.stop(Duration::from_secs(10));
    let counters = final_counters(&log);
    Some(Run {
        report: r,
        counters,
        dir,
    })
}

/// Waits up to `timeout` for a SIPp run to end by itself and returns its
/// exit status; else stops it and returns None. SIPp takes a first SIGINT
/// as "finish the calls in progress", a second as "exit now", which it does
/// with its traces flushed; SIGKILL if it is still there after 5 s.
fn finish(p: &mut Proc, timeout: Duration) -> Option<ExitStatus> {
    if let Some(s) = p.wait_timeout(timeout) {
        return Some(s);
    }
    for _ in 0..2 {
        p.signal(libc::SIGINT);
        if p.wait_timeout(Duration::from_millis(500)).is_some() {
            return None;
        }
    }
    if p.wait_timeout(Duration::from_secs(5)).is_none() {
        p.kill();
    }
    None
}

fn succeeded(s: Option<ExitStatus>) -> bool {
    s.is_some_and(|s| s.success())
}

/// `sipfront ctl nat` against the sipfront in `netns` (its admin API on
/// that namespace's 127.0.0.1:9090): the flow table as JSON, or what went
/// wrong.
fn ctl_nat(dir: &TempDir, netns: &str) -> String {
    let out = dir.file("ctl-nat.json");
    let file = fs::File::create(&out).expect("ctl output");
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        netns,
        env!("CARGO_BIN_EXE_sipfront"),
        "ctl",
        "nat",
    ])
    .stdin(Stdio::null())
    .stdout(file)
    .stderr(Stdio::null());
    let mut p = Proc::spawn("sipfront ctl nat", &mut cmd);
    match p.wait_timeout(Duration::from_secs(5)) {
        Some(s) if s.success() => fs::read_to_string(&out).unwrap_or_default(),
        Some(s) => format!("sipfront ctl nat exited {s}"),
        None => "sipfront ctl nat did not answer within 5 s".to_string(),
    }
}

/// SIPp's `-timeout` value for `d`, in whole seconds.
fn timeout(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// sipfront on the edge: the registrar set for REGISTER, the call backend
/// for the rest, NAT handling on with `keepalive`.
fn sipfront_config(dir: &TempDir, mode: &str, keepalive: &str) -> PathBuf {
    let cfg = format!(
        r#"[server]
listen = ["udp:{EDGE_IP}:{SIPFRONT_PORT}"]
workers = 2

[proxy]
mode = "{mode}"

[drain]
grace_ms = 3000
quiet_ms = 200

[nat]
enabled = true
contact = "alias"
register = "path"
keepalive = "{keepalive}"
keepalive_interval_ms = {KEEPALIVE_INTERVAL_MS}
keepalive_failures = 3

[routing]
default = "calls"

[[routing.rule]]
methods = ["REGISTER"]
set = "registrar"

[[backend_set]]
name = "registrar"

[[backend_set.destination]]
uri = "sip:{EDGE_IP}:{REGISTRAR_PORT}"

[[backend_set]]
name = "calls"

[[backend_set.destination]]
uri = "sip:{EDGE_IP}:{CALL_BACKEND_PORT}"
"#
    );
    let path = dir.file("sipfront.toml");
    fs::write(&path, cfg).expect("write sipfront config");
    path
}

/// Status codes of the responses in a SIPp `-trace_msg` file that SIPp
/// received.
fn received_statuses(trace: &str) -> Vec<u16> {
    trace
        .split("\n-----------------------------------------------")
        .filter(|b| b.contains("message received"))
        .filter_map(|b| {
            b.lines()
                .map(str::trim)
                .find(|l| l.starts_with("SIP/2.0 "))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|c| c.parse().ok())
        })
        .collect()
}

/// Waits (at most 5 s) until the process `p` has a UDP socket on `port` in
/// its network namespace; panics if it exits first or never binds.
fn await_udp(p: &mut Proc, port: u16) {
    let pid = p.pid();
    let up = wait_until(Duration::from_secs(5), || {
        p.try_status().is_some() || udp_port_bound_in_netns_of(pid, port)
    });
    if let Some(s) = p.try_status() {
        panic!("{} exited at startup: {s}", p.name);
    }
    assert!(up, "{} did not bind UDP port {port} within 5 s", p.name);
}

// --------------------------------------------------------------- processes

/// A SIPp run in a namespace, tracing its messages and errors to files.
struct Sipp {
    proc: Proc,
    messages: PathBuf,
}

impl Sipp {
    /// Its message trace so far.
    fn messages(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.messages).unwrap_or_default()).into_owned()
    }
}

/// Control and media ports: each SIPp of a namespace gets its own (only
/// the edge runs two at once), away from the SIP ports.
fn sipp_aux_ports(name: &str) -> (u16, u16) {
    match name {
        "backend" => (8881, 6100),
        "caller" => (8882, 6200),
        _ => (8888, 6000),
    }
}

/// Starts SIPp as `name` in `netns`, bound to `ip:port`, running
/// `scenario` with `extra` flags, toward `remote` if given.
#[allow(clippy::too_many_arguments)]
fn sipp(
    dir: &TempDir,
    netns: &str,
    name: &str,
    ip: &str,
    port: u16,
    scenario: &str,
    extra: &[&str],
    remote: Option<String>,
) -> Sipp {
    let messages = dir.file(&format!("{name}-messages.log"));
    let errors = dir.file(&format!("{name}-errors.log"));
    let stderr = fs::File::create(dir.file(&format!("{name}-stderr.log"))).expect("sipp log");
    let (cp, mp) = sipp_aux_ports(name);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns, "sipp", "-sf", scenario])
        .args(["-i", ip, "-p", &port.to_string()])
        .args(["-cp", &cp.to_string(), "-mp", &mp.to_string()])
        .args(["-nostdin", "-timeout_error", "-trace_msg", "-message_file"])
        .arg(&messages)
        .args(["-trace_err", "-error_file"])
        .arg(&errors)
        .args(extra)
        .args(remote.as_deref())
        .current_dir(&dir.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    Sipp {
        proc: Proc::spawn(&format!("sipp {name}"), &mut cmd),
        messages,
    }
}

/// Kamailio as the registrar on the edge (`tests/nat/registrar.cfg`),
/// in the foreground; SIGTERM on drop so it takes its children with it,
/// SIGKILL if it lingers.
struct Kamailio {
    proc: Proc,
}

impl Kamailio {
    fn start(dir: &TempDir, netns: &str) -> Kamailio {
        let log = fs::File::create(dir.file("kamailio.log")).expect("kamailio log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, "kamailio", "-DD", "-E"])
            .args(["-f", &nat_dir_file("registrar.cfg")])
            .args(["-A", &format!("NAT_LISTEN=udp:{EDGE_IP}:{REGISTRAR_PORT}")])
            .args(["-m", "32", "-M", "4", "-w"])
            .arg(&dir.path)
            .current_dir(&dir.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let mut k = Kamailio {
            proc: Proc::spawn("kamailio", &mut cmd),
        };
        await_udp(&mut k.proc, REGISTRAR_PORT);
        k
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.proc.signal(libc::SIGTERM);
        if self.proc.wait_timeout(Duration::from_secs(3)).is_none() {
            self.proc.kill();
        }
    }
}

// --------------------------------------------------------------- namespaces

static NEXT_TOPOLOGY: AtomicU32 = AtomicU32::new(0);
const NETNS_PREFIX: &str = "sfnat-";

/// The three namespaces, wired and configured; all of them deleted on drop
/// (after killing, by PID, any process still in them: only this test
/// starts processes there).
struct Topology {
    phone: String,
    router: String,
    edge: String,
    created: Vec<String>,
}

fn run(prog: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{prog} {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{prog} {} exited {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip ARGS`, panicking with its error.
fn ip(args: &[&str]) {
    if let Err(e) = run("ip", args) {
        panic!("{e}");
    }
}

/// `ip netns exec NS ARGS`, panicking with its error; its stdout.
fn in_ns(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    run("ip", &all).unwrap_or_else(|e| panic!("{e}"))
}

/// Kills (SIGKILL, by PID) the processes left in `ns` and deletes it.
fn remove_netns(ns: &str) {
    if let Ok(pids) = run("ip", &["netns", "pids", ns]) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill(2) on a process in a namespace this test made.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    let _ = run("ip", &["netns", "del", ns]);
}

/// Deletes `sfnat-PID-...` namespaces whose test process is gone (a run
/// that was SIGKILLed could not clean up).
fn sweep_stale_namespaces() {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = ns
            .strip_prefix(NETNS_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            remove_netns(ns);
        }
    }
}

impl Topology {
    /// Builds phone, router and edge; None (after [`skip`], which fails in
    /// CI) when namespaces cannot be made here.
    fn new() -> Option<Topology> {
        sweep_stale_namespaces();
        let n = NEXT_TOPOLOGY.fetch_add(1, Ordering::Relaxed);
        let base = format!("{NETNS_PREFIX}{}-{n}", std::process::id());
        let mut t = Topology {
            phone: format!("{base}-phone"),
            router: format!("{base}-router"),
            edge: format!("{base}-edge"),
            created: Vec::new(),
        };
        for ns in [t.phone.clone(), t.router.clone(), t.edge.clone()] {
            if let Err(e) = run("ip", &["netns", "add", &ns]) {
                skip(&format!("cannot create network namespaces here: {e}"));
                return None;
            }
            t.created.push(ns);
        }
        t.wire();
        Some(t)
    }

    fn wire(&self) {
        let (p, r, e) = (&self.phone, &self.router, &self.edge);
        // Veth pairs made directly inside the namespaces: no name in the
        // host's namespace, so parallel runs never collide.
        ip(&[
            "link", "add", "name", "lan0", "netns", p, "type", "veth", "peer", "name", "lan1",
            "netns", r,
        ]);
        ip(&[
            "link", "add", "name", "wan0", "netns", r, "type", "veth", "peer", "name", "wan1",
            "netns", e,
        ]);
        for (ns, dev, addr) in [
            (p, "lan0", format!("{PHONE_IP}/24")),
            (r, "lan1", format!("{ROUTER_PRIVATE_IP}/24")),
            (r, "wan0", format!("{ROUTER_PUBLIC_IP}/24")),
            (e, "wan1", format!("{EDGE_IP}/24")),
        ] {
            ip(&["-n", ns, "addr", "add", &addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        for ns in [p, r, e] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        // The phone's only way out is the router; the edge has no route to
        // the private network at all.
        ip(&["-n", p, "route", "add", "default", "via", ROUTER_PRIVATE_IP]);
        in_ns(r, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        in_ns(
            r,
            &[
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "wan0",
                "-j",
                "MASQUERADE",
            ],
        );
        // Conntrack is per namespace; its sysctls appear once the NAT rule
        // loaded it.
        let t = NAT_UDP_TIMEOUT_S.to_string();
        for key in [
            "net.netfilter.nf_conntrack_udp_timeout",
            "net.netfilter.nf_conntrack_udp_timeout_stream",
        ] {
            if let Err(e) = run(
                "ip",
                &["netns", "exec", r, "sysctl", "-qw", &format!("{key}={t}")],
            ) {
                panic!(
                    "cannot set {key} in the router namespace (is nf_conntrack available?): {e}"
                );
            }
            let now = in_ns(r, &["sysctl", "-n", key]);
            assert_eq!(now.trim(), t, "{key} in the router namespace");
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            remove_netns(ns);
        }
    }
}
