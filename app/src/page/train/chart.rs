//! The live loss curve: training loss per step and held-out loss, as an SVG drawn from paths.

use leptos::prelude::*;

use super::state::TrainCtx;

const W: f64 = 600.0;
const H: f64 = 200.0;
const PAD: f64 = 34.0;

/// Runs of points a drawn line keeps at most (about one per two units of the 600-wide plot).
const BUCKETS: usize = 300;

/// Plot coordinates of `(step, loss)` points for x in 0..=x_max and y in lo..=hi, thinned to
/// `BUCKETS` runs (a lesson-length run has tens of thousands of steps; drawing each one at
/// every step froze the page).
fn path(points: &[(f64, f64)], x_max: f64, lo: f64, hi: f64) -> String {
    let x = |s: f64| PAD + (W - PAD - 8.0) * s / x_max.max(1.0);
    let y = |l: f64| 8.0 + (H - PAD - 8.0) * (1.0 - (l - lo) / (hi - lo).max(1e-9));
    let points = crate::plot::thin(points, BUCKETS);
    points.iter().enumerate().map(|(i, &(s, l))| format!("{}{:.1},{:.1}", if i == 0 { "M" } else { " L" }, x(s), y(l))).collect()
}

/// A dot at each point of a path made by `path` (held-out checks are few, so they are marked).
fn dots(d: &str) -> impl IntoView {
    d.split(['M', 'L'])
        .filter_map(|p| p.trim().split_once(','))
        .filter_map(|(x, y)| Some((x.parse::<f64>().ok()?, y.parse::<f64>().ok()?)))
        .map(|(x, y)| view! { <circle class="held-dot" cx=x cy=y r=3.0 /> })
        .collect_view()
}

/// The loss range the chart shows: the data with a margin, never below zero (a loss is not).
pub fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = 0.05 * (hi - lo).max(1e-3);
    ((lo - pad).max(0.0), hi + pad)
}

#[component]
pub fn LossChart(t: TrainCtx) -> impl IntoView {
    let data = move || {
        let train: Vec<(f64, f64)> = t.losses.with(|l| l.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect());
        let held: Vec<(f64, f64)> = t.held.with(|h| h.iter().map(|&(s, v)| (s as f64, v)).collect());
        let (lo, hi) = y_range(train.iter().chain(&held).map(|p| p.1));
        let x_max = t.planned_steps().max(1) as f64;
        let overfit = t.held.with(|h| crate::train::overfit_from(h)).map(|(s, ..)| s);
        (path(&train, x_max, lo, hi), path(&held, x_max, lo, hi), lo, hi, x_max, overfit)
    };
    let x = move |s: f64, x_max: f64| PAD + (W - PAD - 8.0) * s / x_max.max(1.0);
    view! {
        <figure class="chart" data-testid="loss-chart">
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label="Loss per training step">
                {move || {
                    let (train, held, lo, hi, x_max, overfit) = data();
                    view! {
                        <line class="axis" x1=PAD y1=H - PAD x2=W - 8.0 y2=H - PAD />
                        <line class="axis" x1=PAD y1=8.0 x2=PAD y2=H - PAD />
                        // Labels are anchored inside the drawing, so none is cut at an edge.
                        <text class="tick" data-testid="y-max" x=PAD - 4.0 y=14.0 text-anchor="end">{format!("{hi:.2}")}</text>
                        <text class="tick" data-testid="y-min" x=PAD - 4.0 y=H - PAD text-anchor="end">{format!("{lo:.2}")}</text>
                        <text class="tick" x=PAD y=H - PAD + 16.0 text-anchor="start">"step 0"</text>
                        <text class="tick" data-testid="x-max" x=W - 8.0 y=H - PAD + 16.0 text-anchor="end">{format!("step {x_max:.0}")}</text>
                        <path class="train-line" data-testid="train-line" d=train />
                        <path class="held-line" data-testid="held-line" d=held.clone() />
                        {dots(&held)}
                        {overfit.map(|s| {
                            let at = x(s as f64, x_max);
                            let (anchor, dx) = if at > W / 2.0 { ("end", -4.0) } else { ("start", 4.0) };
                            view! {
                                <line class="overfit-mark" data-testid="overfit-mark" data-step=s.to_string()
                                    x1=at y1=8.0 x2=at y2=H - PAD />
                                <text class="tick overfit-label" x=at + dx y=22.0 text-anchor=anchor>
                                    {format!("step {s}: memorising from here")}
                                </text>
                            }
                        })}
                    }
                }}
            </svg>
            <figcaption>
                <span class="key train-key">"training loss"</span>
                <span class="key held-key">"held-out loss"</span>
                " (lower is better: how surprised the model is by the next token; the held-out text is never trained on)"
            </figcaption>
        </figure>
    }
}

/// A small chart of one or more series over the steps (the Build view's loss curves and
/// instruments): the first series drawn as the training line, the second as the held-out one,
/// others in their own colours.
#[component]
pub fn Curves(
    series: Signal<Vec<Vec<(f64, f64)>>>,
    x_max: Signal<f64>,
    label: String,
    testid: &'static str,
    /// Each series in its own solid colour (`line-0`, `line-1`, …), none drawn as held-out.
    #[prop(optional)]
    solid: bool,
) -> impl IntoView {
    let class = move |i: usize| match i {
        _ if solid => format!("line-{}", i % 6),
        0 => "train-line".to_string(),
        1 => "held-line".to_string(),
        k => format!("line-{}", k % 6),
    };
    view! {
        <svg class="curves" viewBox=format!("0 0 {W} {H}") role="img" aria-label=label data-testid=testid>
            {move || {
                let all = series.get();
                let (lo, hi) = y_range_signed(all.iter().flatten().map(|p| p.1));
                let x_max = x_max.get();
                view! {
                    <line class="axis" x1=PAD y1=H - PAD x2=W - 8.0 y2=H - PAD />
                    <line class="axis" x1=PAD y1=8.0 x2=PAD y2=H - PAD />
                    {all.iter().enumerate().map(|(i, s)| view! { <path class=class(i) d=path(s, x_max, lo, hi) /> }).collect_view()}
                    // The range inside the plot, so a long label is never cut at the edge; drawn
                    // after the lines, with a halo (`.tick`'s stroke), so no line crosses them.
                    // A curve that starts at the top (a loss) would run under the label at the
                    // left, so the top label then sits at the right, where such a curve has fallen.
                    {
                        let starts_high = all.first().and_then(|s| s.first()).is_some_and(|p| p.1 > lo + 0.75 * (hi - lo));
                        let (x, anchor) = if starts_high { (W - 12.0, "end") } else { (PAD + 4.0, "start") };
                        view! { <text class="tick" data-testid="curves-top" x=x y=24.0 text-anchor=anchor>{short(hi)}</text> }
                    }
                    <text class="tick" x=PAD + 4.0 y=H - PAD - 6.0 text-anchor="start">{short(lo)}</text>
                    <text class="tick" x=PAD y=H - PAD + 16.0 text-anchor="start">"step 0"</text>
                    <text class="tick" x=W - 8.0 y=H - PAD + 16.0 text-anchor="end">{format!("step {x_max:.0}")}</text>
                }
            }}
        </svg>
    }
}

/// As `y_range`, but a measure may be negative (a mean logit).
pub fn y_range_signed(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = 0.05 * (hi - lo).max(1e-9);
    // A measure that is never negative (a rate, a norm) gets no negative label.
    (if lo >= 0.0 { (lo - pad).max(0.0) } else { lo - pad }, hi + pad)
}

/// A short tick label: about 3 significant digits, scientific when small.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if v != 0.0 && a < 0.01 {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}
