//! Logit lens: the final norm and classifier applied after every layer, as a table of the top
//! token and its probability, layers down and positions across (a window around the pick).

use leptos::prelude::*;

use super::State;

/// Positions shown at once; longer texts scroll the window with the picked position.
const WINDOW: usize = 16;

#[component]
pub fn Lens(s: State) -> impl IntoView {
    let span = move || {
        let n = s.data.with(|d| d.as_ref().map_or(0, |d| d.len()));
        let start = s.pos.get().saturating_sub(WINDOW / 2).min(n.saturating_sub(WINDOW));
        start..(start + WINDOW).min(n)
    };
    let head = move || {
        s.data.with(|d| {
            let Some(d) = d.as_ref() else { return Vec::new() };
            span().map(|t| view! {
                <th scope="col" class:picked=move || s.pos.get() == t>
                    <button type="button" class="linkish" on:click=move |_| s.pos.set(t)>{format!("{t} “{}”", d.piece(t))}</button>
                </th>
            }).collect::<Vec<_>>()
        })
    };
    let body = move || {
        s.data.with(|d| {
            let Some(d) = d.as_ref() else { return Vec::new() };
            (0..d.layers()).rev().map(|l| {
                let cells = span().map(|t| {
                    let top = d.lens(l, t);
                    let next = d.info.tokens.get(t + 1) == Some(&top.id);
                    view! {
                        <td class:hit=next class:strong={top.prob > 0.5} style:background-color=format!("rgba(0, 114, 178, {:.3})", top.prob * 0.85)>
                            <span class="piece">{d.vocab(top.id).to_string()}</span>
                            <span class="num">{format!("{:.0}%", top.prob * 100.0)}</span>
                        </td>
                    }
                }).collect::<Vec<_>>();
                let name = if l + 1 == d.layers() { format!("L{} (output)", l + 1) } else { format!("L{}", l + 1) };
                view! { <tr><th scope="row">{name}</th>{cells}</tr> }
            }).collect::<Vec<_>>()
        })
    };
    view! {
        <section class="card lens" aria-label="Logit lens">
            <h2>"Logit lens"</h2>
            <p class="hint">
                "The model's final norm and classifier applied to the residual stream after each layer: the token \
                 it would predict next if it stopped there, and how sure it would be. Underlined: the token that \
                 actually came next."
            </p>
            <div class="scroll">
                <table class="lens-table" data-testid="lens">
                    <thead><tr><th scope="col">"layer"</th>{head}</tr></thead>
                    <tbody>{body}</tbody>
                </table>
            </div>
        </section>
    }
}
