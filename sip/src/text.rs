//! Numbers and addresses written as SIP text straight into byte buffers,
//! without `core::fmt` (whose machinery costs more than the few digits a
//! proxy writes per message: a port, a Max-Forwards, an IPv4 address).

use std::net::IpAddr;

/// The decimal digits of a number, on the stack: for a value that goes into
/// a list of parts (`Edits::insert_parts`) next to borrowed bytes.
#[derive(Clone, Copy, Debug)]
pub struct Digits {
    buf: [u8; 10],
    start: u8,
}

impl Digits {
    pub fn new(mut n: u32) -> Digits {
        let mut buf = [0u8; 10];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Digits {
            buf,
            start: i as u8,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(usize::from(self.start)..).unwrap_or(&[])
    }
}

/// Appends `n` in decimal.
#[inline]
pub fn push_u32(out: &mut Vec<u8>, n: u32) {
    if n < 10 {
        out.push(b'0' + n as u8);
    } else {
        out.extend_from_slice(Digits::new(n).as_bytes());
    }
}

/// Appends an address as SIP writes it in `received` and as `Display`
/// writes it: dotted IPv4, IPv6 in its RFC 5952 form without brackets.
pub fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            let [a, b, c, d] = a.octets();
            for (i, o) in [a, b, c, d].into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if o >= 100 {
                    out.push(b'0' + o / 100);
                }
                if o >= 10 {
                    out.push(b'0' + o / 10 % 10);
                }
                out.push(b'0' + o % 10);
            }
        }
        IpAddr::V6(a) => {
            use std::io::Write as _;
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{a}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_addresses_match_display() {
        for n in [0u32, 7, 10, 69, 70, 100, 5060, 65535, 4_294_967_295] {
            let mut v = Vec::new();
            push_u32(&mut v, n);
            assert_eq!(v, n.to_string().as_bytes());
            assert_eq!(Digits::new(n).as_bytes(), n.to_string().as_bytes());
        }
        for ip in [
            "0.0.0.0",
            "192.0.2.101",
            "10.20.3.255",
            "2001:db8::1",
            "::ffff:1.2.3.4",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut v = Vec::new();
            push_ip(&mut v, ip);
            assert_eq!(v, ip.to_string().as_bytes());
        }
    }
}
