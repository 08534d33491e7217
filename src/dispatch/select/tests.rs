//! Selection tests: distribution, determinism, health, failover order, and
//! the moved-fraction comparison with Kamailio's modulo hash (issue #2361).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use smallvec::SmallVec;

use super::*;
use crate::dispatch::health::{AllActive, InactiveSet};
use crate::dispatch::set::{BackendId, BackendSet, Destination};

const CALLS: usize = 100_000;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1)), 5060)
}

fn dest(i: usize) -> Destination {
    Destination::new(
        BackendId(i as u32),
        format!("sip:10.0.0.{}:5060", i + 1),
        addr(i),
    )
}

fn set_of(alg: Algorithm, dests: Vec<Destination>) -> BackendSet {
    BackendSet::new("test", alg, dests).unwrap()
}

fn uniform(alg: Algorithm, n: usize) -> BackendSet {
    set_of(alg, (0..n).map(dest).collect())
}

/// SIPp's default Call-ID: `%u-%p@%s` (call number, pid, local IP).
fn sipp_call_id(call: usize) -> String {
    format!("{}-4242@127.0.0.1", call + 1)
}

const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

fn pick_id(sel: &mut Selector, set: &BackendSet, call_id: &str, h: &impl Health) -> Option<u32> {
    let input = SelectInput::new(call_id.as_bytes(), SRC);
    sel.select(set, &input, h).map(|d| d.id.0)
}

fn counts(ids: impl IntoIterator<Item = u32>) -> HashMap<u32, usize> {
    let mut m = HashMap::new();
    for id in ids {
        *m.entry(id).or_insert(0) += 1;
    }
    m
}

// ---- hash algorithms -------------------------------------------------

#[test]
fn call_id_hash_spreads_sipp_call_ids_evenly() {
    for n in [2, 4, 10] {
        let set = uniform(Algorithm::CallId, n);
        let mut sel = Selector::new(0);
        let c = counts(
            (0..CALLS).filter_map(|k| pick_id(&mut sel, &set, &sipp_call_id(k), &AllActive)),
        );
        assert_eq!(c.len(), n);
        let fair = CALLS as f64 / n as f64;
        for (id, &got) in &c {
            let dev = (got as f64 - fair).abs() / fair;
            assert!(dev < 0.03, "n={n} backend {id}: {got} calls, fair {fair}");
        }
    }
}

/// Every request field a hash algorithm may read, varying with `k`.
fn request_fields(k: usize) -> (String, String, String, String, IpAddr) {
    (
        sipp_call_id(k),
        format!("sip:user{k}@example.com"),
        format!("sip:callee{}@example.net:5070", k % 977),
        format!("sip:+49{k}@gw.example.org"),
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + k as u32)),
    )
}

#[test]
fn hash_algorithms_agree_across_workers_and_restarts() {
    for alg in Algorithm::ALL.into_iter().filter(|a| a.is_hash()) {
        let set = uniform(alg, 5);
        let rebuilt = uniform(alg, 5);
        let mut w0 = Selector::new(0);
        let mut w7 = Selector::with_seed(7, 12345);
        let mut seen = HashMap::new();
        for k in 0..2000 {
            let (cid, from, to, ruri, src) = request_fields(k);
            let input = SelectInput {
                call_id: cid.as_bytes(),
                from_uri: Uri::parse(from.as_bytes()).ok(),
                to_uri: Uri::parse(to.as_bytes()).ok(),
                ruri: Uri::parse(ruri.as_bytes()).ok(),
                source: src,
            };
            let a = w0.select(&set, &input, &AllActive).map(|d| d.id);
            let b = w7.select(&rebuilt, &input, &AllActive).map(|d| d.id);
            assert_eq!(a, b, "{alg} call {k}");
            assert_eq!(a, w0.select(&set, &input, &AllActive).map(|d| d.id));
            *seen.entry(a).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 5, "{alg} uses every destination: {seen:?}");
    }
}

#[test]
fn every_algorithm_skips_inactive_and_finds_none_when_all_are_inactive() {
    for alg in Algorithm::ALL {
        let set = set_of(
            alg,
            (0..4)
                .map(|i| {
                    dest(i)
                        .with_priority(i as i32 % 2)
                        .with_weight(1 + i as u32)
                })
                .collect(),
        );
        let mut sel = Selector::new(3);
        let down: InactiveSet = [BackendId(0), BackendId(2)].into_iter().collect();
        let mut used = HashMap::new();
        for k in 0..400 {
            let (cid, from, to, ruri, src) = request_fields(k);
            let input = SelectInput {
                call_id: cid.as_bytes(),
                from_uri: Uri::parse(from.as_bytes()).ok(),
                to_uri: Uri::parse(to.as_bytes()).ok(),
                ruri: Uri::parse(ruri.as_bytes()).ok(),
                source: src,
            };
            let d = sel.select(&set, &input, &down).expect("two are active");
            assert!(d.id == BackendId(1) || d.id == BackendId(3), "{alg}: {d:?}");
            *used.entry(d.id).or_insert(0) += 1;
            let all: InactiveSet = (0..4).map(BackendId).collect();
            assert!(sel.select(&set, &input, &all).is_none(), "{alg}");
            let mut out = SmallVec::new();
            sel.ranking(&set, &input, &all, &mut out);
            assert!(out.is_empty(), "{alg}");
        }
        match alg {
            // Serial: always the best remaining priority (1 has priority 1,
            // 3 has priority 1: list order decides).
            Algorithm::Priority => assert_eq!(used.len(), 1, "{alg}: {used:?}"),
            _ => assert_eq!(used.len(), 2, "{alg}: {used:?}"),
        }
        let empty = set_of(alg, vec![]);
        let input = SelectInput::new(b"x", SRC);
        assert!(sel.select(&empty, &input, &AllActive).is_none(), "{alg}");
    }
}

#[test]
fn weighted_rendezvous_shares_follow_weights() {
    let set = set_of(
        Algorithm::CallId,
        (0..4).map(|i| dest(i).with_weight(i as u32 + 1)).collect(),
    );
    let mut sel = Selector::new(0);
    let c =
        counts((0..CALLS).filter_map(|k| pick_id(&mut sel, &set, &sipp_call_id(k), &AllActive)));
    for (id, &got) in &c {
        let want = CALLS as f64 * f64::from(id + 1) / 10.0;
        let dev = (got as f64 - want).abs() / want;
        assert!(dev < 0.03, "backend {id}: {got}, want {want}");
    }
}

/// Changing one destination's weight only moves calls to or from it.
#[test]
fn raising_one_weight_moves_calls_only_onto_that_destination() {
    let before = set_of(
        Algorithm::CallId,
        (0..4).map(|i| dest(i).with_weight(2)).collect(),
    );
    let after = set_of(
        Algorithm::CallId,
        (0..4)
            .map(|i| dest(i).with_weight(if i == 2 { 4 } else { 2 }))
            .collect(),
    );
    let mut sel = Selector::new(0);
    let mut moved = 0;
    for k in 0..20_000 {
        let cid = sipp_call_id(k);
        let a = pick_id(&mut sel, &before, &cid, &AllActive);
        let b = pick_id(&mut sel, &after, &cid, &AllActive);
        if a != b {
            assert_eq!(b, Some(2), "call {k} moved {a:?} -> {b:?}");
            moved += 1;
        }
    }
    // 2 of 8 → 4 of 10: 40% - 25% = 15% of the calls move.
    let frac = moved as f64 / 20_000.0;
    assert!((0.13..0.17).contains(&frac), "{frac}");
}

// ---- moved fraction: rendezvous vs Kamailio's modulo hash -------------

/// Kamailio's `ds_get_hash()` over one string (dispatch.c): the sum of
/// `v ^ (v >> 3)` over 4-byte big-endian words, the tail as one word, then a
/// final fold. A model for comparison, not Kamailio's code.
fn kamailio_hash(s: &[u8]) -> u32 {
    let mut h: u32 = 0;
    let mut words = s.chunks_exact(4);
    for w in &mut words {
        let v = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
        h = h.wrapping_add(v ^ (v >> 3));
    }
    let v = words
        .remainder()
        .iter()
        .fold(0u32, |v, &b| (v << 8).wrapping_add(u32::from(b)));
    h = h.wrapping_add(v ^ (v >> 3));
    h = h
        .wrapping_add(h >> 11)
        .wrapping_add((h >> 13).wrapping_add(h >> 23));
    if h == 0 {
        1
    } else {
        h
    }
}

/// Kamailio's choice: `hash % n`, then the next entries in list order while
/// the chosen one is inactive (dispatch.c, `ds_select_dst_limit`).
fn kamailio_pick(h: u32, n: usize, active: impl Fn(usize) -> bool) -> Option<usize> {
    let start = h as usize % n;
    (0..n).map(|k| (start + k) % n).find(|&i| active(i))
}

struct Moved {
    fraction: f64,
    /// How many of the moved calls each destination received.
    to: HashMap<u32, usize>,
}

/// Compares two assignments of the same calls (destination ids).
fn moved(before: &[u32], after: &[u32], removed: u32) -> Moved {
    let mut to = HashMap::new();
    let mut n = 0;
    for (k, (&a, &b)) in before.iter().zip(after).enumerate() {
        if a != b {
            assert_eq!(
                a, removed,
                "call {k} moved {a} -> {b} but was not on the removed backend"
            );
            *to.entry(b).or_insert(0) += 1;
            n += 1;
        }
    }
    Moved {
        fraction: n as f64 / before.len() as f64,
        to,
    }
}

fn assert_even_spread(what: &str, n: usize, m: &Moved, removed_share: usize) {
    let lo = 0.9 / n as f64;
    let hi = 1.1 / n as f64;
    assert!(
        (lo..=hi).contains(&m.fraction),
        "{what}: moved {} not in [{lo}, {hi}]",
        m.fraction
    );
    let moved_total: usize = m.to.values().sum();
    assert_eq!(
        moved_total, removed_share,
        "{what}: only the removed backend's calls move"
    );
    assert_eq!(
        m.to.len(),
        n - 1,
        "{what}: moved calls reach every other backend"
    );
    let fair = moved_total as f64 / (n - 1) as f64;
    for (id, &got) in &m.to {
        let ratio = got as f64 / fair;
        assert!(
            (0.7..=1.3).contains(&ratio),
            "{what}: backend {id} got {got} moved calls, {ratio:.2} of its fair share"
        );
    }
}

fn moved_fraction_case(n: usize) {
    let removed = 1u32;
    let calls: Vec<String> = (0..CALLS).map(sipp_call_id).collect();
    let set = uniform(Algorithm::CallId, n);
    let without = set_of(
        Algorithm::CallId,
        (0..n).filter(|&i| i as u32 != removed).map(dest).collect(),
    );
    let down: InactiveSet = [BackendId(removed)].into_iter().collect();
    let mut sel = Selector::new(0);
    let assign =
        |sel: &mut Selector, set: &BackendSet, h: &dyn Fn(BackendId) -> bool| -> Vec<u32> {
            struct F<'f>(&'f dyn Fn(BackendId) -> bool);
            impl Health for F<'_> {
                fn is_active(&self, id: BackendId) -> bool {
                    (self.0)(id)
                }
            }
            calls
                .iter()
                .map(|c| pick_id(sel, set, c, &F(h)).expect("active backend"))
                .collect()
        };
    let base = assign(&mut sel, &set, &|_| true);
    let on_removed = base.iter().filter(|&&id| id == removed).count();

    // sipfront, destination marked inactive.
    let inactive = assign(&mut sel, &set, &|id| down.is_active(id));
    let ours_inactive = moved(&base, &inactive, removed);
    assert_even_spread(&format!("n={n} inactive"), n, &ours_inactive, on_removed);

    // sipfront, destination removed from the list.
    let removed_list = assign(&mut sel, &without, &|_| true);
    let ours_removed = moved(&base, &removed_list, removed);
    assert_even_spread(&format!("n={n} removed"), n, &ours_removed, on_removed);
    assert_eq!(inactive, removed_list, "inactive and removed route alike");

    // Kamailio model: `hash % n`, linear probing past inactive entries.
    let kh: Vec<u32> = calls.iter().map(|c| kamailio_hash(c.as_bytes())).collect();
    let k_base: Vec<u32> = kh
        .iter()
        .map(|&h| kamailio_pick(h, n, |_| true).unwrap() as u32)
        .collect();
    let k_inactive: Vec<u32> = kh
        .iter()
        .map(|&h| kamailio_pick(h, n, |i| i as u32 != removed).unwrap() as u32)
        .collect();
    let k_moved_inactive = moved(&k_base, &k_inactive, removed);
    // Removal: the list shrinks, entries after the removed one shift down.
    let remaining: Vec<u32> = (0..n as u32).filter(|&i| i != removed).collect();
    let k_removed: Vec<u32> = kh
        .iter()
        .map(|&h| remaining[kamailio_pick(h, n - 1, |_| true).unwrap()])
        .collect();
    let k_moved_removed = kh
        .iter()
        .zip(k_base.iter().zip(&k_removed))
        .filter(|(_, (a, b))| a != b)
        .count() as f64
        / CALLS as f64;
    let k_counts = counts(k_base.iter().copied());
    let k_max_share = k_moved_inactive.to.values().max().copied().unwrap_or(0) as f64
        / k_moved_inactive.to.values().sum::<usize>().max(1) as f64;
    let our_total = ours_inactive.to.values().sum::<usize>() as f64;
    let our_max_share = ours_inactive.to.values().max().copied().unwrap_or(0) as f64 / our_total;
    let our_min_share = ours_inactive.to.values().min().copied().unwrap_or(0) as f64 / our_total;

    println!(
        "n={n}: backend {removed} out of {CALLS} SIPp Call-IDs\n  \
         sipfront (rendezvous): inactive moves {:.4}, removed moves {:.4}; \
         receivers take {:.1}%..{:.1}% of the moved calls (fair {:.1}%)\n  \
         kamailio (hash % n):   inactive moves {:.4}, removed moves {:.4}; \
         biggest receiver takes {:.1}% of the moved calls; base split {:?}",
        ours_inactive.fraction,
        ours_removed.fraction,
        100.0 * our_min_share,
        100.0 * our_max_share,
        100.0 / (n - 1) as f64,
        k_moved_inactive.fraction,
        k_moved_removed,
        100.0 * k_max_share,
        {
            let mut v: Vec<_> = k_counts.into_iter().collect();
            v.sort();
            v
        },
    );

    // Kamailio sends every call of the dead entry to its list neighbour...
    assert_eq!(k_moved_inactive.to.len(), 1, "issue #2361 behaviour");
    assert!(k_moved_inactive.to.contains_key(&(removed + 1)));
    // ...and removing an entry remaps most calls.
    assert!(
        ours_removed.fraction * 2.0 < k_moved_removed,
        "ours {} vs modulo {k_moved_removed}",
        ours_removed.fraction
    );
}

#[test]
fn removing_one_of_4_backends_moves_only_its_calls_spread_over_all_others() {
    moved_fraction_case(4);
}

#[test]
fn removing_one_of_10_backends_moves_only_its_calls_spread_over_all_others() {
    moved_fraction_case(10);
}

#[test]
fn adding_a_backend_moves_only_the_calls_it_wins() {
    let four = uniform(Algorithm::CallId, 4);
    let five = uniform(Algorithm::CallId, 5);
    let mut sel = Selector::new(0);
    let mut moved = 0;
    for k in 0..CALLS / 5 {
        let cid = sipp_call_id(k);
        let a = pick_id(&mut sel, &four, &cid, &AllActive);
        let b = pick_id(&mut sel, &five, &cid, &AllActive);
        if a != b {
            assert_eq!(b, Some(4), "call {k} moved between old backends");
            moved += 1;
        }
    }
    let frac = moved as f64 / (CALLS / 5) as f64;
    assert!((0.18..0.22).contains(&frac), "{frac}");
}

#[test]
fn reordering_the_list_moves_no_call() {
    let set = uniform(Algorithm::CallId, 6);
    let reversed = set_of(Algorithm::CallId, (0..6).rev().map(dest).collect());
    let mut sel = Selector::new(0);
    for k in 0..5000 {
        let cid = sipp_call_id(k);
        assert_eq!(
            pick_id(&mut sel, &set, &cid, &AllActive),
            pick_id(&mut sel, &reversed, &cid, &AllActive)
        );
    }
}

// ---- per-worker algorithms ---------------------------------------------

#[test]
fn round_robin_cycles_through_active_destinations_kamailio_alg_4() {
    let set = uniform(Algorithm::RoundRobin, 4);
    let mut w0 = Selector::new(0);
    let seq: Vec<_> = (0..8)
        .map(|_| pick_id(&mut w0, &set, "x", &AllActive).unwrap())
        .collect();
    assert_eq!(seq, [0, 1, 2, 3, 0, 1, 2, 3]);
    // Worker 1 starts one further along.
    let mut w1 = Selector::new(1);
    let seq: Vec<_> = (0..4)
        .map(|_| pick_id(&mut w1, &set, "x", &AllActive).unwrap())
        .collect();
    assert_eq!(seq, [1, 2, 3, 0]);
    // An inactive destination is skipped without doubling its neighbour.
    let down: InactiveSet = [BackendId(2)].into_iter().collect();
    let c = counts((0..300).map(|_| pick_id(&mut w0, &set, "x", &down).unwrap()));
    assert_eq!(c.get(&2), None);
    assert_eq!((c[&0], c[&1], c[&3]), (100, 100, 100));
}

#[test]
fn round_robin_keeps_a_cursor_per_set() {
    let a = uniform(Algorithm::RoundRobin, 3);
    let b = uniform(Algorithm::RoundRobin, 3);
    let mut sel = Selector::new(0);
    assert_eq!(pick_id(&mut sel, &a, "x", &AllActive), Some(0));
    assert_eq!(pick_id(&mut sel, &a, "x", &AllActive), Some(1));
    assert_eq!(pick_id(&mut sel, &b, "x", &AllActive), Some(0));
    sel.retain_sets([&b]);
    assert_eq!(pick_id(&mut sel, &a, "x", &AllActive), Some(0));
    assert_eq!(pick_id(&mut sel, &b, "x", &AllActive), Some(1));
}

#[test]
fn random_is_uniform_over_active_destinations_kamailio_alg_6() {
    let set = uniform(Algorithm::Random, 5);
    let down: InactiveSet = [BackendId(4)].into_iter().collect();
    let mut sel = Selector::new(2);
    let c = counts((0..CALLS).map(|_| pick_id(&mut sel, &set, "x", &down).unwrap()));
    assert_eq!(c.len(), 4);
    for (id, &got) in &c {
        let dev = (got as f64 - CALLS as f64 / 4.0).abs() / (CALLS as f64 / 4.0);
        assert!(dev < 0.03, "backend {id}: {got}");
    }
}

#[test]
fn weighted_split_is_within_3_percent_of_weights_kamailio_alg_9() {
    let weights = [1u32, 2, 3, 4];
    let set = set_of(
        Algorithm::Weighted,
        (0..4).map(|i| dest(i).with_weight(weights[i])).collect(),
    );
    for worker in 0..3 {
        let mut sel = Selector::new(worker);
        let c = counts((0..CALLS).map(|_| pick_id(&mut sel, &set, "x", &AllActive).unwrap()));
        for (id, &got) in &c {
            let want = CALLS as f64 * f64::from(weights[*id as usize]) / 10.0;
            let dev = (got as f64 - want).abs() / want;
            assert!(
                dev < 0.03,
                "worker {worker} backend {id}: {got}, want {want}"
            );
        }
    }
}

/// Kamailio's alg 11 (`rweight`): 1/2/1 → 25/50/25, third down → 33/67/0.
#[test]
fn weighted_renormalises_over_active_destinations_like_kamailio_rweight() {
    let set = set_of(
        Algorithm::Weighted,
        [1, 2, 1]
            .into_iter()
            .enumerate()
            .map(|(i, w)| dest(i).with_weight(w))
            .collect(),
    );
    let down: InactiveSet = [BackendId(2)].into_iter().collect();
    let mut sel = Selector::new(0);
    let c = counts((0..CALLS).map(|_| pick_id(&mut sel, &set, "x", &down).unwrap()));
    let share0 = c[&0] as f64 / CALLS as f64;
    assert!((share0 - 1.0 / 3.0).abs() < 0.01, "{share0}");
    assert_eq!(c.get(&2), None);
}

#[test]
fn priority_serial_takes_lowest_value_first_kamailio_alg_8() {
    let set = set_of(
        Algorithm::Priority,
        vec![
            dest(0).with_priority(10),
            dest(1).with_priority(0),
            dest(2).with_priority(5),
            dest(3).with_priority(0),
        ],
    );
    let mut sel = Selector::new(5);
    assert_eq!(pick_id(&mut sel, &set, "x", &AllActive), Some(1));
    let down: InactiveSet = [BackendId(1)].into_iter().collect();
    assert_eq!(pick_id(&mut sel, &set, "x", &down), Some(3));
    let down: InactiveSet = [BackendId(1), BackendId(3)].into_iter().collect();
    assert_eq!(pick_id(&mut sel, &set, "x", &down), Some(2));
    let mut out = SmallVec::new();
    sel.ranking(&set, &SelectInput::new(b"x", SRC), &AllActive, &mut out);
    assert_eq!(out.as_slice(), [1, 3, 2, 0].map(BackendId));
}

#[test]
fn priority_weighted_uses_next_tier_only_when_whole_tier_is_inactive_kamailio_alg_15() {
    // Tier 0: ids 0 (w 3), 1 (w 1). Tier 1: ids 2, 3.
    let set = set_of(
        Algorithm::PriorityWeighted,
        vec![
            dest(0).with_weight(3),
            dest(1),
            dest(2).with_priority(1),
            dest(3).with_priority(1),
        ],
    );
    let mut sel = Selector::new(0);
    let c = counts((0..CALLS).map(|_| pick_id(&mut sel, &set, "x", &AllActive).unwrap()));
    assert_eq!((c.get(&2), c.get(&3)), (None, None), "lower tier unused");
    let share0 = c[&0] as f64 / CALLS as f64;
    assert!((share0 - 0.75).abs() < 0.0225, "{share0}");
    // One of the tier down: the other takes everything, tier 1 still idle.
    let down: InactiveSet = [BackendId(0)].into_iter().collect();
    let c = counts((0..1000).map(|_| pick_id(&mut sel, &set, "x", &down).unwrap()));
    assert_eq!(c.keys().copied().collect::<Vec<_>>(), [1]);
    // Whole tier down: tier 1 splits evenly.
    let down: InactiveSet = [BackendId(0), BackendId(1)].into_iter().collect();
    let c = counts((0..10_000).map(|_| pick_id(&mut sel, &set, "x", &down).unwrap()));
    assert_eq!(c.len(), 2);
    assert!((c[&2] as f64 / 10_000.0 - 0.5).abs() < 0.03, "{c:?}");
}

// ---- ranking ---------------------------------------------------------------

#[test]
fn ranking_starts_with_the_selected_destination_for_every_algorithm() {
    for alg in Algorithm::ALL {
        let set = set_of(
            alg,
            (0..7)
                .map(|i| {
                    dest(i)
                        .with_priority((i % 3) as i32)
                        .with_weight(1 + i as u32 % 2)
                })
                .collect(),
        );
        let down: InactiveSet = [BackendId(3)].into_iter().collect();
        // Two selectors in the same state: one selects, one ranks.
        let mut a = Selector::new(4);
        let mut b = Selector::new(4);
        let mut out = SmallVec::new();
        for k in 0..300 {
            let (cid, from, to, ruri, src) = request_fields(k);
            let input = SelectInput {
                call_id: cid.as_bytes(),
                from_uri: Uri::parse(from.as_bytes()).ok(),
                to_uri: Uri::parse(to.as_bytes()).ok(),
                ruri: Uri::parse(ruri.as_bytes()).ok(),
                source: src,
            };
            let chosen = a.select(&set, &input, &down).map(|d| d.id);
            b.ranking(&set, &input, &down, &mut out);
            assert_eq!(out.first().copied(), chosen, "{alg} call {k}");
            assert_eq!(out.len(), 6, "{alg}: every active destination, once");
            let mut sorted = out.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 6, "{alg}: distinct");
            assert!(!out.contains(&BackendId(3)), "{alg}: inactive excluded");
            assert!(!out.spilled(), "{alg}: no heap for <= 8");
        }
    }
}

#[test]
fn hash_ranking_is_deterministic_and_orders_by_descending_score() {
    let set = set_of(
        Algorithm::CallId,
        (0..10)
            .map(|i| dest(i).with_weight(1 + i as u32 % 3))
            .collect(),
    );
    let mut a = Selector::new(0);
    let mut b = Selector::new(9);
    let (mut ra, mut rb) = (SmallVec::new(), SmallVec::new());
    for k in 0..500 {
        let cid = sipp_call_id(k);
        let input = SelectInput::new(cid.as_bytes(), SRC);
        a.ranking(&set, &input, &AllActive, &mut ra);
        b.ranking(&set, &input, &AllActive, &mut rb);
        assert_eq!(ra, rb);
        assert_eq!(ra.len(), 10);
        assert!(ra.spilled(), "10 destinations do not fit inline");
        // The second entry is where the call goes when the first is down.
        let down: InactiveSet = [ra[0]].into_iter().collect();
        assert_eq!(a.select(&set, &input, &down).map(|d| d.id), Some(ra[1]));
        let key = key_hash(Algorithm::CallId, &input).unwrap();
        let scores: Vec<u64> = ra
            .iter()
            .map(|id| {
                let i = id.0 as usize;
                score(key, set.ident(i), set.destinations()[i].weight, false)
            })
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    }
}

#[test]
fn round_robin_ranking_fails_over_to_the_following_entries() {
    let set = uniform(Algorithm::RoundRobin, 4);
    let mut sel = Selector::new(2);
    let mut out = SmallVec::new();
    let input = SelectInput::new(b"x", SRC);
    sel.ranking(&set, &input, &AllActive, &mut out);
    assert_eq!(out.as_slice(), [2, 3, 0, 1].map(BackendId));
    sel.ranking(&set, &input, &AllActive, &mut out);
    assert_eq!(out.as_slice(), [3, 0, 1, 2].map(BackendId));
}

// ---- input -------------------------------------------------------------

#[test]
fn select_input_from_message_reads_what_the_algorithm_hashes() {
    let raw = b"INVITE sip:+4930123@gw.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
From: <sip:alice@atlanta.example.com>;tag=1\r\n\
To: Bob <sip:bob@biloxi.example.com:5070>\r\n\
Call-ID: 1-4242@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";
    let msg = Message::parse(raw).unwrap();
    let show = |alg| {
        let input = SelectInput::from_message(&msg, SRC, alg);
        let mut buf = [0u8; 256];
        crate::dispatch::hash::hash_key(alg, &input, &mut buf)
            .map(|k| String::from_utf8_lossy(k).into_owned())
    };
    assert_eq!(show(Algorithm::CallId).as_deref(), Some("1-4242@127.0.0.1"));
    assert_eq!(
        show(Algorithm::From).as_deref(),
        Some("alice@atlanta.example.com")
    );
    assert_eq!(
        show(Algorithm::To).as_deref(),
        Some("bob@biloxi.example.com:5070")
    );
    assert_eq!(
        show(Algorithm::Ruri).as_deref(),
        Some("+4930123@gw.example.com")
    );
    assert_eq!(show(Algorithm::RuriUser).as_deref(), Some("+4930123"));
    assert_eq!(show(Algorithm::RoundRobin), None);
    let input = SelectInput::from_message(&msg, SRC, Algorithm::CallId);
    assert!(input.from_uri.is_none() && input.to_uri.is_none() && input.ruri.is_none());
}

#[test]
fn call_id_ranking_starts_with_select_by_call_id_for_every_algorithm() {
    let down: crate::dispatch::InactiveSet = [BackendId(2)].into_iter().collect();
    for alg in [
        Algorithm::RoundRobin,
        Algorithm::Weighted,
        Algorithm::Random,
        Algorithm::CallId,
    ] {
        let set = uniform(alg, 5);
        let mut sel = Selector::new(0);
        for k in 0..50 {
            let cid = sipp_call_id(k);
            let input = SelectInput::new(cid.as_bytes(), SRC);
            let mut out = SmallVec::new();
            sel.ranking_by_call_id(&set, &input, &down, &mut out);
            let first = sel.select_by_call_id(&set, &input, &down).map(|d| d.id);
            assert_eq!(out.first().copied(), first, "{alg:?}");
            assert_eq!(out.len(), 4);
            assert!(!out.contains(&BackendId(2)));
        }
    }
}
