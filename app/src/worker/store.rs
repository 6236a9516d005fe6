//! The models loaded this session: their files' bytes (so a model can be switched back to, or
//! reopened on another backend) and what the menu shows about them.

use tinylm_engine::checkpoint::{self, MAGIC};
use tinylm_engine::{Tokenizer, Weights};

use super::fetch::MAX_FILE_BYTES;
use super::words;
use crate::protocol::{ModelEntry, Source};

/// A model and its tokenizer as files.
pub struct Files {
    pub model_name: String,
    pub model: Vec<u8>,
    pub tokenizer_name: String,
    pub tokenizer: Vec<u8>,
}

/// A checked model, ready for a backend.
pub struct Parsed {
    pub weights: Weights,
    pub tokenizer: Tokenizer,
}

struct Stored {
    entry: ModelEntry,
    files: Files,
}

#[derive(Default)]
pub struct Store {
    models: Vec<Stored>,
}

impl Store {
    /// Checks `files` and keeps them; returns the new entry's id and the parsed model.
    pub fn add(&mut self, source: Source, files: Files) -> Result<(u32, Parsed), String> {
        let (parsed, format) = parse(&files)?;
        let id = self.models.len() as u32;
        let entry = ModelEntry {
            id,
            name: self.unique_name(&files.model_name),
            source,
            config: parsed.weights.config,
            format,
            params: parsed.weights.config.n_params(),
            model_bytes: files.model.len() as u64,
            tokenizer_name: files.tokenizer_name.clone(),
            tokenizer_bytes: files.tokenizer.len() as u64,
        };
        self.models.push(Stored { entry, files });
        Ok((id, parsed))
    }

    /// Parses a stored model again (for a switch of model or backend).
    pub fn open(&self, id: u32) -> Result<Parsed, String> {
        let stored = self.models.get(id as usize).ok_or("That model is no longer loaded.")?;
        parse(&stored.files).map(|(p, _)| p)
    }

    /// The model's name and a hash of its file, so adapters and checkpoints know their base.
    pub fn identity(&self, id: u32) -> Option<crate::train::BaseId> {
        let m = self.models.get(id as usize)?;
        Some(crate::train::BaseId { name: m.entry.name.clone(), hash: crate::train::file_hash(&m.files.model) })
    }

    pub fn entries(&self) -> Vec<ModelEntry> {
        self.models.iter().map(|m| m.entry.clone()).collect()
    }

    /// The bundled tokenizer, lent to a model of the same vocabulary loaded without one.
    pub fn bundled_tokenizer(&self) -> Option<(String, Vec<u8>)> {
        let m = self.models.iter().find(|m| m.entry.source == Source::Bundled)?;
        Some((m.files.tokenizer_name.clone(), m.files.tokenizer.clone()))
    }

    /// "stories260K", then "stories260K (2)" for a second model of that name.
    fn unique_name(&self, file: &str) -> String {
        let base = file.strip_suffix(".bin").unwrap_or(file).to_string();
        let taken = |n: &str| self.models.iter().any(|m| m.entry.name == n);
        (1..).map(|i| if i == 1 { base.clone() } else { format!("{base} ({i})") }).find(|n| !taken(n)).unwrap_or(base)
    }
}

/// Model and tokenizer, each checked on its own, then together.
fn parse(f: &Files) -> Result<(Parsed, String), String> {
    if is_q8(&f.model) && f.model.len() as u64 > MAX_FILE_BYTES / 4 {
        // Q8_0 weights unpack to four times their size.
        return Err(words::too_large(&f.model_name, f.model.len() as u64 * 4));
    }
    let (weights, format) =
        checkpoint::read(&f.model, &f.model_name).map_err(|e| words::bad_model(&f.model_name, &f.model, &e))?;
    let tokenizer = Tokenizer::from_bytes(&f.tokenizer, &f.tokenizer_name)
        .map_err(|e| words::bad_tokenizer(&f.tokenizer_name, &f.tokenizer, &e))?;
    let vocab = weights.config.vocab_size;
    if tokenizer.vocab_size() != vocab {
        return Err(words::mismatch(&f.tokenizer_name, tokenizer.vocab_size(), &f.model_name, vocab));
    }
    Ok((Parsed { weights, tokenizer }, format.describe()))
}

fn is_q8(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == MAGIC.to_le_bytes() && bytes[4..8] == 2i32.to_le_bytes()
}

/// The last path segment of a URL or file name.
pub fn file_name(path: &str) -> String {
    let clean = path.split(['?', '#']).next().unwrap_or(path);
    clean.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or(clean).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinylm_engine::checkpoint::write_v0;
    use tinylm_engine::randmodel::{named_shape, random_weights};

    /// A llama2.c tokenizer file with `n` pieces (enough for the checks here).
    fn tokenizer_file(n: usize) -> Vec<u8> {
        let mut out = 8i32.to_le_bytes().to_vec();
        for i in 0..n {
            let piece = format!("t{i}");
            out.extend((-(i as f32)).to_le_bytes());
            out.extend((piece.len() as i32).to_le_bytes());
            out.extend(piece.as_bytes());
        }
        out
    }

    fn micro_files(tokens: usize) -> Files {
        let (c, seed) = named_shape("micro").unwrap();
        Files {
            model_name: "micro.bin".into(),
            model: write_v0(&random_weights(&c, seed).unwrap()),
            tokenizer_name: "tok.bin".into(),
            tokenizer: tokenizer_file(tokens),
        }
    }

    #[test]
    fn models_are_kept_and_named_apart() {
        let mut s = Store::default();
        let (a, parsed) = s.add(Source::Bundled, micro_files(64)).unwrap();
        assert_eq!(parsed.weights.config.vocab_size, 64);
        let (b, _) = s.add(Source::Url { model: "x/micro.bin".into(), tokenizer: None }, micro_files(64)).unwrap();
        let names: Vec<_> = s.entries().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["micro", "micro (2)"]);
        assert_eq!((a, b), (0, 1));
        assert_eq!(s.open(1).unwrap().weights, parsed.weights);
        assert!(s.open(7).is_err());
    }

    #[test]
    fn wrong_files_are_refused_in_words() {
        let mut s = Store::default();
        let err = s.add(Source::Bundled, micro_files(32000)).err().unwrap();
        assert!(err.contains("does not match") && err.contains("32000") && err.contains("64"), "{err}");
        let mut f = micro_files(64);
        f.model.truncate(f.model.len() - 3);
        let err = s.add(Source::Bundled, f).err().unwrap();
        assert!(err.starts_with("“micro.bin” is not a model file"), "{err}");
        let mut f = micro_files(64);
        f.tokenizer = b"hello there".to_vec();
        let err = s.add(Source::Bundled, f).err().unwrap();
        assert!(err.contains("is not a tokenizer file: it looks like a text file"), "{err}");
        assert!(s.entries().is_empty());
    }

    #[test]
    fn names_come_from_the_last_segment() {
        assert_eq!(file_name("models/s15m.bin?x=1"), "s15m.bin");
        assert_eq!(file_name("plain.bin"), "plain.bin");
    }
}
