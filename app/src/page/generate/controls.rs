//! The prompt, the settings with their hints, the buttons, the status line and the run's figures.

use leptos::prelude::*;

use crate::page::actions;
use crate::page::pacing::ReadingPace;
use crate::page::state::{Ctx, Status};
use crate::protocol::BackendKind;

#[component]
pub fn Controls(ctx: Ctx) -> impl IntoView {
    let f = ctx.form;
    let link_runs = RwSignal::new(false);
    // On a phone the settings' hints wait until a setting is first used (see style.css), so the
    // first screen holds the prompt and Generate; once shown they stay, so nothing moves under
    // a finger on its way to Generate.
    let explained = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        actions::generate(ctx);
    };
    view! {
        <section class="card controls" aria-label="Settings">
            <form on:submit=submit>
                <label class="prompt-label" for="prompt">"Prompt"</label>
                <textarea
                    id="prompt"
                    data-testid="prompt"
                    rows="2"
                    placeholder="Empty: the model starts its own story. Enter writes, Shift+Enter adds a line."
                    prop:value=move || f.prompt.get()
                    on:input=move |ev| f.prompt.set(event_target_value(&ev))
                ></textarea>
                <div class="fields" class:explained=move || explained.get() on:focusin=move |_| explained.set(true)>
                    <Field id="temperature" label="Temperature" value=f.temperature step="0.1"
                        hint="0 always takes the likeliest next piece; 1 follows the model's own odds; higher is wilder." />
                    <Field id="topp" label="Top-p" value=f.topp step="0.05"
                        hint="Choose only among the likeliest pieces that together make up this share (0.9 skips the rarest 10%)." />
                    <Field id="seed" label="Seed" value=f.seed step="1"
                        hint="The dice: the same seed and settings give the same story again." />
                    <Field id="steps" label="Max steps" value=f.steps step="1"
                        hint="How many tokens (word pieces) to write, prompt included; 0 fills the model's context." />
                    <PaceField ctx />
                </div>
                <div class="actions">
                    <button id="generate" data-testid="generate" type="submit" disabled=move || !ctx.can_generate()>
                        "Generate"
                    </button>
                    <button id="stop" data-testid="stop" type="button" class="secondary"
                        disabled=move || !ctx.running() on:click=move |_| actions::stop(ctx)>
                        "Stop"
                    </button>
                    <button id="copy-link" data-testid="copy-link" type="button" class="secondary"
                        disabled=move || ctx.active.with(Option::is_none) on:click=move |_| actions::copy_link(ctx, link_runs.get_untracked())>
                        "Copy link"
                    </button>
                    <label class="check">
                        <input type="checkbox" data-testid="link-runs" bind:checked=link_runs />
                        " The link writes the story when opened"
                    </label>
                    <span class="keys" aria-hidden="true">"Enter: write · Esc: stop"</span>
                </div>
                <Show when=move || ctx.link.with(Option::is_some)>
                    <label class="link">
                        <span>"Link to this story (copied):"</span>
                        <input id="link" data-testid="link" type="text" readonly
                            prop:value=move || ctx.link.get().unwrap_or_default() />
                    </label>
                </Show>
            </form>
            <p id="status" data-testid="status" class="status" role="status"
                data-state=move || ctx.status.with(Status::state)>
                {move || ctx.status.with(Status::message)}
            </p>
            <RunFigures ctx />
        </section>
    }
}

#[component]
fn Field(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    step: &'static str,
    hint: &'static str,
) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    view! {
        <label class="field" for=id>
            <span class="name">{label}</span>
            <input id=id data-testid=id type="number" min="0" step=step inputmode="decimal"
                aria-describedby=hint_id.clone() bind:value=value />
            <small id=hint_id class="hint">{hint}</small>
        </label>
    }
}

/// How fast the story appears: as the engine writes it, or at a typewriter's pace for a class.
#[component]
fn PaceField(ctx: Ctx) -> impl IntoView {
    let pace = ctx.reveal.pace;
    let change = move |ev: leptos::ev::Event| {
        if let Some(p) = ReadingPace::from_key(&event_target_value(&ev)) {
            pace.set(p);
        }
    };
    view! {
        <label class="field" for="pace">
            <span class="name">"Reading pace"</span>
            <select id="pace" data-testid="pace" aria-describedby="pace-hint" on:change=change
                prop:value=move || pace.get().key()>
                {ReadingPace::ALL.into_iter().map(|p| view! { <option value=p.key()>{p.label()}</option> }).collect_view()}
            </select>
            <small id="pace-hint" class="hint">"The typewriter shows one token at a time so a class can read along; tokens/s below is still the engine's own speed."</small>
        </label>
    }
}

/// Speed and backend of the current or last run.
#[component]
fn RunFigures(ctx: Ctx) -> impl IntoView {
    let backend = move || {
        ctx.backend.with(|b| match b {
            Some(b) if b.kind == BackendKind::WebGpu => "WebGPU",
            Some(_) => "CPU",
            None => "…",
        })
    };
    let ttft = move || ctx.stats.with(|s| s.and_then(|s| s.first_token_ms).map_or("–".into(), |ms| format!("{ms:.0} ms")));
    let rate = move || ctx.stats.with(|s| s.and_then(|s| s.tok_per_s).map_or("–".into(), |r| format!("{r:.1}")));
    let tokens = move || ctx.stats.with(|s| s.map_or("–".into(), |s| s.tokens.to_string()));
    view! {
        <dl class="figures" data-testid="figures">
            <div><dt>"backend"</dt><dd data-testid="figure-backend">{backend}</dd></div>
            <div><dt>"first token"</dt><dd data-testid="ttft">{ttft}</dd></div>
            <div><dt>"tokens/s"</dt><dd data-testid="tok-s">{rate}</dd></div>
            <div><dt>"tokens"</dt><dd data-testid="tokens">{tokens}</dd></div>
        </dl>
    }
}
