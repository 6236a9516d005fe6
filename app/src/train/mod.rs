//! Fine-tuning in the browser, the parts both sides share: the Train view's settings and
//! presets, the messages about training, the held-out split, checkpoints and the adapter
//! library's records, and PEFT zips. Pure Rust, tested natively.

#[cfg(test)]
mod fuzz;
pub mod zip;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tinylm_engine::lora::{read_optimizer, read_peft, Adapter, TrainConfig, Trainer, CONFIG_FILE, OPTIMIZER_FILE, WEIGHTS_FILE};
use tinylm_engine::{Config, Error};

/// Everything one training run is made of (besides its text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// Comma-separated PEFT names (`q_proj,v_proj`) or `all`.
    pub targets: String,
    pub rank: usize,
    pub alpha: f64,
    pub lr: f64,
    pub steps: u32,
    pub batch: usize,
    pub seq: usize,
    /// Seeds the adapter's start and the order of the windows (the CLI's --init-seed and
    /// --data-seed), and the samples.
    pub seed: u64,
    /// A sample pair (adapter off / on) every this many steps.
    pub sample_every: u32,
    /// A checkpoint every this many steps (and on pause).
    pub checkpoint_every: u32,
    /// The samples' prompt.
    pub prompt: String,
}

/// A named starting point for the settings.
pub struct Preset {
    pub key: &'static str,
    pub label: &'static str,
    pub settings: fn() -> TrainSettings,
}

fn quick() -> TrainSettings {
    TrainSettings {
        targets: "q_proj,v_proj".into(),
        rank: 4,
        alpha: 8.0,
        lr: 5e-3,
        steps: 150,
        batch: 4,
        seq: 64,
        seed: 1234,
        sample_every: 25,
        checkpoint_every: 10,
        prompt: "Once upon a time".into(),
    }
}

fn better() -> TrainSettings {
    TrainSettings {
        targets: "q_proj,k_proj,v_proj,o_proj".into(),
        rank: 8,
        alpha: 16.0,
        lr: 3e-3,
        steps: 600,
        sample_every: 50,
        checkpoint_every: 25,
        ..quick()
    }
}

pub const PRESETS: [Preset; 2] = [
    Preset { key: "quick", label: "Quick demo: 150 steps", settings: quick },
    Preset { key: "better", label: "Better: 600 steps, 4 targets", settings: better },
];

impl Default for TrainSettings {
    fn default() -> Self {
        quick()
    }
}

/// The model an adapter belongs to: its name and a hash of the checkpoint file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseId {
    pub name: String,
    /// FNV-1a 64 of the model file, as 16 hex digits.
    pub hash: String,
}

/// FNV-1a 64 over bytes, as 16 hex digits: a cheap identity for a model file.
pub fn file_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A PEFT adapter as two files, the weights base64-encoded so the pair travels as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peft {
    pub config_json: String,
    pub safetensors_b64: String,
}

impl Peft {
    pub fn new(config_json: String, safetensors: &[u8]) -> Peft {
        Peft { config_json, safetensors_b64: b64(safetensors) }
    }
    pub fn safetensors(&self) -> Result<Vec<u8>, String> {
        unb64(&self.safetensors_b64)
    }
    /// Bytes of the two files together.
    pub fn size(&self) -> u64 {
        (self.config_json.len() + self.safetensors_b64.len() / 4 * 3) as u64
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("damaged stored data: {e}"))
}

/// A run's state at a step: enough to resume it exactly, or to keep its adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub name: String,
    pub settings: TrainSettings,
    pub base: BaseId,
    /// Updates done.
    pub step: u32,
    /// `losses[k]`: the loss on step k's batch before its update (as the CLI's losses.json);
    /// a finished run has one more, after the last update.
    pub losses: Vec<f64>,
    /// (step, held-out loss) pairs.
    pub held: Vec<(u32, f64)>,
    pub adapter: Peft,
    pub info: AdapterInfo,
    /// `optimizer.safetensors` (AdamW's moments and step), base64.
    pub optimizer_b64: String,
    pub finished: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ending {
    Paused,
    Stopped,
    Finished,
}

/// A run to start (boxed in `TrainCmd`: a checkpoint is large).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRun {
    pub job: u64,
    pub name: String,
    pub text: String,
    pub settings: TrainSettings,
    pub resume: Option<Checkpoint>,
}

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrainCmd {
    /// Trains on `text` (split into training and held-out parts), from scratch or from `resume`.
    Start(Box<StartRun>),
    /// Acted on at once: the run ends after the step in progress, with a checkpoint.
    Pause {
        job: u64,
    },
    Stop {
        job: u64,
    },
    /// How many tokens `text` makes for training and held out.
    Count {
        text: String,
    },
    /// Checks an adapter against the active model (for upload).
    Check {
        req: u64,
        adapter: Peft,
    },
    /// Generate uses this adapter (merged into the model) or none; an adapter for another
    /// base model is refused.
    Use {
        adapter: Option<(String, BaseId, Peft)>,
    },
    /// Two stories from the same prompt and seed: the plain model's and with `adapter`
    /// (the library's side-by-side comparison); answered by `Compared`.
    Compare {
        name: String,
        adapter: Peft,
        prompt: String,
        seed: u64,
    },
    /// Logits at every position of `tokens`, with `adapter` (unmerged) or without.
    Logits {
        req: u64,
        tokens: Vec<u32>,
        adapter: Option<Peft>,
    },
    /// How long a run with these settings on `text` would take here: a few steps, a held-out
    /// pass and a sample are timed on the backend the run would use; answered by `Estimated`.
    Estimate {
        req: u64,
        text: String,
        settings: TrainSettings,
    },
}

/// A run's duration as measured here (see `TrainCmd::Estimate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub seconds: f64,
    pub step_ms: f64,
    /// "WebGPU" or "CPU".
    pub backend: String,
}

/// What a run's work costs, as measured: one step, one whole held-out check, one sample pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    pub step_ms: f64,
    pub held_ms: f64,
    pub sample_ms: f64,
}

/// Milliseconds the run still needs after `done` steps: the steps, then a held-out check and
/// a sample pair at every `sample_every`-th step and at the end (as the worker does), plus
/// the check before step 1 when nothing is done yet.
pub fn time_left_ms(s: &TrainSettings, done: u32, c: Costs) -> f64 {
    if done >= s.steps {
        return 0.0;
    }
    let every = s.sample_every.max(1);
    // Multiples of `every` in (done, steps), and the end.
    let checks = (s.steps - 1) / every - done / every + 1;
    let start = if done == 0 { c.held_ms } else { 0.0 };
    f64::from(s.steps - done) * c.step_ms + f64::from(checks) * (c.held_ms + c.sample_ms) + start
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrainEvent {
    /// The data as training sees it: the answer to `Count` (job 0), or run `job`'s as it starts.
    Data {
        job: u64,
        train_tokens: usize,
        held_tokens: usize,
        /// Characters (Unicode scalar values) of the text trained on; the rest is held out.
        train_chars: usize,
        windows: usize,
        held_windows: usize,
        base: BaseId,
    },
    /// What trains run `job`: "WebGPU", or "CPU (why)".
    Backend {
        job: u64,
        name: String,
    },
    Step {
        job: u64,
        step: u32,
        loss: f64,
        tokens_per_s: f64,
        ms_per_step: f64,
        /// Seconds left: the remaining steps, held-out checks and samples at their measured cost.
        eta_s: f64,
    },
    Held {
        job: u64,
        step: u32,
        loss: f64,
    },
    Sample {
        job: u64,
        step: u32,
        off: String,
        on: String,
    },
    Checkpoint {
        job: u64,
        checkpoint: Checkpoint,
    },
    Ended {
        job: u64,
        ending: Ending,
        checkpoint: Option<Checkpoint>,
    },
    Failed {
        job: u64,
        message: String,
    },
    Checked {
        req: u64,
        result: Result<(AdapterInfo, BaseId), String>,
    },
    /// The adapter Generate now uses (None: none), or why it could not be used.
    Using {
        name: Option<String>,
        error: Option<String>,
    },
    Logits {
        req: u64,
        result: Result<Vec<Vec<f32>>, String>,
    },
    /// The answer to `Compare`: (adapter off, adapter on).
    Compared {
        name: String,
        result: Result<(String, String), String>,
    },
    /// The answer to `Estimate`.
    Estimated {
        req: u64,
        result: Result<Estimate, String>,
    },
}

/// What the library shows about an adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterInfo {
    pub rank: usize,
    pub alpha: f64,
    pub targets: Vec<String>,
    pub params: usize,
}

/// What the adapter library keeps beside an adapter's two PEFT files (the storage entry's meta).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterMeta {
    pub base: BaseId,
    pub info: AdapterInfo,
    /// Training loss at the end (None for an uploaded adapter).
    pub loss: Option<f64>,
    pub held: Option<f64>,
}

/// The last tenth of the text (from a paragraph start near there) is held out; the rest is
/// trained on. Returns byte indices into `text`: `(train, held)`. Short texts hold nothing out.
pub fn split(text: &str) -> (&str, &str) {
    let want = text.len() * 9 / 10;
    if text.len() < 2000 {
        return (text, "");
    }
    let mut at = want;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    // Prefer the paragraph break closest before the 90% mark, if it is not too far back.
    if let Some(p) = text[..at].rfind("\n\n").filter(|&p| p > text.len() * 8 / 10) {
        at = p + 2;
    } else if let Some(p) = text[..at].rfind('\n').filter(|&p| p > text.len() * 8 / 10) {
        at = p + 1;
    }
    (&text[..at], &text[at..])
}

/// Held-out loss covers every window of the held-out text up to this many; a longer text gets
/// this many, spread evenly over it (a fixed sample, the same at every check).
pub const HELD_MAX_WINDOWS: usize = 256;
/// Held-out windows per forward pass; the worker yields between passes.
pub const HELD_CHUNK: usize = 8;

/// Which of `n` held-out windows the held-out loss uses: all, or `max` evenly spread ones.
pub fn held_sample(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    // Window i of max sits in the middle of its 1/max-th of the text.
    (0..max).map(|i| (2 * i + 1) * n / (2 * max)).collect()
}

/// Checks the settings; the message says which and why in plain words.
pub fn check(s: &TrainSettings) -> Result<(), String> {
    if !(1..=256).contains(&s.rank) {
        return Err("Rank must be between 1 and 256.".into());
    }
    if !(s.alpha.is_finite() && s.alpha > 0.0) {
        return Err("Alpha must be a positive number.".into());
    }
    if !(s.lr.is_finite() && s.lr > 0.0 && s.lr <= 1.0) {
        return Err("The learning rate must be a positive number up to 1.".into());
    }
    if !(1..=100_000).contains(&s.steps) {
        return Err("Steps must be between 1 and 100000.".into());
    }
    if !(1..=64).contains(&s.batch) {
        return Err("Batch must be between 1 and 64.".into());
    }
    if s.seq < 2 {
        return Err("Sequence length must be at least 2 tokens.".into());
    }
    if s.sample_every == 0 || s.checkpoint_every == 0 {
        return Err("Sample and checkpoint intervals must be at least 1 step.".into());
    }
    Ok(())
}

/// An upload as a PEFT adapter: a zip (as downloaded here) or the two files, picked by their
/// endings.
pub fn peft_from_upload(mut named: Vec<(String, Vec<u8>)>) -> Result<Peft, String> {
    if named.len() == 1 && named[0].0.ends_with(".zip") {
        named = zip::read(&named[0].1)?;
    }
    let find = |end: &str| named.iter().find(|(n, _)| n.ends_with(end)).map(|(_, b)| b.as_slice());
    let (Some(config), Some(weights)) = (find(".json"), find(".safetensors")) else {
        return Err(
            "Upload a PEFT adapter: adapter_config.json and adapter_model.safetensors together, or the zip downloaded here."
                .into(),
        );
    };
    Ok(Peft::new(String::from_utf8_lossy(config).into_owned(), weights))
}

/// The adapter in `p`, checked against the model `c` (the message is for the reader).
pub fn read_adapter(p: &Peft, c: &Config) -> Result<Adapter, String> {
    read_peft(p.config_json.as_bytes(), &p.safetensors()?, c, [CONFIG_FILE, WEIGHTS_FILE]).map_err(|e| adapter_error(&e))
}

pub fn adapter_error(e: &Error) -> String {
    match e {
        Error::Mismatch(m) => format!(
            "This adapter was made for a different base model than the one loaded ({m}). Load the model it was trained on first."
        ),
        other => format!("This adapter cannot be used: {other}"),
    }
}

/// The trainer a stored checkpoint continues: its adapter and AdamW's state, both checked.
pub fn restore_trainer(ck: &Checkpoint, c: &Config, tc: TrainConfig) -> Result<Trainer, String> {
    check(&ck.settings)?;
    let adapter = read_adapter(&ck.adapter, c)?;
    let state = read_optimizer(&unb64(&ck.optimizer_b64)?, &adapter, OPTIMIZER_FILE)
        .map_err(|e| format!("The saved run is damaged: {e}"))?;
    if state.step != ck.step {
        return Err(format!(
            "The saved run is damaged: its optimizer is at step {}, the checkpoint at step {}.",
            state.step, ck.step
        ));
    }
    Trainer::restore(adapter, tc, state).map_err(|e| e.to_string())
}

crate::protocol::json_codec!(Checkpoint, "damaged stored data");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_holds_out_the_last_tenth_at_a_paragraph() {
        let para = "The rabbit ran.\n\n".repeat(200);
        let (train, held) = split(&para);
        assert_eq!(format!("{train}{held}"), para);
        assert!(train.ends_with("\n\n") && held.starts_with("The"));
        let share = held.len() as f64 / para.len() as f64;
        assert!((0.09..0.2).contains(&share), "{share}");
        assert_eq!(split("short"), ("short", ""));
    }

    #[test]
    fn split_never_cuts_a_character() {
        let text = "é".repeat(3001);
        let (train, held) = split(&text);
        assert_eq!(train.len() + held.len(), text.len());
        assert!(!held.is_empty());
    }

    #[test]
    fn held_sample_is_all_windows_or_an_even_spread() {
        assert_eq!(held_sample(5, 8), [0, 1, 2, 3, 4]);
        assert_eq!(held_sample(0, 8), Vec::<usize>::new());
        let s = held_sample(1000, 10);
        assert_eq!(s, [50, 150, 250, 350, 450, 550, 650, 750, 850, 950]);
        let s = held_sample(257, 256);
        assert_eq!(s.len(), 256);
        assert!(s.windows(2).all(|w| w[0] < w[1]) && *s.last().unwrap() < 257);
    }

    #[test]
    fn time_left_counts_steps_checks_and_samples() {
        let s = TrainSettings { steps: 150, sample_every: 25, ..Default::default() };
        let c = Costs { step_ms: 10.0, held_ms: 100.0, sample_ms: 1000.0 };
        // 150 steps, checks after 25, 50, …, 125 and at the end (6), the check before step 1.
        assert_eq!(time_left_ms(&s, 0, c), 1500.0 + 6.0 * 1100.0 + 100.0);
        // After step 25 (its check done): 125 steps, checks at 50, 75, 100, 125 and the end.
        assert_eq!(time_left_ms(&s, 25, c), 1250.0 + 5.0 * 1100.0);
        assert_eq!(time_left_ms(&s, 149, c), 10.0 + 1100.0);
        assert_eq!(time_left_ms(&s, 150, c), 0.0);
    }

    #[test]
    fn hash_is_fnv1a() {
        // FNV-1a 64 of "a" is af63dc4c8601ec8c (the published test vector).
        assert_eq!(file_hash(b"a"), "af63dc4c8601ec8c");
        assert_eq!(file_hash(b""), "cbf29ce484222325");
    }

    #[test]
    fn presets_are_valid_and_bad_settings_are_named() {
        for p in PRESETS {
            check(&(p.settings)()).unwrap();
        }
        let bad = TrainSettings { lr: 0.0, ..Default::default() };
        assert!(check(&bad).unwrap_err().contains("learning rate"));
    }

    #[test]
    fn checkpoints_and_peft_survive_json() {
        let peft = Peft::new("{}".into(), &[0, 1, 2, 250]);
        assert_eq!(peft.safetensors().unwrap(), [0, 1, 2, 250]);
        let ck = Checkpoint {
            name: "x".into(),
            settings: TrainSettings::default(),
            base: BaseId { name: "m".into(), hash: file_hash(b"m") },
            step: 3,
            losses: vec![1.5, 1.25],
            held: vec![(2, 1.75)],
            adapter: peft,
            info: AdapterInfo { rank: 4, alpha: 8.0, targets: vec!["q_proj".into()], params: 10 },
            optimizer_b64: b64(b"opt"),
            finished: false,
        };
        assert_eq!(Checkpoint::from_json(&ck.to_json()).unwrap(), ck);
        let cmd = TrainCmd::Pause { job: 2 };
        assert_eq!(serde_json::from_str::<TrainCmd>(&serde_json::to_string(&cmd).unwrap()).unwrap(), cmd);
    }
}
