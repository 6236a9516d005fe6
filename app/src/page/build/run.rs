//! What the Build view's buttons do, and what it does with the worker's news: start (the text
//! and tok512 fetched, the settings checked), pause, resume (from the checkpoint kept in OPFS,
//! after a reload too), stop; each checkpoint saved with the run's history; at the end the
//! model joins the model menu.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::Response;

use super::state::{model_hash, BuildCtx, History, Kept, Phase};
use crate::page::train::data::CORPORA;
use crate::page::train::store::{read_in, remove_in, write_in};
use crate::page::{actions, browser};
use crate::protocol::build::{shape, BuildCmd, BuildEvent, BuildSettings, BuildStart};
use crate::protocol::train::Ending;
use crate::protocol::{Bytes, NamedBytes, Source};

/// The run's OPFS folder and files.
pub const FOLDER: &str = "tinylm-build";
const CHECKPOINT: &str = "checkpoint.safetensors";
const RUN: &str = "run.json";
pub const TOKENIZER: &str = "models/tok512.bin";

/// The form as settings, or what is wrong in words.
pub fn settings(b: BuildCtx) -> Result<BuildSettings, String> {
    let f = b.form;
    let num = |s: RwSignal<String>, what: &str| -> Result<f64, String> {
        s.get_untracked().trim().parse::<f64>().map_err(|_| format!("{what} must be a number."))
    };
    let whole = |s: RwSignal<String>, what: &str, lo: u64, hi: u64| -> Result<u64, String> {
        match s.get_untracked().trim().parse::<u64>() {
            Ok(v) if (lo..=hi).contains(&v) => Ok(v),
            _ => Err(format!("{what} must be a whole number from {lo} to {hi}.")),
        }
    };
    let shape_key = f.shape.get_untracked();
    shape(&shape_key).ok_or("Pick a shape.")?;
    let lr = num(f.lr, "The learning rate")?;
    if !(lr > 0.0 && lr <= 1.0) {
        return Err("The learning rate must be above 0 and at most 1.".into());
    }
    let device = f.device.get_untracked();
    if !matches!(device.as_str(), "cpu" | "gpu") {
        return Err("Pick where to train.".into());
    }
    let z_loss = num(f.z_loss, "The z-loss")?;
    if !(0.0..=1.0).contains(&z_loss) {
        return Err("The z-loss must be from 0 to 1.".into());
    }
    Ok(BuildSettings {
        shape: shape_key,
        steps: whole(f.steps, "Steps", 1, 1_000_000)? as u32,
        lr,
        warmup: whole(f.warmup, "Warm-up", 0, 1_000_000)? as u32,
        batch: whole(f.batch, "Windows per step", 1, 256)? as usize,
        seq: whole(f.seq, "Window length", 2, 256)? as usize,
        data_seed: 1234,
        z_loss,
        sample_every: whole(f.sample_every, "Sample every", 1, 1_000_000)? as u32,
        prompt: f.prompt.get_untracked(),
        device,
    })
}

pub async fn fetch_bytes(url: &str) -> Option<Vec<u8>> {
    let resp: Response = JsFuture::from(browser::window().fetch_with_str(url)).await.ok()?.dyn_into().ok()?;
    if !resp.ok() {
        return None;
    }
    let buf = JsFuture::from(resp.array_buffer().ok()?).await.ok()?;
    Some(js_sys::Uint8Array::new(&buf).to_vec())
}

/// The chosen text and how to name it.
pub async fn text(b: BuildCtx) -> Result<(String, String), String> {
    let key = b.form.corpus.get_untracked();
    if key == "own" {
        let t = b.form.own_text.get_untracked();
        return if t.trim().is_empty() { Err("Paste or type a text to train on.".into()) } else { Ok((t, "your text".into())) };
    }
    let c = CORPORA.iter().find(|c| c.key == key).ok_or("Pick a text.")?;
    let bytes = fetch_bytes(c.file).await.ok_or_else(|| format!("Could not load {}.", c.file))?;
    Ok((String::from_utf8_lossy(&bytes).into_owned(), format!("{} — {}", c.title, c.licence)))
}

/// Start: a new run from random weights (any kept run is replaced).
pub fn start(b: BuildCtx) {
    let s = match settings(b) {
        Ok(s) => s,
        Err(e) => return b.note.set(e),
    };
    b.note.set(String::new());
    spawn_local(async move {
        let (text, label) = match text(b).await {
            Ok(t) => t,
            Err(e) => return b.note.set(e),
        };
        remove_in(FOLDER, CHECKPOINT).await;
        remove_in(FOLDER, RUN).await;
        b.saved_step.set(None);
        b.timing.set(None);
        b.history.set(History::default());
        b.model.set(None);
        b.model_name.set(None);
        launch(b, s, text, label, None).await;
    });
}

/// Resume: the run kept on this device continues from its checkpoint.
pub fn resume(b: BuildCtx) {
    spawn_local(async move {
        let (Some(kept), Some(state)) = (load_kept().await, read_in(FOLDER, CHECKPOINT).await) else {
            b.phase.set(Phase::Idle);
            return b.note.set("The kept run could not be read; start a new one.".into());
        };
        b.history.update(|h| h.truncate(kept.step));
        launch(b, kept.settings, kept.text, kept.text_label, Some(state)).await;
    });
}

async fn launch(b: BuildCtx, s: BuildSettings, text: String, label: String, resume: Option<Vec<u8>>) {
    let Some(tok) = fetch_bytes(TOKENIZER).await else {
        return b.note.set(format!("Could not load {TOKENIZER}."));
    };
    let job = b.job.get_untracked() + 1;
    b.job.set(job);
    b.device.set(None);
    b.phase.set(Phase::Running);
    b.run.set(Some((s.clone(), text.clone(), label)));
    let start =
        BuildStart { job, settings: s, text, tokenizer: Bytes::from_slice(&tok), resume: resume.map(|r| Bytes::from_slice(&r)) };
    b.send(BuildCmd::Start(Box::new(start)));
}

pub fn pause(b: BuildCtx) {
    b.phase.set(Phase::Ending);
    b.send(BuildCmd::Pause { job: b.job.get_untracked() });
}

pub fn stop(b: BuildCtx) {
    b.phase.set(Phase::Ending);
    b.send(BuildCmd::Stop { job: b.job.get_untracked() });
}

async fn load_kept() -> Option<Kept> {
    serde_json::from_slice(&read_in(FOLDER, RUN).await?).ok()
}

/// A run kept from an earlier visit is shown, ready to resume.
pub async fn restore(b: BuildCtx) {
    let Some(kept) = load_kept().await else { return };
    if read_in(FOLDER, CHECKPOINT).await.is_none() {
        return;
    }
    let f = b.form;
    let s = &kept.settings;
    // Every field as the run was started (the experiment and a new run start from them).
    f.shape.set(s.shape.clone());
    f.steps.set(s.steps.to_string());
    f.lr.set(s.lr.to_string());
    f.warmup.set(s.warmup.to_string());
    f.batch.set(s.batch.to_string());
    f.seq.set(s.seq.to_string());
    f.z_loss.set(s.z_loss.to_string());
    f.sample_every.set(s.sample_every.to_string());
    f.prompt.set(s.prompt.clone());
    f.device.set(s.device.clone());
    b.history.set(kept.history.clone());
    b.saved_step.set(Some(kept.step));
    b.run.set(Some((kept.settings, kept.text, kept.text_label)));
    b.phase.set(Phase::Paused);
}

/// Saves a checkpoint and the history up to it (the checkpoint first: a run file always
/// names a checkpoint at least as new).
fn keep(b: BuildCtx, step: u32, state: Bytes) {
    let Some((settings, text, text_label)) = b.run.get_untracked() else { return };
    let mut history = b.history.get_untracked();
    history.truncate(step);
    let kept = Kept { settings, text, text_label, step, history };
    spawn_local(async move {
        let saved = async {
            write_in(FOLDER, CHECKPOINT, &state.to_vec()).await?;
            let json = serde_json::to_vec(&kept).map_err(|e| e.to_string())?;
            write_in(FOLDER, RUN, &json).await
        };
        match saved.await {
            Ok(()) => b.saved_step.set(Some(step)),
            Err(e) => b.note.set(e),
        }
    });
}

/// A message from the worker about the current run, or an estimate.
pub fn receive(b: BuildCtx, ev: BuildEvent) {
    let current = |job: u64| job == b.job.get_untracked();
    match ev {
        BuildEvent::Estimated { req, result } if req == b.estimate_req.get_untracked() => b.estimate.set(Some(result)),
        BuildEvent::Data { job, train_bytes, train_tokens, held_tokens, params } if current(job) => {
            b.data.set(Some((train_bytes, train_tokens, held_tokens, params)))
        }
        BuildEvent::Device { job, name } if current(job) => b.device.set(Some(name)),
        BuildEvent::Step { job, m } if current(job) => b.history.update(|h| {
            h.truncate(m.step - 1);
            h.steps.push(m);
        }),
        BuildEvent::Held { job, step, loss } if current(job) => b.history.update(|h| {
            h.held.retain(|x| x.0 != step);
            h.held.push((step, loss));
        }),
        BuildEvent::Sample { job, step, text } if current(job) => b.history.update(|h| {
            h.samples.retain(|x| x.0 != step);
            h.samples.push((step, text));
        }),
        BuildEvent::Checkpoint { job, step, state } if current(job) => keep(b, step, state),
        BuildEvent::Ended { job, ending, step, model, timing } if current(job) => {
            let bytes = model.to_vec();
            b.timing.set(Some(timing));
            b.phase.set(Phase::ended(ending));
            if ending != Ending::Paused {
                b.model_name.set(None);
                b.model.set(Some((step, bytes)));
                b.model_name.set(Some(file_name(b)));
            }
            if ending == Ending::Finished {
                join_menu(b);
            }
        }
        BuildEvent::Failed { job, message } if current(job) => b.phase.set(Phase::Failed(message)),
        _ => {}
    }
}

/// The model's file name, e.g. `built-s30k-300.bin`.
pub fn file_name(b: BuildCtx) -> String {
    if let Some(name) = b.model_name.get_untracked() {
        return name;
    }
    let shape = b.run.with_untracked(|r| r.as_ref().map(|r| r.0.shape.clone())).unwrap_or_default();
    let step = b.model.with_untracked(|m| m.as_ref().map_or(0, |m| m.0));
    format!("built-{shape}-{step}.bin")
}

/// The model joins the model menu (with tok512) and becomes the active one.
pub fn join_menu(b: BuildCtx) {
    let Some((_, bytes)) = b.model.get_untracked() else { return };
    spawn_local(to_menu(b, file_name(b), bytes));
}

/// A llama2.c file named `name` joins the model menu (with tok512) and becomes the active one.
pub async fn to_menu(b: BuildCtx, name: String, bytes: Vec<u8>) {
    let Some(tok) = fetch_bytes(TOKENIZER).await else {
        return b.note.set(format!("Could not load {TOKENIZER}."));
    };
    let hash = model_hash(&bytes);
    b.ctx.built.update_value(|v| {
        v.retain(|(n, _)| *n != name);
        v.push((name.clone(), hash));
    });
    let files = vec![
        NamedBytes { name: name.clone(), bytes: Bytes::from_slice(&bytes) },
        NamedBytes { name: "tok512.bin".into(), bytes: Bytes::from_slice(&tok) },
    ];
    actions::load(b.ctx, Source::Files { model: name, tokenizer: Some("tok512.bin".into()) }, files);
}

/// Measures the form's run again once its shape and sizes have been still for a moment (never
/// during a run or the experiment: the worker does one thing at a time).
pub fn watch_estimate(b: BuildCtx) {
    let f = b.form;
    Effect::new(move |_| {
        for s in [f.shape, f.steps, f.batch, f.seq, f.sample_every, f.lr, f.warmup, f.z_loss, f.device] {
            s.track();
        }
        let busy = b.busy();
        if busy {
            return;
        }
        let req = b.estimate_req.get_untracked() + 1;
        b.estimate_req.set(req);
        b.estimate.set(None);
        let settings = match settings(b) {
            Ok(s) => s,
            Err(e) => return b.estimate.set(Some(Err(e))),
        };
        set_timeout(
            move || {
                if b.estimate_req.get_untracked() == req && !b.busy() {
                    b.send(BuildCmd::Estimate { req, settings });
                }
            },
            std::time::Duration::from_millis(500),
        );
    });
}

pub fn download(b: BuildCtx) {
    let Some((_, bytes)) = b.model.get_untracked() else { return };
    if let Err(e) = browser::save_file(&file_name(b), &bytes, "application/octet-stream") {
        b.note.set(format!("The download failed: {e}"));
    }
}
