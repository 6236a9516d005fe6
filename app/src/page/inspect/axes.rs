//! Token labels along a heatmap's axes: keys (columns) across the top, queries (rows) down the
//! left. Every label is drawn while the cells are big enough to read one (`ALL_UP_TO` tokens);
//! beyond that only the row and column under the pointer or keyboard cursor are labelled.
//! The labels are for the eye (`aria-hidden`): the readout under the map says the same in words.

use leptos::prelude::*;

use super::state::State;

/// Up to this many tokens every label is shown (a 512 px map then has cells of 21 px or more;
/// a phone's 300 px map, 12 px: one line of small type).
pub const ALL_UP_TO: usize = 24;

/// The heatmap (`children`, a canvas) with its axes; `cell` is the (query, key) pointed at.
#[component]
pub fn Axes(s: State, cell: RwSignal<Option<(usize, usize)>>, children: Children) -> impl IntoView {
    let pieces = move || s.data.with(|d| d.as_ref().map(|d| d.info.pieces.clone()).unwrap_or_default());
    let keys = move || labels(pieces(), cell.get().map(|c| c.1), "key");
    let queries = move || labels(pieces(), cell.get().map(|c| c.0), "query");
    view! {
        <div class="heat-frame">
            <span class="axis-corner" aria-hidden="true">"looks at →"<br />"↓ token"</span>
            <div class="axis axis-keys" aria-hidden="true" data-testid="axis-keys">{keys}</div>
            <div class="axis axis-queries" aria-hidden="true" data-testid="axis-queries">{queries}</div>
            {children()}
        </div>
    }
}

/// All labels (each a 1/n share of the axis), or only the pointed one at its place.
fn labels(pieces: Vec<String>, at: Option<usize>, kind: &'static str) -> AnyView {
    let n = pieces.len().max(1);
    if pieces.len() <= ALL_UP_TO {
        return pieces
            .into_iter()
            .enumerate()
            .map(|(i, p)| view! { <span class="axis-label" class:on=move || at == Some(i)>{shown(&p)}</span> })
            .collect_view()
            .into_any();
    }
    let Some(i) = at.filter(|&i| i < n) else { return ().into_any() };
    let offset = format!("{:.3}%", (i as f64 + 0.5) * 100.0 / n as f64);
    let (top, left) = if kind == "query" { (offset, String::new()) } else { (String::new(), offset) };
    view! {
        <span class="axis-label on pointed" style:top=top style:left=left>{shown(&pieces[i])}</span>
    }
    .into_any()
}

/// A piece as a label: a leading space shows as "␣" so " the" and "the" differ.
fn shown(p: &str) -> String {
    match p.strip_prefix(' ') {
        Some(rest) => format!("␣{rest}"),
        None => p.to_string(),
    }
}
