//! The learning-rate experiment in the page: the same short run (the form's shape, text,
//! windows, warm-up and z-loss; one random init and data order) at a few rates, one after
//! another, its loss curves overlaid, and each run's final loss as `tinylm pretrain --lr-sweep`
//! reports it (the loss on the next batch after the last step).

use leptos::prelude::*;
use wasm_bindgen_futures::spawn_local;

use super::run::{fetch_bytes, settings, text, TOKENIZER};
use super::state::{BuildCtx, Sweep};
use crate::page::train::chart::Curves as Chart;
use crate::protocol::build::{BuildCmd, BuildEvent, SweepStart};
use crate::protocol::Bytes;

/// At most this many rates (each a run, one after another).
const MAX_RATES: usize = 6;

/// "0.0003, 0.003, 0.03, 1" as rates, or what is wrong in words.
pub fn rates(list: &str) -> Result<Vec<f64>, String> {
    let rates: Vec<f64> = list
        .split(',')
        .map(|s| s.trim().parse::<f64>().map_err(|_| format!("“{}” is not a learning rate.", s.trim())))
        .collect::<Result<_, _>>()?;
    if rates.len() < 2 || rates.len() > MAX_RATES {
        return Err(format!("Give from 2 to {MAX_RATES} learning rates, separated by commas."));
    }
    if let Some(bad) = rates.iter().find(|&&r| !(r > 0.0 && r <= 1.0)) {
        return Err(format!("Each learning rate must be above 0 and at most 1 (not {bad})."));
    }
    Ok(rates)
}

pub fn start(b: BuildCtx) {
    let f = b.form;
    let go = || -> Result<_, String> {
        let mut s = settings(b)?;
        s.steps = match f.sweep_steps.get_untracked().trim().parse::<u32>() {
            Ok(n) if (1..=10_000).contains(&n) => n,
            _ => return Err("Steps per run must be a whole number from 1 to 10000.".into()),
        };
        Ok((s, rates(&f.rates.get_untracked())?))
    };
    let (s, rates) = match go() {
        Ok(x) => x,
        Err(e) => return b.note.set(e),
    };
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
        let n = rates.len();
        b.sweep.set(Sweep {
            job,
            rates: rates.clone(),
            curves: vec![vec![]; n],
            ends: vec![None; n],
            running: true,
            stopped: false,
        });
        let start = SweepStart { job, settings: s, rates, text, tokenizer: Bytes::from_slice(&tok) };
        b.send(BuildCmd::Sweep(Box::new(start)));
    });
}

pub fn stop(b: BuildCtx) {
    b.send(BuildCmd::Stop { job: b.sweep.with_untracked(|s| s.job) });
}

/// The worker's news of the experiment (true when `ev` was one).
pub fn receive(b: BuildCtx, ev: &BuildEvent) -> bool {
    let mine = |job: u64| b.sweep.with_untracked(|s| s.job == job && s.running);
    match *ev {
        BuildEvent::SweepStep { job, run, step, loss } if mine(job) => b.sweep.update(|s| {
            if let Some(c) = s.curves.get_mut(run) {
                c.push((step, loss));
            }
        }),
        BuildEvent::SweepRun { job, run, final_loss, diverged_at } if mine(job) => b.sweep.update(|s| {
            if let Some(e) = s.ends.get_mut(run) {
                *e = Some(final_loss.ok_or(diverged_at));
            }
        }),
        BuildEvent::SweepEnded { job, stopped } if mine(job) => b.sweep.update(|s| {
            s.running = false;
            s.stopped = stopped;
        }),
        BuildEvent::Failed { job, ref message } if mine(job) => {
            b.sweep.update(|s| s.running = false);
            b.note.set(message.clone());
        }
        _ => return false,
    }
    true
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

#[component]
pub fn SweepPanel(b: BuildCtx) -> impl IntoView {
    let f = b.form;
    let series = Signal::derive(move || {
        b.sweep.with(|s| s.curves.iter().map(|c| c.iter().map(|&(st, l)| (st as f64, l)).collect()).collect())
    });
    let x_max = Signal::derive(move || f.sweep_steps.get().trim().parse::<f64>().unwrap_or(100.0));
    let running = move || b.sweep.with(|s| s.running);
    let started = move || b.sweep.with(|s| !s.rates.is_empty());
    let finals = move || {
        b.sweep.with(|s| {
            s.ends
                .iter()
                .map(|e| e.as_ref().and_then(|e| e.as_ref().ok().copied()).map_or(String::new(), |l| l.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    let rows = move || {
        b.sweep.with(|s| {
            let best = s.ends.iter().filter_map(|e| e.as_ref()?.as_ref().ok().copied()).fold(f64::INFINITY, f64::min);
            s.rates
                .iter()
                .zip(&s.ends)
                .enumerate()
                .map(|(i, (&lr, end))| {
                    let is_best = matches!(end, Some(Ok(l)) if *l == best);
                    view! { <li class=format!("key line-{}-key", i % 4)>{legend(lr, end, is_best)}</li> }
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
                        <small class="hint">"2 to 6 rates, separated by commas; spread them over a few powers of ten."</small>
                    </label>
                    <label class="field" for="build-sweep-steps">
                        <span class="name">"Steps per run"</span>
                        <input id="build-sweep-steps" data-testid="build-sweep-steps" type="text" bind:value=f.sweep_steps />
                        <small class="hint">"Shape, text, windows, warm-up and z-loss are the settings above."</small>
                    </label>
                </div>
            </fieldset>
            <div class="buttons">
                <button type="button" data-testid="build-sweep-start" disabled=move || b.busy() on:click=move |_| start(b)>
                    "Run the experiment"
                </button>
                <button type="button" class="secondary" data-testid="build-sweep-stop" disabled=move || !running()
                    on:click=move |_| stop(b)>"Stop"</button>
            </div>
            <Show when=started fallback=|| view! {
                <p class="hint chart-empty" data-testid="build-sweep-empty">"The loss curves of the runs appear here, one colour per rate."</p>
            }>
                <figure class="chart">
                    <Chart series x_max label="Loss per step at each learning rate".into() testid="build-sweep-chart" solid=true />
                    <figcaption>
                        <ul class="sweep-legend" data-testid="build-sweep-legend" data-running=move || running().to_string()
                            data-finals=finals>{rows}</ul>
                    </figcaption>
                </figure>
            </Show>
        </section>
    }
}
