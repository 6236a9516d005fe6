//! A patching map as a table: one row per layer (or head), one column per token, each cell
//! coloured by how much of the clean logit difference came back, with a colour legend.

use leptos::prelude::*;

use crate::protocol::experiments::Patched;

/// How much of the clean difference a patched run brings back (1 = all, 0 = none). With equal
/// differences (identical prompts, say) there is nothing to recover: a run that gives that same
/// difference has all of it, 1.
pub fn recovered(p: &Patched, diff: f32) -> Option<f32> {
    p.maps.recovered(diff).or_else(|| (diff == p.maps.clean_diff).then_some(1.0))
}

/// Blue for what comes back (1), white for nothing (0), red for the other way (−1).
pub fn colour(r: Option<f32>) -> String {
    let Some(r) = r else { return "#cccccc".into() };
    let r = r.clamp(-1.0, 1.0);
    let (to, t) = if r >= 0.0 { ((33.0, 102.0, 172.0), r) } else { ((178.0, 24.0, 43.0), -r) };
    let mix = |c: f32| (255.0 + (c - 255.0) * t).round() as u8;
    format!("rgb({}, {}, {})", mix(to.0), mix(to.1), mix(to.2))
}

/// One map: `rows` (label, values `[T]`), the columns labelled by the tokens.
#[component]
pub fn Map(
    p: std::sync::Arc<Patched>,
    caption: String,
    corner: &'static str,
    testid: &'static str,
    rows: Vec<(String, Vec<f32>)>,
) -> impl IntoView {
    let cols = p
        .clean_pieces
        .iter()
        .zip(&p.corrupt_pieces)
        .enumerate()
        .map(|(t, (a, b))| {
            // Pieces as the Tokens view writes them (`trace::pieces`): the start marker, which
            // both prompts share, reads <s> for llama2.c's tokenizer, the model's own for others.
            let label = if a == b { a.clone() } else { format!("{}/{}", a.trim(), b.trim()) };
            view! { <th scope="col" class:differs={a != b} title=format!("position {t}")>{label}</th> }
        })
        .collect_view();
    let body = rows
        .into_iter()
        .enumerate()
        .map(|(i, (label, values))| {
            let cells = values
                .into_iter()
                .enumerate()
                .map(|(t, v)| {
                    let r = recovered(&p, v);
                    let text = r.map_or("–".to_string(), |r| format!("{:.0}", r * 100.0));
                    let dark = r.is_some_and(|r| r.abs() > 0.55);
                    view! {
                        <td style:background-color=colour(r) class:dark=dark data-testid=format!("{testid}-{i}-{t}")
                            data-diff=v.to_string() data-recovered=r.map(|r| r.to_string()).unwrap_or_default()
                            title=format!("{label}, position {t}: logit difference {v:.3}")>{text}</td>
                    }
                })
                .collect_view();
            view! { <tr><th scope="row">{label}</th>{cells}</tr> }
        })
        .collect_view();
    let region = caption.clone();
    view! {
        <div class="ex-map-scroll" tabindex="0" role="region" aria-label=region>
            <table class="ex-map" data-testid=testid>
                <caption>{caption}</caption>
                <thead><tr><th scope="col">{corner}</th>{cols}</tr></thead>
                <tbody>{body}</tbody>
            </table>
        </div>
    }
}

/// The colour legend shared by both maps.
#[component]
pub fn Legend() -> impl IntoView {
    view! {
        <div class="ex-legend" data-testid="patch-legend">
            <span>"−100%"</span>
            <span class="ex-legend-bar" role="img"
                aria-label="Colour scale: red is −100% (pushed the other way), white 0% (nothing came back), blue 100% (all of it came back)"></span>
            <span>"100%"</span>
            <span class="hint">"Numbers in the cells: % of the clean difference that came back."</span>
        </div>
    }
}
