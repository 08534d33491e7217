//! `/metrics`: every counter of [`Stats`] (summed over workers), the
//! backend states and probe results of the [`super::monitor::Monitor`],
//! reloads and process facts, in the Prometheus text format 0.0.4 with
//! `# HELP` and `# TYPE` lines. Names start with `sipfront_`;
//! `docs/operations.md` lists each one.

use std::fmt::Write;

use super::monitor::BackendView;
use crate::dispatch::probe::{Outcome, State};
use crate::proxy::stats::{DropReason, Originated, SendError, Stats, LATENCY_BOUNDS, METHODS};
use crate::sip::Method;

/// What `/metrics` shows besides the workers' counters.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    pub backends: Vec<BackendView>,
    /// Transitions into each state, by `State as usize`.
    pub transitions: [u64; 4],
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    pub ready: bool,
    pub draining: bool,
    pub workers: usize,
    pub driver: &'static str,
    pub mode: String,
    /// Seconds since the Unix epoch when the process started.
    pub start_time: f64,
    pub last_reload_time: f64,
}

/// Method names in `Method as usize` order (the `Stats::per_method` index).
const METHOD_NAMES: [&str; METHODS] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
    "other",
];

/// Escapes a label value (backslash, double quote, newline).
pub fn label(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, v: impl std::fmt::Display) {
        self.head(name, kind, help);
        let _ = writeln!(self.0, "{name} {v}");
    }
    fn line(&mut self, name: &str, labels: &str, v: impl std::fmt::Display) {
        let _ = writeln!(self.0, "{name}{{{labels}}} {v}");
    }
}

fn backend_labels(b: &BackendView) -> String {
    format!("set=\"{}\",backend=\"{}\"", label(&b.set), label(&b.uri))
}

/// Renders the whole page.
/// NAT traversal's counters (docs/nat.md).
fn nat(o: &mut Out, n: &crate::nat::NatStats) {
    o.head(
        "sipfront_nat_detected_total",
        "counter",
        "Messages found behind NAT, by the detection test that hit.",
    );
    for (i, t) in crate::nat::Test::ALL.iter().enumerate() {
        o.line(
            "sipfront_nat_detected_total",
            &format!("test=\"{}\"", t.name()),
            n.detected[i],
        );
    }
    o.head(
        "sipfront_nat_contacts_fixed_total",
        "counter",
        "Contact values fixed for UAs behind NAT, by strategy.",
    );
    for (how, v) in [
        ("alias", n.contacts_aliased),
        ("rewrite", n.contacts_rewritten),
        ("received", n.contacts_received),
    ] {
        o.line(
            "sipfront_nat_contacts_fixed_total",
            &format!("how=\"{how}\""),
            v,
        );
    }
    for (name, help, v) in [
        (
            "sipfront_nat_requests_total",
            "Requests from UAs behind NAT.",
            n.nated_requests,
        ),
        (
            "sipfront_nat_responses_total",
            "Responses from UAs behind NAT.",
            n.nated_responses,
        ),
        (
            "sipfront_nat_paths_added_total",
            "Path headers added to REGISTERs (RFC 3327).",
            n.paths_added,
        ),
        (
            "sipfront_nat_flows_resolved_total",
            "Requests sent to the NAT flow a Path, alias or received parameter named.",
            n.flows_resolved,
        ),
        (
            "sipfront_nat_flows_rebound_total",
            "Of those, sent to the endpoint the contact moved to after its NAT rebound.",
            n.flows_rebound,
        ),
        (
            "sipfront_nat_keepalives_sent_total",
            "NAT keepalives sent.",
            n.keepalives_sent,
        ),
        (
            "sipfront_nat_keepalives_answered_total",
            "SIP keepalives answered.",
            n.keepalives_answered,
        ),
        (
            "sipfront_nat_flows_dead_total",
            "Flows dropped after unanswered keepalives.",
            n.flows_dead,
        ),
        (
            "sipfront_nat_flows_expired_total",
            "Flows let go when their registrations and dialogs ended.",
            n.flows_expired,
        ),
        (
            "sipfront_nat_flows_refused_total",
            "Flows or contacts not kept because a table was full.",
            n.flows_refused,
        ),
        (
            "sipfront_nat_contacts_moved_total",
            "Contacts that re-registered from another NAT endpoint.",
            n.contacts_moved,
        ),
    ] {
        o.one(name, "counter", help, v);
    }
    o.one(
        "sipfront_nat_flows",
        "gauge",
        "NAT flows kept open with keepalives now, all workers.",
        n.flows,
    );
}

pub fn render(s: &Stats, x: &Extra) -> String {
    let mut o = Out(String::with_capacity(16 * 1024));
    o.head(
        "sipfront_info",
        "gauge",
        "Build and runtime facts; always 1.",
    );
    o.line(
        "sipfront_info",
        &format!(
            "version=\"{}\",driver=\"{}\",mode=\"{}\"",
            env!("CARGO_PKG_VERSION"),
            label(x.driver),
            label(&x.mode)
        ),
        1,
    );
    o.one(
        "sipfront_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch.",
        x.start_time,
    );
    o.one("sipfront_workers", "gauge", "Worker threads.", x.workers);
    o.one(
        "sipfront_ready",
        "gauge",
        "1 when /ready answers 200 (not draining).",
        u8::from(x.ready),
    );
    o.one(
        "sipfront_draining",
        "gauge",
        "1 after SIGTERM: new dialogs get 503.",
        u8::from(x.draining),
    );

    for (name, help, v) in [
        (
            "sipfront_datagrams_received_total",
            "Datagrams received on every socket.",
            s.datagrams_in,
        ),
        (
            "sipfront_requests_received_total",
            "SIP requests received.",
            s.requests_in,
        ),
        (
            "sipfront_responses_received_total",
            "SIP responses received.",
            s.responses_in,
        ),
        (
            "sipfront_requests_forwarded_all_total",
            "SIP requests forwarded, all destinations.",
            s.requests_forwarded,
        ),
        (
            "sipfront_responses_forwarded_total",
            "SIP responses relayed.",
            s.responses_forwarded,
        ),
        (
            "sipfront_handovers_out_total",
            "Datagrams handed to another worker.",
            s.handovers_out,
        ),
        (
            "sipfront_handovers_in_total",
            "Datagrams taken over from another worker.",
            s.handovers_in,
        ),
        (
            "sipfront_transactions_total",
            "Transactions created (stateful mode).",
            s.transactions_total,
        ),
        (
            "sipfront_transactions_refused_total",
            "New requests refused with 503 because the transaction table was full.",
            s.transactions_refused,
        ),
        (
            "sipfront_retransmissions_absorbed_total",
            "Retransmitted requests absorbed instead of forwarded.",
            s.retransmissions_absorbed,
        ),
        (
            "sipfront_retransmissions_sent_total",
            "Requests and responses retransmitted by sipfront's timers.",
            s.retransmissions_sent,
        ),
        (
            "sipfront_failovers_total",
            "Requests sent on to the next destination after a timeout or a failover code.",
            s.failovers,
        ),
        (
            "sipfront_timeouts_total",
            "Client transactions that timed out without a final response.",
            s.timeouts,
        ),
        (
            "sipfront_cancels_total",
            "CANCELs matched to a pending INVITE.",
            s.cancels,
        ),
        (
            "sipfront_internal_faults_total",
            "States the code holds impossible (never bad input): any count is a bug to report.",
            s.internal_faults,
        ),
        (
            "sipfront_preloaded_routes_total",
            "Clients' initial requests whose own Route headers were ignored or refused (proxy.preloaded_route).",
            s.preloaded_routes,
        ),
        (
            "sipfront_parked_total",
            "Messages parked to wait for an event (a relay's answer).",
            s.parked_total,
        ),
        (
            "sipfront_park_refused_total",
            "Messages not parked because the worker's table was full.",
            s.park_refused,
        ),
        (
            "sipfront_park_resumed_total",
            "Parked messages resumed by their event.",
            s.park_resumed,
        ),
        (
            "sipfront_park_timeouts_total",
            "Parked messages whose deadline passed first.",
            s.park_timeouts,
        ),
    ] {
        o.one(name, "counter", help, v);
    }
    o.one(
        "sipfront_transactions_current",
        "gauge",
        "Live transactions (stateful mode), all workers.",
        s.transactions_current,
    );
    o.one(
        "sipfront_parked",
        "gauge",
        "Messages parked now, all workers.",
        s.parked_current,
    );
    o.one(
        "sipfront_transactions_pending",
        "gauge",
        "Live transactions without a final answer upstream yet (what a drain waits for).",
        s.transactions_pending,
    );

    nat(&mut o, &s.nat);

    o.head(
        "sipfront_replies_total",
        "counter",
        "Responses sipfront generated itself, by status code and class.",
    );
    for (i, n) in s.replies.iter().enumerate().filter(|(_, n)| **n > 0) {
        let code = i + 100;
        o.line(
            "sipfront_replies_total",
            &format!("code=\"{code}\",class=\"{}xx\"", code / 100),
            n,
        );
    }

    o.head(
        "sipfront_drops_total",
        "counter",
        "Datagrams dropped without an answer, by reason.",
    );
    for r in DropReason::ALL {
        o.line(
            "sipfront_drops_total",
            &format!("reason=\"{}\"", r.as_str()),
            s.dropped(r),
        );
    }

    o.head(
        "sipfront_send_failures_total",
        "counter",
        "Datagrams the kernel refused to send, by reason.",
    );
    for e in SendError::ALL {
        o.line(
            "sipfront_send_failures_total",
            &format!("reason=\"{}\"", e.as_str()),
            s.send_failures_by(e),
        );
    }

    o.head(
        "sipfront_originated_total",
        "counter",
        "Requests sipfront sent on its own (hop-by-hop ACK, CANCEL, NAT keepalives), by method.",
    );
    for k in Originated::ALL {
        o.line(
            "sipfront_originated_total",
            &format!("method=\"{}\"", k.method()),
            s.originated_of(k),
        );
    }

    o.head(
        "sipfront_requests_forwarded_by_method_total",
        "counter",
        "SIP requests forwarded, by method.",
    );
    for (i, n) in s.per_method.iter().enumerate() {
        if let Some(m) = METHOD_NAMES.get(i) {
            o.line(
                "sipfront_requests_forwarded_by_method_total",
                &format!("method=\"{m}\""),
                n,
            );
        }
    }

    o.head(
        "sipfront_requests_forwarded_total",
        "counter",
        "Requests the dispatcher sent to each destination (new calls and in-dialog requests routed by the set).",
    );
    for b in &x.backends {
        let n = s.per_backend.get(b.id.0 as usize).copied().unwrap_or(0);
        o.line("sipfront_requests_forwarded_total", &backend_labels(b), n);
    }

    o.head(
        "sipfront_backend_state",
        "gauge",
        "1 for the state each destination is in (active, inactive, disabled, drain).",
    );
    for b in &x.backends {
        for st in State::ALL {
            o.line(
                "sipfront_backend_state",
                &format!("{},state=\"{}\"", backend_labels(b), st.as_str()),
                u8::from(b.state == st),
            );
        }
    }
    o.head(
        "sipfront_backend_up",
        "gauge",
        "1 when the destination may be selected for new calls.",
    );
    for b in &x.backends {
        o.line(
            "sipfront_backend_up",
            &backend_labels(b),
            u8::from(b.state == State::Active && !b.suspended),
        );
    }
    o.head(
        "sipfront_backend_passive_failures",
        "gauge",
        "Consecutive failures live traffic reported for the destination.",
    );
    for b in &x.backends {
        o.line(
            "sipfront_backend_passive_failures",
            &backend_labels(b),
            b.failures,
        );
    }

    o.head(
        "sipfront_probes_total",
        "counter",
        "Health probes by destination and result (ok, rejected, timeout, error).",
    );
    for b in &x.backends {
        for (i, r) in Outcome::LABELS.iter().enumerate() {
            o.line(
                "sipfront_probes_total",
                &format!("{},result=\"{r}\"", backend_labels(b)),
                b.probes.get(i).copied().unwrap_or(0),
            );
        }
    }

    o.head(
        "sipfront_backend_transitions_total",
        "counter",
        "Backend state changes, by the state entered.",
    );
    for st in State::ALL {
        o.line(
            "sipfront_backend_transitions_total",
            &format!("to=\"{}\"", st.as_str()),
            x.transitions.get(st as usize).copied().unwrap_or(0),
        );
    }

    o.head(
        "sipfront_reloads_total",
        "counter",
        "Configuration reloads, by result.",
    );
    o.line("sipfront_reloads_total", "result=\"ok\"", x.reloads_ok);
    o.line(
        "sipfront_reloads_total",
        "result=\"failed\"",
        x.reloads_failed,
    );
    o.one(
        "sipfront_last_reload_time_seconds",
        "gauge",
        "Time of the last successful reload (or of the start) since the Unix epoch.",
        x.last_reload_time,
    );

    let h = "sipfront_invite_first_response_seconds";
    o.head(
        h,
        "histogram",
        "Time from sending an INVITE to its first response, per destination (stateful mode).",
    );
    for b in &x.backends {
        let Some(hist) = s.latency.get(b.id.0 as usize) else {
            continue;
        };
        let l = backend_labels(b);
        let mut cum = 0u64;
        for (i, bound) in LATENCY_BOUNDS.iter().enumerate() {
            cum += hist.buckets.get(i).copied().unwrap_or(0);
            o.line(&format!("{h}_bucket"), &format!("{l},le=\"{bound}\""), cum);
        }
        o.line(
            &format!("{h}_bucket"),
            &format!("{l},le=\"+Inf\""),
            hist.count,
        );
        o.line(&format!("{h}_sum"), &l, hist.sum_us as f64 / 1e6);
        o.line(&format!("{h}_count"), &l, hist.count);
    }
    o.0
}

/// The method name of `Stats::per_method` index `i`.
pub fn method_name(i: usize) -> &'static str {
    METHOD_NAMES.get(i).copied().unwrap_or("other")
}

const _: () = assert!(Method::Other as usize + 1 == METHOD_NAMES.len());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::BackendId;

    #[test]
    fn method_names_follow_the_enum() {
        for (i, n) in METHOD_NAMES.iter().enumerate().take(METHODS - 1) {
            assert_eq!(
                Method::from_bytes(n.as_bytes()).map(|m| m as usize),
                Some(i)
            );
        }
    }

    fn view(id: u32, uri: &str, state: State) -> BackendView {
        BackendView {
            id: BackendId(id),
            set: "pbx".into(),
            uri: uri.into(),
            addr: "127.0.0.1:5070".parse().unwrap(),
            state,
            probe_up: true,
            failures: 0,
            suspended: false,
            probes: [5, 1, 2, 0],
            last_code: Some(200),
        }
    }

    #[test]
    fn renders_counters_labels_and_a_cumulative_histogram() {
        let mut s = Stats::default();
        s.replied(503);
        s.replied(503);
        s.replied(100);
        s.forwarded_to(1);
        s.forwarded_to(1);
        s.forwarded_method(Method::Invite);
        s.drop(DropReason::KeepAlive);
        s.send_failed(SendError::WouldBlock, 2);
        s.originate(Originated::Cancel);
        s.transactions_current = 4;
        s.transactions_pending = 1;
        s.observe_latency(1, std::time::Duration::from_micros(700));
        s.observe_latency(1, std::time::Duration::from_millis(30));
        s.observe_latency(1, std::time::Duration::from_secs(9));
        let x = Extra {
            backends: vec![
                view(0, "sip:a\"b", State::Inactive),
                view(1, "sip:127.0.0.1:5070", State::Active),
            ],
            transitions: [1, 2, 0, 0],
            reloads_ok: 3,
            ready: true,
            driver: "portable",
            ..Extra::default()
        };
        let t = render(&s, &x);
        for want in [
            "# TYPE sipfront_replies_total counter",
            "sipfront_replies_total{code=\"503\",class=\"5xx\"} 2",
            "sipfront_replies_total{code=\"100\",class=\"1xx\"} 1",
            "sipfront_requests_forwarded_total{set=\"pbx\",backend=\"sip:127.0.0.1:5070\"} 2",
            "sipfront_requests_forwarded_total{set=\"pbx\",backend=\"sip:a\\\"b\"} 0",
            "sipfront_requests_forwarded_by_method_total{method=\"INVITE\"} 1",
            "sipfront_drops_total{reason=\"keepalive\"} 1",
            "sipfront_send_failures_total{reason=\"would_block\"} 2",
            "sipfront_send_failures_total{reason=\"unreachable\"} 0",
            "sipfront_originated_total{method=\"CANCEL\"} 1",
            "sipfront_internal_faults_total 0",
            "sipfront_parked 0",
            "sipfront_transactions_current 4",
            "sipfront_transactions_pending 1",
            "sipfront_backend_state{set=\"pbx\",backend=\"sip:127.0.0.1:5070\",state=\"active\"} 1",
            "sipfront_backend_state{set=\"pbx\",backend=\"sip:127.0.0.1:5070\",state=\"inactive\"} 0",
            "sipfront_probes_total{set=\"pbx\",backend=\"sip:127.0.0.1:5070\",result=\"timeout\"} 2",
            "sipfront_backend_transitions_total{to=\"inactive\"} 2",
            "sipfront_reloads_total{result=\"ok\"} 3",
            "sipfront_invite_first_response_seconds_bucket{set=\"pbx\",backend=\"sip:127.0.0.1:5070\",le=\"0.0005\"} 0",
            "sipfront_invite_first_response_seconds_bucket{set=\"pbx\",backend=\"sip:127.0.0.1:5070\",le=\"0.001\"} 1",
            "sipfront_invite_first_response_seconds_bucket{set=\"pbx\",backend=\"sip:127.0.0.1:5070\",le=\"0.05\"} 2",
            "sipfront_invite_first_response_seconds_bucket{set=\"pbx\",backend=\"sip:127.0.0.1:5070\",le=\"2.5\"} 2",
            "sipfront_invite_first_response_seconds_bucket{set=\"pbx\",backend=\"sip:127.0.0.1:5070\",le=\"+Inf\"} 3",
            "sipfront_invite_first_response_seconds_count{set=\"pbx\",backend=\"sip:127.0.0.1:5070\"} 3",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        // Every sample line belongs to a family announced by # TYPE.
        let mut typed = std::collections::HashSet::new();
        for l in t.lines() {
            if let Some(r) = l.strip_prefix("# TYPE ") {
                typed.insert(r.split(' ').next().unwrap().to_string());
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                let base = name
                    .trim_end_matches("_bucket")
                    .trim_end_matches("_sum")
                    .trim_end_matches("_count");
                assert!(typed.contains(name) || typed.contains(base), "{l}");
            }
        }
        assert_eq!(label("a\\b\n"), "a\\\\b\\n");
    }
}
