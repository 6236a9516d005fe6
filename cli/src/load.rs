//! Reading and writing files, with errors that name the file.

use std::path::Path;

use tinylm_engine::checkpoint::{self, Format};
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

/// Reads a checkpoint of any llama2.c version.
pub fn model(path: &Path) -> Result<(Weights, Format)> {
    checkpoint::read(&read_file(path, "model")?, &name(path))
}

/// Reads a tokenizer and checks it has the vocabulary of the model at `model_path`.
pub fn tokenizer_for(path: &Path, w: &Weights, model_path: &Path) -> Result<Tokenizer> {
    let tok = tokenizer(path)?;
    tok.check_vocab(w.config.vocab_size, &name(path), &name(model_path))?;
    Ok(tok)
}

/// Reads a tokenizer on its own (encode/decode need no model).
pub fn tokenizer(path: &Path) -> Result<Tokenizer> {
    Tokenizer::from_bytes(&read_file(path, "tokenizer")?, &name(path))
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
