//! "Compare settings": the prompt and max steps above, written under 2–4 samplings at once by
//! the worker (`ToWorker::Compare`, decoded together on the CPU), each story in its own column
//! headed by its settings in words, text appearing as it arrives.

use leptos::prelude::*;

use super::compare_state::{Column, CompareState, Phase, RowSignals};
use crate::page::actions;
use crate::page::state::Ctx;
use crate::protocol::compare::{CompareRequest, MAX_COLUMNS};
use crate::protocol::ToWorker;
use crate::settings::{self, Row, Sampling};
use crate::words;

/// Checks the rows and the max steps, then asks the worker for the stories.
fn write(ctx: Ctx) {
    let c = ctx.compare;
    if !ctx.can_generate() {
        return;
    }
    let Some(model) = ctx.active_entry() else { return };
    let rows: Vec<Row> = c.rows[..c.count.get_untracked()]
        .iter()
        .map(|r| Row { temperature: r.temperature.get_untracked(), topp: r.topp.get_untracked(), seed: r.seed.get_untracked() })
        .collect();
    let checked = settings::parse_rows(&rows)
        .and_then(|cols| Ok((cols, settings::parse_steps(&ctx.form.steps.get_untracked(), model.config.seq_len)?)));
    let (columns, steps) = match checked {
        Ok(c) => c,
        Err(message) => return c.phase.set(Phase::Error(message)),
    };
    let run = ctx.run_id.get_untracked() + 1;
    ctx.run_id.set(run);
    c.run.set(run);
    c.columns.set(
        columns
            .iter()
            .map(|s: &Sampling| Column { heading: settings::describe(s), prompt: String::new(), story: String::new() })
            .collect(),
    );
    c.phase.set(Phase::Running);
    ctx.send(&ToWorker::Compare(CompareRequest { run, prompt: ctx.form.prompt.get_untracked(), steps, columns }));
}

#[component]
pub fn Compare(ctx: Ctx) -> impl IntoView {
    let c = ctx.compare;
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        write(ctx);
    };
    let rows = (0..MAX_COLUMNS)
        .map(|i| view! { <Show when=move || { i < c.count.get() }><RowFields i row=c.rows[i] /></Show> })
        .collect_view();
    view! {
        <details class="card compare-settings" data-testid="compare-settings">
            <summary>"Compare settings"</summary>
            <p class="hint" id="compare-hint">
                "The same prompt and max steps as above, written with 2 to 4 settings side by side. " {words::COMPARE_ON_CPU}
            </p>
            <form on:submit=submit novalidate aria-describedby="compare-hint">
                {rows}
                <div class="actions">
                    <button type="button" class="secondary" data-testid="compare-add"
                        disabled=move || { c.count.get() >= MAX_COLUMNS }
                        on:click=move |_| c.count.update(|n| *n = (*n + 1).min(MAX_COLUMNS))>
                        "Add a setting"
                    </button>
                    <button type="button" class="secondary" data-testid="compare-remove"
                        disabled=move || { c.count.get() <= 2 }
                        on:click=move |_| c.count.update(|n| *n = n.saturating_sub(1).max(2))>
                        "Remove the last"
                    </button>
                    <button type="submit" data-testid="compare-write" disabled=move || !ctx.can_generate()>
                        "Write them together"
                    </button>
                    <button type="button" class="secondary" data-testid="compare-stop"
                        disabled=move || !c.running() on:click=move |_| actions::stop(ctx)>
                        "Stop"
                    </button>
                </div>
            </form>
            <p class="status" role="status" data-testid="compare-status" data-state=move || c.phase.with(Phase::state)>
                {move || c.phase.with(|p| p.message(c.columns.with(Vec::len)))}
            </p>
            <div class="compare-columns">
                {move || c.columns.with(|cols| (0..cols.len()).map(|i| view! { <ColumnView c i /> }).collect_view())}
            </div>
        </details>
    }
}

#[component]
fn RowFields(i: usize, row: RowSignals) -> impl IntoView {
    let n = i + 1;
    let field = |key: &'static str, label: &'static str, step: &'static str, value: RwSignal<String>| {
        let id = format!("compare-{key}-{n}");
        let (for_id, testid) = (id.clone(), id.clone());
        view! {
            <label class="field" for=for_id>
                <span class="name">{label}</span>
                <input id=id data-testid=testid type="number" min="0" step=step inputmode="decimal" bind:value=value />
            </label>
        }
    };
    view! {
        <fieldset class="compare-row" data-testid=format!("compare-row-{n}")>
            <legend>{format!("Setting {n}")}</legend>
            {field("t", "Temperature", "0.1", row.temperature)}
            {field("p", "Top-p", "0.05", row.topp)}
            {field("s", "Seed", "1", row.seed)}
        </fieldset>
    }
}

/// Column `i`: its settings in words and its story so far.
#[component]
fn ColumnView(c: CompareState, i: usize) -> impl IntoView {
    let get = move |f: fn(&Column) -> String| move || c.columns.with(|cols| cols.get(i).map(f).unwrap_or_default());
    let n = i + 1;
    view! {
        <section class="compare-column" aria-label=format!("Story {n}") data-testid=format!("compare-column-{n}")>
            <h3>{format!("{n}. ")}{get(|c| c.heading.clone())}</h3>
            <pre class="output" data-testid=format!("compare-output-{n}")>
                <span class="echo">{get(|c| c.prompt.clone())}</span>
                {get(|c| c.story.clone())}
            </pre>
        </section>
    }
}
