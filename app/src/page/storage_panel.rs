//! The Storage panel: models and adapters kept on this device (OPFS, see `crate::storage`),
//! the browser's usage and quota figures, "Keep offline" (persistent storage) and delete.
//! A model the reader picks is saved here once it has loaded, and can be used again later,
//! offline and after a browser restart.

use leptos::prelude::*;
use web_sys::{File, HtmlInputElement};

use super::actions;
use super::client::Handler;
use super::help::{About, Term};
use super::state::{Ctx, Status};
use crate::protocol::MAX_FILE_BYTES;
use crate::protocol::{FromWorker, ModelEntry, Source};
use crate::storage::partial::{self, Unfinished};
use crate::storage::{self, bundle, Data, Entry, Estimate, Kind};
use crate::words::{size, storage_use};

/// The panel's state, provided as context.
#[derive(Clone, Copy)]
struct Panel {
    ctx: Ctx,
    items: RwSignal<Vec<Entry>>,
    /// Downloads that stopped before the end: their bytes count in the usage figure too.
    unfinished: RwSignal<Vec<Unfinished>>,
    estimate: RwSignal<Option<Estimate>>,
    persisted: RwSignal<Option<String>>,
    /// (is an error, message)
    note: RwSignal<Option<(bool, String)>>,
}

/// Makes the panel's state under the page's root owner, so it lives as long as the page
/// (made inside the tab, it would be disposed when another tab is shown), and returns its
/// message handler: a model loaded from picked files is saved on the device.
pub fn install(ctx: Ctx) -> Handler {
    let p = Panel {
        ctx,
        items: RwSignal::new(Vec::new()),
        unfinished: RwSignal::new(Vec::new()),
        estimate: RwSignal::new(None),
        persisted: RwSignal::new(None),
        note: RwSignal::new(None),
    };
    provide_context(p);
    Box::new(move |msg| {
        if let FromWorker::Loaded { models, active, .. } = msg {
            loaded(p, models, *active);
        }
    })
}

/// When a model is active: saves the picked files if they are the ones that loaded.
fn loaded(p: Panel, models: &[ModelEntry], active: u32) {
    let ctx = p.ctx;
    let Some(entry) = models.iter().find(|m| m.id == active) else { return };
    let Source::Files { model, .. } = &entry.source else { return };
    let picked = ctx.picked.try_update_value(|p| p.take_if(|files| files.first().is_some_and(|(n, _)| n == model))).flatten();
    let Some(files) = picked else { return };
    let meta = serde_json::json!({
        "params": entry.params, "format": entry.format, "config": entry.config,
        "tokenizer": (files.len() == 2).then(|| files[1].0.clone()),
    });
    let name = stored_name(entry, &files);
    wasm_bindgen_futures::spawn_local(async move { save_model(p, name, files, meta).await });
}

/// A model file is stored under its name; a Hugging Face folder (all its files in one item)
/// under the menu's name for it: the folder's when it was dropped whole.
fn stored_name(entry: &ModelEntry, files: &[(String, File)]) -> String {
    match files {
        [(name, _)] | [(name, _), _] => name.rsplit('/').next().unwrap_or(name).to_string(),
        _ => entry.name.clone(),
    }
}

async fn save_model(p: Panel, name: String, files: Vec<(String, File)>, meta: serde_json::Value) {
    let ctx = p.ctx;
    let stored = storage::list(Some(Kind::Model)).await.unwrap_or_default();
    let same = |e: &Entry| {
        e.name == name
            && e.files.len() == files.len()
            && e.files.iter().zip(&files).all(|(a, (n, f))| a.name == *n && a.size == f.size() as u64)
    };
    if stored.iter().any(same) {
        return;
    }
    let data = files.iter().map(|(n, f)| (n.clone(), Data::Blob(f))).collect();
    match storage::put(Kind::Model, &name, data, meta).await {
        Ok(e) => p
            .note
            .set(Some((false, format!("Saved “{}” on this device ({}): it stays available offline.", e.name, size(e.size()))))),
        Err(e) => {
            let message = format!("“{name}” is loaded, but not saved on this device. {}", e.message());
            ctx.status.set(Status::Error(message.clone()));
            p.note.set(Some((true, message)));
        }
    }
    refresh(p).await;
}

async fn refresh(p: Panel) {
    match storage::list(None).await {
        Ok(items) => p.items.set(items),
        Err(e) => p.note.set(Some((true, e.message()))),
    }
    p.unfinished.set(partial::unfinished().await.unwrap_or_default());
    p.estimate.set(storage::estimate().await.ok());
    if p.persisted.get_untracked().is_none() && storage::persisted().await == Ok(true) {
        p.persisted.set(Some(GRANTED.into()));
    }
}

const GRANTED: &str = "Kept offline: the browser will not clear this site's files to make room.";

/// The panel, as a tab's view.
pub fn view() -> AnyView {
    let p = expect_context::<Panel>();
    wasm_bindgen_futures::spawn_local(refresh(p));
    view! { <StoragePanel p /> }.into_any()
}

#[component]
fn StoragePanel(p: Panel) -> impl IntoView {
    let keep = move |_| {
        wasm_bindgen_futures::spawn_local(async move {
            let text = match storage::persist().await {
                Ok(true) => GRANTED.to_string(),
                Ok(false) => "Not granted: the browser may clear stored models when the disk is nearly full. \
                              Installing the app or bookmarking it makes a grant more likely."
                    .to_string(),
                Err(e) => e.message(),
            };
            p.persisted.set(Some(text));
            refresh(p).await;
        })
    };
    view! {
        <section class="card storage" aria-label="Storage" data-testid="storage">
            <h2>"Stored on this device"</h2>
            <About>
                <p>
                    "Models and " <Term key="adapter" text="adapters" /> " can be kept in this browser's own storage, so "
                    "the lab works without the internet and after a restart. Nothing here is uploaded anywhere; "
                    "“Delete” removes a file from this device."
                </p>
            </About>
            <p class="hint">"Models you pick are saved here once they load; adapters too. They stay after a restart and work offline."</p>
            <p data-testid="storage-estimate">{move || p.estimate.get().map(|e| storage_use(e.usage, e.quota, listed(p)))}</p>
            <div class="actions">
                <button type="button" class="secondary" data-testid="persist" on:click=keep>"Keep offline"</button>
                <AdapterUpload p />
            </div>
            <BundleControls p />
            <p class="hint" data-testid="persist-result">{move || p.persisted.get()}</p>
            <p data-testid="storage-note" class=move || if p.note.get().is_some_and(|n| n.0) { "note bad" } else { "note" }>
                {move || p.note.get().map(|n| n.1)}
            </p>
            <ul class="stored" data-testid="stored">
                {move || p.items.get().into_iter().map(|e| item(p, e)).collect_view()}
                {move || p.unfinished.get().into_iter().map(|u| unfinished_item(p, u)).collect_view()}
            </ul>
            <Show when=move || p.items.with(Vec::is_empty) && p.unfinished.with(Vec::is_empty)>
                <p class="hint" data-testid="stored-empty">"Nothing stored yet."</p>
            </Show>
        </section>
    }
}

/// The bytes of what the panel lists: stored models and adapters, and unfinished downloads.
fn listed(p: Panel) -> u64 {
    p.items.with(|items| items.iter().map(Entry::size).sum::<u64>())
        + p.unfinished.with(|u| u.iter().map(|u| u.have).sum::<u64>())
}

fn item(p: Panel, e: Entry) -> impl IntoView {
    let (id, id2) = (e.id.clone(), e.id.clone());
    let sha = e.files.iter().map(|f| format!("{} sha256 {}", f.name, f.sha256)).collect::<Vec<_>>().join("\n");
    let short = e.files.first().map(|f| f.sha256[..12.min(f.sha256.len())].to_string()).unwrap_or_default();
    let remove = move |_| {
        let id = id.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(err) = storage::delete(&id).await {
                p.note.set(Some((true, err.message())));
            }
            refresh(p).await;
        })
    };
    let is_model = e.kind == Kind::Model;
    view! {
        <li data-testid="stored-item" data-kind=e.kind.word() data-name=e.name.clone()>
            <span class="name">{e.name.clone()}</span>
            <span class="hint">{format!("{} · {} · sha256 {short}…", e.kind.word(), size(e.size()))}</span>
            <span hidden>{sha}</span>
            <span class="buttons">
                <Show when=move || is_model>
                    <button type="button" class="secondary" data-testid="stored-use" on:click={
                        let id = id2.clone();
                        move |_| use_model(p, id.clone())
                    }>"Use"</button>
                </Show>
                <button type="button" class="secondary" data-testid="stored-delete" on:click=remove>"Delete"</button>
            </span>
        </li>
    }
}

/// A download that stopped before the end: what it holds here, and Delete (not while it runs).
fn unfinished_item(p: Panel, u: Unfinished) -> impl IntoView {
    let shelf = use_context::<super::shelf::ShelfState>();
    let (name, label) = (u.model.clone(), u.model.clone());
    let running = {
        let model = u.model.clone();
        move || shelf.and_then(super::shelf::downloading).is_some_and(|m| m == model)
    };
    let remove = {
        let model = u.model.clone();
        move |_| {
            let model = model.clone();
            wasm_bindgen_futures::spawn_local(async move {
                p.note.set(Some(super::shelf::remove_unfinished(&model).await));
                refresh(p).await;
                if let Some(s) = shelf {
                    super::shelf::stored_changed(s);
                }
            })
        }
    };
    view! {
        <li data-testid="unfinished-item" data-kind="unfinished" data-name=name>
            <span class="name">{label}</span>
            <span class="hint" data-testid="unfinished-size">
                {format!("unfinished download · {} of {}", size(u.have), size(u.total))}
            </span>
            <span class="buttons">
                <button type="button" class="secondary" data-testid="unfinished-delete" disabled=running on:click=remove>
                    "Delete"
                </button>
            </span>
        </li>
    }
}

/// Loads a stored model into the engine, as if its files were picked again.
fn use_model(p: Panel, id: String) {
    wasm_bindgen_futures::spawn_local(async move {
        match storage::get(&id).await {
            Ok((entry, files)) => {
                if files.is_empty() {
                    return;
                }
                p.note.set(Some((false, format!("Loading “{}” from this device.", entry.name))));
                match entry.meta.get("shelf").and_then(|v| v.as_str()) {
                    // A shelf download: the menu and links name it by its shelf name.
                    Some(name) => actions::load_files_as(p.ctx, Source::Shelf { name: name.into() }, files),
                    // By their stored names: a dropped folder's paths name the model for its folder.
                    None => actions::load_named(p.ctx, entry.files.iter().map(|f| f.name.clone()).zip(files).collect()),
                }
            }
            Err(e) => p.note.set(Some((true, e.message()))),
        }
    });
}

/// Saves an uploaded adapter (e.g. PEFT's adapter_config.json and adapter_model.safetensors).
#[component]
fn AdapterUpload(p: Panel) -> impl IntoView {
    let picked = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        let Some(list) = input.files() else { return };
        let files: Vec<File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
        input.set_value("");
        if files.is_empty() {
            return;
        }
        wasm_bindgen_futures::spawn_local(async move {
            let name = files.iter().map(|f| f.name()).collect::<Vec<_>>().join(" + ");
            let data = files.iter().map(|f| (f.name(), Data::Blob(f))).collect();
            let meta = serde_json::json!({ "source": "upload" });
            let note = match storage::put(Kind::Adapter, &name, data, meta).await {
                Ok(e) => (false, format!("Saved the adapter “{}” ({}).", e.name, size(e.size()))),
                Err(e) => (true, e.message()),
            };
            p.note.set(Some(note));
            refresh(p).await;
        });
    };
    view! {
        <label class="button secondary" for="adapter-files">"Upload an adapter"</label>
        <input id="adapter-files" data-testid="adapter-files" class="visually-hidden" type="file" multiple
            accept=".json,.safetensors" on:change=picked />
    }
}

/// A classroom bundle: everything stored here as one file, and such a file added on another
/// computer (`storage::bundle`), so a class needs one download instead of one per computer.
#[component]
fn BundleControls(p: Panel) -> impl IntoView {
    let shelf = use_context::<super::shelf::ShelfState>();
    let export = move |_| wasm_bindgen_futures::spawn_local(export(p));
    let picked = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        let file = input.files().and_then(|l| l.get(0));
        input.set_value("");
        if let Some(file) = file {
            wasm_bindgen_futures::spawn_local(async move {
                import(p, file).await;
                if let Some(s) = shelf {
                    super::shelf::stored_changed(s);
                }
            });
        }
    };
    view! {
        <div class="actions bundle" data-testid="bundle">
            <button type="button" class="secondary" data-testid="bundle-save" on:click=export>
                "Save everything as one file"
            </button>
            <label class="button secondary" for="bundle-file">"Add from a bundle file"</label>
            <input id="bundle-file" data-testid="bundle-file" class="visually-hidden" type="file" accept=".zip"
                on:change=picked />
        </div>
        <p class="hint">
            "For a class: save everything stored here as one file once, copy it to the other computers (a USB stick, a "
            "shared drive) and add it there. No download is needed on each one, and every file is checked by its SHA-256."
        </p>
    }
}

async fn export(p: Panel) {
    let entries = match storage::list(None).await {
        Ok(e) if e.is_empty() => return p.note.set(Some((true, "Nothing is stored yet, so there is nothing to save.".into()))),
        Ok(e) => e,
        Err(e) => return p.note.set(Some((true, e.message()))),
    };
    let mut items = Vec::with_capacity(entries.len());
    for e in &entries {
        match storage::get_bytes(&e.id).await {
            Ok(item) => items.push(item),
            Err(err) => return p.note.set(Some((true, err.message()))),
        }
    }
    let zip = bundle::pack(&items);
    let names = entries.iter().map(|e| format!("“{}”", e.name)).collect::<Vec<_>>().join(", ");
    let note = match super::browser::save_file(bundle::FILE_NAME, &zip, "application/zip") {
        Ok(()) => (
            false,
            format!(
                "Saved {} ({}): {names}. On another computer, open the lab, go to Storage and press “Add from a bundle file”.",
                bundle::FILE_NAME,
                size(zip.len() as u64)
            ),
        ),
        Err(e) => (true, format!("The bundle could not be offered as a download ({e}).")),
    };
    p.note.set(Some(note));
}

async fn import(p: Panel, file: File) {
    if file.size() as u64 > MAX_FILE_BYTES {
        let msg = format!(
            "“{}” is {}; a bundle this page can read holds at most {}.",
            file.name(),
            size(file.size() as u64),
            size(MAX_FILE_BYTES)
        );
        return p.note.set(Some((true, msg)));
    }
    p.note.set(Some((false, format!("Checking “{}”…", file.name()))));
    let bytes = match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
        Ok(buf) => js_sys::Uint8Array::new(&buf).to_vec(),
        Err(_) => return p.note.set(Some((true, format!("“{}” could not be read.", file.name())))),
    };
    let unpacked = match bundle::unpack(&bytes) {
        Ok(u) => u,
        Err(msg) => return p.note.set(Some((true, msg))),
    };
    drop(bytes);
    let stored = storage::list(None).await.unwrap_or_default();
    let (mut added, mut already) = (Vec::new(), 0);
    for u in unpacked {
        if stored.iter().any(|e| u.item.is_stored_as(e)) {
            already += 1;
            continue;
        }
        let files = u.item.files.iter().zip(&u.data).map(|(f, d)| (f.name.clone(), Data::Bytes(d))).collect();
        if let Err(e) = storage::put(u.item.kind, &u.item.name, files, u.item.meta.clone()).await {
            let before = if added.is_empty() { String::new() } else { format!(" Added before that: {}.", added.join(", ")) };
            p.note.set(Some((true, format!("{}{before}", e.message()))));
            return refresh(p).await;
        }
        added.push(format!("“{}”", u.item.name));
    }
    let here = match already {
        0 => String::new(),
        1 => " 1 item was already on this device.".into(),
        n => format!(" {n} items were already on this device."),
    };
    let note = match added.len() {
        0 => format!("Nothing new in the bundle.{here}"),
        n => format!("Added {n} {} from the bundle: {}.{here}", if n == 1 { "item" } else { "items" }, added.join(", ")),
    };
    p.note.set(Some((false, note)));
    refresh(p).await;
}
