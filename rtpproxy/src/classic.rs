//! The classic rtpproxy control protocol (reference Part 1), sans I/O:
//! parse a command into a typed [`Command`], format a [`Reply`]; and the
//! reverse for the client (format a command, parse a reply).
//!
//! Framing (§1.1): in datagram mode the first token is the cookie and the
//! reply starts with `cookie SP`; stream mode (Unix socket) has no cookie.
//! Tokens are separated by runs of SP, TAB, CR, LF. The command is the first
//! letter of its token (case-insensitive), the rest are modifiers.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smallvec::SmallVec;

/// `CPROTOVER` (§1.2 V).
pub const PROTOCOL_VERSION: u32 = 20040107;
/// Maximum tokens in a command (§1.1 `RTPC_MAX_ARGC`).
pub const MAX_TOKENS: usize = 24;
/// Maximum command length (§1.1 `RTPP_CMD_BUFLEN`).
pub const MAX_COMMAND_LEN: usize = 8 * 1024;

/// Capabilities answered `1` to `VF` (§1.6). 20071116 (re-packetization)
/// is answered `0` so Kamailio does not send `Z`; `C` codec lists
/// (20081102) are accepted and ignored; Q statistics (20080403) exist.
pub const CAPABILITIES: &[u32] = &[20040107, 20050322, 20060704, 20080403, 20081102];

/// Error codes (§1.5), as numbers sent after `E`.
pub mod ecode {
    pub const CMDUNKN: u16 = 0;
    pub const PARSE_NARGS: u16 = 1;
    pub const PARSE_MODS: u16 = 2;
    pub const PARSE_SUBC: u16 = 3;
    pub const PARSE_1: u16 = 5;
    pub const PARSE_D_MODS: u16 = 8;
    pub const PARSE_E: u16 = 11;
    pub const PARSE_I: u16 = 12;
    pub const PARSE_Z: u16 = 13;
    pub const PARSE_C: u16 = 14;
    pub const PARSE_L: u16 = 15;
    pub const PARSE_R: u16 = 16;
    pub const PARSE_INFO_MODS: u16 = 18;
    pub const PARSE_Q_MODS: u16 = 19;
    pub const INVLARG_REMOTE: u16 = 32;
    pub const INVLARG_UNKNOWN_MOD: u16 = 35;
    pub const SESUNKN: u16 = 50;
    pub const PLRFAIL: u16 = 60;
    pub const QRYFAIL: u16 = 62;
    pub const CPYFAIL: u16 = 65;
    pub const LSTFAIL_PORTS: u16 = 71;
    pub const LSTFAIL_SESSION: u16 = 72;
    pub const NSOFF: u16 = 75;
    pub const SLOWSHTDN: u16 = 99;
}

/// A SIP tag with its optional `;N` media number (§1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag<'a> {
    pub tag: &'a [u8],
    pub media: Option<u32>,
}

impl<'a> Tag<'a> {
    /// Splits `tag;N`; a suffix that is not a positive number stays part of
    /// the tag.
    pub fn parse(tok: &'a [u8]) -> Tag<'a> {
        if let Some(i) = memchr::memrchr(b';', tok) {
            let (t, n) = (tok.get(..i).unwrap_or(&[]), tok.get(i + 1..).unwrap_or(&[]));
            if let Some(n) = parse_u32(n).filter(|n| *n > 0) {
                return Tag {
                    tag: t,
                    media: Some(n),
                };
            }
        }
        Tag {
            tag: tok,
            media: None,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.tag);
        if let Some(n) = self.media {
            out.extend_from_slice(format!(";{n}").as_bytes());
        }
    }
}

/// U/L modifiers (§1.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UlModifiers {
    /// `A`: do not latch.
    pub asymmetric: bool,
    /// `S`: latch (the default).
    pub symmetric: bool,
    /// `W`: weak session.
    pub weak: bool,
    /// `6`: the address is IPv6.
    pub ipv6: bool,
    /// `Z<ms>`: re-packetization request (accepted, not performed).
    pub repacketize: Option<u16>,
    /// `C<pt,pt..>`: payload types (accepted, informational).
    pub codecs: SmallVec<[u16; 8]>,
    /// `N`: new port requested.
    pub new_port: bool,
    /// `L<addr>` / `R<addr>` given (accepted, one local address here).
    pub local: bool,
    /// `E`/`I` bridging modifiers.
    pub bridging: u8,
}

/// `U` / `L` arguments (§1.2, §1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateLookup<'a> {
    pub mods: UlModifiers,
    pub call_id: &'a [u8],
    /// `None` for the null address (`0.0.0.0`/`::`, on hold, §1.3).
    pub addr: Option<IpAddr>,
    pub port: u16,
    pub from_tag: Tag<'a>,
    pub to_tag: Option<Tag<'a>>,
    /// `notify_socket notify_tag` (U only).
    pub notify: Option<(&'a [u8], &'a [u8])>,
}

/// A parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `V`.
    Version,
    /// `VF <YYYYMMDD>`.
    Feature(u32),
    /// `U`: create or update.
    Update(UpdateLookup<'a>),
    /// `L`: lookup (the answer side).
    Lookup(UpdateLookup<'a>),
    /// `D[w] callid from_tag [to_tag]`.
    Delete {
        weak: bool,
        call_id: &'a [u8],
        from_tag: Tag<'a>,
        to_tag: Option<Tag<'a>>,
    },
    /// `Q[v] callid from_tag [to_tag [counter..]]`.
    Query {
        verbose: bool,
        call_id: &'a [u8],
        from_tag: Tag<'a>,
        to_tag: Option<Tag<'a>>,
        counters: SmallVec<[&'a [u8]; 8]>,
    },
    /// `I[b][l]`.
    Info { load: bool },
    /// `X`: delete all sessions.
    DeleteAll,
    /// Known commands this relay does not implement (`G P S R C N`), with
    /// the session they name when they name one.
    Unsupported {
        letter: u8,
        call_id: Option<&'a [u8]>,
        from_tag: Option<Tag<'a>>,
        to_tag: Option<Tag<'a>>,
    },
}

/// A reply body (without cookie).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `%d\n`.
    Number(i64),
    /// `E%d\n`.
    Error(u16),
    /// `port addr[ 6]\n`; `addr` None prints only the port.
    Port { port: u16, addr: Option<IpAddr> },
    /// Free text (I, Q); a trailing `\n` is added if missing.
    Text(String),
}

impl Reply {
    /// Formats the reply, with `cookie SP` first in datagram mode.
    pub fn write(&self, cookie: Option<&[u8]>, out: &mut Vec<u8>) {
        if let Some(c) = cookie {
            out.extend_from_slice(c);
            out.push(b' ');
        }
        let mut s = String::new();
        match self {
            Reply::Number(n) => {
                let _ = writeln!(s, "{n}");
            }
            Reply::Error(e) => {
                let _ = writeln!(s, "E{e}");
            }
            Reply::Port { port, addr: None } => {
                let _ = writeln!(s, "{port}");
            }
            Reply::Port {
                port,
                addr: Some(a @ IpAddr::V4(_)),
            } => {
                let _ = writeln!(s, "{port} {a}");
            }
            Reply::Port {
                port,
                addr: Some(a @ IpAddr::V6(_)),
            } => {
                let _ = writeln!(s, "{port} {a} 6");
            }
            Reply::Text(t) => {
                s.push_str(t);
                if !t.ends_with('\n') {
                    s.push('\n');
                }
            }
        }
        out.extend_from_slice(s.as_bytes());
    }

    pub fn to_bytes(&self, cookie: Option<&[u8]>) -> Vec<u8> {
        let mut v = Vec::new();
        self.write(cookie, &mut v);
        v
    }

    /// Parses a reply body (client side; cookie already removed). A reply
    /// of one number is [`Reply::Number`]; `port addr [4|6]` (rtpengine adds
    /// `4`, §1.7) is [`Reply::Port`]; `E<n>` an error; else text.
    pub fn parse(body: &[u8]) -> Reply {
        let text = String::from_utf8_lossy(body).into_owned();
        let toks: SmallVec<[&str; 6]> = text.split_ascii_whitespace().collect();
        match toks.as_slice() {
            [e] if e.starts_with('E') => match e.get(1..).and_then(|n| n.parse().ok()) {
                Some(n) => Reply::Error(n),
                None => Reply::Text(text.clone()),
            },
            [n] => match n.parse() {
                Ok(n) => Reply::Number(n),
                Err(_) => Reply::Text(text.clone()),
            },
            [p, a] | [p, a, _] => match (p.parse::<u16>(), a.parse::<IpAddr>()) {
                (Ok(port), Ok(addr)) => Reply::Port {
                    port,
                    addr: Some(addr),
                },
                _ => Reply::Text(text.clone()),
            },
            _ => Reply::Text(text.clone()),
        }
    }
}

/// A parse failure: the error reply to send, with the cookie if one was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError<'a> {
    pub cookie: Option<&'a [u8]>,
    pub code: u16,
}

/// A datagram split into cookie and command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub cookie: Option<&'a [u8]>,
    pub command: Command<'a>,
}

fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits into tokens (§1.1). `None` when there are more than
/// [`MAX_TOKENS`] (after the cookie).
fn tokens(buf: &[u8]) -> SmallVec<[&[u8]; MAX_TOKENS + 2]> {
    buf.split(|b| is_sep(*b))
        .filter(|t| !t.is_empty())
        .take(MAX_TOKENS + 2)
        .collect()
}

/// Parses a datagram-mode command: `cookie SP command...` (§1.1).
pub fn parse_datagram(buf: &[u8]) -> Result<Request<'_>, ParseError<'_>> {
    parse(buf, true)
}

/// Parses a stream-mode (Unix socket) command: no cookie (§1.1).
pub fn parse_stream(buf: &[u8]) -> Result<Request<'_>, ParseError<'_>> {
    parse(buf, false)
}

fn parse(buf: &[u8], datagram: bool) -> Result<Request<'_>, ParseError<'_>> {
    let toks = tokens(buf);
    let (cookie, args) = if datagram {
        match toks.split_first() {
            Some((c, rest)) => (Some(*c), rest),
            None => {
                return Err(ParseError {
                    cookie: None,
                    code: ecode::PARSE_1,
                })
            }
        }
    } else {
        (None, &toks[..])
    };
    let err = |code| ParseError { cookie, code };
    if buf.len() > MAX_COMMAND_LEN || args.is_empty() || args.len() > MAX_TOKENS {
        return Err(err(ecode::PARSE_1));
    }
    if buf.contains(&0) {
        return Err(err(ecode::PARSE_1));
    }
    if args.iter().any(|t| *t == b"&&") {
        return Err(err(ecode::PARSE_SUBC));
    }
    let command = parse_command(args).map_err(err)?;
    Ok(Request { cookie, command })
}

fn parse_command<'a>(args: &[&'a [u8]]) -> Result<Command<'a>, u16> {
    let first = args.first().copied().unwrap_or(&[]);
    let (letter, mods) = match first.split_first() {
        Some((l, m)) => (l.to_ascii_uppercase(), m),
        None => return Err(ecode::PARSE_1),
    };
    let n = args.len();
    let arg = |i: usize| args.get(i).copied().unwrap_or(&[]);
    let nargs = |lo: usize, hi: usize| {
        if (lo..=hi).contains(&n) {
            Ok(())
        } else {
            Err(ecode::PARSE_NARGS)
        }
    };
    let no_mods = || {
        if mods.is_empty() {
            Ok(())
        } else {
            Err(ecode::PARSE_MODS)
        }
    };
    match letter {
        b'V' => match mods {
            b"" => {
                nargs(1, 2)?;
                Ok(Command::Version)
            }
            b"F" | b"f" => {
                nargs(2, 2)?;
                Ok(Command::Feature(
                    parse_u32(arg(1)).ok_or(ecode::PARSE_NARGS)?,
                ))
            }
            _ => Err(ecode::PARSE_MODS),
        },
        b'U' | b'L' => {
            let update = letter == b'U';
            if update {
                nargs(5, 8)?;
            } else {
                nargs(5, 6)?;
            }
            if n == 7 {
                return Err(ecode::PARSE_NARGS);
            }
            let mods = parse_ul_mods(mods)?;
            let addr = parse_addr(arg(2), mods.ipv6).ok_or(ecode::INVLARG_REMOTE)?;
            let port = parse_u32(arg(3))
                .and_then(|p| u16::try_from(p).ok())
                .ok_or(ecode::INVLARG_REMOTE)?;
            let ul = UpdateLookup {
                mods,
                call_id: arg(1),
                addr: (!addr.is_unspecified()).then_some(addr),
                port,
                from_tag: Tag::parse(arg(4)),
                to_tag: args.get(5).map(|t| Tag::parse(t)),
                notify: (n == 8).then(|| (arg(6), arg(7))),
            };
            Ok(if update {
                Command::Update(ul)
            } else {
                Command::Lookup(ul)
            })
        }
        b'D' => {
            nargs(3, 4)?;
            let weak = single_flag(mods, b'w', ecode::PARSE_D_MODS)?;
            Ok(Command::Delete {
                weak,
                call_id: arg(1),
                from_tag: Tag::parse(arg(2)),
                to_tag: args.get(3).map(|t| Tag::parse(t)),
            })
        }
        b'Q' => {
            nargs(3, MAX_TOKENS)?;
            let verbose = single_flag(mods, b'v', ecode::PARSE_Q_MODS)?;
            Ok(Command::Query {
                verbose,
                call_id: arg(1),
                from_tag: Tag::parse(arg(2)),
                to_tag: args.get(3).map(|t| Tag::parse(t)),
                counters: args.iter().skip(4).copied().collect(),
            })
        }
        b'I' => {
            nargs(1, 1)?;
            let mut load = false;
            for m in mods {
                match m {
                    b'b' | b'B' => {}
                    b'l' | b'L' => load = true,
                    _ => return Err(ecode::PARSE_INFO_MODS),
                }
            }
            Ok(Command::Info { load })
        }
        b'X' => {
            no_mods()?;
            nargs(1, 1)?;
            Ok(Command::DeleteAll)
        }
        b'G' => Ok(Command::Unsupported {
            letter,
            call_id: None,
            from_tag: None,
            to_tag: None,
        }),
        b'P' | b'S' | b'R' | b'C' | b'N' => {
            // P callid pname codecs from_tag [to_tag]; others callid from_tag [to_tag].
            let tag_at = if letter == b'P' { 4 } else { 2 };
            nargs(tag_at + 1, tag_at + 2 + 2)?;
            Ok(Command::Unsupported {
                letter,
                call_id: Some(arg(1)),
                from_tag: Some(Tag::parse(arg(tag_at))),
                to_tag: args.get(tag_at + 1).map(|t| Tag::parse(t)),
            })
        }
        _ => Err(ecode::CMDUNKN),
    }
}

/// A command that takes at most one modifier, `letter` (any case): D `w`,
/// Q `v`; anything else is `err`.
fn single_flag(mods: &[u8], letter: u8, err: u16) -> Result<bool, u16> {
    match mods {
        [] => Ok(false),
        [m] if m.eq_ignore_ascii_case(&letter) => Ok(true),
        _ => Err(err),
    }
}

fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn parse_addr(s: &[u8], v6: bool) -> Option<IpAddr> {
    let s = std::str::from_utf8(s).ok()?;
    if v6 {
        s.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6)
    } else {
        s.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// Consumes the run of bytes accepted by `f` starting at `i`; returns the end.
fn run_of(m: &[u8], i: usize, f: impl Fn(u8) -> bool) -> usize {
    let mut j = i;
    while m.get(j).is_some_and(|b| f(*b)) {
        j += 1;
    }
    j
}

/// U/L modifiers (§1.3), case-insensitive, any order.
fn parse_ul_mods(m: &[u8]) -> Result<UlModifiers, u16> {
    let mut out = UlModifiers::default();
    let mut i = 0;
    while let Some(&c) = m.get(i) {
        i += 1;
        match c.to_ascii_uppercase() {
            b'A' => out.asymmetric = true,
            b'S' => out.symmetric = true,
            b'W' => out.weak = true,
            b'6' => out.ipv6 = true,
            b'N' => out.new_port = true,
            b'E' | b'I' => {
                out.bridging += 1;
                // One bind address here: bridging is not possible (§1.3).
                return Err(if c.eq_ignore_ascii_case(&b'E') {
                    ecode::PARSE_E
                } else {
                    ecode::PARSE_I
                });
            }
            b'Z' => {
                let j = run_of(m, i, |b| b.is_ascii_digit());
                let ms = parse_u32(m.get(i..j).unwrap_or(&[]))
                    .filter(|v| (1..=999).contains(v))
                    .ok_or(ecode::PARSE_Z)?;
                out.repacketize = u16::try_from(ms).ok();
                i = j;
            }
            b'C' => {
                let j = run_of(m, i, |b| b.is_ascii_digit() || b == b',');
                let list = m.get(i..j).unwrap_or(&[]);
                if list.is_empty() {
                    return Err(ecode::PARSE_C);
                }
                for pt in list.split(|b| *b == b',') {
                    let v = parse_u32(pt)
                        .and_then(|v| u16::try_from(v).ok())
                        .ok_or(ecode::PARSE_C)?;
                    if out.codecs.len() < 32 {
                        out.codecs.push(v);
                    }
                }
                i = j;
            }
            b'L' | b'R' => {
                let code = if c.eq_ignore_ascii_case(&b'L') {
                    ecode::PARSE_L
                } else {
                    ecode::PARSE_R
                };
                let j = if m.get(i) == Some(&b'{') {
                    memchr::memchr(b'}', m.get(i..).unwrap_or(&[]))
                        .map(|k| i + k + 1)
                        .ok_or(code)?
                } else {
                    run_of(m, i, |b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
                };
                if j == i {
                    return Err(code);
                }
                out.local = true;
                i = j;
            }
            _ => return Err(ecode::INVLARG_UNKNOWN_MOD),
        }
    }
    Ok(out)
}

impl Command<'_> {
    /// Formats the command (client side) without cookie.
    pub fn write(&self, out: &mut Vec<u8>) {
        let sp = |out: &mut Vec<u8>| out.push(b' ');
        match self {
            Command::Version => out.push(b'V'),
            Command::Feature(f) => out.extend_from_slice(format!("VF {f}").as_bytes()),
            Command::Update(ul) | Command::Lookup(ul) => {
                out.push(if matches!(self, Command::Update(_)) {
                    b'U'
                } else {
                    b'L'
                });
                let m = &ul.mods;
                if m.asymmetric {
                    out.push(b'A');
                }
                if m.symmetric {
                    out.push(b'S');
                }
                if m.weak {
                    out.push(b'W');
                }
                if m.new_port {
                    out.push(b'N');
                }
                if let Some(z) = m.repacketize {
                    out.extend_from_slice(format!("Z{z}").as_bytes());
                }
                if !m.codecs.is_empty() {
                    out.push(b'c');
                    let list: Vec<String> = m.codecs.iter().map(u16::to_string).collect();
                    out.extend_from_slice(list.join(",").as_bytes());
                }
                let v6 = m.ipv6 || matches!(ul.addr, Some(IpAddr::V6(_)));
                if v6 {
                    out.push(b'6');
                }
                sp(out);
                out.extend_from_slice(ul.call_id);
                sp(out);
                let addr = ul.addr.unwrap_or(if v6 {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                });
                out.extend_from_slice(format!("{addr} {}", ul.port).as_bytes());
                sp(out);
                ul.from_tag.write(out);
                if let Some(t) = &ul.to_tag {
                    sp(out);
                    t.write(out);
                    if let Some((s, t)) = ul.notify {
                        sp(out);
                        out.extend_from_slice(s);
                        sp(out);
                        out.extend_from_slice(t);
                    }
                }
            }
            Command::Delete {
                weak,
                call_id,
                from_tag,
                to_tag,
            } => {
                out.extend_from_slice(if *weak { b"Dw " } else { b"D " });
                out.extend_from_slice(call_id);
                sp(out);
                from_tag.write(out);
                if let Some(t) = to_tag {
                    sp(out);
                    t.write(out);
                }
            }
            Command::Query {
                verbose,
                call_id,
                from_tag,
                to_tag,
                counters,
            } => {
                out.extend_from_slice(if *verbose { b"Qv " } else { b"Q " });
                out.extend_from_slice(call_id);
                sp(out);
                from_tag.write(out);
                if let Some(t) = to_tag {
                    sp(out);
                    t.write(out);
                    for c in counters {
                        sp(out);
                        out.extend_from_slice(c);
                    }
                }
            }
            Command::Info { load } => out.extend_from_slice(if *load { b"Il" } else { b"I" }),
            Command::DeleteAll => out.push(b'X'),
            Command::Unsupported { letter, .. } => out.push(*letter),
        }
    }

    /// `cookie SP command` (datagram mode) or the bare command.
    pub fn to_bytes(&self, cookie: Option<&[u8]>) -> Vec<u8> {
        let mut v = Vec::new();
        if let Some(c) = cookie {
            v.extend_from_slice(c);
            v.push(b' ');
        }
        self.write(&mut v);
        v
    }
}

/// Splits a datagram reply into cookie and body (client side, §1.6:
/// Kamailio skips the cookie and one space).
pub fn split_reply(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = memchr::memchr(b' ', buf)?;
    Some((buf.get(..i)?, buf.get(i + 1..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Command<'_> {
        parse_datagram(s.as_bytes()).unwrap().command
    }

    fn code(s: &str) -> u16 {
        parse_datagram(s.as_bytes()).unwrap_err().code
    }

    // §1.1 cookie example [RPW]: `c3ba... VF 20050322` → `c3ba... 1`.
    #[test]
    fn cookie_and_feature_query() {
        let r = parse_datagram(b"c3ba00fb992055e5379addc5206fa0b3 VF 20050322").unwrap();
        assert_eq!(r.cookie, Some(&b"c3ba00fb992055e5379addc5206fa0b3"[..]));
        assert_eq!(r.command, Command::Feature(20050322));
        assert_eq!(
            Reply::Number(1).to_bytes(r.cookie),
            b"c3ba00fb992055e5379addc5206fa0b3 1\n"
        );
    }

    // §1.1: a datagram with a cookie but no command is E5; stream mode has no cookie.
    #[test]
    fn cookie_without_command_is_e5() {
        let e = parse_datagram(b"123_4\n").unwrap_err();
        assert_eq!(
            e,
            ParseError {
                cookie: Some(b"123_4"),
                code: 5
            }
        );
        assert_eq!(parse_datagram(b"  ").unwrap_err().code, 5);
        assert_eq!(parse_stream(b"V\n").unwrap().command, Command::Version);
        assert_eq!(parse_stream(b"V").unwrap().cookie, None);
    }

    // §1.1 tokens: runs of SP TAB CR LF are one separator; NUL is E5; 24 tokens max.
    #[test]
    fn tokenizer_rules() {
        assert_eq!(cmd("1 \t V\r\n"), Command::Version);
        assert_eq!(code("1 V\0"), 5);
        let many = format!("1 Q c t {}", "x ".repeat(30));
        assert_eq!(code(&many), 5);
        assert_eq!(code("1 U c 1.2.3.4 5 t && V"), 3);
    }

    // §1.1 command token: first letter, case-insensitive; modifiers follow.
    #[test]
    fn command_letter_and_modifiers() {
        assert_eq!(cmd("1 vf 20071116"), Command::Feature(20071116));
        assert_eq!(cmd("1 v"), Command::Version);
        assert_eq!(code("1 Vx"), ecode::PARSE_MODS);
        assert_eq!(code("1 Xa"), ecode::PARSE_MODS);
        assert_eq!(code("1 K"), ecode::CMDUNKN);
        assert_eq!(cmd("1 X"), Command::DeleteAll);
    }

    // §1.6 [obs]: the U Kamailio 5.6.3 sent.
    #[test]
    fn kamailio_update() {
        let c = cmd("4242_7 U interop-1@127.0.0.2 127.0.0.2 16000 22281SIPpTag001;1");
        let Command::Update(ul) = c else { panic!() };
        assert_eq!(ul.call_id, b"interop-1@127.0.0.2");
        assert_eq!(ul.addr, Some("127.0.0.2".parse().unwrap()));
        assert_eq!(ul.port, 16000);
        assert_eq!(
            ul.from_tag,
            Tag {
                tag: b"22281SIPpTag001",
                media: Some(1)
            }
        );
        assert_eq!(ul.to_tag, None);
    }

    // §1.6 [obs]: the L Kamailio 5.6.3 sent, with both tags `;1`.
    #[test]
    fn kamailio_lookup() {
        let c =
            cmd("4242_8 L interop-1@127.0.0.2 127.0.0.3 17000 22281SIPpTag001;1 22280SIPpTag011;1");
        let Command::Lookup(ul) = c else { panic!() };
        assert_eq!(ul.to_tag.unwrap().tag, b"22280SIPpTag011");
        assert_eq!(ul.to_tag.unwrap().media, Some(1));
    }

    // §1.3 modifiers: A S W 6 Z C L R N; unknown E35; E/I need two addresses (E11/E12).
    #[test]
    fn ul_modifiers() {
        let Command::Update(ul) = cmd("1 UAc8,101 c 1.2.3.4 5 t;1") else {
            panic!()
        };
        assert!(ul.mods.asymmetric);
        assert_eq!(ul.mods.codecs.as_slice(), &[8, 101]);
        let Command::Update(ul) = cmd("1 UswZ20 c 1.2.3.4 5 t") else {
            panic!()
        };
        assert!(ul.mods.symmetric && ul.mods.weak);
        assert_eq!(ul.mods.repacketize, Some(20));
        let Command::Update(ul) = cmd("1 U6 c ::1 5 t") else {
            panic!()
        };
        assert_eq!(ul.addr, Some("::1".parse().unwrap()));
        assert_eq!(code("1 UZ0 c 1.2.3.4 5 t"), ecode::PARSE_Z);
        assert_eq!(code("1 UZ1000 c 1.2.3.4 5 t"), ecode::PARSE_Z);
        assert_eq!(code("1 Uc c 1.2.3.4 5 t"), ecode::PARSE_C);
        assert_eq!(code("1 UQ c 1.2.3.4 5 t"), ecode::INVLARG_UNKNOWN_MOD);
        assert_eq!(code("1 UE c 1.2.3.4 5 t"), ecode::PARSE_E);
        assert_eq!(code("1 UI c 1.2.3.4 5 t"), ecode::PARSE_I);
        assert!(matches!(
            cmd("1 UL10.0.0.1 c 1.2.3.4 5 t"),
            Command::Update(_)
        ));
        assert!(matches!(
            cmd("1 UL{lbl}N c 1.2.3.4 5 t"),
            Command::Update(_)
        ));
        assert_eq!(code("1 UL c 1.2.3.4 5 t"), ecode::PARSE_L);
    }

    // §1.2 argument counts: U 5–8, L 5–6; bad address E32; 0.0.0.0 is hold (§1.3).
    #[test]
    fn ul_arguments() {
        assert_eq!(code("1 U c 1.2.3.4 5"), ecode::PARSE_NARGS);
        assert_eq!(code("1 L c 1.2.3.4 5 a b c"), ecode::PARSE_NARGS);
        assert_eq!(code("1 U c 1.2.3.4 5 a b c"), ecode::PARSE_NARGS);
        assert_eq!(code("1 U c host 5 a"), ecode::INVLARG_REMOTE);
        assert_eq!(code("1 U c ::1 5 a"), ecode::INVLARG_REMOTE);
        assert_eq!(code("1 U c 1.2.3.4 70000 a"), ecode::INVLARG_REMOTE);
        let Command::Update(ul) = cmd("1 U c 0.0.0.0 5 a") else {
            panic!()
        };
        assert_eq!(ul.addr, None);
        let Command::Update(ul) = cmd("1 U c 1.2.3.4 5 a b /tmp/s tag") else {
            panic!()
        };
        assert_eq!(ul.notify, Some((&b"/tmp/s"[..], &b"tag"[..])));
    }

    // §1.2 D[w], Q[v], I[b][l] modifiers and errors (E8, E19, E18).
    #[test]
    fn delete_query_info() {
        assert!(matches!(
            cmd("1 D c a b"),
            Command::Delete { weak: false, .. }
        ));
        assert!(matches!(
            cmd("1 Dw c a"),
            Command::Delete {
                weak: true,
                to_tag: None,
                ..
            }
        ));
        assert_eq!(code("1 Dx c a"), ecode::PARSE_D_MODS);
        assert_eq!(code("1 D c"), ecode::PARSE_NARGS);
        let Command::Query {
            verbose, counters, ..
        } = cmd("1 Qv c a;1 b ttl nrelayed")
        else {
            panic!()
        };
        assert!(verbose);
        assert_eq!(counters.as_slice(), &[&b"ttl"[..], b"nrelayed"]);
        assert_eq!(code("1 Qx c a"), ecode::PARSE_Q_MODS);
        assert_eq!(cmd("1 Ibl"), Command::Info { load: true });
        assert_eq!(code("1 Iz"), ecode::PARSE_INFO_MODS);
    }

    // §1.4: `tag;N` is the tag for media stream N.
    #[test]
    fn tags() {
        assert_eq!(
            Tag::parse(b"abc;2"),
            Tag {
                tag: b"abc",
                media: Some(2)
            }
        );
        assert_eq!(
            Tag::parse(b"abc"),
            Tag {
                tag: b"abc",
                media: None
            }
        );
        assert_eq!(
            Tag::parse(b"a;b"),
            Tag {
                tag: b"a;b",
                media: None
            }
        );
        assert_eq!(
            Tag::parse(b"a;0"),
            Tag {
                tag: b"a;0",
                media: None
            }
        );
    }

    // §1.1 reply formats; §1.3 `port addr[ 6]`; §1.7 rtpengine's trailing `4`.
    #[test]
    fn replies() {
        assert_eq!(Reply::Error(50).to_bytes(Some(b"k")), b"k E50\n");
        assert_eq!(Reply::Number(20040107).to_bytes(None), b"20040107\n");
        let p = Reply::Port {
            port: 30000,
            addr: Some("127.0.0.1".parse().unwrap()),
        };
        assert_eq!(p.to_bytes(Some(b"k")), b"k 30000 127.0.0.1\n");
        let p6 = Reply::Port {
            port: 30000,
            addr: Some("::1".parse().unwrap()),
        };
        assert_eq!(p6.to_bytes(None), b"30000 ::1 6\n");
        assert_eq!(Reply::parse(b"30000 127.0.0.1 4\n"), p);
        assert_eq!(Reply::parse(b"30000 ::1 6\n"), p6);
        assert_eq!(Reply::parse(b"E71\n"), Reply::Error(71));
        assert_eq!(Reply::parse(b"0\n"), Reply::Number(0));
        assert_eq!(split_reply(b"1_2 0\n"), Some((&b"1_2"[..], &b"0\n"[..])));
    }

    // Client encoding round-trips through the server parser (§1.6 Kamailio's form).
    #[test]
    fn client_roundtrip() {
        let text = "4_1 Lc8,101 call 127.0.0.3 17000 ft;1 tt;1";
        let c = cmd(text);
        let bytes = c.to_bytes(Some(b"4_1"));
        let again = parse_datagram(&bytes).unwrap().command;
        assert_eq!(format!("{again:?}"), format!("{c:?}"));
        for t in [
            "9 D call ft tt",
            "9 Qv call ft;1 tt ttl",
            "9 VF 20050322",
            "9 Il",
            "9 X",
        ] {
            let c = cmd(t);
            assert_eq!(c.to_bytes(Some(b"9")), t.as_bytes(), "{t}");
        }
    }
}
