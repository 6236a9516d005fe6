//! The Build view's panels: the shape and text, the settings in plain words, the controls,
//! the loss curves, the samples' timeline and the instruments (the Train view's chart code).

use leptos::prelude::*;
use tinylm_engine::Config;

use super::run;
use super::state::{BuildCtx, Phase};
use crate::page::train::chart::Curves as Chart;
use crate::page::train::data::CORPORA;
use crate::protocol::build::{BuildEstimate, RunTiming, Shape, SHAPES};
use crate::protocol::train::Ending;
use crate::words::size;

/// Bytes a step holds for `shape` at `batch` × `seq`: weights, gradients and AdamW's two
/// moments (4 × f32 per parameter) plus the activations kept for the backward pass (a rough
/// count: per layer ~12 vectors of `dim`, 3 of `hidden` and the attention of every head per
/// position; and the logits twice).
pub fn memory_bytes(c: &Config, batch: usize, seq: usize) -> u64 {
    let per_pos = c.n_layers * (12 * c.dim + 3 * c.hidden_dim + c.n_heads * seq) + 2 * c.vocab_size;
    16 * c.n_params() + 4 * (batch * seq * per_pos) as u64
}

fn config(s: &Shape) -> Option<Config> {
    Config::parse(s.spec).ok()
}

/// "27K", "1.0M".
fn count(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else {
        format!("{}K", (n + 500) / 1000)
    }
}

#[component]
pub fn ShapePanel(b: BuildCtx) -> impl IntoView {
    let f = b.form;
    let busy = move || b.busy();
    let dims = move || {
        let n = |s: RwSignal<String>, d: usize| s.get().trim().parse().unwrap_or(d);
        (n(f.batch, 8), n(f.seq, 64))
    };
    view! {
        <fieldset class="settings" data-testid="build-shape" disabled=busy>
            <h3>"1. Shape and text"</h3>
            <div role="radiogroup" aria-label="Model shape" class="shapes">
                {SHAPES.iter().map(|s| {
                    let key = s.key;
                    let c = config(s);
                    let (params, layers, dim) = c.map_or((0, 0, 0), |c| (c.n_params(), c.n_layers, c.dim));
                    let id = format!("build-shape-{key}");
                    let (for_id, testid) = (id.clone(), id.clone());
                    view! {
                        <label class="shape" for=for_id>
                            <input type="radio" name="build-shape" id=id data-testid=testid value=key
                                prop:checked=move || f.shape.get() == key on:change=move |_| f.shape.set(key.into()) />
                            <span class="name">{format!("{} — {} parameters", s.label, count(params))}</span>
                            <small class="hint">
                                {move || {
                                    let (batch, seq) = dims();
                                    let mem = c.map_or(0, |c| memory_bytes(&c, batch, seq));
                                    format!("{layers} {} of width {dim}; about {} of memory to train", if layers == 1 { "layer" } else { "layers" }, size(mem))
                                }}
                            </small>
                        </label>
                    }
                }).collect_view()}
            </div>
            <label class="field" for="build-text">
                <span class="name">"Text"</span>
                <select id="build-text" data-testid="build-text" prop:value=move || f.corpus.get()
                    on:change=move |e| f.corpus.set(event_target_value(&e))>
                    // Each option says whether it is chosen (as the sweep's select: a value set
                    // before the options exist is lost).
                    {CORPORA.iter().map(|c| view! { <option value=c.key prop:selected=move || f.corpus.get() == c.key>{c.title}</option> }).collect_view()}
                    <option value="own" prop:selected=move || f.corpus.get() == "own">"Your own text (type or paste below)"</option>
                </select>
                <small class="hint">"The last tenth is held out: never trained on, it shows whether the model learns or memorises."</small>
            </label>
            <Show when=move || f.corpus.get() == "own">
                <label class="field" for="build-own-text">
                    <span class="name">"Your text"</span>
                    <textarea id="build-own-text" data-testid="build-own-text" rows="5" bind:value=f.own_text></textarea>
                </label>
            </Show>
        </fieldset>
    }
}

#[component]
fn Setting(id: &'static str, label: &'static str, value: RwSignal<String>, hint: &'static str) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    view! {
        <label class="field" for=id>
            <span class="name">{label}</span>
            <input id=id data-testid=id type="text" aria-describedby=hint_id.clone() bind:value=value />
            <small id=hint_id class="hint">{hint}</small>
        </label>
    }
}

#[component]
pub fn SettingsPanel(b: BuildCtx) -> impl IntoView {
    let f = b.form;
    view! {
        <fieldset class="settings" data-testid="build-settings" disabled=move || b.busy()>
            <h3>"2. Settings"</h3>
            <div class="fields train-fields">
                <Setting id="build-steps" label="Steps" value=f.steps hint="How many updates to make. Hundreds give words; thousands, sentences." />
                <Setting id="build-lr" label="Learning rate" value=f.lr
                    hint="How big each update is. Too high and the run blows up; too low and it barely moves." />
                <Setting id="build-warmup" label="Warm-up steps" value=f.warmup
                    hint="The rate rises from 0 over these first steps, then slowly falls (cosine)." />
                <Setting id="build-batch" label="Windows per step" value=f.batch hint="Text windows averaged in each update." />
                <Setting id="build-seq" label="Window length" value=f.seq hint="Tokens the model reads at once (at most 256)." />
                <Setting id="build-zloss" label="z-loss" value=f.z_loss
                    hint="Keeps the output's log-normaliser near 0, which steadies runs at high rates. 0 is off; 0.0001 is usual." />
                <Setting id="build-sample-every" label="Sample every" value=f.sample_every
                    hint="Steps between samples, held-out checks and saves to this device." />
                <Setting id="build-prompt" label="Sample prompt" value=f.prompt hint="Every sample starts with this, with the same seed." />
                <label class="field" for="build-device">
                    <span class="name">"Train on"</span>
                    <select id="build-device" data-testid="build-device" aria-describedby="build-device-hint"
                        on:change=move |e| f.device.set(event_target_value(&e))>
                        <option value="cpu" prop:selected=move || f.device.get() == "cpu">"The CPU"</option>
                        <option value="gpu" prop:selected=move || f.device.get() == "gpu">"WebGPU"</option>
                    </select>
                    <small id="build-device-hint" class="hint">
                        "WebGPU runs on the graphics chip. Both give the same model up to rounding; shapes this small \
                         are often faster on the CPU. Without WebGPU the run says so and uses the CPU. The \
                         experiments run on the CPU."
                    </small>
                </label>
            </div>
        </fieldset>
    }
}

#[component]
pub fn Controls(b: BuildCtx) -> impl IntoView {
    let phase = move || b.phase.get();
    let last = move || b.history.with(|h| h.steps.last().cloned());
    let step = move || last().map_or(0, |m| m.step);
    let total = move || b.run.with(|r| r.as_ref().map_or(0, |r| r.0.steps));
    let status = move || match phase() {
        Phase::Idle => "Ready: press Start to train the shape chosen above from random weights.".to_string(),
        Phase::Running => match last() {
            Some(m) => format!(
                "Training: step {} of {} · loss {:.3} · {:.0} ms per step (measured here)",
                m.step,
                total(),
                m.loss,
                m.ms_per_step
            ),
            None => "Starting…".into(),
        },
        Phase::Ending => "Ending after this step…".into(),
        Phase::Paused => {
            format!("Paused at step {}: Resume continues from the copy kept on this device.", b.saved_step.get().unwrap_or(0))
        }
        Phase::Done(Ending::Finished) => {
            format!("Finished {} steps. The model is now in the model menu: try it in Generate.", step())
        }
        Phase::Done(_) => format!("Stopped at step {}.", step()),
        Phase::Failed(e) => e,
    };
    let data = move || {
        b.data.get().map(|(_, train, held, params)| format!("{params} parameters; training on {train} tokens, {held} held out."))
    };
    let can_resume = move || phase() == Phase::Paused && b.saved_step.get().is_some();
    view! {
        <div class="build-controls">
            <div class="buttons">
                <button type="button" data-testid="build-start" disabled=move || b.busy() on:click=move |_| run::start(b)>"Start"</button>
                <button type="button" class="secondary" data-testid="build-pause" disabled=move || phase() != Phase::Running
                    on:click=move |_| run::pause(b)>"Pause"</button>
                <button type="button" class="secondary" data-testid="build-resume" disabled=move || !can_resume()
                    on:click=move |_| run::resume(b)>"Resume"</button>
                <button type="button" class="secondary" data-testid="build-stop" disabled=move || phase() != Phase::Running
                    on:click=move |_| run::stop(b)>"Stop"</button>
                <Show when=move || b.model.with(|m| m.is_some())>
                    <button type="button" class="secondary" data-testid="build-download" on:click=move |_| run::download(b)>
                        "Download .bin"
                    </button>
                    <button type="button" class="secondary" data-testid="build-use" on:click=move |_| run::join_menu(b)>
                        "Use in Generate"
                    </button>
                </Show>
            </div>
            <p class="status" role="status" data-testid="build-status" data-phase=move || phase().key()
                data-step=move || step().to_string()
                data-first-loss=move || b.history.with(|h| h.steps.first().map(|m| m.loss.to_string()).unwrap_or_default())
                data-loss=move || last().map(|m| m.loss.to_string()).unwrap_or_default()
                data-held=move || b.history.with(|h| h.held.last().map(|x| format!("{},{}", x.0, x.1)).unwrap_or_default())
                data-saved-step=move || b.saved_step.get().map(|s| s.to_string()).unwrap_or_default()
                data-train-bytes=move || b.data.get().map(|d| d.0.to_string()).unwrap_or_default()>
                {status}
            </p>
            <p class="hint">{data}</p>
            <Show when=move || b.device.with(Option::is_some)>
                <p class="hint" data-testid="build-device-used" data-device=move || b.device.get().unwrap_or_default()>
                    {move || format!("Training on {}.", b.device.get().unwrap_or_default())}
                </p>
            </Show>
            <Show when=move || b.timing.with(Option::is_some)>
                {move || b.timing.get().map(|t| view! {
                    <p class="hint" data-testid="build-timing" data-total-ms=t.total_ms.to_string()
                        data-counted-ms=t.counted_ms().to_string() data-step-ms=t.step_ms.to_string()
                        data-check-ms=t.check_ms.to_string() data-steps=t.steps.to_string() data-checks=t.checks.to_string()>
                        {timing_line(&t)}
                    </p>
                })}
            </Show>
            <Show when=move || !b.busy()>
                <p class="hint estimate" data-testid="build-estimate" data-seconds=move || estimate_figure(b, |e| e.seconds)
                    data-step-ms=move || estimate_figure(b, |e| e.step_ms) data-check-ms=move || estimate_figure(b, |e| e.check_ms)>
                    {move || estimate_line(b)}
                </p>
            </Show>
            <Show when=move || !b.note.get().is_empty()>
                <p class="error" role="alert" data-testid="build-note">{move || b.note.get()}</p>
            </Show>
        </div>
    }
}

/// How the last run's time went, in the estimate's terms.
fn timing_line(t: &RunTiming) -> String {
    format!(
        "Since it started or resumed: {} steps at {:.1} ms each and {} checks at {:.0} ms each; {} in all.",
        t.steps,
        t.step_ms,
        t.checks,
        t.check_ms,
        duration(t.total_ms / 1000.0)
    )
}

/// "about 40 seconds", "about 3 minutes", "about 1.5 hours".
pub fn duration(seconds: f64) -> String {
    let plural = |n: f64, one: &str| if n == 1.0 { format!("about 1 {one}") } else { format!("about {n} {one}s") };
    if seconds < 59.5 {
        plural(seconds.round().max(1.0), "second")
    } else if seconds < 90.0 * 60.0 {
        plural((seconds / 60.0).round(), "minute")
    } else {
        format!("about {:.1} hours", seconds / 3600.0)
    }
}

fn estimate_figure(b: BuildCtx, f: fn(&BuildEstimate) -> f64) -> String {
    b.estimate.with(|e| match e {
        Some(Ok(e)) => f(e).to_string(),
        _ => String::new(),
    })
}

fn estimate_line(b: BuildCtx) -> String {
    match b.estimate.get() {
        None => "Measuring how long this run would take here…".into(),
        Some(Ok(e)) => format!(
            "A run with these settings takes {} on this device (measured just now: {:.0} ms per step, {:.1} s per sample and held-out check).",
            duration(e.seconds),
            e.step_ms,
            e.check_ms / 1000.0
        ),
        Some(Err(e)) => format!("No time estimate: {e}"),
    }
}

/// Steps drawn on the x-axis: the run's length.
fn x_max(b: BuildCtx) -> Signal<f64> {
    Signal::derive(move || b.run.with(|r| r.as_ref().map_or(1, |r| r.0.steps)) as f64)
}

/// Why a fresh model's first loss is above even guessing's, when it is: said where it shows.
fn start_note(b: BuildCtx) -> Option<String> {
    let first = b.history.with(|h| h.steps.first().map(|m| m.loss))?;
    (first > 512f64.ln() + 0.5).then(|| {
        format!(
            ". It starts higher, at {first:.1}: its random weights make confident guesses, and a confident wrong guess \
             costs more than an even one, so the first steps teach it to doubt."
        )
    })
}

#[component]
pub fn Curves(b: BuildCtx) -> impl IntoView {
    let series = Signal::derive(move || {
        b.history.with(|h| {
            vec![
                h.steps.iter().map(|m| (m.step as f64 - 1.0, m.loss)).collect(),
                h.held.iter().map(|&(s, l)| (s as f64, l)).collect(),
            ]
        })
    });
    // Before any step, a hint instead of an empty 0–1 chart.
    let started = move || b.history.with(|h| !h.steps.is_empty());
    view! {
        <Show when=started fallback=|| view! {
            <p class="hint chart-empty" data-testid="build-loss-empty">
                "The loss curves appear here once training starts: the training loss at every step and the held-out \
                 loss at every sample."
            </p>
        }>
            <figure class="chart" data-testid="build-loss">
                <Chart series x_max=x_max(b) label="Loss per training step".into() testid="build-loss-chart" />
                <figcaption>
                    <span class="key train-key">"training loss"</span>
                    <span class="key held-key">"held-out loss"</span>
                    " (how surprised the model is by the next token; a model guessing uniformly among the 512 tokens scores ln 512 ≈ 6.2)"
                    {move || start_note(b)}
                </figcaption>
            </figure>
        </Show>
    }
}

#[component]
pub fn Timeline(b: BuildCtx) -> impl IntoView {
    view! {
        <section class="build-samples" aria-label="Samples over training">
            <h3>"What it writes, step by step"</h3>
            <Show when=move || b.history.with(|h| h.samples.is_empty())>
                <p class="hint chart-empty">"A sample on the prompt at step 0 and every “Sample every” steps: noise first, then words."</p>
            </Show>
            <ol class="timeline" hidden=move || b.history.with(|h| h.samples.is_empty()) data-testid="build-samples" tabindex="0" aria-label="Samples, one per checkpoint">
                {move || b.history.with(|h| h.samples.iter().map(|(step, text)| view! {
                    <li data-step=step.to_string()><strong>{format!("step {step}: ")}</strong><span class="sample">{text.clone()}</span></li>
                }).collect_view())}
            </ol>
        </section>
    }
}

/// One instrument: a small chart and what it shows in one line.
struct Gauge {
    key: &'static str,
    title: &'static str,
    explain: &'static str,
}

const GAUGES: [Gauge; 5] = [
    Gauge {
        key: "grad",
        title: "Gradient norm",
        explain: "How hard the loss pulls on the weights; spikes warn of trouble (clipped at 1).",
    },
    Gauge { key: "lr", title: "Learning rate", explain: "The step size over time: warm-up, then a slow cosine fall." },
    Gauge {
        key: "attn",
        title: "Largest attention logit, per layer",
        explain: "Attention scores before softmax; growing without bound is how big runs break at high rates.",
    },
    Gauge {
        key: "logits",
        title: "Output: largest logit and mean log-normaliser",
        explain: "If the log-normaliser drifts far from 0 the outputs are unstable; z-loss holds it near 0.",
    },
    Gauge {
        key: "update",
        title: "Update-to-weight ratio",
        explain: "How much one step changes the weights (largest tensor); around 0.001 is healthy, far above is too fast.",
    },
];

fn gauge_series(b: BuildCtx, key: &'static str) -> Signal<Vec<Vec<(f64, f64)>>> {
    Signal::derive(move || {
        b.history.with(|h| {
            let one =
                |f: &dyn Fn(&crate::protocol::build::StepView) -> f64| h.steps.iter().map(|m| (m.step as f64, f(m))).collect();
            match key {
                "grad" => vec![one(&|m| m.grad_norm)],
                "lr" => vec![one(&|m| m.lr)],
                "attn" => {
                    let layers = h.steps.first().map_or(0, |m| m.attn_logit_max.len());
                    (0..layers).map(|l| one(&|m| m.attn_logit_max[l])).collect()
                }
                "logits" => vec![one(&|m| m.logit_max), one(&|m| m.lse_mean)],
                _ => vec![one(&|m| m.update_ratio)],
            }
        })
    })
}

#[component]
pub fn Instruments(b: BuildCtx) -> impl IntoView {
    view! {
        <section class="instruments" aria-label="Instruments">
            <h3>"Instruments"</h3>
            <Show when=move || b.history.with(|h| h.steps.is_empty())>
                <p class="hint chart-empty">"Each instrument draws its measure at every step once training starts."</p>
            </Show>
            <div class="gauges" hidden=move || b.history.with(|h| h.steps.is_empty())>
                {GAUGES.iter().map(|g| view! {
                    <figure class="chart gauge" data-testid=format!("gauge-{}", g.key)>
                        <Chart series=gauge_series(b, g.key) x_max=x_max(b) label=g.title.into() testid="gauge-chart" />
                        <figcaption><strong>{g.title}</strong>": "{g.explain}</figcaption>
                    </figure>
                }).collect_view()}
            </div>
        </section>
    }
}
