//! A small blocking UDP client for both control protocols, for sipfront
//! (and tests): it writes `cookie SP command`, waits for a datagram that
//! starts with the same cookie, and retransmits the same bytes on timeout,
//! as Kamailio's modules do (reference §1.6, §2.7). The server answers a
//! retransmission from its reply cache, so a retry never runs twice.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::classic::{self, Command, Reply as ClassicReply};
use crate::ng::{self, Reply as NgReply, Request as NgRequest};

/// Why a request got no usable answer.
#[derive(Debug)]
pub enum ClientError {
    Io(io::Error),
    /// No reply after every retransmission.
    Timeout,
    /// A reply with our cookie that did not decode.
    BadReply(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Timeout => write!(f, "no reply from the relay"),
            ClientError::BadReply(e) => write!(f, "bad reply: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// A client bound to one relay.
#[derive(Debug)]
pub struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    /// Wait per attempt.
    pub timeout: Duration,
    /// Attempts in total (first send included).
    pub attempts: u32,
    seq: AtomicU64,
    prefix: String,
}

impl Client {
    /// Binds an ephemeral local port of the server's family (on loopback
    /// when the server is on loopback).
    pub fn new(server: SocketAddr) -> io::Result<Client> {
        let ip: IpAddr = match (server.ip().is_loopback(), server.is_ipv4()) {
            (true, _) => server.ip(),
            (false, true) => Ipv4Addr::UNSPECIFIED.into(),
            (false, false) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let local = SocketAddr::new(ip, 0);
        let sock = UdpSocket::bind(local)?;
        Ok(Client {
            sock,
            server,
            timeout: Duration::from_millis(500),
            attempts: 5,
            seq: AtomicU64::new(1),
            prefix: format!("{}", std::process::id()),
        })
    }

    /// The next cookie, `<pid>_<seq>` like Kamailio's.
    pub fn cookie(&self) -> String {
        format!(
            "{}_{}",
            self.prefix,
            self.seq.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Sends `cookie SP body` and returns the reply body after `cookie SP`.
    pub fn exchange(&self, cookie: &str, body: &[u8]) -> Result<Vec<u8>, ClientError> {
        let mut msg = Vec::with_capacity(cookie.len() + 1 + body.len());
        msg.extend_from_slice(cookie.as_bytes());
        msg.push(b' ');
        msg.extend_from_slice(body);
        let mut buf = vec![0u8; 0x40000];
        for _ in 0..self.attempts.max(1) {
            self.sock.send_to(&msg, self.server)?;
            let deadline = Instant::now() + self.timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.sock.set_read_timeout(Some(left))?;
                let n = match self.sock.recv_from(&mut buf) {
                    Ok((n, from)) if from == self.server => n,
                    Ok(_) => continue,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(e.into()),
                };
                let data = buf.get(..n).unwrap_or(&[]);
                if let Some((c, rest)) = classic::split_reply(data) {
                    if c == cookie.as_bytes() {
                        return Ok(rest.to_vec());
                    }
                }
            }
        }
        Err(ClientError::Timeout)
    }

    /// One classic command over UDP.
    pub fn classic(&self, cmd: &Command<'_>) -> Result<ClassicReply, ClientError> {
        let mut body = Vec::new();
        cmd.write(&mut body);
        let r = self.exchange(&self.cookie(), &body)?;
        Ok(ClassicReply::parse(&r))
    }

    /// One ng request.
    pub fn ng(&self, req: &NgRequest<'_>) -> Result<NgReply, ClientError> {
        let r = self.exchange(&self.cookie(), &req.encode())?;
        NgReply::decode(&r).map_err(|e| ClientError::BadReply(e.0))
    }

    /// `ping` → true when the relay answers `pong`.
    pub fn ping(&self) -> Result<bool, ClientError> {
        Ok(self.ng(&NgRequest::new(ng::CommandKind::Ping))? == NgReply::Pong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The client retransmits the same cookie and bytes until answered
    // (reference §1.6 / §2.7 retransmission), ignoring other cookies.
    #[test]
    fn retransmits_and_matches_cookie() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            let (n1, from) = server.recv_from(&mut buf).unwrap();
            let first = buf[..n1].to_vec();
            // Ignore the first attempt; answer the second with a stray cookie first.
            let (n2, _) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n2], &first[..]);
            server.send_to(b"other 0\n", from).unwrap();
            let cookie = first.split(|b| *b == b' ').next().unwrap().to_vec();
            let mut reply = cookie;
            reply.extend_from_slice(b" 20040107\n");
            server.send_to(&reply, from).unwrap();
        });
        let mut c = Client::new(addr).unwrap();
        c.timeout = Duration::from_millis(100);
        assert_eq!(
            c.classic(&Command::Version).unwrap(),
            ClassicReply::Number(20040107)
        );
        t.join().unwrap();
    }

    #[test]
    fn times_out() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut c = Client::new(server.local_addr().unwrap()).unwrap();
        c.timeout = Duration::from_millis(20);
        c.attempts = 2;
        assert!(matches!(c.ping(), Err(ClientError::Timeout)));
    }
}
