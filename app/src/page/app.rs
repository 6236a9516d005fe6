//! The page layout: header, the tabs and the footer; the page state provided to every view; the
//! router that hands the worker's messages to the page's model state and to each view.

use std::rc::Rc;

use leptos::prelude::*;

use super::client::Client;
use super::client::Handler;
use super::help::{Glossary, Tour, TourState};
use super::state::{Ctx, Status};
use super::{actions, browser, build, generate, inspect, keys, memory, models, shelf, storage_panel, train};
use crate::link::{restore_plan, LinkState};
use crate::protocol::FromWorker;

/// A view the reader can switch to. Adding a view is one module (with `install`, which provides
/// its state as context and returns its message handler, and `view`), one protocol module for
/// its messages, and one line in `TABS`.
struct Tab {
    key: &'static str,
    label: &'static str,
    install: fn(Ctx) -> Handler,
    view: fn() -> AnyView,
}

const TABS: &[Tab] = &[
    Tab { key: "generate", label: "Generate", install: generate::install, view: generate::view },
    Tab { key: "inspect", label: "Inspect", install: inspect::install, view: inspect::view },
    Tab { key: "train", label: "Train", install: train::install, view: train::view },
    Tab { key: "build", label: "Build", install: build::install, view: build::view },
    Tab { key: "storage", label: "Storage", install: storage_panel::install, view: storage_panel::view },
];

#[component]
pub fn App() -> impl IntoView {
    let hash = browser::hash();
    let opened = LinkState::decode(&hash);
    let remembered = memory::load();
    let link = (!hash.is_empty()).then_some(&opened.model);
    let ctx = Ctx::new(&opened, restore_plan(link, remembered.models, remembered.active), Client::new());
    provide_context(ctx);
    // Every view's state is made now, under the app's owner, so it outlives tab switches and
    // hears the worker while another tab is shown.
    let handlers: Rc<Vec<Handler>> = Rc::new(TABS.iter().map(|t| (t.install)(ctx)).collect());
    // The model shelf (in the model card): after `models`, whose restore it may continue.
    let shelf = shelf::install(ctx);
    ctx.client.set_router(Rc::new(move |msg: FromWorker| {
        models::receive(ctx, &msg);
        shelf(&msg);
        for h in handlers.iter() {
            h(&msg);
        }
    }));
    let shelf_state = expect_context::<shelf::ShelfState>();
    ctx.client.set_on_crash(Rc::new(move |what| {
        shelf::engine_stopped(shelf_state);
        models::crashed(ctx, what)
    }));
    match ctx.client.start() {
        Ok(()) => models::load_bundled(ctx),
        Err(e) => ctx.status.set(Status::Error(e)),
    }
    keys::install(ctx);
    let tab = RwSignal::new(TABS[0].key);
    let tour = TourState::load();
    provide_context(tour);
    // "view-inspect" and the like: the header and tabs take the shown view's width.
    let class = move || format!("app view-{}{}", tab.get(), if ctx.present.get() { " present" } else { "" });
    view! {
        <div class=class data-testid="app" data-parses=move || ctx.parses.get().to_string()>
            <header class="top">
                <div>
                    <h1>"TinyLM Lab"</h1>
                    <p class="tagline">"Tiny language models running in your browser: Karpathy's story models, or a small Llama-family model you bring."</p>
                </div>
                <div class="top-buttons">
                <button id="help" data-testid="help" type="button" class="secondary" on:click=move |_| tour.start()>
                    "Help"
                </button>
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
                </div>
            </header>
            <Tour tour tab />
            <Tabs tab />
            // The one main landmark: whichever view is shown.
            <main>
                <div role="tabpanel" id="tab-panel" aria-labelledby=move || format!("tab-{}", tab.get())>
                    {move || {
                        let key = tab.get();
                        TABS.iter().find(|t| t.key == key).map(|t| (t.view)())
                    }}
                </div>
            </main>
            <footer class="foot">
                <Glossary />
                <p>
                    "stories260K and tok512: MIT, Andrej Karpathy (llama2.c); trained on TinyStories "
                    "(CDLA-Sharing-1.0). Everything runs on this device; nothing you type leaves the page. A shelf "
                    "model is fetched from its hub (huggingface.co) only when you press its Download. "
                    <a href="licences.html" data-testid="licences">"Licences"</a>
                </p>
            </footer>
        </div>
    }
}

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
        // The tab list inside a nav landmark (a role on the nav itself would remove the landmark).
        <nav aria-label="Views">
        <div class="tabs" role="tablist" aria-label="Views" on:keydown=on_key>
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
        </div>
        </nav>
    }
}
