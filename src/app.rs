//! Wiring from the validated configuration to the runtime: backend sets and
//! rules for the dispatcher, proxy and runtime settings. The binary calls
//! this; tests call it too.

use crate::config::{self, Config};
use crate::dispatch::{BackendId, BackendSet, Destination, HealthTable, Rules};
use crate::proxy::{txn::TxnConfig, ProxyConfig, Routing};
use crate::runtime::{DriverChoice, RuntimeConfig};
use crate::sip::Limits;

/// Builds the routing snapshot. Destination ids are unique across sets, so
/// one health table covers them all; here they are numbered in order.
pub fn routing(cfg: &Config) -> Result<Routing, String> {
    let mut next = 0u32;
    routing_with(cfg, &mut |_, _| {
        next += 1;
        BackendId(next - 1)
    })
}

/// [`routing`] with the ids chosen by `id_of(set, uri)`, so a reload can
/// keep the id of every destination that is still listed
/// (`crate::admin::monitor::Monitor::install`).
pub fn routing_with(
    cfg: &Config,
    id_of: &mut dyn FnMut(&str, &str) -> BackendId,
) -> Result<Routing, String> {
    let mut sets = Vec::with_capacity(cfg.backend_sets.len());
    for s in &cfg.backend_sets {
        let mut dests = Vec::with_capacity(s.destinations.len());
        for d in &s.destinations {
            let mut dest = Destination::new(id_of(&s.name, &d.uri), d.uri.clone(), d.addr)
                .with_weight(d.weight)
                .with_priority(d.priority);
            for (k, v) in &d.attrs {
                dest = dest.with_attr(k.clone(), v.clone());
            }
            dests.push(dest);
        }
        sets.push(BackendSet::new(s.name.clone(), s.algorithm, dests).map_err(|e| e.to_string())?);
    }
    let rules = Rules::from_named(cfg.routing.rules.clone(), &cfg.routing.default, &sets)
        .map_err(|e| e.to_string())?;
    Ok(Routing::new(sets, rules))
}

/// A health table sized for every destination of `routing`, all active.
pub fn health(routing: &Routing) -> HealthTable {
    let n: usize = routing.sets.iter().map(|s| s.len()).sum();
    HealthTable::new(n as u32)
}

pub fn proxy_config(cfg: &Config) -> ProxyConfig {
    ProxyConfig {
        record_route: cfg.proxy.record_route,
        max_forwards: u32::from(cfg.proxy.max_forwards),
        max_message_size: cfg.proxy.max_message_size,
        limits: Limits {
            // Parse whatever UDP can carry, so an oversized request can
            // still be answered 513.
            max_message_size: config::schema::MAX_MAX_MESSAGE_SIZE,
            max_headers: cfg.proxy.max_headers,
            ..Limits::default()
        },
        transactions: (cfg.proxy.mode == config::ProxyMode::Stateful)
            .then(|| TxnConfig::from(&cfg.transaction)),
        nat: cfg.nat.enabled.then(|| cfg.nat.clone()),
        preloaded_route: cfg.proxy.preloaded_route,
        sources: crate::proxy::SourceAcl {
            allow: cfg.proxy.allow_sources.clone(),
            deny: cfg.proxy.deny_sources.clone(),
        },
        // No feature parks messages yet (NAT and media will).
        ..ProxyConfig::default()
    }
}

/// `[transaction]` as the transaction layer takes it.
impl From<&config::TransactionConfig> for TxnConfig {
    fn from(t: &config::TransactionConfig) -> TxnConfig {
        TxnConfig {
            t1_ms: t.t1_ms,
            t2_ms: t.t2_ms,
            t4_ms: t.t4_ms,
            fr_ms: t.fr_timeout_ms,
            fr_inv_ms: t.fr_inv_timeout_ms,
            max_transactions: t.max_transactions,
            max_tries: t.max_tries,
            failover_codes: t.failover_codes.clone(),
        }
    }
}

pub fn runtime_config(cfg: &Config) -> RuntimeConfig {
    RuntimeConfig {
        workers: cfg.server.workers.count(),
        driver: match cfg.server.io_driver {
            config::IoDriver::Auto => DriverChoice::Auto,
            config::IoDriver::Uring => DriverChoice::Uring,
            config::IoDriver::Portable => DriverChoice::Portable,
        },
        listens: cfg.server.listen.iter().map(|l| l.addr).collect(),
        egress_port_base: cfg.server.egress_port_base,
        recv_buffer: cfg.server.recv_buffer,
        send_buffer: cfg.server.send_buffer,
        advertise: cfg
            .server
            .advertise
            .as_ref()
            .map(|a| (a.host.clone(), a.port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::*;

    #[test]
    fn transaction_defaults_are_the_documented_ones() {
        let t = TxnConfig::default();
        assert_eq!(
            (t.t1_ms, t.t2_ms, t.t4_ms, t.fr_ms, t.fr_inv_ms),
            (
                DEFAULT_T1_MS,
                DEFAULT_T2_MS,
                DEFAULT_T4_MS,
                DEFAULT_FR_TIMEOUT_MS,
                DEFAULT_FR_INV_TIMEOUT_MS
            )
        );
        assert_eq!(t.max_transactions, DEFAULT_MAX_TRANSACTIONS);
        assert_eq!(t.max_tries, DEFAULT_MAX_TRIES);
        assert_eq!(t.failover_codes, DEFAULT_FAILOVER_CODES);
    }
}
