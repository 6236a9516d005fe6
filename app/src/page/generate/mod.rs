//! The Generate view: the model card (menu, facts, backend, loading your own), the prompt and
//! settings, the story as the worker writes it, and "Compare settings" (`compare`). Its messages are `protocol`'s own
//! (`ToWorker::Generate`, `FromWorker::Text` …).

mod adapter_badge;
mod compare;
mod compare_state;
mod controls;
mod model_card;
mod threads;

use leptos::prelude::*;

use super::help::{About, Term};
use super::state::{Ctx, Status};
use crate::protocol::FromWorker;
use adapter_badge::AdapterBadge;
use compare::Compare;
pub use compare_state::CompareState;
use controls::Controls;
use model_card::ModelCard;

/// Makes the view's message handler (its state is the page's, `Ctx`).
pub fn install(ctx: Ctx) -> super::client::Handler {
    ctx.reveal.on_end(std::rc::Rc::new(move |stats, stopped| {
        ctx.stats.set(Some(stats));
        if ctx.running() {
            ctx.status.set(Status::Done { stats, stopped });
        }
    }));
    Box::new(move |msg| receive(ctx, msg))
}

fn receive(ctx: Ctx, msg: &FromWorker) {
    let current = |run: &u64| *run == ctx.run_id.get_untracked();
    match msg {
        FromWorker::Text { run, prompt, pieces, stats } if current(run) && ctx.running() => {
            if !prompt.is_empty() {
                ctx.out_prompt.update(|s| s.push_str(prompt));
            }
            ctx.reveal.push(pieces);
            ctx.stats.set(Some(*stats));
            ctx.status.set(Status::Running(*stats));
        }
        // The run ends on the page once its last piece is shown (`pacing`).
        FromWorker::Finished { run, stats, stopped } if current(run) => ctx.reveal.finish(*stats, *stopped),
        FromWorker::RunFailed { run, message } if current(run) => ctx.status.set(Status::Error(message.clone())),
        FromWorker::Compare(news) => ctx.compare.receive(news),
        // Replies about runs the page has moved past, and other views' news.
        _ => {}
    }
}

/// The tab's view.
pub fn view() -> AnyView {
    let ctx = expect_context::<Ctx>();
    view! {
        <div class="layout">
            <div class="view-about">
                <About>
                    <p>
                        "A language model writes a story one " <Term key="token" /> " at a time. For each next token it "
                        "gives every possible token a " <Term key="probability" /> ", then one is picked: "
                        <Term key="temperature" /> ", " <Term key="top-p" /> " and the " <Term key="seed" />
                        " decide how. The model here is tiny (260 thousand numbers) and only knows simple children's stories."
                    </p>
                </About>
            </div>
            <ModelCard ctx />
            <Controls ctx />
            <Story ctx />
            <Compare ctx />
        </div>
    }
    .into_any()
}

#[component]
fn Story(ctx: Ctx) -> impl IntoView {
    view! {
        <section class="card story" aria-label="Story">
            <h2>"Story"</h2>
            <AdapterBadge ctx place="story" />
            <Show when=move || ctx.link_note.with(Option::is_some)>
                <p class="link-note" data-testid="link-note" role="status">{move || ctx.link_note.get().unwrap_or_default()}</p>
            </Show>
            <pre id="output" data-testid="output" class="output" aria-live="polite">
                <span class="echo">{move || ctx.out_prompt.get()}</span>
                {move || ctx.out_story.get()}
            </pre>
        </section>
    }
}
