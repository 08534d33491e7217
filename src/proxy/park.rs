//! Parked messages: a received datagram held until an event resumes it or
//! its deadline passes (the seam for work that waits on someone else: a
//! media relay's answer to an offer, a DNS answer). Bounded: a message that
//! finds the table full is not parked, and the caller answers it at once.
//!
//! Ids carry a generation, so a late resume or a stale deadline for a slot
//! that was reused finds nothing.

use super::Socket;
use crate::sip::StatusCode;
use std::net::SocketAddr;

/// Default number of messages one worker may hold.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A parked message's handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParkId {
    pub(crate) slot: u32,
    pub(crate) gen: u32,
}

/// One held message.
#[derive(Debug)]
pub(crate) struct Parked {
    pub gen: u32,
    pub data: Vec<u8>,
    pub src: SocketAddr,
    pub socket: Socket,
    /// The answer a request gets when nothing resumes it in time.
    pub on_timeout: StatusCode,
}

pub(crate) struct ParkTable {
    slots: Vec<Option<Parked>>,
    free: Vec<u32>,
    next_gen: u32,
    live: usize,
    cap: usize,
}

impl ParkTable {
    pub fn new(cap: usize) -> ParkTable {
        ParkTable {
            slots: Vec::new(),
            free: Vec::new(),
            next_gen: 0,
            live: 0,
            cap,
        }
    }

    pub fn live(&self) -> usize {
        self.live
    }

    /// Holds `data`; `None` when the table is full.
    pub fn insert(
        &mut self,
        data: Vec<u8>,
        src: SocketAddr,
        socket: Socket,
        on_timeout: StatusCode,
    ) -> Option<ParkId> {
        if self.live >= self.cap {
            return None;
        }
        self.next_gen = self.next_gen.wrapping_add(1);
        let gen = self.next_gen;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[slot as usize] = Some(Parked {
            gen,
            data,
            src,
            socket,
            on_timeout,
        });
        self.live += 1;
        Some(ParkId { slot, gen })
    }

    /// Takes the message `id` out; `None` when it was resumed or timed out
    /// already.
    pub fn take(&mut self, id: ParkId) -> Option<Parked> {
        let s = self.slots.get_mut(id.slot as usize)?;
        if s.as_ref()?.gen != id.gen {
            return None;
        }
        let p = s.take()?;
        self.free.push(id.slot);
        self.live -= 1;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_generation_checked() {
        let src: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let mut t = ParkTable::new(2);
        let sc = StatusCode::SERVER_ERROR;
        let a = t.insert(b"a".to_vec(), src, Socket::Listen(0), sc).unwrap();
        let b = t.insert(b"b".to_vec(), src, Socket::Listen(0), sc).unwrap();
        assert!(t
            .insert(b"c".to_vec(), src, Socket::Listen(0), sc)
            .is_none());
        assert_eq!(t.take(a).unwrap().data, b"a");
        assert!(t.take(a).is_none(), "taken once");
        // The slot is reused with a new generation: the old id is stale.
        let c = t.insert(b"c".to_vec(), src, Socket::Listen(0), sc).unwrap();
        assert_eq!(c.slot, a.slot);
        assert!(t.take(a).is_none());
        assert_eq!(t.take(c).unwrap().data, b"c");
        assert_eq!(t.take(b).unwrap().data, b"b");
        assert_eq!(t.live(), 0);
    }
}
