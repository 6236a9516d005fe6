//! The page layout: header, model card, controls, the story and the footer.

use leptos::prelude::*;

use super::controls::Controls;
use super::models::ModelCard;
use super::state::Ctx;
use super::{actions, browser, client, keys, memory};
use crate::link::{restore_plan, LinkState};

#[component]
pub fn App() -> impl IntoView {
    let hash = browser::hash();
    let opened = LinkState::decode(&hash);
    let remembered = memory::load();
    let link = (!hash.is_empty()).then_some(&opened.model);
    let ctx = Ctx::new(&opened, restore_plan(link, remembered.models, remembered.active));
    client::start(ctx, 0);
    keys::install(ctx);
    let class = move || if ctx.present.get() { "app present" } else { "app" };
    view! {
        <div class=class data-testid="app">
            <header class="top">
                <div>
                    <h1>"TinyLM Lab"</h1>
                    <p class="tagline">"Karpathy's tiny llama2.c story models, running in your browser."</p>
                </div>
                <button
                    id="present"
                    data-testid="present"
                    type="button"
                    class="secondary"
                    aria-pressed=move || ctx.present.get().to_string()
                    on:click=move |_| actions::toggle_present(ctx)
                >
                    {move || if ctx.present.get() { "Exit presentation" } else { "Presentation mode" }}
                </button>
            </header>
            <main class="layout">
                <ModelCard ctx />
                <Controls ctx />
                <Story ctx />
                {super::storage_panel::view(ctx)}
            </main>
            <footer class="foot">
                "stories260K and tok512: MIT, Andrej Karpathy (llama2.c); trained on TinyStories "
                "(CDLA-Sharing-1.0). Everything runs on this device; nothing you type leaves the page. "
                <a href="models/LICENSE-NOTES.md">"Licence notes"</a>
            </footer>
        </div>
    }
}

#[component]
fn Story(ctx: Ctx) -> impl IntoView {
    view! {
        <section class="card story" aria-label="Story">
            <h2>"Story"</h2>
            <pre id="output" data-testid="output" class="output" aria-live="polite">
                <span class="echo">{move || ctx.out_prompt.get()}</span>
                {move || ctx.out_story.get()}
            </pre>
        </section>
    }
}
