//! A zero-copy view of an SDP body (RFC 8866, which obsoletes RFC 4566) for
//! the media relay: the lines a relay reads or rewrites (`o=`, `c=`, `m=`,
//! `a=rtcp`, `a=rtcp-mux`, direction attributes, ICE attributes) are indexed
//! as byte ranges into the body, and rewrites are recorded as [`Edits`].
//!
//! # Offsets
//!
//! Every [`Span`] this module hands out (in [`Field`], [`Line`],
//! [`Connection`], [`Media::section`], ...) is an offset **within the body
//! slice** given to [`Sdp::parse`] / [`Sdp::parse_at`], so `span.get(body)`
//! always works. The editing helpers (`set_*`, [`Sdp::remove_ice`]) instead
//! record **absolute** offsets: each span plus the `base` given to
//! [`Sdp::parse_at`], the offset of the body inside the whole message buffer.
//! Parse with `Sdp::parse_at(msg.body(), msg.body_span().start)` and the
//! edits apply to the whole message together with header edits; parse with
//! [`Sdp::parse`] (base 0) and they apply to the body alone. [`Sdp::abs`]
//! converts a body span into a message span by the same rule.
//!
//! # What is checked
//!
//! Lines end in CRLF or a bare LF (the last line may lack a terminator).
//! Each line is `<type>=<value>` with a single lowercase letter as type
//! (RFC 8866 §5); the first line must be `v=0` (§5.1). Blank lines are
//! tolerated only at the end of the body (some senders count a trailing CRLF
//! in Content-Length). The lines this view interprets must be well formed:
//! `o=` (§5.2, at most one, session level), `c=` (§5.7, at most one at
//! session level; several per media are allowed for layered multicast),
//! `m=` (§5.14), `a=` names (§5.13, a token), `a=rtcp` (RFC 3605 §2.1) and
//! at most one `a=rtcp` and one direction attribute per section (RFC 3264
//! §5.1). Other lines (`s=`, `t=`, `b=`, unknown attributes...) are carried
//! through untouched and unchecked; missing `s=`/`t=` is tolerated.
//!
//! `a=rtcp` and `a=rtcp-mux` are read in media sections only (RFC 3605 §2.1,
//! RFC 5761 §5.1.1 define them there); direction and ICE attributes at both
//! levels.
//!
//! # Rewriting
//!
//! Each helper touches its own part of distinct lines (`c=`/`o=` addresses,
//! `m=` ports, the `a=rtcp` value, the direction name, whole ICE lines) and
//! inserts new `a=` lines only at line boundaries, so calling every helper
//! once on one [`Edits`] never produces overlapping edits (the fuzz target
//! checks this). Calling the same helper twice for the same line, or both
//! [`Sdp::set_connection_address`] and [`Sdp::set_media_connection_address`],
//! does overlap and makes [`Edits::apply`] fail. [`Sdp::body_len_after`]
//! gives the new Content-Length.
//!
//! A typical SDP (up to [`INLINE_MEDIA`] media sections) is indexed without
//! heap allocation; attribute lists are walked lazily, never collected. No
//! input makes the parser or a helper panic.

use super::edit::Edits;
use super::scan;
use super::span::Span;
use smallvec::SmallVec;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Media sections kept inline before the index spills to the heap.
pub const INLINE_MEDIA: usize = 4;

/// Why a body is not an SDP this view can index, or why an edit helper was
/// called with a media index that does not exist. Line numbers count from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdpError {
    /// The body is empty.
    Empty,
    /// The body (plus its base offset) does not fit 32-bit offsets.
    TooLarge,
    /// The first line is not a `v=` line (RFC 8866 §5.1).
    NoVersion,
    /// The `v=` line is not `v=0` (RFC 8866 §5.1).
    BadVersion,
    /// A line without `=` right after its type letter, or a blank line
    /// followed by more lines (RFC 8866 §5).
    MissingEquals { line: u32 },
    /// A type that is not a single lowercase letter (RFC 8866 §5).
    BadType { line: u32 },
    /// A line where it may not appear: `v=` after the first line, `o=` in a
    /// media section.
    Misplaced { what: &'static str, line: u32 },
    /// A line that may appear once per section, repeated.
    Duplicate { what: &'static str, line: u32 },
    /// A malformed `o=` line (RFC 8866 §5.2).
    BadOrigin { line: u32 },
    /// A malformed `c=` line (RFC 8866 §5.7).
    BadConnection { line: u32 },
    /// A malformed `m=` line (RFC 8866 §5.14).
    BadMedia { line: u32 },
    /// An `a=` line whose name is not a token (RFC 8866 §5.13).
    BadAttribute { line: u32 },
    /// A malformed `a=rtcp` attribute (RFC 3605 §2.1).
    BadRtcp { line: u32 },
    /// An edit helper was given a media index past the last `m=` section.
    NoSuchMedia { index: usize },
}

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdpError::Empty => f.write_str("empty SDP body"),
            SdpError::TooLarge => f.write_str("SDP body too large for 32-bit offsets"),
            SdpError::NoVersion => f.write_str("SDP does not start with a v= line"),
            SdpError::BadVersion => f.write_str("SDP version is not v=0"),
            SdpError::MissingEquals { line } => {
                write!(f, "SDP line {line}: no '=' after the type letter")
            }
            SdpError::BadType { line } => {
                write!(f, "SDP line {line}: type is not a lowercase letter")
            }
            SdpError::Misplaced { what, line } => write!(f, "SDP line {line}: misplaced {what}"),
            SdpError::Duplicate { what, line } => write!(f, "SDP line {line}: duplicate {what}"),
            SdpError::BadOrigin { line } => write!(f, "SDP line {line}: malformed o= line"),
            SdpError::BadConnection { line } => write!(f, "SDP line {line}: malformed c= line"),
            SdpError::BadMedia { line } => write!(f, "SDP line {line}: malformed m= line"),
            SdpError::BadAttribute { line } => {
                write!(f, "SDP line {line}: attribute name is not a token")
            }
            SdpError::BadRtcp { line } => write!(f, "SDP line {line}: malformed a=rtcp"),
            SdpError::NoSuchMedia { index } => write!(f, "no SDP media section {index}"),
        }
    }
}

impl std::error::Error for SdpError {}

/// A piece of the body: its bytes and where they are (body-relative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Field<'a> {
    pub text: &'a [u8],
    pub span: Span,
}

impl<'a> Field<'a> {
    fn at(body: &'a [u8], start: usize, end: usize) -> Field<'a> {
        let span = Span::new(start, end);
        Field {
            text: span.get(body),
            span,
        }
    }

    /// The text as UTF-8, when it is.
    pub fn as_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.text).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

/// One `<type>=<value>` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// The type letter (`b'v'`, `b'o'`, `b'm'`, ...).
    pub kind: u8,
    /// Everything after `=`, without the line terminator.
    pub value: Field<'a>,
    /// The whole line including its terminator (CRLF or LF), for deletion.
    pub span: Span,
}

/// An `a=<name>[:<value>]` line (RFC 8866 §5.13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribute<'a> {
    pub name: Field<'a>,
    /// `None` for a property attribute (`a=recvonly`); `Some` (possibly
    /// empty) after a `:`.
    pub value: Option<Field<'a>>,
    /// The whole line including its terminator.
    pub line: Span,
}

/// The `<addrtype>` of `o=`, `c=` and `a=rtcp` (RFC 8866 §5.2, §5.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrType {
    Ip4,
    Ip6,
    /// Any other token (extensions); the address is then never parsed.
    Other,
}

impl AddrType {
    fn of(s: &[u8]) -> AddrType {
        if scan::eq_ic(s, b"IP4") {
            AddrType::Ip4
        } else if scan::eq_ic(s, b"IP6") {
            AddrType::Ip6
        } else {
            AddrType::Other
        }
    }

    /// The addrtype token matching an address.
    pub fn for_ip(ip: IpAddr) -> AddrType {
        match ip {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
            AddrType::Other => "",
        }
    }
}

/// Connection data `<nettype> <addrtype> <address>[/<ttl>][/<count>]`: a
/// `c=` line (RFC 8866 §5.7) or the address part of `a=rtcp` (RFC 3605).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection<'a> {
    /// The whole line (`c=` or `a=rtcp`) including its terminator.
    pub line: Span,
    pub nettype: Field<'a>,
    pub addrtype: Field<'a>,
    pub addr_type: AddrType,
    /// The address without the multicast `/ttl/count` suffix: an IP literal
    /// or a name (RFC 4317 uses `host.atlanta.example.com`).
    pub address: Field<'a>,
    /// The `/ttl[/count]` suffix including its first `/`; empty (at the end
    /// of `address`) when absent.
    pub suffix: Field<'a>,
    /// `address` parsed as the IP family its addrtype names; `None` for a
    /// name, an unknown addrtype or a family mismatch.
    pub ip: Option<IpAddr>,
}

/// The `o=` line (RFC 8866 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    pub line: Span,
    pub username: Field<'a>,
    pub sess_id: Field<'a>,
    pub sess_version: Field<'a>,
    pub nettype: Field<'a>,
    pub addrtype: Field<'a>,
    pub addr_type: AddrType,
    pub address: Field<'a>,
    pub ip: Option<IpAddr>,
}

/// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605 §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rtcp<'a> {
    pub line: Span,
    /// Everything after `a=rtcp:`.
    pub value: Field<'a>,
    pub port: u16,
    pub port_field: Field<'a>,
    /// The optional address (its `line` is the `a=rtcp` line).
    pub address: Option<Connection<'a>>,
}

/// Media direction attributes (RFC 3264 §5.1, RFC 8866 §6.7). With none at
/// media or session level a stream is `SendRecv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn from_name(name: &[u8]) -> Option<Direction> {
        match name {
            b"sendrecv" => Some(Direction::SendRecv),
            b"sendonly" => Some(Direction::SendOnly),
            b"recvonly" => Some(Direction::RecvOnly),
            b"inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True for the attributes ICE adds (RFC 8839 §5): candidates, the
/// end-of-candidates marker, remote-candidates and every `ice-*` attribute.
pub fn is_ice_attribute(name: &[u8]) -> bool {
    matches!(
        name,
        b"candidate" | b"end-of-candidates" | b"remote-candidates"
    ) || name.starts_with(b"ice-")
}

/// One media section: the `m=` line (RFC 8866 §5.14) and the lines up to the
/// next `m=` line.
#[derive(Clone, Debug)]
pub struct Media<'a> {
    body: &'a [u8],
    line: Span,
    section: Span,
    media: Field<'a>,
    port: u16,
    port_field: Field<'a>,
    port_count: Option<u16>,
    proto: Field<'a>,
    fmt: Field<'a>,
    connection: Option<Connection<'a>>,
    rtcp: Option<Rtcp<'a>>,
    rtcp_mux: bool,
    direction: Option<(Direction, Field<'a>)>,
    has_ice: bool,
    /// Where a new `a=` line goes: before the first `a=` line of the section,
    /// else after its last line (so RFC 8866 §5 line order holds).
    first_attr: Option<u32>,
    /// The terminator of the `m=` line, reused for inserted lines.
    eol: &'static str,
    /// What must precede an inserted line at the end of the section when
    /// the body's last line has no terminator.
    tail_prefix: &'static str,
}

impl<'a> Media<'a> {
    /// The `m=` line including its terminator.
    pub fn line(&self) -> Span {
        self.line
    }

    /// The whole section: from the `m=` line through the terminator of its
    /// last line (trailing blank lines of the body excluded).
    pub fn section(&self) -> Span {
        self.section
    }

    /// `audio`, `video`, `application`, ...
    pub fn media_type(&self) -> Field<'a> {
        self.media
    }

    /// The transport port; 0 marks a rejected or disabled stream (RFC 3264 §6).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port digits (without any `/count`).
    pub fn port_field(&self) -> Field<'a> {
        self.port_field
    }

    /// The `<number of ports>` of `m=video 49170/2 ...` (RFC 8866 §5.14).
    pub fn port_count(&self) -> Option<u16> {
        self.port_count
    }

    /// True when the port is 0 (RFC 3264 §6: the stream is rejected).
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, ...
    pub fn proto(&self) -> Field<'a> {
        self.proto
    }

    /// The whole `<fmt>` list as written.
    pub fn fmt_list(&self) -> Field<'a> {
        self.fmt
    }

    /// The formats one by one (payload types for RTP), without allocating.
    pub fn formats(&self) -> Formats<'a> {
        Formats {
            words: Words::new(
                self.body,
                self.fmt.span.start as usize,
                self.fmt.span.end as usize,
            ),
        }
    }

    /// The first media-level `c=` line, if any (see
    /// [`Sdp::effective_connection`] for the one that applies).
    pub fn connection(&self) -> Option<&Connection<'a>> {
        self.connection.as_ref()
    }

    /// `a=rtcp` (RFC 3605).
    pub fn rtcp(&self) -> Option<&Rtcp<'a>> {
        self.rtcp.as_ref()
    }

    /// `a=rtcp-mux` present (RFC 5761 §5.1.1).
    pub fn rtcp_mux(&self) -> bool {
        self.rtcp_mux
    }

    /// The media-level direction attribute (see [`Sdp::effective_direction`]).
    pub fn direction(&self) -> Option<Direction> {
        self.direction.map(|(d, _)| d)
    }

    /// The name of the media-level direction attribute (`sendonly` in
    /// `a=sendonly`), for replacing it.
    pub fn direction_field(&self) -> Option<Field<'a>> {
        self.direction.map(|(_, f)| f)
    }

    /// Any ICE attribute in this section (candidates, `ice-*`, ...).
    pub fn has_ice(&self) -> bool {
        self.has_ice
    }

    /// Every line of the section, the `m=` line first.
    pub fn lines(&self) -> Lines<'a> {
        Lines::new(self.body, self.section)
    }

    /// Every `a=` line of the section.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            lines: self.lines(),
        }
    }

    /// The first attribute with this name.
    pub fn attribute(&self, name: &[u8]) -> Option<Attribute<'a>> {
        self.attributes().find(|a| a.name.text == name)
    }

    /// `a=candidate:` lines (RFC 8839 §5.1).
    pub fn candidates(&self) -> impl Iterator<Item = Attribute<'a>> {
        self.attributes().filter(|a| a.name.text == b"candidate")
    }

    pub fn ice_ufrag(&self) -> Option<Field<'a>> {
        self.attribute(b"ice-ufrag").and_then(|a| a.value)
    }

    pub fn ice_pwd(&self) -> Option<Field<'a>> {
        self.attribute(b"ice-pwd").and_then(|a| a.value)
    }

    pub fn ice_options(&self) -> Option<Field<'a>> {
        self.attribute(b"ice-options").and_then(|a| a.value)
    }

    /// `a=end-of-candidates` present (RFC 8840 §8.2).
    pub fn end_of_candidates(&self) -> bool {
        self.attribute(b"end-of-candidates").is_some()
    }

    /// Offset and prefix/suffix for a new `a=` line in this section.
    fn insertion(&self) -> (u32, &'static str, &'static str) {
        match self.first_attr {
            Some(at) => (at, "", self.eol),
            None if self.tail_prefix.is_empty() => (self.section.end, "", self.eol),
            None => (self.section.end, self.tail_prefix, ""),
        }
    }
}

/// The parsed view of one SDP body. See the module documentation for the
/// meaning of spans and the base offset.
#[derive(Clone, Debug)]
pub struct Sdp<'a> {
    body: &'a [u8],
    base: u32,
    session: Span,
    origin: Option<Origin<'a>>,
    connection: Option<Connection<'a>>,
    direction: Option<(Direction, Field<'a>)>,
    has_ice: bool,
    media: SmallVec<[Media<'a>; INLINE_MEDIA]>,
}

/// A snapshot of the size change already recorded in an [`Edits`], taken
/// before the SDP edits so that [`Sdp::body_len_after`] counts only those.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LenMark(usize);

/// Original length used to measure [`Edits::output_len`] deltas: large
/// enough that deletions never saturate, small enough that insertions never
/// overflow.
const PROBE_LEN: usize = usize::MAX / 4;

impl LenMark {
    /// The mark of `edits` as they are now.
    pub fn of(edits: &Edits) -> LenMark {
        LenMark(edits.output_len(PROBE_LEN))
    }

    /// The mark of an empty `Edits`: use it when the `Edits` holds nothing
    /// but this body's edits.
    pub const EMPTY: LenMark = LenMark(PROBE_LEN);
}

impl<'a> Sdp<'a> {
    /// Parses a body whose spans are also its edit offsets (base 0).
    pub fn parse(body: &'a [u8]) -> Result<Sdp<'a>, SdpError> {
        Sdp::parse_at(body, 0)
    }

    /// Parses `body`, which starts at offset `base` of the message buffer the
    /// edit helpers' [`Edits`] will be applied to.
    pub fn parse_at(body: &'a [u8], base: u32) -> Result<Sdp<'a>, SdpError> {
        if u64::from(base) + body.len() as u64 > u64::from(u32::MAX) {
            return Err(SdpError::TooLarge);
        }
        if body.is_empty() {
            return Err(SdpError::Empty);
        }
        Parser::new(body, base).run()
    }

    /// The body this view indexes.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Offset of the body in the message buffer (0 after [`Sdp::parse`]).
    pub fn base(&self) -> u32 {
        self.base
    }

    /// A body span as a span of the message buffer (adds the base).
    pub fn abs(&self, s: Span) -> Span {
        Span {
            start: s.start.saturating_add(self.base),
            end: s.end.saturating_add(self.base),
        }
    }

    fn abs_at(&self, at: u32) -> usize {
        at.saturating_add(self.base) as usize
    }

    /// The session-level part: from `v=` up to the first `m=` line.
    pub fn session_section(&self) -> Span {
        self.session
    }

    pub fn origin(&self) -> Option<&Origin<'a>> {
        self.origin.as_ref()
    }

    /// The session-level `c=` line.
    pub fn connection(&self) -> Option<&Connection<'a>> {
        self.connection.as_ref()
    }

    /// The session-level direction attribute.
    pub fn direction(&self) -> Option<Direction> {
        self.direction.map(|(d, _)| d)
    }

    /// Any session-level ICE attribute (`ice-lite`, `ice-ufrag`, ...).
    pub fn has_ice(&self) -> bool {
        self.has_ice
    }

    /// Any ICE attribute at session level or in any media section.
    pub fn uses_ice(&self) -> bool {
        self.has_ice || self.media.iter().any(|m| m.has_ice)
    }

    pub fn ice_lite(&self) -> bool {
        self.session_attribute(b"ice-lite").is_some()
    }

    pub fn ice_ufrag(&self) -> Option<Field<'a>> {
        self.session_attribute(b"ice-ufrag").and_then(|a| a.value)
    }

    pub fn ice_pwd(&self) -> Option<Field<'a>> {
        self.session_attribute(b"ice-pwd").and_then(|a| a.value)
    }

    pub fn ice_options(&self) -> Option<Field<'a>> {
        self.session_attribute(b"ice-options").and_then(|a| a.value)
    }

    /// Every line of the body.
    pub fn lines(&self) -> Lines<'a> {
        Lines::new(self.body, Span::new(0, self.body.len()))
    }

    /// Session-level `a=` lines.
    pub fn session_attributes(&self) -> Attributes<'a> {
        Attributes {
            lines: Lines::new(self.body, self.session),
        }
    }

    /// The first session-level attribute with this name.
    pub fn session_attribute(&self, name: &[u8]) -> Option<Attribute<'a>> {
        self.session_attributes().find(|a| a.name.text == name)
    }

    /// The media sections in order.
    pub fn media(&self) -> &[Media<'a>] {
        &self.media
    }

    /// The connection that applies to media `idx`: its own first `c=`, else
    /// the session `c=` (RFC 8866 §5.7).
    pub fn effective_connection(&self, idx: usize) -> Option<&Connection<'a>> {
        let m = self.media.get(idx)?;
        m.connection.as_ref().or(self.connection.as_ref())
    }

    /// The direction that applies to media `idx`: its own attribute, else
    /// the session one, else `sendrecv` (RFC 3264 §5.1).
    pub fn effective_direction(&self, idx: usize) -> Option<Direction> {
        let m = self.media.get(idx)?;
        Some(
            m.direction()
                .or(self.direction())
                .unwrap_or(Direction::SendRecv),
        )
    }

    fn media_at(&self, index: usize) -> Result<&Media<'a>, SdpError> {
        self.media.get(index).ok_or(SdpError::NoSuchMedia { index })
    }

    /// Rewrites the address of every `c=` line (session and media level) to
    /// `addr`, setting the addrtype to `IP4`/`IP6` to match and dropping any
    /// multicast `/ttl/count` suffix. Returns how many lines it rewrote.
    /// `a=rtcp` addresses are left to [`Sdp::set_rtcp`]. Do not combine with
    /// [`Sdp::set_media_connection_address`] on the same edits (overlap).
    pub fn set_connection_address(&self, edits: &mut Edits, addr: IpAddr) -> usize {
        self.rewrite_connections(edits, Span::new(0, self.body.len()), addr)
    }

    /// Like [`Sdp::set_connection_address`] for the `c=` lines of media
    /// `idx` only. Returns how many it rewrote (0 when the media relies on
    /// the session `c=`).
    pub fn set_media_connection_address(
        &self,
        edits: &mut Edits,
        idx: usize,
        addr: IpAddr,
    ) -> Result<usize, SdpError> {
        let m = self.media_at(idx)?;
        Ok(self.rewrite_connections(edits, m.section, addr))
    }

    fn rewrite_connections(&self, edits: &mut Edits, within: Span, addr: IpAddr) -> usize {
        let mut n = 0;
        for line in Lines::new(self.body, within).filter(|l| l.kind == b'c') {
            if let Some(c) = parse_connection(self.body, line.value.span, line.span) {
                let target = Span {
                    start: c.addrtype.span.start,
                    end: c.suffix.span.end,
                };
                let t = AddrType::for_ip(addr).as_str();
                edits.replace_fmt(self.abs(target), format_args!("{t} {addr}"));
                n += 1;
            }
        }
        n
    }

    /// Rewrites the `o=` unicast address (and addrtype). False without `o=`.
    pub fn set_origin_address(&self, edits: &mut Edits, addr: IpAddr) -> bool {
        let Some(o) = &self.origin else {
            return false;
        };
        let target = Span {
            start: o.addrtype.span.start,
            end: o.address.span.end,
        };
        let t = AddrType::for_ip(addr).as_str();
        edits.replace_fmt(self.abs(target), format_args!("{t} {addr}"));
        true
    }

    /// Rewrites the port of media `idx` (a `/count` suffix stays).
    pub fn set_media_port(&self, edits: &mut Edits, idx: usize, port: u16) -> Result<(), SdpError> {
        let m = self.media_at(idx)?;
        edits.replace_fmt(self.abs(m.port_field.span), format_args!("{port}"));
        Ok(())
    }

    /// Sets `a=rtcp:<port> [IN IP4|IP6 <addr>]` (RFC 3605) on media `idx`:
    /// replaces the value of an existing `a=rtcp`, else inserts the line
    /// after the `m=` line and its `i=`/`c=`/`b=`/`k=` lines (before the
    /// first `a=` line, keeping RFC 8866 §5 order).
    pub fn set_rtcp(
        &self,
        edits: &mut Edits,
        idx: usize,
        port: u16,
        addr: Option<IpAddr>,
    ) -> Result<(), SdpError> {
        let m = self.media_at(idx)?;
        let value = RtcpValue { port, addr };
        match &m.rtcp {
            Some(r) => edits.replace_fmt(self.abs(r.value.span), format_args!("{value}")),
            None => {
                let (at, pre, eol) = m.insertion();
                edits.insert_fmt(self.abs_at(at), format_args!("{pre}a=rtcp:{value}{eol}"));
            }
        }
        Ok(())
    }

    /// Sets the direction attribute of media `idx` (RFC 3264 §5.1): replaces
    /// the media-level one, else inserts it like [`Sdp::set_rtcp`] does. A
    /// session-level direction attribute is left alone (the media one wins).
    pub fn set_direction(
        &self,
        edits: &mut Edits,
        idx: usize,
        dir: Direction,
    ) -> Result<(), SdpError> {
        let m = self.media_at(idx)?;
        match m.direction {
            Some((_, f)) => edits.replace(self.abs(f.span), dir.as_str().as_bytes()),
            None => {
                let (at, pre, eol) = m.insertion();
                edits.insert_fmt(self.abs_at(at), format_args!("{pre}a={dir}{eol}"));
            }
        }
        Ok(())
    }

    /// Deletes every ICE line (RFC 8839: `a=candidate`, `a=ice-*`,
    /// `a=end-of-candidates`, `a=remote-candidates`), session and media
    /// level, whole lines with their terminators. Returns how many.
    pub fn remove_ice(&self, edits: &mut Edits) -> usize {
        let mut n = 0;
        for a in (Attributes {
            lines: self.lines(),
        }) {
            if is_ice_attribute(a.name.text) {
                edits.delete(self.abs(a.line));
                n += 1;
            }
        }
        n
    }

    /// The body length once `edits` are applied, counting only the edits
    /// recorded since `since` (take [`LenMark::of`] before recording the SDP
    /// edits, or use [`LenMark::EMPTY`] when `edits` holds only body edits).
    /// This is the new Content-Length.
    pub fn body_len_after(&self, edits: &Edits, since: LenMark) -> usize {
        let delta = edits.output_len(PROBE_LEN) as i128 - since.0 as i128;
        let len = (self.body.len() as i128 + delta).max(0);
        usize::try_from(len).unwrap_or(usize::MAX)
    }
}

/// Formats the value of `a=rtcp`.
struct RtcpValue {
    port: u16,
    addr: Option<IpAddr>,
}

impl fmt::Display for RtcpValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(a) => write!(f, "{} IN {} {a}", self.port, AddrType::for_ip(a).as_str()),
            None => write!(f, "{}", self.port),
        }
    }
}

/// Lines of a range of the body, blank lines skipped.
#[derive(Clone, Debug)]
pub struct Lines<'a> {
    body: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Lines<'a> {
    fn new(body: &'a [u8], range: Span) -> Lines<'a> {
        let end = (range.end as usize).min(body.len());
        Lines {
            body,
            pos: (range.start as usize).min(end),
            end,
        }
    }
}

/// One raw line: `(start, content_end, next)` where `content_end` excludes
/// the terminator and `next` is where the following line starts.
fn next_raw_line(body: &[u8], pos: usize, end: usize) -> (usize, usize) {
    let rest = body.get(pos..end).unwrap_or(&[]);
    let (content_end, next) = match memchr::memchr(b'\n', rest) {
        Some(i) => (pos + i, pos + i + 1),
        None => (end, end),
    };
    let content_end = if content_end > pos && body.get(content_end - 1) == Some(&b'\r') {
        content_end - 1
    } else {
        content_end
    };
    (content_end, next)
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        while self.pos < self.end {
            let start = self.pos;
            let (content_end, next) = next_raw_line(self.body, start, self.end);
            self.pos = next.max(start + 1);
            if content_end <= start {
                continue;
            }
            let kind = self.body.get(start).copied().unwrap_or(0);
            let vstart = (start + 2).min(content_end);
            return Some(Line {
                kind,
                value: Field::at(self.body, vstart, content_end),
                span: Span::new(start, next),
            });
        }
        None
    }
}

/// The `a=` lines of a range of the body.
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    lines: Lines<'a>,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        let body = self.lines.body;
        self.lines
            .by_ref()
            .find(|l| l.kind == b'a')
            .map(|l| split_attribute(body, l))
    }
}

fn split_attribute<'a>(body: &'a [u8], l: Line<'a>) -> Attribute<'a> {
    let (s, e) = (l.value.span.start as usize, l.value.span.end as usize);
    match memchr::memchr(b':', l.value.text) {
        Some(i) => Attribute {
            name: Field::at(body, s, s + i),
            value: Some(Field::at(body, s + i + 1, e)),
            line: l.span,
        },
        None => Attribute {
            name: l.value,
            value: None,
            line: l.span,
        },
    }
}

/// The formats of an `m=` line.
#[derive(Clone, Debug)]
pub struct Formats<'a> {
    words: Words<'a>,
}

impl<'a> Iterator for Formats<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let (s, e) = self.words.next()?;
        Some(Field::at(self.words.body, s, e))
    }
}

/// SP-separated words of a range (runs of SP count as one separator).
#[derive(Clone, Debug)]
struct Words<'a> {
    body: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Words<'a> {
    fn new(body: &'a [u8], start: usize, end: usize) -> Words<'a> {
        let end = end.min(body.len());
        Words {
            body,
            pos: start.min(end),
            end,
        }
    }

    fn byte(&self, i: usize) -> u8 {
        self.body.get(i).copied().unwrap_or(b' ')
    }
}

impl Iterator for Words<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        while self.pos < self.end && self.byte(self.pos) == b' ' {
            self.pos += 1;
        }
        if self.pos >= self.end {
            return None;
        }
        let start = self.pos;
        while self.pos < self.end && self.byte(self.pos) != b' ' {
            self.pos += 1;
        }
        Some((start, self.pos))
    }
}

/// A strict unsigned decimal: 1..=`max_digits` ASCII digits, nothing else.
fn dec(s: &[u8], max_digits: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_digits || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |v, &b| {
        v.checked_mul(10)?.checked_add(u32::from(b - b'0'))
    })
}

fn port(s: &[u8]) -> Option<u16> {
    dec(s, 5).and_then(|v| u16::try_from(v).ok())
}

fn parse_ip(t: AddrType, s: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(s).ok()?;
    match t {
        AddrType::Ip4 => s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        AddrType::Ip6 => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        AddrType::Other => None,
    }
}

/// Parses `<nettype> <addrtype> <address>[/ttl[/count]]` in `value`.
fn parse_connection(body: &[u8], value: Span, line: Span) -> Option<Connection<'_>> {
    let mut w = Words::new(body, value.start as usize, value.end as usize);
    let (ns, ne) = w.next()?;
    let (ts, te) = w.next()?;
    let (xs, xe) = w.next()?;
    if w.next().is_some() {
        return None;
    }
    let nettype = Field::at(body, ns, ne);
    let addrtype = Field::at(body, ts, te);
    if !scan::is_token_str(nettype.text) || !scan::is_token_str(addrtype.text) {
        return None;
    }
    let raw = body.get(xs..xe)?;
    let cut = memchr::memchr(b'/', raw).map_or(xe, |i| xs + i);
    if cut == xs {
        return None;
    }
    let suffix = Field::at(body, cut, xe);
    // `/ttl` and `/count` are decimals; at most two of them.
    if !suffix.is_empty() {
        let mut parts = 0;
        for p in suffix.text.get(1..).unwrap_or(&[]).split(|&b| b == b'/') {
            parts += 1;
            if parts > 2 || dec(p, 10).is_none() {
                return None;
            }
        }
    }
    let address = Field::at(body, xs, cut);
    let addr_type = AddrType::of(addrtype.text);
    Some(Connection {
        line,
        nettype,
        addrtype,
        addr_type,
        address,
        suffix,
        ip: parse_ip(addr_type, address.text),
    })
}

fn parse_origin<'a>(body: &'a [u8], l: &Line<'a>) -> Option<Origin<'a>> {
    let mut w = Words::new(body, l.value.span.start as usize, l.value.span.end as usize);
    let mut f = [Field::default(); 6];
    for slot in f.iter_mut() {
        let (s, e) = w.next()?;
        *slot = Field::at(body, s, e);
    }
    if w.next().is_some() {
        return None;
    }
    let [username, sess_id, sess_version, nettype, addrtype, address] = f;
    if !scan::is_token_str(nettype.text) || !scan::is_token_str(addrtype.text) {
        return None;
    }
    let addr_type = AddrType::of(addrtype.text);
    Some(Origin {
        line: l.span,
        username,
        sess_id,
        sess_version,
        nettype,
        addrtype,
        addr_type,
        address,
        ip: parse_ip(addr_type, address.text),
    })
}

fn parse_rtcp<'a>(body: &'a [u8], l: &Line<'a>, value: Field<'a>) -> Option<Rtcp<'a>> {
    let (vs, ve) = (value.span.start as usize, value.span.end as usize);
    let mut w = Words::new(body, vs, ve);
    let (ps, pe) = w.next()?;
    let port_field = Field::at(body, ps, pe);
    let port = port(port_field.text)?;
    let address = if w.next().is_some() {
        Some(parse_connection(body, Span::new(pe, ve), l.span)?)
    } else {
        None
    };
    Some(Rtcp {
        line: l.span,
        value,
        port,
        port_field,
        address,
    })
}

fn is_proto(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| scan::is_token(b) || b == b'/')
}

/// The media fields of an `m=` line, before its section is known.
fn parse_media<'a>(body: &'a [u8], l: &Line<'a>) -> Option<Media<'a>> {
    let (vs, ve) = (l.value.span.start as usize, l.value.span.end as usize);
    let mut w = Words::new(body, vs, ve);
    let (ms, me) = w.next()?;
    let (ps, pe) = w.next()?;
    let (ts, te) = w.next()?;
    let media = Field::at(body, ms, me);
    let proto = Field::at(body, ts, te);
    if !scan::is_token_str(media.text) || !is_proto(proto.text) {
        return None;
    }
    let raw_port = body.get(ps..pe)?;
    let (port_end, port_count) = match memchr::memchr(b'/', raw_port) {
        Some(i) => {
            let n = dec(raw_port.get(i + 1..)?, 5).and_then(|v| u16::try_from(v).ok())?;
            if n == 0 {
                return None;
            }
            (ps + i, Some(n))
        }
        None => (pe, None),
    };
    let port_field = Field::at(body, ps, port_end);
    let port = port(port_field.text)?;
    // The fmt list: from the first word after proto to the last word.
    let mut fmt_list = Field::at(body, te, te);
    if let Some((fs, mut fe)) = w.next() {
        for (_, e) in w.by_ref() {
            fe = e;
        }
        fmt_list = Field::at(body, fs, fe);
    }
    // The terminator style of this line, for lines inserted after it.
    let eol = match body.get(l.value.span.end as usize) {
        Some(b'\n') => "\n",
        _ => "\r\n",
    };
    Some(Media {
        body,
        line: l.span,
        section: l.span,
        media,
        port,
        port_field,
        port_count,
        proto,
        fmt: fmt_list,
        connection: None,
        rtcp: None,
        rtcp_mux: false,
        direction: None,
        has_ice: false,
        first_attr: None,
        eol,
        tail_prefix: "",
    })
}

struct Parser<'a> {
    body: &'a [u8],
    sdp: Sdp<'a>,
}

impl<'a> Parser<'a> {
    fn new(body: &'a [u8], base: u32) -> Parser<'a> {
        Parser {
            body,
            sdp: Sdp {
                body,
                base,
                session: Span::new(0, 0),
                origin: None,
                connection: None,
                direction: None,
                has_ice: false,
                media: SmallVec::new(),
            },
        }
    }

    fn run(mut self) -> Result<Sdp<'a>, SdpError> {
        let body = self.body;
        let len = body.len();
        let mut pos = 0usize;
        let mut line_no = 0u32;
        let mut blank: Option<u32> = None;
        // End of the last non-blank line, and what an inserted line placed
        // right after it must start with (non-empty only when the body's
        // last line has no LF).
        let mut last_end = 0usize;
        let mut last_tail = "";
        while pos < len {
            line_no = line_no.saturating_add(1);
            let start = pos;
            let (content_end, next) = next_raw_line(body, start, len);
            pos = next.max(start + 1);
            let content = body.get(start..content_end).unwrap_or(&[]);
            if line_no == 1 && !content.starts_with(b"v=") {
                return Err(SdpError::NoVersion);
            }
            if content.is_empty() {
                blank.get_or_insert(line_no);
                continue;
            }
            if let Some(b) = blank {
                return Err(SdpError::MissingEquals { line: b });
            }
            let kind = content.first().copied().unwrap_or(0);
            if content.get(1) != Some(&b'=') {
                return Err(SdpError::MissingEquals { line: line_no });
            }
            if !kind.is_ascii_lowercase() {
                return Err(SdpError::BadType { line: line_no });
            }
            let line = Line {
                kind,
                value: Field::at(body, start + 2, content_end),
                span: Span::new(start, pos),
            };
            self.line(line, line_no)?;
            last_end = pos;
            last_tail = if pos > 0 && body.get(pos - 1) == Some(&b'\n') {
                ""
            } else if pos > content_end {
                // `...\r` at the very end: only the LF is missing.
                "\n"
            } else {
                "\r\n"
            };
        }
        self.close_section(last_end, last_tail);
        Ok(self.sdp)
    }

    /// Ends the section being built (session or last media) at `end`.
    fn close_section(&mut self, end: usize, tail: &'static str) {
        match self.sdp.media.last_mut() {
            Some(m) => {
                m.section = Span::new(m.section.start as usize, end);
                m.tail_prefix = tail;
            }
            None => self.sdp.session = Span::new(0, end),
        }
    }

    fn line(&mut self, l: Line<'a>, line_no: u32) -> Result<(), SdpError> {
        let body = self.body;
        if line_no == 1 {
            if l.kind != b'v' {
                return Err(SdpError::NoVersion);
            }
            if l.value.text != b"0" {
                return Err(SdpError::BadVersion);
            }
            return Ok(());
        }
        let in_media = !self.sdp.media.is_empty();
        match l.kind {
            b'v' => Err(SdpError::Misplaced {
                what: "v= line",
                line: line_no,
            }),
            b'o' => {
                if in_media {
                    return Err(SdpError::Misplaced {
                        what: "o= line",
                        line: line_no,
                    });
                }
                if self.sdp.origin.is_some() {
                    return Err(SdpError::Duplicate {
                        what: "o= line",
                        line: line_no,
                    });
                }
                let o = parse_origin(body, &l).ok_or(SdpError::BadOrigin { line: line_no })?;
                self.sdp.origin = Some(o);
                Ok(())
            }
            b'c' => {
                let c = parse_connection(body, l.value.span, l.span)
                    .ok_or(SdpError::BadConnection { line: line_no })?;
                match self.sdp.media.last_mut() {
                    Some(m) => {
                        m.connection.get_or_insert(c);
                    }
                    None if self.sdp.connection.is_some() => {
                        return Err(SdpError::Duplicate {
                            what: "session c= line",
                            line: line_no,
                        })
                    }
                    None => self.sdp.connection = Some(c),
                }
                Ok(())
            }
            b'm' => {
                let m = parse_media(body, &l).ok_or(SdpError::BadMedia { line: line_no })?;
                // The previous section ends where this line starts.
                self.close_section(l.span.start as usize, "");
                self.sdp.media.push(m);
                Ok(())
            }
            b'a' => self.attribute(l, line_no),
            _ => Ok(()),
        }
    }

    fn attribute(&mut self, l: Line<'a>, line_no: u32) -> Result<(), SdpError> {
        let body = self.body;
        let a = split_attribute(body, l);
        if !scan::is_token_str(a.name.text) {
            return Err(SdpError::BadAttribute { line: line_no });
        }
        let dir = match a.value {
            None => Direction::from_name(a.name.text),
            Some(_) => None,
        };
        let ice = is_ice_attribute(a.name.text);
        let Some(m) = self.sdp.media.last_mut() else {
            if let Some(d) = dir {
                if self.sdp.direction.is_some() {
                    return Err(SdpError::Duplicate {
                        what: "direction attribute",
                        line: line_no,
                    });
                }
                self.sdp.direction = Some((d, a.name));
            }
            self.sdp.has_ice |= ice;
            return Ok(());
        };
        m.first_attr.get_or_insert(l.span.start);
        m.has_ice |= ice;
        if let Some(d) = dir {
            if m.direction.is_some() {
                return Err(SdpError::Duplicate {
                    what: "direction attribute",
                    line: line_no,
                });
            }
            m.direction = Some((d, a.name));
        }
        match a.name.text {
            b"rtcp" => {
                if m.rtcp.is_some() {
                    return Err(SdpError::Duplicate {
                        what: "a=rtcp",
                        line: line_no,
                    });
                }
                let v = a.value.ok_or(SdpError::BadRtcp { line: line_no })?;
                m.rtcp = Some(parse_rtcp(body, &l, v).ok_or(SdpError::BadRtcp { line: line_no })?);
            }
            b"rtcp-mux" => m.rtcp_mux = true,
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::HeaderName;
    use crate::message::Message;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// An SDP body from lines, each terminated by CRLF.
    fn body(lines: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for l in lines {
            v.extend_from_slice(l.as_bytes());
            v.extend_from_slice(b"\r\n");
        }
        v
    }

    fn apply(b: &[u8], f: impl FnOnce(&mut Edits)) -> Vec<u8> {
        let mut e = Edits::new();
        f(&mut e);
        let mut out = Vec::new();
        e.apply(b, &mut out).expect("edits apply");
        out
    }

    fn s(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap_or("<non-utf8>")
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn fmts(m: &Media<'_>) -> Vec<String> {
        m.formats().map(|f| s(f.text).to_owned()).collect()
    }

    /// (body, username, sess-id, origin address, c= ip, port)
    type OriginCase = (
        &'static [&'static str],
        &'static str,
        &'static str,
        &'static str,
        IpAddr,
        u16,
    );
    /// (m= value, type, port, count, proto, formats)
    type MediaCase = (
        &'static str,
        &'static str,
        u16,
        Option<u16>,
        &'static str,
        &'static [&'static str],
    );
    /// (session attrs, media attrs, media direction, effective direction)
    type DirCase = (
        &'static [&'static str],
        &'static [&'static str],
        Option<Direction>,
        Direction,
    );

    // RFC 3665 §3.1 F1 (INVITE) and F3 (200 OK) bodies.
    const RFC3665_F1: &[&str] = &[
        "v=0",
        "o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com",
        "s=-",
        "c=IN IP4 192.0.2.101",
        "t=0 0",
        "m=audio 49172 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
    ];
    const RFC3665_F3: &[&str] = &[
        "v=0",
        "o=bob 2890844527 2890844527 IN IP4 client.biloxi.example.com",
        "s=-",
        "c=IN IP4 192.0.2.201",
        "t=0 0",
        "m=audio 3456 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
    ];

    #[test]
    fn rfc3665_3_1_bodies_origin_and_connection_rfc8866_5_2_5_7() {
        let table: &[OriginCase] = &[
            (
                RFC3665_F1,
                "alice",
                "2890844526",
                "client.atlanta.example.com",
                v4(192, 0, 2, 101),
                49172,
            ),
            (
                RFC3665_F3,
                "bob",
                "2890844527",
                "client.biloxi.example.com",
                v4(192, 0, 2, 201),
                3456,
            ),
        ];
        for &(lines, user, id, oaddr, ip, port) in table {
            let b = body(lines);
            assert_eq!(
                b.len(),
                if user == "alice" { 151 } else { 147 },
                "RFC 3665 Content-Length"
            );
            let sdp = Sdp::parse(&b).expect(user);
            let o = sdp.origin().expect("o=");
            assert_eq!(o.username.text, user.as_bytes());
            assert_eq!(o.username.span.get(&b), user.as_bytes());
            assert_eq!(o.sess_id.text, id.as_bytes());
            assert_eq!(o.sess_version.text, id.as_bytes());
            assert_eq!(o.nettype.text, b"IN");
            assert_eq!(o.addr_type, AddrType::Ip4);
            assert_eq!(o.address.text, oaddr.as_bytes());
            assert_eq!(o.ip, None, "a name, not an address");
            let c = sdp.connection().expect("c=");
            assert_eq!(c.ip, Some(ip));
            assert_eq!(c.address.span.get(&b), ip.to_string().as_bytes());
            assert!(c.suffix.is_empty());
            assert_eq!(sdp.media().len(), 1);
            let m = &sdp.media()[0];
            assert_eq!(m.media_type().text, b"audio");
            assert_eq!((m.port(), m.port_count()), (port, None));
            assert_eq!(m.port_field().span.get(&b), port.to_string().as_bytes());
            assert_eq!(m.proto().text, b"RTP/AVP");
            assert_eq!(fmts(m), ["0"]);
            assert_eq!(sdp.effective_connection(0).and_then(|c| c.ip), Some(ip));
            assert_eq!(sdp.effective_direction(0), Some(Direction::SendRecv));
            let attrs: Vec<_> = m.attributes().collect();
            assert_eq!(attrs.len(), 1);
            assert_eq!(attrs[0].name.text, b"rtpmap");
            assert_eq!(attrs[0].value.map(|v| v.text), Some(&b"0 PCMU/8000"[..]));
            assert_eq!(m.section(), Span::new(m.line().start as usize, b.len()));
            assert!(!sdp.uses_ice());
        }
    }

    /// One expected media section: type, port, proto, formats, effective
    /// direction, effective connection address text.
    type MediaExp = (
        &'static str,
        u16,
        &'static str,
        &'static [&'static str],
        Direction,
        &'static str,
    );

    #[test]
    fn rfc4317_offer_answer_examples_rfc8866_5_14_rfc3264_5_1() {
        use Direction::*;
        let table: &[(&str, &[&str], &[MediaExp])] = &[
            (
                "RFC 4317 §2.1 offer",
                &[
                    "v=0",
                    "o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com",
                    "s= ",
                    "c=IN IP4 host.atlanta.example.com",
                    "t=0 0",
                    "m=audio 49170 RTP/AVP 0 8 97",
                    "a=rtpmap:0 PCMU/8000",
                    "a=rtpmap:8 PCMA/8000",
                    "a=rtpmap:97 iLBC/8000",
                    "m=video 51372 RTP/AVP 31 32",
                    "a=rtpmap:31 H261/90000",
                    "a=rtpmap:32 MPV/90000",
                ],
                &[
                    (
                        "audio",
                        49170,
                        "RTP/AVP",
                        &["0", "8", "97"],
                        SendRecv,
                        "host.atlanta.example.com",
                    ),
                    (
                        "video",
                        51372,
                        "RTP/AVP",
                        &["31", "32"],
                        SendRecv,
                        "host.atlanta.example.com",
                    ),
                ],
            ),
            (
                "RFC 4317 §2.2 answer (video declined, port 0)",
                &[
                    "v=0",
                    "o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com",
                    "s= ",
                    "c=IN IP4 host.biloxi.example.com",
                    "t=0 0",
                    "m=audio 49172 RTP/AVP 0 8",
                    "a=rtpmap:0 PCMU/8000",
                    "a=rtpmap:8 PCMA/8000",
                    "m=video 0 RTP/AVP 31",
                    "a=rtpmap:31 H261/90000",
                ],
                &[
                    (
                        "audio",
                        49172,
                        "RTP/AVP",
                        &["0", "8"],
                        SendRecv,
                        "host.biloxi.example.com",
                    ),
                    (
                        "video",
                        0,
                        "RTP/AVP",
                        &["31"],
                        SendRecv,
                        "host.biloxi.example.com",
                    ),
                ],
            ),
            (
                "RFC 4317 §2.4 two audio streams, answer",
                &[
                    "v=0",
                    "o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com",
                    "s= ",
                    "c=IN IP4 host.biloxi.example.com",
                    "t=0 0",
                    "m=audio 49172 RTP/AVP 97",
                    "a=rtpmap:97 iLBC/8000",
                    "m=audio 49174 RTP/AVP 98",
                    "a=rtpmap:98 telephone-event/8000",
                    "a=recvonly",
                ],
                &[
                    (
                        "audio",
                        49172,
                        "RTP/AVP",
                        &["97"],
                        SendRecv,
                        "host.biloxi.example.com",
                    ),
                    (
                        "audio",
                        49174,
                        "RTP/AVP",
                        &["98"],
                        RecvOnly,
                        "host.biloxi.example.com",
                    ),
                ],
            ),
            (
                "RFC 4317 §2.6 answer (first stream rejected)",
                &[
                    "v=0",
                    "o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com",
                    "s= ",
                    "c=IN IP4 host.biloxi.example.com",
                    "t=0 0",
                    "m=audio 0 RTP/AVP 0",
                    "a=rtpmap:0 PCMU/8000",
                    "m=audio 49170 RTP/AVP 97 101",
                    "a=rtpmap:97 iLBC/8000",
                    "a=rtpmap:101 telephone-event/8000",
                ],
                &[
                    (
                        "audio",
                        0,
                        "RTP/AVP",
                        &["0"],
                        SendRecv,
                        "host.biloxi.example.com",
                    ),
                    (
                        "audio",
                        49170,
                        "RTP/AVP",
                        &["97", "101"],
                        SendRecv,
                        "host.biloxi.example.com",
                    ),
                ],
            ),
            (
                "RFC 4317 §2.8 answer (video to another host: media c=)",
                &[
                    "v=0",
                    "o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com",
                    "s= ",
                    "c=IN IP4 host.biloxi.example.com",
                    "t=0 0",
                    "m=audio 49174 RTP/AVP 0",
                    "a=rtpmap:0 PCMU/8000",
                    "m=video 49172 RTP/AVP 32",
                    "c=IN IP4 otherhost.biloxi.example.com",
                    "a=rtpmap:32 MPV/90000",
                ],
                &[
                    (
                        "audio",
                        49174,
                        "RTP/AVP",
                        &["0"],
                        SendRecv,
                        "host.biloxi.example.com",
                    ),
                    (
                        "video",
                        49172,
                        "RTP/AVP",
                        &["32"],
                        SendRecv,
                        "otherhost.biloxi.example.com",
                    ),
                ],
            ),
            (
                "RFC 4317 §3.1 answer (hold: sendonly)",
                &[
                    "v=0",
                    "o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com",
                    "s= ",
                    "c=IN IP4 placeholder.biloxi.example.com",
                    "t=0 0",
                    "m=audio 49172 RTP/AVP 97",
                    "a=rtpmap:97 iLBC/8000",
                    "a=sendonly",
                ],
                &[(
                    "audio",
                    49172,
                    "RTP/AVP",
                    &["97"],
                    SendOnly,
                    "placeholder.biloxi.example.com",
                )],
            ),
            (
                "RFC 4317 §4.1 second offer (media server c=, recvonly)",
                &[
                    "v=0",
                    "o=bob 2808844564 2808844565 IN IP4 host.biloxi.example.com",
                    "s= ",
                    "c=IN IP4 host.biloxi.example.com",
                    "t=0 0",
                    "m=audio 49170 RTP/AVP 97",
                    "a=rtpmap:97 iLBC/8000",
                    "m=audio 48282 RTP/AVP 98",
                    "c=IN IP4 mediaserver.biloxi.example.com",
                    "a=rtpmap:98 telephone-event/8000",
                    "a=recvonly",
                ],
                &[
                    (
                        "audio",
                        49170,
                        "RTP/AVP",
                        &["97"],
                        SendRecv,
                        "host.biloxi.example.com",
                    ),
                    (
                        "audio",
                        48282,
                        "RTP/AVP",
                        &["98"],
                        RecvOnly,
                        "mediaserver.biloxi.example.com",
                    ),
                ],
            ),
        ];
        for &(name, lines, exp) in table {
            let b = body(lines);
            let sdp = Sdp::parse(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(sdp.media().len(), exp.len(), "{name}");
            assert!(sdp.origin().is_some(), "{name}");
            for (i, &(ty, port, proto, f, dir, conn)) in exp.iter().enumerate() {
                let m = &sdp.media()[i];
                assert_eq!(s(m.media_type().text), ty, "{name} #{i}");
                assert_eq!(m.port(), port, "{name} #{i}");
                assert_eq!(m.is_rejected(), port == 0, "{name} #{i} (RFC 3264 §6)");
                assert_eq!(s(m.proto().text), proto, "{name} #{i}");
                assert_eq!(fmts(m), f, "{name} #{i}");
                assert_eq!(sdp.effective_direction(i), Some(dir), "{name} #{i}");
                let c = sdp.effective_connection(i).expect("connection");
                assert_eq!(s(c.address.text), conn, "{name} #{i}");
                assert_eq!(c.ip, None, "{name}: names are not addresses");
                // The sections tile the body after the session part.
                let end = sdp
                    .media()
                    .get(i + 1)
                    .map_or(b.len(), |n| n.section().start as usize);
                assert_eq!(m.section().end as usize, end, "{name} #{i}");
            }
            assert_eq!(
                sdp.session_section().end,
                sdp.media()[0].section().start,
                "{name}"
            );
            // `s= ` (a single space, RFC 4317 §1) is carried as is.
            let sline = sdp.lines().find(|l| l.kind == b's').expect("s=");
            assert_eq!(sline.value.text, b" ", "{name}");
        }
    }

    #[test]
    fn rfc4475_torture_bodies() {
        // (name, file, header blocks before the body, expected).
        type Exp = Result<(&'static str, usize), SdpError>;
        let two = |c| -> Exp { Ok((c, 2)) };
        let table: &[(&str, &[u8], usize, Exp)] = &[
            (
                "sdp01",
                include_bytes!("../../testdata/rfc4475/sdp01.dat"),
                1,
                two("192.0.2.5"),
            ),
            (
                "wsinv",
                include_bytes!("../../testdata/rfc4475/wsinv.dat"),
                1,
                two("192.0.2.4"),
            ),
            (
                "baddate",
                include_bytes!("../../testdata/rfc4475/baddate.dat"),
                1,
                two("192.0.2.5"),
            ),
            (
                "badinv01",
                include_bytes!("../../testdata/rfc4475/badinv01.dat"),
                1,
                two("192.0.2.15"),
            ),
            (
                "bcast",
                include_bytes!("../../testdata/rfc4475/bcast.dat"),
                1,
                two("192.0.2.198"),
            ),
            (
                "clerr",
                include_bytes!("../../testdata/rfc4475/clerr.dat"),
                1,
                two("192.0.2.155"),
            ),
            (
                "esc01",
                include_bytes!("../../testdata/rfc4475/esc01.dat"),
                1,
                two("192.0.2.1"),
            ),
            (
                "escruri",
                include_bytes!("../../testdata/rfc4475/escruri.dat"),
                1,
                two("192.0.2.1"),
            ),
            (
                "insuf",
                include_bytes!("../../testdata/rfc4475/insuf.dat"),
                1,
                two("192.0.2.95"),
            ),
            (
                "inv2543",
                include_bytes!("../../testdata/rfc4475/inv2543.dat"),
                1,
                Ok(("192.0.2.5", 1)),
            ),
            (
                "longreq",
                include_bytes!("../../testdata/rfc4475/longreq.dat"),
                1,
                two("192.0.2.1"),
            ),
            (
                "ltgtruri",
                include_bytes!("../../testdata/rfc4475/ltgtruri.dat"),
                1,
                two("192.0.2.5"),
            ),
            (
                "lwsruri",
                include_bytes!("../../testdata/rfc4475/lwsruri.dat"),
                1,
                two("192.0.2.1"),
            ),
            (
                "lwsstart",
                include_bytes!("../../testdata/rfc4475/lwsstart.dat"),
                1,
                two("192.0.2.1"),
            ),
            // No s= or t=: tolerated, the relay needs neither.
            (
                "mismatch02",
                include_bytes!("../../testdata/rfc4475/mismatch02.dat"),
                1,
                two("192.0.2.1"),
            ),
            // A trailing blank line counted in Content-Length.
            (
                "multi01",
                include_bytes!("../../testdata/rfc4475/multi01.dat"),
                1,
                two("192.0.2.25"),
            ),
            (
                "ncl",
                include_bytes!("../../testdata/rfc4475/ncl.dat"),
                1,
                two("192.0.2.53"),
            ),
            (
                "quotbal",
                include_bytes!("../../testdata/rfc4475/quotbal.dat"),
                1,
                two("192.0.2.15"),
            ),
            (
                "unreason",
                include_bytes!("../../testdata/rfc4475/unreason.dat"),
                1,
                two("192.0.2.198"),
            ),
            // The INVITE after the REGISTER: `m =video` has no `=` at position 1.
            (
                "dblreq",
                include_bytes!("../../testdata/rfc4475/dblreq.dat"),
                2,
                Err(SdpError::MissingEquals { line: 7 }),
            ),
            // `testing=123`: no `=` at position 1.
            (
                "test",
                include_bytes!("../../testdata/rfc4475/test.dat"),
                1,
                Err(SdpError::MissingEquals { line: 2 }),
            ),
            // A multipart body is not SDP.
            (
                "mpart01",
                include_bytes!("../../testdata/rfc4475/mpart01.dat"),
                1,
                Err(SdpError::NoVersion),
            ),
        ];
        for &(name, file, blocks, exp) in table {
            let mut rest = file;
            for _ in 0..blocks {
                let i = memchr::memmem::find(rest, b"\r\n\r\n").expect(name);
                rest = &rest[i + 4..];
            }
            let base = (file.len() - rest.len()) as u32;
            let got = Sdp::parse_at(rest, base);
            match (got, exp) {
                (Ok(sdp), Ok((conn, media))) => {
                    let c = sdp.connection().expect(name);
                    assert_eq!(
                        c.ip.map(|ip| ip.to_string()).as_deref(),
                        Some(conn),
                        "{name}"
                    );
                    assert_eq!(sdp.media().len(), media, "{name}");
                    let a = &sdp.media()[0];
                    assert_eq!(
                        (a.media_type().text, a.port()),
                        (&b"audio"[..], 49217),
                        "{name}"
                    );
                    if media == 2 {
                        let v = &sdp.media()[1];
                        assert_eq!(
                            (v.media_type().text, v.port()),
                            (&b"video"[..], 3227),
                            "{name}"
                        );
                        assert_eq!(fmts(a), ["0", "12"], "{name}");
                        assert_eq!(fmts(v), ["31"], "{name}");
                        let rtpmap = v.attribute(b"rtpmap").expect(name);
                        assert_eq!(rtpmap.value.map(|f| f.text), Some(&b"31 LPC"[..]));
                        // Absolute spans land on the same bytes of the file.
                        assert_eq!(sdp.abs(v.port_field().span).get(file), b"3227", "{name}");
                    }
                    assert_eq!(sdp.base(), base);
                }
                (got, exp) => assert_eq!(got.map(|_| ()), exp.map(|_| ()), "{name}"),
            }
        }
    }

    #[test]
    fn connection_lines_rfc8866_5_7() {
        // (c= value, address, suffix, ip)
        let v6 = |s: &str| s.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
        let table: &[(&str, &str, &str, Option<IpAddr>)] = &[
            ("IN IP4 192.0.2.1", "192.0.2.1", "", Some(v4(192, 0, 2, 1))),
            ("IN IP6 2001:db8::1", "2001:db8::1", "", v6("2001:db8::1")),
            (
                "IN IP6 ::ffff:192.0.2.1",
                "::ffff:192.0.2.1",
                "",
                v6("::ffff:192.0.2.1"),
            ),
            // Multicast TTL and address count (§5.7).
            (
                "IN IP4 233.252.0.1/127",
                "233.252.0.1",
                "/127",
                Some(v4(233, 252, 0, 1)),
            ),
            (
                "IN IP4 233.252.0.1/127/3",
                "233.252.0.1",
                "/127/3",
                Some(v4(233, 252, 0, 1)),
            ),
            (
                "IN IP6 ff00::db8:0:101/3",
                "ff00::db8:0:101",
                "/3",
                v6("ff00::db8:0:101"),
            ),
            ("IN IP4 host.example.com", "host.example.com", "", None),
            // Family mismatch: not an address of the declared type.
            ("IN IP4 2001:db8::1", "2001:db8::1", "", None),
            ("IN IP6 192.0.2.1", "192.0.2.1", "", None),
            (
                "IN  IP4  192.0.2.1",
                "192.0.2.1",
                "",
                Some(v4(192, 0, 2, 1)),
            ),
        ];
        for &(value, addr, suffix, ip) in table {
            let b = body(&["v=0", &format!("c={value}"), "m=audio 1 RTP/AVP 0"]);
            let sdp = Sdp::parse(&b).unwrap_or_else(|e| panic!("{value}: {e}"));
            let c = sdp.connection().expect(value);
            assert_eq!(s(c.address.text), addr, "{value}");
            assert_eq!(s(c.suffix.text), suffix, "{value}");
            assert_eq!(c.ip, ip, "{value}");
            assert_eq!(c.nettype.text, b"IN", "{value}");
            assert_eq!(c.line.get(&b), format!("c={value}\r\n").as_bytes());
            assert_eq!(sdp.effective_connection(0), Some(c));
        }
        for bad in [
            "IN IP4",
            "IN IP4 192.0.2.1 x",
            "IN IP4 /127",
            "IN IP4 233.252.0.1/x",
            "IN IP4 233.252.0.1/1/2/3",
            "IN IP4 233.252.0.1/",
            "I@ IP4 192.0.2.1",
            "",
        ] {
            let b = body(&["v=0", &format!("c={bad}")]);
            assert_eq!(
                Sdp::parse(&b).err(),
                Some(SdpError::BadConnection { line: 2 }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn malformed_bodies_are_typed_errors_rfc8866_5() {
        use SdpError::*;
        let table: &[(&str, &[u8], SdpError)] = &[
            ("empty", b"", Empty),
            (
                "not v= first (§5.1)",
                b"o=a 1 1 IN IP4 h\r\nv=0\r\n",
                NoVersion,
            ),
            ("blank first line", b"\r\nv=0\r\n", NoVersion),
            ("version 1", b"v=1\r\n", BadVersion),
            ("version with space", b"v= 0\r\n", BadVersion),
            ("uppercase type", b"V=0\r\n", NoVersion),
            (
                "no = at position 1",
                b"v=0\r\ns -\r\n",
                MissingEquals { line: 2 },
            ),
            ("long type", b"v=0\r\nxx=1\r\n", MissingEquals { line: 2 }),
            (
                "single letter line",
                b"v=0\r\ns\r\n",
                MissingEquals { line: 2 },
            ),
            ("uppercase later", b"v=0\r\nS=x\r\n", BadType { line: 2 }),
            ("digit type", b"v=0\r\n1=x\r\n", BadType { line: 2 }),
            (
                "blank line in the middle",
                b"v=0\r\n\r\ns=-\r\n",
                MissingEquals { line: 2 },
            ),
            (
                "second v=",
                b"v=0\r\nv=0\r\n",
                Misplaced {
                    what: "v= line",
                    line: 2,
                },
            ),
            (
                "o= in media",
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\no=a 1 1 IN IP4 h\r\n",
                Misplaced {
                    what: "o= line",
                    line: 3,
                },
            ),
            (
                "second o=",
                b"v=0\r\no=a 1 1 IN IP4 h\r\no=a 1 1 IN IP4 h\r\n",
                Duplicate {
                    what: "o= line",
                    line: 3,
                },
            ),
            (
                "o= with 5 fields (§5.2)",
                b"v=0\r\no=a 1 1 IN IP4\r\n",
                BadOrigin { line: 2 },
            ),
            (
                "o= with 7 fields",
                b"v=0\r\no=a 1 1 IN IP4 h x\r\n",
                BadOrigin { line: 2 },
            ),
            (
                "second session c=",
                b"v=0\r\nc=IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.2\r\n",
                Duplicate {
                    what: "session c= line",
                    line: 3,
                },
            ),
            (
                "m= without proto (§5.14)",
                b"v=0\r\nm=audio 1\r\n",
                BadMedia { line: 2 },
            ),
            (
                "m= port too big",
                b"v=0\r\nm=audio 65536 RTP/AVP 0\r\n",
                BadMedia { line: 2 },
            ),
            (
                "m= port not a number",
                b"v=0\r\nm=audio x RTP/AVP 0\r\n",
                BadMedia { line: 2 },
            ),
            (
                "m= negative port",
                b"v=0\r\nm=audio -1 RTP/AVP 0\r\n",
                BadMedia { line: 2 },
            ),
            (
                "m= zero port count",
                b"v=0\r\nm=audio 1/0 RTP/AVP 0\r\n",
                BadMedia { line: 2 },
            ),
            (
                "m= empty port count",
                b"v=0\r\nm=audio 1/ RTP/AVP 0\r\n",
                BadMedia { line: 2 },
            ),
            (
                "m= bad media token",
                b"v=0\r\nm=a(b 1 RTP/AVP 0\r\n",
                BadMedia { line: 2 },
            ),
            (
                "a= without name (§5.13)",
                b"v=0\r\na=:x\r\n",
                BadAttribute { line: 2 },
            ),
            ("a= empty", b"v=0\r\na=\r\n", BadAttribute { line: 2 }),
            (
                "a=rtcp without value (RFC 3605)",
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtcp\r\n",
                BadRtcp { line: 3 },
            ),
            (
                "a=rtcp bad port",
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:x\r\n",
                BadRtcp { line: 3 },
            ),
            (
                "a=rtcp bad address",
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:9 IN IP4\r\n",
                BadRtcp { line: 3 },
            ),
            (
                "second a=rtcp",
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:9\r\na=rtcp:9\r\n",
                Duplicate {
                    what: "a=rtcp",
                    line: 4,
                },
            ),
            (
                "two directions in a media (RFC 3264 §5.1)",
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\na=recvonly\r\n",
                Duplicate {
                    what: "direction attribute",
                    line: 4,
                },
            ),
            (
                "two session directions",
                b"v=0\r\na=inactive\r\na=sendrecv\r\n",
                Duplicate {
                    what: "direction attribute",
                    line: 3,
                },
            ),
        ];
        for &(name, b, err) in table {
            assert_eq!(Sdp::parse(b).err(), Some(err), "{name}");
            assert!(!err.to_string().is_empty());
        }
        assert_eq!(
            Sdp::parse_at(b"v=0\r\n", u32::MAX - 2).err(),
            Some(TooLarge)
        );
        assert!(Sdp::parse_at(b"v=0\r\n", u32::MAX - 5).is_ok());
        assert_eq!(
            NoSuchMedia { index: 3 }.to_string(),
            "no SDP media section 3"
        );
        assert_eq!(
            MissingEquals { line: 7 }.to_string(),
            "SDP line 7: no '=' after the type letter"
        );
    }

    #[test]
    fn line_endings_lf_and_unterminated_rfc8866_5() {
        for b in [
            &b"v=0\ns=-\nc=IN IP4 192.0.2.1\nm=audio 4000 RTP/AVP 0\na=sendonly\n"[..],
            b"v=0\r\ns=-\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\na=sendonly",
            b"v=0\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n\r\n\n",
            b"v=0\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r",
        ] {
            let sdp = Sdp::parse(b).unwrap_or_else(|e| panic!("{:?}: {e}", s(b)));
            assert_eq!(sdp.connection().and_then(|c| c.ip), Some(v4(192, 0, 2, 1)));
            let m = &sdp.media()[0];
            assert_eq!(m.port(), 4000);
            assert_eq!(fmts(m), ["0"]);
            assert_eq!(m.direction(), Some(Direction::SendOnly));
            let last = m.lines().last().expect("a line");
            assert_eq!(last.value.text, b"sendonly");
            assert_eq!(last.span.end, m.section().end);
        }
    }

    #[test]
    fn media_lines_ports_and_protos_rfc8866_5_14() {
        let table: &[MediaCase] = &[
            (
                "video 49170/2 RTP/AVP 31",
                "video",
                49170,
                Some(2),
                "RTP/AVP",
                &["31"],
            ),
            (
                "audio 49170 RTP/SAVP 0",
                "audio",
                49170,
                None,
                "RTP/SAVP",
                &["0"],
            ),
            (
                "audio 9 UDP/TLS/RTP/SAVPF 111 0 8",
                "audio",
                9,
                None,
                "UDP/TLS/RTP/SAVPF",
                &["111", "0", "8"],
            ),
            (
                "application 9 UDP/DTLS/SCTP webrtc-datachannel",
                "application",
                9,
                None,
                "UDP/DTLS/SCTP",
                &["webrtc-datachannel"],
            ),
            ("audio 0 RTP/AVP 0", "audio", 0, None, "RTP/AVP", &["0"]),
            ("audio 65535 RTP/AVP", "audio", 65535, None, "RTP/AVP", &[]),
            (
                "audio  5004  RTP/AVP  0  8 ",
                "audio",
                5004,
                None,
                "RTP/AVP",
                &["0", "8"],
            ),
        ];
        for &(value, ty, port, count, proto, f) in table {
            let b = body(&["v=0", "c=IN IP4 192.0.2.1", &format!("m={value}")]);
            let sdp = Sdp::parse(&b).unwrap_or_else(|e| panic!("{value}: {e}"));
            let m = &sdp.media()[0];
            assert_eq!(s(m.media_type().text), ty, "{value}");
            assert_eq!((m.port(), m.port_count()), (port, count), "{value}");
            assert_eq!(
                m.port_field().span.get(&b),
                port.to_string().as_bytes(),
                "{value}"
            );
            assert_eq!(s(m.proto().text), proto, "{value}");
            assert_eq!(fmts(m), f, "{value}");
            for ff in m.formats() {
                assert_eq!(ff.span.get(&b), ff.text);
            }
        }
    }

    #[test]
    fn rtcp_attribute_rfc3605_2_1() {
        let v6 = "2001:2345:6789:abcd:ef01:2345:6789:abcd"
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6);
        // (a=rtcp value, port, address text, ip)
        let table: &[(&str, u16, Option<&str>, Option<IpAddr>)] = &[
            ("53020", 53020, None, None),
            (
                "53020 IN IP4 126.16.64.4",
                53020,
                Some("126.16.64.4"),
                Some(v4(126, 16, 64, 4)),
            ),
            (
                "53020 IN IP6 2001:2345:6789:ABCD:EF01:2345:6789:ABCD",
                53020,
                Some("2001:2345:6789:ABCD:EF01:2345:6789:ABCD"),
                v6,
            ),
            (
                "9 IN IP4 host.example.com",
                9,
                Some("host.example.com"),
                None,
            ),
        ];
        for &(value, port, addr, ip) in table {
            let b = body(&[
                "v=0",
                "c=IN IP4 192.0.2.1",
                "m=audio 53018 RTP/AVP 0",
                &format!("a=rtcp:{value}"),
            ]);
            let sdp = Sdp::parse(&b).unwrap_or_else(|e| panic!("{value}: {e}"));
            let r = sdp.media()[0].rtcp().expect(value);
            assert_eq!(r.port, port, "{value}");
            assert_eq!(r.port_field.span.get(&b), port.to_string().as_bytes());
            assert_eq!(s(r.value.text), value);
            assert_eq!(r.address.map(|a| s(a.address.text)), addr, "{value}");
            assert_eq!(r.address.and_then(|a| a.ip), ip, "{value}");
            assert_eq!(r.line.get(&b), format!("a=rtcp:{value}\r\n").as_bytes());
        }
    }

    #[test]
    fn rtcp_mux_rfc5761_5_1_1_and_ice_presence_rfc8839_5() {
        let b = body(&[
            "v=0",
            "o=- 1 1 IN IP6 2001:db8::1",
            "s=-",
            "c=IN IP6 2001:db8::1",
            "t=0 0",
            "a=ice-lite",
            "a=ice-options:trickle",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=ice-ufrag:F7gI",
            "a=ice-pwd:x9cml/YzichV2+XlhiMu8g",
            "a=candidate:1 1 UDP 2113667327 2001:db8::1 54400 typ host",
            "a=candidate:2 1 UDP 1694302207 203.0.113.7 54402 typ srflx raddr 0.0.0.0 rport 0",
            "a=end-of-candidates",
            "a=rtcp-mux",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "a=rtpmap:96 VP8/90000",
        ]);
        let sdp = Sdp::parse(&b).expect("parse");
        assert_eq!(sdp.origin().and_then(|o| o.ip), "2001:db8::1".parse().ok());
        assert_eq!(sdp.connection().map(|c| c.addr_type), Some(AddrType::Ip6));
        assert!(sdp.has_ice() && sdp.ice_lite() && sdp.uses_ice());
        assert_eq!(sdp.ice_options().map(|f| f.text), Some(&b"trickle"[..]));
        assert_eq!(sdp.ice_ufrag(), None);
        let (a, v) = (&sdp.media()[0], &sdp.media()[1]);
        assert!(a.rtcp_mux() && !v.rtcp_mux());
        assert!(a.has_ice() && !v.has_ice());
        assert_eq!(a.ice_ufrag().map(|f| f.text), Some(&b"F7gI"[..]));
        assert_eq!(
            a.ice_pwd().map(|f| f.text),
            Some(&b"x9cml/YzichV2+XlhiMu8g"[..])
        );
        assert_eq!(a.ice_options(), None);
        assert!(a.end_of_candidates() && !v.end_of_candidates());
        let c: Vec<_> = a.candidates().collect();
        assert_eq!(c.len(), 2);
        assert!(c[0].line.get(&b).starts_with(b"a=candidate:1 1 UDP"));
        assert!(c[1].line.get(&b).ends_with(b"rport 0\r\n"));
        assert_eq!(v.candidates().count(), 0);
    }

    #[test]
    fn direction_inheritance_rfc3264_5_1() {
        use Direction::*;
        let table: &[DirCase] = &[
            (&[], &[], None, SendRecv),
            (&["a=sendonly"], &[], None, SendOnly),
            (&["a=sendonly"], &["a=recvonly"], Some(RecvOnly), RecvOnly),
            (&[], &["a=inactive"], Some(Inactive), Inactive),
            (&[], &["a=sendrecv"], Some(SendRecv), SendRecv),
            // A value makes it some other attribute.
            (&[], &["a=sendonly:x"], None, SendRecv),
            // Names are case-sensitive (RFC 8866 §5.13).
            (&[], &["a=SENDONLY"], None, SendRecv),
        ];
        for &(sess, media, mdir, eff) in table {
            let mut lines = vec!["v=0", "c=IN IP4 192.0.2.1"];
            lines.extend_from_slice(sess);
            lines.push("m=audio 1 RTP/AVP 0");
            lines.extend_from_slice(media);
            let b = body(&lines);
            let sdp = Sdp::parse(&b).expect("parse");
            assert_eq!(sdp.media()[0].direction(), mdir, "{sess:?} {media:?}");
            assert_eq!(sdp.effective_direction(0), Some(eff), "{sess:?} {media:?}");
            assert_eq!(sdp.effective_direction(1), None);
            if let Some(f) = sdp.media()[0].direction_field() {
                assert_eq!(f.span.get(&b), eff.as_str().as_bytes());
            }
        }
    }

    #[test]
    fn attributes_in_order_session_and_media_rfc8866_5_13() {
        let b = body(&[
            "v=0",
            "s=-",
            "a=tool:x",
            "a=recvonly",
            "a=group:BUNDLE 0 1",
            "m=audio 1 RTP/AVP 0",
            "a=rtpmap:0 PCMU/8000",
            "a=ptime:",
            "a=fmtp:0 a=b;c=d",
        ]);
        let sdp = Sdp::parse(&b).expect("parse");
        let names = |it: Attributes<'_>| -> Vec<(String, Option<String>)> {
            it.map(|a| {
                (
                    s(a.name.text).to_owned(),
                    a.value.map(|v| s(v.text).to_owned()),
                )
            })
            .collect()
        };
        let o = |s: &str| Some(s.to_owned());
        assert_eq!(
            names(sdp.session_attributes()),
            [
                ("tool".to_owned(), o("x")),
                ("recvonly".to_owned(), None),
                ("group".to_owned(), o("BUNDLE 0 1")),
            ]
        );
        assert_eq!(
            names(sdp.media()[0].attributes()),
            [
                ("rtpmap".to_owned(), o("0 PCMU/8000")),
                ("ptime".to_owned(), o("")),
                ("fmtp".to_owned(), o("0 a=b;c=d")),
            ]
        );
        for a in sdp.session_attributes().chain(sdp.media()[0].attributes()) {
            assert_eq!(a.name.span.get(&b), a.name.text);
            assert!(a.line.get(&b).starts_with(b"a="));
            assert!(a.line.get(&b).ends_with(b"\r\n"));
        }
        assert_eq!(sdp.lines().count(), 9);
        assert_eq!(sdp.media()[0].lines().count(), 4);
    }

    type Op = fn(&Sdp<'_>, &mut Edits);

    #[test]
    fn editing_helpers_record_exact_rewrites() {
        // (name, body, op, expected body)
        let table: &[(&str, &[u8], Op, &[u8])] = &[
            (
                "RFC 3605: replace a=rtcp with address by a bare port",
                b"v=0\r\nm=audio 53018 RTP/AVP 0\r\na=rtcp:53020 IN IP4 126.16.64.4\r\n",
                |s, e| s.set_rtcp(e, 0, 40001, None).expect("media 0"),
                b"v=0\r\nm=audio 53018 RTP/AVP 0\r\na=rtcp:40001\r\n",
            ),
            (
                "RFC 3605: replace a=rtcp port by port + IP6 address",
                b"v=0\r\nm=audio 53018 RTP/AVP 0\r\na=rtcp:53020\r\n",
                |s, e| {
                    let ip = "2001:db8::5".parse().expect("v6");
                    s.set_rtcp(e, 0, 9, Some(ip)).expect("media 0")
                },
                b"v=0\r\nm=audio 53018 RTP/AVP 0\r\na=rtcp:9 IN IP6 2001:db8::5\r\n",
            ),
            (
                "RFC 3605: insert a=rtcp before the first a= line, after c= and b=",
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\nb=AS:64\r\na=rtpmap:0 PCMU/8000\r\n",
                |s, e| s.set_rtcp(e, 0, 2, Some(v4(203, 0, 113, 1))).expect("media 0"),
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\nb=AS:64\r\na=rtcp:2 IN IP4 203.0.113.1\r\na=rtpmap:0 PCMU/8000\r\n",
            ),
            (
                "insert a=rtcp at the end of a section without attributes",
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\nm=video 3 RTP/AVP 31\r\n",
                |s, e| s.set_rtcp(e, 0, 2, None).expect("media 0"),
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\na=rtcp:2\r\nm=video 3 RTP/AVP 31\r\n",
            ),
            (
                "insert after an unterminated last line (LF body)",
                b"v=0\nm=audio 1 RTP/AVP 0",
                |s, e| {
                    s.set_rtcp(e, 0, 2, None).expect("media 0");
                    s.set_direction(e, 0, Direction::SendOnly).expect("media 0");
                },
                b"v=0\nm=audio 1 RTP/AVP 0\r\na=rtcp:2\r\na=sendonly",
            ),
            (
                "insert after a last line ending in a lone CR",
                b"v=0\r\nm=audio 1 RTP/AVP 0\r",
                |s, e| s.set_rtcp(e, 0, 2, None).expect("media 0"),
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:2",
            ),
            (
                "LF-only body: inserted lines end in LF",
                b"v=0\nm=audio 1 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n",
                |s, e| s.set_direction(e, 0, Direction::Inactive).expect("media 0"),
                b"v=0\nm=audio 1 RTP/AVP 0\na=inactive\na=rtpmap:0 PCMU/8000\n",
            ),
            (
                "insert before trailing blank lines",
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\n\r\n",
                |s, e| s.set_direction(e, 0, Direction::RecvOnly).expect("media 0"),
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=recvonly\r\n\r\n",
            ),
            (
                "RFC 3264 §5.1: replace the media direction, session one untouched",
                b"v=0\r\na=sendonly\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\na=ptime:20\r\n",
                |s, e| s.set_direction(e, 0, Direction::Inactive).expect("media 0"),
                b"v=0\r\na=sendonly\r\nm=audio 1 RTP/AVP 0\r\na=inactive\r\na=ptime:20\r\n",
            ),
            (
                "RFC 8866 §5.14: new port keeps the port count",
                b"v=0\r\nm=video 49170/2 RTP/AVP 31\r\n",
                |s, e| s.set_media_port(e, 0, 7).expect("media 0"),
                b"v=0\r\nm=video 7/2 RTP/AVP 31\r\n",
            ),
            (
                "RFC 8866 §5.2: origin address to IP6",
                b"v=0\r\no=alice 1 2 IN IP4 client.atlanta.example.com\r\ns=-\r\n",
                |s, e| assert!(s.set_origin_address(e, "2001:db8::5".parse().expect("v6"))),
                b"v=0\r\no=alice 1 2 IN IP6 2001:db8::5\r\ns=-\r\n",
            ),
            (
                "no o= line: nothing to rewrite",
                b"v=0\r\ns=-\r\n",
                |s, e| assert!(!s.set_origin_address(e, "192.0.2.9".parse().expect("v4"))),
                b"v=0\r\ns=-\r\n",
            ),
            (
                "RFC 8866 §5.7: every c= rewritten, names and multicast suffixes replaced",
                b"v=0\r\nc=IN IP4 host.example.com\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 233.252.0.1/127\r\nc=IN IP4 233.252.0.2/127\r\nm=video 2 RTP/AVP 31\r\nc=IN IP6 2001:db8::1\r\n",
                |s, e| assert_eq!(s.set_connection_address(e, "203.0.113.1".parse().expect("v4")), 4),
                b"v=0\r\nc=IN IP4 203.0.113.1\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 203.0.113.1\r\nc=IN IP4 203.0.113.1\r\nm=video 2 RTP/AVP 31\r\nc=IN IP4 203.0.113.1\r\n",
            ),
            (
                "one media's c= only",
                b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 1 RTP/AVP 0\r\nm=video 2 RTP/AVP 31\r\nc=IN IP4 192.0.2.2\r\n",
                |s, e| {
                    let ip = "2001:db8::7".parse().expect("v6");
                    assert_eq!(s.set_media_connection_address(e, 0, ip), Ok(0));
                    assert_eq!(s.set_media_connection_address(e, 1, ip), Ok(1));
                },
                b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 1 RTP/AVP 0\r\nm=video 2 RTP/AVP 31\r\nc=IN IP6 2001:db8::7\r\n",
            ),
            (
                "RFC 8839 §5: ICE lines deleted whole, session and media level",
                b"v=0\r\na=ice-lite\r\na=ice-options:trickle\r\nm=audio 1 RTP/AVP 0\r\na=ice-ufrag:F7gI\r\na=ice-pwd:x9cml\r\na=candidate:1 1 UDP 2113667327 192.0.2.1 1 typ host\r\na=rtpmap:0 PCMU/8000\r\na=remote-candidates:1 192.0.2.2 2\r\na=end-of-candidates\r\n",
                |s, e| assert_eq!(s.remove_ice(e), 7),
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
            ),
            (
                "ICE removal of an unterminated last line",
                b"v=0\nm=audio 1 RTP/AVP 0\na=candidate:1 1 UDP 1 192.0.2.1 1 typ host",
                |s, e| assert_eq!(s.remove_ice(e), 1),
                b"v=0\nm=audio 1 RTP/AVP 0\n",
            ),
            (
                "insert at a deleted first attribute line",
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=candidate:1 1 UDP 1 192.0.2.1 1 typ host\r\na=rtpmap:0 PCMU/8000\r\n",
                |s, e| {
                    s.remove_ice(e);
                    s.set_rtcp(e, 0, 2, None).expect("media 0");
                },
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:2\r\na=rtpmap:0 PCMU/8000\r\n",
            ),
            (
                "a media index past the end changes nothing",
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\n",
                |s, e| {
                    let no = Err(SdpError::NoSuchMedia { index: 1 });
                    assert_eq!(s.set_media_port(e, 1, 1), no);
                    assert_eq!(s.set_rtcp(e, 1, 1, None), no);
                    assert_eq!(s.set_direction(e, 1, Direction::Inactive), no);
                    assert_eq!(s.set_media_connection_address(e, 1, v4(1, 2, 3, 4)).map(|_| ()), no);
                    assert!(e.is_empty());
                },
                b"v=0\r\nm=audio 1 RTP/AVP 0\r\n",
            ),
        ];
        for &(name, b, op, want) in table {
            let sdp = Sdp::parse(b).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut edits = Edits::new();
            op(&sdp, &mut edits);
            let mut out = Vec::new();
            edits
                .apply(b, &mut out)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s(&out), s(want), "{name}");
            assert_eq!(
                sdp.body_len_after(&edits, LenMark::EMPTY),
                out.len(),
                "{name}"
            );
            Sdp::parse(&out).unwrap_or_else(|e| panic!("{name}: output does not parse: {e}"));
        }
    }

    #[test]
    fn spans_are_body_relative_edits_are_absolute() {
        let head = b"INVITE sip:bob@example.com SIP/2.0\r\nContent-Length: 46\r\n\r\n";
        let sdp_text = b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 9 RTP/AVP 0\r\n";
        let mut msg = head.to_vec();
        msg.extend_from_slice(sdp_text);
        let base = head.len();
        let b = &msg[base..];
        let sdp = Sdp::parse_at(b, base as u32).expect("parse");
        let m = &sdp.media()[0];
        // Body-relative: indexes the body slice.
        assert_eq!(m.port_field().span.get(b), b"9");
        assert_eq!(m.port_field().span.get(sdp.body()), b"9");
        // Absolute: indexes the message.
        assert_eq!(sdp.abs(m.port_field().span).get(&msg), b"9");
        let at = memchr::memmem::find(&msg, b" 9 ").expect("port") + 1;
        assert_eq!(sdp.abs(m.port_field().span), Span::new(at, at + 1));
        assert_eq!(m.port_field().span, Span::new(at - base, at - base + 1));
        let out = apply(&msg, |e| {
            sdp.set_media_port(e, 0, 4000).expect("media 0");
            sdp.set_connection_address(e, v4(198, 51, 100, 1));
        });
        let mut want = head.to_vec();
        want.extend_from_slice(b"v=0\r\nc=IN IP4 198.51.100.1\r\nm=audio 4000 RTP/AVP 0\r\n");
        assert_eq!(s(&out), s(&want));
    }

    #[test]
    fn four_media_sections_stay_inline() {
        let b = body(&[
            "v=0",
            "c=IN IP4 192.0.2.1",
            "m=audio 1 RTP/AVP 0",
            "m=audio 2 RTP/AVP 0",
            "m=video 3 RTP/AVP 31",
            "m=application 4 UDP/DTLS/SCTP webrtc-datachannel",
        ]);
        let sdp = Sdp::parse(&b).expect("parse");
        assert!(!sdp.media.spilled());
        let ports: Vec<u16> = sdp.media().iter().map(|m| m.port()).collect();
        assert_eq!(ports, [1, 2, 3, 4]);
    }

    /// RFC 3665 §3.1 F1 extended with ICE (RFC 8839), a=rtcp (RFC 3605) and
    /// a second, video stream with its own c=: the relay rewrite of a whole
    /// INVITE, checked byte for byte, Content-Length included.
    #[test]
    fn whole_invite_relay_rewrite_end_to_end() {
        let sdp_in = concat!(
            "v=0\r\n",
            "o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n",
            "s=-\r\n",
            "c=IN IP4 192.0.2.101\r\n",
            "t=0 0\r\n",
            "a=ice-ufrag:8hhY\r\n",
            "a=ice-pwd:asd88fgpdd777uzjYhagZg\r\n",
            "m=audio 49172 RTP/AVP 0 101\r\n",
            "a=rtcp:49173 IN IP4 192.0.2.101\r\n",
            "a=candidate:1 1 UDP 2130706431 192.0.2.101 49172 typ host\r\n",
            "a=candidate:2 1 UDP 1694498815 198.51.100.9 50002 typ srflx raddr 192.0.2.101 rport 49172\r\n",
            "a=end-of-candidates\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:101 telephone-event/8000\r\n",
            "a=sendrecv\r\n",
            "m=video 51372 RTP/AVP 31\r\n",
            "c=IN IP4 192.0.2.102\r\n",
            "a=rtpmap:31 H261/90000\r\n",
        );
        let head = |len: usize| {
            format!(
                "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
                 Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
                 Max-Forwards: 70\r\n\
                 From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
                 To: Bob <sip:bob@biloxi.example.com>\r\n\
                 Call-ID: 3848276298220188511@atlanta.example.com\r\n\
                 CSeq: 1 INVITE\r\n\
                 Contact: <sip:alice@client.atlanta.example.com>\r\n\
                 Content-Type: application/sdp\r\n\
                 Content-Length: {len}\r\n\r\n"
            )
        };
        let msg = format!("{}{sdp_in}", head(sdp_in.len())).into_bytes();
        let parsed = Message::parse(&msg).expect("INVITE parses");
        let cl = parsed
            .header(HeaderName::ContentLength)
            .expect("Content-Length")
            .value();
        let sdp = Sdp::parse_at(parsed.body(), parsed.body_span().start).expect("SDP parses");
        assert_eq!(sdp.body(), sdp_in.as_bytes());
        assert!(sdp.uses_ice());

        let relay = v4(203, 0, 113, 1);
        let mut edits = Edits::new();
        // A header edit recorded before the SDP ones.
        edits.replace(
            parsed
                .header(HeaderName::MaxForwards)
                .expect("Max-Forwards")
                .value(),
            b"69",
        );
        let mark = LenMark::of(&edits);
        assert_eq!(sdp.set_connection_address(&mut edits, relay), 2);
        assert!(sdp.set_origin_address(&mut edits, relay));
        sdp.set_media_port(&mut edits, 0, 30000).expect("audio");
        sdp.set_rtcp(&mut edits, 0, 30001, None).expect("audio");
        sdp.set_media_port(&mut edits, 1, 30002).expect("video");
        sdp.set_rtcp(&mut edits, 1, 30003, Some(relay))
            .expect("video");
        sdp.set_direction(&mut edits, 1, Direction::SendOnly)
            .expect("video");
        assert_eq!(sdp.remove_ice(&mut edits), 5);
        let new_len = sdp.body_len_after(&edits, mark);
        edits.replace_fmt(cl, format_args!("{new_len}"));
        let mut out = Vec::new();
        edits.apply(&msg, &mut out).expect("apply");

        let sdp_out = concat!(
            "v=0\r\n",
            "o=alice 2890844526 2890844526 IN IP4 203.0.113.1\r\n",
            "s=-\r\n",
            "c=IN IP4 203.0.113.1\r\n",
            "t=0 0\r\n",
            "m=audio 30000 RTP/AVP 0 101\r\n",
            "a=rtcp:30001\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:101 telephone-event/8000\r\n",
            "a=sendrecv\r\n",
            "m=video 30002 RTP/AVP 31\r\n",
            "c=IN IP4 203.0.113.1\r\n",
            "a=rtcp:30003 IN IP4 203.0.113.1\r\n",
            "a=sendonly\r\n",
            "a=rtpmap:31 H261/90000\r\n",
        );
        assert_eq!(new_len, sdp_out.len());
        let want = format!("{}{sdp_out}", head(sdp_out.len()))
            .replace("Max-Forwards: 70", "Max-Forwards: 69");
        assert_eq!(s(&out), want);
        // The result is a valid message whose SDP says what the relay set.
        let again = Message::parse(&out).expect("rewritten INVITE parses");
        assert_eq!(again.content_length(), Some(sdp_out.len() as u32));
        let sdp2 = Sdp::parse(again.body()).expect("rewritten SDP parses");
        assert!(!sdp2.uses_ice());
        assert_eq!(sdp2.effective_connection(0).and_then(|c| c.ip), Some(relay));
        assert_eq!(sdp2.media()[1].rtcp().map(|r| r.port), Some(30003));
    }

    /// Reads every accessor; the fuzz target does the same.
    fn walk(sdp: &Sdp<'_>) -> usize {
        let b = sdp.body();
        let mut n = sdp
            .lines()
            .map(|l| l.span.get(b).len() + l.value.text.len())
            .sum::<usize>();
        if let Some(o) = sdp.origin() {
            n += o.username.text.len() + o.address.span.get(b).len();
        }
        n += sdp.connection().map_or(0, |c| c.address.text.len());
        n += usize::from(sdp.has_ice()) + usize::from(sdp.ice_lite()) + usize::from(sdp.uses_ice());
        n +=
            sdp.ice_ufrag().map_or(0, |f| f.text.len()) + sdp.ice_pwd().map_or(0, |f| f.text.len());
        n += sdp.ice_options().map_or(0, |f| f.text.len());
        n += sdp.direction().map_or(0, |d| d.as_str().len());
        n += sdp.session_attributes().count() + sdp.session_section().len();
        for (i, m) in sdp.media().iter().enumerate() {
            n += m.formats().map(|f| f.span.get(b).len()).sum::<usize>();
            n += m
                .attributes()
                .map(|a| a.value.map_or(0, |v| v.text.len()))
                .sum::<usize>();
            n += m.candidates().count() + m.lines().count() + m.section().get(b).len();
            n += usize::from(m.port()) + usize::from(m.port_count().unwrap_or(0));
            n += m.media_type().text.len() + m.proto().text.len() + m.fmt_list().text.len();
            n += m.connection().map_or(0, |c| c.suffix.text.len());
            n += m.rtcp().map_or(0, |r| {
                usize::from(r.port) + r.address.map_or(0, |a| a.address.text.len())
            });
            n += usize::from(m.rtcp_mux())
                + usize::from(m.has_ice())
                + usize::from(m.end_of_candidates());
            n +=
                m.ice_ufrag().map_or(0, |f| f.text.len()) + m.ice_pwd().map_or(0, |f| f.text.len());
            n += m.ice_options().map_or(0, |f| f.text.len());
            n += m.direction_field().map_or(0, |f| f.text.len()) + m.line().len();
            n += usize::from(m.is_rejected());
            n += sdp.effective_connection(i).map_or(0, |c| c.line.len());
            n += sdp.effective_direction(i).map_or(0, |d| d.as_str().len());
        }
        n
    }

    /// Records every editing helper once; never overlapping.
    fn rewrite_all(sdp: &Sdp<'_>, edits: &mut Edits, addr: IpAddr) {
        sdp.set_connection_address(edits, addr);
        sdp.set_origin_address(edits, addr);
        for i in 0..sdp.media().len() {
            let p = 20000u16.wrapping_add(2 * i as u16);
            let r = sdp.set_media_port(edits, i, p);
            let r = r.and_then(|_| sdp.set_rtcp(edits, i, p.wrapping_add(1), Some(addr)));
            let r = r.and_then(|_| sdp.set_direction(edits, i, Direction::SendRecv));
            assert_eq!(r, Ok(()));
        }
        sdp.remove_ice(edits);
    }

    fn sample() -> Vec<u8> {
        body(&[
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "c=IN IP4 192.0.2.1",
            "t=0 0",
            "a=ice-ufrag:x",
            "m=audio 49170/2 RTP/AVP 0 8",
            "a=rtcp:49171 IN IP4 192.0.2.1",
            "a=candidate:1 1 UDP 1 192.0.2.1 49170 typ host",
            "a=sendonly",
            "m=video 0 RTP/AVP 31",
            "c=IN IP6 2001:db8::1",
        ])
    }

    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let edit = (
            any::<u16>(),
            0u8..3,
            prop::sample::select(&b"v=oc mat/:\r\n0123456789IP4.6 -"[..]),
        );
        prop::collection::vec(edit, 0..8).prop_map(|ops| {
            let mut b = sample();
            for (at, kind, byte) in ops {
                let i = usize::from(at) % (b.len() + 1);
                match kind {
                    0 if i < b.len() => b[i] = byte,
                    1 => b.insert(i, byte),
                    _ if i < b.len() => {
                        b.remove(i);
                    }
                    _ => {}
                }
            }
            b
        })
    }

    fn check_any(data: &[u8]) -> Result<(), TestCaseError> {
        let Ok(sdp) = Sdp::parse(data) else {
            return Ok(());
        };
        walk(&sdp);
        let mut edits = Edits::new();
        rewrite_all(&sdp, &mut edits, v4(203, 0, 113, 1));
        let mut out = Vec::new();
        prop_assert!(edits.apply(data, &mut out).is_ok());
        prop_assert_eq!(sdp.body_len_after(&edits, LenMark::EMPTY), out.len());
        // No edits: the body comes back byte for byte.
        let mut same = Vec::new();
        prop_assert!(Edits::new().apply(data, &mut same).is_ok());
        prop_assert_eq!(&same[..], data);
        Ok(())
    }

    /// One generated media section.
    #[derive(Clone, Debug)]
    struct GenMedia {
        port: u16,
        count: Option<u16>,
        conn: bool,
        rtcp: Option<(u16, bool)>,
        mux: bool,
        dir: Option<Direction>,
        candidates: usize,
    }

    fn gen_media() -> impl Strategy<Value = GenMedia> {
        let dir = prop::option::of(prop::sample::select(vec![
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]));
        (
            any::<u16>(),
            prop::option::of(1u16..4),
            any::<bool>(),
            prop::option::of((any::<u16>(), any::<bool>())),
            any::<bool>(),
            dir,
            0usize..3,
        )
            .prop_map(|(port, count, conn, rtcp, mux, dir, candidates)| GenMedia {
                port,
                count,
                conn,
                rtcp,
                mux,
                dir,
                candidates,
            })
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
            any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        ]
    }

    fn t(ip: IpAddr) -> &'static str {
        AddrType::for_ip(ip).as_str()
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
            check_any(&data)?;
        }

        #[test]
        fn mutated_sdp_never_panics_and_rewrites_apply(data in mutated()) {
            check_any(&data)?;
        }

        /// A generated valid SDP: accessors report what was written, and the
        /// full relay rewrite yields an SDP that says exactly what was set.
        #[test]
        fn generated_sdp_round_trips_through_a_rewrite(
            media in prop::collection::vec(gen_media(), 0..7),
            lf in any::<bool>(),
            last_eol in any::<bool>(),
            session_ice in any::<bool>(),
            orig in ip(),
            relay in ip(),
            base in 0u32..100,
        ) {
            let eol = if lf { "\n" } else { "\r\n" };
            let mut text = format!("v=0{eol}o=- 1 1 IN {} {orig}{eol}s=-{eol}c=IN {} {orig}{eol}t=0 0{eol}", t(orig), t(orig));
            if session_ice {
                text += &format!("a=ice-ufrag:abcd{eol}a=ice-pwd:efgh{eol}");
            }
            for (i, m) in media.iter().enumerate() {
                let count = m.count.map(|c| format!("/{c}")).unwrap_or_default();
                text += &format!("m=audio {}{count} RTP/AVP 0 8{eol}", m.port);
                if m.conn {
                    text += &format!("c=IN {} {orig}{eol}", t(orig));
                }
                if let Some((p, with_addr)) = m.rtcp {
                    let a = if with_addr { format!(" IN {} {orig}", t(orig)) } else { String::new() };
                    text += &format!("a=rtcp:{p}{a}{eol}");
                }
                for c in 0..m.candidates {
                    text += &format!("a=candidate:{c} 1 UDP 1 {orig} {} typ host{eol}", m.port);
                }
                if m.mux {
                    text += &format!("a=rtcp-mux{eol}");
                }
                if let Some(d) = m.dir {
                    text += &format!("a={d}{eol}");
                }
                text += &format!("a=mid:{i}{eol}");
            }
            if !last_eol {
                text.truncate(text.len() - eol.len());
            }
            let mut msg = vec![b'H'; base as usize];
            msg.extend_from_slice(text.as_bytes());
            let b = &msg[base as usize..];
            let sdp = Sdp::parse_at(b, base).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(sdp.media().len(), media.len());
            prop_assert_eq!(sdp.connection().and_then(|c| c.ip), Some(orig));
            for (i, (g, m)) in media.iter().zip(sdp.media()).enumerate() {
                prop_assert_eq!(m.port(), g.port);
                prop_assert_eq!(m.port_count(), g.count);
                prop_assert_eq!(m.rtcp().map(|r| r.port), g.rtcp.map(|r| r.0));
                prop_assert_eq!(m.rtcp_mux(), g.mux);
                prop_assert_eq!(m.direction(), g.dir);
                prop_assert_eq!(m.candidates().count(), g.candidates);
                prop_assert_eq!(m.connection().is_some(), g.conn);
                prop_assert_eq!(sdp.effective_connection(i).and_then(|c| c.ip), Some(orig));
                prop_assert_eq!(fmts(m), ["0", "8"]);
            }
            let mut edits = Edits::new();
            edits.insert(0, b"X-Header: 1\r\n");
            let mark = LenMark::of(&edits);
            rewrite_all(&sdp, &mut edits, relay);
            let mut out = Vec::new();
            prop_assert!(edits.apply(&msg, &mut out).is_ok());
            prop_assert_eq!(&out[..13], b"X-Header: 1\r\n");
            let new_body = &out[13 + base as usize..];
            prop_assert_eq!(sdp.body_len_after(&edits, mark), new_body.len());
            let sdp2 = Sdp::parse(new_body).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(!sdp2.uses_ice());
            prop_assert_eq!(sdp2.origin().and_then(|o| o.ip), Some(relay));
            prop_assert_eq!(sdp2.connection().and_then(|c| c.ip), Some(relay));
            for (i, (g, m)) in media.iter().zip(sdp2.media()).enumerate() {
                let p = 20000u16.wrapping_add(2 * i as u16);
                prop_assert_eq!(m.port(), p);
                prop_assert_eq!(m.port_count(), g.count);
                let r = m.rtcp().ok_or_else(|| TestCaseError::fail("rtcp"))?;
                prop_assert_eq!(r.port, p.wrapping_add(1));
                prop_assert_eq!(r.address.and_then(|a| a.ip), Some(relay));
                prop_assert_eq!(m.direction(), Some(Direction::SendRecv));
                prop_assert_eq!(m.rtcp_mux(), g.mux);
                prop_assert_eq!(sdp2.effective_connection(i).and_then(|c| c.ip), Some(relay));
                let mid = format!("{i}");
                prop_assert_eq!(m.attribute(b"mid").and_then(|a| a.value).map(|v| v.text), Some(mid.as_bytes()));
            }
        }
    }
}
