//! Proxy edits on a parsed message (RFC 3261 §16.6, §16.7, §18.2.1,
//! RFC 3581) and stateless replies (RFC 3261 §8.2.6). Every helper records
//! into [`Edits`]; [`write`] applies them to the original buffer in one pass.

use super::edit::{EditError, Edits};
use super::error::SipError;
use super::header::HeaderName;
use super::message::Message;
use super::method::StatusCode;
use super::scan;
use super::span::Span;
use super::text;
use super::via::Via;
use std::net::IpAddr;

/// Applies `edits` to the message and appends the result to `out`. With no
/// edits the output is the message, byte for byte.
pub fn write(m: &Message<'_>, edits: &mut Edits, out: &mut Vec<u8>) -> Result<(), EditError> {
    edits.apply(m.as_bytes(), out)
}

/// Inserts `Name: value\r\n` as the last header.
pub fn append_header(m: &Message<'_>, edits: &mut Edits, name: &str, value: &[u8]) {
    insert_header_at(edits, m.headers_end(), name, &[value]);
}

fn insert_header_at(edits: &mut Edits, at: usize, name: &str, value: &[&[u8]]) {
    edits.insert_with(at, |a| {
        a.extend_from_slice(name.as_bytes());
        a.extend_from_slice(b": ");
        for v in value {
            a.extend_from_slice(v);
        }
        a.extend_from_slice(b"\r\n");
    });
}

/// Where a new first value of `name` goes: before its first line, or
/// `fallback` when the message has none.
fn top_of(m: &Message<'_>, name: HeaderName, fallback: usize) -> usize {
    m.header(name).map_or(fallback, |h| h.line().start as usize)
}

/// Adds a Via on top (RFC 3261 §16.6 step 8). `value` is the whole value,
/// e.g. `SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK...`.
pub fn add_via(m: &Message<'_>, edits: &mut Edits, value: &[u8]) {
    add_via_parts(m, edits, &[value]);
}

/// [`add_via`] with the value given in pieces (transport, host, port,
/// branch), written straight into the edit: no `String` in between.
pub fn add_via_parts(m: &Message<'_>, edits: &mut Edits, value: &[&[u8]]) {
    let at = top_of(m, HeaderName::Via, m.first_header_offset());
    insert_header_at(edits, at, "Via", value);
}

/// Removes the first value of a list header: the whole line when it holds
/// one value, else the value and its comma. Returns false when the header is
/// absent.
pub fn remove_first_value(m: &Message<'_>, edits: &mut Edits, name: HeaderName) -> bool {
    let Some(h) = m.header(name) else {
        return false;
    };
    let v = m.slice(h.value());
    let mut split = scan::CommaSplit::new(v);
    let first = split.next().unwrap_or(v);
    if split.next().is_none() {
        edits.delete(h.line());
        return true;
    }
    // Delete "first," plus the LWS after the comma.
    let start = h.value().start as usize;
    let mut end = start + first.len() + 1;
    let buf = m.buf();
    while end < h.value().end as usize && buf.get(end).is_some_and(|&b| scan::is_lws(b)) {
        end += 1;
    }
    edits.delete(Span::new(start, end));
    true
}

/// Removes the first `count` values of a list header, across lines: a line
/// whose values all go is deleted whole, a line that keeps some loses the
/// removed values and their commas. Returns how many were removed.
pub fn remove_values(m: &Message<'_>, edits: &mut Edits, name: HeaderName, count: usize) -> usize {
    let buf = m.buf();
    let mut left = count;
    for h in m.headers_named(name) {
        if left == 0 {
            break;
        }
        let v = m.slice(h.value());
        let n = scan::CommaSplit::new(v).count();
        if n <= left {
            edits.delete(h.line());
            left -= n;
            continue;
        }
        // Keep the tail of this line: delete up to the first kept value.
        let mut split = scan::CommaSplit::new(v);
        let mut kept = split.nth(left).unwrap_or(v);
        kept = scan::trim_start(kept);
        let start = h.value().start as usize;
        let end = Span::of(buf, kept).start as usize;
        edits.delete(Span::new(start, end.max(start)));
        left = 0;
    }
    count - left
}

/// Removes the top Via (RFC 3261 §16.7 step 3, on a response).
pub fn remove_top_via(m: &Message<'_>, edits: &mut Edits) -> bool {
    remove_first_value(m, edits, HeaderName::Via)
}

/// Removes the first Route value (RFC 3261 §16.4, a loose-route that names us).
pub fn remove_top_route(m: &Message<'_>, edits: &mut Edits) -> bool {
    remove_first_value(m, edits, HeaderName::Route)
}

/// Adds a Route value on top of the route set (RFC 3261 §16.6 step 7).
/// `uri` is written inside `<...>`.
pub fn add_route(m: &Message<'_>, edits: &mut Edits, uri: &[u8]) {
    let at = top_of(m, HeaderName::Route, m.headers_end());
    add_bracketed(edits, at, "Route", &[uri]);
}

/// Adds a Record-Route value on top (RFC 3261 §16.6 step 4): `<uri>`; the
/// caller includes `;lr` in `uri`.
pub fn add_record_route(m: &Message<'_>, edits: &mut Edits, uri: &[u8]) {
    add_record_route_parts(m, edits, &[uri]);
}

/// [`add_record_route`] with the URI given in pieces (`sip:`, host, `:`,
/// port, `;lr`), written straight into the edit.
pub fn add_record_route_parts(m: &Message<'_>, edits: &mut Edits, uri: &[&[u8]]) {
    let at = top_of(m, HeaderName::RecordRoute, m.first_header_offset());
    add_bracketed(edits, at, "Record-Route", uri);
}

fn add_bracketed(edits: &mut Edits, at: usize, name: &str, uri: &[&[u8]]) {
    edits.insert_with(at, |a| {
        a.extend_from_slice(name.as_bytes());
        a.extend_from_slice(b": <");
        for u in uri {
            a.extend_from_slice(u);
        }
        a.extend_from_slice(b">\r\n");
    });
}

/// Records `received` and fills `rport` on the top Via of a request, as a
/// server transport does (RFC 3261 §18.2.1, RFC 3581 §4): `received` is
/// added when the sent-by host differs from the source address or `rport`
/// was requested; an `rport` without value gets the source port.
pub fn set_via_received(
    m: &Message<'_>,
    edits: &mut Edits,
    src: IpAddr,
    src_port: u16,
) -> Result<(), SipError> {
    let via = m.top_via()?;
    via_received_edits(&via, m.buf(), 0, src, src_port, edits);
    Ok(())
}

/// [`set_via_received`] for a top Via already decoded from `m`.
pub fn set_received_on(
    m: &Message<'_>,
    via: &Via<'_>,
    edits: &mut Edits,
    src: IpAddr,
    src_port: u16,
) {
    via_received_edits(via, m.buf(), 0, src, src_port, edits);
}

/// Adds `;rport=N` to `via` when it has no `rport` (Kamailio's
/// `force_rport()`): responses then go back to the source port, which is
/// what a NAT maps, even for a UA that did not ask (RFC 3581 §4 applied by
/// policy). Record it after [`set_received_on`].
pub fn force_rport(m: &Message<'_>, via: &Via<'_>, edits: &mut Edits, src_port: u16) {
    if via.rport.is_none() {
        let end = Span::of(m.buf(), via.raw).end as usize;
        edits.insert_with(end, |a| {
            a.extend_from_slice(b";rport=");
            text::push_u32(a, u32::from(src_port));
        });
    }
}

/// What a server transport writes into a top Via (RFC 3261 §18.2.1,
/// RFC 3581 §4), at a span of the value.
#[derive(Clone, Copy, Debug)]
enum ViaFill {
    /// `rport=N` in place of a valueless `rport`.
    Rport(u16),
    /// The address in place of an existing `received` value.
    Received(IpAddr),
    /// `;received=` and the address, at the end of the value.
    AddReceived(IpAddr),
}

impl ViaFill {
    fn write(self, out: &mut Vec<u8>) {
        match self {
            ViaFill::Rport(p) => {
                out.extend_from_slice(b"rport=");
                text::push_u32(out, u32::from(p));
            }
            ViaFill::Received(ip) => text::push_ip(out, ip),
            ViaFill::AddReceived(ip) => {
                out.extend_from_slice(b";received=");
                text::push_ip(out, ip);
            }
        }
    }
}

/// The received/rport changes for `via` (a value inside `buf`), with
/// offsets relative to `base`, so the same rule serves a whole message
/// (`base` 0) and a reply that copies the value alone. In offset order.
fn via_received_changes(
    via: &Via<'_>,
    buf: &[u8],
    base: usize,
    src: IpAddr,
    src_port: u16,
) -> [Option<(Span, ViaFill)>; 2] {
    let rel = |s: Span| Span::new(s.start as usize - base, s.end as usize - base);
    let mut rport = None;
    if via.rport == Some(None) {
        if let Some(p) = via.rport_param {
            let name = Span::of(buf, p.name);
            // Replace "rport" (and a dangling "=") with "rport=N".
            let span = match p.value {
                Some(v) => Span::new(name.start as usize, Span::of(buf, v).end as usize),
                None => name,
            };
            rport = Some((rel(span), ViaFill::Rport(src_port)));
        }
    }
    let mut received = None;
    if via.host.ip() != Some(src) || via.rport.is_some() {
        received = Some(match via.received {
            Some(v) => (rel(Span::of(buf, v)), ViaFill::Received(src)),
            None => {
                let end = Span::of(buf, via.raw).end as usize - base;
                (Span::new(end, end), ViaFill::AddReceived(src))
            }
        });
    }
    match (rport, received) {
        (Some(a), Some(b)) if b.0.start < a.0.start => [Some(b), Some(a)],
        (a, b) => [a, b],
    }
}

/// Records the received/rport edits for `via` (see [`via_received_changes`]).
fn via_received_edits(
    via: &Via<'_>,
    buf: &[u8],
    base: usize,
    src: IpAddr,
    src_port: u16,
    edits: &mut Edits,
) {
    for (span, fill) in via_received_changes(via, buf, base, src, src_port)
        .into_iter()
        .flatten()
    {
        edits.replace_with(span, |a| fill.write(a));
    }
}

/// Decrements Max-Forwards in place (RFC 3261 §16.6 step 3). Returns the
/// value it had; `None` when the header is absent (the caller inserts one).
/// No edit is recorded when the value is already 0: that request is
/// answered 483, not forwarded (§16.3 step 3).
pub fn decrement_max_forwards(m: &Message<'_>, edits: &mut Edits) -> Result<Option<u32>, SipError> {
    let Some(h) = m.header(HeaderName::MaxForwards) else {
        return Ok(None);
    };
    let n = m
        .max_forwards()?
        .ok_or(SipError::BadHeader(HeaderName::MaxForwards))?;
    if n > 0 {
        edits.replace_with(h.value(), |a| text::push_u32(a, n - 1));
    }
    Ok(Some(n))
}

/// Sets Content-Length to `len`, replacing the first one or adding one.
pub fn set_content_length(m: &Message<'_>, edits: &mut Edits, len: usize) {
    match m.header(HeaderName::ContentLength) {
        Some(h) => edits.replace_with(h.value(), |a| text::push_u32(a, len as u32)),
        None => {
            let digits = text::Digits::new(len as u32);
            insert_header_at(
                edits,
                m.headers_end(),
                "Content-Length",
                &[digits.as_bytes()],
            );
        }
    }
}

/// Replaces the URI of the `index`-th Contact value (RFC 3261 §20.10,
/// nathelper's `fix_nated_contact`). An addr-spec value is bracketed so that
/// its header parameters stay header parameters.
pub fn replace_contact_uri(
    m: &Message<'_>,
    edits: &mut Edits,
    index: usize,
    uri: &[u8],
) -> Result<(), SipError> {
    let c = m
        .contacts()
        .nth(index)
        .ok_or(SipError::MissingHeader(HeaderName::Contact))??;
    let addr = c.addr().ok_or(SipError::BadHeader(HeaderName::Contact))?;
    let span = Span::of(m.buf(), addr.uri.raw);
    if addr.bracketed {
        edits.replace(span, uri);
    } else {
        edits.replace(span, b"<");
        edits.insert(span.end as usize, uri);
        edits.insert(span.end as usize, b">");
    }
    Ok(())
}

/// Options for a stateless reply.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplyOptions<'r> {
    /// Reason phrase; the code's standard phrase when `None`.
    pub reason: Option<&'r str>,
    /// To-tag to add when the request's To has none (RFC 3261 §8.2.6.2);
    /// never added to a 100.
    pub to_tag: Option<&'r [u8]>,
    /// Source address and port of the request, recorded in the top Via as
    /// `received`/`rport` (RFC 3261 §18.2.1, RFC 3581 §4).
    pub source: Option<(IpAddr, u16)>,
    /// Extra header lines, each without CRLF (e.g. `Retry-After: 5`).
    pub headers: &'r [&'r str],
    /// The request's top Via when the caller has it decoded already
    /// (validation does); otherwise it is decoded here.
    pub top_via: Option<&'r Via<'r>>,
}

/// Builds a stateless reply to `req` into `out` (RFC 3261 §8.2.6): status
/// line, every Via in order, From, To (with a tag added when absent), Call-ID,
/// CSeq, the extra headers and `Content-Length: 0`.
pub fn build_reply(
    req: &Message<'_>,
    code: StatusCode,
    opts: &ReplyOptions<'_>,
    out: &mut Vec<u8>,
) -> Result<(), SipError> {
    if !req.is_request() {
        return Err(SipError::BadStartLine);
    }
    let buf = req.buf();
    let reason = opts.reason.unwrap_or_else(|| code.reason());
    out.extend_from_slice(b"SIP/2.0 ");
    text::push_u32(out, u32::from(code.as_u16()));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let decoded;
    let top = match opts.top_via {
        Some(v) => v,
        None => {
            decoded = req.top_via()?;
            &decoded
        }
    };
    let top_span = Span::of(buf, top.raw);
    for h in req.headers_named(HeaderName::Via) {
        out.extend_from_slice(b"Via: ");
        let v = req.slice(h.value());
        let vs = h.value();
        match opts.source {
            // The line holding the top value gets received/rport; the edit
            // offsets are relative to the line's value so they apply to it
            // alone.
            Some((src, port)) if vs.start <= top_span.start && top_span.end <= vs.end => {
                let cut = (top_span.end - vs.start) as usize;
                let (local, rest) = v.split_at(cut.min(v.len()));
                let mut pos = 0;
                for (span, fill) in via_received_changes(top, buf, vs.start as usize, src, port)
                    .into_iter()
                    .flatten()
                {
                    let (s, t) = (span.start as usize, span.end as usize);
                    let Some(before) = local.get(pos..s).filter(|_| t <= local.len()) else {
                        return Err(SipError::BadHeader(HeaderName::Via));
                    };
                    out.extend_from_slice(before);
                    fill.write(out);
                    pos = t;
                }
                out.extend_from_slice(local.get(pos..).unwrap_or(&[]));
                out.extend_from_slice(rest);
            }
            _ => out.extend_from_slice(v),
        }
        out.extend_from_slice(b"\r\n");
    }
    let from = req
        .header_value(HeaderName::From)
        .ok_or(SipError::MissingHeader(HeaderName::From))?;
    out.extend_from_slice(b"From: ");
    out.extend_from_slice(from);
    out.extend_from_slice(b"\r\n");
    let to = req.to()?;
    out.extend_from_slice(b"To: ");
    out.extend_from_slice(req.header_value(HeaderName::To).unwrap_or(to.raw));
    if to.tag().is_none() && code != StatusCode::TRYING {
        if let Some(tag) = opts.to_tag {
            out.extend_from_slice(b";tag=");
            out.extend_from_slice(tag);
        }
    }
    out.extend_from_slice(b"\r\nCall-ID: ");
    out.extend_from_slice(req.call_id()?);
    out.extend_from_slice(b"\r\nCSeq: ");
    out.extend_from_slice(
        req.header_value(HeaderName::CSeq)
            .ok_or(SipError::MissingHeader(HeaderName::CSeq))?,
    );
    out.extend_from_slice(b"\r\n");
    for h in opts.headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force_rport_fills_a_via_that_did_not_ask_rfc3581_4() {
        let b = b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(b).unwrap();
        let via = m.top_via().unwrap();
        let mut e = Edits::new();
        set_received_on(&m, &via, &mut e, "203.0.113.5".parse().unwrap(), 40000);
        force_rport(&m, &via, &mut e, 40000);
        let mut out = Vec::new();
        write(&m, &mut e, &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().contains(
            "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;received=203.0.113.5;rport=40000\r\n"
        ));
        // A Via with rport is left to set_received_on.
        let b2 = String::from_utf8_lossy(b).replace("z9hG4bK1", "z9hG4bK1;rport");
        let m = Message::parse(b2.as_bytes()).unwrap();
        let via = m.top_via().unwrap();
        let mut e = Edits::new();
        force_rport(&m, &via, &mut e, 40000);
        assert!(e.is_empty());
    }

    const REQ: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
v: SIP/2.0/UDP 10.0.0.5:5062;rport;branch=z9hG4bKa1, SIP/2.0/UDP p0.example.com;branch=z9hG4bK0\r\n\
Max-Forwards: 70\r\n\
Route: <sip:lb.example.com;lr>, <sip:core.example.com;lr>\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=88\r\n\
Call-ID: abc@10.0.0.5\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:alice@10.0.0.5:5062;expires=60\r\n\
Content-Length: 0\r\n\r\n";

    fn edited(f: impl FnOnce(&Message<'_>, &mut Edits)) -> String {
        let m = Message::parse(REQ).unwrap();
        let mut e = Edits::new();
        f(&m, &mut e);
        let mut out = Vec::new();
        write(&m, &mut e, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn remove_values_across_lines_rfc3261_16_4() {
        let msg = b"BYE sip:b@x SIP/2.0\r\nRoute: <sip:lb1;lr>\r\nRoute: <sip:lb2;lr>, <sip:core;lr>, <sip:edge;lr>\r\nCall-ID: x\r\n\r\n";
        let m = Message::parse(msg).unwrap();
        for (k, want) in [
            (
                1,
                "Route: <sip:lb2;lr>, <sip:core;lr>, <sip:edge;lr>\r\nCall-ID",
            ),
            (2, "Route: <sip:core;lr>, <sip:edge;lr>\r\nCall-ID"),
            (3, "Route: <sip:edge;lr>\r\nCall-ID"),
        ] {
            let mut e = Edits::new();
            assert_eq!(remove_values(&m, &mut e, HeaderName::Route, k), k);
            let mut out = Vec::new();
            write(&m, &mut e, &mut out).unwrap();
            let s = String::from_utf8(out).unwrap();
            assert!(s.contains(&format!("SIP/2.0\r\n{want}")), "{k}: {s}");
        }
        let mut e = Edits::new();
        assert_eq!(remove_values(&m, &mut e, HeaderName::Route, 9), 4);
    }

    #[test]
    fn no_edits_is_byte_identical() {
        assert_eq!(edited(|_, _| {}).as_bytes(), REQ);
    }

    #[test]
    fn proxy_forwarding_edits_rfc3261_16_6() {
        let out = edited(|m, e| {
            set_via_received(m, e, "192.0.2.7".parse().unwrap(), 40000).unwrap();
            add_via(m, e, b"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKlb1");
            assert_eq!(decrement_max_forwards(m, e).unwrap(), Some(70));
            assert!(remove_top_route(m, e));
            add_record_route(m, e, b"sip:192.0.2.1;lr");
        });
        let want = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKlb1\r\n\
Record-Route: <sip:192.0.2.1;lr>\r\n\
v: SIP/2.0/UDP 10.0.0.5:5062;rport=40000;branch=z9hG4bKa1;received=192.0.2.7, SIP/2.0/UDP p0.example.com;branch=z9hG4bK0\r\n\
Max-Forwards: 69\r\n\
Route: <sip:core.example.com;lr>\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=88\r\n\
Call-ID: abc@10.0.0.5\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:alice@10.0.0.5:5062;expires=60\r\n\
Content-Length: 0\r\n\r\n";
        assert_eq!(out, want);
        Message::parse(out.as_bytes()).unwrap();
    }

    #[test]
    fn remove_top_via_on_response_rfc3261_16_7() {
        let out = edited(|m, e| {
            assert!(remove_top_via(m, e));
        });
        assert!(out.contains("v: SIP/2.0/UDP p0.example.com;branch=z9hG4bK0\r\n"));
        let m2 = Message::parse(out.as_bytes()).unwrap();
        assert_eq!(m2.vias().count(), 1);
        // Removing the last value removes the line.
        let mut e = Edits::new();
        assert!(remove_top_via(&m2, &mut e));
        let mut o2 = Vec::new();
        write(&m2, &mut e, &mut o2).unwrap();
        assert!(!String::from_utf8_lossy(&o2).contains("v:"));
    }

    #[test]
    fn received_only_when_needed_rfc3261_18_2_1() {
        let msg =
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1\r\n\r\n";
        let m = Message::parse(msg).unwrap();
        let mut e = Edits::new();
        set_via_received(&m, &mut e, "192.0.2.7".parse().unwrap(), 5060).unwrap();
        assert!(e.is_empty());
        set_via_received(&m, &mut e, "198.51.100.1".parse().unwrap(), 5060).unwrap();
        let mut out = Vec::new();
        write(&m, &mut e, &mut out).unwrap();
        assert!(
            String::from_utf8_lossy(&out).contains(";branch=z9hG4bK1;received=198.51.100.1\r\n")
        );
    }

    #[test]
    fn contact_uri_replacement_keeps_header_params_rfc3261_20_10() {
        let out = edited(|m, e| {
            replace_contact_uri(m, e, 0, b"sip:alice@192.0.2.7:40000").unwrap();
        });
        assert!(out.contains("Contact: <sip:alice@192.0.2.7:40000>;expires=60\r\n"));
        let m = Message::parse(out.as_bytes()).unwrap();
        let c = m.contacts().next().unwrap().unwrap();
        assert_eq!(c.addr().unwrap().expires(), Some(60));
    }

    #[test]
    fn content_length_and_route() {
        let out = edited(|m, e| {
            set_content_length(m, e, 12);
            add_route(m, e, b"sip:edge.example.com;lr");
        });
        assert!(out.contains("Content-Length: 12\r\n"));
        assert!(out.contains("Route: <sip:edge.example.com;lr>\r\nRoute: <sip:lb.example.com;lr>"));
    }

    #[test]
    fn max_forwards_zero_is_not_decremented_rfc3261_16_3() {
        let m = Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\nMax-Forwards: 0\r\n\r\n").unwrap();
        let mut e = Edits::new();
        assert_eq!(decrement_max_forwards(&m, &mut e).unwrap(), Some(0));
        assert!(e.is_empty());
        let m = Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n").unwrap();
        assert_eq!(decrement_max_forwards(&m, &mut e).unwrap(), None);
    }

    #[test]
    fn reply_when_the_first_via_line_is_empty() {
        // Found by fuzzing: the top value is on the second Via line.
        let m = Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\nVia:\r\nVia: SIP/2.0/UDP h;rport\r\nFrom: <sip:a@b>\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let opts = ReplyOptions {
            source: Some(("192.0.2.1".parse().unwrap(), 9)),
            ..Default::default()
        };
        build_reply(&m, StatusCode::BAD_REQUEST, &opts, &mut out).unwrap();
        assert!(String::from_utf8_lossy(&out)
            .contains("Via: \r\nVia: SIP/2.0/UDP h;rport=9;received=192.0.2.1\r\n"));
    }

    #[test]
    fn stateless_reply_rfc3261_8_2_6() {
        let m = Message::parse(REQ).unwrap();
        let mut out = Vec::new();
        let opts = ReplyOptions {
            to_tag: Some(b"lb42"),
            source: Some(("192.0.2.7".parse().unwrap(), 40000)),
            headers: &["Retry-After: 5"],
            ..Default::default()
        };
        build_reply(&m, StatusCode::SERVICE_UNAVAILABLE, &opts, &mut out).unwrap();
        let want = "SIP/2.0 503 Service Unavailable\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5062;rport=40000;branch=z9hG4bKa1;received=192.0.2.7, SIP/2.0/UDP p0.example.com;branch=z9hG4bK0\r\n\
From: Alice <sip:alice@example.com>;tag=88\r\n\
To: Bob <sip:bob@example.com>;tag=lb42\r\n\
Call-ID: abc@10.0.0.5\r\n\
CSeq: 1 INVITE\r\n\
Retry-After: 5\r\n\
Content-Length: 0\r\n\r\n";
        assert_eq!(String::from_utf8(out.clone()).unwrap(), want);
        // The same with the top Via decoded by the caller.
        let top = m.top_via().unwrap();
        let mut again = Vec::new();
        let with_via = ReplyOptions {
            top_via: Some(&top),
            ..opts
        };
        build_reply(&m, StatusCode::SERVICE_UNAVAILABLE, &with_via, &mut again).unwrap();
        assert_eq!(again, out);
        let r = Message::parse(&out).unwrap();
        assert_eq!(r.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        // 100 Trying gets no To-tag (§8.2.6.2).
        out.clear();
        build_reply(&m, StatusCode::TRYING, &opts, &mut out).unwrap();
        assert!(String::from_utf8_lossy(&out).contains("To: Bob <sip:bob@example.com>\r\n"));
    }
}
