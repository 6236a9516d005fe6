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

/// Stops the run: the worker at its next token, and the page shows no more of it.
pub fn stop(ctx: Ctx) {
    if ctx.running() {
        ctx.send(&ToWorker::Stop { run: ctx.run_id.get_untracked() });
        ctx.reveal.stop();
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

/// Loads picked, dropped or stored files (the model first): the browser reads them into JS
/// memory, and their bytes are transferred to the worker (never copied into the page's own).
pub fn load_files(ctx: Ctx, model: File, tokenizer: Option<File>) {
    let source = Source::Files { model: model.name(), tokenizer: tokenizer.as_ref().map(File::name) };
    load_files_as(ctx, source, model, tokenizer);
}

/// `load_files` for files that come from `source` (a stored shelf model).
pub fn load_files_as(ctx: Ctx, source: Source, model: File, tokenizer: Option<File>) {
    let size = model.size() as u64;
    if size > MAX_FILE_BYTES {
        return ctx.status.set(Status::Error(words::too_large(&model.name(), size)));
    }
    let files: Vec<File> = std::iter::once(model.clone()).chain(tokenizer).collect();
    stop(ctx);
    ctx.status.set(Status::Loading(format!("Reading {}", model.name())));
    wasm_bindgen_futures::spawn_local(async move {
        let mut named = Vec::with_capacity(files.len());
        for f in &files {
            match JsFuture::from(f.array_buffer()).await {
                Ok(buf) => named.push(NamedBytes { name: f.name(), bytes: Bytes::from_array(Uint8Array::new(&buf)) }),
                Err(_) => {
                    return ctx.status.set(Status::Error(format!(
                        "Could not read the file “{}”: the browser refused (was it moved or deleted?).",
                        f.name()
                    )))
                }
            }
        }
        load(ctx, source, named);
    });
}

/// Switches to a model of the menu, or the active one to another backend.
pub fn select(ctx: Ctx, model: u32, choice: Choice) {
    stop(ctx);
    ctx.choice.set(choice);
    ctx.status.set(Status::Loading("Switching".into()));
    ctx.send(&ToWorker::Select { model, choice });
}

/// The link that reproduces the current form with the active model and its adapter; `run`: it
/// writes the story as soon as it opens.
pub fn link_state(ctx: Ctx, run: bool) -> LinkState {
    let f = ctx.form;
    LinkState {
        model: ctx.active_entry().map_or(ModelRef::Bundled, |m| ModelRef::of(&m.source)),
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
