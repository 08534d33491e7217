//! Both control protocols over the [`SessionTable`], sans I/O: a request's
//! bytes, its source and `now` in; the reply's bytes and the workers'
//! [`Action`]s out. Owns the retransmission cache (reference §1.1 and §2.1:
//! a repeated cookie gets the cached reply and is not executed again).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::bencode::Encoder;
use crate::classic::{self, ecode, Command, Reply as CReply, Tag};
use crate::ng::{self, CommandKind, Reply as NReply};
use crate::sdp::{self, RewriteOptions};
use crate::session::{Action, LatchMode, PortBinder, Session, SessionTable, Update, UpdateError};
use crate::stats::{Totals, WorkerCounters};

/// How long a cached reply is kept: one generation is 35 s (rtpproxy keeps
/// replies at least 35 s, §1.1), so an entry lives 35–70 s.
pub const CACHE_GENERATION_MS: u64 = 35_000;
/// Most replies kept per generation (bounded state).
pub const CACHE_MAX: usize = 65_536;

/// The control channel a classic command came in on, which decides its
/// framing and whether its reply is cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// UDP: cookie first, replies cached by (source, cookie).
    Datagram(SocketAddr),
    /// Unix stream socket: no cookie, no cache.
    Stream,
}

/// Replies by (source, cookie), two generations (rtpengine's cookie cache
/// swaps generations the same way, §2.1).
#[derive(Debug, Default)]
pub struct ReplyCache {
    current: HashMap<(SocketAddr, Vec<u8>), Vec<u8>>,
    previous: HashMap<(SocketAddr, Vec<u8>), Vec<u8>>,
    rotated_at: u64,
}

impl ReplyCache {
    fn rotate(&mut self, now: u64) {
        if now.saturating_sub(self.rotated_at) >= CACHE_GENERATION_MS {
            self.previous = std::mem::take(&mut self.current);
            self.rotated_at = now;
        }
    }

    pub fn get(&mut self, src: SocketAddr, cookie: &[u8], now: u64) -> Option<&Vec<u8>> {
        self.rotate(now);
        let k = (src, cookie.to_vec());
        if self.current.contains_key(&k) {
            return self.current.get(&k);
        }
        self.previous.get(&k)
    }

    pub fn put(&mut self, src: SocketAddr, cookie: &[u8], reply: &[u8], now: u64) {
        self.rotate(now);
        if self.current.len() >= CACHE_MAX {
            self.previous = std::mem::take(&mut self.current);
            self.rotated_at = now;
        }
        self.current.insert((src, cookie.to_vec()), reply.to_vec());
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Control-plane counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControlCounters {
    pub classic_commands: u64,
    pub ng_commands: u64,
    pub retransmissions: u64,
    pub errors: u64,
    pub dropped_unframed: u64,
}

/// The control core.
#[derive(Debug)]
pub struct Control {
    pub table: SessionTable,
    cache: ReplyCache,
    workers: Vec<Arc<WorkerCounters>>,
    /// Unix time in ms minus the `now` clock, for `created` in ng replies.
    unix_offset_ms: u64,
    pub counters: ControlCounters,
}

impl Control {
    pub fn new(
        table: SessionTable,
        workers: Vec<Arc<WorkerCounters>>,
        unix_offset_ms: u64,
    ) -> Control {
        Control {
            table,
            cache: ReplyCache::default(),
            workers,
            unix_offset_ms,
            counters: ControlCounters::default(),
        }
    }

    pub fn totals(&self) -> Totals {
        Totals::sum(self.workers.iter().map(|w| &**w))
    }

    fn advertise(&self) -> Option<IpAddr> {
        let a = self.table.config().advertise;
        (!a.is_unspecified()).then_some(a)
    }

    /// Expires sessions (call about once a second).
    pub fn tick(&mut self, now: u64, actions: &mut Vec<Action>) -> usize {
        self.table.tick(now, actions)
    }

    /// One classic command; `None` = nothing to send.
    pub fn classic(
        &mut self,
        buf: &[u8],
        channel: Channel,
        now: u64,
        binder: &mut dyn PortBinder,
        actions: &mut Vec<Action>,
    ) -> Option<Vec<u8>> {
        self.counters.classic_commands += 1;
        let parsed = match channel {
            Channel::Datagram(_) => classic::parse_datagram(buf),
            Channel::Stream => classic::parse_stream(buf),
        };
        let req = match parsed {
            Ok(r) => r,
            Err(e) => {
                self.counters.errors += 1;
                return Some(CReply::Error(e.code).to_bytes(e.cookie));
            }
        };
        if let (Channel::Datagram(src), Some(c)) = (channel, req.cookie) {
            if let Some(r) = self.cache.get(src, c, now) {
                self.counters.retransmissions += 1;
                return Some(r.clone());
            }
        }
        let reply = self.classic_command(&req.command, now, binder, actions);
        if matches!(reply, CReply::Error(_)) {
            self.counters.errors += 1;
        }
        let bytes = reply.to_bytes(req.cookie);
        if let (Channel::Datagram(src), Some(c)) = (channel, req.cookie) {
            self.cache.put(src, c, &bytes, now);
        }
        Some(bytes)
    }

    fn classic_command(
        &mut self,
        cmd: &Command<'_>,
        now: u64,
        binder: &mut dyn PortBinder,
        actions: &mut Vec<Action>,
    ) -> CReply {
        match cmd {
            Command::Version => CReply::Number(i64::from(classic::PROTOCOL_VERSION)),
            Command::Feature(f) => CReply::Number(i64::from(classic::CAPABILITIES.contains(f))),
            Command::Update(ul) | Command::Lookup(ul) => {
                if ul.notify.is_some() {
                    return CReply::Error(ecode::NSOFF);
                }
                let lookup = matches!(cmd, Command::Lookup(_));
                let rtp = ul
                    .addr
                    .filter(|_| ul.port != 0)
                    .map(|a| SocketAddr::new(a, ul.port));
                let u = Update {
                    call_id: ul.call_id,
                    from_tag: ul.from_tag.tag,
                    to_tag: ul.to_tag.map(|t| t.tag),
                    media: ul
                        .from_tag
                        .media
                        .or(ul.to_tag.and_then(|t| t.media))
                        .unwrap_or(1),
                    lookup,
                    rtp,
                    rtcp: None,
                    mode: ul.mods.asymmetric.then_some(LatchMode::Asymmetric),
                    weak: ul.mods.weak,
                };
                match self.table.update(&u, now, binder, actions) {
                    Ok(r) => CReply::Port {
                        port: r.port,
                        addr: self.advertise(),
                    },
                    Err(UpdateError::NotFound) => CReply::Number(0),
                    Err(UpdateError::SessionLimit) => CReply::Error(ecode::LSTFAIL_SESSION),
                    Err(UpdateError::NoPorts) => CReply::Error(ecode::LSTFAIL_PORTS),
                    Err(UpdateError::ShuttingDown) => CReply::Error(ecode::SLOWSHTDN),
                }
            }
            Command::Delete {
                weak,
                call_id,
                from_tag,
                to_tag,
            } => {
                if self
                    .table
                    .delete(call_id, from_tag.tag, to_tag.map(|t| t.tag), *weak, actions)
                {
                    CReply::Number(0)
                } else {
                    CReply::Error(ecode::SESUNKN)
                }
            }
            Command::Query {
                verbose,
                call_id,
                from_tag,
                to_tag,
                counters,
            } => self.classic_query(*verbose, call_id, *from_tag, *to_tag, counters, now),
            Command::Info { load } => {
                let t = self.totals();
                let mut s = String::new();
                let _ = write!(
                    s,
                    "sessions created: {}\nactive sessions: {}\nactive streams: {}\npackets received: {}\npackets transmitted: {}\n",
                    self.table.counters.sessions_created,
                    self.table.len(),
                    self.table.stream_count(),
                    t.received,
                    t.relayed
                );
                if *load {
                    s.push_str("average load: 0.000000\n");
                }
                CReply::Text(s)
            }
            Command::DeleteAll => {
                self.table.delete_all(actions);
                CReply::Number(0)
            }
            Command::Unsupported {
                letter,
                call_id,
                from_tag,
                to_tag,
            } => {
                let (Some(cid), Some(ft)) = (call_id, from_tag) else {
                    return CReply::Error(ecode::CMDUNKN);
                };
                if self
                    .table
                    .find(cid, ft.tag, to_tag.map(|t| t.tag))
                    .is_none()
                {
                    return CReply::Error(ecode::SESUNKN);
                }
                CReply::Error(if matches!(letter, b'P' | b'S') {
                    ecode::PLRFAIL
                } else {
                    ecode::CPYFAIL
                })
            }
        }
    }

    /// Q (reference §1.2): `ttl npkts_ina npkts_ino nrelayed ndropped`, or
    /// the named counters in order; `v` prints `name=value`.
    fn classic_query(
        &self,
        verbose: bool,
        call_id: &[u8],
        from: Tag<'_>,
        to: Option<Tag<'_>>,
        names: &[&[u8]],
        now: u64,
    ) -> CReply {
        let Some((s, fp)) = self.table.find(call_id, from.tag, to.map(|t| t.tag)) else {
            return CReply::Error(ecode::SESUNKN);
        };
        let media = from.media.or(to.and_then(|t| t.media)).unwrap_or(1);
        let Some(st) = s.stream(media).or(s.streams.first()) else {
            return CReply::Error(ecode::SESUNKN);
        };
        let (a, o) = (&st.stats.legs[fp], &st.stats.legs[1 - fp]);
        let both = |f: fn(&crate::stats::LegStats) -> u64| f(a) + f(o);
        let value = |name: &[u8]| -> Option<i64> {
            Some(match name {
                b"ttl" => self.table.ttl_secs(s, now) as i64,
                b"npkts_ina" => a.packets.load(Relaxed) as i64,
                b"npkts_ino" => o.packets.load(Relaxed) as i64,
                b"nrelayed" => both(|l| l.relayed.load(Relaxed)) as i64,
                b"ndropped" => both(|l| l.dropped.load(Relaxed)) as i64,
                b"rtpa_nsent" => both(|l| l.relayed.load(Relaxed)) as i64,
                b"rtpa_nrcvd" => both(|l| l.packets.load(Relaxed)) as i64,
                b"rtpa_ndups" => both(|l| l.duplicates.load(Relaxed)) as i64,
                b"rtpa_nlost" => a.lost() + o.lost(),
                b"rtpa_perrs" => both(|l| l.rtp_errors.load(Relaxed)) as i64,
                b"rtpa_jlast" => a.jitter.load(Relaxed).max(o.jitter.load(Relaxed)) as i64,
                b"rtpa_jmax" | b"rtpa_javg" => {
                    a.max_jitter.load(Relaxed).max(o.max_jitter.load(Relaxed)) as i64
                }
                b"longest_ipi" => 0,
                _ => return None,
            })
        };
        let default: [&[u8]; 5] = [b"ttl", b"npkts_ina", b"npkts_ino", b"nrelayed", b"ndropped"];
        let list: &[&[u8]] = if names.is_empty() { &default } else { names };
        let mut out = String::new();
        for (i, n) in list.iter().enumerate() {
            let Some(v) = value(n) else {
                return CReply::Error(ecode::QRYFAIL);
            };
            if i > 0 {
                out.push(' ');
            }
            if verbose {
                let _ = write!(out, "{}={v}", String::from_utf8_lossy(n));
            } else {
                let _ = write!(out, "{v}");
            }
        }
        CReply::Text(out)
    }

    /// One ng datagram; `None` = drop (no cookie, §2.1).
    pub fn ng(
        &mut self,
        buf: &[u8],
        src: SocketAddr,
        now: u64,
        binder: &mut dyn PortBinder,
        actions: &mut Vec<Action>,
    ) -> Option<Vec<u8>> {
        let Some((cookie, doc)) = ng::split(buf) else {
            self.counters.dropped_unframed += 1;
            return None;
        };
        self.counters.ng_commands += 1;
        if let Some(r) = self.cache.get(src, cookie, now) {
            self.counters.retransmissions += 1;
            return Some(r.clone());
        }
        let reply = match ng::decode_request(doc) {
            Ok(req) => self.ng_request(&req, now, binder, actions),
            Err(e) => NReply::Error(e.0),
        };
        if matches!(reply, NReply::Error(_)) {
            self.counters.errors += 1;
        }
        let bytes = reply.to_bytes(cookie);
        self.cache.put(src, cookie, &bytes, now);
        Some(bytes)
    }

    fn ng_request(
        &mut self,
        req: &ng::Request<'_>,
        now: u64,
        binder: &mut dyn PortBinder,
        actions: &mut Vec<Action>,
    ) -> NReply {
        match req.command {
            CommandKind::Ping => NReply::Pong,
            CommandKind::Offer | CommandKind::Answer => {
                self.ng_offer_answer(req, now, binder, actions)
            }
            CommandKind::Delete => {
                let Some(cid) = req.call_id else {
                    return NReply::error("No call-id in message");
                };
                let stats = self.ng_stats(cid, req.from_tag, req.to_tag, now);
                let found = match req.from_tag {
                    Some(ft) => self.table.delete(cid, ft, req.to_tag, false, actions),
                    None => {
                        let tags: Vec<Box<[u8]>> = self
                            .table
                            .sessions_of(cid)
                            .iter()
                            .filter_map(|s| s.tags[0].clone())
                            .collect();
                        for t in &tags {
                            self.table.delete(cid, t, None, false, actions);
                        }
                        !tags.is_empty()
                    }
                };
                match (found, req.options.fatal) {
                    (true, _) => NReply::Ok {
                        sdp: None,
                        warning: None,
                        extra: stats.unwrap_or_default(),
                    },
                    (false, false) => NReply::Ok {
                        sdp: None,
                        warning: Some("Call-ID not found or tags didn't match".into()),
                        extra: Vec::new(),
                    },
                    (false, true) => NReply::error("Call-ID not found or tags didn't match"),
                }
            }
            CommandKind::Query => {
                let Some(cid) = req.call_id else {
                    return NReply::error("No call-id in message");
                };
                match self.ng_stats(cid, req.from_tag, req.to_tag, now) {
                    Some(extra) => NReply::Ok {
                        sdp: None,
                        warning: None,
                        extra,
                    },
                    None => NReply::error("Unknown call-id"),
                }
            }
            CommandKind::List => {
                let limit = req.limit.unwrap_or(32).clamp(0, 10_000) as usize;
                let mut e = Encoder::new();
                e.begin_list();
                for c in self.table.call_ids().take(limit) {
                    e.bytes(c);
                }
                e.end();
                NReply::Ok {
                    sdp: None,
                    warning: None,
                    extra: vec![("calls".into(), e.buf)],
                }
            }
        }
    }

    fn ng_offer_answer(
        &mut self,
        req: &ng::Request<'_>,
        now: u64,
        binder: &mut dyn PortBinder,
        actions: &mut Vec<Action>,
    ) -> NReply {
        let answer = req.command == CommandKind::Answer;
        let Some(cid) = req.call_id else {
            return NReply::error("No call-id in message");
        };
        let Some(ft) = req.from_tag else {
            return NReply::error("No from-tag in message");
        };
        if answer && req.to_tag.is_none() {
            return NReply::error("No to-tag in message");
        }
        let Some(body) = req.sdp else {
            return NReply::error("No SDP body in message");
        };
        let o = &req.options;
        let over = if o.sip_source_address {
            o.received_from
        } else {
            None
        };
        let media = match sdp::media_addrs(body, over) {
            Ok(m) => m,
            Err(sdp::MediaError::TooMany(n)) => {
                return NReply::error(format!(
                    "Too many media streams ({n}; at most {})",
                    sdp::MAX_MEDIA
                ))
            }
            Err(sdp::MediaError::Sdp(_)) => return NReply::error("Failed to parse SDP"),
        };
        let mode = if o.asymmetric {
            Some(LatchMode::Asymmetric)
        } else if o.media_handover {
            Some(LatchMode::Handover)
        } else if o.strict_source {
            Some(LatchMode::Strict)
        } else {
            None
        };
        let mut ports: Vec<Option<u16>> = vec![None; media.len()];
        for m in &media {
            if m.rejected {
                continue;
            }
            let u = Update {
                call_id: cid,
                from_tag: ft,
                to_tag: req.to_tag,
                media: m.index as u32 + 1,
                lookup: answer,
                rtp: m.rtp,
                rtcp: m.rtcp,
                mode,
                weak: false,
            };
            match self.table.update(&u, now, binder, actions) {
                Ok(r) => {
                    if let Some(p) = ports.get_mut(m.index) {
                        *p = Some(r.port);
                    }
                }
                Err(e) => return NReply::error(ng_error(e)),
            }
        }
        let opts = RewriteOptions {
            replace_origin: o.replace_origin,
            replace_session_connection: o.replace_session_connection,
            remove_ice: o.ice == ng::Ice::Remove,
            no_rtcp_attribute: o.no_rtcp_attribute,
            full_rtcp_attribute: o.full_rtcp_attribute,
        };
        match sdp::rewrite(body, &ports, self.table.config().advertise, opts) {
            Ok(out) => NReply::Ok {
                sdp: Some(out),
                warning: None,
                extra: Vec::new(),
            },
            Err(e) => NReply::error(format!("Failed to rewrite SDP: {e}")),
        }
    }

    /// The query/delete statistics entries (reference §2.6 subset):
    /// `created`, `last signal`, `tags`, `totals`.
    fn ng_stats(
        &self,
        cid: &[u8],
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        now: u64,
    ) -> Option<Vec<(String, Vec<u8>)>> {
        let s: &Session = match from {
            Some(f) => self.table.find(cid, f, to)?.0,
            None => self.table.sessions_of(cid).first()?,
        };
        let unix = |ms: u64| ((ms + self.unix_offset_ms) / 1000) as i64;
        let enc = |f: &dyn Fn(&mut Encoder)| {
            let mut e = Encoder::new();
            f(&mut e);
            e.buf
        };
        let mut extra = vec![
            (
                "created".to_string(),
                enc(&|e| {
                    e.int(unix(s.created_ms));
                }),
            ),
            (
                "last signal".to_string(),
                enc(&|e| {
                    e.int(unix(s.last_signal_ms));
                }),
            ),
        ];
        let tags = enc(&|e| {
            e.begin_dict();
            for p in 0..2 {
                let Some(tag) = &s.tags[p] else { continue };
                e.bytes(tag).begin_dict().kv_str("tag", tag);
                if let Some(other) = &s.tags[1 - p] {
                    e.kv_str("in dialogue with", other);
                }
                e.str("medias").begin_list();
                for st in &s.streams {
                    let l = &st.stats.legs[p];
                    e.begin_dict()
                        .kv_int("index", i64::from(st.media))
                        .str("streams")
                        .begin_list()
                        .begin_dict()
                        .kv_int("local port", i64::from(st.ports[p]));
                    if let Some(a) = st.signalled[p] {
                        e.str("endpoint")
                            .begin_dict()
                            .kv_str("family", if a.is_ipv4() { b"IPv4" } else { b"IPv6" })
                            .kv_str("address", a.ip().to_string().as_bytes())
                            .kv_int("port", i64::from(a.port()))
                            .end();
                    }
                    let last = l.last_packet();
                    e.kv_int("last packet", if last == 0 { 0 } else { unix(last) })
                        .str("stats")
                        .begin_dict()
                        .kv_int("packets", l.packets.load(Relaxed) as i64)
                        .kv_int("bytes", l.bytes.load(Relaxed) as i64)
                        .kv_int("errors", l.dropped.load(Relaxed) as i64)
                        .kv_int("lost", l.lost())
                        .kv_int("jitter", l.jitter.load(Relaxed) as i64)
                        .end()
                        .end()
                        .end()
                        .end();
                }
                e.end().end();
            }
            e.end();
        });
        extra.push(("tags".to_string(), tags));
        let sum = |f: fn(&crate::stats::LegStats) -> u64| -> i64 {
            s.streams
                .iter()
                .flat_map(|st| st.stats.legs.iter())
                .map(f)
                .sum::<u64>() as i64
        };
        let totals = enc(&|e| {
            e.begin_dict()
                .str("RTP")
                .begin_dict()
                .kv_int("bytes", sum(|l| l.bytes.load(Relaxed)))
                .kv_int("packets", sum(|l| l.packets.load(Relaxed)))
                .kv_int("errors", sum(|l| l.dropped.load(Relaxed)))
                .end()
                .str("RTCP")
                .begin_dict()
                .kv_int("bytes", sum(|l| l.rtcp_bytes.load(Relaxed)))
                .kv_int("packets", sum(|l| l.rtcp_packets.load(Relaxed)))
                .kv_int("errors", 0)
                .end()
                .end();
        });
        extra.push(("totals".to_string(), totals));
        let _ = now;
        Some(extra)
    }
}

/// The `error-reason` Kamailio's rtpengine module reacts to (§2.7: these
/// two make it try the next node).
fn ng_error(e: UpdateError) -> &'static str {
    match e {
        UpdateError::NotFound => "Unknown call-id",
        UpdateError::SessionLimit => "Parallel session limit reached",
        UpdateError::NoPorts => "Ran out of ports",
        UpdateError::ShuttingDown => "Shutting down",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::{self, Value};
    use crate::session::{Config, NoBind};

    fn control(max: usize) -> Control {
        let cfg = Config {
            workers: 2,
            port_low: 40000,
            port_high: 40099,
            max_sessions: max,
            ..Config::default()
        };
        Control::new(
            SessionTable::new(cfg),
            vec![Arc::new(WorkerCounters::default())],
            0,
        )
    }

    const SRC: &str = "127.0.0.1:5060";

    fn classic(c: &mut Control, s: &str) -> String {
        let out = c
            .classic(
                s.as_bytes(),
                Channel::Datagram(SRC.parse().unwrap()),
                0,
                &mut NoBind,
                &mut vec![],
            )
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    // §1.6: Kamailio's probe: V → 20040107, VF 20050322 → 1 (required),
    // VF 20071116 → 0 (no Z), VF 20081102 → 1 (codec lists accepted).
    #[test]
    fn kamailio_probe() {
        let mut c = control(10);
        assert_eq!(classic(&mut c, "1_1 V"), "1_1 20040107\n");
        assert_eq!(classic(&mut c, "1_2 VF 20050322"), "1_2 1\n");
        assert_eq!(classic(&mut c, "1_3 VF 20071116"), "1_3 0\n");
        assert_eq!(classic(&mut c, "1_4 VF 20081102"), "1_4 1\n");
        assert_eq!(classic(&mut c, "1_5 VF 20081224"), "1_5 0\n");
    }

    // §1.6 [obs] call flow: U → `port addr`, L → the other port, D → 0,
    // then Q/D on the deleted session → E50 (§1.2).
    #[test]
    fn classic_call_flow() {
        let mut c = control(10);
        let u = classic(&mut c, "9_1 U call@x 127.0.0.2 16000 ft;1");
        let l = classic(&mut c, "9_2 L call@x 127.0.0.3 17000 ft;1 tt;1");
        let up: Vec<&str> = u.split_whitespace().collect();
        let lp: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(up[2], "127.0.0.1");
        assert_ne!(up[1], lp[1]);
        let q = classic(&mut c, "9_3 Q call@x ft;1 tt");
        assert_eq!(q, "9_3 30 0 0 0 0\n".replace("30", "60"));
        assert_eq!(
            classic(&mut c, "9_4 Qv call@x ft tt ttl nrelayed"),
            "9_4 ttl=60 nrelayed=0\n"
        );
        assert_eq!(classic(&mut c, "9_5 Q call@x ft tt bogus"), "9_5 E62\n");
        assert_eq!(classic(&mut c, "9_6 D call@x ft tt"), "9_6 0\n");
        assert_eq!(classic(&mut c, "9_7 D call@x ft tt"), "9_7 E50\n");
        assert_eq!(classic(&mut c, "9_8 Q call@x ft tt"), "9_8 E50\n");
        assert_eq!(
            classic(&mut c, "9_9 L call@x 127.0.0.3 17000 ft;1 tt;1"),
            "9_9 0\n"
        );
    }

    // §1.1: a retransmitted cookie gets the same answer and is not executed again.
    #[test]
    fn classic_retransmission_is_idempotent() {
        let mut c = control(10);
        let a = classic(&mut c, "7_1 U call 10.0.0.1 4000 ft;1");
        let b = classic(&mut c, "7_1 U call 10.0.0.1 4000 ft;1");
        assert_eq!(a, b);
        assert_eq!(c.table.counters.sessions_created, 1);
        assert_eq!(c.table.stream_count(), 1);
        assert_eq!(c.counters.retransmissions, 1);
        // The same command with a new cookie is executed (and finds the session).
        let d = classic(&mut c, "7_2 U call 10.0.0.1 4000 ft;1");
        assert_eq!(a.split_once(' ').unwrap().1, d.split_once(' ').unwrap().1);
    }

    // Bounded sessions: beyond max the classic protocol answers E72.
    #[test]
    fn classic_session_limit() {
        let mut c = control(1);
        classic(&mut c, "1 U a 10.0.0.1 4000 ft;1");
        assert_eq!(classic(&mut c, "2 U b 10.0.0.1 4000 ft;1"), "2 E72\n");
    }

    // §1.2 I, X, notify socket (E75), unsupported commands, stream mode.
    #[test]
    fn info_deleteall_and_misc() {
        let mut c = control(10);
        classic(&mut c, "1 U a 10.0.0.1 4000 ft;1");
        let i = classic(&mut c, "2 Il");
        assert!(
            i.starts_with("2 sessions created: 1\nactive sessions: 1\nactive streams: 1\n"),
            "{i}"
        );
        assert!(i.ends_with("average load: 0.000000\n"));
        assert_eq!(classic(&mut c, "3 X"), "3 0\n");
        assert_eq!(c.table.len(), 0);
        assert_eq!(
            classic(&mut c, "4 U a 10.0.0.1 4000 ft t /tmp/n tag"),
            "4 E75\n"
        );
        assert_eq!(classic(&mut c, "5 S a ft"), "5 E50\n");
        let out = c
            .classic(b"V\n", Channel::Stream, 0, &mut NoBind, &mut vec![])
            .unwrap();
        assert_eq!(out, b"20040107\n");
    }

    fn ng(c: &mut Control, cookie: &str, doc: &[u8]) -> Vec<u8> {
        let mut buf = cookie.as_bytes().to_vec();
        buf.push(b' ');
        buf.extend_from_slice(doc);
        let out = c
            .ng(&buf, SRC.parse().unwrap(), 0, &mut NoBind, &mut vec![])
            .unwrap();
        out[cookie.len() + 1..].to_vec()
    }

    fn req(cmd: CommandKind, sdp: Option<&[u8]>, to: Option<&[u8]>) -> Vec<u8> {
        let mut r = ng::Request::new(cmd);
        r.call_id = Some(b"cid@x");
        r.from_tag = Some(b"ft");
        r.to_tag = to;
        r.sdp = sdp;
        r.options.replace_origin = true;
        r.options.replace_session_connection = true;
        r.options.received_from = Some("127.0.0.2".parse().unwrap());
        r.encode()
    }

    const OFFER: &[u8] = b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 16000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n";
    const ANSWER: &[u8] = b"v=0\r\no=user2 1 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 17000 RTP/AVP 8\r\na=sendrecv\r\n";

    // Issue 14: an offer with more media sections than the relay handles
    // is refused with a reason, and no session or port is taken.
    #[test]
    fn an_offer_with_too_many_media_is_refused_whole() {
        let mut c = control(10);
        let mut big = String::from_utf8(OFFER.to_vec()).unwrap();
        for i in 0..199 {
            big.push_str(&format!("m=audio {} RTP/AVP 8\r\n", 20000 + 2 * i));
        }
        let r = ng(
            &mut c,
            "1_9_1",
            &req(CommandKind::Offer, Some(big.as_bytes()), None),
        );
        let v = bencode::decode(&r).unwrap();
        assert_eq!(v.get("result").and_then(Value::as_str), Some("error"));
        let why = v.get("error-reason").and_then(Value::as_str).unwrap();
        assert!(
            why.contains("Too many media streams (200; at most 16)"),
            "{why}"
        );
        assert!(c.table.find(b"cid@x", b"ft", None).is_none());
    }

    // §2.2, §2.3, §2.4, §2.5, §2.6: ping, offer, answer, query, delete as
    // Kamailio's rtpengine module drives them (§2.7 [obs] flags).
    #[test]
    fn ng_call_flow() {
        let mut c = control(10);
        assert_eq!(
            ng(&mut c, "1_1_1", b"d7:command4:pinge"),
            b"d6:result4:ponge"
        );
        let r = ng(&mut c, "1_1_2", &req(CommandKind::Offer, Some(OFFER), None));
        let v = bencode::decode(&r).unwrap();
        assert_eq!(v.get("result").and_then(Value::as_str), Some("ok"));
        assert_eq!(v.as_dict().unwrap().len(), 2, "only result and sdp (§2.3)");
        let sdp = v.get("sdp").and_then(Value::as_str).unwrap();
        assert!(
            sdp.contains("o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("c=IN IP4 127.0.0.1\r\n"));
        let port_b = c.table.find(b"cid@x", b"ft", None).unwrap().0.streams[0].ports[1];
        assert!(sdp.contains(&format!("m=audio {port_b} RTP/AVP 8 101\r\n")));
        assert!(sdp.contains(&format!("a=rtcp:{}\r\n", port_b + 1)));
        let r = ng(
            &mut c,
            "1_1_3",
            &req(CommandKind::Answer, Some(ANSWER), Some(b"tt")),
        );
        let v = bencode::decode(&r).unwrap();
        let sdp = v.get("sdp").and_then(Value::as_str).unwrap();
        let port_a = c.table.find(b"cid@x", b"ft", None).unwrap().0.streams[0].ports[0];
        assert!(
            sdp.contains(&format!("m=audio {port_a} RTP/AVP 8\r\n")),
            "{sdp}"
        );
        let q = ng(&mut c, "1_1_4", &req(CommandKind::Query, None, None));
        let v = bencode::decode(&q).unwrap();
        assert!(v.get("totals").and_then(|t| t.get("RTP")).is_some());
        assert!(v.get("tags").and_then(|t| t.get("tt")).is_some());
        let d = ng(&mut c, "1_1_5", &req(CommandKind::Delete, None, None));
        let v = bencode::decode(&d).unwrap();
        assert_eq!(v.get("result").and_then(Value::as_str), Some("ok"));
        assert!(c.table.is_empty());
        let d = ng(&mut c, "1_1_6", &req(CommandKind::Delete, None, None));
        let v = bencode::decode(&d).unwrap();
        assert_eq!(
            v.get("warning").and_then(Value::as_str),
            Some("Call-ID not found or tags didn't match")
        );
        let q = ng(&mut c, "1_1_7", &req(CommandKind::Query, None, None));
        assert_eq!(q, b"d6:result5:error12:error-reason15:Unknown call-ide");
    }

    // §2.4: answer needs to-tag and a known call.
    #[test]
    fn ng_answer_errors() {
        let mut c = control(10);
        let r = ng(&mut c, "a", &req(CommandKind::Answer, Some(ANSWER), None));
        assert!(String::from_utf8_lossy(&r).contains("No to-tag"));
        let r = ng(
            &mut c,
            "b",
            &req(CommandKind::Answer, Some(ANSWER), Some(b"tt")),
        );
        assert_eq!(r, b"d6:result5:error12:error-reason15:Unknown call-ide");
    }

    // §2.1 duplicates; §2.7 the limit reason Kamailio fails over on; no
    // cookie → dropped.
    #[test]
    fn ng_retransmission_limit_and_framing() {
        let mut c = control(1);
        let a = ng(&mut c, "x_1", &req(CommandKind::Offer, Some(OFFER), None));
        let b = ng(&mut c, "x_1", &req(CommandKind::Offer, Some(OFFER), None));
        assert_eq!(a, b);
        assert_eq!(c.table.stream_count(), 1);
        let mut other = ng::Request::new(CommandKind::Offer);
        other.call_id = Some(b"other");
        other.from_tag = Some(b"f");
        other.sdp = Some(OFFER);
        let r = ng(&mut c, "x_2", &other.encode());
        assert!(String::from_utf8_lossy(&r).contains("Parallel session limit reached"));
        assert!(c
            .ng(
                b"d7:command4:pinge",
                SRC.parse().unwrap(),
                0,
                &mut NoBind,
                &mut vec![]
            )
            .is_none());
        let r = ng(&mut c, "x_3", b"{\"command\":\"ping\"}");
        assert!(String::from_utf8_lossy(&r).contains("error"));
    }

    // §2.6 list.
    #[test]
    fn ng_list() {
        let mut c = control(10);
        ng(&mut c, "1", &req(CommandKind::Offer, Some(OFFER), None));
        let r = ng(&mut c, "2", b"d7:command4:liste");
        assert_eq!(r, b"d6:result2:ok5:callsl5:cid@xee");
    }

    #[test]
    fn cache_generations() {
        let mut cache = ReplyCache::default();
        let s: SocketAddr = SRC.parse().unwrap();
        cache.put(s, b"c", b"r", 0);
        assert!(cache.get(s, b"c", CACHE_GENERATION_MS).is_some());
        assert!(cache.get(s, b"c", 2 * CACHE_GENERATION_MS).is_none());
    }
}
