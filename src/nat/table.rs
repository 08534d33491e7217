//! The flow table: the NAT endpoints one worker keeps open with keepalives,
//! learned from the traffic it relays, with no location database
//! (like Kamailio's `nat_traversal` module, not nathelper's usrloc pinger):
//!
//! - a **registration** a NATed UA made through sipfront: its contacts
//!   (keyed by the AOR and the contact URI) are noted when the REGISTER is
//!   forwarded and confirmed, with their expiry, when a 2xx comes back for
//!   that flow; a REGISTER that is challenged or refused leaves nothing
//!   once its pending time runs out;
//! - a **dialog** with a NATed party (an INVITE it sent or answered), from
//!   its 2xx until a BYE, or `dialog_timeout` at the latest.
//!
//! One entry per NAT endpoint (public address, port, listen socket),
//! however many contacts and dialogs share it; it is pinged every
//! interval until nothing keeps it, and dropped when it stops answering
//! (SIP keepalives only). When a contact re-registers from another
//! endpoint (the NAT rebound its port), it moves there; the endpoint it
//! left, once empty, is remembered as moved, so a request still aimed at it
//! goes to the new one, and it is never pinged again.
//!
//! Bounded: at most `max` entries (more are refused and counted), a few
//! contacts and dialogs per entry, and as many "moved" notes as entries.

use super::flow::Flow;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;

/// Contacts and dialogs one endpoint holds at most (more are refused).
pub const MAX_CONTACTS_PER_FLOW: usize = 16;
pub const MAX_DIALOGS_PER_FLOW: usize = 64;
/// How long a forwarded REGISTER waits for its 2xx (64·T1).
pub const PENDING_MS: u64 = 32_000;

/// An entry of the table: its slot and the slot's generation, so a timer
/// for an entry that was removed and reused finds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowId {
    slot: u32,
    gen: u32,
}

impl FlowId {
    /// As 63 bits (for a keepalive's branch).
    pub fn to_u64(self) -> u64 {
        (u64::from(self.slot & 0x7fff_ffff) << 32) | u64::from(self.gen)
    }

    pub fn from_u64(v: u64) -> FlowId {
        FlowId {
            slot: ((v >> 32) as u32) & 0x7fff_ffff,
            gen: v as u32,
        }
    }
}

/// Fixed seeds: keys must hash the same on every worker.
fn hasher() -> ahash::AHasher {
    ahash::RandomState::with_seeds(0x6e61_7466, 0x6c6f_7773, 0x7369_7066, 0x726f_6e74)
        .build_hasher()
}

/// A contact's key: its AOR (the To URI of the REGISTER) and its own URI
/// as the UA wrote it (user, host, port).
pub fn contact_key(aor_user: &[u8], aor_host: &[u8], user: &[u8], host: &[u8], port: u16) -> u64 {
    let mut h = hasher();
    for part in [aor_user, aor_host, user] {
        h.write(part);
        h.write_u8(0xff);
    }
    for b in host {
        h.write_u8(b.to_ascii_lowercase());
    }
    h.write_u16(port);
    h.finish()
}

/// A dialog's key: its Call-ID.
pub fn call_key(call_id: &[u8]) -> u64 {
    let mut h = hasher();
    h.write(call_id);
    h.finish()
}

#[derive(Clone, Debug)]
struct Contact {
    key: u64,
    /// Until the 2xx confirms it: pending.
    confirmed: bool,
    until_ms: u64,
}

#[derive(Clone, Debug)]
struct Entry {
    flow: Flow,
    contacts: SmallVec<[Contact; 2]>,
    /// (Call-ID key, until).
    dialogs: SmallVec<[(u64, u64); 2]>,
    /// Keepalives sent since the last answer.
    unanswered: u8,
    sent: u64,
    answered: u64,
    learned_ms: u64,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.contacts.is_empty() && self.dialogs.is_empty()
    }

    fn prune(&mut self, now_ms: u64) {
        self.contacts.retain(|c| c.until_ms > now_ms);
        self.dialogs.retain(|d| d.1 > now_ms);
    }

    fn until_ms(&self) -> u64 {
        let c = self.contacts.iter().map(|c| c.until_ms).max().unwrap_or(0);
        let d = self.dialogs.iter().map(|d| d.1).max().unwrap_or(0);
        c.max(d)
    }
}

#[derive(Clone, Debug, Default)]
struct Slot {
    gen: u32,
    entry: Option<Entry>,
}

type Key = (SocketAddr, u8);

fn key_of(f: &Flow) -> Key {
    (f.addr, f.listen)
}

/// What noting a flow did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noted {
    /// A new entry: arm its keepalive.
    New(FlowId),
    /// An entry that exists already.
    Known,
    /// The table (or the entry's list) is full: counted, nothing kept.
    Full,
}

/// What a keepalive timer finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Send keepalive number `seq` to the flow; re-arm.
    Ping(Flow, u64),
    /// Nothing keeps the flow any more: removed.
    Expired,
    /// It did not answer `failures` keepalives in a row: removed.
    Dead,
    /// The entry is gone already (stale timer).
    Gone,
}

/// One row of `sipfront ctl nat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    pub flow: Flow,
    pub contacts: usize,
    pub dialogs: usize,
    /// Seconds until nothing keeps it.
    pub expires_in_s: u64,
    pub keepalives_sent: u64,
    pub keepalives_answered: u64,
    pub unanswered: u8,
    pub age_s: u64,
}

/// Counters the table keeps (exported with the engine's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub refused: u64,
    pub expired: u64,
    pub dead: u64,
    pub rebound: u64,
}

/// The flow table of one worker.
#[derive(Debug)]
pub struct FlowTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_flow: HashMap<Key, u32, ahash::RandomState>,
    by_contact: HashMap<u64, u32, ahash::RandomState>,
    /// A Call-ID can keep two endpoints (both parties behind NAT).
    by_call: HashMap<u64, SmallVec<[u32; 2]>, ahash::RandomState>,
    /// Endpoints a contact left for another (old → new), bounded by `max`.
    moved: HashMap<Key, Flow, ahash::RandomState>,
    max: usize,
    pub stats: TableStats,
}

impl FlowTable {
    pub fn new(max: usize) -> FlowTable {
        FlowTable {
            slots: Vec::new(),
            free: Vec::new(),
            by_flow: HashMap::default(),
            by_contact: HashMap::default(),
            by_call: HashMap::default(),
            moved: HashMap::default(),
            max,
            stats: TableStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.by_flow.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_flow.is_empty()
    }

    fn entry_mut(&mut self, slot: u32) -> Option<&mut Entry> {
        self.slots.get_mut(slot as usize)?.entry.as_mut()
    }

    /// The entry for `flow`, made when new.
    fn get_or_insert(&mut self, now_ms: u64, flow: &Flow) -> Result<(u32, bool), ()> {
        if let Some(&s) = self.by_flow.get(&key_of(flow)) {
            return Ok((s, false));
        }
        if self.by_flow.len() >= self.max {
            self.stats.refused += 1;
            return Err(());
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.gen = s.gen.wrapping_add(1);
        s.entry = Some(Entry {
            flow: *flow,
            contacts: SmallVec::new(),
            dialogs: SmallVec::new(),
            unanswered: 0,
            sent: 0,
            answered: 0,
            learned_ms: now_ms,
        });
        self.by_flow.insert(key_of(flow), slot);
        // A flow in use again is not "moved" any more.
        self.moved.remove(&key_of(flow));
        Ok((slot, true))
    }

    fn id(&self, slot: u32) -> FlowId {
        FlowId {
            slot,
            gen: self.slots[slot as usize].gen,
        }
    }

    fn noted(&self, slot: u32, new: bool) -> Noted {
        if new {
            Noted::New(self.id(slot))
        } else {
            Noted::Known
        }
    }

    fn remove(&mut self, slot: u32) {
        let Some(e) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.entry.take())
        else {
            return;
        };
        self.by_flow.remove(&key_of(&e.flow));
        for c in &e.contacts {
            if self.by_contact.get(&c.key) == Some(&slot) {
                self.by_contact.remove(&c.key);
            }
        }
        for d in &e.dialogs {
            if let Some(slots) = self.by_call.get_mut(&d.0) {
                slots.retain(|s| *s != slot);
                if slots.is_empty() {
                    self.by_call.remove(&d.0);
                }
            }
        }
        self.free.push(slot);
    }

    /// A REGISTER from `flow` was forwarded with contact `key`, asking for
    /// `expires_s` (0: removing it). Pending until its 2xx.
    pub fn register_sent(&mut self, now_ms: u64, flow: &Flow, key: u64, expires_s: u32) -> Noted {
        if expires_s == 0 {
            // A de-registration: the binding ends when it is confirmed; the
            // flow stays pinged for now.
            return Noted::Known;
        }
        let Ok((slot, new)) = self.get_or_insert(now_ms, flow) else {
            return Noted::Full;
        };
        let Some(e) = self.entry_mut(slot) else {
            return Noted::Full;
        };
        let until_ms = now_ms + PENDING_MS;
        let full = e.contacts.len() >= MAX_CONTACTS_PER_FLOW;
        match e.contacts.iter_mut().find(|c| c.key == key) {
            // A refresh: the confirmed lifetime stands until the 2xx.
            Some(c) => c.until_ms = c.until_ms.max(until_ms),
            None if !full => e.contacts.push(Contact {
                key,
                confirmed: false,
                until_ms,
            }),
            None => {
                self.stats.refused += 1;
                if new {
                    self.remove(slot);
                }
                return Noted::Full;
            }
        }
        self.noted(slot, new)
    }

    /// A 2xx to a REGISTER from `flow` came back: each pending contact of
    /// the flow is bound for `expires_s` (0 removes them all, as a
    /// `Contact: *` or expired registration does). A contact that was bound
    /// on another endpoint moves here.
    pub fn register_confirmed(&mut self, now_ms: u64, flow: &Flow, expires_s: u32) {
        let Some(&slot) = self.by_flow.get(&key_of(flow)) else {
            return;
        };
        let Some(e) = self.entry_mut(slot) else {
            return;
        };
        let until_ms = now_ms + u64::from(expires_s) * 1000;
        let mut keys: SmallVec<[u64; 4]> = SmallVec::new();
        if expires_s == 0 {
            e.contacts.clear();
        } else {
            for c in e.contacts.iter_mut() {
                if !c.confirmed || c.until_ms < until_ms {
                    c.confirmed = true;
                    c.until_ms = until_ms;
                }
                keys.push(c.key);
            }
        }
        let empty = e.is_empty();
        for k in keys {
            if let Some(old) = self.by_contact.insert(k, slot) {
                if old != slot {
                    self.move_contact(old, k, flow);
                }
            }
        }
        if empty {
            self.remove(slot);
        }
    }

    /// Contact `k` left the entry in `old` for `to`.
    fn move_contact(&mut self, old: u32, k: u64, to: &Flow) {
        let Some(e) = self.entry_mut(old) else {
            return;
        };
        e.contacts.retain(|c| c.key != k);
        let (empty, from) = (e.is_empty(), key_of(&e.flow));
        self.stats.rebound += 1;
        if empty {
            self.remove(old);
            if self.moved.len() >= self.max {
                self.moved.clear();
            }
            self.moved.insert(from, *to);
        }
    }

    /// Where a request aimed at `flow` goes: the endpoint its contact moved
    /// to when the NAT rebound, else `flow` itself.
    pub fn current(&self, flow: &Flow) -> Flow {
        self.moved.get(&key_of(flow)).copied().unwrap_or(*flow)
    }

    /// A dialog with the NATed party at `flow` was established (its
    /// INVITE's 2xx), keyed by `call`, kept until `until_ms` at most.
    pub fn dialog(&mut self, now_ms: u64, flow: &Flow, call: u64, until_ms: u64) -> Noted {
        let Ok((slot, new)) = self.get_or_insert(now_ms, flow) else {
            return Noted::Full;
        };
        let Some(e) = self.entry_mut(slot) else {
            return Noted::Full;
        };
        let full = e.dialogs.len() >= MAX_DIALOGS_PER_FLOW;
        match e.dialogs.iter_mut().find(|d| d.0 == call) {
            Some(d) => d.1 = d.1.max(until_ms),
            None if !full => e.dialogs.push((call, until_ms)),
            None => {
                self.stats.refused += 1;
                if new {
                    self.remove(slot);
                }
                return Noted::Full;
            }
        }
        let slots = self.by_call.entry(call).or_default();
        if !slots.contains(&slot) {
            slots.push(slot);
        }
        self.noted(slot, new)
    }

    /// The dialog `call` ended (a BYE); its endpoint is dropped when
    /// nothing else keeps it.
    pub fn end_dialog(&mut self, call: u64) {
        let Some(slots) = self.by_call.remove(&call) else {
            return;
        };
        for slot in slots {
            let Some(e) = self.entry_mut(slot) else {
                continue;
            };
            e.dialogs.retain(|d| d.0 != call);
            if e.is_empty() {
                self.remove(slot);
            }
        }
    }

    /// The keepalive timer of `id` fired at `now_ms`. `failures` is how
    /// many unanswered keepalives drop the flow (0: never, for keepalives
    /// that get no answer).
    pub fn due(&mut self, id: FlowId, now_ms: u64, failures: u8) -> Due {
        let Some(s) = self.slots.get_mut(id.slot as usize) else {
            return Due::Gone;
        };
        if s.gen != id.gen {
            return Due::Gone;
        }
        let Some(e) = s.entry.as_mut() else {
            return Due::Gone;
        };
        e.prune(now_ms);
        if e.is_empty() {
            self.stats.expired += 1;
            self.remove(id.slot);
            return Due::Expired;
        }
        if failures > 0 && e.unanswered >= failures {
            self.stats.dead += 1;
            self.remove(id.slot);
            return Due::Dead;
        }
        if failures > 0 {
            e.unanswered = e.unanswered.saturating_add(1);
        }
        e.sent += 1;
        Due::Ping(e.flow, e.sent)
    }

    /// An answer to a keepalive of `id` came back.
    pub fn answered(&mut self, id: FlowId) -> bool {
        match self.slots.get_mut(id.slot as usize) {
            Some(s) if s.gen == id.gen => match s.entry.as_mut() {
                Some(e) => {
                    e.unanswered = 0;
                    e.answered += 1;
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    /// The entries, for the admin API (at most `limit`).
    pub fn list(&self, now_ms: u64, limit: usize) -> Vec<FlowInfo> {
        self.slots
            .iter()
            .filter_map(|s| s.entry.as_ref())
            .take(limit)
            .map(|e| FlowInfo {
                flow: e.flow,
                contacts: e.contacts.len(),
                dialogs: e.dialogs.len(),
                expires_in_s: e.until_ms().saturating_sub(now_ms) / 1000,
                keepalives_sent: e.sent,
                keepalives_answered: e.answered,
                unanswered: e.unanswered,
                age_s: now_ms.saturating_sub(e.learned_ms) / 1000,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(port: u16) -> Flow {
        Flow::udp(SocketAddr::from(([203, 0, 113, 5], port)), 0)
    }

    fn new_id(n: Noted) -> FlowId {
        match n {
            Noted::New(id) => id,
            other => panic!("expected a new entry, got {other:?}"),
        }
    }

    #[test]
    fn a_challenged_register_leaves_nothing_once_pending_runs_out() {
        let mut t = FlowTable::new(8);
        let id = new_id(t.register_sent(0, &flow(4000), 1, 3600));
        // 401: no 2xx. The first keepalives still go out while pending.
        assert!(matches!(t.due(id, 10_000, 3), Due::Ping(..)));
        assert_eq!(t.due(id, PENDING_MS + 1, 3), Due::Expired);
        assert!(t.is_empty());
        assert_eq!(t.due(id, PENDING_MS + 2, 3), Due::Gone);
    }

    #[test]
    fn a_confirmed_registration_is_pinged_until_it_expires() {
        let mut t = FlowTable::new(8);
        let id = new_id(t.register_sent(0, &flow(4000), 1, 60));
        t.register_confirmed(100, &flow(4000), 60);
        for now in [20_000, 40_000, 59_000] {
            assert!(matches!(t.due(id, now, 3), Due::Ping(..)));
            assert!(t.answered(id));
        }
        assert_eq!(t.due(id, 60_200, 3), Due::Expired);
    }

    #[test]
    fn one_entry_per_endpoint_however_many_contacts() {
        let mut t = FlowTable::new(8);
        let id = new_id(t.register_sent(0, &flow(4000), 1, 60));
        assert_eq!(t.register_sent(0, &flow(4000), 2, 60), Noted::Known);
        t.register_confirmed(0, &flow(4000), 60);
        assert_eq!(t.len(), 1);
        assert_eq!(t.list(0, 10)[0].contacts, 2);
        assert!(matches!(t.due(id, 1000, 3), Due::Ping(..)));
    }

    #[test]
    fn unanswered_sip_keepalives_drop_the_flow() {
        let mut t = FlowTable::new(8);
        let id = new_id(t.register_sent(0, &flow(4000), 1, 3600));
        t.register_confirmed(0, &flow(4000), 3600);
        for i in 1..=3 {
            assert_eq!(t.due(id, i * 1000, 3), Due::Ping(flow(4000), i));
        }
        assert_eq!(t.due(id, 4000, 3), Due::Dead);
        assert_eq!(t.stats.dead, 1);
        // CRLF keepalives get no answer: never dead.
        let id = new_id(t.register_sent(0, &flow(4001), 1, 3600));
        t.register_confirmed(0, &flow(4001), 3600);
        for i in 1..=10 {
            assert!(matches!(t.due(id, i * 1000, 0), Due::Ping(..)));
        }
    }

    #[test]
    fn a_rebinding_nat_moves_the_contact_and_the_old_flow_is_never_used() {
        let mut t = FlowTable::new(8);
        let old = new_id(t.register_sent(0, &flow(4000), 7, 3600));
        t.register_confirmed(0, &flow(4000), 3600);
        // The NAT rebound: the refresh comes from port 4100.
        let new = new_id(t.register_sent(1000, &flow(4100), 7, 3600));
        t.register_confirmed(1000, &flow(4100), 3600);
        assert_eq!(t.stats.rebound, 1);
        assert_eq!(t.len(), 1);
        assert_eq!(t.due(old, 2000, 3), Due::Gone);
        assert!(matches!(t.due(new, 2000, 3), Due::Ping(f, _) if f == flow(4100)));
        // A request still aimed at the old endpoint goes to the new one.
        assert_eq!(t.current(&flow(4000)), flow(4100));
        assert_eq!(t.current(&flow(4200)), flow(4200));
    }

    #[test]
    fn dialogs_keep_a_flow_until_bye() {
        let mut t = FlowTable::new(8);
        let id = new_id(t.dialog(0, &flow(5000), call_key(b"c1"), 7_200_000));
        assert_eq!(
            t.dialog(0, &flow(5000), call_key(b"c2"), 7_200_000),
            Noted::Known
        );
        t.end_dialog(call_key(b"c1"));
        assert!(matches!(t.due(id, 1000, 3), Due::Ping(..)));
        t.end_dialog(call_key(b"c2"));
        assert!(t.is_empty());
        assert_eq!(t.due(id, 2000, 3), Due::Gone);
        // A dialog without BYE ends at its timeout.
        let id = new_id(t.dialog(0, &flow(5001), call_key(b"c3"), 10_000));
        assert_eq!(t.due(id, 10_001, 3), Due::Expired);
    }

    #[test]
    fn a_bye_ends_both_nated_parties_of_one_call() {
        let mut t = FlowTable::new(8);
        new_id(t.dialog(0, &flow(6000), call_key(b"c"), 7_200_000));
        new_id(t.dialog(0, &flow(6001), call_key(b"c"), 7_200_000));
        assert_eq!(t.len(), 2);
        t.end_dialog(call_key(b"c"));
        assert!(t.is_empty());
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = FlowTable::new(2);
        new_id(t.dialog(0, &flow(1), 1, 1000));
        new_id(t.dialog(0, &flow(2), 2, 1000));
        assert_eq!(t.dialog(0, &flow(3), 3, 1000), Noted::Full);
        assert_eq!(t.register_sent(0, &flow(3), 3, 60), Noted::Full);
        assert_eq!(t.stats.refused, 2);
        assert_eq!(t.len(), 2);
        // Per-entry bound.
        let mut t = FlowTable::new(2);
        for k in 0..MAX_CONTACTS_PER_FLOW as u64 {
            t.register_sent(0, &flow(9), k, 60);
        }
        assert_eq!(t.register_sent(0, &flow(9), 999, 60), Noted::Full);
    }

    #[test]
    fn flow_ids_survive_the_branch_encoding() {
        let id = FlowId {
            slot: 77,
            gen: 0xdead_beef,
        };
        assert_eq!(FlowId::from_u64(id.to_u64()), id);
        assert_eq!(id.to_u64() >> 63, 0);
    }
}
