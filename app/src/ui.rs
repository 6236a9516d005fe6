//! The page: model facts, the prompt form, the status line and the streamed story.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::engine_host::{ModelInfo, Session, MODEL_FILE, TOKENIZER_FILE};
use crate::fetch::fetch_bytes;
use crate::runner::{self, Status};
use crate::settings::Form;

/// Shared page state; every field is a cheap `Copy` handle.
#[derive(Clone, Copy)]
pub struct Ctx {
    /// Taken out while a run uses it, put back when it ends.
    pub session: StoredValue<Option<Session>>,
    pub info: RwSignal<Option<ModelInfo>>,
    pub status: RwSignal<Status>,
    /// Bumped by Generate and Stop; a run stops when it no longer holds the latest id.
    pub run_id: RwSignal<u64>,
    pub out_prompt: RwSignal<String>,
    pub out_story: RwSignal<String>,
}

#[component]
pub fn App() -> impl IntoView {
    let ctx = Ctx {
        session: StoredValue::new(None),
        info: RwSignal::new(None),
        status: RwSignal::new(Status::Loading),
        run_id: RwSignal::new(0),
        out_prompt: RwSignal::new(String::new()),
        out_story: RwSignal::new(String::new()),
    };
    spawn_local(load(ctx));
    view! {
        <header class="top">
            <h1>"TinyLM Lab"</h1>
            <p class="tagline">"Karpathy's tiny llama2.c story models, running in your browser."</p>
        </header>
        <main class="layout">
            <ModelCard ctx />
            <Controls ctx />
            <section class="card story" aria-label="Story">
                <h2>"Story"</h2>
                <pre id="output" data-testid="output" class="output" aria-live="polite">
                    <span class="echo">{move || ctx.out_prompt.get()}</span>
                    {move || ctx.out_story.get()}
                </pre>
            </section>
        </main>
        <footer class="foot">
            "stories260K and tok512: MIT, Andrej Karpathy (llama2.c); trained on TinyStories "
            "(CDLA-Sharing-1.0). "
            <a href="models/LICENSE-NOTES.md">"Licence notes"</a>
        </footer>
    }
}

/// Downloads and parses the model and tokenizer, then shows their shape.
async fn load(ctx: Ctx) {
    let loaded = async {
        let model = fetch_bytes(MODEL_FILE).await?;
        let tokenizer = fetch_bytes(TOKENIZER_FILE).await?;
        Session::load(&model, &tokenizer).map_err(|e| format!("The model could not be loaded: {e}"))
    };
    match loaded.await {
        Ok(session) => {
            ctx.info.set(Some(session.info().clone()));
            ctx.session.set_value(Some(session));
            ctx.status.set(Status::Ready);
        }
        Err(message) => ctx.status.set(Status::Error(message)),
    }
}

#[component]
fn ModelCard(ctx: Ctx) -> impl IntoView {
    view! {
        <section class="card model" aria-label="Model" id="model" data-testid="model">
            <h2>"Model"</h2>
            {move || match ctx.info.get() {
                None => view! { <p class="muted">"Loading stories260K…"</p> }.into_any(),
                Some(info) => model_facts(&info).into_any(),
            }}
        </section>
    }
}

fn model_facts(info: &ModelInfo) -> impl IntoView {
    let c = info.config;
    let facts = [
        ("file", format!("stories260K.bin, {:.2} MB", info.file_bytes as f64 / 1e6)),
        ("format", info.format.clone()),
        ("parameters", format!("{:.0} K", info.params as f64 / 1e3)),
        ("dim / hidden", format!("{} / {}", c.dim, c.hidden_dim)),
        ("layers", c.n_layers.to_string()),
        ("heads / kv heads", format!("{} / {}", c.n_heads, c.n_kv_heads)),
        ("vocabulary", c.vocab_size.to_string()),
        ("context", format!("{} tokens", c.seq_len)),
        ("backend", info.backend.clone()),
    ];
    view! {
        <dl class="facts">
            {facts
                .into_iter()
                .map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> })
                .collect_view()}
        </dl>
    }
}

#[component]
fn Controls(ctx: Ctx) -> impl IntoView {
    let prompt = RwSignal::new(String::new());
    let temperature = RwSignal::new("1.0".to_string());
    let topp = RwSignal::new("0.9".to_string());
    let seed = RwSignal::new("42".to_string());
    let steps = RwSignal::new("256".to_string());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = Form {
            temperature: temperature.get_untracked(),
            topp: topp.get_untracked(),
            seed: seed.get_untracked(),
            steps: steps.get_untracked(),
        };
        runner::start(ctx, prompt.get_untracked(), form);
    };
    let running = move || ctx.status.with(|s| matches!(s, Status::Running { .. }));
    let can_generate = move || ctx.info.with(Option::is_some) && !running();
    view! {
        <section class="card controls" aria-label="Settings">
            <form on:submit=submit>
                <label class="prompt-label" for="prompt">"Prompt"</label>
                <textarea
                    id="prompt"
                    data-testid="prompt"
                    rows="2"
                    placeholder="Empty: the model starts its own story"
                    prop:value=move || prompt.get()
                    on:input=move |ev| prompt.set(event_target_value(&ev))
                ></textarea>
                <div class="fields">
                    <Field id="temperature" label="Temperature" value=temperature step="0.1" />
                    <Field id="topp" label="Top-p" value=topp step="0.05" />
                    <Field id="seed" label="Seed" value=seed step="1" />
                    <Field id="steps" label="Steps" value=steps step="1" />
                </div>
                <div class="actions">
                    <button id="generate" data-testid="generate" type="submit" disabled=move || !can_generate()>
                        "Generate"
                    </button>
                    <button
                        id="stop"
                        data-testid="stop"
                        type="button"
                        class="secondary"
                        disabled=move || !running()
                        on:click=move |_| runner::stop(ctx)
                    >
                        "Stop"
                    </button>
                </div>
            </form>
            <p id="status" data-testid="status" class="status" role="status"
                data-state=move || ctx.status.with(Status::state)>
                {move || ctx.status.with(Status::message)}
            </p>
        </section>
    }
}

#[component]
fn Field(id: &'static str, label: &'static str, value: RwSignal<String>, step: &'static str) -> impl IntoView {
    view! {
        <label class="field" for=id>
            <span>{label}</span>
            <input id=id data-testid=id type="number" min="0" step=step inputmode="decimal" bind:value=value />
        </label>
    }
}
