//! The seed corpus (testdata/corpus: SIPp 3.6, Kamailio 5.6, RFC 3261 §24
//! and RFC 3665 messages) parses, validates as a proxy would, survives a
//! no-edit round trip, and its SDP bodies parse. The same files seed the
//! fuzzers (fuzz/README.md).

use sipfront::sip::{sdp::Sdp, validate_request, validate_response, writer, Edits, Message};
use std::path::Path;

#[test]
fn every_corpus_message_parses_and_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "sip") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let m = Message::parse(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
        let v = if m.is_request() {
            validate_request(&m).map(|_| ())
        } else {
            validate_response(&m).map(|_| ())
        };
        v.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.as_bytes(), &data[..], "{name}: whole file is one message");
        let mut out = Vec::new();
        writer::write(&m, &mut Edits::new(), &mut out).unwrap();
        assert_eq!(out, data, "{name}: round trip");
        // RFC 3261 §24.2 prints "(Alice's SDP not shown)" for its bodies.
        let placeholder = m.body().starts_with(b"(");
        if !placeholder
            && m.content_type()
                .is_some_and(|t| t.eq_ignore_ascii_case(b"application/sdp"))
        {
            Sdp::parse(m.body()).unwrap_or_else(|e| panic!("{name}: SDP: {e}"));
        }
        n += 1;
    }
    assert!(n >= 30, "corpus has {n} messages");
}
