//! `name-addr` / `addr-spec` header values (RFC 3261 §20.10, §20.20, §20.30,
//! §20.34, §20.39, §25.1): From, To, Contact, Route and Record-Route.

use super::params::Params;
use super::scan::{self, quoted_end};
use super::uri::Uri;

/// `[display-name] <URI> *(;param)` or `addr-spec *(;param)`, borrowed.
#[derive(Clone, Debug)]
pub struct NameAddr<'a> {
    /// The whole value, trimmed.
    pub raw: &'a [u8],
    /// The display name as written (quotes kept), when present.
    pub display: Option<&'a [u8]>,
    /// The URI, parsed. Its `raw` is the text between `<` and `>`.
    pub uri: Uri<'a>,
    /// True when the URI was enclosed in `<...>`.
    pub bracketed: bool,
    /// Header parameters (after the URI or `>`), e.g. `tag`, `expires`, `q`.
    pub params: Params<'a>,
    /// The first `tag` parameter's value, found while the parameters are
    /// checked (From and To are read for it on every request).
    tag: Option<&'a [u8]>,
}

/// RFC 3261 §25.1 `display-name = *(token LWS) / quoted-string`, unquoted form.
fn is_token_display(s: &[u8]) -> bool {
    s.iter().all(|&b| scan::is_token(b) || scan::is_lws(b))
}

impl<'a> NameAddr<'a> {
    pub fn parse(v: &'a [u8]) -> Option<NameAddr<'a>> {
        let raw = scan::trim(v);
        match NameAddr::parse_common(raw) {
            Some(n) => Some(n),
            None => NameAddr::parse_general(raw),
        }
    }

    /// The usual shape, in one pass: an optional display name, `<`, a URI
    /// of [`Uri::parse_sip_common`]'s shape, `>`, then `;name[=value]`
    /// parameters whose names and values are tokens, no LWS after the `>`.
    /// `None` for anything else: [`NameAddr::parse_general`] decides, so
    /// the two agree on whatever this accepts (a proptest checks it).
    #[inline]
    fn parse_common(raw: &'a [u8]) -> Option<NameAddr<'a>> {
        let (display, lt) = if raw.first() == Some(&b'"') {
            let q = quoted_end(raw)?;
            let mut i = q;
            while raw.get(i).is_some_and(|&b| scan::is_lws(b)) {
                i += 1;
            }
            (Some(&raw[..q]), i)
        } else {
            let mut i = 0;
            while raw
                .get(i)
                .is_some_and(|&b| scan::is_token(b) || scan::is_lws(b))
            {
                i += 1;
            }
            let d = scan::trim(&raw[..i]);
            ((!d.is_empty()).then_some(d), i)
        };
        if raw.get(lt) != Some(&b'<') {
            return None;
        }
        let inner = &raw[lt + 1..];
        let close = scan::find_of(inner, 0, [b'>'])?;
        let uri = Uri::parse_sip_common(&inner[..close])?;
        let rest = &inner[close + 1..];
        let n = rest.len();
        let mut i = 0;
        let mut tag = None;
        while i < n {
            if rest[i] != b';' {
                return None;
            }
            i += 1;
            let name_start = i;
            while rest.get(i).is_some_and(|&b| scan::is_token(b)) {
                i += 1;
            }
            let name = &rest[name_start..i];
            if name.is_empty() {
                return None;
            }
            let value = if rest.get(i) == Some(&b'=') {
                let v = i + 1;
                i = scan::find_of(rest, v, [b';']).unwrap_or(n);
                let value = &rest[v..i];
                if !scan::is_token_str(value) {
                    return None;
                }
                Some(value)
            } else {
                None
            };
            if tag.is_none() && scan::token_eq_ic(name, b"tag") {
                tag = Some(value);
            }
        }
        Some(NameAddr {
            raw,
            display,
            uri,
            bracketed: true,
            params: Params::new(rest),
            tag: tag.flatten(),
        })
    }

    /// [`NameAddr::parse`] for every shape.
    fn parse_general(raw: &'a [u8]) -> Option<NameAddr<'a>> {
        let raw = scan::trim(raw);
        let (display, uri_raw, rest, bracketed) = if raw.first() == Some(&b'"') {
            let q = quoted_end(raw)?;
            let after = scan::trim_start(&raw[q..]);
            let inner = after.strip_prefix(b"<")?;
            let close = scan::find_of(inner, 0, [b'>'])?;
            (Some(&raw[..q]), &inner[..close], &inner[close + 1..], true)
        } else if let Some(lt) = scan::find_of(raw, 0, [b'<']) {
            let display = scan::trim(&raw[..lt]);
            if !is_token_display(display) {
                // e.g. an unquoted comma (RFC 4475 §3.1.2.16 baddn).
                return None;
            }
            let inner = &raw[lt + 1..];
            let close = scan::find_of(inner, 0, [b'>'])?;
            let display = (!display.is_empty()).then_some(display);
            (display, &inner[..close], &inner[close + 1..], true)
        } else {
            // addr-spec: the URI ends at the first ';', and it may not carry
            // headers or commas (RFC 3261 §20.10; RFC 4475 regbadct).
            let semi = raw.iter().position(|&b| b == b';').unwrap_or(raw.len());
            let uri = scan::trim(&raw[..semi]);
            if uri
                .iter()
                .any(|&b| b == b'?' || b == b',' || b == b'"' || b == b'>')
            {
                return None;
            }
            (None, uri, &raw[semi..], false)
        };
        let rest = scan::trim(rest);
        if !rest.is_empty() && rest[0] != b';' {
            return None;
        }
        let params = Params::new(rest);
        let mut it = params.into_iter();
        let mut tag = None;
        for p in &mut it {
            if !scan::is_token_str(p.name) {
                return None;
            }
            if tag.is_none() && scan::token_eq_ic(p.name, b"tag") {
                tag = Some(p.value);
            }
        }
        if it.broken {
            return None;
        }
        // No LWS inside the brackets (RFC 4475 §3.1.2.14 badaspec).
        if bracketed
            && (uri_raw.first().is_some_and(|&b| scan::is_lws(b))
                || uri_raw.last().is_some_and(|&b| scan::is_lws(b)))
        {
            return None;
        }
        let uri = Uri::parse(uri_raw).ok()?;
        Some(NameAddr {
            raw,
            display,
            uri,
            bracketed,
            params,
            tag: tag.flatten(),
        })
    }

    /// The `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.tag
    }

    /// The `expires` parameter of a Contact (RFC 3261 §20.10).
    pub fn expires(&self) -> Option<u32> {
        self.params
            .value(b"expires")
            .flatten()
            .and_then(|v| scan::parse_u32(v, 10))
    }

    /// The `q` parameter of a Contact in thousandths (RFC 3261 §20.10
    /// `qvalue`): `q=0.5` is 500.
    pub fn q(&self) -> Option<u16> {
        let v = self.params.value(b"q").flatten()?;
        parse_qvalue(v)
    }

    /// True when the URI carries `lr` (RFC 3261 §19.1.1 loose routing).
    pub fn lr(&self) -> bool {
        self.uri.lr()
    }
}

/// RFC 3261 §25.1 `qvalue = ("0" ["." 0*3DIGIT]) / ("1" ["." 0*3("0")])`.
pub fn parse_qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(d) => (&v[..d], &v[d + 1..]),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut f = 0u16;
    for i in 0..3 {
        f = f * 10 + frac.get(i).map_or(0, |&b| u16::from(b - b'0'));
    }
    match int {
        b"0" => Some(f),
        b"1" if f == 0 => Some(1000),
        _ => None,
    }
}

/// One Contact value: `*` or an address (RFC 3261 §20.10).
#[derive(Clone, Debug)]
// Boxing the address would allocate per Contact; the views allocate nothing.
#[allow(clippy::large_enum_variant)]
pub enum Contact<'a> {
    Star,
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    pub fn parse(v: &'a [u8]) -> Option<Contact<'a>> {
        if scan::trim(v) == b"*" {
            return Some(Contact::Star);
        }
        NameAddr::parse(v).map(Contact::Addr)
    }

    pub fn addr(&self) -> Option<&NameAddr<'a>> {
        match self {
            Contact::Star => None,
            Contact::Addr(a) => Some(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_forms_rfc3261_20_20() {
        let a = NameAddr::parse(b"Alice <sip:alice@atlanta.com>;tag=1928301774").unwrap();
        assert_eq!(a.display, Some(&b"Alice"[..]));
        assert_eq!(a.uri.raw, b"sip:alice@atlanta.com");
        assert_eq!(a.tag(), Some(&b"1928301774"[..]));
        let a = NameAddr::parse(
            br#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(a.display, Some(&br#""J Rosenberg \\\"""#[..]));
        assert_eq!(a.tag(), Some(&b"98asjd8"[..]));
        // addr-spec: parameters belong to the header, not the URI.
        let a = NameAddr::parse(b"sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(!a.bracketed);
        assert_eq!(a.uri.raw, b"sip:+19725552222@gw1.example.net");
        assert!(a.params.contains(b"unknownparam"));
        // No space between display name and '<' (RFC 4475 §3.1.1.6 lwsdisp).
        let a = NameAddr::parse(b"caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(a.display, Some(&b"caller"[..]));
    }

    #[test]
    fn usual_name_addrs_take_the_one_pass_path() {
        for v in [
            &b"\"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl"[..],
            b"<sip:bob@biloxi.example.com>",
            b"Bob <sip:bob@192.0.2.4:5070;transport=udp>;expires=60;q=0.5",
        ] {
            let fast = NameAddr::parse_common(v);
            assert!(fast.is_some(), "{}", String::from_utf8_lossy(v));
            assert_eq!(
                format!("{fast:?}"),
                format!("{:?}", NameAddr::parse_general(v))
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn one_pass_shape_agrees_with_the_general_parser(
            s in "(\"[a-z \\\\\"]{0,6}\" ?|[a-zA-Z ]{0,6})<(sip|SIPS|x):([a-z]{1,3}@)?[a-z0-9.]{1,10}(:[0-9]{1,5})?(;[a-z=]{1,5}){0,2}>(;[a-zA-Z=. \"0-9]{0,8}){0,3}",
        ) {
            // parse() trims before either path.
            let raw = scan::trim(s.as_bytes());
            if let Some(fast) = NameAddr::parse_common(raw) {
                let general = NameAddr::parse_general(raw);
                proptest::prop_assert_eq!(format!("{:?}", Some(fast)), format!("{general:?}"), "{}", s);
            }
        }
    }

    #[test]
    fn bad_name_addrs_rfc4475() {
        for bad in [
            &b"Bell, Alexander <sip:a.g.bell@example.com>;tag=43"[..], // baddn
            br#""Mr. J. User <sip:j.user@example.com>"#,               // quotbal
            br#""Watson, Thomas" < sip:t.watson@example.org >"#,       // badaspec
            b"sip:user@example.com?Route=%3Csip:sip.example.com%3E",   // regbadct
            b"<sip:a@b",
            b"<sip:a@b> junk",
            b"",
        ] {
            assert!(
                NameAddr::parse(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn contact_star_expires_q_rfc3261_20_10() {
        assert!(matches!(Contact::parse(b" * "), Some(Contact::Star)));
        let c = Contact::parse(b"<sip:a@b>;expires=3600;q=0.7").unwrap();
        let a = c.addr().unwrap();
        assert_eq!(a.expires(), Some(3600));
        assert_eq!(a.q(), Some(700));
        assert_eq!(parse_qvalue(b"1"), Some(1000));
        assert_eq!(parse_qvalue(b"1.000"), Some(1000));
        assert_eq!(parse_qvalue(b"0.33"), Some(330));
        assert_eq!(parse_qvalue(b"1.5"), None);
        assert_eq!(parse_qvalue(b"0.1234"), None);
    }

    #[test]
    fn route_lr_rfc3261_19_1_1() {
        let r = NameAddr::parse(b"<sip:p1.example.com;lr>").unwrap();
        assert!(r.lr());
        let r = NameAddr::parse(b"<sip:p1.example.com>").unwrap();
        assert!(!r.lr());
    }
}
