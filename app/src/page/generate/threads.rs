//! The CPU threads menu (issue 20): how many cores the engine's CPU path uses. The engine
//! worker's pool is made when the worker starts (boot.js reads this setting), so a change
//! applies after a reload, which the menu offers. Where the page cannot share memory between
//! threads the menu is off and the backend line says why.

use leptos::prelude::*;

use crate::page::browser;

/// The setting's key in localStorage, read by boot.js: a thread count; absent means every core.
const KEY: &str = "tinylm.threads";
/// The largest count offered (more cores than this gain little on these models).
const MOST: usize = 16;

fn storage() -> Option<web_sys::Storage> {
    browser::window().local_storage().ok().flatten()
}

/// The kept count, or None for every core.
fn kept() -> Option<usize> {
    storage()?.get_item(KEY).ok().flatten()?.parse().ok().filter(|&n| n > 0)
}

fn keep(threads: Option<usize>) {
    if let Some(s) = storage() {
        let _ = match threads {
            Some(n) => s.set_item(KEY, &n.to_string()),
            None => s.remove_item(KEY),
        };
    }
}

fn cores() -> usize {
    (browser::window().navigator().hardware_concurrency() as usize).max(1)
}

fn isolated() -> bool {
    js_sys::Reflect::get(&browser::window(), &"crossOriginIsolated".into()).is_ok_and(|v| v.is_truthy())
}

#[component]
pub fn ThreadsMenu() -> impl IntoView {
    let chosen = RwSignal::new(kept());
    let changed = RwSignal::new(false);
    let change = move |ev: leptos::ev::Event| {
        let v = event_target_value(&ev).parse::<usize>().ok();
        keep(v);
        chosen.set(v);
        changed.set(true);
    };
    let label = |n: Option<usize>| match n {
        None => format!("Every core ({})", cores()),
        Some(1) => "1 thread".to_string(),
        Some(n) => format!("{n} threads"),
    };
    let options = std::iter::once(None).chain((1..=cores().min(MOST)).map(Some));
    view! {
        <label class="menu">
            <span class="name">"CPU threads"</span>
            <select data-testid="threads-choice" on:change=change disabled=!isolated()>
                {options
                    .map(|n| {
                        let value = n.map(|n| n.to_string()).unwrap_or_else(|| "auto".into());
                        view! { <option value=value prop:selected=move || chosen.get() == n>{label(n)}</option> }
                    })
                    .collect_view()}
            </select>
        </label>
        <Show when=move || changed.get()>
            <p class="hint" role="status" data-testid="threads-reload">
                "The engine takes its threads when it starts. "
                <button type="button" class="secondary" on:click=|_| {
                    let _ = browser::window().location().reload();
                }>"Reload now"</button>
            </p>
        </Show>
    }
}
