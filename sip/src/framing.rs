//! Message framing on stream transports (TCP, TLS): finds where one SIP
//! message ends in a byte stream (RFC 3261 §18.3) and recognises the CRLF
//! keepalives of RFC 5626 §3.5.1 between messages. Sans-I/O: the connection
//! reader appends what it receives to a buffer, asks [`StreamFramer`] what the
//! front of that buffer holds, and drops the bytes of each frame it handles.
//!
//! The framer keeps its scan position between calls, so a sender trickling a
//! message one byte at a time costs O(n) in total, and it enforces the header
//! and message size limits from the bytes it has seen, before buffering more.
//!
//! # Keepalives
//!
//! At the start of a message (before the start line), RFC 5626 §3.5.1 defines
//! `CRLFCRLF` as a ping (to be answered with a `CRLF` pong) and a lone `CRLF`
//! as a pong; RFC 3261 §7.5 says CRLFs before a start line are ignored. The
//! framer reports:
//!
//! - `\r\n\r\n` → `KeepAlive { len: 4, ping: true }`;
//! - `\r\n` followed by a byte other than `\r`, or `\r\n\r` followed by a byte
//!   other than `\n` → `KeepAlive { len: 2, ping: false }`;
//! - a bare `\n` (LF-only line ends are tolerated, as Kamailio does) →
//!   `KeepAlive { len: 1, ping: false }`, a stray empty line to skip.
//!
//! While the buffer is exactly `\r`, `\r\n` or `\r\n\r`, the framer cannot
//! tell a pong from the first half of a ping and answers `NeedMore`. This
//! makes the frames independent of how the stream was cut into reads (a ping
//! split over two segments is still one ping), at the cost of reporting a
//! pong only when the next byte arrives. A caller that waits for a pong on a
//! timer may treat a buffer equal to `\r\n` as a pong when the timer fires.
//!
//! # Header section
//!
//! The header section ends at the first empty line: a line end (`\n`)
//! followed by `\r\n` or by `\n`. That covers `\r\n\r\n` and LF-only
//! messages. Each header line is looked at once, when the next line shows it
//! is complete (it does not start with SP/HTAB, RFC 3261 §7.3.1 folding), and
//! `Content-Length` / compact `l` (RFC 3261 §20.14, §7.3.3) is decoded there.
//! A stream message without Content-Length is an error (RFC 3261 §18.3: it
//! MUST be present on streams); so are unparsable or conflicting values.

use super::scan::{eq_ic, parse_u32, trim};
use std::fmt;

/// Size limits applied while framing (RFC 3261 §18.3, §21.5.14 "513 Message
/// Too Large"). Keep both far below 4 GiB: spans into a message are `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramingLimits {
    /// Longest header section, start line and terminating empty line
    /// included. Default 16 KiB.
    pub max_header_bytes: usize,
    /// Longest whole message, header section plus body. Default 64 KiB.
    pub max_message_bytes: usize,
}

impl Default for FramingLimits {
    fn default() -> Self {
        FramingLimits {
            max_header_bytes: 16 * 1024,
            max_message_bytes: 64 * 1024,
        }
    }
}

/// What the front of the receive buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole frame yet: read more and ask again with the grown buffer.
    NeedMore,
    /// `buf[..len]` is one whole SIP message: the header section and a body of
    /// exactly Content-Length bytes. `len` is never zero.
    Message { len: usize },
    /// RFC 5626 §3.5.1 keepalive: `ping` (`\r\n\r\n`) wants a `\r\n` pong in
    /// reply; otherwise it is a pong or a stray line end. Consume `len` bytes.
    KeepAlive { len: usize, ping: bool },
}

/// Why the stream cannot be framed. Framing is lost for good: the caller may
/// send the [`status_code`](FramingError::status_code) answer, then closes
/// the connection. The framer keeps returning the same error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// The header section has no Content-Length (RFC 3261 §18.3).
    MissingContentLength,
    /// Content-Length is not a decimal number that fits in 32 bits, or two
    /// Content-Length headers disagree.
    BadContentLength,
    /// No end of the header section within `max_header_bytes`.
    HeadersTooLarge,
    /// Header section plus Content-Length exceeds `max_message_bytes`.
    MessageTooLarge,
}

impl FramingError {
    /// The SIP status code that answers this error (RFC 3261 §21.4.1 400,
    /// §21.4.12 513).
    pub const fn status_code(self) -> u16 {
        match self {
            FramingError::MissingContentLength | FramingError::BadContentLength => 400,
            FramingError::HeadersTooLarge | FramingError::MessageTooLarge => 513,
        }
    }

    /// The reason phrase to send with [`status_code`](Self::status_code).
    pub const fn reason(self) -> &'static str {
        match self {
            FramingError::MissingContentLength => "Missing Content-Length",
            FramingError::BadContentLength => "Bad Content-Length",
            FramingError::HeadersTooLarge | FramingError::MessageTooLarge => "Message Too Large",
        }
    }
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            FramingError::MissingContentLength => "stream message without Content-Length",
            FramingError::BadContentLength => "invalid or conflicting Content-Length",
            FramingError::HeadersTooLarge => "header section exceeds the size limit",
            FramingError::MessageTooLarge => "message exceeds the size limit",
        };
        f.write_str(s)
    }
}

impl std::error::Error for FramingError {}

/// Progress through the header section of the message at the buffer front.
/// All offsets are from the start of the buffer (the start of the message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeaderScan {
    /// Every byte before `cursor` has been scanned; the next `\n` search
    /// starts here.
    cursor: usize,
    /// When true, `cursor` is the start of a line whose first byte has not
    /// been classified yet (empty line, fold, or new header).
    at_line_start: bool,
    /// Start of the header line seen but not yet decoded, waiting to learn
    /// whether the next line folds into it. `None` while in the start line.
    pending: Option<usize>,
    /// Content-Length decoded so far.
    content_length: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a frame: keepalives or a start line.
    Start,
    /// Inside the header section.
    Headers(HeaderScan),
    /// Header section complete; the message is `total` bytes long.
    Body { total: usize },
    /// Framing lost.
    Failed(FramingError),
}

/// Incremental framer for one stream connection. See the module docs.
#[derive(Clone, Debug)]
pub struct StreamFramer {
    limits: FramingLimits,
    state: State,
    scanned: u64,
    consumed: u64,
}

impl Default for StreamFramer {
    fn default() -> Self {
        StreamFramer::new(FramingLimits::default())
    }
}

impl StreamFramer {
    pub fn new(limits: FramingLimits) -> Self {
        StreamFramer {
            limits,
            state: State::Start,
            scanned: 0,
            consumed: 0,
        }
    }

    pub fn limits(&self) -> FramingLimits {
        self.limits
    }

    /// Bytes the header scan has passed over since the framer was created.
    /// Each header byte is scanned once however often `next_frame` is called,
    /// so this never exceeds the header bytes received; bodies are not
    /// scanned. The few bytes peeked to classify keepalives are not counted.
    pub fn scanned(&self) -> u64 {
        self.scanned
    }

    /// Total bytes reported through [`consume`](Self::consume).
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Classifies the front of `buf`: everything received and not yet
    /// consumed, starting at the start of the next frame. Call again with the
    /// grown buffer after `NeedMore`; after `Message` or `KeepAlive`, drop
    /// `len` bytes and call [`consume`](Self::consume). Calling again without
    /// consuming returns the same frame.
    ///
    /// Between calls `buf` must only grow at its end. If it is found shorter
    /// than what was already scanned, the framer starts over on it.
    pub fn next_frame(&mut self, buf: &[u8]) -> Result<Frame, FramingError> {
        let result = self.step(buf);
        if let Err(e) = result {
            self.state = State::Failed(e);
        }
        result
    }

    /// The caller dropped the `len` bytes of the frame just returned from the
    /// front of its buffer; the next call frames what follows. Positions are
    /// relative to the buffer start, so the state is reset whatever `len` is.
    /// A failed framer stays failed.
    pub fn consume(&mut self, len: usize) {
        self.consumed = self.consumed.saturating_add(len as u64);
        if !matches!(self.state, State::Failed(_)) {
            self.state = State::Start;
        }
    }

    fn step(&mut self, buf: &[u8]) -> Result<Frame, FramingError> {
        loop {
            match self.state {
                State::Failed(e) => return Err(e),
                State::Body { total } => {
                    return Ok(if buf.len() >= total {
                        Frame::Message { len: total }
                    } else {
                        Frame::NeedMore
                    });
                }
                State::Start => {
                    if let Some(frame) = keepalive(buf) {
                        return Ok(frame);
                    }
                    // The first line is the start line; it is not classified.
                    self.state = State::Headers(HeaderScan {
                        cursor: 0,
                        at_line_start: false,
                        pending: None,
                        content_length: None,
                    });
                }
                State::Headers(scan) => {
                    if scan.cursor > buf.len() {
                        // The buffer shrank under us: caller misuse. Start
                        // over rather than index out of range.
                        self.state = State::Start;
                        continue;
                    }
                    return self.scan_headers(scan, buf);
                }
            }
        }
    }

    /// Advances the header scan over the new bytes of `buf`.
    fn scan_headers(&mut self, mut s: HeaderScan, buf: &[u8]) -> Result<Frame, FramingError> {
        let limit = self.limits.max_header_bytes;
        // Never look past the header limit: a header section that has not
        // ended within it is too large, whatever follows.
        let win = buf.get(..limit).unwrap_or(buf);
        let window_full = buf.len() >= limit;
        let result = loop {
            if s.at_line_start {
                let ls = s.cursor;
                let Some(&first) = win.get(ls) else {
                    break Ok(None);
                };
                let new_header = match first {
                    b'\n' => break self.end_headers(&mut s, win, ls, ls + 1),
                    b'\r' => match win.get(ls + 1) {
                        None => break Ok(None),
                        Some(b'\n') => break self.end_headers(&mut s, win, ls, ls + 2),
                        // A CR not ending the line: junk the parser rejects.
                        Some(_) => true,
                    },
                    // RFC 3261 §7.3.1: a line starting with SP/HTAB continues
                    // the previous header.
                    b' ' | b'\t' => false,
                    _ => true,
                };
                if new_header {
                    if let Err(e) = self.finish_header(&mut s, win, ls) {
                        break Err(e);
                    }
                    s.pending = Some(ls);
                }
                s.at_line_start = false;
            }
            let rest = win.get(s.cursor..).unwrap_or_default();
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    self.scanned += (i + 1) as u64;
                    s.cursor += i + 1;
                    s.at_line_start = true;
                }
                None => {
                    self.scanned += rest.len() as u64;
                    s.cursor = win.len();
                    break Ok(None);
                }
            }
        };
        match result {
            Err(e) => Err(e),
            Ok(Some(total)) => {
                self.state = State::Body { total };
                Ok(if buf.len() >= total {
                    Frame::Message { len: total }
                } else {
                    Frame::NeedMore
                })
            }
            Ok(None) if window_full => Err(FramingError::HeadersTooLarge),
            Ok(None) => {
                self.state = State::Headers(s);
                Ok(Frame::NeedMore)
            }
        }
    }

    /// The empty line at `ls` ends the header section at `end`. Returns the
    /// whole message length.
    fn end_headers(
        &mut self,
        s: &mut HeaderScan,
        win: &[u8],
        ls: usize,
        end: usize,
    ) -> Result<Option<usize>, FramingError> {
        self.finish_header(s, win, ls)?;
        // `ls + 1` or `ls + 2` was read from `win`, so `end <= win.len()`.
        self.scanned += (end - ls) as u64;
        s.cursor = end;
        let cl = s.content_length.ok_or(FramingError::MissingContentLength)?;
        let total = end
            .checked_add(cl as usize)
            .ok_or(FramingError::MessageTooLarge)?;
        if total > self.limits.max_message_bytes {
            return Err(FramingError::MessageTooLarge);
        }
        Ok(Some(total))
    }

    /// Decodes the pending header, which ends where the line at `end`
    /// starts, if it is a Content-Length.
    fn finish_header(
        &mut self,
        s: &mut HeaderScan,
        win: &[u8],
        end: usize,
    ) -> Result<(), FramingError> {
        let Some(start) = s.pending.take() else {
            return Ok(());
        };
        let Some(line) = win.get(start..end) else {
            return Ok(());
        };
        let Some(value) = content_length_value(line) else {
            return Ok(());
        };
        let cl = parse_u32(value, 10).ok_or(FramingError::BadContentLength)?;
        match s.content_length {
            Some(prev) if prev != cl => return Err(FramingError::BadContentLength),
            _ => s.content_length = Some(cl),
        }
        // The header section ends after `end`, so the message is already
        // known to be too large: say so before the body arrives.
        if end.saturating_add(cl as usize) > self.limits.max_message_bytes {
            return Err(FramingError::MessageTooLarge);
        }
        Ok(())
    }
}

/// RFC 5626 §3.5.1 keepalives at the front of `buf`; `None` when `buf` starts
/// a message. See the module docs for the ambiguous prefixes.
fn keepalive(buf: &[u8]) -> Option<Frame> {
    const PONG: Frame = Frame::KeepAlive {
        len: 2,
        ping: false,
    };
    match buf {
        [] | [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => Some(Frame::NeedMore),
        [b'\n', ..] => Some(Frame::KeepAlive {
            len: 1,
            ping: false,
        }),
        [b'\r', b'\n', b'\r', b'\n', ..] => Some(Frame::KeepAlive { len: 4, ping: true }),
        [b'\r', b'\n', ..] => Some(PONG),
        // Anything else, a CR without LF included, starts a message; the
        // message parser rejects junk start lines.
        _ => None,
    }
}

/// The raw value of `line` (a whole header line, folds and line end
/// included) when its name is `Content-Length` or compact `l` (RFC 3261
/// §20.14, §7.3.3), case-insensitively, with optional whitespace before the
/// colon.
fn content_length_value(line: &[u8]) -> Option<&[u8]> {
    if !matches!(line.first(), Some(b'c' | b'C' | b'l' | b'L')) {
        return None;
    }
    let colon = memchr::memchr(b':', line)?;
    let name = trim(line.get(..colon)?);
    if eq_ic(name, b"content-length") || eq_ic(name, b"l") {
        line.get(colon + 1..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SDP: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

    fn invite(sdp: &str) -> Vec<u8> {
        format!(
            "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.org>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@192.0.2.10\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.10;transport=tcp>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\
\r\n{sdp}",
            sdp.len()
        )
        .into_bytes()
    }

    fn msg(headers: &str, body: &str) -> Vec<u8> {
        format!("OPTIONS sip:x@example.com SIP/2.0\r\n{headers}\r\n{body}").into_bytes()
    }

    fn frame(buf: &[u8]) -> Result<Frame, FramingError> {
        StreamFramer::default().next_frame(buf)
    }

    fn small(max_header_bytes: usize, max_message_bytes: usize) -> StreamFramer {
        StreamFramer::new(FramingLimits {
            max_header_bytes,
            max_message_bytes,
        })
    }

    /// Every frame (and a final error, if any) a connection reader gets when
    /// `stream` arrives cut at `cuts`.
    fn frames(
        mut f: StreamFramer,
        stream: &[u8],
        cuts: &[usize],
    ) -> (Vec<Frame>, Option<FramingError>) {
        let mut out = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut pos = 0;
        let mut chunks = cuts.iter().copied().chain(std::iter::repeat(usize::MAX));
        while pos < stream.len() {
            let n = chunks.next().unwrap_or(1).clamp(1, stream.len() - pos);
            buf.extend_from_slice(&stream[pos..pos + n]);
            pos += n;
            loop {
                match f.next_frame(&buf) {
                    Ok(Frame::NeedMore) => break,
                    Ok(fr @ (Frame::Message { len } | Frame::KeepAlive { len, .. })) => {
                        assert!(len > 0 && len <= buf.len(), "{fr:?} on {} bytes", buf.len());
                        out.push(fr);
                        buf.drain(..len);
                        f.consume(len);
                    }
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, None)
    }

    #[test]
    fn defaults() {
        let l = FramingLimits::default();
        assert_eq!(l.max_header_bytes, 16384);
        assert_eq!(l.max_message_bytes, 65536);
    }

    #[test]
    fn whole_invite_with_sdp_rfc3261_18_3() {
        let m = invite(SDP);
        assert_eq!(frame(&m), Ok(Frame::Message { len: m.len() }));
    }

    /// RFC 3261 §18.3: the message ends exactly Content-Length bytes after
    /// the empty line. Fed one byte per read, the framer says `NeedMore` up
    /// to the last body byte and never rescans a header byte.
    #[test]
    fn trickled_invite_is_framed_at_the_last_byte_without_rescanning() {
        let m = invite(SDP);
        let header_len = m.len() - SDP.len();
        let mut f = StreamFramer::default();
        let mut calls = 0;
        for n in 1..=m.len() {
            calls += 1;
            let r = f.next_frame(&m[..n]);
            if n < m.len() {
                assert_eq!(r, Ok(Frame::NeedMore), "at {n} bytes");
            } else {
                assert_eq!(r, Ok(Frame::Message { len: m.len() }));
            }
        }
        assert_eq!(calls, m.len());
        // Each header byte exactly once; body bytes never.
        assert_eq!(f.scanned(), header_len as u64);
    }

    /// A slow sender cannot make framing quadratic: 15 KiB of headers, one
    /// byte per read, costs one pass.
    #[test]
    fn trickle_work_is_linear_in_header_bytes() {
        let filler: String = (0..300)
            .map(|i| format!("X-Filler-{i}: {}\r\n", "a".repeat(30)))
            .collect();
        let m = msg(&format!("{filler}Content-Length: 0\r\n"), "");
        assert!(m.len() > 12 * 1024 && m.len() < 16 * 1024);
        let mut f = StreamFramer::default();
        for n in 1..m.len() {
            assert_eq!(f.next_frame(&m[..n]), Ok(Frame::NeedMore));
        }
        assert_eq!(f.next_frame(&m), Ok(Frame::Message { len: m.len() }));
        assert_eq!(f.scanned(), m.len() as u64);
    }

    #[test]
    fn two_pipelined_messages_in_one_read_rfc3261_18_3() {
        let a = msg("Content-Length: 5\r\n", "hello");
        let b = invite(SDP);
        let mut both = a.clone();
        both.extend_from_slice(&b);
        let mut f = StreamFramer::default();
        assert_eq!(f.next_frame(&both), Ok(Frame::Message { len: a.len() }));
        f.consume(a.len());
        assert_eq!(
            f.next_frame(&both[a.len()..]),
            Ok(Frame::Message { len: b.len() })
        );
        f.consume(b.len());
        assert_eq!(f.next_frame(&[]), Ok(Frame::NeedMore));
        assert_eq!(f.consumed(), both.len() as u64);
    }

    #[test]
    fn same_frame_until_consumed() {
        let m = msg("l: 2\r\n", "ok");
        let mut f = StreamFramer::default();
        let before = f.scanned();
        assert_eq!(f.next_frame(&m), Ok(Frame::Message { len: m.len() }));
        let once = f.scanned();
        assert_eq!(f.next_frame(&m), Ok(Frame::Message { len: m.len() }));
        assert_eq!(f.scanned(), once);
        assert!(once > before);
    }

    /// RFC 5626 §3.5.1 keepalives, and RFC 3261 §7.5 CRLFs before a start
    /// line, as a table: (bytes received, expected frame).
    #[test]
    fn keepalive_table_rfc5626_3_5_1() {
        let ping = Frame::KeepAlive { len: 4, ping: true };
        let pong = Frame::KeepAlive {
            len: 2,
            ping: false,
        };
        let lf = Frame::KeepAlive {
            len: 1,
            ping: false,
        };
        let cases: &[(&[u8], Frame)] = &[
            (b"", Frame::NeedMore),
            // Ambiguous: a pong, or the start of a ping. Wait for more.
            (b"\r", Frame::NeedMore),
            (b"\r\n", Frame::NeedMore),
            (b"\r\n\r", Frame::NeedMore),
            (b"\r\n\r\n", ping),
            (b"\r\n\r\n\r\n", ping),
            (b"\r\n\r\nINVITE", ping),
            (b"\r\nINVITE", pong),
            (b"\r\n\r", Frame::NeedMore),
            (b"\r\n\rX", pong),
            (b"\r\n\n", pong),
            (b"\n", lf),
            (b"\n\n", lf),
        ];
        for (input, want) in cases {
            assert_eq!(
                frame(input),
                Ok(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn keepalives_before_a_message_rfc5626_3_5_1() {
        let m = msg("Content-Length: 3\r\n", "abc");
        let ping = Frame::KeepAlive { len: 4, ping: true };
        let pong = Frame::KeepAlive {
            len: 2,
            ping: false,
        };
        let whole = Frame::Message { len: m.len() };
        for (prefix, want) in [
            (&b"\r\n\r\n"[..], vec![ping, whole]),
            (b"\r\n", vec![pong, whole]),
            (b"\r\n\r\n\r\n", vec![ping, pong, whole]),
            (b"\r\n\r\n\r\n\r\n", vec![ping, ping, whole]),
        ] {
            let mut stream = prefix.to_vec();
            stream.extend_from_slice(&m);
            // All at once, and one byte per read: same frames.
            assert_eq!(
                frames(StreamFramer::default(), &stream, &[]),
                (want.clone(), None)
            );
            let ones = vec![1; stream.len()];
            assert_eq!(
                frames(StreamFramer::default(), &stream, &ones),
                (want, None)
            );
        }
    }

    #[test]
    fn ping_split_over_reads_is_one_ping() {
        let mut f = StreamFramer::default();
        assert_eq!(f.next_frame(b"\r\n"), Ok(Frame::NeedMore));
        assert_eq!(
            f.next_frame(b"\r\n\r\n"),
            Ok(Frame::KeepAlive { len: 4, ping: true })
        );
    }

    #[test]
    fn compact_form_l_rfc3261_7_3_3() {
        for h in ["l: 5\r\n", "L:5\r\n", "l  :\t5 \r\n"] {
            let m = msg(h, "hello");
            assert_eq!(frame(&m), Ok(Frame::Message { len: m.len() }), "{h:?}");
        }
    }

    #[test]
    fn content_length_name_is_case_insensitive_with_space_before_colon_rfc3261_7_3_1() {
        for h in [
            "content-length: 5\r\n",
            "CONTENT-LENGTH: 5\r\n",
            "Content-Length \t: 5\r\n",
            "Content-Length:00005\r\n",
        ] {
            let m = msg(h, "hello");
            assert_eq!(frame(&m), Ok(Frame::Message { len: m.len() }), "{h:?}");
        }
    }

    #[test]
    fn folded_content_length_rfc3261_7_3_1() {
        for h in [
            "Content-Length:\r\n 5\r\n",
            "Content-Length:\r\n\t5\r\n",
            "Content-Length: \r\n  \r\n 5 \r\n",
        ] {
            let m = msg(h, "hello");
            assert_eq!(frame(&m), Ok(Frame::Message { len: m.len() }), "{h:?}");
            let ones = vec![1; m.len()];
            let want = (vec![Frame::Message { len: m.len() }], None);
            assert_eq!(frames(StreamFramer::default(), &m, &ones), want, "{h:?}");
        }
    }

    #[test]
    fn headers_like_content_length_are_not_it() {
        let m = msg("Content-Lengths: 9\r\nlx: 9\r\nContent-Length: 0\r\n", "");
        assert_eq!(frame(&m), Ok(Frame::Message { len: m.len() }));
        // The start line is not a header, whatever it looks like.
        let m = b"l: 9 SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(frame(m), Ok(Frame::Message { len: m.len() }));
    }

    #[test]
    fn lf_only_line_ends_are_tolerated() {
        let m = b"OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/TCP h\nl:\n 3\n\nabc";
        assert_eq!(frame(m), Ok(Frame::Message { len: m.len() }));
        let mixed = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 3\n\r\nabc";
        assert_eq!(frame(mixed), Ok(Frame::Message { len: mixed.len() }));
    }

    #[test]
    fn missing_content_length_on_a_stream_is_400_rfc3261_18_3() {
        let m = msg("Via: SIP/2.0/TCP h\r\n", "");
        assert_eq!(frame(&m), Err(FramingError::MissingContentLength));
        assert_eq!(FramingError::MissingContentLength.status_code(), 400);
        // The empty message (start line only) is missing it too.
        assert_eq!(
            frame(b"OPTIONS sip:x SIP/2.0\r\n\r\n"),
            Err(FramingError::MissingContentLength)
        );
    }

    #[test]
    fn bad_content_length_is_400_rfc3261_20_14() {
        for h in [
            "Content-Length: abc\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: +1\r\n",
            "Content-Length: 1.5\r\n",
            "Content-Length: 4 2\r\n",
            "Content-Length:\r\n",
            "Content-Length: 4294967296\r\n",
            "Content-Length: 99999999999999999999999999999\r\n",
        ] {
            let m = msg(h, "");
            assert_eq!(frame(&m), Err(FramingError::BadContentLength), "{h:?}");
        }
        assert_eq!(FramingError::BadContentLength.status_code(), 400);
    }

    #[test]
    fn duplicate_content_length_must_agree() {
        let m = msg("Content-Length: 5\r\nl: 6\r\n", "hello!");
        assert_eq!(frame(&m), Err(FramingError::BadContentLength));
        let m = msg("Content-Length: 5\r\nl: 005\r\n", "hello");
        assert_eq!(frame(&m), Ok(Frame::Message { len: m.len() }));
    }

    #[test]
    fn oversize_header_section_is_513_from_bytes_seen() {
        let mut f = small(64, 1024);
        let junk = vec![b'a'; 63];
        assert_eq!(f.next_frame(&junk), Ok(Frame::NeedMore));
        let mut more = junk.clone();
        more.push(b'a');
        assert_eq!(f.next_frame(&more), Err(FramingError::HeadersTooLarge));
        assert_eq!(FramingError::HeadersTooLarge.status_code(), 513);
        // The error sticks, even after a consume.
        f.consume(1);
        assert_eq!(f.next_frame(b"x"), Err(FramingError::HeadersTooLarge));
        // Never scanned past the limit, however much was buffered.
        let mut g = small(64, 1024);
        assert_eq!(
            g.next_frame(&[b'a'; 10_000]),
            Err(FramingError::HeadersTooLarge)
        );
        assert!(g.scanned() <= 64);
    }

    #[test]
    fn header_section_exactly_at_the_limit_fits() {
        let m = msg("l: 0\r\n", "");
        let mut f = small(m.len(), 1024);
        assert_eq!(f.next_frame(&m), Ok(Frame::Message { len: m.len() }));
        let mut f = small(m.len() - 1, 1024);
        assert_eq!(f.next_frame(&m), Err(FramingError::HeadersTooLarge));
        // Same by trickle: the decision does not depend on read sizes.
        let ones = vec![1; m.len()];
        assert_eq!(
            frames(small(m.len() - 1, 1024), &m, &ones),
            (vec![], Some(FramingError::HeadersTooLarge))
        );
    }

    #[test]
    fn oversize_body_is_513_before_it_arrives_rfc3261_21_4_12() {
        let head = msg("Content-Length: 70000\r\n", "");
        // Only the headers have arrived; no body byte is needed to decide.
        assert_eq!(frame(&head), Err(FramingError::MessageTooLarge));
        // Even before the header section ends.
        let partial = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 70000\r\nVia";
        assert_eq!(frame(partial), Err(FramingError::MessageTooLarge));
        assert_eq!(FramingError::MessageTooLarge.status_code(), 513);
        // Headers + body exactly at the limit fit.
        let m = msg("l: 5\r\n", "hello");
        assert_eq!(
            small(1024, m.len()).next_frame(&m),
            Ok(Frame::Message { len: m.len() })
        );
        assert_eq!(
            small(1024, m.len() - 1).next_frame(&m),
            Err(FramingError::MessageTooLarge)
        );
    }

    #[test]
    fn body_split_over_reads() {
        let m = invite(SDP);
        let header_len = m.len() - SDP.len();
        let mut f = StreamFramer::default();
        assert_eq!(f.next_frame(&m[..header_len]), Ok(Frame::NeedMore));
        assert_eq!(f.next_frame(&m[..header_len + 40]), Ok(Frame::NeedMore));
        let scanned = f.scanned();
        assert_eq!(f.next_frame(&m[..m.len() - 1]), Ok(Frame::NeedMore));
        assert_eq!(f.next_frame(&m), Ok(Frame::Message { len: m.len() }));
        assert_eq!(f.scanned(), scanned, "body bytes are not scanned");
        // A body holding CRLFCRLF and a fake Content-Length is opaque.
        let body = "\r\n\r\nContent-Length: 1\r\n\r\n";
        let m = msg(&format!("Content-Length: {}\r\n", body.len()), body);
        assert_eq!(frame(&m), Ok(Frame::Message { len: m.len() }));
    }

    #[test]
    fn shrunken_buffer_starts_over_instead_of_panicking() {
        let m = msg("l: 0\r\n", "");
        let mut f = StreamFramer::default();
        assert_eq!(f.next_frame(&m[..20]), Ok(Frame::NeedMore));
        assert_eq!(f.next_frame(&m[..5]), Ok(Frame::NeedMore));
        assert_eq!(f.next_frame(&m), Ok(Frame::Message { len: m.len() }));
    }

    #[test]
    fn errors_display() {
        for e in [
            FramingError::MissingContentLength,
            FramingError::BadContentLength,
            FramingError::HeadersTooLarge,
            FramingError::MessageTooLarge,
        ] {
            assert!(!e.to_string().is_empty());
            assert!(!e.reason().is_empty());
        }
    }

    fn cuts() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(1usize..64, 0..64)
    }

    proptest! {
        /// A valid message, cut anywhere into reads, is framed exactly once
        /// at its full length, and only when its last byte has arrived.
        #[test]
        fn valid_message_in_random_chunks(
            body in prop::collection::vec(any::<u8>(), 0..3000),
            compact in any::<bool>(),
            lf_only in any::<bool>(),
            cuts in cuts(),
        ) {
            let name = if compact { "l" } else { "Content-Length" };
            let eol = if lf_only { "\n" } else { "\r\n" };
            let mut m = format!(
                "MESSAGE sip:bob@example.com SIP/2.0{eol}Via: SIP/2.0/TCP h;branch=z9hG4bK1{eol}\
                 {name}: {}{eol}Content-Type: text/plain{eol}{eol}",
                body.len()
            )
            .into_bytes();
            m.extend_from_slice(&body);
            let mut f = StreamFramer::default();
            let mut have = 0;
            let mut chunks = cuts.iter().copied().chain(std::iter::repeat(7));
            while have < m.len() {
                have = (have + chunks.next().unwrap_or(1)).min(m.len());
                let r = f.next_frame(&m[..have]);
                if have < m.len() {
                    prop_assert_eq!(r, Ok(Frame::NeedMore));
                } else {
                    prop_assert_eq!(r, Ok(Frame::Message { len: m.len() }));
                }
            }
            prop_assert!(f.scanned() <= (m.len() - body.len()) as u64);
        }

        /// Keepalives and pipelined messages give the same frames whatever
        /// the read sizes.
        #[test]
        fn pipelined_stream_in_random_chunks(
            parts in prop::collection::vec((0u8..3, 0usize..200), 1..8),
            cuts in cuts(),
        ) {
            let mut stream = Vec::new();
            let mut want = Vec::new();
            for (kind, n) in parts {
                match kind {
                    0 => {
                        stream.extend_from_slice(b"\r\n\r\n");
                        want.push(Frame::KeepAlive { len: 4, ping: true });
                    }
                    _ => {
                        let m = msg(&format!("l: {n}\r\n"), &"b".repeat(n));
                        want.push(Frame::Message { len: m.len() });
                        stream.extend_from_slice(&m);
                    }
                }
            }
            prop_assert_eq!(frames(StreamFramer::default(), &stream, &cuts), (want, None));
        }

        /// Arbitrary bytes never panic, every length is within the buffer,
        /// and the frames do not depend on how the stream was cut.
        #[test]
        fn arbitrary_bytes_never_panic(
            stream in prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    Just(b'\r'), Just(b'\n'), Just(b' '), Just(b':'),
                    Just(b'l'), Just(b'5'),
                ],
                0..600,
            ),
            max_header_bytes in 0usize..300,
            max_message_bytes in 0usize..600,
            cuts in cuts(),
        ) {
            let limits = FramingLimits { max_header_bytes, max_message_bytes };
            let whole = frames(StreamFramer::new(limits), &stream, &[]);
            let cut = frames(StreamFramer::new(limits), &stream, &cuts);
            prop_assert_eq!(whole, cut);
        }
    }
}
