//! Property tests of the codecs: what the encoders write, the decoders
//! read back unchanged (bencode, reference §2.1; classic commands, §1.2),
//! and no input makes a decoder panic.

use proptest::prelude::*;
use sipfront_rtpproxy::bencode::{self, Encoder, Value};
use sipfront_rtpproxy::classic::{self, Command, Tag, UlModifiers, UpdateLookup};

fn value() -> impl Strategy<Value = Value<'static>> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..16)
            .prop_map(|v| Value::Bytes(Box::leak(v.into_boxed_slice()))),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::vec(("[a-z -]{0,12}", inner), 0..6).prop_map(|kv| {
                Value::Dict(
                    kv.into_iter()
                        .map(|(k, v)| (&*Box::leak(k.into_bytes().into_boxed_slice()), v))
                        .collect(),
                )
            }),
        ]
    })
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9@._+-]{1,24}"
}

proptest! {
    // §2.1: bencode written by the encoder decodes to the same value.
    #[test]
    fn bencode_roundtrip(v in value()) {
        let mut e = Encoder::new();
        e.value(&v);
        prop_assert_eq!(bencode::decode(&e.buf).unwrap(), v);
    }

    // No byte string panics the decoders.
    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = bencode::decode(&data);
        let _ = sipfront_rtpproxy::ng::decode_request(&data);
        let _ = classic::parse_datagram(&data);
        let _ = classic::parse_stream(&data);
        let _ = classic::Reply::parse(&data);
    }

    // §1.2/§1.3: a U/L the client writes parses back to the same command.
    #[test]
    fn classic_update_roundtrip(
        cid in token(), ft in token(), tt in proptest::option::of(token()),
        ip in any::<[u8; 4]>(), port in 1u16.., media in 1u32..9,
        asym in any::<bool>(), weak in any::<bool>(), lookup in any::<bool>(),
        codecs in proptest::collection::vec(0u16..128, 0..4),
    ) {
        prop_assume!(ip != [0, 0, 0, 0]);
        let ul = UpdateLookup {
            mods: UlModifiers { asymmetric: asym, weak, codecs: codecs.into_iter().collect(), ..Default::default() },
            call_id: cid.as_bytes(),
            addr: Some(ip.into()),
            port,
            from_tag: Tag { tag: ft.as_bytes(), media: Some(media) },
            to_tag: tt.as_ref().map(|t| Tag { tag: t.as_bytes(), media: Some(media) }),
            notify: None,
        };
        prop_assume!(!lookup || ul.to_tag.is_some());
        let cmd = if lookup { Command::Lookup(ul) } else { Command::Update(ul) };
        let bytes = cmd.to_bytes(Some(b"1_2"));
        let parsed = classic::parse_datagram(&bytes).unwrap();
        prop_assert_eq!(format!("{:?}", parsed.command), format!("{:?}", cmd));
    }
}
