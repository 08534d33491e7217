//! The Linux UDP plumbing shared by sipfront's drivers, the RTP relay,
//! the relay benchmark and the floor forwarder: batched receive and send
//! with `recvmmsg`/`sendmmsg`, conversion between `SocketAddr` and the C
//! `sockaddr_storage`, UDP socket setup and CPU pinning. No protocol logic
//! lives here, and after construction nothing here allocates.
//!
//! | module | owns |
//! |---|---|
//! | [`batch`] | [`RecvBatch`] and [`SendBatch`]: reusable buffers and headers for `recvmmsg`/`sendmmsg`; send failures by kind ([`SendError`]) |
//! | [`addr`] | `SocketAddr` ⇄ `libc::sockaddr_storage`, through socket2 |
//! | [`udp`] | binding UDP sockets (SO_REUSEPORT, buffers, non-blocking), the local address toward a peer |
//! | [`cpu`] | the CPUs the process may use; pinning a thread to one |

pub mod addr;
pub mod batch;
pub mod cpu;
pub mod udp;

pub use batch::{Flushed, RecvBatch, SendBatch, SendError, MAX_DGRAM};

/// Allocations per thread, for the tests that prove the batches allocate
/// nothing after construction.
#[cfg(test)]
mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static COUNT: Cell<usize> = const { Cell::new(0) };
    }

    struct Counting;

    // SAFETY: forwards to the system allocator; the count is a
    // const-initialised thread-local Cell, which never allocates.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            COUNT.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as ours.
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            // SAFETY: same contract as ours.
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
            COUNT.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as ours.
            unsafe { System.realloc(p, l, n) }
        }
    }

    #[global_allocator]
    static A: Counting = Counting;

    /// Allocations made so far on the calling thread.
    pub fn this_thread() -> usize {
        COUNT.with(Cell::get)
    }
}
