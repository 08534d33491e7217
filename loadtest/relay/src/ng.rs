//! A minimal ng-protocol client: offer/answer with a one-stream PCMA SDP, and
//! just enough bencode to read the relay's SDP back.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

pub struct Client {
    sock: UdpSocket,
    relay: SocketAddr,
    seq: u64,
}

fn bstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{}:", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// The value of `key` in a bencoded dictionary of strings/lists/ints, if it
/// is a string. Only the top level is searched.
pub fn dict_str<'a>(doc: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let mut i = 1; // past 'd'
    if doc.first() != Some(&b'd') {
        return None;
    }
    while i < doc.len() && doc[i] != b'e' {
        let (k, next) = string(doc, i)?;
        i = next;
        let vstart = i;
        i = skip(doc, i)?;
        if k == key.as_bytes() && doc[vstart].is_ascii_digit() {
            return string(doc, vstart).map(|(v, _)| v);
        }
    }
    None
}

fn string(doc: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let colon = i + doc[i..].iter().position(|&b| b == b':')?;
    let n: usize = std::str::from_utf8(&doc[i..colon]).ok()?.parse().ok()?;
    let end = colon + 1 + n;
    Some((doc.get(colon + 1..end)?, end))
}

fn skip(doc: &[u8], i: usize) -> Option<usize> {
    match doc.get(i)? {
        b'i' => Some(i + doc[i..].iter().position(|&b| b == b'e')? + 1),
        b'l' | b'd' => {
            let mut j = i + 1;
            while *doc.get(j)? != b'e' {
                j = skip(doc, j)?;
            }
            Some(j + 1)
        }
        _ => string(doc, i).map(|(_, e)| e),
    }
}

/// The first `c=IN IP4` address and `m=audio` port of an SDP.
pub fn sdp_media(sdp: &[u8]) -> Option<SocketAddrV4> {
    let text = std::str::from_utf8(sdp).ok()?;
    let mut ip = None;
    let mut port = None;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(a) = line.strip_prefix("c=IN IP4 ") {
            ip = ip.or(a.trim().parse::<Ipv4Addr>().ok());
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            port = port.or(m.split(' ').next()?.parse::<u16>().ok());
        }
    }
    Some(SocketAddrV4::new(ip?, port?))
}

impl Client {
    pub fn new(relay: SocketAddr) -> io::Result<Client> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_millis(1000)))?;
        Ok(Client {
            sock,
            relay,
            seq: 0,
        })
    }

    /// Sends `command` (offer or answer) for a party at ip:port and returns
    /// where the relay's rewritten SDP says the other party must send.
    pub fn offer_answer(
        &mut self,
        command: &str,
        call_id: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        ip: Ipv4Addr,
        port: u16,
    ) -> io::Result<SocketAddrV4> {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\na=sendrecv\r\n"
        );
        let mut doc = b"d".to_vec();
        bstr(&mut doc, b"command");
        bstr(&mut doc, command.as_bytes());
        bstr(&mut doc, b"call-id");
        bstr(&mut doc, call_id.as_bytes());
        bstr(&mut doc, b"from-tag");
        bstr(&mut doc, from_tag.as_bytes());
        if let Some(t) = to_tag {
            bstr(&mut doc, b"to-tag");
            bstr(&mut doc, t.as_bytes());
        }
        bstr(&mut doc, b"replace");
        doc.push(b'l');
        bstr(&mut doc, b"origin");
        bstr(&mut doc, b"session-connection");
        doc.push(b'e');
        bstr(&mut doc, b"sdp");
        bstr(&mut doc, sdp.as_bytes());
        doc.push(b'e');
        let reply = self.request(&doc)?;
        let result = dict_str(&reply, "result").unwrap_or(b"");
        if result != b"ok" {
            return Err(io::Error::other(format!(
                "{command} {call_id}: relay replied {}",
                String::from_utf8_lossy(&reply)
            )));
        }
        let sdp = dict_str(&reply, "sdp").ok_or_else(|| io::Error::other("reply without sdp"))?;
        sdp_media(sdp).ok_or_else(|| {
            io::Error::other(format!(
                "no c=/m= in the relay's SDP: {}",
                String::from_utf8_lossy(sdp)
            ))
        })
    }

    /// One request, retried three times; the reply document without its cookie.
    fn request(&mut self, doc: &[u8]) -> io::Result<Vec<u8>> {
        self.seq += 1;
        let cookie = format!("{}_{}", std::process::id(), self.seq);
        let mut msg = cookie.clone().into_bytes();
        msg.push(b' ');
        msg.extend_from_slice(doc);
        let mut buf = vec![0u8; 65536];
        for _ in 0..3 {
            self.sock.send_to(&msg, self.relay)?;
            loop {
                match self.sock.recv(&mut buf) {
                    Ok(n) => {
                        let r = &buf[..n];
                        if r.len() > cookie.len()
                            && r.starts_with(cookie.as_bytes())
                            && r[cookie.len()] == b' '
                        {
                            return Ok(r[cookie.len() + 1..].to_vec());
                        }
                        // a late reply to an earlier retry: keep reading
                    }
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock
                            || e.kind() == io::ErrorKind::TimedOut =>
                    {
                        break
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(io::Error::other(format!(
            "no reply from {} to {cookie}",
            self.relay
        )))
    }
}
