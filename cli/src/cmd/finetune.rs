//! `tinylm finetune`: LoRA fine-tuning on the CPU (the engine's `lora`) or the GPU
//! (`gpu::GpuTrainer`), writing a PEFT adapter directory, AdamW's state and the loss curve
//! (`losses.json`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tinylm_engine::lora::{
    parse_targets, read_optimizer, write_optimizer, write_peft, AdamW, Adapter, AnyTrainer, Dataset, HeldOut, LoraConfig,
    OptimizerState, TrainBase, TrainConfig, TrainDevice, CONFIG_FILE, OPTIMIZER_FILE, WEIGHTS_FILE,
};
use tinylm_engine::{Error, LoadedModel, Result};

use super::logits::parse_tokens;
use crate::{load, out};

/// How a new adapter starts.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Init {
    /// PEFT's default: A uniform in ±1/sqrt(in), B = 0.
    Peft,
    /// The reference fixture's recipe: A as peft, B uniform in ±--b-bound.
    Det,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("data").required(true).args(["text_file", "tokens"])))]
pub struct Args {
    /// Base model: a llama2.c checkpoint (v0, v1 or v2), a GGUF file or a Hugging Face folder; it
    /// stays frozen.
    pub model: PathBuf,
    /// tokenizer.bin or tokenizer.json with the model's vocabulary, for --text-file and
    /// --eval-file (default: the model's own, when it carries one).
    #[arg(short = 'z', long)]
    pub tokenizer: Option<PathBuf>,
    /// UTF-8 text to train on: BOS + its encoding, cut into --seq windows, batched in a seeded order.
    #[arg(long)]
    pub text_file: Option<PathBuf>,
    /// Token id lists separated by `;` ("1 403 407;1 5 6"), each cut into windows on its own.
    #[arg(long)]
    pub tokens: Option<String>,
    /// Windows per step [default: every window of --tokens; 4 with --text-file].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Tokens per window [default: the shortest --tokens list; 64 with --text-file; at most the context].
    #[arg(long)]
    pub seq: Option<usize>,
    /// Seed of the window order.
    #[arg(long, default_value_t = 1234)]
    pub data_seed: u64,
    /// Adapted projections: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj (or wq,w1 …, or all).
    #[arg(long, default_value = "q_proj,v_proj", conflicts_with = "init_adapter")]
    pub targets: String,
    /// LoRA rank.
    #[arg(long, default_value_t = 8, conflicts_with = "init_adapter")]
    pub rank: usize,
    /// LoRA alpha; the update is scaled by alpha / rank.
    #[arg(long, default_value_t = 8.0, conflicts_with = "init_adapter", allow_negative_numbers = true)]
    pub alpha: f64,
    /// Scale by alpha / sqrt(rank) (rsLoRA).
    #[arg(long, conflicts_with = "init_adapter")]
    pub rslora: bool,
    /// Optimizer steps.
    #[arg(long, default_value_t = 100)]
    pub steps: u32,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub beta1: f64,
    #[arg(long, default_value_t = 0.999, allow_negative_numbers = true)]
    pub beta2: f64,
    #[arg(long, default_value_t = 1e-8, allow_negative_numbers = true)]
    pub eps: f64,
    /// Decoupled weight decay (torch AdamW's).
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (torch's clip_grad_norm_).
    #[arg(long, allow_negative_numbers = true)]
    pub clip_norm: Option<f64>,
    /// How a new adapter starts.
    #[arg(long, value_enum, default_value = "peft", conflicts_with = "init_adapter")]
    pub init: Init,
    /// Seed of the initial A (and B with --init det).
    #[arg(long, default_value_t = 1234, conflicts_with = "init_adapter")]
    pub init_seed: u64,
    /// Bound of the initial B with --init det [default: 0.05].
    #[arg(long, conflicts_with = "init_adapter", allow_negative_numbers = true)]
    pub b_bound: Option<f64>,
    /// Continue from this PEFT adapter directory (its rank, alpha and targets). When it holds
    /// optimizer.safetensors (written by finetune), AdamW's moments and step count resume from
    /// it and the data continues at the next batch; otherwise the moments start fresh.
    #[arg(long)]
    pub init_adapter: Option<PathBuf>,
    /// cpu, gpu (WGSL on wgpu; losses within 1e-4 of the CPU's), or auto (the CPU, the exact reference).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Held-out UTF-8 text: after training, the mean loss over every --seq window of it (BOS +
    /// its encoding, cut as the training text) is printed and written to held_out.json (the
    /// Train view's held-out loss, for comparison).
    #[arg(long)]
    pub eval_file: Option<PathBuf>,
    /// Output directory: adapter_config.json, adapter_model.safetensors, optimizer.safetensors, losses.json.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
}

pub const LOSSES_FILE: &str = "losses.json";
pub const HELD_OUT_FILE: &str = "held_out.json";

pub fn run(a: Args) -> Result<()> {
    let device = check_backend(&a.backend)?;
    let mut model = load::model(&a.model)?;
    if let Some(z) = &a.tokenizer {
        model = load::with_tokenizer(model, z)?;
    }
    let adapter = initial_adapter(&a, &model)?;
    let shape = adapter.clone();
    let data = dataset(&a, &model)?;
    let held = held_out(&a, &model, data.seq)?;
    let batch = a.batch.unwrap_or(if a.tokens.is_some() { data.len() } else { 4 });
    let adamw = AdamW { lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weight_decay: a.weight_decay };
    let config = TrainConfig { adamw, clip_norm: a.clip_norm };
    let state = initial_optimizer(&a, &adapter)?;
    // On the CPU a quantized model trains as it is kept (no f32 copy); the GPU uploads f32.
    let base = if device == TrainDevice::Cpu { model.train_base() } else { TrainBase::from(model.weights()) };
    let mut trainer = AnyTrainer::new(base, adapter, config, state, device)?;
    // The first batch is built now so that a bad --batch fails before anything is written.
    data.batch(batch, 0, a.data_seed)?;
    std::fs::create_dir_all(&a.output)
        .map_err(|e| Error::Io { file: load::name(&a.output), what: format!("cannot create the output directory: {e}") })?;
    out::line(&format!("{} on {}", describe(&shape, &data, batch, a.steps), trainer.device_name()))?;
    let losses = train(&mut trainer, &data, batch, &a)?;
    if let Some(held) = &held {
        let loss = trainer.held_out(held)?.unwrap_or(f64::NAN);
        let json = serde_json::json!({ "loss": loss, "windows": held.windows, "seq": held.seq });
        load::write_file(&a.output.join(HELD_OUT_FILE), format!("{json}\n").as_bytes())?;
        out::line(&format!("held-out loss {loss:.6} over {} window(s) of {} tokens", held.windows, held.seq))?;
    }
    let (adapter, state) = trainer.state()?;
    write_outputs(&a.output, &adapter, &state, &losses, &load::name(&a.model))?;
    out::line(&format!(
        "loss {:.6} -> {:.6} over {} steps; wrote {}/{{{CONFIG_FILE}, {WEIGHTS_FILE}, {OPTIMIZER_FILE}, {LOSSES_FILE}}}",
        losses[0],
        losses[losses.len() - 1],
        a.steps,
        a.output.display()
    ))
}

/// Where to train; `auto` keeps the CPU, the exact reference path.
fn check_backend(name: &str) -> Result<TrainDevice> {
    match name {
        "cpu" | "auto" => Ok(TrainDevice::Cpu),
        "gpu" => Ok(TrainDevice::Gpu),
        other => Err(Error::InvalidSetting(format!("backend `{other}` must be cpu, gpu or auto"))),
    }
}

/// The adapter training starts from: read from --init-adapter, or made by --init.
fn initial_adapter(a: &Args, m: &LoadedModel) -> Result<Adapter> {
    let c = m.config();
    if let Some(dir) = &a.init_adapter {
        return load::adapter(dir, c);
    }
    if a.b_bound.is_some() && a.init != Init::Det {
        return Err(Error::InvalidSetting("--b-bound is the bound of --init det's B; add --init det".into()));
    }
    let lora = LoraConfig::new(a.rank, a.alpha, a.rslora, parse_targets(&a.targets)?)?;
    match a.init {
        Init::Peft => Adapter::peft_default(c, lora, a.init_seed),
        Init::Det => {
            let bound = a.b_bound.unwrap_or(0.05);
            if !(bound.is_finite() && bound >= 0.0) {
                return Err(Error::InvalidSetting(format!("--b-bound {bound} must be a non-negative number")));
            }
            Adapter::det(c, lora, a.init_seed, bound)
        }
    }
}

/// AdamW's saved state from --init-adapter's directory, if it has one.
fn initial_optimizer(a: &Args, adapter: &Adapter) -> Result<Option<OptimizerState>> {
    let Some(path) = a.init_adapter.as_ref().map(|d| d.join(OPTIMIZER_FILE)).filter(|p| p.exists()) else {
        return Ok(None);
    };
    let bytes = load::read_file(&path, "optimizer state")?;
    read_optimizer(&bytes, adapter, &load::name(&path)).map(Some)
}

/// The training windows of --tokens or --text-file.
fn dataset(a: &Args, m: &LoadedModel) -> Result<Dataset> {
    let c = m.config();
    match (&a.tokens, &a.text_file, m.tokenizer()) {
        (Some(spec), _, _) => {
            let lists = parse_token_lists(spec)?;
            let shortest = lists.iter().map(Vec::len).min().unwrap_or(0);
            Dataset::from_token_lists(&lists, a.seq.unwrap_or(shortest.min(c.seq_len)), c)
        }
        (None, Some(path), Some(tok)) => {
            let bytes = load::read_file(path, "text")?;
            let text = String::from_utf8(bytes)
                .map_err(|e| Error::Io { file: load::name(path), what: format!("the text is not UTF-8: {e}") })?;
            Dataset::from_text(tok, &text, a.seq.unwrap_or(64.min(c.seq_len)), c)
        }
        (None, Some(_), None) => Err(Error::InvalidSetting(format!(
            "--text-file needs a tokenizer: {} carries none, give one with --tokenizer",
            m.name()
        ))),
        _ => Err(Error::InvalidSetting("give --tokens, or --text-file (with --tokenizer unless the model has one)".into())),
    }
}

/// The windows of --eval-file, cut like the training text's (every one of them is evaluated).
fn held_out(a: &Args, m: &LoadedModel, seq: usize) -> Result<Option<HeldOut>> {
    let Some(path) = &a.eval_file else {
        return Ok(None);
    };
    let Some(tok) = m.tokenizer() else {
        return Err(Error::InvalidSetting(format!(
            "--eval-file needs a tokenizer: {} carries none, give one with --tokenizer",
            m.name()
        )));
    };
    let bytes = load::read_file(path, "held-out text")?;
    let text = String::from_utf8(bytes)
        .map_err(|e| Error::Io { file: load::name(path), what: format!("the text is not UTF-8: {e}") })?;
    HeldOut::new(&Dataset::from_text(tok, &text, seq, m.config())?, usize::MAX).map(Some)
}

/// "1 2 3;1 5 6" → two lists; empty lists are refused.
pub fn parse_token_lists(spec: &str) -> Result<Vec<Vec<u32>>> {
    let lists = spec.split(';').map(parse_tokens).collect::<Result<Vec<_>>>()?;
    if let Some(i) = lists.iter().position(Vec::is_empty) {
        return Err(Error::InvalidSetting(format!("token list {} in --tokens is empty", i + 1)));
    }
    Ok(lists)
}

/// One line on what is trained on what.
fn describe(ad: &Adapter, data: &Dataset, batch: usize, steps: u32) -> String {
    let c = &ad.config;
    let targets: Vec<&str> = c.targets.iter().map(|t| t.peft_name()).collect();
    format!(
        "LoRA r {} alpha {}{} on {} x {} layers ({} parameters); data: {} window(s) of {} tokens, {batch} per step, {steps} steps",
        c.r, c.alpha, if c.rslora { " (rsLoRA)" } else { "" }, targets.join(", "), ad.base.n_layers,
        ad.n_params(), data.len(), data.seq
    )
}

/// Runs the steps. `losses[k]` is the loss after k updates on step k's batch: before each
/// step's update, and after the last one on the batch a next step would take. A resumed
/// trainer continues the batch order where it stopped.
fn train(t: &mut AnyTrainer, data: &Dataset, batch: usize, a: &Args) -> Result<Vec<f64>> {
    let mut losses = Vec::with_capacity(a.steps as usize + 1);
    let mut bar = Progress::new(a.steps);
    let first = t.steps_done() as u64;
    for step in 0..a.steps {
        let report = data.batch(batch, first + step as u64, a.data_seed).and_then(|b| t.step(&b));
        let report = report.inspect_err(|_| bar.finish())?;
        losses.push(report.loss);
        bar.update(step + 1, report.loss);
    }
    bar.finish();
    let next = data.batch(batch, first + a.steps as u64, a.data_seed)?;
    losses.push(t.loss(&next)?);
    Ok(losses)
}

fn write_outputs(dir: &Path, ad: &Adapter, opt: &OptimizerState, losses: &[f64], base_model: &str) -> Result<()> {
    let files = write_peft(ad, base_model)?;
    load::write_file(&dir.join(CONFIG_FILE), files.config_json.as_bytes())?;
    load::write_file(&dir.join(WEIGHTS_FILE), &files.safetensors)?;
    load::write_file(&dir.join(OPTIMIZER_FILE), &write_optimizer(opt)?)?;
    let json = serde_json::to_string(losses).map_err(|e| Error::InvalidSetting(format!("losses: {e}")))?;
    load::write_file(&dir.join(LOSSES_FILE), format!("{json}\n").as_bytes())
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
pub(crate) struct Progress {
    total: u32,
    start: Instant,
    drawn: Option<Instant>,
    on: bool,
}

impl Progress {
    pub(crate) fn new(total: u32) -> Progress {
        Progress { total, start: Instant::now(), drawn: None, on: total > 0 && std::io::stderr().is_terminal() }
    }

    /// Redraws at most ten times a second, and always at the end.
    pub(crate) fn update(&mut self, done: u32, loss: f64) {
        let due = self.drawn.is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if !self.on || !(due || done == self.total) {
            return;
        }
        self.drawn = Some(Instant::now());
        let per_step = self.start.elapsed().as_secs_f64() / done.max(1) as f64;
        let eta = per_step * (self.total - done) as f64;
        let filled = (30 * done / self.total) as usize;
        let line = format!(
            "\r[{}{}] {done}/{} loss {loss:.4}  {:.3} s/step  eta {eta:.0} s\x1b[K",
            "#".repeat(filled),
            " ".repeat(30 - filled),
            self.total,
            per_step
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    pub(crate) fn finish(&mut self) {
        if std::mem::take(&mut self.on) && self.drawn.is_some() {
            let _ = std::io::stderr().write_all(b"\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lists_split_on_semicolons() {
        assert_eq!(parse_token_lists("1 2 3;1 5 6").unwrap(), [vec![1, 2, 3], vec![1, 5, 6]]);
        assert_eq!(parse_token_lists("1,2").unwrap(), [vec![1, 2]]);
        assert!(parse_token_lists("1 2;;3").unwrap_err().to_string().contains("list 2"));
        assert!(parse_token_lists("1 q").is_err());
    }

    #[test]
    fn backends_parse() {
        assert_eq!(check_backend("cpu").unwrap(), TrainDevice::Cpu);
        assert_eq!(check_backend("auto").unwrap(), TrainDevice::Cpu);
        assert_eq!(check_backend("gpu").unwrap(), TrainDevice::Gpu);
        assert!(check_backend("tpu").unwrap_err().to_string().contains("`tpu`"));
    }
}
