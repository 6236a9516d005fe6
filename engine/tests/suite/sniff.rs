//! The one sniffer (`loaded::sniff`): every model format told apart from the files' bytes (and a
//! Hugging Face folder by its config.json), whatever the files are called and in any order; and
//! truncated or hostile GGUF files and Hugging Face folders refused through `LoadedModel::open`
//! with typed errors in words.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::path::PathBuf;

use tinylm_engine::checkpoint::{self, Format};
use tinylm_engine::loaded::{read_tokenizer, sniff, ModelFormat};
use tinylm_engine::randmodel::{named_shape, random_weights};
use tinylm_engine::{Error, LoadedModel, NamedFile};

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A Hugging Face fixture folder's three files, as (name, bytes).
fn folder(name: &str) -> Vec<(String, Vec<u8>)> {
    ["tokenizer.json", "model.safetensors", "config.json"]
        .iter()
        .map(|f| (format!("{name}/{f}"), fixture(&format!("hf/{name}/{f}"))))
        .collect()
}

fn named(files: &[(String, Vec<u8>)]) -> Vec<NamedFile<'_>> {
    files.iter().map(|(n, b)| NamedFile::new(n, b)).collect()
}

fn open_err(files: &[NamedFile]) -> Error {
    match LoadedModel::open(files) {
        Ok(m) => panic!("{} opened", m.name()),
        Err(e) => e,
    }
}

#[test]
fn each_format_is_recognised_from_its_bytes() {
    let tok = common::read("tokenizers/tok512.bin");
    let (c, seed) = named_shape("micro").unwrap();
    let w = random_weights(&c, seed).unwrap();
    // llama2.c v0 (no magic: its length matches its header), v1 and v2, under names that say nothing.
    for (bytes, want) in [
        (checkpoint::write_v0(&w), Format::V0),
        (checkpoint::write_v1(&w), Format::V1),
        (checkpoint::write_v2(&w, 16).unwrap(), Format::V2 { group_size: 16 }),
    ] {
        let s = sniff(&[NamedFile::new("a", &tok), NamedFile::new("b", &bytes)]).unwrap();
        assert_eq!((s.format, s.model, s.tokenizer), (ModelFormat::Llama2c(want), 1, Some(0)));
    }
    // GGUF by its magic: alone, or with a tokenizer beside it in either order.
    let gguf = fixture("gguf/gqa_untied.f32.gguf");
    let s = sniff(&[NamedFile::new("model", &gguf)]).unwrap();
    assert_eq!((s.format, s.model, s.tokenizer), (ModelFormat::Gguf, 0, None));
    let json = fixture("hf/gqa_untied/tokenizer.json");
    let s = sniff(&[NamedFile::new("t", &json), NamedFile::new("model", &gguf)]).unwrap();
    assert_eq!((s.format, s.model, s.tokenizer), (ModelFormat::Gguf, 1, Some(0)));
    // A Hugging Face folder by its config.json, wherever it is in the list.
    let hf = folder("gqa_untied");
    let s = sniff(&named(&hf)).unwrap();
    assert_eq!((s.format, s.model, s.tokenizer), (ModelFormat::HfFolder, 2, None));
    // Tokenizers: tokenizer.json by its JSON object, tokenizer.bin otherwise.
    assert!(read_tokenizer(NamedFile::new("x", &json)).unwrap().is_hf());
    assert!(!read_tokenizer(NamedFile::new("x", &tok)).unwrap().is_hf());

    // Opened: the format in words and the model's own tokenizer.
    let g = LoadedModel::open(&[NamedFile::new("m.gguf", &gguf)]).unwrap();
    assert_eq!(g.format(), ModelFormat::Gguf);
    assert!(g.describe().starts_with("GGUF v3, F32"), "{}", g.describe());
    assert_eq!((g.tokenizer_name(), g.tokenizer().map(|t| t.vocab_size())), (Some("m.gguf"), Some(c_vocab(&g))));
    let h = LoadedModel::open(&named(&hf)).unwrap();
    assert_eq!((h.format(), h.name()), (ModelFormat::HfFolder, "gqa_untied"));
    assert!(h.describe().starts_with("Hugging Face safetensors"), "{}", h.describe());
    assert_eq!(h.tokenizer_name(), Some("gqa_untied/tokenizer.json"));
    assert!(h.tokenizer().unwrap().is_hf());
    // The same model from both files.
    assert_eq!(**g.weights(), **h.weights());
    // A tokenizer given beside a GGUF file is used instead of the file's own.
    let spm = fixture("tokenizers/spm.json");
    let with = LoadedModel::open(&[NamedFile::new("m.gguf", &gguf), NamedFile::new("spm.json", &json)]).unwrap();
    assert_eq!(with.tokenizer_name(), Some("spm.json"));
    let e = open_err(&[NamedFile::new("m.gguf", &gguf), NamedFile::new("spm.json", &spm)]);
    assert_eq!(e.to_string(), "tokenizer spm.json has 512 tokens but model m.gguf expects 384: they do not belong together");
    // Three files with a GGUF: which would be the tokenizer is not guessed.
    let e = open_err(&[NamedFile::new("m.gguf", &gguf), NamedFile::new("a", &tok), NamedFile::new("b", &tok)]);
    assert_eq!(
        e.to_string(),
        "invalid setting: a GGUF model is one model file and its tokenizer; 3 files were given with m.gguf"
    );
}

fn c_vocab(m: &LoadedModel) -> usize {
    m.config().vocab_size
}

#[test]
fn truncated_and_hostile_gguf_files_are_typed_errors_in_words() {
    let v = fixture("gguf/quant.q4_k_m.gguf");
    for cut in [4, 12, 100, 3000, v.len() / 2, v.len() - 1] {
        let e = open_err(&[NamedFile::new("m.gguf", &v[..cut])]);
        assert!(matches!(e, Error::BadFile { .. }), "cut at {cut}: {e:?}");
        assert!(e.to_string().starts_with("model file m.gguf: "), "cut at {cut}: {e}");
    }
    // Counts near 2^64 in the header: refused when the bytes run out, nothing allocated up front.
    for (at, what) in [(8, "tensor count"), (16, "metadata count")] {
        let mut h = v.clone();
        h[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = open_err(&[NamedFile::new("m.gguf", &h)]);
        assert!(matches!(e, Error::BadFile { .. }), "{what}: {e:?}");
    }
    // A hand-made GGUF v3 whose one tensor's shape product overflows u64.
    let mut h = b"GGUF".to_vec();
    h.extend(3u32.to_le_bytes());
    h.extend(1u64.to_le_bytes()); // tensors
    h.extend(0u64.to_le_bytes()); // metadata
    h.extend(1u64.to_le_bytes());
    h.push(b'x');
    h.extend(2u32.to_le_bytes());
    h.extend((1u64 << 62).to_le_bytes());
    h.extend((1u64 << 62).to_le_bytes());
    h.extend(0u32.to_le_bytes()); // F32
    h.extend(0u64.to_le_bytes());
    let e = open_err(&[NamedFile::new("h.gguf", &h)]);
    assert!(matches!(e, Error::BadFile { .. }), "{e:?}");
    assert_eq!(e.to_string(), "model file h.gguf: tensor x: shape [4611686018427387904, 4611686018427387904] is too large");
}

#[test]
fn bad_hugging_face_folders_are_typed_errors_in_words() {
    let hf = folder("gqa_untied");
    let [tok, st, cfg] = [&hf[0], &hf[1], &hf[2]];
    let open = |files: &[(&str, &[u8])]| open_err(&files.iter().map(|&(n, b)| NamedFile::new(n, b)).collect::<Vec<_>>());
    // The weights cut short, or missing.
    let e = open(&[("config.json", &cfg.1), ("model.safetensors", &st.1[..st.1.len() / 2])]);
    assert!(matches!(e, Error::BadFile { .. }) && e.to_string().contains("model.safetensors"), "{e}");
    let e = open(&[("config.json", &cfg.1)]);
    assert!(matches!(e, Error::BadFile { .. }), "{e:?}");
    // config.json cut short, or with sizes no engine could hold.
    let e = open(&[("config.json", &cfg.1[..cfg.1.len() / 2]), ("model.safetensors", &st.1)]);
    assert!(matches!(e, Error::BadFile { .. }) && e.to_string().contains("config.json"), "{e}");
    let mut c: serde_json::Value = serde_json::from_slice(&cfg.1).unwrap();
    c["intermediate_size"] = serde_json::json!(1u64 << 30);
    c["num_hidden_layers"] = serde_json::json!(1u64 << 30);
    let huge = serde_json::to_vec(&c).unwrap();
    let e = open(&[("config.json", &huge), ("model.safetensors", &st.1)]);
    assert!(matches!(e, Error::BadFile { .. }) && e.to_string().contains("too large"), "{e}");
    // A tokenizer.json cut short.
    let e = open(&[("config.json", &cfg.1), ("model.safetensors", &st.1), ("tokenizer.json", &tok.1[..tok.1.len() / 3])]);
    assert!(matches!(e, Error::BadFile { .. }) && e.to_string().contains("tokenizer.json"), "{e}");
}
