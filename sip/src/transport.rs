//! The SIP transport (RFC 3261 §18, §20.42; RFC 7118 for WebSocket): the
//! one type for a Via's transport, a listen socket's and a destination's.

use super::scan::eq_ic;

/// A SIP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
    /// An extension transport, kept as written where it was read (e.g.
    /// [`crate::Via::transport_raw`]).
    Other,
}

impl Transport {
    /// Every transport with a name.
    pub const KNOWN: [Transport; 6] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Sctp,
        Transport::Ws,
        Transport::Wss,
    ];

    /// A transport token, any case (RFC 3261 §7.3.1: `transport` is
    /// case-insensitive); [`Transport::Other`] for an unknown one.
    pub fn from_bytes(b: &[u8]) -> Transport {
        if eq_ic(b, b"UDP") {
            Transport::Udp
        } else if eq_ic(b, b"TCP") {
            Transport::Tcp
        } else if eq_ic(b, b"TLS") {
            Transport::Tls
        } else if eq_ic(b, b"SCTP") {
            Transport::Sctp
        } else if eq_ic(b, b"WS") {
            Transport::Ws
        } else if eq_ic(b, b"WSS") {
            Transport::Wss
        } else {
            Transport::Other
        }
    }

    /// The token as a Via writes it (`SIP/2.0/UDP`): uppercase. Empty for
    /// [`Transport::Other`].
    pub const fn as_str(&self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other => "",
        }
    }

    /// The token as a URI's `transport=` parameter (RFC 3261 §19.1.1) and
    /// a listen address (`udp:IP:PORT`, as Kamailio's `listen=`) write it:
    /// lowercase. Empty for [`Transport::Other`].
    pub const fn as_lowercase_str(&self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Sctp => "sctp",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
            Transport::Other => "",
        }
    }

    /// True for connection-oriented transports (RFC 3261 §18).
    pub const fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The port used when none is given: 5061 over TLS (and WSS), 5060
    /// otherwise (RFC 3261 §19.1.2, §18.2.2).
    pub const fn default_port(&self) -> u16 {
        match self {
            Transport::Tls | Transport::Wss => 5061,
            _ => 5060,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_any_case_rfc3261_7_3_1() {
        for t in Transport::KNOWN {
            assert_eq!(Transport::from_bytes(t.as_str().as_bytes()), t);
            assert_eq!(Transport::from_bytes(t.as_lowercase_str().as_bytes()), t);
            assert_eq!(t.as_str().to_ascii_lowercase(), t.as_lowercase_str());
        }
        assert_eq!(Transport::from_bytes(b"Tls"), Transport::Tls);
        assert_eq!(Transport::from_bytes(b"DCCP"), Transport::Other);
        assert_eq!(Transport::from_bytes(b""), Transport::Other);
        assert_eq!(Transport::from_bytes(b"UDPX"), Transport::Other);
    }

    #[test]
    fn default_ports_rfc3261_19_1_2() {
        assert_eq!(Transport::Udp.default_port(), 5060);
        assert_eq!(Transport::Tcp.default_port(), 5060);
        assert_eq!(Transport::Tls.default_port(), 5061);
        assert_eq!(Transport::Wss.default_port(), 5061);
        assert!(!Transport::Udp.is_reliable());
        assert!(Transport::Tcp.is_reliable());
    }
}
