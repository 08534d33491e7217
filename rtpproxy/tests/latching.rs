//! Latching: a party behind a NAT sends its media from another port than its
//! SDP said; the relay must learn that source from the first packet and send
//! the other side's media there, not to the SDP address.
//!
//! The relay is driven over ng directly (offer/answer as Kamailio's rtpengine
//! module sends them); the parties are plain UDP sockets. The caller's SDP
//! names one socket, which must receive nothing; the caller really sends
//! from another (its "NAT mapping").
//!
//! The `reference_rtpengine_*` tests run the same against Debian's rtpengine
//! (with `--endpoint-learning=immediate`, so the learning does not depend on
//! its default "delayed" mode's 3 s window).
//! Ports (picked free at run time): relay control ephemeral, media
//! 48500-48999, parties in 49500-49999.

#[path = "kamailio/support.rs"]
mod support;

use std::net::{Ipv4Addr, SocketAddr};
use support::*;

/// The relay's media ports, and the parties' (picked free in the range).
const MEDIA: (u16, u16) = (48500, 48999);
const PARTIES: std::ops::RangeInclusive<u16> = 49500..=49999;

fn offer_answer(
    ng: &mut NgClient,
    call_id: &str,
    caller_sdp: &std::net::UdpSocket,
    callee: &std::net::UdpSocket,
) -> (std::net::SocketAddrV4, std::net::SocketAddrV4) {
    let lo = Ipv4Addr::LOCALHOST;
    let offer = ng.request(&dict(vec![
        (
            "sdp",
            B::s(&sdp(lo, caller_sdp.local_addr().expect("addr").port())),
        ),
        ("call-id", B::s(call_id)),
        (
            "received-from",
            B::List(vec![B::s("IP4"), B::s("127.0.0.1")]),
        ),
        ("from-tag", B::s("caller-tag")),
        ("command", B::s("offer")),
    ]));
    assert_eq!(
        offer.str("result").as_deref(),
        Some("ok"),
        "offer: {offer:?}"
    );
    let to_callee = sdp_media(&offer.str("sdp").expect("offer sdp")).expect("offer c=/m=");
    let answer = ng.request(&dict(vec![
        (
            "sdp",
            B::s(&sdp(lo, callee.local_addr().expect("addr").port())),
        ),
        ("call-id", B::s(call_id)),
        (
            "received-from",
            B::List(vec![B::s("IP4"), B::s("127.0.0.1")]),
        ),
        ("from-tag", B::s("caller-tag")),
        ("to-tag", B::s("callee-tag")),
        ("command", B::s("answer")),
    ]));
    assert_eq!(
        answer.str("result").as_deref(),
        Some("ok"),
        "answer: {answer:?}"
    );
    let to_caller = sdp_media(&answer.str("sdp").expect("answer sdp")).expect("answer c=/m=");
    // (where the callee must send, where the caller must send)
    (to_callee, to_caller)
}

fn natted_caller(kind: Kind) {
    let _serial = serial();
    if !require_relay(kind) {
        return;
    }
    let dir = TempDir::new(&format!("latching-{kind:?}"));
    let ports = RelayPorts::pick(MEDIA.0, MEDIA.1);
    let _relay = start_relay(&dir, kind, ports, true);
    let mut ng = NgClient::new(ports.ng);

    let caller_sdp = party(PARTIES); // what the SDP says: must get nothing
    let callee = party(PARTIES);
    let caller_nat = party(PARTIES); // where the caller's packets really come from
    let (callee_sends_to, caller_sends_to) =
        offer_answer(&mut ng, "latching-1@test", &caller_sdp, &callee);

    // The caller speaks first, from its NAT mapping: the relay forwards it to
    // the callee (its SDP address) and learns the caller's real source.
    stream_through(
        "caller (NAT port) -> callee",
        &caller_nat,
        caller_sends_to,
        &callee,
        callee_sends_to,
        0x1a7c_0001,
        10,
    );
    // The callee's media must now go to the learned source, not the SDP's port.
    stream_through(
        "callee -> caller's NAT port",
        &callee,
        callee_sends_to,
        &caller_nat,
        caller_sends_to,
        0x1a7c_0002,
        10,
    );
    let stray = drain(&caller_sdp, 100);
    assert!(
        stray.is_empty(),
        "{} packets went to the caller's SDP address after it latched to {}",
        stray.len(),
        caller_nat
            .local_addr()
            .map_or("?".into(), |a: SocketAddr| a.to_string())
    );

    // And it keeps working both ways (the latch holds, nothing re-learns
    // from the callee's packets).
    stream_through(
        "caller (NAT port) -> callee, again",
        &caller_nat,
        caller_sends_to,
        &callee,
        callee_sends_to,
        0x1a7c_0003,
        5,
    );

    let del = ng.request(&dict(vec![
        ("call-id", B::s("latching-1@test")),
        ("from-tag", B::s("caller-tag")),
        ("command", B::s("delete")),
    ]));
    assert_eq!(del.str("result").as_deref(), Some("ok"), "delete: {del:?}");
}

/// The callee side behind a NAT too, with the callee speaking first: the
/// relay learns the callee's source before the caller has sent anything.
fn natted_callee(kind: Kind) {
    let _serial = serial();
    if !require_relay(kind) {
        return;
    }
    let dir = TempDir::new(&format!("latching-callee-{kind:?}"));
    let ports = RelayPorts::pick(MEDIA.0, MEDIA.1);
    let _relay = start_relay(&dir, kind, ports, true);
    let mut ng = NgClient::new(ports.ng);

    let caller = party(PARTIES);
    let callee_sdp = party(PARTIES);
    let callee_nat = party(PARTIES);
    let (callee_sends_to, caller_sends_to) =
        offer_answer(&mut ng, "latching-2@test", &caller, &callee_sdp);

    stream_through(
        "callee (NAT port) -> caller",
        &callee_nat,
        callee_sends_to,
        &caller,
        caller_sends_to,
        0x1a7c_0011,
        10,
    );
    stream_through(
        "caller -> callee's NAT port",
        &caller,
        caller_sends_to,
        &callee_nat,
        callee_sends_to,
        0x1a7c_0012,
        10,
    );
    let stray = drain(&callee_sdp, 100);
    assert!(
        stray.is_empty(),
        "{} packets went to the callee's SDP address",
        stray.len()
    );
}

#[test]
fn relay_latches_to_the_real_source_of_a_natted_caller() {
    natted_caller(Kind::Sipfront);
}

#[test]
fn relay_latches_to_the_real_source_of_a_natted_callee() {
    natted_callee(Kind::Sipfront);
}

#[test]
fn reference_rtpengine_latches_natted_caller() {
    natted_caller(Kind::Rtpengine);
}

#[test]
fn reference_rtpengine_latches_natted_callee() {
    natted_callee(Kind::Rtpengine);
}
