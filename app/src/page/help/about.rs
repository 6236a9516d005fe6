//! "What am I looking at?": a short disclosure at the top of a view or card.

use leptos::prelude::*;

#[component]
pub fn About(children: Children) -> impl IntoView {
    view! {
        <details class="about" data-testid="about">
            <summary>"What am I looking at?"</summary>
            <div class="about-text">{children()}</div>
        </details>
    }
}
