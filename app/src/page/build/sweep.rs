//! The learning-rate experiment in the page: the same short run (the form's shape, text,
//! windows, warm-up and z-loss; one random init and data order) at a few rates, one after
//! another, its loss curves overlaid, and each run's final loss as `tinylm pretrain --lr-sweep`
//! reports it (the loss on the next batch after the last step). Each rate runs with the form's
//! warm-up and z-loss, or four ways as `--lr-sweep` (plain, warm-up, z-loss, both); the final
//! losses and attention logits against the rate are `ratechart`'s.

use leptos::prelude::*;
use tinylm_engine::pretrain::{sweep_ways, SweepWay};
use wasm_bindgen_futures::spawn_local;

use super::ratechart::{start_loss, variants, RateCharts};
use super::run::{fetch_bytes, settings, text, TOKENIZER};
use super::state::{BuildCtx, Sweep};
use crate::page::train::chart::Curves as Chart;
use crate::protocol::build::{BuildCmd, BuildEvent, BuildSettings, SweepRunSpec, SweepStart};
use crate::protocol::Bytes;

/// At most this many rates (each a run, or four, one after another).
const MAX_RATES: usize = 6;
const MAX_RATE: f64 = 100.0;
/// The form's `sweep_ways` for one run per rate (the settings' warm-up and z-loss); else four.
const ONE_WAY: &str = "one";
/// Per-step losses above the start's are drawn at the chart's top edge, this much above it, so
/// a blown-up run does not squash the others' curves into a line.
const CURVE_CAP: f64 = 1.05;

/// "0.0003, 0.003, 0.03, 1" as rates, or what is wrong in words.
pub fn rates(list: &str) -> Result<Vec<f64>, String> {
    let rates: Vec<f64> = list
        .split(',')
        .map(|s| s.trim().parse::<f64>().map_err(|_| format!("“{}” is not a learning rate.", s.trim())))
        .collect::<Result<_, _>>()?;
    if rates.len() < 2 || rates.len() > MAX_RATES {
        return Err(format!("Give from 2 to {MAX_RATES} learning rates, separated by commas."));
    }
    // Up to 100: rates past 1 are where a run blows up outright, which the class should see.
    if let Some(bad) = rates.iter().find(|&&r| !(r > 0.0 && r <= MAX_RATE)) {
        return Err(format!("Each learning rate must be above 0 and at most {MAX_RATE} (not {bad})."));
    }
    Ok(rates)
}

/// The form's settings with the experiments' steps per run.
pub fn sweep_settings(b: BuildCtx) -> Result<BuildSettings, String> {
    let mut s = settings(b)?;
    s.steps = match b.form.sweep_steps.get_untracked().trim().parse::<u32>() {
        Ok(n) if (1..=10_000).contains(&n) => n,
        _ => return Err("Steps per run must be a whole number from 1 to 10000.".into()),
    };
    Ok(s)
}

/// `--lr-sweep`'s four ways (the form's warm-up and z-loss, or `--lr-sweep`'s when they are 0).
pub fn four_ways(s: &BuildSettings) -> [SweepWay; 4] {
    sweep_ways(s.steps, s.warmup, s.z_loss)
}

pub fn start(b: BuildCtx) {
    let go = || -> Result<_, String> {
        let s = sweep_settings(b)?;
        let rates = rates(&b.form.rates.get_untracked())?;
        // Variant by variant, each over the rates, in `--lr-sweep`'s order.
        let ways = if b.form.sweep_ways.get_untracked() == ONE_WAY {
            vec![(s.warmup, s.z_loss)]
        } else {
            four_ways(&s).map(|w| (w.warmup, w.z_loss)).to_vec()
        };
        let runs = ways
            .into_iter()
            .flat_map(|(warmup, z_loss)| rates.iter().map(move |&lr| SweepRunSpec { lr, warmup, z_loss }))
            .collect();
        Ok((s, runs))
    };
    match go() {
        Ok((s, runs)) => launch(b, b.sweep, s, runs),
        Err(e) => b.note.set(e),
    }
}

/// Runs an experiment's `runs`, one after another, shown in `target`.
pub fn launch(b: BuildCtx, target: RwSignal<Sweep>, s: BuildSettings, runs: Vec<SweepRunSpec>) {
    b.note.set(String::new());
    spawn_local(async move {
        let (text, _) = match text(b).await {
            Ok(t) => t,
            Err(e) => return b.note.set(e),
        };
        let Some(tok) = fetch_bytes(TOKENIZER).await else {
            return b.note.set(format!("Could not load {TOKENIZER}."));
        };
        let job = b.job.get_untracked() + 1;
        b.job.set(job);
        let n = runs.len();
        target.set(Sweep {
            job,
            runs: runs.clone(),
            curves: vec![vec![]; n],
            attn: vec![f64::NEG_INFINITY; n],
            ends: vec![None; n],
            running: true,
            stopped: false,
        });
        let start = SweepStart { job, settings: s, runs, text, tokenizer: Bytes::from_slice(&tok) };
        b.send(BuildCmd::Sweep(Box::new(start)));
    });
}

pub fn stop(b: BuildCtx, target: RwSignal<Sweep>) {
    b.send(BuildCmd::Stop { job: target.with_untracked(|s| s.job) });
}

/// The worker's news of an experiment (true when `ev` was one).
pub fn receive(b: BuildCtx, ev: &BuildEvent) -> bool {
    receive_in(b, b.sweep, ev) || receive_in(b, b.variants, ev)
}

fn receive_in(b: BuildCtx, target: RwSignal<Sweep>, ev: &BuildEvent) -> bool {
    let mine = |job: u64| target.with_untracked(|s| s.job == job && s.running);
    match *ev {
        BuildEvent::SweepStep { job, run, step, loss, attn } if mine(job) => target.update(|s| {
            if let (Some(c), Some(a)) = (s.curves.get_mut(run), s.attn.get_mut(run)) {
                c.push((step, loss));
                *a = a.max(attn);
            }
        }),
        BuildEvent::SweepRun { job, run, final_loss, diverged_at } if mine(job) => target.update(|s| {
            if let Some(e) = s.ends.get_mut(run) {
                *e = Some(final_loss.ok_or(diverged_at));
            }
        }),
        BuildEvent::SweepEnded { job, stopped } if mine(job) => target.update(|s| {
            s.running = false;
            s.stopped = stopped;
        }),
        BuildEvent::Failed { job, ref message } if mine(job) => {
            target.update(|s| s.running = false);
            b.note.set(message.clone());
        }
        _ => return false,
    }
    true
}

/// Each run's final loss, comma-separated (empty where it blew up or has not ended).
pub fn finals(s: &Sweep) -> String {
    let each = |e: &Option<Result<f64, Option<u32>>>| e.as_ref().and_then(|e| e.as_ref().ok().copied());
    s.ends.iter().map(|e| each(e).map_or(String::new(), |l| l.to_string())).collect::<Vec<_>>().join(",")
}

/// One run's line in the legend.
fn legend(lr: f64, end: &Option<Result<f64, Option<u32>>>, best: bool) -> String {
    let end = match end {
        None => "running or waiting".into(),
        Some(Ok(l)) if best => format!("final loss {l:.3}, the lowest"),
        Some(Ok(l)) => format!("final loss {l:.3}"),
        Some(Err(Some(s))) => format!("blew up at step {s}"),
        Some(Err(None)) => "blew up".into(),
    };
    format!("rate {lr}: {end}")
}

/// The runs of the `shown`-th variant (indices into the experiment's runs).
fn shown_runs(s: &Sweep, shown: usize) -> Vec<usize> {
    let (names, of) = variants(s);
    let shown = shown.min(names.len().saturating_sub(1));
    (0..s.runs.len()).filter(|&i| of[i] == shown).collect()
}

/// The choice of variant whose per-step curves are drawn (when there are several).
fn curve_choice(b: BuildCtx, shown: RwSignal<usize>) -> impl IntoView {
    move || {
        let names = b.sweep.with(|s| variants(s).0);
        (names.len() > 1).then(|| {
            let radios = names
                .into_iter()
                .enumerate()
                .map(|(v, n)| {
                    let id = format!("build-sweep-show-{v}");
                    let (for_id, testid) = (id.clone(), id.clone());
                    view! {
                        <label for=for_id>
                            <input type="radio" name="build-sweep-show" id=id data-testid=testid
                                prop:checked=move || shown.get() == v on:change=move |_| shown.set(v) />
                            {n}
                        </label>
                    }
                })
                .collect_view();
            view! { <div role="radiogroup" aria-label="Loss curves of" class="curve-choice">"Loss curves of: "{radios}</div> }
        })
    }
}

/// Runs' loss curves for a chart, each loss capped a little above the start's so a blown-up run
/// runs along the top edge (see `CURVE_CAP`).
pub fn capped_curves(s: &Sweep, runs: impl IntoIterator<Item = usize>) -> Vec<Vec<(f64, f64)>> {
    let cap = start_loss(s).map_or(f64::INFINITY, |l| l * CURVE_CAP);
    runs.into_iter().map(|i| s.curves[i].iter().map(|&(st, l)| (st as f64, l.min(cap))).collect()).collect()
}

#[component]
pub fn SweepPanel(b: BuildCtx) -> impl IntoView {
    let f = b.form;
    // One variant's curves at a time: every run's in one chart would be a tangle.
    let shown = RwSignal::new(0usize);
    let series = Signal::derive(move || b.sweep.with(|s| capped_curves(s, shown_runs(s, shown.get()))));
    let x_max = Signal::derive(move || f.sweep_steps.get().trim().parse::<f64>().unwrap_or(100.0));
    let running = move || b.sweep.with(|s| s.running);
    let started = move || b.sweep.with(|s| !s.runs.is_empty());
    let finals = move || b.sweep.with(finals);
    let rows = move || {
        b.sweep.with(|s| {
            let mine = shown_runs(s, shown.get());
            let ok = |i: usize| s.ends[i].as_ref().and_then(|e| e.as_ref().ok().copied());
            let best = mine.iter().filter_map(|&i| ok(i)).fold(f64::INFINITY, f64::min);
            mine.iter()
                .enumerate()
                .map(|(k, &i)| {
                    let text = legend(s.runs[i].lr, &s.ends[i], ok(i) == Some(best));
                    view! { <li class=format!("key line-{k}-key")>{text}</li> }
                })
                .collect_view()
        })
    };
    view! {
        <section class="build-sweep" aria-label="Learning-rate experiment" data-testid="build-sweep">
            <h3>"Experiment: which learning rate?"</h3>
            <p class="hint">
                "The same short run at a few learning rates, one after another: the same shape, text, start and \
                 order of windows, only the rate differs. Too small: it learns slowly. Too large: it is unstable \
                 (the loss jumps about, the attention grows without bound, or the run blows up)."
            </p>
            <fieldset class="settings" disabled=move || b.busy()>
                <div class="fields train-fields">
                    <label class="field" for="build-rates">
                        <span class="name">"Learning rates"</span>
                        <input id="build-rates" data-testid="build-rates" type="text" bind:value=f.rates />
                        <small class="hint">"2 to 6 rates, separated by commas; spread them over a few powers of ten, up to 100."</small>
                    </label>
                    <label class="field" for="build-sweep-steps">
                        <span class="name">"Steps per run"</span>
                        <input id="build-sweep-steps" data-testid="build-sweep-steps" type="text" bind:value=f.sweep_steps />
                        <small class="hint">"Shape, text and windows are the settings above."</small>
                    </label>
                    <label class="field" for="build-sweep-ways">
                        <span class="name">"Runs at each rate"</span>
                        <select id="build-sweep-ways" data-testid="build-sweep-ways" prop:value=move || f.sweep_ways.get()
                            on:change=move |e| f.sweep_ways.set(event_target_value(&e))>
                            // Each option says whether it is chosen: the select's own value, set when
                            // the panel is built after the saved form was read, comes before its options
                            // exist and was lost (the page showed "Four" while the form held "One").
                            <option value="four" prop:selected=move || f.sweep_ways.get() != ONE_WAY>
                                "Four: plain, warm-up, z-loss, both"
                            </option>
                            <option value=ONE_WAY prop:selected=move || f.sweep_ways.get() == ONE_WAY>
                                "One: the warm-up and z-loss above"
                            </option>
                        </select>
                        <small class="hint">"Four shows what moves the rate where training breaks (and takes four times as long)."</small>
                    </label>
                </div>
            </fieldset>
            <div class="buttons">
                <button type="button" data-testid="build-sweep-start" disabled=move || b.busy() on:click=move |_| start(b)>
                    "Run the experiment"
                </button>
                <button type="button" class="secondary" data-testid="build-sweep-stop" disabled=move || !running()
                    on:click=move |_| stop(b, b.sweep)>"Stop"</button>
            </div>
            <Show when=started fallback=|| view! {
                <p class="hint chart-empty" data-testid="build-sweep-empty">
                    "Each run's final loss and largest attention logit against its rate appear here, and its loss curve."
                </p>
            }>
                <RateCharts sweep=b.sweep />
                <figure class="chart">
                    {curve_choice(b, shown)}
                    <Chart series x_max label="Loss per step at each learning rate".into() testid="build-sweep-chart" solid=true />
                    <figcaption>
                        <ul class="sweep-legend" data-testid="build-sweep-legend" data-running=move || running().to_string()
                            data-finals=finals>{rows}</ul>
                        "One colour per rate. A loss above the one at the start is drawn along the top edge."
                    </figcaption>
                </figure>
            </Show>
        </section>
    }
}
