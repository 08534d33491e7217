//! relaybench: load for an RTP relay, and the floor it is compared with.
//!
//! `relaybench gen`: sets up `--sessions` calls on a relay over the ng
//! protocol (offer from the caller's socket, answer from the callee's, as
//! Kamailio's rtpengine module would), then plays RTP both ways, `--rate`
//! packets per second per stream, from one UDP socket per party, and counts
//! what comes back out of the relay. Sends go out evenly spread over 20 ms
//! (one group of sessions per millisecond, as 20 ms packetisation would), each
//! party's packets of a slot in one `sendmmsg`; receives are `recvmmsg` per
//! ready socket under epoll. Each packet carries the millisecond slot it was
//! sent in, so a measurement window counts exactly the packets sent in it and
//! those of them that arrived (after a drain), whatever the relay's latency.
//! The relay's CPU is utime+stime of `--pid` from /proc over the same window.
//! One JSON line per rate on stdout.
//!
//! `relaybench floor`: the cheapest possible relay to compare with: fixed
//! socket pairs, recvmmsg on one side, sendmmsg from the other to the source
//! of that side's last packet, no control protocol, no session table. It
//! writes its port pairs to `--map`, which `gen --relay floor:MAP` reads
//! instead of asking over ng.
//!
//! Bounded: every run stops by itself (`--measure`, `--max-seconds`).

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sipfront_io::{RecvBatch, SendBatch};

mod ng;

/// Slot length: the generator's clock tick.
const SLOT: Duration = Duration::from_millis(1);
/// Slots per packetisation interval: each stream sends once per 20 slots at 50 pps.
const GROUPS: u64 = 20;
/// RTP header + 20 ms of PCMA.
const PKT_LEN: usize = 12 + 160;
/// Messages per recvmmsg/sendmmsg call.
const BATCH: usize = 64;
/// Receive (and send) buffer per datagram.
const BUF_LEN: usize = 2048;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let res = match argv.first().map(String::as_str) {
        Some("gen") => gen(&Args::parse(&argv[1..])),
        Some("floor") => floor(&Args::parse(&argv[1..])),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = res {
        eprintln!("relaybench: {e}");
        std::process::exit(1);
    }
}

const USAGE: &str = "usage:
  relaybench gen --relay ng:IP:PORT|floor:MAPFILE --sessions N --rates R[,R...]
                 [--warmup S] [--measure S] [--pid PID] [--party-ip IP] [--party-base PORT]
                 [--stop-loss FRACTION] [--retries N] [--label TEXT]
  relaybench floor --ports LOW-HIGH --sessions N --map FILE [--ip IP]
                 [--max-seconds S]";

/// `--key value` pairs.
struct Args(HashMap<String, String>);

impl Args {
    fn parse(v: &[String]) -> Args {
        let mut m = HashMap::new();
        let mut it = v.iter();
        while let Some(k) = it.next() {
            let Some(k) = k.strip_prefix("--") else {
                eprintln!("unexpected argument {k}\n{USAGE}");
                std::process::exit(2);
            };
            let val = it.next().cloned().unwrap_or_default();
            m.insert(k.to_string(), val);
        }
        Args(m)
    }
    fn get(&self, k: &str, default: &str) -> String {
        self.0
            .get(k)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }
    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> T {
        match self.0.get(k) {
            Some(v) => v.parse().unwrap_or_else(|_| {
                eprintln!("--{k}: not a number: {v}");
                std::process::exit(2);
            }),
            None => default,
        }
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

fn bind(ip: Ipv4Addr, port: u16) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind(SocketAddrV4::new(ip, port))
        .map_err(|e| bad(format!("bind {ip}:{port}: {e}")))?;
    s.set_nonblocking(true)?;
    // Bursts of a whole slot land at once: room for them, so the generator's
    // own queue never drops what the relay delivered.
    let sz: libc::c_int = 1 << 20;
    // SAFETY: setsockopt with a valid fd and a c_int option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &sz as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    Ok(s)
}

struct Epoll(i32);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll(fd))
    }
    fn add(&self, fd: i32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: valid epoll fd and event.
        if unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    fn wait(&self, evs: &mut [libc::epoll_event], timeout_ms: i32) -> usize {
        // SAFETY: evs is a valid buffer of its length.
        let n = unsafe { libc::epoll_wait(self.0, evs.as_mut_ptr(), evs.len() as i32, timeout_ms) };
        if n < 0 {
            0
        } else {
            n as usize
        }
    }
}

/// utime+stime of a process, all threads, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that closes the command name: state is field 3,
    // utime field 14, stime field 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((ut + st) / hz)
}

/// UDP receive-buffer drops, machine-wide (/proc/net/snmp), to tell a relay's
/// loss from sockets that overflowed.
fn udp_rcvbuf_errors() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/net/snmp") else {
        return 0;
    };
    let mut lines = s.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(h), Some(v)) = (lines.next(), lines.next()) else {
        return 0;
    };
    let idx = h.split_whitespace().position(|x| x == "RcvbufErrors");
    idx.and_then(|i| v.split_whitespace().nth(i)?.parse().ok())
        .unwrap_or(0)
}

/// The caller's and callee's sockets of session `i`: ephemeral ports, or
/// base+2i and base+2i+1.
fn party_pair(ip: Ipv4Addr, base: u16, i: usize) -> io::Result<(UdpSocket, UdpSocket)> {
    if base == 0 {
        return Ok((bind(ip, 0)?, bind(ip, 0)?));
    }
    let p = base + 2 * i as u16;
    Ok((bind(ip, p)?, bind(ip, p + 1)?))
}

/// One call as the generator sees it: the two parties' sockets and where each
/// must send so that the relay forwards to the other.
struct Call {
    caller: UdpSocket,
    callee: UdpSocket,
    caller_dst: SocketAddr,
    callee_dst: SocketAddr,
}

fn gen(a: &Args) -> io::Result<()> {
    let relay = a.get("relay", "");
    let sessions: usize = a.num("sessions", 200);
    let rates: Vec<u32> = a
        .get("rates", "50")
        .split(',')
        .map(|r| r.parse().map_err(|_| bad(format!("bad rate {r}"))))
        .collect::<io::Result<_>>()?;
    let warmup: f64 = a.num("warmup", 2.0);
    let measure: f64 = a.num("measure", 10.0);
    let pid: u32 = a.num("pid", 0);
    let party_ip: Ipv4Addr = a.num("party-ip", Ipv4Addr::LOCALHOST);
    // 0: ephemeral party ports (nothing to collide with on a shared machine).
    let party_base: u16 = a.num("party-base", 0);
    let stop_loss: f64 = a.num("stop-loss", 1.0);
    let retries: u32 = a.num("retries", 0);
    let label = a.get("label", &relay);
    if sessions == 0 || (party_base > 0 && usize::from(party_base) + 2 * sessions > 65535) {
        return Err(bad("bad --sessions / --party-base"));
    }

    let t_setup = Instant::now();
    let mut calls = Vec::with_capacity(sessions);
    if let Some(ng_addr) = relay.strip_prefix("ng:") {
        let mut client = ng::Client::new(ng_addr.parse().map_err(|_| bad("bad ng address"))?)?;
        let run = std::process::id();
        for i in 0..sessions {
            let (caller, callee) = party_pair(party_ip, party_base, i)?;
            let cp = caller.local_addr()?.port();
            let ep = callee.local_addr()?.port();
            let call_id = format!("relaybench-{run}-{i}");
            let (ft, tt) = (format!("caller{i}"), format!("callee{i}"));
            // The offer's rewritten SDP goes to the callee: where it must send.
            let to_callee = client.offer_answer("offer", &call_id, &ft, None, party_ip, cp)?;
            let to_caller =
                client.offer_answer("answer", &call_id, &ft, Some(&tt), party_ip, ep)?;
            calls.push(Call {
                caller,
                callee,
                caller_dst: to_caller.into(),
                callee_dst: to_callee.into(),
            });
        }
    } else if let Some(map) = relay.strip_prefix("floor:") {
        // The floor's port pairs, one "caller-side callee-side" line a session.
        let ip: Ipv4Addr = a.num("floor-ip", Ipv4Addr::LOCALHOST);
        let text = std::fs::read_to_string(map).map_err(|e| bad(format!("{map}: {e}")))?;
        let pairs: Vec<(u16, u16)> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace().map(str::parse::<u16>);
                Some((f.next()?.ok()?, f.next()?.ok()?))
            })
            .collect();
        if pairs.len() < sessions {
            return Err(bad(format!(
                "{map}: {} port pairs for {sessions} sessions",
                pairs.len()
            )));
        }
        for (i, &(pa, pb)) in pairs.iter().take(sessions).enumerate() {
            let (caller, callee) = party_pair(party_ip, party_base, i)?;
            calls.push(Call {
                caller,
                callee,
                caller_dst: SocketAddrV4::new(ip, pa).into(),
                callee_dst: SocketAddrV4::new(ip, pb).into(),
            });
        }
    } else {
        return Err(bad("--relay ng:IP:PORT or floor:MAPFILE"));
    }
    let setup_s = t_setup.elapsed().as_secs_f64();

    let ep = Epoll::new()?;
    for (i, c) in calls.iter().enumerate() {
        // token: stream that arrives there = 2i (caller->callee) or 2i+1 (callee->caller)
        ep.add(c.callee.as_raw_fd(), 2 * i as u64)?;
        ep.add(c.caller.as_raw_fd(), 2 * i as u64 + 1)?;
    }
    let mut rx = RecvBatch::new(BATCH, BUF_LEN);
    let mut tx = SendBatch::with_buffer_capacity(BATCH, BUF_LEN);
    let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut slot: u64 = 0; // next slot to send
    let mut seq: u16 = 0;

    // A step that lost packets or where the generator itself fell behind
    // (a stall of this shared machine, not the relay) is run again, up to
    // --retries times; every attempt is printed, and the steps stop when the
    // best attempt still lost more than --stop-loss.
    let mut plan: Vec<(usize, u32)> = rates.iter().copied().enumerate().collect();
    plan.reverse();
    let mut attempt = 0u32;
    while let Some((ri, rate)) = plan.pop() {
        let warm_slots = (warmup * 1000.0) as u64;
        let meas_slots = (measure * 1000.0) as u64;
        let w0 = slot + warm_slots;
        let w1 = w0 + meas_slots;
        let mut sent_win: u64 = 0;
        let mut recv_win: u64 = 0;
        let mut recv_wrong: u64 = 0;
        let mut max_late = Duration::ZERO;
        let mut cpu0 = None;
        let mut gen_cpu0 = 0.0;
        let mut errs0 = 0;
        // Each rate keeps its own clock: the drain of the previous one must
        // not count as lateness.
        let start = Instant::now();
        let slot0 = slot;
        let mut t_w0 = start;
        // The drain runs 300 ms past the window's last send as it really
        // happened: after a stall the last slots go out late, in a burst.
        let mut last_send = start;
        loop {
            let now = Instant::now();
            let due = start + SLOT * (slot - slot0) as u32;
            if slot < w1 && now >= due {
                max_late = max_late.max(now - due);
                if slot == w0 {
                    cpu0 = if pid > 0 { cpu_seconds(pid) } else { Some(0.0) };
                    gen_cpu0 = cpu_seconds(std::process::id()).unwrap_or(0.0);
                    errs0 = udp_rcvbuf_errors();
                    t_w0 = now;
                }
                let g = slot % GROUPS;
                // Packets per stream in this 20 ms period: rate/50, the
                // fraction carried from period to period.
                let period = slot / GROUPS;
                let r = u64::from(rate);
                let owed = ((period + 1) * r / 50 - period * r / 50) as usize;
                let owed = owed.min(BATCH);
                for (i, c) in calls
                    .iter()
                    .enumerate()
                    .skip(g as usize)
                    .step_by(GROUPS as usize)
                {
                    for (dir, sock, dst) in [
                        (0u32, &c.caller, &c.caller_dst),
                        (1, &c.callee, &c.callee_dst),
                    ] {
                        let stream = 2 * i as u32 + dir;
                        for _ in 0..owed {
                            let b = tx.slot();
                            b.resize(PKT_LEN, 0);
                            b[0] = 0x80;
                            b[1] = 8;
                            b[2..4].copy_from_slice(&seq.to_be_bytes());
                            b[4..8].copy_from_slice(&((slot as u32).wrapping_mul(8)).to_be_bytes());
                            b[8..12].copy_from_slice(&stream.to_be_bytes());
                            b[12..20].copy_from_slice(&slot.to_be_bytes());
                            b[20..24].copy_from_slice(&stream.to_be_bytes());
                            seq = seq.wrapping_add(1);
                            tx.commit(*dst);
                        }
                        // A full queue or an error loses the packets, as
                        // on a real network.
                        let n = tx.flush(sock.as_raw_fd()).sent;
                        if slot >= w0 {
                            sent_win += n as u64;
                        }
                    }
                }
                slot += 1;
                last_send = Instant::now();
                // No `continue`: even behind schedule, read what has arrived
                // (epoll with timeout 0 below), or the sockets overflow.
            }
            if slot >= w1 && now >= last_send + Duration::from_millis(300) {
                break;
            }
            if STOP.load(Ordering::Relaxed) {
                return Err(bad("stopped"));
            }
            let next_due = start + SLOT * (slot - slot0) as u32;
            let wait_ms = if slot >= w1 {
                5
            } else if next_due > Instant::now() {
                1
            } else {
                0
            };
            let n = ep.wait(&mut evs, wait_ms);
            for ev in &evs[..n] {
                let token = ev.u64;
                let call = &calls[(token / 2) as usize];
                let sock = if token % 2 == 0 {
                    &call.callee
                } else {
                    &call.caller
                };
                loop {
                    let got = rx.recv(sock.as_raw_fd()).unwrap_or(0);
                    for k in 0..got {
                        let (b, _) = rx.datagram(k);
                        if b.len() < 24 {
                            recv_wrong += 1;
                            continue;
                        }
                        let s = u64::from_be_bytes(b[12..20].try_into().unwrap_or_default());
                        let stream = u32::from_be_bytes(b[20..24].try_into().unwrap_or_default());
                        if u64::from(stream) != token {
                            recv_wrong += 1;
                        } else if s >= w0 && s < w1 {
                            recv_win += 1;
                        }
                    }
                    if got < BATCH {
                        break;
                    }
                }
            }
        }
        // CPU over the sending window plus the drain (the relay's work for the
        // window's last packets happens there; it is idle otherwise).
        let t_w1 = Instant::now();
        let cpu1 = if pid > 0 { cpu_seconds(pid) } else { Some(0.0) };
        let gen_cpu1 = cpu_seconds(std::process::id()).unwrap_or(0.0);
        let errs1 = udp_rcvbuf_errors();
        let cpu = match (cpu0, cpu1) {
            (Some(a), Some(b)) => b - a,
            _ => {
                return Err(bad(format!(
                    "cannot read /proc/{pid}/stat: the relay died?"
                )))
            }
        };
        let loss = if sent_win > 0 {
            1.0 - recv_win as f64 / sent_win as f64
        } else {
            1.0
        };
        let wall = (t_w1 - t_w0).as_secs_f64();
        let per_m = if recv_win > 0 {
            cpu / (recv_win as f64 / 1e6)
        } else {
            0.0
        };
        println!(
            "{{\"label\":\"{label}\",\"attempt\":{attempt},\"sessions\":{sessions},\"rate\":{rate},\"offered_pps\":{},\"sent\":{sent_win},\"relayed\":{recv_win},\"wrong\":{recv_wrong},\"loss\":{loss:.6},\"cpu_s\":{cpu:.3},\"cpu_s_per_mpkt\":{per_m:.3},\"window_s\":{wall:.3},\"gen_cpu_s\":{:.3},\"gen_max_late_ms\":{:.1},\"udp_rcvbuf_errors\":{},\"setup_s\":{setup_s:.3}}}",
            2 * sessions as u64 * u64::from(rate),
            gen_cpu1 - gen_cpu0,
            max_late.as_secs_f64() * 1e3,
            errs1.saturating_sub(errs0),
        );
        let stalled = max_late > Duration::from_millis(50);
        if (loss > stop_loss || stalled) && attempt < retries {
            attempt += 1;
            plan.push((ri, rate));
            continue;
        }
        attempt = 0;
        if loss > stop_loss && ri + 1 < rates.len() {
            eprintln!(
                "relaybench: loss {loss:.4} > {stop_loss} at {rate} pps/stream: stopping the steps"
            );
            break;
        }
    }
    Ok(())
}

fn floor(a: &Args) -> io::Result<()> {
    let ip: Ipv4Addr = a.num("ip", Ipv4Addr::LOCALHOST);
    let range = a.get("ports", "44000-47999");
    let (low, high) = range
        .split_once('-')
        .and_then(|(l, h)| Some((l.parse::<u16>().ok()?, h.parse::<u16>().ok()?)))
        .ok_or_else(|| bad("--ports LOW-HIGH"))?;
    let sessions: usize = a.num("sessions", 200);
    let map = a.get("map", "");
    let max_s: f64 = a.num("max-seconds", 600.0);
    // SAFETY: installing an async-signal-safe handler (one atomic store).
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    // socks[2i] receives the caller's packets and sends to the caller;
    // socks[2i+1] the callee's. Ports taken by someone else are skipped, as a
    // relay's allocator would; the pairs go to --map for the generator.
    let mut socks = Vec::with_capacity(2 * sessions);
    let mut port = low;
    while socks.len() < 2 * sessions {
        if port > high {
            return Err(bad(format!("not enough free ports in {range}")));
        }
        if let Ok(s) = bind(ip, port) {
            socks.push(s);
        }
        port += 1;
    }
    let mut lines = String::new();
    for pair in socks.chunks(2) {
        lines += &format!(
            "{} {}\n",
            pair[0].local_addr()?.port(),
            pair[1].local_addr()?.port()
        );
    }
    if !map.is_empty() {
        let tmp = format!("{map}.tmp");
        std::fs::write(&tmp, lines)?;
        std::fs::rename(&tmp, &map)?;
    }
    // The one piece of state: each side's peer, latched from the source of
    // its last packet (a relay must know where to send; this is the least).
    let mut peers: Vec<Option<SocketAddr>> = vec![None; socks.len()];
    let ep = Epoll::new()?;
    for (i, s) in socks.iter().enumerate() {
        ep.add(s.as_raw_fd(), i as u64)?;
    }
    eprintln!("relaybench floor ready");
    let mut rx = RecvBatch::new(BATCH, BUF_LEN);
    let mut tx = SendBatch::with_buffer_capacity(BATCH, BUF_LEN);
    let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let until = Instant::now() + Duration::from_secs_f64(max_s);
    while !STOP.load(Ordering::Relaxed) && Instant::now() < until {
        let n = ep.wait(&mut evs, 100);
        for ev in &evs[..n] {
            let i = ev.u64 as usize;
            let out = i ^ 1;
            loop {
                let got = rx.recv(socks[i].as_raw_fd()).unwrap_or(0);
                if got == 0 {
                    break;
                }
                if let Some(src) = rx.datagram(got - 1).1 {
                    peers[i] = Some(src);
                }
                if let Some(dst) = peers[out] {
                    // Receive buffers trade places with send slots: no copy.
                    for k in 0..got {
                        rx.take_into(k, tx.slot());
                        tx.commit(dst);
                    }
                    tx.flush(socks[out].as_raw_fd());
                }
                if got < BATCH {
                    break;
                }
            }
        }
    }
    Ok(())
}
