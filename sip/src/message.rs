//! The message index: one pass over a datagram (or a framed stream message)
//! that records the start line and every header line as byte ranges, with no
//! copying and, up to [`INLINE_HEADERS`] header lines, no allocation
//! (RFC 3261 §7, §7.3, §7.5, §18.3).
//!
//! Typed views of the headers a proxy needs are decoded lazily from the index
//! by the accessors at the bottom of this file.

use super::cseq::CSeq;
use super::error::SipError;
use super::header::HeaderName;
use super::method::{Method, StatusCode};
use super::nameaddr::{Contact, NameAddr};
use super::scan::{self, CommaSplit};
use super::span::Span;
use super::via::Via;
use smallvec::SmallVec;

/// Header lines kept inline before the index spills to the heap.
pub const INLINE_HEADERS: usize = 32;

/// Size limits applied while parsing. The defaults fit any sane UDP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, in bytes (RFC 3261 §18.1.1 UDP path MTU
    /// rules aside, a datagram may be up to 65535 bytes).
    pub max_message_size: usize,
    /// Most header lines accepted.
    pub max_headers: usize,
    /// Longest physical line accepted, in bytes.
    pub max_line_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 65_535,
            max_headers: 128,
            max_line_len: 8_192,
        }
    }
}

/// One header line (folded continuation lines included), packed into 12
/// bytes so that the inline index stays small and cheap to move. A header
/// line (folds included) is at most 65535 bytes and a name at most 255.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    line_start: u32,
    line_len: u16,
    value_off: u16,
    value_len: u16,
    name_len: u8,
    pub name: HeaderName,
}

impl Header {
    const EMPTY: Header = Header {
        line_start: 0,
        line_len: 0,
        value_off: 0,
        value_len: 0,
        name_len: 0,
        name: HeaderName::Other,
    };

    /// The name as written (e.g. `v` or `VIA`).
    #[inline]
    pub fn name_span(&self) -> Span {
        Span {
            start: self.line_start,
            end: self.line_start + u32::from(self.name_len),
        }
    }

    /// The value without surrounding LWS; may contain folded line breaks,
    /// which every view treats as LWS (RFC 3261 §7.3.1).
    #[inline]
    pub fn value(&self) -> Span {
        let start = self.line_start + u32::from(self.value_off);
        Span {
            start,
            end: start + u32::from(self.value_len),
        }
    }

    /// The whole line from the name through its final line terminator, for
    /// deleting the header.
    #[inline]
    pub fn line(&self) -> Span {
        Span {
            start: self.line_start,
            end: self.line_start + u32::from(self.line_len),
        }
    }
}

/// The request line (RFC 3261 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLine {
    pub method: Method,
    pub method_span: Span,
    pub uri: Span,
    pub version: Span,
}

/// The status line (RFC 3261 §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusLine {
    pub version: Span,
    pub code: StatusCode,
    pub reason: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine {
    Request(RequestLine),
    Response(StatusLine),
}

const NONE: u16 = u16::MAX;
const _: () = assert!(HeaderName::COUNT <= 64, "Message::repeated is a u64");

/// A parsed message: the buffer it borrows and the index into it.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    buf: &'a [u8],
    start: StartLine,
    /// The start line without its terminator.
    start_span: Span,
    headers: SmallVec<[Header; INLINE_HEADERS]>,
    /// Index in `headers` of the first line of each well-known name.
    first: [u16; HeaderName::COUNT],
    /// Bit `name as u8` set when a well-known name has more than one line:
    /// the lookups of names that appear once stop at their first line.
    repeated: u64,
    /// Offset of the empty line that ends the headers.
    headers_end: u32,
    body: Span,
    content_length: Option<u32>,
}

/// The iterator behind [`Message::values`]: one struct instead of a chain
/// of adapters, since every view (Via, Contact, Route...) walks it.
struct Values<'m, 'a> {
    buf: &'a [u8],
    lines: std::slice::Iter<'m, Header>,
    name: HeaderName,
    list: bool,
    /// The elements left on the current line (list headers).
    split: CommaSplit<'a>,
}

impl<'a> Iterator for Values<'_, 'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            for e in self.split.by_ref() {
                let e = scan::trim(e);
                if !e.is_empty() {
                    return Some(e);
                }
            }
            let name = self.name;
            let h = self.lines.find(|h| h.name == name)?;
            let v = h.value().get(self.buf);
            if self.list {
                self.split = CommaSplit::new(v);
            } else {
                let v = scan::trim(v);
                if !v.is_empty() {
                    return Some(v);
                }
            }
        }
    }
}

/// Finds the next line feed at or after `from`. Header lines are short
/// (30-80 bytes), so an inline 16-bytes-at-a-time search beats a call into a
/// general searcher whose set-up dominates at that length.
#[inline]
fn find_nl(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline; each load reads the 16
        // bytes at `i..i + 16`, which the loop condition keeps inside `buf`.
        unsafe {
            let nl = _mm_set1_epi8(b'\n' as i8);
            while i + 16 <= buf.len() {
                let v = _mm_loadu_si128(buf.as_ptr().add(i) as *const __m128i);
                let m = _mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) as u32;
                if m != 0 {
                    return Some(i + m.trailing_zeros() as usize);
                }
                i += 16;
            }
        }
    }
    buf.get(i..)?
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| i + p)
}

/// The length of the run of token characters (RFC 3261 §25.1) at `from`.
/// Header names are letters, digits and `-`: 16 bytes are classified at a
/// time for those (SSE2), and the byte loop only takes over at another
/// character, to tell the other token characters from the end.
#[inline]
fn token_len(buf: &[u8], from: usize) -> usize {
    let mut i = from;
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{
            __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8,
            _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline; each load reads the 16
        // bytes at `i..i + 16`, which the loop condition keeps inside `buf`.
        unsafe {
            while i + 16 <= buf.len() {
                let v = _mm_loadu_si128(buf.as_ptr().add(i) as *const __m128i);
                // Bytes >= 0x80 are negative: never a letter or digit.
                let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
                let letter = _mm_and_si128(
                    _mm_cmpgt_epi8(lower, _mm_set1_epi8(b'a' as i8 - 1)),
                    _mm_cmplt_epi8(lower, _mm_set1_epi8(b'z' as i8 + 1)),
                );
                let digit = _mm_and_si128(
                    _mm_cmpgt_epi8(v, _mm_set1_epi8(b'0' as i8 - 1)),
                    _mm_cmplt_epi8(v, _mm_set1_epi8(b'9' as i8 + 1)),
                );
                let dash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'-' as i8));
                let m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letter, digit), dash)) as u32;
                let run = (!m).trailing_zeros() as usize;
                i += run;
                if run < 16 {
                    break;
                }
            }
        }
    }
    while buf.get(i).is_some_and(|&b| scan::is_token(b)) {
        i += 1;
    }
    i - from
}

/// Line ends, read in order through the buffer.
struct Lines<'b> {
    buf: &'b [u8],
}

impl<'b> Lines<'b> {
    fn new(buf: &'b [u8]) -> Self {
        Lines { buf }
    }

    /// The end of the line starting at `from`: (end of content, start of
    /// next line). Accepts CRLF and bare LF.
    #[inline]
    fn next_end(&mut self, from: usize) -> Option<(usize, usize)> {
        let nl = find_nl(self.buf, from)?;
        let end = if nl > from && self.buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        Some((end, nl + 1))
    }
}

/// `SIP/<digits>.<digits>`, "SIP" case-insensitive (RFC 3261 §25.1).
/// Returns whether it is 2.0.
fn check_version(v: &[u8]) -> Result<(), SipError> {
    if v == b"SIP/2.0" {
        return Ok(());
    }
    if v.len() < 7 || !v[..4].eq_ignore_ascii_case(b"SIP/") {
        return Err(SipError::BadVersion);
    }
    let num = &v[4..];
    let dot = num
        .iter()
        .position(|&b| b == b'.')
        .ok_or(SipError::BadVersion)?;
    let (maj, min) = (&num[..dot], &num[dot + 1..]);
    if maj.is_empty()
        || min.is_empty()
        || !maj.iter().all(u8::is_ascii_digit)
        || !min.iter().all(u8::is_ascii_digit)
    {
        return Err(SipError::BadVersion);
    }
    if maj == b"2" && min == b"0" {
        Ok(())
    } else {
        Err(SipError::VersionNotSupported)
    }
}

fn parse_start_line(buf: &[u8], s: usize, e: usize) -> Result<StartLine, SipError> {
    let line = &buf[s..e];
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp1 = memchr::memchr(b' ', line).ok_or(SipError::BadStartLine)?;
        check_version(&line[..sp1])?;
        let rest = &line[sp1 + 1..];
        let code_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let code = &rest[..code_end];
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return Err(SipError::BadStatusCode);
        }
        let n = code.iter().fold(0u16, |a, &b| a * 10 + u16::from(b - b'0'));
        let code = StatusCode::new(n).ok_or(SipError::BadStatusCode)?;
        let reason_start = (s + sp1 + 1 + code_end + 1).min(e);
        return Ok(StartLine::Response(StatusLine {
            version: Span::new(s, s + sp1),
            code,
            reason: Span::new(reason_start, e),
        }));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version CRLF, single SP
    // separators (RFC 3261 §7.1; RFC 4475 §3.1.2.7 lwsstart, §3.1.2.8 trws).
    let sp1 = memchr::memchr(b' ', line).ok_or(SipError::BadStartLine)?;
    let sp2 = memchr::memrchr(b' ', line).ok_or(SipError::BadStartLine)?;
    if sp2 <= sp1 + 1 {
        return Err(SipError::BadStartLine);
    }
    let method_b = &line[..sp1];
    let method = Method::from_bytes(method_b).ok_or(SipError::BadMethod)?;
    let version = &line[sp2 + 1..];
    if version.is_empty() {
        // Trailing SP after the version (RFC 4475 §3.1.2.8 trws).
        return Err(SipError::BadStartLine);
    }
    let uri = &line[sp1 + 1..sp2];
    if uri.iter().any(|&b| scan::is_lws(b)) {
        // LWS inside the Request-URI or extra SP between elements
        // (RFC 4475 §3.1.2.5 lwsruri, §3.1.2.7 lwsstart).
        return Err(if uri.first() == Some(&b' ') || uri.last() == Some(&b' ') {
            SipError::BadStartLine
        } else {
            SipError::BadRequestUri
        });
    }
    check_version(version)?;
    Ok(StartLine::Request(RequestLine {
        method,
        method_span: Span::new(s, s + sp1),
        uri: Span::new(s + sp1 + 1, s + sp2),
        version: Span::new(s + sp2 + 1, e),
    }))
}

impl<'a> Message<'a> {
    /// Parses one message with the default [`Limits`].
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, SipError> {
        Message::parse_with(buf, &Limits::default())
    }

    /// Parses one message: a whole UDP datagram, or one message cut out of a
    /// stream by the framer. Leading CRLFs are skipped (RFC 3261 §7.5). The
    /// body runs to Content-Length when present, else to the end of `buf`
    /// (RFC 3261 §18.3); bytes after Content-Length are not part of the
    /// message (RFC 4475 §3.1.2.10 dblreq).
    pub fn parse_with(buf: &'a [u8], limits: &Limits) -> Result<Message<'a>, SipError> {
        Message::parse_inner(buf, limits, false)
    }

    /// Parses a request that [`Message::parse_with`] refused, only so that
    /// it can be answered (RFC 3261 §8.2.6 needs Via, From, To, Call-ID and
    /// CSeq): a malformed request line is split best-effort (method up to the
    /// first SP, version after the last, e.g. `SIP/7.0` for a 505, RFC 4475
    /// §3.1.2.16) and Content-Length errors leave the body to the end of the
    /// datagram. Never forward what this returns.
    pub fn parse_relaxed(buf: &'a [u8], limits: &Limits) -> Result<Message<'a>, SipError> {
        Message::parse_inner(buf, limits, true)
    }

    fn parse_inner(buf: &'a [u8], limits: &Limits, relaxed: bool) -> Result<Message<'a>, SipError> {
        if buf.len() > limits.max_message_size || buf.len() > u32::MAX as usize {
            return Err(SipError::MessageTooLarge);
        }
        let mut pos = 0;
        while pos < buf.len() && (buf[pos] == b'\r' || buf[pos] == b'\n') {
            pos += 1;
        }
        if pos >= buf.len() {
            return Err(SipError::Empty);
        }
        let mut lines = Lines::new(buf);
        let (sl_end, mut next) = lines.next_end(pos).ok_or(SipError::Truncated)?;
        if sl_end - pos > limits.max_line_len {
            return Err(SipError::LineTooLong);
        }
        let start = match parse_start_line(buf, pos, sl_end) {
            Ok(s) => s,
            Err(_) if relaxed && !buf[pos..].starts_with(b"SIP/") => {
                let line = &buf[pos..sl_end];
                let sp1 = memchr::memchr(b' ', line).ok_or(SipError::BadStartLine)?;
                let sp2 = memchr::memrchr(b' ', scan::trim_end(line)).unwrap_or(sp1);
                // Only something that still reads as a SIP request line.
                if !scan::trim(&line[sp2..])
                    .get(..4)
                    .is_some_and(|v| v.eq_ignore_ascii_case(b"SIP/"))
                {
                    return Err(SipError::BadStartLine);
                }
                StartLine::Request(RequestLine {
                    method: Method::from_bytes(&line[..sp1]).unwrap_or(Method::Other),
                    method_span: Span::new(pos, pos + sp1),
                    uri: Span::new(pos + sp1 + 1, pos + sp2.max(sp1 + 1)),
                    version: Span::new(pos + sp2 + 1, sl_end),
                })
            }
            Err(e) => return Err(e),
        };
        let start_span = Span::new(pos, sl_end);

        // Header records go into a plain array (a store per header, no
        // capacity check through a call); only a message with more than
        // INLINE_HEADERS lines moves them to the heap.
        let mut inline = [Header::EMPTY; INLINE_HEADERS];
        let mut spill: Vec<Header> = Vec::new();
        let mut count = 0usize;
        let mut first = [NONE; HeaderName::COUNT];
        let mut repeated = 0u64;
        let mut content_length: Option<u32> = None;
        let headers_end;
        loop {
            let line_start = next;
            // The empty line ends the headers.
            match buf.get(line_start) {
                None => return Err(SipError::Truncated),
                Some(b'\n') => {
                    headers_end = line_start;
                    next = line_start + 1;
                    break;
                }
                Some(b'\r') if buf.get(line_start + 1) == Some(&b'\n') => {
                    headers_end = line_start;
                    next = line_start + 2;
                    break;
                }
                _ => {}
            }
            // field-name = token, then optional SP/HTAB, then ':' (§7.3.1).
            // A line starting with SP/HTAB here is a continuation with no
            // header before it, and fails the same test.
            let name_len = token_len(buf, line_start);
            let mut i = line_start + name_len;
            while i < buf.len() && (buf[i] == b' ' || buf[i] == b'\t') {
                i += 1;
            }
            let end_of_line = lines.next_end(i);
            if name_len == 0 || name_len > usize::from(u8::MAX) || buf.get(i) != Some(&b':') {
                return match end_of_line {
                    Some(_) => Err(SipError::BadHeaderLine),
                    None => Err(SipError::Truncated),
                };
            }
            let value_start = i + 1;
            let (end, after) = end_of_line.ok_or(SipError::Truncated)?;
            if end - line_start > limits.max_line_len {
                return Err(SipError::LineTooLong);
            }
            // Folded continuation lines (RFC 3261 §7.3.1).
            let mut value_end = end;
            let mut line_after = after;
            while let Some(&(b' ' | b'\t')) = buf.get(line_after) {
                let (e2, a2) = lines.next_end(line_after).ok_or(SipError::Truncated)?;
                if e2 - line_after > limits.max_line_len {
                    return Err(SipError::LineTooLong);
                }
                value_end = e2;
                line_after = a2;
            }
            // Trim LWS (folds included) around the value.
            let mut vs = value_start;
            // Nearly every value starts after exactly one SP.
            if buf.get(vs) == Some(&b' ')
                && buf.get(vs + 1).is_some_and(|&b| b > b' ')
                && vs < value_end
            {
                vs += 1;
            } else {
                while vs < value_end && scan::is_lws(buf[vs]) {
                    vs += 1;
                }
            }
            let mut ve = value_end;
            while ve > vs && scan::is_lws(buf[ve - 1]) {
                ve -= 1;
            }
            if count >= limits.max_headers {
                return Err(SipError::TooManyHeaders);
            }
            let name = HeaderName::from_bytes(&buf[line_start..line_start + name_len]);
            if name == HeaderName::ContentLength {
                match (scan::parse_u32(&buf[vs..ve], 10), content_length) {
                    (Some(n), None) => content_length = Some(n),
                    (Some(n), Some(prev)) if n == prev => {}
                    _ if relaxed => {}
                    (Some(_), Some(_)) => return Err(SipError::ConflictingContentLength),
                    (None, _) => return Err(SipError::BadHeader(HeaderName::ContentLength)),
                }
            }
            if name != HeaderName::Other {
                if first[name as usize] == NONE {
                    first[name as usize] = count as u16;
                } else {
                    repeated |= 1 << name as u64;
                }
            }
            if line_after - line_start > usize::from(u16::MAX) {
                return Err(SipError::LineTooLong);
            }
            let h = Header {
                line_start: line_start as u32,
                line_len: (line_after - line_start) as u16,
                value_off: (vs - line_start) as u16,
                value_len: (ve - vs) as u16,
                name_len: name_len as u8,
                name,
            };
            match inline.get_mut(count) {
                Some(slot) => *slot = h,
                None => {
                    if spill.is_empty() {
                        spill.extend_from_slice(&inline);
                    }
                    spill.push(h);
                }
            }
            count += 1;
            next = line_after;
        }
        let body_start = next;
        let available = buf.len() - body_start;
        let body_len = match content_length {
            Some(_) if relaxed => available,
            Some(n) if n as usize > available => return Err(SipError::ContentLengthTooLarge),
            Some(n) => n as usize,
            None => available,
        };
        let headers = if count <= INLINE_HEADERS {
            SmallVec::from_buf_and_len(inline, count)
        } else {
            SmallVec::from_vec(spill)
        };
        Ok(Message {
            buf,
            start,
            start_span,
            headers,
            first,
            repeated,
            headers_end: headers_end as u32,
            body: Span::new(body_start, body_start + body_len),
            content_length,
        })
    }

    /// The buffer this message was parsed from.
    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }

    /// The message bytes: from the start of the buffer through the end of the
    /// body (leading CRLFs included, trailing bytes beyond Content-Length not).
    pub fn as_bytes(&self) -> &'a [u8] {
        &self.buf[..self.body.end as usize]
    }

    pub fn start_line(&self) -> &StartLine {
        &self.start
    }

    pub fn start_span(&self) -> Span {
        self.start_span
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request(_))
    }

    pub fn request_line(&self) -> Option<&RequestLine> {
        match &self.start {
            StartLine::Request(r) => Some(r),
            StartLine::Response(_) => None,
        }
    }

    pub fn status_line(&self) -> Option<&StatusLine> {
        match &self.start {
            StartLine::Response(s) => Some(s),
            StartLine::Request(_) => None,
        }
    }

    /// The request method; `None` for a response.
    pub fn method(&self) -> Option<Method> {
        self.request_line().map(|r| r.method)
    }

    /// The method token as written; `None` for a response.
    pub fn method_bytes(&self) -> Option<&'a [u8]> {
        self.request_line().map(|r| r.method_span.get(self.buf))
    }

    /// The raw Request-URI; `None` for a response.
    pub fn request_uri(&self) -> Option<&'a [u8]> {
        self.request_line().map(|r| r.uri.get(self.buf))
    }

    /// The status code; `None` for a request.
    pub fn status(&self) -> Option<StatusCode> {
        self.status_line().map(|s| s.code)
    }

    /// Every header line, in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Offset of the empty line ending the headers: where new headers go.
    pub fn headers_end(&self) -> usize {
        self.headers_end as usize
    }

    /// Offset just after the start line's terminator: where a header goes to
    /// be first.
    pub fn first_header_offset(&self) -> usize {
        self.headers
            .first()
            .map_or(self.headers_end as usize, |h| h.line().start as usize)
    }

    pub fn body_span(&self) -> Span {
        self.body
    }

    pub fn body(&self) -> &'a [u8] {
        self.body.get(self.buf)
    }

    /// The bytes of a span of this message.
    pub fn slice(&self, s: Span) -> &'a [u8] {
        s.get(self.buf)
    }

    /// The first header line with this name.
    pub fn header(&self, name: HeaderName) -> Option<&Header> {
        if name == HeaderName::Other {
            return None;
        }
        match self.first[name as usize] {
            NONE => None,
            i => self.headers.get(i as usize),
        }
    }

    /// The first header line whose name is `name` (any case; for headers
    /// sipfront has no name for).
    pub fn header_by_name(&self, name: &[u8]) -> Option<&Header> {
        let known = HeaderName::from_bytes(name);
        if known != HeaderName::Other {
            return self.header(known);
        }
        self.headers.iter().find(|h| {
            h.name == HeaderName::Other && h.name_span().get(self.buf).eq_ignore_ascii_case(name)
        })
    }

    /// The value of the first header line with this name.
    pub fn header_value(&self, name: HeaderName) -> Option<&'a [u8]> {
        self.header(name).map(|h| h.value().get(self.buf))
    }

    /// Every header line with this name, in order.
    pub fn headers_named(&self, name: HeaderName) -> impl Iterator<Item = &Header> + '_ {
        self.lines_named(name)
            .iter()
            .filter(move |h| h.name == name)
    }

    /// True when a well-known header has more than one line (RFC 3261
    /// §7.3.1: only list headers may). Always false for `Other`.
    pub fn is_repeated(&self, name: HeaderName) -> bool {
        name != HeaderName::Other && self.repeated & (1 << name as u64) != 0
    }

    /// Every value of a header, across lines and commas: for list headers
    /// (Via, Route, Record-Route, Contact, ...) each comma-separated element,
    /// quotes and `<...>` respected (RFC 3261 §7.3.1); for other headers each
    /// line's whole value. Elements are trimmed.
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = &'a [u8]> + '_ {
        Values {
            buf: self.buf,
            lines: self.lines_named(name).iter(),
            name,
            list: name.is_list(),
            split: CommaSplit::default(),
        }
    }

    /// The header lines from the first `name` line to the last one that
    /// can be a `name` line (the rest of the list when the name repeats).
    fn lines_named(&self, name: HeaderName) -> &[Header] {
        let len = self.headers.len();
        let (from, to) = match self.first[name as usize] {
            NONE if name != HeaderName::Other => (len, len),
            NONE => (0, len),
            i if !self.is_repeated(name) => (i as usize, i as usize + 1),
            i => (i as usize, len),
        };
        self.headers.get(from..to).unwrap_or(&[])
    }

    /// Content-Length when present (already validated by the parser).
    pub fn content_length(&self) -> Option<u32> {
        self.content_length
    }

    // ---- typed views -------------------------------------------------

    /// Call-ID (RFC 3261 §20.8): `word [ "@" word ]`, no whitespace.
    pub fn call_id(&self) -> Result<&'a [u8], SipError> {
        let v = self
            .header_value(HeaderName::CallId)
            .ok_or(SipError::MissingHeader(HeaderName::CallId))?;
        // Graphic excludes LWS; no early exit, the scan vectorises.
        if v.is_empty() || !v.iter().fold(true, |ok, b| ok & b.is_ascii_graphic()) {
            return Err(SipError::BadHeader(HeaderName::CallId));
        }
        Ok(v)
    }

    /// CSeq (RFC 3261 §20.16).
    pub fn cseq(&self) -> Result<CSeq<'a>, SipError> {
        let v = self
            .header_value(HeaderName::CSeq)
            .ok_or(SipError::MissingHeader(HeaderName::CSeq))?;
        CSeq::parse(v).ok_or(SipError::BadHeader(HeaderName::CSeq))
    }

    /// Max-Forwards (RFC 3261 §20.22): `None` when absent.
    pub fn max_forwards(&self) -> Result<Option<u32>, SipError> {
        match self.header_value(HeaderName::MaxForwards) {
            None => Ok(None),
            Some(v) => scan::parse_u32(v, 10)
                .map(Some)
                .ok_or(SipError::BadHeader(HeaderName::MaxForwards)),
        }
    }

    /// Expires (RFC 3261 §20.19): delta-seconds; `None` when absent.
    pub fn expires(&self) -> Result<Option<u32>, SipError> {
        match self.header_value(HeaderName::Expires) {
            None => Ok(None),
            Some(v) => scan::parse_u32(v, 10)
                .map(Some)
                .ok_or(SipError::BadHeader(HeaderName::Expires)),
        }
    }

    /// Content-Type (RFC 3261 §20.15) as written, parameters included.
    pub fn content_type(&self) -> Option<&'a [u8]> {
        self.header_value(HeaderName::ContentType)
    }

    /// The topmost Via value (RFC 3261 §20.42).
    pub fn top_via(&self) -> Result<Via<'a>, SipError> {
        let v = self
            .values(HeaderName::Via)
            .next()
            .ok_or(SipError::MissingHeader(HeaderName::Via))?;
        Via::parse(v).ok_or(SipError::BadHeader(HeaderName::Via))
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'a>, SipError>> + '_ {
        self.values(HeaderName::Via)
            .map(|v| Via::parse(v).ok_or(SipError::BadHeader(HeaderName::Via)))
    }

    /// From (RFC 3261 §20.20).
    pub fn from(&self) -> Result<NameAddr<'a>, SipError> {
        self.name_addr(HeaderName::From)
    }

    /// To (RFC 3261 §20.39).
    pub fn to(&self) -> Result<NameAddr<'a>, SipError> {
        self.name_addr(HeaderName::To)
    }

    fn name_addr(&self, name: HeaderName) -> Result<NameAddr<'a>, SipError> {
        let v = self
            .header_value(name)
            .ok_or(SipError::MissingHeader(name))?;
        NameAddr::parse(v).ok_or(SipError::BadHeader(name))
    }

    /// Every Contact value (RFC 3261 §20.10), `*` included.
    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'a>, SipError>> + '_ {
        self.values(HeaderName::Contact)
            .map(|v| Contact::parse(v).ok_or(SipError::BadHeader(HeaderName::Contact)))
    }

    /// Every Route value, in order (RFC 3261 §20.34).
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'a>, SipError>> + '_ {
        self.values(HeaderName::Route)
            .map(|v| NameAddr::parse(v).ok_or(SipError::BadHeader(HeaderName::Route)))
    }

    /// Every Record-Route value, in order (RFC 3261 §20.30).
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'a>, SipError>> + '_ {
        self.values(HeaderName::RecordRoute)
            .map(|v| NameAddr::parse(v).ok_or(SipError::BadHeader(HeaderName::RecordRoute)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    #[test]
    fn indexes_request_rfc3261_7_1() {
        let m = Message::parse(INVITE).unwrap();
        assert!(m.is_request());
        assert_eq!(m.method(), Some(Method::Invite));
        assert_eq!(m.request_uri(), Some(&b"sip:bob@biloxi.example.com"[..]));
        assert_eq!(m.headers().len(), 9);
        assert_eq!(
            m.call_id().unwrap(),
            b"a84b4c76e66710@pc33.atlanta.example.com"
        );
        assert_eq!(m.max_forwards().unwrap(), Some(70));
        assert_eq!(m.content_length(), Some(4));
        assert_eq!(m.body(), b"v=0\n");
        assert_eq!(m.as_bytes(), INVITE);
        assert_eq!(
            m.header_value(HeaderName::ContentType),
            Some(&b"application/sdp"[..])
        );
    }

    #[test]
    fn indexes_response_rfc3261_7_2() {
        let r = b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(r).unwrap();
        assert_eq!(m.status().map(|s| s.as_u16()), Some(180));
        assert_eq!(m.slice(m.status_line().unwrap().reason), b"Ringing");
        // Empty reason phrase (RFC 4475 §3.1.1.13 noreason).
        let m = Message::parse(b"SIP/2.0 100 \r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(m.slice(m.status_line().unwrap().reason), b"");
        let m = Message::parse(b"SIP/2.0 100\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(m.status().map(|s| s.as_u16()), Some(100));
    }

    #[test]
    fn start_line_errors_rfc3261_7_1() {
        let table: &[(&[u8], SipError)] = &[
            (b"", SipError::Empty),
            (b"\r\n\r\n", SipError::Empty),
            (b"INVITE sip:a@b SIP/2.0", SipError::Truncated),
            (b"INVITE sip:a@b SIP/2.0\r\n", SipError::Truncated),
            (b"INVITE\r\n\r\n", SipError::BadStartLine),
            (b"INVITE  sip:a@b SIP/2.0\r\n\r\n", SipError::BadStartLine),
            (b"INVITE sip:a@b SIP/2.0 \r\n\r\n", SipError::BadStartLine),
            (
                b"INVITE sip:a@b; lr SIP/2.0\r\n\r\n",
                SipError::BadRequestUri,
            ),
            (
                b"INVITE sip:a@b SIP/7.0\r\n\r\n",
                SipError::VersionNotSupported,
            ),
            (b"INVITE sip:a@b SIP/2\r\n\r\n", SipError::BadVersion),
            (b"INVITE sip:a@b HTTP/1.1\r\n\r\n", SipError::BadVersion),
            (b"IN<VITE sip:a@b SIP/2.0\r\n\r\n", SipError::BadMethod),
            (b"SIP/2.0 4000 Bad\r\n\r\n", SipError::BadStatusCode),
            (b"SIP/2.0 099 Low\r\n\r\n", SipError::BadStatusCode),
            (b"SIP/2.0 20 Short\r\n\r\n", SipError::BadStatusCode),
            (b"SIP/3.0 200 OK\r\n\r\n", SipError::VersionNotSupported),
        ];
        for (input, want) in table {
            assert_eq!(
                Message::parse(input).err(),
                Some(*want),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn header_lines_rfc3261_7_3() {
        let m = Message::parse(
            b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP x;branch=z9hG4bK1\r\nSubject  :   hi  there \r\nX-Empty:\r\nRoute: <sip:p1;lr>,\r\n <sip:p2;lr>\r\nRoute: <sip:p3;lr>\r\n\r\n",
        )
        .unwrap();
        assert_eq!(m.header_value(HeaderName::Subject), Some(&b"hi  there"[..]));
        assert_eq!(
            m.header_by_name(b"x-empty").map(|h| h.value().is_empty()),
            Some(true)
        );
        let routes: Vec<&[u8]> = m.values(HeaderName::Route).collect();
        assert_eq!(
            routes,
            vec![&b"<sip:p1;lr>"[..], b"<sip:p2;lr>", b"<sip:p3;lr>"]
        );
        assert_eq!(m.headers_named(HeaderName::Route).count(), 2);
        // The line span of a folded header covers the continuation.
        let r = m.header(HeaderName::Route).unwrap();
        assert_eq!(
            m.slice(r.line()),
            b"Route: <sip:p1;lr>,\r\n <sip:p2;lr>\r\n"
        );
    }

    #[test]
    fn header_line_errors() {
        let table: &[(&[u8], SipError)] = &[
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nNoColon\r\n\r\n",
                SipError::BadHeaderLine,
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\n continued\r\n\r\n",
                SipError::BadHeaderLine,
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n",
                SipError::BadHeaderLine,
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n",
                SipError::Truncated,
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nabc",
                SipError::ContentLengthTooLarge,
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n",
                SipError::BadHeader(HeaderName::ContentLength),
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab",
                SipError::ConflictingContentLength,
            ),
        ];
        for (input, want) in table {
            assert_eq!(
                Message::parse(input).err(),
                Some(*want),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn limits_rfc3261_18_1_1() {
        let lim = Limits {
            max_message_size: 100,
            max_headers: 2,
            max_line_len: 30,
        };
        let big = vec![b'a'; 101];
        assert_eq!(
            Message::parse_with(&big, &lim).err(),
            Some(SipError::MessageTooLarge)
        );
        let many = b"OPTIONS sip:a@b SIP/2.0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            Message::parse_with(many, &lim).err(),
            Some(SipError::TooManyHeaders)
        );
        let long = b"OPTIONS sip:a@b SIP/2.0\r\nA: 1234567890123456789012345678901\r\n\r\n";
        assert_eq!(
            Message::parse_with(long, &lim).err(),
            Some(SipError::LineTooLong)
        );
    }

    #[test]
    fn body_ends_at_content_length_rfc3261_18_3() {
        // Over UDP, bytes past Content-Length are not part of the message.
        let m = Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\nl: 2\r\n\r\nabXYZ").unwrap();
        assert_eq!(m.body(), b"ab");
        assert_eq!(m.as_bytes().len(), 35);
        // Without Content-Length the body runs to the end of the datagram.
        let m = Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\n\r\nabc").unwrap();
        assert_eq!(m.body(), b"abc");
    }

    #[test]
    fn relaxed_parse_reads_headers_for_a_reply_rfc3261_8_2_6() {
        let bad = b"OPTIONS sip:a@b SIP/7.0\r\nCall-ID: x\r\nl: 99\r\n\r\nab";
        assert_eq!(
            Message::parse(bad).err(),
            Some(SipError::VersionNotSupported)
        );
        let m = Message::parse_relaxed(bad, &Limits::default()).unwrap();
        assert_eq!(m.method(), Some(Method::Options));
        assert_eq!(m.call_id().unwrap(), b"x");
        assert_eq!(m.body(), b"ab");
        let m = Message::parse_relaxed(
            b"INVITE  sip:a@b SIP/2.0 \r\nCall-ID: y\r\n\r\n",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(m.method(), Some(Method::Invite));
        // Responses and lines with no SP are still refused.
        assert!(Message::parse_relaxed(b"SIP/2.0 2000 X\r\n\r\n", &Limits::default()).is_err());
        assert!(Message::parse_relaxed(b"GARBAGE\r\n\r\n", &Limits::default()).is_err());
    }

    #[test]
    fn token_runs_match_the_byte_loop() {
        let chars = b"aZ09-.!%*_+`'~: \t\r\n\x80\xffxyz";
        let mut seed = 7u32;
        for _ in 0..2000 {
            let len = (seed % 40) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    chars[(seed >> 16) as usize % chars.len()]
                })
                .collect();
            for from in 0..=len {
                let want = buf[from..]
                    .iter()
                    .take_while(|&&b| scan::is_token(b))
                    .count();
                assert_eq!(token_len(&buf, from), want, "{buf:?} {from}");
            }
        }
    }

    #[test]
    fn leading_crlf_and_bare_lf_rfc3261_7_5() {
        let m = Message::parse(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\nCall-ID: x\n\n").unwrap();
        assert_eq!(m.call_id().unwrap(), b"x");
    }
}
