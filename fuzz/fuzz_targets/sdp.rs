//! Fuzzes the SDP view: parse arbitrary bytes, read every accessor, and when
//! the parse succeeds record a relay rewrite with every editing helper and
//! apply it. A successfully parsed SDP must always take the full rewrite:
//! the helpers touch disjoint parts of distinct lines (c= and o= addresses,
//! m= ports, a=rtcp values, direction names, whole ICE lines) and insert only
//! at line boundaries, so `apply` may not fail, the output length must match
//! `body_len_after`, and the output must parse again.
//!
//! The same body is also parsed at an offset inside a message buffer
//! (`parse_at`), and the rewrite applied to the whole message must equal the
//! header plus the body-only rewrite.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipfront::sip::sdp::{Direction, LenMark, Sdp};
use sipfront::sip::Edits;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Reads every accessor and every span (spans must index the body).
fn walk(sdp: &Sdp<'_>) -> usize {
    let b = sdp.body();
    let mut n = 0usize;
    for l in sdp.lines() {
        assert_eq!(l.value.span.get(b), l.value.text);
        n += l.span.get(b).len() + usize::from(l.kind);
    }
    if let Some(o) = sdp.origin() {
        for f in [
            o.username,
            o.sess_id,
            o.sess_version,
            o.nettype,
            o.addrtype,
            o.address,
        ] {
            assert_eq!(f.span.get(b), f.text);
        }
        n += o.ip.map_or(0, |_| 1) + o.line.len();
    }
    if let Some(c) = sdp.connection() {
        for f in [c.nettype, c.addrtype, c.address, c.suffix] {
            assert_eq!(f.span.get(b), f.text);
        }
        n += c.ip.map_or(0, |_| 1);
    }
    n += usize::from(sdp.has_ice()) + usize::from(sdp.ice_lite()) + usize::from(sdp.uses_ice());
    for f in [sdp.ice_ufrag(), sdp.ice_pwd(), sdp.ice_options()]
        .into_iter()
        .flatten()
    {
        assert_eq!(f.span.get(b), f.text);
    }
    n += sdp.direction().map_or(0, |d| d.as_str().len());
    for a in sdp.session_attributes() {
        assert_eq!(a.name.span.get(b), a.name.text);
        n += a.value.map_or(0, |v| v.text.len());
    }
    n += sdp.session_section().get(b).len();
    for (i, m) in sdp.media().iter().enumerate() {
        for f in m.formats() {
            assert_eq!(f.span.get(b), f.text);
        }
        for f in [m.media_type(), m.port_field(), m.proto(), m.fmt_list()] {
            assert_eq!(f.span.get(b), f.text);
        }
        for a in m.attributes() {
            assert_eq!(a.name.span.get(b), a.name.text);
            if let Some(v) = a.value {
                assert_eq!(v.span.get(b), v.text);
            }
        }
        n += m.candidates().count() + m.lines().count() + m.section().get(b).len();
        n += usize::from(m.port()) + usize::from(m.port_count().unwrap_or(0));
        n += m.connection().map_or(0, |c| c.suffix.text.len());
        if let Some(r) = m.rtcp() {
            assert_eq!(r.port_field.span.get(b), r.port_field.text);
            n += usize::from(r.port) + r.address.map_or(0, |a| a.address.text.len());
        }
        n += usize::from(m.rtcp_mux()) + usize::from(m.has_ice());
        n += usize::from(m.end_of_candidates()) + usize::from(m.is_rejected());
        for f in [
            m.ice_ufrag(),
            m.ice_pwd(),
            m.ice_options(),
            m.direction_field(),
        ]
        .into_iter()
        .flatten()
        {
            assert_eq!(f.span.get(b), f.text);
        }
        n += m.direction().map_or(0, |d| d.as_str().len()) + m.line().len();
        n += sdp.effective_connection(i).map_or(0, |c| c.line.len());
        n += sdp.effective_direction(i).map_or(0, |d| d.as_str().len());
    }
    assert!(sdp.effective_direction(sdp.media().len()).is_none());
    n
}

/// Records every helper once (never twice on the same line).
fn rewrite(sdp: &Sdp<'_>, edits: &mut Edits, addr: IpAddr, seed: u8) {
    sdp.set_connection_address(edits, addr);
    sdp.set_origin_address(edits, addr);
    let dirs = [
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::RecvOnly,
        Direction::Inactive,
    ];
    for i in 0..sdp.media().len() {
        let port = u16::from(seed).wrapping_mul(257).wrapping_add(i as u16);
        let rtcp_addr = (seed & 1 == 0).then_some(addr);
        sdp.set_media_port(edits, i, port).expect("index in range");
        sdp.set_rtcp(edits, i, port.wrapping_add(1), rtcp_addr)
            .expect("index in range");
        let dir = dirs[(usize::from(seed) + i) % dirs.len()];
        sdp.set_direction(edits, i, dir).expect("index in range");
    }
    assert!(sdp.set_media_port(edits, sdp.media().len(), 1).is_err());
    sdp.remove_ice(edits);
}

fuzz_target!(|data: &[u8]| {
    let sdp = match Sdp::parse(data) {
        Ok(sdp) => sdp,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    walk(&sdp);
    let seed = data.first().copied().unwrap_or(0);
    let addr = if seed & 2 == 0 {
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, seed))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(seed)))
    };

    // Body alone (base 0).
    let mut edits = Edits::new();
    rewrite(&sdp, &mut edits, addr, seed);
    let mut out = Vec::new();
    edits
        .apply(data, &mut out)
        .expect("a parsed SDP takes the full rewrite");
    assert_eq!(sdp.body_len_after(&edits, LenMark::EMPTY), out.len());
    let again = Sdp::parse(&out).expect("the rewritten SDP parses");
    assert!(!again.uses_ice());
    assert_eq!(again.media().len(), sdp.media().len());

    // The same body inside a message, with a header edit recorded first.
    let head = b"INVITE sip:bob@example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n";
    let mut msg = head.to_vec();
    msg.extend_from_slice(data);
    let body = &msg[head.len()..];
    let sdp = Sdp::parse_at(body, head.len() as u32).expect("same bytes parse the same");
    let mut edits = Edits::new();
    edits.replace_fmt(
        sipfront::sip::Span::new(head.len() - 5, head.len() - 4),
        format_args!("{}", 99),
    );
    let mark = LenMark::of(&edits);
    rewrite(&sdp, &mut edits, addr, seed);
    let mut whole = Vec::new();
    edits
        .apply(&msg, &mut whole)
        .expect("message rewrite applies");
    assert_eq!(sdp.body_len_after(&edits, mark), out.len());
    let (h, b) = whole.split_at(head.len() + 1);
    assert!(h.ends_with(b"Content-Length: 99\r\n\r\n"));
    assert_eq!(b, &out[..]);
});
