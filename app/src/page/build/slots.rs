//! Two kept models: a finished (or stopped) run's model goes into slot A or B, kept in OPFS
//! with its settings, so a reload lists both; either joins the model menu, downloads, or both
//! write a story on the prompt side by side.

use leptos::prelude::*;
use wasm_bindgen_futures::spawn_local;

use super::run::{fetch_bytes, file_name, to_menu, FOLDER, TOKENIZER};
use super::state::{model_hash, BuildCtx, Slot, SLOT_NAMES};
use crate::page::browser;
use crate::page::train::store::{read_in, write_in};
use crate::protocol::build::{BuildCmd, BuildEvent};
use crate::protocol::Bytes;

const SLOTS: &str = "slots.json";
/// Tokens of each compared story (the prompt's included).
const COMPARE_TOKENS: usize = 64;

fn bin(i: usize) -> String {
    format!("slot-{}.bin", SLOT_NAMES[i])
}

/// The name a kept model has in the model menu and as a download: `built-s30k-300-A.bin`.
fn menu_name(s: &Slot, i: usize) -> String {
    format!("{}-{}.bin", s.name.trim_end_matches(".bin"), SLOT_NAMES[i])
}

/// The slots kept from an earlier visit.
pub fn restore(b: BuildCtx) {
    spawn_local(async move {
        let Some(json) = read_in(FOLDER, SLOTS).await else { return };
        if let Ok(slots) = serde_json::from_slice::<[Option<Slot>; 2]>(&json) {
            b.slots.set(slots);
        }
    });
}

/// Keeps the newest model in slot `i` (replacing what was there).
pub fn keep(b: BuildCtx, i: usize) {
    let (Some((step, bytes)), Some((settings, ..))) = (b.model.get_untracked(), b.run.get_untracked()) else { return };
    let (loss, held) = b.history.with_untracked(|h| (h.steps.last().map(|m| m.loss), h.held.last().map(|x| x.1)));
    let slot = Slot { name: file_name(b), settings, steps: step, loss, held };
    let mut slots = b.slots.get_untracked();
    slots[i] = Some(slot);
    spawn_local(async move {
        let saved = async {
            write_in(FOLDER, &bin(i), &bytes).await?;
            write_in(FOLDER, SLOTS, &serde_json::to_vec(&slots).map_err(|e| e.to_string())?).await
        };
        match saved.await {
            Ok(()) => b.slots.set(slots),
            Err(e) => b.note.set(format!("The model could not be kept on this device: {e}")),
        }
    });
}

async fn read_slot(i: usize) -> Option<Vec<u8>> {
    read_in(FOLDER, &bin(i)).await
}

/// The kept model whose bytes have content hash `want`, with its menu name (read from the
/// device: the slots may not be restored yet).
pub async fn with_hash(want: &str) -> Option<(String, Vec<u8>)> {
    let slots = serde_json::from_slice::<[Option<Slot>; 2]>(&read_in(FOLDER, SLOTS).await?).ok()?;
    for (i, slot) in slots.iter().enumerate() {
        let Some(slot) = slot else { continue };
        if let Some(bytes) = read_slot(i).await.filter(|bytes| model_hash(bytes) == want) {
            return Some((menu_name(slot, i), bytes));
        }
    }
    None
}

pub fn use_in_menu(b: BuildCtx, i: usize) {
    let Some(slot) = b.slots.with_untracked(|s| s[i].clone()) else { return };
    spawn_local(async move {
        match read_slot(i).await {
            Some(bytes) => to_menu(b, menu_name(&slot, i), bytes).await,
            None => b.note.set(format!("Model {} could not be read from this device.", SLOT_NAMES[i])),
        }
    });
}

pub fn download(b: BuildCtx, i: usize) {
    let Some(slot) = b.slots.with_untracked(|s| s[i].clone()) else { return };
    spawn_local(async move {
        let Some(bytes) = read_slot(i).await else {
            return b.note.set(format!("Model {} could not be read from this device.", SLOT_NAMES[i]));
        };
        if let Err(e) = browser::save_file(&menu_name(&slot, i), &bytes, "application/octet-stream") {
            b.note.set(format!("The download failed: {e}"));
        }
    });
}

/// Both kept models write on the sample prompt with the samples' sampler.
pub fn compare(b: BuildCtx) {
    let req = b.compare_req.get_untracked() + 1;
    b.compare_req.set(req);
    b.compared.set(None);
    let prompt = b.form.prompt.get_untracked();
    spawn_local(async move {
        let mut kept = Vec::new();
        let mut models = Vec::new();
        for i in 0..2 {
            if b.slots.with_untracked(|s| s[i].is_some()) {
                if let Some(bytes) = read_slot(i).await {
                    kept.push(i);
                    models.push(Bytes::from_slice(&bytes));
                }
            }
        }
        let Some(tok) = fetch_bytes(TOKENIZER).await else {
            return b.compared.set(Some(Err(format!("Could not load {TOKENIZER}."))));
        };
        b.compare_order.set_value(kept);
        b.send(BuildCmd::Compare { req, models, tokenizer: Bytes::from_slice(&tok), prompt, steps: COMPARE_TOKENS });
    });
}

/// The worker's stories (true when `ev` was them).
pub fn receive(b: BuildCtx, ev: &BuildEvent) -> bool {
    let BuildEvent::Compared { req, result } = ev else { return false };
    if *req == b.compare_req.get_untracked() {
        let order = b.compare_order.get_value();
        b.compared.set(Some(result.clone().map(|stories| order.into_iter().zip(stories).collect())));
    }
    true
}

fn describe(s: &Slot) -> String {
    let loss = |l: Option<f64>| l.map_or("–".into(), |l| format!("{l:.2}"));
    format!("{} · {} steps at rate {} · loss {}, held-out {}", s.name, s.steps, s.settings.lr, loss(s.loss), loss(s.held))
}

#[component]
pub fn SlotsPanel(b: BuildCtx) -> impl IntoView {
    let has_model = move || b.model.with(|m| m.is_some()) && !b.busy();
    let both = move || b.slots.with(|s| s.iter().all(Option::is_some));
    view! {
        <section class="build-slots" aria-label="Kept models" data-testid="build-slots">
            <h3>"Kept models"</h3>
            <p class="hint">"Keep two trained models on this device (they stay after a reload), use either in Generate, or let both write side by side."</p>
            <ul class="slots">
                {(0..2).map(|i| {
                    let slot = move || b.slots.with(|s| s[i].clone());
                    view! {
                        <li class="slot" data-testid=format!("build-slot-{i}") data-name=move || slot().map(|s| s.name).unwrap_or_default()>
                            <strong>{format!("Model {}: ", SLOT_NAMES[i])}</strong>
                            <span>{move || slot().map_or("empty".into(), |s| describe(&s))}</span>
                            <div class="buttons">
                                <button type="button" class="secondary" data-testid=format!("build-keep-{i}") disabled=move || !has_model()
                                    on:click=move |_| keep(b, i)>{format!("Keep the new model as {}", SLOT_NAMES[i])}</button>
                                <Show when=move || slot().is_some()>
                                    <button type="button" class="secondary" data-testid=format!("build-slot-use-{i}")
                                        on:click=move |_| use_in_menu(b, i)>"Use in Generate"</button>
                                    <button type="button" class="secondary" data-testid=format!("build-slot-download-{i}")
                                        on:click=move |_| download(b, i)>"Download .bin"</button>
                                </Show>
                            </div>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <Show when=both>
                <button type="button" class="secondary" data-testid="build-compare" disabled=move || b.busy()
                    on:click=move |_| compare(b)>"Compare: both write on the sample prompt"</button>
            </Show>
            {move || b.compared.get().map(|r| match r {
                Ok(stories) => view! {
                    <div class="compare" data-testid="build-compared">
                        {stories.into_iter().map(|(i, text)| view! {
                            <figure class="compare-story" data-slot=i.to_string()>
                                <figcaption>{format!("Model {}", SLOT_NAMES[i])}</figcaption>
                                <p class="sample">{text}</p>
                            </figure>
                        }).collect_view()}
                    </div>
                }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
            })}
        </section>
    }
}
