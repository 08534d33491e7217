//! The cross-core mesh: bounded channels between workers, for a datagram
//! that reached the wrong worker (a response whose branch names another
//! worker). Each worker owns one receiving end and a sender to every other
//! worker; an eventfd wakes the receiving worker's event loop (and, through
//! a [`Waker`], the runtime's shutdown). Nothing is shared but the channels
//! themselves; a full channel drops and counts.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use crate::proxy::Socket;

/// A datagram passed to the worker that owns it.
#[derive(Debug)]
pub struct Handover {
    pub data: Vec<u8>,
    pub src: SocketAddr,
    pub socket: Socket,
}

/// Queue depth per worker.
pub const DEPTH: usize = 4096;

/// Wakes a sleeping worker (the runtime's shutdown): the worker's loop
/// sleeps until its next deadline, which may be never.
#[derive(Clone)]
pub struct Waker(Arc<OwnedFd>);

impl Waker {
    pub fn wake(&self) {
        write_one(&self.0);
    }
}

fn write_one(fd: &OwnedFd) {
    let one = 1u64;
    // SAFETY: writes 8 bytes to an eventfd we hold.
    unsafe { libc::write(fd.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
}

/// One worker's end of the mesh.
pub struct MeshEnd {
    rx: Receiver<Handover>,
    wake: Arc<OwnedFd>,
    peers: Vec<(SyncSender<Handover>, Arc<OwnedFd>)>,
}

fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd returns a new fd or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Builds a full mesh for `n` workers.
pub fn build(n: usize) -> io::Result<Vec<MeshEnd>> {
    let mut rxs = Vec::with_capacity(n);
    let mut txs = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = sync_channel(DEPTH);
        let wake = Arc::new(eventfd()?);
        rxs.push((rx, Arc::clone(&wake)));
        txs.push((tx, wake));
    }
    Ok(rxs
        .into_iter()
        .map(|(rx, wake)| MeshEnd {
            rx,
            wake,
            peers: txs
                .iter()
                .map(|(t, w)| (t.clone(), Arc::clone(w)))
                .collect(),
        })
        .collect())
}

impl MeshEnd {
    /// A handle that wakes this worker.
    pub fn waker(&self) -> Waker {
        Waker(Arc::clone(&self.wake))
    }

    /// The fd to poll for incoming handovers.
    pub fn wake_fd(&self) -> i32 {
        self.wake.as_raw_fd()
    }

    /// Resets the wake-up counter after it fired.
    pub fn clear_wake(&self) {
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into v from our eventfd.
        unsafe {
            libc::read(
                self.wake.as_raw_fd(),
                &mut v as *mut u64 as *mut libc::c_void,
                8,
            )
        };
    }

    pub fn try_recv(&self) -> Option<Handover> {
        self.rx.try_recv().ok()
    }

    /// Sends to `worker`; false when its queue is full or it is gone.
    pub fn send(&self, worker: u8, h: Handover) -> bool {
        let Some((tx, wake)) = self.peers.get(usize::from(worker)) else {
            return false;
        };
        match tx.try_send(h) {
            Ok(()) => {
                write_one(wake);
                true
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handover_reaches_the_owner_and_wakes_it() {
        let ends = build(2).unwrap();
        let h = Handover {
            data: b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
            src: "127.0.0.1:5070".parse().unwrap(),
            socket: Socket::Egress,
        };
        assert!(ends[0].send(1, h));
        let mut v = 0u64;
        // SAFETY: reading our own eventfd.
        let r = unsafe {
            libc::read(
                ends[1].wake_fd(),
                &mut v as *mut u64 as *mut libc::c_void,
                8,
            )
        };
        assert_eq!((r, v), (8, 1));
        assert_eq!(ends[1].try_recv().unwrap().data, b"SIP/2.0 200 OK\r\n\r\n");
        assert!(ends[0].try_recv().is_none());
        assert!(!ends[0].send(
            9,
            Handover {
                data: vec![],
                src: "127.0.0.1:1".parse().unwrap(),
                socket: Socket::Egress
            }
        ));
    }
}
