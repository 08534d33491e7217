//! Backend sets: the destinations a request can be dispatched to, and the
//! per-set data precomputed once when a set is built (each destination's
//! rendezvous identity, the priority order) so that selection does no work it
//! could have done at load time.
//!
//! A [`BackendSet`] is immutable once built: a reload builds new sets and the
//! runtime publishes them as a new snapshot (DESIGN.md, "Shared, read-mostly
//! state"). Destination health is not part of the set; see [`super::health`].

use core::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::algorithm::Algorithm;
use super::hash;
use crate::sip::{Transport, Uri};

/// Identifies a destination for health tracking and failover lists.
///
/// Ids are assigned by the config loader and index the
/// [`HealthTable`](super::health::HealthTable), so keep them dense (0, 1, 2,
/// ...). The same backend listed in two sets may share an id (then its health
/// is shared); within one set ids are unique.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendId(pub u32);

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "backend#{}", self.0)
    }
}

/// One destination of a backend set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub id: BackendId,
    /// The SIP URI as configured, e.g. `sip:10.0.0.1:5060`. Also the
    /// destination's identity for rendezvous hashing: as long as the URI text
    /// is unchanged, the calls hashed to it stay on it whatever else changes
    /// in the list (order, other entries).
    pub uri: String,
    /// Where to send, resolved by the caller (the dispatcher does no DNS).
    pub addr: SocketAddr,
    /// How sipfront talks to it; UDP only for now.
    pub transport: Transport,
    /// Relative weight for `weighted`, `priority-weighted` and the hash
    /// algorithms. Default 1; must be at least 1.
    pub weight: u32,
    /// Lower values are tried first by `priority` and `priority-weighted`
    /// (like DNS SRV). Default 0. Note that Kamailio's list puts *higher*
    /// values first: negate them when importing a Kamailio list.
    pub priority: i32,
    /// Free-form attributes (Kamailio's `attrs` column), kept for the
    /// integrator and the admin API.
    pub attrs: Vec<(String, String)>,
}

impl Destination {
    /// A UDP destination with weight 1, priority 0 and no attributes.
    pub fn new(id: BackendId, uri: impl Into<String>, addr: SocketAddr) -> Destination {
        Destination {
            id,
            uri: uri.into(),
            addr,
            transport: Transport::Udp,
            weight: 1,
            priority: 0,
            attrs: Vec::new(),
        }
    }

    pub fn with_weight(mut self, weight: u32) -> Destination {
        self.weight = weight;
        self
    }

    pub fn with_priority(mut self, priority: i32) -> Destination {
        self.priority = priority;
        self
    }

    pub fn with_attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Destination {
        self.attrs.push((name.into(), value.into()));
        self
    }

    /// The first attribute named `name` (ASCII case ignored).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The weight the algorithms use: a (rejected at build time) 0 counts as
    /// 1 rather than dividing by zero.
    #[inline]
    pub(crate) fn effective_weight(&self) -> u32 {
        self.weight.max(1)
    }
}

/// Why a backend set could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetError {
    EmptyName,
    /// The URI is not a valid sip/sips URI.
    BadUri {
        set: String,
        uri: String,
        reason: &'static str,
    },
    /// Two destinations with the same URI: their rendezvous identities would
    /// be equal.
    DuplicateUri {
        set: String,
        uri: String,
    },
    DuplicateId {
        set: String,
        id: BackendId,
    },
    ZeroWeight {
        set: String,
        uri: String,
    },
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetError::EmptyName => f.write_str("backend set name is empty"),
            SetError::BadUri { set, uri, reason } => {
                write!(f, "backend set {set:?}: destination {uri:?}: {reason}")
            }
            SetError::DuplicateUri { set, uri } => {
                write!(
                    f,
                    "backend set {set:?}: destination {uri:?} is listed twice"
                )
            }
            SetError::DuplicateId { set, id } => {
                write!(f, "backend set {set:?}: {id} is used by two destinations")
            }
            SetError::ZeroWeight { set, uri } => write!(
                f,
                "backend set {set:?}: destination {uri:?} has weight 0 (weights start at 1; \
                 to drain a destination mark it inactive)"
            ),
        }
    }
}

impl std::error::Error for SetError {}

/// Source of [`BackendSet::uid`]: every built set gets a distinct value, so
/// per-worker state keyed by it never confuses a reloaded set with the old one.
static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// A named list of destinations and the algorithm that picks among them.
#[derive(Clone, Debug)]
pub struct BackendSet {
    name: String,
    algorithm: Algorithm,
    destinations: Vec<Destination>,
    /// `hash::identity(uri)` of each destination, same order.
    idents: Vec<u64>,
    /// Destination indices ordered by (priority, list position).
    by_priority: Vec<u32>,
    /// All weights equal: rendezvous scores compare raw hashes (no `ln`).
    uniform_weights: bool,
    uid: u64,
}

impl BackendSet {
    /// Validates and builds a set: URIs parse as sip/sips URIs and are
    /// unique, ids are unique, weights are at least 1. An empty destination
    /// list is allowed (selection then finds nothing).
    pub fn new(
        name: impl Into<String>,
        algorithm: Algorithm,
        destinations: Vec<Destination>,
    ) -> Result<BackendSet, SetError> {
        let name = name.into();
        if name.trim().is_empty() {
            return Err(SetError::EmptyName);
        }
        for (i, d) in destinations.iter().enumerate() {
            let uri = Uri::parse_sip(d.uri.as_bytes()).map_err(|e| SetError::BadUri {
                set: name.clone(),
                uri: d.uri.clone(),
                reason: e.as_str(),
            })?;
            if !uri.is_sip_like() {
                return Err(SetError::BadUri {
                    set: name.clone(),
                    uri: d.uri.clone(),
                    reason: "a destination must be a sip: or sips: URI",
                });
            }
            if d.weight == 0 {
                return Err(SetError::ZeroWeight {
                    set: name.clone(),
                    uri: d.uri.clone(),
                });
            }
            let earlier = destinations.get(..i).unwrap_or(&[]);
            if earlier.iter().any(|e| e.uri.trim() == d.uri.trim()) {
                return Err(SetError::DuplicateUri {
                    set: name.clone(),
                    uri: d.uri.clone(),
                });
            }
            if earlier.iter().any(|e| e.id == d.id) {
                return Err(SetError::DuplicateId {
                    set: name.clone(),
                    id: d.id,
                });
            }
        }
        let idents = destinations
            .iter()
            .map(|d| hash::identity(&d.uri))
            .collect();
        let mut by_priority: Vec<u32> = (0..destinations.len() as u32).collect();
        by_priority.sort_by_key(|&i| {
            destinations
                .get(i as usize)
                .map_or((i32::MAX, i), |d| (d.priority, i))
        });
        let uniform_weights = destinations.windows(2).all(|w| w[0].weight == w[1].weight);
        Ok(BackendSet {
            name,
            algorithm,
            destinations,
            idents,
            by_priority,
            uniform_weights,
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The destinations in configured order.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    pub fn len(&self) -> usize {
        self.destinations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.destinations.is_empty()
    }

    /// The destination with this id, if it is in the set.
    pub fn get(&self, id: BackendId) -> Option<&Destination> {
        self.destinations.iter().find(|d| d.id == id)
    }

    /// Distinct for every set built in this process (reloads included).
    pub fn uid(&self) -> u64 {
        self.uid
    }

    #[inline]
    pub(crate) fn ident(&self, i: usize) -> u64 {
        self.idents.get(i).copied().unwrap_or(0)
    }

    #[inline]
    pub(crate) fn by_priority(&self) -> &[u32] {
        &self.by_priority
    }

    #[inline]
    pub(crate) fn uniform_weights(&self) -> bool {
        self.uniform_weights
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dst(id: u32, uri: &str) -> Destination {
        Destination::new(BackendId(id), uri, "127.0.0.1:5060".parse().unwrap())
    }

    #[test]
    fn destination_defaults_match_kamailio_list_defaults() {
        let d = dst(0, "sip:10.0.0.1");
        assert_eq!((d.weight, d.priority, d.transport), (1, 0, Transport::Udp));
        let d = d.with_attr("duid", "abc").with_weight(5).with_priority(-1);
        assert_eq!(d.attr("DUID"), Some("abc"));
        assert_eq!((d.weight, d.priority), (5, -1));
    }

    #[test]
    fn set_rejects_bad_duplicate_and_zero_weight_destinations() {
        let e = BackendSet::new("", Algorithm::CallId, vec![]).unwrap_err();
        assert_eq!(e, SetError::EmptyName);
        let e = BackendSet::new("a", Algorithm::CallId, vec![dst(0, "http://x")]).unwrap_err();
        assert!(e.to_string().contains("unsupported URI scheme"), "{e}");
        let e = BackendSet::new("a", Algorithm::CallId, vec![dst(0, "tel:+123")]).unwrap_err();
        assert!(matches!(e, SetError::BadUri { .. }), "{e}");
        let e = BackendSet::new(
            "a",
            Algorithm::CallId,
            vec![dst(0, "sip:10.0.0.1"), dst(1, "sip:10.0.0.1")],
        )
        .unwrap_err();
        assert!(matches!(e, SetError::DuplicateUri { .. }), "{e}");
        let e = BackendSet::new(
            "a",
            Algorithm::CallId,
            vec![dst(0, "sip:10.0.0.1"), dst(0, "sip:10.0.0.2")],
        )
        .unwrap_err();
        assert!(matches!(e, SetError::DuplicateId { .. }), "{e}");
        let e = BackendSet::new(
            "a",
            Algorithm::CallId,
            vec![dst(0, "sip:10.0.0.1").with_weight(0)],
        )
        .unwrap_err();
        assert!(e.to_string().contains("weight 0"), "{e}");
    }

    #[test]
    fn priority_order_is_lowest_value_first_then_list_order() {
        let s = BackendSet::new(
            "a",
            Algorithm::Priority,
            vec![
                dst(0, "sip:a").with_priority(5),
                dst(1, "sip:b").with_priority(-1),
                dst(2, "sip:c").with_priority(5),
                dst(3, "sip:d"),
            ],
        )
        .unwrap();
        assert_eq!(s.by_priority(), &[1, 3, 0, 2]);
        assert!(s.uniform_weights());
        assert_eq!(s.get(BackendId(2)).map(|d| d.uri.as_str()), Some("sip:c"));
    }

    #[test]
    fn every_built_set_has_its_own_uid() {
        let a = BackendSet::new("a", Algorithm::CallId, vec![]).unwrap();
        let b = BackendSet::new("a", Algorithm::CallId, vec![]).unwrap();
        assert_ne!(a.uid(), b.uid());
        assert!(a.is_empty());
    }
}
