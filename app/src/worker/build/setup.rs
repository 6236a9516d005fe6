//! What every piece of Build work shares: the messages out, the settings as the engine's, the
//! text cut into training and held-out windows, and the samples' settings.

use tinylm_engine::lora::{Dataset, HeldOut};
use tinylm_engine::pretrain::{Hyper, Schedule, ScheduleKind};
use tinylm_engine::{Config, Tokenizer};

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
