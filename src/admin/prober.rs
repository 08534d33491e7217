//! Active probing from one place: a thread (never a worker) with its own
//! UDP socket sends a request (OPTIONS by default) to every destination
//! every `probe.interval_ms`, matches replies by the Via branch, and feeds
//! the results (and the workers' passive failure counts) to the
//! [`Monitor`]. A destination is probed whatever its state, so an inactive
//! one comes back by itself and an admin sees the probe state of a
//! disabled one.
//!
//! Detection time of a dead destination is bounded by the probe settings
//! alone: at most `interval_ms × down_threshold + timeout_ms` after its
//! last answer (plus one 10 ms tick).
//!
//! Replies come from the network: anything that does not parse, is not a
//! response, or names no probe in flight is ignored.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::monitor::{Inner, Monitor};
use crate::config::ProbeConfig;
use crate::dispatch::probe::Outcome;
use crate::dispatch::BackendId;
use crate::runtime::sockets;
use crate::sip::Message;

/// How long the thread waits for replies between looks at the schedule.
const TICK: Duration = Duration::from_millis(10);
/// How often a disabled prober looks whether a reload enabled it.
const IDLE: Duration = Duration::from_millis(200);

/// Starts the prober on a socket bound to `bind` (the first listen IP and
/// `probe.port`).
pub fn spawn(
    monitor: Arc<Monitor>,
    bind: SocketAddr,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let sock = UdpSocket::bind(bind)?;
    sock.set_read_timeout(Some(TICK))?;
    let local = sock.local_addr()?;
    tracing::info!(socket = %local, "prober ready");
    std::thread::Builder::new()
        .name("sipfront-probe".into())
        .spawn(move || {
            crate::runtime::block_signals();
            let mut p = Prober {
                sock,
                local,
                salt: fastrand::u32(..),
                seq: 0,
            };
            let mut buf = vec![0u8; 65_535];
            while !stop.load(Ordering::Relaxed) {
                if !monitor.lock().settings.enabled {
                    // Off (a reload may turn it on): stay nearly idle.
                    std::thread::sleep(IDLE);
                    continue;
                }
                p.receive(&monitor, &mut buf);
                p.tick(&monitor, Instant::now());
            }
        })
}

struct Prober {
    sock: UdpSocket,
    local: SocketAddr,
    salt: u32,
    seq: u64,
}

/// The branch of the probe to destination `id`: `z9hG4bK` (RFC 3261
/// §8.1.1.7), a per-process salt, the id and a sequence number.
fn branch(salt: u32, id: BackendId, seq: u64) -> String {
    format!("z9hG4bK-sfp{salt:08x}-{}-{seq}", id.0)
}

/// The destination id named by one of our branches.
fn branch_id(salt: u32, b: &str) -> Option<BackendId> {
    let rest = b.strip_prefix("z9hG4bK-sfp")?;
    let (s, rest) = rest.split_at_checked(8)?;
    if u32::from_str_radix(s, 16).ok()? != salt {
        return None;
    }
    let (id, _seq) = rest.strip_prefix('-')?.split_once('-')?;
    id.parse().ok().map(BackendId)
}

fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v) => v.to_string(),
        IpAddr::V6(v) => format!("[{v}]"),
    }
}

/// The probe request. The To is the destination URI, the Call-ID unique
/// per probe, the CSeq counting up per destination.
pub fn build_request(
    s: &ProbeConfig,
    uri: &str,
    via: SocketAddr,
    branch: &str,
    cseq: u32,
    tag: &str,
) -> String {
    format!(
        "{m} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {h}:{p};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <{from}>;tag={tag}\r\n\
         To: <{uri}>\r\n\
         Call-ID: {branch}@sipfront\r\n\
         CSeq: {cseq} {m}\r\n\
         User-Agent: sipfront/{v}\r\n\
         Content-Length: 0\r\n\r\n",
        m = s.method,
        h = host(via.ip()),
        p = via.port(),
        from = s.from,
        v = env!("CARGO_PKG_VERSION"),
    )
}

/// A reply: the branch it answers and its status code, if it is a
/// well-formed response.
pub fn parse_reply(data: &[u8]) -> Option<(String, u16)> {
    let m = Message::parse(data).ok()?;
    if m.is_request() {
        return None;
    }
    let code = m.status()?.as_u16();
    let via = m.top_via().ok()?;
    let b = std::str::from_utf8(via.branch?).ok()?;
    Some((b.to_string(), code))
}

impl Prober {
    fn receive(&mut self, monitor: &Monitor, buf: &mut [u8]) {
        // Bounded per tick, so a flood cannot starve the schedule.
        for _ in 0..1024 {
            let n = match self.sock.recv_from(buf) {
                Ok((n, _)) => n,
                Err(_) => return,
            };
            let Some((b, code)) = buf.get(..n).and_then(parse_reply) else {
                continue;
            };
            if code < 200 {
                continue;
            }
            let Some(id) = branch_id(self.salt, &b) else {
                continue;
            };
            let mut g = monitor.lock();
            let accepted = g.settings.reply_codes.iter().any(|r| r.matches(code));
            let ours = match g.entries.get_mut(id.0 as usize) {
                Some(Some(e)) if e.pending.as_ref().is_some_and(|(p, _)| *p == b) => {
                    e.pending = None;
                    true
                }
                _ => false,
            };
            if ours {
                let o = if accepted {
                    Outcome::Ok(code)
                } else {
                    Outcome::Rejected(code)
                };
                monitor.probe_result(&mut g, id, o);
            }
        }
    }

    fn tick(&mut self, monitor: &Monitor, now: Instant) {
        let mut guard = monitor.lock();
        let g: &mut Inner = &mut guard;
        if !g.settings.enabled {
            return;
        }
        let s = g.settings.clone();
        let timeout = Duration::from_millis(s.timeout_ms);
        let interval = Duration::from_millis(s.interval_ms);
        let mut results: Vec<(BackendId, Outcome)> = Vec::new();
        for (i, slot) in g.entries.iter_mut().enumerate() {
            let Some(e) = slot else { continue };
            let id = BackendId(i as u32);
            if let Some((_, sent)) = &e.pending {
                if now.duration_since(*sent) >= timeout {
                    e.pending = None;
                    results.push((id, Outcome::Timeout));
                }
            }
            let due = e.next_probe.is_none_or(|t| now >= t);
            if !due || e.pending.is_some() {
                continue;
            }
            // Spread the first probes over the interval; then keep the pace.
            e.next_probe = Some(match e.next_probe {
                None => now + interval.mul_f64(fastrand::f64() * 0.1),
                Some(t) if now.duration_since(t) > interval => now + interval,
                Some(t) => t + interval,
            });
            self.seq += 1;
            e.cseq = e.cseq.wrapping_add(1);
            let b = branch(self.salt, id, self.seq);
            let via = if self.local.ip().is_unspecified() {
                let ip = sockets::local_ip_toward(e.addr).unwrap_or(IpAddr::from([127, 0, 0, 1]));
                SocketAddr::new(ip, self.local.port())
            } else {
                self.local
            };
            let tag = format!("{:08x}", self.salt ^ (self.seq as u32));
            let req = build_request(&s, &e.uri, via, &b, e.cseq, &tag);
            match self.sock.send_to(req.as_bytes(), e.addr) {
                Ok(_) => e.pending = Some((b, now)),
                Err(err) => {
                    tracing::debug!(uri = %e.uri, error = %err, "probe not sent");
                    results.push((id, Outcome::SendError));
                }
            }
        }
        for (id, o) in results {
            monitor.probe_result(g, id, o);
        }
        monitor.check_passive(g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_round_trip_and_foreign_ones_are_refused() {
        let b = branch(0xdead_beef, BackendId(42), 7);
        assert!(b.starts_with("z9hG4bK"));
        assert_eq!(branch_id(0xdead_beef, &b), Some(BackendId(42)));
        assert_eq!(branch_id(0x1234_5678, &b), None);
        for bad in [
            "",
            "z9hG4bK",
            "z9hG4bK-sfp",
            "z9hG4bK-sfpdeadbeef",
            "z9hG4bK-sfpdeadbeef-",
            "z9hG4bK-sfpdeadbeef-x-1",
            "z9hG4bK-sfpdeadbeef-99999999999-1",
            "z9hG4bK-sfpdéadbeef-1-1",
        ] {
            assert_eq!(branch_id(0xdead_beef, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn request_parses_and_a_reply_to_it_is_matched() {
        let s = ProbeConfig::default();
        let b = branch(1, BackendId(0), 1);
        let via: SocketAddr = "127.0.0.1:5999".parse().unwrap();
        let req = build_request(&s, "sip:127.0.0.1:5070", via, &b, 3, "abc");
        let m = Message::parse(req.as_bytes()).expect("our request parses");
        assert_eq!(m.method(), Some(crate::sip::Method::Options));
        assert_eq!(m.cseq().unwrap().seq, 3);
        let reply = req
            .replacen("OPTIONS sip:127.0.0.1:5070 SIP/2.0", "SIP/2.0 200 OK", 1)
            .replace("Max-Forwards: 70\r\n", "");
        assert_eq!(parse_reply(reply.as_bytes()), Some((b.clone(), 200)));
        // A request is not a reply.
        assert_eq!(parse_reply(req.as_bytes()), None);
        let v6 = build_request(
            &s,
            "sip:[::1]:5070",
            "[::1]:5999".parse().unwrap(),
            &b,
            1,
            "t",
        );
        assert!(v6.contains("Via: SIP/2.0/UDP [::1]:5999;"));
    }

    #[test]
    fn garbage_replies_are_ignored() {
        for g in [
            &b""[..],
            b"\r\n\r\n",
            b"SIP/2.0 200 OK\r\n\r\n",
            b"SIP/2.0 999999 X\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\r\n",
            b"\xff\xfe\x00garbage",
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:a>;tag=1\r\nTo: <sip:b>\r\n\r\n",
        ] {
            assert_eq!(parse_reply(g), None, "{:?}", String::from_utf8_lossy(g));
        }
    }
}
