//! The SDP rewrite the relay performs for ng offer/answer (reference §2.8),
//! on top of `sipfront_sip::sdp` (the view and its edit helpers).
//!
//! Reads each `m=` section's media address (its `c=`, else the session
//! `c=`), RTP port and RTCP port (`a=rtcp`, else RTP + 1); writes the
//! relay's ports and advertised address back.

use std::net::{IpAddr, SocketAddr};

use sipfront_sip::sdp::{Sdp, SdpError};
use sipfront_sip::Edits;
use smallvec::SmallVec;

/// The most media sections handled in one SDP (more are refused).
pub const MAX_MEDIA: usize = 16;

/// What one `m=` section says about where its party receives media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaAddr {
    /// 0-based `m=` index.
    pub index: usize,
    /// Port 0: rejected stream (RFC 3264 §6); no relay for it.
    pub rejected: bool,
    /// RTP destination; `None` for the null address (hold) or a name.
    pub rtp: Option<SocketAddr>,
    /// RTCP destination (`a=rtcp`, else RTP port + 1, RFC 3605 §2.1).
    pub rtcp: Option<SocketAddr>,
    /// `a=rtcp-mux` present.
    pub rtcp_mux: bool,
}

/// Why an offer's or answer's media cannot be relayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaError {
    /// Not an SDP the view can read.
    Sdp(SdpError),
    /// More `m=` sections than [`MAX_MEDIA`]: refused whole, never half
    /// relayed (issue 14).
    TooMany(usize),
}

impl From<SdpError> for MediaError {
    fn from(e: SdpError) -> MediaError {
        MediaError::Sdp(e)
    }
}

/// Reads the media sections. `override_ip` replaces the SDP address (the
/// ng `SIP source address` flag).
pub fn media_addrs(
    body: &[u8],
    override_ip: Option<IpAddr>,
) -> Result<SmallVec<[MediaAddr; 4]>, MediaError> {
    let sdp = Sdp::parse(body)?;
    if sdp.media().len() > MAX_MEDIA {
        return Err(MediaError::TooMany(sdp.media().len()));
    }
    let mut out = SmallVec::new();
    for (i, m) in sdp.media().iter().enumerate() {
        let ip = sdp
            .effective_connection(i)
            .and_then(|c| c.ip)
            .filter(|ip| !ip.is_unspecified());
        let ip = match (override_ip, ip) {
            (Some(o), Some(_)) => Some(o),
            (_, ip) => ip,
        };
        let port = m.port();
        let rtp = ip.map(|ip| SocketAddr::new(ip, port));
        let rtcp = match m.rtcp() {
            Some(r) => {
                let rip = r.address.as_ref().and_then(|a| a.ip).or(ip);
                rip.map(|ip| SocketAddr::new(ip, r.port))
            }
            None if m.rtcp_mux() => rtp,
            None => ip.map(|ip| SocketAddr::new(ip, port.wrapping_add(1))),
        };
        out.push(MediaAddr {
            index: i,
            rejected: m.is_rejected(),
            rtp,
            rtcp,
            rtcp_mux: m.rtcp_mux(),
        });
    }
    Ok(out)
}

/// How to rewrite.
#[derive(Clone, Copy, Debug, Default)]
pub struct RewriteOptions {
    pub replace_origin: bool,
    pub replace_session_connection: bool,
    pub remove_ice: bool,
    pub no_rtcp_attribute: bool,
    pub full_rtcp_attribute: bool,
}

/// Why a rewrite failed.
#[derive(Debug)]
pub enum RewriteError {
    Sdp(SdpError),
    Edit(sipfront_sip::EditError),
}

impl std::fmt::Display for RewriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RewriteError::Sdp(e) => write!(f, "{e}"),
            RewriteError::Edit(e) => write!(f, "{e}"),
        }
    }
}

/// Rewrites `body`: for each media `i` with `ports[i] = Some(p)`: `m=` port
/// → `p`, its `c=` → `addr`, `a=rtcp` → `p + 1` (inserted when missing,
/// unless `no_rtcp_attribute`). The session `c=` is rewritten when asked
/// (`replace_session_connection`) or when some relayed media has no `c=` of
/// its own (it then depends on the session one, §2.8); `o=` only with
/// `replace_origin`; ICE lines removed with `remove_ice`.
pub fn rewrite(
    body: &[u8],
    ports: &[Option<u16>],
    addr: IpAddr,
    opts: RewriteOptions,
) -> Result<Vec<u8>, RewriteError> {
    let sdp = Sdp::parse(body).map_err(RewriteError::Sdp)?;
    let mut edits = Edits::new();
    let relayed = |i: usize| ports.get(i).copied().flatten();
    let media_without_c = sdp
        .media()
        .iter()
        .enumerate()
        .any(|(i, m)| relayed(i).is_some() && m.connection().is_none());
    let all_c = opts.replace_session_connection || media_without_c;
    if all_c {
        sdp.set_connection_address(&mut edits, addr);
    }
    if opts.replace_origin {
        sdp.set_origin_address(&mut edits, addr);
    }
    for (i, m) in sdp.media().iter().enumerate() {
        let Some(port) = relayed(i) else { continue };
        sdp.set_media_port(&mut edits, i, port)
            .map_err(RewriteError::Sdp)?;
        if !all_c {
            sdp.set_media_connection_address(&mut edits, i, addr)
                .map_err(RewriteError::Sdp)?;
        }
        if !opts.no_rtcp_attribute {
            let rtcp_port = if m.rtcp_mux() && m.rtcp().is_some_and(|r| r.port == m.port()) {
                port
            } else {
                port.wrapping_add(1)
            };
            let a = opts.full_rtcp_attribute.then_some(addr);
            sdp.set_rtcp(&mut edits, i, rtcp_port, a)
                .map_err(RewriteError::Sdp)?;
        }
    }
    if opts.remove_ice {
        sdp.remove_ice(&mut edits);
    }
    let mut out = Vec::with_capacity(body.len() + 64);
    edits.apply(body, &mut out).map_err(RewriteError::Edit)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 16000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

    // §2.8 [obs]: caller offered 127.0.0.2:16000; the relay writes its port
    // and address, a=rtcp:<port+1>, o= and session c= with replace flags.
    #[test]
    fn rewrite_like_the_observed_interop_call() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let opts = RewriteOptions {
            replace_origin: true,
            replace_session_connection: true,
            ..Default::default()
        };
        let out = rewrite(OFFER.as_bytes(), &[Some(30000)], ip, opts).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"),
            "{s}"
        );
        assert!(s.contains("c=IN IP4 127.0.0.1\r\n"));
        assert!(s.contains("m=audio 30000 RTP/AVP 8 101\r\n"));
        assert!(s.contains("a=rtcp:30001\r\n"));
        assert!(s.contains("a=sendrecv\r\n"));
    }

    // §2.8: o= untouched without `replace: origin`; the session c= is still
    // rewritten when the media has no c= of its own.
    #[test]
    fn origin_kept_without_flag() {
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let out = rewrite(
            OFFER.as_bytes(),
            &[Some(30000)],
            ip,
            RewriteOptions::default(),
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("IN IP4 127.0.0.2\r\ns=-"), "{s}");
        assert!(s.contains("c=IN IP4 10.0.0.9\r\n"));
    }

    // §2.8: media-level c= rewritten, session c= kept unless asked; an
    // existing a=rtcp replaced; `no rtcp attribute`; ICE removal (§2.3 ICE=remove).
    #[test]
    fn media_level_connection_rtcp_and_ice() {
        let body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.5\r\na=rtcp:4005\r\na=ice-ufrag:abc\r\na=candidate:1 1 UDP 2130706431 192.0.2.5 4000 typ host\r\nm=video 0 RTP/AVP 96\r\n";
        let ip: IpAddr = "203.0.113.1".parse().unwrap();
        let opts = RewriteOptions {
            remove_ice: true,
            ..Default::default()
        };
        let s =
            String::from_utf8(rewrite(body.as_bytes(), &[Some(30010), None], ip, opts).unwrap())
                .unwrap();
        assert!(s.contains("c=IN IP4 192.0.2.1\r\nt=0"), "{s}");
        assert!(s.contains("m=audio 30010 RTP/AVP 0\r\nc=IN IP4 203.0.113.1\r\na=rtcp:30011\r\n"));
        assert!(!s.contains("candidate") && !s.contains("ice-ufrag"));
        assert!(s.contains("m=video 0 RTP/AVP 96\r\n"));
        let opts = RewriteOptions {
            no_rtcp_attribute: true,
            ..Default::default()
        };
        let s = String::from_utf8(rewrite(OFFER.as_bytes(), &[Some(30000)], ip, opts).unwrap())
            .unwrap();
        assert!(!s.contains("a=rtcp"));
    }

    // RFC 3605 / RFC 8866 §5.7: reading addresses; port 0 rejected; null address is hold.
    #[test]
    fn reads_media_addresses() {
        let body = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4005 IN IP4 192.0.2.7\r\nm=audio 5000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\nm=video 0 RTP/AVP 96\r\nm=audio 6000 RTP/AVP 0\r\na=rtcp-mux\r\n";
        let m = media_addrs(body.as_bytes(), None).unwrap();
        assert_eq!(m[0].rtp, Some("192.0.2.1:4000".parse().unwrap()));
        assert_eq!(m[0].rtcp, Some("192.0.2.7:4005".parse().unwrap()));
        assert_eq!(m[1].rtp, None);
        assert!(m[2].rejected);
        assert_eq!(m[3].rtcp, Some("192.0.2.1:6000".parse().unwrap()));
        let m = media_addrs(body.as_bytes(), Some("198.51.100.1".parse().unwrap())).unwrap();
        assert_eq!(m[0].rtp, Some("198.51.100.1:4000".parse().unwrap()));
        assert_eq!(m[1].rtp, None, "hold stays hold with SIP source address");
    }

    // Issue 14: more media sections than the relay handles are refused
    // whole; the offer used to be answered with the first 16 relayed.
    #[test]
    fn too_many_media_sections_are_refused_not_truncated() {
        let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";
        let body = |n: usize| {
            let mut b = head.to_string();
            for i in 0..n {
                b.push_str(&format!("m=audio {} RTP/AVP 0\r\n", 4000 + 2 * i));
            }
            b
        };
        assert_eq!(
            media_addrs(body(MAX_MEDIA).as_bytes(), None).unwrap().len(),
            MAX_MEDIA
        );
        assert_eq!(
            media_addrs(body(200).as_bytes(), None),
            Err(MediaError::TooMany(200))
        );
    }
}
