//! Latching: a party behind a NAT sends its media from another port than its
//! SDP said; the relay must learn that source from the first packet and send
//! the other side's media there, not to the SDP address.
//!
//! The relay is driven over ng directly (offer/answer as Kamailio's rtpengine
//! module sends them); the parties are plain UDP sockets. The caller's SDP
//! names 127.0.0.1:49100, where a socket listens that must receive nothing;
//! the caller really sends from 127.0.0.1:49104 (its "NAT mapping").
//!
//! The `reference_rtpengine_*` tests run the same against Debian's rtpengine
//! (with `--endpoint-learning=immediate`, so the learning does not depend on
//! its default "delayed" mode's 3 s window).
//! Ports: relay control 41222/41223, media 48500-48999, parties 49100-49106.

#[path = "kamailio/support.rs"]
mod support;

use std::net::{Ipv4Addr, SocketAddr};
use support::*;

const PORTS: RelayPorts = RelayPorts {
    ng: 41222,
    classic: 41223,
    media_low: 48500,
    media_high: 48999,
};

fn offer_answer(
    ng: &mut NgClient,
    call_id: &str,
    caller_sdp_port: u16,
    callee_port: u16,
) -> (std::net::SocketAddrV4, std::net::SocketAddrV4) {
    let lo = Ipv4Addr::LOCALHOST;
    let offer = ng.request(&dict(vec![
        ("sdp", B::s(&sdp(lo, caller_sdp_port))),
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
        ("sdp", B::s(&sdp(lo, callee_port))),
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
    let _relay = start_relay(&dir, kind, PORTS, true);
    let mut ng = NgClient::new(PORTS.ng);

    let caller_sdp = party(49100); // what the SDP says: must get nothing
    let callee = party(49102);
    let caller_nat = party(49104); // where the caller's packets really come from
    let (callee_sends_to, caller_sends_to) = offer_answer(&mut ng, "latching-1@test", 49100, 49102);

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
    let _relay = start_relay(&dir, kind, PORTS, true);
    let mut ng = NgClient::new(PORTS.ng);

    let caller = party(49100);
    let callee_sdp = party(49102);
    let callee_nat = party(49106);
    let (callee_sends_to, caller_sends_to) = offer_answer(&mut ng, "latching-2@test", 49100, 49102);

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
