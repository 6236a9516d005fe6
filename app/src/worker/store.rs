//! The models loaded this session, each parsed once into the engine's `LoadedModel` (kept for a
//! switch back or a restart on another backend; nothing parses a model file again), with what
//! the menu shows about it and the adapter Generate uses with it.

use tinylm_engine::error::InputKind;
use tinylm_engine::loaded::{parses_on_this_thread, sniff, ModelFormat};
use tinylm_engine::{Error, LoadedModel, NamedFile};

use crate::protocol::train::BaseId;
use crate::protocol::{ModelEntry, Source};
use crate::train::file_hash;
use crate::words;

/// A model's files as given: the model first (a llama2.c or GGUF file, or a Hugging Face
/// folder's config.json), then its tokenizer or the folder's other files.
pub struct Files {
    pub files: Vec<(String, Vec<u8>)>,
}

impl Files {
    /// A model file and the tokenizer file given with it.
    pub fn pair(model_name: String, model: Vec<u8>, tokenizer_name: String, tokenizer: Vec<u8>) -> Files {
        Files { files: vec![(model_name, model), (tokenizer_name, tokenizer)] }
    }

    fn named(&self) -> Vec<NamedFile<'_>> {
        self.files.iter().map(|(n, b)| NamedFile::new(n, b)).collect()
    }
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
        let (model, given) = parse(&files)?;
        let id = self.models.len() as u32;
        let c = *model.config();
        // The tokenizer given beside the model, else its own (in a GGUF file, or the folder's
        // tokenizer.json, counted with the folder's files).
        let (tokenizer_name, tokenizer_bytes) = match given {
            Some(i) => (files.files[i].0.clone(), files.files[i].1.len() as u64),
            None => (own_tokenizer(&model), 0),
        };
        let model_bytes =
            files.files.iter().enumerate().filter(|&(i, _)| Some(i) != given).map(|(_, (_, b))| b.len() as u64).sum();
        let entry = ModelEntry {
            id,
            name: self.unique_name(&display_name(&model, &files)),
            source: source.clone(),
            config: c,
            format: model.describe().to_string(),
            params: c.n_params(),
            model_bytes,
            tokenizer_name,
            tokenizer_bytes,
            weight_bytes: model.held_bytes(),
            kept_as: kept_as(&model),
        };
        let base = BaseId { name: entry.name.clone(), hash: model_hash(&files, given) };
        if source == Source::Bundled {
            if let Some((name, bytes)) = files.files.into_iter().nth(1) {
                self.bundled_tokenizer = Some((name, bytes));
            }
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

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    pub fn entries(&self) -> Vec<ModelEntry> {
        self.models.iter().map(|m| ModelEntry { weight_bytes: m.model.held_bytes(), ..m.entry.clone() }).collect()
    }

    /// The bundled tokenizer, lent to a model of the same vocabulary loaded without one.
    pub fn bundled_tokenizer(&self) -> Option<(String, Vec<u8>)> {
        self.bundled_tokenizer.clone()
    }

    /// "stories260K", then "stories260K (2)" for a second model of that name.
    fn unique_name(&self, file: &str) -> String {
        let base = file.strip_suffix(".bin").or_else(|| file.strip_suffix(".gguf")).unwrap_or(file).to_string();
        let taken = |n: &str| self.models.iter().any(|m| m.entry.name == n);
        (1..).map(|i| if i == 1 { base.clone() } else { format!("{base} ({i})") }).find(|n| !taken(n)).unwrap_or(base)
    }
}

/// Model files parsed on this (the worker's) thread since it started.
pub fn parses() -> u64 {
    parses_on_this_thread()
}

/// Whether the model in `files` is a llama2.c file given alone, which then needs a tokenizer
/// lent (GGUF files and Hugging Face folders carry their own).
pub fn needs_tokenizer(files: &[(String, Vec<u8>)]) -> bool {
    let named: Vec<NamedFile> = files.iter().map(|(n, b)| NamedFile::new(n, b)).collect();
    files.len() == 1 && matches!(sniff(&named).map(|s| s.format), Ok(ModelFormat::Llama2c(_)))
}

/// The model and its tokenizer, each checked, then together; errors in the reader's words.
/// Also returns which file was the tokenizer given beside the model, if any.
fn parse(f: &Files) -> Result<(LoadedModel, Option<usize>), String> {
    let files = f.named();
    let sniffed = sniff(&files).map_err(|e| words::run_error(&e))?;
    let (model_name, model_bytes) = (&f.files[sniffed.model].0, &f.files[sniffed.model].1);
    // Each reader asks for room for the model as held (weights and context cache) before it
    // copies any weight: a model too big for what this worker has left is `OutOfMemory`.
    let model = LoadedModel::open(&files).map_err(|e| {
        let tok = sniffed.tokenizer.map(|i| &f.files[i]);
        match (&e, tok) {
            (Error::OutOfMemory { .. }, _) => words::no_room(&e),
            (Error::BadFile { kind: InputKind::Tokenizer, .. }, Some((name, bytes))) => words::bad_tokenizer(name, bytes, &e),
            (Error::VocabMismatch { tokens, vocab, .. }, Some((name, _))) => words::mismatch(name, *tokens, model_name, *vocab),
            _ => match sniffed.format {
                ModelFormat::Llama2c(_) => words::bad_model(model_name, model_bytes, &e),
                ModelFormat::Gguf => words::bad_gguf(model_name, &e),
                ModelFormat::HfFolder => words::bad_folder(&e),
            },
        }
    })?;
    if model.tokenizer().is_none() {
        let which = match model.format() {
            ModelFormat::Gguf => {
                "this GGUF file carries none; give the model's tokenizer.json (or llama2.c tokenizer.bin) with it"
            }
            ModelFormat::HfFolder => "give the folder's tokenizer.json with its other files",
            ModelFormat::Llama2c(_) => "give its tokenizer file (tokenizer.bin or tokenizer.json) too",
        };
        return Err(format!("“{}” has no tokenizer: {which}.", file_name(model.name())));
    }
    Ok((model, sniffed.tokenizer))
}

/// How the menu names a model: its file's name, or a Hugging Face folder's (when the browser
/// gave paths; picked files come without, and are named for the model in them: its config's
/// `_name_or_path` or its weights' file name, `pick::folder_name`; else "Hugging Face folder").
fn display_name(model: &LoadedModel, files: &Files) -> String {
    match model.format() {
        ModelFormat::HfFolder if file_name(model.name()) == tinylm_engine::formats::hf::CONFIG => {
            let config = files.files.iter().find(|(n, _)| file_name(n) == tinylm_engine::formats::hf::CONFIG);
            let names: Vec<String> = files.files.iter().map(|(n, _)| n.clone()).collect();
            config.and_then(|(_, bytes)| crate::pick::folder_name(bytes, &names)).unwrap_or_else(|| "Hugging Face folder".into())
        }
        _ => file_name(model.name()),
    }
}

/// Where a model's own tokenizer came from, in words.
fn own_tokenizer(model: &LoadedModel) -> String {
    match model.format() {
        ModelFormat::Gguf => "its own (in the GGUF file)".into(),
        _ => model.tokenizer_name().map_or_else(|| "its own".into(), file_name),
    }
}

/// The hash adapters and snapshots name their base by: the model file's (as before), or every
/// file of a folder.
fn model_hash(files: &Files, given: Option<usize>) -> String {
    match files.files.as_slice() {
        [(_, model), ..] if files.files.len() <= 2 => file_hash(model),
        all => {
            let mut joined = Vec::new();
            for (i, (_, b)) in all.iter().enumerate().filter(|&(i, _)| Some(i) != given) {
                joined.extend((i as u64).to_le_bytes());
                joined.extend(b);
            }
            file_hash(&joined)
        }
    }
}

/// The last path segment of a URL or file name.
pub fn file_name(path: &str) -> String {
    let clean = path.split(['?', '#']).next().unwrap_or(path);
    clean.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or(clean).to_string()
}

/// "Q4_K and Q6_K": the types `model`'s matrices are kept in; "" when all are f32.
fn kept_as(model: &LoadedModel) -> String {
    let types: Vec<&str> = model.quantized().map(|q| q.kept_types().iter().map(|t| t.name()).collect()).unwrap_or_default();
    words::and_list(&types)
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
        Files::pair("micro.bin".into(), write_v0(&random_weights(&c, seed).unwrap()), "tok.bin".into(), tokenizer_file(tokens))
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
        assert_eq!(s.get(0).unwrap().base.hash, file_hash(&micro_files(64).files[0].1));
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
        let m = &mut f.files[0].1;
        m.truncate(m.len() - 3);
        let err = s.add(Source::Bundled, f).err().unwrap();
        assert!(err.starts_with("“micro.bin” is not a model file"), "{err}");
        let mut f = micro_files(64);
        f.files[1].1 = b"hello there".to_vec();
        let err = s.add(Source::Bundled, f).err().unwrap();
        assert!(err.contains("is not a tokenizer file: it looks like a text file"), "{err}");
        assert!(s.entries().is_empty());
    }

    const FORMATS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../engine/tests/fixtures/formats");

    fn fixture(path: &str) -> (String, Vec<u8>) {
        (file_name(path), std::fs::read(format!("{FORMATS}/{path}")).unwrap())
    }

    fn folder(dir: &str) -> Vec<(String, Vec<u8>)> {
        let mut names: Vec<String> = std::fs::read_dir(format!("{FORMATS}/hf/{dir}"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names.iter().map(|n| fixture(&format!("hf/{dir}/{n}"))).collect()
    }

    #[test]
    fn gguf_files_and_folders_carry_their_tokenizer_and_say_what_they_hold() {
        let mut s = Store::default();
        let q8 = fixture("gguf/quant.q8_0.gguf");
        assert!(!needs_tokenizer(std::slice::from_ref(&q8)), "a GGUF file gets no tokenizer lent");
        let id = s.add(Source::Files { model: q8.0.clone(), tokenizer: None }, Files { files: vec![q8] }).unwrap();
        let e = &s.entries()[id as usize];
        assert_eq!(e.name, "quant.q8_0");
        assert!(e.format.starts_with("GGUF v3") && e.format.contains("Q8_0"), "{}", e.format);
        assert_eq!(e.tokenizer_name, "its own (in the GGUF file)");
        let m = &s.get(id).unwrap().model;
        // The Q8_0 matrices stay quantized: the held bytes are the engine's quantized ones.
        assert_eq!(e.weight_bytes, m.quantized().expect("held as Q8_0").size_bytes());
        assert!(e.weight_bytes * 3 < 4 * e.params, "{} bytes for {} parameters", e.weight_bytes, e.params);
        assert_eq!(e.kept_as, "Q8_0");

        let mut files = folder("mha_tied_bf16");
        files.rotate_left(2);
        let id = s.add(Source::Files { model: files[0].0.clone(), tokenizer: None }, Files { files }).unwrap();
        let e = &s.entries()[id as usize];
        assert_eq!((e.name.as_str(), e.tokenizer_name.as_str()), ("Hugging Face folder", "tokenizer.json"));
        assert!(e.format.starts_with("Hugging Face sharded safetensors, BF16"), "{}", e.format);
        // Matrices at 2 bytes a weight, the norms in f32.
        let c = e.config;
        let norms = c.dim as u64 * (2 * c.n_layers as u64 + 1);
        assert_eq!(e.weight_bytes, 2 * (e.params - norms) + 4 * norms, "a BF16 folder is held as BF16");
        assert_eq!(e.kept_as, "BF16");
        assert!(s.get(id).unwrap().model.tokenizer().is_some());
    }

    #[test]
    fn bad_gguf_files_and_folders_are_refused_in_words() {
        let mut s = Store::default();
        let (name, mut bytes) = fixture("gguf/quant.q4_k_m.gguf");
        bytes.truncate(bytes.len() / 2);
        let err = s.add(Source::Bundled, Files { files: vec![(name, bytes)] }).err().unwrap();
        assert!(err.starts_with("“quant.q4_k_m.gguf” is a GGUF file this app cannot use: "), "{err}");

        let no_tok: Vec<_> = folder("gqa_untied").into_iter().filter(|(n, _)| n != "tokenizer.json").collect();
        let err = s.add(Source::Bundled, Files { files: no_tok }).err().unwrap();
        assert!(err.contains("has no tokenizer"), "{err}");

        let mut qwen = folder("gqa_untied");
        let config = qwen.iter_mut().find(|(n, _)| n == "config.json").unwrap();
        config.1 = String::from_utf8(config.1.clone()).unwrap().replace("LlamaForCausalLM", "Qwen2ForCausalLM").into_bytes();
        let err = s.add(Source::Bundled, Files { files: qwen }).err().unwrap();
        assert!(
            err.starts_with("This Hugging Face folder cannot be used (config.json: Qwen2ForCausalLM is not a Llama model"),
            "{err}"
        );
        assert!(s.entries().is_empty());
    }

    #[test]
    fn names_come_from_the_last_segment() {
        assert_eq!(file_name("models/s15m.bin?x=1"), "s15m.bin");
        assert_eq!(file_name("plain.bin"), "plain.bin");
    }
}
