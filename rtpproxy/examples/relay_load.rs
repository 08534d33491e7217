//! A small load generator for a running relay: sets up `--calls` calls over
//! ng (offer + answer), then both parties of every call send 172-byte RTP
//! packets (PCMA, 20 ms) at `--pps` per party for `--secs` seconds, and it
//! reads the relay's CPU time from /proc/<pid>/task/*/schedstat before and
//! after. Prints packets sent/received and relay CPU ns per relayed packet.
//!
//! ```text
//! target/release/sipfront-rtpproxy --ng udp:127.0.0.1:50900 --ports 50000-50899 --workers 1 &
//! cargo run --release -p sipfront-rtpproxy --example relay_load -- \
//!     --ng 127.0.0.1:50900 --pid $! --calls 100 --pps 50 --secs 10
//! ```
//! Works against rtpengine too (`--pid` of rtpengine, userspace forwarding).
//! `--static BASE` skips the control protocol and sends to the fixed ports
//! of the `relay_floor` example (call i: BASE + 4i and BASE + 4i + 2).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use sipfront_rtpproxy::client::Client;
use sipfront_rtpproxy::ng::{self, CommandKind};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// CPU nanoseconds of every thread of `pid`.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn sdp(addr: SocketAddr) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {p} RTP/AVP 8\r\na=sendrecv\r\n",
        ip = addr.ip(),
        p = addr.port()
    )
    .into_bytes()
}

fn media_port(sdp: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(sdp).ok()?;
    s.lines()
        .find(|l| l.starts_with("m=audio "))?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

struct Party {
    sock: UdpSocket,
    to: SocketAddr,
    seq: u16,
}

fn main() {
    let server: SocketAddr = arg("--ng", "127.0.0.1:50900")
        .parse()
        .expect("--ng IP:PORT");
    let pid: u32 = arg("--pid", "0").parse().expect("--pid");
    let calls: usize = arg("--calls", "100").parse().expect("--calls");
    let pps: u64 = arg("--pps", "50").parse().expect("--pps");
    let secs: u64 = arg("--secs", "10").parse().expect("--secs");
    let static_base: Option<u16> = arg("--static", "").parse().ok();
    let client = Client::new(server).expect("client");
    let mut parties: Vec<Party> = Vec::with_capacity(calls * 2);
    if let Some(base) = static_base {
        for i in 0..calls as u16 {
            for k in 0..2 {
                let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
                sock.set_nonblocking(true).expect("nb");
                let to = SocketAddr::from(([127, 0, 0, 1], base + 4 * i + 2 * k));
                parties.push(Party { sock, to, seq: 0 });
            }
        }
    }
    for i in 0..calls {
        if static_base.is_some() {
            break;
        }
        let cid = format!("load-{}-{i}", std::process::id());
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut offer = ng::Request::new(CommandKind::Offer);
        offer.call_id = Some(cid.as_bytes());
        offer.from_tag = Some(b"a");
        let s = sdp(a.local_addr().expect("addr"));
        offer.sdp = Some(&s);
        let to_b = match client.ng(&offer).expect("offer") {
            ng::Reply::Ok { sdp: Some(s), .. } => media_port(&s).expect("port"),
            other => panic!("offer: {other:?}"),
        };
        let mut answer = ng::Request::new(CommandKind::Answer);
        answer.call_id = Some(cid.as_bytes());
        answer.from_tag = Some(b"a");
        answer.to_tag = Some(b"b");
        let s = sdp(b.local_addr().expect("addr"));
        answer.sdp = Some(&s);
        let to_a = match client.ng(&answer).expect("answer") {
            ng::Reply::Ok { sdp: Some(s), .. } => media_port(&s).expect("port"),
            other => panic!("answer: {other:?}"),
        };
        a.set_nonblocking(true).expect("nb");
        b.set_nonblocking(true).expect("nb");
        parties.push(Party {
            sock: a,
            to: SocketAddr::new(server.ip(), to_a),
            seq: 0,
        });
        parties.push(Party {
            sock: b,
            to: SocketAddr::new(server.ip(), to_b),
            seq: 0,
        });
    }
    let mut pkt = vec![0u8; 172];
    pkt[0] = 0x80;
    pkt[1] = 8;
    let tick = Duration::from_nanos(1_000_000_000 / pps.max(1));
    let (mut sent, mut recvd) = (0u64, 0u64);
    let mut buf = [0u8; 2048];
    let cpu0 = cpu_ns(pid);
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < Duration::from_secs(secs) {
        for (i, p) in parties.iter_mut().enumerate() {
            p.seq = p.seq.wrapping_add(1);
            pkt[2..4].copy_from_slice(&p.seq.to_be_bytes());
            pkt[4..8].copy_from_slice(&(u32::from(p.seq) * 160).to_be_bytes());
            pkt[8..12].copy_from_slice(&(i as u32).to_be_bytes());
            if p.sock.send_to(&pkt, p.to).is_ok() {
                sent += 1;
            }
        }
        for p in &parties {
            while p.sock.recv_from(&mut buf).is_ok() {
                recvd += 1;
            }
        }
        next += tick;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    for p in &parties {
        while p.sock.recv_from(&mut buf).is_ok() {
            recvd += 1;
        }
    }
    let cpu = cpu_ns(pid).saturating_sub(cpu0);
    let wall = start.elapsed().as_secs_f64();
    println!(
        "calls={calls} pps_per_party={pps} secs={wall:.1} sent={sent} received={recvd} loss={:.3}% relay_cpu_ms={:.1} relay_cpu_ns_per_packet={:.0} relay_cpu_share={:.1}%",
        100.0 * (sent.saturating_sub(recvd)) as f64 / sent.max(1) as f64,
        cpu as f64 / 1e6,
        cpu as f64 / recvd.max(1) as f64,
        100.0 * cpu as f64 / 1e9 / wall
    );
    for i in 0..calls {
        if static_base.is_some() {
            break;
        }
        let cid = format!("load-{}-{i}", std::process::id());
        let mut d = ng::Request::new(CommandKind::Delete);
        d.call_id = Some(cid.as_bytes());
        d.from_tag = Some(b"a");
        let _ = client.ng(&d);
    }
}
