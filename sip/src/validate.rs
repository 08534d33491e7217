//! Checks a proxy makes before forwarding (RFC 3261 §16.3 "Request
//! Validation", §8.1.1 required headers) and the minimum a response needs to
//! be routed back (§16.7, §18.1.2). Size limits and Content-Length against
//! the datagram are enforced by the parser itself.

use super::cseq::CSeq;
use super::error::SipError;
use super::header::HeaderName;
use super::message::Message;
use super::method::Method;
use super::nameaddr::NameAddr;
use super::scan::{find_of, trim, CommaSplit};
use super::uri::{Scheme, Uri};
use super::via::Via;

/// What validation decoded, so the proxy does not decode it again.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub method: Method,
    pub ruri: Uri<'a>,
    /// The topmost Via value, as received.
    pub top_via: Via<'a>,
    pub from: NameAddr<'a>,
    pub to: NameAddr<'a>,
    pub call_id: &'a [u8],
    pub cseq: CSeq<'a>,
    pub max_forwards: Option<u32>,
}

/// Validates a request for forwarding. Each failure is a typed error whose
/// [`SipError::status`] is the answer (400, 416, ...). A request with
/// Max-Forwards 0 is valid here: whether to answer 483 or handle it locally
/// (OPTIONS to the proxy itself) is the proxy's decision (§16.3 step 3).
pub fn validate_request<'a>(m: &Message<'a>) -> Result<Request<'a>, SipError> {
    let rl = m.request_line().ok_or(SipError::BadStartLine)?;
    // §16.3 step 2: URI scheme. sip, sips and tel are routed; anything else
    // that is a well-formed absoluteURI gets 416.
    let uri = Uri::parse(rl.uri.get(m.buf())).map_err(|_| SipError::BadRequestUri)?;
    if uri.scheme == Scheme::Other {
        return Err(SipError::UnsupportedUriScheme);
    }
    // §19.1.1: a Request-URI carries no headers component (RFC 4475
    // §3.1.2.11 escruri: a proxy must not forward them).
    if uri.headers.is_some() {
        return Err(SipError::BadRequestUri);
    }
    check_single(m)?;
    // §8.1.1: To, From, CSeq, Call-ID and Via are mandatory and must parse.
    let to = m.to()?;
    let from = m.from()?;
    let call_id = m.call_id()?;
    let cseq = m.cseq()?;
    // §8.1.1.5: the CSeq method matches the request method.
    if cseq.method_bytes != rl.method_span.get(m.buf()) {
        return Err(SipError::CSeqMethodMismatch);
    }
    let mut vias = m.vias();
    let top_via = vias
        .next()
        .ok_or(SipError::MissingHeader(HeaderName::Via))??;
    for v in vias {
        v?;
    }
    no_empty_elements(m)?;
    // §16.3 step 5: sipfront supports no extension a proxy must understand.
    if m.values(HeaderName::ProxyRequire).next().is_some() {
        return Err(SipError::BadExtension);
    }
    // Headers a proxy acts on must parse when present.
    let max_forwards = m.max_forwards()?;
    m.expires()?;
    for r in m.routes() {
        r?;
    }
    for r in m.record_routes() {
        r?;
    }
    let mut contacts = 0;
    for c in m.contacts() {
        c?;
        contacts += 1;
    }
    if contacts == 0 && m.header(HeaderName::Contact).is_some() {
        return Err(SipError::BadHeader(HeaderName::Contact));
    }
    Ok(Request {
        method: rl.method,
        ruri: uri,
        top_via,
        from,
        to,
        call_id,
        cseq,
        max_forwards,
    })
}

/// Headers that identify the dialog and transaction appear once (RFC 3261
/// §7.3.1: only list headers may repeat; RFC 4475 §3.3.8 multi01).
fn check_single(m: &Message<'_>) -> Result<(), SipError> {
    for name in [
        HeaderName::CallId,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CSeq,
        HeaderName::MaxForwards,
    ] {
        if m.is_repeated(name) {
            return Err(SipError::DuplicateHeader(name));
        }
    }
    Ok(())
}

/// List headers are `1#element` (RFC 3261 §7.3.1, §25.1): an empty line or
/// an empty element between commas is malformed (RFC 4475 §3.1.2.1 badinv01).
fn no_empty_elements(m: &Message<'_>) -> Result<(), SipError> {
    const LISTS: [HeaderName; 4] = [
        HeaderName::Via,
        HeaderName::Route,
        HeaderName::RecordRoute,
        HeaderName::Contact,
    ];
    let is_list = |n: HeaderName| LISTS.contains(&n);
    // One pass over the lines; the error names the first header of LISTS
    // that fails, as the checks run in that order.
    let bad = m
        .headers()
        .iter()
        .any(|h| is_list(h.name) && has_empty_element(m.slice(h.value())));
    if !bad {
        return Ok(());
    }
    for name in LISTS {
        if m.headers_named(name)
            .any(|h| has_empty_element(m.slice(h.value())))
        {
            return Err(SipError::BadHeader(name));
        }
    }
    Ok(())
}

/// An empty line, or an empty element between commas. The index trims LWS
/// around a value: without a comma, the one element is empty exactly when
/// the value is.
fn has_empty_element(v: &[u8]) -> bool {
    if find_of(v, 0, [b',']).is_none() {
        v.is_empty()
    } else {
        CommaSplit::new(v).any(|e| trim(e).is_empty())
    }
}

/// Validates a response before it is routed upstream: it needs a top Via to
/// strip and a next one to follow, and the dialog identifiers (§8.2.6, §16.7).
///
/// Returns the top Via and the one below it (where the response goes next),
/// decoded once. From and To are checked for presence, not decoded: a proxy
/// copies them untouched.
pub fn validate_response<'a>(m: &Message<'a>) -> Result<Response<'a>, SipError> {
    if m.is_request() {
        return Err(SipError::BadStartLine);
    }
    let mut vias = m.vias();
    let top_via = vias
        .next()
        .ok_or(SipError::MissingHeader(HeaderName::Via))??;
    let next_via = vias.next().transpose()?;
    for v in vias {
        v?;
    }
    no_empty_elements(m)?;
    check_single(m)?;
    for name in [HeaderName::From, HeaderName::To] {
        if m.header_value(name).is_none_or(|v| v.is_empty()) {
            return Err(SipError::MissingHeader(name));
        }
    }
    let call_id = m.call_id()?;
    let cseq = m.cseq()?;
    Ok(Response {
        top_via,
        next_via,
        call_id,
        cseq,
    })
}

/// What response validation decoded.
#[derive(Clone, Debug)]
pub struct Response<'a> {
    pub top_via: Via<'a>,
    /// The Via below the top one: where a proxy sends the response.
    pub next_via: Option<Via<'a>>,
    /// Call-ID and CSeq, checked here, so the transaction layer does not
    /// decode them again.
    pub call_id: &'a [u8],
    pub cseq: CSeq<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(start: &str, extra: &str) -> Vec<u8> {
        format!(
            "{start}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@x>\r\nFrom: <sip:a@x>;tag=1\r\nCall-ID: c1\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    fn check(msg: &[u8]) -> Result<(), SipError> {
        validate_request(&Message::parse(msg)?).map(|_| ())
    }

    #[test]
    fn valid_request_rfc3261_16_3() {
        assert_eq!(
            check(&req(
                "INVITE sip:b@x SIP/2.0",
                "CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
            )),
            Ok(())
        );
        assert_eq!(
            check(&req("INVITE tel:+15551234 SIP/2.0", "CSeq: 1 INVITE\r\n")),
            Ok(())
        );
    }

    #[test]
    fn failures_map_to_status_rfc3261_16_3() {
        let table: &[(Vec<u8>, SipError, u16)] = &[
            // §8.1.1.5 CSeq method mismatch (RFC 4475 §3.4.? mismatch01).
            (req("INVITE sip:b@x SIP/2.0", "CSeq: 1 OPTIONS\r\n"), SipError::CSeqMethodMismatch, 400),
            // §16.3 step 2: unsupported scheme (RFC 4475 unksm2).
            (req("OPTIONS soap.beep://x SIP/2.0", "CSeq: 1 OPTIONS\r\n"), SipError::UnsupportedUriScheme, 416),
            (req("OPTIONS sip:b@x SIP/2.0", ""), SipError::MissingHeader(HeaderName::CSeq), 400),
            // §19.1.1: no headers in a Request-URI.
            (req("OPTIONS sip:b@x?Route=%3Csip:y%3E SIP/2.0", "CSeq: 1 OPTIONS\r\n"), SipError::BadRequestUri, 400),
            // §16.3 step 5: Proxy-Require.
            (
                req("OPTIONS sip:b@x SIP/2.0", "CSeq: 1 OPTIONS\r\nProxy-Require: foo\r\n"),
                SipError::BadExtension,
                420,
            ),
            // §7.3.1: no empty list elements.
            (
                req("OPTIONS sip:b@x SIP/2.0", "CSeq: 1 OPTIONS\r\nVia:\r\n"),
                SipError::BadHeader(HeaderName::Via),
                400,
            ),
            (
                req("OPTIONS sip:b@x SIP/2.0", "CSeq: 1 OPTIONS\r\nRoute: <sip:a;lr>,,<sip:b;lr>\r\n"),
                SipError::BadHeader(HeaderName::Route),
                400,
            ),
            // §7.3.1: Call-ID may appear once.
            (
                req("OPTIONS sip:b@x SIP/2.0", "CSeq: 1 OPTIONS\r\nCall-ID: again\r\n"),
                SipError::DuplicateHeader(HeaderName::CallId),
                400,
            ),
            (req("OPTIONS sip:b@x SIP/2.0", "CSeq: x OPTIONS\r\n"), SipError::BadHeader(HeaderName::CSeq), 400),
            (
                req("OPTIONS sip:b@x SIP/2.0", "CSeq: 1 OPTIONS\r\nMax-Forwards: many\r\n"),
                SipError::BadHeader(HeaderName::MaxForwards),
                400,
            ),
            (
                req("OPTIONS sip:b@x SIP/2.0", "CSeq: 1 OPTIONS\r\nRoute: <sip:p;lr\r\n"),
                SipError::BadHeader(HeaderName::Route),
                400,
            ),
            (
                b"OPTIONS sip:b@x SIP/2.0\r\nTo: <sip:b@x>\r\nFrom: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n".to_vec(),
                SipError::MissingHeader(HeaderName::Via),
                400,
            ),
            (
                b"OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n".to_vec(),
                SipError::MissingHeader(HeaderName::To),
                400,
            ),
        ];
        for (msg, err, code) in table {
            let got = check(msg);
            assert_eq!(got, Err(*err), "{}", String::from_utf8_lossy(msg));
            assert_eq!(err.status().as_u16(), *code);
        }
    }

    #[test]
    fn response_needs_via_and_dialog_ids_rfc3261_16_7() {
        let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@x>;tag=2\r\nFrom: <sip:a@x>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n";
        assert!(validate_response(&Message::parse(ok).unwrap()).is_ok());
        let no_via = b"SIP/2.0 200 OK\r\nTo: <sip:b@x>;tag=2\r\nFrom: <sip:a@x>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(
            validate_response(&Message::parse(no_via).unwrap()).err(),
            Some(SipError::MissingHeader(HeaderName::Via))
        );
    }
}
