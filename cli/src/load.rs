//! Reading and writing files, with errors that name the file. Models are opened here, once per
//! command, as the engine's `LoadedModel`.

use std::path::Path;

use tinylm_engine::loaded::read_tokenizer;
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

/// Opens the model at `path`: a llama2.c or GGUF file, or a Hugging Face folder (its JSON and
/// safetensors files), the format sniffed by the engine (`loaded::sniff`).
pub fn model(path: &Path) -> Result<LoadedModel> {
    open_files(&model_files(path)?)
}

/// The files of the model at `path`: the file, or a folder's JSON and safetensors files.
pub fn model_files(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    if path.is_dir() {
        folder(path)
    } else {
        Ok(vec![(name(path), read_file(path, "model")?)])
    }
}

/// Opens a model from `model_files`.
pub fn open_files(files: &[(String, Vec<u8>)]) -> Result<LoadedModel> {
    let named: Vec<NamedFile> = files.iter().map(|(n, b)| NamedFile::new(n, b)).collect();
    LoadedModel::open(&named)
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

/// `m` with the tokenizer at `path` (tokenizer.bin or tokenizer.json), which must have the
/// model's vocabulary.
pub fn with_tokenizer(m: LoadedModel, path: &Path) -> Result<LoadedModel> {
    m.with_tokenizer(NamedFile::new(&name(path), &read_file(path, "tokenizer")?))
}

/// `m` with `-z`'s tokenizer when given, else with the one the model carries (GGUF metadata, a
/// folder's tokenizer.json); an error in words when it has none.
pub fn tokenizer_or_own(m: LoadedModel, z: Option<&Path>) -> Result<LoadedModel> {
    match z {
        Some(path) => with_tokenizer(m, path),
        None if m.tokenizer().is_some() => Ok(m),
        None => Err(Error::InvalidSetting(format!("{} carries no tokenizer: give one with -z/--tokenizer", m.name()))),
    }
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
    let mut tok = tokenizer(path)?;
    tok.check_vocab(w.config.vocab_size, &name(path), &name(model_path))?;
    if tok.is_hf() {
        tok = tok.with_specials(w.config.bos_id, w.config.eos_id);
    }
    Ok(tok)
}

/// Reads a tokenizer on its own (encode/decode need no model): llama2.c's tokenizer.bin or a
/// Hugging Face tokenizer.json (told apart by `loaded::read_tokenizer`).
pub fn tokenizer(path: &Path) -> Result<Tokenizer> {
    let bytes = read_file(path, "tokenizer")?;
    read_tokenizer(NamedFile::new(&name(path), &bytes))
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
