//! Logit lens: the final norm and classifier applied after every layer, as a table of the top
//! token and its probability, layers down and positions across (a window around the pick).
//! Columns the worker has not computed yet are asked for, nearest the pick first.

use leptos::prelude::*;

use super::state::State;
use crate::page::help::{About, Term};
use crate::protocol::inspect::{nearest, InspectCtl};
use crate::protocol::ToWorker;

/// Positions shown at once; longer texts scroll the window with the picked position.
const WINDOW: usize = 16;

fn next_seq(s: State) -> u64 {
    s.lens_seq.update_value(|n| *n += 1);
    s.lens_seq.get_value()
}

/// Ends any lens work the worker is doing (an empty, newer request), so a new inspection
/// does not wait behind it.
pub fn cancel_pending(s: State) {
    s.ctx.send(&ToWorker::InspectCtl(InspectCtl::Lens { id: 0, seq: next_seq(s), positions: Vec::new() }));
}

#[component]
pub fn Lens(s: State) -> impl IntoView {
    let span = move || {
        let n = s.data.with(|d| d.as_ref().map_or(0, |d| d.len()));
        let start = s.pos.get().saturating_sub(WINDOW / 2).min(n.saturating_sub(WINDOW));
        start..(start + WINDOW).min(n)
    };
    ask_for_missing(s, span);
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
            (0..d.layers())
                .rev()
                .map(|l| {
                    let cells = span()
                        .map(|t| {
                            let Some(top) = s.lens.with(|m| m.get(&t).map(|c| c[l])) else {
                                return view! { <td class="pending" data-pending="true" title="Computing…">"…"</td> }.into_any();
                            };
                            let next = d.info.tokens.get(t + 1) == Some(&top.id);
                            view! {
                                // Light enough at 100% for dark text (WCAG AA); over the black of presentation
                                // mode the same tint stays dark enough for white text.
                                <td class:hit=next style:background-color=format!("rgba(0, 114, 178, {:.3})", top.prob * 0.45)>
                                    <span class="piece">{d.vocab(top.id).to_string()}</span>
                                    <span class="num">{format!("{:.0}%", top.prob * 100.0)}</span>
                                </td>
                            }
                            .into_any()
                        })
                        .collect::<Vec<_>>();
                    let name = if l + 1 == d.layers() { format!("L{} (output)", l + 1) } else { format!("L{}", l + 1) };
                    view! { <tr><th scope="row">{name}</th>{cells}</tr> }
                })
                .collect::<Vec<_>>()
        })
    };
    let note = move || {
        s.data.with(|d| {
            let d = d.as_ref()?;
            let have = s.lens.with(|m| m.len());
            (have < d.len()).then(|| {
                let i = &d.info;
                // As `trace::lens_flops`: a classifier matmul per layer and position.
                let gflop = 2.0 * (i.n_layers * d.len()) as f64 * (i.vocab_size * i.dim) as f64 / 1e9;
                format!(
                    "The lens of all {} positions would take {gflop:.0} GFLOP, so it is worked out for the positions \
                     shown, the picked one first ({have} so far).",
                    d.len()
                )
            })
        })
    };
    view! {
        <section class="card lens" aria-label="Logit lens">
            <h2>"Logit lens"</h2>
            <About>
                <p>
                    "The " <Term key="logit lens" /> " asks every " <Term key="layer" /> " “what would you predict next if you "
                    "were the last?” Each column is a token of the text, each row a layer, the bottom row the first. "
                    "After layer 1 the " <Term key="residual stream" /> " still mostly holds the token itself, so the lens "
                    "often shows that same token at nearly 100%: it has not yet worked out what comes next. Higher "
                    "layers move towards the real next token."
                </p>
            </About>
            <p class="hint">
                "The model's final norm and classifier applied to the residual stream after each layer: the token \
                 it would predict next if it stopped there, and how sure it would be. Underlined: the token that \
                 actually came next."
            </p>
            <p class="hint" data-testid="lens-note">{note}</p>
            <div class="scroll">
                <table class="lens-table" data-testid="lens">
                    <thead><tr><th scope="col">"layer"</th>{head}</tr></thead>
                    <tbody>{body}</tbody>
                </table>
            </div>
        </section>
    }
}

/// Asks the worker for the window's missing columns whenever the window or the data changes,
/// unless every missing one was asked for already by the newest request (still being answered).
/// A cancelled request (a new inspection began) is asked again once that one ends.
fn ask_for_missing(s: State, span: impl Fn() -> std::ops::Range<usize> + 'static) {
    let asked = StoredValue::new((0u64, 0u64, Vec::<usize>::new()));
    Effect::new(move |_| {
        s.phase.track();
        let Some(id) = s.data.with(|d| d.as_ref().map(|d| d.info.id)) else { return };
        let range = span();
        let at = s.pos.get().clamp(range.start, range.end.saturating_sub(1));
        let missing: Vec<usize> =
            s.lens.with(|m| nearest(at, range.end).filter(|t| range.contains(t) && !m.contains_key(t)).collect());
        let (was, seq, before) = asked.get_value();
        let newest = s.lens_seq.get_value() == seq;
        if missing.is_empty() || (was == id && newest && missing.iter().all(|t| before.contains(t))) {
            return;
        }
        if s.phase.with_untracked(|p| *p == super::state::Phase::Busy) {
            // The worker is busy with a new inspection: ask when it is done (or stopped).
            return;
        }
        let seq = next_seq(s);
        asked.set_value((id, seq, missing.clone()));
        s.ctx.send(&ToWorker::InspectCtl(InspectCtl::Lens { id, seq, positions: missing }));
    });
}
