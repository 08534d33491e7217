//! The transaction table of stateful mode (RFC 3261 §17, §16.7–§16.10),
//! one per worker: no locks, bounded. Its timers live on the engine's wheel
//! ([`crate::proxy::timer`]) as typed [`TimerKind`]s.
//!
//! A proxy transaction pairs a server transaction (toward the client that
//! sent the request) with the client transactions sipfront starts toward
//! destinations, one at a time: the first, then one per failover attempt.
//! Each attempt has its own branch (`branch::format_txn`), so responses find
//! their entry by the slot written in the branch, without a map lookup;
//! requests find theirs by the server key of §17.2.3 (top Via branch with
//! the magic cookie, sent-by and method; the RFC 2543 fields otherwise).
//!
//! Buffers held per entry: the request as received (to re-forward on
//! failover and to answer it), the request as forwarded (to retransmit it
//! and to build ACK and CANCEL from it) and the last response sent upstream
//! (to answer retransmissions). They are released as soon as a state no
//! longer needs them, so an entry that only lingers to absorb
//! retransmissions after a 2xx holds no message at all.

pub mod hop;

use crate::dispatch::BackendId;
use crate::proxy::Socket;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Timer settings and limits (from `[transaction]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnConfig {
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    pub fr_ms: u64,
    pub fr_inv_ms: u64,
    pub max_transactions: usize,
    pub max_tries: u8,
    pub failover_codes: Vec<u16>,
}

impl Default for TxnConfig {
    /// The defaults of `[transaction]`, written once in `config::schema`
    /// (and docs/configuration.md); `app` maps the fields.
    fn default() -> Self {
        TxnConfig::from(&crate::config::TransactionConfig::default())
    }
}

impl TxnConfig {
    /// 64×T1: timers B, F, H, J and L.
    pub fn t1x64(&self) -> u64 {
        64 * self.t1_ms
    }
}

/// Server side (toward the client), RFC 3261 §17.2.1/§17.2.2 with RFC 6026.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Trying/Proceeding: no final response sent yet.
    Proceeding,
    /// A final response sent (INVITE: non-2xx, waiting for the ACK).
    Completed,
    /// INVITE: the ACK arrived (Timer I running).
    Confirmed,
    /// INVITE: a 2xx was sent (RFC 6026; Timer L running).
    Accepted,
}

/// Client side (toward the destination), RFC 3261 §17.1.1/§17.1.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Calling (INVITE) / Trying (non-INVITE): no response yet.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived (or the attempt was given up).
    Completed,
}

/// CANCEL of the pending branch (§9.1, §16.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelState {
    None,
    /// The client cancelled before the branch answered provisionally: the
    /// CANCEL goes out with the first provisional (§9.1).
    Pending,
    /// Sent; retransmitted until answered.
    Sent,
    /// The destination answered the CANCEL.
    Answered,
}

/// The timers of a transaction (index into `Txn::tokens`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// Timer A (INVITE) / E (non-INVITE): retransmit the request.
    Retransmit,
    /// `fr_timeout`: no response at all from this attempt.
    NoResponse,
    /// Timer C (INVITE, §16.8) / F (non-INVITE): no final response.
    NoFinal,
    /// Timer G: retransmit the final non-2xx upstream.
    RetransmitFinal,
    /// The end of the entry (timers D, H, I, J, K, L folded together).
    End,
    /// Timer E of the CANCEL sipfront sent.
    RetransmitCancel,
    /// 64×T1 after the CANCEL without a final answer: 487 upstream.
    CancelGiveUp,
}

impl TimerKind {
    pub const COUNT: usize = 7;
}

const _: () = assert!(TimerKind::CancelGiveUp as usize + 1 == TimerKind::COUNT);

/// One proxy transaction.
#[derive(Debug)]
pub struct Txn {
    /// Unique id of the entry (the first attempt's id): timers carry it.
    pub id: u32,
    /// Server key in the table's map.
    pub key: u64,
    pub invite: bool,
    pub method: crate::sip::Method,
    /// Where responses go upstream (§18.2.2) and from which socket.
    pub upstream: SocketAddr,
    pub upstream_socket: Socket,
    pub server: ServerState,
    /// The last response sent upstream (empty: none yet, or released).
    pub last: Vec<u8>,
    /// Timer G's current interval.
    pub final_interval: u64,
    /// The request as received, and where from.
    pub orig: Vec<u8>,
    pub src: SocketAddr,
    pub in_socket: Socket,
    /// The request as forwarded by the current attempt.
    pub fwd: Vec<u8>,
    pub dest: SocketAddr,
    pub dest_socket: Socket,
    pub backend: Option<BackendId>,
    /// Destinations still to try, in ranking order.
    pub candidates: SmallVec<[(SocketAddr, BackendId); 4]>,
    /// Id of the current attempt (low half of the branch's transaction id);
    /// attempts of this entry have ids `id..=attempt`.
    pub attempt: u32,
    pub client: ClientState,
    /// Timer A/E's current interval.
    pub interval: u64,
    /// When the current attempt was sent (µs), for the latency histogram.
    pub sent_us: u64,
    pub cancel: CancelState,
    pub cancel_interval: u64,
    /// Token per timer kind: a firing whose token differs is stale.
    pub tokens: [u32; TimerKind::COUNT],
}

impl Txn {
    /// Bytes this entry holds on the heap, plus itself.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Txn>()
            + self.last.capacity()
            + self.orig.capacity()
            + self.fwd.capacity()
            + if self.candidates.spilled() {
                self.candidates.capacity() * std::mem::size_of::<(SocketAddr, BackendId)>()
            } else {
                0
            }
    }

    /// Gives back the buffers no later state needs (to `recycle`).
    pub fn release(&mut self, keep_last: bool, mut recycle: impl FnMut(Vec<u8>)) {
        for b in [&mut self.orig, &mut self.fwd] {
            if b.capacity() > 0 {
                recycle(std::mem::take(b));
            }
        }
        if !keep_last && self.last.capacity() > 0 {
            recycle(std::mem::take(&mut self.last));
        }
    }
}

/// The per-worker table: a slab of entries and the server-key map.
pub struct Table {
    slots: Vec<Option<Box<Txn>>>,
    free: Vec<u32>,
    map: HashMap<u64, u32, ahash::RandomState>,
    /// Keys of entries, keyed hashing with per-process random seeds so the
    /// map cannot be flooded with chosen collisions.
    pub hasher: ahash::RandomState,
    live: usize,
    max: usize,
}

impl Table {
    pub fn new(max: usize) -> Table {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            map: HashMap::with_hasher(ahash::RandomState::new()),
            hasher: ahash::RandomState::new(),
            live: 0,
            max,
        }
    }

    pub fn live(&self) -> usize {
        self.live
    }

    pub fn is_full(&self) -> bool {
        self.live >= self.max
    }

    /// The slot of the entry with server key `key`.
    pub fn find(&self, key: u64) -> Option<u32> {
        self.map.get(&key).copied()
    }

    /// Stores `t` and maps its key; `None` when full.
    pub fn insert(&mut self, t: Txn) -> Option<u32> {
        if self.is_full() {
            return None;
        }
        let key = t.key;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[slot as usize] = Some(Box::new(t));
        self.map.insert(key, slot);
        self.live += 1;
        Some(slot)
    }

    /// Takes the entry out to work on it; put it back with [`Table::put`]
    /// or drop it with [`Table::remove_taken`].
    pub fn take(&mut self, slot: u32) -> Option<Box<Txn>> {
        self.slots.get_mut(slot as usize)?.take()
    }

    pub fn put(&mut self, slot: u32, t: Box<Txn>) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = Some(t);
        }
    }

    /// Forgets an entry that was taken out: its key and its slot.
    pub fn remove_taken(&mut self, slot: u32, t: &Txn) {
        if self.map.get(&t.key) == Some(&slot) {
            self.map.remove(&t.key);
        }
        self.free.push(slot);
        self.live -= 1;
    }

    /// Every live entry with its slot.
    pub fn slots(&self) -> impl Iterator<Item = (u32, &Txn)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((i as u32, t.as_deref()?)))
    }

    pub fn get(&self, slot: u32) -> Option<&Txn> {
        self.slots.get(slot as usize)?.as_deref()
    }

    /// Total bytes held by live entries (for the memory figure).
    pub fn bytes(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .map(|t| t.bytes())
            .sum::<usize>()
            + self.slots.capacity() * std::mem::size_of::<Option<Box<Txn>>>()
            + self.map.capacity() * (std::mem::size_of::<(u64, u32)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(key: u64) -> Txn {
        let a: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        Txn {
            id: 1,
            key,
            invite: true,
            method: crate::sip::Method::Invite,
            upstream: a,
            upstream_socket: Socket::Listen(0),
            server: ServerState::Proceeding,
            last: Vec::new(),
            final_interval: 500,
            orig: vec![0; 100],
            src: a,
            in_socket: Socket::Listen(0),
            fwd: vec![0; 100],
            dest: a,
            dest_socket: Socket::Egress,
            backend: None,
            candidates: SmallVec::new(),
            attempt: 1,
            client: ClientState::Calling,
            interval: 500,
            sent_us: 0,
            cancel: CancelState::None,
            cancel_interval: 500,
            tokens: [0; TimerKind::COUNT],
        }
    }

    #[test]
    fn table_is_bounded_and_reuses_slots() {
        let mut t = Table::new(2);
        let a = t.insert(txn(10)).unwrap();
        let b = t.insert(txn(20)).unwrap();
        assert!(t.is_full());
        assert!(t.insert(txn(30)).is_none());
        assert_eq!(t.find(20), Some(b));
        let e = t.take(a).unwrap();
        t.remove_taken(a, &e);
        assert_eq!(t.find(10), None);
        assert_eq!(t.live(), 1);
        assert_eq!(t.insert(txn(30)), Some(a));
        assert!(t.get(a).is_some());
    }

    #[test]
    fn release_keeps_only_what_later_states_need() {
        let mut e = txn(1);
        e.last = vec![1; 50];
        let mut pool = Vec::new();
        let before = e.bytes();
        e.release(true, |b| pool.push(b));
        assert_eq!(pool.len(), 2);
        assert!(e.bytes() < before);
        assert_eq!(e.last.len(), 50);
        e.release(false, |b| pool.push(b));
        assert_eq!(e.bytes(), std::mem::size_of::<Txn>());
    }
}
