//! Hugging Face tokenizers: a `tokenizer.json` read by the `tokenizers` crate (byte-level BPE as
//! Llama 3 and SmolLM2 use; SentencePiece-style BPE with byte fallback as Llama 2 and
//! TinyLlama), and the same two kinds rebuilt from GGUF tokenizer metadata (`gpt2`: tokens and
//! merges; `llama`: tokens and SentencePiece scores, merges derived from the scores as
//! transformers' converter does). Encoding is the library's, so ids equal the Python library's.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::formats::gguf::Gguf;

/// Llama 3's pre-tokenizer split pattern (GGUF pre `llama-bpe`).
const LLAMA3_SPLIT: &str = concat!(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*",
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
);
/// Largest vocabulary accepted (Llama 3 has 128256; a guard against hostile counts).
const MAX_VOCAB: usize = 1 << 20;

/// A loaded tokenizer.json with what decoding needs per token.
#[derive(Clone)]
pub struct HfTokenizer {
    tok: Box<tokenizers::Tokenizer>,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HfTokenizer")
    }
}

/// What `Tokenizer` keeps of a Hugging Face tokenizer.
pub struct Loaded {
    pub hf: HfTokenizer,
    /// Each id's bytes as decoding prints it (byte-level pieces mapped back to bytes, `▁` to
    /// space; byte-fallback pieces kept as `<0xHH>`).
    pub pieces: Vec<Vec<u8>>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// SentencePiece style: the decoder drops the space the normalizer put before the text.
    pub strip_leading_space: bool,
}

impl HfTokenizer {
    /// Ids of `text`, with the post-processor's special tokens (e.g. a BOS) when `special`.
    pub fn encode(&self, text: &str, special: bool) -> Vec<u32> {
        // Encoding fails only for a text the model's normalizer or pre-tokenizer rejects, which
        // the layouts read here do not; an empty list is the safe answer then.
        self.tok.encode(text, special).map(|e| e.get_ids().to_vec()).unwrap_or_default()
    }
}

/// GPT-2's byte ↔ printable-character table: bytes that are printable Latin-1 stand for
/// themselves, the others for U+0100 onwards in byte order.
fn byte_level_chars() -> HashMap<char, u8> {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
    let mut next = 256u32;
    (0..=255u8)
        .map(|b| {
            if printable(b) {
                (b as char, b)
            } else {
                let c = char::from_u32(next).expect("U+0100.. are chars");
                next += 1;
                (c, b)
            }
        })
        .collect()
}

fn uses(spec: &Value, kind: &str) -> bool {
    match spec {
        Value::Object(m) => m.get("type").and_then(Value::as_str) == Some(kind) || m.values().any(|v| uses(v, kind)),
        Value::Array(a) => a.iter().any(|v| uses(v, kind)),
        _ => false,
    }
}

/// Reads a tokenizer.json (BPE models only).
pub fn from_json(data: &[u8], file: &str) -> Result<Loaded> {
    let bad = |what: String| Error::tokenizer(file, what);
    let spec: Value = serde_json::from_slice(data).map_err(|e| bad(format!("is not JSON: {e}")))?;
    match spec.pointer("/model/type").and_then(Value::as_str) {
        Some("BPE") => {}
        Some(t) => return Err(bad(format!("its model is {t}; this lab reads BPE tokenizers"))),
        None => return Err(bad("has no model type; this is not a tokenizer.json".into())),
    }
    if let Some(missing) = template_gap(&spec) {
        return Err(bad(format!("its post-processor's template uses the special token `{missing}`, which it does not define")));
    }
    let tok = tokenizers::Tokenizer::from_bytes(data).map_err(|e| bad(format!("cannot be read: {e}")))?;
    let n = tok.get_vocab(true).values().map(|&id| id as usize + 1).max().unwrap_or(0);
    if n == 0 || n > MAX_VOCAB {
        return Err(bad(format!("has a vocabulary of {n} ids")));
    }
    let byte_level = uses(&spec, "ByteLevel");
    let chars = byte_level_chars();
    let pieces = (0..n as u32)
        .map(|id| {
            let Some(t) = tok.id_to_token(id) else { return Vec::new() };
            let special = tok.get_added_vocabulary().is_special_token(&t);
            match (byte_level && !special, t.chars().all(|c| chars.contains_key(&c))) {
                (true, true) => t.chars().map(|c| chars[&c]).collect(),
                _ => t.replace('\u{2581}', " ").into_bytes(),
            }
        })
        .collect();
    let specials = |names: &[&str]| names.iter().find_map(|n| tok.token_to_id(n));
    let bos = post_processor_bos(&spec, &tok).or_else(|| specials(&["<s>", "<|begin_of_text|>"]));
    let eos = specials(&["</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>"]);
    let strip_leading_space = uses(&spec, "Strip") && !byte_level;
    Ok(Loaded { hf: HfTokenizer { tok: Box::new(tok) }, pieces, bos, eos, strip_leading_space })
}

/// The BOS a TemplateProcessing post-processor puts first, if any.
fn post_processor_bos(spec: &Value, tok: &tokenizers::Tokenizer) -> Option<u32> {
    let mut found = None;
    let mut visit = vec![spec.get("post_processor")?];
    while let Some(v) = visit.pop() {
        if v.get("type").and_then(Value::as_str) == Some("TemplateProcessing") {
            let first = v.pointer("/single/0/SpecialToken/id").and_then(Value::as_str);
            found = first.and_then(|name| tok.token_to_id(name));
        }
        if let Some(a) = v.get("processors").and_then(Value::as_array) {
            visit.extend(a);
        }
    }
    found
}

/// A special token that a TemplateProcessing post-processor's `single` or `pair` template names
/// but its `special_tokens` lacks. The tokenizers crate reads such a file and then panics when it
/// encodes (found by fuzzing), so it is refused here. Every processor with templates is checked,
/// whatever its `type` says: the crate also reads a template under a misspelt type (fuzzing
/// found that too).
fn template_gap(spec: &Value) -> Option<String> {
    let mut visit = vec![spec.get("post_processor")?];
    while let Some(v) = visit.pop() {
        if v.get("single").is_some() || v.get("pair").is_some() {
            let defined = v.get("special_tokens").and_then(Value::as_object);
            for template in ["single", "pair"] {
                for piece in v.get(template).and_then(Value::as_array).into_iter().flatten() {
                    let Some(id) = piece.pointer("/SpecialToken/id").and_then(Value::as_str) else { continue };
                    if !defined.is_some_and(|d| d.contains_key(id)) {
                        return Some(id.to_string());
                    }
                }
            }
        }
        if let Some(a) = v.get("processors").and_then(Value::as_array) {
            visit.extend(a);
        }
    }
    None
}

/// Rebuilds a tokenizer.json from GGUF tokenizer metadata and reads it.
pub fn from_gguf(g: &Gguf, file: &str) -> Result<Loaded> {
    let bad = |what: String| Error::tokenizer(file, what);
    let strings = |key: &str| -> Result<Vec<String>> {
        let a = g.get(key).and_then(|v| v.as_array()).ok_or_else(|| bad(format!("has no {key}")))?;
        a.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| bad(format!("{key} holds a non-string")))).collect()
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    if tokens.is_empty() || tokens.len() > MAX_VOCAB {
        return Err(bad(format!("has {} tokens", tokens.len())));
    }
    let types: Vec<u64> = match g.get("tokenizer.ggml.token_type").and_then(|v| v.as_array()) {
        Some(a) => a.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
        None => vec![1; tokens.len()],
    };
    let id = |key: &str| g.get(key).and_then(|v| v.as_u64()).filter(|&i| (i as usize) < tokens.len()).map(|i| i as u32);
    let (bos, eos) = (id("tokenizer.ggml.bos_token_id"), id("tokenizer.ggml.eos_token_id"));
    let flag = |key: &str, default: bool| match g.get(key) {
        Some(crate::formats::gguf::Value::Bool(b)) => *b,
        _ => default,
    };
    let model = g.get("tokenizer.ggml.model").and_then(|v| v.as_str()).unwrap_or("");
    let mut spec = match model {
        "gpt2" => gpt2_spec(g, &tokens, file)?,
        "llama" => llama_spec(g, &tokens, id("tokenizer.ggml.unknown_token_id"), file)?,
        m => return Err(bad(format!("tokenizer model `{m}` is not one this lab reads (gpt2 and llama are)"))),
    };
    // Control and user-defined tokens are matched as whole specials, as tokenizer.json's added tokens.
    let added: Vec<Value> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(types.get(*i), Some(3) | Some(4)) || (model == "llama" && types.get(*i) == Some(&2)))
        .map(|(i, t)| {
            let special = types.get(i) != Some(&4);
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": !special, "special": special})
        })
        .collect();
    spec["added_tokens"] = Value::Array(added);
    if let (true, Some(b)) = (flag("tokenizer.ggml.add_bos_token", model == "llama"), bos) {
        let name = &tokens[b as usize];
        let template = json!({"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": name, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": name, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": name, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {name: {"id": name, "ids": [b], "tokens": [name]}}});
        spec["post_processor"] = template;
    }
    let text = serde_json::to_vec(&spec).map_err(|e| bad(format!("cannot be rebuilt: {e}")))?;
    let mut loaded = from_json(&text, file)?;
    loaded.bos = bos.or(loaded.bos);
    loaded.eos = eos.or(loaded.eos);
    Ok(loaded)
}

fn gpt2_spec(g: &Gguf, tokens: &[String], file: &str) -> Result<Value> {
    let bad = |what: String| Error::tokenizer(file, what);
    let merges: Vec<Value> = match g.get("tokenizer.ggml.merges").and_then(|v| v.as_array()) {
        Some(a) => a
            .iter()
            .map(|m| {
                let s = m.as_str().ok_or_else(|| bad("a merge is not text".into()))?;
                let (l, r) = s.split_once(' ').ok_or_else(|| bad(format!("merge `{s}` is not two pieces")))?;
                Ok(json!([l, r]))
            })
            .collect::<Result<_>>()?,
        None => return Err(bad("gpt2 tokenizer has no tokenizer.ggml.merges".into())),
    };
    let pre = g.get("tokenizer.ggml.pre").and_then(|v| v.as_str()).unwrap_or("default");
    let byte_level =
        |regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex});
    let (pre_tokenizer, ignore_merges) = match pre {
        "llama-bpe" | "llama3" => (
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": false},
                byte_level(false)]}),
            true,
        ),
        "smollm" => (
            json!({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level(true)]}),
            false,
        ),
        "gpt2" | "gpt-2" | "default" => (byte_level(true), false),
        p => return Err(bad(format!("pre-tokenizer `{p}` is not one this lab knows (llama-bpe, smollm and gpt2 are)"))),
    };
    let vocab: serde_json::Map<String, Value> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
    Ok(json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": pre_tokenizer, "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": ignore_merges,
                  "vocab": vocab, "merges": merges}
    }))
}

/// BPE merges from SentencePiece scores: every split of a piece into two pieces of the vocabulary,
/// ranked by the piece's score (higher first), then by the halves' lengths (longer first), then
/// by the halves' ids — transformers' `SentencePieceExtractor` order.
pub fn spm_merges(tokens: &[String], scores: &[f32]) -> Vec<(String, String)> {
    let ids: HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let mut merges: Vec<(usize, usize, f32)> = Vec::new();
    // Control and byte pieces (`<s>`, `<0x0A>`) are never the result of a merge.
    for (piece, &score) in tokens.iter().zip(scores).filter(|(p, _)| !is_angle(p)) {
        let mut local: Vec<(usize, usize, f32)> = piece
            .char_indices()
            .skip(1)
            .filter_map(|(k, _)| Some((*ids.get(&piece[..k])?, *ids.get(&piece[k..])?, score)))
            .collect();
        local.sort_by_key(|m| (m.0, m.1));
        merges.extend(local);
    }
    let len = |i: usize| tokens[i].chars().count();
    // Stable, descending on (score, left length, right length), as Python's sort(reverse=True).
    merges.sort_by(|a, b| b.2.total_cmp(&a.2).then(len(b.0).cmp(&len(a.0))).then(len(b.1).cmp(&len(a.1))));
    merges.into_iter().map(|(l, r, _)| (tokens[l].clone(), tokens[r].clone())).collect()
}

fn llama_spec(g: &Gguf, tokens: &[String], unk: Option<u32>, file: &str) -> Result<Value> {
    let bad = |what: String| Error::tokenizer(file, what);
    let scores: Vec<f32> = g
        .get("tokenizer.ggml.scores")
        .and_then(|v| v.as_array())
        .ok_or_else(|| bad("llama tokenizer has no tokenizer.ggml.scores".into()))?
        .iter()
        .map(|v| v.as_f64().map(|f| f as f32).ok_or_else(|| bad("a score is not a number".into())))
        .collect::<Result<_>>()?;
    if scores.len() != tokens.len() {
        return Err(bad(format!("{} scores for {} tokens", scores.len(), tokens.len())));
    }
    let merges: Vec<Value> = spm_merges(tokens, &scores).into_iter().map(|(l, r)| json!([l, r])).collect();
    let vocab: serde_json::Map<String, Value> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
    let unk = unk.map(|i| tokens[i as usize].clone());
    Ok(json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u{2581}"},
                       {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}]},
        "pre_tokenizer": null, "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    }))
}

fn is_angle(p: &str) -> bool {
    p.len() > 2 && p.starts_with('<') && p.ends_with('>')
}
