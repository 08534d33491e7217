//! Fuzzes the stream framer as a connection reader drives it: the input is
//! fed in reads whose sizes come from the first bytes of the data, each frame
//! is consumed from the front of the buffer, and the frames must not depend
//! on how the stream was cut into reads.
//!
//! Input layout: byte 0 low nibble = how many read-size bytes follow (0..=15),
//! byte 0 high nibble = which size limits to use; then the read sizes (each
//! 1..=256); the rest is the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipfront::sip::framing::{Frame, FramingError, FramingLimits, StreamFramer};

/// Runs `stream` through a fresh framer, cut into reads of `sizes` (cycled;
/// empty means one read). Returns every frame and the final error, if any.
fn run(limits: FramingLimits, stream: &[u8], sizes: &[u8]) -> (Vec<Frame>, Option<FramingError>) {
    let mut framer = StreamFramer::new(limits);
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut read = 0;
    while pos < stream.len() {
        let n = match sizes.get(read % sizes.len().max(1)) {
            Some(&s) => usize::from(s) + 1,
            None => stream.len(),
        };
        read += 1;
        let end = pos.saturating_add(n).min(stream.len());
        buf.extend_from_slice(&stream[pos..end]);
        pos = end;
        loop {
            match framer.next_frame(&buf) {
                Ok(Frame::NeedMore) => break,
                Ok(frame @ Frame::Message { len }) => {
                    assert!(len > 0, "empty message");
                    assert!(len <= buf.len(), "{len} > {}", buf.len());
                    assert!(len <= limits.max_message_bytes);
                    // Asking again without consuming gives the same answer.
                    assert_eq!(framer.next_frame(&buf), Ok(frame));
                    frames.push(frame);
                    buf.drain(..len);
                    framer.consume(len);
                }
                Ok(frame @ Frame::KeepAlive { len, ping }) => {
                    assert!(len > 0 && len <= buf.len(), "{frame:?} on {}", buf.len());
                    let want: &[u8] = match (len, ping) {
                        (4, true) => b"\r\n\r\n",
                        (2, false) => b"\r\n",
                        (1, false) => b"\n",
                        _ => panic!("unexpected keepalive {frame:?}"),
                    };
                    assert_eq!(&buf[..len], want);
                    frames.push(frame);
                    buf.drain(..len);
                    framer.consume(len);
                }
                Err(e) => {
                    assert!(matches!(e.status_code(), 400 | 513));
                    // Errors are sticky.
                    assert_eq!(framer.next_frame(&buf), Err(e));
                    return (frames, Some(e));
                }
            }
        }
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let n_sizes = usize::from(control & 0x0f).min(rest.len());
    let (sizes, stream) = rest.split_at(n_sizes);
    let limits = match control >> 4 {
        0..=7 => FramingLimits::default(),
        8..=11 => FramingLimits {
            max_header_bytes: 64,
            max_message_bytes: 128,
        },
        _ => FramingLimits {
            max_header_bytes: 256,
            max_message_bytes: 96,
        },
    };
    let chunked = run(limits, stream, sizes);
    let whole = run(limits, stream, &[]);
    assert_eq!(chunked, whole, "frames depend on read sizes");
});
