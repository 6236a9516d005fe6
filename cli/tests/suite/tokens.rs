//! `tinylm encode` / `decode` against SentencePiece's encodings of tok512.model.

use crate::common;
use common::*;

fn encode(text: &str) -> Vec<u32> {
    let out = ok(&["encode".to_string(), "-z".into(), tok512().display().to_string(), text.to_string()]);
    String::from_utf8(out).unwrap().split_whitespace().map(|t| t.parse().unwrap()).collect()
}

fn decode(ids: &[u32]) -> String {
    let mut args = vec!["decode".to_string(), "-z".into(), tok512().display().to_string()];
    args.extend(ids.iter().map(u32::to_string));
    String::from_utf8(ok(&args)).unwrap()
}

#[test]
fn encode_and_decode_round_trip_the_sentencepiece_examples() {
    let r = reference_json();
    let examples = r["encode_examples_sentencepiece_tok512_model"].as_object().unwrap();
    assert_eq!(examples.len(), 4);
    for (text, expected) in examples {
        let got = encode(text);
        assert_eq!(got, ids(expected), "{text}");
        assert_eq!(decode(&got), format!("{text}\n"));
    }
}

#[test]
fn decode_without_bos_reads_as_after_bos() {
    assert_eq!(decode(&[403, 407]), decode(&[1, 403, 407]));
    assert_eq!(decode(&[1, 403, 407]), "Once upon\n");
}

#[test]
fn decode_keeps_multibyte_characters_from_byte_pieces() {
    // "☃" is not a tok512 piece: it becomes its three UTF-8 bytes as byte-fallback tokens
    // (id = byte + 3), which `decode` joins back; generate's safe_printf view would drop them.
    let ids = encode("snow ☃");
    assert!(ids.ends_with(&[0xE2 + 3, 0x98 + 3, 0x83 + 3]), "{ids:?}");
    assert_eq!(decode(&ids), "snow ☃\n");
}
