//! The text as tokens. Pointing at or focusing a token lights up the tokens it attends to in
//! the chosen head (or the mean over that layer's heads); a click picks it for the
//! next-token view. Byte-fallback pieces show as `<0xHH>`. The strip is one Tab stop (a
//! toolbar with a roving tabindex): arrow keys, Home and End move between tokens inside it.

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::state::State;
use crate::page::help::{About, Term};

#[component]
pub fn Strip(s: State) -> impl IntoView {
    // Attention of the focused token over all tokens, scaled so its largest is 1.
    let weights = Memo::new(move |_| {
        let (l, h) = s.shown();
        let head = (!s.mean.get()).then_some(h);
        let q = s.focus.get()?;
        s.data.with(|d| {
            let d = d.as_ref()?;
            let row = d.row(l, head, q.min(d.len() - 1));
            let max = row.iter().fold(0f32, |m, &v| m.max(v)).max(1e-9);
            Some(row.into_iter().map(|v| v / max).collect::<Vec<f32>>())
        })
    });
    let n = move || s.data.with(|d| d.as_ref().map_or(0, |d| d.len()));
    let whose = move || {
        let (l, h) = s.shown();
        if s.mean.get() {
            format!("layer {}, mean of its heads", l + 1)
        } else {
            format!("layer {}, head {}", l + 1, h + 1)
        }
    };
    // The token that holds the strip's Tab stop: the last one focused, at first the picked one.
    let cursor = RwSignal::new(s.pos.get_untracked());
    let on_key = move |e: KeyboardEvent| {
        let last = n().saturating_sub(1);
        let i = cursor.get_untracked().min(last);
        let j = match e.key().as_str() {
            "ArrowRight" | "ArrowDown" => (i + 1).min(last),
            "ArrowLeft" | "ArrowUp" => i.saturating_sub(1),
            "Home" => 0,
            "End" => last,
            _ => return,
        };
        e.prevent_default();
        cursor.set(j);
        focus_token(j);
    };
    view! {
        <section class="card strip" aria-label="The text as tokens">
            <h2>"Tokens"</h2>
            <About>
                <p>
                    "The model does not read letters or whole words but " <Term key="token" text="tokens" />
                    ": common pieces of text. A dashed box came from the prompt (or is the start marker "
                    <code>"<s>"</code> "); the others the model chose. Point at a token, or move along them with "
                    "the arrow keys, to colour the tokens it pays " <Term key="attention" /> " to: the darker, the more."
                </p>
            </About>
            <p class="hint">{move || format!("Point at or focus a token to light up what it attends to ({}). Click one to see its next-token odds.", whose())}</p>
            <label class="check">
                <input type="checkbox" data-testid="mean-heads" prop:checked=move || s.mean.get()
                    on:change=move |e| s.mean.set(event_target_checked(&e)) />
                " Mean over the layer's heads"
            </label>
            <div class="tokens" data-testid="tokens" role="toolbar" aria-label="Tokens (arrow keys move, Enter picks)"
                on:keydown=on_key>
                {move || (0..n()).map(|i| view! { <Tok s i weights cursor /> }).collect_view()}
            </div>
        </section>
    }
}

#[component]
fn Tok(s: State, i: usize, weights: Memo<Option<Vec<f32>>>, cursor: RwSignal<usize>) -> impl IntoView {
    let last = move || s.data.with(|d| d.as_ref().map_or(0, |d| d.len().saturating_sub(1)));
    let (piece, id, prompt) = s.data.with_untracked(|d| {
        d.as_ref().map_or((String::new(), 0, false), |d| (d.piece(i).to_string(), d.info.tokens[i], i < d.info.prompt_len))
    });
    let w = move || weights.with(|w| w.as_ref().and_then(|w| w.get(i).copied()));
    let label = format!("Token {i}: “{piece}”, id {id}{}", if prompt { ", from the prompt" } else { ", chosen by the model" });
    view! {
        <button type="button" class="tok" id=format!("tok-{i}") data-testid=format!("tok-{i}") aria-label=label
            tabindex=move || if cursor.get().min(last()) == i { "0" } else { "-1" }
            class:prompt=prompt
            class:focused=move || s.focus.get() == Some(i)
            class:picked=move || s.pos.get() == i
            class:later=move || s.step.get().is_some_and(|t| i > t)
            class:lit=move || w().is_some_and(|v| v > 0.4)
            style:background-color=move || w().map(|v| format!("rgba(230, 159, 0, {:.3})", v)).unwrap_or_default()
            on:mouseenter=move |_| s.focus.set(Some(i))
            on:mouseleave=move |_| s.focus.set(None)
            on:focus=move |_| { s.focus.set(Some(i)); cursor.set(i); }
            on:blur=move |_| s.focus.set(None)
            on:click=move |_| s.pos.set(i)>
            {piece.clone()}
        </button>
    }
}

fn focus_token(i: usize) {
    let doc = web_sys::window().and_then(|w| w.document());
    if let Some(el) = doc.and_then(|d| d.get_element_by_id(&format!("tok-{i}"))) {
        if let Ok(el) = el.dyn_into::<web_sys::HtmlElement>() {
            let _ = el.focus();
        }
    }
}
