//! The adapter in use, named where a changed story is read (the model card, above the story),
//! with one click back to the plain model.

use leptos::prelude::*;

use super::super::actions;
use super::super::state::Ctx;

/// Which adapter Generate uses, with a button to write with the plain model again (shown on the
/// model card and above the story, so a changed story never looks unexplained).
#[component]
pub fn AdapterBadge(ctx: Ctx, place: &'static str) -> impl IntoView {
    let name = move || ctx.adapter.with(|a| a.as_ref().map(|a| a.name.clone()).unwrap_or_default());
    view! {
        <Show when=move || ctx.adapter.with(Option::is_some)>
            <p class="adapter-badge" data-testid=format!("adapter-badge-{place}")>
                <span>"Adapter in use: “"<strong data-testid=format!("adapter-name-{place}")>{name}</strong>"”"</span>
                " "
                <button type="button" class="secondary" data-testid=format!("adapter-off-{place}")
                    disabled=move || ctx.running() on:click=move |_| actions::adapter_off(ctx)>
                    "Turn off"
                </button>
            </p>
        </Show>
    }
}
