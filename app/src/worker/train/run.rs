//! A training run in the worker: LoRA steps through the engine's trainer choice, one at a time
//! with a yield between, so Pause and Stop (acted on as they arrive) end a run within one step;
//! the held-out evaluation (`lora::HeldOut`, as `tinylm finetune --eval-file`), samples and
//! snapshots along the way. Also a run's time estimate.

use tinylm_engine::generate::Pace;
use tinylm_engine::lora::{
    parse_targets, write_optimizer, write_peft, AdamW, Adapter, AnyTrainer, Batch, Dataset, HeldOut, LoraConfig, TrainConfig,
    TrainDevice,
};
use tinylm_engine::{Config, Error, LoadedModel};

use super::super::bridge::{now_ms, post, yield_now};
use super::super::cancel::Cancel;
use super::super::session::Session;
use super::super::store::Stored;
use super::samples::off_and_on;
use crate::protocol::train::{Ending, Peft, Snapshot, TrainEvent, TrainSettings};
use crate::protocol::{BackendKind, Bytes, FromWorker};
use crate::train::{adapter_info, check, restore, split, time_left_ms, Costs, HELD_MAX_WINDOWS};

/// Steps the estimate times on the CPU (the later half counts).
const PROBE_STEPS: u64 = 6;

fn send(ev: TrainEvent) {
    post(&FromWorker::Train(ev));
}

pub struct Run {
    pub job: u64,
    pub name: String,
    pub settings: TrainSettings,
}

/// The text cut into training windows and held-out windows, with the counts the view shows.
struct Tokenized {
    data: Dataset,
    held: HeldOut,
    train_tokens: usize,
    train_chars: usize,
    held_tokens: usize,
}

fn tokenized(m: &LoadedModel, s: &TrainSettings, text: &str) -> Result<Tokenized, String> {
    let c = *m.config();
    if s.seq > c.seq_len {
        return Err(format!("Sequence length {} is longer than this model's context ({} tokens).", s.seq, c.seq_len));
    }
    let tok = m.need_tokenizer().map_err(|e| e.to_string())?;
    let (train_text, held_text) = split(text);
    // As Dataset::from_text (and `tinylm finetune --text-file`): BOS + encoding, no EOS.
    let tokens = tok.encode(train_text, true, false);
    let train_tokens = tokens.len();
    let data = Dataset::from_token_lists(&[tokens], s.seq, &c).map_err(|e| data_error(&e, train_tokens, s.seq))?;
    let held_tokens = if held_text.is_empty() { Vec::new() } else { tok.encode(held_text, true, false) };
    // A held-out text shorter than a window has nothing to evaluate.
    let held = match Dataset::from_token_lists(std::slice::from_ref(&held_tokens), s.seq, &c) {
        Ok(d) => HeldOut::new(&d, HELD_MAX_WINDOWS).map_err(|e| e.to_string())?,
        Err(_) => HeldOut::none(s.seq),
    };
    Ok(Tokenized { held, data, train_tokens, train_chars: train_text.chars().count(), held_tokens: held_tokens.len() })
}

fn data_error(e: &Error, tokens: usize, seq: usize) -> String {
    if tokens < seq {
        format!("The text makes only {tokens} tokens for training; it needs at least {seq} (the sequence length). Use more text or a shorter sequence.")
    } else {
        e.to_string()
    }
}

fn train_config(s: &TrainSettings) -> TrainConfig {
    TrainConfig { adamw: AdamW { lr: s.lr, ..AdamW::default() }, clip_norm: None }
}

/// A fresh adapter for `s`.
fn fresh(s: &TrainSettings, c: &Config) -> Result<Adapter, String> {
    let text = |e: Error| e.to_string();
    let lora = LoraConfig::new(s.rank, s.alpha, false, parse_targets(&s.targets).map_err(text)?).map_err(text)?;
    Adapter::peft_default(c, lora, s.seed).map_err(text)
}

/// The trainer on WebGPU when the model runs there, else on the CPU; a GPU that cannot train
/// falls back to the CPU. Says which to the page (`job` 0: nobody listens).
async fn trainer(
    m: &LoadedModel,
    gpu: bool,
    adapter: Adapter,
    state: Option<tinylm_engine::lora::OptimizerState>,
    tc: TrainConfig,
    job: u64,
) -> Result<AnyTrainer, String> {
    let say = |name: String| {
        if job != 0 {
            send(TrainEvent::Backend { job, name });
        }
    };
    let cpu = |why: String| say(format!("CPU ({why})"));
    if gpu {
        match AnyTrainer::new_async(m.weights(), adapter.clone(), tc, state.clone(), TrainDevice::Gpu).await {
            Ok(t) => {
                say("WebGPU".into());
                return Ok(t);
            }
            Err(e) => cpu(format!("the GPU could not train: {e}")),
        }
    } else {
        cpu("the model runs on the CPU path".into());
    }
    // A quantized model trains as it is kept: no f32 copy on the CPU.
    AnyTrainer::new_async(m.train_base(), adapter, tc, state, TrainDevice::Cpu).await.map_err(|e| e.to_string())
}

/// Losses so far, kept for snapshots.
struct History {
    losses: Vec<f64>,
    held: Vec<(u32, f64)>,
}

impl History {
    /// The lowest held-out loss before the latest check.
    fn best_before_last(&self) -> Option<f64> {
        let n = self.held.len().checked_sub(1)?;
        self.held[..n].iter().map(|h| h.1).min_by(f64::total_cmp)
    }
}

/// Yields between held-out passes, so Pause and Stop are heard.
struct Yielding;

impl Pace for Yielding {
    async fn between(&mut self) -> bool {
        yield_now().await;
        true
    }
}

pub async fn train(s: &Session, run: Run, text: &str, resume: Option<Snapshot>, cancel: &Cancel<Ending>) -> Result<(), String> {
    check(&run.settings)?;
    let gpu = s.active_kind() == Some(BackendKind::WebGpu);
    let (stored, _) = s.active()?;
    if let Some(snap) = &resume {
        if stored.base != snap.base {
            return Err(format!(
                "This run was trained on {} (file hash {}), which is not the model loaded now. Load that model to resume.",
                snap.base.name, snap.base.hash
            ));
        }
    }
    let (m, job, st) = (&stored.model, run.job, &run.settings);
    let t = tokenized(m, st, text)?;
    send(TrainEvent::Data {
        job,
        train_tokens: t.train_tokens,
        train_chars: t.train_chars,
        held_tokens: t.held_tokens,
        windows: t.data.len(),
        held_windows: t.held.windows,
        base: stored.base.clone(),
    });
    let (adapter, state) = match &resume {
        Some(snap) => restore(snap, m.config()).map(|(a, s)| (a, Some(s)))?,
        None => (fresh(st, m.config())?, None),
    };
    let mut hist = match &resume {
        Some(snap) => History { losses: snap.losses.clone(), held: snap.held.clone() },
        None => History { losses: Vec::new(), held: Vec::new() },
    };
    let mut trainer = trainer(m, gpu, adapter, state, train_config(st), job).await?;
    let trainer = &mut trainer;
    hist.losses.truncate(trainer.steps_done() as usize);
    // What the work costs here, for the time left (steps are averaged, checks and samples the latest).
    let mut costs = Costs { step_ms: 0.0, held_ms: 0.0, sample_ms: 0.0 };
    if trainer.steps_done() == 0 {
        costs.held_ms = timed(held_loss(trainer, &t.held, &mut hist, job, &stored.base.name)).await?;
    }
    let mut timing = (0.0f64, 0u32);
    let mut done = trainer.steps_done();
    while done < st.steps {
        if let Some(ending) = cancel.reason(job) {
            let snapshot = snapshot(&run, stored, trainer, &hist, false).await?;
            send(TrainEvent::Ended { job, ending, snapshot: Some(snapshot) });
            return Ok(());
        }
        let batch = t.data.batch(st.batch, done as u64, st.seed).map_err(|e| e.to_string())?;
        let started = now_ms();
        let report = trainer.step_async(&batch).await.map_err(|e| e.to_string())?;
        done = report.step;
        timing = (timing.0 + now_ms() - started, timing.1 + 1);
        hist.losses.push(report.loss);
        let ms = timing.0 / timing.1 as f64;
        costs.step_ms = ms;
        let tokens_per_s = (st.batch * st.seq) as f64 * 1000.0 / ms.max(1e-3);
        send(TrainEvent::Step {
            job,
            step: report.step,
            loss: report.loss,
            tokens_per_s,
            ms_per_step: ms,
            eta_s: time_left_ms(st, report.step, costs) / 1000.0,
        });
        let due = |every: u32| report.step % every == 0 && report.step < st.steps;
        if due(st.sample_every) {
            costs.held_ms = timed(held_loss(trainer, &t.held, &mut hist, job, &stored.base.name)).await?;
            costs.sample_ms = timed(sample(m, trainer, st, job)).await?;
        }
        if due(st.snapshot_every) {
            send(TrainEvent::Snapshot { job, snapshot: snapshot(&run, stored, trainer, &hist, false).await? });
        }
        yield_now().await;
    }
    // The loss after the last update, on the batch a next step would take (as the CLI).
    let next = t.data.batch(st.batch, st.steps as u64, st.seed).map_err(|e| e.to_string())?;
    hist.losses.push(trainer.loss_async(&next).await.map_err(|e| e.to_string())?);
    held_loss(trainer, &t.held, &mut hist, job, &stored.base.name).await?;
    sample(m, trainer, st, job).await?;
    let snapshot = snapshot(&run, stored, trainer, &hist, true).await?;
    send(TrainEvent::Ended { job, ending: Ending::Finished, snapshot: Some(snapshot) });
    Ok(())
}

/// The held-out evaluation at the trainer's step, yielding between passes; recorded and sent.
/// A new lowest loss (after step 0) sends the adapter of this step as the run's best.
async fn held_loss(t: &mut AnyTrainer, held: &HeldOut, hist: &mut History, job: u64, base: &str) -> Result<(), String> {
    let Some(loss) = t.held_out_async(held, &mut Yielding).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let step = t.steps_done();
    hist.held.retain(|(s, _)| *s != step);
    hist.held.push((step, loss));
    send(TrainEvent::Held { job, step, loss });
    if step > 0 && hist.best_before_last().is_none_or(|b| loss < b) {
        let adapter = t.adapter_async().await.map_err(|e| e.to_string())?;
        let files = write_peft(&adapter, base).map_err(|e| e.to_string())?;
        let adapter = Peft { config_json: files.config_json, safetensors: Bytes::from_slice(&files.safetensors) };
        send(TrainEvent::Best { job, step, loss, adapter });
    }
    Ok(())
}

/// The same prompt and seed with the adapter off and on.
async fn sample(m: &LoadedModel, t: &AnyTrainer, s: &TrainSettings, job: u64) -> Result<(), String> {
    let adapter = t.adapter_async().await.map_err(|e| e.to_string())?;
    let (off, on) = off_and_on(m, adapter, &s.prompt, s.seed)?;
    send(TrainEvent::Sample { job, step: t.steps_done(), off, on });
    Ok(())
}

/// The run's state now: enough to resume it exactly, or to keep its adapter.
async fn snapshot(run: &Run, m: &Stored, t: &AnyTrainer, hist: &History, finished: bool) -> Result<Snapshot, String> {
    let text = |e: Error| e.to_string();
    let (adapter, state) = t.state_async().await.map_err(text)?;
    let files = write_peft(&adapter, &m.base.name).map_err(text)?;
    let optimizer = write_optimizer(&state).map_err(text)?;
    Ok(Snapshot {
        name: run.name.clone(),
        settings: run.settings.clone(),
        base: m.base.clone(),
        step: t.steps_done(),
        losses: hist.losses.clone(),
        held: hist.held.clone(),
        adapter: Peft { config_json: files.config_json, safetensors: Bytes::from_slice(&files.safetensors) },
        info: adapter_info(&adapter),
        optimizer: Bytes::from_slice(&optimizer),
        finished,
    })
}

/// Milliseconds `work` took, or its error.
async fn timed(work: impl std::future::Future<Output = Result<(), String>>) -> Result<f64, String> {
    let t0 = now_ms();
    work.await?;
    Ok(now_ms() - t0)
}

/// Times a run's parts on the device it would train on: a few steps (the first ones run
/// slower, before the browser has optimized the code or compiled the pipelines, so only the
/// later ones count), one held-out pass (scaled to all of them) and a sample pair.
pub async fn estimate(s: &Session, text: &str, st: &TrainSettings) -> Result<crate::protocol::train::Estimate, String> {
    check(st)?;
    let gpu = s.active_kind() == Some(BackendKind::WebGpu);
    let (stored, _) = s.active()?;
    let m = &stored.model;
    let t = tokenized(m, st, text)?;
    let adapter = fresh(st, m.config())?;
    let mut trainer = trainer(m, gpu, adapter.clone(), None, train_config(st), 0).await?;
    let on_gpu = trainer.device() == TrainDevice::Gpu;
    // The GPU: a warm-up step, then the mean of three; the CPU: the later half of six.
    let probes = if on_gpu { 4 } else { PROBE_STEPS };
    let batches: Vec<Batch> =
        (0..probes).map(|k| t.data.batch(st.batch, k, st.seed)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let mut ms = Vec::new();
    for b in &batches {
        let t0 = now_ms();
        trainer.step_async(b).await.map_err(|e| e.to_string())?;
        ms.push(now_ms() - t0);
        yield_now().await;
    }
    let late = if on_gpu { &ms[1..] } else { &ms[ms.len() / 2..] };
    let step_ms = late.iter().sum::<f64>() / late.len() as f64;
    let held_ms = match t.held.batches.first() {
        Some(b) => {
            let t0 = now_ms();
            trainer.loss_async(b).await.map_err(|e| e.to_string())?;
            (now_ms() - t0) * t.held.windows as f64 / b.batch as f64
        }
        None => 0.0,
    };
    yield_now().await;
    let sample_ms = timed(async { off_and_on(m, adapter, &st.prompt, st.seed).map(drop) }).await?;
    let costs = Costs { step_ms, held_ms, sample_ms };
    let backend = if on_gpu { "WebGPU" } else { "CPU" };
    Ok(crate::protocol::train::Estimate { seconds: time_left_ms(st, 0, costs) / 1000.0, step_ms, backend: backend.into() })
}
