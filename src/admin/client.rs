//! `sipfront ctl`: a small HTTP client for the admin API, like Kamailio's
//! `kamcmd dispatcher.list` / `dispatcher.set_state` / `cfg.reload`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// What `sipfront ctl` asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Backends,
    Set {
        set: String,
        uri: String,
        state: String,
    },
    Reload,
    Stats,
    Nat,
    Metrics,
    Health,
    Ready,
}

/// Percent-encodes a path segment (everything but unreserved characters).
pub fn encode_segment(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

impl Action {
    /// Method, path and body.
    pub fn request(&self) -> (&'static str, String, String) {
        match self {
            Action::Backends => ("GET", "/backends".into(), String::new()),
            Action::Set { set, uri, state } => (
                "POST",
                format!(
                    "/backends/{}/{}/state",
                    encode_segment(set),
                    encode_segment(uri)
                ),
                state.clone(),
            ),
            Action::Reload => ("POST", "/reload".into(), String::new()),
            Action::Stats => ("GET", "/stats".into(), String::new()),
            Action::Nat => ("GET", "/nat".into(), String::new()),
            Action::Metrics => ("GET", "/metrics".into(), String::new()),
            Action::Health => ("GET", "/health".into(), String::new()),
            Action::Ready => ("GET", "/ready".into(), String::new()),
        }
    }
}

/// `http://host:port` (or `host:port`) → a socket address and the Host value.
pub fn parse_admin_url(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if url.starts_with("https://") {
        return Err("https is not supported; the admin API speaks plain HTTP on loopback".into());
    }
    let hostport = rest.split('/').next().unwrap_or("");
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("{url:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url:?}: no address"))?;
    Ok((addr, hostport.to_string()))
}

/// Sends one request; returns the status and the body.
pub fn call(url: &str, token: Option<&str>, action: &Action) -> Result<(u16, String), String> {
    let (addr, host) = parse_admin_url(url)?;
    let (method, path, body) = action.request();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(|e| e.to_string())?;
    parse_response(&resp)
}

/// Status and body of a `Connection: close` response.
pub fn parse_response(resp: &[u8]) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(resp);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "malformed HTTP response".to_string())?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| "malformed HTTP status line".to_string())?;
    Ok((status, body.to_string()))
}

/// Runs `sipfront ctl`; returns the exit code (0 on a 2xx answer).
pub fn run(url: &str, token: Option<&str>, action: &Action) -> i32 {
    match call(url, token, action) {
        Ok((status, body)) => {
            if (200..300).contains(&status) {
                print!("{body}");
                0
            } else {
                eprint!("sipfront ctl: HTTP {status}: {body}");
                if !body.ends_with('\n') {
                    eprintln!();
                }
                1
            }
        }
        Err(e) => {
            eprintln!("sipfront ctl: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_state_path_encodes_the_uri() {
        let a = Action::Set {
            set: "pbx".into(),
            uri: "sip:10.0.0.5:5060;transport=udp".into(),
            state: "drain".into(),
        };
        let (m, p, b) = a.request();
        assert_eq!(m, "POST");
        assert_eq!(
            p,
            "/backends/pbx/sip%3A10.0.0.5%3A5060%3Btransport%3Dudp/state"
        );
        assert_eq!(b, "drain");
        assert_eq!(
            crate::admin::http::percent_decode("sip%3A10.0.0.5%3A5060%3Btransport%3Dudp")
                .as_deref(),
            Some("sip:10.0.0.5:5060;transport=udp")
        );
    }

    #[test]
    fn urls_and_responses() {
        assert_eq!(
            parse_admin_url("http://127.0.0.1:9090").unwrap().0,
            "127.0.0.1:9090".parse().unwrap()
        );
        assert!(parse_admin_url("127.0.0.1:9090/x").is_ok());
        assert!(parse_admin_url("https://127.0.0.1:9090").is_err());
        assert!(parse_admin_url("http://nohost").is_err());
        assert_eq!(
            parse_response(b"HTTP/1.1 503 Service Unavailable\r\nA: b\r\n\r\ndraining\n").unwrap(),
            (503, "draining\n".to_string())
        );
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 x\r\n\r\n").is_err());
    }
}
