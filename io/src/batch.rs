//! Batched UDP receive and send: [`RecvBatch`] for `recvmmsg`, [`SendBatch`]
//! for `sendmmsg`, and [`SendError`], the reasons a datagram was not sent.
//!
//! Both batches own every buffer, address and header they hand the kernel,
//! made once in `new`; after that no call allocates. The headers are
//! re-pointed at the buffers before each system call, so buffers may change
//! hands in between: a caller can `std::mem::swap` its own `Vec<u8>` into a
//! [`SendBatch::slot`], and [`RecvBatch::take_into`] moves a received
//! datagram into a send slot the same way. A relay forwards that way without
//! copying a byte.
//!
//! Sends use `MSG_DONTWAIT`, so they never block, whether the socket is
//! non-blocking (the epoll drivers) or blocking (the io_uring driver hands
//! glommio blocking sockets). A datagram the kernel refuses is skipped and
//! counted by [`SendError`]; the others still go.

use crate::addr;
use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::ops::AddAssign;
use std::os::fd::RawFd;
use std::ptr;

/// The largest UDP datagram (IPv4 payload limit rounded up to the 16-bit
/// length field); a receive buffer this size never truncates.
pub const MAX_DGRAM: usize = 65_535;

/// Send buffer capacity [`SendBatch::new`] reserves per slot.
pub const SEND_BUF_CAPACITY: usize = 4096;

fn empty_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: ptr::null_mut(),
        iov_len: 0,
    }
}

fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain data (pointers and integers); all-zero is a
    // valid, empty header.
    unsafe { std::mem::zeroed() }
}

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: all-zero is a valid sockaddr_storage (family AF_UNSPEC).
    unsafe { std::mem::zeroed() }
}

/// Buffers, source addresses and headers for `recvmmsg`.
pub struct RecvBatch {
    /// One buffer per datagram, capacity at least `max_dgram`; after a
    /// receive, `len` is the datagram's length.
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    max_dgram: usize,
    /// Datagrams held from the last receive.
    n: usize,
}

// SAFETY: the raw pointers inside `iovs` and `hdrs` only ever point into
// this batch's own heap allocations (which move with it) and are rewritten
// before every system call; nothing is shared with another value.
unsafe impl Send for RecvBatch {}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.bufs.len())
            .field("max_dgram", &self.max_dgram)
            .field("len", &self.n)
            .finish()
    }
}

impl RecvBatch {
    /// Room for `batch` datagrams (at least 1) of up to `max_dgram` bytes
    /// each (at least 1; longer ones arrive truncated, see
    /// [`truncated`](Self::truncated)).
    pub fn new(batch: usize, max_dgram: usize) -> RecvBatch {
        let batch = batch.max(1);
        let max_dgram = max_dgram.max(1);
        RecvBatch {
            bufs: (0..batch).map(|_| Vec::with_capacity(max_dgram)).collect(),
            addrs: (0..batch).map(|_| zeroed_storage()).collect(),
            iovs: (0..batch).map(|_| empty_iovec()).collect(),
            hdrs: (0..batch).map(|_| zeroed_mmsghdr()).collect(),
            max_dgram,
            n: 0,
        }
    }

    /// Receives up to [`capacity`](Self::capacity) datagrams from `fd`
    /// without waiting (`MSG_DONTWAIT`) and returns how many. Nothing to
    /// read (`EAGAIN`) and a signal (`EINTR`) are `Ok(0)`; other errors (a
    /// connected socket's pending ICMP error, `ECONNREFUSED`) are returned.
    /// The datagrams of the previous call are gone either way.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.n = 0;
        let max = self.max_dgram;
        for (((buf, name), iov), h) in self
            .bufs
            .iter_mut()
            .zip(self.addrs.iter_mut())
            .zip(self.iovs.iter_mut())
            .zip(self.hdrs.iter_mut())
        {
            buf.clear();
            // The kernel writes into the spare capacity (at least `max`
            // bytes: the invariant `new` and `take_into` keep).
            *iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: max,
            };
            let m = &mut h.msg_hdr;
            m.msg_name = (name as *mut libc::sockaddr_storage).cast();
            m.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_iov = iov;
            m.msg_iovlen = 1;
            m.msg_control = ptr::null_mut();
            m.msg_controllen = 0;
            m.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: `hdrs` holds `hdrs.len()` headers, each pointing at a live
        // address storage of the size given and at an iovec describing
        // `max` writable bytes of a buffer this batch owns.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = (r as usize).min(self.bufs.len());
        for (buf, h) in self.bufs.iter_mut().zip(&self.hdrs).take(n) {
            let len = (h.msg_len as usize).min(max);
            // SAFETY: the kernel wrote `msg_len` bytes (never more than the
            // iovec's `max`, which the capacity covers) at the start of the
            // buffer, so the first `len` bytes are initialised.
            unsafe { buf.set_len(len) };
        }
        self.n = n;
        Ok(n)
    }

    /// Datagram `i` of the last receive and its source (`None` for a family
    /// other than IPv4/IPv6); empty and `None` past the last one.
    #[inline]
    pub fn datagram(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        if i >= self.n {
            return (&[], None);
        }
        match (self.bufs.get(i), self.addrs.get(i), self.hdrs.get(i)) {
            (Some(b), Some(a), Some(h)) => (b, addr::from_raw(a, h.msg_hdr.msg_namelen)),
            _ => (&[], None),
        }
    }

    /// Whether datagram `i` was longer than `max_dgram` (its tail is lost).
    #[inline]
    pub fn truncated(&self, i: usize) -> bool {
        i < self.n
            && self
                .hdrs
                .get(i)
                .is_some_and(|h| h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0)
    }

    /// Moves datagram `i` into `into` (its previous contents are dropped)
    /// and returns its length; `datagram(i)` is empty afterwards. When
    /// `into` can hold `max_dgram` bytes the two buffers trade places and
    /// nothing is copied (a [`SendBatch`] made with
    /// [`with_buffer_capacity`](SendBatch::with_buffer_capacity)`(_, max_dgram)`
    /// always can); otherwise the bytes are copied, and `into` grows if it
    /// is shorter than the datagram.
    pub fn take_into(&mut self, i: usize, into: &mut Vec<u8>) -> usize {
        into.clear();
        if i >= self.n {
            return 0;
        }
        let Some(buf) = self.bufs.get_mut(i) else {
            return 0;
        };
        if into.capacity() >= self.max_dgram {
            std::mem::swap(buf, into);
        } else {
            into.extend_from_slice(buf);
        }
        buf.clear();
        into.len()
    }

    /// Datagrams held from the last receive.
    #[inline]
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the last receive got nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Datagrams one receive can take.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }

    /// The longest datagram a buffer holds whole.
    #[inline]
    pub fn max_dgram(&self) -> usize {
        self.max_dgram
    }
}

/// Why the kernel did not take a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendError {
    /// The socket's send buffer (or the device queue) is full: `EAGAIN`,
    /// `ENOBUFS`.
    WouldBlock = 0,
    /// No route: `EHOSTUNREACH`, `ENETUNREACH`.
    Unreachable = 1,
    /// A connected socket's peer answered a previous datagram with ICMP
    /// port unreachable: `ECONNREFUSED`.
    Refused = 2,
    /// Longer than the protocol allows: `EMSGSIZE`.
    TooBig = 3,
    /// Anything else (`EPERM` from a firewall, `EAFNOSUPPORT` for an
    /// address of the other family, ...).
    Other = 4,
}

impl SendError {
    /// Every kind, in the order of their `as usize` values.
    pub const ALL: [SendError; 5] = [
        SendError::WouldBlock,
        SendError::Unreachable,
        SendError::Refused,
        SendError::TooBig,
        SendError::Other,
    ];

    /// The kind of a failed send.
    pub fn from_io(e: &io::Error) -> SendError {
        match e.raw_os_error() {
            Some(libc::EAGAIN | libc::ENOBUFS) => SendError::WouldBlock,
            Some(libc::EHOSTUNREACH | libc::ENETUNREACH) => SendError::Unreachable,
            Some(libc::ECONNREFUSED) => SendError::Refused,
            Some(libc::EMSGSIZE) => SendError::TooBig,
            _ if e.kind() == io::ErrorKind::WouldBlock => SendError::WouldBlock,
            _ => SendError::Other,
        }
    }

    /// The label for metrics (`send_failures{reason="..."}`).
    pub fn as_str(&self) -> &'static str {
        match self {
            SendError::WouldBlock => "would_block",
            SendError::Unreachable => "unreachable",
            SendError::Refused => "refused",
            SendError::TooBig => "too_big",
            SendError::Other => "other",
        }
    }
}

/// What a [`SendBatch::flush`] did: datagrams sent, and those not sent by
/// reason (`failed[kind as usize]`).
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flushed {
    pub sent: usize,
    pub failed: [u32; 5],
}

impl Flushed {
    /// Datagrams not sent for this reason.
    #[inline]
    pub fn count(&self, kind: SendError) -> u32 {
        self.failed[kind as usize]
    }

    /// Datagrams not sent, whatever the reason.
    #[inline]
    pub fn failed_total(&self) -> usize {
        self.failed.iter().map(|&n| n as usize).sum()
    }

    /// The reasons with at least one failure, and their counts.
    pub fn failures(&self) -> impl Iterator<Item = (SendError, u32)> {
        let failed = self.failed;
        SendError::ALL
            .into_iter()
            .zip(failed)
            .filter(|&(_, n)| n > 0)
    }

    #[inline]
    fn fail(&mut self, kind: SendError, n: usize) {
        let c = &mut self.failed[kind as usize];
        *c = c.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }
}

impl AddAssign for Flushed {
    fn add_assign(&mut self, o: Flushed) {
        self.sent += o.sent;
        for (a, b) in self.failed.iter_mut().zip(o.failed) {
            *a = a.saturating_add(b);
        }
    }
}

/// `names` entry of a datagram sent without an address (connected socket).
const NO_NAME: usize = usize::MAX;

/// Datagrams queued for one socket, sent together by [`flush`](Self::flush).
pub struct SendBatch {
    /// `capacity + 1` buffers: the last is what [`slot`](Self::slot) hands
    /// out while the batch is full (see [`commit`](Self::commit)).
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    /// Which `addrs` entry datagram `i` goes to (`NO_NAME`: none). Runs of
    /// datagrams to one destination share its entry: converted once.
    names: Vec<usize>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    n: usize,
    /// Destination of the last committed datagram, while `names[n - 1]`
    /// holds it.
    last: Option<SocketAddr>,
    /// Commits refused because the batch was full, reported by the next flush.
    overflow: usize,
}

// SAFETY: the raw pointers inside `iovs` and `hdrs` only ever point into
// this batch's own heap allocations (which move with it) and are rewritten
// before every system call; nothing is shared with another value.
unsafe impl Send for SendBatch {}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("capacity", &self.capacity())
            .field("len", &self.n)
            .finish()
    }
}

impl SendBatch {
    /// Room for `batch` datagrams (at least 1), each buffer reserving
    /// [`SEND_BUF_CAPACITY`] bytes.
    pub fn new(batch: usize) -> SendBatch {
        SendBatch::with_buffer_capacity(batch, SEND_BUF_CAPACITY)
    }

    /// Room for `batch` datagrams (at least 1), each buffer reserving
    /// `capacity` bytes. A relay passes its [`RecvBatch::max_dgram`], so
    /// that [`RecvBatch::take_into`] never copies.
    pub fn with_buffer_capacity(batch: usize, capacity: usize) -> SendBatch {
        let batch = batch.max(1);
        SendBatch {
            bufs: (0..=batch).map(|_| Vec::with_capacity(capacity)).collect(),
            addrs: (0..batch).map(|_| zeroed_storage()).collect(),
            addr_lens: vec![0; batch],
            names: vec![NO_NAME; batch],
            iovs: (0..batch).map(|_| empty_iovec()).collect(),
            hdrs: (0..batch).map(|_| zeroed_mmsghdr()).collect(),
            n: 0,
            last: None,
            overflow: 0,
        }
    }

    /// The next free buffer, emptied (its capacity kept). Write the datagram
    /// into it, or swap a filled `Vec<u8>` in (the caller gets this one's
    /// allocation back: no copy), then [`commit`](Self::commit).
    #[inline]
    pub fn slot(&mut self) -> &mut Vec<u8> {
        let i = self.n.min(self.bufs.len() - 1);
        let b = &mut self.bufs[i];
        b.clear();
        b
    }

    /// Makes the slot's contents a datagram for `to`. On a full batch (a
    /// caller that did not [`flush`](Self::flush) when
    /// [`is_full`](Self::is_full)) the datagram is dropped and reported by
    /// the next flush as [`SendError::Other`].
    #[inline]
    pub fn commit(&mut self, to: SocketAddr) {
        let n = self.n;
        if n >= self.capacity() {
            debug_assert!(false, "SendBatch::commit on a full batch");
            self.overflow += 1;
            return;
        }
        if n > 0 && self.last == Some(to) {
            self.names[n] = self.names[n - 1];
        } else {
            self.addr_lens[n] = addr::to_raw(&to, &mut self.addrs[n]);
            self.names[n] = n;
            self.last = Some(to);
        }
        self.n = n + 1;
    }

    /// Like [`commit`](Self::commit), without a destination: for a
    /// `connect`ed socket, which then sends to its peer on the route it
    /// has cached.
    #[inline]
    pub fn commit_connected(&mut self) {
        let n = self.n;
        if n >= self.capacity() {
            debug_assert!(false, "SendBatch::commit_connected on a full batch");
            self.overflow += 1;
            return;
        }
        self.names[n] = NO_NAME;
        self.last = None;
        self.n = n + 1;
    }

    /// Queues a copy of `data` for `to`.
    #[inline]
    pub fn push(&mut self, data: &[u8], to: SocketAddr) {
        self.slot().extend_from_slice(data);
        self.commit(to);
    }

    /// Datagrams queued.
    #[inline]
    pub fn len(&self) -> usize {
        self.n
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether the batch must be flushed before the next commit.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.n >= self.capacity()
    }

    /// Datagrams one flush can take.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Sends everything queued from `fd` with `sendmmsg` and `MSG_DONTWAIT`,
    /// and empties the batch. A datagram the kernel refuses is skipped and
    /// counted by reason; the ones after it are tried. A full socket buffer
    /// is the exception: the rest of the batch is counted as
    /// [`SendError::WouldBlock`] without more system calls, since the
    /// buffer will not have drained in the meantime.
    pub fn flush(&mut self, fd: RawFd) -> Flushed {
        self.flush_flags(fd, libc::MSG_DONTWAIT)
    }

    /// [`flush`](Self::flush) without `MSG_DONTWAIT`: on a blocking socket
    /// a full send buffer makes the call wait (backpressure rather than
    /// drops); on a non-blocking one it is the same as `flush`.
    pub fn flush_wait(&mut self, fd: RawFd) -> Flushed {
        self.flush_flags(fd, 0)
    }

    fn flush_flags(&mut self, fd: RawFd, flags: libc::c_int) -> Flushed {
        let mut f = Flushed::default();
        if self.overflow > 0 {
            f.fail(SendError::Other, self.overflow);
            self.overflow = 0;
        }
        let n = self.n;
        if n == 0 {
            return f;
        }
        for i in 0..n {
            let buf = &self.bufs[i];
            self.iovs[i] = libc::iovec {
                iov_base: buf.as_ptr() as *mut libc::c_void,
                iov_len: buf.len(),
            };
            let m = &mut self.hdrs[i].msg_hdr;
            match self.names[i] {
                NO_NAME => {
                    m.msg_name = ptr::null_mut();
                    m.msg_namelen = 0;
                }
                k => {
                    m.msg_name = (&mut self.addrs[k] as *mut libc::sockaddr_storage).cast();
                    m.msg_namelen = self.addr_lens[k];
                }
            }
            m.msg_iov = &mut self.iovs[i];
            m.msg_iovlen = 1;
            m.msg_control = ptr::null_mut();
            m.msg_controllen = 0;
            m.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        let mut done = 0usize;
        while done < n {
            // SAFETY: headers done..n were filled above; they point at
            // address storage and buffers this batch owns, unchanged since.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.hdrs.as_mut_ptr().add(done),
                    (n - done) as libc::c_uint,
                    flags,
                )
            };
            if r > 0 {
                let r = (r as usize).min(n - done);
                done += r;
                f.sent += r;
                continue;
            }
            let kind = if r == 0 {
                // Not expected with a non-empty vector; never loop on it.
                SendError::Other
            } else {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                SendError::from_io(&e)
            };
            if kind == SendError::WouldBlock {
                f.fail(kind, n - done);
                break;
            }
            f.fail(kind, 1);
            done += 1;
        }
        self.n = 0;
        self.last = None;
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udp::bind_udp;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    fn sock() -> UdpSocket {
        bind_udp("127.0.0.1:0".parse().unwrap(), false, 1 << 20, 1 << 20).unwrap()
    }

    /// Receives until `want` datagrams arrived or a second passed.
    fn recv_all(rx: &mut RecvBatch, s: &UdpSocket, want: usize) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut got = Vec::new();
        let end = Instant::now() + Duration::from_secs(1);
        while got.len() < want && Instant::now() < end {
            let n = rx.recv(s.as_raw_fd()).unwrap();
            for i in 0..n {
                let (d, src) = rx.datagram(i);
                got.push((d.to_vec(), src.unwrap()));
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        got
    }

    #[test]
    fn send_and_receive_a_full_batch_over_loopback() {
        let (a, b) = (sock(), sock());
        let (from, to) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut tx = SendBatch::new(8);
        for k in 0..8u8 {
            assert!(!tx.is_full());
            tx.push(&[k; 100][..usize::from(k) + 1], to);
        }
        assert!(tx.is_full() && tx.len() == 8);
        let f = tx.flush(a.as_raw_fd());
        assert_eq!(
            f,
            Flushed {
                sent: 8,
                ..Flushed::default()
            }
        );
        assert!(tx.is_empty());

        // A receive batch smaller than what is queued: full, then the rest.
        let mut rx = RecvBatch::new(5, 2048);
        let end = Instant::now() + Duration::from_secs(1);
        let mut first = 0;
        while first == 0 && Instant::now() < end {
            first = rx.recv(b.as_raw_fd()).unwrap();
        }
        assert_eq!(first, 5);
        assert_eq!(rx.len(), rx.capacity());
        for i in 0..5 {
            let (d, src) = rx.datagram(i);
            assert_eq!(d, &[i as u8; 100][..i + 1]);
            assert_eq!(src, Some(from));
            assert!(!rx.truncated(i));
        }
        assert_eq!(rx.datagram(5), (&[][..], None), "past the last one");
        let rest = recv_all(&mut rx, &b, 3);
        assert_eq!(rest.len(), 3);
        assert_eq!(rest[2].0, vec![7u8; 8]);
        assert_eq!(rx.recv(b.as_raw_fd()).unwrap(), 0, "drained: Ok(0)");
    }

    #[test]
    fn slot_swap_and_take_into_forward_without_copying() {
        let (a, relay, c) = (sock(), sock(), sock());
        let mut tx = SendBatch::with_buffer_capacity(4, 2048);
        // The caller's buffer is as big as a received datagram can be, so
        // the relay below can trade it for one.
        let mut own = Vec::with_capacity(2048);
        own.extend_from_slice(b"swapped in");
        std::mem::swap(tx.slot(), &mut own);
        assert!(
            own.is_empty() && own.capacity() >= 2048,
            "got the slot's buffer"
        );
        tx.commit(relay.local_addr().unwrap());
        tx.push(b"copied", relay.local_addr().unwrap());
        assert_eq!(tx.flush(a.as_raw_fd()).sent, 2);

        // The relay: each received datagram trades buffers with a send slot.
        let mut rx = RecvBatch::new(4, 2048);
        let mut forwarded = 0;
        let end = Instant::now() + Duration::from_secs(1);
        while forwarded < 2 && Instant::now() < end {
            let n = rx.recv(relay.as_raw_fd()).unwrap();
            for i in 0..n {
                let p = rx.datagram(i).0.as_ptr();
                let s = tx.slot();
                assert!(rx.take_into(i, s) > 0);
                assert_eq!(s.as_ptr(), p, "buffers traded, not copied");
                assert!(rx.datagram(i).0.is_empty());
                tx.commit(c.local_addr().unwrap());
            }
            forwarded += n;
        }
        assert_eq!(tx.flush(relay.as_raw_fd()).sent, 2);
        let out = recv_all(&mut rx, &c, 2);
        let data: Vec<&[u8]> = out.iter().map(|(d, _)| &d[..]).collect();
        assert_eq!(data, [&b"swapped in"[..], &b"copied"[..]]);
        assert!(out
            .iter()
            .all(|(_, src)| *src == relay.local_addr().unwrap()));
    }

    #[test]
    fn take_into_a_small_buffer_copies() {
        let (a, b) = (sock(), sock());
        a.send_to(b"0123456789", b.local_addr().unwrap()).unwrap();
        let mut rx = RecvBatch::new(2, 2048);
        recv_all(&mut rx, &b, 1);
        let mut small = Vec::with_capacity(16);
        assert_eq!(rx.take_into(0, &mut small), 10);
        assert_eq!(small, b"0123456789");
        assert_eq!(rx.take_into(1, &mut small), 0, "past the last one");
        assert!(small.is_empty());
    }

    #[test]
    fn a_long_datagram_is_truncated() {
        let (a, b) = (sock(), sock());
        a.send_to(&[7u8; 20], b.local_addr().unwrap()).unwrap();
        let mut rx = RecvBatch::new(2, 8);
        let got = recv_all(&mut rx, &b, 1);
        assert_eq!(got[0].0, vec![7u8; 8]);
        assert!(rx.truncated(0));
        assert!(!rx.truncated(1));
    }

    #[test]
    fn refused_datagrams_are_skipped_and_counted_by_kind() {
        let (a, b) = (sock(), sock());
        let to = b.local_addr().unwrap();
        let mut tx = SendBatch::new(4);
        tx.push(b"one", to);
        // Over the 65507-byte UDP payload limit of IPv4.
        let big = vec![0u8; 65_508];
        tx.push(&big, to);
        // An IPv6 destination on an IPv4 socket.
        tx.push(b"v6", "[::1]:9".parse().unwrap());
        tx.push(b"two", to);
        let f = tx.flush(a.as_raw_fd());
        assert_eq!(f.sent, 2);
        assert_eq!(f.count(SendError::TooBig), 1);
        assert_eq!(f.count(SendError::Other), 1);
        assert_eq!(f.failed_total(), 2);
        assert_eq!(
            f.failures().collect::<Vec<_>>(),
            vec![(SendError::TooBig, 1), (SendError::Other, 1)]
        );
        let mut rx = RecvBatch::new(4, 2048);
        let got: Vec<Vec<u8>> = recv_all(&mut rx, &b, 2).into_iter().map(|g| g.0).collect();
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
    }

    #[test]
    fn a_connected_socket_reports_refused() {
        let a = sock();
        let closed = {
            let s = sock();
            s.local_addr().unwrap()
        };
        a.connect(closed).unwrap();
        let mut tx = SendBatch::new(2);
        let mut refused = 0;
        let end = Instant::now() + Duration::from_secs(2);
        // The ICMP port unreachable of one datagram fails the next send.
        while refused == 0 && Instant::now() < end {
            tx.slot().extend_from_slice(b"x");
            tx.commit_connected();
            refused += tx.flush(a.as_raw_fd()).count(SendError::Refused);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(refused, 1);
    }

    #[test]
    fn error_kinds() {
        let k = |e: i32| SendError::from_io(&io::Error::from_raw_os_error(e));
        assert_eq!(k(libc::EAGAIN), SendError::WouldBlock);
        assert_eq!(k(libc::ENOBUFS), SendError::WouldBlock);
        assert_eq!(k(libc::EHOSTUNREACH), SendError::Unreachable);
        assert_eq!(k(libc::ENETUNREACH), SendError::Unreachable);
        assert_eq!(k(libc::ECONNREFUSED), SendError::Refused);
        assert_eq!(k(libc::EMSGSIZE), SendError::TooBig);
        assert_eq!(k(libc::EPERM), SendError::Other);
        for (i, e) in SendError::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
        }
        let labels: Vec<&str> = SendError::ALL.iter().map(SendError::as_str).collect();
        assert_eq!(
            labels,
            ["would_block", "unreachable", "refused", "too_big", "other"]
        );
        let mut f = Flushed::default();
        f += Flushed {
            sent: 3,
            failed: [1, 0, 0, 0, 2],
        };
        f += Flushed {
            sent: 1,
            failed: [1, 0, 0, 0, 0],
        };
        assert_eq!(
            (f.sent, f.count(SendError::WouldBlock), f.failed_total()),
            (4, 2, 4)
        );
    }

    #[test]
    fn commit_on_a_full_batch_is_dropped_and_reported() {
        if cfg!(debug_assertions) {
            return; // debug builds assert instead
        }
        let (a, b) = (sock(), sock());
        let mut tx = SendBatch::new(1);
        tx.push(b"1", b.local_addr().unwrap());
        tx.push(b"2", b.local_addr().unwrap());
        let f = tx.flush(a.as_raw_fd());
        assert_eq!((f.sent, f.count(SendError::Other)), (1, 1));
    }

    #[test]
    fn no_allocation_after_construction() {
        let (a, b) = (sock(), sock());
        let to = b.local_addr().unwrap();
        let mut rx = RecvBatch::new(8, 2048);
        let mut tx = SendBatch::with_buffer_capacity(8, 2048);
        let mut fwd = SendBatch::with_buffer_capacity(8, 2048);
        let before = crate::alloc_count::this_thread();
        let mut received = 0;
        for round in 0..50u8 {
            for _ in 0..7 {
                tx.push(&[round; 172], to);
            }
            let s = tx.slot();
            s.extend_from_slice(&[round; 2048]);
            tx.commit(to);
            tx.flush(a.as_raw_fd());
            let n = rx.recv(b.as_raw_fd()).unwrap();
            received += n;
            for i in 0..n {
                let (_, src) = rx.datagram(i);
                rx.take_into(i, fwd.slot());
                fwd.commit(src.unwrap());
            }
            fwd.flush(b.as_raw_fd());
            let _ = rx.recv(a.as_raw_fd());
        }
        assert_eq!(crate::alloc_count::this_thread(), before);
        assert!(received > 0);
        // The counter does count.
        drop(std::hint::black_box(Vec::<u8>::with_capacity(1)));
        assert_eq!(crate::alloc_count::this_thread(), before + 1);
    }
}
