//! Per-request selection: [`Selector::select`] picks one destination of a
//! set, [`Selector::ranking`] lists the active destinations in the order the
//! algorithm prefers them (the failover order of stateful mode).
//!
//! One `Selector` per worker. It holds the only mutable selection state, the
//! round-robin cursors and the random generator, so the hot path touches no
//! shared atomics (only the relaxed loads of the health bits) and allocates
//! nothing once warm: the cursor map grows on the first request of each set,
//! and `ranking`'s scratch buffer grows to the largest set once.
//!
//! Round robin, random and weighted therefore run independently on each
//! worker. Each worker's sequence has the configured split (round robin: each
//! active destination once per cycle; random/weighted: independent draws with
//! the configured probabilities), and the sum of independent streams with the
//! same split has that split too: at any moment the round-robin total is
//! within one cycle per worker of even, and the weighted total converges like
//! a single generator would. Workers start their round-robin cursor at
//! `worker % n` so that light traffic does not pile onto the first entry.

use std::net::IpAddr;

use ahash::AHashMap;
use smallvec::SmallVec;

use super::algorithm::Algorithm;
use super::hash::{key_hash, score};
use super::health::Health;
use super::set::{BackendId, BackendSet, Destination};
use crate::sip::{Message, Uri};

/// What the algorithms may look at in a request. Build it with
/// [`SelectInput::from_message`], which parses only what the set's algorithm
/// needs, or fill it by hand.
#[derive(Clone, Copy, Debug)]
pub struct SelectInput<'a> {
    pub call_id: &'a [u8],
    pub from_uri: Option<Uri<'a>>,
    pub to_uri: Option<Uri<'a>>,
    pub ruri: Option<Uri<'a>>,
    /// The address the request came from (after any trusted-proxy rewrite).
    pub source: IpAddr,
}

impl<'a> SelectInput<'a> {
    /// Only the Call-ID and the source; the URIs absent.
    pub fn new(call_id: &'a [u8], source: IpAddr) -> SelectInput<'a> {
        SelectInput {
            call_id,
            from_uri: None,
            to_uri: None,
            ruri: None,
            source,
        }
    }

    /// The input for `alg` from a parsed request: the Call-ID always (empty
    /// when missing or malformed; validation rejects such requests first),
    /// plus the From, To or Request-URI only when `alg` hashes it. A field
    /// that does not parse is left `None` and the hash falls back to the
    /// Call-ID.
    pub fn from_message(msg: &Message<'a>, source: IpAddr, alg: Algorithm) -> SelectInput<'a> {
        let mut input = SelectInput::new(msg.call_id().unwrap_or(b""), source);
        match alg {
            Algorithm::From => input.from_uri = msg.from().ok().map(|n| n.uri),
            Algorithm::To => input.to_uri = msg.to().ok().map(|n| n.uri),
            Algorithm::Ruri | Algorithm::RuriUser => {
                input.ruri = msg.request_uri().and_then(|r| Uri::parse(r).ok());
            }
            Algorithm::CallId
            | Algorithm::RoundRobin
            | Algorithm::Random
            | Algorithm::Priority
            | Algorithm::Weighted
            | Algorithm::SourceIp
            | Algorithm::PriorityWeighted => {}
        }
        input
    }
}

/// Round-robin cursors kept before the map is cleared: sets are rebuilt on
/// every reload, and each build gets a new uid (see
/// [`Selector::retain_sets`] for the tidy way).
const MAX_CURSORS: usize = 4096;

/// Per-worker selection state.
#[derive(Debug)]
pub struct Selector {
    worker: usize,
    rng: fastrand::Rng,
    /// Set uid → index of the next destination to try.
    rr: AHashMap<u64, u32>,
    /// Health snapshot of the set being examined (one read per destination,
    /// so a concurrent health change cannot make a multi-pass choice fail).
    active: Vec<bool>,
    /// (score, identity, index) for ranking by rendezvous score.
    scratch: Vec<(u64, u64, u32)>,
}

/// SplitMix64: spreads worker numbers into unrelated seeds.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Selector {
    /// The selector of worker `worker`, its generator seeded from the worker
    /// number (so runs are reproducible).
    pub fn new(worker: usize) -> Selector {
        Selector::with_seed(worker, splitmix64(worker as u64))
    }

    /// Like [`Selector::new`] with an explicit random seed.
    pub fn with_seed(worker: usize, seed: u64) -> Selector {
        Selector {
            worker,
            rng: fastrand::Rng::with_seed(seed),
            rr: AHashMap::default(),
            active: Vec::new(),
            scratch: Vec::new(),
        }
    }

    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Picks the destination for a request, or `None` when no destination of
    /// the set is active (or the set is empty). Advances the round-robin
    /// cursor / random generator; call either this or [`Selector::ranking`]
    /// once per request, not both.
    pub fn select<'s>(
        &mut self,
        set: &'s BackendSet,
        input: &SelectInput<'_>,
        health: &impl Health,
    ) -> Option<&'s Destination> {
        let i = self.pick(set, input, health)?;
        set.destinations().get(i)
    }

    /// The active destination the weighted rendezvous hash of the Call-ID
    /// picks, whatever the set's algorithm: how a stateless proxy keeps the
    /// requests of one dialog on one backend when they carry no Route
    /// (SIPp's built-in scenarios send ACK and BYE that way).
    pub fn select_by_call_id<'s>(
        &mut self,
        set: &'s BackendSet,
        input: &SelectInput<'_>,
        health: &impl Health,
    ) -> Option<&'s Destination> {
        let key = key_hash(Algorithm::CallId, input)?;
        set.destinations().get(hrw_best(set, key, health)?)
    }

    /// Writes into `out` (cleared first) the active destinations in the order
    /// the algorithm ranks them for this input; its first element is what
    /// [`Selector::select`] would have returned from the same state.
    ///
    /// - hashes: descending rendezvous score (deterministic);
    /// - `priority`: by priority, then list order;
    /// - `priority-weighted`: the weighted choice, then the rest by priority
    ///   and list order;
    /// - `round-robin`, `random`, `weighted`: the choice, then the other
    ///   active destinations in list order starting after it (wrapping), so
    ///   the failover load of one destination spreads over the others.
    ///
    /// No heap allocation for sets of up to 8 destinations.
    pub fn ranking(
        &mut self,
        set: &BackendSet,
        input: &SelectInput<'_>,
        health: &impl Health,
        out: &mut SmallVec<[BackendId; 8]>,
    ) {
        out.clear();
        let dests = set.destinations();
        let id = |i: usize| dests.get(i).map(|d| d.id);
        match set.algorithm() {
            Algorithm::CallId
            | Algorithm::From
            | Algorithm::To
            | Algorithm::Ruri
            | Algorithm::RuriUser
            | Algorithm::SourceIp => {
                if let Some(key) = key_hash(set.algorithm(), input) {
                    self.hrw_ranking(set, key, health, out);
                }
            }
            Algorithm::Priority => out.extend(
                set.by_priority()
                    .iter()
                    .filter_map(|&i| dests.get(i as usize))
                    .filter(|d| health.is_active(d.id))
                    .map(|d| d.id),
            ),
            Algorithm::RoundRobin | Algorithm::Random | Algorithm::Weighted => {
                let Some(first) = self.pick(set, input, health) else {
                    return;
                };
                let n = dests.len();
                out.extend(
                    (0..n)
                        .map(|k| (first + k) % n)
                        .filter(|&i| i == first || self.active_at(dests, i, health))
                        .filter_map(id),
                );
            }
            Algorithm::PriorityWeighted => {
                let Some(first) = self.pick(set, input, health) else {
                    return;
                };
                out.extend(id(first));
                out.extend(
                    set.by_priority()
                        .iter()
                        .map(|&i| i as usize)
                        .filter(|&i| i != first && self.active_at(dests, i, health))
                        .filter_map(id),
                );
            }
        }
    }

    /// [`Selector::ranking`] by the weighted rendezvous hash of the
    /// Call-ID whatever the set's algorithm: the failover order that goes
    /// with [`Selector::select_by_call_id`]. Its first element is what that
    /// returns.
    pub fn ranking_by_call_id(
        &mut self,
        set: &BackendSet,
        input: &SelectInput<'_>,
        health: &impl Health,
        out: &mut SmallVec<[BackendId; 8]>,
    ) {
        out.clear();
        if let Some(key) = key_hash(Algorithm::CallId, input) {
            self.hrw_ranking(set, key, health, out);
        }
    }

    /// Active destinations by descending rendezvous score for `key`.
    fn hrw_ranking(
        &mut self,
        set: &BackendSet,
        key: u64,
        health: &impl Health,
        out: &mut SmallVec<[BackendId; 8]>,
    ) {
        let dests = set.destinations();
        let uniform = set.uniform_weights();
        self.scratch.clear();
        for (i, d) in dests.iter().enumerate() {
            if health.is_active(d.id) {
                let ident = set.ident(i);
                let s = score(key, ident, d.effective_weight(), uniform);
                self.scratch.push((s, ident, i as u32));
            }
        }
        // Descending score, then identity; ascending index last, matching
        // `hrw_best`'s tie-break.
        self.scratch
            .sort_unstable_by(|a, b| (b.0, b.1, a.2).cmp(&(a.0, a.1, b.2)));
        out.extend(
            self.scratch
                .iter()
                .filter_map(|&(_, _, i)| dests.get(i as usize).map(|d| d.id)),
        );
    }

    /// Forgets the round-robin cursors of sets not in `live` (call after a
    /// reload; otherwise the map is simply cleared when it gets large).
    pub fn retain_sets<'x>(&mut self, live: impl IntoIterator<Item = &'x BackendSet>) {
        let keep: Vec<u64> = live.into_iter().map(|s| s.uid()).collect();
        self.rr.retain(|uid, _| keep.contains(uid));
    }

    #[inline]
    fn active_at(&self, dests: &[Destination], i: usize, health: &impl Health) -> bool {
        dests.get(i).is_some_and(|d| health.is_active(d.id))
    }

    /// The index of the chosen destination.
    fn pick(
        &mut self,
        set: &BackendSet,
        input: &SelectInput<'_>,
        health: &impl Health,
    ) -> Option<usize> {
        let alg = set.algorithm();
        match alg {
            Algorithm::CallId
            | Algorithm::From
            | Algorithm::To
            | Algorithm::Ruri
            | Algorithm::RuriUser
            | Algorithm::SourceIp => hrw_best(set, key_hash(alg, input)?, health),
            Algorithm::RoundRobin => self.round_robin(set, health),
            Algorithm::Priority => set
                .by_priority()
                .iter()
                .map(|&i| i as usize)
                .find(|&i| self.active_at(set.destinations(), i, health)),
            Algorithm::Random => {
                self.snapshot(set, health);
                let k = self.active.iter().filter(|&&a| a).count();
                if k == 0 {
                    return None;
                }
                let r = self.rng.usize(0..k);
                self.active
                    .iter()
                    .enumerate()
                    .filter(|(_, &a)| a)
                    .nth(r)
                    .map(|(i, _)| i)
            }
            Algorithm::Weighted => {
                self.snapshot(set, health);
                self.weighted(set, None)
            }
            Algorithm::PriorityWeighted => {
                self.snapshot(set, health);
                let tier = set
                    .destinations()
                    .iter()
                    .zip(&self.active)
                    .filter(|(_, &a)| a)
                    .map(|(d, _)| d.priority)
                    .min()?;
                self.weighted(set, Some(tier))
            }
        }
    }

    /// Reads the health of every destination once into `self.active`.
    fn snapshot(&mut self, set: &BackendSet, health: &impl Health) {
        self.active.clear();
        self.active
            .extend(set.destinations().iter().map(|d| health.is_active(d.id)));
    }

    /// Weight-proportional random choice among the active destinations
    /// (of priority `tier` when given), from the `self.active` snapshot.
    fn weighted(&mut self, set: &BackendSet, tier: Option<i32>) -> Option<usize> {
        let active = &self.active;
        let eligible = set.destinations().iter().enumerate().filter(|&(i, d)| {
            active.get(i).copied().unwrap_or(false) && tier.is_none_or(|t| d.priority == t)
        });
        let total: u64 = eligible
            .clone()
            .map(|(_, d)| u64::from(d.effective_weight()))
            .sum();
        if total == 0 {
            return None;
        }
        let mut r = self.rng.u64(0..total);
        let mut last = None;
        for (i, d) in eligible {
            let w = u64::from(d.effective_weight());
            if r < w {
                return Some(i);
            }
            r -= w;
            last = Some(i);
        }
        last
    }

    fn round_robin(&mut self, set: &BackendSet, health: &impl Health) -> Option<usize> {
        let dests = set.destinations();
        let n = dests.len();
        if n == 0 {
            return None;
        }
        if self.rr.len() >= MAX_CURSORS && !self.rr.contains_key(&set.uid()) {
            self.rr.clear();
        }
        let start_at = (self.worker % n) as u32;
        let cursor = self.rr.entry(set.uid()).or_insert(start_at);
        let start = *cursor as usize % n;
        let i = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| dests.get(i).is_some_and(|d| health.is_active(d.id)))?;
        *cursor = ((i + 1) % n) as u32;
        Some(i)
    }
}

/// The active destination with the highest rendezvous score for `key`
/// (ties, which need equal URIs, go to the earlier entry).
fn hrw_best(set: &BackendSet, key: u64, health: &impl Health) -> Option<usize> {
    let uniform = set.uniform_weights();
    let mut best: Option<(u64, u64, usize)> = None;
    for (i, d) in set.destinations().iter().enumerate() {
        if !health.is_active(d.id) {
            continue;
        }
        let ident = set.ident(i);
        let s = score(key, ident, d.effective_weight(), uniform);
        if best.is_none_or(|(bs, bi, _)| (s, ident) > (bs, bi)) {
            best = Some((s, ident, i));
        }
    }
    best.map(|(_, _, i)| i)
}

#[cfg(test)]
mod tests;
