//! Helpers for the operations tests (`tests/ops.rs`): a port block in
//! 20000-29999, sipfront started with a config file and environment of the
//! test's choosing (its admin API on a port of the block), SIPp UAS
//! backends that answer OPTIONS (`-aa`), a UAC with a receive timeout, and
//! admin API calls through the library's own client.

use crate::common::{await_running, read_log, wait_until, Driver, Proc, TempDir};
use sipfront::admin::client::{self, Action};
use std::fs;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Layout of a block: sipfront on `base` (egress `base+1`, `base+2`),
/// admin TCP on `base+5`, backends on `base+10`, `+20`, `+30`, the UAC on
/// `base+40`, SIPp media/control ports from `base+50`/`base+80`.
pub struct OpsPorts {
    pub base: u16,
}

impl OpsPorts {
    /// A free block in 20000-29999 (UDP `base..base+90`, TCP `base+5`).
    pub fn for_test(name: &str) -> OpsPorts {
        OpsPorts {
            base: crate::common::free_block(name, 20_000, 90, Some(5)),
        }
    }
    pub fn listen(&self) -> u16 {
        self.base
    }
    pub fn admin(&self) -> u16 {
        self.base + 5
    }
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin())
    }
    pub fn backend(&self, i: u16) -> u16 {
        self.base + 10 * (i + 1)
    }
    pub fn uac(&self) -> u16 {
        self.base + 40
    }
    pub fn media(&self, i: u16) -> u16 {
        self.base + 50 + 6 * i
    }
    pub fn control(&self, i: u16) -> u16 {
        self.base + 80 + i
    }
}

impl Drop for OpsPorts {
    fn drop(&mut self) {
        crate::common::release_block(self.base);
    }
}

/// A running sipfront.
pub struct Front {
    pub proc: Proc,
    pub log: PathBuf,
    pub admin: String,
}

/// Starts sipfront on `driver` (`SIPFRONT_IO_DRIVER`) with `args` and
/// `env` (every other `SIPFRONT_*` variable removed) and waits until it
/// runs. None when io_uring is unavailable here (see
/// [`crate::common::await_running`]).
pub fn start_front(
    dir: &TempDir,
    args: &[String],
    env: &[(&str, String)],
    admin: String,
    driver: Driver,
) -> Option<Front> {
    let log = dir.file(&format!("sipfront-{}.log", fastrand_suffix()));
    let err = fs::File::create(&log).expect("create sipfront log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipfront"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SIPFRONT_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("SIPFRONT_IO_DRIVER", driver.as_str())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    let mut p = Proc::spawn("sipfront", &mut cmd);
    if !await_running(&mut p, &log, driver) {
        return None;
    }
    Some(Front {
        proc: p,
        log,
        admin,
    })
}

fn fastrand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

impl Front {
    pub fn log_text(&self) -> String {
        read_log(&self.log)
    }

    /// An admin API call: status and body.
    pub fn api(&self, a: &Action, token: Option<&str>) -> (u16, String) {
        client::call(&self.admin, token, a).unwrap_or_else(|e| panic!("admin API: {e}"))
    }

    pub fn metrics(&self) -> prometheus_parse::Scrape {
        let (status, body) = self.api(&Action::Metrics, None);
        assert_eq!(status, 200, "{body}");
        let lines = body.lines().map(|l| Ok(l.to_string()));
        prometheus_parse::Scrape::parse(lines).expect("the /metrics page parses")
    }

    /// The state of `uri` per `/backends`.
    pub fn state_of(&self, uri: &str) -> String {
        let (_, body) = self.api(&Action::Backends, None);
        let at = body
            .find(&format!("\"uri\":\"{uri}\""))
            .unwrap_or_else(|| panic!("{uri} not in {body}"));
        let rest = &body[at..];
        let s = rest.find("\"state\":\"").expect("state") + 9;
        rest[s..].split('"').next().unwrap_or("").to_string()
    }

    /// Polls until `uri` is in `state`; returns how long it took.
    pub fn wait_state(&self, uri: &str, state: &str, timeout: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        wait_until(timeout, || self.state_of(uri) == state).then(|| t0.elapsed())
    }
}

/// A metric sample's value: `name` with every label in `labels`, summed.
pub fn sample(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            _ => 0.0,
        })
        .sum()
}

fn sipp(dir: &TempDir, ports: &OpsPorts, instance: u16) -> Command {
    let mut cmd = Command::new("sipp");
    cmd.current_dir(&dir.path)
        .args(["-i", "127.0.0.1", "-nostdin"])
        .args(["-mp", &ports.media(instance).to_string()])
        .args(["-cp", &ports.control(instance).to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// A SIPp UAS on backend port `i` that also answers OPTIONS probes
/// (`-aa`), tracing messages to a file.
pub fn start_uas(dir: &TempDir, ports: &OpsPorts, i: u16, tag: &str) -> (Proc, PathBuf) {
    let port = ports.backend(i);
    let trace = dir.file(&format!("uas-{port}-{tag}.log"));
    let err = fs::File::create(dir.file(&format!("uas-{port}-{tag}.err"))).expect("uas log");
    let mut cmd = sipp(dir, ports, 1 + i);
    cmd.args(["-sn", "uas", "-aa", "-p", &port.to_string(), "-trace_msg"])
        .arg("-message_file")
        .arg(&trace)
        .stderr(err);
    let mut p = Proc::spawn(&format!("sipp uas :{port}"), &mut cmd);
    let up = wait_until(Duration::from_secs(5), || {
        p.try_status().is_some() || UdpSocket::bind(("127.0.0.1", port)).is_err()
    });
    assert!(
        p.try_status().is_none() && up,
        "sipp uas on {port} did not start"
    );
    (p, trace)
}

/// A SIPp UAC toward sipfront: `calls` at `rate`/s, each call `pause_ms`
/// long, giving up on a call after 4 s without an answer.
pub fn start_uac(
    dir: &TempDir,
    ports: &OpsPorts,
    rate: u32,
    calls: u32,
    pause_ms: u32,
) -> (Proc, PathBuf) {
    let stf = dir.file("uac-stats.csv");
    let err = fs::File::create(dir.file("uac-stderr.log")).expect("uac log");
    let limit = calls / rate.max(1) + 30;
    let mut cmd = sipp(dir, ports, 0);
    cmd.args(["-sn", "uac"])
        .arg(format!("127.0.0.1:{}", ports.listen()))
        .args(["-p", &ports.uac().to_string()])
        .args(["-r", &rate.to_string(), "-m", &calls.to_string()])
        .args(["-d", &pause_ms.to_string()])
        .args(["-recv_timeout", "4000"])
        .args(["-timeout", &format!("{limit}s"), "-timeout_error"])
        .args(["-trace_stat", "-fd", "1"])
        .arg("-stf")
        .arg(&stf)
        .args(["-trace_err", "-error_file"])
        .arg(dir.file("uac-errors.log"))
        .stderr(err);
    (Proc::spawn("sipp uac", &mut cmd), stf)
}

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// True when SIPp is missing here (the test then returns; in CI it fails).
pub fn skip_without_sipp() -> bool {
    !crate::common::require_tool("sipp")
}
