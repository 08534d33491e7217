//! UDP sockets for the workers (socket2): SO_REUSEPORT listen sockets, one
//! per worker, so the kernel spreads clients over cores by 4-tuple; a
//! per-worker egress socket; large buffers.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Binds a non-blocking UDP socket. `reuse_port` lets every worker bind the
/// same listen address (the kernel balances by 4-tuple).
pub fn bind_udp(
    addr: SocketAddr,
    reuse_port: bool,
    recv_buffer: usize,
    send_buffer: usize,
) -> io::Result<UdpSocket> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    // The kernel caps these at net.core.{r,w}mem_max; a smaller result is
    // logged by the caller, not an error.
    let _ = s.set_recv_buffer_size(recv_buffer);
    let _ = s.set_send_buffer_size(send_buffer);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// The buffer sizes the kernel granted.
pub fn buffer_sizes(sock: &UdpSocket) -> (usize, usize) {
    let s = socket2::SockRef::from(sock);
    (
        s.recv_buffer_size().unwrap_or(0),
        s.send_buffer_size().unwrap_or(0),
    )
}

/// The local IP the kernel would use to reach `peer` (for a wildcard listen
/// address, the address to name in Via). Sends nothing.
pub fn local_ip_toward(peer: SocketAddr) -> Option<std::net::IpAddr> {
    let bind: SocketAddr = if peer.is_ipv6() {
        "[::]:0".parse().ok()?
    } else {
        "0.0.0.0:0".parse().ok()?
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.connect(peer).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_port_lets_two_workers_share_an_address() {
        let a = bind_udp("127.0.0.1:0".parse().unwrap(), true, 1 << 20, 1 << 20).unwrap();
        let addr = a.local_addr().unwrap();
        let b = bind_udp(addr, true, 1 << 20, 1 << 20).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
        let (r, _) = buffer_sizes(&a);
        assert!(r > 0);
    }
}
