//! A minimal HTTP/1.1 server side for the admin API: one request per
//! connection (`Connection: close`), bounded sizes, read/write timeouts,
//! and a constant-time bearer-token check. Everything here parses bytes
//! from the network and never panics on them.

use std::io::{self, Read, Write};
use std::time::Duration;

/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body (the API takes none of note).
pub const MAX_BODY: usize = 64 * 1024;
/// Time a client has to send its request, and to read the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without the query, as sent (percent-encoded).
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The path's segments, each percent-decoded (so a segment may hold
    /// an encoded `/`, as a SIP URI in `/backends/{set}/{uri}/state`).
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s).unwrap_or_default())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read; the status to answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub reason: String,
}

fn bad(status: u16, reason: impl Into<String>) -> HttpError {
    HttpError {
        status,
        reason: reason.into(),
    }
}

/// Decodes `%XX` escapes; `None` on a bad escape or non-UTF-8 result.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Method, path and headers of a request head.
pub type Head = (String, String, Vec<(String, String)>);

/// Parses a request head (up to and excluding the blank line).
pub fn parse_head(head: &[u8]) -> Result<Head, HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| bad(400, "request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad(505, "only HTTP/1.x"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad(400, "malformed method"));
    }
    if !target.starts_with('/') {
        return Err(bad(400, "the target must be a path"));
    }
    let raw_path = target.split(['?', '#']).next().unwrap_or("/");
    if raw_path.split('/').any(|seg| percent_decode(seg).is_none()) {
        return Err(bad(400, "bad percent-encoding"));
    }
    let path = raw_path.to_string();
    let mut headers = Vec::new();
    for l in lines {
        if l.is_empty() {
            continue;
        }
        let (n, v) = l
            .split_once(':')
            .ok_or_else(|| bad(400, "malformed header line"))?;
        if n.is_empty()
            || n.bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(bad(400, "malformed header name"));
        }
        if headers.len() >= 100 {
            return Err(bad(431, "too many headers"));
        }
        headers.push((n.to_string(), v.trim().to_string()));
    }
    Ok((method.to_string(), path, headers))
}

/// Reads one request from `r`, at most [`MAX_HEAD`] + [`MAX_BODY`] bytes.
pub fn read_request(r: &mut impl Read) -> Result<Request, HttpError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let head_end = loop {
        if let Some(p) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad(431, "request head too large"));
        }
        let n = r
            .read(&mut chunk)
            .map_err(|e| bad(408, format!("reading the request: {e}")))?;
        if n == 0 {
            return Err(bad(400, "connection closed before the end of the head"));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    };
    let (method, path, headers) = parse_head(buf.get(..head_end).unwrap_or(&[]))?;
    let mut req = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if req.header("transfer-encoding").is_some() {
        return Err(bad(
            411,
            "chunked bodies are not supported; send Content-Length",
        ));
    }
    let len = match req.header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| bad(400, "bad Content-Length"))?,
    };
    if len > MAX_BODY {
        return Err(bad(413, "body too large"));
    }
    let mut body = buf.get(head_end + 4..).unwrap_or(&[]).to_vec();
    while body.len() < len {
        let n = r
            .read(&mut chunk)
            .map_err(|e| bad(408, format!("reading the body: {e}")))?;
        if n == 0 {
            return Err(bad(400, "connection closed before the end of the body"));
        }
        body.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
    body.truncate(len);
    req.body = body;
    Ok(req)
}

/// An answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: body.into(),
        }
    }
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

pub fn write_response(w: &mut impl Write, r: &Response) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
        r.status,
        reason_phrase(r.status),
        r.content_type,
        r.body.len()
    );
    if r.status == 401 {
        head.push_str("WWW-Authenticate: Bearer realm=\"sipfront\"\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(r.body.as_bytes())?;
    w.flush()
}

/// Compares in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `req` carries `Authorization: Bearer <token>` (always true
/// without a token configured).
pub fn authorized(req: &Request, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let Some(v) = req.header("authorization") else {
        return false;
    };
    let Some((scheme, given)) = v.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

/// Escapes a string for a JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &[u8]) -> Result<Request, HttpError> {
        read_request(&mut &s[..])
    }

    #[test]
    fn parses_a_request_with_a_body_and_encoded_path() {
        let r = read(
            b"POST /backends/pbx/sip%3A10.0.0.5%3A5060/state?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\nAuthorization: Bearer s3cret\r\n\r\ndisabled",
        )
        .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/backends/pbx/sip%3A10.0.0.5%3A5060/state");
        assert_eq!(
            r.segments(),
            ["backends", "pbx", "sip:10.0.0.5:5060", "state"]
        );
        assert_eq!(r.body, b"disabled");
        assert_eq!(r.header("HOST"), Some("a"));
        assert!(authorized(&r, Some("s3cret")));
        assert!(!authorized(&r, Some("s3cre")));
        assert!(!authorized(&r, Some("s3creT")));
        assert!(authorized(&r, None));
    }

    #[test]
    fn refuses_bad_input_without_panicking() {
        let cases: &[(&[u8], u16)] = &[
            (b"", 400),
            (b"GET\r\n\r\n", 400),
            (b"GET / HTTP/2\r\n\r\n", 505),
            (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
            (b"get / HTTP/1.1\r\n\r\n", 400),
            (b"GET http://x/ HTTP/1.1\r\n\r\n", 400),
            (b"GET /%zz HTTP/1.1\r\n\r\n", 400),
            (b"GET /%ff HTTP/1.1\r\n\r\n", 400),
            (b"GET /% HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n: v\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
            (b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 400),
            (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
            (b"\xff\xfe / HTTP/1.1\r\n\r\n", 400),
        ];
        for (input, status) in cases {
            let e = read(input).unwrap_err();
            assert_eq!(
                e.status,
                *status,
                "{:?}: {e:?}",
                String::from_utf8_lossy(input)
            );
        }
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        assert_eq!(read(&big).unwrap_err().status, 431);
    }

    #[test]
    fn token_check_wants_the_bearer_scheme() {
        let mut r = read(b"GET / HTTP/1.1\r\nAuthorization: Basic s3cret\r\n\r\n").unwrap();
        assert!(!authorized(&r, Some("s3cret")));
        r.headers.clear();
        assert!(!authorized(&r, Some("s3cret")));
        r.headers
            .push(("authorization".into(), "bearer s3cret".into()));
        assert!(authorized(&r, Some("s3cret")));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b""));
    }

    #[test]
    fn responses_and_json() {
        let mut out = Vec::new();
        write_response(&mut out, &Response::text(401, "no")).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
        assert!(s.contains("WWW-Authenticate: Bearer"));
        assert!(s.ends_with("\r\n\r\nno"));
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
