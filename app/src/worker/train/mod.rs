//! Train: the Train view's commands. A run (`run`) trains through the engine's one trainer
//! choice (`lora::AnyTrainer`: on WebGPU when the model runs there, else on the CPU); the rest
//! are the adapter jobs: checking an upload, putting an adapter in use for Generate, the
//! library's comparison, logits with an adapter, and a run's time estimate.

mod run;
mod samples;

use std::sync::Arc;

use tinylm_engine::generate::Backend;
use tinylm_engine::lora::Adapter;
use tinylm_engine::LoadedModel;

use super::bridge::post;
use super::cancel::Cancel;
use super::session::Session;
use super::store::Stored;
use crate::protocol::train::{BaseId, Ending, Peft, StartRun, TrainCmd, TrainEvent};
use crate::protocol::{Choice, FromWorker};
use crate::train::{adapter_error, adapter_hash, adapter_info, read_adapter, read_adapter_on, split};
use crate::words;
use samples::off_and_on;

fn send(ev: TrainEvent) {
    post(&FromWorker::Train(ev));
}

pub async fn handle(s: &mut Session, cmd: TrainCmd, cancel: &Cancel<Ending>) {
    match cmd {
        TrainCmd::Start(start) => {
            let StartRun { job, name, text, settings, resume } = *start;
            let job_run = run::Run { job, name, settings };
            if let Err(message) = run::train(s, job_run, &text, resume, cancel).await {
                send(TrainEvent::Failed { job, message });
            }
        }
        // Acted on when they arrived (`router::on_arrival`).
        TrainCmd::Pause { .. } | TrainCmd::Stop { .. } => {}
        TrainCmd::Check { req, adapter } => {
            let result = s.active().and_then(|(m, _)| {
                Ok((adapter_info(&read_adapter_on(&adapter, m.model.config(), Some(&m.base.name))?), m.base.clone()))
            });
            send(TrainEvent::Checked { req, result });
        }
        TrainCmd::Count { text } => {
            if let Ok((m, _)) = s.active() {
                send(count(m, &text));
            }
        }
        TrainCmd::Use { adapter } => use_adapter(s, adapter).await,
        TrainCmd::Compare { name, base, adapter, prompt, seed } => {
            let result = s.active().and_then(|(m, _)| {
                if base.hash != m.base.hash {
                    return Err(words::adapter_not_for(Some(&name), Some(&base.name), Some(&m.base.name)));
                }
                let a = read_adapter_on(&adapter, m.model.config(), Some(&m.base.name))?;
                off_and_on(&m.model, a, &prompt, seed)
            });
            send(TrainEvent::Compared { name, result });
        }
        TrainCmd::Estimate { req, text, settings } => {
            let result = run::estimate(s, &text, &settings).await;
            send(TrainEvent::Estimated { req, result });
        }
        TrainCmd::Logits { req, tokens, adapter } => {
            let result = s.active().and_then(|(m, _)| logits(&m.model, &tokens, adapter.as_ref()));
            send(TrainEvent::Logits { req, result });
        }
    }
}

/// How many tokens the text makes for training and held out (`Count`, job 0).
fn count(m: &Stored, text: &str) -> TrainEvent {
    let (train, held) = split(text);
    let n = |t: &str| match (t.is_empty(), m.model.tokenizer()) {
        (false, Some(tok)) => tok.encode(t, true, false).len(),
        _ => 0,
    };
    let (train_tokens, held_tokens) = (n(train), n(held));
    let train_chars = train.chars().count();
    TrainEvent::Data { job: 0, train_tokens, held_tokens, train_chars, windows: 0, held_windows: 0, base: m.base.clone() }
}

/// Generate uses `adapter` with the active model (unmerged on the CPU, merged on the GPU) or
/// none: the model restarts on its backend with it, and every later restart keeps it.
async fn use_adapter(s: &mut Session, adapter: Option<(String, BaseId, Peft)>) {
    let checked = (|| {
        let (m, a) = s.active()?;
        let Some((name, base, p)) = adapter else { return Ok((a.id, None)) };
        // By the file's hash: the same file under another menu name ("stories260K (2)") is the same model.
        if base.hash != m.base.hash {
            return Err(words::adapter_not_for(Some(&name), Some(&base.name), Some(&m.base.name)));
        }
        let hash = adapter_hash(&p);
        Ok((a.id, Some((name, hash, read_adapter_on(&p, m.model.config(), Some(&m.base.name))?))))
    })();
    let (id, chosen) = match checked {
        Ok(c) => c,
        // Nothing changed: the page hears the reason and what is still in use.
        Err(e) => {
            let (name, hash) = s.active().ok().map_or((None, None), |(m, _)| (m.adapter_name.clone(), m.adapter_hash.clone()));
            return send(TrainEvent::Using { name, hash, error: Some(e) });
        }
    };
    // The reader's choice again (Auto measures again, or reuses what it kept).
    let choice = s.active.as_ref().map_or(Choice::Auto, |a| a.choice);
    let result = set_adapter(s, id, chosen);
    let result = match result {
        Ok(()) => s.activate(id, choice).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = set_adapter(s, id, None);
    }
    // On success this also announces the adapter (see `Session::report`).
    s.report(result.clone());
    if let Err(e) = result {
        send(TrainEvent::Using { name: None, hash: None, error: Some(e) });
    }
}

fn set_adapter(s: &mut Session, id: u32, chosen: Option<(String, String, Adapter)>) -> Result<(), String> {
    let m = s.store.get_mut(id)?;
    let (name, hash, adapter) = chosen.map_or((None, None, None), |(n, h, a)| (Some(n), Some(h), Some(a)));
    m.model.set_adapter(adapter).map_err(|e| adapter_error(&e))?;
    m.adapter_name = name;
    m.adapter_hash = hash;
    Ok(())
}

/// Logits at every position of `tokens` (CPU path), with the adapter unmerged.
fn logits(m: &LoadedModel, tokens: &[u32], adapter: Option<&Peft>) -> Result<Vec<Vec<f32>>, String> {
    let c = *m.config();
    if tokens.is_empty() || tokens.len() > c.seq_len {
        return Err(format!("Give between 1 and {} token ids.", c.seq_len));
    }
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
        return Err(format!("Token id {bad} is not in this model's vocabulary of {}.", c.vocab_size));
    }
    let adapter = adapter.map(|p| read_adapter(p, &c)).transpose()?;
    if let Some(a) = &adapter {
        a.check_base(&c).map_err(|e| adapter_error(&e))?;
    }
    let mut backend = m.cpu_with(adapter.map(Arc::new));
    let mut out = Vec::with_capacity(tokens.len());
    for (pos, &t) in tokens.iter().enumerate() {
        out.push(backend.forward(t, pos).map_err(|e| e.to_string())?.to_vec());
    }
    Ok(out)
}
