//! Whole-binary tests of `sipfront-rtpproxy`: listeners, the relay path,
//! re-INVITE re-latching, timeouts, SIGTERM and bind failures. Every socket
//! is on 127.0.0.1 in 50000-50999 (or ephemeral); each test has its own
//! block of ports so they run in parallel.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sipfront_rtpproxy::classic::{Command as CCmd, Reply, Tag, UlModifiers, UpdateLookup};
use sipfront_rtpproxy::client::Client;
use sipfront_rtpproxy::ng::{self, CommandKind};

struct Relay {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Relay {
    fn start(args: &[&str]) -> Relay {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sipfront-rtpproxy"))
            .args(args)
            .args(["--workers", "2", "--log-level", "info"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let r = Relay { child, lines: rx };
        r.wait_for("sipfront-rtpproxy ready");
        r
    }

    fn wait_for(&self, what: &str) -> String {
        loop {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no line with {what:?}"));
            if l.contains(what) {
                return l;
            }
        }
    }

    /// SIGTERM; returns the exit code and the final counters line.
    fn stop(mut self) -> (i32, String) {
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let line = self.wait_for("final counters");
        let status = self.child.wait().unwrap();
        (status.code().unwrap_or(-1), line)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sock() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn rtp(seq: u16) -> Vec<u8> {
    rtp_rs::RtpPacketBuilder::new()
        .payload_type(8)
        .sequence(seq.into())
        .timestamp(u32::from(seq) * 160)
        .ssrc(0x1234)
        .payload(&[0xd5; 160])
        .build()
        .unwrap()
}

fn recv(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut b = [0u8; 2048];
    s.recv_from(&mut b).ok().map(|(n, a)| (b[..n].to_vec(), a))
}

fn ul<'a>(
    cid: &'a [u8],
    addr: SocketAddr,
    from: &'a [u8],
    to: Option<&'a [u8]>,
) -> UpdateLookup<'a> {
    UpdateLookup {
        mods: UlModifiers::default(),
        call_id: cid,
        addr: Some(addr.ip()),
        port: addr.port(),
        from_tag: Tag {
            tag: from,
            media: Some(1),
        },
        to_tag: to.map(|t| Tag {
            tag: t,
            media: Some(1),
        }),
        notify: None,
    }
}

fn port_of(r: Reply) -> SocketAddr {
    match r {
        Reply::Port {
            port,
            addr: Some(a),
        } => SocketAddr::new(a, port),
        other => panic!("expected a port, got {other:?}"),
    }
}

// A classic call end to end: U/L over UDP, RTP both ways through the
// relay (the caller latched from its first packet), Q counts it, D ends
// it, SIGTERM exits 0 with the final counters.
#[test]
fn classic_call_relays_media() {
    let relay = Relay::start(&["--control", "udp:127.0.0.1:50010", "--ports", "50100-50199"]);
    let c = Client::new("127.0.0.1:50010".parse().unwrap()).unwrap();
    assert_eq!(c.classic(&CCmd::Version).unwrap(), Reply::Number(20040107));
    let (caller, callee) = (sock(), sock());
    let to_callee_side = port_of(
        c.classic(&CCmd::Update(ul(
            b"call-1",
            caller.local_addr().unwrap(),
            b"ft",
            None,
        )))
        .unwrap(),
    );
    let to_caller_side = port_of(
        c.classic(&CCmd::Lookup(ul(
            b"call-1",
            callee.local_addr().unwrap(),
            b"ft",
            Some(b"tt"),
        )))
        .unwrap(),
    );
    // The caller sends to the port it got in the 200 OK.
    for seq in 0..5 {
        caller.send_to(&rtp(seq), to_caller_side).unwrap();
        let (pkt, from) = recv(&callee).expect("callee gets the caller's RTP");
        assert_eq!(pkt, rtp(seq));
        assert_eq!(from, to_callee_side, "sent from the callee-facing port");
    }
    callee.send_to(&rtp(100), to_callee_side).unwrap();
    let (pkt, from) = recv(&caller).expect("caller gets the callee's RTP");
    assert_eq!((pkt, from), (rtp(100), to_caller_side));
    let q = CCmd::Query {
        verbose: true,
        call_id: b"call-1",
        from_tag: Tag {
            tag: b"ft",
            media: Some(1),
        },
        to_tag: Some(Tag {
            tag: b"tt",
            media: None,
        }),
        counters: Default::default(),
    };
    let Reply::Text(t) = c.classic(&q).unwrap() else {
        panic!()
    };
    assert!(
        t.contains("npkts_ina=5 npkts_ino=1 nrelayed=6 ndropped=0"),
        "{t}"
    );
    let d = CCmd::Delete {
        weak: false,
        call_id: b"call-1",
        from_tag: Tag {
            tag: b"ft",
            media: None,
        },
        to_tag: Some(Tag {
            tag: b"tt",
            media: None,
        }),
    };
    assert_eq!(c.classic(&d).unwrap(), Reply::Number(0));
    let (code, line) = relay.stop();
    assert_eq!(code, 0);
    assert!(
        line.contains("sessions_created=1") && line.contains("packets_relayed=6"),
        "{line}"
    );
}

fn offer_sdp(addr: SocketAddr) -> Vec<u8> {
    format!(
        "v=0\r\no=u 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {p} RTP/AVP 8\r\na=sendrecv\r\n",
        ip = addr.ip(),
        p = addr.port()
    )
    .into_bytes()
}

fn sdp_port(sdp: &[u8]) -> u16 {
    let s = std::str::from_utf8(sdp).unwrap();
    let m = s.lines().find(|l| l.starts_with("m=audio ")).unwrap();
    m.split(' ').nth(1).unwrap().parse().unwrap()
}

fn ng_call(
    c: &Client,
    cmd: CommandKind,
    cid: &[u8],
    to: Option<&[u8]>,
    sdp: &[u8],
    from: &[u8],
) -> u16 {
    let mut r = ng::Request::new(cmd);
    r.call_id = Some(cid);
    r.from_tag = Some(from);
    r.to_tag = to;
    r.sdp = Some(sdp);
    match c.ng(&r).unwrap() {
        ng::Reply::Ok { sdp: Some(s), .. } => sdp_port(&s),
        other => panic!("{other:?}"),
    }
}

// The most reported failure: one-way audio after a re-INVITE that moves a
// party. Here the callee moves to a new socket (new IP:port in its
// re-INVITE SDP); its packets from the new source are learned and the
// caller's media follows it. Without the re-INVITE a new source is dropped.
#[test]
fn ng_reinvite_relatches_moved_party() {
    let relay = Relay::start(&["--ng", "udp:127.0.0.1:50020", "--ports", "50200-50299"]);
    let c = Client::new("127.0.0.1:50020".parse().unwrap()).unwrap();
    assert!(c.ping().unwrap());
    let (caller, callee, moved) = (sock(), sock(), sock());
    let p_callee_side = ng_call(
        &c,
        CommandKind::Offer,
        b"c2",
        None,
        &offer_sdp(caller.local_addr().unwrap()),
        b"A",
    );
    let p_caller_side = ng_call(
        &c,
        CommandKind::Answer,
        b"c2",
        Some(b"B"),
        &offer_sdp(callee.local_addr().unwrap()),
        b"A",
    );
    let relay_ip = "127.0.0.1";
    let to_caller_side: SocketAddr = format!("{relay_ip}:{p_caller_side}").parse().unwrap();
    let to_callee_side: SocketAddr = format!("{relay_ip}:{p_callee_side}").parse().unwrap();
    callee.send_to(&rtp(1), to_callee_side).unwrap();
    assert!(recv(&caller).is_some());
    caller.send_to(&rtp(2), to_caller_side).unwrap();
    assert_eq!(recv(&callee).unwrap().0, rtp(2));
    // A stranger (or the moved callee before signalling) is dropped: latched.
    moved.send_to(&rtp(3), to_callee_side).unwrap();
    moved
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    caller
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(recv(&caller).is_none(), "unlatched source dropped");
    caller
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // Re-INVITE from the callee (from-tag B) with its new address.
    let p = ng_call(
        &c,
        CommandKind::Offer,
        b"c2",
        Some(b"A"),
        &offer_sdp(moved.local_addr().unwrap()),
        b"B",
    );
    assert_eq!(p, p_caller_side, "the caller keeps its port");
    // The caller's media goes to the new signalled address at once ...
    caller.send_to(&rtp(4), to_caller_side).unwrap();
    moved
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(recv(&moved).expect("media follows the move").0, rtp(4));
    // ... and the moved party's own packets are relayed.
    moved.send_to(&rtp(5), to_callee_side).unwrap();
    assert_eq!(recv(&caller).unwrap().0, rtp(5));
    let (code, line) = relay.stop();
    assert_eq!(code, 0);
    assert!(line.contains("dropped_wrong_source=1"), "{line}");
}

// An offer never answered is removed after --offer-timeout.
#[test]
fn offer_timeout_removes_session() {
    let relay = Relay::start(&[
        "--control",
        "udp:127.0.0.1:50030",
        "--ports",
        "50300-50399",
        "--offer-timeout",
        "1",
    ]);
    let c = Client::new("127.0.0.1:50030".parse().unwrap()).unwrap();
    port_of(
        c.classic(&CCmd::Update(ul(
            b"c3",
            "127.0.0.1:4000".parse().unwrap(),
            b"ft",
            None,
        )))
        .unwrap(),
    );
    let q = CCmd::Query {
        verbose: false,
        call_id: b"c3",
        from_tag: Tag {
            tag: b"ft",
            media: None,
        },
        to_tag: None,
        counters: Default::default(),
    };
    assert!(matches!(c.classic(&q).unwrap(), Reply::Text(_)));
    std::thread::sleep(Duration::from_millis(2600));
    assert_eq!(c.classic(&q).unwrap(), Reply::Error(50));
    let (code, line) = relay.stop();
    assert_eq!(code, 0);
    assert!(line.contains("offer_timeouts=1"), "{line}");
}

// A listener that cannot bind ends the process with a non-zero code and
// a message naming it.
#[test]
fn bind_failure_exits_nonzero() {
    let busy = UdpSocket::bind("127.0.0.1:50040").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sipfront-rtpproxy"))
        .args(["--ng", "udp:127.0.0.1:50040", "--ports", "50400-50499"])
        .output()
        .unwrap();
    drop(busy);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot bind ng listener udp:127.0.0.1:50040"),
        "{err}"
    );
}

// The classic protocol over a Unix stream socket: no cookie (§1.1).
#[test]
fn unix_control_socket() {
    let path = std::env::temp_dir().join(format!(
        "sipfront-rtpproxy-test-{}.sock",
        std::process::id()
    ));
    let arg = format!("unix:{}", path.display());
    let relay = Relay::start(&["--control", &arg, "--ports", "50500-50599"]);
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.write_all(b"U c4 127.0.0.1 4000 ft;1\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.ends_with(" 127.0.0.1\n") && out.starts_with("505"),
        "{out}"
    );
    // Kamailio's form: one write without a newline, then it waits for the
    // reply with the connection open; the answer must not wait for more.
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let t0 = std::time::Instant::now();
    s.write_all(b"VF 20050322").unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"1\n");
    assert!(
        t0.elapsed() < Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
    let (code, _) = relay.stop();
    assert_eq!(code, 0);
    assert!(!path.exists(), "socket file removed at exit");
}

/// The readiness line is part of the CLI contract: printed at any log
/// level, with the port the kernel picked for `:0`.
#[test]
fn ready_line_names_bound_ports_at_any_log_level() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipfront-rtpproxy"))
        .args(["--ng", "udp:127.0.0.1:0", "--ports", "50900-50949"])
        .args(["--workers", "1", "--log-level", "error"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("sipfront-rtpproxy ready"), "{line:?}");
    let port: u16 = line
        .split("ng udp:127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    assert_ne!(port, 0, "{line:?}");
}
