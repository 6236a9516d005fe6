//! Reproducible links: the model, prompt and settings in the URL's fragment (`#model=…&seed=…`).
//! The fragment never leaves the browser, so a shared prompt is not sent to any server.

use crate::protocol::{Choice, Source};

/// Everything a link restores. Numbers stay text: the form checks them like typed input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub model: ModelRef,
    pub prompt: String,
    pub temperature: String,
    pub topp: String,
    pub seed: String,
    pub steps: String,
    pub backend: Choice,
    pub present: bool,
    /// The adapter the story was written with, if any.
    pub adapter: Option<AdapterLink>,
    /// Write the story as soon as the page is ready (a teacher's link shows its story).
    pub run: bool,
}

/// An adapter as a link names it: its name, and a hash of its content (`train::adapter_hash`)
/// that tells the receiver whether the adapter on their device is the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterLink {
    pub name: String,
    pub hash: String,
}

/// How a link names its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    Bundled,
    /// Same-origin paths, loaded again when the link opens.
    Url {
        model: String,
        tokenizer: Option<String>,
    },
    /// A file on the sender's computer: the link can only name it.
    File {
        model: String,
    },
    /// A model of the shelf, by its name there: used from this device, or offered for download.
    Shelf {
        name: String,
    },
    /// A model grown in the Build view, by its file name and a hash of its bytes: used if this
    /// device kept the same one, else the reader is told and the plain model writes.
    Built {
        name: String,
        hash: String,
    },
}

impl ModelRef {
    pub fn of(source: &Source) -> ModelRef {
        match source {
            Source::Bundled => ModelRef::Bundled,
            Source::Url { model, tokenizer } => ModelRef::Url { model: model.clone(), tokenizer: tokenizer.clone() },
            Source::Files { model, .. } => ModelRef::File { model: model.clone() },
            Source::Shelf { name } => ModelRef::Shelf { name: name.clone() },
        }
    }
}

impl Default for LinkState {
    fn default() -> Self {
        LinkState {
            model: ModelRef::Bundled,
            prompt: String::new(),
            temperature: "1.0".into(),
            topp: "0.9".into(),
            seed: "42".into(),
            steps: "256".into(),
            backend: Choice::Auto,
            present: false,
            adapter: None,
            run: false,
        }
    }
}

/// The bundled model's name in links.
pub const BUNDLED: &str = "stories260K";

impl LinkState {
    /// `key=value&…`, without the leading `#`.
    pub fn encode(&self) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        match &self.model {
            ModelRef::Bundled => pairs.push(("model", BUNDLED)),
            ModelRef::Url { model, tokenizer } => {
                pairs.push(("model_url", model));
                if let Some(t) = tokenizer {
                    pairs.push(("tokenizer_url", t));
                }
            }
            ModelRef::File { model } => pairs.push(("model_file", model)),
            ModelRef::Shelf { name } => pairs.push(("model_shelf", name)),
            ModelRef::Built { name, hash } => pairs.extend([("model_built", name.as_str()), ("model_hash", hash.as_str())]),
        }
        pairs.extend([
            ("prompt", self.prompt.as_str()),
            ("t", &self.temperature),
            ("p", &self.topp),
            ("seed", &self.seed),
            ("steps", &self.steps),
        ]);
        if self.backend != Choice::Auto {
            pairs.push(("backend", self.backend.key()));
        }
        if self.present {
            pairs.push(("present", "1"));
        }
        if let Some(a) = &self.adapter {
            pairs.extend([("adapter", a.name.as_str()), ("adapter_hash", a.hash.as_str())]);
        }
        if self.run {
            pairs.push(("run", "1"));
        }
        pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
    }

    /// Reads a fragment (with or without `#`); missing or unknown keys keep their defaults.
    pub fn decode(fragment: &str) -> LinkState {
        let mut s = LinkState::default();
        let (mut url, mut tok, mut file, mut shelf) = (None, None, None, None);
        let (mut adapter, mut adapter_hash) = (None, None);
        let (mut built, mut model_hash) = (None, String::new());
        for pair in fragment.trim_start_matches('#').split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = decode(v);
            match k {
                "model_url" => url = Some(v),
                "tokenizer_url" => tok = Some(v),
                "model_file" => file = Some(v),
                "model_shelf" => shelf = Some(v),
                "model_built" => built = Some(v),
                "model_hash" => model_hash = v,
                "prompt" => s.prompt = v,
                "t" => s.temperature = v,
                "p" => s.topp = v,
                "seed" => s.seed = v,
                "steps" => s.steps = v,
                "backend" => s.backend = Choice::from_key(&v).unwrap_or_default(),
                "present" => s.present = v == "1",
                "adapter" => adapter = Some(v),
                "adapter_hash" => adapter_hash = Some(v),
                "run" => s.run = v == "1",
                _ => {}
            }
        }
        // An adapter is named by both; a hash alone names nothing the reader could look for.
        s.adapter = adapter.filter(|n| !n.is_empty()).map(|name| AdapterLink { name, hash: adapter_hash.unwrap_or_default() });
        s.model = match (url, file, shelf.filter(|n| !n.is_empty())) {
            (Some(model), _, _) => ModelRef::Url { model, tokenizer: tok },
            (None, Some(model), _) => ModelRef::File { model },
            (None, None, Some(name)) => ModelRef::Shelf { name },
            _ => match built.filter(|n| !n.is_empty()) {
                Some(name) => ModelRef::Built { name, hash: model_hash },
                None => ModelRef::Bundled,
            },
        };
        s
    }
}

/// What to load after the bundled model when the page opens: models remembered from earlier in
/// this tab's session, then the link's model; `target` is the one to end up using.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Restore {
    pub queue: Vec<Source>,
    pub target: Option<Source>,
    /// A file the link names, which only its sender has.
    pub missing_file: Option<String>,
    /// A shelf model the link names: used if it is on this device, else offered for download.
    pub shelf: Option<String>,
    /// A built model the link names (name, hash): used if this device kept it.
    pub built: Option<(String, String)>,
    /// The link's adapter, put in use once its model is (if this device has it).
    pub adapter: Option<AdapterLink>,
    /// The link writes its story as soon as all this is done.
    pub run: bool,
    /// The link's adapter was found and asked for: the story runs once it is in use.
    pub awaiting: Option<String>,
}

/// `link` is None when the page opened without a fragment.
pub fn restore_plan(link: Option<&ModelRef>, remembered: Vec<Source>, remembered_active: Option<Source>) -> Restore {
    let mut queue: Vec<Source> = Vec::new();
    for s in remembered {
        if matches!(s, Source::Url { .. }) && !queue.contains(&s) {
            queue.push(s);
        }
    }
    let mut plan = Restore { target: remembered_active, ..Restore::default() };
    match link {
        None => {}
        Some(ModelRef::Bundled) => plan.target = Some(Source::Bundled),
        Some(ModelRef::Url { model, tokenizer }) => {
            let s = Source::Url { model: model.clone(), tokenizer: tokenizer.clone() };
            if !queue.contains(&s) {
                queue.push(s.clone());
            }
            plan.target = Some(s);
        }
        Some(ModelRef::File { model }) => plan.missing_file = Some(model.clone()),
        Some(ModelRef::Shelf { name }) => plan.shelf = Some(name.clone()),
        Some(ModelRef::Built { name, hash }) => plan.built = Some((name.clone(), hash.clone())),
    }
    plan.queue = queue;
    plan
}

/// Percent-encodes everything but RFC 3986 unreserved characters (UTF-8 bytes).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes `encode` (and `+` as space); malformed escapes are kept as typed.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| bytes.get(j).and_then(|&c| (c as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_restores_what_it_saved() {
        let s = LinkState {
            model: ModelRef::Url { model: "models/my model.bin".into(), tokenizer: Some("models/tok.bin".into()) },
            prompt: "Once upon a time, a 🐉 said \"hi\" & left=1\n".into(),
            temperature: "0.8".into(),
            topp: "0.95".into(),
            seed: "133742".into(),
            steps: "0".into(),
            backend: Choice::Cpu,
            present: true,
            adapter: Some(AdapterLink { name: "Peter Rabbit style (40 steps)".into(), hash: "0123456789abcdef".into() }),
            run: true,
        };
        let text = s.encode();
        assert!(
            text.ends_with("&adapter=Peter%20Rabbit%20style%20%2840%20steps%29&adapter_hash=0123456789abcdef&run=1"),
            "{text}"
        );
        assert!(!text.contains(' ') && !text.contains('🐉') && !text.contains('\n'), "{text}");
        assert_eq!(LinkState::decode(&format!("#{text}")), s);
    }

    #[test]
    fn defaults_fill_what_a_link_lacks() {
        let s = LinkState::decode("#seed=7&junk&backend=nonsense&prompt=a+b%2");
        assert_eq!(s.seed, "7");
        assert_eq!(s.prompt, "a b%2");
        assert_eq!(s.backend, Choice::Auto);
        assert_eq!(s.model, ModelRef::Bundled);
        assert_eq!(s.temperature, "1.0");
        assert_eq!(LinkState::decode(""), LinkState::default());
        assert_eq!(LinkState::decode("#adapter_hash=ab&run=yes"), LinkState::default());
    }

    #[test]
    fn a_reload_brings_back_remembered_models_and_the_links_one() {
        let url = |m: &str| Source::Url { model: m.into(), tokenizer: Some("t.bin".into()) };
        let files = Source::Files { model: "f.bin".into(), tokenizer: None };
        let p = restore_plan(None, vec![url("a"), files.clone(), url("a"), url("b")], Some(url("b")));
        assert_eq!(p.queue, [url("a"), url("b")]);
        assert_eq!(p.target, Some(url("b")));
        let link = ModelRef::Url { model: "c".into(), tokenizer: Some("t.bin".into()) };
        let p = restore_plan(Some(&link), vec![url("a")], Some(url("a")));
        assert_eq!((p.queue, p.target), (vec![url("a"), url("c")], Some(url("c"))));
        let p = restore_plan(Some(&ModelRef::Bundled), vec![url("a")], Some(url("a")));
        assert_eq!((p.queue, p.target), (vec![url("a")], Some(Source::Bundled)));
        let p = restore_plan(Some(&ModelRef::File { model: "mine.bin".into() }), vec![], Some(files));
        assert_eq!(p.missing_file.as_deref(), Some("mine.bin"));
        assert!(p.queue.is_empty());
        let p = restore_plan(Some(&ModelRef::Shelf { name: "stories15M".into() }), vec![url("a")], Some(url("a")));
        assert_eq!((p.shelf.as_deref(), p.queue), (Some("stories15M"), vec![url("a")]));
    }

    #[test]
    fn a_link_names_a_shelf_model() {
        let s = LinkState { model: ModelRef::of(&Source::Shelf { name: "stories15M".into() }), ..LinkState::default() };
        let text = s.encode();
        assert!(text.starts_with("model_shelf=stories15M&prompt="), "{text}");
        assert_eq!(LinkState::decode(&text), s);
        // An empty name names nothing.
        assert_eq!(LinkState::decode("model_shelf=").model, ModelRef::Bundled);
    }

    #[test]
    fn a_link_names_a_built_model_with_its_hash() {
        let built = ModelRef::Built { name: "built-s30k-300.bin".into(), hash: "00ff".into() };
        let s = LinkState { model: built.clone(), ..LinkState::default() };
        let text = s.encode();
        assert!(text.starts_with("model_built=built-s30k-300.bin&model_hash=00ff&prompt="), "{text}");
        assert_eq!(LinkState::decode(&text), s);
        let p = restore_plan(Some(&built), vec![], None);
        assert_eq!(p.built, Some(("built-s30k-300.bin".into(), "00ff".into())));
        assert_eq!(LinkState::decode("model_built=&model_hash=00ff").model, ModelRef::Bundled);
    }

    #[test]
    fn encoding_matches_encode_uri_component_on_ascii() {
        assert_eq!(encode("a b/c?d=e&f"), "a%20b%2Fc%3Fd%3De%26f");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(decode("%C3%A9"), "é");
    }
}
