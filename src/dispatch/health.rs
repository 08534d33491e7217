//! Which destinations may be selected. Selection only asks
//! [`Health::is_active`]; who decides (OPTIONS probing, failure counting,
//! the admin API) lives elsewhere and writes a [`HealthTable`].
//!
//! The default state is active, as in Kamailio's dispatcher: an id nobody
//! has marked is selectable.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::set::BackendId;

/// What the stateful proxy saw a destination do on live traffic: the
/// passive health signals (failover reasons, RFC 3261 §21.5.4 Retry-After).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passive {
    /// No response within the failure timer.
    Timeout,
    /// A final response whose code is a failover code.
    Failed(u16),
    /// 503 with Retry-After: keep it out of selection this long.
    RetryAfter(Duration),
    /// Any response: the destination is alive.
    Answered,
}

/// Answers "may this destination be selected now?", and takes the passive
/// signals that may change the answer.
pub trait Health {
    fn is_active(&self, id: BackendId) -> bool;
    /// A passive signal from live traffic; ignored unless the
    /// implementation tracks them.
    #[inline]
    fn report(&self, _id: BackendId, _signal: Passive) {}
    /// A number that changes whenever a destination goes down (probes or
    /// passive failures find it dead), so the stateful core can look for
    /// pending transactions toward it; constant unless tracked.
    #[inline]
    fn generation(&self) -> u64 {
        0
    }
    /// Whether `id` is down: dead to probes or live traffic. An admin's
    /// disable or drain takes a destination out of selection without
    /// making it down, so what is in flight toward it goes on.
    #[inline]
    fn is_down(&self, id: BackendId) -> bool {
        !self.is_active(id)
    }
}

impl<T: Health + ?Sized> Health for &T {
    #[inline]
    fn is_active(&self, id: BackendId) -> bool {
        (**self).is_active(id)
    }
    #[inline]
    /// Ids are stable across reloads for a destination still listed (same
    /// set and URI), so a transaction started before a reload reports into
    /// the right slot. An id of a destination that was removed may later be
    /// handed to a new one (only when the fresh ids run out); a late report
    /// then adds one failure to the newcomer, which the down threshold
    /// absorbs. Out-of-range ids are ignored.
    fn report(&self, id: BackendId, signal: Passive) {
        (**self).report(id, signal)
    }
    #[inline]
    fn generation(&self) -> u64 {
        (**self).generation()
    }
    #[inline]
    fn is_down(&self, id: BackendId) -> bool {
        (**self).is_down(id)
    }
}

impl<T: Health + ?Sized> Health for Arc<T> {
    #[inline]
    fn is_active(&self, id: BackendId) -> bool {
        (**self).is_active(id)
    }
    #[inline]
    fn report(&self, id: BackendId, signal: Passive) {
        (**self).report(id, signal)
    }
    #[inline]
    fn generation(&self) -> u64 {
        (**self).generation()
    }
    #[inline]
    fn is_down(&self, id: BackendId) -> bool {
        (**self).is_down(id)
    }
}

/// Every destination is active.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllActive;

impl Health for AllActive {
    #[inline]
    fn is_active(&self, _: BackendId) -> bool {
        true
    }
}

#[inline]
fn word_bit(id: BackendId) -> (usize, u64) {
    ((id.0 / 64) as usize, 1u64 << (id.0 % 64))
}

/// A plain bitset of inactive ids, for tests and single-threaded callers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InactiveSet {
    bits: Vec<u64>,
}

impl InactiveSet {
    pub fn new() -> InactiveSet {
        InactiveSet::default()
    }

    pub fn mark_inactive(&mut self, id: BackendId) {
        let (w, b) = word_bit(id);
        if self.bits.len() <= w {
            self.bits.resize(w + 1, 0);
        }
        if let Some(word) = self.bits.get_mut(w) {
            *word |= b;
        }
    }

    pub fn mark_active(&mut self, id: BackendId) {
        let (w, b) = word_bit(id);
        if let Some(word) = self.bits.get_mut(w) {
            *word &= !b;
        }
    }

    /// Number of inactive ids.
    pub fn count(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }
}

impl FromIterator<BackendId> for InactiveSet {
    fn from_iter<I: IntoIterator<Item = BackendId>>(iter: I) -> InactiveSet {
        let mut s = InactiveSet::new();
        for id in iter {
            s.mark_inactive(id);
        }
        s
    }
}

impl Health for InactiveSet {
    #[inline]
    fn is_active(&self, id: BackendId) -> bool {
        let (w, b) = word_bit(id);
        self.bits.get(w).is_none_or(|word| word & b == 0)
    }
}

/// The shared, lock-free health state: one bit per [`BackendId`] (set =
/// inactive), sized when the config is loaded and shared by every worker
/// (e.g. in an `Arc`).
///
/// Readers do one `Relaxed` load per destination examined; nothing else is
/// published through these bits, so no stronger ordering is needed, and a
/// worker that sees a change one message late is harmless. Writers (probing,
/// admin) are rare and use atomic `fetch_or`/`fetch_and`, so concurrent
/// writers of neighbouring ids never lose each other's updates.
///
/// Besides the bit, each id has a "suspended until" deadline (a 503 with
/// Retry-After keeps a destination out for that long, then it is selectable
/// again by itself) and a count of consecutive passive failures, which the
/// health logic reads.
#[derive(Debug)]
pub struct HealthTable {
    bits: Box<[AtomicU64]>,
    capacity: u32,
    /// Milliseconds since `epoch` (plus one) until which an id is out; 0 = not.
    suspended: Box<[AtomicU64]>,
    /// Consecutive passive failures (timeouts, failover codes) per id.
    failures: Box<[AtomicU32]>,
    epoch: Instant,
    /// One bit per id, set = down (dead to probes or live traffic), apart
    /// from the selection bit an admin's disable or drain also clears.
    down: Box<[AtomicU64]>,
    /// Bumped each time a destination goes down.
    downs: AtomicU64,
}

impl Default for HealthTable {
    fn default() -> Self {
        HealthTable::new(0)
    }
}

impl HealthTable {
    /// A table for ids `0..capacity`, all active.
    pub fn new(capacity: u32) -> HealthTable {
        let words = capacity.div_ceil(64) as usize;
        HealthTable {
            bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            capacity,
            suspended: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            failures: (0..capacity).map(|_| AtomicU32::new(0)).collect(),
            epoch: Instant::now(),
            down: (0..words).map(|_| AtomicU64::new(0)).collect(),
            downs: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Keeps `id` out of selection for `d` (RFC 3261 §21.5.4 Retry-After).
    pub fn suspend(&self, id: BackendId, d: Duration) {
        if let Some(s) = self.suspended.get(id.0 as usize) {
            s.store(self.now_ms() + d.as_millis() as u64, Ordering::Relaxed);
        }
    }

    /// Consecutive passive failures of `id` since it last answered.
    pub fn failures(&self, id: BackendId) -> u32 {
        self.failures
            .get(id.0 as usize)
            .map_or(0, |f| f.load(Ordering::Relaxed))
    }

    /// Ids `0..capacity()` are tracked; others always read as active.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Sets the state of `id`. Returns the previous state (`true` = was
    /// active), so callers can count transitions, or `None` when `id` is out
    /// of range (nothing changes).
    pub fn set_active(&self, id: BackendId, active: bool) -> Option<bool> {
        if id.0 >= self.capacity {
            return None;
        }
        let (w, b) = word_bit(id);
        let word = self.bits.get(w)?;
        let prev = if active {
            word.fetch_and(!b, Ordering::Relaxed)
        } else {
            word.fetch_or(b, Ordering::Relaxed)
        };
        Some(prev & b == 0)
    }

    /// Marks `id` down (dead to probes or live traffic) or up again. Going
    /// down moves [`Health::generation`], so workers give up the branches
    /// still waiting on it.
    pub fn set_down(&self, id: BackendId, down: bool) {
        let (w, b) = word_bit(id);
        let Some(word) = self.down.get(w).filter(|_| id.0 < self.capacity) else {
            return;
        };
        let prev = if down {
            word.fetch_or(b, Ordering::Relaxed)
        } else {
            word.fetch_and(!b, Ordering::Relaxed)
        };
        if down && prev & b == 0 {
            self.downs.fetch_add(1, Ordering::Release);
        }
    }

    /// Forgets the passive failures of `id` (it was brought back).
    pub fn clear_failures(&self, id: BackendId) {
        if let Some(f) = self.failures.get(id.0 as usize) {
            f.store(0, Ordering::Relaxed);
        }
    }

    /// Returns `id` to the default state: active, not suspended, no
    /// failures (an id handed to a new destination on reload).
    pub fn reset(&self, id: BackendId) {
        self.set_active(id, true);
        self.clear_failures(id);
        if let Some(s) = self.suspended.get(id.0 as usize) {
            s.store(0, Ordering::Relaxed);
        }
    }

    /// Whether a Retry-After suspension of `id` is running.
    pub fn is_suspended(&self, id: BackendId) -> bool {
        self.suspended.get(id.0 as usize).is_some_and(|s| {
            let until = s.load(Ordering::Relaxed);
            until != 0 && self.now_ms() < until
        })
    }

    /// The ids currently inactive, ascending.
    pub fn inactive(&self) -> impl Iterator<Item = BackendId> + '_ {
        (0..self.capacity)
            .map(BackendId)
            .filter(move |&id| !self.is_active(id))
    }
}

impl Health for HealthTable {
    #[inline]
    fn generation(&self) -> u64 {
        self.downs.load(Ordering::Acquire)
    }

    #[inline]
    fn is_down(&self, id: BackendId) -> bool {
        let (w, b) = word_bit(id);
        self.down
            .get(w)
            .is_some_and(|word| word.load(Ordering::Relaxed) & b != 0)
    }

    #[inline]
    fn is_active(&self, id: BackendId) -> bool {
        let (w, b) = word_bit(id);
        let up = self
            .bits
            .get(w)
            .is_none_or(|word| word.load(Ordering::Relaxed) & b == 0);
        // The clock is read only for a suspended id.
        up && self.suspended.get(id.0 as usize).is_none_or(|s| {
            let until = s.load(Ordering::Relaxed);
            until == 0 || self.now_ms() >= until
        })
    }

    fn report(&self, id: BackendId, signal: Passive) {
        let Some(f) = self.failures.get(id.0 as usize) else {
            return;
        };
        match signal {
            Passive::Timeout | Passive::Failed(_) => {
                f.fetch_add(1, Ordering::Relaxed);
            }
            Passive::RetryAfter(d) => {
                f.fetch_add(1, Ordering::Relaxed);
                self.suspend(id, d);
            }
            Passive::Answered => {
                if f.load(Ordering::Relaxed) != 0 {
                    f.store(0, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An admin's disable or drain takes a destination out of selection
    /// without making it down: only going down moves the generation that
    /// makes workers give up what is in flight toward it.
    #[test]
    fn down_is_apart_from_unselectable() {
        let t = HealthTable::new(70);
        let id = BackendId(65);
        t.set_active(id, false);
        assert!(!t.is_active(id) && !t.is_down(id));
        assert_eq!(t.generation(), 0);
        t.set_down(id, true);
        assert!(t.is_down(id));
        assert_eq!(t.generation(), 1);
        t.set_down(id, true);
        assert_eq!(t.generation(), 1, "counted once");
        t.set_down(id, false);
        assert!(!t.is_down(id));
        t.set_down(BackendId(70), true);
        assert_eq!(t.generation(), 1, "out of range ignored");
    }

    #[test]
    fn unmarked_ids_are_active_like_kamailio_default_state() {
        assert!(AllActive.is_active(BackendId(7)));
        assert!(InactiveSet::new().is_active(BackendId(1000)));
        assert!(HealthTable::new(10).is_active(BackendId(3)));
        assert!(HealthTable::new(10).is_active(BackendId(10_000)));
    }

    #[test]
    fn inactive_set_marks_and_clears_across_words() {
        let mut s: InactiveSet = [BackendId(1), BackendId(64), BackendId(130)]
            .into_iter()
            .collect();
        assert_eq!(s.count(), 3);
        assert!(!s.is_active(BackendId(64)));
        assert!(s.is_active(BackendId(65)));
        s.mark_active(BackendId(64));
        s.mark_active(BackendId(5000));
        assert!(s.is_active(BackendId(64)));
        assert_eq!(s.count(), 2);
    }

    #[test]
    fn health_table_reports_transitions_and_ignores_out_of_range() {
        let t = HealthTable::new(70);
        assert_eq!(t.set_active(BackendId(69), false), Some(true));
        assert_eq!(t.set_active(BackendId(69), false), Some(false));
        assert!(!t.is_active(BackendId(69)));
        assert!(t.is_active(BackendId(5)));
        assert_eq!(t.inactive().collect::<Vec<_>>(), [BackendId(69)]);
        assert_eq!(t.set_active(BackendId(69), true), Some(false));
        assert!(t.is_active(BackendId(69)));
        assert_eq!(t.set_active(BackendId(70), false), None);
        assert!(t.is_active(BackendId(70)));
        let shared = Arc::new(t);
        assert!(Health::is_active(&shared, BackendId(1)));
    }

    /// RFC 3261 §21.5.4: a 503 with Retry-After keeps the destination out
    /// for that long, and it comes back by itself.
    #[test]
    fn retry_after_suspends_then_expires() {
        let t = HealthTable::new(4);
        t.report(BackendId(2), Passive::RetryAfter(Duration::from_millis(30)));
        assert!(!t.is_active(BackendId(2)));
        assert!(t.is_active(BackendId(1)));
        assert_eq!(t.failures(BackendId(2)), 1);
        std::thread::sleep(Duration::from_millis(40));
        assert!(t.is_active(BackendId(2)));
        t.report(BackendId(2), Passive::Timeout);
        assert_eq!(t.failures(BackendId(2)), 2);
        t.report(BackendId(2), Passive::Answered);
        assert_eq!(t.failures(BackendId(2)), 0);
        // Out of range: ignored.
        t.report(BackendId(99), Passive::Timeout);
    }

    #[test]
    fn reset_clears_every_kind_of_state() {
        let t = HealthTable::new(4);
        t.set_active(BackendId(1), false);
        t.report(BackendId(1), Passive::RetryAfter(Duration::from_secs(60)));
        assert!(t.is_suspended(BackendId(1)));
        t.reset(BackendId(1));
        assert!(t.is_active(BackendId(1)));
        assert!(!t.is_suspended(BackendId(1)));
        assert_eq!(t.failures(BackendId(1)), 0);
        t.report(BackendId(2), Passive::Timeout);
        t.clear_failures(BackendId(2));
        assert_eq!(t.failures(BackendId(2)), 0);
        t.reset(BackendId(400));
    }

    #[test]
    fn health_table_is_shared_between_threads() {
        let t = Arc::new(HealthTable::new(128));
        let writers: Vec<_> = (0..4u32)
            .map(|k| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    for id in (k..128).step_by(4) {
                        t.set_active(BackendId(id), false);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(t.inactive().count(), 128);
    }
}
