//! Reading and writing files, with errors that name the file.

use std::path::Path;

use tinylm_engine::checkpoint::{self, Format};
use tinylm_engine::formats::{self, Kind};
use tinylm_engine::lora::{read_peft, Adapter, CONFIG_FILE, WEIGHTS_FILE};
use tinylm_engine::{Error, Result, Tokenizer, Weights};

/// A path as it appears in messages.
pub fn name(path: &Path) -> String {
    path.display().to_string()
}

pub fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io { file: name(path), what: format!("cannot read {what} file: {e}") })
}

pub fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).map_err(|e| Error::Io { file: name(path), what: format!("cannot write: {e}") })
}

/// A model file (llama2.c checkpoint or GGUF) or a Hugging Face folder, as read.
pub struct Opened {
    pub weights: Weights,
    /// The tokenizer the model carries (GGUF metadata, the folder's tokenizer.json).
    pub tokenizer: Option<Tokenizer>,
    /// llama2.c's version, for llama2.c files.
    pub llama2c: Option<Format>,
    /// What was read, in words.
    pub format: String,
    /// Bytes read from disk.
    pub file_bytes: usize,
    /// The file's own context length where the engine capped it (`formats::MAX_CONTEXT`).
    pub file_context: Option<usize>,
}

/// Reads any model: the format is sniffed (`formats::sniff`), a folder read as Hugging Face's.
pub fn open(path: &Path) -> Result<Opened> {
    let files = if path.is_dir() { folder(path)? } else { vec![(name(path), read_file(path, "model")?)] };
    let named: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let file_bytes = files.iter().map(|(_, b)| b.len()).sum();
    if formats::sniff(&named) == Kind::Llama2c {
        let (weights, f) = checkpoint::read(&files[0].1, &files[0].0)?;
        return Ok(Opened { weights, tokenizer: None, llama2c: Some(f), format: f.describe(), file_bytes, file_context: None });
    }
    let m = formats::open(&named)?;
    let capped = (m.file_context != m.weights.config.seq_len).then_some(m.file_context);
    Ok(Opened { weights: m.weights, tokenizer: m.tokenizer, llama2c: None, format: m.format, file_bytes, file_context: capped })
}

/// A Hugging Face folder's files that a model needs: JSON and safetensors.
fn folder(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::Io { file: name(dir), what: format!("cannot list the folder: {e}") })?;
    let mut files = Vec::new();
    for e in entries {
        let p = e.map_err(|e| Error::Io { file: name(dir), what: e.to_string() })?.path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if p.is_file() && (ext == "json" || ext == "safetensors") {
            files.push((name(&p), read_file(&p, "model")?));
        }
    }
    files.sort();
    Ok(files)
}

/// Reads a model (any format) with the tokenizer it carries.
pub fn model(path: &Path) -> Result<(Weights, Option<Tokenizer>)> {
    open(path).map(|m| (m.weights, m.tokenizer))
}

/// The tokenizer to use with the model at `model_path`: `-z`'s (checked against the model's
/// vocabulary) or the one the model carries.
pub fn tokenizer_for(z: Option<&Path>, own: Option<Tokenizer>, w: &Weights, model_path: &Path) -> Result<Tokenizer> {
    let Some(path) = z else {
        return own.ok_or_else(|| Error::InvalidSetting(format!("{} carries no tokenizer: give one with -z", name(model_path))));
    };
    let mut tok = tokenizer(path)?;
    tok.check_vocab(w.config.vocab_size, &name(path), &name(model_path))?;
    if tok.is_hf() {
        tok = tok.with_specials(w.config.bos_id, w.config.eos_id);
    }
    Ok(tok)
}

/// Reads a tokenizer on its own (encode/decode need no model): llama2.c's tokenizer.bin or a
/// Hugging Face tokenizer.json (by its first byte).
pub fn tokenizer(path: &Path) -> Result<Tokenizer> {
    let bytes = read_file(path, "tokenizer")?;
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Tokenizer::from_json(&bytes, &name(path)),
        _ => Tokenizer::from_bytes(&bytes, &name(path)),
    }
}

/// Reads a PEFT adapter directory (`adapter_config.json` + `adapter_model.safetensors`) and
/// checks it was made for a model of `w`'s shape.
pub fn adapter(dir: &Path, w: &Weights) -> Result<Adapter> {
    let (cfg, st) = (dir.join(CONFIG_FILE), dir.join(WEIGHTS_FILE));
    let cfg_bytes = read_file(&cfg, "adapter config")?;
    let st_bytes = read_file(&st, "adapter weights")?;
    let ad = read_peft(&cfg_bytes, &st_bytes, &w.config, [&name(&cfg), &name(&st)])?;
    ad.check_base(&w.config)?;
    Ok(ad)
}

/// `adapter` for an optional `--adapter`.
pub fn adapter_opt(dir: Option<&Path>, w: &Weights) -> Result<Option<Adapter>> {
    dir.map(|d| adapter(d, w)).transpose()
}
