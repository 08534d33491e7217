//! The requests Kamailio 5.6.3 really sent (captured by the rig into
//! `tests/fixtures/`, see its README): each decodes to the fields the
//! reference says it carries, and the control core answers each scenario
//! the way Kamailio's modules need to go on (reference §1.6, §2.7).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use sipfront_rtpproxy::bencode::{self, Value};
use sipfront_rtpproxy::classic::{self, Command};
use sipfront_rtpproxy::control::{Channel, Control};
use sipfront_rtpproxy::ng::{self, CommandKind, Ice};
use sipfront_rtpproxy::session::{Config, NoBind, SessionTable};

fn dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
}

fn fixtures(kind: &str) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir(kind))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name, std::fs::read(e.path()).unwrap())
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn fixture(kind: &str, name: &str) -> Vec<u8> {
    std::fs::read(dir(kind).join(name)).unwrap()
}

fn control() -> Control {
    let cfg = Config {
        workers: 2,
        port_low: 40000,
        port_high: 40999,
        ..Config::default()
    };
    Control::new(SessionTable::new(cfg), Vec::new(), 0)
}

const KAMAILIO: &str = "127.0.0.1:41060";

/// The scenarios the fixtures README describes; files of other scenarios
/// (added later by the rig) are only checked to decode and be answered.
const KNOWN_CLASSIC: &[&str] = &[
    "probe-",
    "clbasic-",
    "clsym-",
    "clasym-",
    "clbridge-",
    "clnocaps-",
];
const KNOWN_NG: &[&str] = &["ping.bin", "ngbasic-", "ngtrust-", "ngasym-", "ngsource-"];

fn classic_reply(c: &mut Control, req: &[u8]) -> String {
    let src: SocketAddr = KAMAILIO.parse().unwrap();
    let out = c
        .classic(req, Channel::Datagram(src), 0, &mut NoBind, &mut Vec::new())
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn ng_reply(c: &mut Control, req: &[u8]) -> Vec<u8> {
    let src: SocketAddr = KAMAILIO.parse().unwrap();
    c.ng(req, src, 0, &mut NoBind, &mut Vec::new()).unwrap()
}

/// The reply body after Kamailio's check "starts with my cookie + SP".
fn body_after_cookie<'a>(req: &[u8], reply: &'a [u8]) -> &'a [u8] {
    let cookie = req.split(|b| *b == b' ').next().unwrap();
    assert!(
        reply.starts_with(cookie),
        "reply must start with the cookie"
    );
    assert_eq!(reply.get(cookie.len()), Some(&b' '));
    &reply[cookie.len() + 1..]
}

// Every captured classic request parses (reference §1.1–§1.3); the
// commands and fields match the file names and the fixtures README.
#[test]
fn classic_fixtures_decode() {
    let all = fixtures("classic");
    assert!(all.len() >= 20, "fixtures present");
    for (name, bytes) in &all {
        assert!(!bytes.ends_with(b"\n"), "{name}: captured without newline");
        if !KNOWN_CLASSIC.iter().any(|k| name.starts_with(k)) {
            // A scenario added after these tests: it must get an answer
            // that carries its cookie (§1.1), whatever it is.
            let cookie = bytes.split(|b| *b == b' ').next().unwrap();
            let r = classic_reply(&mut control(), bytes);
            assert!(r.as_bytes().starts_with(cookie), "{name}: {r}");
            continue;
        }
        let parsed = classic::parse_datagram(bytes);
        // §1.3: E/I bridging needs two bind addresses: E12 (I first) / E11.
        if name.contains("-UIE") || name.contains("-LEI") {
            let want = if name.contains("-UIE") { 12 } else { 11 };
            assert_eq!(parsed.unwrap_err().code, want, "{name}");
            continue;
        }
        let req = parsed.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let cookie = std::str::from_utf8(req.cookie.unwrap()).unwrap();
        assert!(cookie.contains('_'), "{name}: Kamailio cookie <pid>_<seq>");
        match (&req.command, name.as_str()) {
            (Command::Version, "probe-V.txt") => {}
            (Command::Feature(f), n) if n.starts_with("probe-VF-") => {
                assert!(n.contains(&f.to_string()), "{n}");
            }
            (Command::Update(ul), n) => {
                assert!(n.contains("-U"), "{n}");
                assert_eq!(ul.port, 42010);
                assert_eq!(ul.from_tag.media, Some(1), "{n}: U tags carry ;1 (§1.4)");
                assert!(ul.to_tag.is_none());
                assert_eq!(ul.mods.asymmetric, n.starts_with("clasym"));
                assert_eq!(ul.mods.symmetric, n.starts_with("clsym"));
                let want_codecs: &[u16] = if n.starts_with("clnocaps") {
                    &[]
                } else {
                    &[8, 101]
                };
                assert_eq!(ul.mods.codecs.as_slice(), want_codecs, "{n}");
                let want_ip = if n.starts_with("clsym") || n.starts_with("clasym") {
                    "127.0.0.2"
                } else {
                    "127.0.0.1"
                };
                assert_eq!(ul.addr, Some(want_ip.parse().unwrap()), "{n}");
            }
            (Command::Lookup(ul), n) => {
                assert!(n.contains("-L"), "{n}");
                assert_eq!(ul.port, 42020);
                assert_eq!(ul.from_tag.media, Some(1));
                let to = ul.to_tag.expect("L has the To tag");
                assert_eq!(to.media, Some(1));
                assert!(std::str::from_utf8(to.tag).unwrap().contains("SIPpTag01"));
            }
            (
                Command::Delete {
                    weak,
                    to_tag,
                    from_tag,
                    ..
                },
                n,
            ) => {
                assert!(n.ends_with("-D.txt"), "{n}");
                assert!(!weak);
                assert_eq!(from_tag.media, None, "{n}: D tags have no ;N (§1.6)");
                assert_eq!(to_tag.unwrap().media, None);
            }
            (
                Command::Query {
                    verbose,
                    from_tag,
                    to_tag,
                    counters,
                    ..
                },
                "clsym-Q.txt",
            ) => {
                assert!(!verbose && counters.is_empty());
                assert_eq!(from_tag.media, Some(1));
                assert_eq!(to_tag.unwrap().media, None);
            }
            (c, n) => panic!("{n}: unexpected {c:?}"),
        }
    }
}

// §1.6: the probe answers Kamailio's rtpproxy module needs: V = 20040107,
// VF 20050322 = 1 (required), VF 20071116 = 0 (we do not re-packetize),
// VF 20081102 = 1 (codec list modifier accepted).
#[test]
fn classic_probe_replies() {
    let mut c = control();
    for (name, want) in [
        ("probe-V.txt", "20040107\n"),
        ("probe-VF-20050322.txt", "1\n"),
        ("probe-VF-20071116.txt", "0\n"),
        ("probe-VF-20081102.txt", "1\n"),
    ] {
        let req = fixture("classic", name);
        let r = classic_reply(&mut c, &req);
        assert_eq!(
            body_after_cookie(&req, r.as_bytes()),
            want.as_bytes(),
            "{name}"
        );
    }
}

fn port_addr(body: &[u8]) -> (u16, String) {
    let s = std::str::from_utf8(body).unwrap();
    assert!(s.ends_with('\n'));
    let t: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(t.len(), 2, "{s:?}");
    (t[0].parse().unwrap(), t[1].to_string())
}

// §1.3/§1.6: U → `<port> <addr>` (port 1–65535, Kamailio writes both into
// the INVITE), L → the other leg's port, Q → five numbers, D → 0.
#[test]
fn classic_scenarios_replies() {
    for sc in ["clbasic", "clsym", "clasym", "clnocaps"] {
        let mut c = control();
        let files: Vec<(String, Vec<u8>)> = fixtures("classic")
            .into_iter()
            .filter(|(n, _)| n.starts_with(&format!("{sc}-")))
            .collect();
        let pick = |p: &str| {
            files
                .iter()
                .find(|(n, _)| n.starts_with(&format!("{sc}-{p}")))
                .map(|(_, b)| b.clone())
                .unwrap()
        };
        let u = pick("U");
        let ru = classic_reply(&mut c, &u);
        let (pu, au) = port_addr(body_after_cookie(&u, ru.as_bytes()));
        assert!(pu >= 40000 && pu % 2 == 0, "{sc}: {ru}");
        assert_eq!(au, "127.0.0.1");
        let l = pick("L");
        let rl = classic_reply(&mut c, &l);
        let (pl, _) = port_addr(body_after_cookie(&l, rl.as_bytes()));
        assert_ne!(pu, pl, "{sc}: the two legs differ");
        // Kamailio retransmits the same bytes: the same answer, not run again.
        assert_eq!(classic_reply(&mut c, &l), rl);
        assert_eq!(c.table.stream_count(), 1);
        if sc == "clsym" {
            let q = pick("Q");
            let rq = classic_reply(&mut c, &q);
            let body = std::str::from_utf8(body_after_cookie(&q, rq.as_bytes())).unwrap();
            let nums: Vec<u64> = body
                .split_whitespace()
                .map(|t| t.parse().unwrap())
                .collect();
            assert_eq!(nums.len(), 5, "ttl npkts_ina npkts_ino nrelayed ndropped");
        }
        let d = pick("D");
        let rd = classic_reply(&mut c, &d);
        assert_eq!(body_after_cookie(&d, rd.as_bytes()), b"0\n", "{sc}");
        assert!(c.table.is_empty(), "{sc}: D without ;N removed the call");
    }
}

// §1.3: `IE`/`EI` bridging on a one-address relay is refused as rtpproxy
// does without `-l addr1/addr2`; the D that follows finds nothing (E50).
#[test]
fn classic_bridge_is_refused() {
    let mut c = control();
    let u = fixture("classic", "clbridge-UIEc8_101.txt");
    assert!(classic_reply(&mut c, &u).ends_with(" E12\n"));
    let d = fixture("classic", "clbridge-D.txt");
    assert!(classic_reply(&mut c, &d).ends_with(" E50\n"));
}

// Every captured ng request decodes (reference §2.1, §2.3, §2.7) with the
// fields the README lists for its scenario.
#[test]
fn ng_fixtures_decode() {
    let all = fixtures("ng");
    assert!(all.len() >= 14);
    for (name, bytes) in &all {
        let (cookie, doc) = ng::split(bytes).unwrap_or_else(|| panic!("{name}: cookie"));
        if !KNOWN_NG.iter().any(|k| name.starts_with(k)) {
            // A scenario added after these tests: it decodes and is answered.
            ng::decode_request(doc).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let r = ng_reply(&mut control(), bytes);
            assert!(r.starts_with(cookie), "{name}");
            continue;
        }
        assert_eq!(
            cookie.iter().filter(|b| **b == b'_').count(),
            2,
            "{name}: id_pid_seq"
        );
        assert!(doc.ends_with(b"e"));
        let v = bencode::decode(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        if name != "ping.bin" {
            let supports = v.get("supports").and_then(Value::as_list).unwrap();
            assert_eq!(supports.first().and_then(Value::as_str), Some("load limit"));
        }
        let r = ng::decode_request(doc).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let o = &r.options;
        if name == "ping.bin" {
            assert_eq!(r.command, CommandKind::Ping);
            continue;
        }
        assert_eq!(
            o.received_from,
            Some("127.0.0.1".parse().unwrap()),
            "{name}"
        );
        let sc = name.split('-').next().unwrap();
        assert!(r.call_id.unwrap().starts_with(sc.as_bytes()), "{name}");
        match name.rsplit('-').next().unwrap() {
            "offer.bin" => {
                assert_eq!(r.command, CommandKind::Offer);
                assert!(r.sdp.unwrap().starts_with(b"v=0\r\n"));
                assert!(r.to_tag.is_none(), "{name}: initial offer has no to-tag");
            }
            "answer.bin" => {
                assert_eq!(r.command, CommandKind::Answer);
                assert!(std::str::from_utf8(r.from_tag.unwrap())
                    .unwrap()
                    .contains("SIPpTag00"));
                assert!(std::str::from_utf8(r.to_tag.unwrap())
                    .unwrap()
                    .contains("SIPpTag01"));
            }
            "delete.bin" => {
                assert_eq!(r.command, CommandKind::Delete);
                assert_eq!(
                    r.to_tag.is_some(),
                    sc == "ngtrust",
                    "{name}: §2.7 to-tag only with the flag"
                );
            }
            "query.bin" => assert_eq!(r.command, CommandKind::Query),
            other => panic!("{other}"),
        }
        match sc {
            "ngbasic" if r.command != CommandKind::Delete => {
                assert!(o.replace_origin && o.replace_session_connection)
            }
            "ngtrust" if r.command != CommandKind::Delete && r.command != CommandKind::Query => {
                assert!(o.trust_address && o.symmetric && o.replace_origin);
                assert_eq!(o.ice, Ice::Remove);
            }
            "ngasym" if r.command != CommandKind::Delete => {
                assert!(o.asymmetric);
                assert_eq!(o.ice, Ice::Remove);
                assert_eq!(o.direction.len(), 2);
            }
            "ngsource" if r.command != CommandKind::Delete => {
                assert!(o.sip_source_address && o.symmetric)
            }
            _ => {}
        }
    }
}

fn reply_dict(req: &[u8], reply: &[u8]) -> Vec<u8> {
    body_after_cookie(req, reply).to_vec()
}

// §2.2: ping → exactly `d6:result4:ponge`.
#[test]
fn ng_ping_reply() {
    let mut c = control();
    let req = fixture("ng", "ping.bin");
    let r = ng_reply(&mut c, &req);
    assert_eq!(body_after_cookie(&req, &r), b"d6:result4:ponge");
}

// §2.3/§2.4/§2.8: offer and answer → `result ok` and the rewritten SDP
// (relay address in c=, relay ports in m=, a=rtcp, o= with replace-origin);
// §2.6 query → totals; §2.5 delete → ok and the call is gone.
#[test]
fn ng_scenarios_replies() {
    for sc in ["ngbasic", "ngtrust", "ngasym", "ngsource"] {
        let mut c = control();
        let offer = fixture("ng", &format!("{sc}-offer.bin"));
        let r = reply_dict(&offer, &ng_reply(&mut c, &offer));
        let v = bencode::decode(&r).unwrap();
        assert_eq!(
            v.get("result").and_then(Value::as_str),
            Some("ok"),
            "{sc}: {v:?}"
        );
        assert_eq!(
            v.as_dict().unwrap().len(),
            2,
            "{sc}: result + sdp only (§2.3)"
        );
        let sdp = v.get("sdp").and_then(Value::as_str).unwrap();
        let session = &c.table.sessions_of(c.table.call_ids().next().unwrap())[0];
        let ports = session.streams[0].ports;
        assert!(
            sdp.contains(&format!("m=audio {} RTP/AVP 8 101\r\n", ports[1])),
            "{sc}: {sdp}"
        );
        assert!(sdp.contains(&format!("a=rtcp:{}\r\n", ports[1] + 1)));
        assert!(sdp.contains("c=IN IP4 127.0.0.1\r\n"));
        let replaced = sc == "ngbasic" || sc == "ngtrust";
        assert_eq!(
            !sdp.contains("127.0.0.2"),
            replaced,
            "{sc}: o= only with replace-origin: {sdp}"
        );
        let want_signalled = if sc == "ngsource" {
            "127.0.0.1:42010"
        } else {
            "127.0.0.2:42010"
        };
        assert_eq!(
            session.streams[0].signalled[0],
            Some(want_signalled.parse().unwrap()),
            "{sc}"
        );

        let answer = fixture("ng", &format!("{sc}-answer.bin"));
        let r = reply_dict(&answer, &ng_reply(&mut c, &answer));
        let v = bencode::decode(&r).unwrap();
        assert_eq!(v.get("result").and_then(Value::as_str), Some("ok"), "{sc}");
        let sdp = v.get("sdp").and_then(Value::as_str).unwrap();
        assert!(
            sdp.contains(&format!("m=audio {} RTP/AVP 8 101\r\n", ports[0])),
            "{sc}: {sdp}"
        );

        if sc == "ngtrust" {
            let q = fixture("ng", "ngtrust-query.bin");
            let r = reply_dict(&q, &ng_reply(&mut c, &q));
            let v = bencode::decode(&r).unwrap();
            assert_eq!(v.get("result").and_then(Value::as_str), Some("ok"));
            assert!(v.get("totals").is_some() && v.get("created").is_some());
        }
        let del = fixture("ng", &format!("{sc}-delete.bin"));
        let r = reply_dict(&del, &ng_reply(&mut c, &del));
        let v = bencode::decode(&r).unwrap();
        assert_eq!(v.get("result").and_then(Value::as_str), Some("ok"), "{sc}");
        assert!(v.get("warning").is_none(), "{sc}: the call was found");
        assert!(c.table.is_empty(), "{sc}");
    }
}
