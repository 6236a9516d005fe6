//! Reading and writing files, with errors that name the file. Models are opened here, once per
//! command, as the engine's `LoadedModel`.

use std::path::Path;

use tinylm_engine::lora::{read_peft, Adapter, CONFIG_FILE, WEIGHTS_FILE};
use tinylm_engine::{Config, Error, LoadedModel, NamedFile, Result, Tokenizer, Weights};

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

/// Opens the model at `path` (any llama2.c version).
pub fn model(path: &Path) -> Result<LoadedModel> {
    let bytes = read_file(path, "model")?;
    LoadedModel::open(&[NamedFile::new(&name(path), &bytes)])
}

/// `m` with the tokenizer at `path`, which must have the model's vocabulary.
pub fn with_tokenizer(m: LoadedModel, path: &Path) -> Result<LoadedModel> {
    m.with_tokenizer(NamedFile::new(&name(path), &read_file(path, "tokenizer")?))
}

/// Puts `--adapter`'s PEFT directory, when given, in use on `m` (it must fit the model).
pub fn use_adapter(m: &mut LoadedModel, dir: Option<&Path>) -> Result<()> {
    match dir {
        Some(d) => m.set_adapter(Some(adapter(d, m.config())?)),
        None => Ok(()),
    }
}

/// Reads the tokenizer at `path` for weights `w` (from `model_path`), refusing another vocabulary.
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
/// checks it was made for a model of shape `c`.
pub fn adapter(dir: &Path, c: &Config) -> Result<Adapter> {
    let (cfg, st) = (dir.join(CONFIG_FILE), dir.join(WEIGHTS_FILE));
    let cfg_bytes = read_file(&cfg, "adapter config")?;
    let st_bytes = read_file(&st, "adapter weights")?;
    let ad = read_peft(&cfg_bytes, &st_bytes, c, [&name(&cfg), &name(&st)])?;
    ad.check_base(c)?;
    Ok(ad)
}
