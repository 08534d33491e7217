//! `SocketAddr` ⇄ `libc::sockaddr_storage` for the raw `recvmmsg`/`sendmmsg`
//! headers. The field-by-field work is socket2's (`SockAddr`); this module
//! only moves its storage in and out of the C type, and checks the family
//! and length the kernel reported before reading a received address.

use socket2::{SockAddr, SockAddrStorage};
use std::mem::size_of;
use std::net::SocketAddr;

/// Writes `addr` into `out` and returns the length to give the kernel.
#[inline]
pub fn to_raw(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let sa = SockAddr::from(*addr);
    let len = sa.len();
    let mut storage = sa.as_storage();
    // SAFETY: `sockaddr_storage` is one of the platform's sockaddr types, as
    // `view_as` requires (SockAddrStorage is a transparent wrapper of it).
    *out = *unsafe { storage.view_as::<libc::sockaddr_storage>() };
    len
}

/// Reads the address the kernel wrote into `s` (`len` bytes of it): `None`
/// for a family other than IPv4/IPv6 or a length too short for its family.
#[inline]
pub fn from_raw(s: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let need = match i32::from(s.ss_family) {
        libc::AF_INET => size_of::<libc::sockaddr_in>(),
        libc::AF_INET6 => size_of::<libc::sockaddr_in6>(),
        _ => return None,
    };
    if (len as usize) < need || len as usize > size_of::<libc::sockaddr_storage>() {
        return None;
    }
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `sockaddr_storage` is one of the platform's sockaddr types.
    *unsafe { storage.view_as::<libc::sockaddr_storage>() } = *s;
    // SAFETY: the family is AF_INET or AF_INET6 and `len` covers the
    // matching sockaddr_in/sockaddr_in6, checked above; every bit pattern
    // of those plain-data structs is a valid address.
    let sa = unsafe { SockAddr::new(storage, len) };
    sa.as_socket()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv6Addr, SocketAddrV6};

    fn zeroed() -> libc::sockaddr_storage {
        // SAFETY: all-zero is a valid sockaddr_storage.
        unsafe { std::mem::zeroed() }
    }

    #[test]
    fn round_trip_v4_and_v6() {
        let mut s = zeroed();
        for a in [
            "127.0.0.1:5060",
            "0.0.0.0:0",
            "[2001:db8::1]:5070",
            "[::1]:1",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            let len = to_raw(&a, &mut s);
            let want = if a.is_ipv4() {
                size_of::<libc::sockaddr_in>()
            } else {
                size_of::<libc::sockaddr_in6>()
            };
            assert_eq!(len as usize, want);
            assert_eq!(from_raw(&s, len), Some(a));
        }
    }

    #[test]
    fn round_trip_v6_scope_and_flowinfo() {
        let a = SocketAddr::V6(SocketAddrV6::new(
            "fe80::1".parse::<Ipv6Addr>().unwrap(),
            5060,
            0x12345,
            7,
        ));
        let mut s = zeroed();
        let len = to_raw(&a, &mut s);
        let back = from_raw(&s, len).unwrap();
        assert_eq!(back, a);
        let SocketAddr::V6(b) = back else {
            panic!("not v6")
        };
        assert_eq!((b.scope_id(), b.flowinfo()), (7, 0x12345));
    }

    #[test]
    fn byte_order_is_network() {
        let mut s = zeroed();
        to_raw(&"10.1.2.3:258".parse().unwrap(), &mut s);
        // SAFETY: to_raw wrote a sockaddr_in; storage is big enough and aligned.
        let sin = unsafe { &*(&s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
        assert_eq!(sin.sin_port.to_ne_bytes(), [1, 2]);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [10, 1, 2, 3]);
    }

    #[test]
    fn rejects_unknown_family_and_short_length() {
        let mut s = zeroed();
        assert_eq!(from_raw(&s, 128), None, "AF_UNSPEC");
        let len = to_raw(&"[::1]:9".parse().unwrap(), &mut s);
        assert_eq!(from_raw(&s, len - 1), None);
        assert_eq!(from_raw(&s, 0), None);
        s.ss_family = libc::AF_UNIX as libc::sa_family_t;
        assert_eq!(from_raw(&s, len), None);
    }
}
