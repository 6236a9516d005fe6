//! Tokenizer encode/decode rules of run.c beyond the SentencePiece fixtures.

use crate::common;
use tinylm_engine::tokenizer::{Piece, Utf8Stream};
use tinylm_engine::{Tokenizer, BOS};

#[test]
fn empty_text_is_just_bos() {
    assert_eq!(common::tok512().encode("", true, false), [BOS]);
    assert_eq!(common::tok512().encode("", false, true), [2]);
}

#[test]
fn unknown_characters_fall_back_to_bytes() {
    let tok = common::tok512();
    // 🐉 is not a piece of tok512: its four UTF-8 bytes become ids byte + 3.
    let ids = tok.encode("🐉", true, false);
    let bytes: Vec<u32> = "🐉".bytes().map(|b| b as u32 + 3).collect();
    assert_eq!(ids[2..], bytes[..]);
    // Decoding gives the bytes back; a UTF-8 stream shows the dragon.
    let mut stream = Utf8Stream::default();
    let mut text = String::new();
    for w in ids.windows(2) {
        let p = tok.decode(w[0], w[1]).unwrap();
        text += &stream.push(p.bytes());
        if w[1] >= 3 && w[1] < 259 {
            assert!(matches!(p, Piece::Byte(_)));
            assert!(p.printable().is_empty(), "run.c does not print lone high bytes");
        }
    }
    assert_eq!(text, "🐉");
}

#[test]
fn decode_drops_the_space_after_bos_only() {
    let tok = common::tok512();
    let ids = tok.encode("Once upon", true, false);
    let once = tok.decode(BOS, ids[1]).unwrap();
    assert_eq!(once.bytes(), b"Once");
    let upon = tok.decode(ids[1], ids[2]).unwrap();
    assert_eq!(upon.bytes(), b" upon");
    assert!(tok.decode(1, 512).is_err());
}

#[test]
fn printable_keeps_ascii_and_whitespace_bytes() {
    assert_eq!(Piece::Byte(b'\n').printable(), b"\n");
    assert_eq!(Piece::Byte(b'A').printable(), b"A");
    assert_eq!(Piece::Byte(0x07).printable(), b"");
    assert_eq!(Piece::Text(b"ab").printable(), b"ab");
}

#[test]
fn merges_pick_the_best_score_leftmost_on_ties() {
    // A hand-built vocabulary: pieces "a", "b", "ab" (score 1), "ba" (score 1), " " .
    let mut file = 4i32.to_le_bytes().to_vec();
    let mut add = |s: &str, score: f32| {
        file.extend_from_slice(&score.to_le_bytes());
        file.extend_from_slice(&(s.len() as i32).to_le_bytes());
        file.extend_from_slice(s.as_bytes());
    };
    for s in ["<unk>", "<s>", "</s>"] {
        add(s, 0.0);
    }
    // The byte pieces every llama2.c vocabulary has (ids 3..259), for the byte fallback.
    for b in 0..=255u8 {
        add(&format!("<0x{b:02X}>"), 0.0);
    }
    add(" ", -5.0); // 259
    add("a", -1.0); // 260
    add("b", -1.0); // 261
    add("ab", 1.0); // 262
    add("ba", 1.0); // 263
    add("aba", 0.5); // 264
    let tok = Tokenizer::from_bytes(&file, "hand.bin").unwrap();
    // "bab": pairs "ba"(1) at 1 and "ab"(1) at 2: the leftmost wins → [" ", "ba", "b"].
    assert_eq!(tok.encode("bab", false, false), [259, 263, 261]);
    // "aba": "ab" (1) beats "ba" (1) by being leftmost → ["ab","a"]; then "ab"+"a" = "aba" (0.5) merges.
    assert_eq!(tok.encode("aba", false, false), [259, 264]);
    // "c" has no piece: its byte, 0x63 + 3.
    assert_eq!(tok.encode("c", false, false), [259, 0x63 + 3]);
}

#[test]
fn utf8_stream_holds_back_partial_characters() {
    let mut s = Utf8Stream::default();
    let bytes = "é🐉".as_bytes();
    assert_eq!(s.push(&bytes[..1]), "");
    assert_eq!(s.push(&bytes[1..3]), "é");
    assert_eq!(s.push(&bytes[3..]), "🐉");
    assert_eq!(s.push(&[0xff, b'x']), "\u{FFFD}x");
    assert_eq!(s.push(&[0xe2]), "");
    assert_eq!(s.finish(), "\u{FFFD}");
}

#[test]
fn llama2_tokenizer_loads_with_32000_tokens() {
    let tok = Tokenizer::from_bytes(&common::read("tokenizers/llama2/tokenizer.bin"), "tokenizer.bin").unwrap();
    assert_eq!(tok.vocab_size(), 32000);
    assert!(tok.check_vocab(512, "tokenizer.bin", "stories260K.bin").is_err());
    assert!(tok.check_vocab(32000, "tokenizer.bin", "s15m.bin").is_ok());
}

mod fast_merge {
    use super::common;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// The heap-based merge makes exactly run.c's merges (the quadratic reference loop).
        #[test]
        fn equals_the_reference_loop(text in "[a-zA-Z ,.!'\\n]{0,120}|\\PC{0,30}") {
            let tok = common::tok512();
            prop_assert_eq!(tok.encode(&text, false, false), tok.encode_reference(&text));
        }
    }

    #[test]
    fn equals_the_reference_on_a_book_page() {
        let tok = common::tok512();
        let text = String::from_utf8(common::read("corpora/gutenberg/the_tale_of_peter_rabbit_pg14304.txt")).unwrap();
        let page = &text[..3000];
        assert_eq!(tok.encode(page, true, false)[1..], tok.encode_reference(page)[..]);
        let llama = tinylm_engine::Tokenizer::from_bytes(&common::read("tokenizers/llama2/tokenizer.bin"), "t").unwrap();
        assert_eq!(llama.encode(page, false, false), llama.encode_reference(page));
    }
}
