//! A story as its tokens, with the first token that differs from the unchanged story marked and
//! what follows it faded.

use leptos::prelude::*;

use crate::protocol::experiments::Story;

/// `first`: where this story first differs from the unchanged one (`None`: it does not).
#[component]
pub fn StoryText(story: Story, first: Option<usize>, title: String, testid: String) -> impl IntoView {
    let tokens = serde_json::to_string(&story.tokens).unwrap_or_default();
    let note = match first {
        None => "The same story as the unchanged one.".to_string(),
        Some(i) => match story.pieces.get(i) {
            Some(p) => format!("First different token: number {i}, “{}” (marked).", p.trim()),
            None => format!("The story ends early, at token {i}."),
        },
    };
    // Token 0 is BOS, which the text leaves out.
    let pieces = story
        .pieces
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, p)| {
            let text = if i == 1 { p.trim_start().to_string() } else { p.clone() };
            let text = text.replace("<0x0A>", "\n");
            match first {
                Some(f) if i == f => {
                    view! { <mark class="first-diff" data-testid=format!("{testid}-first-diff")>{text}</mark> }.into_any()
                }
                Some(f) if i > f => view! { <span class="after-diff">{text}</span> }.into_any(),
                _ => view! { <span>{text}</span> }.into_any(),
            }
        })
        .collect_view();
    view! {
        <article class="ex-story" data-testid=testid.clone() data-tokens=tokens
            data-first-diff=first.map(|i| i.to_string()).unwrap_or_default()>
            <h4>{title}</h4>
            <p class="ex-story-text">{pieces}</p>
            <p class="hint">{note}</p>
        </article>
    }
}
