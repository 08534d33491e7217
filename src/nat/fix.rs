//! The edits NAT handling makes to a message, recorded into the proxy's
//! [`Edits`] beside the forwarding edits (nothing is copied until the
//! message is written):
//!
//! - Contact, for a UA behind NAT (every value but `*`):
//!   [`ContactFix::Alias`] appends `;alias=` with the flow to the URI
//!   (nathelper `set_contact_alias`), replacing one already there;
//!   [`ContactFix::Rewrite`] puts the flow's address and port in place of
//!   the URI's host and port (`fix_nated_contact`);
//!   [`ContactFix::Received`] appends `;received=sip:IP:PORT` inside the
//!   URI (`add_rcv_param` with its flag set), for registrars without Path.
//!   An addr-spec Contact is bracketed first, so its header parameters
//!   stay header parameters (RFC 3261 §20.10);
//! - Path (RFC 3327 §5.2): a value naming sipfront with the flow, on top
//!   of any Path already there;
//! - a URI parameter removed from the Request-URI (`handle_ruri_alias`
//!   strips the alias before the request goes on).

use super::flow::{Flow, ALIAS, RECEIVED};
use crate::sip::{Edits, Message, Param, Span, Uri};

/// How a Contact is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactFix {
    Alias,
    Rewrite,
    Received,
}

/// The span of `;name[=value]` of URI parameter `p` in `buf`.
fn param_span(buf: &[u8], p: &Param<'_>) -> Span {
    let name = Span::of(buf, p.name);
    let end = p.value.map_or(name.end, |v| Span::of(buf, v).end);
    // Back over LWS to the `;` that opens the parameter.
    let mut start = name.start as usize;
    while start > 0 && matches!(buf[start - 1], b' ' | b'\t') {
        start -= 1;
    }
    if start > 0 && buf[start - 1] == b';' {
        start -= 1;
    }
    Span::new(start, end as usize)
}

/// Where a new URI parameter goes: after the last one, before `?headers`.
fn params_end(buf: &[u8], uri: &Uri<'_>) -> usize {
    let raw = Span::of(buf, uri.raw);
    match uri.headers {
        // The `?` before the headers.
        Some(h) => (Span::of(buf, h).start as usize).saturating_sub(1),
        None => raw.end as usize,
    }
}

/// Sets URI parameter `name` of `uri` (inside `buf`) to the bytes
/// `write` produces, replacing an existing one.
fn set_param(
    buf: &[u8],
    uri: &Uri<'_>,
    e: &mut Edits,
    name: &[u8],
    write: impl FnOnce(&mut Vec<u8>),
) {
    let fill = |a: &mut Vec<u8>| {
        a.push(b';');
        a.extend_from_slice(name);
        a.push(b'=');
        write(a);
    };
    match uri.params.get(name) {
        Some(p) => e.replace_with(param_span(buf, &p), fill),
        None => e.insert_with(params_end(buf, uri), fill),
    }
}

/// Applies `how` with `flow` to every Contact value of `m`. Returns how
/// many were fixed; a malformed Contact is left alone (the validation of
/// the message decides about it).
pub fn fix_contacts(m: &Message<'_>, e: &mut Edits, flow: &Flow, how: ContactFix) -> usize {
    let buf = m.buf();
    let mut n = 0;
    for c in m.contacts() {
        let Ok(c) = c else { continue };
        let Some(a) = c.addr() else { continue };
        let uri = &a.uri;
        if !uri.is_sip_like() || uri.host.is_none() {
            continue;
        }
        let span = Span::of(buf, uri.raw);
        if !a.bracketed {
            e.insert(span.start as usize, b"<");
        }
        match how {
            ContactFix::Alias => set_param(buf, uri, e, ALIAS, |a| flow.write_alias(a)),
            ContactFix::Received => set_param(buf, uri, e, RECEIVED, |a| flow.write_received(a)),
            ContactFix::Rewrite => {
                let host = Span::of(buf, uri.host_raw);
                let mut end = host.end as usize;
                if uri.port.is_some() && buf.get(end) == Some(&b':') {
                    end += 1;
                    while buf.get(end).is_some_and(u8::is_ascii_digit) {
                        end += 1;
                    }
                }
                e.replace_with(Span::new(host.start as usize, end), |a| {
                    super::flow::push_host_port(a, flow.addr)
                });
            }
        }
        if !a.bracketed {
            e.insert(span.end as usize, b">");
        }
        n += 1;
    }
    n
}

/// Adds `Path: <{uri};alias=FLOW>` on top of the Path values (RFC 3327
/// §5.2); `uri` names sipfront and includes `;lr`.
pub fn add_path(m: &Message<'_>, e: &mut Edits, uri: &[u8], flow: &Flow) {
    let at = m
        .header_by_name(b"path")
        .map_or(m.first_header_offset(), |h| h.line().start as usize);
    e.insert_with(at, |a| {
        a.extend_from_slice(b"Path: <");
        a.extend_from_slice(uri);
        a.extend_from_slice(b";alias=");
        flow.write_alias(a);
        a.extend_from_slice(b">\r\n");
    });
}

/// Removes URI parameter `p` of the Request-URI of `m`.
pub fn remove_ruri_param(m: &Message<'_>, e: &mut Edits, p: &Param<'_>) {
    e.delete(param_span(m.buf(), p));
}

/// The flow a URI names: its `alias`, else its `received`. The flow's
/// listen index is the alias's (0 for `received`).
pub fn uri_flow<'a>(uri: &Uri<'a>) -> Option<(Flow, Param<'a>)> {
    if let Some(p) = uri.params.get(ALIAS) {
        return Some((Flow::parse_alias(p.value?)?, p));
    }
    let p = uri.params.get(RECEIVED)?;
    Some((Flow::parse_received(p.value?)?, p))
}

/// True when `m` has a Path header (RFC 3327).
pub fn has_path(m: &Message<'_>) -> bool {
    m.header_by_name(b"path").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::writer;

    fn apply(msg: &str, f: impl FnOnce(&Message<'_>, &mut Edits)) -> String {
        let m = Message::parse(msg.as_bytes()).unwrap();
        let mut e = Edits::new();
        f(&m, &mut e);
        let mut out = Vec::new();
        writer::write(&m, &mut e, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn req(contact: &str) -> String {
        format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\r\n\
             From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
             Contact: {contact}\r\nContent-Length: 0\r\n\r\n"
        )
    }

    fn flow() -> Flow {
        Flow::udp("203.0.113.5:40312".parse().unwrap(), 0)
    }

    fn contact_of(out: &str) -> &str {
        out.lines()
            .find_map(|l| l.strip_prefix("Contact: "))
            .unwrap()
    }

    #[test]
    fn alias_is_appended_inside_the_uri_set_contact_alias() {
        let out = apply(
            &req("<sip:a@10.0.0.5:5060;transport=udp>;expires=60"),
            |m, e| {
                assert_eq!(fix_contacts(m, e, &flow(), ContactFix::Alias), 1);
            },
        );
        assert_eq!(
            contact_of(&out),
            "<sip:a@10.0.0.5:5060;transport=udp;alias=203.0.113.5~40312~1>;expires=60"
        );
        // The written Contact decodes back to the flow.
        let m = Message::parse(out.as_bytes()).unwrap();
        let c = m.contacts().next().unwrap().unwrap();
        assert_eq!(uri_flow(&c.addr().unwrap().uri).map(|f| f.0), Some(flow()));
    }

    #[test]
    fn a_stale_alias_is_replaced_not_doubled_kamailio_4005() {
        let out = apply(
            &req("<sip:a@10.0.0.5;alias=198.51.100.1~1~1;ob>"),
            |m, e| {
                fix_contacts(m, e, &flow(), ContactFix::Alias);
            },
        );
        assert_eq!(
            contact_of(&out),
            "<sip:a@10.0.0.5;alias=203.0.113.5~40312~1;ob>"
        );
    }

    #[test]
    fn an_addr_spec_contact_is_bracketed_rfc3261_20_10() {
        let out = apply(&req("sip:a@10.0.0.5:5060;expires=30"), |m, e| {
            fix_contacts(m, e, &flow(), ContactFix::Alias);
        });
        // `expires` was a header parameter and stays one.
        assert_eq!(
            contact_of(&out),
            "<sip:a@10.0.0.5:5060;alias=203.0.113.5~40312~1>;expires=30"
        );
    }

    #[test]
    fn the_alias_goes_before_uri_headers() {
        let out = apply(&req("<sip:a@10.0.0.5?Subject=x>"), |m, e| {
            fix_contacts(m, e, &flow(), ContactFix::Alias);
        });
        assert_eq!(
            contact_of(&out),
            "<sip:a@10.0.0.5;alias=203.0.113.5~40312~1?Subject=x>"
        );
    }

    #[test]
    fn rewrite_replaces_host_and_port_fix_nated_contact() {
        let out = apply(
            &req("\"A\" <sip:a@10.0.0.5:5070;ob>;+sip.instance=\"x\""),
            |m, e| {
                fix_contacts(m, e, &flow(), ContactFix::Rewrite);
            },
        );
        assert_eq!(
            contact_of(&out),
            "\"A\" <sip:a@203.0.113.5:40312;ob>;+sip.instance=\"x\""
        );
        let out = apply(&req("<sip:[fd00::5]>"), |m, e| {
            let f = Flow::udp("[2001:db8::9]:6000".parse().unwrap(), 0);
            fix_contacts(m, e, &f, ContactFix::Rewrite);
        });
        assert_eq!(contact_of(&out), "<sip:[2001:db8::9]:6000>");
    }

    #[test]
    fn received_goes_inside_the_uri_add_rcv_param() {
        let out = apply(&req("<sip:a@10.0.0.5>, <sip:a@10.0.0.5:5080>"), |m, e| {
            assert_eq!(fix_contacts(m, e, &flow(), ContactFix::Received), 2);
        });
        assert_eq!(
            contact_of(&out),
            "<sip:a@10.0.0.5;received=sip:203.0.113.5:40312>, <sip:a@10.0.0.5:5080;received=sip:203.0.113.5:40312>"
        );
    }

    #[test]
    fn star_and_non_sip_contacts_are_left_alone() {
        let out = apply(&req("*"), |m, e| {
            assert_eq!(fix_contacts(m, e, &flow(), ContactFix::Alias), 0);
        });
        assert_eq!(contact_of(&out), "*");
        let out = apply(&req("<tel:+1234>"), |m, e| {
            assert_eq!(fix_contacts(m, e, &flow(), ContactFix::Alias), 0);
        });
        assert_eq!(contact_of(&out), "<tel:+1234>");
    }

    #[test]
    fn path_goes_on_top_rfc3327_5_2() {
        let r = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\r\n\
                 Path: <sip:edge2.example.com;lr>\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\n\
                 Call-ID: c\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@10.0.0.5>\r\nContent-Length: 0\r\n\r\n";
        let out = apply(r, |m, e| add_path(m, e, b"sip:192.0.2.10:5060;lr", &flow()));
        let paths: Vec<&str> = out.lines().filter(|l| l.starts_with("Path:")).collect();
        assert_eq!(
            paths,
            [
                "Path: <sip:192.0.2.10:5060;lr;alias=203.0.113.5~40312~1>",
                "Path: <sip:edge2.example.com;lr>"
            ]
        );
        // Without a Path yet it goes before the first header.
        let out = apply(&req("<sip:a@10.0.0.5>"), |m, e| {
            add_path(m, e, b"sip:192.0.2.10:5060;lr", &flow())
        });
        assert!(out.contains("SIP/2.0\r\nPath: <sip:192.0.2.10:5060;lr;alias="));
    }

    #[test]
    fn ruri_alias_is_stripped_handle_ruri_alias() {
        let r = "INVITE sip:a@10.0.0.5;transport=udp;alias=203.0.113.5~40312~1;ob SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:b@x>;tag=1\r\nTo: <sip:a@x>\r\n\
                 Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let out = apply(r, |m, e| {
            let uri = Uri::parse(m.request_uri().unwrap()).unwrap();
            let (f, p) = uri_flow(&uri).unwrap();
            assert_eq!(f, flow());
            remove_ruri_param(m, e, &p);
        });
        assert!(out.starts_with("INVITE sip:a@10.0.0.5;transport=udp;ob SIP/2.0\r\n"));
    }
}
