//! The warm-up and z-loss experiment: the same short run at one (high) rate four ways, plain,
//! with warm-up, with z-loss and with both (`tinylm pretrain --lr-sweep`'s variants), their loss
//! curves overlaid and a sentence on what each fix changed against the plain run.

use leptos::prelude::*;
use tinylm_engine::pretrain::SWEEP_WAY_NAMES;

use super::state::{BuildCtx, Sweep};
use super::sweep::{capped_curves, finals, four_ways, launch, stop, sweep_settings};
use crate::page::train::chart::{short, Curves as Chart};
use crate::protocol::build::SweepRunSpec;

pub fn start(b: BuildCtx) {
    let go = || -> Result<_, String> {
        let s = sweep_settings(b)?;
        let lr = match b.form.variant_lr.get_untracked().trim().parse::<f64>() {
            Ok(r) if r > 0.0 && r <= 1.0 => r,
            _ => return Err("The experiment's learning rate must be a number above 0 and at most 1.".into()),
        };
        let runs = four_ways(&s).map(|w| SweepRunSpec { lr, warmup: w.warmup, z_loss: w.z_loss });
        Ok((s, runs.to_vec()))
    };
    match go() {
        Ok((s, runs)) => launch(b, b.variants, s, runs),
        Err(e) => b.note.set(e),
    }
}

/// What each fix changed against the plain run, once all four ended.
pub fn summary(s: &Sweep) -> Option<String> {
    if s.running || s.ends.len() != 4 || s.ends.iter().any(Option::is_none) {
        return None;
    }
    let end = |i: usize| s.ends[i].unwrap_or(Err(None));
    let attn = |i: usize| s.attn[i];
    let mut out = Vec::new();
    for (i, name) in SWEEP_WAY_NAMES.iter().enumerate().skip(1) {
        let what = match (end(0), end(i)) {
            (Err(_), Ok(l)) => format!("rescued the run that blew up: final loss {l:.3}"),
            (_, Err(at)) => format!("still blew up{}", at.map_or(String::new(), |a| format!(" at step {a}"))),
            (Ok(p), Ok(l)) => format!("{}, {}", loss_change(l, p), attn_change(attn(i), attn(0))),
        };
        out.push(format!("With {name}: {what}."));
    }
    Some(out.join(" "))
}

/// A fix's final loss against the plain run's: to 3 decimals, or "about the same" where those
/// agree.
fn loss_change(l: f64, p: f64) -> String {
    let (ls, ps) = (format!("{l:.3}"), format!("{p:.3}"));
    if ls == ps {
        return format!("final loss {ls}, about the same as the plain run's");
    }
    format!("final loss {ls} ({} than the plain run's {ps})", if l < p { "lower" } else { "higher" })
}

/// A fix's largest attention logit against the plain run's: "about the same" within 1%, else
/// with the fewest decimals (up to 2) that tell them apart.
fn attn_change(a: f64, p: f64) -> String {
    let near = (a - p).abs() <= 0.01 * a.abs().max(p.abs());
    let apart = (0..=2usize).map(|d| (format!("{a:.d$}"), format!("{p:.d$}"))).find(|(x, y)| x != y);
    match apart {
        Some((a, p)) if !near => format!("largest attention logit {a} instead of {p}"),
        _ => format!("largest attention logit about the same ({})", short(a)),
    }
}

#[component]
pub fn VariantsPanel(b: BuildCtx) -> impl IntoView {
    let f = b.form;
    let v = b.variants;
    let series = Signal::derive(move || v.with(|s| capped_curves(s, 0..s.curves.len())));
    let x_max = Signal::derive(move || f.sweep_steps.get().trim().parse::<f64>().unwrap_or(100.0));
    let running = move || v.with(|s| s.running);
    let started = move || v.with(|s| !s.runs.is_empty());
    let rows = move || {
        v.with(|s| {
            (0..s.runs.len())
                .map(|i| {
                    let r = s.runs[i];
                    let losses = s.curves[i].iter().map(|x| x.1.to_string()).collect::<Vec<_>>().join(",");
                    let end = match &s.ends[i] {
                        None => "running or waiting".to_string(),
                        Some(Ok(l)) => format!("final loss {l:.3}"),
                        Some(Err(at)) => format!("blew up{}", at.map_or(String::new(), |a| format!(" at step {a}"))),
                    };
                    let text = format!("{} (warm-up {}, z-loss {}): {end}", SWEEP_WAY_NAMES[i], r.warmup, r.z_loss);
                    view! { <li class=format!("key line-{}-key", i % 4) data-losses=losses>{text}</li> }
                })
                .collect_view()
        })
    };
    view! {
        <section class="build-sweep" aria-label="Warm-up and z-loss experiment" data-testid="build-variants">
            <h3>"Experiment: what do warm-up and z-loss change?"</h3>
            <p class="hint">
                "The same short run at one high learning rate, four ways: plain; with warm-up (the rate climbs \
                 from 0 over the first steps); with z-loss (a small penalty that keeps the output's log-normaliser \
                 near 0); and with both. These are the fixes that keep big training runs from blowing up."
            </p>
            <fieldset class="settings" disabled=move || b.busy()>
                <div class="fields train-fields">
                    <label class="field" for="build-variant-lr">
                        <span class="name">"Learning rate"</span>
                        <input id="build-variant-lr" data-testid="build-variant-lr" type="text" bind:value=f.variant_lr />
                        <small class="hint">
                            "Pick one where the learning-rate experiment struggles. Steps per run, warm-up and z-loss are \
                             the settings above (0 there: a tenth of the run, 0.0001)."
                        </small>
                    </label>
                </div>
            </fieldset>
            <div class="buttons">
                <button type="button" data-testid="build-variants-start" disabled=move || b.busy() on:click=move |_| start(b)>
                    "Run the four"
                </button>
                <button type="button" class="secondary" data-testid="build-variants-stop" disabled=move || !running()
                    on:click=move |_| stop(b, v)>"Stop"</button>
            </div>
            <Show when=started fallback=|| view! {
                <p class="hint chart-empty" data-testid="build-variants-empty">"The four runs' loss curves appear here."</p>
            }>
                <figure class="chart">
                    <Chart series x_max label="Loss per step: plain, warm-up, z-loss, both".into() testid="build-variants-chart" solid=true />
                    <figcaption>
                        <ul class="sweep-legend" data-testid="build-variants-legend" data-running=move || running().to_string()
                            data-finals=move || v.with(finals)>{rows}</ul>
                    </figcaption>
                </figure>
                <p data-testid="build-variants-summary">{move || v.with(summary)}</p>
            </Show>
        </section>
    }
}
