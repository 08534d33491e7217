//! Helpers for the integration tests: finding the external tools, picking
//! free ports, running the sipfront binary and SIPp as child processes that
//! are always cleaned up (Drop guards), and reading what they wrote (SIPp's
//! statistics CSV and message traces, sipfront's final counters).
//!
//! Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Serialises the tests that put SIPp load through sipfront: the machine has
/// two cores, and overlapping load runs would make each other time out.
pub static LOAD: Mutex<()> = Mutex::new(());

/// Takes the load lock, ignoring poisoning by an earlier failed test.
pub fn load_lock() -> std::sync::MutexGuard<'static, ()> {
    LOAD.lock().unwrap_or_else(|e| e.into_inner())
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// A test that cannot run here: fails under CI, else says so loudly.
/// Returns normally (so the caller can `return`) outside CI.
pub fn skip(why: &str) {
    if in_ci() {
        panic!("{why}: required in CI (CI is set)");
    }
    eprintln!();
    eprintln!("************************************************************");
    eprintln!("SKIPPED: {why}");
    eprintln!("************************************************************");
}

fn on_path(tool: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|d| {
        let p = d.join(tool);
        fs::metadata(&p).is_ok_and(|m| m.is_file())
    })
}

/// Whether `tool` (sipp, kamailio) is installed. When it is not: panics
/// with "SIPp required in CI" if `CI` is set, else prints
/// `SKIPPED: <tool> not installed` and returns false.
pub fn require_tool(tool: &str) -> bool {
    if on_path(tool) {
        return true;
    }
    if in_ci() {
        let name = if tool == "sipp" { "SIPp" } else { tool };
        panic!("{name} required in CI ({tool} not found on PATH)");
    }
    skip(&format!("{tool} not installed"));
    false
}

/// An I/O driver of sipfront.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    Portable,
    Uring,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Portable => "portable",
            Driver::Uring => "uring",
        }
    }
}

/// Ports a test may use: `base .. base + PORT_BLOCK_USED`, checked free when
/// handed out. Layout: sipfront listens on `base` (egress `base+1+w`),
/// backends on `base+10`, `base+20`, the UAC on `base+30`, the test's own
/// socket on `base+40`, SIPp media ports from `base+50`, SIPp control ports
/// from `base+70`.
#[derive(Debug)]
pub struct Ports {
    pub base: u16,
}

const PORT_FIRST: u16 = 30_000;
const PORT_BLOCKS: u16 = 100;
const PORT_BLOCK_SIZE: u16 = 100;
const PORT_BLOCK_USED: u16 = 80;

static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// The base of a block of `PORT_BLOCK_SIZE` ports in the 10000 ports from
/// `first` for the test `name`: the block number is derived from the name
/// (so runs are reproducible), moving on while one of the block's first
/// `used` UDP ports (or the TCP port at `tcp_at` in the block) cannot be
/// bound or another test of this process has the block.
pub fn free_block(name: &str, first: u16, used: u16, tcp_at: Option<u16>) -> u16 {
    // FNV-1a: stable across runs and Rust versions.
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let start = (h % u32::from(PORT_BLOCKS)) as u16;
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    for i in 0..PORT_BLOCKS {
        let base = first + ((start + i) % PORT_BLOCKS) * PORT_BLOCK_SIZE;
        if taken.contains(&base) {
            continue;
        }
        let udp_free = (base..base + used).all(|p| UdpSocket::bind(("0.0.0.0", p)).is_ok());
        let tcp_free =
            tcp_at.is_none_or(|o| std::net::TcpListener::bind(("127.0.0.1", base + o)).is_ok());
        if udp_free && tcp_free {
            taken.insert(base);
            return base;
        }
    }
    panic!("no free block of ports from {first}");
}

impl Ports {
    /// A block of free ports for the test `name` in 30000-39999 (see
    /// [`free_block`]).
    pub fn for_test(name: &str) -> Ports {
        Ports {
            base: free_block(name, PORT_FIRST, PORT_BLOCK_USED, None),
        }
    }
    pub fn listen(&self) -> u16 {
        self.base
    }
    pub fn backend(&self, i: u16) -> u16 {
        self.base + 10 * (i + 1)
    }
    pub fn uac(&self) -> u16 {
        self.base + 30
    }
    pub fn probe(&self) -> u16 {
        self.base + 40
    }
    /// SIPp instance `i` (0..=4): its RTP media port and control port.
    pub fn sipp_media(&self, i: u16) -> u16 {
        self.base + 50 + 4 * i
    }
    pub fn sipp_control(&self, i: u16) -> u16 {
        self.base + 70 + i
    }
}

/// Gives a block from [`free_block`] back.
pub fn release_block(base: u16) {
    if let Some(t) = TAKEN.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        t.remove(&base);
    }
}

impl Drop for Ports {
    fn drop(&mut self) {
        release_block(self.base);
    }
}

/// A scratch directory, removed when the test passes and kept (and named on
/// stderr) when it fails.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "sipfront-it-{}-{}-{nanos}",
            name.replace("::", "-"),
            std::process::id()
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A child process that is killed (SIGKILL, by its PID) and reaped when the
/// guard is dropped, whatever happened to the test.
pub struct Proc {
    pub name: String,
    child: Child,
    status: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            status: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to this process only (unless it has been reaped).
    pub fn signal(&mut self, sig: i32) {
        if self.try_status().is_none() {
            // SAFETY: kill(2) on the PID of our own unreaped child.
            unsafe {
                libc::kill(self.pid(), sig);
            }
        }
    }

    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to `timeout`, then kills; panics if it had to kill.
    pub fn wait_or_kill(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_timeout(timeout) {
            Some(s) => s,
            None => {
                self.kill();
                panic!("{} did not exit within {timeout:?}; killed", self.name);
            }
        }
    }

    pub fn kill(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// User + system CPU time so far, from /proc/PID/stat.
    pub fn cpu_time(&self) -> Duration {
        let stat =
            fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("read /proc/PID/stat");
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')').expect("stat has (comm)") + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_micros(ticks * 1_000_000 / hz)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` every 10 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether something holds UDP port `port` on 127.0.0.1.
pub fn udp_port_bound(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_err()
}

/// Whether a UDP socket on local port `port` exists in the network
/// namespace of the process `pid` (from `/proc/PID/net/udp`, which lists
/// that namespace's sockets).
pub fn udp_port_bound_in_netns_of(pid: i32, port: u16) -> bool {
    let Ok(table) = fs::read_to_string(format!("/proc/{pid}/net/udp")) else {
        return false;
    };
    let want = format!(":{port:04X}");
    table.lines().skip(1).any(|l| {
        l.split_whitespace()
            .nth(1)
            .is_some_and(|local| local.ends_with(&want))
    })
}

// ---------------------------------------------------------------- sipfront

/// Removes ANSI escape sequences (`ESC [ ... letter`) from a log.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// sipfront's stderr so far, without colour codes.
pub fn read_log(path: &Path) -> String {
    strip_ansi(&fs::read_to_string(path).unwrap_or_default())
}

/// A running sipfront, stderr captured to a file.
pub struct Sipfront {
    pub proc: Proc,
    pub log: PathBuf,
}

/// Starts `sipfront ARGS` and waits until it says it runs. Returns None when
/// the io_uring driver was asked for and is unavailable here (after
/// [`skip`], which fails in CI).
pub fn start_sipfront(dir: &TempDir, args: &[String], driver: Driver) -> Option<Sipfront> {
    start_sipfront_in(dir, args, driver, None)
}

/// [`start_sipfront`], inside the network namespace `netns` when given
/// (`ip netns exec NAME`, which execs: the PID is sipfront's own).
pub fn start_sipfront_in(
    dir: &TempDir,
    args: &[String],
    driver: Driver,
    netns: Option<&str>,
) -> Option<Sipfront> {
    let log = dir.file("sipfront.log");
    let err = fs::File::create(&log).expect("create sipfront log");
    let bin = env!("CARGO_BIN_EXE_sipfront");
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, bin]);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args)
        .args(["--io-driver", driver.as_str()])
        .env_remove("SIPFRONT_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SIPFRONT_") {
            cmd.env_remove(k);
        }
    }
    let mut p = Proc::spawn("sipfront", &mut cmd);
    if !await_running(&mut p, &log, driver) {
        return None;
    }
    Some(Sipfront { proc: p, log })
}

/// Waits (at most 10 s) until the sipfront `p`, logging to `log`, says it
/// runs, and checks it runs `driver`. Returns false when the io_uring
/// driver was asked for and is unavailable here (after [`skip`], which
/// fails in CI); panics when sipfront exits or does not start otherwise.
pub fn await_running(p: &mut Proc, log: &Path, driver: Driver) -> bool {
    let ready = wait_until(Duration::from_secs(10), || {
        p.try_status().is_some()
            || fs::read_to_string(log).is_ok_and(|s| s.contains("sipfront running"))
    });
    let text = read_log(log);
    if let Some(status) = p.try_status() {
        if driver == Driver::Uring && text.contains("io_uring") {
            skip(&format!(
                "io_uring is not available here (sipfront exited {status}): {}",
                text.trim()
            ));
            return false;
        }
        panic!("sipfront exited at startup ({status}):\n{text}");
    }
    assert!(
        ready,
        "sipfront did not report running within 10 s:\n{text}"
    );
    assert!(
        text.contains(&format!("driver=\"{}\"", driver.as_str()))
            || text.contains(&format!("\"driver\":\"{}\"", driver.as_str())),
        "sipfront does not run the {} driver:\n{text}",
        driver.as_str()
    );
    true
}

impl Sipfront {
    /// SIGTERM, wait (at most `timeout`) for exit 0, return the stderr log.
    pub fn stop(&mut self, timeout: Duration) -> String {
        self.proc.signal(libc::SIGTERM);
        let status = self.proc.wait_or_kill(timeout);
        let log = read_log(&self.log);
        assert!(
            status.success(),
            "sipfront exited with {status} after SIGTERM:\n{log}"
        );
        log
    }
}

/// The `final counters:` block of sipfront's log, `name value` lines.
pub fn final_counters(log: &str) -> BTreeMap<String, u64> {
    let mut lines = log.lines().skip_while(|l| !l.contains("final counters:"));
    assert!(
        lines.next().is_some(),
        "no `final counters:` in sipfront's log:\n{log}"
    );
    let mut out = BTreeMap::new();
    for l in lines {
        let mut it = l.split_whitespace();
        match (it.next(), it.next().map(str::parse::<u64>), it.next()) {
            (Some(name), Some(Ok(v)), None) => {
                out.insert(name.to_string(), v);
            }
            _ => break,
        }
    }
    assert!(
        out.contains_key("datagrams_in"),
        "final counters without datagrams_in:\n{log}"
    );
    out
}

pub fn counter(c: &BTreeMap<String, u64>, name: &str) -> u64 {
    c.get(name).copied().unwrap_or(0)
}

// -------------------------------------------------------------------- SIPp

fn sipp_cmd(dir: &TempDir, ports: &Ports, instance: u16) -> Command {
    let mut cmd = Command::new("sipp");
    cmd.current_dir(&dir.path)
        .args(["-i", "127.0.0.1", "-nostdin"])
        .args(["-mp", &ports.sipp_media(instance).to_string()])
        .args(["-cp", &ports.sipp_control(instance).to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// A SIPp `-sn uas` backend on `port`, tracing every message to a file.
pub struct Uas {
    pub proc: Proc,
    pub messages: PathBuf,
}

pub fn start_uas(dir: &TempDir, ports: &Ports, backend: u16) -> Uas {
    start_uas_with(dir, ports, backend, &["-sn", "uas"])
}

/// A SIPp backend on `ports.backend(backend)` running `scenario` (e.g.
/// `["-sn", "uas"]` or `["-sf", path]`, plus any other SIPp flags).
pub fn start_uas_with(dir: &TempDir, ports: &Ports, backend: u16, scenario: &[&str]) -> Uas {
    let port = ports.backend(backend);
    let messages = dir.file(&format!("uas-{port}-messages.log"));
    let err = fs::File::create(dir.file(&format!("uas-{port}-stderr.log"))).expect("uas log");
    let mut cmd = sipp_cmd(dir, ports, 1 + backend);
    cmd.args(scenario)
        .args(["-p", &port.to_string(), "-trace_msg"])
        .arg("-message_file")
        .arg(&messages)
        .stderr(err);
    let mut proc = Proc::spawn(&format!("sipp uas :{port}"), &mut cmd);
    let up = wait_until(Duration::from_secs(5), || {
        proc.try_status().is_some() || udp_port_bound(port)
    });
    if let Some(s) = proc.try_status() {
        panic!("sipp uas on {port} exited at startup: {s}");
    }
    assert!(up, "sipp uas did not bind 127.0.0.1:{port} within 5 s");
    Uas { proc, messages }
}

impl Uas {
    /// Stops SIPp (SIGTERM, SIGKILL after a grace period) and reads the
    /// requests it received. SIPp writes its message trace as it goes; a
    /// truncated trace shows up as missing calls in the callers' checks.
    pub fn stop_and_read(&mut self) -> Received {
        self.proc.signal(libc::SIGTERM);
        if self.proc.wait_timeout(Duration::from_secs(2)).is_none() {
            self.proc.kill();
        }
        let text = fs::read(&self.messages).unwrap_or_default();
        parse_received_requests(&String::from_utf8_lossy(&text))
    }
}

/// Requests a SIPp received: Call-ID → the methods seen for it.
#[derive(Debug, Default)]
pub struct Received {
    pub calls: HashMap<String, HashSet<String>>,
    /// Received INVITEs, retransmissions included.
    pub invites: usize,
    /// Requests received per method, retransmissions included.
    pub per_method: HashMap<String, usize>,
    /// Calls whose INVITE this SIPp answered 200.
    pub answered: HashSet<String>,
    /// Calls whose BYE this SIPp answered 200.
    pub bye_answered: HashSet<String>,
}

/// Reads a SIPp `-trace_msg` file: blocks that start with a dashed
/// separator line, then "UDP message received [N] bytes :" or "UDP message
/// sent (N bytes):", then the message.
pub fn parse_received_requests(text: &str) -> Received {
    let mut r = Received::default();
    for block in text.split("\n-----------------------------------------------") {
        let mut lines = block.lines().map(str::trim_end);
        // The rest of the separator line (timestamp), then the direction.
        let Some(dir) =
            lines.find(|l| l.contains("message received") || l.contains("message sent"))
        else {
            continue;
        };
        if dir.contains("message sent") {
            let mut lines = lines.skip_while(|l| l.is_empty());
            if lines.next().is_some_and(|s| s.starts_with("SIP/2.0 200")) {
                let mut call_id = None;
                let mut method = None;
                for l in lines.take_while(|l| !l.is_empty()) {
                    let Some((name, value)) = l.split_once(':') else {
                        continue;
                    };
                    let name = name.trim();
                    if name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i") {
                        call_id = Some(value.trim().to_string());
                    } else if name.eq_ignore_ascii_case("cseq") {
                        method = value.split_whitespace().nth(1).map(str::to_string);
                    }
                }
                match (call_id, method.as_deref()) {
                    (Some(c), Some("INVITE")) => {
                        r.answered.insert(c);
                    }
                    (Some(c), Some("BYE")) => {
                        r.bye_answered.insert(c);
                    }
                    _ => {}
                }
            }
            continue;
        }
        let mut lines = lines.skip_while(|l| l.is_empty());
        let Some(start) = lines.next() else { continue };
        if !start.ends_with("SIP/2.0") {
            continue; // a response
        }
        let method = start.split(' ').next().unwrap_or("").to_string();
        let call_id = lines.take_while(|l| !l.is_empty()).find_map(|l| {
            let (name, value) = l.split_once(':')?;
            let name = name.trim();
            (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
                .then(|| value.trim().to_string())
        });
        let Some(call_id) = call_id else { continue };
        if method == "INVITE" {
            r.invites += 1;
        }
        *r.per_method.entry(method.clone()).or_default() += 1;
        r.calls.entry(call_id).or_default().insert(method);
    }
    r
}

/// A SIPp `-sn uac` run's outcome.
pub struct UacRun {
    pub status: ExitStatus,
    pub stats: HashMap<String, String>,
    pub stat_header: String,
}

impl UacRun {
    pub fn get(&self, name: &str) -> u64 {
        let v = self
            .stats
            .get(name)
            .unwrap_or_else(|| panic!("no column {name} in SIPp stats: {}", self.stat_header));
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("column {name} is not a number: {v:?}"))
    }
}

/// Starts `sipp -sn uac` toward sipfront: `calls` calls at `rate`/s, each
/// with no pause. Statistics go to a CSV (`-trace_stat -stf`).
pub fn start_uac(dir: &TempDir, ports: &Ports, rate: u32, calls: u32) -> (Proc, PathBuf) {
    start_uac_with(dir, ports, rate, calls, &["-sn", "uac", "-d", "0"])
}

/// [`start_uac`] with another scenario (`["-sf", path]`) and flags.
pub fn start_uac_with(
    dir: &TempDir,
    ports: &Ports,
    rate: u32,
    calls: u32,
    scenario: &[&str],
) -> (Proc, PathBuf) {
    start_uac_to(dir, ports, ports.listen(), rate, calls, scenario)
}

/// [`start_uac_with`] toward 127.0.0.1:`target` instead of sipfront.
pub fn start_uac_to(
    dir: &TempDir,
    ports: &Ports,
    target: u16,
    rate: u32,
    calls: u32,
    scenario: &[&str],
) -> (Proc, PathBuf) {
    let stf = dir.file("uac-stats.csv");
    let err = fs::File::create(dir.file("uac-stderr.log")).expect("uac log");
    // Bounded: SIPp gives up after a global timeout well beyond the run.
    let limit = calls / rate.max(1) + 30;
    let mut cmd = sipp_cmd(dir, ports, 0);
    cmd.args(scenario)
        .arg(format!("127.0.0.1:{target}"))
        .args(["-p", &ports.uac().to_string()])
        .args(["-r", &rate.to_string(), "-m", &calls.to_string()])
        .args(["-timeout", &format!("{limit}s"), "-timeout_error"])
        .args(["-trace_stat", "-fd", "1"])
        .arg("-stf")
        .arg(&stf)
        .args(["-trace_err", "-error_file"])
        .arg(dir.file("uac-errors.log"))
        .stderr(err);
    (Proc::spawn("sipp uac", &mut cmd), stf)
}

/// Waits for a UAC started by [`start_uac`] and reads its last stats row.
pub fn finish_uac(mut uac: Proc, stf: &Path, timeout: Duration) -> UacRun {
    let status = uac.wait_or_kill(timeout);
    let csv = fs::read_to_string(stf)
        .unwrap_or_else(|e| panic!("no SIPp statistics file {}: {e}", stf.display()));
    let mut rows = csv.lines().filter(|l| !l.trim().is_empty());
    let header = rows.next().expect("SIPp stats header").to_string();
    let last = rows.next_back().expect("SIPp stats row");
    let stats = header
        .split(';')
        .zip(last.split(';'))
        .map(|(h, v)| (h.to_string(), v.to_string()))
        .collect();
    UacRun {
        status,
        stats,
        stat_header: header,
    }
}

/// Runs a UAC to completion (see [`start_uac`]).
pub fn run_uac(dir: &TempDir, ports: &Ports, rate: u32, calls: u32) -> UacRun {
    let (p, stf) = start_uac(dir, ports, rate, calls);
    finish_uac(
        p,
        &stf,
        Duration::from_secs(u64::from(calls / rate.max(1)) + 45),
    )
}

/// Asserts SIPp's UAC placed `calls` calls, all successful.
pub fn assert_all_calls_ok(run: &UacRun, calls: u64, dir: &TempDir) {
    let ok = run.get("SuccessfulCall(C)");
    let failed = run.get("FailedCall(C)");
    let errors = fs::read_to_string(dir.file("uac-errors.log")).unwrap_or_default();
    let errors: String = errors.lines().take(40).collect::<Vec<_>>().join("\n");
    assert!(
        run.status.success() && ok == calls && failed == 0,
        "SIPp uac: exit {}, SuccessfulCall {ok} (want {calls}), FailedCall {failed}; errors:\n{errors}",
        run.status
    );
}
