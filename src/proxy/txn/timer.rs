//! The per-worker timer wheel of the transaction layer (RFC 3261 §17 timers
//! A–K, Timer C of §16.8, Timer L of RFC 6026).
//!
//! A hashed wheel: time is cut into ticks of [`TICK_MS`]; a timer lands in
//! the slot of its deadline tick modulo [`SLOTS`] and carries its absolute
//! tick, so a timer further out than one revolution waits in its slot until
//! its round comes. Arming is O(1) and allocation-free once slots have grown;
//! cancelling is lazy: the owner keeps a token per timer kind and ignores a
//! firing whose token is stale. Time is a `u64` of milliseconds from an
//! origin chosen by the caller, so tests drive it without a clock.

/// Resolution of the wheel.
pub const TICK_MS: u64 = 5;
/// Slots per revolution (SLOTS × TICK_MS = 5.12 s).
pub const SLOTS: usize = 1024;

/// A timer that fired or waits: what it is for (opaque to the wheel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    /// Transaction slot.
    pub slot: u32,
    /// Generation of the slot when armed.
    pub gen: u32,
    /// Which timer of the transaction.
    pub kind: u8,
    /// The owner's token for that kind when armed.
    pub token: u32,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    tick: u64,
    timer: Timer,
}

pub struct Wheel {
    slots: Vec<Vec<Entry>>,
    /// Every tick before this one has been processed.
    cursor: u64,
    len: usize,
}

impl Default for Wheel {
    fn default() -> Self {
        Wheel::new(0)
    }
}

impl Wheel {
    /// A wheel whose clock starts at `now_ms`.
    pub fn new(now_ms: u64) -> Wheel {
        Wheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            cursor: now_ms / TICK_MS,
            len: 0,
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
    pub fn arm(&mut self, at_ms: u64, timer: Timer) {
        let tick = at_ms.div_ceil(TICK_MS).max(self.cursor);
        self.slots[(tick % SLOTS as u64) as usize].push(Entry { tick, timer });
        self.len += 1;
    }

    /// When the caller should call [`Wheel::expire`] next: the end of the
    /// current tick while any timer waits, else `None`.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        (self.len > 0).then_some(self.cursor * TICK_MS)
    }

    /// Moves the clock to `now_ms`, pushing every timer due by then into
    /// `fired` (in deadline order within a slot pass).
    pub fn expire(&mut self, now_ms: u64, fired: &mut Vec<Timer>) {
        let now_tick = now_ms / TICK_MS;
        if self.len == 0 {
            self.cursor = self.cursor.max(now_tick + 1);
            return;
        }
        // After a long idle gap, one pass over every slot is enough.
        let end = now_tick.min(self.cursor + SLOTS as u64 - 1);
        let mut t = self.cursor;
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(slot: u32) -> Timer {
        Timer {
            slot,
            gen: 0,
            kind: 0,
            token: 0,
        }
    }

    #[test]
    fn fires_at_the_deadline_tick_not_before() {
        let mut w = Wheel::new(1000);
        w.arm(1500, t(1));
        w.arm(1003, t(2));
        let mut f = Vec::new();
        w.expire(1002, &mut f);
        assert!(f.is_empty());
        w.expire(1005, &mut f);
        assert_eq!(f, [t(2)]);
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
