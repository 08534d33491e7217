//! The engine's timer wheel, one per worker and in both proxy modes: the
//! RFC 3261 §17 timers A–K, Timer C of §16.8 and Timer L of RFC 6026 of the
//! transaction layer, the deadlines of parked messages, and the health
//! watch of pending branches all live here, as typed [`super::Timer`]s.
//!
//! A hashed wheel: time is cut into ticks of [`TICK_MS`]; a timer lands in
//! the slot of its deadline tick modulo [`SLOTS`] and carries its absolute
//! tick, so a timer further out than one revolution waits in its slot until
//! its round comes. Arming is O(1) and allocation-free once slots have grown;
//! cancelling is lazy: the owner keeps a token per timer kind and ignores a
//! firing whose token is stale. Time is a `u64` of milliseconds from an
//! origin chosen by the caller, so tests drive it without a clock.
//!
//! The wheel knows its earliest deadline exactly (not just "some timer
//! waits"), so an idle worker sleeps until then instead of waking every
//! tick.

/// Resolution of the wheel.
pub const TICK_MS: u64 = 5;
/// Slots per revolution (SLOTS × TICK_MS = 5.12 s).
pub const SLOTS: usize = 1024;

#[derive(Clone, Copy, Debug)]
struct Entry<T> {
    tick: u64,
    timer: T,
}

/// A hashed timer wheel of `T`s (what a timer is for is opaque to it).
pub struct Wheel<T> {
    slots: Vec<Vec<Entry<T>>>,
    /// Every tick before this one has been processed.
    cursor: u64,
    len: usize,
    /// The earliest tick of any waiting entry (`u64::MAX`: none).
    earliest: u64,
}

impl<T: Copy> Default for Wheel<T> {
    fn default() -> Self {
        Wheel::new(0)
    }
}

impl<T: Copy> Wheel<T> {
    /// A wheel whose clock starts at `now_ms`.
    pub fn new(now_ms: u64) -> Wheel<T> {
        Wheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            cursor: now_ms / TICK_MS,
            len: 0,
            earliest: u64::MAX,
        }
    }

    /// Timers armed and not yet fired (stale ones included).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Arms `timer` to fire at `at_ms` (rounded up to the next tick; a
    /// deadline in the past fires at the next `expire`).
    pub fn arm(&mut self, at_ms: u64, timer: T) {
        let tick = at_ms.div_ceil(TICK_MS).max(self.cursor);
        self.slots[(tick % SLOTS as u64) as usize].push(Entry { tick, timer });
        self.len += 1;
        self.earliest = self.earliest.min(tick);
    }

    /// When the caller should call [`Wheel::expire`] next: the earliest
    /// deadline of any waiting timer (stale ones included), else `None`.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        (self.len > 0).then_some(self.earliest.saturating_mul(TICK_MS))
    }

    /// Finds the earliest waiting tick again after entries left: the first
    /// slot from the cursor holding an entry of this revolution, else the
    /// smallest tick of the later revolutions.
    fn recompute_earliest(&mut self) {
        self.earliest = u64::MAX;
        if self.len == 0 {
            return;
        }
        let horizon = self.cursor + SLOTS as u64;
        for t in self.cursor..horizon {
            let slot = &self.slots[(t % SLOTS as u64) as usize];
            if slot.iter().any(|e| e.tick == t) {
                self.earliest = t;
                return;
            }
        }
        self.earliest = self
            .slots
            .iter()
            .flatten()
            .map(|e| e.tick)
            .min()
            .unwrap_or(u64::MAX);
    }

    /// Moves the clock to `now_ms`, pushing every timer due by then into
    /// `fired` (in deadline order within a slot pass).
    pub fn expire(&mut self, now_ms: u64, fired: &mut Vec<T>) {
        let now_tick = now_ms / TICK_MS;
        if self.len == 0 || now_tick < self.earliest {
            self.cursor = self.cursor.max((now_tick + 1).min(self.earliest));
            return;
        }
        // After a long idle gap, one pass over every slot is enough.
        // No entry lies before `earliest`.
        let mut t = self.cursor.max(self.earliest);
        let end = now_tick.min(t + SLOTS as u64 - 1);
        while t <= end {
            let slot = &mut self.slots[(t % SLOTS as u64) as usize];
            if !slot.is_empty() {
                let before = slot.len();
                slot.retain(|e| {
                    if e.tick <= now_tick {
                        fired.push(e.timer);
                        false
                    } else {
                        true
                    }
                });
                self.len -= before - slot.len();
            }
            t += 1;
        }
        self.cursor = self.cursor.max(now_tick + 1);
        self.recompute_earliest();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(slot: u32) -> u32 {
        slot
    }

    #[test]
    fn fires_at_the_deadline_tick_not_before() {
        let mut w = Wheel::new(1000);
        w.arm(1500, t(1));
        w.arm(1003, t(2));
        // The exact earliest deadline, not the next tick.
        assert_eq!(w.next_deadline_ms(), Some(1005));
        let mut f = Vec::new();
        w.expire(1002, &mut f);
        assert!(f.is_empty());
        w.expire(1005, &mut f);
        assert_eq!(f, [t(2)]);
        assert_eq!(w.next_deadline_ms(), Some(1500));
        f.clear();
        w.expire(1499, &mut f);
        assert!(f.is_empty());
        w.expire(1500, &mut f);
        assert_eq!(f, [t(1)]);
        assert!(w.is_empty());
        assert_eq!(w.next_deadline_ms(), None);
    }

    #[test]
    fn timers_beyond_one_revolution_wait_for_their_round() {
        // Timer H is 64×T1 = 32 s: six revolutions of the wheel.
        let mut w = Wheel::new(0);
        w.arm(32_000, t(7));
        let mut f = Vec::new();
        for now in (0..32_000).step_by(5) {
            w.expire(now, &mut f);
            assert!(f.is_empty(), "fired early at {now}");
        }
        w.expire(32_000, &mut f);
        assert_eq!(f, [t(7)]);
    }

    #[test]
    fn a_long_idle_gap_fires_everything_due_once() {
        let mut w = Wheel::new(0);
        for i in 0..100u32 {
            w.arm(u64::from(i) * 97, t(i));
        }
        w.arm(3_600_000, t(999));
        let mut f = Vec::new();
        w.expire(1_000_000, &mut f);
        assert_eq!(f.len(), 100);
        assert_eq!(w.len(), 1);
        // Found again beyond the current revolution.
        assert_eq!(w.next_deadline_ms(), Some(3_600_000));
        f.clear();
        w.expire(3_600_000, &mut f);
        assert_eq!(f, [t(999)]);
    }

    #[test]
    fn past_deadlines_fire_on_the_next_expire() {
        let mut w = Wheel::new(10_000);
        w.arm(5, t(3));
        assert_eq!(w.next_deadline_ms(), Some(10_000));
        let mut f = Vec::new();
        w.expire(10_000, &mut f);
        assert_eq!(f, [t(3)]);
    }
}
