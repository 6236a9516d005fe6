//! What the picked or dropped files are: a llama2.c model and its tokenizer, a GGUF file (its
//! tokenizer inside), or the files of a Hugging Face folder. Told from the names and sizes only,
//! before any byte is read, so that a folder missing a file is explained at once (the engine's
//! `loaded::sniff` then tells the formats apart from the bytes).

/// The files to send, by index into what was picked: the model first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    pub model: usize,
    /// A tokenizer given beside a llama2.c or GGUF model.
    pub tokenizer: Option<usize>,
    /// A Hugging Face folder's other files (weights, index, tokenizer.json), `model` being its
    /// config.json.
    pub rest: Vec<usize>,
}

impl Picked {
    /// Every index to send, the model first.
    pub fn order(&self) -> Vec<usize> {
        std::iter::once(self.model).chain(self.tokenizer).chain(self.rest.iter().copied()).collect()
    }
}

/// The base name of a path ("a/b/config.json" → "config.json"), lower-cased.
fn base(name: &str) -> String {
    name.rsplit(['/', '\\']).next().unwrap_or(name).to_ascii_lowercase()
}

/// The files of a Hugging Face folder the engine reads; the rest of a folder (README.md,
/// tokenizer_config.json, generation_config.json, a pytorch_model.bin…) is not read at all.
fn hf_file(name: &str) -> bool {
    let b = base(name);
    b == "config.json" || b == "tokenizer.json" || b.ends_with(".safetensors") || b == "model.safetensors.index.json"
}

/// Given `(name, size)` of each file, which is the model and which go with it. A folder is
/// recognised by its config.json or its .safetensors files; a GGUF file by its extension; for
/// llama2.c, a name with "tok" in it marks the tokenizer, otherwise the smaller file is
/// (tokenizers are kilobytes, models megabytes).
pub fn split(files: &[(String, u64)]) -> Result<Picked, String> {
    let names: Vec<String> = files.iter().map(|(n, _)| base(n)).collect();
    let has = |want: &str| names.iter().position(|n| n == want);
    let safetensors = names.iter().any(|n| n.ends_with(".safetensors"));
    if has("config.json").is_some() || safetensors {
        return folder(&names);
    }
    let is_tok = |i: usize| names[i].contains("tok");
    let gguf = names.iter().position(|n| n.ends_with(".gguf"));
    match files.len() {
        0 => Err(
            "Choose a model file (.bin or .gguf, and its tokenizer if it has its own), or every file of a Hugging Face folder."
                .into(),
        ),
        1 if is_tok(0) && gguf.is_none() => {
            Err(format!("“{}” looks like a tokenizer. Choose the model file too (both at once).", files[0].0))
        }
        1 => Ok(Picked { model: 0, tokenizer: None, rest: Vec::new() }),
        2 => {
            let tok = match (gguf, is_tok(0), is_tok(1)) {
                (Some(g), _, _) => 1 - g,
                (None, true, false) => 0,
                (None, false, true) => 1,
                _ if files[0].1 <= files[1].1 => 0,
                _ => 1,
            };
            Ok(Picked { model: 1 - tok, tokenizer: Some(tok), rest: Vec::new() })
        }
        n => Err(format!(
            "{n} files were given: choose only the model and its tokenizer, or every file of a Hugging Face \
             folder (config.json, the .safetensors files and tokenizer.json)."
        )),
    }
}

/// A Hugging Face folder's files, checked for the ones the engine needs.
fn folder(names: &[String]) -> Result<Picked, String> {
    let has = |want: &str| names.iter().any(|n| n == want);
    let missing: Vec<&str> = [
        (!has("config.json")).then_some("config.json (the model's shape)"),
        (!names.iter().any(|n| n.ends_with(".safetensors"))).then_some("the .safetensors weights"),
        (!has("tokenizer.json")).then_some("tokenizer.json (its tokenizer)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "This looks like a Hugging Face model folder, but {} missing: choose every file of the folder at once \
             (config.json, the .safetensors files, model.safetensors.index.json if it has one, and tokenizer.json).",
            match missing.as_slice() {
                [one] => format!("{one} is"),
                more => format!("{} are", more.join(" and ")),
            }
        ));
    }
    let model = names.iter().position(|n| n == "config.json").unwrap_or(0);
    let rest = (0..names.len()).filter(|&i| i != model && hf_file(&names[i])).collect();
    Ok(Picked { model, tokenizer: None, rest })
}

/// What to call a Hugging Face folder given as loose files (picked, so without the folder's
/// name): the model's own name in its config.json (`_name_or_path`: "HuggingFaceTB/SmolLM-135M"
/// → "SmolLM-135M"), else what its weights' files are named when that is not the generic
/// "model" ("smol.safetensors", or shards "smol-00001-of-00002.safetensors" → "smol"), else
/// None.
pub fn folder_name(config_json: &[u8], names: &[String]) -> Option<String> {
    let own = serde_json::from_slice::<serde_json::Value>(config_json).ok().and_then(|c| {
        let path = c.get("_name_or_path")?.as_str()?.trim().trim_end_matches(['/', '\\']).to_string();
        let last = path.rsplit(['/', '\\']).next()?.trim();
        (!last.is_empty() && last != ".").then(|| last.to_string())
    });
    if own.is_some() {
        return own;
    }
    // The weights' names without ".safetensors" and a shard's "-00001-of-00002".
    let stems: Vec<String> = names
        .iter()
        .map(|n| base(n))
        .filter_map(|b| b.strip_suffix(".safetensors").map(str::to_string))
        .map(|stem| match stem.rsplit_once("-of-").and_then(|(head, _)| head.rsplit_once('-')) {
            Some((name, k)) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => name.to_string(),
            _ => stem,
        })
        .collect();
    // Their original spelling (`base` lower-cases): the first weights file's, cut to the stem's length.
    let first = names.iter().find(|n| base(n).ends_with(".safetensors"))?;
    let first = first.rsplit(['/', '\\']).next().unwrap_or(first);
    let stem = stems.first()?;
    let generic = ["model", "pytorch_model", "adapter_model", "consolidated"];
    if stem.is_empty() || generic.contains(&stem.as_str()) || stems.iter().any(|s| s != stem) {
        return None;
    }
    first.get(..stem.len()).map(str::to_string)
}

/// The folder part of a path ("a/b/config.json" → "a/b"; "config.json" → "").
fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// Which of a dropped folder's files to read, given their paths in it ("qwen/config.json",
/// "qwen/onnx/model.onnx"…): a Hugging Face folder's files beside its shallowest config.json,
/// else its one GGUF file, else its llama2.c `.bin` files nearest the top (`split` then tells
/// them apart, or explains). Only names are looked at, so nothing else is read.
pub fn in_folder(paths: &[String]) -> Result<Vec<usize>, String> {
    let depth = |i: &usize| paths[*i].matches('/').count();
    let with = |want: &dyn Fn(&str) -> bool| -> Vec<usize> { (0..paths.len()).filter(|&i| want(&base(&paths[i]))).collect() };
    if let Some(config) = with(&|b| b == "config.json").into_iter().min_by_key(depth) {
        let dir = parent(&paths[config]);
        return Ok((0..paths.len()).filter(|&i| parent(&paths[i]) == dir && hf_file(&paths[i])).collect());
    }
    let ggufs = with(&|b| b.ends_with(".gguf"));
    match ggufs.as_slice() {
        [one] => return Ok(vec![*one]),
        [] => {}
        more => {
            let names: Vec<String> = more.iter().map(|&i| format!("“{}”", paths[i])).collect();
            return Err(format!("The folder holds {} GGUF files ({}): drop the one to use.", more.len(), names.join(", ")));
        }
    }
    let bins = with(&|b| b.ends_with(".bin"));
    let Some(top) = bins.iter().map(depth).min() else {
        return Err("The dropped folder holds no model this lab reads: a Hugging Face folder (config.json, .safetensors, \
                    tokenizer.json), a .gguf file, or a llama2.c model (.bin) and its tokenizer."
            .into());
    };
    Ok(bins.into_iter().filter(|i| depth(i) == top).collect())
}

#[cfg(test)]
mod tests {
    use super::{in_folder, split, Picked};

    fn f(names: &[(&str, u64)]) -> Vec<(String, u64)> {
        names.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    #[test]
    fn a_picked_folder_is_named_after_its_model() {
        use super::folder_name;
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let plain = names(&["config.json", "model.safetensors", "tokenizer.json"]);
        let config = br#"{"_name_or_path": "HuggingFaceTB/SmolLM-135M", "model_type": "llama"}"#;
        assert_eq!(folder_name(config, &plain).as_deref(), Some("SmolLM-135M"));
        assert_eq!(folder_name(br#"{"_name_or_path": "/home/me/out/my-llama/"}"#, &plain).as_deref(), Some("my-llama"));
        // No name in the config: the weights' own name, a shard's number cut off.
        let bare = br#"{"model_type": "llama"}"#;
        assert_eq!(folder_name(bare, &plain), None);
        assert_eq!(
            folder_name(bare, &names(&["config.json", "Tiny-Llama.safetensors", "tokenizer.json"])).as_deref(),
            Some("Tiny-Llama")
        );
        let shards =
            names(&["config.json", "smol-00001-of-00002.safetensors", "smol-00002-of-00002.safetensors", "tokenizer.json"]);
        assert_eq!(folder_name(bare, &shards).as_deref(), Some("smol"));
        let generic = names(&["config.json", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors"]);
        assert_eq!(folder_name(bare, &generic), None);
        assert_eq!(folder_name(b"not json", &plain), None);
        assert_eq!(folder_name(br#"{"_name_or_path": ""}"#, &plain), None);
    }

    fn pair(model: usize, tok: usize) -> Result<Picked, String> {
        Ok(Picked { model, tokenizer: Some(tok), rest: Vec::new() })
    }

    #[test]
    fn tokenizer_by_name_then_by_size() {
        assert_eq!(split(&f(&[("tok512.bin", 6227), ("stories260K.bin", 1_056_540)])), pair(1, 0));
        assert_eq!(split(&f(&[("model.bin", 9), ("tokenizer.bin", 433_869)])), pair(0, 1));
        assert_eq!(split(&f(&[("a.bin", 900), ("b.bin", 100)])), pair(0, 1));
        assert_eq!(split(&f(&[("m.bin", 5)])).unwrap().order(), [0]);
    }

    #[test]
    fn a_gguf_is_the_model_whatever_its_name_or_size() {
        assert_eq!(split(&f(&[("q.gguf", 5)])).unwrap().order(), [0]);
        assert_eq!(split(&f(&[("tokenizer.json", 900), ("tok.gguf", 100)])), pair(1, 0));
    }

    #[test]
    fn a_folder_sends_config_first_and_only_what_the_engine_reads() {
        let files = f(&[
            ("model-00002-of-00002.safetensors", 9),
            ("tokenizer.json", 3),
            ("README.md", 1),
            ("config.json", 1),
            ("model.safetensors.index.json", 1),
            ("model-00001-of-00002.safetensors", 9),
            ("tokenizer_config.json", 1),
        ]);
        let p = split(&files).unwrap();
        assert_eq!(p.order(), [3, 0, 1, 4, 5]);
    }

    #[test]
    fn odd_picks_are_explained() {
        assert!(split(&[]).is_err());
        assert!(split(&f(&[("tokenizer.bin", 5)])).unwrap_err().contains("looks like a tokenizer"));
        assert!(split(&f(&[("a", 1), ("b", 2), ("c", 3)])).unwrap_err().starts_with("3 files"));
        let no_config = split(&f(&[("model.safetensors", 9), ("tokenizer.json", 1)])).unwrap_err();
        assert!(no_config.contains("but config.json (the model's shape) is missing"), "{no_config}");
        let no_tok = split(&f(&[("model.safetensors", 9), ("config.json", 1)])).unwrap_err();
        assert!(no_tok.contains("but tokenizer.json (its tokenizer) is missing"), "{no_tok}");
        let alone = split(&f(&[("config.json", 1)])).unwrap_err();
        assert!(alone.contains("the .safetensors weights and tokenizer.json (its tokenizer) are missing"), "{alone}");
    }

    fn paths(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_dropped_folder_reads_only_what_the_model_needs() {
        // A Hugging Face snapshot: the files beside the top config.json, not its subfolders'.
        let hf = paths(&[
            "smol/onnx/config.json",
            "smol/model-00001-of-00002.safetensors",
            "smol/README.md",
            "smol/config.json",
            "smol/onnx/model.safetensors",
            "smol/tokenizer.json",
            "smol/model-00002-of-00002.safetensors",
            "smol/model.safetensors.index.json",
            "smol/generation_config.json",
        ]);
        assert_eq!(in_folder(&hf), Ok(vec![1, 3, 5, 6, 7]));
        assert_eq!(in_folder(&paths(&["m/README.md", "m/stories.q8_0.gguf"])), Ok(vec![1]));
        let two = in_folder(&paths(&["m/a.gguf", "m/b.gguf"])).unwrap_err();
        assert!(two.starts_with("The folder holds 2 GGUF files (“m/a.gguf”, “m/b.gguf”)"), "{two}");
        assert_eq!(in_folder(&paths(&["l/old/x.bin", "l/tok512.bin", "l/stories260K.bin"])), Ok(vec![1, 2]));
        assert!(in_folder(&paths(&["photos/a.jpg"])).unwrap_err().contains("holds no model this lab reads"));
    }
}
