//! A full parse of an INVITE, with every view a proxy reads and validation,
//! allocates nothing (DESIGN.md principle 3). A counting global allocator
//! proves it.

use sipfront::sip::{validate_request, HeaderName, Message};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        System.realloc(ptr, layout, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const INVITE: &[u8] = include_bytes!("../bench/data/invite.sip");

#[test]
fn full_invite_parse_allocates_nothing() {
    // Warm up anything lazily initialised by the test harness itself.
    let _ = Message::parse(INVITE).unwrap();
    let before = ALLOCS.load(Ordering::SeqCst);
    let m = Message::parse(INVITE).unwrap();
    let top = m.top_via().unwrap();
    let from = m.from().unwrap();
    let to = m.to().unwrap();
    let cseq = m.cseq().unwrap();
    let call_id = m.call_id().unwrap();
    let mf = m.max_forwards().unwrap();
    let contacts = m.contacts().filter(|c| c.is_ok()).count();
    let routes = m.routes().count() + m.record_routes().count();
    let vias = m.vias().filter(|v| v.is_ok()).count();
    validate_request(&m).unwrap();
    let sdp = sipfront::sip::sdp::Sdp::parse(m.body()).unwrap();
    let media = sdp.media().len();
    let ct = m.header_value(HeaderName::ContentType);
    let after = ALLOCS.load(Ordering::SeqCst);
    // Use the results so nothing is optimised away.
    assert!(top.has_cookie());
    assert!(from.tag().is_some() && to.tag().is_none());
    assert_eq!(cseq.seq, 1);
    assert!(!call_id.is_empty() && mf == Some(70) && ct.is_some());
    assert!(contacts == 1 && vias >= 1 && media >= 1);
    let _ = routes;
    assert_eq!(after - before, 0, "a full INVITE parse allocated");
}
