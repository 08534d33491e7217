//! The one writer of backend health: the registry of destinations by
//! [`BackendId`], their state machines ([`DestHealth`]), probe counters,
//! and the shared [`HealthTable`] the workers read.
//!
//! Ids are stable: a destination keeps its id across reloads while it is
//! listed (same set, same URI), so its state, its counters in the workers'
//! `Stats` and the ids held by in-flight transactions stay meaningful. New
//! destinations take fresh ids; ids of removed destinations are reused
//! only when the fresh ones run out (the table is sized once, at start).
//!
//! Only the prober thread and the admin API lock the [`Monitor`]; workers
//! never do: they read the table's atomic bits.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::config::{Config, ProbeConfig};
use crate::dispatch::probe::{Admin, DestHealth, Outcome, State, Thresholds, Transition};
use crate::dispatch::{BackendId, Health, HealthTable};
use crate::proxy::Routing;

/// The smallest health table; grows with the configured destinations.
pub const MIN_CAPACITY: u32 = 1024;

/// One destination as the monitor knows it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub set: String,
    pub uri: String,
    pub addr: SocketAddr,
    pub health: DestHealth,
    /// Probe results by [`Outcome::index`].
    pub probes: [u64; 4],
    /// Branch and send time of the probe in flight.
    pub pending: Option<(String, Instant)>,
    /// When the next probe is due.
    pub next_probe: Option<Instant>,
    /// CSeq of the last probe sent.
    pub cseq: u32,
    /// The last probe reply code, if any.
    pub last_code: Option<u16>,
}

/// A destination as reported by the API and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendView {
    pub id: BackendId,
    pub set: String,
    pub uri: String,
    pub addr: SocketAddr,
    pub state: State,
    pub probe_up: bool,
    pub failures: u32,
    pub suspended: bool,
    pub probes: [u64; 4],
    pub last_code: Option<u16>,
}

/// What a reload changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstallSummary {
    pub kept: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// Why the admin API could not change a state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetStateError {
    NotFound,
}

pub(crate) struct Inner {
    pub entries: Vec<Option<Entry>>,
    by_key: HashMap<(String, String), BackendId>,
    next: u32,
    free: VecDeque<u32>,
    pub settings: ProbeConfig,
}

/// Health registry and state machines; see the module comment.
pub struct Monitor {
    table: Arc<HealthTable>,
    inner: Mutex<Inner>,
    transitions: [AtomicU64; 4],
}

impl Monitor {
    /// A monitor whose table holds `destinations` with room to grow
    /// (four times as many, at least [`MIN_CAPACITY`]).
    pub fn new(destinations: usize, settings: ProbeConfig) -> Monitor {
        let cap = (destinations.saturating_mul(4) as u32).max(MIN_CAPACITY);
        Monitor {
            table: Arc::new(HealthTable::new(cap)),
            inner: Mutex::new(Inner {
                entries: Vec::new(),
                by_key: HashMap::new(),
                next: 0,
                free: VecDeque::new(),
                settings,
            }),
            transitions: Default::default(),
        }
    }

    /// The table the workers read.
    pub fn table(&self) -> Arc<HealthTable> {
        Arc::clone(&self.table)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn settings(&self) -> ProbeConfig {
        self.lock().settings.clone()
    }

    pub fn set_settings(&self, s: ProbeConfig) {
        let mut g = self.lock();
        if !s.enabled {
            for e in g.entries.iter_mut().flatten() {
                e.pending = None;
                e.next_probe = None;
            }
        }
        g.settings = s;
    }

    pub fn thresholds(s: &ProbeConfig) -> Thresholds {
        Thresholds {
            down: s.down_threshold,
            up: s.up_threshold,
        }
    }

    /// Builds a routing snapshot for `cfg` with stable ids (`build` is
    /// `app::routing_with`) and, if it builds, makes its destinations the
    /// monitored ones: states carried over for every destination still
    /// listed, new ones active, removed ones forgotten. Nothing changes on
    /// error.
    pub fn install(
        &self,
        cfg: &Config,
        build: impl FnOnce(&Config, &mut dyn FnMut(&str, &str) -> BackendId) -> Result<Routing, String>,
    ) -> Result<(Routing, InstallSummary), String> {
        let mut guard = self.lock();
        let g = &mut *guard;
        let cap = self.table.capacity();
        let mut next = g.next;
        let mut free = g.free.clone();
        let mut wanted: HashMap<(String, String), BackendId> = HashMap::new();
        let mut overflow = false;
        let routing = build(cfg, &mut |set, uri| {
            let key = (set.to_string(), uri.to_string());
            if let Some(id) = g.by_key.get(&key).or_else(|| wanted.get(&key)) {
                let id = *id;
                wanted.insert(key, id);
                return id;
            }
            let id = if next < cap {
                next += 1;
                next - 1
            } else if let Some(id) = free.pop_front() {
                id
            } else {
                overflow = true;
                0
            };
            wanted.insert(key, BackendId(id));
            BackendId(id)
        })?;
        if overflow {
            return Err(format!(
                "more destinations than the health table holds ({cap}); needs a restart"
            ));
        }
        let mut summary = InstallSummary::default();
        // Removed: not wanted any more.
        let old: Vec<((String, String), BackendId)> =
            g.by_key.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (key, id) in old {
            if !wanted.contains_key(&key) {
                g.by_key.remove(&key);
                if let Some(slot) = g.entries.get_mut(id.0 as usize) {
                    *slot = None;
                }
                self.table.reset(id);
                free.push_back(id.0);
                summary.removed.push(format!("{}/{}", key.0, key.1));
            }
        }
        let addrs: HashMap<BackendId, SocketAddr> = routing
            .sets
            .iter()
            .flat_map(|s| s.destinations().iter().map(|d| (d.id, d.addr)))
            .collect();
        for (key, id) in wanted {
            let addr = addrs
                .get(&id)
                .copied()
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
            let i = id.0 as usize;
            if g.entries.len() <= i {
                g.entries.resize(i + 1, None);
            }
            match g.entries.get_mut(i) {
                Some(Some(e)) => {
                    e.addr = addr;
                    summary.kept += 1;
                }
                Some(slot) => {
                    self.table.reset(id);
                    summary.added.push(format!("{}/{}", key.0, key.1));
                    *slot = Some(Entry {
                        set: key.0.clone(),
                        uri: key.1.clone(),
                        addr,
                        health: DestHealth::new(),
                        probes: [0; 4],
                        pending: None,
                        next_probe: None,
                        cseq: 0,
                        last_code: None,
                    });
                    g.by_key.insert(key, id);
                }
                None => {}
            }
        }
        free.retain(|id| g.entries.get(*id as usize).is_none_or(Option::is_none));
        g.next = next;
        g.free = free;
        summary.added.sort();
        summary.removed.sort();
        Ok((routing, summary))
    }

    /// Writes the entry's selectability into the table, counts and logs a
    /// transition.
    fn publish(&self, id: BackendId, e: &Entry, t: Option<Transition>) {
        self.table.set_active(id, e.health.selectable());
        // Only a destination found dead gives up what is in flight toward
        // it; an admin's disable or drain lets it finish.
        self.table.set_down(id, !e.health.probe_up());
        if let Some(t) = t {
            if t.to == State::Active {
                self.table.clear_failures(id);
            }
            if let Some(c) = self.transitions.get(t.to as usize) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            tracing::warn!(
                set = %e.set,
                uri = %e.uri,
                from = %t.from,
                to = %t.to,
                reason = %t.reason,
                "backend state changed"
            );
        }
    }

    /// Records a probe result for `id` (the prober).
    pub(crate) fn probe_result(&self, g: &mut Inner, id: BackendId, o: Outcome) {
        let th = Self::thresholds(&g.settings);
        if let Some(Some(e)) = g.entries.get_mut(id.0 as usize) {
            if let Some(c) = e.probes.get_mut(o.index()) {
                *c += 1;
            }
            if let Outcome::Ok(c) | Outcome::Rejected(c) = o {
                e.last_code = Some(c);
            }
            let t = e.health.probe(o, th);
            self.publish(id, e, t);
        }
    }

    /// Reads the passive failure counts the workers reported (the prober,
    /// once per tick).
    pub(crate) fn check_passive(&self, g: &mut Inner) {
        let th = Self::thresholds(&g.settings);
        for (i, slot) in g.entries.iter_mut().enumerate() {
            if let Some(e) = slot {
                let id = BackendId(i as u32);
                let f = self.table.failures(id);
                if f > 0 {
                    let t = e.health.passive(f, th);
                    if t.is_some() {
                        self.publish(id, e, t);
                    }
                }
            }
        }
    }

    /// Sets the administrative state of `uri` in `set`. `Admin::Auto`
    /// without probing also marks it alive: nothing else would.
    pub fn set_admin(
        &self,
        set: &str,
        uri: &str,
        a: Admin,
        who: &str,
    ) -> Result<State, SetStateError> {
        let mut guard = self.lock();
        let g = &mut *guard;
        let probing = g.settings.enabled;
        let id = *g
            .by_key
            .get(&(set.to_string(), uri.to_string()))
            .ok_or(SetStateError::NotFound)?;
        let Some(Some(e)) = g.entries.get_mut(id.0 as usize) else {
            return Err(SetStateError::NotFound);
        };
        let before = e.health.state();
        let mut t = e.health.set_admin(a, who);
        if a == Admin::Auto && !probing && !e.health.probe_up() {
            e.health.force_up();
            self.table.clear_failures(id);
            t = Some(Transition {
                from: before,
                to: e.health.state(),
                reason: format!("set by {who}"),
            })
            .filter(|t| t.from != t.to);
        }
        let state = e.health.state();
        self.publish(id, e, t);
        Ok(state)
    }

    /// Every monitored destination, by id.
    pub fn backends(&self) -> Vec<BackendView> {
        let g = self.lock();
        g.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let e = e.as_ref()?;
                let id = BackendId(i as u32);
                Some(BackendView {
                    id,
                    set: e.set.clone(),
                    uri: e.uri.clone(),
                    addr: e.addr,
                    state: e.health.state(),
                    probe_up: e.health.probe_up(),
                    failures: self.table.failures(id),
                    suspended: self.table.is_suspended(id),
                    probes: e.probes,
                    last_code: e.last_code,
                })
            })
            .collect()
    }

    /// Transitions into each state since start, by `State as usize`.
    pub fn transitions(&self) -> [u64; 4] {
        [0, 1, 2, 3].map(|i| self.transitions[i].load(Ordering::Relaxed))
    }

    /// Whether `id` may be selected now (tests, the API).
    pub fn is_active(&self, id: BackendId) -> bool {
        self.table.is_active(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app;

    fn cfg(text: &str) -> Config {
        crate::config::from_toml_str(std::path::Path::new("t.toml"), text).unwrap()
    }

    const TWO: &str = "[[backend_set]]\nname = \"a\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1:5070\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1:5080\"\n";
    const THREE: &str = "[[backend_set]]\nname = \"a\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1:5090\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1:5080\"\n[[backend_set.destination]]\nuri = \"sip:127.0.0.1:5100\"\n";

    fn id_of(m: &Monitor, uri: &str) -> BackendId {
        m.backends().into_iter().find(|b| b.uri == uri).unwrap().id
    }

    #[test]
    fn reload_keeps_state_and_ids_of_listed_destinations() {
        let m = Monitor::new(2, ProbeConfig::default());
        let (r, s) = m.install(&cfg(TWO), app::routing_with).unwrap();
        assert_eq!(s.added.len(), 2);
        assert_eq!(r.sets[0].destinations()[1].id, BackendId(1));
        m.set_admin("a", "sip:127.0.0.1:5080", Admin::Disabled, "test")
            .unwrap();
        assert!(!m.is_active(BackendId(1)));

        let (r, s) = m.install(&cfg(THREE), app::routing_with).unwrap();
        assert_eq!(s.kept, 1);
        assert_eq!(s.added, ["a/sip:127.0.0.1:5090", "a/sip:127.0.0.1:5100"]);
        assert_eq!(s.removed, ["a/sip:127.0.0.1:5070"]);
        // 5080 kept id 1 and its disabled state; the new ones took fresh ids.
        assert_eq!(id_of(&m, "sip:127.0.0.1:5080"), BackendId(1));
        assert_eq!(r.sets[0].destinations()[1].id, BackendId(1));
        assert!(!m.is_active(BackendId(1)));
        let new_ids = [
            id_of(&m, "sip:127.0.0.1:5090"),
            id_of(&m, "sip:127.0.0.1:5100"),
        ];
        assert_eq!(new_ids, [BackendId(2), BackendId(3)]);
        assert!(m.is_active(BackendId(2)));
        let states: Vec<State> = m.backends().iter().map(|b| b.state).collect();
        assert_eq!(states, [State::Disabled, State::Active, State::Active]);
    }

    #[test]
    fn a_failed_build_changes_nothing() {
        let m = Monitor::new(2, ProbeConfig::default());
        m.install(&cfg(TWO), app::routing_with).unwrap();
        let before = m.backends();
        let e = m
            .install(&cfg(THREE), |_, _| Err("bad".to_string()))
            .unwrap_err();
        assert_eq!(e, "bad");
        assert_eq!(m.backends(), before);
    }

    #[test]
    fn passive_failures_mark_down_and_probes_bring_back() {
        let s = ProbeConfig {
            enabled: true,
            down_threshold: 2,
            up_threshold: 1,
            ..ProbeConfig::default()
        };
        let m = Monitor::new(2, s);
        m.install(&cfg(TWO), app::routing_with).unwrap();
        let t = m.table();
        t.report(BackendId(0), crate::dispatch::Passive::Timeout);
        m.check_passive(&mut m.lock());
        assert!(m.is_active(BackendId(0)));
        t.report(BackendId(0), crate::dispatch::Passive::Failed(503));
        m.check_passive(&mut m.lock());
        assert!(!m.is_active(BackendId(0)));
        assert_eq!(m.transitions()[State::Inactive as usize], 1);
        m.probe_result(&mut m.lock(), BackendId(0), Outcome::Ok(200));
        assert!(m.is_active(BackendId(0)));
        assert_eq!(t.failures(BackendId(0)), 0);
        assert_eq!(m.backends()[0].probes, [1, 0, 0, 0]);
    }

    #[test]
    fn unknown_destination_is_not_found() {
        let m = Monitor::new(2, ProbeConfig::default());
        m.install(&cfg(TWO), app::routing_with).unwrap();
        assert_eq!(
            m.set_admin("a", "sip:nowhere", Admin::Drain, "t"),
            Err(SetStateError::NotFound)
        );
        assert_eq!(
            m.set_admin("b", "sip:127.0.0.1:5070", Admin::Drain, "t"),
            Err(SetStateError::NotFound)
        );
        assert_eq!(
            m.set_admin("a", "sip:127.0.0.1:5070", Admin::Drain, "t"),
            Ok(State::Drain)
        );
        assert_eq!(
            m.set_admin("a", "sip:127.0.0.1:5070", Admin::Auto, "t"),
            Ok(State::Active)
        );
    }
}
