//! Fuzz the admin API's HTTP request reader (it parses whatever a TCP peer
//! sends): any input gives a request or an error status, never a panic;
//! path segments, headers and percent-decoding of what it accepts too.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipfront::admin::http;

fuzz_target!(|data: &[u8]| {
    match http::read_request(&mut &data[..]) {
        Ok(req) => {
            for s in req.segments() {
                let _ = http::percent_decode(&s);
            }
            let _ = req.header("authorization");
            let _ = http::authorized(&req, Some("token"));
        }
        Err(e) => assert!((400..600).contains(&e.status), "{}", e.status),
    }
    let _ = http::parse_head(data);
});
