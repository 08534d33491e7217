//! Loading tests: defaults, the example file, every validation error with
//! its exact `line:column`, precedence of file < environment < flags, and
//! dispatcher.list import.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::error::SourceFile;
use super::*;
use crate::dispatch::{Algorithm, DomainPattern, HeaderMatch, HeaderValueMatch};
use crate::sip::Transport;

/// A resolver that knows a few names and nothing else.
fn resolver(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let a = |s: &str| SocketAddr::new(s.parse().unwrap(), port);
    match host.to_ascii_lowercase().as_str() {
        "pbx.example.com" => Ok(vec![a("10.1.1.1")]),
        "dual.example.com" => Ok(vec![a("2001:db8::1"), a("10.1.1.2")]),
        "v6only.example.com" => Ok(vec![a("2001:db8::2")]),
        _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such host")),
    }
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

fn load_text_with(
    text: &str,
    cli: &CliOverrides,
    env: &[(&str, &str)],
) -> Result<Config, ConfigError> {
    let src = SourceFile {
        path: PathBuf::from("sipfront.toml"),
        text: text.to_string(),
    };
    load_source(Some(&src), cli, &env_of(env), &resolver)
}

fn load_text(text: &str) -> Result<Config, ConfigError> {
    load_text_with(text, &CliOverrides::default(), &[])
}

/// A minimal valid backend section, to append to snippets under test.
const SET: &str = "\n[[backend_set]]\nname = \"default\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1:5070\"\n";

/// Asserts `text` fails at `line:col` with `key` and a reason containing
/// `reason`.
#[track_caller]
fn assert_err(text: &str, line: usize, col: usize, key: &str, reason: &str) {
    let e = load_text(text).expect_err("config should be rejected");
    assert_eq!(
        e.location,
        Location::File {
            path: "sipfront.toml".into(),
            line,
            column: col
        },
        "{e}"
    );
    assert_eq!(e.key, key, "{e}");
    assert!(e.reason.contains(reason), "{e:?} lacks {reason:?}");
}

#[test]
fn defaults() {
    let cfg = load_text(SET).unwrap();
    let s = &cfg.server;
    assert_eq!(s.workers, Workers::Auto);
    assert_eq!(s.io_driver, IoDriver::Auto);
    assert_eq!(s.listen, ["udp:0.0.0.0:5060".parse::<Listen>().unwrap()]);
    assert_eq!(s.listen[0].transport, Transport::Udp);
    assert_eq!(s.advertise, None);
    assert_eq!(s.egress_port_base, 0);
    assert_eq!(s.recv_buffer, 8_388_608);
    assert_eq!(s.send_buffer, 8_388_608);
    assert_eq!(cfg.log.format, LogFormat::Human);
    assert_eq!(cfg.log.level, "info");
    assert_eq!(cfg.proxy.mode, ProxyMode::Stateful);
    assert_eq!(cfg.transaction, TransactionConfig::default());
    assert_eq!(cfg.transaction.failover_codes, [408, 500, 502, 503, 504]);
    assert!(cfg.proxy.record_route);
    assert_eq!(cfg.proxy.max_message_size, 65535);
    assert_eq!(cfg.proxy.max_headers, 128);
    assert_eq!(cfg.proxy.max_forwards, 70);
    assert_eq!(cfg.routing.default, "default");
    assert!(cfg.routing.rules.is_empty());
    let set = &cfg.backend_sets[0];
    assert_eq!(set.algorithm, Algorithm::CallId);
    assert_eq!(set.list_file, None);
    assert_eq!(set.setid, 1);
    let d = &set.destinations[0];
    assert_eq!(d.uri, "sip:127.0.0.1:5070");
    assert_eq!(d.addr, "127.0.0.1:5070".parse().unwrap());
    assert_eq!((d.weight, d.priority), (1, 0));
    assert!(d.attrs.is_empty());
    assert_eq!(cfg.source, Some(PathBuf::from("sipfront.toml")));
    // The defaults of the public structs agree with the loaded ones.
    assert_eq!(cfg.server, ServerConfig::default());
    assert_eq!(cfg.proxy, ProxyConfig::default());
    assert_eq!(cfg.log, LogConfig::default());
}

#[test]
fn example_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sipfront.example.toml");
    let cfg = load(Some(&path), &CliOverrides::default(), &|_| None).unwrap();
    assert_eq!(cfg.server.listen[0].addr, "0.0.0.0:5060".parse().unwrap());
    assert_eq!(cfg.backend_sets.len(), 2);
    assert_eq!(cfg.routing.default, "default");
    assert_eq!(cfg.routing.rules.len(), 2);
    let r = &cfg.routing.rules[0];
    assert_eq!(r.set, "pstn");
    assert_eq!(r.methods, ["INVITE"]);
    assert_eq!(r.ruri_user_prefix.as_deref(), Some("+44"));
    assert_eq!(
        r.ruri_domain,
        Some(DomainPattern::Suffix(".example.com".into()))
    );
    assert_eq!(r.source.len(), 2);
    assert_eq!(r.source[1].to_string(), "192.0.2.10/32");
    assert_eq!(
        r.header,
        Some(HeaderMatch {
            name: "X-Tenant".into(),
            value: HeaderValueMatch::Equals("acme".into())
        })
    );
    assert_eq!(
        cfg.routing.rules[1].header.as_ref().unwrap().value,
        HeaderValueMatch::Prefix("pstn".into())
    );
    let pstn = cfg.backend_set("pstn").unwrap();
    assert_eq!(pstn.algorithm, Algorithm::PriorityWeighted);
    assert_eq!(pstn.destinations.len(), 3);
    assert_eq!(
        pstn.destinations[1].addr,
        "192.0.2.21:5060".parse().unwrap()
    );
    assert_eq!(pstn.destinations[2].priority, 1);
    let def = cfg.default_set().unwrap();
    assert_eq!(def.destinations[0].attrs["duid"], "pbx-a");
    // The example spells out every default of [server], [log] and [proxy].
    assert_eq!(cfg.server, ServerConfig::default());
    assert_eq!(cfg.log, LogConfig::default());
    assert_eq!(cfg.proxy, ProxyConfig::default());
    assert_eq!(cfg.transaction, TransactionConfig::default());
    let summary = cfg.summary();
    assert!(summary.contains("rule 1: methods INVITE"), "{summary}");
}

#[test]
fn quick_start_without_file() {
    let cli = CliOverrides {
        listen: vec!["udp:127.0.0.1:5060".into()],
        backends: vec!["sip:127.0.0.1:5070".into(), "sip:127.0.0.1:5080".into()],
        ..Default::default()
    };
    let cfg = load_with_resolver(None, &cli, &|_| None, &resolver).unwrap();
    assert_eq!(cfg.source, None);
    assert_eq!(cfg.backend_sets.len(), 1);
    assert_eq!(cfg.routing.default, "default");
    assert_eq!(cfg.default_set().unwrap().destinations.len(), 2);
}

#[test]
fn the_brief_example_error() {
    let text = "[server]\nworkers = 2\n\n[[backend_set]]\nname = \"default\"\n\
                [[backend_set.destination]]\nuri = \"sip:127.0.0.1:5070\"\n\
                [[backend_set.destination]]\n  uri = \"sip:foo:99999\"\n";
    let e = load_text(text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "sipfront.toml:9:9: backend_set[0].destination[1].uri: \"sip:foo:99999\": port out of range (1..=65535)"
    );
    assert_eq!(e.file(), Some(Path::new("sipfront.toml")));
    assert_eq!((e.line(), e.column()), (Some(9), Some(9)));
}

#[test]
fn syntax_and_type_errors() {
    assert_err(
        &format!("[server]\nworkerz = 2\n{SET}"),
        2,
        1,
        "",
        "unknown field `workerz`",
    );
    assert_err(
        &format!("[serverr]\n{SET}"),
        1,
        2,
        "",
        "unknown field `serverr`",
    );
    assert_err(
        &format!("[proxy]\nrecord_route = \"yes\"\n{SET}"),
        2,
        16,
        "",
        "invalid type",
    );
    assert_err("[server\nworkers = 2\n", 1, 8, "", "");
    assert_err(
        &format!("{SET}attrs = {{ n = 1 }}\n"),
        6,
        15,
        "",
        "invalid type: integer",
    );
    assert_err(
        "[[backend_set]]\nname = \"a\"\n[[backend_set.destination]]\nweight = 2\n",
        3,
        1,
        "",
        "missing field `uri`",
    );
    assert_err(
        "[[routing.rule]]\nmethods = [\"INVITE\"]\n",
        1,
        1,
        "",
        "missing field `set`",
    );
    assert_err(
        &format!(
            "[[routing.rule]]\nset = \"default\"\nheader = {{ name = \"X\", val = \"y\" }}\n{SET}"
        ),
        3,
        24,
        "",
        "unknown field `val`",
    );
}

#[test]
fn server_errors() {
    assert_err(
        &format!("[server]\nworkers = 0\n{SET}"),
        2,
        11,
        "server.workers",
        ">= 1",
    );
    assert_err(
        &format!("[server]\nworkers = \"lots\"\n{SET}"),
        2,
        11,
        "server.workers",
        "\"auto\"",
    );
    assert_err(
        &format!("[server]\nio_driver = \"epoll\"\n{SET}"),
        2,
        13,
        "server.io_driver",
        "auto, uring, portable",
    );
    assert_err(
        &format!("[server]\nlisten = []\n{SET}"),
        2,
        10,
        "server.listen",
        "at least one",
    );
    assert_err(
        &format!("[server]\nlisten = [\"udp:0.0.0.0:5060\", \"tcp:0.0.0.0:5060\"]\n{SET}"),
        2,
        31,
        "server.listen[1]",
        "transport tcp is not supported",
    );
    assert_err(
        &format!("[server]\nlisten = [\"udp:0.0.0.0:5060\",\n  \"udp:0.0.0.0:5060\"]\n{SET}"),
        3,
        3,
        "server.listen[1]",
        "listed twice (first at line 2:11)",
    );
    assert_err(
        &format!("[server]\nadvertise = \"a b\"\n{SET}"),
        2,
        13,
        "server.advertise",
        "host[:port]",
    );
    assert_err(
        &format!("[server]\negress_port_base = 70000\n{SET}"),
        2,
        20,
        "server.egress_port_base",
        "0..=65535",
    );
    assert_err(
        &format!("[server]\nrecv_buffer = -1\n{SET}"),
        2,
        15,
        "server.recv_buffer",
        "out of range",
    );
    assert_err(
        &format!("[server]\nsend_buffer = 4294967296\n{SET}"),
        2,
        15,
        "server.send_buffer",
        "out of range",
    );
}

#[test]
fn egress_port_errors() {
    // listen_port + 1 + w overflows.
    assert_err(
        &format!("[server]\nworkers = 8\nlisten = [\"udp:10.0.0.1:65530\"]\n{SET}"),
        3,
        11,
        "server.listen[0]",
        "65531..65538, past 65535",
    );
    // base + w overflows.
    assert_err(
        &format!("[server]\nworkers = 8\negress_port_base = 65530\n{SET}"),
        3,
        20,
        "server.egress_port_base",
        "65530..65537",
    );
    // Egress ports of one listen land on another's listen port.
    assert_err(
        &format!(
            "[server]\nworkers = 4\nlisten = [\"udp:10.0.0.1:5060\", \"udp:10.0.0.1:5062\"]\n{SET}"
        ),
        3,
        11,
        "server.listen[0]",
        "include the listen port of udp:10.0.0.1:5062",
    );
    // Different IPs do not collide; a base moves egress away.
    let ok = format!(
        "[server]\nworkers = 4\nlisten = [\"udp:10.0.0.1:5060\", \"udp:10.0.0.2:5062\"]\n{SET}"
    );
    let cfg = load_text(&ok).unwrap();
    assert_eq!(cfg.server.egress_port(&cfg.server.listen[0], 3), Some(5064));
    let ok = format!("[server]\nworkers = 4\negress_port_base = 20000\nlisten = [\"udp:10.0.0.1:5060\", \"udp:10.0.0.1:5062\"]\n{SET}");
    let cfg = load_text(&ok).unwrap();
    assert_eq!(
        cfg.server.egress_port(&cfg.server.listen[1], 2),
        Some(20002)
    );
}

#[test]
fn log_and_proxy_errors() {
    assert_err(
        &format!("[log]\nformat = \"xml\"\n{SET}"),
        2,
        10,
        "log.format",
        "human or json",
    );
    assert_err(
        &format!("[log]\nlevel = \"info,sipfront=loud\"\n{SET}"),
        2,
        9,
        "log.level",
        "EnvFilter",
    );
    assert_err(
        &format!("[proxy]\nmode = \"b2bua\"\n{SET}"),
        2,
        8,
        "proxy.mode",
        "stateless or stateful",
    );
    assert_err(
        &format!("[proxy]\nmax_message_size = 512\n{SET}"),
        2,
        20,
        "proxy.max_message_size",
        "1024..=65535",
    );
    assert_err(
        &format!("[proxy]\nmax_message_size = 65536\n{SET}"),
        2,
        20,
        "proxy.max_message_size",
        "1024..=65535",
    );
    assert_err(
        &format!("[proxy]\nmax_headers = 2\n{SET}"),
        2,
        15,
        "proxy.max_headers",
        "6..=4096",
    );
    assert_err(
        &format!("[proxy]\nmax_forwards = 0\n{SET}"),
        2,
        16,
        "proxy.max_forwards",
        "1..=255",
    );
    let cfg = load_text(&format!(
        "[proxy]\nmode = \"stateful\"\nmax_message_size = 1024\n{SET}"
    ))
    .unwrap();
    assert_eq!(cfg.proxy.mode, ProxyMode::Stateful);
    assert_eq!(cfg.proxy.max_message_size, 1024);
    let cfg = load_text(&format!(
        "[log]\nlevel = \"info,sipfront::proxy=debug\"\n{SET}"
    ))
    .unwrap();
    assert_eq!(cfg.log.level, "info,sipfront::proxy=debug");
}

#[test]
fn backend_set_errors() {
    let d = "[[backend_set.destination]]\nuri = \"sip:127.0.0.1:5070\"\n";
    assert_err(
        &format!("[[backend_set]]\nname = \"a\"\nalgorithm = \"hash\"\n{d}"),
        3,
        13,
        "backend_set[0].algorithm",
        "unknown algorithm \"hash\"",
    );
    assert_err(
        &format!("[[backend_set]]\nname = \"a\"\nalgorithm = \"10\"\n{d}"),
        3,
        13,
        "backend_set[0].algorithm",
        "Kamailio algorithm 10 (call load) is not supported",
    );
    assert_err(
        &format!("[[backend_set]]\nname = \"my set\"\n{d}"),
        2,
        8,
        "backend_set[0].name",
        "1 to 64 of",
    );
    assert_err(
        &format!("[routing]\ndefault = \"a\"\n[[backend_set]]\nname = \"a\"\n{d}[[backend_set]]\nname = \"a\"\n{d}"),
        8,
        8,
        "backend_set[1].name",
        "duplicate backend set name \"a\" (first at line 4:8)",
    );
    assert_err(
        "[[backend_set]]\nname = \"a\"\n\n[[backend_set]]\nname = \"b\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1\"\n",
        1,
        1,
        "backend_set[0]",
        "has no destinations",
    );
    assert_err(
        &format!("[[backend_set]]\nname = \"a\"\n{d}[[backend_set.destination]]\nuri = \"sip:127.0.0.1:5070;transport=udp\"\n"),
        6,
        7,
        "backend_set[0].destination[1].uri",
        "duplicates \"sip:127.0.0.1:5070\" in backend set \"a\" (first at line 4:7)",
    );
    assert_err(
        "[[backend_set]]\nname = \"a\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1\"\n[[backend_set.destination]]\nuri = \"SIP:127.0.0.1:5060\"\n",
        6,
        7,
        "backend_set[0].destination[1].uri",
        "duplicates",
    );
    assert_err(
        &format!("[[backend_set]]\nname = \"a\"\n{d}weight = 0\n"),
        5,
        10,
        "backend_set[0].destination[0].weight",
        "weight must be 1..=65535",
    );
    assert_err(
        &format!("[[backend_set]]\nname = \"a\"\n{d}priority = 3000000000\n"),
        5,
        12,
        "backend_set[0].destination[0].priority",
        "out of range",
    );
    assert_err(
        &format!("[[backend_set]]\nname = \"a\"\nsetid = -1\n{d}"),
        3,
        9,
        "backend_set[0].setid",
        "out of range",
    );
}

#[test]
fn destination_uri_errors() {
    let t = |uri: &str| {
        format!("[[backend_set]]\nname = \"a\"\n[[backend_set.destination]]\nuri = \"{uri}\"\n")
    };
    let key = "backend_set[0].destination[0].uri";
    assert_err(
        &t("sips:127.0.0.1"),
        4,
        7,
        key,
        "sips (TLS) is not supported yet",
    );
    assert_err(
        &t("sip:127.0.0.1;transport=tcp"),
        4,
        7,
        key,
        "transport=tcp is not supported yet",
    );
    assert_err(&t("tel:+441234"), 4, 7, key, "expected a sip URI");
    assert_err(&t("127.0.0.1:5060"), 4, 7, key, "expected a sip URI");
    assert_err(&t("sip:127.0.0.1:x"), 4, 7, key, "bad port");
    assert_err(&t("sip:127.0.0.1:0"), 4, 7, key, "port out of range");
    assert_err(&t("sip:a b"), 4, 7, key, "whitespace");
    assert_err(&t("sip:127.0.0.1?Subject=x"), 4, 7, key, "URI headers");
    assert_err(
        &t("sip:nowhere.invalid"),
        4,
        7,
        key,
        "host \"nowhere.invalid\" does not resolve: no such host",
    );
    assert_err(
        &t("sip:[2001:db8::9]:5060"),
        4,
        7,
        key,
        "is IPv6 but no listen address is IPv6",
    );
    assert_err(
        &t("sip:v6only.example.com"),
        4,
        7,
        key,
        "is IPv6 but no listen address is IPv6",
    );
}

#[test]
fn destination_hosts_resolve() {
    let cfg = load_text(
        "[[backend_set]]\nname = \"a\"\n\
         [[backend_set.destination]]\nuri = \"sip:pbx.example.com:5080\"\n\
         [[backend_set.destination]]\nuri = \"sip:dual.example.com\"\n\
         [[backend_set.destination]]\nuri = \"sip:user@127.0.0.1;lr\"\n",
    )
    .unwrap();
    let d = &cfg.backend_sets[0].destinations;
    assert_eq!(d[0].addr, "10.1.1.1:5080".parse().unwrap());
    // IPv4 listen: the IPv4 address of a dual-stack name.
    assert_eq!(d[1].addr, "10.1.1.2:5060".parse().unwrap());
    assert_eq!(d[2].addr, "127.0.0.1:5060".parse().unwrap());
    // With an IPv6 listen the first (IPv6) address is taken.
    let cfg = load_text(
        "[server]\nlisten = [\"udp:[::]:5060\"]\n[[backend_set]]\nname = \"a\"\n\
         [[backend_set.destination]]\nuri = \"sip:dual.example.com\"\n\
         [[backend_set.destination]]\nuri = \"sip:10.0.0.1\"\n",
    )
    .unwrap();
    assert_eq!(
        cfg.backend_sets[0].destinations[0].addr,
        "[2001:db8::1]:5060".parse().unwrap()
    );
    assert_eq!(
        cfg.backend_sets[0].destinations[1].addr,
        "10.0.0.1:5060".parse().unwrap()
    );
}

#[test]
fn system_resolver_resolves_localhost() {
    let cfg = from_toml_str(
        Path::new("x.toml"),
        "[server]\nlisten = [\"udp:0.0.0.0:5060\", \"udp:[::]:5060\"]\n\
         [[backend_set]]\nname = \"a\"\n[[backend_set.destination]]\nuri = \"sip:localhost:5070\"\n",
    )
    .unwrap();
    let a = cfg.backend_sets[0].destinations[0].addr;
    assert!(a.ip().is_loopback() && a.port() == 5070, "{a}");
}

#[test]
fn routing_errors() {
    assert_err(
        &format!("[routing]\ndefault = \"pstn\"\n{SET}"),
        2,
        11,
        "routing.default",
        "no backend set named \"pstn\" (sets: \"default\")",
    );
    assert_err(
        &format!("[[routing.rule]]\nset = \"nope\"\n{SET}"),
        2,
        7,
        "routing.rule[0].set",
        "no backend set named \"nope\"",
    );
    let r = |body: &str| format!("[[routing.rule]]\nset = \"default\"\n{body}\n{SET}");
    assert_err(
        &r("methods = [\"INVITE\", \"invite\"]"),
        3,
        22,
        "routing.rule[0].methods[1]",
        "did you mean \"INVITE\"?",
    );
    assert_err(
        &r("methods = [\"IN VITE\"]"),
        3,
        12,
        "routing.rule[0].methods[0]",
        "not a SIP method token",
    );
    assert_err(
        &r("source = [\"10.0.0.0/8\", \"10.0.0.0/33\"]"),
        3,
        25,
        "routing.rule[0].source[1]",
        "expected a network",
    );
    assert_err(
        &r("ruri_domain = \"*.*.com\""),
        3,
        15,
        "routing.rule[0].ruri_domain",
        "*.example.com",
    );
    assert_err(
        &r("ruri_user_prefix = \"\""),
        3,
        20,
        "routing.rule[0].ruri_user_prefix",
        "empty prefix",
    );
    assert_err(
        &r("header = { name = \"X-A\", value = \"a\", prefix = \"b\" }"),
        3,
        48,
        "routing.rule[0].header.prefix",
        "not both",
    );
    assert_err(
        &r("header = { name = \"X A\" }"),
        3,
        19,
        "routing.rule[0].header.name",
        "not a header name",
    );
    assert_err(
        &r("header = { name = \"X-A\", prefix = \"\" }"),
        3,
        35,
        "routing.rule[0].header.prefix",
        "empty prefix",
    );
    // Extension methods are fine; a header with only a name matches presence.
    let cfg = load_text(&r("methods = [\"FOO\"]\nheader = { name = \"X-A\" }")).unwrap();
    assert_eq!(cfg.routing.rules[0].methods, ["FOO"]);
    assert_eq!(
        cfg.routing.rules[0].header.as_ref().unwrap().value,
        HeaderValueMatch::Present
    );
    assert_eq!(
        cfg.routing.rules[0].describe(),
        "methods FOO, header X-A present"
    );
}

#[test]
fn default_set_resolution() {
    let one =
        "[[backend_set]]\nname = \"pbx\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1\"\n";
    let two =
        "[[backend_set]]\nname = \"gw\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.2\"\n";
    let named_default = "[[backend_set]]\nname = \"default\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.3\"\n";
    // The only set is the default.
    assert_eq!(load_text(one).unwrap().routing.default, "pbx");
    // Several: the one named default.
    assert_eq!(
        load_text(&format!("{one}{named_default}"))
            .unwrap()
            .routing
            .default,
        "default"
    );
    // Several, none named default, none chosen.
    let e = load_text(&format!("{one}{two}")).unwrap_err();
    assert_eq!(
        e.location,
        Location::WholeFile {
            path: "sipfront.toml".into()
        }
    );
    assert_eq!(e.key, "routing.default");
    assert!(e.reason.contains("sets: \"pbx\", \"gw\""), "{e}");
    assert_eq!(
        load_text(&format!("[routing]\ndefault = \"gw\"\n{one}{two}"))
            .unwrap()
            .routing
            .default,
        "gw"
    );
}

#[test]
fn errors_without_a_line() {
    let e = load_text("").unwrap_err();
    assert_eq!(
        e.location,
        Location::WholeFile {
            path: "sipfront.toml".into()
        }
    );
    assert!(
        e.to_string()
            .starts_with("sipfront.toml: backend_set: no backend set"),
        "{e}"
    );
    let e = load_with_resolver(None, &CliOverrides::default(), &|_| None, &resolver).unwrap_err();
    assert_eq!(e.location, Location::Defaults);
    let e = load(
        Some(Path::new("/nonexistent/sipfront.toml")),
        &CliOverrides::default(),
        &|_| None,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/sipfront.toml: cannot read config file"),
        "{e}"
    );
    // $SIPFRONT_CONFIG names the file when -c does not.
    let e = load(
        None,
        &CliOverrides::default(),
        &env_of(&[("SIPFRONT_CONFIG", "/nonexistent/b.toml")]),
    )
    .unwrap_err();
    assert_eq!(e.file(), Some(Path::new("/nonexistent/b.toml")));
}

const LAYERED: &str = "\
[server]
workers = 2
io_driver = \"uring\"
listen = [\"udp:10.0.0.1:5060\"]
advertise = \"file.example.com\"
[log]
format = \"human\"
level = \"warn\"
[proxy]
mode = \"stateless\"
record_route = true
max_message_size = 4096
[[backend_set]]
name = \"default\"
algorithm = \"round-robin\"
[[backend_set.destination]]
uri = \"sip:10.0.0.10\"
";

#[test]
fn file_only() {
    let cfg = load_text(LAYERED).unwrap();
    assert_eq!(cfg.server.workers, Workers::N(2));
    assert_eq!(cfg.server.io_driver, IoDriver::Uring);
    assert_eq!(
        cfg.server.advertise.as_ref().unwrap().host,
        "file.example.com"
    );
    assert_eq!(cfg.log.level, "warn");
    assert_eq!(cfg.proxy.max_message_size, 4096);
    assert_eq!(cfg.backend_sets[0].algorithm, Algorithm::RoundRobin);
}

#[test]
fn environment_over_file() {
    let env = [
        ("SIPFRONT_WORKERS", "3"),
        ("SIPFRONT_IO_DRIVER", "portable"),
        ("SIPFRONT_LISTEN", "udp:10.0.0.2:5060, udp:[::1]:5062"),
        ("SIPFRONT_ADVERTISE", "203.0.113.1:5060"),
        (
            "SIPFRONT_BACKENDS",
            "sip:10.0.0.20:5070,sip:pbx.example.com",
        ),
        ("SIPFRONT_ALGORITHM", "9"),
        ("SIPFRONT_MODE", "stateful"),
        ("SIPFRONT_RECORD_ROUTE", "false"),
        ("SIPFRONT_LOG_LEVEL", "debug"),
        ("SIPFRONT_LOG_FORMAT", "json"),
        ("SIPFRONT_MAX_MESSAGE_SIZE", "8192"),
    ];
    let cfg = load_text_with(LAYERED, &CliOverrides::default(), &env).unwrap();
    assert_eq!(cfg.server.workers, Workers::N(3));
    assert_eq!(cfg.server.io_driver, IoDriver::Portable);
    assert_eq!(
        cfg.server
            .listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["udp:10.0.0.2:5060", "udp:[::1]:5062"]
    );
    assert_eq!(
        cfg.server.advertise.as_ref().unwrap().to_string(),
        "203.0.113.1:5060"
    );
    let set = &cfg.backend_sets[0];
    assert_eq!(set.algorithm, Algorithm::Weighted);
    assert_eq!(
        set.destinations.iter().map(|d| d.addr).collect::<Vec<_>>(),
        [
            "10.0.0.20:5070".parse().unwrap(),
            "10.1.1.1:5060".parse().unwrap()
        ]
    );
    assert_eq!(cfg.proxy.mode, ProxyMode::Stateful);
    assert!(!cfg.proxy.record_route);
    assert_eq!(cfg.log.level, "debug");
    assert_eq!(cfg.log.format, LogFormat::Json);
    assert_eq!(cfg.proxy.max_message_size, 8192);
}

#[test]
fn flags_over_environment_over_file() {
    let env = [
        ("SIPFRONT_WORKERS", "3"),
        ("SIPFRONT_LISTEN", "udp:10.0.0.2:5060"),
        ("SIPFRONT_BACKENDS", "sip:10.0.0.20"),
        ("SIPFRONT_ALGORITHM", "random"),
        ("SIPFRONT_LOG_LEVEL", "debug"),
        ("SIPFRONT_MODE", "stateful"),
    ];
    let cli = CliOverrides {
        workers: Some("4".into()),
        listen: vec!["udp:10.0.0.3:5080".into()],
        backends: vec!["sip:10.0.0.30".into(), "sip:10.0.0.31".into()],
        log_level: Some("trace".into()),
        ..Default::default()
    };
    let cfg = load_text_with(LAYERED, &cli, &env).unwrap();
    assert_eq!(cfg.server.workers, Workers::N(4)); // flag
    assert_eq!(cfg.server.listen[0].to_string(), "udp:10.0.0.3:5080"); // flag
    assert_eq!(cfg.server.listen.len(), 1);
    assert_eq!(cfg.backend_sets[0].destinations.len(), 2); // flag
    assert_eq!(cfg.backend_sets[0].algorithm, Algorithm::Random); // env
    assert_eq!(cfg.log.level, "trace"); // flag
    assert_eq!(cfg.proxy.mode, ProxyMode::Stateful); // env
    assert_eq!(cfg.server.io_driver, IoDriver::Uring); // file
    assert_eq!(cfg.log.format, LogFormat::Human); // file
}

#[test]
fn override_errors_name_their_source() {
    let e = load_text_with(
        LAYERED,
        &CliOverrides::default(),
        &[("SIPFRONT_LISTEN", "udp:10.0.0.2:5060,udp:bad")],
    )
    .unwrap_err();
    assert_eq!(
        e.location,
        Location::Env {
            var: "SIPFRONT_LISTEN".into()
        }
    );
    assert!(
        e.to_string()
            .starts_with("environment variable SIPFRONT_LISTEN: \"udp:bad\": "),
        "{e}"
    );
    let e = load_text_with(
        LAYERED,
        &CliOverrides::default(),
        &[("SIPFRONT_BACKENDS", "sip:10.0.0.1,sip:nowhere.invalid")],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "environment variable SIPFRONT_BACKENDS: \"sip:nowhere.invalid\": host \"nowhere.invalid\" does not resolve: no such host"
    );
    let e = load_text_with(
        LAYERED,
        &CliOverrides::default(),
        &[("SIPFRONT_BACKENDS", "sip:10.0.0.1,sip:10.0.0.1")],
    )
    .unwrap_err();
    assert!(
        e.to_string().contains(
            "duplicates \"sip:10.0.0.1\" in backend set \"default\" (first from SIPFRONT_BACKENDS)"
        ),
        "{e}"
    );
    let cli = CliOverrides {
        algorithm: Some("7".into()),
        ..Default::default()
    };
    let e = load_text_with(LAYERED, &cli, &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("flag --algorithm: Kamailio algorithm 7"),
        "{e}"
    );
    let e = load_text_with(
        LAYERED,
        &CliOverrides::default(),
        &[("SIPFRONT_MAX_MESSAGE_SIZE", "100")],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("environment variable SIPFRONT_MAX_MESSAGE_SIZE: 100 is out of range"),
        "{e}"
    );
    let e = load_text_with(
        LAYERED,
        &CliOverrides::default(),
        &[("SIPFRONT_WORKERS", "none")],
    )
    .unwrap_err();
    assert_eq!(
        e.location,
        Location::Env {
            var: "SIPFRONT_WORKERS".into()
        }
    );
    let e = load_text_with(
        LAYERED,
        &CliOverrides::default(),
        &[("SIPFRONT_LOG_FORMAT", "xml")],
    )
    .unwrap_err();
    assert_eq!(
        e.location,
        Location::Env {
            var: "SIPFRONT_LOG_FORMAT".into()
        }
    );
}

#[test]
fn backends_override_picks_the_default_set() {
    let two = "[routing]\ndefault = \"gw\"\n\
        [[backend_set]]\nname = \"pbx\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1\"\n\
        [[backend_set]]\nname = \"gw\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.2\"\n";
    let cfg = load_text_with(
        two,
        &CliOverrides::default(),
        &[
            ("SIPFRONT_BACKENDS", "sip:127.0.0.9"),
            ("SIPFRONT_ALGORITHM", "round-robin"),
        ],
    )
    .unwrap();
    let gw = cfg.backend_set("gw").unwrap();
    assert_eq!(gw.destinations[0].uri, "sip:127.0.0.9");
    assert_eq!(gw.algorithm, Algorithm::RoundRobin);
    assert_eq!(
        cfg.backend_set("pbx").unwrap().destinations[0].uri,
        "sip:127.0.0.1"
    );
    assert_eq!(cfg.backend_set("pbx").unwrap().algorithm, Algorithm::CallId);
    // No routing.default and several sets: a set "default" is created.
    let no_default =
        "[[backend_set]]\nname = \"pbx\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1\"\n\
        [[backend_set]]\nname = \"gw\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.2\"\n";
    let cfg = load_text_with(
        no_default,
        &CliOverrides::default(),
        &[("SIPFRONT_BACKENDS", "sip:127.0.0.9")],
    )
    .unwrap();
    assert_eq!(cfg.backend_sets.len(), 3);
    assert_eq!(cfg.routing.default, "default");
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sipfront-cfg-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn list_file_import() {
    let dir = temp_dir("list");
    std::fs::write(
        dir.join("dispatcher.list"),
        "# Kamailio's README examples\n\
         1 sip:127.0.0.1:5080 0 0 duid=abc;socket=udp:127.0.0.1:5060;my=xyz;ping_from=sip:myproxy.com\n\
         2 sip:127.0.0.1:5080;transport=tcp 0 10 class=4;prefix=448;strip=2\n\
         1 sip:127.0.0.1:7070 0x4 0 duid=xyz;maxload=20;weight=30\n\
         1 sip:127.0.0.1:7074\n\
         1 sip:127.0.0.1:7076 0 5 rweight=7\n",
    )
    .unwrap();
    let cfg_path = dir.join("sipfront.toml");
    std::fs::write(
        &cfg_path,
        "[[backend_set]]\nname = \"gw\"\nalgorithm = \"9\"\nlist_file = \"dispatcher.list\"\nsetid = 1\n\
         [[backend_set.destination]]\nuri = \"sip:127.0.0.1:9000\"\n",
    )
    .unwrap();
    let cfg = load(Some(&cfg_path), &CliOverrides::default(), &|_| None).unwrap();
    let set = &cfg.backend_sets[0];
    assert_eq!(set.algorithm, Algorithm::Weighted);
    assert_eq!(
        set.list_file.as_deref(),
        Some(dir.join("dispatcher.list").as_path())
    );
    let uris: Vec<&str> = set.destinations.iter().map(|d| d.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "sip:127.0.0.1:9000",
            "sip:127.0.0.1:5080",
            "sip:127.0.0.1:7070",
            "sip:127.0.0.1:7074",
            "sip:127.0.0.1:7076"
        ]
    );
    // Kamailio's priority 5 (tried before 0) becomes -5 (lower first);
    // rweight (Kamailio 11) is the weight when there is no weight attr.
    let d = &set.destinations[4];
    assert_eq!((d.weight, d.priority), (7, -5));
    assert_eq!(d.attrs["rweight"], "7");
    assert_eq!(set.destinations[1].attrs["duid"], "abc");
    assert_eq!(set.destinations[1].attrs["ping_from"], "sip:myproxy.com");
    let d = &set.destinations[2];
    assert_eq!(d.weight, 30);
    assert_eq!(d.attrs["disabled"], "1");
    assert_eq!(d.attrs["maxload"], "20");
    assert!(!d.attrs.contains_key("weight"));

    // The tcp destination of set 2 is rejected, pointing into the list.
    std::fs::write(
        &cfg_path,
        "[[backend_set]]\nname = \"gw\"\nlist_file = \"dispatcher.list\"\nsetid = 2\n",
    )
    .unwrap();
    let e = load(Some(&cfg_path), &CliOverrides::default(), &|_| None).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3:3: \"sip:127.0.0.1:5080;transport=tcp\": transport=tcp is not supported yet (only udp)",
            dir.join("dispatcher.list").display()
        )
    );

    // A setid the list lacks points at `setid`.
    std::fs::write(
        &cfg_path,
        "[[backend_set]]\nname = \"gw\"\nlist_file = \"dispatcher.list\"\nsetid = 7\n",
    )
    .unwrap();
    let e = load(Some(&cfg_path), &CliOverrides::default(), &|_| None).unwrap_err();
    assert_eq!(e.line_col(), Some((4, 9)));
    assert_eq!(e.key, "backend_set[0].setid");
    assert!(
        e.reason
            .contains("no destination with setid 7 (setids in the file: 1, 2)"),
        "{e}"
    );

    // An integer algorithm is a Kamailio number too.
    std::fs::write(
        &cfg_path,
        "[[backend_set]]\nname = \"gw\"\nalgorithm = 4\nlist_file = \"dispatcher.list\"\n",
    )
    .unwrap();
    let cfg = load(Some(&cfg_path), &CliOverrides::default(), &|_| None).unwrap();
    assert_eq!(cfg.backend_sets[0].algorithm, Algorithm::RoundRobin);

    // A malformed line of the list.
    std::fs::write(
        dir.join("bad.list"),
        "1 sip:127.0.0.1\n1 sip:127.0.0.2 0 0 weight=x\n",
    )
    .unwrap();
    std::fs::write(
        &cfg_path,
        "[[backend_set]]\nname = \"gw\"\nlist_file = \"bad.list\"\n",
    )
    .unwrap();
    let e = load(Some(&cfg_path), &CliOverrides::default(), &|_| None).unwrap_err();
    assert_eq!(e.file(), Some(dir.join("bad.list").as_path()));
    assert_eq!(e.line_col(), Some((2, 21)));

    // A duplicate between the inline and the listed destinations.
    std::fs::write(
        &cfg_path,
        "[[backend_set]]\nname = \"gw\"\nlist_file = \"dispatcher.list\"\n\
         [[backend_set.destination]]\nuri = \"sip:127.0.0.1:7074\"\n",
    )
    .unwrap();
    let e = load(Some(&cfg_path), &CliOverrides::default(), &|_| None).unwrap_err();
    assert_eq!(e.file(), Some(dir.join("dispatcher.list").as_path()));
    assert_eq!(e.line_col(), Some((5, 3)));
    assert!(e.reason.contains("(first at line 5:7)"), "{e}");

    // A missing list.
    std::fs::write(
        &cfg_path,
        "[[backend_set]]\nname = \"gw\"\nlist_file = \"missing.list\"\n",
    )
    .unwrap();
    let e = load(Some(&cfg_path), &CliOverrides::default(), &|_| None).unwrap_err();
    assert!(
        e.to_string()
            .contains("missing.list: cannot read dispatcher list"),
        "{e}"
    );

    // SIPFRONT_BACKENDS replaces the listed destinations too.
    std::fs::write(
        &cfg_path,
        "[[backend_set]]\nname = \"gw\"\nlist_file = \"dispatcher.list\"\n",
    )
    .unwrap();
    let cfg = load(
        Some(&cfg_path),
        &CliOverrides::default(),
        &env_of(&[("SIPFRONT_BACKENDS", "sip:10.9.9.9")]),
    )
    .unwrap();
    assert_eq!(cfg.backend_sets[0].list_file, None);
    assert_eq!(cfg.backend_sets[0].destinations.len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// RFC 3261 §17.1.2.2: T2 caps the doubling that starts at T1.
#[test]
fn transaction_t2_below_t1_is_refused() {
    assert_err(
        &format!("[transaction]\nt1_ms = 2000\nt2_ms = 1000\n{SET}"),
        3,
        9,
        "transaction.t2_ms",
        "T2",
    );
}

#[test]
fn transaction_failover_codes_must_be_final_non_2xx() {
    assert_err(
        &format!("[transaction]\nfailover_codes = [503, 200]\n{SET}"),
        2,
        24,
        "transaction.failover_codes",
        "final non-2xx",
    );
    let cfg = load_text(&format!(
        "[transaction]\nfailover_codes = [486]\nmax_tries = 2\n{SET}"
    ))
    .unwrap();
    assert_eq!(cfg.transaction.failover_codes, [486]);
    assert_eq!(cfg.transaction.max_tries, 2);
}

const ONE_SET: &str =
    "[[backend_set]]\nname = \"a\"\n[[backend_set.destination]]\nuri = \"sip:10.0.0.5\"\n";

#[test]
fn probe_admin_drain_defaults_and_values() {
    let cfg = load_text(ONE_SET).unwrap();
    assert_eq!(cfg.probe, ProbeConfig::default());
    assert!(!cfg.probe.enabled);
    assert_eq!(cfg.admin.listen, Some("127.0.0.1:9090".parse().unwrap()));
    assert_eq!(cfg.drain, DrainConfig::default());
    // The example file spells out these defaults.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("sipfront.example.toml");
    let ex = load(Some(&example), &CliOverrides::default(), &|_| None).unwrap();
    assert_eq!(ex.probe, ProbeConfig::default());
    assert_eq!(ex.admin.listen, AdminConfig::default().listen);
    assert_eq!(ex.admin.token, None);
    assert!(ex.admin.listen_given);
    assert_eq!(ex.drain, DrainConfig::default());
    let text = format!(
        "[probe]\nenabled = true\nmethod = \"INFO\"\nfrom = \"sip:lb@example.com\"\ninterval_ms = 2000\n\
         timeout_ms = 1500\ndown_threshold = 1\nup_threshold = 5\nreply_codes = [\"2xx\", 404, \"488\"]\nport = 5999\n\
         [admin]\nlisten = \"off\"\ntoken = \"t0k\"\n[drain]\ngrace_ms = 0\nquiet_ms = 100\n{ONE_SET}"
    );
    let cfg = load_text(&text).unwrap();
    let p = &cfg.probe;
    assert!(p.enabled);
    assert_eq!(
        (p.method.as_str(), p.from.as_str()),
        ("INFO", "sip:lb@example.com")
    );
    assert_eq!(
        (
            p.interval_ms,
            p.timeout_ms,
            p.down_threshold,
            p.up_threshold
        ),
        (2000, 1500, 1, 5)
    );
    assert_eq!(
        p.reply_codes,
        [
            ReplyCode::Class(2),
            ReplyCode::Code(404),
            ReplyCode::Code(488)
        ]
    );
    assert!(p.reply_codes[0].matches(202) && !p.reply_codes[0].matches(302));
    assert_eq!(p.port, 5999);
    assert_eq!(cfg.admin.listen, None);
    assert_eq!(cfg.admin.token.as_deref(), Some("t0k"));
    assert_eq!((cfg.drain.grace_ms, cfg.drain.quiet_ms), (0, 100));
    assert!(cfg.summary().contains("probe: INFO every 2000 ms"));
    // A short interval pulls the default timeout down with it.
    let cfg = load_text(&format!("[probe]\ninterval_ms = 200\n{ONE_SET}")).unwrap();
    assert_eq!(cfg.probe.timeout_ms, 200);
}

#[test]
fn probe_admin_drain_errors() {
    assert_err(
        &format!("[probe]\ninterval_ms = 1000\ntimeout_ms = 2000\n{ONE_SET}"),
        3,
        14,
        "probe.timeout_ms",
        "timeout (2000 ms) must not exceed the interval (1000 ms)",
    );
    assert_err(
        &format!("[probe]\nmethod = \"INVITE\"\n{ONE_SET}"),
        2,
        10,
        "probe.method",
        "\"INVITE\": a probe must not create or end a dialog (use OPTIONS)",
    );
    assert_err(
        &format!("[probe]\nreply_codes = [\"2xx\", \"7xx\"]\n{ONE_SET}"),
        2,
        23,
        "probe.reply_codes",
        "\"7xx\": expected a final status code 200..=699 or a class like \"2xx\"",
    );
    assert_err(
        &format!("[probe]\nfrom = \"<sip:x>\"\n{ONE_SET}"),
        2,
        8,
        "probe.from",
        "\"<sip:x>\": expected a sip: or sips: URI without spaces or <>",
    );
    assert_err(
        &format!("[admin]\nlisten = \"localhost:90\"\n{ONE_SET}"),
        2,
        10,
        "admin.listen",
        "\"localhost:90\": expected IP:PORT (e.g. 127.0.0.1:9090, [::1]:9090) or \"off\"",
    );
    assert_err(
        &format!("[drain]\ngrace_ms = -1\n{ONE_SET}"),
        2,
        12,
        "drain.grace_ms",
        "-1 is out of range: milliseconds must be 0..=3600000",
    );
}

#[test]
fn probe_admin_drain_environment() {
    let cfg = load_text_with(
        ONE_SET,
        &CliOverrides::default(),
        &[
            ("SIPFRONT_ADMIN_LISTEN", "0.0.0.0:9091"),
            ("SIPFRONT_ADMIN_TOKEN", "abc"),
            ("SIPFRONT_PROBE", "on"),
            ("SIPFRONT_PROBE_INTERVAL_MS", "3000"),
            ("SIPFRONT_DRAIN_GRACE_MS", "45000"),
        ],
    )
    .unwrap();
    assert_eq!(cfg.admin.listen, Some("0.0.0.0:9091".parse().unwrap()));
    assert_eq!(cfg.admin.token.as_deref(), Some("abc"));
    assert!(cfg.probe.enabled);
    assert_eq!(cfg.probe.interval_ms, 3000);
    assert_eq!(cfg.drain.grace_ms, 45000);
    // An empty SIPFRONT_ADMIN_LISTEN turns the API off.
    let cfg = load_text_with(
        ONE_SET,
        &CliOverrides::default(),
        &[("SIPFRONT_ADMIN_LISTEN", "")],
    )
    .unwrap();
    assert_eq!(cfg.admin.listen, None);
    let e = load_text_with(
        ONE_SET,
        &CliOverrides::default(),
        &[("SIPFRONT_PROBE", "maybe")],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "environment variable SIPFRONT_PROBE: \"maybe\": expected on or off (also true/false, 1/0, yes/no)"
    );
    let e = load_text_with(
        ONE_SET,
        &CliOverrides::default(),
        &[("SIPFRONT_DRAIN_GRACE_MS", "1s")],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("expected an integer number of milliseconds"),
        "{e}"
    );
}

#[test]
fn nat_section_defaults_keys_and_errors() {
    use crate::nat::{ContactFix, Keepalive, RegisterFix, Test, Tests};
    let c = load_text(SET).unwrap();
    assert!(!c.nat.enabled);
    assert_eq!(c.nat.tests, Tests::DEFAULT);
    let c = load_text(&format!(
        "[nat]\nenabled = true\ntests = [\"via-address\", \"sdp-private\"]\ncontact = \"rewrite\"\n\
         register = \"received\"\nkeepalive = \"notify\"\nkeepalive_interval_ms = 15000\n\
         keepalive_failures = 5\nkeepalive_from = \"sip:ping@edge.example.com\"\nmax_flows = 100\n\
         dialog_timeout_ms = 60000\n{SET}"
    ))
    .unwrap();
    let n = &c.nat;
    assert!(n.enabled);
    assert_eq!(n.tests, Tests::of(&[Test::ViaAddress, Test::SdpPrivate]));
    assert_eq!(n.contact, Some(ContactFix::Rewrite));
    assert_eq!(n.register, RegisterFix::Received);
    assert_eq!(n.keepalive, Keepalive::Notify);
    assert_eq!(
        (
            n.keepalive_interval_ms,
            n.keepalive_failures,
            n.max_flows,
            n.dialog_timeout_ms
        ),
        (15_000, 5, 100, 60_000)
    );
    assert_eq!(n.keepalive_from, "sip:ping@edge.example.com");
    assert!(c.summary().contains("nat: on, tests via-address,sdp-private (nat_uac_test 10), contact rewrite, register received, keepalive notify every 15000 ms"));
    assert_eq!(
        load_text(&format!("[nat]\ncontact = \"off\"\n{SET}"))
            .unwrap()
            .nat
            .contact,
        None
    );

    assert_err(
        &format!("[nat]\ntests = [\"nat\"]\n{SET}"),
        2,
        10,
        "nat.tests",
        "not a NAT test",
    );
    assert_err(
        &format!("[nat]\ntests = []\n{SET}"),
        2,
        9,
        "nat.tests",
        "no test",
    );
    assert_err(
        &format!("[nat]\ncontact = \"fix\"\n{SET}"),
        2,
        11,
        "nat.contact",
        "alias, rewrite or off",
    );
    assert_err(
        &format!("[nat]\nregister = \"usrloc\"\n{SET}"),
        2,
        12,
        "nat.register",
        "path, received or contact",
    );
    assert_err(
        &format!("[nat]\nkeepalive = \"ping\"\n{SET}"),
        2,
        13,
        "nat.keepalive",
        "options, notify",
    );
    assert_err(
        &format!("[nat]\nkeepalive_interval_ms = 10\n{SET}"),
        2,
        25,
        "nat.keepalive_interval_ms",
        "out of range",
    );
    assert_err(
        &format!("[nat]\nmax_flows = 0\n{SET}"),
        2,
        13,
        "nat.max_flows",
        "out of range",
    );
    assert_err(
        &format!("[nat]\nkeepalive_from = \"ping\"\n{SET}"),
        2,
        18,
        "nat.keepalive_from",
        "sip: or sips:",
    );
    let e = load_text(&format!("[nat]\nping = 1\n{SET}")).unwrap_err();
    assert!(e.to_string().contains("unknown field `ping`"), "{e}");
}

#[test]
fn nat_flags_and_environment() {
    let cli = CliOverrides {
        nat: true,
        nat_keepalive: Some("crlf".into()),
        ..CliOverrides::default()
    };
    let c = load_text_with(SET, &cli, &[]).unwrap();
    assert!(c.nat.enabled);
    assert_eq!(c.nat.keepalive, crate::nat::Keepalive::Crlf);
    let env = [
        ("SIPFRONT_NAT", "on"),
        ("SIPFRONT_NAT_KEEPALIVE", "zero"),
        ("SIPFRONT_NAT_KEEPALIVE_INTERVAL_MS", "5000"),
    ];
    let c = load_text_with(SET, &CliOverrides::default(), &env).unwrap();
    assert!(c.nat.enabled);
    assert_eq!(c.nat.keepalive, crate::nat::Keepalive::Zero);
    assert_eq!(c.nat.keepalive_interval_ms, 5000);
    // The flag wins over the environment.
    let c = load_text_with(SET, &cli, &env).unwrap();
    assert_eq!(c.nat.keepalive, crate::nat::Keepalive::Crlf);
    let e =
        load_text_with(SET, &CliOverrides::default(), &[("SIPFRONT_NAT", "maybe")]).unwrap_err();
    assert!(e.to_string().contains("SIPFRONT_NAT"), "{e}");
}

#[test]
fn at_most_eight_listen_addresses() {
    let many: Vec<String> = (0..9)
        .map(|i| format!("\"udp:127.0.0.1:{}\"", 6000 + i * 10))
        .collect();
    let e = load_text(&format!("[server]\nlisten = [{}]\n{SET}", many.join(", "))).unwrap_err();
    assert_eq!(e.key, "server.listen", "{e}");
    assert!(e.reason.contains("at most 8"), "{e}");
}

#[test]
fn preloaded_route_policy() {
    use crate::proxy::PreloadedRoute;
    assert_eq!(
        load_text(SET).unwrap().proxy.preloaded_route,
        PreloadedRoute::Ignore
    );
    for (v, want) in [
        ("reject", PreloadedRoute::Reject),
        ("honour", PreloadedRoute::Honour),
        ("honor", PreloadedRoute::Honour),
    ] {
        let c = load_text(&format!("[proxy]\npreloaded_route = \"{v}\"\n{SET}")).unwrap();
        assert_eq!(c.proxy.preloaded_route, want);
    }
    assert_err(
        &format!("[proxy]\npreloaded_route = \"follow\"\n{SET}"),
        2,
        19,
        "proxy.preloaded_route",
        "ignore, reject or honour",
    );
}

#[test]
fn source_acl_lists() {
    let c = load_text(&format!(
        "[proxy]\nallow_sources = [\"10.0.0.0/8\", \"2001:db8::/32\"]\ndeny_sources = [\"10.6.6.6\"]\n{SET}"
    ))
    .unwrap();
    assert_eq!(c.proxy.allow_sources.len(), 2);
    assert_eq!(c.proxy.deny_sources[0].to_string(), "10.6.6.6/32");
    assert!(
        c.summary().contains("allow [10.0.0.0/8,2001:db8::/32]"),
        "{}",
        c.summary()
    );
    assert_err(
        &format!("[proxy]\ndeny_sources = [\"10.0.0.0/33\"]\n{SET}"),
        2,
        17,
        "proxy.deny_sources[0]",
        "expected a network",
    );
}
