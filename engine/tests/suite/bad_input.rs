//! Hostile and broken inputs: every one is a clear error naming the file, never a panic.

use crate::common;
use proptest::prelude::*;
use tinylm_engine::checkpoint;
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::Generation;
use tinylm_engine::randmodel::random_weights;
use tinylm_engine::{Config, Error, Tokenizer};

fn micro_v0() -> Vec<u8> {
    let (c, s) = tinylm_engine::randmodel::named_shape("micro").unwrap();
    checkpoint::write_v0(&random_weights(&c, s).unwrap())
}

fn err(data: &[u8]) -> String {
    checkpoint::read(data, "m.bin").unwrap_err().to_string()
}

fn with_header(mut data: Vec<u8>, field: usize, value: i32) -> Vec<u8> {
    data[field * 4..field * 4 + 4].copy_from_slice(&value.to_le_bytes());
    data
}

#[test]
fn header_problems_are_named() {
    let good = micro_v0();
    assert!(err(&good[..100]).contains("m.bin"));
    assert!(err(&good[..100]).contains("truncated"));
    assert!(err(&[1, 2]).contains("not a model file"));
    assert!(err(&with_header(good.clone(), 0, 0)).contains("dim is 0"));
    assert!(err(&with_header(good.clone(), 3, -4)).contains("n_heads is -4"));
    assert!(err(&with_header(good.clone(), 3, 3)).contains("does not divide dim"));
    assert!(err(&with_header(good.clone(), 4, 3)).contains("does not divide n_heads"));
    assert!(err(&with_header(good.clone(), 0, 1 << 30)).contains("too large"));
    assert!(err(&with_header(good.clone(), 5, i32::MIN)).contains("vocab_size"));
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 4]);
    assert!(err(&longer).contains("longer than its header says"));
}

/// Header fields near 2^31 whose products overflow u64: refused as too large, never the
/// "attempt to multiply with overflow" panic the size check itself used to hit.
#[test]
fn header_products_that_overflow_are_refused() {
    let big = i32::MAX;
    for (h, what) in [
        ([8, big, big, 2, 2, 32, 8], "hidden_dim and n_layers"),
        ([big - 1, 8, big, 1, 1, 32, 8], "dim and n_layers"),
        ([2, 8, big, 1, 1, 32, big], "n_layers and seq_len"),
        ([1 << 30, 8, 1, 1 << 29, 1, big, big], "n_heads and seq_len"),
    ] {
        let mut data: Vec<u8> = h.iter().flat_map(|v| v.to_le_bytes()).collect();
        data.extend_from_slice(&[0; 64]);
        let e = err(&data);
        assert!(e.contains("m.bin") && e.contains("too large"), "{what}: {e}");
        let e = Config::from_header(h, true, "x").unwrap_err().to_string();
        assert!(e.contains("too large"), "{what}: {e}");
    }
}

#[test]
fn versioned_header_problems_are_named() {
    let (c, s) = tinylm_engine::randmodel::named_shape("micro").unwrap();
    let v1 = checkpoint::write_v1(&random_weights(&c, s).unwrap());
    let mut bad = v1.clone();
    bad[4..8].copy_from_slice(&9i32.to_le_bytes());
    assert!(err(&bad).contains("version 9"));
    let mut bad = v1.clone();
    bad[36] = 7;
    assert!(err(&bad).contains("shared_classifier flag is 7"));
    assert!(err(&v1[..200]).contains("256-byte header"));
}

#[test]
fn tokenizer_problems_are_named() {
    let good = common::read("tokenizers/tok512.bin");
    let e = Tokenizer::from_bytes(&good[..good.len() - 3], "tok.bin").unwrap_err().to_string();
    assert!(e.contains("tok.bin") && e.contains("truncated"), "{e}");
    let e = Tokenizer::from_bytes(&(-1i32).to_le_bytes(), "tok.bin").unwrap_err().to_string();
    assert!(e.contains("max_token_length"), "{e}");
    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&(-7i32).to_le_bytes()); // length of token 0
    let e = Tokenizer::from_bytes(&bad, "tok.bin").unwrap_err().to_string();
    assert!(e.contains("token 0 has length -7"), "{e}");
}

#[test]
fn run_time_inputs_are_checked() {
    let c = Config::parse("16,40,2,2,1,64,8").unwrap();
    let mut b = CpuBackend::new(random_weights(&c, 1).unwrap());
    let e = Generation::new(vec![1; 9], 0, &c).unwrap_err();
    assert_eq!(e, Error::PromptTooLong { tokens: 9, seq_len: 8 });
    assert!(Generation::new(vec![1, 64], 0, &c).is_err());
    assert!(Generation::new(vec![], 0, &c).is_err());
    use tinylm_engine::generate::Backend;
    assert!(matches!(b.forward(64, 0), Err(Error::TokenOutOfRange { .. })));
    assert!(matches!(b.forward(3, 8), Err(Error::PromptTooLong { .. })));
    assert!(Config::parse("16,40,2,2").is_err());
    assert!(Config::parse("16,40,2,2,1,64,8,sideways").is_err());
}

/// A v2 (Q8_0) file with a NaN group scale loads (runq.c reads it too), but inspecting it is a
/// named error instead of a panic in the top-p view (found by the sabotage runs of issue 19).
#[test]
fn nan_weights_are_named_when_inspected() {
    let mut data = common::read("models/stories260K.v2-q80.bin");
    let (w, _) = checkpoint::read(&data, "ok.bin").unwrap();
    let c = w.config;
    // 256-byte header, the f32 norms, the embeddings' int8 values, then one scale per 64-wide row:
    // the second scale is token 1's (<s>) row.
    let norms = 4 * (2 * c.n_layers * c.dim + c.dim);
    let at = 256 + norms + c.vocab_size * c.dim + 4;
    data[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let (w, _) = checkpoint::read(&data, "nan.bin").unwrap();
    let mut b = CpuBackend::new(w);
    let e = tinylm_engine::trace::inspect(&mut b, &[1, 403, 407]).unwrap_err();
    assert!(matches!(e, Error::NotFinite(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "the model's output after token 1 is not a number (NaN or infinite): the model's weights look damaged"
    );
    let next = tinylm_engine::trace::next_tokens(&[0.5, f32::NAN, 1.0], 1.0, 0.9, 3);
    assert!(matches!(next, Err(Error::NotFinite(_))), "{next:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any truncation or byte mutation of a model file: an error or a model, never a panic,
    /// and a model that loads still runs.
    #[test]
    fn mutated_models_never_panic(cut in 0usize..4000, flips in prop::collection::vec((0usize..4000, any::<u8>()), 0..6), v1 in any::<bool>()) {
        let (c, s) = tinylm_engine::randmodel::named_shape("micro").unwrap();
        let w = random_weights(&c, s).unwrap();
        let mut data = if v1 { checkpoint::write_v1(&w) } else { checkpoint::write_v0(&w) };
        for (at, b) in flips {
            let n = data.len();
            data[at % n] = b;
        }
        data.truncate(data.len() - cut.min(data.len()) % 97);
        if let Ok((w, _)) = checkpoint::read(&data, "fuzz.bin") {
            let mut b = CpuBackend::new(w);
            let _ = tinylm_engine::trace::inspect(&mut b, &[1, 2, 3]);
        }
    }

    /// Header fields set to arbitrary values are refused or accepted without panicking or
    /// allocating by an unchecked size.
    #[test]
    fn arbitrary_headers_never_panic(h in prop::array::uniform7(any::<i32>()), version in 0i32..4, magic in any::<bool>()) {
        let mut data = Vec::new();
        if magic {
            data.extend_from_slice(&checkpoint::MAGIC.to_le_bytes());
            data.extend_from_slice(&version.to_le_bytes());
        }
        for v in h { data.extend_from_slice(&v.to_le_bytes()); }
        data.resize(data.len().max(300), 0);
        if let Ok((w, _)) = checkpoint::read(&data, "h.bin") {
            // Only a header whose sizes fit in this very file can load.
            prop_assert!(w.config.n_params() * 4 <= 300);
        }
    }

    #[test]
    fn mutated_tokenizers_never_panic(cut in 0usize..6227, flips in prop::collection::vec((0usize..6227, any::<u8>()), 0..6), text in "\\PC{0,40}") {
        let mut data = common::read("tokenizers/tok512.bin");
        for (at, b) in flips { data[at] = b; }
        data.truncate(data.len() - cut % 200);
        if let Ok(tok) = Tokenizer::from_bytes(&data, "fuzz.bin") {
            let ids = tok.encode(&text, true, true);
            for w in ids.windows(2) { let _ = tok.decode(w[0], w[1]); }
        }
    }
}
