//! The CSeq header (RFC 3261 §20.16): a sequence number and a method.

use super::method::Method;
use super::scan;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number, below 2**31 (RFC 3261 §8.1.1.5).
    pub seq: u32,
    pub method: Method,
    /// The method as written, to compare extension methods.
    pub method_bytes: &'a [u8],
}

impl<'a> CSeq<'a> {
    /// Parses `1*DIGIT LWS Method`. Leading zeros are allowed (RFC 4475
    /// §3.1.1.1 wsinv: `cseq: 0009 INVITE` across a fold).
    pub fn parse(v: &'a [u8]) -> Option<CSeq<'a>> {
        let v = scan::trim(v);
        let sep = v.iter().position(|&b| scan::is_lws(b))?;
        let seq = scan::parse_u32(&v[..sep], 10)?;
        if seq >= 1 << 31 {
            return None;
        }
        let method_bytes = scan::trim(&v[sep..]);
        let method = Method::from_bytes(method_bytes)?;
        Some(CSeq {
            seq,
            method,
            method_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_rfc3261_20_16() {
        let c = CSeq::parse(b"314159 INVITE").unwrap();
        assert_eq!((c.seq, c.method), (314159, Method::Invite));
        let c = CSeq::parse(b"0009\r\n  INVITE").unwrap();
        assert_eq!((c.seq, c.method), (9, Method::Invite));
        let c = CSeq::parse(b"1 NEWMETHOD").unwrap();
        assert_eq!(c.method_bytes, b"NEWMETHOD");
        for bad in [
            &b"INVITE"[..],
            b"1",
            b"x INVITE",
            b"2147483648 INVITE",
            b"1 IN VITE",
            b"-1 ACK",
        ] {
            assert!(
                CSeq::parse(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
