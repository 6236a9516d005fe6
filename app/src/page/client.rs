//! The page's end of the worker: starts it, queues messages until it listens, and turns its
//! replies into page state. A worker that dies (out of memory, say) is started again.

use std::cell::RefCell;

use js_sys::Array;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use super::state::{Ctx, Progress, Status};
use crate::protocol::{FromWorker, Source, ToWorker};

/// Trunk's loader shim for the worker binary, next to the page.
const WORKER_URL: &str = "worker_loader.js";
/// A worker that keeps dying is not restarted forever.
const MAX_RESTARTS: u32 = 2;

struct Client {
    worker: Worker,
    listening: bool,
    queue: Vec<JsValue>,
    restarts: u32,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

thread_local! {
    static CLIENT: RefCell<Option<Client>> = const { RefCell::new(None) };
}

/// Starts the worker and asks it for the bundled model.
pub fn start(ctx: Ctx, restarts: u32) {
    let worker = match Worker::new(WORKER_URL) {
        Ok(w) => w,
        Err(_) => {
            ctx.status.set(Status::Error("This browser could not start the engine (Web Workers are blocked).".into()));
            return;
        }
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        // Only inspections come with binary parts.
        if let Some(parts) = ev.data().dyn_ref::<Array>() {
            return super::inspect::receive_parts(parts);
        }
        if let Some(msg) = ev.data().as_string().and_then(|t| FromWorker::from_json(&t).ok()) {
            receive(ctx, msg);
        }
    });
    let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |ev: ErrorEvent| crashed(ctx, ev.message()));
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let old = CLIENT.with(|c| {
        c.borrow_mut().replace(Client {
            worker,
            listening: false,
            queue: Vec::new(),
            restarts,
            _on_message: on_message,
            _on_error: on_error,
        })
    });
    if let Some(old) = old {
        old.worker.terminate();
    }
    send(&ToWorker::Load { source: Source::Bundled, choice: ctx.choice.get_untracked() }, &[]);
}

/// Sends a message, with files beside it.
pub fn send(msg: &ToWorker, files: &[JsValue]) {
    let text = JsValue::from_str(&msg.to_json());
    let data = if files.is_empty() {
        text
    } else {
        let parts = Array::of1(&text);
        files.iter().for_each(|f| {
            parts.push(f);
        });
        parts.into()
    };
    CLIENT.with(|c| {
        let mut c = c.borrow_mut();
        let Some(client) = c.as_mut() else { return };
        if client.listening {
            let _ = client.worker.post_message(&data);
        } else {
            client.queue.push(data);
        }
    });
}

fn crashed(ctx: Ctx, what: String) {
    let restarts = CLIENT.with(|c| c.borrow().as_ref().map_or(0, |c| c.restarts));
    ctx.models.set(Vec::new());
    ctx.active.set(None);
    ctx.progress.set(None);
    if restarts >= MAX_RESTARTS {
        ctx.status.set(Status::Error(format!("The engine stopped ({what}). Reload the page to try again.")));
        return;
    }
    start(ctx, restarts + 1);
    ctx.status.set(Status::Error(format!(
        "The engine stopped unexpectedly ({what}); the model may be too large for this device. It was \
         restarted with stories260K."
    )));
}

fn receive(ctx: Ctx, msg: FromWorker) {
    match msg {
        FromWorker::Started => CLIENT.with(|c| {
            if let Some(client) = c.borrow_mut().as_mut() {
                client.listening = true;
                for data in client.queue.drain(..) {
                    let _ = client.worker.post_message(&data);
                }
            }
        }),
        FromWorker::Progress { label, done, total } => {
            // Only a load the reader started shows here (an error message stays up).
            if ctx.loading() {
                ctx.status.set(Status::Loading(label.clone()));
            }
            ctx.progress.set(Some(Progress { label, done, total }));
        }
        FromWorker::Loaded { models, active, backend } => {
            let name = models.iter().find(|m| m.id == active).map_or(String::new(), |m| m.name.clone());
            super::storage_panel::loaded(ctx, &models, active);
            ctx.models.set(models);
            ctx.active.set(Some(active));
            super::train::model_changed();
            ctx.backend.set(Some(backend));
            ctx.progress.set(None);
            if ctx.loading() {
                ctx.status.set(Status::Ready(format!("Ready: {name}. Press Generate.")));
            }
            super::memory::save(&ctx.models.get_untracked(), active);
            continue_restore(ctx);
        }
        FromWorker::LoadFailed { message, active } => {
            ctx.active.set(active);
            ctx.progress.set(None);
            ctx.status.set(Status::Error(message));
            continue_restore(ctx);
        }
        FromWorker::Text { run, prompt, story, stats } if run == ctx.run_id.get_untracked() => {
            if !prompt.is_empty() {
                ctx.out_prompt.update(|s| s.push_str(&prompt));
            }
            if !story.is_empty() {
                ctx.out_story.update(|s| s.push_str(&story));
            }
            ctx.stats.set(Some(stats));
            ctx.status.set(Status::Running(stats));
        }
        FromWorker::Finished { run, stats, stopped } if run == ctx.run_id.get_untracked() => {
            ctx.stats.set(Some(stats));
            if ctx.running() {
                ctx.status.set(Status::Done { stats, stopped });
            }
        }
        FromWorker::RunFailed { run, message } if run == ctx.run_id.get_untracked() => {
            ctx.status.set(Status::Error(message));
        }
        FromWorker::InspectFailed { id, message } => super::inspect::failed(id, message),
        FromWorker::InspectNews(news) => super::inspect::news(news),
        FromWorker::Train(ev) => super::train::receive(ev),
        // Arrives with binary parts (see `start`), never as text alone.
        FromWorker::Inspected(_) => {}
        // Replies about runs the page has moved past.
        FromWorker::Text { .. } | FromWorker::Finished { .. } | FromWorker::RunFailed { .. } => {}
        // Benchmark results go to bench.html's own worker, never to the app.
        FromWorker::Benched(_) | FromWorker::BenchFailed { .. } => {}
    }
}

/// After each load, the next model to restore; at the end, the one to use. A file named by the
/// link can only be asked for.
fn continue_restore(ctx: Ctx) {
    let mut plan = ctx.restore.get_value();
    if !plan.queue.is_empty() {
        let next = plan.queue.remove(0);
        ctx.restore.set_value(plan);
        return super::actions::load(ctx, next, &[]);
    }
    let target = plan.target.take();
    let missing = plan.missing_file.take();
    ctx.restore.set_value(Default::default());
    let found = target.and_then(|t| ctx.models.with_untracked(|ms| ms.iter().find(|m| m.source == t).map(|m| m.id)));
    if let Some(id) = found.filter(|&id| Some(id) != ctx.active.get_untracked()) {
        // Its Loaded reply comes back here with nothing left to do but the note below.
        ctx.restore.set_value(crate::link::Restore { missing_file: missing, ..Default::default() });
        return super::actions::select(ctx, id, ctx.choice.get_untracked());
    }
    if let Some(name) = missing {
        ctx.status.set(Status::Error(format!(
            "This link was made with the model file “{name}” from the sender's computer. Load that \
             file with “Choose files” to get the same story; until then another model is used."
        )));
    }
}
