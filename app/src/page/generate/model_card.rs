//! The model card: the model menu and facts, the backend selector, the model shelf
//! (`page::shelf`), and loading your own model (file picker, drag and drop, or a path on this
//! site) with a progress bar.

use leptos::prelude::*;
use web_sys::{DragEvent, File, FileList, HtmlInputElement};

use crate::page::state::{Ctx, LoadPlace, Status};
use crate::page::{actions, browser, drop_folder};
use crate::pick;
use crate::protocol::{BackendKind, Choice, ModelEntry, Source};
use crate::words::size;

#[component]
pub fn ModelCard(ctx: Ctx) -> impl IntoView {
    view! {
        <section class="card model" aria-label="Model" id="model" data-testid="model">
            <h2>"Model"</h2>
            <ModelMenu ctx />
            <super::adapter_badge::AdapterBadge ctx place="model" />
            {move || ctx.active_entry().map(|m| facts(&m))}
            <BackendPanel ctx />
            <crate::page::shelf::ShelfCard />
            <Loader ctx />
        </section>
    }
}

#[component]
fn ModelMenu(ctx: Ctx) -> impl IntoView {
    let change = move |ev: leptos::ev::Event| {
        if let Ok(id) = event_target_value(&ev).parse::<u32>() {
            if Some(id) != ctx.active.get_untracked() {
                actions::select(ctx, id, ctx.choice.get_untracked());
            }
        }
    };
    view! {
        <label class="menu">
            <span class="name">"Model in use"</span>
            <select id="model-select" data-testid="model-select" on:change=change
                disabled=move || ctx.running() || ctx.loading()
                prop:value=move || ctx.active.get().map(|a| a.to_string()).unwrap_or_default()>
                {move || ctx.models.get().into_iter().map(|m| {
                    let label = menu_label(&m);
                    view! { <option value=m.id.to_string()>{label}</option> }
                }).collect_view()}
            </select>
        </label>
    }
}

/// "stories260K — 0.26 M parameters, 1.06 MB (bundled)".
fn menu_label(m: &ModelEntry) -> String {
    let from = match &m.source {
        Source::Bundled => "bundled",
        Source::Url { .. } => "from this site",
        Source::Files { .. } => "your file",
        Source::Shelf { .. } => "from the shelf, on this device",
    };
    format!("{} — {} parameters, {} ({from})", m.name, params(m.params), size(m.model_bytes))
}

fn params(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1} M", n as f64 / 1e6)
    } else {
        format!("{:.0} K", n as f64 / 1e3)
    }
}

fn facts(m: &ModelEntry) -> impl IntoView {
    let c = m.config;
    let rows = [
        ("file", format!("{}, {}", m.name, size(m.model_bytes))),
        ("format", m.format.clone()),
        ("parameters", params(m.params)),
        ("dim / hidden", format!("{} / {}", c.dim, c.hidden_dim)),
        ("layers", c.n_layers.to_string()),
        ("heads / kv heads", format!("{} / {}", c.n_heads, c.n_kv_heads)),
        ("vocabulary", c.vocab_size.to_string()),
        ("context", format!("{} tokens", c.seq_len)),
        ("weights in memory", weights_held(m)),
        (
            "tokenizer",
            match m.tokenizer_bytes {
                0 => m.tokenizer_name.clone(),
                b => format!("{}, {}", m.tokenizer_name, size(b)),
            },
        ),
    ];
    view! {
        <dl class="facts" data-testid="facts" data-weight-bytes=m.weight_bytes.to_string() data-params=m.params.to_string()>
            {rows.into_iter().map(|(k, v)| {
                let id = format!("fact-{}", k.replace([' ', '/'], "-"));
                view! { <div data-testid=id><dt>{k}</dt><dd>{v}</dd></div> }
            }).collect_view()}
        </dl>
    }
}

/// "1.50 MB (kept as Q8_0: 28% of f32)", or "0.54 MB (f32)" (the list's `data-weight-bytes`
/// has the exact count).
fn weights_held(m: &ModelEntry) -> String {
    let f32_bytes = 4 * m.params;
    let kept = if m.kept_as.is_empty() { "kept quantized".to_string() } else { format!("kept as {}", m.kept_as) };
    if m.weight_bytes < f32_bytes {
        format!("{} ({kept}: {:.0}% of f32)", size(m.weight_bytes), 100.0 * m.weight_bytes as f64 / f32_bytes as f64)
    } else if m.weight_bytes > f32_bytes {
        format!("{} ({kept}, with an f32 copy for the GPU or inspection)", size(m.weight_bytes))
    } else {
        format!("{} (f32)", size(m.weight_bytes))
    }
}

#[component]
fn BackendPanel(ctx: Ctx) -> impl IntoView {
    let change = move |ev: leptos::ev::Event| {
        let choice = Choice::from_key(&event_target_value(&ev)).unwrap_or_default();
        match ctx.active.get_untracked() {
            Some(id) => actions::select(ctx, id, choice),
            None => ctx.choice.set(choice),
        }
    };
    let kind = move || {
        ctx.backend.with(|b| match b.as_ref().map(|b| b.kind) {
            Some(BackendKind::WebGpu) => "webgpu",
            Some(BackendKind::Cpu) => "cpu",
            None => "none",
        })
    };
    let name = move || {
        ctx.backend.with(|b| match b {
            Some(b) if b.kind == BackendKind::WebGpu => format!("WebGPU — {}", b.detail),
            Some(b) => format!("CPU — {}", b.detail),
            None => "starting…".into(),
        })
    };
    view! {
        <div class="backend">
            <label class="menu">
                <span class="name">"Backend"</span>
                <select id="backend-choice" data-testid="backend-choice" on:change=change
                    disabled=move || ctx.running() || ctx.loading()
                    prop:value=move || ctx.choice.get().key()>
                    {Choice::ALL.into_iter().map(|c| view! { <option value=c.key()>{c.label()}</option> }).collect_view()}
                </select>
            </label>
            <super::threads::ThreadsMenu />
            <p id="backend" data-testid="backend" data-kind=kind class="backend-name">{name}</p>
            <p id="backend-reason" data-testid="backend-reason" class="hint">
                {move || ctx.backend.with(|b| b.as_ref().map(|b| b.reason.clone()).unwrap_or_default())}
            </p>
            <p data-testid="backend-threads" class="hint">
                {move || ctx.backend.with(|b| b.as_ref().and_then(|b| b.one_thread.clone()).unwrap_or_default())}
            </p>
            <p data-testid="backend-start" class="hint">
                {move || ctx.backend.with(|b| b.as_ref().map(|b| format!("Started in {:.1} s.", b.start_ms / 1000.0)).unwrap_or_default())}
            </p>
        </div>
    }
}

#[component]
fn Loader(ctx: Ctx) -> impl IntoView {
    let model_url = RwSignal::new(String::new());
    let tok_url = RwSignal::new(String::new());
    let dragging = RwSignal::new(false);
    let picked = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        ctx.loading_from(Some(LoadPlace::Files));
        load_files(ctx, input.files());
        // Picking the same files again should load them again.
        input.set_value("");
    };
    let dropped = move |ev: DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        let Some(dt) = ev.data_transfer() else { return };
        ctx.loading_from(Some(LoadPlace::Files));
        match drop_folder::entries(&dt) {
            Some(entries) => load_folder(ctx, entries),
            None => load_files(ctx, dt.files()),
        }
    };
    let load_url = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        ctx.loading_from(Some(LoadPlace::Site));
        load_from_site(ctx, model_url.get_untracked(), tok_url.get_untracked());
    };
    let busy = move || ctx.loading();
    view! {
        <details class="loader" open=true>
            <summary>"Load your own model"</summary>
            <div
                class=move || if dragging.get() { "drop over" } else { "drop" }
                data-testid="drop"
                on:dragover=move |ev: DragEvent| { ev.prevent_default(); dragging.set(true); }
                on:dragleave=move |_| dragging.set(false)
                on:drop=dropped
            >
                <p>"Drop a llama2.c model (.bin) and its tokenizer (.bin), a GGUF file (.gguf), or a Hugging Face folder (the folder itself, or its config.json, .safetensors and tokenizer.json) here, or"</p>
                <label class="button secondary" for="files">"Choose files"</label>
                <input id="files" data-testid="files" class="visually-hidden" type="file" multiple accept=".bin,.gguf,.json,.safetensors"
                    on:change=picked />
                <LoadError ctx place=LoadPlace::Files />
            </div>
            <form class="from-site" on:submit=load_url>
                <p class="hint">"Or from this site (for example models/stories260K.bin):"</p>
                <input id="model-url" data-testid="model-url" type="text" placeholder="models/your-model.bin"
                    aria-label="Model path on this site" bind:value=model_url />
                <input id="tokenizer-url" data-testid="tokenizer-url" type="text" placeholder="models/your-tokenizer.bin"
                    aria-label="Tokenizer path on this site" bind:value=tok_url />
                <button id="load-url" data-testid="load-url" type="submit" class="secondary" disabled=busy>"Load"</button>
                <LoadError ctx place=LoadPlace::Site />
            </form>
            <ProgressBar ctx />
            <p class="hint">"Models from this site stay in the menu while this tab is open, reloads included. Picked and dropped models are kept on this device (the Storage tab). Files never leave your device."</p>
        </details>
    }
}

/// Why the last load from `place` failed, right under its control: the status line, which says
/// it too, is out of sight there on a phone or a laptop. A live region, so it is read out.
#[component]
fn LoadError(ctx: Ctx, place: LoadPlace) -> impl IntoView {
    let testid = match place {
        LoadPlace::Files => "load-error-files",
        LoadPlace::Site => "load-error-site",
    };
    let text = move || ctx.load_error.with(|e| e.as_ref().filter(|(p, _)| *p == place).map(|(_, m)| m.clone()));
    view! {
        <p class="load-error" data-testid=testid aria-live="polite">{move || text().unwrap_or_default()}</p>
    }
}

#[component]
fn ProgressBar(ctx: Ctx) -> impl IntoView {
    view! {
        <Show when=move || ctx.progress.with(Option::is_some)>
            {move || ctx.progress.get().map(|p| {
                let label = p.label.clone();
                match p.total {
                    Some(t) if t > 0 => view! {
                        <progress data-testid="progress" max=t.to_string() value=p.done.to_string() aria-label=label></progress>
                    }.into_any(),
                    _ => view! { <progress data-testid="progress" aria-label=label></progress> }.into_any(),
                }
            })}
        </Show>
    }
}

fn load_files(ctx: Ctx, list: Option<FileList>) {
    let Some(list) = list else { return };
    load_named(ctx, (0..list.length()).filter_map(|i| list.get(i)).map(|f| (f.name(), f)).collect());
}

/// A dropped folder: its files are listed first (a moment for a big one), then loaded.
fn load_folder(ctx: Ctx, entries: Vec<wasm_bindgen::JsValue>) {
    ctx.status.set(Status::Loading("Reading the dropped folder".into()));
    wasm_bindgen_futures::spawn_local(async move {
        match drop_folder::files(entries).await {
            Ok(files) => load_named(ctx, files),
            Err(message) => ctx.load_failed(message),
        }
    });
}

/// Files by the name the engine should see (a dropped folder's by their path in it).
fn load_named(ctx: Ctx, files: Vec<(String, File)>) {
    let named: Vec<(String, u64)> = files.iter().map(|(n, f)| (n.clone(), f.size() as u64)).collect();
    match pick::split(&named) {
        Ok(picked) => {
            let ordered: Vec<(String, File)> = picked.order().into_iter().map(|i| files[i].clone()).collect();
            // Kept on the device once it loads (the Storage view saves them).
            ctx.picked.set_value(Some(ordered.clone()));
            actions::load_named(ctx, ordered);
        }
        Err(message) => ctx.load_failed(message),
    }
}

fn load_from_site(ctx: Ctx, model: String, tokenizer: String) {
    let (model, tokenizer) = (model.trim().to_string(), tokenizer.trim().to_string());
    if model.is_empty() {
        return ctx.load_failed("Type the model's path on this site, e.g. models/stories260K.bin.".into());
    }
    for url in [&model, &tokenizer].into_iter().filter(|u| !u.is_empty()) {
        if !browser::same_origin(url) {
            return ctx.load_failed(format!(
                "“{url}” is on another site. For your privacy this page only loads models from its own site."
            ));
        }
    }
    let tokenizer = Some(tokenizer).filter(|t| !t.is_empty());
    actions::load(ctx, Source::Url { model, tokenizer }, Vec::new());
}
