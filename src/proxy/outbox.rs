//! The engine's one output path: every datagram sipfront sends (forwarded
//! requests and responses, its own replies, retransmissions, the requests it
//! originates) and every hand-over to another worker waits here, in order,
//! until the pump takes it with [`super::Engine::poll_transmit`].
//!
//! Buffers are pooled: the pump swaps its own buffer for the queued one, so
//! a datagram is written once and never copied between queues. The queue is
//! bounded; a datagram that finds it full is dropped and counted
//! ([`super::stats::DropReason::OutboxFull`]).

use super::Socket;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Most datagrams waiting at once. The pump empties the outbox after every
/// event, so this bounds what one event may produce (a failover of every
/// pending branch toward a destination that went down).
pub const CAPACITY: usize = 65_536;
/// Spare buffers kept for reuse.
const POOL: usize = 256;

/// What the pump does with a datagram it takes from the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Send it from the worker's socket with role `socket` to `to`.
    Send { socket: Socket, to: SocketAddr },
    /// It belongs to worker `worker` (a response whose branch names it):
    /// pass the received datagram on unchanged, with where it came from.
    Handover {
        worker: u8,
        src: SocketAddr,
        socket: Socket,
    },
}

pub(crate) struct Outbox {
    queue: VecDeque<(Transmit, Vec<u8>)>,
    pool: Vec<Vec<u8>>,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox {
            queue: VecDeque::new(),
            pool: Vec::new(),
        }
    }

    /// An empty buffer, from the pool when it has one.
    pub fn buffer(&mut self) -> Vec<u8> {
        let mut b = self.pool.pop().unwrap_or_default();
        b.clear();
        b
    }

    /// Gives a buffer back for reuse.
    pub fn recycle(&mut self, b: Vec<u8>) {
        if self.pool.len() < POOL && b.capacity() > 0 {
            self.pool.push(b);
        }
    }

    /// Queues `data`; false (and the buffer recycled) when full.
    pub fn push(&mut self, t: Transmit, data: Vec<u8>) -> bool {
        if self.queue.len() >= CAPACITY {
            self.recycle(data);
            return false;
        }
        self.queue.push_back((t, data));
        true
    }

    /// Queues a copy of `data`; false when full.
    pub fn push_copy(&mut self, t: Transmit, data: &[u8]) -> bool {
        let mut b = self.buffer();
        b.extend_from_slice(data);
        self.push(t, b)
    }

    /// The next datagram: its bytes are swapped into `buf` (whose old
    /// buffer is kept for reuse).
    pub fn pop(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        let (t, mut data) = self.queue.pop_front()?;
        std::mem::swap(buf, &mut data);
        self.recycle(data);
        Some(t)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_with_buffers_traded_not_copied() {
        let mut o = Outbox::new();
        let to: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let t = Transmit::Send {
            socket: Socket::Egress,
            to,
        };
        let mut a = o.buffer();
        a.extend_from_slice(b"first");
        let ptr = a.as_ptr();
        assert!(o.push(t, a));
        assert!(o.push_copy(t, b"second"));
        let mut buf = Vec::with_capacity(10);
        assert_eq!(o.pop(&mut buf), Some(t));
        assert_eq!((buf.as_slice(), buf.as_ptr()), (&b"first"[..], ptr));
        assert_eq!(o.pop(&mut buf), Some(t));
        assert_eq!(buf, b"second");
        assert_eq!(o.pop(&mut buf), None);
        // The swapped-out buffers went to the pool.
        assert_eq!(o.pool.len(), 2);
    }

    #[test]
    fn bounded() {
        let mut o = Outbox::new();
        let t = Transmit::Send {
            socket: Socket::Egress,
            to: "127.0.0.1:1".parse().unwrap(),
        };
        for _ in 0..CAPACITY {
            assert!(o.push_copy(t, b"x"));
        }
        assert!(!o.push_copy(t, b"x"));
        assert_eq!(o.len(), CAPACITY);
    }
}
