//! Hugging Face tokenizers (tokenizer.json and GGUF metadata) against the `tokenizers` Python
//! library: the torture list's ids and every bundled corpus's ids (as sha256 digests), both
//! from tests/fixtures/formats/tokenizers/encodings.json (make_fixtures.py).

#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tinylm_engine::formats::gguf::Gguf;
use tinylm_engine::Tokenizer;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(dir().join(rel)).unwrap()
}

fn encodings() -> serde_json::Value {
    serde_json::from_slice(&read("tokenizers/encodings.json")).unwrap()
}

/// The corpora as make_fixtures.py lists them: public/corpora, then shared/data/corpora/*/.
fn corpora() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    let mut public: Vec<_> = std::fs::read_dir(root.join("public/corpora")).unwrap().map(|e| e.unwrap().path()).collect();
    public.retain(|p| p.extension().is_some_and(|e| e == "txt"));
    public.sort();
    for p in public {
        out.push((format!("corpora/{}", p.file_name().unwrap().to_string_lossy()), std::fs::read_to_string(&p).unwrap()));
    }
    let shared = common::shared().join("corpora");
    let mut files: Vec<_> = std::fs::read_dir(&shared)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    for p in files {
        let folder = p.parent().unwrap().file_name().unwrap().to_string_lossy().to_string();
        out.push((format!("{folder}/{}", p.file_name().unwrap().to_string_lossy()), std::fs::read_to_string(&p).unwrap()));
    }
    out
}

/// Count and sha256 of a corpus's ids as the fixture records them.
fn digest(tok: &Tokenizer, text: &str, lines: usize) -> (usize, String) {
    let all: Vec<&str> = text.split('\n').collect();
    let (mut h, mut n) = (Sha256::new(), 0);
    for group in all.chunks(lines) {
        let ids = tok.encode(&group.join("\n"), true, false);
        n += ids.len();
        for id in ids {
            h.update(id.to_le_bytes());
        }
        h.update([0xff; 4]);
    }
    (n, h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// `tok` encodes every text as the library did for the fixture tokenizer `name`.
fn check(tok: &Tokenizer, name: &str, what: &str) {
    let e = encodings();
    let texts = e["torture_texts"].as_array().unwrap();
    let want = &e["tokenizers"][name];
    for (text, ids) in texts.iter().zip(want["torture"].as_array().unwrap()) {
        let text = text.as_str().unwrap();
        let ids = common::ids(ids);
        let got = tok.encode(text, true, false);
        // The library gives nothing for "" without a BOS template; `encode` then starts with BOS.
        if text.is_empty() && ids.is_empty() {
            assert_eq!(got, vec![tok.bos()], "{what}: empty text");
            continue;
        }
        assert_eq!(got, ids, "{what}: {text:?}");
    }
    let lines = e["chunk_lines"].as_u64().unwrap() as usize;
    let corpora = corpora();
    assert_eq!(corpora.len(), want["corpora"].as_object().unwrap().len(), "corpus list");
    for (cname, text) in corpora {
        let (n, sha) = digest(tok, &text, lines);
        let w = &want["corpora"][&cname];
        assert_eq!(n as u64, w["tokens"].as_u64().unwrap(), "{what}: {cname} token count");
        assert_eq!(sha, w["sha256"].as_str().unwrap(), "{what}: {cname} ids");
    }
}

#[test]
fn tokenizer_json_encodes_as_the_library() {
    for name in ["bbpe", "bbpe_smol", "spm"] {
        let tok = Tokenizer::from_json(&read(&format!("tokenizers/{name}.json")), name).unwrap();
        check(&tok, name, &format!("{name}.json"));
    }
}

#[test]
fn gguf_metadata_encodes_as_the_library() {
    for (file, name) in [("gguf/gqa_untied.f32.gguf", "bbpe"), ("gguf/mha_tied.f32.gguf", "spm")] {
        let data = read(file);
        let g = Gguf::parse(&data, file).unwrap();
        check(&Tokenizer::from_gguf(&g, file).unwrap(), name, file);
    }
}

#[test]
fn decoding_gives_back_the_text() {
    let texts = ["Once upon a time, there was a little robot.", "Emoji: 🙂🚀 中文字符 e\u{301}", "  spaced\n\nlines  "];
    for name in ["bbpe", "spm"] {
        let tok = Tokenizer::from_json(&read(&format!("tokenizers/{name}.json")), name).unwrap();
        for t in texts {
            let ids = tok.encode(t, true, false);
            assert_eq!(ids[0], tok.bos(), "{name}");
            let text = String::from_utf8(tok.decode_all(&ids).unwrap()).unwrap();
            assert_eq!(text, t, "{name}");
        }
    }
}

#[test]
fn spm_tokenizer_json_agrees_with_tok512_bin_on_the_prompts() {
    // tok512 as tokenizer.json (merges from its scores) and as llama2.c's tokenizer.bin (run.c's
    // rules) on the reference prompts: the ids stories260K was checked with.
    let json = Tokenizer::from_json(&read("tokenizers/spm.json"), "spm.json").unwrap();
    let bin = common::tok512();
    for t in ["Once upon a time, there was a little dragon", "Lily and Tom went to the park."] {
        assert_eq!(json.encode(t, true, false), bin.encode(t, true, false), "{t}");
    }
}

#[test]
fn bad_tokenizer_json_is_refused_in_words() {
    for (bytes, want) in [
        (&b"{"[..], "is not JSON"),
        (b"{\"model\": {\"type\": \"Unigram\"}}", "its model is Unigram"),
        (b"[]", "has no model type"),
    ] {
        let e = Tokenizer::from_json(bytes, "t.json").unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}
