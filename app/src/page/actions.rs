//! What the buttons and keys do: each checks the page's state, updates it and messages the worker.

use js_sys::Uint8Array;
use leptos::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::File;

use super::state::{Ctx, Status};
use crate::link::{LinkState, ModelRef};
use crate::protocol::train::TrainCmd;
use crate::protocol::{Bytes, Choice, NamedBytes, Source, ToWorker, MAX_FILE_BYTES};
use crate::words;

/// Starts a run with the form's settings, unless one is running or the form is invalid.
pub fn generate(ctx: Ctx) {
    if !ctx.can_generate() {
        return;
    }
    let Some(model) = ctx.active_entry() else { return };
    let settings = match ctx.form.numbers().parse(model.config.seq_len) {
        Ok(s) => s,
        Err(message) => return ctx.status.set(Status::Error(message)),
    };
    let run = ctx.run_id.get_untracked() + 1;
    ctx.run_id.set(run);
    ctx.out_prompt.set(String::new());
    ctx.out_story.set(String::new());
    ctx.reveal.start();
    ctx.stats.set(None);
    ctx.status.set(Status::Running(Default::default()));
    // The address bar always holds the settings of the last story.
    super::browser::replace_hash(&link_state(ctx, false).encode());
    ctx.send(&ToWorker::Generate { run, prompt: ctx.form.prompt.get_untracked(), settings });
}

/// Stops the run (a story or a compare): the worker at its next token, and the page shows no
/// more of a story.
pub fn stop(ctx: Ctx) {
    if ctx.running() {
        ctx.send(&ToWorker::Stop { run: ctx.run_id.get_untracked() });
        ctx.reveal.stop();
    }
    if ctx.compare.running() {
        ctx.send(&ToWorker::Stop { run: ctx.compare.run.get_untracked() });
    }
}

/// Loads a new model; a running story is stopped first. A path already in the menu is just
/// selected again.
pub fn load(ctx: Ctx, source: Source, files: Vec<NamedBytes>) {
    let known = ctx
        .models
        .with_untracked(|ms| ms.iter().find(|m| matches!(m.source, Source::Url { .. }) && m.source == source).map(|m| m.id));
    if let Some(id) = known {
        return select(ctx, id, ctx.choice.get_untracked());
    }
    stop(ctx);
    ctx.status.set(Status::Loading("Loading the model".into()));
    ctx.send(&ToWorker::Load { source, choice: ctx.choice.get_untracked(), files });
}

/// Loads picked, dropped or stored files (the model first: a llama2.c or GGUF file, or a
/// Hugging Face folder's config.json; then its tokenizer or the folder's other files), by the
/// names the engine sees (a dropped folder's files by their path in it, "smol/config.json", so
/// the model is named for its folder): the browser reads them into JS memory, and their bytes
/// are transferred to the worker (never copied into the page's own).
pub fn load_named(ctx: Ctx, files: Vec<(String, File)>) {
    let Some((model, _)) = files.first() else { return };
    let source = Source::Files { model: model.clone(), tokenizer: files.get(1).map(|f| f.0.clone()) };
    read_and_load(ctx, source, files);
}

/// `load_named` for files that come from `source` (a stored shelf model), by their own names.
pub fn load_files_as(ctx: Ctx, source: Source, files: Vec<File>) {
    read_and_load(ctx, source, files.into_iter().map(|f| (f.name(), f)).collect());
}

fn read_and_load(ctx: Ctx, source: Source, files: Vec<(String, File)>) {
    let Some((model, _)) = files.first() else { return };
    for (name, f) in &files {
        let size = f.size() as u64;
        if size > MAX_FILE_BYTES {
            return ctx.load_failed(words::too_large(name, size));
        }
    }
    stop(ctx);
    ctx.status.set(Status::Loading(format!("Reading {model}")));
    wasm_bindgen_futures::spawn_local(async move {
        let mut named = Vec::with_capacity(files.len());
        for (name, f) in files {
            match JsFuture::from(f.array_buffer()).await {
                Ok(buf) => named.push(NamedBytes { name, bytes: Bytes::from_array(Uint8Array::new(&buf)) }),
                Err(_) => {
                    return ctx.load_failed(format!(
                        "Could not read the file “{name}”: the browser refused (was it moved or deleted?)."
                    ))
                }
            }
        }
        load(ctx, source, named);
    });
}

/// Switches to a model of the menu, or the active one to another backend.
pub fn select(ctx: Ctx, model: u32, choice: Choice) {
    stop(ctx);
    ctx.loading_from(None);
    ctx.choice.set(choice);
    ctx.status.set(Status::Loading("Switching".into()));
    ctx.send(&ToWorker::Select { model, choice });
}

/// The link that reproduces the current form with the active model and its adapter; `run`: it
/// writes the story as soon as it opens.
pub fn link_state(ctx: Ctx, run: bool) -> LinkState {
    let f = ctx.form;
    LinkState {
        model: ctx
            .active_entry()
            .map_or(ModelRef::Bundled, |m| built_ref(ctx, &m.source).unwrap_or_else(|| ModelRef::of(&m.source))),
        prompt: f.prompt.get_untracked(),
        temperature: f.temperature.get_untracked(),
        topp: f.topp.get_untracked(),
        seed: f.seed.get_untracked(),
        steps: f.steps.get_untracked(),
        backend: ctx.choice.get_untracked(),
        present: ctx.present.get_untracked(),
        adapter: ctx.adapter.get_untracked(),
        run,
    }
}

/// A model file grown in the Build view, named with its hash so a reload (or a reader who
/// kept the same model) finds it again.
fn built_ref(ctx: Ctx, source: &Source) -> Option<ModelRef> {
    let Source::Files { model, .. } = source else { return None };
    let hash = ctx.built.with_value(|b| b.iter().find(|(n, _)| n == model).map(|(_, h)| h.clone()))?;
    Some(ModelRef::Built { name: model.clone(), hash })
}

/// Puts the link in the address bar and on the clipboard, and shows it for copying by hand.
pub fn copy_link(ctx: Ctx, run: bool) {
    let hash = link_state(ctx, run).encode();
    super::browser::replace_hash(&hash);
    let url = super::browser::current_url();
    super::browser::copy_text(&url);
    ctx.link.set(Some(url));
}

/// Generate writes with the plain model again.
pub fn adapter_off(ctx: Ctx) {
    ctx.send(&ToWorker::Train(TrainCmd::Use { adapter: None }));
}

/// Presentation mode on or off; each brings its own reading pace (the typewriter for a class).
pub fn toggle_present(ctx: Ctx) {
    ctx.present.update(|p| *p = !*p);
    ctx.reveal.pace.set(super::pacing::ReadingPace::default_for(ctx.present.get_untracked()));
}
