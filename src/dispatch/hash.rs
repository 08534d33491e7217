//! Stable hashing for the hash algorithms: which request field is the key,
//! the 64-bit hash of that key, and the weighted rendezvous (highest random
//! weight) score of each destination for it.
//!
//! # The hash
//!
//! SipHash-1-3 (the function behind std's `HashMap`) with fixed keys, written
//! out here rather than taken from a crate, for one reason: the mapping from
//! call to backend must be the same on every worker, after a restart, after a
//! rolling upgrade and on every host of an active/standby pair. std's
//! `DefaultHasher` and `ahash` both reserve the right to change their output
//! between versions (and ahash differs between CPUs with and without AES-NI),
//! which would silently re-route every call of a stateless proxy. SipHash has
//! full avalanche, so SIPp Call-IDs that differ only in a counter prefix
//! (`1-4242@127.0.0.1`, `2-4242@127.0.0.1`, ...) spread as well as random
//! ones, and it costs about 1 ns per 8 bytes. The keys are fixed
//! nothing-up-my-sleeve constants (hex digits of pi); **changing them, or
//! anything in the key derivation below, remaps every call** (the golden test
//! at the bottom pins them). The keys are public, so a client can choose
//! Call-IDs that land on one backend; it can do that with any deterministic
//! hash, Kamailio's included, and it only steers its own calls.
//!
//! # Rendezvous scores
//!
//! For a key hash `k` and a destination whose identity is `d` (the SipHash of
//! its URI text, computed once when the set is built), the score is
//! `h = SipHash-1-3(k ‖ d)` under a third fixed key. With equal weights the
//! highest `h` wins; with weights the score is the standard weighted HRW
//! `-w / ln(u)`, `u = h` mapped into `(0, 1)`, which gives each destination a
//! share of keys proportional to its weight. Because a score depends only on
//! the key and that destination's own URI, removing, disabling or adding a
//! destination moves only the keys that it loses or wins: the others keep
//! their winner (see `docs/dispatch.md` for the measured fractions).

use std::net::IpAddr;

use super::algorithm::Algorithm;
use super::select::SelectInput;
use crate::sip::uri::{Scheme, Uri};

// Hex digits of pi: K_KEY for request keys, K_IDENT for destination
// identities, K_SCORE for rendezvous scores. Never change them.
const K_KEY: (u64, u64) = (0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344);
const K_IDENT: (u64, u64) = (0xa409_3822_299f_31d0, 0x082e_fa98_ec4e_6c89);
const K_SCORE: (u64, u64) = (0x4528_21e6_38d0_1377, 0xbe54_66cf_34e9_0c6c);

/// SipHash-c-d (Aumasson and Bernstein), streaming. `C` compression rounds
/// per 8-byte block, `D` finalisation rounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sip<const C: usize, const D: usize> {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
    /// Pending bytes (fewer than 8), little-endian.
    tail: u64,
    ntail: usize,
    len: usize,
}

impl<const C: usize, const D: usize> Sip<C, D> {
    pub(crate) const fn new(k0: u64, k1: u64) -> Self {
        Sip {
            v0: k0 ^ 0x736f_6d65_7073_6575,
            v1: k1 ^ 0x646f_7261_6e64_6f6d,
            v2: k0 ^ 0x6c79_6765_6e65_7261,
            v3: k1 ^ 0x7465_6462_7974_6573,
            tail: 0,
            ntail: 0,
            len: 0,
        }
    }

    #[inline(always)]
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    #[inline(always)]
    fn compress(&mut self, m: u64) {
        self.v3 ^= m;
        for _ in 0..C {
            self.round();
        }
        self.v0 ^= m;
    }

    #[inline]
    pub(crate) fn write(&mut self, mut msg: &[u8]) {
        self.len = self.len.wrapping_add(msg.len());
        if self.ntail != 0 {
            let take = (8 - self.ntail).min(msg.len());
            let (head, rest) = msg.split_at(take);
            for (i, &b) in head.iter().enumerate() {
                self.tail |= u64::from(b) << (8 * (self.ntail + i));
            }
            self.ntail += take;
            msg = rest;
            if self.ntail < 8 {
                return;
            }
            let m = self.tail;
            self.compress(m);
            self.tail = 0;
            self.ntail = 0;
        }
        let mut blocks = msg.chunks_exact(8);
        for block in &mut blocks {
            let mut w = [0u8; 8];
            w.copy_from_slice(block);
            self.compress(u64::from_le_bytes(w));
        }
        for (i, &b) in blocks.remainder().iter().enumerate() {
            self.tail |= u64::from(b) << (8 * i);
        }
        self.ntail = blocks.remainder().len();
    }

    #[inline]
    pub(crate) fn finish(mut self) -> u64 {
        let b = ((self.len as u64 & 0xff) << 56) | self.tail;
        self.compress(b);
        self.v2 ^= 0xff;
        for _ in 0..D {
            self.round();
        }
        self.v0 ^ self.v1 ^ self.v2 ^ self.v3
    }

    /// The hash of exactly two 64-bit words (little-endian), without the
    /// streaming bookkeeping: the per-destination inner loop.
    #[inline(always)]
    fn two_words(k: (u64, u64), a: u64, b: u64) -> u64 {
        let mut s = Self::new(k.0, k.1);
        s.compress(a);
        s.compress(b);
        s.len = 16;
        s.finish()
    }
}

type Sip13 = Sip<1, 3>;

/// The stable 64-bit hash of some bytes: what the hash algorithms apply to
/// the key (see [`hash_key`]).
pub fn bytes_hash(b: &[u8]) -> u64 {
    let mut s = Sip13::new(K_KEY.0, K_KEY.1);
    s.write(b);
    s.finish()
}

/// A destination's rendezvous identity: the hash of its URI text (LWS
/// trimmed). Computed once per destination when a set is built.
pub fn identity(uri: &str) -> u64 {
    let mut s = Sip13::new(K_IDENT.0, K_IDENT.1);
    s.write(uri.trim().as_bytes());
    s.finish()
}

/// The rendezvous score of a destination (identity `ident`, weight
/// `weight`) for a key hash. Higher wins. With `uniform` (every destination
/// of the set has the same weight) the raw 64-bit hash is the score; else
/// the bits of the positive `f64` `weight / -ln(u)`, which order like the
/// floats. Within one set use one mode for every destination.
#[inline]
pub fn score(key: u64, ident: u64, weight: u32, uniform: bool) -> u64 {
    let h = Sip13::two_words(K_SCORE, key, ident);
    if uniform {
        return h;
    }
    // u in (0, 1): the top 53 bits, centred in their interval.
    let u = ((h >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
    (f64::from(weight.max(1)) / -u.ln()).to_bits()
}

/// Where the key bytes go: the hasher, or a buffer to show them.
trait Sink {
    fn put(&mut self, b: &[u8]);

    /// ASCII-lowercased (host names compare case-insensitively).
    fn put_lower(&mut self, b: &[u8]) {
        let mut chunk = [0u8; 32];
        for part in b.chunks(chunk.len()) {
            let out = chunk.get_mut(..part.len()).unwrap_or(&mut []);
            for (o, &i) in out.iter_mut().zip(part) {
                *o = i.to_ascii_lowercase();
            }
            self.put(out);
        }
    }
}

impl Sink for Sip13 {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        self.write(b);
    }
}

struct BufSink<'b> {
    buf: &'b mut [u8; 256],
    len: usize,
    overflow: bool,
}

impl Sink for BufSink<'_> {
    fn put(&mut self, b: &[u8]) {
        match self.buf.get_mut(self.len..self.len + b.len()) {
            Some(dst) => {
                dst.copy_from_slice(b);
                self.len += b.len();
            }
            None => self.overflow = true,
        }
    }
}

/// Writes the key of a URI: `user@host[:port]` (host lowercased, port only
/// when explicit and not 5060/5061, as Kamailio's `get_uri_hash_keys`), or
/// only the user. False when the URI has no such part.
fn put_uri(sink: &mut impl Sink, uri: &Uri<'_>, user_only: bool) -> bool {
    if user_only {
        return match uri.user {
            Some(u) if !u.is_empty() => {
                sink.put(u);
                true
            }
            _ => false,
        };
    }
    if uri.scheme == Scheme::Other {
        sink.put(uri.raw);
        return !uri.raw.is_empty();
    }
    if uri.user.is_none() && uri.host_raw.is_empty() {
        return false;
    }
    if let Some(u) = uri.user {
        sink.put(u);
    }
    sink.put(b"@");
    sink.put_lower(uri.host_raw);
    if let Some(p) = uri.port.filter(|&p| p != 5060 && p != 5061) {
        let mut digits = [0u8; 6];
        let mut i = digits.len();
        let mut n = p;
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 {
                break;
            }
        }
        sink.put(b":");
        sink.put(digits.get(i..).unwrap_or(&[]));
    }
    true
}

/// Writes the key `alg` hashes for `input`; `false` for the algorithms that
/// do not hash. When the field an algorithm hashes is missing (no From, an
/// R-URI without a user part for `ruri-user`, ...) the key falls back to the
/// Call-ID, which every request has.
fn put_key(alg: Algorithm, input: &SelectInput<'_>, sink: &mut impl Sink) -> bool {
    let done = match alg {
        Algorithm::CallId => false,
        Algorithm::From => input
            .from_uri
            .as_ref()
            .is_some_and(|u| put_uri(sink, u, false)),
        Algorithm::To => input
            .to_uri
            .as_ref()
            .is_some_and(|u| put_uri(sink, u, false)),
        Algorithm::Ruri => input.ruri.as_ref().is_some_and(|u| put_uri(sink, u, false)),
        Algorithm::RuriUser => input.ruri.as_ref().is_some_and(|u| put_uri(sink, u, true)),
        Algorithm::SourceIp => {
            match input.source.to_canonical() {
                IpAddr::V4(a) => sink.put(&a.octets()),
                IpAddr::V6(a) => sink.put(&a.octets()),
            }
            true
        }
        _ => return false,
    };
    if !done {
        sink.put(input.call_id);
    }
    true
}

/// The key hash the algorithm `alg` uses for `input`, `None` for the
/// algorithms that do not hash. This is the whole of what a hash algorithm
/// looks at: a stateless proxy that re-derives it for an in-dialog request
/// lands on the same destination (if still active) as the initial request.
///
/// Only `call-id` is safe for that: the From and To URIs stay the same
/// within a dialog but the R-URI of in-dialog requests is the remote
/// target (a Contact), so `ruri`/`ruri-user` route them elsewhere, and
/// `source-ip` breaks when the callee's side sends the BYE.
pub fn key_hash(alg: Algorithm, input: &SelectInput<'_>) -> Option<u64> {
    let mut s = Sip13::new(K_KEY.0, K_KEY.1);
    put_key(alg, input, &mut s).then(|| s.finish())
}

/// The key bytes `alg` hashes for `input` (for logs and the admin API):
/// `key_hash(alg, input) == Some(bytes_hash(hash_key(alg, input, buf)?))`.
/// `None` for the algorithms that do not hash, or a key longer than 256
/// bytes (it is still hashed whole by [`key_hash`]).
pub fn hash_key<'b>(
    alg: Algorithm,
    input: &SelectInput<'_>,
    buf: &'b mut [u8; 256],
) -> Option<&'b [u8]> {
    let mut sink = BufSink {
        buf,
        len: 0,
        overflow: false,
    };
    if !put_key(alg, input, &mut sink) || sink.overflow {
        return None;
    }
    let len = sink.len;
    sink.buf.get(..len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    type Sip24 = Sip<2, 4>;

    #[test]
    fn siphash24_matches_the_reference_vector() {
        // SipHash paper, appendix A: key 00..0f, empty message.
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(Sip24::new(k0, k1).finish(), 0x726f_db47_dd0e_0e31);
        // And message 00..0e (15 bytes).
        let mut s = Sip24::new(k0, k1);
        s.write(&(0u8..15).collect::<Vec<_>>());
        assert_eq!(s.finish(), 0xa129_ca61_49be_45e5);
    }

    #[test]
    #[allow(deprecated)]
    fn streaming_siphash24_matches_std_for_any_split() {
        use std::hash::Hasher;
        let msg: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..msg.len() {
            for split in [0, 1, 3, 7, 8, 9].into_iter().filter(|&s| s <= len) {
                let mut ours = Sip24::new(K_KEY.0, K_KEY.1);
                ours.write(&msg[..split]);
                ours.write(&msg[split..len]);
                let mut std = std::hash::SipHasher::new_with_keys(K_KEY.0, K_KEY.1);
                std.write(&msg[..len]);
                assert_eq!(ours.finish(), std.finish(), "len {len} split {split}");
            }
        }
        let mut std = std::hash::SipHasher::new_with_keys(1, 2);
        std.write(&7u64.to_le_bytes());
        std.write(&9u64.to_le_bytes());
        assert_eq!(Sip24::two_words((1, 2), 7, 9), std.finish());
    }

    /// Pins the hash: these values must never change, or every stateless
    /// call would move to another backend across an upgrade.
    #[test]
    fn golden_values_are_stable_across_releases() {
        assert_eq!(bytes_hash(b"1-4242@127.0.0.1"), GOLDEN[0]);
        assert_eq!(identity("sip:10.0.0.1:5060"), GOLDEN[1]);
        assert_eq!(score(1, 2, 1, true), GOLDEN[2]);
        assert_eq!(score(1, 2, 3, false), GOLDEN[3]);
    }

    const GOLDEN: [u64; 4] = [
        0x64e3_f8d2_1588_d63c,
        0x4c01_9bcf_bb31_1b44,
        0x080b_172b_b613_11ee,
        0x3feb_be33_bafe_0319,
    ];
    fn input(call_id: &[u8]) -> SelectInput<'_> {
        SelectInput::new(call_id, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
    }

    fn key(alg: Algorithm, inp: &SelectInput<'_>) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let k = hash_key(alg, inp, &mut buf).unwrap().to_vec();
        assert_eq!(key_hash(alg, inp), Some(bytes_hash(&k)), "{alg}");
        k
    }

    #[test]
    fn uri_keys_follow_kamailio_user_at_host_port_except_5060_5061() {
        let mut inp = input(b"cid");
        inp.from_uri = Some(Uri::parse(b"sip:alice@Atlanta.Example.COM;transport=udp").unwrap());
        assert_eq!(key(Algorithm::From, &inp), b"alice@atlanta.example.com");
        inp.from_uri = Some(Uri::parse(b"sip:alice@atlanta.example.com:5060").unwrap());
        assert_eq!(key(Algorithm::From, &inp), b"alice@atlanta.example.com");
        inp.from_uri = Some(Uri::parse(b"sips:alice@atlanta.example.com:5061").unwrap());
        assert_eq!(key(Algorithm::From, &inp), b"alice@atlanta.example.com");
        inp.to_uri = Some(Uri::parse(b"sip:bob@[2001:DB8::1]:5070").unwrap());
        assert_eq!(key(Algorithm::To, &inp), b"bob@[2001:db8::1]:5070");
        inp.ruri = Some(Uri::parse(b"sip:+4930123@gw.example.com:65535;user=phone").unwrap());
        assert_eq!(key(Algorithm::Ruri, &inp), b"+4930123@gw.example.com:65535");
        assert_eq!(key(Algorithm::RuriUser, &inp), b"+4930123");
        inp.ruri = Some(Uri::parse(b"tel:+4930123").unwrap());
        assert_eq!(key(Algorithm::Ruri, &inp), b"+4930123@");
        inp.ruri = Some(Uri::parse(b"urn:service:sos").unwrap());
        assert_eq!(key(Algorithm::Ruri, &inp), b"urn:service:sos");
        assert_eq!(key(Algorithm::CallId, &inp), b"cid");
    }

    #[test]
    fn missing_key_fields_fall_back_to_the_call_id() {
        let mut inp = input(b"abc@host");
        for alg in [
            Algorithm::From,
            Algorithm::To,
            Algorithm::Ruri,
            Algorithm::RuriUser,
        ] {
            assert_eq!(key(alg, &inp), b"abc@host", "{alg}");
        }
        inp.ruri = Some(Uri::parse(b"sip:gw.example.com").unwrap());
        assert_eq!(key(Algorithm::RuriUser, &inp), b"abc@host");
        assert_eq!(key(Algorithm::Ruri, &inp), b"@gw.example.com");
    }

    #[test]
    fn source_ip_key_treats_v4_mapped_v6_as_v4() {
        let mut inp = input(b"x");
        assert_eq!(key(Algorithm::SourceIp, &inp), [192, 0, 2, 1]);
        inp.source = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(key(Algorithm::SourceIp, &inp), [192, 0, 2, 1]);
        inp.source = "2001:db8::1".parse().unwrap();
        assert_eq!(key(Algorithm::SourceIp, &inp).len(), 16);
    }

    #[test]
    fn non_hash_algorithms_have_no_key() {
        let inp = input(b"x");
        let mut buf = [0u8; 256];
        for alg in Algorithm::ALL.into_iter().filter(|a| !a.is_hash()) {
            assert_eq!(key_hash(alg, &inp), None);
            assert_eq!(hash_key(alg, &inp, &mut buf), None);
        }
    }

    #[test]
    fn overlong_keys_are_hashed_whole_but_not_shown() {
        let long = vec![b'a'; 300];
        let inp = input(&long);
        let mut buf = [0u8; 256];
        assert_eq!(hash_key(Algorithm::CallId, &inp, &mut buf), None);
        assert_eq!(key_hash(Algorithm::CallId, &inp), Some(bytes_hash(&long)));
    }

    #[test]
    fn weighted_score_with_equal_weights_orders_like_the_uniform_score() {
        for k in 0..2000u64 {
            let (a, b) = (score(k, 11, 1, true), score(k, 22, 1, true));
            let (wa, wb) = (score(k, 11, 7, false), score(k, 22, 7, false));
            if (a >> 11) != (b >> 11) {
                assert_eq!(a > b, wa > wb);
            }
        }
    }
}
