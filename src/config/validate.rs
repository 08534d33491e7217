//! From the raw, layered values (file, environment, flags) to a
//! [`Config`]: defaults applied, every value parsed and range-checked,
//! cross-references checked (rule sets, `routing.default`, duplicate
//! names and URIs, egress ports), dispatcher lists read and destination
//! hosts resolved. Each error points at the value that caused it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::dispatcher_list;
use super::error::{ConfigError, Ctx, Location, Origin, Val};
use super::file::{BackendSetFile, FileConfig, RuleFile, Scalar};
use super::schema::*;
use crate::dispatch::{Algorithm, DomainPattern, HeaderMatch, HeaderValueMatch, Rule};
use crate::sip::method::Method;
use crate::sip::scan::is_token_str;
use crate::sip::uri::{Scheme, Uri, UriError};
use crate::sip::Transport;

/// Resolves `host` (a name) and port to addresses.
pub type Resolver<'a> = &'a dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>>;

type Res<T> = Result<T, ConfigError>;

pub(crate) fn build(
    f: FileConfig,
    ctx: Ctx<'_>,
    base_dir: Option<&Path>,
    resolve: Resolver<'_>,
) -> Res<Config> {
    let server = server(&f, ctx)?;
    let log = log(&f, ctx)?;
    let proxy = proxy(&f, ctx)?;
    let transaction = transaction(&f, ctx)?;
    let listen_ips: Vec<IpAddr> = server.listen.iter().map(|l| l.addr.ip()).collect();
    let sets = backend_sets(&f.backend_set, ctx, base_dir, resolve, &listen_ips)?;
    let routing = routing(&f, ctx, &sets)?;
    let probe = probe(&f, ctx)?;
    let admin = admin(&f, ctx)?;
    let drain = drain(&f, ctx)?;
    let nat = nat(&f, ctx)?;
    Ok(Config {
        nat,
        probe,
        admin,
        drain,
        server,
        log,
        proxy,
        transaction,
        routing,
        backend_sets: sets,
        source: ctx.file.map(|s| s.path.clone()),
    })
}

/// An integer in `lo..=hi`.
fn int_in(ctx: Ctx<'_>, v: &Val<i64>, key: &str, lo: i64, hi: i64, what: &str) -> Res<i64> {
    if (lo..=hi).contains(&v.value) {
        Ok(v.value)
    } else {
        Err(ctx.err(
            &v.origin,
            key,
            format!("{} is out of range: {what} must be {lo}..={hi}", v.value),
        ))
    }
}

fn parse_val<T>(
    ctx: Ctx<'_>,
    v: &Val<String>,
    key: &str,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Res<T> {
    f(&v.value).map_err(|r| ctx.err(&v.origin, key, r))
}

// ---- [server] ----

fn server(f: &FileConfig, ctx: Ctx<'_>) -> Res<ServerConfig> {
    let s = &f.server;
    let d = ServerConfig::default();
    let workers = match &s.workers {
        None => d.workers,
        Some(Val {
            value: Scalar::Str(w),
            origin,
        }) => w
            .parse::<Workers>()
            .map_err(|r| ctx.err(origin, "server.workers", r))?,
        Some(Val {
            value: Scalar::Int(n),
            origin,
        }) => match usize::try_from(*n) {
            Ok(n) if n >= 1 => Workers::N(n),
            _ => {
                return Err(ctx.err(
                    origin,
                    "server.workers",
                    format!("{n}: workers must be >= 1 (or \"auto\")"),
                ))
            }
        },
    };
    let io_driver = match &s.io_driver {
        Some(v) => parse_val(ctx, v, "server.io_driver", str::parse)?,
        None => d.io_driver,
    };
    let mut listen: Vec<(Listen, Origin)> = Vec::new();
    match &s.listen {
        None => listen.push((d.listen[0], Origin::Default)),
        Some(list) => {
            if list.value.is_empty() {
                return Err(ctx.err(
                    &list.origin,
                    "server.listen",
                    "at least one listen address is required, e.g. [\"udp:0.0.0.0:5060\"]",
                ));
            }
            let most = crate::proxy::branch::MAX_LISTENS;
            if list.value.len() > most {
                return Err(ctx.err(
                    &list.origin,
                    "server.listen",
                    format!(
                        "{} listen addresses: at most {most} (a Via branch names the one a request came in on)",
                        list.value.len()
                    ),
                ));
            }
            for (i, item) in list.value.iter().enumerate() {
                let key = format!("server.listen[{i}]");
                let l: Listen = parse_val(ctx, item, &key, str::parse)?;
                if let Some((_, first)) = listen.iter().find(|(x, _)| x.addr == l.addr) {
                    return Err(ctx.err(
                        &item.origin,
                        key,
                        format!("{l} is listed twice{}", also_at(ctx, first)),
                    ));
                }
                listen.push((l, item.origin.clone()));
            }
        }
    }
    let advertise = match &s.advertise {
        Some(v) if !v.value.trim().is_empty() => {
            Some(parse_val(ctx, v, "server.advertise", str::parse)?)
        }
        _ => None,
    };
    let egress_port_base = match &s.egress_port_base {
        Some(v) => int_in(ctx, v, "server.egress_port_base", 0, 65535, "a port")? as u16,
        None => d.egress_port_base,
    };
    let buffer = |v: &Option<Val<i64>>, key: &str| -> Res<usize> {
        match v {
            Some(v) => Ok(int_in(ctx, v, key, 0, MAX_SOCKET_BUFFER as i64, "bytes")? as usize),
            None => Ok(DEFAULT_SOCKET_BUFFER),
        }
    };
    let recv_buffer = buffer(&s.recv_buffer, "server.recv_buffer")?;
    let send_buffer = buffer(&s.send_buffer, "server.send_buffer")?;
    let out = ServerConfig {
        workers,
        io_driver,
        listen: listen.iter().map(|(l, _)| *l).collect(),
        advertise,
        egress_port_base,
        recv_buffer,
        send_buffer,
    };
    check_egress(&out, &listen, s.egress_port_base.as_ref(), ctx)?;
    Ok(out)
}

/// Egress ports must fit in u16 and must not land on a listen port of the
/// same IP.
fn check_egress(
    s: &ServerConfig,
    listen: &[(Listen, Origin)],
    base: Option<&Val<i64>>,
    ctx: Ctx<'_>,
) -> Res<()> {
    let n = s.worker_count();
    let base_origin = base.map(|b| b.origin.clone()).unwrap_or_default();
    for (i, (l, origin)) in listen.iter().enumerate() {
        let (origin, key) = if s.egress_port_base == 0 {
            (origin.clone(), format!("server.listen[{i}]"))
        } else {
            (base_origin.clone(), "server.egress_port_base".to_string())
        };
        let first = u32::from(s.egress_port(l, 0).unwrap_or(u16::MAX));
        let last = s.egress_port(l, n - 1).ok_or_else(|| {
            let first = if s.egress_port_base == 0 {
                u32::from(l.addr.port()) + 1
            } else {
                u32::from(s.egress_port_base)
            };
            ctx.err(
                &origin,
                key.clone(),
                format!(
                    "with {n} workers the egress ports for {l} would be {first}..{}, past 65535; \
                     lower the port or set server.egress_port_base (or server.workers)",
                    first + n as u32 - 1
                ),
            )
        })?;
        for (m, _) in listen {
            let same_ip = m.addr.ip() == l.addr.ip()
                || m.addr.ip().is_unspecified()
                || l.addr.ip().is_unspecified();
            let p = u32::from(m.addr.port());
            if same_ip && (first..=u32::from(last)).contains(&p) {
                return Err(ctx.err(
                    &origin,
                    key,
                    format!(
                        "the egress ports for {l} ({first}..{last}, one per worker) include the listen port of {m}; \
                         move one of them or set server.egress_port_base"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// ` (first at line N)` when `first` is in the same file.
fn also_at(ctx: Ctx<'_>, first: &Origin) -> String {
    match ctx.locate(first) {
        Location::File { path, line, column } => {
            let same = ctx.file.is_some_and(|f| f.path == path);
            if same {
                format!(" (first at line {line}:{column})")
            } else {
                format!(" (first at {}:{line}:{column})", path.display())
            }
        }
        Location::Env { var } => format!(" (first from {var})"),
        Location::Flag { flag } => format!(" (first from {flag})"),
        _ => String::new(),
    }
}

// ---- [log], [proxy] ----

fn log(f: &FileConfig, ctx: Ctx<'_>) -> Res<LogConfig> {
    let d = LogConfig::default();
    Ok(LogConfig {
        format: match &f.log.format {
            Some(v) => parse_val(ctx, v, "log.format", str::parse)?,
            None => d.format,
        },
        level: match &f.log.level {
            Some(v) => parse_val(ctx, v, "log.level", parse_log_level)?,
            None => d.level,
        },
    })
}

fn proxy(f: &FileConfig, ctx: Ctx<'_>) -> Res<ProxyConfig> {
    let p = &f.proxy;
    let d = ProxyConfig::default();
    Ok(ProxyConfig {
        mode: match &p.mode {
            Some(v) => parse_val(ctx, v, "proxy.mode", str::parse)?,
            None => d.mode,
        },
        record_route: p.record_route.as_ref().map_or(d.record_route, |v| v.value),
        max_message_size: match &p.max_message_size {
            Some(v) => int_in(
                ctx,
                v,
                "proxy.max_message_size",
                MIN_MAX_MESSAGE_SIZE as i64,
                MAX_MAX_MESSAGE_SIZE as i64,
                "max_message_size",
            )? as usize,
            None => d.max_message_size,
        },
        max_headers: match &p.max_headers {
            Some(v) => int_in(
                ctx,
                v,
                "proxy.max_headers",
                MIN_MAX_HEADERS as i64,
                MAX_MAX_HEADERS as i64,
                "max_headers",
            )? as usize,
            None => d.max_headers,
        },
        max_forwards: match &p.max_forwards {
            Some(v) => int_in(ctx, v, "proxy.max_forwards", 1, 255, "max_forwards")? as u8,
            None => d.max_forwards,
        },
        preloaded_route: match &p.preloaded_route {
            Some(v) => parse_val(ctx, v, "proxy.preloaded_route", str::parse)?,
            None => d.preloaded_route,
        },
        allow_sources: cidr_list(ctx, &p.allow_sources, "proxy.allow_sources")?,
        deny_sources: cidr_list(ctx, &p.deny_sources, "proxy.deny_sources")?,
    })
}

/// A list of networks (`parse_cidr` each).
fn cidr_list(
    ctx: Ctx<'_>,
    list: &Option<Val<Vec<Val<String>>>>,
    key: &str,
) -> Res<Vec<ipnet::IpNet>> {
    let mut out = Vec::new();
    if let Some(list) = list {
        for (j, c) in list.value.iter().enumerate() {
            out.push(parse_val(ctx, c, &format!("{key}[{j}]"), parse_cidr)?);
        }
    }
    Ok(out)
}

// ---- [transaction] ----

fn transaction(f: &FileConfig, ctx: Ctx<'_>) -> Res<TransactionConfig> {
    let t = &f.transaction;
    let d = TransactionConfig::default();
    let ms = |v: &Option<Val<i64>>, key: &str, lo: i64, hi: i64, def: u64| -> Res<u64> {
        match v {
            Some(v) => Ok(int_in(ctx, v, key, lo, hi, "milliseconds")? as u64),
            None => Ok(def),
        }
    };
    let t1_ms = ms(&t.t1_ms, "transaction.t1_ms", 10, 10_000, d.t1_ms)?;
    let t2_ms = ms(&t.t2_ms, "transaction.t2_ms", 10, 60_000, d.t2_ms)?;
    if t2_ms < t1_ms {
        let origin = t.t2_ms.as_ref().or(t.t1_ms.as_ref()).map(|v| &v.origin);
        return Err(ctx.err(
            origin.unwrap_or(&Origin::Default),
            "transaction.t2_ms",
            format!("T2 ({t2_ms} ms) must not be below T1 ({t1_ms} ms): RFC 3261 §17.1.2.2"),
        ));
    }
    let mut failover_codes = d.failover_codes.clone();
    if let Some(list) = &t.failover_codes {
        failover_codes.clear();
        for c in &list.value {
            failover_codes.push(int_in(
                ctx,
                c,
                "transaction.failover_codes",
                300,
                699,
                "a final non-2xx status code",
            )? as u16);
        }
    }
    Ok(TransactionConfig {
        t1_ms,
        t2_ms,
        t4_ms: ms(&t.t4_ms, "transaction.t4_ms", 10, 60_000, d.t4_ms)?,
        fr_timeout_ms: ms(
            &t.fr_timeout_ms,
            "transaction.fr_timeout_ms",
            100,
            600_000,
            d.fr_timeout_ms,
        )?,
        fr_inv_timeout_ms: ms(
            &t.fr_inv_timeout_ms,
            "transaction.fr_inv_timeout_ms",
            1000,
            3_600_000,
            d.fr_inv_timeout_ms,
        )?,
        max_transactions: match &t.max_transactions {
            Some(v) => int_in(
                ctx,
                v,
                "transaction.max_transactions",
                16,
                16_777_216,
                "transactions",
            )? as usize,
            None => d.max_transactions,
        },
        max_tries: match &t.max_tries {
            Some(v) => int_in(ctx, v, "transaction.max_tries", 1, 16, "tries")? as u8,
            None => d.max_tries,
        },
        failover_codes,
    })
}

// ---- [probe], [admin], [drain] ----

/// A From URI sipfront writes into requests of its own (probes,
/// keepalives): `sip:`/`sips:`, printable, no brackets or quotes.
fn from_uri(u: &str) -> Result<String, String> {
    let ok = (u.starts_with("sip:") || u.starts_with("sips:"))
        && u.len() <= 256
        && u.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"'));
    if ok {
        Ok(u.to_string())
    } else {
        Err(format!(
            "{u:?}: expected a sip: or sips: URI without spaces or <>"
        ))
    }
}

fn probe(f: &FileConfig, ctx: Ctx<'_>) -> Res<ProbeConfig> {
    let p = &f.probe;
    let d = ProbeConfig::default();
    let int = |v: &Option<Val<i64>>, key: &str, lo: i64, hi: i64, what: &str, def: u64| match v {
        Some(v) => Ok(int_in(ctx, v, key, lo, hi, what)? as u64),
        None => Ok(def),
    };
    let method = match &p.method {
        Some(v) => parse_val(ctx, v, "probe.method", |m| {
            if !is_token_str(m.as_bytes()) {
                return Err(format!("{m:?}: not a SIP method token"));
            }
            match Method::from_bytes(m.as_bytes()) {
                Some(Method::Invite | Method::Ack | Method::Cancel | Method::Bye) => Err(format!(
                    "{m:?}: a probe must not create or end a dialog (use OPTIONS)"
                )),
                _ => Ok(m.to_string()),
            }
        })?,
        None => d.method,
    };
    let from = match &p.from {
        Some(v) => parse_val(ctx, v, "probe.from", from_uri)?,
        None => d.from,
    };
    let interval_ms = int(
        &p.interval_ms,
        "probe.interval_ms",
        100,
        3_600_000,
        "milliseconds",
        d.interval_ms,
    )?;
    let timeout_ms = int(
        &p.timeout_ms,
        "probe.timeout_ms",
        10,
        60_000,
        "milliseconds",
        // Unset, the timeout follows a short interval down.
        d.timeout_ms.min(interval_ms),
    )?;
    if timeout_ms > interval_ms {
        let origin = p
            .timeout_ms
            .as_ref()
            .or(p.interval_ms.as_ref())
            .map(|v| &v.origin);
        return Err(ctx.err(
            origin.unwrap_or(&Origin::Default),
            "probe.timeout_ms",
            format!("timeout ({timeout_ms} ms) must not exceed the interval ({interval_ms} ms)"),
        ));
    }
    let mut reply_codes = d.reply_codes.clone();
    if let Some(list) = &p.reply_codes {
        reply_codes.clear();
        for c in &list.value {
            let text = match &c.value {
                Scalar::Str(s) => s.clone(),
                Scalar::Int(i) => i.to_string(),
            };
            reply_codes.push(
                text.parse::<ReplyCode>()
                    .map_err(|r| ctx.err(&c.origin, "probe.reply_codes", r))?,
            );
        }
        if reply_codes.is_empty() {
            return Err(ctx.err(
                &list.origin,
                "probe.reply_codes",
                "empty: no reply would count as alive",
            ));
        }
    }
    Ok(ProbeConfig {
        enabled: p.enabled.as_ref().map_or(d.enabled, |v| v.value),
        method,
        from,
        interval_ms,
        timeout_ms,
        down_threshold: int(
            &p.down_threshold,
            "probe.down_threshold",
            1,
            100,
            "probes",
            d.down_threshold.into(),
        )? as u32,
        up_threshold: int(
            &p.up_threshold,
            "probe.up_threshold",
            1,
            100,
            "probes",
            d.up_threshold.into(),
        )? as u32,
        reply_codes,
        port: int(&p.port, "probe.port", 0, 65535, "a port", d.port.into())? as u16,
    })
}

fn admin(f: &FileConfig, ctx: Ctx<'_>) -> Res<AdminConfig> {
    let a = &f.admin;
    let d = AdminConfig::default();
    let listen = match &a.listen {
        Some(v) => parse_val(ctx, v, "admin.listen", |s| {
            let t = s.trim();
            if t.is_empty() || t.eq_ignore_ascii_case("off") {
                return Ok(None);
            }
            t.parse::<SocketAddr>().map(Some).map_err(|_| {
                format!("{s:?}: expected IP:PORT (e.g. 127.0.0.1:9090, [::1]:9090) or \"off\"")
            })
        })?,
        None => d.listen,
    };
    let token = match &a.token {
        Some(v) => parse_val(ctx, v, "admin.token", |t| {
            if t.is_empty() {
                Ok(None)
            } else if t.len() > 512 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                Err("expected at most 512 visible ASCII characters (no spaces)".to_string())
            } else {
                Ok(Some(t.to_string()))
            }
        })?,
        None => d.token,
    };
    Ok(AdminConfig {
        listen,
        token,
        listen_given: a.listen.is_some(),
    })
}

fn drain(f: &FileConfig, ctx: Ctx<'_>) -> Res<DrainConfig> {
    let r = &f.drain;
    let d = DrainConfig::default();
    Ok(DrainConfig {
        grace_ms: match &r.grace_ms {
            Some(v) => int_in(ctx, v, "drain.grace_ms", 0, 3_600_000, "milliseconds")? as u64,
            None => d.grace_ms,
        },
        quiet_ms: match &r.quiet_ms {
            Some(v) => int_in(ctx, v, "drain.quiet_ms", 0, 600_000, "milliseconds")? as u64,
            None => d.quiet_ms,
        },
    })
}

// ---- [[backend_set]] ----

// ---- [nat] ----

fn nat(f: &FileConfig, ctx: Ctx<'_>) -> Res<crate::nat::NatConfig> {
    use crate::nat::{parse_contact_fix, NatConfig, Test, Tests};
    let n = &f.nat;
    let d = NatConfig::default();
    let int = |v: &Option<Val<i64>>, key: &str, lo: i64, hi: i64, what: &str, def: u64| match v {
        Some(v) => Ok(int_in(ctx, v, key, lo, hi, what)? as u64),
        None => Ok(def),
    };
    let tests = match &n.tests {
        Some(list) => {
            let mut t = Vec::new();
            for v in &list.value {
                t.push(parse_val(ctx, v, "nat.tests", |s| {
                    Test::from_name(s).ok_or_else(|| {
                        let names: Vec<&str> = Test::ALL.iter().map(|t| t.name()).collect();
                        format!("{s:?}: not a NAT test; expected {}", names.join(", "))
                    })
                })?);
            }
            if t.is_empty() {
                return Err(ctx.err(
                    &list.origin,
                    "nat.tests",
                    "no test: NAT could never be detected (set enabled = false instead)",
                ));
            }
            Tests::of(&t)
        }
        None => d.tests,
    };
    let keepalive_from = match &n.keepalive_from {
        Some(v) => parse_val(ctx, v, "nat.keepalive_from", from_uri)?,
        None => d.keepalive_from,
    };
    Ok(NatConfig {
        enabled: n.enabled.as_ref().map_or(d.enabled, |v| v.value),
        tests,
        contact: match &n.contact {
            Some(v) => parse_val(ctx, v, "nat.contact", parse_contact_fix)?,
            None => d.contact,
        },
        register: match &n.register {
            Some(v) => parse_val(ctx, v, "nat.register", str::parse)?,
            None => d.register,
        },
        keepalive: match &n.keepalive {
            Some(v) => parse_val(ctx, v, "nat.keepalive", str::parse)?,
            None => d.keepalive,
        },
        keepalive_interval_ms: int(
            &n.keepalive_interval_ms,
            "nat.keepalive_interval_ms",
            100,
            3_600_000,
            "milliseconds",
            d.keepalive_interval_ms,
        )?,
        keepalive_failures: int(
            &n.keepalive_failures,
            "nat.keepalive_failures",
            1,
            255,
            "keepalives",
            u64::from(d.keepalive_failures),
        )? as u8,
        keepalive_from,
        max_flows: int(
            &n.max_flows,
            "nat.max_flows",
            1,
            16_777_216,
            "flows",
            d.max_flows as u64,
        )? as usize,
        dialog_timeout_ms: int(
            &n.dialog_timeout_ms,
            "nat.dialog_timeout_ms",
            1000,
            86_400_000,
            "milliseconds",
            d.dialog_timeout_ms,
        )?,
    })
}

fn valid_set_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn backend_sets(
    raw: &[Val<BackendSetFile>],
    ctx: Ctx<'_>,
    base_dir: Option<&Path>,
    resolve: Resolver<'_>,
    listen_ips: &[IpAddr],
) -> Res<Vec<BackendSetConfig>> {
    if raw.is_empty() {
        return Err(ctx.err(
            &Origin::Default,
            "backend_set",
            "no backend set: define a [[backend_set]] with destinations, \
             or give SIPFRONT_BACKENDS or --backend",
        ));
    }
    let mut sets: Vec<BackendSetConfig> = Vec::new();
    let mut name_origins: Vec<Origin> = Vec::new();
    for (i, set) in raw.iter().enumerate() {
        let s = &set.value;
        let key = format!("backend_set[{i}]");
        let name = s.name.value.clone();
        if !valid_set_name(&name) {
            return Err(ctx.err(
                &s.name.origin,
                format!("{key}.name"),
                format!("{name:?}: a set name is 1 to 64 of A-Z a-z 0-9 _ - ."),
            ));
        }
        if let Some(j) = sets.iter().position(|x| x.name == name) {
            return Err(ctx.err(
                &s.name.origin,
                format!("{key}.name"),
                format!(
                    "duplicate backend set name {name:?}{}",
                    also_at(ctx, &name_origins[j])
                ),
            ));
        }
        let algorithm = match &s.algorithm {
            Some(v) => {
                let text = match &v.value {
                    Scalar::Str(a) => a.clone(),
                    Scalar::Int(n) => n.to_string(),
                };
                text.parse::<Algorithm>()
                    .map_err(|e| ctx.err(&v.origin, format!("{key}.algorithm"), e.to_string()))?
            }
            None => DEFAULT_ALGORITHM,
        };
        let setid = match &s.setid {
            Some(v) => int_in(
                ctx,
                v,
                &format!("{key}.setid"),
                0,
                i64::from(u32::MAX),
                "setid",
            )? as u32,
            None => DEFAULT_SETID,
        };
        let mut dests: Vec<(DestinationConfig, Origin, String)> = Vec::new();
        for (j, d) in s.destination.iter().enumerate() {
            let dkey = format!("{key}.destination[{j}]");
            let dv = &d.value;
            let weight = match &dv.weight {
                Some(w) => int_in(
                    ctx,
                    w,
                    &format!("{dkey}.weight"),
                    1,
                    i64::from(MAX_WEIGHT),
                    "weight",
                )? as u32,
                None => DEFAULT_WEIGHT,
            };
            let priority = match &dv.priority {
                Some(p) => int_in(
                    ctx,
                    p,
                    &format!("{dkey}.priority"),
                    i64::from(i32::MIN),
                    i64::from(i32::MAX),
                    "priority",
                )? as i32,
                None => DEFAULT_PRIORITY,
            };
            let ukey = format!("{dkey}.uri");
            let addr = destination_addr(&dv.uri.value, resolve, listen_ips)
                .map_err(|r| ctx.err(&dv.uri.origin, ukey.clone(), r))?;
            dests.push((
                DestinationConfig {
                    uri: dv.uri.value.trim().to_string(),
                    addr,
                    weight,
                    priority,
                    attrs: dv.attrs.clone(),
                },
                dv.uri.origin.clone(),
                ukey,
            ));
        }
        let list_file = match &s.list_file {
            Some(v) if !v.value.trim().is_empty() => {
                let p = PathBuf::from(v.value.trim());
                let p = match base_dir {
                    Some(b) if p.is_relative() => b.join(p),
                    _ => p,
                };
                let entries = dispatcher_list::load(&p)?;
                let mut present: Vec<u32> = entries.iter().map(|e| e.setid).collect();
                present.sort_unstable();
                present.dedup();
                let mine: Vec<_> = entries.into_iter().filter(|e| e.setid == setid).collect();
                if mine.is_empty() {
                    let at = s.setid.as_ref().map_or(&v.origin, |x| &x.origin);
                    let key = if s.setid.is_some() {
                        format!("{key}.setid")
                    } else {
                        format!("{key}.list_file")
                    };
                    let have: Vec<String> = present.iter().map(u32::to_string).collect();
                    return Err(ctx.err(
                        at,
                        key,
                        format!(
                            "{} has no destination with setid {setid} (setids in the file: {})",
                            p.display(),
                            if have.is_empty() {
                                "none".into()
                            } else {
                                have.join(", ")
                            }
                        ),
                    ));
                }
                for e in mine {
                    let origin = Origin::At {
                        path: p.clone(),
                        line: e.line,
                        column: e.uri_column,
                    };
                    let addr = destination_addr(&e.uri, resolve, listen_ips)
                        .map_err(|r| ctx.err(&origin, "", r))?;
                    let mut attrs = e.attrs.clone();
                    if e.disabled() {
                        attrs.insert("disabled".into(), "1".into());
                    }
                    let weight = match (e.weight, attrs.get("rweight")) {
                        (Some(w), _) => w,
                        // Kamailio 11's relative weight is what `weighted` does.
                        (None, Some(rw)) => rw
                            .parse::<u32>()
                            .ok()
                            .filter(|w| (1..=MAX_WEIGHT).contains(w))
                            .ok_or_else(|| {
                                ctx.err(
                                    &origin,
                                    "",
                                    format!(
                                        "attr rweight={rw:?}: expected an integer 1..={MAX_WEIGHT}"
                                    ),
                                )
                            })?,
                        (None, None) => DEFAULT_WEIGHT,
                    };
                    dests.push((
                        DestinationConfig {
                            uri: e.uri.clone(),
                            addr,
                            weight,
                            // Kamailio tries the highest priority first,
                            // sipfront the lowest.
                            priority: e.priority.checked_neg().unwrap_or(i32::MAX),
                            attrs,
                        },
                        origin,
                        String::new(),
                    ));
                }
                Some(p)
            }
            _ => None,
        };
        if dests.is_empty() {
            return Err(ctx.err(
                &set.origin,
                key,
                format!(
                    "backend set {name:?} has no destinations; add [[backend_set.destination]] \
                     entries or a list_file"
                ),
            ));
        }
        // Duplicates: same host (case-insensitive) and effective port.
        let mut seen: HashMap<(String, u16), usize> = HashMap::new();
        for (j, (d, origin, dkey)) in dests.iter().enumerate() {
            let k = hop_key(&d.uri);
            if let Some(&first) = seen.get(&k) {
                return Err(ctx.err(
                    origin,
                    dkey.clone(),
                    format!(
                        "{:?} duplicates {:?} in backend set {name:?}{}",
                        d.uri,
                        dests[first].0.uri,
                        also_at(ctx, &dests[first].1)
                    ),
                ));
            }
            seen.insert(k, j);
        }
        sets.push(BackendSetConfig {
            name,
            algorithm,
            list_file,
            setid,
            destinations: dests.into_iter().map(|(d, _, _)| d).collect(),
        });
        name_origins.push(s.name.origin.clone());
    }
    Ok(sets)
}

/// `(host lowercased, port)` of an already checked destination URI.
fn hop_key(uri: &str) -> (String, u16) {
    match Uri::parse_sip(uri.as_bytes()) {
        Ok(u) => (
            String::from_utf8_lossy(u.host_raw).to_ascii_lowercase(),
            u.port.unwrap_or(DEFAULT_SIP_PORT),
        ),
        Err(_) => (uri.to_string(), 0),
    }
}

/// Checks a destination URI and resolves it to the address sipfront
/// sends to.
pub(crate) fn destination_addr(
    uri: &str,
    resolve: Resolver<'_>,
    listen_ips: &[IpAddr],
) -> Result<SocketAddr, String> {
    let t = uri.trim();
    let u = match Uri::parse_sip(t.as_bytes()) {
        Ok(u) => u,
        Err(UriError::BadPort) => {
            let after_host = t.rsplit_once(':').map_or("", |(_, p)| p);
            let digits: &str = after_host.split([';', '?']).next().unwrap_or("");
            return Err(
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    format!("{uri:?}: port out of range (1..=65535)")
                } else {
                    format!("{uri:?}: bad port")
                },
            );
        }
        Err(UriError::BadScheme | UriError::UnsupportedScheme) => {
            return Err(format!("{uri:?}: expected a sip URI, sip:host[:port]"))
        }
        Err(e) => return Err(format!("{uri:?}: {e}; expected sip:host[:port]")),
    };
    match u.scheme {
        Scheme::Sip => {}
        Scheme::Sips => {
            return Err(format!(
                "{uri:?}: sips (TLS) is not supported yet; use sip:"
            ))
        }
        _ => return Err(format!("{uri:?}: expected a sip URI, sip:host[:port]")),
    }
    if let Some(tr) = u.transport() {
        if Transport::from_bytes(tr) != Transport::Udp {
            return Err(format!(
                "{uri:?}: transport={} is not supported yet (only udp)",
                String::from_utf8_lossy(tr)
            ));
        }
    }
    if u.headers.is_some() {
        return Err(format!(
            "{uri:?}: a destination cannot carry URI headers (?...)"
        ));
    }
    let port = u.port.unwrap_or(DEFAULT_SIP_PORT);
    let candidates: Vec<SocketAddr> = match u.host.and_then(|h| h.ip()) {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => {
            let host = String::from_utf8_lossy(u.host_raw);
            let host = host.strip_suffix('.').unwrap_or(&host);
            match resolve(host, port) {
                Ok(a) if !a.is_empty() => a,
                Ok(_) => return Err(format!("{uri:?}: host {host:?} resolves to no address")),
                Err(e) => return Err(format!("{uri:?}: host {host:?} does not resolve: {e}")),
            }
        }
    };
    let reachable = |a: &SocketAddr| {
        listen_ips.iter().any(|l| match (l, a.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => true,
            (IpAddr::V6(l6), IpAddr::V4(_)) => l6.is_unspecified(),
            _ => false,
        })
    };
    match candidates.iter().find(|a| reachable(a)) {
        Some(a) => Ok(*a),
        None => {
            let a = candidates[0];
            let fam = if a.is_ipv6() { "IPv6" } else { "IPv4" };
            Err(format!(
                "{uri:?}: {} is {fam} but no listen address is {fam}, so there is no socket to send from",
                a.ip()
            ))
        }
    }
}

// ---- [routing] ----

fn routing(f: &FileConfig, ctx: Ctx<'_>, sets: &[BackendSetConfig]) -> Res<RoutingConfig> {
    let names = || {
        sets.iter()
            .map(|s| format!("{:?}", s.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let exists = |n: &str| sets.iter().any(|s| s.name == n);
    let default = match &f.routing.default {
        Some(v) => {
            if !exists(&v.value) {
                return Err(ctx.err(
                    &v.origin,
                    "routing.default",
                    format!("no backend set named {:?} (sets: {})", v.value, names()),
                ));
            }
            v.value.clone()
        }
        None => match sets {
            [only] => only.name.clone(),
            _ if exists(DEFAULT_SET) => DEFAULT_SET.to_string(),
            _ => {
                return Err(ctx.err(
                    &Origin::Default,
                    "routing.default",
                    format!(
                        "not set, and there are several backend sets but none named \"default\"; \
                         set routing.default to the set used when no rule matches (sets: {})",
                        names()
                    ),
                ))
            }
        },
    };
    let mut rules = Vec::new();
    for (i, r) in f.routing.rule.iter().enumerate() {
        rules.push(rule(
            &r.value,
            &format!("routing.rule[{i}]"),
            ctx,
            &exists,
            &names,
        )?);
    }
    Ok(RoutingConfig { default, rules })
}

fn rule(
    r: &RuleFile,
    key: &str,
    ctx: Ctx<'_>,
    exists: &dyn Fn(&str) -> bool,
    names: &dyn Fn() -> String,
) -> Res<Rule<String>> {
    if !exists(&r.set.value) {
        return Err(ctx.err(
            &r.set.origin,
            format!("{key}.set"),
            format!("no backend set named {:?} (sets: {})", r.set.value, names()),
        ));
    }
    let mut methods = Vec::new();
    if let Some(ms) = &r.methods {
        for (j, m) in ms.value.iter().enumerate() {
            let mkey = format!("{key}.methods[{j}]");
            let t = m.value.trim();
            match Method::from_bytes(t.as_bytes()) {
                None => {
                    return Err(ctx.err(
                        &m.origin,
                        mkey,
                        format!("{:?} is not a SIP method token", m.value),
                    ))
                }
                Some(Method::Other) => {
                    let up = t.to_ascii_uppercase();
                    if !matches!(
                        Method::from_bytes(up.as_bytes()),
                        Some(Method::Other) | None
                    ) {
                        return Err(ctx.err(
                            &m.origin,
                            mkey,
                            format!(
                                "{t:?}: methods are case-sensitive (RFC 3261 §7.1); did you mean {up:?}?"
                            ),
                        ));
                    }
                }
                Some(_) => {}
            }
            methods.push(t.to_string());
        }
    }
    let ruri_user_prefix = match &r.ruri_user_prefix {
        Some(v) if v.value.is_empty() => {
            return Err(ctx.err(
                &v.origin,
                format!("{key}.ruri_user_prefix"),
                "empty prefix; omit the key to match any user",
            ))
        }
        Some(v) => Some(v.value.clone()),
        None => None,
    };
    let ruri_domain = match &r.ruri_domain {
        Some(v) => Some(parse_val(ctx, v, &format!("{key}.ruri_domain"), |d| {
            d.parse::<DomainPattern>().map_err(|e| e.to_string())
        })?),
        None => None,
    };
    let mut source = Vec::new();
    if let Some(list) = &r.source {
        for (j, c) in list.value.iter().enumerate() {
            source.push(parse_val(
                ctx,
                c,
                &format!("{key}.source[{j}]"),
                parse_cidr,
            )?);
        }
    }
    let header = match &r.header {
        Some(h) => {
            let hv = &h.value;
            let hkey = format!("{key}.header");
            let name = hv.name.value.trim();
            if !is_token_str(name.as_bytes()) {
                return Err(ctx.err(
                    &hv.name.origin,
                    format!("{hkey}.name"),
                    format!("{:?} is not a header name (a token)", hv.name.value),
                ));
            }
            let value = match (&hv.value, &hv.prefix) {
                (Some(_), Some(p)) => {
                    return Err(ctx.err(
                        &p.origin,
                        format!("{hkey}.prefix"),
                        "give value or prefix, not both",
                    ))
                }
                (Some(v), None) => HeaderValueMatch::Equals(v.value.trim().to_string()),
                (None, Some(p)) if p.value.trim().is_empty() => {
                    return Err(ctx.err(
                        &p.origin,
                        format!("{hkey}.prefix"),
                        "empty prefix; give only the name to match a header that is present",
                    ))
                }
                (None, Some(p)) => HeaderValueMatch::Prefix(p.value.trim().to_string()),
                (None, None) => HeaderValueMatch::Present,
            };
            Some(HeaderMatch {
                name: name.to_string(),
                value,
            })
        }
        None => None,
    };
    Ok(Rule {
        name: None,
        set: r.set.value.clone(),
        methods,
        ruri_user_prefix,
        ruri_domain,
        source,
        header,
    })
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128).
pub(crate) fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<IpNet>() {
        return Ok(n);
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(format!(
        "{s:?}: expected a network like 10.0.0.0/8 or 2001:db8::/32, or an address"
    ))
}
