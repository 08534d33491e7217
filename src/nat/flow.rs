//! A NAT flow and the two ways sipfront writes one into a URI so that a
//! request coming back to that URI finds it again:
//!
//! - the `alias` URI parameter, `alias=IP~PORT~PROTO` as Kamailio's
//!   nathelper writes it (`set_contact_alias` / `handle_ruri_alias`):
//!   PROTO is nathelper's number (1 udp, 2 tcp, 3 tls, 4 sctp, 5 ws,
//!   6 wss), an IPv6 address is bracketed. sipfront appends `~L`, the
//!   index of its listen socket the flow came in on, when that is not 0
//!   (so the common case stays readable by Kamailio);
//! - the `received` URI parameter, `received=sip:IP:PORT` (nathelper's
//!   `add_rcv_param` with the parameter inside the URI), with
//!   `%3Btransport=X` for another transport than UDP.
//!
//! Both decoders take bytes from the network and never panic (fuzzed by
//! `fuzz/fuzz_targets/nat_alias.rs`).

use crate::sip::host::{parse_host_port, parse_ip, parse_port};
use crate::sip::text::push_ip;
use crate::sip::Transport;
use std::net::{IpAddr, SocketAddr};

/// Where a UA behind a NAT really is: the public address and port its
/// packets come from, over which transport, and the listen socket they
/// reach sipfront on (requests toward it leave from that socket, so the
/// NAT's mapping matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub listen: u8,
}

/// The URI parameter names.
pub const ALIAS: &[u8] = b"alias";
pub const RECEIVED: &[u8] = b"received";

/// nathelper's protocol numbers (Kamailio's `PROTO_*`).
fn proto_number(t: Transport) -> u8 {
    match t {
        Transport::Udp | Transport::Other => 1,
        Transport::Tcp => 2,
        Transport::Tls => 3,
        Transport::Sctp => 4,
        Transport::Ws => 5,
        Transport::Wss => 6,
    }
}

fn proto_of(n: &[u8]) -> Option<Transport> {
    Some(match n {
        b"1" => Transport::Udp,
        b"2" => Transport::Tcp,
        b"3" => Transport::Tls,
        b"4" => Transport::Sctp,
        b"5" => Transport::Ws,
        b"6" => Transport::Wss,
        _ => return None,
    })
}

fn push_host(out: &mut Vec<u8>, ip: IpAddr) {
    if ip.is_ipv6() {
        out.push(b'[');
        push_ip(out, ip);
        out.push(b']');
    } else {
        push_ip(out, ip);
    }
}

/// Appends `IP:PORT` as a URI writes it (IPv6 bracketed).
pub fn push_host_port(out: &mut Vec<u8>, addr: SocketAddr) {
    push_host(out, addr.ip());
    out.push(b':');
    crate::sip::text::push_u32(out, u32::from(addr.port()));
}

impl Flow {
    pub fn udp(addr: SocketAddr, listen: u8) -> Flow {
        Flow {
            addr,
            transport: Transport::Udp,
            listen,
        }
    }

    /// Appends the value of an `alias` parameter: `IP~PORT~PROTO[~L]`.
    pub fn write_alias(&self, out: &mut Vec<u8>) {
        push_host(out, self.addr.ip());
        out.push(b'~');
        crate::sip::text::push_u32(out, u32::from(self.addr.port()));
        out.push(b'~');
        crate::sip::text::push_u32(out, u32::from(proto_number(self.transport)));
        if self.listen != 0 {
            out.push(b'~');
            crate::sip::text::push_u32(out, u32::from(self.listen));
        }
    }

    /// Decodes an `alias` value; `None` for anything malformed (a port of
    /// 0, an unknown protocol number, a name instead of an address).
    pub fn parse_alias(v: &[u8]) -> Option<Flow> {
        let mut parts = v.split(|&b| b == b'~');
        let host = parts.next()?;
        let port = parse_port(parts.next()?).filter(|p| *p != 0)?;
        let transport = proto_of(parts.next()?)?;
        let listen = match parts.next() {
            None => 0,
            Some(l) if (1..=3).contains(&l.len()) && l.iter().all(u8::is_ascii_digit) => {
                std::str::from_utf8(l).ok()?.parse::<u8>().ok()?
            }
            Some(_) => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        let host = match host {
            [b'[', inner @ .., b']'] => inner,
            h => h,
        };
        let ip = parse_ip(host)?;
        Some(Flow {
            addr: SocketAddr::new(ip, port),
            transport,
            listen,
        })
    }

    /// Appends the value of a `received` URI parameter: `sip:IP:PORT`,
    /// `%3Btransport=X` unless UDP (a `;` would end the parameter).
    pub fn write_received(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"sip:");
        push_host_port(out, self.addr);
        if !matches!(self.transport, Transport::Udp | Transport::Other) {
            out.extend_from_slice(b"%3Btransport=");
            out.extend_from_slice(self.transport.as_lowercase_str().as_bytes());
        }
    }

    /// Decodes a `received` value (quoted or not, `sip:` optional, the
    /// transport escaped or not); listen socket 0.
    pub fn parse_received(v: &[u8]) -> Option<Flow> {
        let v = match v {
            [b'"', inner @ .., b'"'] => inner,
            v => v,
        };
        let v = strip_prefix_ic(v, b"sip:").unwrap_or(v);
        // The host:port ends at the first `;` or escaped `%3B`.
        let end = (0..v.len())
            .find(|&i| {
                v[i] == b';' || v[i..].len() >= 3 && v[i..i + 3].eq_ignore_ascii_case(b"%3b")
            })
            .unwrap_or(v.len());
        let (hostport, rest) = v.split_at(end);
        let (host, port) = parse_host_port(hostport)?;
        let ip = host.ip()?;
        let port = port.unwrap_or(5060);
        if port == 0 {
            return None;
        }
        let transport = match find_ic(rest, b"transport=") {
            Some(i) => {
                let t = &rest[i + b"transport=".len()..];
                let t = &t[..t
                    .iter()
                    .position(|&b| b == b';' || b == b'%')
                    .unwrap_or(t.len())];
                match Transport::from_bytes(t) {
                    Transport::Other => return None,
                    t => t,
                }
            }
            None => Transport::Udp,
        };
        Some(Flow {
            addr: SocketAddr::new(ip, port),
            transport,
            listen: 0,
        })
    }
}

fn strip_prefix_ic<'a>(v: &'a [u8], p: &[u8]) -> Option<&'a [u8]> {
    (v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p)).then(|| &v[p.len()..])
}

fn find_ic(v: &[u8], needle: &[u8]) -> Option<usize> {
    v.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(f: &Flow) -> String {
        let mut v = Vec::new();
        f.write_alias(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn alias_round_trips_ipv4_and_ipv6_like_nathelper() {
        let f = Flow::udp("203.0.113.5:40312".parse().unwrap(), 0);
        assert_eq!(alias(&f), "203.0.113.5~40312~1");
        assert_eq!(Flow::parse_alias(alias(&f).as_bytes()), Some(f));
        let f = Flow {
            addr: "[2001:db8::7]:5062".parse().unwrap(),
            transport: Transport::Tcp,
            listen: 2,
        };
        assert_eq!(alias(&f), "[2001:db8::7]~5062~2~2");
        assert_eq!(Flow::parse_alias(alias(&f).as_bytes()), Some(f));
        // Kamailio's form without brackets decodes too.
        assert_eq!(
            Flow::parse_alias(b"2001:db8::7~5062~2").map(|f| f.addr),
            Some("[2001:db8::7]:5062".parse().unwrap())
        );
    }

    #[test]
    fn malformed_aliases_are_refused() {
        for bad in [
            &b""[..],
            b"1.2.3.4",
            b"1.2.3.4~5060",
            b"1.2.3.4~0~1",
            b"1.2.3.4~70000~1",
            b"1.2.3.4~5060~9",
            b"host.example~5060~1",
            b"1.2.3.4~5060~1~x",
            b"1.2.3.4~5060~1~300",
            b"1.2.3.4~5060~1~1~1",
            b"[1.2.3.4~5060~1",
        ] {
            assert_eq!(
                Flow::parse_alias(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn received_round_trips_add_rcv_param_form() {
        let f = Flow::udp("198.51.100.9:1024".parse().unwrap(), 0);
        let mut v = Vec::new();
        f.write_received(&mut v);
        assert_eq!(v, b"sip:198.51.100.9:1024");
        assert_eq!(Flow::parse_received(&v), Some(f));
        let f = Flow {
            addr: "[2001:db8::1]:5061".parse().unwrap(),
            transport: Transport::Tls,
            listen: 0,
        };
        let mut v = Vec::new();
        f.write_received(&mut v);
        assert_eq!(v, b"sip:[2001:db8::1]:5061%3Btransport=tls");
        assert_eq!(Flow::parse_received(&v), Some(f));
        // Quoted, as nathelper writes the header-parameter form.
        let q = Flow::parse_received(b"\"sip:192.0.2.1:5070;transport=tcp\"").unwrap();
        assert_eq!(q.addr, "192.0.2.1:5070".parse().unwrap());
        assert_eq!(q.transport, Transport::Tcp);
        assert_eq!(Flow::parse_received(b"sip:example.com:5060"), None);
        assert_eq!(Flow::parse_received(b"sip:1.2.3.4;transport=foo"), None);
    }
}
