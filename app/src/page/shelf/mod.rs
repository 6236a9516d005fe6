//! The model shelf in the model card: the site's list (`crate::shelf`), which of its models are
//! stored on this device, a download in progress (the worker fetches, verifies and stores it:
//! `worker/shelf.rs`), downloads an earlier visit left half done (Resume or Discard) and a link
//! that names a shelf model. `card` draws it.

mod card;

pub use card::ShelfCard;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::actions;
use super::client::Handler;
use super::state::{Ctx, Status};
use crate::protocol::shelf::{Download, FetchFile, ShelfCmd, ShelfEvent};
use crate::protocol::{FromWorker, Source, ToWorker};
use crate::shelf::{self, Shelf, ShelfModel, LIST};
use crate::storage::partial::{self, Unfinished};
use crate::storage::{self, Entry, Kind};

/// The list's name for the bundled model's file (loaded as `Source::Bundled`).
const BUNDLED_SITE_MODEL: &str = "models/stories260K.bin";

/// The shelf's state, provided as context (made under the app's owner, so it outlives tabs).
#[derive(Clone, Copy)]
pub struct ShelfState {
    ctx: Ctx,
    /// The list, or why it could not be read.
    list: RwSignal<Option<Result<Shelf, String>>>,
    /// Shelf models stored on this device: (shelf name, storage id).
    stored: RwSignal<Vec<(String, String)>>,
    /// Downloads that stopped before the end (a reload, a broken connection), kept for Resume.
    unfinished: RwSignal<Vec<Unfinished>>,
    busy: RwSignal<Option<Busy>>,
    /// (is an error, message)
    note: RwSignal<Option<(bool, String)>>,
    /// The model a link named that is not on this device yet.
    offered: RwSignal<Option<String>>,
    jobs: StoredValue<u64>,
}

/// A download in progress.
#[derive(Debug, Clone, PartialEq)]
struct Busy {
    job: u64,
    model: String,
    done: u64,
    total: u64,
    /// Bytes and time (ms) when the rate was last restarted (the start, or a resume).
    from: u64,
    since: f64,
    note: Option<String>,
}

pub fn install(ctx: Ctx) -> Handler {
    let s = ShelfState {
        ctx,
        list: RwSignal::new(None),
        stored: RwSignal::new(Vec::new()),
        unfinished: RwSignal::new(Vec::new()),
        busy: RwSignal::new(None),
        note: RwSignal::new(None),
        offered: RwSignal::new(None),
        jobs: StoredValue::new(0),
    };
    provide_context(s);
    wasm_bindgen_futures::spawn_local(async move {
        s.list.set(Some(read_list().await));
        refresh(s).await;
    });
    Box::new(move |msg| match msg {
        FromWorker::Shelf(ev) => on_event(s, ev),
        FromWorker::Loaded { .. } | FromWorker::LoadFailed { .. } => {
            if let Some(name) = ctx.restore.try_update_value(|r| r.shelf.take()).flatten() {
                wasm_bindgen_futures::spawn_local(from_link(s, name));
            }
        }
        _ => {}
    })
}

/// The engine stopped (the page restarts it): a download it was running went with it, so the
/// card is freed and says so instead of showing progress that will never come.
pub fn engine_stopped(s: ShelfState) {
    if let Some(b) = s.busy.get_untracked() {
        s.busy.set(None);
        s.note.set(Some((
            true,
            format!(
                "The download of {} stopped because the engine stopped. What arrived is kept on this device: \
                 press Resume to continue.",
                b.model
            ),
        )));
        wasm_bindgen_futures::spawn_local(refresh(s));
    }
}

async fn read_list() -> Result<Shelf, String> {
    let failed = |why: &str| format!("The model shelf could not be read ({why}).");
    let resp = JsFuture::from(super::browser::window().fetch_with_str(LIST)).await.map_err(|_| failed("no connection"))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| failed("no response"))?;
    if !resp.ok() {
        return Err(failed(&format!("HTTP {}", resp.status())));
    }
    let text = JsFuture::from(resp.text().map_err(|_| failed("no text"))?).await.map_err(|_| failed("unreadable"))?;
    shelf::parse(&text.as_string().unwrap_or_default())
}

/// The model whose download is running now, if any (its `.part` is being written).
pub fn downloading(s: ShelfState) -> Option<String> {
    s.busy.with(|b| b.as_ref().map(|b| b.model.clone()))
}

/// The store changed outside the shelf (a bundle was added, an unfinished download deleted):
/// its models may be here now, or gone.
pub fn stored_changed(s: ShelfState) {
    wasm_bindgen_futures::spawn_local(refresh(s));
}

/// Which shelf models are stored here: items whose meta names the model, holding the list's
/// model file (a changed list entry is a different file).
async fn refresh(s: ShelfState) {
    let items = storage::list(Some(Kind::Model)).await.unwrap_or_default();
    let stored = s.list.with_untracked(|l| match l {
        Some(Ok(shelf)) => shelf.models.iter().filter_map(|m| stored_copy(m, &items).map(|id| (m.name.clone(), id))).collect(),
        _ => Vec::new(),
    });
    s.stored.set(stored);
    s.unfinished.set(partial::unfinished().await.unwrap_or_default());
}

fn stored_copy(m: &ShelfModel, items: &[Entry]) -> Option<String> {
    let want = m.model_file()?.sha256.as_deref()?;
    items
        .iter()
        .rev()
        .find(|e| {
            e.meta.get("shelf").and_then(|v| v.as_str()) == Some(&m.name) && e.files.first().is_some_and(|f| f.sha256 == want)
        })
        .map(|e| e.id.clone())
}

fn on_event(s: ShelfState, ev: &ShelfEvent) {
    let mine = |job: &u64| s.busy.with_untracked(|b| b.as_ref().is_some_and(|b| b.job == *job));
    match ev {
        ShelfEvent::Progress { job, done, total, note } if mine(job) => s.busy.update(|b| {
            if let Some(b) = b {
                if note.is_some() {
                    // A resume: the rate (and so the time left) is measured afresh.
                    (b.from, b.since) = (*done, js_sys::Date::now());
                    b.note = note.clone();
                }
                (b.done, b.total) = (*done, *total);
            }
        }),
        ShelfEvent::Stored { job, model, .. } if mine(job) => {
            s.busy.set(None);
            s.offered.set(None);
            s.note.set(Some((false, format!("{model} arrived whole, matched its SHA-256 and is stored on this device."))));
            let model = model.clone();
            wasm_bindgen_futures::spawn_local(async move {
                refresh(s).await;
                use_stored(s, &model).await;
            });
        }
        ShelfEvent::Failed { job, message, .. } if mine(job) => {
            s.busy.set(None);
            s.note.set(Some((true, message.clone())));
            wasm_bindgen_futures::spawn_local(refresh(s));
        }
        ShelfEvent::Cancelled { job, model } if mine(job) => {
            s.busy.set(None);
            s.note.set(Some((false, format!("The download of {model} was cancelled; nothing was stored."))));
            wasm_bindgen_futures::spawn_local(refresh(s));
        }
        _ => {}
    }
}

/// Removes what an unfinished download of `name` left on this device (from the card or the
/// Storage tab); the note to show: (is an error, message).
pub async fn remove_unfinished(name: &str) -> (bool, String) {
    match partial::discard(name).await {
        Ok(()) => (false, crate::words::half_removed(name)),
        Err(e) => (true, e.message()),
    }
}

/// The card's Discard: `remove_unfinished`, then the card offers the download afresh.
fn discard(s: ShelfState, name: String) {
    wasm_bindgen_futures::spawn_local(async move {
        s.note.set(Some(remove_unfinished(&name).await));
        refresh(s).await;
    });
}

/// Asks the worker to fetch `name`'s files (the model first) onto this device; it continues
/// from what an unfinished download of the same files left.
fn download(s: ShelfState, name: &str) {
    if s.busy.with_untracked(Option::is_some) {
        return;
    }
    let Some(req) = s.list.with_untracked(|l| match l {
        Some(Ok(shelf)) => shelf.model(name).map(|m| request(shelf, m, 0)),
        _ => None,
    }) else {
        return;
    };
    let Some(mut req) = req else {
        return s.note.set(Some((false, format!("{name} is not offered yet: its download can't be checked."))));
    };
    let job = s.jobs.get_value() + 1;
    s.jobs.set_value(job);
    req.job = job;
    let done = s.unfinished.with_untracked(|u| u.iter().find(|u| u.model == name).map_or(0, |u| u.have));
    let busy = Busy {
        job,
        model: name.into(),
        done,
        total: req.files.iter().map(|f| f.size).sum(),
        from: done,
        since: js_sys::Date::now(),
        note: None,
    };
    s.busy.set(Some(busy));
    s.note.set(None);
    s.ctx.send(&ToWorker::Shelf(ShelfCmd::Download(req)));
}

/// The worker's request: every file's absolute address and SHA-256 (None when one is missing).
fn request(shelf: &Shelf, m: &ShelfModel, job: u64) -> Option<Download> {
    let base = super::browser::current_url();
    let files = m
        .files_in_order()
        .into_iter()
        .map(|f| {
            let url = web_sys::Url::new_with_base(&shelf::address(shelf, f), &base).ok()?.href();
            Some(FetchFile { url, name: f.file_name().into(), size: f.size, sha256: f.sha256.clone()? })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Download { job, model: m.name.clone(), params: m.params, licence: m.licence.clone(), files })
}

fn cancel(s: ShelfState) {
    if let Some(b) = s.busy.get_untracked() {
        s.ctx.send(&ToWorker::Shelf(ShelfCmd::Cancel { job: b.job }));
    }
}

/// Puts a shelf model in use: the site's own (stories260K), or the verified copy on this device.
fn use_model(s: ShelfState, name: String) {
    let site = s.list.with_untracked(|l| match l {
        Some(Ok(shelf)) => shelf.model(&name).and_then(|m| {
            let tok = m.files.iter().find(|f| f.role == crate::shelf::Role::Tokenizer).and_then(|f| f.site.clone());
            m.site_model().map(|model| (model.to_string(), tok))
        }),
        _ => None,
    });
    match site {
        Some((model, _)) if model == BUNDLED_SITE_MODEL => use_bundled(s.ctx),
        Some((model, tokenizer)) => actions::load(s.ctx, Source::Url { model, tokenizer }, Vec::new()),
        None => wasm_bindgen_futures::spawn_local(async move { use_stored(s, &name).await }),
    }
}

fn use_bundled(ctx: Ctx) {
    match ctx.models.with_untracked(|ms| ms.iter().find(|m| m.source == Source::Bundled).map(|m| m.id)) {
        Some(id) => actions::select(ctx, id, ctx.choice.get_untracked()),
        None => super::models::load_bundled(ctx),
    }
}

/// Loads the stored copy of `name` (its sizes and SHA-256 checked again by `storage::get`).
async fn use_stored(s: ShelfState, name: &str) {
    let ctx = s.ctx;
    let source = Source::Shelf { name: name.to_string() };
    if let Some(id) = ctx.models.with_untracked(|ms| ms.iter().find(|m| m.source == source).map(|m| m.id)) {
        return actions::select(ctx, id, ctx.choice.get_untracked());
    }
    let Some(id) = s.stored.with_untracked(|st| st.iter().find(|(n, _)| n == name).map(|(_, id)| id.clone())) else {
        return s.note.set(Some((true, format!("{name} is not stored on this device."))));
    };
    match storage::get(&id).await {
        Ok((_, files)) => actions::load_files_as(ctx, source, files),
        Err(e) => s.note.set(Some((true, e.message()))),
    }
}

/// A link named shelf model `name`: used if it is on this device (the link's adapter and story
/// follow), otherwise offered for download.
async fn from_link(s: ShelfState, name: String) {
    if s.list.with_untracked(Option::is_none) {
        s.list.set(Some(read_list().await));
    }
    refresh(s).await;
    if s.stored.with_untracked(|st| st.iter().any(|(n, _)| *n == name)) {
        s.ctx.restore.update_value(|r| r.target = Some(Source::Shelf { name: name.clone() }));
        return use_stored(s, &name).await;
    }
    s.ctx.restore.set_value(Default::default());
    let known = s.list.with_untracked(|l| match l {
        Some(Ok(shelf)) => shelf.model(&name).map(|m| crate::words::size(m.download_bytes())),
        _ => None,
    });
    let message = match known {
        Some(bytes) => {
            s.offered.set(Some(name.clone()));
            format!(
                "This link's story was written with {name} from the model shelf ({bytes} to download). Press its \
                 Download button in the Model card to get the same story; until then another model is used."
            )
        }
        None => format!("This link names the model “{name}”, which this site's shelf does not list; another model is used."),
    };
    s.ctx.status.set(Status::Ready(message));
}
