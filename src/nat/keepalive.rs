//! The keepalives sipfront sends to keep a NAT's mapping open, from the
//! listen socket the flow came in on: a SIP request (OPTIONS, or NOTIFY as
//! Kamailio's `nat_traversal` does, whose answers are smaller), which makes
//! the UA answer and so refreshes NATs that only count outbound packets;
//! or a bare double CRLF (RFC 5626 §3.5.1's ping, which a UA ignores on
//! UDP, where RFC 5626 itself uses STUN) or four zero bytes (nathelper's
//! default ping), which cost the UA nothing but only refresh NATs that
//! count inbound packets too.
//!
//! A SIP keepalive's Via branch names the worker, the listen socket and
//! the flow, so its answer comes back to the entry that sent it.

use super::flow::{push_host_port, Flow};
use crate::proxy::branch;
use std::str::FromStr;

/// What a keepalive is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keepalive {
    Options,
    Notify,
    Crlf,
    Zero,
    Off,
}

impl Keepalive {
    pub const ALL: [Keepalive; 5] = [
        Keepalive::Options,
        Keepalive::Notify,
        Keepalive::Crlf,
        Keepalive::Zero,
        Keepalive::Off,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Keepalive::Options => "options",
            Keepalive::Notify => "notify",
            Keepalive::Crlf => "crlf",
            Keepalive::Zero => "zero",
            Keepalive::Off => "off",
        }
    }

    /// A SIP request, which the UA answers.
    pub const fn is_sip(self) -> bool {
        matches!(self, Keepalive::Options | Keepalive::Notify)
    }
}

impl FromStr for Keepalive {
    type Err = String;
    fn from_str(s: &str) -> Result<Keepalive, String> {
        let t = s.trim().to_ascii_lowercase();
        Keepalive::ALL
            .into_iter()
            .find(|k| k.name() == t)
            .ok_or_else(|| format!("{s:?}: expected options, notify, crlf, zero or off"))
    }
}

impl std::fmt::Display for Keepalive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The top bit of a stateful-style branch suffix marks a keepalive (a
/// transaction id never sets it).
pub const BRANCH_FLAG: u64 = 1 << 63;

/// Who sends a keepalive: the worker, and the `host:port` its listen
/// socket is known by (for the Via and From).
pub struct Sender<'a> {
    /// The process's branch key.
    pub key: &'a branch::Key,
    pub worker: u8,
    pub listen_host: &'a str,
    pub listen_port: u16,
    /// The From URI (`nat.keepalive_from`).
    pub from: &'a str,
}

/// Writes keepalive number `seq` of the flow with table id `id` into
/// `out`. Each SIP keepalive is a request of its own, outside any dialog,
/// with its own Call-ID (a UA that tracks calls by Call-ID, SIPp for one,
/// would otherwise take a flow's keepalives for one endless call).
pub fn write(kind: Keepalive, s: &Sender<'_>, flow: &Flow, id: u64, seq: u64, out: &mut Vec<u8>) {
    use std::io::Write;
    out.clear();
    let method = match kind {
        Keepalive::Options => "OPTIONS",
        Keepalive::Notify => "NOTIFY",
        Keepalive::Crlf => return out.extend_from_slice(b"\r\n\r\n"),
        Keepalive::Zero => return out.extend_from_slice(&[0, 0, 0, 0]),
        Keepalive::Off => return,
    };
    let mut target = Vec::with_capacity(48);
    target.extend_from_slice(b"sip:");
    push_host_port(&mut target, flow.addr);
    let target = String::from_utf8_lossy(&target);
    let mut b = [0u8; branch::LEN_TXN];
    branch::format_txn(s.key, s.worker, flow.listen, 0, BRANCH_FLAG | id, &mut b);
    let b = String::from_utf8_lossy(&b);
    // Write errors cannot happen on a Vec.
    let _ = write!(
        out,
        "{method} {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {}:{};branch={b};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <{}>;tag=ka{:x}\r\n\
         To: <{target}>\r\n\
         Call-ID: ka-{:x}-{id:x}-{seq}@{}\r\n\
         CSeq: {seq} {method}\r\n",
        s.listen_host, s.listen_port, s.from, s.worker, s.worker, s.listen_host
    );
    if kind == Keepalive::Notify {
        // RFC 3265 §7.2: a NOTIFY names its event.
        out.extend_from_slice(b"Event: keep-alive\r\nSubscription-State: terminated\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{validate_request, Message};

    const KEY: branch::Key = branch::Key::new(3, 4);

    fn sender() -> Sender<'static> {
        Sender {
            key: &KEY,
            worker: 3,
            listen_host: "198.51.100.10",
            listen_port: 5060,
            from: "sip:keepalive@198.51.100.10",
        }
    }

    #[test]
    fn options_keepalive_is_a_valid_request_with_a_keepalive_branch() {
        let f = Flow::udp("203.0.113.5:40312".parse().unwrap(), 1);
        let mut out = Vec::new();
        write(Keepalive::Options, &sender(), &f, 0x1234, 7, &mut out);
        let m = Message::parse(&out).unwrap();
        let req = validate_request(&m).unwrap();
        assert_eq!(m.request_uri(), Some(&b"sip:203.0.113.5:40312"[..]));
        assert_eq!(req.cseq.seq, 7);
        let mut next = Vec::new();
        write(Keepalive::Options, &sender(), &f, 0x1234, 8, &mut next);
        let m2 = Message::parse(&next).unwrap();
        assert_ne!(m.call_id().unwrap(), m2.call_id().unwrap());
        // rport: the answer comes back through the NAT to the listen port.
        assert_eq!(req.top_via.rport, Some(None));
        let b = branch::parse(req.top_via.branch.unwrap()).unwrap();
        assert_eq!((b.worker, b.listen), (3, 1));
        assert_eq!(b.txn, Some(BRANCH_FLAG | 0x1234));
        assert!(b.verify(&KEY));
    }

    #[test]
    fn notify_names_its_event_rfc3265() {
        let f = Flow::udp("[2001:db8::5]:5060".parse().unwrap(), 0);
        let mut out = Vec::new();
        write(Keepalive::Notify, &sender(), &f, 1, 1, &mut out);
        let m = Message::parse(&out).unwrap();
        assert!(validate_request(&m).is_ok());
        assert_eq!(m.request_uri(), Some(&b"sip:[2001:db8::5]:5060"[..]));
        assert!(String::from_utf8_lossy(&out).contains("Event: keep-alive\r\n"));
    }

    #[test]
    fn bare_keepalives() {
        let f = Flow::udp("203.0.113.5:1".parse().unwrap(), 0);
        let mut out = vec![9];
        write(Keepalive::Crlf, &sender(), &f, 1, 1, &mut out);
        assert_eq!(out, b"\r\n\r\n");
        write(Keepalive::Zero, &sender(), &f, 1, 1, &mut out);
        assert_eq!(out, [0, 0, 0, 0]);
        assert_eq!("NOTIFY".parse::<Keepalive>(), Ok(Keepalive::Notify));
        assert!("ping".parse::<Keepalive>().is_err());
    }
}
