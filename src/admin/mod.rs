//! Operations: the HTTP admin API (its own thread, never a worker core),
//! Prometheus metrics, health and readiness, configuration reload, and
//! backend health monitoring (the prober thread and the state registry).
//!
//! | module | owns |
//! |---|---|
//! | [`monitor`] | destination registry with stable ids, health states, the shared table |
//! | [`prober`] | the OPTIONS prober thread |
//! | [`http`] | minimal HTTP/1.1 request reading, responses, bearer token |
//! | [`metrics`] | the Prometheus text page |
//! | [`client`] | `sipfront ctl` |
//!
//! `docs/operations.md` describes the endpoints and every metric.

pub mod client;
pub mod http;
pub mod metrics;
pub mod monitor;
pub mod prober;

use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::app;
use crate::config::{self, CliOverrides, Config, DrainConfig};
use crate::dispatch::probe::Admin;
use crate::proxy::stats::{DropReason, Stats};
use crate::proxy::Routing;
use crate::runtime::Observer;
use http::{json_str, Request, Response};
use monitor::{Monitor, SetStateError};

/// Connections served at once; more get 503 at once.
const MAX_CONNECTIONS: usize = 16;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Where the configuration comes from, to read it again on reload.
pub struct ConfigSource {
    pub path: Option<PathBuf>,
    pub overrides: CliOverrides,
    pub env: fn(&str) -> Option<String>,
}

/// What a successful reload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadReport {
    pub kept: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Sections that changed but apply only after a restart.
    pub needs_restart: Vec<&'static str>,
}

impl ReloadReport {
    pub fn to_json(&self) -> String {
        let list = |v: &[String]| v.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(",");
        let nr: Vec<String> = self.needs_restart.iter().map(|s| json_str(s)).collect();
        format!(
            "{{\"ok\":true,\"kept\":{},\"added\":[{}],\"removed\":[{}],\"needs_restart\":[{}]}}",
            self.kept,
            list(&self.added),
            list(&self.removed),
            nr.join(",")
        )
    }
}

/// Configuration sections that cannot change while running.
fn restart_only(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut v = Vec::new();
    if old.server != new.server {
        v.push("server");
    }
    if old.proxy != new.proxy {
        v.push("proxy");
    }
    if old.transaction != new.transaction {
        v.push("transaction");
    }
    if old.log != new.log {
        v.push("log");
    }
    if old.admin.listen != new.admin.listen {
        v.push("admin.listen");
    }
    if old.probe.port != new.probe.port {
        v.push("probe.port");
    }
    if old.nat != new.nat {
        // Each worker's engine owns its NAT settings and flow table.
        v.push("nat");
    }
    v
}

/// Everything the admin API, the signal handler and the prober share.
pub struct Control {
    pub monitor: Arc<Monitor>,
    pub routing: Arc<ArcSwap<Routing>>,
    pub observer: Observer,
    /// The runtime's drain flag.
    pub draining: Arc<AtomicBool>,
    /// False until the workers run, and again while draining.
    pub ready: AtomicBool,
    pub driver: &'static str,
    source: ConfigSource,
    /// The configuration the process started with (for what cannot
    /// change live).
    started: Config,
    live: Mutex<LiveSettings>,
    reload_lock: Mutex<()>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    start_time: f64,
    last_reload: Mutex<f64>,
}

struct LiveSettings {
    token: Option<String>,
    drain: DrainConfig,
}

impl Control {
    pub fn new(
        cfg: Config,
        source: ConfigSource,
        monitor: Arc<Monitor>,
        routing: Arc<ArcSwap<Routing>>,
        observer: Observer,
        draining: Arc<AtomicBool>,
        driver: &'static str,
    ) -> Control {
        let now = unix_now();
        Control {
            monitor,
            routing,
            observer,
            draining,
            ready: AtomicBool::new(false),
            driver,
            source,
            live: Mutex::new(LiveSettings {
                token: cfg.admin.token.clone(),
                drain: cfg.drain.clone(),
            }),
            started: cfg,
            reload_lock: Mutex::new(()),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            start_time: now,
            last_reload: Mutex::new(now),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, LiveSettings> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The drain settings in force.
    pub fn drain_config(&self) -> DrainConfig {
        self.live().drain.clone()
    }

    /// Reads the configuration again (same file, environment and flags)
    /// and applies what can change live: backend sets, weights, routing
    /// rules, probe settings, drain times, the admin token. New
    /// transactions use the new routing; those in flight keep their
    /// destination. On error nothing changes and the error says where.
    pub fn reload(&self, who: &str) -> Result<ReloadReport, String> {
        let _one = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        let r = self.try_reload();
        match &r {
            Ok(rep) => {
                self.reloads_ok.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut t) = self.last_reload.lock() {
                    *t = unix_now();
                }
                tracing::info!(
                    by = who,
                    kept = rep.kept,
                    added = ?rep.added,
                    removed = ?rep.removed,
                    needs_restart = ?rep.needs_restart,
                    "configuration reloaded"
                );
            }
            Err(e) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(by = who, error = %e, "configuration reload refused; the running configuration stays");
            }
        }
        r
    }

    fn try_reload(&self) -> Result<ReloadReport, String> {
        let s = &self.source;
        let cfg =
            config::load(s.path.as_deref(), &s.overrides, &s.env).map_err(|e| e.to_string())?;
        let needs_restart = restart_only(&self.started, &cfg);
        let (routing, summary) = self.monitor.install(&cfg, app::routing_with)?;
        self.routing.store(Arc::new(routing));
        let mut probe = cfg.probe.clone();
        probe.port = self.started.probe.port;
        self.monitor.set_settings(probe);
        {
            let mut l = self.live();
            l.token = cfg.admin.token.clone();
            l.drain = cfg.drain.clone();
        }
        Ok(ReloadReport {
            kept: summary.kept,
            added: summary.added,
            removed: summary.removed,
            needs_restart,
        })
    }

    fn metrics_extra(&self) -> metrics::Extra {
        metrics::Extra {
            backends: self.monitor.backends(),
            transitions: self.monitor.transitions(),
            reloads_ok: self.reloads_ok.load(Ordering::Relaxed),
            reloads_failed: self.reloads_failed.load(Ordering::Relaxed),
            ready: self.is_ready(),
            draining: self.draining.load(Ordering::Relaxed),
            workers: self.observer.workers(),
            driver: self.driver,
            mode: self.started.proxy.mode.to_string(),
            start_time: self.start_time,
            last_reload_time: self.last_reload.lock().map_or(0.0, |t| *t),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
            && !self.draining.load(Ordering::Relaxed)
            && self.observer.healthy()
    }

    /// Answers one request.
    pub fn handle(&self, req: &Request) -> Response {
        let seg = req.segments();
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        let m = req.method.as_str();
        // Liveness and readiness carry no data: open, for kubelet probes.
        match (m, seg.as_slice()) {
            ("GET" | "HEAD", ["health"]) => {
                return if self.observer.healthy() {
                    Response::text(200, "ok\n")
                } else {
                    Response::text(503, "a worker has stopped\n")
                };
            }
            ("GET" | "HEAD", ["ready"]) => {
                return if self.is_ready() {
                    Response::text(200, "ready\n")
                } else if self.draining.load(Ordering::Relaxed) {
                    Response::text(503, "draining\n")
                } else {
                    Response::text(503, "not ready\n")
                };
            }
            _ => {}
        }
        let token = self.live().token.clone();
        if !http::authorized(req, token.as_deref()) {
            return Response::text(401, "a valid bearer token is required\n");
        }
        match (m, seg.as_slice()) {
            ("GET", ["metrics"]) => Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: metrics::render(&self.observer.stats(), &self.metrics_extra()),
            },
            ("GET", ["stats"]) => Response::json(200, stats_json(&self.observer.stats())),
            ("GET", ["nat"]) => Response::json(200, nat_json(&self.observer.stats())),
            ("GET", ["backends"]) => Response::json(200, self.backends_json()),
            ("POST", ["reload"]) => match self.reload("admin API") {
                Ok(r) => Response::json(200, r.to_json()),
                Err(e) => Response::json(
                    422,
                    format!("{{\"ok\":false,\"error\":{}}}\n", json_str(&e)),
                ),
            },
            ("POST", ["backends", set, uri, "state"]) => self.set_state(set, uri, req),
            (_, ["metrics" | "stats" | "nat" | "backends" | "reload"])
            | (_, ["backends", _, _, "state"]) => Response::text(405, "method not allowed\n"),
            _ => Response::text(
                404,
                "not found; try /health /ready /metrics /stats /nat /backends POST /reload \
                 POST /backends/{set}/{uri}/state\n",
            ),
        }
    }

    fn set_state(&self, set: &str, uri: &str, req: &Request) -> Response {
        let body = String::from_utf8_lossy(&req.body);
        let Some(word) = state_word(&body) else {
            return Response::text(
                400,
                "the body must be active, disabled or drain (plain, or {\"state\":\"...\"})\n",
            );
        };
        let a = match word.as_str() {
            "active" => Admin::Auto,
            "disabled" | "disable" => Admin::Disabled,
            "drain" => Admin::Drain,
            _ => {
                return Response::text(400, "state must be active, disabled or drain\n");
            }
        };
        match self.monitor.set_admin(set, uri, a, "admin API") {
            Ok(st) => Response::json(
                200,
                format!(
                    "{{\"set\":{},\"uri\":{},\"state\":\"{}\"}}\n",
                    json_str(set),
                    json_str(uri),
                    st
                ),
            ),
            Err(SetStateError::NotFound) => {
                Response::text(404, format!("no destination {uri:?} in set {set:?}\n"))
            }
        }
    }

    fn backends_json(&self) -> String {
        let stats = self.observer.stats();
        let mut o = String::from("[");
        for (i, b) in self.monitor.backends().iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(
                o,
                "{{\"set\":{},\"uri\":{},\"addr\":\"{}\",\"state\":\"{}\",\"probe_up\":{},\"passive_failures\":{},\"suspended\":{},\"forwarded\":{},\"probes\":{{\"ok\":{},\"rejected\":{},\"timeout\":{},\"error\":{}}},\"last_probe_code\":{}}}",
                json_str(&b.set),
                json_str(&b.uri),
                b.addr,
                b.state,
                b.probe_up,
                b.failures,
                b.suspended,
                stats.per_backend.get(b.id.0 as usize).copied().unwrap_or(0),
                b.probes[0],
                b.probes[1],
                b.probes[2],
                b.probes[3],
                b.last_code.map_or("null".to_string(), |c| c.to_string()),
            );
        }
        o.push_str("]\n");
        o
    }
}

/// The state named by a body: `drain`, or `{"state": "drain"}`.
fn state_word(body: &str) -> Option<String> {
    let t = body.trim();
    if t.starts_with('{') {
        let after = t.split_once("\"state\"")?.1;
        let after = after.trim_start().strip_prefix(':')?.trim_start();
        let v = after.strip_prefix('"')?;
        return v.split_once('"').map(|(w, _)| w.to_ascii_lowercase());
    }
    (!t.is_empty()).then(|| t.to_ascii_lowercase())
}

/// `/stats`: the workers' counters as JSON.
pub fn stats_json(s: &Stats) -> String {
    let mut o = String::from("{");
    for (k, v) in [
        ("datagrams_in", s.datagrams_in),
        ("requests_in", s.requests_in),
        ("responses_in", s.responses_in),
        ("requests_forwarded", s.requests_forwarded),
        ("responses_forwarded", s.responses_forwarded),
        ("handovers_out", s.handovers_out),
        ("handovers_in", s.handovers_in),
        ("transactions_current", s.transactions_current),
        ("transactions_pending", s.transactions_pending),
        ("transactions_total", s.transactions_total),
        ("transactions_refused", s.transactions_refused),
        ("retransmissions_absorbed", s.retransmissions_absorbed),
        ("retransmissions_sent", s.retransmissions_sent),
        ("failovers", s.failovers),
        ("timeouts", s.timeouts),
        ("cancels", s.cancels),
    ] {
        let _ = write!(o, "\"{k}\":{v},");
    }
    o.push_str("\"replies\":{");
    let replies: Vec<String> = s
        .replies
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| format!("\"{}\":{n}", i + 100))
        .collect();
    o.push_str(&replies.join(","));
    o.push_str("},\"drops\":{");
    let drops: Vec<String> = DropReason::ALL
        .iter()
        .map(|r| format!("\"{}\":{}", r.as_str(), s.dropped(*r)))
        .collect();
    o.push_str(&drops.join(","));
    o.push_str("},\"per_method\":{");
    let methods: Vec<String> = s
        .per_method
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| format!("\"{}\":{n}", metrics::method_name(i)))
        .collect();
    o.push_str(&methods.join(","));
    o.push_str("}}\n");
    o
}

/// The NAT flows every worker keeps open (`GET /nat`, `sipfront ctl
/// nat`): `{"flows":N,"listed":[...]}`; each worker lists at most
/// `runtime::pump::NAT_FLOWS_PUBLISHED`.
pub fn nat_json(s: &Stats) -> String {
    let mut o = format!("{{\"flows\":{},\"listed\":[", s.nat.flows);
    for (i, f) in s.nat_flows.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(
            o,
            "{{\"address\":{},\"listen\":{},\"transport\":{},\"contacts\":{},\"dialogs\":{},\
             \"expires_in_s\":{},\"keepalives_sent\":{},\"keepalives_answered\":{},\
             \"unanswered\":{},\"age_s\":{}}}",
            json_str(&f.flow.addr.to_string()),
            f.flow.listen,
            json_str(f.flow.transport.as_lowercase_str()),
            f.contacts,
            f.dialogs,
            f.expires_in_s,
            f.keepalives_sent,
            f.keepalives_answered,
            f.unanswered,
            f.age_s
        );
    }
    o.push_str("]}\n");
    o
}

/// Starts the admin API on `listen`: an accept thread, and a short-lived
/// thread per connection (at most [`MAX_CONNECTIONS`] at once).
pub fn serve(
    listen: SocketAddr,
    control: Arc<Control>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let l = TcpListener::bind(listen)?;
    let addr = l.local_addr()?;
    tracing::info!(admin = %format!("http://{addr}"), "admin API listening");
    let active = Arc::new(AtomicUsize::new(0));
    let h = std::thread::Builder::new()
        .name("sipfront-admin".into())
        .spawn(move || {
            crate::runtime::block_signals();
            for conn in l.incoming() {
                let Ok(stream) = conn else { continue };
                if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    let mut s = stream;
                    let _ = s.set_write_timeout(Some(http::IO_TIMEOUT));
                    let _ = http::write_response(&mut s, &Response::text(503, "busy\n"));
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let c = Arc::clone(&control);
                let a = Arc::clone(&active);
                let spawned = std::thread::Builder::new()
                    .name("sipfront-admin-conn".into())
                    .spawn(move || {
                        serve_one(stream, &c);
                        a.fetch_sub(1, Ordering::Relaxed);
                    });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::Relaxed);
                }
            }
        })?;
    Ok((addr, h))
}

fn serve_one(mut s: TcpStream, c: &Control) {
    let _ = s.set_read_timeout(Some(http::IO_TIMEOUT));
    let _ = s.set_write_timeout(Some(http::IO_TIMEOUT));
    let resp = match http::read_request(&mut s) {
        Ok(req) => {
            let mut r = c.handle(&req);
            if req.method == "HEAD" {
                r.body.clear();
            }
            r
        }
        Err(e) => Response::text(e.status, format!("{}\n", e.reason)),
    };
    let _ = http::write_response(&mut s, &resp);
    let _ = s.shutdown(std::net::Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_bodies() {
        assert_eq!(state_word("drain\n").as_deref(), Some("drain"));
        assert_eq!(
            state_word("{\"state\": \"Disabled\"}").as_deref(),
            Some("disabled")
        );
        assert_eq!(state_word("{\"state\":1}"), None);
        assert_eq!(state_word("{\"x\":\"y\"}"), None);
        assert_eq!(state_word("  "), None);
        assert_eq!(state_word("{\"state\""), None);
    }

    #[test]
    fn nat_json_lists_flows() {
        let mut s = Stats::default();
        s.nat.flows = 1;
        s.nat_flows.push(crate::nat::FlowInfo {
            flow: crate::nat::Flow::udp("[2001:db8::5]:4000".parse().unwrap(), 1),
            contacts: 2,
            dialogs: 0,
            expires_in_s: 60,
            keepalives_sent: 3,
            keepalives_answered: 3,
            unanswered: 0,
            age_s: 9,
        });
        let j = nat_json(&s);
        assert!(
            j.starts_with("{\"flows\":1,\"listed\":[{\"address\":\"[2001:db8::5]:4000\",\"listen\":1,\"transport\":\"udp\",\"contacts\":2,"),
            "{j}"
        );
        assert!(j.ends_with("\"age_s\":9}]}\n"), "{j}");
    }

    #[test]
    fn stats_json_lists_counters() {
        let mut s = Stats::default();
        s.replied(503);
        s.forwarded_method(crate::sip::Method::Bye);
        s.failovers = 2;
        let j = stats_json(&s);
        assert!(j.contains("\"replies\":{\"503\":1}"), "{j}");
        assert!(j.contains("\"per_method\":{\"BYE\":1}"), "{j}");
        assert!(j.contains("\"failovers\":2,"), "{j}");
        assert!(j.trim_end().ends_with('}'));
    }

    #[test]
    fn restart_only_names_the_sections() {
        let a = crate::config::from_toml_str(
            std::path::Path::new("a.toml"),
            "[[backend_set]]\nname = \"a\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1:5070\"\n",
        )
        .unwrap();
        let mut b = a.clone();
        assert!(restart_only(&a, &b).is_empty());
        b.proxy.record_route = !b.proxy.record_route;
        b.probe.port = 7;
        b.probe.interval_ms = 5000;
        assert_eq!(restart_only(&a, &b), ["proxy", "probe.port"]);
        b.nat.enabled = true;
        assert_eq!(restart_only(&a, &b), ["proxy", "probe.port", "nat"]);
    }
}
