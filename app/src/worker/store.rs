//! The models loaded this session, each parsed once into the engine's `LoadedModel` (kept for a
//! switch back or a restart on another backend; nothing parses a model file again), with what
//! the menu shows about it and the adapter Generate uses with it.

use tinylm_engine::checkpoint::Format;
use tinylm_engine::error::InputKind;
use tinylm_engine::loaded::{parses_on_this_thread, sniff, ModelFormat};
use tinylm_engine::{Error, LoadedModel, NamedFile};

use crate::protocol::train::BaseId;
use crate::protocol::{ModelEntry, Source, MAX_FILE_BYTES};
use crate::train::file_hash;
use crate::words;

/// A model and its tokenizer as files.
pub struct Files {
    pub model_name: String,
    pub model: Vec<u8>,
    pub tokenizer_name: String,
    pub tokenizer: Vec<u8>,
}

/// A loaded model and what the page knows of it.
pub struct Stored {
    pub entry: ModelEntry,
    pub model: LoadedModel,
    /// Its name and file hash, so adapters and snapshots know their base.
    pub base: BaseId,
    /// The name of the adapter in use with it (`model.adapter()`), if any.
    pub adapter_name: Option<String>,
    /// Its content hash (`train::adapter_hash`), for links.
    pub adapter_hash: Option<String>,
}

#[derive(Default)]
pub struct Store {
    models: Vec<Stored>,
    /// The bundled tokenizer's file, lent to a model of its vocabulary loaded without one.
    bundled_tokenizer: Option<(String, Vec<u8>)>,
}

impl Store {
    /// Parses `files` (once) and keeps the model; returns its id.
    pub fn add(&mut self, source: Source, files: Files) -> Result<u32, String> {
        let model = parse(&files)?;
        let id = self.models.len() as u32;
        let c = *model.config();
        let entry = ModelEntry {
            id,
            name: self.unique_name(&files.model_name),
            source: source.clone(),
            config: c,
            format: model.describe().to_string(),
            params: c.n_params(),
            model_bytes: files.model.len() as u64,
            tokenizer_name: files.tokenizer_name.clone(),
            tokenizer_bytes: files.tokenizer.len() as u64,
        };
        let base = BaseId { name: entry.name.clone(), hash: file_hash(&files.model) };
        if source == Source::Bundled {
            self.bundled_tokenizer = Some((files.tokenizer_name, files.tokenizer));
        }
        self.models.push(Stored { entry, model, base, adapter_name: None, adapter_hash: None });
        Ok(id)
    }

    pub fn get(&self, id: u32) -> Result<&Stored, String> {
        self.models.get(id as usize).ok_or_else(|| "That model is no longer loaded.".into())
    }

    pub fn get_mut(&mut self, id: u32) -> Result<&mut Stored, String> {
        self.models.get_mut(id as usize).ok_or_else(|| "That model is no longer loaded.".into())
    }

    /// Every model but `id`, to drop adapters that belong to another model.
    pub fn others_mut(&mut self, id: u32) -> impl Iterator<Item = &mut Stored> {
        self.models.iter_mut().filter(move |m| m.entry.id != id)
    }

    pub fn entries(&self) -> Vec<ModelEntry> {
        self.models.iter().map(|m| m.entry.clone()).collect()
    }

    /// The bundled tokenizer, lent to a model of the same vocabulary loaded without one.
    pub fn bundled_tokenizer(&self) -> Option<(String, Vec<u8>)> {
        self.bundled_tokenizer.clone()
    }

    /// "stories260K", then "stories260K (2)" for a second model of that name.
    fn unique_name(&self, file: &str) -> String {
        let base = file.strip_suffix(".bin").unwrap_or(file).to_string();
        let taken = |n: &str| self.models.iter().any(|m| m.entry.name == n);
        (1..).map(|i| if i == 1 { base.clone() } else { format!("{base} ({i})") }).find(|n| !taken(n)).unwrap_or(base)
    }
}

/// Model files parsed on this (the worker's) thread since it started.
pub fn parses() -> u64 {
    parses_on_this_thread()
}

/// The model and its tokenizer, each checked, then together; errors in the reader's words.
fn parse(f: &Files) -> Result<LoadedModel, String> {
    let files = [NamedFile::new(&f.model_name, &f.model), NamedFile::new(&f.tokenizer_name, &f.tokenizer)];
    let q8 = matches!(sniff(&files).map(|s| s.format), Ok(ModelFormat::Llama2c(Format::V2 { .. })));
    if q8 && f.model.len() as u64 > MAX_FILE_BYTES / 4 {
        // Q8_0 weights unpack to four times their size.
        return Err(words::too_large(&f.model_name, f.model.len() as u64 * 4));
    }
    LoadedModel::open(&files).map_err(|e| match &e {
        Error::BadFile { kind: InputKind::Tokenizer, .. } => words::bad_tokenizer(&f.tokenizer_name, &f.tokenizer, &e),
        Error::VocabMismatch { tokens, vocab, .. } => words::mismatch(&f.tokenizer_name, *tokens, &f.model_name, *vocab),
        _ => words::bad_model(&f.model_name, &f.model, &e),
    })
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
    fn models_are_kept_parsed_once_and_named_apart() {
        let mut s = Store::default();
        let before = parses();
        let a = s.add(Source::Bundled, micro_files(64)).unwrap();
        let b = s.add(Source::Url { model: "x/micro.bin".into(), tokenizer: None }, micro_files(64)).unwrap();
        assert_eq!(parses(), before + 2, "one parse per load");
        let names: Vec<_> = s.entries().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["micro", "micro (2)"]);
        assert_eq!((a, b), (0, 1));
        assert_eq!(s.get(0).unwrap().model.config().vocab_size, 64);
        assert_eq!(s.get(1).unwrap().model.weights().wq, s.get(0).unwrap().model.weights().wq);
        assert!(s.get(7).is_err());
        assert_eq!(s.get(0).unwrap().base.hash, file_hash(&micro_files(64).model));
        assert_eq!(s.bundled_tokenizer().unwrap().0, "tok.bin");
        // Getting a model back, as every feature does, never parses it again.
        for _ in 0..3 {
            let _ = s.get(1).unwrap().model.cpu();
        }
        assert_eq!(parses(), before + 2);
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
