//! Host and port syntax shared by Via sent-by and URIs (RFC 3261 §25.1
//! `hostport`, RFC 5118 for IPv6 references).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host as a proxy routes on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    V4(Ipv4Addr),
    /// An IPv6 reference; the brackets stay in the raw text, not here.
    V6(Ipv6Addr),
    /// A `hostname` (RFC 3261 §25.1) as written, trailing `.` included.
    Name(&'a [u8]),
}

impl Host<'_> {
    /// True for an IP address literal (RFC 3261 §19.1.4: an address never
    /// equals a host name, even one that resolves to it).
    pub fn is_ip(&self) -> bool {
        !matches!(self, Host::Name(_))
    }

    /// The address, when the host is a literal one.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::V4(a) => Some(IpAddr::V4(a)),
            Host::V6(a) => Some(IpAddr::V6(a)),
            Host::Name(_) => None,
        }
    }
}

/// RFC 3261 §25.1 `hostname`: dot-separated labels of alphanumerics and
/// `-`, a label neither starting nor ending with `-`, an optional final dot,
/// and a top label that starts with a letter (so `1.2.3.400` is no name).
pub fn is_hostname(s: &[u8]) -> bool {
    let s = s.strip_suffix(b".").unwrap_or(s);
    if s.is_empty() || s.len() > 255 {
        return false;
    }
    // Letters and digits take one table load; `.` and `-` look at the byte
    // before them (a label neither empty nor starting or ending with `-`).
    let mut last_label = 0;
    for (i, &b) in s.iter().enumerate() {
        if ALNUM[usize::from(b)] {
            continue;
        }
        let prev = if i == 0 { b'.' } else { s[i - 1] };
        match b {
            b'.' if ALNUM[usize::from(prev)] => last_label = i + 1,
            b'-' if prev != b'.' => {}
            _ => return false,
        }
    }
    s.last().is_some_and(|&b| ALNUM[usize::from(b)])
        && s.get(last_label).is_some_and(u8::is_ascii_alphabetic)
}

/// Letters, digits, `.` and `-`: the bytes of a host name or IPv4 address.
static HOST_CHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
        i += 1;
    }
    t
};

/// A byte of a host name or IPv4 address (one table load), for scanning to
/// the end of a host before [`parse_host`] checks it.
#[inline]
pub fn is_host_char(b: u8) -> bool {
    HOST_CHAR[usize::from(b)]
}

/// Scans the host at `s[from..]`, up to the first byte that is neither a
/// letter, a digit, `.` nor `-`, and decodes it as [`parse_host`] does that
/// slice, in the same pass for a name. Returns the host and where it ends;
/// `None` when it is no host (empty included).
#[inline]
pub fn scan_host(s: &[u8], from: usize) -> Option<(Host<'_>, usize)> {
    if s.get(from).is_some_and(u8::is_ascii_digit) {
        if let Some(v4) = scan_ipv4(s, from) {
            return Some(v4);
        }
    }
    // `prev`: 0 at the start of a label, 1 after a letter or digit, 2 after
    // a '-'. A '.' must follow a letter or digit; a '-' must not start a
    // label.
    let (mut i, mut prev, mut label, mut prev_label) = (from, 0u8, from, from);
    let mut ok = true;
    while let Some(&b) = s.get(i) {
        if ALNUM[usize::from(b)] {
            prev = 1;
        } else if b == b'.' {
            ok &= prev == 1;
            prev_label = label;
            label = i + 1;
            prev = 0;
        } else if b == b'-' {
            ok &= prev != 0;
            prev = 2;
        } else {
            break;
        }
        i += 1;
    }
    let h = s.get(from..i)?;
    if h.first()?.is_ascii_digit() {
        if let Some(a) = parse_ipv4(h) {
            return Some((Host::V4(a), i));
        }
    }
    // One trailing '.' is allowed: the last label is the one before it.
    let (end, last) = if prev == 0 && i > from {
        (i - 1, prev_label)
    } else {
        (i, label)
    };
    let name_ok = ok
        && end > from
        && end - from <= 255
        && s.get(end - 1).is_some_and(|&b| ALNUM[usize::from(b)])
        && s.get(last).is_some_and(u8::is_ascii_alphabetic);
    name_ok.then_some((Host::Name(h), i))
}

/// An IPv4 literal at `s[from..]` that is the whole host (no host byte
/// follows it), as [`parse_ipv4`] reads it, octets accumulated in one loop.
#[inline]
fn scan_ipv4(s: &[u8], from: usize) -> Option<(Host<'_>, usize)> {
    let mut octets = [0u8; 4];
    let (mut j, mut n, mut v, mut digits) = (from, 0usize, 0u32, 0u32);
    loop {
        match s.get(j) {
            Some(&b) if b.is_ascii_digit() => {
                if digits == 3 {
                    return None;
                }
                v = v * 10 + u32::from(b - b'0');
                digits += 1;
            }
            Some(b'.') => {
                if digits == 0 || v > 255 {
                    return None;
                }
                *octets.get_mut(n)? = v as u8;
                n += 1;
                v = 0;
                digits = 0;
            }
            _ => break,
        }
        j += 1;
    }
    if n != 3 || digits == 0 || v > 255 || s.get(j).is_some_and(|&b| is_host_char(b)) {
        return None;
    }
    octets[3] = v as u8;
    Some((Host::V4(Ipv4Addr::from(octets)), j))
}

static ALNUM: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).is_ascii_alphanumeric();
        i += 1;
    }
    t
};

/// `IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT`, each
/// octet at most 255 (leading zeros are decimal, unlike std's parser).
pub fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    if s.len() < 7 || s.len() > 15 {
        return None;
    }
    // Digits accumulate without a per-digit limit (15 bytes fit a u64);
    // each octet's digit count and value are checked at its end.
    let mut octets = [0u8; 4];
    let (mut n, mut v, mut digits) = (0usize, 0u64, 0u32);
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d < 10 {
            v = v * 10 + u64::from(d);
            digits += 1;
        } else if b == b'.' && (1..=3).contains(&digits) && v <= 255 {
            *octets.get_mut(n)? = v as u8;
            n += 1;
            v = 0;
            digits = 0;
        } else {
            return None;
        }
    }
    if n != 3 || !(1..=3).contains(&digits) || v > 255 {
        return None;
    }
    octets[3] = v as u8;
    Some(Ipv4Addr::from(octets))
}

/// An IPv6 address without brackets.
pub fn parse_ipv6(s: &[u8]) -> Option<Ipv6Addr> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parses a host: `[IPv6]`, dotted IPv4, or a hostname.
pub fn parse_host(s: &[u8]) -> Option<Host<'_>> {
    if let Some(inner) = s.strip_prefix(b"[") {
        let inner = inner.strip_suffix(b"]")?;
        return parse_ipv6(inner).map(Host::V6);
    }
    if s.first().is_some_and(u8::is_ascii_digit) {
        if let Some(a) = parse_ipv4(s) {
            return Some(Host::V4(a));
        }
    }
    is_hostname(s).then_some(Host::Name(s))
}

/// An IP address literal as `received` carries it (RFC 3261 §20.42): IPv4,
/// or IPv6 with or without brackets (RFC 5118 §4.5 allows both).
pub fn parse_ip(s: &[u8]) -> Option<IpAddr> {
    parse_host(s)
        .and_then(|h| h.ip())
        .or_else(|| parse_ipv6(s).map(IpAddr::V6))
}

/// Parses a port: 1*DIGIT in 1..=65535.
pub fn parse_port(s: &[u8]) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = s.iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
    u16::try_from(n).ok().filter(|&p| p != 0)
}

/// Splits `host[:port]`, respecting the brackets of an IPv6 reference.
/// Returns the host bytes (brackets kept) and the port bytes when present.
pub fn split_host_port(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    let colon = if s.first() == Some(&b'[') {
        match s.iter().position(|&b| b == b']') {
            Some(close) if s.get(close + 1) == Some(&b':') => Some(close + 1),
            _ => None,
        }
    } else {
        s.iter().rposition(|&b| b == b':')
    };
    match colon {
        Some(c) => (&s[..c], Some(&s[c + 1..])),
        None => (s, None),
    }
}

/// Parses `host[:port]`.
pub fn parse_host_port(s: &[u8]) -> Option<(Host<'_>, Option<u16>)> {
    let (h, p) = split_host_port(s);
    let host = parse_host(h)?;
    let port = match p {
        Some(p) => Some(parse_port(p)?),
        None => None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_rfc3261_25_1_and_rfc5118() {
        assert_eq!(
            parse_host(b"192.0.2.1"),
            Some(Host::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(
            parse_host(b"255.255.255.255"),
            Some(Host::V4(Ipv4Addr::BROADCAST))
        );
        assert!(matches!(parse_host(b"[2001:db8::10]"), Some(Host::V6(_))));
        assert!(matches!(
            parse_host(b"[::ffff:192.0.2.1]"),
            Some(Host::V6(_))
        ));
        assert_eq!(
            parse_host(b"Example.COM."),
            Some(Host::Name(b"Example.COM."))
        );
        for bad in [
            &b"2001:db8::10"[..],
            b"[2001:db8::10",
            b"1.2.3.400",
            b"-a.com",
            b"a..b",
            b"",
            b"a_b.com",
            b"[]",
        ] {
            assert_eq!(parse_host(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn ip_literals_for_received_rfc5118_4_5() {
        assert_eq!(
            parse_ip(b"192.0.2.1"),
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert!(matches!(parse_ip(b"2001:db8::1"), Some(IpAddr::V6(_))));
        assert!(matches!(parse_ip(b"[2001:db8::1]"), Some(IpAddr::V6(_))));
        assert_eq!(parse_ip(b"example.com"), None);
    }

    // The byte-loop versions above replaced these; they must agree.
    fn reference_is_hostname(s: &[u8]) -> bool {
        let s = s.strip_suffix(b".").unwrap_or(s);
        if s.is_empty() || s.len() > 255 {
            return false;
        }
        let mut last_label: &[u8] = &[];
        for label in s.split(|&b| b == b'.') {
            let ok = !label.is_empty()
                && label
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
                && label.first() != Some(&b'-')
                && label.last() != Some(&b'-');
            if !ok {
                return false;
            }
            last_label = label;
        }
        last_label.first().is_some_and(u8::is_ascii_alphabetic)
    }

    fn reference_parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
        let mut octets = [0u8; 4];
        let mut n = 0;
        for part in s.split(|&b| b == b'.') {
            if part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let v = part.iter().fold(0u16, |v, &d| v * 10 + u16::from(d - b'0'));
            *octets.get_mut(n)? = u8::try_from(v).ok()?;
            n += 1;
        }
        (n == 4).then(|| Ipv4Addr::from(octets))
    }

    proptest::proptest! {
        #[test]
        fn host_scan_agrees_with_parse_host(
            s in "[a-zA-Z0-9.-]{0,20}([;:@ ].{0,3})?|[0-9.]{0,17}|[0-9]{1,4}(\\.[0-9]{1,4}){2,4}[a-z:;.-]?"
        ) {
            let b = s.as_bytes();
            let end = b.iter().position(|&c| !is_host_char(c)).unwrap_or(b.len());
            let want = parse_host(&b[..end]).map(|h| (h, end));
            proptest::prop_assert_eq!(scan_host(b, 0), want);
        }

        #[test]
        fn one_pass_host_checks_agree_with_label_splitting(
            s in "[a-z0-9.\\-_]{0,20}|[0-9.]{0,17}|[0-9]{1,4}(\\.[0-9]{1,4}){0,5}\\.?"
        ) {
            proptest::prop_assert_eq!(is_hostname(s.as_bytes()), reference_is_hostname(s.as_bytes()));
            proptest::prop_assert_eq!(parse_ipv4(s.as_bytes()), reference_parse_ipv4(s.as_bytes()));
        }
    }

    #[test]
    fn host_port_split() {
        assert_eq!(
            parse_host_port(b"[2001:db8::10]:5070"),
            Some((Host::V6("2001:db8::10".parse().unwrap()), Some(5070)))
        );
        assert_eq!(
            parse_host_port(b"a.example.com"),
            Some((Host::Name(b"a.example.com"), None))
        );
        assert_eq!(parse_host_port(b"a:0"), None);
        assert_eq!(parse_host_port(b"a:65536"), None);
        assert_eq!(parse_host_port(b"a:"), None);
    }
}
