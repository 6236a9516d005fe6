//! The next-token distribution at the picked position: the model's own probabilities next to
//! what the sampler draws from under the temperature and top-p sliders, with the tokens that
//! survive the top-p cut marked — computed by the engine's own sampler rules.

use leptos::prelude::*;
use tinylm_engine::trace::next_tokens;

use super::state::State;
use crate::page::help::{About, Term};

const K: usize = 12;

#[component]
pub fn NextTokens(s: State) -> impl IntoView {
    let view_data = Memo::new(move |_| {
        let (t, temp, topp) = (s.pos.get(), s.temperature.get(), s.topp.get());
        s.data.with(|d| {
            let d = d.as_ref()?;
            let t = t.min(d.len() - 1);
            let next = next_tokens(d.logits_at(t), temp, topp, K).ok()?;
            let actual = d.info.tokens.get(t + 1).copied();
            let rows: Vec<(String, u32, f32, f32, bool)> =
                next.top.iter().map(|c| (d.vocab(c.id).to_string(), c.id, c.prob, c.reshaped, c.kept)).collect();
            Some((t, d.piece(t).to_string(), rows, next.kept, next.kept_mass, actual))
        })
    });
    let heading = move || {
        view_data.with(|v| match v {
            Some((t, piece, ..)) => format!("After token {t} “{piece}”, the next token"),
            None => "Next token".into(),
        })
    };
    // The kept share is measured after the temperature, so the note names it: at t = 1 the
    // "model" column of the same rows can add up to a different share.
    let kept_note = move || {
        let temp = s.temperature.get();
        view_data.with(|v| match v {
            Some((.., kept, mass, _)) => {
                let (noun, verb) = if *kept == 1 { ("token", "survives") } else { ("tokens", "survive") };
                format!(
                    "{kept} {noun} {verb} the top-p cut ({:.1}% of the probability at temperature {temp:.2}, before renormalising).",
                    mass * 100.0
                )
            }
            None => String::new(),
        })
    };
    // The inspected story was written at temperature 0 and the slider is not there now.
    let greedy_story =
        move || s.data.with(|d| d.as_ref().and_then(|d| d.info.settings.as_ref()).is_some_and(|st| st.temperature == 0.0));
    let greedy_note = move || greedy_story() && s.temperature.get() != 0.0;
    let rows = move || {
        view_data.with(|v| {
            let Some((_, _, rows, _, _, actual)) = v else { return Vec::new() };
            rows.iter()
                .cloned()
                .map(|(piece, id, p, r, kept)| {
                    view! {
                        <tr class:cut=!kept class:actual=actual == &Some(id) data-testid="candidate" data-kept=kept.to_string()>
                            <th scope="row"><span class="piece">{piece}</span>{if actual == &Some(id) { " ★" } else { "" }}</th>
                            <td class="bar-cell"><span class="bar original" style:width=format!("{:.1}%", p * 100.0)></span>
                                <span class="num">{format!("{:.1}%", p * 100.0)}</span></td>
                            <td class="bar-cell"><span class="bar reshaped" style:width=format!("{:.1}%", r * 100.0)></span>
                                <span class="num">{format!("{:.1}%", r * 100.0)}</span></td>
                            <td>{if kept { "kept" } else { "cut" }}</td>
                        </tr>
                    }
                })
                .collect::<Vec<_>>()
        })
    };
    view! {
        <section class="card next" aria-label="Next-token probabilities">
            <h2>{heading}</h2>
            <About>
                <p>
                    "For the picked token, the model scores every possible next token (its " <Term key="logit" text="logits" />
                    ") and turns the scores into " <Term key="probability" text="probabilities" /> ". The grey bars are the "
                    "model's own odds; the blue bars are what the dice actually use after " <Term key="temperature" />
                    " and " <Term key="top-p" /> ". Move the sliders to see how they reshape the odds."
                </p>
            </About>
            <div class="sliders">
                <Slider label="Temperature" testid="next-temperature" value=s.temperature min=0.0 max=2.0 step=0.05 />
                <Slider label="Top-p" testid="next-topp" value=s.topp min=0.0 max=1.0 step=0.01 />
            </div>
            <table class="cands">
                <thead><tr><th scope="col">"token"</th><th scope="col">"model (t = 1)"</th>
                    <th scope="col">"sampler draws"</th><th scope="col">"top-p"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            <p class="hint" data-testid="kept-note">{kept_note}" ★ marks the token that came next in the text. Temperature 0 always takes the likeliest."</p>
            <Show when=greedy_note>
                <p class="hint" data-testid="greedy-note">
                    {move || format!(
                        "This story was written at temperature 0, so its dice always took the top row. The sliders start at {:.2} to \
                         show how the dice would draw; set Temperature to 0 to see the story's own choice.",
                        s.temperature.get()
                    )}
                </p>
            </Show>
        </section>
    }
}

#[component]
fn Slider(label: &'static str, testid: &'static str, value: RwSignal<f32>, min: f32, max: f32, step: f32) -> impl IntoView {
    view! {
        <label class="field">
            <span class="name">{move || format!("{label}: {:.2}", value.get())}</span>
            <input type="range" data-testid=testid min=min.to_string() max=max.to_string() step=step.to_string()
                aria-label=label prop:value=move || value.get().to_string()
                on:input=move |e| {
                    if let Ok(v) = event_target_value(&e).parse::<f32>() {
                        value.set(v.clamp(min, max))
                    }
                } />
        </label>
    }
}
