//! Parser benchmark: sipfront's index (and the views a proxy reads) against
//! `rsip`, the most used Rust SIP parsing crate, on the same messages in the
//! same run, so the table in docs/performance.md is a ratio, not a clock.
//!
//! Messages (bench/data/): a ~900-byte INVITE with SDP, a 200 OK with SDP,
//! a REGISTER, and an OPTIONS that crossed ten proxies (ten Via lines).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rsip::prelude::*;
use sipfront::sip::{validate_request, Message};

const MESSAGES: &[(&str, &[u8])] = &[
    ("invite", include_bytes!("data/invite.sip")),
    ("ok200", include_bytes!("data/ok200.sip")),
    ("register", include_bytes!("data/register.sip")),
    ("vias10", include_bytes!("data/vias10.sip")),
];

/// What a proxy reads of every message: the index plus top Via, From/To
/// tags, Call-ID, CSeq, Max-Forwards, Content-Length and Contact URIs.
fn sipfront_full(buf: &[u8]) -> usize {
    let m = Message::parse(buf).expect("bench message parses");
    let via = m.top_via().expect("via");
    let from = m.from().expect("from");
    let to = m.to().expect("to");
    let cseq = m.cseq().expect("cseq");
    let cid = m.call_id().expect("call-id");
    let mf = m.max_forwards().expect("max-forwards").unwrap_or(70);
    let contacts = m.contacts().filter(|c| c.is_ok()).count();
    via.branch.map_or(0, |b| b.len())
        + from.tag().map_or(0, |t| t.len())
        + to.tag().map_or(0, |t| t.len())
        + cseq.seq as usize
        + cid.len()
        + mf as usize
        + m.content_length().unwrap_or(0) as usize
        + contacts
}

/// The same reads through rsip's typed headers.
fn rsip_full(buf: &[u8]) -> usize {
    let msg = rsip::SipMessage::try_from(buf).expect("rsip parses");
    let via = msg.via_header().expect("via").typed().expect("typed via");
    let from = msg
        .from_header()
        .expect("from")
        .typed()
        .expect("typed from");
    let to = msg.to_header().expect("to").typed().expect("typed to");
    let cseq = msg
        .cseq_header()
        .expect("cseq")
        .typed()
        .expect("typed cseq");
    let cid = msg.call_id_header().expect("call-id").value().len();
    let mf = msg
        .max_forwards_header()
        .ok()
        .and_then(|h| h.num().ok())
        .unwrap_or(70);
    let contact = msg
        .contact_header()
        .ok()
        .and_then(|c| c.typed().ok())
        .is_some();
    let cl = msg
        .headers()
        .iter()
        .find_map(|h| match h {
            rsip::Header::ContentLength(c) => c.length().ok(),
            _ => None,
        })
        .unwrap_or(0);
    via.branch().map_or(0, |b| b.to_string().len())
        + from.tag().map_or(0, |t| t.value().len())
        + to.tag().map_or(0, |t| t.value().len())
        + cseq.seq as usize
        + cid
        + mf as usize
        + cl as usize
        + usize::from(contact)
}

fn bench(c: &mut Criterion) {
    for (name, buf) in MESSAGES {
        // Sanity: both parsers accept the message and read the same facts.
        assert!(sipfront_full(buf) > 0 && rsip_full(buf) > 0);
        let mut g = c.benchmark_group(*name);
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function("sipfront_index", |b| {
            b.iter(|| Message::parse(black_box(buf)).map(|m| m.headers().len()))
        });
        g.bench_function("sipfront_full", |b| {
            b.iter(|| sipfront_full(black_box(buf)))
        });
        g.bench_function("rsip_parse", |b| {
            b.iter(|| {
                rsip::SipMessage::try_from(black_box(*buf)).map(|m| m.headers().iter().count())
            })
        });
        g.bench_function("rsip_full", |b| b.iter(|| rsip_full(black_box(buf))));
        g.finish();
    }
    let invite = MESSAGES[0].1;
    c.bench_function("invite/sipfront_validate", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(invite)).expect("parses");
            validate_request(&m).is_ok()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
