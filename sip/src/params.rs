//! Generic `;name[=value]` parameter lists (RFC 3261 §25.1 `generic-param`),
//! used by Via, From/To, Contact, Route and URIs. LWS around `;` and `=` is
//! allowed; values may be tokens, hosts or quoted strings.

use super::scan::{eq_ic, find_of, is_lws, quoted_end, trim};

/// One parameter: its name and its value when it has one (`;lr` has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// An iterator over the parameters of a raw list such as `;branch=z9;rport`.
/// The input may start with or without the first `;`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params<'a> {
    raw: &'a [u8],
}

impl<'a> Params<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        Params { raw }
    }

    /// The raw bytes, leading `;` included when present.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The first parameter named `name` (case-insensitive).
    pub fn get(&self, name: &[u8]) -> Option<Param<'a>> {
        self.into_iter().find(|p| eq_ic(p.name, name))
    }

    /// The value of the first parameter named `name`; `Some(None)` when the
    /// parameter is present without a value.
    pub fn value(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.get(name).map(|p| p.value)
    }

    pub fn contains(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }

    /// True when every element is a well-formed `name[=value]` with a
    /// non-empty name (the views use this to reject garbage).
    pub fn is_well_formed(&self) -> bool {
        let mut it = self.into_iter();
        for p in &mut it {
            if p.name.is_empty() {
                return false;
            }
        }
        !it.broken
    }
}

impl<'a> IntoIterator for Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        ParamIter {
            rest: self.raw,
            broken: false,
        }
    }
}

/// Iterator behind [`Params`].
#[derive(Clone, Debug)]
pub struct ParamIter<'a> {
    rest: &'a [u8],
    /// Set when an element could not be parsed (unterminated quote).
    pub broken: bool,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        let s = self.rest;
        let mut i = 0;
        loop {
            // LWS, one `;`, LWS: the element starts at the next byte.
            while s.get(i).is_some_and(|&b| is_lws(b)) {
                i += 1;
            }
            if s.get(i) == Some(&b';') {
                i += 1;
            }
            while s.get(i).is_some_and(|&b| is_lws(b)) {
                i += 1;
            }
            if i >= s.len() {
                self.rest = &[];
                return None;
            }
            // Element ends at the next `;` outside a quoted string; the
            // first `=` splits it.
            let start = i;
            let mut eq = None;
            let end = loop {
                let Some(p) = find_of(s, i, [b';', b'"', b'=']) else {
                    break s.len();
                };
                match s[p] {
                    b'"' => match quoted_end(&s[p..]) {
                        Some(n) => i = p + n,
                        None => {
                            self.broken = true;
                            self.rest = &[];
                            return None;
                        }
                    },
                    b'=' => {
                        eq = eq.or(Some(p - start));
                        i = p + 1;
                    }
                    _ => break p,
                }
            };
            let elem = &s[start..end];
            i = end;
            let (name, value) = match eq {
                Some(e) => (trim(&elem[..e]), Some(trim(&elem[e + 1..]))),
                None => (trim(elem), None),
            };
            if name.is_empty() && value.is_none() {
                // `;;` : an empty element; skip it.
                continue;
            }
            self.rest = &s[end..];
            return Some(Param { name, value });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_with_lws_rfc3261_25_1() {
        let p = Params::new(b" ;  branch  =   z9hG4bK9ikj8 ; rport ; received=1.2.3.4");
        assert_eq!(p.value(b"BRANCH"), Some(Some(&b"z9hG4bK9ikj8"[..])));
        assert_eq!(p.value(b"rport"), Some(None));
        assert_eq!(p.value(b"received"), Some(Some(&b"1.2.3.4"[..])));
        assert_eq!(p.value(b"maddr"), None);
        assert!(p.is_well_formed());
    }

    #[test]
    fn quoted_values_keep_semicolons() {
        let p = Params::new(br#";x="a;b";y"#);
        let v: Vec<_> = p.into_iter().collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].value, Some(&br#""a;b""#[..]));
    }

    /// The iterator before it searched 16 bytes at a time: they must agree.
    struct ReferenceIter<'a> {
        rest: &'a [u8],
        broken: bool,
    }

    impl<'a> Iterator for ReferenceIter<'a> {
        type Item = Param<'a>;

        fn next(&mut self) -> Option<Param<'a>> {
            loop {
                let s = trim(self.rest);
                let s = s.strip_prefix(b";").unwrap_or(s);
                if trim(s).is_empty() {
                    self.rest = &[];
                    return None;
                }
                // Element ends at the next `;` outside a quoted string.
                let mut i = 0;
                let mut eq = None;
                while i < s.len() {
                    match s[i] {
                        b'"' => match quoted_end(&s[i..]) {
                            Some(n) => {
                                i += n;
                                continue;
                            }
                            None => {
                                self.broken = true;
                                self.rest = &[];
                                return None;
                            }
                        },
                        b'=' if eq.is_none() => eq = Some(i),
                        b';' => break,
                        _ => {}
                    }
                    i += 1;
                }
                let elem = &s[..i];
                self.rest = &s[i..];
                let (name, value) = match eq {
                    Some(e) => (trim(&elem[..e]), Some(trim(&elem[e + 1..]))),
                    None => (trim(elem), None),
                };
                if name.is_empty() && value.is_none() {
                    // `;;` : an empty element; skip it.
                    continue;
                }
                return Some(Param { name, value });
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn block_search_agrees_with_the_byte_loop(s in "[ab;= \"\\\\\r\n]{0,40}") {
            let mut a = Params::new(s.as_bytes()).into_iter();
            let mut b = ReferenceIter { rest: s.as_bytes(), broken: false };
            loop {
                let (x, y) = (a.next(), b.next());
                proptest::prop_assert_eq!(x, y);
                proptest::prop_assert_eq!(a.broken, b.broken);
                if x.is_none() {
                    break;
                }
            }
        }
    }

    #[test]
    fn unterminated_quote_is_not_well_formed() {
        assert!(!Params::new(br#";x="abc"#).is_well_formed());
        assert!(!Params::new(b";=v").is_well_formed());
    }
}
