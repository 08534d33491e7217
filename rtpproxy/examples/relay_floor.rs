//! The floor the relay is compared with: a bare forwarder doing only what
//! any userspace relay must do per packet: epoll, one recvmmsg and one
//! sendmmsg (batches of 32), to the source last seen on the paired socket.
//! No control protocol, no statistics, no latching rules.
//!
//! ```text
//! cargo run --release -p sipfront-rtpproxy --example relay_floor -- --base 50000 --calls 100 &
//! cargo run --release -p sipfront-rtpproxy --example relay_load -- --static 50000 --pid $! --calls 100
//! ```
//! Call i uses ports base + 4i (faces party a) and base + 4i + 2 (faces b).

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

const BATCH: usize = 32;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn main() {
    let base: u16 = arg("--base", "50000").parse().expect("--base");
    let calls: u16 = arg("--calls", "100").parse().expect("--calls");
    let socks: Vec<UdpSocket> = (0..calls * 2)
        .map(|i| {
            let s = UdpSocket::bind(("127.0.0.1", base + 2 * i)).expect("bind");
            s.set_nonblocking(true).expect("nb");
            s
        })
        .collect();
    let mut peers: Vec<Option<SocketAddr>> = vec![None; socks.len()];
    // SAFETY: plain epoll and recvmmsg/sendmmsg over buffers owned here.
    unsafe {
        let ep = libc::epoll_create1(0);
        for (i, s) in socks.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev);
        }
        let mut bufs = vec![[0u8; 2048]; BATCH];
        let mut names: Vec<libc::sockaddr_in> = vec![std::mem::zeroed(); BATCH];
        let mut iov: Vec<libc::iovec> = vec![std::mem::zeroed(); BATCH];
        let mut msgs: Vec<libc::mmsghdr> = vec![std::mem::zeroed(); BATCH];
        let mut dest: libc::sockaddr_in = std::mem::zeroed();
        let mut events: Vec<libc::epoll_event> = vec![std::mem::zeroed(); 256];
        eprintln!("relay_floor ready");
        loop {
            let n = libc::epoll_wait(ep, events.as_mut_ptr(), 256, -1);
            for ev in events.iter().take(n.max(0) as usize) {
                let i = ev.u64 as usize;
                for k in 0..BATCH {
                    iov[k] = libc::iovec {
                        iov_base: bufs[k].as_mut_ptr().cast(),
                        iov_len: 2048,
                    };
                    msgs[k].msg_hdr.msg_name = (&mut names[k] as *mut libc::sockaddr_in).cast();
                    msgs[k].msg_hdr.msg_namelen = 16;
                    msgs[k].msg_hdr.msg_iov = &mut iov[k];
                    msgs[k].msg_hdr.msg_iovlen = 1;
                }
                let r = libc::recvmmsg(
                    socks[i].as_raw_fd(),
                    msgs.as_mut_ptr(),
                    BATCH as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                );
                if r <= 0 {
                    continue;
                }
                let last = names[r as usize - 1];
                peers[i] = Some(SocketAddr::from((
                    u32::from_be(last.sin_addr.s_addr).to_be_bytes(),
                    u16::from_be(last.sin_port),
                )));
                let j = i ^ 1;
                let Some(SocketAddr::V4(d)) = peers[j] else {
                    continue;
                };
                dest.sin_family = libc::AF_INET as u16;
                dest.sin_port = d.port().to_be();
                dest.sin_addr.s_addr = u32::from(*d.ip()).to_be();
                for k in 0..r as usize {
                    iov[k].iov_len = msgs[k].msg_len as usize;
                    msgs[k].msg_hdr.msg_name = (&mut dest as *mut libc::sockaddr_in).cast();
                    msgs[k].msg_hdr.msg_namelen = 16;
                }
                libc::sendmmsg(
                    socks[j].as_raw_fd(),
                    msgs.as_mut_ptr(),
                    r as u32,
                    libc::MSG_DONTWAIT,
                );
            }
        }
    }
}
