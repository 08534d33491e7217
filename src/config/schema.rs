//! The validated configuration: the typed structs the rest of sipfront
//! reads, their defaults, and the parsers for the values that are written
//! as strings (listen addresses, `host[:port]`, log levels). A value whose
//! type belongs to the code that uses it is parsed into that type
//! ([`Algorithm`], the routing [`Rule`]s and their `DomainPattern`, from
//! `dispatch`). A [`Config`] only exists after validation, so every value
//! here is known to be usable; `docs/configuration.md` documents each key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::dispatch::{Algorithm, Rule};
use crate::sip::host::{parse_host_port, Host};
use crate::sip::Transport;

// ---- defaults (documented once, in docs/configuration.md) ----

pub const DEFAULT_LISTEN: &str = "udp:0.0.0.0:5060";
pub const DEFAULT_EGRESS_PORT_BASE: u16 = 0;
pub const DEFAULT_SOCKET_BUFFER: usize = 8 * 1024 * 1024;
pub const DEFAULT_LOG_LEVEL: &str = "info";
pub const DEFAULT_RECORD_ROUTE: bool = true;
/// What UDP can carry: the largest `max_message_size`.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = MAX_MAX_MESSAGE_SIZE;
pub const DEFAULT_MAX_HEADERS: usize = 128;
pub const DEFAULT_MAX_FORWARDS: u8 = 70;
pub const DEFAULT_SET: &str = "default";
pub const DEFAULT_ALGORITHM: Algorithm = Algorithm::CallId;
pub const DEFAULT_SETID: u32 = 1;
pub const DEFAULT_WEIGHT: u32 = 1;
pub const DEFAULT_PRIORITY: i32 = 0;
/// Port of a listen address or destination URI without one: UDP's
/// (RFC 3261 §19.1.2).
pub const DEFAULT_SIP_PORT: u16 = Transport::Udp.default_port();

// ---- bounds ----

pub const MIN_MAX_MESSAGE_SIZE: usize = 1024;
pub const MAX_MAX_MESSAGE_SIZE: usize = 65535;
/// A request carries at least six headers (RFC 3261 §8.1.1: To, From,
/// CSeq, Call-ID, Max-Forwards, Via).
pub const MIN_MAX_HEADERS: usize = 6;
pub const MAX_MAX_HEADERS: usize = 4096;
pub const MAX_WEIGHT: u32 = 65535;
/// setsockopt takes an `int`.
pub const MAX_SOCKET_BUFFER: usize = i32::MAX as usize;

/// The whole validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub proxy: ProxyConfig,
    pub transaction: TransactionConfig,
    pub routing: RoutingConfig,
    /// In file order; names are unique.
    pub backend_sets: Vec<BackendSetConfig>,
    pub probe: ProbeConfig,
    pub admin: AdminConfig,
    pub drain: DrainConfig,
    /// `[nat]`: its defaults live with the code, in `crate::nat`.
    pub nat: crate::nat::NatConfig,
    /// The config file that was read, if any.
    pub source: Option<PathBuf>,
}

impl Config {
    /// The backend set named `name`.
    pub fn backend_set(&self, name: &str) -> Option<&BackendSetConfig> {
        self.backend_sets.iter().find(|s| s.name == name)
    }

    /// The set used when no rule matches (`routing.default`); it always
    /// exists in a validated config.
    pub fn default_set(&self) -> Option<&BackendSetConfig> {
        self.backend_set(&self.routing.default)
    }

    /// A human summary of what will run, for `--check-config` and the
    /// startup log.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let sv = &self.server;
        let listen: Vec<String> = sv.listen.iter().map(Listen::to_string).collect();
        let _ = writeln!(
            s,
            "server: {} workers ({}), io_driver {}, listen {}",
            sv.worker_count(),
            sv.workers,
            sv.io_driver,
            listen.join(" ")
        );
        if let Some(a) = &sv.advertise {
            let _ = writeln!(s, "  advertise {a}");
        }
        for l in &sv.listen {
            let n = sv.worker_count();
            let first = sv.egress_port(l, 0);
            let last = sv.egress_port(l, n.saturating_sub(1));
            let _ = writeln!(
                s,
                "  egress for {l}: {}:{}..{}",
                l.addr.ip(),
                first.unwrap_or(0),
                last.unwrap_or(0)
            );
        }
        let p = &self.proxy;
        let _ = writeln!(
            s,
            "proxy: {}, record_route {}, max_message_size {}, max_headers {}, max_forwards {}, preloaded_route {}",
            p.mode,
            if p.record_route { "on" } else { "off" },
            p.max_message_size,
            p.max_headers,
            p.max_forwards,
            p.preloaded_route.name()
        );
        let nets = |v: &[ipnet::IpNet]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        if !p.allow_sources.is_empty() || !p.deny_sources.is_empty() {
            let _ = writeln!(
                s,
                "  requests from backends, and from allow [{}] (empty: any) less deny [{}]",
                nets(&p.allow_sources),
                nets(&p.deny_sources)
            );
        }
        if p.mode == ProxyMode::Stateful {
            let t = &self.transaction;
            let _ = writeln!(
                s,
                "transaction: T1 {} ms, T2 {} ms, T4 {} ms, fr {} ms, fr_inv {} ms, max {} per worker, {} tries on {:?}",
                t.t1_ms,
                t.t2_ms,
                t.t4_ms,
                t.fr_timeout_ms,
                t.fr_inv_timeout_ms,
                t.max_transactions,
                t.max_tries,
                t.failover_codes
            );
        }
        let pr = &self.probe;
        if pr.enabled {
            let codes: Vec<String> = pr.reply_codes.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                s,
                "probe: {} every {} ms, timeout {} ms, down after {}, up after {}, accept {}",
                pr.method,
                pr.interval_ms,
                pr.timeout_ms,
                pr.down_threshold,
                pr.up_threshold,
                codes.join(",")
            );
        } else {
            let _ = writeln!(s, "probe: off");
        }
        match self.admin.listen {
            Some(a) => {
                let _ = writeln!(
                    s,
                    "admin: http://{a}{}",
                    if self.admin.token.is_some() {
                        " (bearer token)"
                    } else {
                        ""
                    }
                );
            }
            None => {
                let _ = writeln!(s, "admin: off");
            }
        }
        let _ = writeln!(
            s,
            "drain: grace {} ms, quiet {} ms",
            self.drain.grace_ms, self.drain.quiet_ms
        );
        let _ = writeln!(s, "{}", self.nat.summary());
        let _ = writeln!(s, "log: {} at {}", self.log.format, self.log.level);
        let _ = writeln!(s, "backend sets: {}", self.backend_sets.len());
        for set in &self.backend_sets {
            let from = match &set.list_file {
                Some(f) => format!(", setid {} of {}", set.setid, f.display()),
                None => String::new(),
            };
            let _ = writeln!(
                s,
                "  set \"{}\": algorithm {}, {} destination(s){from}",
                set.name,
                set.algorithm,
                set.destinations.len()
            );
            for d in &set.destinations {
                let mut line = format!(
                    "    {} -> {} weight {} priority {}",
                    d.uri, d.addr, d.weight, d.priority
                );
                if !d.attrs.is_empty() {
                    let attrs: Vec<String> =
                        d.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    line.push_str(" attrs ");
                    line.push_str(&attrs.join(";"));
                }
                let _ = writeln!(s, "{line}");
            }
        }
        let _ = writeln!(
            s,
            "routing: {} rule(s), default set \"{}\"",
            self.routing.rules.len(),
            self.routing.default
        );
        for (i, r) in self.routing.rules.iter().enumerate() {
            let _ = writeln!(s, "  rule {}: {} -> set \"{}\"", i + 1, r.describe(), r.set);
        }
        s
    }
}

// ---- [server] ----

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub workers: Workers,
    pub io_driver: IoDriver,
    /// At least one.
    pub listen: Vec<Listen>,
    /// Written in Via/Record-Route instead of the listen address.
    pub advertise: Option<Advertise>,
    /// 0: worker `w` sends from `listen_port + 1 + w`; else `base + w`.
    pub egress_port_base: u16,
    /// SO_RCVBUF bytes per socket; 0 leaves the kernel default.
    pub recv_buffer: usize,
    /// SO_SNDBUF bytes per socket; 0 leaves the kernel default.
    pub send_buffer: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            workers: Workers::Auto,
            io_driver: IoDriver::Auto,
            listen: vec![DEFAULT_LISTEN.parse().expect("default listen parses")],
            advertise: None,
            egress_port_base: DEFAULT_EGRESS_PORT_BASE,
            recv_buffer: DEFAULT_SOCKET_BUFFER,
            send_buffer: DEFAULT_SOCKET_BUFFER,
        }
    }
}

impl ServerConfig {
    /// The number of workers that will run (`auto` resolved to the CPUs
    /// this process may use).
    pub fn worker_count(&self) -> usize {
        self.workers.count()
    }

    /// The port worker `worker` sends to backends from, on `listen`'s IP:
    /// `listen_port + 1 + worker`, or `egress_port_base + worker` when a
    /// base is set. `None` if it does not fit in a port (validation rules
    /// that out for `worker < worker_count()`).
    pub fn egress_port(&self, listen: &Listen, worker: usize) -> Option<u16> {
        let w = u32::try_from(worker).ok()?;
        let p = if self.egress_port_base == 0 {
            u32::from(listen.addr.port()) + 1 + w
        } else {
            u32::from(self.egress_port_base) + w
        };
        u16::try_from(p).ok()
    }
}

/// `workers = "auto" | N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    /// One per CPU this process may run on.
    Auto,
    /// Always >= 1.
    N(usize),
}

impl Workers {
    /// The resolved count (`Auto` → `std::thread::available_parallelism`).
    pub fn count(&self) -> usize {
        match *self {
            Workers::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Workers::N(n) => n,
        }
    }
}

impl FromStr for Workers {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("auto") {
            return Ok(Workers::Auto);
        }
        match t.parse::<usize>() {
            Ok(0) => Err("workers must be >= 1 (or \"auto\")".into()),
            Ok(n) => Ok(Workers::N(n)),
            Err(_) => Err(format!("{s:?}: expected \"auto\" or an integer >= 1")),
        }
    }
}

impl fmt::Display for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workers::Auto => f.write_str("auto"),
            Workers::N(n) => write!(f, "{n}"),
        }
    }
}

/// `io_driver`: which per-core I/O loop runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IoDriver {
    /// Probe io_uring at startup, fall back to portable.
    #[default]
    Auto,
    /// io_uring (glommio); fail if the kernel or seccomp forbids it.
    Uring,
    /// recvmmsg/sendmmsg, works under Docker's default seccomp profile.
    Portable,
}

impl IoDriver {
    pub const ALL: [IoDriver; 3] = [IoDriver::Auto, IoDriver::Uring, IoDriver::Portable];

    /// The config name (`--io-driver` offers these).
    pub const fn name(self) -> &'static str {
        match self {
            IoDriver::Auto => "auto",
            IoDriver::Uring => "uring",
            IoDriver::Portable => "portable",
        }
    }
}

impl FromStr for IoDriver {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        if matches!(t.as_str(), "io_uring" | "io-uring") {
            return Ok(IoDriver::Uring);
        }
        IoDriver::ALL
            .into_iter()
            .find(|d| d.name() == t)
            .ok_or_else(|| format!("{s:?}: expected one of {}", names(&IoDriver::ALL, ", ")))
    }
}

impl fmt::Display for IoDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `a, b, c` (or `a or b`): the names of `all`, for error messages.
fn names<T: fmt::Display>(all: &[T], sep: &str) -> String {
    all.iter().map(T::to_string).collect::<Vec<_>>().join(sep)
}

/// A listen socket: `udp:IP:PORT` (Kamailio's `listen=` syntax; IPv6 as
/// `udp:[::1]:5060`). The transport prefix may be omitted (UDP) and the
/// port too (5060).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Listen {
    /// UDP: the other transports are rejected until sipfront speaks them.
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty listen address; expected udp:IP:PORT".into());
        }
        // `udp:...`: a transport name before the first colon. An address
        // (`10.0.0.1:5060`, `[::1]:5060`, `::1`) has none.
        let (transport, rest) = match t.split_once(':') {
            Some((name, rest)) => match Transport::from_bytes(name.as_bytes()) {
                Transport::Other => (Transport::Udp, t),
                named => (named, rest),
            },
            None => (Transport::Udp, t),
        };
        if transport != Transport::Udp {
            return Err(format!(
                "{s:?}: transport {} is not supported yet (only udp)",
                transport.as_lowercase_str()
            ));
        }
        if rest.parse::<std::net::Ipv6Addr>().is_ok() {
            // `::1:5060` is a valid IPv6 address: require brackets so a
            // port is never read as part of the address.
            return Err(format!(
                "{s:?}: write an IPv6 address in brackets: udp:[{rest}] (or udp:[ADDR]:PORT)"
            ));
        }
        let addr = if let Ok(a) = rest.parse::<SocketAddr>() {
            a
        } else if let Ok(ip) = rest.parse::<std::net::Ipv4Addr>() {
            SocketAddr::new(IpAddr::V4(ip), DEFAULT_SIP_PORT)
        } else if let Some(ip) = rest
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|r| r.parse::<IpAddr>().ok())
        {
            SocketAddr::new(ip, DEFAULT_SIP_PORT)
        } else {
            return Err(listen_reason(s, rest));
        };
        if addr.port() == 0 {
            return Err(format!(
                "{s:?}: port 0 is not allowed; give the port to listen on"
            ));
        }
        Ok(Listen { transport, addr })
    }
}

/// Why `rest` (after the transport) is not `IP[:PORT]`.
fn listen_reason(s: &str, rest: &str) -> String {
    let (host, port) = match rest.rfind(':') {
        Some(i) if !rest.starts_with('[') || rest[..i].ends_with(']') => {
            (&rest[..i], Some(&rest[i + 1..]))
        }
        _ => (rest, None),
    };
    if let Some(p) = port {
        if host.parse::<IpAddr>().is_ok()
            || host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .is_some_and(|h| h.parse::<IpAddr>().is_ok())
        {
            return if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                format!("{s:?}: port out of range (1..=65535)")
            } else {
                format!("{s:?}: bad port {p:?}")
            };
        }
    }
    if rest.contains("::") && !rest.starts_with('[') {
        return format!("{s:?}: write an IPv6 address in brackets: udp:[{rest}]:5060");
    }
    format!("{s:?}: expected udp:IP:PORT with an IP address (a host name cannot be listened on)")
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport.as_lowercase_str(), self.addr)
    }
}

/// `advertise = "host[:port]"`: the address written in Via and
/// Record-Route (Kamailio's `listen=... advertise ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertise {
    /// An IP (IPv6 without brackets) or a host name.
    pub host: String,
    /// The listen port when `None`.
    pub port: Option<u16>,
}

impl FromStr for Advertise {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        match parse_host_port(t.as_bytes()) {
            Some((host, port)) => Ok(Advertise {
                host: match host {
                    Host::V4(a) => a.to_string(),
                    Host::V6(a) => a.to_string(),
                    Host::Name(n) => String::from_utf8_lossy(n).into_owned(),
                },
                port,
            }),
            None => {
                if t.parse::<std::net::Ipv6Addr>().is_ok() {
                    Err(format!("{s:?}: write an IPv6 address in brackets: [{t}]"))
                } else {
                    Err(format!(
                        "{s:?}: expected host[:port] (an IP, [IPv6] or host name; port 1..=65535)"
                    ))
                }
            }
        }
    }
}

impl fmt::Display for Advertise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => write!(f, "{host}:{p}"),
            None => f.write_str(&host),
        }
    }
}

// ---- [log] ----

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `error|warn|info|debug|trace` or a tracing `EnvFilter` directive
    /// such as `info,sipfront::proxy=debug`; checked to parse.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::default(),
            level: DEFAULT_LOG_LEVEL.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

impl LogFormat {
    pub const ALL: [LogFormat; 2] = [LogFormat::Human, LogFormat::Json];

    /// The config name (`--log-format` offers these).
    pub const fn name(self) -> &'static str {
        match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        }
    }
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        if t == "text" {
            return Ok(LogFormat::Human);
        }
        LogFormat::ALL
            .into_iter()
            .find(|f| f.name() == t)
            .ok_or_else(|| format!("{s:?}: expected {}", names(&LogFormat::ALL, " or ")))
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks a log level or `EnvFilter` directive; the five plain levels are
/// returned lowercased.
pub fn parse_log_level(s: &str) -> Result<String, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "error" | "warn" | "info" | "debug" | "trace" | "off"
    ) {
        return Ok(lower);
    }
    if t.is_empty() {
        return Err("empty log level; expected error, warn, info, debug or trace".into());
    }
    match tracing_subscriber::EnvFilter::builder().parse(t) {
        Ok(_) => Ok(t.to_string()),
        Err(e) => Err(format!(
            "{s:?}: not a level (error, warn, info, debug, trace) nor an EnvFilter directive: {e}"
        )),
    }
}

// ---- [proxy] ----

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    pub mode: ProxyMode,
    /// Add Record-Route to dialog-creating requests.
    pub record_route: bool,
    /// Bytes; larger requests get 513 (RFC 3261 §21.5.14).
    pub max_message_size: usize,
    /// Header lines per message.
    pub max_headers: usize,
    /// Inserted when a request has no Max-Forwards (RFC 3261 §16.6 step 3).
    pub max_forwards: u8,
    /// A client's initial request with its own Route headers: ignore (the
    /// default), reject or honour.
    pub preloaded_route: crate::proxy::PreloadedRoute,
    /// Sources other than the backends that may send requests (empty:
    /// all not denied), and those that may not.
    pub allow_sources: Vec<ipnet::IpNet>,
    pub deny_sources: Vec<ipnet::IpNet>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            mode: ProxyMode::default(),
            record_route: DEFAULT_RECORD_ROUTE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_headers: DEFAULT_MAX_HEADERS,
            max_forwards: DEFAULT_MAX_FORWARDS,
            preloaded_route: crate::proxy::PreloadedRoute::default(),
            allow_sources: Vec::new(),
            deny_sources: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// No per-call state (Kamailio `forward()`/stateless dispatcher).
    Stateless,
    /// RFC 3261 §17 transactions (Kamailio `t_relay()`).
    #[default]
    Stateful,
}

impl ProxyMode {
    pub const ALL: [ProxyMode; 2] = [ProxyMode::Stateless, ProxyMode::Stateful];

    /// The config name (`--mode` offers these).
    pub const fn name(self) -> &'static str {
        match self {
            ProxyMode::Stateless => "stateless",
            ProxyMode::Stateful => "stateful",
        }
    }
}

impl FromStr for ProxyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        ProxyMode::ALL
            .into_iter()
            .find(|m| m.name() == t)
            .ok_or_else(|| format!("{s:?}: expected {}", names(&ProxyMode::ALL, " or ")))
    }
}

impl fmt::Display for ProxyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---- [transaction] ----

pub const DEFAULT_T1_MS: u64 = 500;
pub const DEFAULT_T2_MS: u64 = 4000;
pub const DEFAULT_T4_MS: u64 = 5000;
pub const DEFAULT_FR_TIMEOUT_MS: u64 = 2000;
pub const DEFAULT_FR_INV_TIMEOUT_MS: u64 = 181_000;
pub const DEFAULT_MAX_TRANSACTIONS: usize = 65_536;
pub const DEFAULT_MAX_TRIES: u8 = 3;
pub const DEFAULT_FAILOVER_CODES: [u16; 5] = [408, 500, 502, 503, 504];

/// Stateful mode: RFC 3261 §17 timers, failover and the table bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionConfig {
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    /// No response at all from a destination for this long → fail over.
    pub fr_timeout_ms: u64,
    /// Timer C (§16.8): a provisional answer but no final one.
    pub fr_inv_timeout_ms: u64,
    /// Live transactions per worker.
    pub max_transactions: usize,
    /// Destinations tried per request, the first included.
    pub max_tries: u8,
    pub failover_codes: Vec<u16>,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig {
            t1_ms: DEFAULT_T1_MS,
            t2_ms: DEFAULT_T2_MS,
            t4_ms: DEFAULT_T4_MS,
            fr_timeout_ms: DEFAULT_FR_TIMEOUT_MS,
            fr_inv_timeout_ms: DEFAULT_FR_INV_TIMEOUT_MS,
            max_transactions: DEFAULT_MAX_TRANSACTIONS,
            max_tries: DEFAULT_MAX_TRIES,
            failover_codes: DEFAULT_FAILOVER_CODES.to_vec(),
        }
    }
}

// ---- [probe], [admin], [drain] ----

pub const DEFAULT_PROBE_ENABLED: bool = false;
pub const DEFAULT_PROBE_METHOD: &str = "OPTIONS";
pub const DEFAULT_PROBE_FROM: &str = "sip:sipfront@localhost";
pub const DEFAULT_PROBE_INTERVAL_MS: u64 = 1000;
pub const DEFAULT_PROBE_TIMEOUT_MS: u64 = 500;
pub const DEFAULT_PROBE_DOWN_THRESHOLD: u32 = 3;
pub const DEFAULT_PROBE_UP_THRESHOLD: u32 = 2;
pub const DEFAULT_PROBE_REPLY_CODES: [ReplyCode; 1] = [ReplyCode::Class(2)];
pub const DEFAULT_PROBE_PORT: u16 = 0;
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";
pub const DEFAULT_DRAIN_GRACE_MS: u64 = 30_000;
pub const DEFAULT_DRAIN_QUIET_MS: u64 = 2_000;

/// A reply code a probe accepts as "alive": one code, or a class (`2xx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyCode {
    Code(u16),
    /// The first digit: `2` for `2xx`.
    Class(u8),
}

impl ReplyCode {
    pub fn matches(&self, code: u16) -> bool {
        match *self {
            ReplyCode::Code(c) => c == code,
            ReplyCode::Class(k) => code / 100 == u16::from(k),
        }
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyCode::Code(c) => write!(f, "{c}"),
            ReplyCode::Class(k) => write!(f, "{k}xx"),
        }
    }
}

impl FromStr for ReplyCode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let b = t.as_bytes();
        if b.len() == 3 && (b[1..] == *b"xx" || b[1..] == *b"XX") && (b'2'..=b'6').contains(&b[0]) {
            return Ok(ReplyCode::Class(b[0] - b'0'));
        }
        match t.parse::<u16>() {
            Ok(c) if (200..=699).contains(&c) => Ok(ReplyCode::Code(c)),
            _ => Err(format!(
                "{s:?}: expected a final status code 200..=699 or a class like \"2xx\""
            )),
        }
    }
}

/// `[probe]`: active health probing of every destination (Kamailio's
/// ds_ping_* and ds_*_threshold parameters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    pub enabled: bool,
    /// A token; never INVITE, ACK, CANCEL or BYE.
    pub method: String,
    /// A sip:/sips: URI for the From header (Kamailio's ds_ping_from).
    pub from: String,
    pub interval_ms: u64,
    /// At most `interval_ms`.
    pub timeout_ms: u64,
    /// Consecutive failures that take an active destination out.
    pub down_threshold: u32,
    /// Consecutive successes that bring an inactive destination back.
    pub up_threshold: u32,
    /// Replies that count as alive; any other reply is a failure.
    pub reply_codes: Vec<ReplyCode>,
    /// Local UDP port of the prober's socket; 0 = ephemeral.
    pub port: u16,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            enabled: DEFAULT_PROBE_ENABLED,
            method: DEFAULT_PROBE_METHOD.into(),
            from: DEFAULT_PROBE_FROM.into(),
            interval_ms: DEFAULT_PROBE_INTERVAL_MS,
            timeout_ms: DEFAULT_PROBE_TIMEOUT_MS,
            down_threshold: DEFAULT_PROBE_DOWN_THRESHOLD,
            up_threshold: DEFAULT_PROBE_UP_THRESHOLD,
            reply_codes: DEFAULT_PROBE_REPLY_CODES.to_vec(),
            port: DEFAULT_PROBE_PORT,
        }
    }
}

/// `[admin]`: the HTTP admin API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    /// None: no admin API.
    pub listen: Option<SocketAddr>,
    /// Bearer token every request must carry, if set.
    pub token: Option<String>,
    /// Whether `listen` was given (file, environment) rather than
    /// defaulted: a default address that is taken is only warned about,
    /// so several instances on one host still start.
    pub listen_given: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: DEFAULT_ADMIN_LISTEN.parse().ok(),
            token: None,
            listen_given: false,
        }
    }
}

/// `[drain]`: graceful shutdown on SIGTERM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainConfig {
    /// Longest wait before exiting.
    pub grace_ms: u64,
    /// Exit early once no transaction is live and no response has been
    /// relayed for this long.
    pub quiet_ms: u64,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            grace_ms: DEFAULT_DRAIN_GRACE_MS,
            quiet_ms: DEFAULT_DRAIN_QUIET_MS,
        }
    }
}

// ---- [routing] ----

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingConfig {
    /// The backend set used when no rule matches; exists.
    pub default: String,
    /// Ordered; the first rule whose matchers all match wins. Each names
    /// an existing set; `Rules::from_named` compiles them.
    pub rules: Vec<Rule<String>>,
}

// ---- [[backend_set]] ----

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendSetConfig {
    /// Unique; `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// Written as a name or a Kamailio number.
    pub algorithm: Algorithm,
    /// The Kamailio dispatcher.list the destinations of `setid` came from,
    /// resolved against the config file's directory.
    pub list_file: Option<PathBuf>,
    pub setid: u32,
    /// At least one; the inline ones first, then the list file's, in order.
    pub destinations: Vec<DestinationConfig>,
}

/// One backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationConfig {
    /// As written: `sip:host[:port][;params]`.
    pub uri: String,
    /// Resolved when the config was loaded.
    pub addr: SocketAddr,
    /// 1..=65535; a relative share for the weighted algorithms.
    pub weight: u32,
    /// Lower values are tried first (like DNS SRV). A dispatcher.list's
    /// priorities are negated on import, since Kamailio tries the highest
    /// first.
    pub priority: i32,
    /// Free-form; from a dispatcher.list, every attr but `weight`, plus
    /// `disabled=1` when flag 4 (admin disabled) was set.
    pub attrs: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        let l: Listen = "udp:0.0.0.0:5060".parse().unwrap();
        assert_eq!(l.addr, "0.0.0.0:5060".parse().unwrap());
        assert_eq!(l.to_string(), "udp:0.0.0.0:5060");
        assert_eq!(l.transport, Transport::Udp);
        let l: Listen = "udp:[::1]:5062".parse().unwrap();
        assert_eq!(l.addr, "[::1]:5062".parse().unwrap());
        assert_eq!(l.to_string(), "udp:[::1]:5062");
        let l: Listen = "UDP:10.0.0.1".parse().unwrap();
        assert_eq!(l.addr.port(), 5060);
        let l: Listen = "10.0.0.1:5070".parse().unwrap();
        assert_eq!(l.addr.port(), 5070);
        let l: Listen = "udp:[::]".parse().unwrap();
        assert_eq!(l.addr, "[::]:5060".parse().unwrap());
    }

    #[test]
    fn listen_errors() {
        let e = |s: &str| s.parse::<Listen>().unwrap_err();
        assert!(e("tcp:1.2.3.4:5060").contains("transport tcp is not supported"));
        assert!(e("TLS:1.2.3.4:5061").contains("transport tls is not supported"));
        assert!(e("wss:[::1]:443").contains("transport wss is not supported"));
        assert!(e("sctp:1.2.3.4").contains("transport sctp is not supported"));
        assert!(e("dccp:1.2.3.4").contains("IP address"));
        assert!(e("udp:1.2.3.4:99999").contains("port out of range"));
        assert!(e("udp:1.2.3.4:x").contains("bad port"));
        assert!(e("udp:1.2.3.4:0").contains("port 0"));
        assert!(e("udp:::1:5060").contains("brackets"));
        assert!(e("udp:::1").contains("brackets"));
        assert!(e("udp:example.com:5060").contains("IP address"));
        assert!(e("").contains("empty"));
    }

    #[test]
    fn named_enums_parse_their_names_and_aliases() {
        for d in IoDriver::ALL {
            assert_eq!(d.name().parse::<IoDriver>(), Ok(d));
        }
        assert_eq!("IO_URING".parse::<IoDriver>(), Ok(IoDriver::Uring));
        assert_eq!("io-uring".parse::<IoDriver>(), Ok(IoDriver::Uring));
        assert_eq!(
            "epoll".parse::<IoDriver>(),
            Err("\"epoll\": expected one of auto, uring, portable".into())
        );
        for m in ProxyMode::ALL {
            assert_eq!(m.name().parse::<ProxyMode>(), Ok(m));
        }
        assert_eq!(
            "proxy".parse::<ProxyMode>(),
            Err("\"proxy\": expected stateless or stateful".into())
        );
        for f in LogFormat::ALL {
            assert_eq!(f.to_string().parse::<LogFormat>(), Ok(f));
        }
        assert_eq!(" Text".parse::<LogFormat>(), Ok(LogFormat::Human));
        assert_eq!(
            "xml".parse::<LogFormat>(),
            Err("\"xml\": expected human or json".into())
        );
    }

    #[test]
    fn workers_parse() {
        assert_eq!("auto".parse::<Workers>().unwrap(), Workers::Auto);
        assert_eq!("4".parse::<Workers>().unwrap(), Workers::N(4));
        assert!("0".parse::<Workers>().unwrap_err().contains(">= 1"));
        assert!("many".parse::<Workers>().is_err());
        assert!(Workers::Auto.count() >= 1);
    }

    #[test]
    fn advertise_parse() {
        let a: Advertise = "sip.example.com:5080".parse().unwrap();
        assert_eq!(a.host, "sip.example.com");
        assert_eq!(a.port, Some(5080));
        let a: Advertise = "[2001:db8::1]".parse().unwrap();
        assert_eq!(a.host, "2001:db8::1");
        assert_eq!(a.to_string(), "[2001:db8::1]");
        assert!("2001:db8::1"
            .parse::<Advertise>()
            .unwrap_err()
            .contains("brackets"));
        assert!("1.2.3.4:70000".parse::<Advertise>().is_err());
        assert!("".parse::<Advertise>().is_err());
    }

    #[test]
    fn log_levels() {
        assert_eq!(parse_log_level("INFO").unwrap(), "info");
        assert_eq!(
            parse_log_level("info,sipfront::proxy=debug").unwrap(),
            "info,sipfront::proxy=debug"
        );
        assert!(parse_log_level("verbose=").is_err() || parse_log_level("[").is_err());
        assert!(parse_log_level("").is_err());
    }
}
