//! Backend sets and destination selection, sans-I/O: what Kamailio's
//! `dispatcher` module does, with rendezvous hashing instead of `hash % n`.
//!
//! The proxy core, per request: [`Rules::pick`] names a [`BackendSet`];
//! [`SelectInput::from_message`] extracts what the set's [`Algorithm`] reads;
//! the worker's [`Selector`] picks a [`Destination`] (or, for stateful
//! failover, a [`Selector::ranking`] of them), skipping the ones a
//! [`Health`] implementation — in production the shared [`HealthTable`] —
//! reports inactive. No I/O, no threads, no locks; no allocation once warm.
//!
//! | module | owns |
//! |---|---|
//! | [`algorithm`] | the algorithm names, Kamailio `ds_select_dst` numbers, parsing |
//! | [`set`] | [`BackendId`], [`Destination`], [`BackendSet`] and its validation |
//! | [`hash`] | the stable hash, the key each hash algorithm uses, rendezvous scores |
//! | [`health`] | the [`Health`] trait, [`AllActive`], [`InactiveSet`], [`HealthTable`] |
//! | [`probe`] | the per-destination health state machine (thresholds, admin states) |
//! | [`select`] | [`SelectInput`], the per-worker [`Selector`] |
//! | [`rules`] | routing rules: request → set index |
//!
//! `docs/dispatch.md` has the algorithm table, the moved-fraction
//! measurements and the rule semantics.

pub mod algorithm;
pub mod hash;
pub mod health;
pub mod probe;
pub mod rules;
pub mod select;
pub mod set;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use hash::{hash_key, key_hash};
pub use health::{AllActive, Health, HealthTable, InactiveSet, Passive};
pub use rules::{
    BadDomainPattern, DomainPattern, HeaderMatch, HeaderValueMatch, Rule, RuleError, Rules,
};
pub use select::{SelectInput, Selector};
pub use set::{BackendId, BackendSet, Destination, SetError};
