//! A Hugging Face folder: the input is cut at each `\xff\xff\xff\xff` into config.json,
//! model.safetensors.index.json, model-00001-of-00002.safetensors, model-00002-of-00002.safetensors
//! and tokenizer.json (missing parts are absent files; an empty index part means a single
//! model.safetensors).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tinylm_engine::{LoadedModel, NamedFile};

fuzz_target!(|data: &[u8]| {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(4).position(|w| w == [0xff; 4]) {
        parts.push(&rest[..i]);
        rest = &rest[i + 4..];
    }
    parts.push(rest);
    let single = parts.get(1).is_some_and(|p| p.is_empty());
    let names: [&str; 5] = if single {
        ["config.json", "unused", "model.safetensors", "unused2", "tokenizer.json"]
    } else {
        [
            "config.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "tokenizer.json",
        ]
    };
    let files: Vec<NamedFile> = names.iter().zip(&parts).map(|(n, p)| NamedFile::new(n, p)).collect();
    if let Ok(m) = LoadedModel::open(&files) {
        if let Some(t) = m.tokenizer() {
            let _ = t.encode("Once upon a time", true, false);
        }
    }
});
