//! Who sipfront is: the addresses and names that, in a Route, Request-URI or
//! Via, mean "this proxy" (RFC 3261 §16.4, §16.3 step 4), and what it writes
//! about itself in Via and Record-Route.

use crate::sip::host::Host;
use std::net::{IpAddr, SocketAddr};

/// One listen socket as sipfront presents it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub addr: SocketAddr,
    /// Host written in Record-Route for this socket (the advertised name or
    /// the address; IPv6 in brackets).
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub listens: Vec<Listen>,
    /// Each worker's egress socket (where backends send replies).
    pub egress: Vec<SocketAddr>,
    /// Host written in sipfront's Via (advertised name, or the egress IP).
    pub via_host: String,
    /// Every IP address that is this host (listen IPs, or for a wildcard
    /// listen the machine's addresses), and the advertised name if any.
    pub ips: Vec<IpAddr>,
    pub names: Vec<String>,
    /// Every port sipfront receives on.
    pub ports: Vec<u16>,
    /// Keys the MAC of sipfront's branches and To-tags: random per
    /// process, shared by its workers.
    pub branch_key: super::branch::Key,
}

/// Writes an IP for a SIP host: IPv6 in brackets (RFC 5118 §4.1).
pub fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

impl Identity {
    /// Builds the identity of a process listening on `listens`, with worker
    /// `w` sending from `egress[w]`, optionally advertising `advertise`
    /// (`host[:port]`) in Via and Record-Route.
    pub fn new(
        listens: &[SocketAddr],
        egress: &[SocketAddr],
        advertise: Option<(&str, Option<u16>)>,
        local_ips: &[IpAddr],
    ) -> Identity {
        let mut ips: Vec<IpAddr> = Vec::new();
        for a in listens.iter().chain(egress) {
            if a.ip().is_unspecified() {
                ips.extend_from_slice(local_ips);
            } else {
                ips.push(a.ip());
            }
        }
        ips.sort();
        ips.dedup();
        let mut ports: Vec<u16> = listens.iter().chain(egress).map(|a| a.port()).collect();
        ports.sort_unstable();
        ports.dedup();
        let names: Vec<String> = advertise
            .iter()
            .map(|(h, _)| h.to_ascii_lowercase())
            .collect();
        let first_ip = |a: &SocketAddr| {
            if a.ip().is_unspecified() {
                local_ips.first().copied().unwrap_or(a.ip())
            } else {
                a.ip()
            }
        };
        let listens_out = listens
            .iter()
            .map(|a| Listen {
                addr: *a,
                host: advertise
                    .map(|(h, _)| h.to_string())
                    .unwrap_or_else(|| host_text(first_ip(a))),
                port: advertise.and_then(|(_, p)| p).unwrap_or(a.port()),
            })
            .collect();
        let via_host = match (advertise, egress.first()) {
            (Some((h, _)), _) => h.to_string(),
            (None, Some(e)) => host_text(first_ip(e)),
            (None, None) => String::new(),
        };
        if let Some((_, Some(p))) = advertise {
            ports.push(p);
        }
        Identity {
            listens: listens_out,
            egress: egress.to_vec(),
            via_host,
            ips,
            names,
            ports,
            branch_key: super::branch::Key::random(),
        }
    }

    /// True when `host[:port]` (port default 5060) names this proxy.
    pub fn is_me(&self, host: &Host<'_>, port: Option<u16>) -> bool {
        let port = port.unwrap_or(5060);
        if !self.ports.contains(&port) {
            return false;
        }
        match host {
            Host::V4(a) => self.ips.contains(&IpAddr::V4(*a)),
            Host::V6(a) => self.ips.contains(&IpAddr::V6(*a)),
            Host::Name(n) => {
                let n = n.strip_suffix(b".").unwrap_or(n);
                self.names
                    .iter()
                    .any(|m| m.as_bytes().eq_ignore_ascii_case(n))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ports_rfc3261_16_4() {
        let l: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let e: Vec<SocketAddr> = vec![
            "127.0.0.1:5061".parse().unwrap(),
            "127.0.0.1:5062".parse().unwrap(),
        ];
        let id = Identity::new(&[l], &e, Some(("sbc.example.com", None)), &[]);
        let lo = Host::V4("127.0.0.1".parse().unwrap());
        assert!(id.is_me(&lo, None));
        assert!(id.is_me(&lo, Some(5062)));
        assert!(!id.is_me(&lo, Some(5070)));
        assert!(id.is_me(&Host::Name(b"SBC.example.com."), Some(5060)));
        assert!(!id.is_me(&Host::Name(b"other.example.com"), Some(5060)));
        assert_eq!(id.via_host, "sbc.example.com");
        assert_eq!(id.listens[0].host, "sbc.example.com");
    }

    #[test]
    fn wildcard_listen_uses_local_ips_and_brackets_v6() {
        let l: SocketAddr = "[::]:5060".parse().unwrap();
        let e: Vec<SocketAddr> = vec!["[::]:5061".parse().unwrap()];
        let id = Identity::new(&[l], &e, None, &["2001:db8::1".parse().unwrap()]);
        assert_eq!(id.via_host, "[2001:db8::1]");
        assert!(id.is_me(&Host::V6("2001:db8::1".parse().unwrap()), Some(5061)));
    }
}
