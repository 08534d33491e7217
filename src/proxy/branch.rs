//! Via branches sipfront writes (RFC 3261 §8.1.1.7, §16.6 step 8, §16.11).
//!
//! A stateless proxy derives its branch from the request so that a
//! retransmission, the CANCEL of an INVITE and the ACK of a non-2xx final
//! response all get the branch the INVITE got. The inputs are those of
//! §16.6 step 8 minus the To tag (the ACK of a non-2xx carries the tag the
//! response added; §17.1.1.3 keeps its branch equal to the INVITE's): From
//! tag, Call-ID, Request-URI as received, CSeq number, the received top Via,
//! Proxy-Require and Proxy-Authorization. The branch also names the worker
//! that sent it and the listen socket the request came in on, so a reply can
//! be handed to that worker and sent back out of that socket.
//!
//! Format: `z9hG4bK` `sf` WW L HHHHHHHHHHHHHHHH — worker (2 hex digits),
//! listen index (1 hex digit: the index in its low 3 bits, and
//! [`NAT_FLAG`] when the request came from a UA behind NAT, so that its
//! responses, even in stateless mode, know it), 64-bit hash (16 hex
//! digits).
//!
//! Then 8 hex digits of MAC: SipHash-1-3, keyed by a secret of the
//! process ([`Key`], random at start), over everything else the branch
//! says. A response whose branch names sipfront but does not verify was
//! not caused by sipfront (a forged datagram aimed at the egress port to
//! make sipfront reflect it): it is dropped and counted. sipfront's own
//! To-tags are made the same way, so an ACK for one of its own replies is
//! recognised.
//!
//! Stateful mode appends `.` and 16 hex digits naming the client
//! transaction (its slot and attempt), so each attempt of a failover is its
//! own transaction (§17.1.3) while loop detection still reads the hash; the
//! MAC covers the transaction too.

use crate::sip::{HeaderName, Message};
use std::hash::{BuildHasher, Hasher};

/// Prefix of every branch sipfront writes: the magic cookie and `sf`.
pub const PREFIX: &[u8] = b"z9hG4bKsf";
/// Length of a sipfront branch.
pub const LEN: usize = PREFIX.len() + 2 + 1 + 16 + 8;
/// Set in the listen digit when the request's sender is behind NAT.
pub const NAT_FLAG: u8 = 0x8;
/// Listen sockets a branch can name (the digit's other bits).
pub const MAX_LISTENS: usize = 8;
/// Length of a stateful sipfront branch (with the transaction suffix).
pub const LEN_TXN: usize = LEN + 1 + 16;

/// The secret that keys the branch MAC, shared by the workers of one
/// process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    k0: u64,
    k1: u64,
}

impl Default for Key {
    /// A random key: a process that forgets to choose one is still safe.
    fn default() -> Key {
        Key::random()
    }
}

impl Key {
    /// A fresh random key (from the OS, through std's hasher seeding).
    pub fn random() -> Key {
        let r = || {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        };
        Key { k0: r(), k1: r() }
    }

    /// A given key (tests, and a key kept across restarts).
    pub const fn new(k0: u64, k1: u64) -> Key {
        Key { k0, k1 }
    }

    /// The MAC of what a branch says.
    fn mac(&self, worker: u8, digit: u8, hash: u64, txn: Option<u64>) -> u32 {
        let mut h = siphasher::sip::SipHasher13::new_with_keys(self.k0, self.k1);
        h.write_u8(worker);
        h.write_u8(digit);
        h.write_u64(hash);
        h.write_u8(u8::from(txn.is_some()));
        h.write_u64(txn.unwrap_or(0));
        let v = h.finish();
        (v ^ (v >> 32)) as u32
    }
}

/// Fixed seeds: every worker, and a restarted process, computes the same
/// branch for the same request.
fn hasher() -> ahash::AHasher {
    ahash::RandomState::with_seeds(
        0x5ec7_7a1e_0b1a_57ed,
        0x1f0a_d3c4_9b2e_8d61,
        0x7c15_2f9e_a3b4_c5d6,
        0x0123_4567_89ab_cdef,
    )
    .build_hasher()
}

/// The stateless branch hash of a request, with `top_via` the Via value that
/// was on top when sipfront received it (for loop detection, a Via below one
/// of sipfront's own). Reads From, Call-ID and CSeq from `m`.
pub fn request_hash(m: &Message<'_>, top_via: &[u8]) -> u64 {
    let from_tag = m.from().ok().and_then(|f| f.tag());
    let seq = m.cseq().map(|c| c.seq).unwrap_or(0);
    let via = crate::sip::Via::parse(top_via);
    request_hash_with(
        m,
        from_tag,
        m.call_id().unwrap_or(b""),
        seq,
        via.as_ref(),
        top_via,
    )
}

/// [`request_hash`] with the From tag, Call-ID and CSeq number already
/// decoded (the proxy has them from validation).
/// `via` is `top_via` decoded (`None` when it does not parse).
pub fn request_hash_with(
    m: &Message<'_>,
    from_tag: Option<&[u8]>,
    call_id: &[u8],
    seq: u32,
    via: Option<&crate::sip::Via<'_>>,
    top_via: &[u8],
) -> u64 {
    let mut h = hasher();
    let field = |h: &mut ahash::AHasher, b: &[u8]| {
        h.write(b);
        h.write_u8(0xff);
    };
    field(&mut h, from_tag.unwrap_or(b""));
    field(&mut h, call_id);
    field(&mut h, m.request_uri().unwrap_or(b""));
    h.write_u32(seq);
    // The received top Via by what identifies it: its branch when it has
    // the magic cookie, else sent-by and branch. Parameters sipfront adds
    // itself (received, rport) must not change the hash, or a loop would
    // look like a spiral.
    match via {
        Some(v) if v.has_cookie() => field(&mut h, v.branch.unwrap_or(b"")),
        Some(v) => {
            field(&mut h, v.host_raw);
            h.write_u16(v.port.unwrap_or(0));
            field(&mut h, v.branch.unwrap_or(b""));
        }
        None => field(&mut h, top_via),
    }
    for name in [HeaderName::ProxyRequire, HeaderName::ProxyAuthorization] {
        for v in m.values(name) {
            field(&mut h, v);
        }
    }
    h.finish()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn head(key: &Key, worker: u8, listen: u8, hash: u64, txn: Option<u64>, out: &mut [u8]) {
    out[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut i = PREFIX.len();
    out[i] = HEX[usize::from(worker >> 4)];
    out[i + 1] = HEX[usize::from(worker & 0xf)];
    out[i + 2] = HEX[usize::from(listen & 0xf)];
    i += 3;
    for k in 0..16 {
        out[i + k] = HEX[((hash >> (60 - 4 * k)) & 0xf) as usize];
    }
    i += 16;
    let mac = key.mac(worker, listen & 0xf, hash, txn);
    for k in 0..8 {
        out[i + k] = HEX[((mac >> (28 - 4 * k)) & 0xf) as usize];
    }
}

/// Writes a branch into `out` (exactly [`LEN`] bytes).
pub fn format(key: &Key, worker: u8, listen: u8, hash: u64, out: &mut [u8; LEN]) {
    head(key, worker, listen, hash, None, out);
}

/// Writes a stateful branch: [`format`] plus `.` and the transaction id.
pub fn format_txn(key: &Key, worker: u8, listen: u8, hash: u64, txn: u64, out: &mut [u8; LEN_TXN]) {
    head(key, worker, listen, hash, Some(txn), &mut out[..LEN]);
    out[LEN] = b'.';
    for k in 0..16 {
        out[LEN + 1 + k] = HEX[((txn >> (60 - 4 * k)) & 0xf) as usize];
    }
}

/// What a sipfront branch says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub worker: u8,
    pub listen: u8,
    /// The request came from a UA behind NAT.
    pub nat: bool,
    pub hash: u64,
    /// The client transaction, for a stateful branch.
    pub txn: Option<u64>,
    /// The MAC as written (see [`Parsed::verify`]).
    pub mac: u32,
}

impl Parsed {
    /// True when the branch was written by a process holding `key`.
    pub fn verify(&self, key: &Key) -> bool {
        let digit = self.listen | if self.nat { NAT_FLAG } else { 0 };
        key.mac(self.worker, digit, self.hash, self.txn) == self.mac
    }
}

/// Lower-case hex digit values; 0xff for anything else.
static HEX_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => 0xff,
        };
        i += 1;
    }
    t
};

fn hex(b: u8) -> Option<u8> {
    let v = HEX_VALUE[usize::from(b)];
    (v != 0xff).then_some(v)
}

/// Parses a branch sipfront wrote; `None` for anyone else's.
pub fn parse(branch: &[u8]) -> Option<Parsed> {
    if !branch.starts_with(PREFIX) {
        return None;
    }
    let txn = match branch.len() {
        LEN => None,
        LEN_TXN if branch.get(LEN) == Some(&b'.') => Some(hex64(branch.get(LEN + 1..)?)?),
        _ => return None,
    };
    let d = branch.get(PREFIX.len()..LEN)?;
    let worker = hex(d[0])? << 4 | hex(d[1])?;
    let digit = hex(d[2])?;
    let hash = hex64(&d[3..19])?;
    let mac = hex64(&d[19..27])? as u32;
    Some(Parsed {
        worker,
        listen: digit & !NAT_FLAG,
        nat: digit & NAT_FLAG != 0,
        hash,
        txn,
        mac,
    })
}

fn hex64(d: &[u8]) -> Option<u64> {
    // One table load per digit; a bad digit is noticed once, at the end.
    let mut v = 0u64;
    let mut bad = 0u8;
    for &b in d {
        let x = HEX_VALUE[usize::from(b)];
        bad |= x;
        v = v << 4 | u64::from(x & 0xf);
    }
    (bad & 0xf0 == 0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(first: &str, via: &str, extra: &str) -> Vec<u8> {
        format!("{first}\r\nVia: {via}\r\nFrom: <sip:a@x>;tag=f1\r\nTo: <sip:b@x>{extra}\r\nCall-ID: c1\r\nCSeq: 7 {}\r\n\r\n",
            first.split(' ').next().unwrap())
        .into_bytes()
    }

    fn hash_of(msg: &[u8]) -> u64 {
        let m = Message::parse(msg).unwrap();
        let top = m.values(HeaderName::Via).next().unwrap();
        request_hash(&m, top)
    }

    #[test]
    fn branch_round_trip() {
        let key = Key::new(1, 2);
        let mut b = [0u8; LEN];
        format(&key, 0x2a, 3, 0x0123_4567_89ab_cdef, &mut b);
        assert!(b.starts_with(b"z9hG4bKsf2a30123456789abcdef"));
        let p = parse(&b).unwrap();
        assert_eq!(
            (p.worker, p.listen, p.nat, p.hash, p.txn),
            (0x2a, 3, false, 0x0123_4567_89ab_cdef, None)
        );
        assert!(p.verify(&key));
        // The NAT flag shares the listen digit.
        format(&key, 0x2a, 3 | NAT_FLAG, 1, &mut b);
        let p = parse(&b).unwrap();
        assert_eq!((p.listen, p.nat), (3, true));
        assert!(p.verify(&key));
        let mut t = [0u8; LEN_TXN];
        format_txn(
            &key,
            0x2a,
            3,
            0x0123_4567_89ab_cdef,
            0x0000_0007_0000_0101,
            &mut t,
        );
        assert!(t.ends_with(b".0000000700000101"));
        assert_eq!(parse(&t).unwrap().txn, Some(0x0000_0007_0000_0101));
        assert_eq!(parse(&t).unwrap().hash, 0x0123_4567_89ab_cdef);
        assert!(parse(&t).unwrap().verify(&key));
        assert_eq!(parse(&t[..LEN + 5]), None);
        let mut bad = t;
        bad[LEN] = b'-';
        assert_eq!(parse(&bad), None);
        assert_eq!(parse(b"z9hG4bK776asdhds"), None);
        assert_eq!(parse(b"z9hG4bKsf2a30123456789abcdeX01234567"), None);
    }

    #[test]
    fn a_forged_or_altered_branch_does_not_verify() {
        let key = Key::new(7, 9);
        let mut t = [0u8; LEN_TXN];
        format_txn(&key, 1, 0, 42, 0x0000_0001_0000_0001, &mut t);
        assert!(parse(&t).unwrap().verify(&key));
        // Another process's key.
        assert!(!parse(&t).unwrap().verify(&Key::new(7, 10)));
        // Any hex in place of the MAC, or another worker, hash or transaction.
        for at in [
            PREFIX.len() + 1,
            PREFIX.len() + 2,
            PREFIX.len() + 10,
            PREFIX.len() + 20,
            LEN + 5,
        ] {
            let mut f = t;
            f[at] = if f[at] == b'0' { b'1' } else { b'0' };
            assert!(!parse(&f).unwrap().verify(&key), "flipped at {at}");
        }
        // A random key differs from run to run.
        assert_ne!(Key::random(), Key::random());
    }

    #[test]
    fn retransmission_cancel_and_non2xx_ack_share_the_branch_rfc3261_16_11() {
        let via = "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKabc";
        let invite = hash_of(&req("INVITE sip:b@x SIP/2.0", via, ""));
        assert_eq!(invite, hash_of(&req("INVITE sip:b@x SIP/2.0", via, "")));
        assert_eq!(invite, hash_of(&req("CANCEL sip:b@x SIP/2.0", via, "")));
        // The ACK of a non-2xx carries the To tag of the response.
        assert_eq!(invite, hash_of(&req("ACK sip:b@x SIP/2.0", via, ";tag=t9")));
        // A new transaction (new top Via branch) gets a new branch.
        let other = "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKdef";
        assert_ne!(
            invite,
            hash_of(&req("ACK sip:b@x SIP/2.0", other, ";tag=t9"))
        );
        // A spiral (changed Request-URI) gets a new branch (§16.3 step 4).
        assert_ne!(invite, hash_of(&req("INVITE sip:c@x SIP/2.0", via, "")));
    }
}
