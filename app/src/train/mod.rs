//! Fine-tuning in the browser, the parts both sides share: the Train view's presets and checks,
//! the held-out split, the time a run takes, PEFT uploads (zips via `archive`), the adapter
//! library's records and a saved run (`saved`). Pure Rust, tested natively. The messages are in
//! `protocol::train`.

pub mod archive;
#[cfg(test)]
mod fuzz;
pub mod saved;

use serde::{Deserialize, Serialize};
use tinylm_engine::lora::{read_optimizer, read_peft, Adapter, TrainConfig, Trainer, CONFIG_FILE, OPTIMIZER_FILE, WEIGHTS_FILE};
use tinylm_engine::{Config, Error};

use crate::protocol::train::{AdapterInfo, BaseId, Peft, Snapshot, TrainSettings};
use crate::protocol::Bytes;
use crate::words;

/// A named starting point for the settings.
pub struct Preset {
    pub key: &'static str,
    pub label: &'static str,
    pub settings: fn() -> TrainSettings,
    /// Its steps are one pass over the text (`one_pass_steps`), not `settings`' fixed count.
    pub one_pass: bool,
}

// The presets were chosen by measurement (`node scripts/measure-presets.mjs`, the README's table):
// on every bundled text the held-out loss at the end is below where it started, and with each
// text's own sample prompt (page/train/data.rs) the adapter's sample holds more of the text's
// distinctive words than the plain model's (Peter Rabbit, Aesop, Alice). Peter Rabbit is short
// (45 windows of 64 tokens): adapters on every projection at 3e-3, or 150 steps, memorise it.
// Better's 100 steps saw a fifth of Aesop (1,796 windows): one pass over a text (449 steps for
// Aesop) lowers each book's held-out loss further and, with Aesop's prompt "The Fox and the",
// its samples hold Aesop's words at 4 of 8 seeds (100 steps: 0 of 8 with "The Lion").
fn quick() -> TrainSettings {
    TrainSettings {
        targets: "gate_proj,up_proj,down_proj".into(),
        rank: 8,
        alpha: 16.0,
        lr: 3e-3,
        steps: 80,
        batch: 4,
        seq: 64,
        seed: 1234,
        sample_every: 20,
        snapshot_every: 10,
        prompt: "Once upon a time".into(),
    }
}

fn better() -> TrainSettings {
    TrainSettings { targets: "all".into(), rank: 4, alpha: 8.0, lr: 2e-3, steps: 100, sample_every: 25, ..quick() }
}

pub const PRESETS: [Preset; 2] = [
    Preset { key: "quick", label: "Quick demo: 80 steps, feed-forward targets", settings: quick, one_pass: false },
    Preset {
        key: "better",
        label: "Better: one pass over the text (100–500 steps), all targets, rank 4",
        settings: better,
        one_pass: true,
    },
];

/// The fewest and most steps of a one-pass preset: a short text still gets enough updates to
/// learn from, and a long one is not a lesson's worth of waiting.
pub const ONE_PASS_STEPS: (u32, u32) = (100, 500);

/// Steps that show each training window once (windows of `seq` from `train_tokens`, `batch` a
/// step; `lora::Dataset`'s cut), within `ONE_PASS_STEPS`.
pub fn one_pass_steps(train_tokens: usize, batch: usize, seq: usize) -> u32 {
    let windows = if seq >= 2 { tinylm_engine::lora::window_count(train_tokens, seq) } else { 0 };
    let steps = windows.div_ceil(batch.max(1)) as u32;
    steps.clamp(ONE_PASS_STEPS.0, ONE_PASS_STEPS.1)
}

impl Default for TrainSettings {
    fn default() -> Self {
        quick()
    }
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

/// An adapter's identity for links: FNV-1a 64 over its config, a zero byte, and its weights.
pub fn adapter_hash(p: &Peft) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let weights = p.safetensors.to_vec();
    for &b in p.config_json.as_bytes().iter().chain([0u8].iter()).chain(weights.iter()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Held-out checks after the lowest one before a run counts as memorising its text.
pub const OVERFIT_CHECKS: usize = 2;
/// How far (relative) the latest held-out loss must be above the lowest.
pub const OVERFIT_RISE: f64 = 0.02;

/// The step from which the adapter memorises its training text (overfits): the step of the lowest
/// held-out loss, once at least `OVERFIT_CHECKS` checks after it were all higher and the latest is
/// `OVERFIT_RISE` above it. With the lowest loss and the latest. `held`: (step, loss), in order.
pub fn overfit_from(held: &[(u32, f64)]) -> Option<(u32, f64, f64)> {
    let (i, &(step, low)) = held.iter().enumerate().min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))?;
    let after = &held[i + 1..];
    let &(_, last) = after.last()?;
    let risen = after.len() >= OVERFIT_CHECKS && after.iter().all(|h| h.1 > low) && last >= low * (1.0 + OVERFIT_RISE);
    risen.then_some((step, low, last))
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
/// this many, spread evenly over it (`lora::HeldOut`: a fixed sample, the same at every check).
pub const HELD_MAX_WINDOWS: usize = 256;

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
    if s.sample_every == 0 || s.snapshot_every == 0 {
        return Err("Sample and checkpoint intervals must be at least 1 step.".into());
    }
    Ok(())
}

/// An upload as a PEFT adapter: a zip (as downloaded here) or the two files, picked by their
/// endings.
pub fn peft_from_upload(mut named: Vec<(String, Vec<u8>)>) -> Result<Peft, String> {
    if named.len() == 1 && named[0].0.ends_with(".zip") {
        named = archive::read(&named[0].1)?;
    }
    let find = |end: &str| named.iter().find(|(n, _)| n.ends_with(end)).map(|(_, b)| b.as_slice());
    let (Some(config), Some(weights)) = (find(".json"), find(".safetensors")) else {
        return Err(
            "Upload a PEFT adapter: adapter_config.json and adapter_model.safetensors together, or the zip downloaded here."
                .into(),
        );
    };
    Ok(Peft { config_json: String::from_utf8_lossy(config).into_owned(), safetensors: Bytes::from_slice(weights) })
}

/// The adapter in `p`, checked against the model `c` (the message is for the reader).
pub fn read_adapter(p: &Peft, c: &Config) -> Result<Adapter, String> {
    read_adapter_on(p, c, None)
}

/// `read_adapter` with the name of the model in use, `model`, for the refusal of an adapter
/// made for another model (which names the model it was made for, from its PEFT config).
pub fn read_adapter_on(p: &Peft, c: &Config, model: Option<&str>) -> Result<Adapter, String> {
    read_peft(p.config_json.as_bytes(), &p.safetensors.to_vec(), c, [CONFIG_FILE, WEIGHTS_FILE]).map_err(|e| match e {
        Error::Mismatch(_) => words::adapter_not_for(None, made_for(p).as_deref(), model),
        other => adapter_error(&other),
    })
}

/// The model a PEFT adapter names as its base (`base_model_name_or_path`: a name, or the path
/// the CLI was given, of which the file name is kept).
pub fn made_for(p: &Peft) -> Option<String> {
    let config: serde_json::Value = serde_json::from_str(&p.config_json).ok()?;
    let path = config.get("base_model_name_or_path")?.as_str()?.trim();
    let name = path.rsplit(['/', '\\']).find(|s| !s.is_empty())?;
    Some(name.to_string())
}

pub fn adapter_error(e: &Error) -> String {
    match e {
        Error::Mismatch(_) => words::adapter_not_for(None, None, None),
        other => format!("This adapter cannot be used: {other}"),
    }
}

/// What the library shows about `a`.
pub fn adapter_info(a: &Adapter) -> AdapterInfo {
    AdapterInfo {
        rank: a.config.r,
        alpha: a.config.alpha,
        targets: a.config.targets.iter().map(|t| t.peft_name().to_string()).collect(),
        params: a.n_params(),
    }
}

/// The trainer a saved snapshot continues: its adapter and AdamW's state, both checked.
pub fn restore_trainer(s: &Snapshot, c: &Config, tc: TrainConfig) -> Result<Trainer, String> {
    let (adapter, state) = restore(s, c)?;
    Trainer::restore(adapter, tc, state).map_err(|e| e.to_string())
}

/// A saved snapshot's adapter and AdamW's state, checked against the model and each other.
pub fn restore(s: &Snapshot, c: &Config) -> Result<(Adapter, tinylm_engine::lora::OptimizerState), String> {
    check(&s.settings)?;
    let adapter = read_adapter(&s.adapter, c)?;
    let state =
        read_optimizer(&s.optimizer.to_vec(), &adapter, OPTIMIZER_FILE).map_err(|e| format!("The saved run is damaged: {e}"))?;
    if state.step != s.step {
        return Err(format!(
            "The saved run is damaged: its optimizer is at step {}, the checkpoint at step {}.",
            state.step, s.step
        ));
    }
    Ok((adapter, state))
}

/// The adapter name the Train view suggests for a text from the file `file`: "grimm tales
/// style" for "grimm_tales.txt".
pub fn style_of_file(file: &str) -> String {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let stem = base.rsplit_once('.').map_or(base, |(s, _)| s).replace(['_', '-'], " ");
    match stem.trim() {
        "" => "your text style".to_string(),
        s => format!("{s} style"),
    }
}

/// The adapter name the Train view suggests for pasted text: its first words,
/// "“The cat sat on…” style".
pub fn style_of_text(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.len() {
        0 => "your text style".to_string(),
        1..=4 => format!("“{}” style", words.join(" ")),
        _ => format!("“{}…” style", words[..4].join(" ")),
    }
}

/// A sample prompt from the reader's own text: its first three words (or "Once upon a time"
/// for an empty text), so the adapter's sample can go on in the text's style.
pub fn prompt_of_text(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    if words.is_empty() {
        return "Once upon a time".to_string();
    }
    words.join(" ")
}

/// `name`, or "`name` #2", "#3"… when the library already holds an adapter of that name, so
/// two runs on the same text stay apart in the library and in Generate.
pub fn distinct_name(name: &str, taken: &[String]) -> String {
    let free = |n: &str| !taken.iter().any(|t| t == n);
    if free(name) {
        return name.to_string();
    }
    (2..).map(|k| format!("{name} #{k}")).find(|n| free(n)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_text_prompts_with_its_first_words() {
        assert_eq!(prompt_of_text("  The old  ship\nsailed far away."), "The old ship");
        assert_eq!(prompt_of_text("Hello"), "Hello");
        assert_eq!(prompt_of_text(" \n"), "Once upon a time");
    }

    #[test]
    fn adapters_are_named_after_their_text_and_kept_apart() {
        assert_eq!(style_of_file("grimm_tales.txt"), "grimm tales style");
        assert_eq!(style_of_file("my-story.TXT"), "my story style");
        assert_eq!(style_of_file(".txt"), "your text style");
        assert_eq!(style_of_text("The cat sat on the mat. It was happy."), "“The cat sat on…” style");
        assert_eq!(style_of_text("  Hello there \n"), "“Hello there” style");
        assert_eq!(style_of_text(" \n"), "your text style");
        let taken = vec!["Alice style (20 steps)".to_string(), "Alice style (20 steps) #2".to_string()];
        assert_eq!(distinct_name("Aesop style (20 steps)", &taken), "Aesop style (20 steps)");
        assert_eq!(distinct_name("Alice style (20 steps)", &taken), "Alice style (20 steps) #3");
        assert_eq!(distinct_name("Alice style (20 steps)", &taken[..1]), "Alice style (20 steps) #2");
    }

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
    fn an_adapters_hash_covers_its_config_and_weights() {
        let p = |c: &str, w: &[u8]| Peft { config_json: c.into(), safetensors: Bytes::from_slice(w) };
        // The same bytes as file_hash (tested against the published vector) sees.
        assert_eq!(adapter_hash(&p("a", &[7, 8])), file_hash(b"a\0\x07\x08"));
        assert_ne!(adapter_hash(&p("a", &[7, 8])), adapter_hash(&p("a", &[7, 9])));
        assert_ne!(adapter_hash(&p("ab", &[])), adapter_hash(&p("a", b"b")));
    }

    #[test]
    fn memorising_is_named_once_held_out_loss_has_risen_for_a_while() {
        // Peter Rabbit, 5e-3 (cli finetune, held-out every 25 steps): lowest at step 25.
        let run = [(0, 3.7055), (25, 3.1250), (50, 3.1301), (75, 3.2588), (100, 3.3347)];
        assert_eq!(overfit_from(&run[..2]), None, "nothing after the lowest yet");
        assert_eq!(overfit_from(&run[..3]), None, "one check after it, barely higher");
        assert_eq!(overfit_from(&run[..4]), Some((25, 3.1250, 3.2588)));
        assert_eq!(overfit_from(&run), Some((25, 3.1250, 3.3347)));
        // Still falling, or only a wobble: no.
        assert_eq!(overfit_from(&[(0, 1.49), (25, 1.41), (50, 1.39), (75, 1.40), (100, 1.395)]), None);
        assert_eq!(overfit_from(&[]), None);
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
    fn one_pass_covers_every_window_once_within_bounds() {
        // 64-token windows overlap by one token: 63·k + 1 tokens make k windows.
        assert_eq!(one_pass_steps(63 * 1814 + 1, 4, 64), 454);
        assert_eq!(one_pass_steps(63 * 1814 + 2, 4, 64), 454); // 1,815 windows, still 454 steps
        assert_eq!(one_pass_steps(63 * 1816 + 2, 4, 64), 455);
        // Peter Rabbit's 45 windows, and anything too short to cut: the floor.
        assert_eq!(one_pass_steps(63 * 45 + 1, 4, 64), 100);
        assert_eq!(one_pass_steps(10, 4, 64), 100);
        assert_eq!(one_pass_steps(63 * 45 + 1, 4, 1), 100);
        // The 2 MB lesson text: the ceiling.
        assert_eq!(one_pass_steps(930_000, 4, 64), 500);
    }
}
