//! Shared by the relay's whole-binary tests (`interop.rs`, `latching.rs`):
//! which relay is under test, starting it and Kamailio/SIPp as children that
//! are always stopped (by PID, on drop), an ng/classic control client, and RTP
//! parties on plain UDP sockets.
//!
//! Each test runs against sipfront-rtpproxy and, as a reference, against
//! Debian's rtpengine: both speak the same protocols, and the same checks
//! passing against rtpengine show that they test real interop, not our own
//! reading of the protocols. A missing peer (kamailio, sipp, rtpengine, the
//! binary) fails the test when `CI` is set and skips it loudly otherwise.

#![allow(dead_code)] // each test binary uses its own part of it

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests of one binary run one at a time: fixed ports, two cores.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// A test that cannot run here: panics under CI, else prints a SKIP line.
pub fn skip(why: &str) {
    if in_ci() {
        panic!("{why}: required in CI (CI is set)");
    }
    eprintln!("SKIP: {why}");
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| fs::metadata(d.join(tool)).is_ok_and(|m| m.is_file()))
    })
}

/// Whether every tool is installed; otherwise fails (CI) or skips loudly.
pub fn require(tools: &[&str]) -> bool {
    for t in tools {
        if !on_path(t) {
            skip(&format!(
                "{t} not installed (apt-get install -y kamailio sip-tester rtpengine-daemon)"
            ));
            return false;
        }
    }
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sipfront,
    Rtpengine,
}

pub fn sipfront_bin() -> Option<&'static str> {
    option_env!("CARGO_BIN_EXE_sipfront-rtpproxy")
}

/// Whether the relay under test can run here (fails in CI if not).
pub fn require_relay(kind: Kind) -> bool {
    match kind {
        Kind::Rtpengine => require(&["rtpengine"]),
        Kind::Sipfront => {
            if sipfront_bin().is_some_and(|b| Path::new(b).exists()) {
                true
            } else {
                skip("the sipfront-rtpproxy binary is not built");
                false
            }
        }
    }
}

/// A scratch directory, removed on drop unless the test failed.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("sipfront-rtp-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process stopped on drop: SIGTERM, then SIGKILL after 3 s. By PID
/// only: other sessions run kamailio and sipp on this machine too.
pub struct Proc {
    pub name: String,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Proc {
        let f = fs::File::create(&log).expect("log file");
        let f2 = f.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(f))
            .stderr(Stdio::from(f2))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `text`; panics after `secs` or if the
    /// process exits first.
    pub fn wait_for_log(&mut self, text: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.output().contains(text) {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!(
                        "{} exited ({st}) before '{text}':\n{}",
                        self.name,
                        self.output()
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} did not log '{text}' in {secs} s:\n{}",
            self.name,
            self.output()
        );
    }

    /// Waits for the process to exit by itself; its exit status.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let c = self.child.as_mut().expect("running");
        loop {
            if let Some(st) = c.try_wait().expect("wait") {
                self.child = None;
                return st;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} still running after {secs} s:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status (SIGKILL after 3 s).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        c.wait().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Where the relay's control and media live in one test.
#[derive(Clone, Copy, Debug)]
pub struct RelayPorts {
    pub ng: u16,
    pub classic: u16,
    pub media_low: u16,
    pub media_high: u16,
}

impl RelayPorts {
    /// Control ports picked free now (ephemeral), media in the given range:
    /// other sessions on this machine run these tests too, so nothing fixed.
    pub fn pick(media_low: u16, media_high: u16) -> RelayPorts {
        RelayPorts {
            ng: ephemeral_port(),
            classic: ephemeral_port(),
            media_low,
            media_high,
        }
    }
}

/// A UDP port of 127.0.0.1 that was free a moment ago (the kernel's pick).
pub fn ephemeral_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// Scans `range` from a per-process offset for a port that binds; the bound
/// socket and its port.
fn scan(range: std::ops::RangeInclusive<u16>) -> (u16, UdpSocket) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let (lo, hi) = (u32::from(*range.start()), u32::from(*range.end()));
    let len = hi - lo + 1;
    let start = std::process::id().wrapping_mul(7919)
        + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 2;
    for i in 0..len {
        let port = (lo + (start + i) % len) as u16;
        if let Ok(s) = UdpSocket::bind(("127.0.0.1", port)) {
            return (port, s);
        }
    }
    panic!("no free UDP port in {lo}-{hi}");
}

/// A free port in `range` (released: a child process binds it).
pub fn free_port(range: std::ops::RangeInclusive<u16>) -> u16 {
    scan(range).0
}

/// Starts the relay under test with an ng and a classic UDP listener on
/// 127.0.0.1. `latch_immediately`: rtpengine learns endpoints only after 3 s
/// by default; the latching test wants it at the first packet, as
/// sipfront-rtpproxy does.
pub fn start_relay(dir: &TempDir, kind: Kind, p: RelayPorts, latch_immediately: bool) -> Proc {
    for port in [p.ng, p.classic] {
        assert!(
            UdpSocket::bind(("127.0.0.1", port)).is_ok(),
            "control port {port} was taken between picking and starting the relay"
        );
    }
    let mut relay = match kind {
        Kind::Sipfront => {
            let mut c = Command::new(sipfront_bin().expect("checked by require_relay"));
            c.args([
                "--ng",
                &format!("udp:127.0.0.1:{}", p.ng),
                "--control",
                &format!("udp:127.0.0.1:{}", p.classic),
                "--media-ip",
                "127.0.0.1",
                "--ports",
                &format!("{}-{}", p.media_low, p.media_high),
                "--workers",
                "1",
                "--latch",
                "auto",
                "--log-level",
                "debug",
            ]);
            let mut r = Proc::spawn("sipfront-rtpproxy", &mut c, dir.path("relay.log"));
            r.wait_for_log("sipfront-rtpproxy ready", 10);
            r
        }
        Kind::Rtpengine => {
            let mut c = Command::new("rtpengine");
            c.args([
                "-f",
                "-E",
                "--config-file=none",
                "--table=-1",
                "--interface=127.0.0.1",
                &format!("--listen-ng=127.0.0.1:{}", p.ng),
                &format!("--listen-udp=127.0.0.1:{}", p.classic),
                &format!("--port-min={}", p.media_low),
                &format!("--port-max={}", p.media_high),
                "--num-threads=1",
                "--log-level=6",
                &format!("--pidfile={}", dir.path("rtpengine.pid").display()),
            ]);
            if latch_immediately {
                c.arg("--endpoint-learning=immediate");
            }
            Proc::spawn("rtpengine", &mut c, dir.path("relay.log"))
        }
    };
    // Ready = it answers an ng ping (rtpengine prints no ready line).
    let mut ng = NgClient::new(p.ng);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if ng
            .try_request(b"d7:command4:pinge", Duration::from_millis(200))
            .is_some()
        {
            break;
        }
        if let Some(Ok(Some(st))) = relay.child.as_mut().map(|c| c.try_wait()) {
            panic!(
                "{} exited ({st}) at startup:\n{}",
                relay.name,
                relay.output()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} never answered ping:\n{}",
            relay.name,
            relay.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    relay
}

// --- bencode, for the ng client ---------------------------------------------

#[derive(Clone, Debug, PartialEq)]
pub enum B {
    Int(i64),
    Str(Vec<u8>),
    List(Vec<B>),
    Dict(Vec<(Vec<u8>, B)>),
}

impl B {
    pub fn s(v: &str) -> B {
        B::Str(v.as_bytes().to_vec())
    }
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            B::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            B::Str(s) => {
                out.extend_from_slice(format!("{}:", s.len()).as_bytes());
                out.extend_from_slice(s);
            }
            B::List(l) => {
                out.push(b'l');
                l.iter().for_each(|x| x.encode(out));
                out.push(b'e');
            }
            B::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    B::Str(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }
    pub fn decode(data: &[u8]) -> Option<(B, usize)> {
        match *data.first()? {
            b'i' => {
                let end = data.iter().position(|&b| b == b'e')?;
                Some((
                    B::Int(std::str::from_utf8(&data[1..end]).ok()?.parse().ok()?),
                    end + 1,
                ))
            }
            b'l' => {
                let mut i = 1;
                let mut l = Vec::new();
                while *data.get(i)? != b'e' {
                    let (v, n) = B::decode(&data[i..])?;
                    l.push(v);
                    i += n;
                }
                Some((B::List(l), i + 1))
            }
            b'd' => {
                let mut i = 1;
                let mut d = Vec::new();
                while *data.get(i)? != b'e' {
                    let (B::Str(k), n) = B::decode(&data[i..])? else {
                        return None;
                    };
                    i += n;
                    let (v, n) = B::decode(&data[i..])?;
                    i += n;
                    d.push((k, v));
                }
                Some((B::Dict(d), i + 1))
            }
            _ => {
                let colon = data.iter().position(|&b| b == b':')?;
                let n: usize = std::str::from_utf8(&data[..colon]).ok()?.parse().ok()?;
                let s = data.get(colon + 1..colon + 1 + n)?;
                Some((B::Str(s.to_vec()), colon + 1 + n))
            }
        }
    }
    pub fn get(&self, key: &str) -> Option<&B> {
        match self {
            B::Dict(d) => d.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn str(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            B::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
}

pub fn dict(items: Vec<(&str, B)>) -> B {
    B::Dict(
        items
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

/// An ng control client on an ephemeral port of 127.0.0.1.
pub struct NgClient {
    sock: UdpSocket,
    relay: SocketAddr,
    seq: u32,
}

impl NgClient {
    pub fn new(port: u16) -> NgClient {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        NgClient {
            sock,
            relay: SocketAddr::from(([127, 0, 0, 1], port)),
            seq: 0,
        }
    }

    /// One request (cookie added here); the reply document, or None on timeout.
    pub fn try_request(&mut self, doc: &[u8], timeout: Duration) -> Option<Vec<u8>> {
        // Unique across clients and tests of this process: relays answer a
        // repeated cookie from their reply cache without executing it.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        self.seq = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cookie = format!("t{}_{}", std::process::id(), self.seq);
        let mut msg = format!("{cookie} ").into_bytes();
        msg.extend_from_slice(doc);
        self.sock.set_read_timeout(Some(timeout)).ok()?;
        self.sock.send_to(&msg, self.relay).ok()?;
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let n = self.sock.recv(&mut buf).ok()?;
            if let Some(rest) = buf[..n].strip_prefix(format!("{cookie} ").as_bytes()) {
                return Some(rest.to_vec());
            }
        }
        None
    }

    /// A request as a bencode dictionary; the decoded reply (panics on timeout).
    pub fn request(&mut self, doc: &B) -> B {
        let mut bytes = Vec::new();
        doc.encode(&mut bytes);
        for _ in 0..3 {
            if let Some(r) = self.try_request(&bytes, Duration::from_secs(1)) {
                return B::decode(&r)
                    .unwrap_or_else(|| panic!("undecodable reply {}", String::from_utf8_lossy(&r)))
                    .0;
            }
        }
        panic!("no reply to {}", String::from_utf8_lossy(&bytes));
    }
}

/// A one-stream PCMA SDP for a party at ip:port.
pub fn sdp(ip: Ipv4Addr, port: u16) -> String {
    format!(
        "v=0\r\no=- 1545997027 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=sendrecv\r\n"
    )
}

/// The first `c=IN IP4` address and `m=audio` port of an SDP.
pub fn sdp_media(sdp: &str) -> Option<SocketAddrV4> {
    let ip = sdp
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("c=IN IP4 "))?
        .trim()
        .parse()
        .ok()?;
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    Some(SocketAddrV4::new(ip, port))
}

// --- RTP parties ---------------------------------------------------------------

/// A party's media socket on a free port of `range`.
pub fn party(range: std::ops::RangeInclusive<u16>) -> UdpSocket {
    let (_, s) = scan(range);
    s.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    s
}

/// An RTP packet (PCMA) whose payload names the stream and sequence number.
pub fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(format!("stream {ssrc:08x} seq {seq:05}").as_bytes());
    p.resize(12 + 160, 0xd5); // PCMA silence
    p
}

/// What one party received: (source, bytes) in order.
pub fn drain(sock: &UdpSocket, for_ms: u64) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_millis(for_ms);
    while Instant::now() < deadline {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => got.push((from, buf[..n].to_vec())),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
    got
}

/// Sends `count` packets of stream `ssrc` from `from` to `to`, 5 ms apart,
/// while the receiver collects; asserts that every packet arrived at `rx`
/// byte-exact and from `relay_src` (symmetric: the port the receiver itself
/// sends to). Returns how many arrived.
pub fn stream_through(
    what: &str,
    from: &UdpSocket,
    to: SocketAddrV4,
    rx: &UdpSocket,
    relay_src: SocketAddrV4,
    ssrc: u32,
    count: u16,
) {
    let sent: Vec<Vec<u8>> = (0..count).map(|i| rtp(ssrc, i)).collect();
    for p in &sent {
        from.send_to(p, to).expect("send rtp");
        std::thread::sleep(Duration::from_millis(5));
    }
    let got = drain(rx, 300);
    let ours: Vec<_> = got
        .iter()
        .filter(|(_, p)| p.get(8..12) == Some(&ssrc.to_be_bytes()[..]))
        .collect();
    assert_eq!(
        ours.len(),
        sent.len(),
        "{what}: {} of {} RTP packets arrived through the relay (sent to {to}); all received: {:?}",
        ours.len(),
        sent.len(),
        got.iter().map(|(a, p)| (a, p.len())).collect::<Vec<_>>()
    );
    for (i, (src, p)) in ours.iter().enumerate() {
        assert_eq!(
            p, &sent[i],
            "{what}: packet {i} changed or reordered in the relay"
        );
        assert_eq!(
            *src,
            SocketAddr::V4(relay_src),
            "{what}: packet {i} came from {src}, not from the relay port the receiver sends to ({relay_src})"
        );
    }
}
