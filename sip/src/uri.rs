//! SIP, SIPS and TEL URIs (RFC 3261 §19.1 and §25.1, RFC 3966), parsed in
//! place: every field is a slice of the input, nothing is unescaped or copied
//! until a caller asks, and parsing allocates nothing. IPv6 references follow
//! RFC 2732/5118 (brackets required, std's parser for the address, so the
//! RFC 5954 ABNF correction and IPv4-embedded forms come for free). Other
//! `absoluteURI` schemes (RFC 3261 §25.1) are kept raw so callers can answer
//! 416. Also here: `%HH` unescaping and RFC 3261 §19.1.4 URI comparison.

use core::fmt;

use memchr::memchr;

use super::host;
pub use super::host::Host;
use super::params::Params;
use super::scan::{eq_ic, find_of, is_lws, trim};

/// The URI scheme, matched case-insensitively.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    /// Any other `absoluteURI` scheme (RFC 3261 §25.1), kept raw.
    Other,
}

/// A parsed URI. Every slice borrows the input.
#[derive(Clone, Copy, Debug)]
pub struct Uri<'a> {
    /// The whole URI as given, surrounding LWS trimmed.
    pub raw: &'a [u8],
    pub scheme: Scheme,
    /// The scheme as written, e.g. `b"SIP"`.
    pub scheme_raw: &'a [u8],
    /// Raw, still escaped. For `tel:` the number, global (`+...`) or local.
    pub user: Option<&'a [u8]>,
    /// Raw, still escaped; `Some(b"")` for `sip:user:@host`.
    pub password: Option<&'a [u8]>,
    /// `None` for `tel:` and other schemes.
    pub host: Option<Host<'a>>,
    /// As written, brackets included for IPv6; empty when there is no host.
    pub host_raw: &'a [u8],
    pub port: Option<u16>,
    /// uri-parameters (tel: parameters for `tel:`), raw with the leading
    /// `;`; empty when there are none.
    pub params: Params<'a>,
    /// The headers after `?`, raw and still escaped.
    pub headers: Option<&'a [u8]>,
}

/// Why a URI was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UriError {
    /// Nothing but LWS.
    Empty,
    /// No `scheme ":"`, a malformed scheme (`<sip:...>` lands here), or an
    /// other-scheme URI with nothing after the colon.
    BadScheme,
    /// Syntactically fine but not sip/sips/tel; from [`Uri::parse_sip`],
    /// for callers that answer 416 (RFC 3261 §8.2.2.1).
    UnsupportedScheme,
    /// Bad user part, or bad `tel:` number.
    BadUser,
    BadPassword,
    BadHost,
    BadPort,
    /// Malformed parameters, or more than [`MAX_URI_PARAMS`].
    BadParams,
    /// Malformed headers, or more than [`MAX_URI_HEADERS`].
    BadHeaders,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// SP, HTAB, CR or LF inside the URI.
    Whitespace,
    /// Bytes where the URI should have ended: `<`/`>` after the scheme,
    /// anything but `:port` after an IPv6 reference, control characters in
    /// an other-scheme URI.
    TrailingGarbage,
}

impl UriError {
    pub fn as_str(&self) -> &'static str {
        match self {
            UriError::Empty => "empty URI",
            UriError::BadScheme => "bad URI scheme",
            UriError::UnsupportedScheme => "unsupported URI scheme",
            UriError::BadUser => "bad URI user part",
            UriError::BadPassword => "bad URI password",
            UriError::BadHost => "bad URI host",
            UriError::BadPort => "bad URI port",
            UriError::BadParams => "bad URI parameters",
            UriError::BadHeaders => "bad URI headers",
            UriError::BadEscape => "bad %-escape in URI",
            UriError::Whitespace => "whitespace inside URI",
            UriError::TrailingGarbage => "trailing garbage after URI",
        }
    }
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for UriError {}

/// Most uri-parameters (or tel: parameters) a URI may carry. Real URIs
/// carry a handful; the bound keeps [`uri_eq`], which is quadratic in the
/// parameter count, cheap on hostile input (DESIGN.md principle 4).
pub const MAX_URI_PARAMS: usize = 64;

/// Most `name=value` pairs in a URI's headers component, for the same reason.
pub const MAX_URI_HEADERS: usize = 32;

// ---- character classes (RFC 3261 §25.1, RFC 3966 §3) ----

#[inline]
const fn is_mark(b: u8) -> bool {
    matches!(
        b,
        b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
    )
}

#[inline]
const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || is_mark(b)
}

/// `user = 1*( unreserved / escaped / user-unreserved )`.
#[inline]
const fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

/// `password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )`.
#[inline]
const fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}

/// `paramchar = param-unreserved / unreserved / escaped`.
#[inline]
const fn is_param_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

/// `hname`/`hvalue` characters: `hnv-unreserved / unreserved / escaped`.
#[inline]
const fn is_header_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

/// RFC 2396 `reserved`: these differ from their escaped form when comparing
/// (RFC 3261 §19.1.4).
#[inline]
const fn is_reserved(b: u8) -> bool {
    matches!(
        b,
        b';' | b'/' | b'?' | b':' | b'@' | b'&' | b'=' | b'+' | b'$' | b','
    )
}

/// RFC 3966 `visual-separator`.
#[inline]
const fn is_visual_separator(b: u8) -> bool {
    matches!(b, b'-' | b'.' | b'(' | b')')
}

#[inline]
const fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes the byte at `*i`, advancing past it: `(byte, was_escaped)`.
/// `Some(Err(()))` on a malformed escape (and `*i` is left unchanged).
#[inline]
fn decode_at(s: &[u8], i: &mut usize) -> Option<Result<(u8, bool), ()>> {
    let b = *s.get(*i)?;
    if b != b'%' {
        *i += 1;
        return Some(Ok((b, false)));
    }
    let hi = s.get(*i + 1).and_then(|&h| hex_val(h));
    let lo = s.get(*i + 2).and_then(|&l| hex_val(l));
    match (hi, lo) {
        (Some(h), Some(l)) => {
            *i += 3;
            Some(Ok((h << 4 | l, true)))
        }
        _ => Some(Err(())),
    }
}

/// Character classes as bits of [`CLASS`]: one table load per byte instead
/// of a chain of range tests.
const USER: u8 = 1;
const PASSWORD: u8 = 2;
const PARAM: u8 = 4;
const HEADER: u8 = 8;
/// LWS, `<` and `>`: never inside a URI (checked once over the whole URI).
const NOT_IN_URI: u8 = 16;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if is_user_char(b) {
            c |= USER;
        }
        if is_password_char(b) {
            c |= PASSWORD;
        }
        if is_param_char(b) {
            c |= PARAM;
        }
        if is_header_char(b) {
            c |= HEADER;
        }
        if is_lws(b) || b == b'<' || b == b'>' {
            c |= NOT_IN_URI;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// [`check_escaped`] for one class of [`CLASS`]: most parts have no escape
/// at all, and one AND per byte settles them.
#[inline]
fn check_class(s: &[u8], class: u8, err: UriError) -> Result<(), UriError> {
    if s.iter().fold(class, |ok, &b| ok & CLASS[usize::from(b)]) != 0 {
        return Ok(());
    }
    check_escaped(s, |b| CLASS[usize::from(b)] & class != 0, err)
}

/// Checks that `s` holds only `allowed` characters and well-formed escapes.
fn check_escaped(s: &[u8], allowed: impl Fn(u8) -> bool, err: UriError) -> Result<(), UriError> {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let ok = matches!(
                (s.get(i + 1), s.get(i + 2)),
                (Some(&h), Some(&l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit()
            );
            if !ok {
                return Err(UriError::BadEscape);
            }
            i += 3;
        } else if allowed(b) {
            i += 1;
        } else {
            return Err(err);
        }
    }
    Ok(())
}

// ---- unescaping and escaped comparison ----

/// Decoded bytes of an RFC 3261 §25.1 escaped string, without allocating:
/// `"%41b"` yields `Ok(b'A')`, `Ok(b'b')`. A malformed escape yields one
/// `Err(UriError::BadEscape)` and ends the iteration. Decoding is done once:
/// `"%2541"` yields `%`, `4`, `1`.
pub fn unescape(s: &[u8]) -> Unescape<'_> {
    Unescape {
        s,
        i: 0,
        done: false,
    }
}

/// Iterator returned by [`unescape`].
#[derive(Clone, Debug)]
pub struct Unescape<'a> {
    s: &'a [u8],
    i: usize,
    done: bool,
}

impl Iterator for Unescape<'_> {
    type Item = Result<u8, UriError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match decode_at(self.s, &mut self.i) {
            Some(Ok((b, _))) => Some(Ok(b)),
            Some(Err(())) => {
                self.done = true;
                Some(Err(UriError::BadEscape))
            }
            None => {
                self.done = true;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.s.len().saturating_sub(self.i);
        if self.done {
            (0, Some(0))
        } else {
            (left.div_ceil(3), Some(left))
        }
    }
}

impl core::iter::FusedIterator for Unescape<'_> {}

/// Compares two escaped strings after unescaping (RFC 3261 §19.1.4):
/// `%61lice` equals `alice`, but an escaped RFC 2396 reserved character
/// (`;/?:@&=+$,`) does not equal its literal form (`a%3Bb` ≠ `a;b`).
/// ASCII case is ignored when `case_insensitive`. False when either side has
/// a malformed escape.
pub fn eq_escaped(a: &[u8], b: &[u8], case_insensitive: bool) -> bool {
    // Fast path: identical bytes are equal when every escape is well formed.
    if a == b {
        return check_escaped(a, |_| true, UriError::BadEscape).is_ok();
    }
    let (mut i, mut j) = (0, 0);
    loop {
        match (decode_at(a, &mut i), decode_at(b, &mut j)) {
            (None, None) => return true,
            (Some(Ok((x, ex))), Some(Ok((y, ey)))) => {
                let same = if case_insensitive {
                    x.eq_ignore_ascii_case(&y)
                } else {
                    x == y
                };
                if !same || (ex != ey && is_reserved(x)) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

// ---- parsing ----

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &[u8]) -> bool {
    match s.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphabetic()
                && rest
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        }
        None => false,
    }
}

/// `port = 1*DIGIT`, here 1..=65535 (port 0 cannot be sent to).
fn parse_port(s: &[u8]) -> Result<u16, UriError> {
    host::parse_port(s).ok_or(UriError::BadPort)
}

/// `hostport = host [ ":" port ]`. Returns the host, its raw bytes and the port.
fn parse_hostport(hp: &[u8]) -> Result<(Host<'_>, &[u8], Option<u16>), UriError> {
    if let Some(inner) = hp.strip_prefix(b"[") {
        let close = inner
            .iter()
            .position(|&b| b == b']')
            .ok_or(UriError::BadHost)?;
        let addr = inner
            .get(..close)
            .and_then(host::parse_ipv6)
            .ok_or(UriError::BadHost)?;
        let after = inner.get(close + 1..).unwrap_or(&[]);
        let host_raw = hp.get(..close + 2).unwrap_or(hp);
        let port = match after.split_first() {
            None => None,
            Some((b':', p)) => Some(parse_port(p)?),
            Some(_) => return Err(UriError::TrailingGarbage),
        };
        return Ok((Host::V6(addr), host_raw, port));
    }
    let (h, port) = match hp.iter().position(|&b| b == b':') {
        Some(i) => {
            let p = hp.get(i + 1..).unwrap_or(&[]);
            if p.contains(&b':') {
                // An IPv6 address without brackets (RFC 5118 §4.2).
                return Err(UriError::BadHost);
            }
            (hp.get(..i).unwrap_or(&[]), Some(parse_port(p)?))
        }
        None => (hp, None),
    };
    let host = if let Some(a) = host::parse_ipv4(h) {
        Host::V4(a)
    } else if host::is_hostname(h) {
        Host::Name(h)
    } else {
        return Err(UriError::BadHost);
    };
    Ok((host, h, port))
}

/// `uri-parameters = *( ";" pname [ "=" pvalue ] )` with
/// `pname = 1*paramchar`, `pvalue = 1*paramchar`. `raw` is empty or starts
/// with `;`. For `tel:` (RFC 3966) `pname` is `1*( alphanum / "-" )`.
fn check_params(raw: &[u8], tel: bool) -> Result<(), UriError> {
    let Some(body) = raw.strip_prefix(b";") else {
        return if raw.is_empty() {
            Ok(())
        } else {
            Err(UriError::BadParams)
        };
    };
    for (n, elem) in body.split(|&b| b == b';').enumerate() {
        if n >= MAX_URI_PARAMS {
            return Err(UriError::BadParams);
        }
        let (name, value) = match elem.iter().position(|&b| b == b'=') {
            Some(i) => (
                elem.get(..i).unwrap_or(&[]),
                Some(elem.get(i + 1..).unwrap_or(&[])),
            ),
            None => (elem, None),
        };
        if name.is_empty() || value.is_some_and(<[u8]>::is_empty) {
            return Err(UriError::BadParams);
        }
        if tel {
            if !name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(UriError::BadParams);
            }
        } else {
            check_class(name, PARAM, UriError::BadParams)?;
        }
        if let Some(v) = value {
            check_class(v, PARAM, UriError::BadParams)?;
        }
    }
    Ok(())
}

/// `headers = "?" header *( "&" header )`, `header = hname "=" hvalue`,
/// `hname` non-empty; `raw` is what follows the `?`.
fn check_headers(raw: &[u8]) -> Result<(), UriError> {
    for (n, h) in raw.split(|&b| b == b'&').enumerate() {
        if n >= MAX_URI_HEADERS {
            return Err(UriError::BadHeaders);
        }
        let eq = h
            .iter()
            .position(|&b| b == b'=')
            .ok_or(UriError::BadHeaders)?;
        let (name, value) = (h.get(..eq).unwrap_or(&[]), h.get(eq + 1..).unwrap_or(&[]));
        if name.is_empty() {
            return Err(UriError::BadHeaders);
        }
        check_class(name, HEADER, UriError::BadHeaders)?;
        check_class(value, HEADER, UriError::BadHeaders)?;
    }
    Ok(())
}

/// RFC 3966 `global-number-digits` (`"+" *phonedigit DIGIT *phonedigit`) or
/// `local-number-digits` (`*phonedigit-hex (HEXDIG / "*" / "#")
/// *phonedigit-hex`).
fn is_tel_number(n: &[u8]) -> bool {
    match n.strip_prefix(b"+") {
        Some(global) => {
            global
                .iter()
                .all(|&b| b.is_ascii_digit() || is_visual_separator(b))
                && global.iter().any(u8::is_ascii_digit)
        }
        None => {
            let digit = |b: u8| b.is_ascii_hexdigit() || b == b'*' || b == b'#';
            n.iter().all(|&b| digit(b) || is_visual_separator(b)) && n.iter().any(|&b| digit(b))
        }
    }
}

impl<'a> Uri<'a> {
    /// Parses a sip, sips or tel URI, or any other `absoluteURI`, of which
    /// only `scheme ":" rest` is checked (rest non-empty, no whitespace, no
    /// control characters, no `<` or `>`). Surrounding LWS is ignored.
    pub fn parse(s: &'a [u8]) -> Result<Uri<'a>, UriError> {
        let s = trim(s);
        match Uri::parse_sip_common(s) {
            Some(u) => Ok(u),
            None => Uri::parse_general(s),
        }
    }

    /// [`Uri::parse`] for every shape, errors included.
    fn parse_general(s: &'a [u8]) -> Result<Uri<'a>, UriError> {
        let s = trim(s);
        if s.is_empty() {
            return Err(UriError::Empty);
        }
        // One pass tells whether the LWS and `<>` checks below can fail.
        let clean = s.iter().fold(0, |acc, &b| acc | CLASS[usize::from(b)]) & NOT_IN_URI == 0;
        // RFC 4475 §3.1.2.8 lwsruri: no LWS anywhere inside.
        if !clean && s.iter().any(|&b| is_lws(b)) {
            return Err(UriError::Whitespace);
        }
        let colon = s
            .iter()
            .position(|&b| b == b':')
            .ok_or(UriError::BadScheme)?;
        let scheme_raw = s.get(..colon).unwrap_or(&[]);
        // RFC 4475 §3.1.2.7 ltgtruri: `<sip:...>` fails here.
        if !is_scheme(scheme_raw) {
            return Err(UriError::BadScheme);
        }
        let rest = s.get(colon + 1..).unwrap_or(&[]);
        if !clean && rest.iter().any(|&b| b == b'<' || b == b'>') {
            return Err(UriError::TrailingGarbage);
        }
        let scheme = if eq_ic(scheme_raw, b"sip") {
            Scheme::Sip
        } else if eq_ic(scheme_raw, b"sips") {
            Scheme::Sips
        } else if eq_ic(scheme_raw, b"tel") {
            Scheme::Tel
        } else {
            Scheme::Other
        };
        let mut uri = Uri {
            raw: s,
            scheme,
            scheme_raw,
            user: None,
            password: None,
            host: None,
            host_raw: &[],
            port: None,
            params: Params::default(),
            headers: None,
        };
        match scheme {
            Scheme::Sip | Scheme::Sips => uri.parse_sip_rest(rest)?,
            Scheme::Tel => uri.parse_tel_rest(rest)?,
            Scheme::Other => {
                if rest.is_empty() {
                    return Err(UriError::BadScheme);
                }
                if rest.iter().any(|&b| b < 0x20 || b == 0x7f) {
                    return Err(UriError::TrailingGarbage);
                }
            }
        }
        Ok(uri)
    }

    /// The usual shape of a sip or sips URI, in one pass: `[user "@"] host
    /// [":" port] *(";" param)` with no password, no escape in the user
    /// part, a host name or IPv4 literal, no headers. `None` for anything
    /// else, and [`Uri::parse`] takes the general path, so both agree on
    /// whatever this accepts (a proptest checks it). `s` is trimmed.
    #[inline]
    pub(crate) fn parse_sip_common(s: &'a [u8]) -> Option<Uri<'a>> {
        let (scheme, k) = match s.get(..5) {
            Some(p) if p[..4].eq_ignore_ascii_case(b"sip:") => (Scheme::Sip, 4),
            Some(p) if p.eq_ignore_ascii_case(b"sips:") => (Scheme::Sips, 5),
            _ => return None,
        };
        let rest = &s[k..];
        // The user part: user characters up to the first '@' (which is the
        // first '@' of the URI, '@' being no user character).
        let mut i = 0;
        while rest
            .get(i)
            .is_some_and(|&b| CLASS[usize::from(b)] & USER != 0)
        {
            i += 1;
        }
        let (user, host_start) = if i > 0 && rest.get(i) == Some(&b'@') {
            (Some(&rest[..i]), i + 1)
        } else {
            (None, 0)
        };
        let (host, mut j) = host::scan_host(rest, host_start)?;
        let host_raw = &rest[host_start..j];
        let mut port = None;
        if rest.get(j) == Some(&b':') {
            let p = j + 1;
            j = p;
            while rest.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            port = Some(host::parse_port(&rest[p..j])?);
        }
        let params = &rest[j..];
        if !(params.is_empty() || params[0] == b';') || find_of(params, 0, [b'?']).is_some() {
            return None;
        }
        check_params(params, false).ok()?;
        Some(Uri {
            raw: s,
            scheme,
            scheme_raw: &s[..k - 1],
            user,
            password: None,
            host: Some(host),
            host_raw,
            port,
            params: Params::new(params),
            headers: None,
        })
    }

    /// Like [`Uri::parse`], but a well-formed URI of another scheme is
    /// `Err(UnsupportedScheme)` (RFC 4475 §3.3.2 unkscm: answer 416).
    pub fn parse_sip(s: &'a [u8]) -> Result<Uri<'a>, UriError> {
        let uri = Uri::parse(s)?;
        if uri.scheme == Scheme::Other {
            return Err(UriError::UnsupportedScheme);
        }
        Ok(uri)
    }

    /// `[ userinfo ] hostport uri-parameters [ headers ]` after `sip:`.
    fn parse_sip_rest(&mut self, rest: &'a [u8]) -> Result<(), UriError> {
        // '@' is legal only as the end of userinfo: user, password,
        // host, parameters and headers must all escape it. So the first
        // '@' ends the userinfo, even when ';' or '?' come before it
        // (RFC 4475 §3.1.1.9 semiuri, §3.1.1.2 intmeth).
        let after = match find_of(rest, 0, [b'@']) {
            Some(at) => {
                let userinfo = rest.get(..at).unwrap_or(&[]);
                let (user, password) = match userinfo.iter().position(|&b| b == b':') {
                    Some(c) => (
                        userinfo.get(..c).unwrap_or(&[]),
                        Some(userinfo.get(c + 1..).unwrap_or(&[])),
                    ),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(UriError::BadUser);
                }
                check_class(user, USER, UriError::BadUser)?;
                if let Some(p) = password {
                    check_class(p, PASSWORD, UriError::BadPassword)?;
                }
                self.user = Some(user);
                self.password = password;
                rest.get(at + 1..).unwrap_or(&[])
            }
            None => rest,
        };
        let hp_end = find_of(after, 0, [b';', b'?']).unwrap_or(after.len());
        let (hostport, tail) = after.split_at(hp_end);
        let (host, host_raw, port) = parse_hostport(hostport)?;
        self.host = Some(host);
        self.host_raw = host_raw;
        self.port = port;
        let (params, headers) = match find_of(tail, 0, [b'?']) {
            Some(q) => (
                tail.get(..q).unwrap_or(&[]),
                Some(tail.get(q + 1..).unwrap_or(&[])),
            ),
            None => (tail, None),
        };
        check_params(params, false)?;
        if let Some(h) = headers {
            check_headers(h)?;
        }
        self.params = Params::new(params);
        self.headers = headers;
        Ok(())
    }

    /// `telephone-subscriber` after `tel:` (RFC 3966 §3).
    fn parse_tel_rest(&mut self, rest: &'a [u8]) -> Result<(), UriError> {
        let end = memchr(b';', rest).unwrap_or(rest.len());
        let (number, params) = rest.split_at(end);
        if !is_tel_number(number) {
            return Err(UriError::BadUser);
        }
        check_params(params, true)?;
        self.user = Some(number);
        self.params = Params::new(params);
        Ok(())
    }

    /// sip or sips.
    pub fn is_sip_like(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// The first parameter named `name`, compared case-insensitively after
    /// unescaping (so `;%6C%72` is `lr`, RFC 4475 §3.1.1.3 esc01). The value
    /// is raw; `Some(None)` when the parameter has no value.
    pub fn param(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.params
            .into_iter()
            .find(|p| eq_escaped(p.name, name, true))
            .map(|p| p.value)
    }

    /// The `lr` parameter (RFC 3261 §19.1.1, loose routing).
    pub fn lr(&self) -> bool {
        self.param(b"lr").is_some()
    }

    pub fn transport(&self) -> Option<&'a [u8]> {
        self.param(b"transport").flatten()
    }

    pub fn maddr(&self) -> Option<&'a [u8]> {
        self.param(b"maddr").flatten()
    }

    /// The `user` parameter (`;user=phone`, `;user=ip`).
    pub fn user_param(&self) -> Option<&'a [u8]> {
        self.param(b"user").flatten()
    }

    /// The `method` parameter.
    pub fn method_param(&self) -> Option<&'a [u8]> {
        self.param(b"method").flatten()
    }

    /// The `ttl` parameter when it is a valid `ttl` (1*3DIGIT, 0..=255).
    pub fn ttl(&self) -> Option<u8> {
        let v = self.param(b"ttl").flatten()?;
        if v.is_empty() || v.len() > 3 || !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = v.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        u8::try_from(n).ok()
    }

    /// 5061 for sips or `transport=tls`, else 5060 (RFC 3261 §19.1.2).
    pub fn default_port(&self) -> u16 {
        let tls = self
            .transport()
            .is_some_and(|t| eq_escaped(t, b"tls", true));
        if self.scheme == Scheme::Sips || tls {
            5061
        } else {
            5060
        }
    }

    /// The explicit port or [`Uri::default_port`].
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or_else(|| self.default_port())
    }

    /// The `name=value` pairs of the headers component, raw.
    pub fn header_fields(&self) -> HeaderFields<'a> {
        HeaderFields { rest: self.headers }
    }

    /// Everything after `scheme:`, raw (the opaque part of other schemes).
    pub fn rest(&self) -> &'a [u8] {
        self.raw.get(self.scheme_raw.len() + 1..).unwrap_or(&[])
    }
}

/// Iterator over the `hname=hvalue` pairs after `?`, from
/// [`Uri::header_fields`]. A pair without `=` yields an empty value.
#[derive(Clone, Debug)]
pub struct HeaderFields<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for HeaderFields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest?;
        let (h, rest) = match s.iter().position(|&b| b == b'&') {
            Some(i) => (s.get(..i).unwrap_or(&[]), s.get(i + 1..)),
            None => (s, None),
        };
        self.rest = rest;
        Some(match h.iter().position(|&b| b == b'=') {
            Some(i) => (h.get(..i).unwrap_or(&[]), h.get(i + 1..).unwrap_or(&[])),
            None => (h, &[]),
        })
    }
}

// ---- comparison ----

/// RFC 3261 §19.1.4 URI comparison.
///
/// sip/sips: same scheme; user and password equal case-sensitively after
/// unescaping; host equal case-insensitively (an IP address never equals a
/// name, addresses compare as addresses per RFC 5954 §4); same port (an
/// omitted port never equals an explicit one); parameters present on both
/// sides equal (case-insensitive, unescaped); `transport`, `user`, `ttl`,
/// `method` and `maddr` present on one side only make them differ, other
/// one-sided parameters are ignored; headers the same set on both sides.
///
/// tel: the numbers equal ignoring visual separators, and the same
/// parameters with equal values on both sides (RFC 3966 §4). Other schemes:
/// scheme case-insensitive, the rest byte for byte.
pub fn uri_eq(a: &Uri, b: &Uri) -> bool {
    if a.scheme != b.scheme {
        return false;
    }
    match a.scheme {
        Scheme::Sip | Scheme::Sips => sip_eq(a, b),
        Scheme::Tel => {
            tel_number_eq(a.user.unwrap_or(&[]), b.user.unwrap_or(&[]))
                && params_covered(a.params, b.params, |_| true)
                && params_covered(b.params, a.params, |_| true)
        }
        Scheme::Other => eq_ic(a.scheme_raw, b.scheme_raw) && a.rest() == b.rest(),
    }
}

fn opt_eq_escaped(a: Option<&[u8]>, b: Option<&[u8]>, ci: bool) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => eq_escaped(x, y, ci),
        _ => false,
    }
}

fn sip_eq(a: &Uri, b: &Uri) -> bool {
    let host_eq = match (a.host, b.host) {
        (Some(Host::V4(x)), Some(Host::V4(y))) => x == y,
        (Some(Host::V6(x)), Some(Host::V6(y))) => x == y,
        (Some(Host::Name(x)), Some(Host::Name(y))) => eq_ic(x, y),
        (None, None) => eq_ic(a.host_raw, b.host_raw),
        _ => false,
    };
    host_eq
        && a.port == b.port
        && opt_eq_escaped(a.user, b.user, false)
        && opt_eq_escaped(a.password, b.password, false)
        && params_covered(a.params, b.params, is_sticky_param)
        && params_covered(b.params, a.params, is_sticky_param)
        && headers_eq(a, b)
}

/// Parameters that make two URIs differ when only one side has them.
fn is_sticky_param(name: &[u8]) -> bool {
    [&b"transport"[..], b"user", b"ttl", b"method", b"maddr"]
        .iter()
        .any(|s| eq_escaped(name, s, true))
}

/// True when every parameter of `x` (first occurrence of each name) equals
/// the same-named parameter of `y`, and every `x` parameter missing from
/// `y` is allowed to be missing (`sticky` false for it).
fn params_covered(x: Params, y: Params, sticky: fn(&[u8]) -> bool) -> bool {
    for (k, p) in x.into_iter().enumerate() {
        let repeated = x
            .into_iter()
            .take(k)
            .any(|e| eq_escaped(e.name, p.name, true));
        if repeated {
            continue;
        }
        match y.into_iter().find(|q| eq_escaped(q.name, p.name, true)) {
            Some(q) => {
                if !opt_eq_escaped(p.value, q.value, true) {
                    return false;
                }
            }
            None => {
                if sticky(p.name) {
                    return false;
                }
            }
        }
    }
    true
}

fn headers_eq(a: &Uri, b: &Uri) -> bool {
    match (a.headers, b.headers) {
        (None, None) => true,
        (Some(_), Some(_)) => {
            let same = |(n1, v1): (&[u8], &[u8]), (n2, v2): (&[u8], &[u8])| {
                eq_escaped(n1, n2, true) && eq_escaped(v1, v2, true)
            };
            a.header_fields().count() == b.header_fields().count()
                && a.header_fields()
                    .all(|h| b.header_fields().any(|g| same(h, g)))
                && b.header_fields()
                    .all(|h| a.header_fields().any(|g| same(h, g)))
        }
        _ => false,
    }
}

/// RFC 3966 §4: numbers compare digit by digit, visual separators ignored,
/// hex digits case-insensitive.
fn tel_number_eq(a: &[u8], b: &[u8]) -> bool {
    let mut x = a.iter().filter(|&&c| !is_visual_separator(c));
    let mut y = b.iter().filter(|&&c| !is_visual_separator(c));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(c), Some(d)) if c.eq_ignore_ascii_case(d) => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    type Case = (
        &'static str, // RFC section
        &'static str, // input
        Scheme,
        Option<&'static str>, // user
        Option<&'static str>, // password
        &'static str,         // host_raw
        Option<u16>,          // port
        &'static str,         // params raw
        Option<&'static str>, // headers
    );

    /// (section, input, decoded bytes or index of the failing escape)
    type UnescapeCase = (&'static str, &'static [u8], Result<&'static [u8], usize>);
    /// (section, a, b, case_insensitive, equal)
    type EqCase = (&'static str, &'static [u8], &'static [u8], bool, bool);

    const S: Scheme = Scheme::Sip;
    const SS: Scheme = Scheme::Sips;
    const T: Scheme = Scheme::Tel;
    const O: Scheme = Scheme::Other;

    #[rustfmt::skip]
    const VALID: &[Case] = &[
        // RFC 3261 §19.1.3 examples
        ("RFC 3261 §19.1.3", "sip:alice@atlanta.com", S, Some("alice"), None, "atlanta.com", None, "", None),
        ("RFC 3261 §19.1.3", "sip:alice:secretword@atlanta.com;transport=tcp", S, Some("alice"), Some("secretword"), "atlanta.com", None, ";transport=tcp", None),
        ("RFC 3261 §19.1.3", "sips:alice@atlanta.com?subject=project%20x&priority=urgent", SS, Some("alice"), None, "atlanta.com", None, "", Some("subject=project%20x&priority=urgent")),
        ("RFC 3261 §19.1.3", "sip:+1-212-555-1212:1234@gateway.com;user=phone", S, Some("+1-212-555-1212"), Some("1234"), "gateway.com", None, ";user=phone", None),
        ("RFC 3261 §19.1.3", "sips:1212@gateway.com", SS, Some("1212"), None, "gateway.com", None, "", None),
        ("RFC 3261 §19.1.3", "sip:alice@192.0.2.4", S, Some("alice"), None, "192.0.2.4", None, "", None),
        ("RFC 3261 §19.1.3", "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com", S, None, None, "atlanta.com", None, ";method=REGISTER", Some("to=alice%40atlanta.com")),
        ("RFC 3261 §19.1.3", "sip:alice;day=tuesday@atlanta.com", S, Some("alice;day=tuesday"), None, "atlanta.com", None, "", None),
        // RFC 3261 §19.1.1: scheme case-insensitive, empty password, port
        ("RFC 3261 §19.1.4", "SIP:ALICE@AtLanTa.CoM;Transport=udp", S, Some("ALICE"), None, "AtLanTa.CoM", None, ";Transport=udp", None),
        ("RFC 3261 §25.1 password", "sip:user:@host.example.com", S, Some("user"), Some(""), "host.example.com", None, "", None),
        ("RFC 3261 §25.1 port", "sip:host.example.com:1", S, None, None, "host.example.com", Some(1), "", None),
        ("RFC 3261 §25.1 port", "sip:host.example.com:65535", S, None, None, "host.example.com", Some(65535), "", None),
        ("RFC 3261 §25.1 port = 1*DIGIT", "sip:h.example.com:05060", S, None, None, "h.example.com", Some(5060), "", None),
        ("RFC 3261 §25.1 hostname [\".\"]", "sip:u@example.com.", S, Some("u"), None, "example.com.", None, "", None),
        ("RFC 3261 §25.1 hostname", "sip:a-1.b2.c-d", S, None, None, "a-1.b2.c-d", None, "", None),
        ("RFC 3261 §25.1 IPv4address", "sip:1.2.3.4:5070;lr", S, None, None, "1.2.3.4", Some(5070), ";lr", None),
        ("RFC 3261 §19.1.1 other-transport", "sip:t4.example.com;transport=UNKNOWN", S, None, None, "t4.example.com", None, ";transport=UNKNOWN", None),
        // RFC 4475 valid and semantic cases (URIs taken from the messages)
        ("RFC 4475 §3.1.1.1 wsinv", "sip:vivekg@chair-dnrc.example.com;unknownparam", S, Some("vivekg"), None, "chair-dnrc.example.com", None, ";unknownparam", None),
        ("RFC 4475 §3.1.1.2 intmeth", "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com", S, Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"), Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"), "example.com", None, "", None),
        ("RFC 4475 §3.1.1.3 esc01", "sip:sips%3Auser%40example.com@example.net", S, Some("sips%3Auser%40example.com"), None, "example.net", None, "", None),
        ("RFC 4475 §3.1.1.3 esc01", "sip:%75se%72@example.com", S, Some("%75se%72"), None, "example.com", None, "", None),
        ("RFC 4475 §3.1.1.3 esc01", "sip:I%20have%20spaces@example.net", S, Some("I%20have%20spaces"), None, "example.net", None, "", None),
        ("RFC 4475 §3.1.1.3 esc01", "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31", S, Some("cal%6Cer"), None, "host5.example.net", None, ";%6C%72;n%61me=v%61lue%25%34%31", None),
        ("RFC 4475 §3.1.1.4 escnull", "sip:null-%00-null@example.com", S, Some("null-%00-null"), None, "example.com", None, "", None),
        ("RFC 4475 §3.1.1.4 escnull", "sip:%00%00@host5.example.com", S, Some("%00%00"), None, "host5.example.com", None, "", None),
        ("RFC 4475 §3.1.1.7 longreq", "sip:user@example.com:6000;unknownparam1=verylonglonglongvalue;longparamnamenamename=shortvalue;verylongParameterNameWithNoValue", S, Some("user"), None, "example.com", Some(6000), ";unknownparam1=verylonglonglongvalue;longparamnamenamename=shortvalue;verylongParameterNameWithNoValue", None),
        ("RFC 4475 §3.1.1.9 semiuri", "sip:user;par=u%40example.net@example.com", S, Some("user;par=u%40example.net"), None, "example.com", None, "", None),
        ("RFC 4475 §3.1.2.11 escruri (URI-level valid)", "sip:user@example.com?Route=%3Csip:example.com%3E", S, Some("user"), None, "example.com", None, "", Some("Route=%3Csip:example.com%3E")),
        ("RFC 4475 §3.3.4 unksm2", "isbn:2983792873", O, None, None, "", None, "", None),
        ("RFC 4475 §3.3.4 unksm2", "http://www.example.com", O, None, None, "", None, "", None),
        ("RFC 4475 §3.3.4 unksm2", "name:John_Smith", O, None, None, "", None, "", None),
        ("RFC 4475 §3.3.2 unkscm", "nobodyKnowsThisScheme:totallyopaquecontent", O, None, None, "", None, "", None),
        ("RFC 4475 §3.3.3 novelsc", "soap.beep://192.0.2.103:3002", O, None, None, "", None, "", None),
        ("RFC 4475 §3.3.10 bcast (its address as a host)", "sip:user@255.255.255.255", S, Some("user"), None, "255.255.255.255", None, "", None),
        ("RFC 4475 §3.3.12 cparam01", "sip:+19725552222@gw1.example.net;unknownparam", S, Some("+19725552222"), None, "gw1.example.net", None, ";unknownparam", None),
        ("RFC 4475 §3.3.14 regescrt", "sip:user@example.com?Route=%3Csip:sip.example.com%3E", S, Some("user"), None, "example.com", None, "", Some("Route=%3Csip:sip.example.com%3E")),
        ("RFC 4475 §3.4.1 inv2543", "sip:UserB@example.com;maddr=ss1.example.com", S, Some("UserB"), None, "example.com", None, ";maddr=ss1.example.com", None),
        ("RFC 4475 §3.4.1 inv2543", "sip:+13035551111@ift.client.example.net;user=phone", S, Some("+13035551111"), None, "ift.client.example.net", None, ";user=phone", None),
        // RFC 5118 IPv6 references
        ("RFC 5118 §4.1 ipv6-good", "sip:[2001:db8::10]", S, None, None, "[2001:db8::10]", None, "", None),
        ("RFC 5118 §4.3 port-ambiguous: no port", "sip:[2001:db8::10:5070]", S, None, None, "[2001:db8::10:5070]", None, "", None),
        ("RFC 5118 §4.4 port-unambiguous", "sip:[2001:db8::10]:5070", S, None, None, "[2001:db8::10]", Some(5070), "", None),
        ("RFC 5118 §4 maddr", "sip:[2001:db8::9:1];maddr=[2001:db8::9:255]", S, None, None, "[2001:db8::9:1]", None, ";maddr=[2001:db8::9:255]", None),
        ("RFC 5118 §4 IPv4-mapped", "sip:[::ffff:192.0.2.1]", S, None, None, "[::ffff:192.0.2.1]", None, "", None),
        ("RFC 5118 §4.10 / RFC 5954 two colons", "sip:user@[2001:db8::192.0.2.151]:5061;transport=tls", S, Some("user"), None, "[2001:db8::192.0.2.151]", Some(5061), ";transport=tls", None),
        // RFC 3966 tel
        ("RFC 3966 §6 global", "tel:+1-201-555-0123", T, Some("+1-201-555-0123"), None, "", None, "", None),
        ("RFC 3966 §6 local", "tel:7042;phone-context=example.com", T, Some("7042"), None, "", None, ";phone-context=example.com", None),
        ("RFC 3966 §6 local", "tel:863-1234;phone-context=+1-914-555", T, Some("863-1234"), None, "", None, ";phone-context=+1-914-555", None),
        ("RFC 3966 §5.1.5 ext", "TEL:+1-(201)-555.0123;ext=1234;isub=%41", T, Some("+1-(201)-555.0123"), None, "", None, ";ext=1234;isub=%41", None),
        ("RFC 3966 §3 local-number-digits", "tel:*21#AB;phone-context=example.com", T, Some("*21#AB"), None, "", None, ";phone-context=example.com", None),
        // trimming
        ("RFC 3261 §25.1 LWS around the URI", " \t sip:alice@atlanta.com \r\n", S, Some("alice"), None, "atlanta.com", None, "", None),
    ];

    #[test]
    fn valid_uris_fill_every_field() {
        for &(sec, input, scheme, user, password, host_raw, port, params, headers) in VALID {
            let u = Uri::parse(input.as_bytes())
                .unwrap_or_else(|e| panic!("{sec}: {input:?} rejected: {e}"));
            let b = |s: Option<&'static str>| s.map(str::as_bytes);
            assert_eq!(u.raw, trim(input.as_bytes()), "{sec}: {input} raw");
            assert_eq!(u.scheme, scheme, "{sec}: {input} scheme");
            assert_eq!(
                u.scheme_raw,
                input.trim().split(':').next().unwrap().as_bytes(),
                "{sec}"
            );
            assert_eq!(u.user, b(user), "{sec}: {input} user");
            assert_eq!(u.password, b(password), "{sec}: {input} password");
            assert_eq!(u.host_raw, host_raw.as_bytes(), "{sec}: {input} host_raw");
            assert_eq!(u.host.is_some(), u.is_sip_like(), "{sec}: {input} host");
            assert_eq!(u.port, port, "{sec}: {input} port");
            assert_eq!(u.params.raw(), params.as_bytes(), "{sec}: {input} params");
            assert_eq!(u.headers, b(headers), "{sec}: {input} headers");
            assert!(uri_eq(&u, &u), "{sec}: {input} not equal to itself");
            match scheme {
                Scheme::Other => {
                    assert_eq!(
                        Uri::parse_sip(input.as_bytes()).unwrap_err(),
                        UriError::UnsupportedScheme
                    )
                }
                _ => assert!(Uri::parse_sip(input.as_bytes()).is_ok(), "{sec}"),
            }
        }
    }

    #[test]
    fn host_kinds_rfc3261_25_1_rfc5118() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, Host)] = &[
            ("RFC 3261 §25.1 hostname", "sip:Example.COM", Host::Name(b"Example.COM")),
            ("RFC 3261 §25.1 IPv4address", "sip:192.0.2.4:5060", Host::V4(Ipv4Addr::new(192, 0, 2, 4))),
            ("RFC 3261 §25.1 IPv4address 1*3DIGIT", "sip:010.0.0.1", Host::V4(Ipv4Addr::new(10, 0, 0, 1))),
            ("RFC 4475 §3.3.10 bcast", "sip:255.255.255.255", Host::V4(Ipv4Addr::BROADCAST)),
            ("RFC 3261 §25.1 digit domainlabels, ALPHA toplabel", "sip:1.2.3.x4", Host::Name(b"1.2.3.x4")),
            ("RFC 5118 §4.1", "sip:[2001:db8::10]", Host::V6("2001:db8::10".parse().unwrap())),
            ("RFC 5118 §4.3", "sip:[2001:db8::10:5070]", Host::V6("2001:db8::10:5070".parse().unwrap())),
            ("RFC 5118 §4 IPv4-mapped", "sip:[::ffff:192.0.2.1]", Host::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped())),
        ];
        for &(sec, input, host) in cases {
            let u = Uri::parse(input.as_bytes()).unwrap_or_else(|e| panic!("{sec}: {e}"));
            assert_eq!(u.host, Some(host), "{sec}: {input}");
            assert_eq!(host.is_ip(), !matches!(host, Host::Name(_)));
        }
    }

    #[test]
    fn invalid_uris_name_the_fault() {
        use UriError::*;
        #[rustfmt::skip]
        let cases: &[(&str, &[u8], UriError)] = &[
            ("empty", b"", Empty),
            ("empty after LWS trim", b" \r\n\t ", Empty),
            ("RFC 4475 §3.1.2.7 ltgtruri", b"<sip:user@example.com>", BadScheme),
            ("RFC 4475 §3.1.2.8 lwsruri", b"sip:user@example.com; lr", Whitespace),
            ("RFC 4475 §3.1.2.14 badaspec", b"sip:t.watson@example.org >", Whitespace),
            ("RFC 3261 §25.1 no LWS in URI", b"sip:us\ter@host", Whitespace),
            ("RFC 3261 §25.1 no LWS in URI", b"sip:user@ho\r\nst", Whitespace),
            ("'>' after the URI", b"sip:user@example.com>", TrailingGarbage),
            ("'<' inside", b"sip:us<er@example.com", TrailingGarbage),
            ("RFC 3261 §25.1 scheme", b"sip", BadScheme),
            ("RFC 3261 §25.1 scheme", b":user@host", BadScheme),
            ("RFC 3261 §25.1 scheme starts with ALPHA", b"1sip:host", BadScheme),
            ("RFC 3261 §25.1 scheme chars", b"s_p:host", BadScheme),
            ("RFC 3261 §25.1 absoluteURI needs a rest", b"foo:", BadScheme),
            ("RFC 3261 §25.1 CTL in absoluteURI", b"foo:a\x01b", TrailingGarbage),
            ("RFC 3261 §25.1 '<' in absoluteURI", b"foo:a<b", TrailingGarbage),
            ("RFC 3261 §25.1 LWS in absoluteURI", b"foo:a b", Whitespace),
            // userinfo
            ("RFC 3261 §19.1.1 user non-empty", b"sip:@example.com", BadUser),
            ("RFC 3261 §19.1.1 user non-empty", b"sip::pw@example.com", BadUser),
            ("RFC 3261 §25.1 user chars", b"sip:us\"er@example.com", BadUser),
            ("RFC 3261 §25.1 user chars", b"sip:us[er@example.com", BadUser),
            ("RFC 3261 §25.1 user chars (non-ASCII)", b"sip:us\xc3\xa9r@example.com", BadUser),
            ("RFC 3261 §25.1 password chars", b"sip:user:pa;ss@example.com", BadPassword),
            ("RFC 3261 §25.1 password chars", b"sip:user:pa:ss@example.com", BadPassword),
            ("RFC 3261 §25.1 only one '@'", b"sip:a@b@example.com", BadHost),
            // escapes
            ("RFC 3261 §25.1 escaped (RFC 4475 §3.1.1.5 esc02: only display names may hold a bare %)", b"sip:%Z%45@example.com", BadEscape),
            ("RFC 3261 §25.1 escaped: two hex digits", b"sip:us%4@example.com", BadEscape),
            ("RFC 3261 §25.1 escaped at end", b"sip:user%@example.com", BadEscape),
            ("RFC 3261 §25.1 escaped in password", b"sip:u:p%g0@example.com", BadEscape),
            ("RFC 3261 §25.1 escaped in params", b"sip:example.com;a=%4", BadEscape),
            ("RFC 3261 §25.1 escaped in headers", b"sip:example.com?a=%4g", BadEscape),
            // hosts
            ("RFC 3261 §25.1 host required", b"sip:", BadHost),
            ("RFC 3261 §25.1 host required", b"sip:user@", BadHost),
            ("RFC 3261 §25.1 host required", b"sip:user@;lr", BadHost),
            ("RFC 3261 §25.1 host required", b"sip:user@:5060", BadHost),
            ("RFC 3261 §25.1 IPv4 octet > 255, toplabel not ALPHA", b"sip:1.2.3.400", BadHost),
            ("RFC 3261 §25.1 IPv4 needs 4 octets", b"sip:1.2.3", BadHost),
            ("RFC 3261 §25.1 IPv4 needs 4 octets", b"sip:1.2.3.4.5", BadHost),
            ("RFC 3261 §25.1 IPv4 1*3DIGIT", b"sip:1.2.3.0004", BadHost),
            ("RFC 3261 §25.1 trailing dot after IPv4", b"sip:1.2.3.4.", BadHost),
            ("RFC 3261 §25.1 toplabel starts with ALPHA", b"sip:1.2.3.4x", BadHost),
            ("RFC 3261 §25.1 domainlabel starts alphanum", b"sip:-a.example.com", BadHost),
            ("RFC 3261 §25.1 domainlabel ends alphanum", b"sip:a-.example.com", BadHost),
            ("RFC 3261 §25.1 toplabel ends alphanum", b"sip:example.co-", BadHost),
            ("RFC 3261 §25.1 empty label", b"sip:a..example.com", BadHost),
            ("RFC 3261 §25.1 just a dot", b"sip:.", BadHost),
            ("RFC 3261 §25.1 no '_' in hostname", b"sip:ho_st.example.com", BadHost),
            ("RFC 3261 §25.1 no escapes in hostname", b"sip:ex%61mple.com", BadHost),
            ("RFC 5118 §4.2 ipv6-bad: unbracketed", b"sip:2001:db8::10", BadHost),
            ("RFC 5118 §4.10 / RFC 5954 three colons", b"sip:[2001:db8:::192.0.2.151]", BadHost),
            ("RFC 2732 unclosed bracket", b"sip:[2001:db8::10", BadHost),
            ("RFC 2732 not an IPv6 address", b"sip:[1.2.3.4]", BadHost),
            ("RFC 2732 empty brackets", b"sip:[]", BadHost),
            ("RFC 3261 §25.1 no zone id in IPv6reference", b"sip:[fe80::1%25eth0]", BadHost),
            ("RFC 2732 only :port after ']'", b"sip:[2001:db8::10]5070", TrailingGarbage),
            ("RFC 2732 only :port after ']'", b"sip:[2001:db8::10]]", TrailingGarbage),
            // ports
            ("RFC 3261 §25.1 port 0 not usable", b"sip:example.com:0", BadPort),
            ("RFC 3261 §25.1 port 0 not usable", b"sip:[::1]:00", BadPort),
            ("RFC 3261 §25.1 port > 65535", b"sip:example.com:65536", BadPort),
            ("RFC 3261 §25.1 port overflow", b"sip:example.com:99999999999999999999999", BadPort),
            ("RFC 3261 §25.1 port 1*DIGIT", b"sip:example.com:", BadPort),
            ("RFC 3261 §25.1 port 1*DIGIT", b"sip:example.com:5o60", BadPort),
            ("RFC 3261 §25.1 port 1*DIGIT", b"sip:example.com:-1", BadPort),
            ("RFC 3261 §25.1 port 1*DIGIT", b"sip:example.com:+5060", BadPort),
            ("RFC 3261 §25.1 port 1*DIGIT", b"sip:[::1]:", BadPort),
            // uri-parameters
            ("RFC 3261 §25.1 pname = 1*paramchar", b"sip:example.com;", BadParams),
            ("RFC 3261 §25.1 pname = 1*paramchar", b"sip:example.com;;lr", BadParams),
            ("RFC 3261 §25.1 pname = 1*paramchar", b"sip:example.com;=x", BadParams),
            ("RFC 3261 §25.1 pvalue = 1*paramchar", b"sip:example.com;a=", BadParams),
            ("RFC 3261 §25.1 paramchar", b"sip:example.com;a=b=c", BadParams),
            ("RFC 3261 §25.1 paramchar: no quotes", b"sip:example.com;a=\"b\"", BadParams),
            ("RFC 3261 §25.1 paramchar: no ','", b"sip:example.com;a=b,c", BadParams),
            // headers
            ("RFC 3261 §25.1 headers = \"?\" header", b"sip:example.com?", BadHeaders),
            ("RFC 3261 §25.1 header = hname \"=\" hvalue", b"sip:example.com?subject", BadHeaders),
            ("RFC 3261 §25.1 hname non-empty", b"sip:example.com?=x", BadHeaders),
            ("RFC 3261 §25.1 empty header after '&'", b"sip:example.com?a=b&", BadHeaders),
            ("RFC 3261 §25.1 hvalue chars", b"sip:example.com?a=b;c", BadHeaders),
            // tel
            ("RFC 3966 §3 number required", b"tel:", BadUser),
            ("RFC 3966 §3 global needs a DIGIT", b"tel:+", BadUser),
            ("RFC 3966 §3 global needs a DIGIT", b"tel:+-()", BadUser),
            ("RFC 3966 §3 global is decimal", b"tel:+1a", BadUser),
            ("RFC 3966 §3 local needs a digit", b"tel:--", BadUser),
            ("RFC 3966 §3 no userinfo/host", b"tel:123@example.com", BadUser),
            ("RFC 3966 §3 no headers", b"tel:123?a=b", BadUser),
            ("RFC 3966 §3 pname", b"tel:+123;a_b=1", BadParams),
            ("RFC 3966 §3 empty par", b"tel:+123;", BadParams),
            ("RFC 3966 §3 pvalue", b"tel:+123;ext=", BadParams),
        ];
        for &(sec, input, err) in cases {
            assert_eq!(
                Uri::parse(input).map(|u| u.raw),
                Err(err),
                "{sec}: {:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(Uri::parse_sip(input).map(|u| u.raw), Err(err), "{sec}");
            assert!(!err.as_str().is_empty());
            assert_eq!(err.to_string(), err.as_str());
        }
    }

    #[test]
    fn parameter_and_header_counts_are_bounded() {
        let mut s = String::from("sip:h");
        for i in 0..MAX_URI_PARAMS {
            s.push_str(&format!(";p{i}"));
        }
        assert!(Uri::parse(s.as_bytes()).is_ok());
        s.push_str(";one-more");
        assert_eq!(Uri::parse(s.as_bytes()).err(), Some(UriError::BadParams));

        let mut s = String::from("sip:h?h0=");
        for i in 1..MAX_URI_HEADERS {
            s.push_str(&format!("&h{i}="));
        }
        assert!(Uri::parse(s.as_bytes()).is_ok());
        s.push_str("&x=y");
        assert_eq!(Uri::parse(s.as_bytes()).err(), Some(UriError::BadHeaders));

        let mut s = String::from("tel:+1");
        for i in 0..=MAX_URI_PARAMS {
            s.push_str(&format!(";p{i}"));
        }
        assert_eq!(Uri::parse(s.as_bytes()).err(), Some(UriError::BadParams));
    }

    /// Decision: '@' never appears unescaped outside userinfo, so the first
    /// '@' ends the userinfo even after '?' (RFC 4475 §3.1.1.2 intmeth has
    /// '?' and ';' in the user part). A header value with a bare '@' (itself
    /// invalid) therefore reads as userinfo.
    #[test]
    fn first_at_sign_ends_userinfo_rfc4475_3_1_1_2() {
        let u = Uri::parse(b"sip:example.com?to=bob@biloxi.com").unwrap();
        assert_eq!(u.user, Some(&b"example.com?to=bob"[..]));
        assert_eq!(u.host, Some(Host::Name(b"biloxi.com")));
        assert_eq!(u.headers, None);
    }

    #[test]
    fn parameters_and_accessors_rfc3261_19_1_1() {
        // RFC 4475 §3.1.1.3 esc01: escaped parameter names are found by name.
        let u =
            Uri::parse(b"sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31").unwrap();
        assert!(u.lr());
        assert_eq!(u.param(b"NAME"), Some(Some(&b"v%61lue%25%34%31"[..])));
        let v: Result<Vec<u8>, _> = unescape(u.param(b"name").flatten().unwrap()).collect();
        assert_eq!(v.unwrap(), b"value%41");
        assert_eq!(u.param(b"lr"), Some(None));
        assert_eq!(u.param(b"missing"), None);

        let u = Uri::parse(
            b"sip:alice@atlanta.com:5070;transport=TCP;maddr=239.255.255.1;ttl=15;user=ip;method=INVITE;lr",
        )
        .unwrap();
        assert_eq!(u.transport(), Some(&b"TCP"[..]));
        assert_eq!(u.maddr(), Some(&b"239.255.255.1"[..]));
        assert_eq!(u.ttl(), Some(15));
        assert_eq!(u.user_param(), Some(&b"ip"[..]));
        assert_eq!(u.method_param(), Some(&b"INVITE"[..]));
        assert!(u.lr());
        assert_eq!(u.default_port(), 5060);
        assert_eq!(u.port_or_default(), 5070);

        // RFC 3261 §19.1.2: ttl 0..=255; a bad value is not a ttl.
        assert_eq!(Uri::parse(b"sip:h;ttl=256").unwrap().ttl(), None);
        assert_eq!(Uri::parse(b"sip:h;ttl=0").unwrap().ttl(), Some(0));
        assert_eq!(Uri::parse(b"sip:h;ttl=x").unwrap().ttl(), None);
        assert_eq!(Uri::parse(b"sip:h;transport").unwrap().transport(), None);
        assert!(!Uri::parse(b"sip:h;lrx").unwrap().lr());

        // RFC 3261 §19.1.2 default ports.
        #[rustfmt::skip]
        let ports: &[(&[u8], u16)] = &[
            (b"sip:h", 5060),
            (b"sips:h", 5061),
            (b"sip:h;transport=TLS", 5061),
            (b"sip:h;transport=%74ls", 5061),
            (b"sip:h;transport=tcp", 5060),
            (b"sips:h:5062", 5062),
            (b"tel:+1", 5060),
        ];
        for &(input, port) in ports {
            assert_eq!(
                Uri::parse(input).unwrap().port_or_default(),
                port,
                "{input:?}"
            );
        }

        // Headers component, RFC 3261 §19.1.1.
        let u =
            Uri::parse(b"sips:alice@atlanta.com?subject=project%20x&priority=urgent&x=").unwrap();
        let h: Vec<_> = u.header_fields().collect();
        assert_eq!(
            h,
            vec![
                (&b"subject"[..], &b"project%20x"[..]),
                (&b"priority"[..], &b"urgent"[..]),
                (&b"x"[..], &b""[..])
            ]
        );
        assert_eq!(Uri::parse(b"sip:h").unwrap().header_fields().count(), 0);

        // Schemes, rest, is_sip_like.
        let u = Uri::parse(b"soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.rest(), b"//192.0.2.103:3002");
        assert_eq!(u.scheme_raw, b"soap.beep");
        assert!(!u.is_sip_like());
        assert!(Uri::parse(b"SIPS:h").unwrap().is_sip_like());
        assert!(!Uri::parse(b"tel:+1").unwrap().is_sip_like());
        assert_eq!(
            Uri::parse(b"tel:+1;ext=2").unwrap().param(b"EXT"),
            Some(Some(&b"2"[..]))
        );
    }

    #[test]
    fn unescape_rfc3261_25_1() {
        #[rustfmt::skip]
        let cases: &[UnescapeCase] = &[
            ("RFC 3261 §25.1 escaped", b"%41b", Ok(b"Ab")),
            ("RFC 3261 §25.1 lower-case hex", b"%6c%6C", Ok(b"ll")),
            ("RFC 4475 §3.1.1.3 esc01: decode once", b"v%61lue%25%34%31", Ok(b"value%41")),
            ("RFC 4475 §3.1.1.3 esc01", b"sips%3Auser%40example.com", Ok(b"sips:user@example.com")),
            ("RFC 4475 §3.1.1.4 escnull", b"null-%00-null", Ok(b"null-\0-null")),
            ("empty", b"", Ok(b"")),
            ("RFC 3261 §25.1 bad escape after 1 byte", b"a%g1", Err(1)),
            ("RFC 3261 §25.1 truncated escape", b"ab%4", Err(2)),
            ("RFC 3261 §25.1 lone %", b"%", Err(0)),
        ];
        for &(sec, input, want) in cases {
            let got: Vec<_> = unescape(input).collect();
            match want {
                Ok(bytes) => {
                    let ok: Vec<u8> = got.iter().map(|r| r.unwrap()).collect();
                    assert_eq!(ok, bytes, "{sec}");
                }
                Err(n) => {
                    assert_eq!(got.len(), n + 1, "{sec}");
                    assert_eq!(got.last(), Some(&Err(UriError::BadEscape)), "{sec}");
                    assert!(got[..n].iter().all(Result::is_ok), "{sec}");
                }
            }
        }
        let mut it = unescape(b"%");
        assert!(it.next().unwrap().is_err());
        assert_eq!(it.next(), None);
        assert_eq!(it.size_hint(), (0, Some(0)));
    }

    #[test]
    fn eq_escaped_rfc3261_19_1_4() {
        #[rustfmt::skip]
        let cases: &[EqCase] = &[
            ("RFC 3261 §19.1.4 %61lice", b"%61lice", b"alice", false, true),
            ("RFC 3261 §19.1.4 userinfo case-sensitive", b"ALICE", b"alice", false, false),
            ("RFC 3261 §19.1.4 others case-insensitive", b"ALICE", b"alice", true, true),
            ("RFC 3261 §19.1.4 hex case", b"%3b", b"%3B", false, true),
            ("RFC 3261 §19.1.4 reserved differs from escaped", b"a%3Bb", b"a;b", false, false),
            ("RFC 3261 §19.1.4 reserved differs from escaped", b"%40", b"@", true, false),
            ("RFC 3261 §19.1.4 unreserved equals escaped", b"%7E", b"~", false, true),
            ("RFC 3261 §19.1.4 escaped letter, ci", b"%41", b"a", true, true),
            ("length", b"abc", b"ab", false, false),
            ("malformed escape never equal", b"%zz", b"%zz", false, false),
            ("malformed escape never equal", b"a%", b"a%", true, false),
            ("empty", b"", b"", false, true),
        ];
        for &(sec, a, b, ci, want) in cases {
            assert_eq!(eq_escaped(a, b, ci), want, "{sec}");
            assert_eq!(eq_escaped(b, a, ci), want, "{sec} (swapped)");
        }
    }

    #[test]
    fn uri_comparison_rfc3261_19_1_4() {
        #[rustfmt::skip]
        let equal: &[(&str, &str, &str)] = &[
            ("RFC 3261 §19.1.4", "sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
            ("RFC 3261 §19.1.4", "sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            ("RFC 3261 §19.1.4", "sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
            ("RFC 3261 §19.1.4", "sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
            ("RFC 3261 §19.1.4", "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com", "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
            ("RFC 3261 §19.1.4", "sip:alice@atlanta.com?subject=project%20x&priority=urgent", "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
            ("RFC 3261 §19.1.4 lr is an other-param", "sip:p.example.com;lr", "sip:p.example.com"),
            ("RFC 3261 §19.1.4 escaped param name", "sip:p.example.com;%6C%72=on", "sip:p.example.com;lr=on"),
            ("RFC 3261 §19.1.4 password", "sip:a:%73ecret@h", "sip:a:secret@h"),
            ("RFC 3261 §19.1.4 header values case-insensitive", "sip:h?Subject=Hi", "sip:h?subject=hI"),
            ("RFC 5954 §4 IPv6 as addresses", "sip:[2001:db8::9:1]", "sip:[2001:DB8:0:0:0:0:9:0001]"),
            ("RFC 5954 §4 IPv4-mapped", "sip:bob@[::ffff:192.0.2.128]", "sip:bob@[::ffff:c000:280]"),
            ("RFC 3966 §4 visual separators", "tel:+1-201-555-0123", "tel:+1(201)5550123"),
            ("RFC 3966 §4 parameter order and case", "tel:7042;phone-context=example.com;ext=1", "tel:7042;EXT=1;Phone-Context=EXAMPLE.com"),
            ("RFC 3261 §19.1.4 other schemes by bytes", "HTTP://www.example.com", "http://www.example.com"),
        ];
        #[rustfmt::skip]
        let different: &[(&str, &str, &str)] = &[
            ("RFC 3261 §19.1.4 different usernames", "SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
            ("RFC 3261 §19.1.4 can resolve to different ports", "sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("RFC 3261 §19.1.4 can resolve to different transports", "sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            ("RFC 3261 §19.1.4 different port and transports", "sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
            ("RFC 3261 §19.1.4 different header component", "sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
            ("RFC 3261 §19.1.4 address never equals a name", "sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            ("RFC 3261 §19.1.4 sip vs sips", "sip:alice@atlanta.com", "sips:alice@atlanta.com"),
            ("RFC 3261 §19.1.4 user param one-sided", "sip:+1234@gw.example.com;user=phone", "sip:+1234@gw.example.com"),
            ("RFC 3261 §19.1.4 ttl one-sided", "sip:h;ttl=1", "sip:h"),
            ("RFC 3261 §19.1.4 method one-sided", "sip:h;method=INVITE", "sip:h"),
            ("RFC 3261 §19.1.4 maddr one-sided", "sip:h;maddr=239.255.255.1", "sip:h"),
            ("RFC 3261 §19.1.4 param on both sides must match", "sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
            ("RFC 3261 §19.1.4 reserved escaped", "sip:a%3Bb@h", "sip:a;b@h"),
            ("RFC 3261 §19.1.4 user present on one side", "sip:alice@h", "sip:h"),
            ("RFC 3261 §19.1.4 password present on one side", "sip:alice:pw@h", "sip:alice@h"),
            ("RFC 3261 §19.1.4 headers must all match", "sip:h?a=1&b=2", "sip:h?a=1"),
            ("RFC 3261 §19.1.4 headers must all match", "sip:h?a=1&a=1", "sip:h?a=1&b=2"),
            ("RFC 3261 §19.1.4 header value", "sip:h?a=1", "sip:h?a=2"),
            ("RFC 3261 §19.1.4 param value vs none", "sip:h;x", "sip:h;x=1"),
            ("RFC 5954 §4 different IPv6", "sip:[2001:db8::9:1]", "sip:[2001:db8::9:255]"),
            ("RFC 5954 §4 IPv4 vs IPv4-mapped", "sip:192.0.2.128", "sip:[::ffff:192.0.2.128]"),
            ("RFC 3966 §4 global vs local", "tel:+7042;phone-context=example.com", "tel:7042;phone-context=example.com"),
            ("RFC 3966 §4 parameter on one side", "tel:+1-201-555-0123;ext=1", "tel:+1-201-555-0123"),
            ("RFC 3966 §4 different numbers", "tel:+1-201-555-0123", "tel:+1-201-555-0124"),
            ("scheme mismatch", "tel:+1234", "sip:+1234@h"),
            ("other schemes are opaque", "http://www.example.com", "http://WWW.example.com"),
        ];
        for &(sec, a, b) in equal {
            let (x, y) = (
                Uri::parse(a.as_bytes()).unwrap(),
                Uri::parse(b.as_bytes()).unwrap(),
            );
            assert!(uri_eq(&x, &y), "{sec}: {a} == {b}");
            assert!(uri_eq(&y, &x), "{sec}: {b} == {a}");
        }
        for &(sec, a, b) in different {
            let (x, y) = (
                Uri::parse(a.as_bytes()).unwrap(),
                Uri::parse(b.as_bytes()).unwrap(),
            );
            assert!(!uri_eq(&x, &y), "{sec}: {a} != {b}");
            assert!(!uri_eq(&y, &x), "{sec}: {b} != {a}");
        }
    }

    /// The Request-URI of every RFC 4475 request (testdata/rfc4475).
    #[test]
    fn rfc4475_request_uris() {
        use UriError::*;
        #[rustfmt::skip]
        let expect: &[(&str, &str, Result<Scheme, UriError>)] = &[
            ("wsinv", "3.1.1.1", Ok(S)), ("intmeth", "3.1.1.2", Ok(S)), ("esc01", "3.1.1.3", Ok(S)),
            ("escnull", "3.1.1.4", Ok(S)), ("esc02", "3.1.1.5", Ok(S)), ("lwsdisp", "3.1.1.6", Ok(S)),
            ("longreq", "3.1.1.7", Ok(S)), ("dblreq", "3.1.1.8", Ok(S)), ("semiuri", "3.1.1.9", Ok(S)),
            ("transports", "3.1.1.10", Ok(S)), ("mpart01", "3.1.1.11", Ok(S)),
            ("badinv01", "3.1.2.1", Ok(S)), ("clerr", "3.1.2.2", Ok(S)), ("ncl", "3.1.2.3", Ok(S)),
            ("scalar02", "3.1.2.4", Ok(S)), ("quotbal", "3.1.2.6", Ok(S)),
            ("ltgtruri", "3.1.2.7", Err(BadScheme)), ("lwsruri", "3.1.2.8", Err(Whitespace)),
            ("lwsstart", "3.1.2.9", Ok(S)), ("trws", "3.1.2.10", Ok(S)),
            // Headers are legal in a URI, not in a Request-URI: the
            // request-line parser rejects them (RFC 3261 §19.1.1 table 1).
            ("escruri", "3.1.2.11", Ok(S)),
            ("baddate", "3.1.2.12", Ok(S)), ("regbadct", "3.1.2.13", Ok(S)), ("badaspec", "3.1.2.14", Ok(S)),
            ("baddn", "3.1.2.15", Ok(S)), ("badvers", "3.1.2.16", Ok(S)), ("mismatch01", "3.1.2.17", Ok(S)),
            ("mismatch02", "3.1.2.18", Ok(S)), ("badbranch", "3.2.1", Ok(S)), ("insuf", "3.3.1", Ok(S)),
            ("unkscm", "3.3.2", Ok(O)), ("novelsc", "3.3.3", Ok(O)), ("unksm2", "3.3.4", Ok(S)),
            ("bext01", "3.3.5", Ok(S)), ("invut", "3.3.6", Ok(S)), ("regaut01", "3.3.7", Ok(S)),
            ("multi01", "3.3.8", Ok(S)), ("mcl01", "3.3.9", Ok(S)), ("zeromf", "3.3.11", Ok(S)),
            ("cparam01", "3.3.12", Ok(S)), ("cparam02", "3.3.13", Ok(S)), ("regescrt", "3.3.14", Ok(S)),
            ("sdp01", "3.3.15", Ok(S)), ("inv2543", "3.4.1", Ok(S)),
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/rfc4475");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("dat") {
                continue;
            }
            let msg = std::fs::read(&path).unwrap();
            let line_end = msg
                .windows(2)
                .position(|w| w == b"\r\n")
                .unwrap_or(msg.len());
            let line = trim(&msg[..line_end]);
            if line.starts_with(b"SIP/2.0 ") {
                continue; // a response
            }
            let (Some(first), Some(last)) = (
                line.iter().position(|&b| b == b' '),
                line.iter().rposition(|&b| b == b' '),
            ) else {
                continue;
            };
            if first == last {
                continue; // test.dat: no SIP-Version
            }
            let name = path.file_stem().unwrap().to_str().unwrap();
            let &(_, sec, want) = expect
                .iter()
                .find(|e| e.0 == name)
                .unwrap_or_else(|| panic!("{name}: no expectation"));
            let got = Uri::parse(&line[first..last]).map(|u| u.scheme);
            assert_eq!(got, want, "RFC 4475 §{sec} {name}");
            seen += 1;
        }
        assert_eq!(seen, expect.len());
    }

    // ---- property tests ----

    fn hostname() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", 0..3),
            "[a-zA-Z]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?",
            any::<bool>(),
        )
            .prop_map(|(labels, top, dot)| {
                let mut s = String::new();
                for l in labels {
                    s.push_str(&l);
                    s.push('.');
                }
                s.push_str(&top);
                if dot {
                    s.push('.');
                }
                s
            })
    }

    #[derive(Debug, Clone)]
    enum GenHost {
        Name(String),
        V4(Ipv4Addr),
        V6(Ipv6Addr),
    }

    fn gen_host() -> impl Strategy<Value = GenHost> {
        prop_oneof![
            hostname().prop_map(GenHost::Name),
            any::<[u8; 4]>().prop_map(|o| GenHost::V4(Ipv4Addr::from(o))),
            any::<[u16; 8]>().prop_map(|s| GenHost::V6(Ipv6Addr::from(s))),
        ]
    }

    const USER: &str = "([a-zA-Z0-9_.!~*'()&=+$,;?/-]|%[0-9a-fA-F]{2}){1,12}";
    const PASSWORD: &str = "([a-zA-Z0-9_.!~*'()&=+$,-]|%[0-9a-fA-F]{2}){0,8}";
    const PARAMCHARS: &str = "([a-zA-Z0-9_.!~*'()\\[\\]/:&+$-]|%[0-9a-fA-F]{2}){1,10}";
    const HCHARS: &str = "([a-zA-Z0-9_.!~*'()\\[\\]/?:+$-]|%[0-9a-fA-F]{2}){0,10}";

    #[test]
    fn usual_uris_take_the_one_pass_path() {
        for u in [
            &b"sip:bob@biloxi.example.com"[..],
            b"sip:alice@192.0.2.101:5060;transport=udp",
            b"SIP:127.0.0.1:5070",
            b"sips:p1.example.com;lr",
        ] {
            assert!(
                Uri::parse_sip_common(u).is_some(),
                "{}",
                String::from_utf8_lossy(u)
            );
        }
        for u in [
            &b"sip:a:b@h"[..],
            b"sip:[::1]",
            b"sip:h?x=y",
            b"sip:%61@h",
            b"sip:h:0",
            b"tel:+1",
        ] {
            assert!(
                Uri::parse_sip_common(u).is_none(),
                "{}",
                String::from_utf8_lossy(u)
            );
        }
    }

    proptest! {
        #[test]
        fn built_uris_round_trip_their_fields(
            sips in any::<bool>(),
            user in proptest::option::of(USER),
            password in proptest::option::of(PASSWORD),
            host in gen_host(),
            port in proptest::option::of(1u16..=65535),
            params in proptest::collection::vec((PARAMCHARS, proptest::option::of(PARAMCHARS)), 0..4),
            headers in proptest::option::of(proptest::collection::vec(("([a-zA-Z0-9]|%[0-9a-fA-F]{2}){1,6}", HCHARS), 1..3)),
        ) {
            let mut s = String::from(if sips { "sips:" } else { "sip:" });
            let password = password.filter(|_| user.is_some());
            if let Some(u) = &user {
                s.push_str(u);
                if let Some(p) = &password {
                    s.push(':');
                    s.push_str(p);
                }
                s.push('@');
            }
            let host_raw = match &host {
                GenHost::Name(n) => n.clone(),
                GenHost::V4(a) => a.to_string(),
                GenHost::V6(a) => format!("[{a}]"),
            };
            s.push_str(&host_raw);
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            let mut params_raw = String::new();
            for (n, v) in &params {
                params_raw.push(';');
                params_raw.push_str(n);
                if let Some(v) = v {
                    params_raw.push('=');
                    params_raw.push_str(v);
                }
            }
            s.push_str(&params_raw);
            let headers_raw = headers.as_ref().map(|h| {
                h.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("&")
            });
            if let Some(h) = &headers_raw {
                s.push('?');
                s.push_str(h);
            }

            let u = Uri::parse(s.as_bytes()).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
            prop_assert_eq!(u.raw, s.as_bytes());
            prop_assert_eq!(u.scheme, if sips { Scheme::Sips } else { Scheme::Sip });
            prop_assert_eq!(u.user, user.as_deref().map(str::as_bytes));
            prop_assert_eq!(u.password, password.as_deref().map(str::as_bytes));
            prop_assert_eq!(u.host_raw, host_raw.as_bytes());
            match (&host, u.host) {
                (GenHost::Name(n), Some(Host::Name(h))) => prop_assert_eq!(h, n.as_bytes()),
                (GenHost::V4(a), Some(Host::V4(h))) => prop_assert_eq!(h, *a),
                (GenHost::V6(a), Some(Host::V6(h))) => prop_assert_eq!(h, *a),
                (g, h) => prop_assert!(false, "host {:?} parsed as {:?}", g, h),
            }
            prop_assert_eq!(u.port, port);
            prop_assert_eq!(u.params.raw(), params_raw.as_bytes());
            let got: Vec<_> = u.params.into_iter().map(|p| (p.name, p.value)).collect();
            let want: Vec<_> = params.iter().map(|(n, v)| (n.as_bytes(), v.as_deref().map(str::as_bytes))).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(u.headers, headers_raw.as_deref().map(str::as_bytes));
            prop_assert!(uri_eq(&u, &u));
        }

        #[test]
        fn one_pass_sip_shape_agrees_with_the_general_parser(
            s in "(sip|SIP|sips|Sips|tel|x):([a-z0-9;=%@.:]{1,5}@)?[a-zA-Z0-9.-]{0,14}(:[0-9]{0,6})?(;[a-z=0-9%.:@ ]{0,6}){0,3}(\\?[a-z=]{0,3})?|sip:[a-z0-9@:;?=&%\\[\\]._<> -]{0,30}",
        ) {
            let s = s.as_bytes();
            if let Some(fast) = Uri::parse_sip_common(s) {
                let general = Uri::parse_general(s)
                    .map_err(|e| TestCaseError::fail(format!("{}: {e}", String::from_utf8_lossy(s))))?;
                prop_assert_eq!(format!("{fast:?}"), format!("{general:?}"));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            check_any(&data)?;
        }

        #[test]
        fn uri_like_bytes_never_panic(
            scheme in "(sip|SIPS|tel|x)?:?",
            body in "[a-z0-9@:;?=&%\\[\\]._+<> -]{0,40}",
        ) {
            check_any(format!("{scheme}{body}").as_bytes())?;
        }
    }

    /// Invariants for any input: no panic; a parsed URI equals itself and
    /// its re-parse; parse and parse_sip agree.
    fn check_any(data: &[u8]) -> Result<(), TestCaseError> {
        let _ = unescape(data).count();
        let _ = eq_escaped(data, data, true);
        match Uri::parse(data) {
            Ok(u) => {
                prop_assert!(uri_eq(&u, &u));
                let again = Uri::parse(u.raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(uri_eq(&u, &again));
                let _ = (
                    u.lr(),
                    u.transport(),
                    u.maddr(),
                    u.user_param(),
                    u.ttl(),
                    u.default_port(),
                );
                let _ = u.header_fields().count();
                for f in [u.user, u.password, u.headers].into_iter().flatten() {
                    prop_assert!(unescape(f).all(|r| r.is_ok()));
                }
                match Uri::parse_sip(data) {
                    Ok(s) => prop_assert!(uri_eq(&u, &s)),
                    Err(e) => {
                        prop_assert_eq!(e, UriError::UnsupportedScheme);
                        prop_assert_eq!(u.scheme, Scheme::Other);
                    }
                }
            }
            Err(e) => {
                prop_assert_eq!(Uri::parse_sip(data).err(), Some(e));
            }
        }
        Ok(())
    }
}
