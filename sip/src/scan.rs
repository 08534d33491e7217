//! Low-level byte scanning shared by every SIP and SDP view: character
//! classes of RFC 3261 §25.1, LWS trimming (folded lines included), and
//! splitting of comma-separated values that respects quotes and `<...>`.

const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = matches!(b,
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
            | b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        i += 1;
    }
    t
}

/// RFC 3261 §25.1 `token` characters, as a lookup table (the parser's
/// hottest test).
static TOKEN: [bool; 256] = token_table();

/// RFC 3261 §25.1 `token` characters.
#[inline]
pub fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

/// Whitespace inside a header value: SP, HTAB, and the CR/LF of a folded
/// line (RFC 3261 §7.3.1: a folded line is equivalent to one SP).
#[inline]
pub const fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `s` without leading and trailing LWS.
#[inline]
pub fn trim(s: &[u8]) -> &[u8] {
    trim_end(trim_start(s))
}

#[inline]
pub fn trim_start(s: &[u8]) -> &[u8] {
    let i = s.iter().position(|&b| !is_lws(b)).unwrap_or(s.len());
    &s[i..]
}

#[inline]
pub fn trim_end(s: &[u8]) -> &[u8] {
    let i = s.iter().rposition(|&b| !is_lws(b)).map_or(0, |i| i + 1);
    &s[..i]
}

/// True when `s` is a non-empty run of token characters.
#[inline]
pub fn is_token_str(s: &[u8]) -> bool {
    // No early exit: one load and one AND per byte (branches and tags are
    // 20-50 bytes, and nearly always valid).
    !s.is_empty() && s.iter().fold(true, |ok, &b| ok & is_token(b))
}

/// Index of the first byte at or after `from` that is one of `set`.
/// Header values and URIs run 10-80 bytes: 16 bytes are compared at a time
/// (SSE2, part of the x86_64 baseline), the last block overlapping the one
/// before it, instead of a byte loop or a call into a general searcher.
#[inline]
pub fn find_of<const N: usize>(s: &[u8], from: usize, set: [u8; N]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if s.len() >= 16 {
        use core::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8, _mm_setzero_si128,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline; every load reads the
        // 16 bytes at `p..p + 16` with `p + 16 <= s.len()`.
        unsafe {
            let hits = |p: usize| -> u32 {
                let v = _mm_loadu_si128(s.as_ptr().add(p) as *const __m128i);
                let mut m = _mm_setzero_si128();
                for &c in &set {
                    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8)));
                }
                _mm_movemask_epi8(m) as u32
            };
            let mut i = from;
            while i + 16 <= s.len() {
                let m = hits(i);
                if m != 0 {
                    return Some(i + m.trailing_zeros() as usize);
                }
                i += 16;
            }
            if i >= s.len() {
                return None;
            }
            // The tail: the last 16 bytes, without those already searched.
            let base = s.len() - 16;
            let m = hits(base) >> (i - base);
            return (m != 0).then(|| i + m.trailing_zeros() as usize);
        }
    }
    s.get(from..)?
        .iter()
        .position(|b| set.contains(b))
        .map(|p| from + p)
}

/// Parses an unsigned decimal of at most `max_digits` digits (leading zeros
/// allowed, as RFC 4475 §3.1.1.1 `wsinv` requires: `Max-Forwards: 0068`).
/// Surrounding LWS is ignored.
pub fn parse_u32(s: &[u8], max_digits: usize) -> Option<u32> {
    // Nearly always: a few digits, no LWS, no leading zero to skip.
    if !s.is_empty() && s.len() <= max_digits.min(9) && s.iter().all(u8::is_ascii_digit) {
        return Some(s.iter().fold(0, |v, &b| v * 10 + u32::from(b - b'0')));
    }
    let s = trim(s);
    if s.is_empty() || s.len() > max_digits + 16 {
        return None;
    }
    // Strip leading zeros so `0000000000000068` still parses; the digit
    // limit applies to significant digits.
    let first_sig = s.iter().position(|&b| b != b'0').unwrap_or(s.len());
    let sig = &s[first_sig..];
    if sig.len() > max_digits || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &b in sig {
        v = v * 10 + u64::from(b - b'0');
    }
    u32::try_from(v).ok()
}

/// Finds the end of a quoted string that starts at `s[0] == b'"'`; returns the
/// index one past the closing quote. Backslash escapes (`quoted-pair`) are
/// honoured. `None` when the quote never closes.
pub fn quoted_end(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Splits a header value at top-level commas (RFC 3261 §7.3.1): commas inside
/// quoted strings or `<...>` do not split. Yields each element untrimmed.
/// An unbalanced quote or bracket makes the rest of the value one element,
/// which the typed view then rejects.
#[derive(Clone, Debug, Default)]
pub struct CommaSplit<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> CommaSplit<'a> {
    pub fn new(value: &'a [u8]) -> Self {
        CommaSplit { rest: Some(value) }
    }
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.rest?;
        // Most values hold one element: no comma, nothing to scan.
        if find_of(s, 0, [b',']).is_none() {
            self.rest = None;
            return Some(s);
        }
        let mut i = 0;
        let mut in_angle = false;
        while i < s.len() {
            match s[i] {
                b'"' => match quoted_end(&s[i..]) {
                    Some(n) => {
                        i += n;
                        continue;
                    }
                    None => break,
                },
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                b',' if !in_angle => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(s)
    }
}

/// Case-insensitive ASCII comparison.
#[inline]
pub fn eq_ic(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// [`eq_ic`] for a token `a` (parameter names are checked tokens first)
/// against a lower-case name of 1 to 8 letters, digits and `-`: one OR and
/// one compare of a word instead of a byte loop. Folding with 0x20 is exact
/// here: among token characters only the letters fold onto letters, and a
/// digit or `-` only matches itself.
#[inline]
pub fn token_eq_ic(a: &[u8], lower: &[u8]) -> bool {
    let n = lower.len();
    if a.len() != n || n == 0 || n > 8 {
        return false;
    }
    let mask = u64::MAX >> (64 - 8 * n as u32) & 0x2020_2020_2020_2020;
    (word(a) | mask) == (word(lower) | mask)
}

/// Up to 8 bytes as a little-endian word, zero-filled.
#[inline]
fn word(s: &[u8]) -> u64 {
    let mut w = 0u64;
    for (i, &b) in s.iter().take(8).enumerate() {
        w |= u64::from(b) << (8 * i);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_lws_including_folds() {
        assert_eq!(trim(b" \r\n\t abc \r\n "), b"abc");
        assert_eq!(trim(b"   "), b"");
    }

    #[test]
    fn numbers_allow_leading_zeros_rfc4475_wsinv() {
        assert_eq!(parse_u32(b" 0068 ", 10), Some(68));
        assert_eq!(parse_u32(b"0", 10), Some(0));
        assert_eq!(parse_u32(b"", 10), None);
        assert_eq!(parse_u32(b"-1", 10), None);
        assert_eq!(parse_u32(b"4294967296", 10), None);
        assert_eq!(parse_u32(b"12a", 10), None);
    }

    #[test]
    fn comma_split_respects_quotes_and_brackets_rfc3261_7_3_1() {
        let v: Vec<&[u8]> =
            CommaSplit::new(br#""a, b" <sip:x@y;p=1,2>, <sip:z>;q=0.5 ,sip:w"#).collect();
        assert_eq!(v.len(), 3);
        assert_eq!(trim(v[0]), br#""a, b" <sip:x@y;p=1,2>"#);
        assert_eq!(trim(v[1]), b"<sip:z>;q=0.5");
        assert_eq!(trim(v[2]), b"sip:w");
    }

    #[test]
    fn find_of_matches_a_byte_search() {
        let hay: Vec<u8> = (0..70u8)
            .map(|i| b"ab;c=de\"fghij"[usize::from(i) % 13])
            .collect();
        for len in 0..hay.len() {
            let s = &hay[..len];
            for from in 0..=len + 1 {
                let want = s
                    .get(from..)
                    .and_then(|t| t.iter().position(|&b| b == b';' || b == b'"'))
                    .map(|p| from + p);
                assert_eq!(find_of(s, from, [b';', b'"']), want, "{len} {from}");
            }
        }
        assert!(is_token_str(b"z9hG4bK-776asdhds.1"));
        assert!(!is_token_str(b"z9hG4bK\"x"));
        assert!(!is_token_str(b""));
    }

    #[test]
    fn token_names_compare_like_eq_ic() {
        for name in [
            "branch", "received", "rport", "maddr", "ttl", "tag", "lr", "x-y-1",
        ] {
            for cand in [
                name.to_string(),
                name.to_ascii_uppercase(),
                format!("{name}x"),
                name[1..].to_string(),
                name.replace('a', "b"),
                name.replace('-', "_"),
            ] {
                if is_token_str(cand.as_bytes()) {
                    assert_eq!(
                        token_eq_ic(cand.as_bytes(), name.as_bytes()),
                        eq_ic(cand.as_bytes(), name.as_bytes()),
                        "{cand} vs {name}"
                    );
                }
            }
        }
    }

    #[test]
    fn quoted_escape() {
        assert_eq!(quoted_end(br#""a\"b" x"#), Some(6));
        assert_eq!(quoted_end(br#""abc"#), None);
    }
}
