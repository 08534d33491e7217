//! Routing rules: which backend set a request goes to.
//!
//! An ordered list; the first rule whose matchers all match (AND) names the
//! set, and a request no rule matches goes to the default set. A rule with no
//! matchers matches everything. Matchers:
//!
//! - `methods`: the request method is one of these, exact and
//!   case-sensitive (RFC 3261 §7.1: methods are case-sensitive tokens);
//! - `ruri_user_prefix`: the Request-URI user part (after `%HH` unescaping;
//!   the number of a `tel:` URI) starts with this;
//! - `ruri_domain`: the Request-URI host equals this, ASCII case ignored and
//!   a trailing dot ignored; `*.example.com` matches any subdomain of
//!   example.com (not example.com itself); `*` matches any host; an IP
//!   address (IPv6 with or without brackets) matches that address;
//! - `source`: the source address is in one of these networks (v4-mapped
//!   IPv6 sources are treated as IPv4);
//! - `header`: the first header line of that name (any case, compact forms
//!   too) is present, and, when given, its value equals `value` and/or
//!   starts with `prefix` (byte comparisons on the value with surrounding
//!   whitespace trimmed).
//!
//! A response has no method and no Request-URI, so rules with `methods`,
//! `ruri_user_prefix` or `ruri_domain` never match one.
//!
//! Rules refer to sets by index; [`Rules::from_named`] resolves set names
//! and reports mistakes (unknown sets, malformed matchers) precisely.

use core::fmt;
use core::str::FromStr;
use std::net::IpAddr;

use ipnet::IpNet;

use super::set::BackendSet;
use crate::sip::host::{is_hostname, parse_ipv4, parse_ipv6, Host};
use crate::sip::scan::is_token_str;
use crate::sip::uri::unescape;
use crate::sip::{Message, Uri};

/// A header matcher: the first header line of `name` is present and its
/// value matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMatch {
    /// A token, any case (RFC 3261 §7.3.5); compact forms (`f`, `i`, ...)
    /// work.
    pub name: String,
    pub value: HeaderValueMatch,
}

/// How a header's value is matched: the value of the first header of that
/// name, surrounding whitespace trimmed, compared byte for byte.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HeaderValueMatch {
    /// Any value: the header is present.
    #[default]
    Present,
    /// The whole value equals this.
    Equals(String),
    /// The value starts with this.
    Prefix(String),
}

/// One routing rule. `S` is how it names its set: an index (`usize`, what
/// [`Rules::new`] takes) or a name (`String`, for [`Rules::from_named`] and
/// the config).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule<S = usize> {
    /// For error messages and metrics.
    pub name: Option<String>,
    pub methods: Vec<String>,
    pub ruri_user_prefix: Option<String>,
    pub ruri_domain: Option<DomainPattern>,
    pub source: Vec<IpNet>,
    pub header: Option<HeaderMatch>,
    pub set: S,
}

impl<S> Rule<S> {
    /// The matchers in words, for `--check-config` and the startup log:
    /// `methods INVITE,BYE, ruri_user_prefix "+44", ...`, or `any request`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.methods.is_empty() {
            parts.push(format!("methods {}", self.methods.join(",")));
        }
        if let Some(p) = &self.ruri_user_prefix {
            parts.push(format!("ruri_user_prefix {p:?}"));
        }
        if let Some(d) = &self.ruri_domain {
            parts.push(format!("ruri_domain {:?}", d.to_string()));
        }
        if !self.source.is_empty() {
            let s: Vec<String> = self.source.iter().map(IpNet::to_string).collect();
            parts.push(format!("source {}", s.join(",")));
        }
        if let Some(h) = &self.header {
            parts.push(match &h.value {
                HeaderValueMatch::Present => format!("header {} present", h.name),
                HeaderValueMatch::Equals(v) => format!("header {} = {v:?}", h.name),
                HeaderValueMatch::Prefix(v) => format!("header {} starts with {v:?}", h.name),
            });
        }
        if parts.is_empty() {
            "any request".into()
        } else {
            parts.join(", ")
        }
    }
}

/// A `ruri_domain` pattern, parsed from its text with [`FromStr`]:
/// `example.com` (that host name, ASCII case and a trailing dot ignored),
/// `*.example.com` (any subdomain of example.com, not example.com itself),
/// `*` (any host) or an IP address (`192.0.2.7`, `[2001:db8::1]` or
/// `2001:db8::1`), which matches that address only: an address never equals
/// a host name (RFC 3261 §19.1.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainPattern {
    Any,
    /// Lowercase, no trailing dot.
    Exact(Box<str>),
    /// Lowercase, with the leading dot: `.example.com`.
    Suffix(Box<str>),
    Ip(IpAddr),
}

/// A `ruri_domain` that is none of the forms [`DomainPattern`] accepts; the
/// text as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadDomainPattern(pub String);

impl fmt::Display for BadDomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}: expected a domain (example.com), *.example.com or *",
            self.0
        )
    }
}

impl std::error::Error for BadDomainPattern {}

impl DomainPattern {
    /// Whether a URI's host matches.
    pub fn matches(&self, host: &Host<'_>) -> bool {
        // The host name without its trailing dot.
        fn name(h: &[u8]) -> &[u8] {
            h.strip_suffix(b".").unwrap_or(h)
        }
        match (self, host) {
            (DomainPattern::Any, _) => true,
            (DomainPattern::Ip(ip), h) => h.ip() == Some(*ip),
            (DomainPattern::Exact(want), Host::Name(h)) => {
                name(h).eq_ignore_ascii_case(want.as_bytes())
            }
            (DomainPattern::Suffix(suffix), Host::Name(h)) => {
                let h = name(h);
                h.len() > suffix.len()
                    && h.get(h.len() - suffix.len()..)
                        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix.as_bytes()))
            }
            _ => false,
        }
    }
}

impl FromStr for DomainPattern {
    type Err = BadDomainPattern;

    fn from_str(s: &str) -> Result<DomainPattern, BadDomainPattern> {
        let bad = || BadDomainPattern(s.to_owned());
        let p = s.trim();
        if p == "*" {
            return Ok(DomainPattern::Any);
        }
        let inner = p.strip_prefix('[').and_then(|x| x.strip_suffix(']'));
        if let Some(a) = parse_ipv6(inner.unwrap_or(p).as_bytes()) {
            return Ok(DomainPattern::Ip(IpAddr::V6(a)));
        }
        if inner.is_some() {
            return Err(bad());
        }
        if let Some(a) = parse_ipv4(p.as_bytes()) {
            return Ok(DomainPattern::Ip(IpAddr::V4(a)));
        }
        let lower = p.strip_suffix('.').unwrap_or(p).to_ascii_lowercase();
        let (suffix, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        if !is_hostname(name.as_bytes()) || name.ends_with('.') {
            return Err(bad());
        }
        Ok(if suffix {
            DomainPattern::Suffix(format!(".{name}").into())
        } else {
            DomainPattern::Exact(name.into())
        })
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Any => f.write_str("*"),
            DomainPattern::Exact(d) => f.write_str(d),
            DomainPattern::Suffix(s) => write!(f, "*{s}"),
            DomainPattern::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct CompiledHeader {
    name: Box<[u8]>,
    value: HeaderValueMatch,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Compiled {
    methods: Vec<Box<[u8]>>,
    user_prefix: Option<Box<[u8]>>,
    domain: Option<DomainPattern>,
    source: Vec<IpNet>,
    header: Option<CompiledHeader>,
    set: usize,
}

/// The compiled rule list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    rules: Vec<Compiled>,
    default_set: usize,
}

/// Why a rule list could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// A rule names a set that does not exist.
    UnknownSet {
        rule: String,
        set: String,
        known: Vec<String>,
    },
    UnknownDefaultSet {
        set: String,
        known: Vec<String>,
    },
    /// Two sets share a name, so names cannot resolve.
    DuplicateSetName(String),
    BadMethod {
        rule: String,
        method: String,
    },
    BadHeaderName {
        rule: String,
        name: String,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "no sets are defined".to_owned()
    } else {
        format!("known sets: {}", known.join(", "))
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::UnknownSet { rule, set, known } => {
                write!(
                    f,
                    "{rule}: unknown backend set {set:?} ({})",
                    known_list(known)
                )
            }
            RuleError::UnknownDefaultSet { set, known } => {
                write!(
                    f,
                    "default backend set {set:?} does not exist ({})",
                    known_list(known)
                )
            }
            RuleError::DuplicateSetName(name) => {
                write!(f, "two backend sets are named {name:?}")
            }
            RuleError::BadMethod { rule, method } => {
                write!(f, "{rule}: {method:?} is not a SIP method token")
            }
            RuleError::BadHeaderName { rule, name } => {
                write!(f, "{rule}: {name:?} is not a header name")
            }
        }
    }
}

impl std::error::Error for RuleError {}

/// How errors name a rule: `rule 3 ("tenant-a")` (1-based).
fn rule_label<S>(i: usize, r: &Rule<S>) -> String {
    match &r.name {
        Some(n) => format!("rule {} ({n:?})", i + 1),
        None => format!("rule {}", i + 1),
    }
}

fn boxed(s: &str) -> Box<[u8]> {
    s.as_bytes().into()
}

impl Rules {
    /// Compiles rules that name sets by index. Indices are trusted (use
    /// [`Rules::from_named`] for checked construction).
    pub fn new(rules: Vec<Rule>, default_set: usize) -> Rules {
        let rules = rules
            .into_iter()
            .map(|r| Compiled {
                methods: r.methods.iter().map(|m| boxed(m)).collect(),
                user_prefix: r.ruri_user_prefix.as_deref().map(boxed),
                domain: r.ruri_domain,
                source: r.source,
                header: r.header.map(|h| CompiledHeader {
                    name: boxed(h.name.trim()),
                    value: h.value,
                }),
                set: r.set,
            })
            .collect();
        Rules { rules, default_set }
    }

    /// Resolves set names against `sets` (the configured order gives the
    /// indices) and validates every matcher.
    pub fn from_named(
        rules: Vec<Rule<String>>,
        default_set: &str,
        sets: &[BackendSet],
    ) -> Result<Rules, RuleError> {
        let known: Vec<String> = sets.iter().map(|s| s.name().to_owned()).collect();
        for (i, n) in known.iter().enumerate() {
            if known.get(..i).unwrap_or(&[]).contains(n) {
                return Err(RuleError::DuplicateSetName(n.clone()));
            }
        }
        let index = |name: &str| known.iter().position(|k| k == name.trim());
        let default = index(default_set).ok_or_else(|| RuleError::UnknownDefaultSet {
            set: default_set.to_owned(),
            known: known.clone(),
        })?;
        let mut resolved = Vec::with_capacity(rules.len());
        for (i, r) in rules.into_iter().enumerate() {
            let label = || rule_label(i, &r);
            if let Some(m) = r.methods.iter().find(|m| !is_token_str(m.as_bytes())) {
                return Err(RuleError::BadMethod {
                    rule: label(),
                    method: m.clone(),
                });
            }
            if let Some(h) = &r.header {
                if !is_token_str(h.name.trim().as_bytes()) {
                    return Err(RuleError::BadHeaderName {
                        rule: label(),
                        name: h.name.clone(),
                    });
                }
            }
            let set = index(&r.set).ok_or_else(|| RuleError::UnknownSet {
                rule: label(),
                set: r.set.clone(),
                known: known.clone(),
            })?;
            resolved.push(Rule {
                name: r.name,
                methods: r.methods,
                ruri_user_prefix: r.ruri_user_prefix,
                ruri_domain: r.ruri_domain,
                source: r.source,
                header: r.header,
                set,
            });
        }
        Ok(Rules::new(resolved, default))
    }

    /// The set index for a message from `source`.
    pub fn pick(&self, msg: &Message<'_>, source: IpAddr) -> usize {
        self.matching_rule(msg, source)
            .and_then(|i| self.rules.get(i))
            .map_or(self.default_set, |r| r.set)
    }

    /// The index of the first rule that matches, `None` when the default
    /// set applies (for per-rule counters).
    pub fn matching_rule(&self, msg: &Message<'_>, source: IpAddr) -> Option<usize> {
        let source = source.to_canonical();
        // The R-URI is parsed at most once, and only if a rule asks.
        let mut ruri: Option<Option<Uri<'_>>> = None;
        self.rules.iter().position(|r| {
            if !r.methods.is_empty() {
                let Some(m) = msg.method_bytes() else {
                    return false;
                };
                if !r.methods.iter().any(|x| **x == *m) {
                    return false;
                }
            }
            if !r.source.is_empty() && !r.source.iter().any(|n| n.contains(&source)) {
                return false;
            }
            if r.user_prefix.is_some() || r.domain.is_some() {
                let uri =
                    *ruri.get_or_insert_with(|| msg.request_uri().and_then(|u| Uri::parse(u).ok()));
                let Some(uri) = uri else {
                    return false;
                };
                if let Some(p) = &r.user_prefix {
                    if !user_starts_with(uri.user, p) {
                        return false;
                    }
                }
                if let Some(d) = &r.domain {
                    if !uri.host.is_some_and(|h| d.matches(&h)) {
                        return false;
                    }
                }
            }
            if let Some(h) = &r.header {
                let Some(line) = msg.header_by_name(&h.name) else {
                    return false;
                };
                let v = msg.slice(line.value());
                let ok = match &h.value {
                    HeaderValueMatch::Present => true,
                    HeaderValueMatch::Equals(want) => v == want.as_bytes(),
                    HeaderValueMatch::Prefix(p) => v.starts_with(p.as_bytes()),
                };
                if !ok {
                    return false;
                }
            }
            true
        })
    }

    pub fn default_set(&self) -> usize {
        self.default_set
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Whether the unescaped user part starts with `prefix`.
fn user_starts_with(user: Option<&[u8]>, prefix: &[u8]) -> bool {
    let Some(user) = user else {
        return prefix.is_empty();
    };
    let mut decoded = unescape(user);
    prefix
        .iter()
        .all(|&want| matches!(decoded.next(), Some(Ok(b)) if b == want))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::algorithm::Algorithm;
    use crate::dispatch::set::{BackendId, Destination};

    fn request(method: &str, ruri: &str, extra: &str) -> Vec<u8> {
        format!(
            "{method} {ruri} SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
From: <sip:alice@atlanta.example.com>;tag=1\r\n\
To: <sip:bob@biloxi.example.com>\r\n\
Call-ID: 1-4242@127.0.0.1\r\n\
CSeq: 1 {method}\r\n\
Max-Forwards: 70\r\n\
{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    const V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10));

    const V6_1: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));

    fn domain(pattern: &str) -> DomainPattern {
        pattern.parse().unwrap()
    }

    fn pick(rules: &Rules, raw: &[u8], source: IpAddr) -> usize {
        rules.pick(&Message::parse(raw).unwrap(), source)
    }

    fn one(rule: Rule) -> Rules {
        Rules::new(vec![Rule { set: 1, ..rule }], 0)
    }

    #[test]
    fn method_matcher_is_exact_and_case_sensitive() {
        let r = one(Rule {
            methods: vec!["REGISTER".into(), "SUBSCRIBE".into()],
            ..Rule::default()
        });
        assert_eq!(pick(&r, &request("REGISTER", "sip:example.com", ""), V4), 1);
        assert_eq!(
            pick(&r, &request("SUBSCRIBE", "sip:example.com", ""), V4),
            1
        );
        assert_eq!(pick(&r, &request("INVITE", "sip:example.com", ""), V4), 0);
        assert_eq!(pick(&r, &request("register", "sip:example.com", ""), V4), 0);
    }

    #[test]
    fn ruri_user_prefix_compares_the_unescaped_user() {
        let r = one(Rule {
            ruri_user_prefix: Some("+49".into()),
            ..Rule::default()
        });
        assert_eq!(
            pick(
                &r,
                &request("INVITE", "sip:+4930123@gw.example.com", ""),
                V4
            ),
            1
        );
        assert_eq!(
            pick(
                &r,
                &request("INVITE", "sip:%2B4930123@gw.example.com", ""),
                V4
            ),
            1
        );
        assert_eq!(pick(&r, &request("INVITE", "tel:+4930123", ""), V4), 1);
        assert_eq!(pick(&r, &request("INVITE", "sip:+4", ""), V4), 0);
        assert_eq!(
            pick(&r, &request("INVITE", "sip:+4@gw.example.com", ""), V4),
            0
        );
        assert_eq!(
            pick(&r, &request("INVITE", "sip:+3349@gw.example.com", ""), V4),
            0
        );
        assert_eq!(
            pick(&r, &request("INVITE", "sip:gw.example.com", ""), V4),
            0
        );
    }

    #[test]
    fn ruri_domain_is_case_insensitive_with_suffix_wildcard() {
        let exact = one(Rule {
            ruri_domain: Some(domain("Example.COM")),
            ..Rule::default()
        });
        assert_eq!(
            pick(&exact, &request("INVITE", "sip:bob@example.com", ""), V4),
            1
        );
        assert_eq!(
            pick(&exact, &request("INVITE", "sip:bob@EXAMPLE.com.", ""), V4),
            1
        );
        assert_eq!(
            pick(&exact, &request("INVITE", "sip:bob@a.example.com", ""), V4),
            0
        );
        assert_eq!(
            pick(&exact, &request("INVITE", "sip:bob@badexample.com", ""), V4),
            0
        );

        let wild = one(Rule {
            ruri_domain: Some(domain("*.example.com")),
            ..Rule::default()
        });
        assert_eq!(
            pick(&wild, &request("INVITE", "sip:bob@a.example.com", ""), V4),
            1
        );
        assert_eq!(
            pick(
                &wild,
                &request("INVITE", "sip:bob@b.A.Example.Com:5070", ""),
                V4
            ),
            1
        );
        assert_eq!(
            pick(&wild, &request("INVITE", "sip:bob@example.com", ""), V4),
            0
        );
        assert_eq!(
            pick(&wild, &request("INVITE", "sip:bob@aexample.com", ""), V4),
            0
        );
        assert_eq!(pick(&wild, &request("INVITE", "tel:+123", ""), V4), 0);

        let any = one(Rule {
            ruri_domain: Some(domain("*")),
            ..Rule::default()
        });
        assert_eq!(
            pick(&any, &request("INVITE", "sip:x@[2001:db8::1]", ""), V4),
            1
        );
        assert_eq!(pick(&any, &request("INVITE", "tel:+123", ""), V4), 0);
    }

    #[test]
    fn ruri_domain_ip_patterns_compare_addresses() {
        let v6 = one(Rule {
            ruri_domain: Some(domain("[2001:DB8::1]")),
            ..Rule::default()
        });
        assert_eq!(
            pick(
                &v6,
                &request("INVITE", "sip:x@[2001:db8:0::1]:5060", ""),
                V4
            ),
            1
        );
        assert_eq!(
            pick(&v6, &request("INVITE", "sip:x@[2001:db8::2]", ""), V4),
            0
        );
        let v4 = one(Rule {
            ruri_domain: Some(domain("192.0.2.7")),
            ..Rule::default()
        });
        assert_eq!(pick(&v4, &request("INVITE", "sip:x@192.0.2.7", ""), V4), 1);
        assert_eq!(pick(&v4, &request("INVITE", "sip:x@192.0.2.77", ""), V4), 0);
    }

    #[test]
    fn domain_patterns_parse_to_their_forms_and_print_back() {
        let table: [(&str, DomainPattern, &str); 9] = [
            ("*", DomainPattern::Any, "*"),
            (
                " Example.COM. ",
                DomainPattern::Exact("example.com".into()),
                "example.com",
            ),
            (
                "*.Example.com",
                DomainPattern::Suffix(".example.com".into()),
                "*.example.com",
            ),
            (
                "*.example.com.",
                DomainPattern::Suffix(".example.com".into()),
                "*.example.com",
            ),
            (
                "localhost",
                DomainPattern::Exact("localhost".into()),
                "localhost",
            ),
            (
                "192.0.2.7",
                DomainPattern::Ip([192, 0, 2, 7].into()),
                "192.0.2.7",
            ),
            ("[2001:DB8::1]", DomainPattern::Ip(V6_1), "2001:db8::1"),
            ("2001:db8:0::1", DomainPattern::Ip(V6_1), "2001:db8::1"),
            ("[::1]", DomainPattern::Ip("::1".parse().unwrap()), "::1"),
        ];
        for (text, want, shown) in table {
            let p: DomainPattern = text.parse().unwrap();
            assert_eq!(p, want, "{text}");
            assert_eq!(p.to_string(), shown, "{text}");
            assert_eq!(shown.parse::<DomainPattern>(), Ok(p), "{shown}");
        }
    }

    #[test]
    fn malformed_domain_patterns_are_rejected_with_the_forms() {
        // RFC 3261 §25.1 hostname: alphanumeric labels with inner `-`, a
        // top label starting with a letter.
        for text in [
            "",
            "*.",
            "*.*.com",
            "a.*.com",
            "ex ample.com",
            "-a.com",
            "a-.com",
            "[10.0.0.1]",
            "[example.com]",
            "example.com..",
            "a_b.com",
            "10.0.0",
            "**",
        ] {
            let e = text.parse::<DomainPattern>().unwrap_err();
            assert_eq!(e, BadDomainPattern(text.into()));
            assert_eq!(
                e.to_string(),
                format!("{text:?}: expected a domain (example.com), *.example.com or *")
            );
        }
    }

    #[test]
    fn domain_patterns_match_hosts_rfc3261_19_1_4() {
        let name = |h: &'static str| Host::Name(h.as_bytes());
        let exact = domain("example.com");
        assert!(exact.matches(&name("EXAMPLE.com.")));
        assert!(!exact.matches(&name("a.example.com")));
        let wild = domain("*.example.com");
        assert!(wild.matches(&name("b.a.Example.COM")));
        assert!(!wild.matches(&name("example.com")));
        assert!(!wild.matches(&name("badexample.com")));
        // An address never equals a host name, even a name like one.
        let v4 = domain("192.0.2.7");
        assert!(v4.matches(&Host::V4([192, 0, 2, 7].into())));
        assert!(!v4.matches(&Host::V4([192, 0, 2, 77].into())));
        assert!(!domain("localhost").matches(&Host::V4([127, 0, 0, 1].into())));
        assert!(domain("[2001:db8::1]").matches(&Host::V6("2001:db8:0::1".parse().unwrap())));
        assert!(domain("*").matches(&Host::V4([10, 0, 0, 1].into())));
    }

    #[test]
    fn source_cidr_matches_v4_v6_and_v4_mapped() {
        let r = one(Rule {
            source: vec![
                "10.1.0.0/16".parse().unwrap(),
                "2001:db8:aa::/48".parse().unwrap(),
            ],
            ..Rule::default()
        });
        let raw = request("INVITE", "sip:bob@example.com", "");
        assert_eq!(pick(&r, &raw, "10.1.200.3".parse().unwrap()), 1);
        assert_eq!(pick(&r, &raw, "10.2.0.1".parse().unwrap()), 0);
        assert_eq!(pick(&r, &raw, "2001:db8:aa:1::5".parse().unwrap()), 1);
        assert_eq!(pick(&r, &raw, "2001:db8:ab::5".parse().unwrap()), 0);
        assert_eq!(pick(&r, &raw, "::ffff:10.1.2.3".parse().unwrap()), 1);
    }

    #[test]
    fn header_matcher_presence_equality_and_prefix() {
        let present = one(Rule {
            header: Some(HeaderMatch {
                name: "x-tenant".into(),
                ..HeaderMatch::default()
            }),
            ..Rule::default()
        });
        let with = request("INVITE", "sip:bob@example.com", "X-Tenant:  acme-east \r\n");
        let without = request("INVITE", "sip:bob@example.com", "");
        assert_eq!(pick(&present, &with, V4), 1);
        assert_eq!(pick(&present, &without, V4), 0);

        let equals = one(Rule {
            header: Some(HeaderMatch {
                name: "X-TENANT".into(),
                value: HeaderValueMatch::Equals("acme-east".into()),
            }),
            ..Rule::default()
        });
        assert_eq!(pick(&equals, &with, V4), 1);
        let other = request("INVITE", "sip:bob@example.com", "X-Tenant: acme-west\r\n");
        assert_eq!(pick(&equals, &other, V4), 0);

        let prefix = one(Rule {
            header: Some(HeaderMatch {
                name: "X-Tenant".into(),
                value: HeaderValueMatch::Prefix("acme-".into()),
            }),
            ..Rule::default()
        });
        assert_eq!(pick(&prefix, &with, V4), 1);
        assert_eq!(pick(&prefix, &other, V4), 1);
        assert_eq!(pick(&prefix, &without, V4), 0);

        // Compact form: `f` is From.
        let from = one(Rule {
            header: Some(HeaderMatch {
                name: "f".into(),
                value: HeaderValueMatch::Prefix("<sip:alice@".into()),
            }),
            ..Rule::default()
        });
        assert_eq!(pick(&from, &without, V4), 1);
    }

    #[test]
    fn all_given_matchers_must_match() {
        let r = one(Rule {
            methods: vec!["INVITE".into()],
            ruri_domain: Some(domain("*.example.com")),
            source: vec!["192.0.2.0/24".parse().unwrap()],
            ..Rule::default()
        });
        let inv = request("INVITE", "sip:bob@pbx.example.com", "");
        assert_eq!(pick(&r, &inv, V4), 1);
        assert_eq!(pick(&r, &inv, "198.51.100.1".parse().unwrap()), 0);
        assert_eq!(
            pick(&r, &request("OPTIONS", "sip:bob@pbx.example.com", ""), V4),
            0
        );
        assert_eq!(
            pick(&r, &request("INVITE", "sip:bob@pbx.example.net", ""), V4),
            0
        );
    }

    #[test]
    fn first_matching_rule_wins_and_no_match_uses_the_default() {
        let rules = Rules::new(
            vec![
                Rule {
                    methods: vec!["REGISTER".into()],
                    set: 2,
                    ..Rule::default()
                },
                Rule {
                    ruri_user_prefix: Some("9".into()),
                    set: 3,
                    ..Rule::default()
                },
                Rule {
                    set: 4,
                    ruri_user_prefix: Some("99".into()),
                    ..Rule::default()
                },
            ],
            1,
        );
        assert_eq!(
            pick(&rules, &request("REGISTER", "sip:99@example.com", ""), V4),
            2
        );
        assert_eq!(
            pick(&rules, &request("INVITE", "sip:99@example.com", ""), V4),
            3
        );
        assert_eq!(
            pick(&rules, &request("INVITE", "sip:55@example.com", ""), V4),
            1
        );
        let raw = request("INVITE", "sip:55@example.com", "");
        let m = Message::parse(&raw).unwrap();
        assert_eq!(rules.matching_rule(&m, V4), None);
        // An empty rule matches everything.
        let all = Rules::new(vec![Rule::default()], 7);
        assert_eq!(
            pick(&all, &request("INVITE", "sip:55@example.com", ""), V4),
            0
        );
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn responses_only_match_rules_without_request_matchers() {
        let raw = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
From: <sip:alice@atlanta.example.com>;tag=1\r\n\
To: <sip:bob@biloxi.example.com>;tag=2\r\n\
Call-ID: 1-4242@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";
        let rules = Rules::new(
            vec![
                Rule {
                    methods: vec!["INVITE".into()],
                    set: 1,
                    ..Rule::default()
                },
                Rule {
                    ruri_domain: Some(domain("*")),
                    set: 2,
                    ..Rule::default()
                },
                Rule {
                    source: vec!["192.0.2.0/24".parse().unwrap()],
                    set: 3,
                    ..Rule::default()
                },
            ],
            0,
        );
        assert_eq!(pick(&rules, raw, V4), 3);
    }

    fn sets(names: &[&str]) -> Vec<BackendSet> {
        names
            .iter()
            .map(|n| {
                BackendSet::new(
                    *n,
                    Algorithm::CallId,
                    vec![Destination::new(
                        BackendId(0),
                        "sip:10.0.0.1",
                        "10.0.0.1:5060".parse().unwrap(),
                    )],
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn named_rules_resolve_to_set_indices() {
        let rules = Rules::from_named(
            vec![Rule {
                methods: vec!["REGISTER".into()],
                set: "registrars".into(),
                ..Rule::default()
            }],
            "pbx",
            &sets(&["pbx", "registrars"]),
        )
        .unwrap();
        assert_eq!(rules.default_set(), 0);
        assert_eq!(
            pick(&rules, &request("REGISTER", "sip:example.com", ""), V4),
            1
        );
        assert_eq!(
            pick(&rules, &request("INVITE", "sip:example.com", ""), V4),
            0
        );
    }

    #[test]
    fn named_rules_report_unknown_sets_and_bad_matchers() {
        let s = sets(&["pbx", "registrars"]);
        let e = Rules::from_named(
            vec![
                Rule {
                    set: "pbx".into(),
                    ..Rule::default()
                },
                Rule {
                    name: Some("tenant-a".into()),
                    set: "tenant-a-pbx".into(),
                    ..Rule::default()
                },
            ],
            "pbx",
            &s,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "rule 2 (\"tenant-a\"): unknown backend set \"tenant-a-pbx\" (known sets: pbx, registrars)"
        );
        let e = Rules::from_named(vec![], "nope", &s).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("default backend set \"nope\" does not exist"),
            "{e}"
        );
        let e = Rules::from_named(vec![], "pbx", &sets(&["pbx", "pbx"])).unwrap_err();
        assert_eq!(e, RuleError::DuplicateSetName("pbx".into()));

        let bad = |rule: Rule<String>| Rules::from_named(vec![rule], "pbx", &s).unwrap_err();
        let e = bad(Rule {
            methods: vec!["IN VITE".into()],
            set: "pbx".into(),
            ..Rule::default()
        });
        assert!(matches!(e, RuleError::BadMethod { .. }), "{e}");
        let e = bad(Rule {
            header: Some(HeaderMatch {
                name: "X Tenant:".into(),
                ..HeaderMatch::default()
            }),
            set: "pbx".into(),
            ..Rule::default()
        });
        assert_eq!(e.to_string(), "rule 1: \"X Tenant:\" is not a header name");
    }
}
