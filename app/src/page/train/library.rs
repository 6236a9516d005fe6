//! The adapter library: adapters trained here or uploaded, kept in the site's storage (OPFS)
//! as PEFT files. Use one in Generate, download it as a zip, check its logits, delete it.

use leptos::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;

use super::state::{Item, TrainCtx};
use crate::protocol::train::{AdapterInfo, BaseId, Peft, Snapshot, TrainCmd};
use crate::protocol::Bytes;
use crate::storage::{self, Data, Kind};
use crate::train::{archive, distinct_name, AdapterMeta};
use crate::words::{one_blank_line, size};

const CONFIG: &str = "adapter_config.json";
const WEIGHTS: &str = "adapter_model.safetensors";

pub async fn load(t: TrainCtx) {
    match storage::list(Some(Kind::Adapter)).await {
        Ok(entries) => {
            let items = entries
                .into_iter()
                .filter_map(|e| {
                    let meta = serde_json::from_value::<AdapterMeta>(e.meta.clone()).ok()?;
                    Some(Item { size: e.size(), id: e.id, name: e.name, meta })
                })
                .collect();
            t.library.set(items);
        }
        Err(e) => t.note.set(e.message()),
    }
}

/// Stores an adapter in the library; true when it was stored.
async fn save(t: TrainCtx, name: &str, peft: &Peft, meta: AdapterMeta) -> bool {
    let weights = peft.safetensors.to_vec();
    let files =
        vec![(CONFIG.to_string(), Data::Bytes(peft.config_json.as_bytes())), (WEIGHTS.to_string(), Data::Bytes(&weights))];
    let meta = serde_json::to_value(&meta).unwrap_or_default();
    let saved = match storage::put(Kind::Adapter, name, files, meta).await {
        Ok(_) => {
            t.note.set(format!("Saved “{name}” in the adapter library."));
            true
        }
        Err(e) => {
            t.note.set(e.message());
            false
        }
    };
    load(t).await;
    saved
}

/// The names in the library now.
fn names(t: TrainCtx) -> Vec<String> {
    t.library.with_untracked(|l| l.iter().map(|i| i.name.clone()).collect())
}

/// A finished (or stopped) run's adapter goes into the library; then the saved run is
/// forgotten (if the library cannot take it, the last snapshot stays resumable).
pub fn add_trained(t: TrainCtx, ck: &Snapshot) {
    let meta = AdapterMeta {
        base: ck.base.clone(),
        info: ck.info.clone(),
        loss: ck.losses.last().copied(),
        held: ck.held.last().map(|h| h.1),
    };
    let name = distinct_name(&format!("{} ({} steps)", ck.name, ck.step), &names(t));
    let peft = ck.adapter.copy();
    spawn_local(async move {
        if save(t, &name, &peft, meta).await {
            t.saver.clear();
        }
    });
}

/// The run's best adapter (lowest held-out loss) into the library, next to the final one.
pub fn add_best(t: TrainCtx) {
    let Some((step, loss, peft)) = t.best.with_untracked(|b| b.as_ref().map(|(s, l, p)| (*s, *l, p.copy()))) else { return };
    let Some((run, base, info)) = t.last_info.get_untracked() else { return };
    let meta = AdapterMeta { base, info, loss: t.losses.with_untracked(|l| l.get(step as usize).copied()), held: Some(loss) };
    let name = distinct_name(&format!("{run} (best: step {step})"), &names(t));
    spawn_local(async move {
        save(t, &name, &peft, meta).await;
    });
}

async fn peft_of(id: &str) -> Result<Peft, String> {
    let (_, bytes) = storage::get_bytes(id).await.map_err(|e| e.message())?;
    let [config, weights] = <[Vec<u8>; 2]>::try_from(bytes).map_err(|_| "The stored adapter is incomplete.".to_string())?;
    Ok(Peft { config_json: String::from_utf8_lossy(&config).into_owned(), safetensors: Bytes::from_slice(&weights) })
}

/// Upload: a zip (as downloaded here) or the two PEFT files, read with gloo's file reader.
async fn upload(t: TrainCtx, files: Vec<gloo::file::File>) {
    let mut named = Vec::new();
    for f in &files {
        match gloo::file::futures::read_as_bytes(f).await {
            Ok(bytes) => named.push((f.name(), bytes)),
            Err(_) => return t.note.set(format!("Could not read {}.", f.name())),
        }
    }
    let stem = files.first().map(|f| f.name()).unwrap_or_default();
    let peft = match crate::train::peft_from_upload(named) {
        Ok(p) => p,
        Err(e) => return t.note.set(e),
    };
    let name = match stem.strip_suffix(".zip") {
        Some(s) => s.to_string(),
        None => "uploaded adapter".to_string(),
    };
    let req = t.next_req();
    // The message transfers its buffers: the copy kept here waits for the check.
    t.pending.update_value(|p| {
        p.insert(req, (name, peft.copy()));
    });
    t.note.set("Checking the adapter against the loaded model…".into());
    t.send(TrainCmd::Check { req, adapter: peft });
}

pub fn checked(t: TrainCtx, req: u64, result: Result<(AdapterInfo, BaseId), String>) {
    let Some((name, peft)) = t.pending.try_update_value(|p| p.remove(&req)).flatten() else {
        return;
    };
    match result {
        Ok((info, base)) => {
            let meta = AdapterMeta { base, info, loss: None, held: None };
            let name = distinct_name(&name, &names(t));
            spawn_local(async move {
                save(t, &name, &peft, meta).await;
            });
        }
        Err(e) => t.note.set(e),
    }
}

/// How the note starts while an adapter goes into the model; cleared once it is in.
pub const PUTTING: &str = "Putting ";

fn use_in_generate(t: TrainCtx, item: Item) {
    spawn_local(async move {
        match peft_of(&item.id).await {
            Ok(p) => {
                t.note.set(format!("{PUTTING}“{}” into the model for Generate…", item.name));
                t.send(TrainCmd::Use { adapter: Some((item.name, item.meta.base, p)) });
            }
            Err(e) => t.note.set(e),
        }
    });
}

/// The plain model and the model with `item`, same prompt and seed as the Train settings.
fn compare(t: TrainCtx, item: Item) {
    let prompt = t.form.prompt.get_untracked();
    let seed = t.form.seed.get_untracked().trim().parse().unwrap_or(1234);
    spawn_local(async move {
        match peft_of(&item.id).await {
            Ok(adapter) => {
                t.note.set(format!("Writing two stories, without and with “{}”…", item.name));
                t.send(TrainCmd::Compare { name: item.name, base: item.meta.base, adapter, prompt, seed });
            }
            Err(e) => t.note.set(e),
        }
    });
}

#[component]
fn Comparison(t: TrainCtx) -> impl IntoView {
    move || {
        t.compared.get().map(|(name, off, on)| {
            view! {
                <div class="samples" data-testid="compare">
                    <h4>{format!("“{name}”: same prompt, same seed, without and with the adapter")}</h4>
                    <div class="pair">
                        <figure><figcaption>"Without the adapter"</figcaption><pre data-testid="compare-off">{one_blank_line(&off)}</pre></figure>
                        <figure><figcaption>"With the adapter"</figcaption><pre data-testid="compare-on">{one_blank_line(&on)}</pre></figure>
                    </div>
                </div>
            }
        })
    }
}

fn download(t: TrainCtx, item: Item) {
    spawn_local(async move {
        let peft = match peft_of(&item.id).await {
            Ok(p) => p,
            Err(e) => return t.note.set(e),
        };
        let weights = peft.safetensors.to_vec();
        let bytes = archive::write(&[(CONFIG, peft.config_json.as_bytes()), (WEIGHTS, &weights)]);
        let name = format!("{}.zip", item.name.replace(|c: char| !c.is_alphanumeric() && c != '-', "_"));
        if let Err(e) = crate::page::browser::save_file(&name, &bytes, "application/zip") {
            t.note.set(format!("The download failed: {e}"));
        }
    });
}

fn delete(t: TrainCtx, item: Item) {
    spawn_local(async move {
        if let Err(e) = storage::delete(&item.id).await {
            t.note.set(e.message());
        }
        if t.using.get_untracked().as_deref() == Some(item.name.as_str()) {
            t.send(TrainCmd::Use { adapter: None });
        }
        load(t).await;
    });
}

/// Logits at every position of the tokens in the box, with `item` (or the plain model).
fn logits(t: TrainCtx, item: Option<Item>, tokens: String) {
    let tokens: Result<Vec<u32>, _> =
        tokens.split(|c: char| c.is_whitespace() || c == ',').filter(|s| !s.is_empty()).map(str::parse).collect();
    let Ok(tokens) = tokens else {
        return t.note.set("Token ids are whole numbers separated by spaces.".into());
    };
    spawn_local(async move {
        let adapter = match item {
            Some(i) => match peft_of(&i.id).await {
                Ok(p) => Some(p),
                Err(e) => return t.note.set(e),
            },
            None => None,
        };
        t.logits.set(String::new());
        t.send(TrainCmd::Logits { req: t.next_req(), tokens, adapter });
    });
}

pub fn logits_ready(t: TrainCtx, _req: u64, result: Result<Vec<Vec<f32>>, String>) {
    match result {
        Ok(rows) => t.logits.set(serde_json::to_string(&rows).unwrap_or_default()),
        Err(e) => t.note.set(e),
    }
}

#[component]
pub fn LibraryPanel(t: TrainCtx) -> impl IntoView {
    let tokens = RwSignal::new("1 403 407 261 378".to_string());
    // The developer tools are open: the rows show their "Logits" buttons.
    let dev = RwSignal::new(false);
    let on_upload = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        let files: Vec<gloo::file::File> = input.files().map(|l| gloo::file::FileList::from(l).to_vec()).unwrap_or_default();
        input.set_value("");
        if !files.is_empty() {
            spawn_local(upload(t, files));
        }
    };
    view! {
        <div class="library" data-testid="library">
            <h3>"Adapter library"</h3>
            <p class="hint">"Adapters kept on this device. “Use” merges one into the model for Generate and Inspect; an adapter only fits the model it was trained on."</p>
            <p class="using" data-testid="using">
                {move || match t.using.get() {
                    Some(n) => format!("Generate and Inspect use the adapter “{n}”."),
                    None => "Generate and Inspect use the plain model.".to_string(),
                }}
                <Show when=move || t.using.with(Option::is_some)>
                    <button type="button" class="secondary" data-testid="unuse"
                        on:click=move |_| t.send(TrainCmd::Use { adapter: None })>"Use no adapter"</button>
                </Show>
            </p>
            <div class="scroll">
            <table class="adapters">
                <thead><tr><th>"name"</th><th>"base model"</th><th>"size"</th><th>"training loss"</th><th>"held-out loss"</th><th><span class="visually-hidden">"actions"</span></th></tr></thead>
                <tbody>
                    {move || t.library.get().into_iter().map(|item| row(t, item, tokens, dev)).collect_view()}
                </tbody>
            </table>
            </div>
            <label class="upload">
                <span>"Upload a PEFT adapter (adapter_config.json + adapter_model.safetensors, or a zip from here): "</span>
                <input type="file" multiple accept=".json,.safetensors,.zip" data-testid="adapter-upload" on:change=on_upload />
            </label>
            <p class="note" data-testid="library-note" role="status">{move || t.note.get()}</p>
            <Comparison t />
            <details class="logits-check devtools" on:toggle=move |e| dev.set(event_target::<web_sys::Element>(&e).has_attribute("open"))>
                <summary>"For developers"</summary>
                <h4>"Check logits"</h4>
                <p class="hint">"The model's scores for every next token at each position of these token ids (for comparing with the tinylm command). “Logits” in an adapter's row fills this box with that adapter on."</p>
                <label class="field">
                    <span class="name">"Token ids"</span>
                    <input type="text" data-testid="logits-tokens" bind:value=tokens />
                </label>
                <button type="button" class="secondary" data-testid="logits-plain"
                    on:click=move |_| logits(t, None, tokens.get_untracked())>"Logits without adapter"</button>
                <textarea readonly rows="3" data-testid="logits-json" aria-label="Logits (JSON)" prop:value=move || t.logits.get()></textarea>
            </details>
        </div>
    }
}

fn row(t: TrainCtx, item: Item, tokens: RwSignal<String>, dev: RwSignal<bool>) -> impl IntoView {
    let m = &item.meta;
    let loss = m.loss.map_or("uploaded".to_string(), |l| format!("{l:.3}"));
    // The held-out loss is the one that ranks adapters: the training loss of a run that memorised
    // its text is lower than that of its best (earlier) adapter.
    let held = m.held.map_or("–".to_string(), |l| format!("{l:.3}"));
    let detail = format!("r{} α{} on {}", m.info.rank, m.info.alpha, m.info.targets.join(", "));
    let (a, b, c, d, e) = (item.clone(), item.clone(), item.clone(), item.clone(), item.clone());
    let name = item.name.clone();
    // The row of the adapter in use says so, instead of offering "Use" again.
    let in_use = Memo::new(move |_| t.using.with(|u| u.as_deref() == Some(name.as_str())));
    view! {
        <tr data-testid="adapter-row" data-name=item.name.clone()>
            <td class="adapter-name-cell"><strong data-testid="adapter-name">{item.name.clone()}</strong><br /><small>{detail}</small></td>
            <td title=format!("file hash {}", m.base.hash) data-label="base model">{m.base.name.clone()}</td>
            <td data-label="size">{size(item.size)}</td>
            <td data-label="training loss">{loss}</td>
            <td data-label="held-out loss" data-testid="adapter-held">{held}</td>
            <td class="row-actions">
                <button type="button" data-testid="adapter-use" disabled=in_use on:click=move |_| use_in_generate(t, a.clone())>
                    {move || if in_use.get() { "In use" } else { "Use" }}
                </button>
                <button type="button" class="secondary" data-testid="adapter-compare" on:click=move |_| compare(t, e.clone())>"Compare"</button>
                <button type="button" class="secondary" data-testid="adapter-download" on:click=move |_| download(t, b.clone())>"Download"</button>
                <Show when=move || dev.get()>
                    <button type="button" class="secondary" data-testid="adapter-logits"
                        on:click={
                            let c = c.clone();
                            move |_| logits(t, Some(c.clone()), tokens.get_untracked())
                        }>"Logits"</button>
                </Show>
                <button type="button" class="secondary" data-testid="adapter-delete" on:click=move |_| delete(t, d.clone())>"Delete"</button>
            </td>
        </tr>
    }
}
