//! The run: Start / Pause / Resume / Stop, the progress bar with speed and time left, the loss
//! curve, side-by-side samples, and the offer to resume a run a closed tab interrupted.

use leptos::prelude::*;

use super::chart::LossChart;
use super::library;
use super::run::{ended, start};
use super::state::{Phase, TrainCtx};
use crate::protocol::train::{Ending, TrainCmd};
use crate::train::overfit_from;
use crate::words::one_blank_line;

fn status(t: TrainCtx) -> String {
    let (step, total) = (t.step.get(), t.total.get());
    let loss = t.losses.with(|l| l.last().copied());
    let held = t.held.with(|h| h.last().map(|x| x.1));
    // Three decimals, as the library and the best-adapter note below write losses.
    let figures = || {
        let mut s = format!("step {step} of {total}");
        if let Some(l) = loss {
            s += &format!(" · loss {l:.3}");
        }
        if let Some(h) = held {
            s += &format!(" · held-out {h:.3}");
        }
        s
    };
    match t.phase.get() {
        Phase::Idle => "Ready: press Start to train.".into(),
        Phase::Running => format!("Training… {}", figures()),
        Phase::Ending => "Finishing the current step…".into(),
        Phase::Paused => format!("Paused at {} (saved on this device).", figures()),
        Phase::Done(Ending::Finished) => {
            format!("Done: {}. The adapter is in the library below.", figures())
        }
        Phase::Done(_) => format!("Stopped at {}. The adapter so far is in the library below.", figures()),
        Phase::Failed(e) => e,
    }
}

/// The worker's figure: remaining steps, held-out checks and samples at their measured cost.
fn time_left(t: TrainCtx) -> String {
    if t.ms_per_step.get() == 0.0 || !t.phase.with(|p| matches!(p, Phase::Running | Phase::Ending)) {
        return "–".into();
    }
    duration(t.eta_s.get())
}

/// "40 s", "3 min".
fn duration(seconds: f64) -> String {
    if seconds >= 90.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.0} s", seconds.max(1.0))
    }
}

fn estimate_line(t: TrainCtx) -> String {
    match t.estimate.get() {
        // Only before a run: once one started, its own time left is below.
        None if t.phase.with(|p| *p == Phase::Idle) => "Measuring how long this run would take here…".into(),
        None => String::new(),
        Some(Ok(e)) => format!(
            "Estimated time: about {} on this device ({}, {:.0} ms per step, measured just now).",
            duration(e.seconds),
            e.backend,
            e.step_ms
        ),
        Some(Err(e)) => format!("No time estimate: {e}"),
    }
}

/// Measures the form's run again once its settings or text have been still for a moment
/// (only while this view is shown, and never during a run: the worker does one thing at a time).
fn watch_estimate(t: TrainCtx) {
    let f = t.form;
    Effect::new(move |_| {
        let settings = f.settings_tracked();
        let text_len = t.data.text.with(String::len);
        let counted = t.counts.with(Option::is_some);
        if t.phase.with_untracked(|p| matches!(p, Phase::Running | Phase::Ending)) {
            return;
        }
        let req = t.estimate_req.get_untracked() + 1;
        t.estimate_req.set(req);
        t.estimate.set(None);
        let Ok(settings) = settings else {
            return t.estimate.set(Some(Err("check the settings.".into())));
        };
        if text_len == 0 || !counted {
            return;
        }
        set_timeout(
            move || {
                if t.estimate_req.get_untracked() == req && !t.busy() {
                    let text = t.data.text.get_untracked();
                    t.send(TrainCmd::Estimate { req, text, settings });
                }
            },
            std::time::Duration::from_millis(600),
        );
    });
}

fn control(t: TrainCtx, pause: bool) {
    let job = t.job.get_untracked();
    t.phase.set(Phase::Ending);
    t.send(if pause { TrainCmd::Pause { job } } else { TrainCmd::Stop { job } });
}

#[component]
pub fn RunPanel(t: TrainCtx) -> impl IntoView {
    watch_estimate(t);
    let running = move || t.phase.with(|p| matches!(p, Phase::Running));
    let paused = move || t.phase.with(|p| matches!(p, Phase::Paused));
    let resume = move |_| {
        if let Some(run) = t.last.get_untracked() {
            start(t, Some(run));
        }
    };
    view! {
        <div class="run" data-testid="train-run">
            <h3>"3. Train"</h3>
            <div class="actions">
                <button type="button" data-testid="train-start" disabled=move || t.busy() on:click=move |_| start(t, None)>"Start"</button>
                <button type="button" class="secondary" data-testid="train-pause" disabled=move || !running() on:click=move |_| control(t, true)>"Pause"</button>
                <button type="button" class="secondary" data-testid="train-resume" disabled=move || !paused() on:click=resume>"Resume"</button>
                <button type="button" class="secondary" data-testid="train-stop" disabled=move || !(running() || paused())
                    on:click=move |_| if paused() {
                        // Nothing runs: keep what the pause saved.
                        if let Some(run) = t.last.get_untracked() { ended(t, Ending::Stopped, Some(run.snapshot)); }
                    } else { control(t, false) }>"Stop"</button>
            </div>
            <p class="hint estimate" data-testid="train-estimate"
                data-seconds=move || t.estimate.with(|e| e.as_ref().and_then(|r| r.as_ref().ok()).map(|e| format!("{:.1}", e.seconds)))>
                {move || estimate_line(t)}
            </p>
            <p class="status" data-testid="train-status" role="status" data-state=move || t.phase.with(Phase::key)>{move || status(t)}</p>
            <BestOffer t />
            <Show when=move || t.save_note.with(|n| !n.is_empty())>
                <p class="save-note" role="alert" data-testid="train-save-note">{move || t.save_note.get()}</p>
            </Show>
            // Numbers for tests and tools only: `hidden`, so screen readers skip them.
            <span hidden data-testid="train-saved-step">{move || t.saved_step.get().map(|s| s.to_string()).unwrap_or_default()}</span>
            <progress data-testid="train-progress" max=move || t.planned_steps().max(1) value=move || t.step.get()></progress>
            <dl class="figures">
                <div><dt>"step"</dt><dd data-testid="train-step">{move || format!("{} / {}", t.step.get(), t.planned_steps())}</dd></div>
                <div><dt>"tokens/s"</dt><dd data-testid="train-tok-s">{move || format!("{:.0}", t.tokens_per_s.get())}</dd></div>
                <div><dt>"time left"</dt><dd data-testid="train-eta">{move || time_left(t)}</dd></div>
                <div><dt>"checkpoints"</dt><dd data-testid="train-checkpoints">{move || t.snapshots.get()}</dd></div>
            </dl>
            <LossChart t />
            <Memorising t />
            <p class="hint" data-testid="train-backend" data-kind=move || t.backend.with(|b| if b == "WebGPU" { "webgpu" } else if b.is_empty() { "" } else { "cpu" })>
                {move || match t.backend.get() {
                    b if b.is_empty() => "Training runs in the engine's worker (on WebGPU when the model runs there, else on the CPU), so the page stays responsive.".to_string(),
                    b if b == "WebGPU" => "Training on the graphics processor (WebGPU) in the engine's worker.".to_string(),
                    b => format!("Training on the processor: {b}."),
                }}
            </p>
            <pre hidden data-testid="train-losses">{move || serde_json::to_string(&t.losses.get()).unwrap_or_default()}</pre>
            <pre hidden data-testid="train-held">{move || serde_json::to_string(&t.held.get()).unwrap_or_default()}</pre>
            <Samples t />
        </div>
    }
}

/// Plain words when the held-out loss has risen for a while: the adapter memorises its text.
#[component]
fn Memorising(t: TrainCtx) -> impl IntoView {
    let seen = move || t.held.with(|h| overfit_from(h));
    view! {
        {move || seen().map(|(step, low, last)| view! {
            <p class="memorising" data-testid="overfit" data-step=step.to_string() role="status">
                <strong>"The adapter has started memorising its text (overfitting). "</strong>
                {format!(
                    "Since step {step} the held-out loss — on text it never trains on — has risen from {low:.3} to {last:.3}, \
                     while the training loss keeps falling: it is learning this text by heart instead of its style, and \
                     more steps make it worse. The adapter from step {step} is the best one."
                )}
            </p>
        })}
    }
}

/// At the end, the offer to keep the adapter of the lowest held-out loss (when it is not the last).
#[component]
fn BestOffer(t: TrainCtx) -> impl IntoView {
    let offer = move || {
        let done = t.phase.with(|p| matches!(p, Phase::Done(_)));
        let end = t.held.with(|h| h.last().copied());
        t.best.with(|b| b.as_ref().map(|(s, l, _)| (*s, *l))).filter(|_| done).zip(end)
    };
    view! {
        {move || offer().map(|((step, loss), (end_step, end_loss))| if step == end_step {
            view! {
                <p class="best" data-testid="best" data-step=step.to_string()>
                    {format!("The adapter at step {end_step}, where the run ended, has its lowest held-out loss ({loss:.3}): it is the one in the library.")}
                </p>
            }.into_any()
        } else {
            view! {
                <p class="best" data-testid="best" data-step=step.to_string()>
                    {format!("The held-out loss was lowest at step {step} ({loss:.3}; {end_loss:.3} at step {end_step}, where the run ended). ")}
                    <button type="button" data-testid="keep-best" on:click=move |_| library::add_best(t)>
                        {format!("Keep the adapter from step {step}")}
                    </button>
                </p>
            }.into_any()
        })}
    }
}

#[component]
fn Samples(t: TrainCtx) -> impl IntoView {
    view! {
        <Show when=move || t.samples.with(|s| !s.is_empty())>
            {move || t.samples.with(|s| s.last().cloned()).map(|(step, off, on)| view! {
                <div class="samples" data-testid="samples" data-step=step.to_string()>
                    <h4>{format!("Samples after step {step}: same prompt, same seed")}</h4>
                    <div class="pair">
                        <figure><figcaption>"Adapter off (the model as it was)"</figcaption><pre data-testid="sample-off">{one_blank_line(&off)}</pre></figure>
                        <figure><figcaption>"Adapter on"</figcaption><pre data-testid="sample-on">{one_blank_line(&on)}</pre></figure>
                    </div>
                </div>
            })}
        </Show>
    }
}

/// The offer to continue a run the last visit left unfinished.
#[component]
pub fn Interrupted(t: TrainCtx) -> impl IntoView {
    view! {
        <Show when=move || t.interrupted.with(Option::is_some)>
            {move || t.interrupted.get().map(|run| {
                let ck = &run.snapshot;
                let text = format!(
                    "“{}” was interrupted at step {} of {} (saved on this device, {}).",
                    ck.name, ck.step, ck.settings.steps, run.data_label
                );
                let again = run.clone();
                view! {
                    <div class="interrupted" data-testid="interrupted" role="alert">
                        <p>{text}</p>
                        <button type="button" data-testid="resume-saved" on:click=move |_| start(t, Some(again.clone()))>"Resume"</button>
                        <button type="button" class="secondary" data-testid="discard-saved" on:click=move |_| {
                            t.interrupted.set(None);
                            t.saver.clear();
                        }>"Discard"</button>
                    </div>
                }
            })}
        </Show>
    }
}
