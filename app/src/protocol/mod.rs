//! Every message between the page and the engine worker, one module per view (`inspect`,
//! `train`, `bench`; generating and the model menu are here). Both sides use these enums; on
//! the wire each message is a typed JS value (`wire`), its bytes (`binary`) transferred.

use serde::{Deserialize, Serialize};
use tinylm_engine::Config;

pub mod bench;
pub mod binary;
pub mod build;
pub mod compare;
pub mod experiments;
pub mod inspect;
pub mod seed;
pub mod shelf;
pub mod train;
pub mod wire;

pub use binary::{Bytes, Floats};

/// Largest model file either side holds. The worker's wasm memory (at most 4 GiB, often less on
/// phones) must also fit the unpacked weights and the KV cache next to the file's bytes.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Which backend the reader asked for in the selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Choice {
    #[default]
    Auto,
    WebGpu,
    Cpu,
}

impl Choice {
    pub const ALL: [Choice; 3] = [Choice::Auto, Choice::WebGpu, Choice::Cpu];

    /// Stable word for links and form values.
    pub fn key(self) -> &'static str {
        match self {
            Choice::Auto => "auto",
            Choice::WebGpu => "webgpu",
            Choice::Cpu => "cpu",
        }
    }
    pub fn from_key(key: &str) -> Option<Choice> {
        Choice::ALL.into_iter().find(|c| c.key() == key)
    }
    pub fn label(self) -> &'static str {
        match self {
            Choice::Auto => "Auto",
            Choice::WebGpu => "WebGPU",
            Choice::Cpu => "CPU",
        }
    }
}

/// Sampling settings for one run (ranges are checked again by the engine's `Sampler`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub temperature: f32,
    pub topp: f32,
    #[serde(with = "seed")]
    pub seed: u64,
    /// 0 means the whole context, as in run.c.
    pub steps: usize,
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// stories260K and tok512, shipped with the site.
    Bundled,
    /// Same-origin paths relative to the page (e.g. `models/my.bin`).
    Url { model: String, tokenizer: Option<String> },
    /// Picked, dropped or stored files; their bytes travel in `ToWorker::Load::files`.
    Files { model: String, tokenizer: Option<String> },
    /// A model of the shelf (by its name there), downloaded and verified before: its stored
    /// files' bytes travel in `ToWorker::Load::files`, as for `Files`.
    Shelf { name: String },
}

/// A file's name and bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedBytes {
    pub name: String,
    pub bytes: Bytes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Reads, checks and switches to a new model. `files` holds the bytes of `Source::Files`
    /// (the model's first), and is empty for the others (the worker downloads those).
    Load {
        source: Source,
        choice: Choice,
        files: Vec<NamedBytes>,
    },
    /// Switches to a model loaded before, or to another backend for it.
    Select {
        model: u32,
        choice: Choice,
    },
    Generate {
        run: u64,
        prompt: String,
        settings: Settings,
    },
    /// One prompt under several samplings, written together (the Generate view's compare).
    Compare(compare::CompareRequest),
    /// Stops run `run` (and any older one, a compare's too) at the next token.
    Stop {
        run: u64,
    },
    /// Attention, logits and the logit lens of a text (the Inspect view).
    Inspect(inspect::InspectRequest),
    /// Stop an inspection, or the logit lens at more positions.
    InspectCtl(inspect::InspectCtl),
    /// Fine-tuning and adapters (the Train view).
    Train(train::TrainCmd),
    /// Times decoding for the benchmark page.
    Bench(bench::BenchRequest),
    /// Knock-outs, activation patching and steering (the Inspect view's Experiments panel).
    Experiment(experiments::ExperimentRequest),
    /// Growing a model from random weights (the Build view).
    Build(build::BuildCmd),
    /// Fetching a model of the shelf onto this device (beside the engine's queue: it is I/O).
    Shelf(shelf::ShelfCmd),
}

/// A model in the menu.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub id: u32,
    /// Shown in the menu, e.g. "stories260K".
    pub name: String,
    pub source: Source,
    pub config: Config,
    pub format: String,
    pub params: u64,
    pub model_bytes: u64,
    pub tokenizer_name: String,
    pub tokenizer_bytes: u64,
    /// Bytes of weights the engine holds for it now (`LoadedModel::held_bytes`): quantized
    /// ones stay quantized on the CPU, f32 ones only once something needed them.
    #[serde(default)]
    pub weight_bytes: u64,
    /// The types its matrices are kept in when not f32 ("Q4_K and Q6_K", "BF16"); "" for f32.
    #[serde(default)]
    pub kept_as: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendKind {
    WebGpu,
    Cpu,
}

/// The backend in use and, in plain words, why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    pub kind: BackendKind,
    /// The adapter or CPU kernel, e.g. "google swiftshader" or "simd128".
    pub detail: String,
    pub reason: String,
    /// Time to open the backend with this model (device, uploads, pipelines).
    pub start_ms: f64,
    /// On the CPU, why it runs on one thread where the browser reports several cores.
    #[serde(default)]
    pub one_thread: Option<String>,
}

/// Figures of one run so far.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RunStats {
    /// Forward passes done (prompt included), as run.c's `pos`.
    pub tokens: usize,
    /// Tokens the model chose (not forced by the prompt).
    pub generated: usize,
    pub elapsed_ms: f64,
    /// From the request to the first chosen token.
    pub first_token_ms: Option<f64>,
    /// Chosen tokens after the first, per second of time since the first (run.c's measure).
    pub tok_per_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    /// The worker listens now; messages sent before this are held by the page.
    Started,
    Progress {
        label: String,
        done: u64,
        total: Option<u64>,
    },
    /// A model is active; `models` is the whole menu. `parses` counts the model files the
    /// worker has parsed since it started (each model once, whatever it is used for since).
    Loaded {
        models: Vec<ModelEntry>,
        active: u32,
        backend: BackendInfo,
        parses: u64,
    },
    /// Auto measured the backends of model `model` and switched to the faster (or says why not).
    Backend {
        model: u32,
        backend: BackendInfo,
    },
    /// Loading failed; the model that was active (if any) still is.
    LoadFailed {
        message: String,
        active: Option<u32>,
    },
    /// Text since the last message: `prompt` echoes prompt tokens; `pieces` is the new text,
    /// one entry per chosen token (empty while a character's bytes are incomplete), so the page
    /// can show it at a reading pace.
    Text {
        run: u64,
        prompt: String,
        pieces: Vec<String>,
        stats: RunStats,
    },
    Finished {
        run: u64,
        stats: RunStats,
        stopped: bool,
    },
    RunFailed {
        run: u64,
        message: String,
    },
    /// Text and the end of a compare run.
    Compare(compare::CompareNews),
    Inspected(Box<inspect::Inspected>),
    InspectFailed {
        id: u64,
        message: String,
    },
    /// Progress, a stop, or logit lens columns of an inspection.
    InspectNews(inspect::InspectNews),
    Train(train::TrainEvent),
    Benched(bench::BenchResult),
    BenchFailed {
        id: u64,
        message: String,
    },
    /// Progress and results of an experiment.
    Experiment(experiments::ExperimentNews),
    Build(build::BuildEvent),
    Shelf(shelf::ShelfEvent),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through serde's data model (the wire's serializer is serde-wasm-bindgen; JSON here).
    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(m: &T) -> T {
        serde_json::from_str(&serde_json::to_string(m).unwrap()).unwrap()
    }

    #[test]
    fn messages_survive_the_wire() {
        let m = ToWorker::Load {
            source: Source::Files { model: "a b.bin".into(), tokenizer: None },
            choice: Choice::WebGpu,
            files: vec![NamedBytes { name: "a b.bin".into(), bytes: Bytes::from_slice(&[0, 7, 255]) }],
        };
        assert_eq!(round_trip(&m), m);
        let r = FromWorker::Text {
            run: 3,
            prompt: String::new(),
            pieces: vec!["🐉".into(), " \"hi\"\n".into()],
            stats: RunStats::default(),
        };
        assert_eq!(round_trip(&r), r);
        let g = ToWorker::Generate {
            run: 1,
            prompt: "x".into(),
            settings: Settings { temperature: 1.0, topp: 0.9, seed: u64::MAX, steps: 0 },
        };
        assert_eq!(round_trip(&g), g);
        let c = ToWorker::Compare(compare::CompareRequest {
            run: 2,
            prompt: "Once".into(),
            steps: 40,
            columns: vec![compare::Sampling { temperature: 0.8, topp: 0.9, seed: u64::MAX }],
        });
        assert_eq!(round_trip(&c), c);
        let n = FromWorker::Compare(compare::CompareNews::Text {
            run: 2,
            columns: vec![compare::ColumnText { prompt: "Once".into(), story: " upon".into() }],
        });
        assert_eq!(round_trip(&n), n);
        assert!(serde_json::from_str::<ToWorker>("{\"Nope\":1}").is_err());
        let file =
            shelf::FetchFile { url: "https://h/x.bin".into(), name: "x.bin".into(), size: u64::MAX, sha256: "ab".repeat(32) };
        let d = ToWorker::Shelf(shelf::ShelfCmd::Download(shelf::Download {
            job: 2,
            model: "stories15M".into(),
            params: 15_191_712,
            licence: "MIT".into(),
            files: vec![file],
        }));
        assert_eq!(round_trip(&d), d);
        let p = FromWorker::Shelf(shelf::ShelfEvent::Progress { job: 2, done: 7, total: 9, note: Some("cut".into()) });
        assert_eq!(round_trip(&p), p);
    }

    #[test]
    fn choice_keys_round_trip() {
        for c in Choice::ALL {
            assert_eq!(Choice::from_key(c.key()), Some(c));
        }
        assert_eq!(Choice::from_key("gpu"), None);
    }
}
