//! Training in the worker: LoRA steps on the CPU path one at a time, yielding between steps so
//! Pause and Stop (acted on as they arrive) end a run within one step. Also the adapter jobs:
//! checking an upload, using an adapter for Generate, and logits with an adapter.

use std::cell::Cell;

use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::{Backend, Generation};
use tinylm_engine::gpu::{GpuTrainOptions, GpuTrainer};
use tinylm_engine::lora::{
    self, parse_targets, write_optimizer, write_peft, AdamW, Adapter, Base, Batch, Dataset, LoraConfig, LoraCpuBackend,
    TrainConfig, Trainer,
};
use tinylm_engine::tokenizer::Utf8Stream;
use tinylm_engine::{Config, Error, Sampler, Tokenizer, Weights};

use super::engine::Engine;
use super::host::{now_ms, post, yield_now};
use super::store::Parsed;
use crate::protocol::{BackendKind, Choice, FromWorker};
use crate::train::{
    adapter_error, b64, check, held_sample, read_adapter, restore_trainer, split, time_left_ms, AdapterInfo, BaseId, Checkpoint,
    Costs, Ending, Estimate, Peft, StartRun, TrainCmd, TrainEvent, TrainSettings, HELD_CHUNK, HELD_MAX_WINDOWS,
};

/// Steps the estimate times on the CPU (the later half counts).
const PROBE_STEPS: u64 = 6;
/// Tokens per sample.
const SAMPLE_TOKENS: usize = 48;

thread_local! {
    /// The newest (job, ending) asked for by the page; the running job checks it between steps.
    static CONTROL: Cell<Option<(u64, Ending)>> = const { Cell::new(None) };
}

/// Pause or Stop, as it arrives (see `worker::receive`).
pub fn control(cmd: &TrainCmd) -> bool {
    let asked = match *cmd {
        TrainCmd::Pause { job } => (job, Ending::Paused),
        TrainCmd::Stop { job } => (job, Ending::Stopped),
        _ => return false,
    };
    CONTROL.with(|c| c.set(Some(asked)));
    true
}

fn asked_to_end(job: u64) -> Option<Ending> {
    CONTROL.with(|c| c.get().filter(|(j, _)| *j == job).map(|(_, e)| e))
}

fn send(ev: TrainEvent) {
    post(&FromWorker::Train(ev));
}

pub async fn handle(engine: &mut Engine, cmd: TrainCmd) {
    match cmd {
        TrainCmd::Start(run) => {
            let StartRun { job, name, text, settings, resume } = *run;
            if let Err(message) = train(engine, Run { job, name, settings }, &text, resume).await {
                send(TrainEvent::Failed { job, message });
            }
        }
        // Acted on when they arrived.
        TrainCmd::Pause { .. } | TrainCmd::Stop { .. } => {}
        TrainCmd::Check { req, adapter } => {
            let result = model(engine).and_then(|(p, base)| Ok((info(&read_adapter(&adapter, &p.weights.config)?), base)));
            send(TrainEvent::Checked { req, result });
        }
        TrainCmd::Count { text } => {
            if let Ok((p, base)) = model(engine) {
                let (train, held) = split(&text);
                let n = |s: &str| {
                    if s.is_empty() {
                        0
                    } else {
                        p.tokenizer.encode(s, true, false).len()
                    }
                };
                let (train_tokens, held_tokens) = (n(train), n(held));
                let train_chars = train.chars().count();
                send(TrainEvent::Data { job: 0, train_tokens, held_tokens, train_chars, windows: 0, held_windows: 0, base });
            }
        }
        TrainCmd::Use { adapter } => use_adapter(engine, adapter).await,
        TrainCmd::Compare { name, adapter, prompt, seed } => {
            let result = compare(engine, &adapter, &prompt, seed);
            send(TrainEvent::Compared { name, result });
        }
        TrainCmd::Estimate { req, text, settings } => {
            let result = estimate(engine, &text, &settings).await;
            send(TrainEvent::Estimated { req, result });
        }
        TrainCmd::Logits { req, tokens, adapter } => {
            let result = logits(engine, &tokens, adapter.as_ref());
            send(TrainEvent::Logits { req, result });
        }
    }
}

/// The active model's base weights (never the merged ones Generate may use) and identity.
fn model(engine: &Engine) -> Result<(Parsed, BaseId), String> {
    let id = engine.active_id().ok_or("No model is loaded yet: wait for it, or load one.")?;
    let parsed = engine.store.open(id)?;
    let base = engine.store.identity(id).ok_or("That model is no longer loaded.")?;
    Ok((parsed, base))
}

fn info(a: &Adapter) -> AdapterInfo {
    AdapterInfo {
        rank: a.config.r,
        alpha: a.config.alpha,
        targets: a.config.targets.iter().map(|t| t.peft_name().to_string()).collect(),
        params: a.n_params(),
    }
}

struct Run {
    job: u64,
    name: String,
    settings: TrainSettings,
}

/// Everything fixed for one run.
struct Setup {
    weights: Weights,
    tokenizer: Tokenizer,
    base: BaseId,
    data: Dataset,
    /// The held-out windows, in passes of at most `HELD_CHUNK`.
    held: Vec<Batch>,
}

fn prepare(engine: &Engine, run: &Run, text: &str) -> Result<Setup, String> {
    let s = &run.settings;
    check(s)?;
    let (parsed, base) = model(engine)?;
    let t = tokenized(&parsed, s, text)?;
    send(TrainEvent::Data {
        job: run.job,
        train_tokens: t.train_tokens,
        train_chars: t.train_chars,
        held_tokens: t.held_tokens,
        windows: t.data.len(),
        held_windows: t.held.iter().map(|b| b.batch).sum(),
        base: base.clone(),
    });
    Ok(Setup { weights: parsed.weights, tokenizer: parsed.tokenizer, base, data: t.data, held: t.held })
}

/// The text cut into training windows and held-out batches, with the counts the view shows.
struct Tokenized {
    data: Dataset,
    held: Vec<Batch>,
    train_tokens: usize,
    train_chars: usize,
    held_tokens: usize,
}

fn tokenized(parsed: &Parsed, s: &TrainSettings, text: &str) -> Result<Tokenized, String> {
    let c = parsed.weights.config;
    if s.seq > c.seq_len {
        return Err(format!("Sequence length {} is longer than this model's context ({} tokens).", s.seq, c.seq_len));
    }
    let (train_text, held_text) = split(text);
    // As Dataset::from_text (and `tinylm finetune --text-file`): BOS + encoding, no EOS.
    let tokens = parsed.tokenizer.encode(train_text, true, false);
    let train_tokens = tokens.len();
    let data = Dataset::from_token_lists(&[tokens], s.seq, &c).map_err(|e| data_error(&e, train_tokens, s.seq))?;
    let held_tokens = if held_text.is_empty() { Vec::new() } else { parsed.tokenizer.encode(held_text, true, false) };
    Ok(Tokenized {
        held: held_batches(&held_tokens, s.seq, &c),
        data,
        train_tokens,
        train_chars: train_text.chars().count(),
        held_tokens: held_tokens.len(),
    })
}

fn data_error(e: &Error, tokens: usize, seq: usize) -> String {
    if tokens < seq {
        format!("The text makes only {tokens} tokens for training; it needs at least {seq} (the sequence length). Use more text or a shorter sequence.")
    } else {
        e.to_string()
    }
}

/// The held-out text's windows (all, or an even sample: `held_sample`), in passes of at most
/// `HELD_CHUNK` (none when the text is shorter than a window).
fn held_batches(tokens: &[u32], seq: usize, c: &Config) -> Vec<Batch> {
    let Ok(held) = Dataset::from_token_lists(&[tokens.to_vec()], seq, c) else {
        return Vec::new();
    };
    held_sample(held.len(), HELD_MAX_WINDOWS)
        .chunks(HELD_CHUNK)
        .filter_map(|chunk| {
            let flat = chunk.iter().flat_map(|&i| held.window(i).to_vec()).collect();
            Batch::new(chunk.len(), seq, flat).ok()
        })
        .collect()
}

fn trainer(run: &Run, c: &Config, resume: Option<&Checkpoint>) -> Result<Trainer, String> {
    let s = &run.settings;
    let adamw = AdamW { lr: s.lr, ..AdamW::default() };
    let tc = TrainConfig { adamw, clip_norm: None };
    let text = |e: Error| e.to_string();
    match resume {
        None => {
            let lora = LoraConfig::new(s.rank, s.alpha, false, parse_targets(&s.targets).map_err(text)?).map_err(text)?;
            Trainer::new(Adapter::peft_default(c, lora, s.seed).map_err(text)?, tc).map_err(text)
        }
        // (An estimate's probe starts fresh too.)
        Some(ck) => restore_trainer(ck, c, tc),
    }
}

/// Losses so far, kept for checkpoints.
struct History {
    losses: Vec<f64>,
    held: Vec<(u32, f64)>,
}

async fn train(engine: &mut Engine, run: Run, text: &str, resume: Option<Checkpoint>) -> Result<(), String> {
    if let Some(ck) = &resume {
        let here = engine.active_id().and_then(|id| engine.store.identity(id));
        if here.as_ref() != Some(&ck.base) {
            return Err(format!(
                "This run was trained on {} (file hash {}), which is not the model loaded now. Load that model to resume.",
                ck.base.name, ck.base.hash
            ));
        }
    }
    CONTROL.with(|c| c.set(None));
    let setup = prepare(engine, &run, text)?;
    let mut t = trainer(&run, &setup.weights.config, resume.as_ref())?;
    let mut hist = match &resume {
        Some(ck) => History { losses: ck.losses.clone(), held: ck.held.clone() },
        None => History { losses: Vec::new(), held: Vec::new() },
    };
    hist.losses.truncate(t.steps_done() as usize);
    let base = Base::new(&setup.weights);
    let s = &run.settings;
    let job = run.job;
    // What the work costs here, for the time left (steps are averaged, checks and samples the latest).
    let mut costs = Costs { step_ms: 0.0, held_ms: 0.0, sample_ms: 0.0 };
    if t.steps_done() == 0 {
        costs.held_ms = timed(held_loss(&setup, &base, &t, &mut hist, job)).await?;
    }
    let mut gpu = gpu_trainer(engine, &setup, &t, job).await;
    let mut timing = (0.0f64, 0u32);
    let mut done = t.steps_done();
    while done < s.steps {
        if let Some(ending) = asked_to_end(job) {
            sync(&mut t, &gpu).await?;
            let ck = checkpoint(&run, &setup, &t, &hist, false)?;
            send(TrainEvent::Ended { job, ending, checkpoint: Some(ck) });
            return Ok(());
        }
        let step = done;
        let batch = setup.data.batch(s.batch, step as u64, s.seed).map_err(|e| e.to_string())?;
        let started = now_ms();
        let report = match gpu.as_mut() {
            Some(g) => g.step_async(&batch).await,
            None => t.step(&base, &batch),
        }
        .map_err(|e| e.to_string())?;
        done = report.step;
        timing = (timing.0 + now_ms() - started, timing.1 + 1);
        hist.losses.push(report.loss);
        let ms = timing.0 / timing.1 as f64;
        costs.step_ms = ms;
        let tokens_per_s = (s.batch * s.seq) as f64 * 1000.0 / ms.max(1e-3);
        send(TrainEvent::Step {
            job,
            step: report.step,
            loss: report.loss,
            tokens_per_s,
            ms_per_step: ms,
            eta_s: time_left_ms(s, report.step, costs) / 1000.0,
        });
        let due = |every: u32| report.step % every == 0 && report.step < s.steps;
        if due(s.sample_every) || due(s.checkpoint_every) {
            sync(&mut t, &gpu).await?;
        }
        if report.step % s.sample_every == 0 && report.step < s.steps {
            costs.held_ms = timed(held_loss(&setup, &base, &t, &mut hist, job)).await?;
            costs.sample_ms = timed(async { sample(&setup, &t, s, job) }).await?;
        }
        if report.step % s.checkpoint_every == 0 && report.step < s.steps {
            send(TrainEvent::Checkpoint { job, checkpoint: checkpoint(&run, &setup, &t, &hist, false)? });
        }
        yield_now().await;
    }
    sync(&mut t, &gpu).await?;
    // The loss after the last update, on the batch a next step would take (as the CLI).
    let next = setup.data.batch(s.batch, s.steps as u64, s.seed).map_err(|e| e.to_string())?;
    hist.losses.push(lora::loss(&base, Some(&t.adapter), &next).map_err(|e| e.to_string())?);
    held_loss(&setup, &base, &t, &mut hist, job).await?;
    sample(&setup, &t, s, job)?;
    let ck = checkpoint(&run, &setup, &t, &hist, true)?;
    send(TrainEvent::Ended { job, ending: Ending::Finished, checkpoint: Some(ck) });
    Ok(())
}

/// Times a run's parts on the backend it would use: a few steps (the first ones run slower,
/// before the browser has optimized the code, so only the later ones count), one pass over a
/// held-out chunk (scaled to all of them) and a sample pair.
async fn estimate(engine: &Engine, text: &str, s: &TrainSettings) -> Result<Estimate, String> {
    check(s)?;
    let (parsed, _) = model(engine)?;
    let c = parsed.weights.config;
    let Tokenized { data, held, .. } = tokenized(&parsed, s, text)?;
    let run = Run { job: 0, name: String::new(), settings: s.clone() };
    let mut t = trainer(&run, &c, None)?;
    let base = Base::new(&parsed.weights);
    let batches: Vec<Batch> =
        (0..PROBE_STEPS).map(|k| data.batch(s.batch, k, s.seed)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let (step_ms, backend) = match probe_gpu(engine, &parsed.weights, &t, &batches[..4]).await {
        Some(ms) => (ms, "WebGPU"),
        None => {
            let mut ms = Vec::new();
            for b in &batches {
                let t0 = now_ms();
                t.step(&base, b).map_err(|e| e.to_string())?;
                ms.push(now_ms() - t0);
                yield_now().await;
            }
            let late = &ms[ms.len() / 2..];
            (late.iter().sum::<f64>() / late.len() as f64, "CPU")
        }
    };
    let held_ms = match held.first() {
        Some(b) => {
            let t0 = now_ms();
            lora::loss(&base, Some(&t.adapter), b).map_err(|e| e.to_string())?;
            let windows: usize = held.iter().map(|b| b.batch).sum();
            (now_ms() - t0) * windows as f64 / b.batch as f64
        }
        None => 0.0,
    };
    yield_now().await;
    let tok = &parsed.tokenizer;
    let sample_ms = timed(async {
        off_and_on(&parsed.weights, t.adapter.clone(), tok, &s.prompt, s.seed).map(drop).map_err(|e| e.to_string())
    })
    .await?;
    let costs = Costs { step_ms, held_ms, sample_ms };
    Ok(Estimate { seconds: time_left_ms(s, 0, costs) / 1000.0, step_ms, backend: backend.into() })
}

/// Milliseconds per GPU training step (a warm-up step, then the mean of the rest), when the
/// model runs on WebGPU and the GPU can train.
async fn probe_gpu(engine: &Engine, w: &Weights, t: &Trainer, batches: &[Batch]) -> Option<f64> {
    if engine.active_kind() != Some(BackendKind::WebGpu) {
        return None;
    }
    let opts = GpuTrainOptions { context: None, state: None };
    let mut g = GpuTrainer::new_async(w, t.adapter.clone(), t.config, opts).await.ok()?;
    let mut ms = 0.0;
    for (k, b) in batches.iter().enumerate() {
        let t0 = now_ms();
        g.step_async(b).await.ok()?;
        if k > 0 {
            ms += (now_ms() - t0) / (batches.len() - 1) as f64;
        }
    }
    Some(ms)
}

/// Milliseconds `work` took, or its error.
async fn timed(work: impl std::future::Future<Output = Result<(), String>>) -> Result<f64, String> {
    let t0 = now_ms();
    work.await?;
    Ok(now_ms() - t0)
}

/// The GPU trainer when the model runs on WebGPU (None on the CPU path, or when the GPU cannot
/// train, which the page is told).
async fn gpu_trainer(engine: &Engine, setup: &Setup, t: &Trainer, job: u64) -> Option<Box<GpuTrainer>> {
    let cpu = |why: &str| {
        send(TrainEvent::Backend { job, name: format!("CPU ({why})") });
        None
    };
    if engine.active_kind() != Some(BackendKind::WebGpu) {
        return cpu("the model runs on the CPU path");
    }
    let opts = GpuTrainOptions { context: None, state: Some(t.optimizer_state()) };
    match GpuTrainer::new_async(&setup.weights, t.adapter.clone(), t.config, opts).await {
        Ok(g) => {
            send(TrainEvent::Backend { job, name: "WebGPU".into() });
            Some(Box::new(g))
        }
        Err(e) => cpu(&format!("the GPU could not train: {e}")),
    }
}

/// Brings the CPU copy of the adapter and AdamW state up to date with the GPU's (for
/// held-out loss, samples and checkpoints).
async fn sync(t: &mut Trainer, gpu: &Option<Box<GpuTrainer>>) -> Result<(), String> {
    if let Some(g) = gpu {
        let text = |e: Error| e.to_string();
        let adapter = g.adapter_async().await.map_err(text)?;
        let state = g.optimizer_state_async().await.map_err(text)?;
        *t = Trainer::restore(adapter, t.config, state).map_err(text)?;
    }
    Ok(())
}

/// The mean loss over the held-out windows (as `tinylm finetune --eval-file`), one pass of
/// `HELD_CHUNK` windows at a time with a yield between, so Pause and Stop are heard.
async fn held_loss(setup: &Setup, base: &Base<'_, f32>, t: &Trainer, hist: &mut History, job: u64) -> Result<(), String> {
    if setup.held.is_empty() {
        return Ok(());
    }
    let (mut sum, mut n) = (0.0, 0);
    for batch in &setup.held {
        let mean = lora::loss(base, Some(&t.adapter), batch).map_err(|e| e.to_string())?;
        sum += mean * batch.batch as f64;
        n += batch.batch;
        yield_now().await;
    }
    let loss = sum / n as f64;
    let step = t.steps_done();
    hist.held.retain(|(s, _)| *s != step);
    hist.held.push((step, loss));
    send(TrainEvent::Held { job, step, loss });
    Ok(())
}

fn checkpoint(run: &Run, setup: &Setup, t: &Trainer, hist: &History, finished: bool) -> Result<Checkpoint, String> {
    let files = write_peft(&t.adapter, &setup.base.name).map_err(|e| e.to_string())?;
    let opt = write_optimizer(&t.optimizer_state()).map_err(|e| e.to_string())?;
    Ok(Checkpoint {
        name: run.name.clone(),
        settings: run.settings.clone(),
        base: setup.base.clone(),
        step: t.steps_done(),
        losses: hist.losses.clone(),
        held: hist.held.clone(),
        adapter: Peft::new(files.config_json, &files.safetensors),
        info: info(&t.adapter),
        optimizer_b64: b64(&opt),
        finished,
    })
}

/// The same prompt and seed with the adapter off and on.
fn sample(setup: &Setup, t: &Trainer, s: &TrainSettings, job: u64) -> Result<(), String> {
    let text = |e: Error| e.to_string();
    let (off, on) = off_and_on(&setup.weights, t.adapter.clone(), &setup.tokenizer, &s.prompt, s.seed).map_err(text)?;
    send(TrainEvent::Sample { job, step: t.steps_done(), off, on });
    Ok(())
}

/// The plain model's story and the story with `adapter` (unmerged, CPU path), same prompt and seed.
fn off_and_on(w: &Weights, adapter: Adapter, tok: &Tokenizer, prompt: &str, seed: u64) -> Result<(String, String), Error> {
    let off = story(&mut CpuBackend::new(w.clone()), tok, prompt, seed)?;
    let on = story(&mut LoraCpuBackend::new(w.clone(), adapter)?, tok, prompt, seed)?;
    Ok((off, on))
}

/// The library's comparison: an adapter off and on, for the active model's base weights.
fn compare(engine: &Engine, p: &Peft, prompt: &str, seed: u64) -> Result<(String, String), String> {
    let (parsed, _) = model(engine)?;
    let adapter = read_adapter(p, &parsed.weights.config)?;
    off_and_on(&parsed.weights, adapter, &parsed.tokenizer, prompt, seed).map_err(|e| e.to_string())
}

fn story<B: Backend>(b: &mut B, tok: &Tokenizer, prompt: &str, seed: u64) -> Result<String, Error> {
    let c = *b.config();
    let prompt = tok.encode(prompt, true, false);
    let steps = (prompt.len() + SAMPLE_TOKENS).min(c.seq_len);
    let mut gen = Generation::new(prompt, steps, &c)?;
    let mut sampler = Sampler::new(0.8, 0.9, seed)?;
    let (mut utf8, mut out) = (Utf8Stream::default(), String::new());
    while let Some(step) = gen.step(b, &mut sampler)? {
        out.push_str(&utf8.push(tok.decode(step.prev, step.token)?.bytes()));
    }
    out.push_str(&utf8.finish());
    Ok(out)
}

/// An adapter merged into the active model for Generate, and the model it belongs to.
pub struct InUse {
    pub model: u32,
    pub name: String,
    pub adapter: Adapter,
}

/// `weights` with the adapter in use merged in (as they are without one).
pub fn with_adapter(weights: Weights, in_use: Option<&InUse>) -> Result<Weights, String> {
    match in_use {
        Some(u) => u.adapter.merged(&weights).map_err(|e| adapter_error(&e)),
        None => Ok(weights),
    }
}

/// Before model `id` is started: an adapter made for another model is dropped, and the page
/// is told why (its mark is cleared when the new model is reported).
pub fn keep_for(in_use: &mut Option<InUse>, id: u32) {
    if let Some(u) = in_use.take_if(|u| u.model != id) {
        send(TrainEvent::Using {
            name: None,
            error: Some(format!("Generate no longer uses the adapter “{}”: another model was loaded.", u.name)),
        });
    }
}

/// After the active model was (re)started: the adapter merged into it, if any.
pub fn announce(in_use: Option<&InUse>) {
    if let Some(u) = in_use {
        send(TrainEvent::Using { name: Some(u.name.clone()), error: None });
    }
}

/// Generate uses `adapter` merged into the active model (on its backend), or the plain model.
/// `Engine::activate` does the merging, and does it again on every later restart.
async fn use_adapter(engine: &mut Engine, adapter: Option<(String, BaseId, Peft)>) {
    let checked = (|| {
        let (parsed, here) = model(engine)?;
        let id = engine.active_id().ok_or("No model is loaded yet.")?;
        let Some((name, base, p)) = adapter else {
            return Ok((parsed, id, None));
        };
        if base != here {
            return Err(format!(
                "“{name}” was trained on {} (file hash {}), not on the model loaded now ({}, {}). \
                 An adapter only fits the model it was made for: load {} first.",
                base.name, base.hash, here.name, here.hash, base.name
            ));
        }
        let adapter = read_adapter(&p, &parsed.weights.config)?;
        Ok((parsed, id, Some(InUse { model: id, name, adapter })))
    })();
    let (parsed, id, in_use) = match checked {
        Ok(c) => c,
        // Nothing changed: the page hears the reason and what is still in use.
        Err(e) => {
            let name = engine.in_use.as_ref().map(|u| u.name.clone());
            return send(TrainEvent::Using { name, error: Some(e) });
        }
    };
    let choice = match engine.active_kind() {
        Some(BackendKind::WebGpu) => Choice::WebGpu,
        _ => Choice::Cpu,
    };
    engine.in_use = in_use;
    let result = engine.activate(id, parsed, choice).await;
    if result.is_err() {
        engine.in_use = None;
    }
    // On success this also announces the adapter (see `Engine::report`).
    engine.report(result.clone());
    if let Err(e) = result {
        send(TrainEvent::Using { name: None, error: Some(e) });
    }
}

/// Logits at every position of `tokens` (CPU path), with the adapter unmerged.
fn logits(engine: &Engine, tokens: &[u32], adapter: Option<&Peft>) -> Result<Vec<Vec<f32>>, String> {
    let (parsed, _) = model(engine)?;
    let c = parsed.weights.config;
    if tokens.is_empty() || tokens.len() > c.seq_len {
        return Err(format!("Give between 1 and {} token ids.", c.seq_len));
    }
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
        return Err(format!("Token id {bad} is not in this model's vocabulary of {}.", c.vocab_size));
    }
    let mut backend: Box<dyn Backend> = match adapter {
        Some(p) => {
            let a = read_adapter(p, &c)?;
            Box::new(LoraCpuBackend::new(parsed.weights, a).map_err(|e| adapter_error(&e))?)
        }
        None => Box::new(CpuBackend::new(parsed.weights)),
    };
    let mut out = Vec::with_capacity(tokens.len());
    for (pos, &t) in tokens.iter().enumerate() {
        out.push(backend.forward(t, pos).map_err(|e| e.to_string())?.to_vec());
    }
    Ok(out)
}
