//! `tinylm pretrain`: full-parameter training of a llama2.c model, from a checkpoint or the
//! deterministic random init of `make-model`, on the CPU or the GPU. Writes `model.bin` (v0,
//! what `run.c` reads), `losses.json` (as `finetune` lays it out), `metrics.json` (the
//! instruments of every step), `optimizer.safetensors` and `run.json`, and resumes from them.

mod sweep;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tinylm_engine::checkpoint::write_v0;
use tinylm_engine::lora::{Batch, Dataset};
use tinylm_engine::pretrain::{Hyper, Schedule, ScheduleKind, StepMetrics, OPTIMIZER_FILE};
use tinylm_engine::pretrain::{PretrainBackend, Trainer};
use tinylm_engine::randmodel::{named_shape, random_weights};
use tinylm_engine::{Config, Error, Result, Weights};

use super::finetune::{parse_token_lists, Progress};
use crate::{load, out};

pub const MODEL_FILE: &str = "model.bin";
pub const LOSSES_FILE: &str = "losses.json";
pub const METRICS_FILE: &str = "metrics.json";
pub const RUN_FILE: &str = "run.json";
/// Held-out windows per forward pass.
const EVAL_CHUNK: usize = 8;

#[derive(clap::Args)]
pub struct Args {
    /// A model to start from: a llama2.c checkpoint, or a GGUF file or Hugging Face folder that a
    /// llama2.c checkpoint can hold (runs are saved as llama2.c); or give --shape / --config.
    #[arg(conflicts_with_all = ["shape", "config"])]
    pub model: Option<PathBuf>,
    /// Start from the random model of a named shape: micro, tiny64, s15m, s42m, s110m, smol135m.
    #[arg(long, conflicts_with = "config")]
    pub shape: Option<String>,
    /// Start from a random model of this shape: dim,hidden,layers,heads,kv_heads,vocab,seq[,untied].
    #[arg(long)]
    pub config: Option<String>,
    /// Seed of the random init (make-model's recipe) [default: the named shape's; required with --config].
    #[arg(long)]
    pub seed: Option<u64>,
    /// tokenizer.bin or tokenizer.json with the model's vocabulary (needed for --text-file and
    /// --eval-file).
    #[arg(short = 'z', long)]
    pub tokenizer: Option<PathBuf>,
    /// UTF-8 text to train on: BOS + its encoding, cut into --seq windows, batched in a seeded order.
    #[arg(long, conflicts_with = "tokens")]
    pub text_file: Option<PathBuf>,
    /// Token id lists separated by `;`, each cut into windows on its own.
    #[arg(long)]
    pub tokens: Option<String>,
    /// Windows per step [default: every window of --tokens; 4 with --text-file].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Tokens per window [default: the shortest --tokens list; 64 with --text-file; at most the context].
    #[arg(long)]
    pub seq: Option<usize>,
    /// Seed of the window order [default: 1234].
    #[arg(long)]
    pub data_seed: Option<u64>,
    /// Steps of the run (the schedule decays over them) [default: 100].
    #[arg(long)]
    pub steps: Option<u32>,
    /// Peak learning rate [default: 5e-4, train.py's].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Where the cosine ends [default: 0, train.py's].
    #[arg(long, allow_negative_numbers = true)]
    pub min_lr: Option<f64>,
    /// Steps of linear warm-up from 0 [default: 10].
    #[arg(long)]
    pub warmup: Option<u32>,
    /// cosine (train.py's get_lr) or constant (after the warm-up) [default: cosine].
    #[arg(long)]
    pub schedule: Option<String>,
    /// [default: 0.9]
    #[arg(long, allow_negative_numbers = true)]
    pub beta1: Option<f64>,
    /// [default: 0.95, train.py's]
    #[arg(long, allow_negative_numbers = true)]
    pub beta2: Option<f64>,
    /// [default: 1e-8]
    #[arg(long, allow_negative_numbers = true)]
    pub eps: Option<f64>,
    /// AdamW weight decay, on tensors of 2+ dimensions only [default: 0.1].
    #[arg(long, allow_negative_numbers = true)]
    pub wd: Option<f64>,
    /// Clip the global gradient norm to this; 0 turns clipping off [default: 1.0].
    #[arg(long, allow_negative_numbers = true)]
    pub clip: Option<f64>,
    /// z-loss coefficient: adds coef · mean(logsumexp(logits)²) [default: 0, off].
    #[arg(long, allow_negative_numbers = true)]
    pub z_loss: Option<f64>,
    /// cpu or gpu (WGSL on wgpu).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Held-out UTF-8 text: its mean loss over every --seq window goes into metrics.json.
    #[arg(long, requires = "tokenizer")]
    pub eval_file: Option<PathBuf>,
    /// Measure the held-out loss every N steps (and after the last) [default: 10].
    #[arg(long)]
    pub eval_every: Option<u32>,
    /// Continue the run saved in this directory (its model, optimizer state, settings and data).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Stop (resumably) once this many steps of the run are done.
    #[arg(long)]
    pub stop_after: Option<u32>,
    /// Instead of one run: the learning-rate experiment, one run per rate of this list
    /// (e.g. 1e-4,3e-4,1e-3,3e-3,1e-2,3e-2), each with and without warm-up and z-loss; writes
    /// lr_sweep.json.
    #[arg(long, conflicts_with_all = ["resume", "stop_after"])]
    pub lr_sweep: Option<String>,
    /// Output directory.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
}

/// Where the data come from (saved in run.json, so a resume reads the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    pub tokenizer: Option<PathBuf>,
    pub text_file: Option<PathBuf>,
    pub tokens: Option<String>,
    pub batch: usize,
    pub seq: usize,
    pub data_seed: u64,
    pub eval_file: Option<PathBuf>,
    pub eval_every: u32,
    /// Windows and a hash of their tokens, checked when resuming.
    pub windows: usize,
    pub fingerprint: String,
}

/// run.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    pub start: String,
    pub config: Config,
    pub hyper: Hyper,
    pub data: DataSpec,
    pub steps_done: u32,
}

pub fn run(a: Args) -> Result<()> {
    let backend = PretrainBackend::parse(&a.backend)?;
    if a.lr_sweep.is_some() {
        return sweep::run(a, backend);
    }
    let mut job = match &a.resume {
        Some(dir) => Job::resume(&a, dir)?,
        None => Job::fresh(&a)?,
    };
    let stop = a.stop_after.unwrap_or(job.run.hyper.schedule.steps).min(job.run.hyper.schedule.steps);
    std::fs::create_dir_all(&a.output)
        .map_err(|e| Error::Io { file: load::name(&a.output), what: format!("cannot create the output directory: {e}") })?;
    let mut trainer = job.trainer(backend)?;
    out::line(&format!("{} on {}", job.describe(), trainer.device()))?;
    job.train(&mut trainer, stop)?;
    job.finish(&mut trainer, &a.output)
}

/// One run: its settings, data, history and where it starts.
pub struct Job {
    pub run: RunFile,
    pub weights: Weights,
    moments: Option<Vec<u8>>,
    data: Dataset,
    held: Option<Dataset>,
    losses: Vec<f64>,
    metrics: Vec<Value>,
    /// Seconds spent in training steps (held-out evaluation excluded) and steps timed.
    step_secs: f64,
    timed: u32,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, what: &str) -> Result<T> {
    let bytes = load::read_file(path, what)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Io { file: load::name(path), what: format!("not a {what} file: {e}") })
}

impl Job {
    pub fn fresh(a: &Args) -> Result<Job> {
        let (weights, start) = start_weights(a)?;
        let tok = a.tokenizer.as_deref().map(|z| load::tokenizer_for(z, &weights, Path::new(&start))).transpose()?;
        let c = weights.config;
        let data = dataset(a.tokens.as_deref(), a.text_file.as_deref(), tok.as_ref(), a.seq, &c)?;
        let seq = data.seq;
        let held = held_out(a.eval_file.as_deref(), tok.as_ref(), seq, &c)?;
        let batch = a.batch.unwrap_or(if a.tokens.is_some() { data.len() } else { 4 });
        let spec = DataSpec {
            tokenizer: a.tokenizer.clone(),
            text_file: a.text_file.clone(),
            tokens: a.tokens.clone(),
            batch,
            seq,
            data_seed: a.data_seed.unwrap_or(1234),
            eval_file: a.eval_file.clone(),
            eval_every: a.eval_every.unwrap_or(10).max(1),
            windows: data.len(),
            fingerprint: fingerprint(&data),
        };
        data.batch(batch, 0, spec.data_seed)?;
        let hyper = hyper(a)?;
        hyper.validate()?;
        let run = RunFile { start, config: c, hyper, data: spec, steps_done: 0 };
        Ok(Job { run, weights, moments: None, data, held, losses: Vec::new(), metrics: Vec::new(), step_secs: 0.0, timed: 0 })
    }

    fn resume(a: &Args, dir: &Path) -> Result<Job> {
        let given = [
            ("MODEL", a.model.is_some()),
            ("--shape", a.shape.is_some()),
            ("--config", a.config.is_some()),
            ("--seed", a.seed.is_some()),
            ("-z", a.tokenizer.is_some()),
            ("--text-file", a.text_file.is_some()),
            ("--tokens", a.tokens.is_some()),
            ("--batch", a.batch.is_some()),
            ("--seq", a.seq.is_some()),
            ("--data-seed", a.data_seed.is_some()),
            ("--steps", a.steps.is_some()),
            ("--lr", a.lr.is_some()),
            ("--min-lr", a.min_lr.is_some()),
            ("--warmup", a.warmup.is_some()),
            ("--schedule", a.schedule.is_some()),
            ("--beta1", a.beta1.is_some()),
            ("--beta2", a.beta2.is_some()),
            ("--eps", a.eps.is_some()),
            ("--wd", a.wd.is_some()),
            ("--clip", a.clip.is_some()),
            ("--z-loss", a.z_loss.is_some()),
            ("--eval-file", a.eval_file.is_some()),
            ("--eval-every", a.eval_every.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|g| g.1) {
            return Err(Error::InvalidSetting(format!("{flag} cannot change a resumed run: it continues with {}", RUN_FILE)));
        }
        let run: RunFile = read_json(&dir.join(RUN_FILE), "run settings")?;
        let weights = load::model(&dir.join(MODEL_FILE))?.into_weights();
        if weights.config != run.config {
            return Err(Error::Mismatch(format!("{}: the model does not have the shape {} records", dir.display(), RUN_FILE)));
        }
        let moments = load::read_file(&dir.join(OPTIMIZER_FILE), "optimizer state")?;
        let d = &run.data;
        let tok = d.tokenizer.as_deref().map(|z| load::tokenizer_for(z, &weights, &dir.join(MODEL_FILE))).transpose()?;
        let data = dataset(d.tokens.as_deref(), d.text_file.as_deref(), tok.as_ref(), Some(d.seq), &run.config)?;
        if (data.len(), fingerprint(&data)) != (d.windows, d.fingerprint.clone()) {
            return Err(Error::Mismatch("the training data changed since the run was saved".into()));
        }
        let held = held_out(d.eval_file.as_deref(), tok.as_ref(), d.seq, &run.config)?;
        // The last loss was measured on the batch the next step starts with.
        let mut losses: Vec<f64> = read_json(&dir.join(LOSSES_FILE), "losses")?;
        losses.truncate(run.steps_done as usize);
        let metrics: Vec<Value> = read_json(&dir.join(METRICS_FILE), "metrics")?;
        Ok(Job { run, weights, moments: Some(moments), data, held, losses, metrics, step_secs: 0.0, timed: 0 })
    }

    fn trainer(&self, backend: PretrainBackend) -> Result<Trainer> {
        let state = self.moments.as_deref().map(|b| (b, OPTIMIZER_FILE));
        let t = Trainer::open(backend, &self.weights, self.run.hyper, state)?;
        if t.steps_done() != self.run.steps_done {
            return Err(Error::Mismatch(format!(
                "{OPTIMIZER_FILE} has {} steps done, {RUN_FILE} says {}",
                t.steps_done(),
                self.run.steps_done
            )));
        }
        Ok(t)
    }

    pub fn describe(&self) -> String {
        let (c, h, d) = (&self.run.config, &self.run.hyper, &self.run.data);
        format!(
            "training all {} parameters of {} ({}, {} layers); data: {} window(s) of {} tokens, {} per step; steps {}..{} of {}, lr {} {:?}",
            c.n_params(),
            self.run.start,
            c.dim,
            c.n_layers,
            self.data.len(),
            d.seq,
            d.batch,
            self.run.steps_done + 1,
            h.schedule.steps,
            h.schedule.steps,
            h.schedule.lr,
            h.schedule.kind
        )
    }

    pub fn batch(&self, step: u32) -> Result<Batch> {
        self.data.batch(self.run.data.batch, step as u64, self.run.data.data_seed)
    }

    /// Steps until `stop` steps of the run are done, recording losses and metrics.
    pub fn train(&mut self, t: &mut Trainer, stop: u32) -> Result<()> {
        let first = self.run.steps_done;
        let mut bar = Progress::new(stop.saturating_sub(first));
        for k in first..stop {
            let b = self.batch(k).inspect_err(|_| bar.finish())?;
            let start = std::time::Instant::now();
            let m = t.step(&b).cloned().inspect_err(|_| bar.finish())?;
            self.step_secs += start.elapsed().as_secs_f64();
            self.timed += 1;
            self.losses.push(m.loss);
            let done = k + 1;
            let eval_now = done % self.run.data.eval_every == 0 || done == stop;
            let held = match (&self.held, eval_now) {
                (Some(h), true) => Some(held_out_loss(t, h).inspect_err(|_| bar.finish())?),
                _ => None,
            };
            self.metrics.push(metrics_entry(&m, held)?);
            self.run.steps_done = done;
            bar.update(done - first, m.loss);
        }
        bar.finish();
        Ok(())
    }

    /// Writes the outputs; the last loss is on the batch the next step would take.
    fn finish(&mut self, t: &mut Trainer, dir: &Path) -> Result<()> {
        let next = self.batch(self.run.steps_done)?;
        self.losses.push(t.loss(&next)?);
        let (weights, moments) = t.finish()?;
        load::write_file(&dir.join(MODEL_FILE), &write_v0(&weights))?;
        load::write_file(&dir.join(OPTIMIZER_FILE), &moments)?;
        load::write_file(&dir.join(LOSSES_FILE), to_text(&self.losses)?.as_bytes())?;
        load::write_file(&dir.join(METRICS_FILE), to_text(&self.metrics)?.as_bytes())?;
        load::write_file(&dir.join(RUN_FILE), to_text(&self.run)?.as_bytes())?;
        let held = self.metrics.iter().rev().find_map(|m| m["held_out"].as_f64());
        let (l0, l1) = (self.losses[0], self.losses[self.losses.len() - 1]);
        let held = held.map(|h| format!(", held-out {h:.6}")).unwrap_or_default();
        let tokens = (self.timed as usize * self.run.data.batch * self.run.data.seq) as f64;
        let speed = if self.timed > 0 { format!(" ({:.0} training tokens/s)", tokens / self.step_secs) } else { String::new() };
        out::line(&format!(
            "loss {l0:.6} -> {l1:.6}{held} after {} of {} steps{speed}; wrote {}/{{{MODEL_FILE}, {OPTIMIZER_FILE}, {LOSSES_FILE}, {METRICS_FILE}, {RUN_FILE}}}",
            self.run.steps_done,
            self.run.hyper.schedule.steps,
            dir.display()
        ))
    }
}

/// One line of JSON.
pub fn to_text<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map(|s| s + "\n").map_err(|e| Error::InvalidSetting(format!("writing JSON: {e}")))
}

/// A run saves llama2.c checkpoints, which hold only the seven header sizes (RoPE base 10000,
/// epsilon 1e-5, BOS 1 and no EOS): a GGUF or Hugging Face model is trained only if one holds it.
fn check_llama2c(c: &Config, path: &Path) -> Result<()> {
    let h = [c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len];
    if *c == Config::llama2c(h, c.shared_classifier) {
        return Ok(());
    }
    let why = super::convert::llama2c_misfit(c).unwrap_or_else(|| format!("BOS {} and EOS {:?}", c.bos_id, c.eos_id));
    Err(Error::InvalidSetting(format!(
        "{}: pretraining saves llama2.c checkpoints, which cannot hold this model ({why}); start from a llama2.c model, --shape or --config",
        load::name(path)
    )))
}

/// The weights a fresh run starts from, and how to name them.
fn start_weights(a: &Args) -> Result<(Weights, String)> {
    match (&a.model, &a.shape, &a.config) {
        (Some(path), ..) => {
            if a.seed.is_some() {
                return Err(Error::InvalidSetting("--seed is for the random init of --shape or --config".into()));
            }
            let weights = load::model(path)?.into_weights();
            check_llama2c(&weights.config, path)?;
            Ok((weights, load::name(path)))
        }
        (None, Some(name), _) => {
            let (c, seed) = named_shape(name)?;
            let seed = a.seed.unwrap_or(seed);
            Ok((random_weights(&c, seed)?, format!("random {name} (seed {seed})")))
        }
        (None, None, Some(spec)) => {
            let seed = a.seed.ok_or_else(|| Error::InvalidSetting("--config needs --seed".into()))?;
            Ok((random_weights(&Config::parse(spec)?, seed)?, format!("random {spec} (seed {seed})")))
        }
        _ => Err(Error::InvalidSetting("give a model file, --shape or --config".into())),
    }
}

/// The settings of the flags, with their defaults.
pub fn hyper(a: &Args) -> Result<Hyper> {
    let d = Hyper::default();
    let kind = a.schedule.as_deref().map(ScheduleKind::parse).transpose()?.unwrap_or(ScheduleKind::Cosine);
    let schedule = Schedule {
        kind,
        lr: a.lr.unwrap_or(d.schedule.lr),
        min_lr: a.min_lr.unwrap_or(d.schedule.min_lr),
        warmup: a.warmup.unwrap_or(d.schedule.warmup),
        steps: a.steps.unwrap_or(d.schedule.steps),
    };
    let clip = a.clip.unwrap_or(1.0);
    if !clip.is_finite() || clip < 0.0 {
        return Err(Error::InvalidSetting(format!("--clip {clip} must be 0 (off) or a positive number")));
    }
    Ok(Hyper {
        schedule,
        beta1: a.beta1.unwrap_or(d.beta1),
        beta2: a.beta2.unwrap_or(d.beta2),
        eps: a.eps.unwrap_or(d.eps),
        weight_decay: a.wd.unwrap_or(d.weight_decay),
        clip: (clip > 0.0).then_some(clip),
        z_loss: a.z_loss.unwrap_or(0.0),
    })
}

/// The training windows of --tokens or --text-file (as `finetune` cuts them).
fn dataset(
    tokens: Option<&str>,
    text: Option<&Path>,
    tok: Option<&tinylm_engine::Tokenizer>,
    seq: Option<usize>,
    c: &Config,
) -> Result<Dataset> {
    match (tokens, text, tok) {
        (Some(spec), _, _) => {
            let lists = parse_token_lists(spec)?;
            let shortest = lists.iter().map(Vec::len).min().unwrap_or(0);
            Dataset::from_token_lists(&lists, seq.unwrap_or(shortest.min(c.seq_len)), c)
        }
        (None, Some(path), Some(tok)) => Dataset::from_text(tok, &read_text(path)?, seq.unwrap_or(64.min(c.seq_len)), c),
        (None, Some(_), None) => Err(Error::InvalidSetting("--text-file needs --tokenizer".into())),
        _ => Err(Error::InvalidSetting("give --tokens, or --text-file with --tokenizer".into())),
    }
}

fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(load::read_file(path, "text")?)
        .map_err(|e| Error::Io { file: load::name(path), what: format!("the text is not UTF-8: {e}") })
}

fn held_out(path: Option<&Path>, tok: Option<&tinylm_engine::Tokenizer>, seq: usize, c: &Config) -> Result<Option<Dataset>> {
    let (Some(path), Some(tok)) = (path, tok) else { return Ok(None) };
    Dataset::from_text(tok, &read_text(path)?, seq, c).map(Some)
}

/// The mean next-token loss over every window of `held` (each chunk's mean weighted by its size).
pub fn held_out_loss(t: &mut Trainer, held: &Dataset) -> Result<f64> {
    let mut sum = 0.0;
    let all: Vec<usize> = (0..held.len()).collect();
    for chunk in all.chunks(EVAL_CHUNK) {
        let tokens = chunk.iter().flat_map(|&i| held.window(i).iter().copied()).collect();
        sum += t.loss(&Batch::new(chunk.len(), held.seq, tokens)?)? * chunk.len() as f64;
    }
    Ok(sum / held.len() as f64)
}

/// FNV-1a of every window's tokens, in order.
fn fingerprint(d: &Dataset) -> String {
    let mut h = 0xcbf29ce484222325u64;
    for i in 0..d.len() {
        for &t in d.window(i) {
            for b in t.to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(0x100000001b3);
            }
        }
    }
    format!("{h:016x}")
}

/// A step's metrics with the held-out loss, as metrics.json holds them.
pub fn metrics_entry(m: &StepMetrics, held_out: Option<f64>) -> Result<Value> {
    let mut v = serde_json::to_value(m).map_err(|e| Error::InvalidSetting(format!("metrics: {e}")))?;
    v["held_out"] = held_out.map_or(Value::Null, Value::from);
    Ok(v)
}
