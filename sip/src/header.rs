//! Header names: the well-known ones a proxy cares about, their compact
//! forms (RFC 3261 §7.3.3 and the IANA registry), and case-insensitive
//! recognition without allocating.

/// A header name. `Other` covers every header sipfront passes through
/// untouched; its name stays available as bytes in the [`Header`] record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    Contact,
    ContentLength,
    ContentType,
    ContentEncoding,
    Route,
    RecordRoute,
    Expires,
    Supported,
    Require,
    ProxyRequire,
    Unsupported,
    Subject,
    Event,
    AllowEvents,
    ReferTo,
    ReferredBy,
    SessionExpires,
    Identity,
    AcceptContact,
    RejectContact,
    RequestDisposition,
    RetryAfter,
    Authorization,
    ProxyAuthorization,
    UserAgent,
    Other,
}

/// A header name folded to lower case and packed into words, for lookup.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    len: usize,
    words: [u64; 3],
}

impl Key {
    const fn new(lower: &[u8]) -> Key {
        let mut words = [0u64; 3];
        let mut i = 0;
        while i < lower.len() {
            words[i / 8] |= (lower[i] as u64) << ((i % 8) * 8);
            i += 1;
        }
        Key {
            len: lower.len(),
            words,
        }
    }
}

/// Up to 8 name bytes as a word, folded to lower case.
#[inline]
fn fold_word(s: &[u8]) -> u64 {
    load_le(s) | (0x2020_2020_2020_2020u64 >> ((8 - s.len().clamp(1, 8)) * 8))
}

/// Loads up to 8 bytes as a little-endian word (zero-filled), with two
/// overlapping loads instead of a byte loop.
#[inline]
fn load_le(s: &[u8]) -> u64 {
    let n = s.len();
    if n >= 8 {
        u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    } else if n >= 4 {
        let lo = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        let hi = u32::from_le_bytes([s[n - 4], s[n - 3], s[n - 2], s[n - 1]]);
        u64::from(lo) | (u64::from(hi) << ((n - 4) * 8))
    } else if n >= 2 {
        let lo = u16::from_le_bytes([s[0], s[1]]);
        let hi = u16::from_le_bytes([s[n - 2], s[n - 1]]);
        u64::from(lo) | (u64::from(hi) << ((n - 2) * 8))
    } else {
        s.first().map_or(0, |&b| u64::from(b))
    }
}

/// Long names of the well-known headers, lower case, grouped by length
/// (most frequent first within a group).
fn names_of_len(len: usize) -> &'static [(Key, HeaderName)] {
    use HeaderName::*;
    match len {
        2 => const { &[(Key::new(b"to"), To)] },
        3 => const { &[(Key::new(b"via"), Via)] },
        4 => const { &[(Key::new(b"from"), From), (Key::new(b"cseq"), CSeq)] },
        5 => const { &[(Key::new(b"route"), Route), (Key::new(b"event"), Event)] },
        7 => {
            const {
                &[
                    (Key::new(b"call-id"), CallId),
                    (Key::new(b"contact"), Contact),
                    (Key::new(b"expires"), Expires),
                    (Key::new(b"require"), Require),
                    (Key::new(b"subject"), Subject),
                ]
            }
        }
        8 => {
            const {
                &[
                    (Key::new(b"refer-to"), ReferTo),
                    (Key::new(b"identity"), Identity),
                ]
            }
        }
        9 => const { &[(Key::new(b"supported"), Supported)] },
        10 => const { &[(Key::new(b"user-agent"), UserAgent)] },
        11 => {
            const {
                &[
                    (Key::new(b"unsupported"), Unsupported),
                    (Key::new(b"referred-by"), ReferredBy),
                    (Key::new(b"retry-after"), RetryAfter),
                ]
            }
        }
        12 => {
            const {
                &[
                    (Key::new(b"max-forwards"), MaxForwards),
                    (Key::new(b"content-type"), ContentType),
                    (Key::new(b"record-route"), RecordRoute),
                    (Key::new(b"allow-events"), AllowEvents),
                ]
            }
        }
        13 => {
            const {
                &[
                    (Key::new(b"proxy-require"), ProxyRequire),
                    (Key::new(b"authorization"), Authorization),
                ]
            }
        }
        14 => {
            const {
                &[
                    (Key::new(b"content-length"), ContentLength),
                    (Key::new(b"accept-contact"), AcceptContact),
                    (Key::new(b"reject-contact"), RejectContact),
                ]
            }
        }
        15 => const { &[(Key::new(b"session-expires"), SessionExpires)] },
        16 => const { &[(Key::new(b"content-encoding"), ContentEncoding)] },
        19 => {
            const {
                &[
                    (Key::new(b"request-disposition"), RequestDisposition),
                    (Key::new(b"proxy-authorization"), ProxyAuthorization),
                ]
            }
        }
        _ => &[],
    }
}

impl HeaderName {
    /// Number of well-known names (for per-name index tables).
    pub const COUNT: usize = HeaderName::Other as usize + 1;

    /// Every well-known name (all but `Other`).
    pub const ALL: [HeaderName; HeaderName::COUNT - 1] = {
        use HeaderName::*;
        [
            Via,
            From,
            To,
            CallId,
            CSeq,
            MaxForwards,
            Contact,
            ContentLength,
            ContentType,
            ContentEncoding,
            Route,
            RecordRoute,
            Expires,
            Supported,
            Require,
            ProxyRequire,
            Unsupported,
            Subject,
            Event,
            AllowEvents,
            ReferTo,
            ReferredBy,
            SessionExpires,
            Identity,
            AcceptContact,
            RejectContact,
            RequestDisposition,
            RetryAfter,
            Authorization,
            ProxyAuthorization,
            UserAgent,
        ]
    };

    /// Recognises a header name, long or compact form, in any letter case
    /// (RFC 3261 §7.3.1: field names are case-insensitive).
    pub fn from_bytes(name: &[u8]) -> HeaderName {
        use HeaderName::*;
        if name.len() == 1 {
            return match name[0].to_ascii_lowercase() {
                b'v' => Via,
                b'f' => From,
                b't' => To,
                b'i' => CallId,
                b'm' => Contact,
                b'l' => ContentLength,
                b'c' => ContentType,
                b'e' => ContentEncoding,
                b'k' => Supported,
                b's' => Subject,
                b'o' => Event,
                b'u' => AllowEvents,
                b'r' => ReferTo,
                b'b' => ReferredBy,
                b'x' => SessionExpires,
                b'y' => Identity,
                b'a' => AcceptContact,
                b'j' => RejectContact,
                b'd' => RequestDisposition,
                _ => Other,
            };
        }
        // Names are compared as lower-cased 8-byte words: one OR and one
        // compare per word instead of a byte loop. Folding with 0x20 is exact
        // for the letters and '-' of the known names given a token input (the
        // only other byte that folds onto '-' is CR, which is no token char).
        if name.len() > 24 {
            return Other;
        }
        let cands = names_of_len(name.len());
        if cands.is_empty() {
            return Other;
        }
        // The first word settles most lookups; the rest only on a match.
        let n = name.len();
        let w0 = fold_word(&name[..n.min(8)]);
        for (k, h) in cands {
            if k.words[0] == w0 {
                let rest_ok = n <= 8
                    || (k.words[1] == fold_word(&name[8..n.min(16)])
                        && (n <= 16 || k.words[2] == fold_word(&name[16..n])));
                if rest_ok {
                    return *h;
                }
            }
        }
        Other
    }

    /// The canonical long form, as sipfront writes it.
    pub fn as_str(&self) -> &'static str {
        use HeaderName::*;
        match self {
            Via => "Via",
            From => "From",
            To => "To",
            CallId => "Call-ID",
            CSeq => "CSeq",
            MaxForwards => "Max-Forwards",
            Contact => "Contact",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            ContentEncoding => "Content-Encoding",
            Route => "Route",
            RecordRoute => "Record-Route",
            Expires => "Expires",
            Supported => "Supported",
            Require => "Require",
            ProxyRequire => "Proxy-Require",
            Unsupported => "Unsupported",
            Subject => "Subject",
            Event => "Event",
            AllowEvents => "Allow-Events",
            ReferTo => "Refer-To",
            ReferredBy => "Referred-By",
            SessionExpires => "Session-Expires",
            Identity => "Identity",
            AcceptContact => "Accept-Contact",
            RejectContact => "Reject-Contact",
            RequestDisposition => "Request-Disposition",
            RetryAfter => "Retry-After",
            Authorization => "Authorization",
            ProxyAuthorization => "Proxy-Authorization",
            UserAgent => "User-Agent",
            Other => "",
        }
    }

    /// Headers whose value is a comma-separated list that may be split
    /// across several lines or combined in one (RFC 3261 §7.3.1). Values of
    /// these are split with [`crate::scan::CommaSplit`].
    pub fn is_list(&self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Via | Contact
                | Route
                | RecordRoute
                | Supported
                | Require
                | ProxyRequire
                | Unsupported
                | AllowEvents
                | AcceptContact
                | RejectContact
                | RequestDisposition
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_compact_forms_rfc3261_7_3_3() {
        let table: &[(&[u8], HeaderName)] = &[
            (b"Via", HeaderName::Via),
            (b"v", HeaderName::Via),
            (b"V", HeaderName::Via),
            (b"vIA", HeaderName::Via),
            (b"i", HeaderName::CallId),
            (b"call-ID", HeaderName::CallId),
            (b"m", HeaderName::Contact),
            (b"f", HeaderName::From),
            (b"t", HeaderName::To),
            (b"l", HeaderName::ContentLength),
            (b"c", HeaderName::ContentType),
            (b"e", HeaderName::ContentEncoding),
            (b"k", HeaderName::Supported),
            (b"s", HeaderName::Subject),
            (b"o", HeaderName::Event),
            (b"u", HeaderName::AllowEvents),
            (b"r", HeaderName::ReferTo),
            (b"x", HeaderName::SessionExpires),
            (b"y", HeaderName::Identity),
            (b"MaX-fOrWaRdS", HeaderName::MaxForwards),
            (b"Record-Route", HeaderName::RecordRoute),
            (b"CSEQ", HeaderName::CSeq),
            (b"Content-Length", HeaderName::ContentLength),
            (b"Retry-After", HeaderName::RetryAfter),
            (b"Referred-By", HeaderName::ReferredBy),
            (b"X-Custom", HeaderName::Other),
            (b"z", HeaderName::Other),
            (b"", HeaderName::Other),
        ];
        for (name, want) in table {
            assert_eq!(HeaderName::from_bytes(name), *want, "{:?}", name);
        }
    }

    #[test]
    fn word_loads_match_bytes() {
        let s = b"0123456789abcdef";
        for n in 0..=8 {
            let mut want = 0u64;
            for (i, &b) in s[..n].iter().enumerate() {
                want |= u64::from(b) << (i * 8);
            }
            assert_eq!(load_le(&s[..n]), want, "{n}");
        }
    }

    #[test]
    fn canonical_names_round_trip() {
        for h in HeaderName::ALL {
            assert_eq!(HeaderName::from_bytes(h.as_str().as_bytes()), h);
        }
    }
}
