//! The rtpengine "ng" control protocol (reference Part 2), sans I/O:
//! `cookie SP bencoded-dictionary` in, the same cookie and a dictionary out.
//! Requests decode into a typed [`Request`]; replies are built as
//! [`Reply`] and encoded. The client side encodes a [`Request`] and decodes
//! a [`Reply`] with the same types.

use std::net::IpAddr;

use smallvec::SmallVec;

use crate::bencode::{self, Encoder, Value};

/// Splits `cookie SP document` (§2.1). `None` when there is no space or
/// the space is first (rtpengine drops those with a log line).
pub fn split(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = memchr::memchr(b' ', buf)?;
    if i == 0 {
        return None;
    }
    Some((buf.get(..i)?, buf.get(i + 1..)?))
}

/// ng commands (§2.1); the ones this relay executes, plus the rest by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    Ping,
    Offer,
    Answer,
    Delete,
    Query,
    List,
}

impl CommandKind {
    pub fn from_name(s: &[u8]) -> Option<CommandKind> {
        Some(match s {
            b"ping" => CommandKind::Ping,
            b"offer" => CommandKind::Offer,
            b"answer" => CommandKind::Answer,
            b"delete" => CommandKind::Delete,
            b"query" => CommandKind::Query,
            b"list" => CommandKind::List,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Ping => "ping",
            CommandKind::Offer => "offer",
            CommandKind::Answer => "answer",
            CommandKind::Delete => "delete",
            CommandKind::Query => "query",
            CommandKind::List => "list",
        }
    }
}

/// `ICE` key values (§2.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ice {
    /// Not given: ICE lines are carried through.
    #[default]
    Default,
    /// `remove`: strip ICE attributes.
    Remove,
    /// `force`, `force-relay`, `optional`...: accepted; this relay does not
    /// terminate ICE, so ICE lines are carried through.
    Other,
}

/// The flags and options of offer/answer/delete this relay acts on (§2.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `SIP source address`: use `received-from` instead of the SDP address.
    pub sip_source_address: bool,
    /// `trust address` (the default).
    pub trust_address: bool,
    pub symmetric: bool,
    /// `asymmetric`: no endpoint learning.
    pub asymmetric: bool,
    /// `strict source`: drop packets not from the signalled address.
    pub strict_source: bool,
    /// `media handover`: re-learn on every new source.
    pub media_handover: bool,
    /// `no rtcp attribute`.
    pub no_rtcp_attribute: bool,
    /// `full rtcp attribute`.
    pub full_rtcp_attribute: bool,
    /// `fatal` (delete: unknown call is an error).
    pub fatal: bool,
    /// `replace`: `origin`.
    pub replace_origin: bool,
    /// `replace`: `session connection` / `session-connection`.
    pub replace_session_connection: bool,
    pub ice: Ice,
    /// `direction`: interface names; accepted, one interface here.
    pub direction: SmallVec<[String; 2]>,
    /// `received-from`: the SIP source address.
    pub received_from: Option<IpAddr>,
}

/// A decoded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub command: CommandKind,
    pub call_id: Option<&'a [u8]>,
    pub from_tag: Option<&'a [u8]>,
    pub to_tag: Option<&'a [u8]>,
    pub via_branch: Option<&'a [u8]>,
    pub sdp: Option<&'a [u8]>,
    pub options: Options,
    /// `list`: `limit`.
    pub limit: Option<i64>,
}

impl<'a> Request<'a> {
    pub fn new(command: CommandKind) -> Request<'a> {
        Request {
            command,
            call_id: None,
            from_tag: None,
            to_tag: None,
            via_branch: None,
            sdp: None,
            options: Options::default(),
            limit: None,
        }
    }
}

/// Why a request could not be executed: the `error-reason` to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestError(pub String);

/// Normalizes a flag: hyphens and underscores as spaces, lowercase
/// (§2.3: "spaces may be written as hyphens").
fn norm(s: &[u8]) -> String {
    s.iter()
        .map(|b| match b {
            b'-' | b'_' => ' ',
            b => char::from(b.to_ascii_lowercase()),
        })
        .collect()
}

/// Decodes a request document (after the cookie).
pub fn decode_request(doc: &[u8]) -> Result<Request<'_>, RequestError> {
    match doc.first() {
        Some(b'd') => {}
        Some(b'{') => return Err(RequestError("JSON is not supported".into())),
        _ => return Err(RequestError("Invalid NG data format".into())),
    }
    let v = bencode::decode(doc).map_err(|e| RequestError(format!("Failed to decode: {e}")))?;
    let Value::Dict(_) = v else {
        return Err(RequestError("Invalid NG data format".into()));
    };
    let cmd = v
        .get("command")
        .ok_or_else(|| RequestError("Dictionary contains no key \"command\"".into()))?;
    let command = cmd
        .as_bytes()
        .and_then(CommandKind::from_name)
        .ok_or_else(|| RequestError("Unrecognized command".into()))?;
    let s = |k: &str| v.get(k).and_then(Value::as_bytes);
    let mut r = Request::new(command);
    r.call_id = s("call-id");
    r.from_tag = s("from-tag");
    r.to_tag = s("to-tag");
    r.via_branch = s("via-branch");
    r.sdp = s("sdp");
    r.limit = v.get("limit").and_then(Value::as_int);
    let o = &mut r.options;
    let list = |k: &str| -> Vec<&[u8]> {
        match v.get(k) {
            Some(Value::List(l)) => l.iter().filter_map(Value::as_bytes).collect(),
            Some(Value::Bytes(b)) => vec![*b],
            _ => Vec::new(),
        }
    };
    for f in list("flags") {
        match norm(f).as_str() {
            "sip source address" => o.sip_source_address = true,
            "trust address" => o.trust_address = true,
            "symmetric" => o.symmetric = true,
            "asymmetric" => o.asymmetric = true,
            "strict source" => o.strict_source = true,
            "media handover" => o.media_handover = true,
            "no rtcp attribute" => o.no_rtcp_attribute = true,
            "full rtcp attribute" => o.full_rtcp_attribute = true,
            "fatal" => o.fatal = true,
            _ => {}
        }
    }
    for f in list("replace") {
        match norm(f).as_str() {
            "origin" => o.replace_origin = true,
            "session connection" => o.replace_session_connection = true,
            _ => {}
        }
    }
    for f in list("direction").into_iter().take(2) {
        o.direction.push(String::from_utf8_lossy(f).into_owned());
    }
    o.ice = match v.get("ICE").and_then(Value::as_bytes).map(norm).as_deref() {
        None => Ice::Default,
        Some("remove") => Ice::Remove,
        Some(_) => Ice::Other,
    };
    if let Some(rf) = v.get("received-from").and_then(Value::as_list) {
        o.received_from = rf
            .get(1)
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok());
    }
    Ok(r)
}

impl Request<'_> {
    /// Encodes the request document (client side), keys in Kamailio's order
    /// (§2.7).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.begin_dict();
        if let Some(sdp) = self.sdp {
            e.kv_str("sdp", sdp);
        }
        let o = &self.options;
        let mut flags: Vec<&str> = Vec::new();
        for (on, name) in [
            (o.sip_source_address, "SIP-source-address"),
            (o.trust_address, "trust-address"),
            (o.symmetric, "symmetric"),
            (o.asymmetric, "asymmetric"),
            (o.strict_source, "strict-source"),
            (o.media_handover, "media-handover"),
            (o.no_rtcp_attribute, "no-rtcp-attribute"),
            (o.full_rtcp_attribute, "full-rtcp-attribute"),
            (o.fatal, "fatal"),
        ] {
            if on {
                flags.push(name);
            }
        }
        if !flags.is_empty() {
            e.str("flags").begin_list();
            for f in flags {
                e.str(f);
            }
            e.end();
        }
        if o.replace_origin || o.replace_session_connection {
            e.str("replace").begin_list();
            if o.replace_origin {
                e.str("origin");
            }
            if o.replace_session_connection {
                e.str("session-connection");
            }
            e.end();
        }
        if !o.direction.is_empty() {
            e.str("direction").begin_list();
            for d in &o.direction {
                e.str(d);
            }
            e.end();
        }
        if o.ice == Ice::Remove {
            e.kv_str("ICE", b"remove");
        }
        if let Some(c) = self.call_id {
            e.kv_str("call-id", c);
        }
        if let Some(b) = self.via_branch {
            e.kv_str("via-branch", b);
        }
        if let Some(a) = o.received_from {
            let fam: &str = if a.is_ipv4() { "IP4" } else { "IP6" };
            e.str("received-from")
                .begin_list()
                .str(fam)
                .str(&a.to_string())
                .end();
        }
        if let Some(t) = self.from_tag {
            e.kv_str("from-tag", t);
        }
        if let Some(t) = self.to_tag {
            e.kv_str("to-tag", t);
        }
        if let Some(l) = self.limit {
            e.kv_int("limit", l);
        }
        e.kv_str("command", self.command.as_str().as_bytes());
        e.end();
        e.buf
    }
}

/// A reply document under construction (server) or decoded (client).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `{"result":"pong"}` (§2.2).
    Pong,
    /// `{"result":"ok", ...}`: extra entries as pre-encoded bencode pairs
    /// (key, encoded value) in order, plus an optional `warning`.
    Ok {
        sdp: Option<Vec<u8>>,
        warning: Option<String>,
        /// Further entries: key and already-encoded value.
        extra: Vec<(String, Vec<u8>)>,
    },
    /// `{"result":"error","error-reason":...}` (§2.1).
    Error(String),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Ok {
            sdp: None,
            warning: None,
            extra: Vec::new(),
        }
    }

    pub fn error(reason: impl Into<String>) -> Reply {
        Reply::Error(reason.into())
    }

    /// `cookie SP document`.
    pub fn to_bytes(&self, cookie: &[u8]) -> Vec<u8> {
        let mut e = Encoder::with_buf(Vec::with_capacity(64 + cookie.len()));
        e.buf.extend_from_slice(cookie);
        e.buf.push(b' ');
        self.encode_into(&mut e);
        e.buf
    }

    pub fn encode_into(&self, e: &mut Encoder) {
        e.begin_dict();
        match self {
            Reply::Pong => {
                e.kv_str("result", b"pong");
            }
            Reply::Error(reason) => {
                e.kv_str("result", b"error")
                    .kv_str("error-reason", reason.as_bytes());
            }
            Reply::Ok {
                sdp,
                warning,
                extra,
            } => {
                e.kv_str("result", b"ok");
                if let Some(s) = sdp {
                    e.kv_str("sdp", s);
                }
                if let Some(w) = warning {
                    e.kv_str("warning", w.as_bytes());
                }
                for (k, v) in extra {
                    e.str(k);
                    e.buf.extend_from_slice(v);
                }
            }
        }
        e.end();
    }

    /// Decodes a reply document (client side; cookie removed).
    pub fn decode(doc: &[u8]) -> Result<Reply, RequestError> {
        let v = bencode::decode(doc).map_err(|e| RequestError(format!("bad reply: {e}")))?;
        let result = v
            .get("result")
            .and_then(Value::as_bytes)
            .ok_or_else(|| RequestError("reply without result".into()))?;
        match result {
            b"pong" => Ok(Reply::Pong),
            b"error" | b"load limit" => Ok(Reply::Error(
                v.get("error-reason")
                    .or_else(|| v.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("load limit")
                    .to_string(),
            )),
            b"ok" => {
                let mut extra = Vec::new();
                for (k, x) in v.as_dict().unwrap_or(&[]) {
                    if !matches!(*k, b"result" | b"sdp" | b"warning") {
                        let mut e = Encoder::new();
                        e.value(x);
                        extra.push((String::from_utf8_lossy(k).into_owned(), e.buf));
                    }
                }
                Ok(Reply::Ok {
                    sdp: v.get("sdp").and_then(Value::as_bytes).map(<[u8]>::to_vec),
                    warning: v.get("warning").and_then(Value::as_str).map(str::to_string),
                    extra,
                })
            }
            other => Err(RequestError(format!(
                "unknown result {}",
                String::from_utf8_lossy(other)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // §2.1 / rtpengine README: `5323_1 d7:command4:pinge` → `5323_1 d6:result4:ponge`.
    #[test]
    fn readme_ping() {
        let (cookie, doc) = split(b"5323_1 d7:command4:pinge").unwrap();
        assert_eq!(cookie, b"5323_1");
        assert_eq!(decode_request(doc).unwrap().command, CommandKind::Ping);
        assert_eq!(Reply::Pong.to_bytes(cookie), b"5323_1 d6:result4:ponge");
    }

    // §2.1: no space, or the space first → dropped.
    #[test]
    fn framing_without_cookie() {
        assert_eq!(split(b"d7:command4:pinge"), None);
        assert_eq!(split(b" d7:command4:pinge"), None);
    }

    // §2.1 error replies: missing command, unknown command, not a dictionary.
    #[test]
    fn request_errors() {
        assert_eq!(
            decode_request(b"d3:foo3:bare").unwrap_err().0,
            "Dictionary contains no key \"command\""
        );
        assert_eq!(
            decode_request(b"d7:command5:blorpe").unwrap_err().0,
            "Unrecognized command"
        );
        assert_eq!(
            decode_request(b"l4:pinge").unwrap_err().0,
            "Invalid NG data format"
        );
        assert!(decode_request(b"d7:command").is_err());
        assert_eq!(
            Reply::error("Unknown call-id").to_bytes(b"c"),
            b"c d6:result5:error12:error-reason15:Unknown call-ide"
        );
    }

    // §2.7 [obs]: the offer dictionary Kamailio 5.6.3 sent (flags
    // replace-origin replace-session-connection), keys in its order.
    #[test]
    fn kamailio_offer() {
        let doc = b"d8:supportsl10:load limite3:sdp10:v=0\r\no=x\r\n7:replacel6:origin18:session-connectione7:call-id17:interop-1@1.2.3.413:received-froml3:IP49:127.0.0.2e8:from-tag15:24408SIPpTag0017:command5:offere";
        let r = decode_request(doc).unwrap();
        assert_eq!(r.command, CommandKind::Offer);
        assert_eq!(r.call_id, Some(&b"interop-1@1.2.3.4"[..]));
        assert_eq!(r.from_tag, Some(&b"24408SIPpTag001"[..]));
        assert_eq!(r.to_tag, None);
        assert_eq!(r.sdp, Some(&b"v=0\r\no=x\r\n"[..]));
        assert!(r.options.replace_origin && r.options.replace_session_connection);
        assert_eq!(r.options.received_from, Some("127.0.0.2".parse().unwrap()));
    }

    // §2.3 flags: hyphens for spaces, ICE=remove, direction.
    #[test]
    fn flags_and_options() {
        let doc = b"d5:flagsl13:trust-address10:asymmetric13:strict source18:SIP-source-address17:no-rtcp-attributee3:ICE6:remove9:directionl8:internal8:externale7:command6:answere";
        let r = decode_request(doc).unwrap();
        let o = &r.options;
        assert!(o.trust_address && o.asymmetric && o.strict_source && o.sip_source_address);
        assert!(o.no_rtcp_attribute);
        assert_eq!(o.ice, Ice::Remove);
        assert_eq!(
            o.direction.as_slice(),
            &["internal".to_string(), "external".to_string()]
        );
    }

    // Client encoding decodes back to the same request (§2.7 key order).
    #[test]
    fn request_roundtrip() {
        let mut r = Request::new(CommandKind::Answer);
        r.call_id = Some(b"c1");
        r.from_tag = Some(b"f");
        r.to_tag = Some(b"t");
        r.sdp = Some(b"v=0\r\n");
        r.options.replace_origin = true;
        r.options.symmetric = true;
        r.options.ice = Ice::Remove;
        r.options.received_from = Some("10.0.0.1".parse().unwrap());
        let enc = r.encode();
        assert!(enc.ends_with(b"7:command6:answere"));
        assert_eq!(decode_request(&enc).unwrap(), r);
    }

    // §2.3/§2.5 replies: ok+sdp, ok+warning, and decoding them back.
    #[test]
    fn reply_roundtrip() {
        let r = Reply::Ok {
            sdp: Some(b"v=0\r\n".to_vec()),
            warning: None,
            extra: vec![],
        };
        let b = r.to_bytes(b"k");
        assert_eq!(b, b"k d6:result2:ok3:sdp5:v=0\r\ne");
        assert_eq!(Reply::decode(&b[2..]).unwrap(), r);
        let w = Reply::Ok {
            sdp: None,
            warning: Some("Call-ID not found or tags didn't match".into()),
            extra: vec![("created".into(), b"i5e".to_vec())],
        };
        assert_eq!(Reply::decode(&w.to_bytes(b"k")[2..]).unwrap(), w);
        assert_eq!(
            Reply::decode(b"d6:result10:load limit7:message4:busye").unwrap(),
            Reply::Error("busy".into())
        );
    }
}
