//! Fuzzes the SIP/SIPS/TEL URI parser (sip/src/uri.rs): any input must parse
//! or fail without panicking, and a parsed URI must be internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipfront::sip::uri::{eq_escaped, unescape, uri_eq, Scheme, Uri, UriError};

fuzz_target!(|data: &[u8]| {
    // Helpers work on arbitrary bytes.
    let decoded = unescape(data).count();
    assert!(decoded <= data.len() + 1);
    let _ = eq_escaped(data, data, false);

    let parsed = Uri::parse(data);
    let sip = Uri::parse_sip(data);
    let uri = match parsed {
        Ok(uri) => uri,
        Err(e) => {
            assert!(!e.as_str().is_empty());
            assert_eq!(e.to_string(), e.as_str());
            assert_eq!(sip.err(), Some(e), "parse and parse_sip disagree");
            return;
        }
    };

    // A parsed URI equals itself and its own re-parse.
    assert!(uri_eq(&uri, &uri), "uri_eq not reflexive");
    let again = Uri::parse(uri.raw).expect("raw of a parsed URI re-parses");
    assert!(uri_eq(&uri, &again));
    match sip {
        Ok(s) => assert!(uri_eq(&uri, &s)),
        Err(e) => {
            assert_eq!(e, UriError::UnsupportedScheme);
            assert_eq!(uri.scheme, Scheme::Other);
        }
    }

    // Every field is well formed: escapes decode, structure matches the scheme.
    for field in [uri.user, uri.password, uri.headers].into_iter().flatten() {
        assert!(unescape(field).all(|r| r.is_ok()));
        assert!(eq_escaped(field, field, false));
    }
    assert_eq!(uri.host.is_some(), uri.is_sip_like());
    assert_eq!(uri.host_raw.is_empty(), !uri.is_sip_like());
    assert!(uri.port != Some(0));
    for p in uri.params {
        assert!(!p.name.is_empty());
        assert!(unescape(p.name).all(|r| r.is_ok()));
        assert!(uri.param(p.name).is_some());
        if let Some(v) = p.value {
            assert!(unescape(v).all(|r| r.is_ok()));
        }
    }
    assert!(uri.params.is_well_formed());

    // Accessors.
    let _ = (
        uri.lr(),
        uri.transport(),
        uri.maddr(),
        uri.user_param(),
        uri.method_param(),
        uri.ttl(),
        uri.rest(),
    );
    let port = uri.default_port();
    assert!(port == 5060 || port == 5061);
    assert!(uri.port_or_default() != 0);
    for (name, value) in uri.header_fields() {
        assert!(!name.is_empty());
        assert!(eq_escaped(name, name, true) && eq_escaped(value, value, true));
    }
    if let Some(h) = uri.host {
        let _ = h.is_ip();
    }
});
