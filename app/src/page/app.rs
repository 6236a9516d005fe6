//! The page layout: header, model card, controls, the story and the footer.

use leptos::prelude::*;

use super::controls::Controls;
use super::models::ModelCard;
use super::state::Ctx;
use super::{actions, browser, client, inspect, keys, memory};
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
    inspect::State::install();
    super::storage_panel::install();
    super::train::install();
    let tab = RwSignal::new(TABS[0].key);
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
            <Tabs tab />
            <div role="tabpanel" id="tab-panel" aria-labelledby=move || format!("tab-{}", tab.get())>
                {move || {
                    let key = tab.get();
                    TABS.iter().find(|t| t.key == key).map(|t| (t.view)(ctx))
                }}
            </div>
            <footer class="foot">
                "stories260K and tok512: MIT, Andrej Karpathy (llama2.c); trained on TinyStories "
                "(CDLA-Sharing-1.0). Everything runs on this device; nothing you type leaves the page. "
                <a href="models/LICENSE-NOTES.md">"Licence notes"</a>
            </footer>
        </div>
    }
}

/// A view the reader can switch to. Adding a tab is one line in `TABS`.
struct Tab {
    key: &'static str,
    label: &'static str,
    view: fn(Ctx) -> AnyView,
}

const TABS: &[Tab] = &[
    Tab { key: "generate", label: "Generate", view: generate_view },
    Tab { key: "inspect", label: "Inspect", view: inspect::view },
    Tab { key: "train", label: "Train", view: super::train::view },
    Tab { key: "storage", label: "Storage", view: super::storage_panel::view },
];

/// The tab bar (arrow keys move between tabs, as in the ARIA tabs pattern).
#[component]
fn Tabs(tab: RwSignal<&'static str>) -> impl IntoView {
    let on_key = move |e: leptos::ev::KeyboardEvent| {
        let i = TABS.iter().position(|t| t.key == tab.get_untracked()).unwrap_or(0);
        let j = match e.key().as_str() {
            "ArrowRight" => (i + 1) % TABS.len(),
            "ArrowLeft" => (i + TABS.len() - 1) % TABS.len(),
            _ => return,
        };
        e.prevent_default();
        tab.set(TABS[j].key);
        if let Some(el) = browser::window().document().and_then(|d| d.get_element_by_id(&format!("tab-{}", TABS[j].key))) {
            let _ = wasm_bindgen::JsCast::unchecked_into::<web_sys::HtmlElement>(el).focus();
        }
    };
    view! {
        <nav class="tabs" role="tablist" aria-label="Views" on:keydown=on_key>
            {TABS.iter().map(|t| {
                let key = t.key;
                let selected = move || tab.get() == key;
                view! {
                    <button type="button" role="tab" id=format!("tab-{key}") data-testid=format!("tab-{key}")
                        aria-selected=move || selected().to_string() aria-controls="tab-panel"
                        tabindex=move || if selected() { "0" } else { "-1" }
                        class:selected=selected on:click=move |_| tab.set(key)>
                        {t.label}
                    </button>
                }
            }).collect_view()}
        </nav>
    }
}

fn generate_view(ctx: Ctx) -> AnyView {
    view! {
        <main class="layout">
            <ModelCard ctx />
            <Controls ctx />
            <Story ctx />
        </main>
    }
    .into_any()
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
