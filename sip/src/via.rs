//! The Via header value (RFC 3261 §20.42, §18.2.1; RFC 3581 rport).

use super::host::{parse_host, parse_port, split_host_port, Host};
use super::params::Params;
use super::scan::{self, is_token_str};
use super::transport::Transport;

/// The RFC 3261 §8.1.1.7 magic cookie that starts a compliant branch.
pub const MAGIC_COOKIE: &[u8] = b"z9hG4bK";

/// One Via value, borrowed from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    /// The whole value, trimmed; its end is where new parameters go.
    pub raw: &'a [u8],
    pub protocol_name: &'a [u8],
    pub protocol_version: &'a [u8],
    pub transport: Transport,
    pub transport_raw: &'a [u8],
    /// The sent-by host as written (brackets kept for IPv6).
    pub host_raw: &'a [u8],
    pub host: Host<'a>,
    pub port: Option<u16>,
    pub params: Params<'a>,
    pub branch: Option<&'a [u8]>,
    /// `received` (RFC 3261 §18.2.1), as written.
    pub received: Option<&'a [u8]>,
    /// `rport` (RFC 3581 §3): `Some(None)` when present without a value.
    pub rport: Option<Option<u16>>,
    /// The `rport` parameter as written (name, and value when present), so
    /// a proxy can fill it in place without searching again.
    pub rport_param: Option<crate::Param<'a>>,
    pub maddr: Option<&'a [u8]>,
    pub ttl: Option<u8>,
}

/// Splits off one `/`-separated part of sent-protocol, LWS allowed around the
/// slash (RFC 3261 §25.1 `SLASH = SWS "/" SWS`).
fn proto_part(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let slash = s.iter().position(|&b| b == b'/')?;
    let part = scan::trim(&s[..slash]);
    is_token_str(part).then_some((part, &s[slash + 1..]))
}

impl<'a> Via<'a> {
    /// Parses one Via value (one element of a comma-separated Via header).
    pub fn parse(v: &'a [u8]) -> Option<Via<'a>> {
        let raw = scan::trim(v);
        if let Some(via) = Via::parse_common(raw) {
            return Some(via);
        }
        Via::parse_general(raw)
    }

    /// The usual shape, in one pass: `SIP/2.0/` transport, one SP, a host
    /// name or IPv4 address, an optional port, then `;name[=value]`
    /// parameters whose names and values are tokens, no LWS anywhere.
    /// `None` for anything else: [`Via::parse_general`] decides, so the two
    /// agree on whatever this accepts (a proptest checks it).
    #[inline]
    fn parse_common(raw: &'a [u8]) -> Option<Via<'a>> {
        let head = raw.first_chunk::<8>()?;
        if u64::from_le_bytes(*head) != u64::from_le_bytes(*b"SIP/2.0/") {
            return None;
        }
        let n = raw.len();
        let token = |i: usize| raw.get(i).is_some_and(|&b| scan::is_token(b));
        let mut i = 8;
        while token(i) {
            i += 1;
        }
        if i == 8 || raw.get(i) != Some(&b' ') {
            return None;
        }
        let transport_raw = &raw[8..i];
        i += 1;
        let host_start = i;
        let (host, end) = crate::host::scan_host(raw, host_start)?;
        i = end;
        let host_raw = &raw[host_start..i];
        let mut port = None;
        if raw.get(i) == Some(&b':') {
            let p = i + 1;
            i = p;
            while raw.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            port = Some(parse_port(&raw[p..i])?);
        }
        let params = Params::new(&raw[i..]);
        let mut via = Via {
            raw,
            protocol_name: &raw[..3],
            protocol_version: &raw[4..7],
            transport: Transport::from_bytes(transport_raw),
            transport_raw,
            host_raw,
            host,
            port,
            params,
            branch: None,
            received: None,
            rport: None,
            rport_param: None,
            maddr: None,
            ttl: None,
        };
        while i < n {
            if raw[i] != b';' {
                return None;
            }
            i += 1;
            let name_start = i;
            while token(i) {
                i += 1;
            }
            let name = &raw[name_start..i];
            if name.is_empty() {
                return None;
            }
            let value = if raw.get(i) == Some(&b'=') {
                let v = i + 1;
                i = scan::find_of(raw, v, [b';']).unwrap_or(n);
                let value = &raw[v..i];
                if !is_token_str(value) {
                    return None;
                }
                Some(value)
            } else {
                None
            };
            match (name.len(), value) {
                (6, Some(b)) if scan::token_eq_ic(name, b"branch") => via.branch = Some(b),
                (8, Some(r)) if scan::token_eq_ic(name, b"received") => {
                    crate::host::parse_ip(r)?;
                    via.received = Some(r);
                }
                (5, _) if scan::token_eq_ic(name, b"rport") => {
                    via.rport_param = Some(crate::Param { name, value });
                    via.rport = Some(match value {
                        None => None,
                        Some(v) => Some(parse_port(v)?),
                    });
                }
                (5, Some(m)) if scan::token_eq_ic(name, b"maddr") => {
                    parse_host(m)?;
                    via.maddr = Some(m);
                }
                (3, Some(t)) if scan::token_eq_ic(name, b"ttl") => {
                    via.ttl = Some(u8::try_from(scan::parse_u32(t, 3)?).ok()?);
                }
                // A name the proxy acts on, without its value: the general
                // parser answers.
                (6 | 8 | 5 | 3, None)
                    if ["branch", "received", "maddr", "ttl"]
                        .iter()
                        .any(|k| scan::token_eq_ic(name, k.as_bytes())) =>
                {
                    return None;
                }
                _ => {}
            }
        }
        Some(via)
    }

    /// [`Via::parse`] for every shape.
    fn parse_general(raw: &'a [u8]) -> Option<Via<'a>> {
        // Nearly every Via starts `SIP/2.0/`, for which the general
        // sent-protocol rule below yields the same parts.
        let sip20 = raw
            .first_chunk::<8>()
            .is_some_and(|w| u64::from_le_bytes(*w) == u64::from_le_bytes(*b"SIP/2.0/"));
        let (protocol_name, protocol_version, rest) = match raw.get(..8) {
            Some(_) if sip20 => (&raw[..3], &raw[4..7], &raw[8..]),
            _ => {
                let (name, rest) = proto_part(raw)?;
                let (version, rest) = proto_part(rest)?;
                (name, version, rest)
            }
        };
        let rest = scan::trim_start(rest);
        let t_end = rest.iter().position(|&b| !scan::is_token(b))?;
        let transport_raw = &rest[..t_end];
        if transport_raw.is_empty() {
            return None;
        }
        let rest = &rest[t_end..];
        // LWS is required between the transport and sent-by.
        if !rest.first().is_some_and(|&b| scan::is_lws(b)) {
            return None;
        }
        let semi = scan::find_of(rest, 0, [b';']).unwrap_or(rest.len());
        let sent_by = scan::trim(&rest[..semi]);
        let params = Params::new(&rest[semi..]);
        let (h, p) = split_host_port(sent_by);
        let host_raw = scan::trim(h);
        let host = parse_host(host_raw)?;
        let port = match p {
            Some(p) => Some(parse_port(scan::trim(p))?),
            None => None,
        };
        let mut via = Via {
            raw,
            protocol_name,
            protocol_version,
            transport: Transport::from_bytes(transport_raw),
            transport_raw,
            host_raw,
            host,
            port,
            params,
            branch: None,
            received: None,
            rport: None,
            rport_param: None,
            maddr: None,
            ttl: None,
        };
        let mut it = params.into_iter();
        for p in &mut it {
            if !is_token_str(p.name) {
                return None;
            }
            // The names a proxy acts on, told apart by length first.
            match p.name.len() {
                6 if scan::token_eq_ic(p.name, b"branch") => {
                    let b = p.value.filter(|b| is_token_str(b))?;
                    via.branch = Some(b);
                }
                8 if scan::token_eq_ic(p.name, b"received") => {
                    let r = p.value?;
                    // RFC 3261 §20.42: an IPv4 or IPv6 address (RFC 5118
                    // allows the bracketless IPv6 form as well).
                    crate::host::parse_ip(r)?;
                    via.received = Some(r);
                }
                5 if scan::token_eq_ic(p.name, b"rport") => {
                    via.rport_param = Some(p);
                    via.rport = Some(match p.value {
                        None | Some(b"") => None,
                        Some(v) => Some(parse_port(v)?),
                    });
                }
                5 if scan::token_eq_ic(p.name, b"maddr") => {
                    let m = p.value?;
                    parse_host(m)?;
                    via.maddr = Some(m);
                }
                3 if scan::token_eq_ic(p.name, b"ttl") => {
                    let t = scan::parse_u32(p.value?, 3)?;
                    via.ttl = Some(u8::try_from(t).ok()?);
                }
                _ => {}
            }
        }
        if it.broken {
            return None;
        }
        Some(via)
    }

    /// True when the branch carries the RFC 3261 magic cookie.
    pub fn has_cookie(&self) -> bool {
        self.branch.is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }

    /// The port a response goes to when no rport/received applies:
    /// the sent-by port or the transport default (RFC 3261 §18.2.2).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(self.transport.default_port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn via_fields_rfc3261_20_42() {
        let v = Via::parse(b"SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5067;maddr=224.2.0.1;ttl=16;x=y").unwrap();
        assert_eq!(v.protocol_name, b"SIP");
        assert_eq!(v.protocol_version, b"2.0");
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.host, Host::Name(b"pc33.atlanta.com"));
        assert_eq!(v.port, Some(5066));
        assert_eq!(v.branch, Some(&b"z9hG4bK776asdhds"[..]));
        assert!(v.has_cookie());
        assert_eq!(v.received, Some(&b"192.0.2.1"[..]));
        assert_eq!(v.rport, Some(Some(5067)));
        assert_eq!(v.maddr, Some(&b"224.2.0.1"[..]));
        assert_eq!(v.ttl, Some(16));
        assert_eq!(v.params.value(b"x"), Some(Some(&b"y"[..])));
    }

    #[test]
    fn rport_without_value_rfc3581_3() {
        let v = Via::parse(b"SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bKx").unwrap();
        assert_eq!(v.rport, Some(None));
        assert_eq!(v.host, Host::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(v.port_or_default(), 5060);
    }

    #[test]
    fn lws_everywhere_rfc4475_3_1_1_1() {
        let v = Via::parse(b"SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.host_raw, b"192.0.2.2");
        assert!(!v.has_cookie());
        let v = Via::parse(
            b"SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ",
        )
        .unwrap();
        assert_eq!(v.transport, Transport::Tcp);
        assert_eq!(v.branch, Some(&b"z9hG4bK9ikj8"[..]));
        let v = Via::parse(b"SIP/2.0/UDP host : 5070 ;branch=z9hG4bK1").unwrap();
        assert_eq!(v.port, Some(5070));
    }

    #[test]
    fn ipv6_sent_by_rfc5118() {
        let v = Via::parse(
            b"SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3-111;received=2001:db8::9:255",
        )
        .unwrap();
        assert!(matches!(v.host, Host::V6(_)));
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.received, Some(&b"2001:db8::9:255"[..]));
        let v = Via::parse(b"SIP/2.0/TLS [::1];branch=z9hG4bK1").unwrap();
        assert_eq!(v.port_or_default(), 5061);
    }

    proptest::proptest! {
        #[test]
        fn one_pass_shape_agrees_with_the_general_parser(
            t in "UDP|TCP|tls|X-Y|UDP ",
            host in "[a-z0-9.-]{0,12}|[0-9]{1,3}(\\.[0-9]{1,4}){3}|\\[::1\\]",
            port in "(:[0-9]{0,6})?",
            params in "(;(branch|received|rport|maddr|ttl|BRANCH|x|)(=[a-zA-Z0-9.:\" -]{0,12})?){0,4};?",
        ) {
            let v = format!("SIP/2.0/{t} {host}{port}{params}");
            let raw = v.as_bytes();
            if let Some(fast) = Via::parse_common(raw) {
                let general = Via::parse_general(raw);
                proptest::prop_assert_eq!(Some(fast), general, "{}", v);
            }
        }
    }

    #[test]
    fn usual_vias_take_the_one_pass_path() {
        for v in [
            &b"SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK74bf9.1a2b3c4d5e;rport"[..],
            b"SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKsf0000123456789abcdef.0000000100000002",
            b"SIP/2.0/TCP pc33.atlanta.com;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5060",
        ] {
            assert!(
                Via::parse_common(v).is_some(),
                "{}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn bad_vias() {
        for bad in [
            &b"SIP/2.0 host"[..],
            b"SIP/2.0/UDP",
            b"SIP/2.0/UDPhost",
            b"SIP/2.0/UDP host:99999",
            b"SIP/2.0/UDP 2001:db8::1",
            b"SIP/2.0/UDP host;branch",
            b"SIP/2.0/UDP host;branch=a\"b",
            b"SIP/2.0/UDP host;received=example.com",
            b"SIP/2.0/UDP host;rport=x",
            b"SIP/2.0/UDP host;ttl=256",
            b"SIP/2.0/UDP h;p=\"unterminated",
        ] {
            assert!(
                Via::parse(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
