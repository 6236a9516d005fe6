//! What every piece of Build work shares: the messages out, the settings as the engine's, the
//! text cut into training and held-out windows, and the samples' settings.

use tinylm_engine::lora::{Dataset, HeldOut};
use tinylm_engine::pretrain::{Hyper, PretrainBackend, Schedule, ScheduleKind, Trainer};
use tinylm_engine::{Config, Tokenizer, Weights};

use super::super::backends::adapter_label;
use super::super::bridge::post;
use crate::protocol::build::{BuildEvent, BuildSettings};
use crate::protocol::FromWorker;
use crate::train::split;

/// At most this many held-out windows (spread evenly, as the Train view's `HeldOut`).
pub const HELD_MAX: usize = 64;
/// Tokens of each sample (the prompt's included).
pub const SAMPLE_TOKENS: usize = 48;
/// The samples' sampler: the same seed at every step, so only the weights change them.
pub const SAMPLE_TEMPERATURE: f32 = 0.8;
pub const SAMPLE_SEED: u64 = 42;

pub fn send(ev: BuildEvent) {
    post(&FromWorker::Build(ev));
}

/// The settings as the engine's (`tinylm pretrain`'s defaults for the rest: cosine to 0,
/// betas 0.9/0.95, weight decay 0.1, clipping at 1).
pub fn hyper(s: &BuildSettings) -> Hyper {
    let d = Hyper::default();
    let schedule = Schedule { kind: ScheduleKind::Cosine, lr: s.lr, min_lr: 0.0, warmup: s.warmup, steps: s.steps };
    Hyper { schedule, z_loss: s.z_loss, ..d }
}

/// Where a run starts: new at `w` with `hyper`, or a checkpoint's bytes.
#[derive(Clone, Copy)]
pub enum From<'a> {
    Fresh(&'a Weights, Hyper),
    Checkpoint(&'a [u8]),
}

/// The run's trainer: on WebGPU when the settings ask for it and the GPU can train, else on the
/// CPU; with where it trains in words (and why not on WebGPU, when asked and refused).
pub async fn open_trainer(s: &BuildSettings, from: From<'_>) -> Result<(Trainer, String), String> {
    let on = |b: PretrainBackend| async move {
        match from {
            From::Fresh(w, h) => Trainer::open_async(b, w, h, None).await,
            From::Checkpoint(bytes) => Trainer::from_snapshot_async(b, bytes, "checkpoint").await,
        }
    };
    let mut why = None;
    if s.device == "gpu" {
        match on(PretrainBackend::Gpu).await {
            Ok(t) => {
                // wgpu names no adapter on the web: the browser's own words.
                let name = match adapter_label().await {
                    Some(label) => format!("WebGPU ({label})"),
                    None => "WebGPU".into(),
                };
                return Ok((t, name));
            }
            Err(e) => why = Some(format!("WebGPU could not train: {e}")),
        }
    }
    let t = on(PretrainBackend::Cpu).await.map_err(|e| e.to_string())?;
    let name = match why {
        Some(w) => format!("the CPU ({w})"),
        None => "the CPU".into(),
    };
    Ok((t, name))
}

/// The text's windows: training on the first nine tenths (`train::split`), held out the rest.
pub struct Data {
    pub train: Dataset,
    pub held: HeldOut,
}

pub fn data(tok: &Tokenizer, text: &str, s: &BuildSettings, c: &Config, job: u64) -> Result<Data, String> {
    let (train_text, held_text) = split(text);
    let train = Dataset::from_text(tok, train_text, s.seq, c)
        .map_err(|e| format!("The text is too short to train on with windows of {} tokens ({e}). Use more text.", s.seq))?;
    let held = match Dataset::from_text(tok, held_text, s.seq, c) {
        Ok(d) if !held_text.is_empty() => HeldOut::new(&d, HELD_MAX).map_err(|e| e.to_string())?,
        _ => HeldOut::none(s.seq),
    };
    let held_tokens = held.windows * held.seq;
    let train_tokens = train.len() * s.seq;
    send(BuildEvent::Data { job, train_bytes: train_text.len(), train_tokens, held_tokens, params: c.n_params() });
    Ok(Data { train, held })
}
