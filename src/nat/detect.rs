//! NAT detection: is the UA that sent this message behind a NAT? Each test
//! looks at one fact, is selected on its own (`nat.tests`) and maps to a
//! flag of Kamailio nathelper's `nat_uac_test` (docs/nat.md has the table).
//! The verdict is the set of tests that hit; any hit means "behind NAT".
//!
//! For a request the Via tests compare the top Via's sent-by with the
//! source (RFC 3261 §18.2.1 `received`, RFC 3581 `rport`). A response's top
//! Via is sipfront's own, so for a response from a UA the address tests
//! compare the Contact (the UA's own claim of where it is) with the source.

use crate::sip::host::Host;
use crate::sip::sdp::Sdp;
use crate::sip::{Message, Via};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One detection test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Test {
    /// The (first) Contact's host is a private, shared, loopback or
    /// link-local address (nathelper flag 1).
    ContactPrivate,
    /// The top Via's sent-by address is not the source address (flag 2,
    /// the "received" test; a name in the Via counts as different).
    ViaAddress,
    /// The top Via's sent-by port (5060 when absent) is not the source
    /// port (flag 16).
    ViaPort,
    /// The top Via's sent-by is a private address (flag 4).
    ViaPrivate,
    /// The source address itself is private (flag 32): the UA and sipfront
    /// share a private network, or sipfront sits behind the NAT with it.
    SourcePrivate,
    /// The Contact's port is not the source port (flag 128; legal for UAs
    /// that send from another port than they listen on).
    ContactPort,
    /// An SDP connection address (session or media level) is private
    /// (flag 8).
    SdpPrivate,
}

impl Test {
    pub const ALL: [Test; 7] = [
        Test::ContactPrivate,
        Test::ViaAddress,
        Test::ViaPort,
        Test::ViaPrivate,
        Test::SourcePrivate,
        Test::ContactPort,
        Test::SdpPrivate,
    ];

    /// The name in `nat.tests` and in the metrics' `test` label.
    pub const fn name(self) -> &'static str {
        match self {
            Test::ContactPrivate => "contact-private",
            Test::ViaAddress => "via-address",
            Test::ViaPort => "via-port",
            Test::ViaPrivate => "via-private",
            Test::SourcePrivate => "source-private",
            Test::ContactPort => "contact-port",
            Test::SdpPrivate => "sdp-private",
        }
    }

    /// The matching flag of nathelper's `nat_uac_test`.
    pub const fn nathelper_flag(self) -> u16 {
        match self {
            Test::ContactPrivate => 1,
            Test::ViaAddress => 2,
            Test::ViaPrivate => 4,
            Test::SdpPrivate => 8,
            Test::ViaPort => 16,
            Test::SourcePrivate => 32,
            Test::ContactPort => 128,
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }

    pub fn from_name(s: &str) -> Option<Test> {
        let s = s.trim();
        Test::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
    }
}

/// A set of tests: the ones configured, or the ones that hit (a verdict).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tests(u8);

impl Tests {
    /// nathelper's usual `nat_uac_test("19")`: Contact private, Via
    /// address, Via port.
    pub const DEFAULT: Tests =
        Tests(Test::ContactPrivate.bit() | Test::ViaAddress.bit() | Test::ViaPort.bit());
    pub const NONE: Tests = Tests(0);

    pub fn of(tests: &[Test]) -> Tests {
        Tests(tests.iter().fold(0, |a, t| a | t.bit()))
    }

    pub const fn contains(self, t: Test) -> bool {
        self.0 & t.bit() != 0
    }

    pub fn insert(&mut self, t: Test) {
        self.0 |= t.bit();
    }

    /// True when no test hit: not behind NAT.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Test> {
        Test::ALL.into_iter().filter(move |t| self.contains(*t))
    }

    /// The equivalent `nat_uac_test` flags.
    pub fn nathelper_flags(self) -> u16 {
        self.iter().map(Test::nathelper_flag).sum()
    }
}

impl std::fmt::Display for Tests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.iter().map(Test::name).collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// Private, shared or otherwise non-routable addresses a NAT hides:
/// RFC 1918, RFC 6598 (carrier-grade NAT, 100.64/10), RFC 7335 / RFC 6890
/// (192.0.0.0/24), loopback, link-local; for IPv6 unique-local (fc00::/7,
/// RFC 4193), link-local (fe80::/10), loopback, and v4-mapped forms of the
/// IPv4 ranges.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_private_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_private_v4(v4),
            None => is_private_v6(a),
        },
    }
}

fn is_private_v4(a: Ipv4Addr) -> bool {
    let [o1, o2, o3, _] = a.octets();
    a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || (o1 == 100 && (o2 & 0xc0) == 64)
        || (o1 == 192 && o2 == 0 && o3 == 0)
}

fn is_private_v6(a: Ipv6Addr) -> bool {
    let s0 = a.segments()[0];
    a.is_loopback() || (s0 & 0xfe00) == 0xfc00 || (s0 & 0xffc0) == 0xfe80
}

/// The first Contact's URI host (an IP literal or not) and port, if any.
fn first_contact(m: &Message<'_>) -> Option<(Option<IpAddr>, u16)> {
    let c = m.contacts().next()?.ok()?;
    let a = c.addr()?;
    let host = a.uri.host?;
    Some((host.ip(), a.uri.port_or_default()))
}

fn sdp_private(m: &Message<'_>) -> bool {
    let body = m.body();
    if body.is_empty()
        || !m
            .content_type()
            .is_some_and(|t| t.to_ascii_lowercase().windows(3).any(|w| w == b"sdp"))
    {
        return false;
    }
    let Ok(sdp) = Sdp::parse(body) else {
        return false;
    };
    let private = |c: &crate::sip::sdp::Connection<'_>| c.ip.is_some_and(is_private);
    sdp.connection().is_some_and(private)
        || sdp
            .media()
            .iter()
            .any(|md| md.connection().is_some_and(private))
}

/// The tests in `tests` that hit for request `m` with top Via `via`,
/// received from `src`.
pub fn request(m: &Message<'_>, via: &Via<'_>, src: SocketAddr, tests: Tests) -> Tests {
    let mut hit = Tests::NONE;
    let via_ip = via.host.ip();
    if tests.contains(Test::ViaAddress) && via_ip != Some(src.ip()) {
        hit.insert(Test::ViaAddress);
    }
    if tests.contains(Test::ViaPort) && via.port_or_default() != src.port() {
        hit.insert(Test::ViaPort);
    }
    if tests.contains(Test::ViaPrivate) && via_ip.is_some_and(is_private) {
        hit.insert(Test::ViaPrivate);
    }
    common(m, src, tests, &mut hit);
    hit
}

/// The tests in `tests` that hit for a response `m` a UA sent from `src`.
pub fn response(m: &Message<'_>, src: SocketAddr, tests: Tests) -> Tests {
    let mut hit = Tests::NONE;
    if tests.contains(Test::ViaAddress) {
        if let Some((ip, _)) = first_contact(m) {
            if ip != Some(src.ip()) {
                hit.insert(Test::ViaAddress);
            }
        }
    }
    common(m, src, tests, &mut hit);
    hit
}

fn common(m: &Message<'_>, src: SocketAddr, tests: Tests, hit: &mut Tests) {
    if tests.contains(Test::SourcePrivate) && is_private(src.ip()) {
        hit.insert(Test::SourcePrivate);
    }
    if tests.contains(Test::ContactPrivate) || tests.contains(Test::ContactPort) {
        if let Some((ip, port)) = first_contact(m) {
            if tests.contains(Test::ContactPrivate) && ip.is_some_and(is_private) {
                hit.insert(Test::ContactPrivate);
            }
            if tests.contains(Test::ContactPort) && port != src.port() {
                hit.insert(Test::ContactPort);
            }
        }
    }
    if tests.contains(Test::SdpPrivate) && sdp_private(m) {
        hit.insert(Test::SdpPrivate);
    }
}

/// Only an IP literal can be judged private: a name never is.
pub fn host_is_private(h: &Host<'_>) -> bool {
    h.ip().is_some_and(is_private)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(via: &str, contact: &str, body: &str) -> Vec<u8> {
        let ct = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".to_string()
        };
        format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK1\r\n\
             From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
             Contact: {contact}\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn run(via: &str, contact: &str, body: &str, src: &str, tests: &[Test]) -> Tests {
        let b = msg(via, contact, body);
        let m = Message::parse(&b).unwrap();
        let v = m.top_via().unwrap();
        request(&m, &v, src.parse().unwrap(), Tests::of(tests))
    }

    #[test]
    fn private_ranges_rfc1918_rfc6598_rfc4193() {
        for p in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.7",
            "127.0.0.1",
            "169.254.1.1",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.2.1",
            "203.0.113.5",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
    }

    #[test]
    fn contact_private_is_nathelper_flag_1() {
        let all = [Test::ContactPrivate];
        assert!(run(
            "1.2.3.4",
            "<sip:a@192.168.1.5:5060>",
            "",
            "1.2.3.4:5060",
            &all
        )
        .contains(Test::ContactPrivate));
        assert!(
            run("1.2.3.4", "<sip:a@[fd00::5]>", "", "1.2.3.4:5060", &all)
                .contains(Test::ContactPrivate)
        );
        assert!(run("1.2.3.4", "<sip:a@1.2.3.4>", "", "1.2.3.4:5060", &all).is_empty());
        // A name is never private.
        assert!(run("1.2.3.4", "<sip:a@phone.lan>", "", "1.2.3.4:5060", &all).is_empty());
    }

    #[test]
    fn via_address_is_the_rfc3261_18_2_1_received_test() {
        let t = [Test::ViaAddress];
        assert!(!run("10.0.0.5:5060", "<sip:a@x>", "", "203.0.113.9:5060", &t).is_empty());
        assert!(run("203.0.113.9:5060", "<sip:a@x>", "", "203.0.113.9:5060", &t).is_empty());
        assert!(!run("pc.example.com", "<sip:a@x>", "", "203.0.113.9:5060", &t).is_empty());
        assert!(!run("[2001:db8::1]", "<sip:a@x>", "", "[2001:db8::2]:5060", &t).is_empty());
        assert!(run("[2001:db8::1]", "<sip:a@x>", "", "[2001:db8::1]:5060", &t).is_empty());
    }

    #[test]
    fn via_port_defaults_to_5060_rfc3581() {
        let t = [Test::ViaPort];
        assert!(run("1.2.3.4", "<sip:a@x>", "", "1.2.3.4:5060", &t).is_empty());
        assert!(!run("1.2.3.4", "<sip:a@x>", "", "1.2.3.4:40000", &t).is_empty());
        assert!(!run("1.2.3.4:5070", "<sip:a@x>", "", "1.2.3.4:5060", &t).is_empty());
    }

    #[test]
    fn via_private_and_source_private() {
        let t = [Test::ViaPrivate, Test::SourcePrivate];
        let hit = run("192.168.0.2", "<sip:a@x>", "", "10.0.0.1:5060", &t);
        assert!(hit.contains(Test::ViaPrivate) && hit.contains(Test::SourcePrivate));
        assert!(run("8.8.8.8", "<sip:a@x>", "", "8.8.4.4:5060", &t).is_empty());
    }

    #[test]
    fn contact_port_is_flag_128() {
        let t = [Test::ContactPort];
        assert!(run("1.2.3.4", "<sip:a@1.2.3.4:5062>", "", "1.2.3.4:5062", &t).is_empty());
        assert!(!run("1.2.3.4", "<sip:a@1.2.3.4:5062>", "", "1.2.3.4:6000", &t).is_empty());
        assert!(!run("1.2.3.4", "<sip:a@1.2.3.4>", "", "1.2.3.4:6000", &t).is_empty());
    }

    #[test]
    fn sdp_private_reads_session_and_media_connections_flag_8() {
        let t = [Test::SdpPrivate];
        let private = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 192.168.1.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        let public_media_private = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP6 fd00::9\r\n";
        let public = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert!(!run("1.2.3.4", "<sip:a@x>", private, "1.2.3.4:5060", &t).is_empty());
        assert!(!run(
            "1.2.3.4",
            "<sip:a@x>",
            public_media_private,
            "1.2.3.4:5060",
            &t
        )
        .is_empty());
        assert!(run("1.2.3.4", "<sip:a@x>", public, "1.2.3.4:5060", &t).is_empty());
    }

    #[test]
    fn only_selected_tests_run_and_the_default_is_nat_uac_test_19() {
        assert_eq!(Tests::DEFAULT.nathelper_flags(), 19);
        // Everything differs, but no test is selected.
        assert!(run("10.0.0.5:5070", "<sip:a@10.0.0.5>", "", "8.8.8.8:4000", &[]).is_empty());
        let hit = run(
            "10.0.0.5:5070",
            "<sip:a@10.0.0.5>",
            "",
            "8.8.8.8:4000",
            &Test::ALL,
        );
        assert!(hit.contains(Test::ViaAddress) && hit.contains(Test::ContactPrivate));
        assert!(!hit.contains(Test::SourcePrivate));
        assert_eq!(Test::from_name("Via-Port"), Some(Test::ViaPort));
        assert_eq!(
            Tests::of(&[Test::ViaPort, Test::SdpPrivate]).to_string(),
            "via-port,sdp-private"
        );
    }

    #[test]
    fn a_response_compares_the_contact_with_its_source() {
        let b = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContact: <sip:b@192.168.7.7:5062>\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(b).unwrap();
        let hit = response(&m, "203.0.113.1:40000".parse().unwrap(), Tests::DEFAULT);
        assert!(hit.contains(Test::ViaAddress) && hit.contains(Test::ContactPrivate));
        let hit = response(
            &m,
            "192.168.7.7:5062".parse().unwrap(),
            Tests::of(&[Test::ViaAddress]),
        );
        assert!(hit.is_empty());
    }
}
