//! Requests sipfront originates hop by hop toward a destination, built from
//! the request it forwarded there: the ACK of a non-2xx final response
//! (RFC 3261 §17.1.1.3) and the CANCEL of a pending INVITE (§9.1).
//!
//! Both copy the Request-URI, Call-ID, From, CSeq number and Route set of
//! the forwarded INVITE and carry one Via: sipfront's, with the branch of
//! the attempt they belong to. The ACK takes To from the response (its tag);
//! the CANCEL takes the INVITE's To.

use crate::sip::{HeaderName, Message};

/// Writes an ACK or CANCEL into `out` (cleared first). `via` is sipfront's
/// Via value of the attempt; `to` overrides the To value (the ACK's).
/// `None` when `fwd` lacks a field (it never does: sipfront wrote it).
pub fn build(
    fwd: &Message<'_>,
    method: &str,
    via: &[u8],
    to: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Option<()> {
    out.clear();
    let ruri = fwd.request_uri()?;
    let from = fwd.values(HeaderName::From).next()?;
    let to = match to {
        Some(t) => t,
        None => fwd.values(HeaderName::To).next()?,
    };
    let call_id = fwd.call_id().ok()?;
    let seq = fwd.cseq().ok()?.seq;
    let line = |out: &mut Vec<u8>, name: &str, v: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    };
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(ruri);
    out.extend_from_slice(b" SIP/2.0\r\n");
    line(out, "Via", via);
    // §17.1.1.3 / §9.1: the Route header fields of the request.
    for r in fwd.values(HeaderName::Route) {
        line(out, "Route", r);
    }
    line(out, "Max-Forwards", b"70");
    line(out, "From", from);
    line(out, "To", to);
    line(out, "Call-ID", call_id);
    out.extend_from_slice(b"CSeq: ");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FWD: &str = "INVITE sip:bob@10.0.0.5:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKsf000aaaaaaaaaaaaaaaa.0000000100000002\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5062;received=10.0.0.9;rport=5062;branch=z9hG4bK-1\r\n\
Record-Route: <sip:127.0.0.1:5060;lr>\r\n\
Route: <sip:10.0.0.5:5070;lr>\r\n\
Max-Forwards: 69\r\n\
From: <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: c1@x\r\n\
CSeq: 7 INVITE\r\n\
Contact: <sip:alice@10.0.0.9:5062>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

    const VIA: &[u8] =
        b"SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKsf000aaaaaaaaaaaaaaaa.0000000100000002";

    /// RFC 3261 §17.1.1.3: the ACK of a non-2xx has the INVITE's
    /// Request-URI, Call-ID, From, CSeq number and Route, one Via with the
    /// INVITE's branch, and the response's To.
    #[test]
    fn ack_for_non_2xx_rfc3261_17_1_1_3() {
        let fwd = Message::parse(FWD.as_bytes()).unwrap();
        let mut out = Vec::new();
        build(
            &fwd,
            "ACK",
            VIA,
            Some(b"<sip:bob@example.com>;tag=b7"),
            &mut out,
        )
        .unwrap();
        let ack = Message::parse(&out).unwrap();
        assert_eq!(ack.request_uri(), Some(&b"sip:bob@10.0.0.5:5070"[..]));
        assert_eq!(ack.values(HeaderName::Via).collect::<Vec<_>>(), [VIA]);
        assert_eq!(ack.to().unwrap().tag(), Some(&b"b7"[..]));
        assert_eq!(ack.cseq().unwrap().seq, 7);
        assert_eq!(ack.cseq().unwrap().method_bytes, b"ACK");
        assert_eq!(ack.call_id().unwrap(), b"c1@x");
        assert_eq!(ack.from().unwrap().tag(), Some(&b"a1"[..]));
        assert_eq!(
            ack.values(HeaderName::Route).collect::<Vec<_>>(),
            [&b"<sip:10.0.0.5:5070;lr>"[..]]
        );
        assert!(ack.body().is_empty());
        assert!(crate::sip::validate_request(&ack).is_ok());
    }

    /// RFC 3261 §9.1: the CANCEL copies the INVITE's Request-URI, Call-ID,
    /// To, From, CSeq number and Route, with the INVITE's top Via only.
    #[test]
    fn cancel_rfc3261_9_1() {
        let fwd = Message::parse(FWD.as_bytes()).unwrap();
        let mut out = Vec::new();
        build(&fwd, "CANCEL", VIA, None, &mut out).unwrap();
        let c = Message::parse(&out).unwrap();
        assert_eq!(c.method_bytes(), Some(&b"CANCEL"[..]));
        assert_eq!(c.to().unwrap().tag(), None);
        assert_eq!(c.values(HeaderName::Via).count(), 1);
        assert_eq!(c.cseq().unwrap().seq, 7);
        assert!(c.header(HeaderName::RecordRoute).is_none());
        assert!(crate::sip::validate_request(&c).is_ok());
    }
}
