//! UDP sockets through socket2: non-blocking sockets with SO_REUSEADDR
//! (and SO_REUSEPORT on request, so every worker can bind the same listen
//! address and the kernel spreads clients by 4-tuple), IPv6 sockets
//! v6-only, the buffer sizes the kernel granted, and the local address the
//! routing table picks toward a peer.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// An unbound UDP socket of `addr`'s family (IPv6 only for IPv6).
fn udp_socket(addr: SocketAddr) -> io::Result<Socket> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    Ok(s)
}

/// Binds a non-blocking UDP socket to `addr` with SO_REUSEADDR (and
/// SO_REUSEPORT when `reuse_port`), IPV6_V6ONLY for an IPv6 address, and
/// the asked buffer sizes. The kernel caps the sizes at
/// `net.core.{r,w}mem_max` and that is not an error: read what was granted
/// with [`buffer_sizes`].
///
/// Port 0 is different: the port the kernel picks must be this socket's
/// alone, but with SO_REUSEADDR or SO_REUSEPORT set before `bind`, Linux
/// may pick a port another such socket of the same user already holds
/// (measured: about 1 bind in 20 with 3000 sockets open), and the two then
/// share traffic. So a port-0 socket is bound plain, then gets
/// SO_REUSEPORT (when asked) so that others can join it on the port it
/// got; it never gets SO_REUSEADDR.
///
/// SO_REUSEADDR lets a UDP socket bind an address another SO_REUSEADDR
/// socket holds: a caller that relies on `bind` failing for a taken port
/// (a port allocator) should bind with `UdpSocket::bind` instead.
pub fn bind_udp(
    addr: SocketAddr,
    reuse_port: bool,
    recv_buffer: usize,
    send_buffer: usize,
) -> io::Result<UdpSocket> {
    let s = udp_socket(addr)?;
    let _ = s.set_recv_buffer_size(recv_buffer);
    let _ = s.set_send_buffer_size(send_buffer);
    s.set_nonblocking(true)?;
    if addr.port() == 0 {
        s.bind(&addr.into())?;
        if reuse_port {
            // Set after bind, the group forms when the next socket joins.
            s.set_reuse_port(true)?;
        }
    } else {
        s.set_reuse_address(true)?;
        if reuse_port {
            s.set_reuse_port(true)?;
        }
        s.bind(&addr.into())?;
    }
    Ok(s.into())
}

/// Fails with `AddrInUse` when any socket is bound to `addr` already.
/// SO_REUSEPORT (the listen sockets) and SO_REUSEADDR (the egress ones)
/// would let a second process bind the same address and take half the
/// traffic; a probe with neither option is refused by the kernel while
/// anything holds the address. A port of 0 is always free.
pub fn ensure_unused(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let s = udp_socket(addr)?;
    s.bind(&addr.into()).map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("udp {addr} is in use by another process (another sipfront?); refusing to share it"),
            )
        } else {
            e
        }
    })
}

/// The receive and send buffer sizes the kernel granted (0 if unknown).
pub fn buffer_sizes(sock: &UdpSocket) -> (usize, usize) {
    let s = socket2::SockRef::from(sock);
    (
        s.recv_buffer_size().unwrap_or(0),
        s.send_buffer_size().unwrap_or(0),
    )
}

/// The local IP the kernel would use to reach `peer` (for a wildcard listen
/// address, the address to name in Via or SDP). Sends nothing: it connects
/// a throwaway UDP socket and reads its local address.
pub fn local_ip_toward(peer: SocketAddr) -> Option<IpAddr> {
    let any: IpAddr = if peer.is_ipv6() {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    };
    let s = UdpSocket::bind(SocketAddr::new(any, 0)).ok()?;
    s.connect(peer).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn reuse_port_lets_two_workers_share_an_address() {
        let a = bind_udp(lo(), true, 1 << 20, 1 << 20).unwrap();
        let addr = a.local_addr().unwrap();
        let b = bind_udp(addr, true, 1 << 20, 1 << 20).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
        let (r, s) = buffer_sizes(&a);
        assert!(r > 0 && s > 0);
    }

    #[test]
    fn a_reuse_port_group_on_a_kernel_picked_port_gets_traffic_on_every_member() {
        let a = bind_udp(lo(), true, 1 << 20, 1 << 20).unwrap();
        let addr = a.local_addr().unwrap();
        let b = bind_udp(addr, true, 1 << 20, 1 << 20).unwrap();
        let mut got = [0usize; 2];
        let mut buf = [0u8; 8];
        for _ in 0..64 {
            let c = UdpSocket::bind(lo()).unwrap();
            c.send_to(b"x", addr).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        for (n, s) in got.iter_mut().zip([&a, &b]) {
            while s.recv_from(&mut buf).is_ok() {
                *n += 1;
            }
        }
        assert_eq!(got[0] + got[1], 64);
        assert!(got[0] > 0 && got[1] > 0, "{got:?}");
    }

    #[test]
    fn kernel_picked_ports_are_never_shared() {
        let socks: Vec<UdpSocket> = (0..400)
            .map(|k| bind_udp(lo(), k % 2 == 0, 1 << 16, 1 << 16).unwrap())
            .collect();
        let mut ports: Vec<u16> = socks
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), socks.len());
    }

    #[test]
    fn without_reuse_port_a_taken_address_fails() {
        let a = bind_udp(lo(), false, 1 << 16, 1 << 16).unwrap();
        let addr = a.local_addr().unwrap();
        // Not SO_REUSEADDR: a plain bind of the same port is refused.
        assert!(UdpSocket::bind(addr).is_err());
    }

    #[test]
    fn sockets_are_non_blocking() {
        let a = bind_udp(lo(), false, 1 << 16, 1 << 16).unwrap();
        let mut buf = [0u8; 16];
        let e = a.recv_from(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn local_ip_toward_loopback() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(local_ip_toward(peer), Some(peer.ip()));
    }
}
