//! The learning-rate experiment's two charts, as in "Small-scale proxies for large-scale
//! Transformer training instabilities": each run's final loss against its rate, and the largest
//! attention logit it reached, on a log-scale rate axis, one line per variant (plain, warm-up,
//! z-loss, both). A run that blew up (no finite loss, or a final loss above the loss it started
//! from) is a cross in a "blew up" row at the top, never left out.

use leptos::prelude::*;

use super::state::Sweep;
use crate::page::train::chart::{short, y_range, y_range_signed};
use crate::protocol::build::SweepRunSpec;

const W: f64 = 420.0;
const H: f64 = 260.0;
/// Left margin: the tick labels and, left of them, the axis title.
const LEFT: f64 = 72.0;
const RIGHT: f64 = 14.0;
/// The "blew up" row's centre, and the top and bottom of the plotted values.
const BLOWN_Y: f64 = 18.0;
const TOP: f64 = 38.0;
const BOTTOM: f64 = H - 46.0;

/// A variant's name from what it turns on (`tinylm pretrain --lr-sweep`'s names).
pub fn variant_name(r: &SweepRunSpec) -> &'static str {
    match (r.warmup > 0, r.z_loss > 0.0) {
        (false, false) => "plain",
        (true, false) => "warm-up",
        (false, true) => "z-loss",
        (true, true) => "warm-up + z-loss",
    }
}

/// The experiment's variants in the order they first appear, and each run's variant.
pub fn variants(s: &Sweep) -> (Vec<&'static str>, Vec<usize>) {
    let mut names: Vec<&'static str> = Vec::new();
    let of = s
        .runs
        .iter()
        .map(|r| {
            let n = variant_name(r);
            names.iter().position(|&m| m == n).unwrap_or_else(|| {
                names.push(n);
                names.len() - 1
            })
        })
        .collect();
    (names, of)
}

/// The loss every run starts from (the same random weights and first batch): the first step's.
pub fn start_loss(s: &Sweep) -> Option<f64> {
    s.curves.iter().find_map(|c| c.first()).map(|p| p.1).filter(|l| l.is_finite())
}

/// One ended run as the charts draw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub variant: usize,
    pub lr: f64,
    /// The final loss; None where the run blew up.
    pub loss: Option<f64>,
    /// The largest attention logit of its steps.
    pub attn: f64,
}

/// The ended runs: a final loss that is not finite or is above `cap` counts as blown up.
pub fn points(s: &Sweep, cap: Option<f64>) -> Vec<Point> {
    let (_, of) = variants(s);
    s.runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let end = s.ends.get(i)?.as_ref()?;
            let loss = end.ok().filter(|l| l.is_finite() && cap.is_none_or(|c| *l <= c));
            Some(Point { variant: of[i], lr: r.lr, loss, attn: s.attn.get(i).copied().unwrap_or(f64::NAN) })
        })
        .collect()
}

/// Maps rates to x on a log scale spanning the experiment's rates.
fn x_scale(rates: &[f64]) -> impl Fn(f64) -> f64 {
    let logs = rates.iter().map(|r| r.log10());
    let (lo, hi) = logs.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo < hi { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
    let pad = 0.06 * (hi - lo);
    move |r: f64| LEFT + (W - LEFT - RIGHT) * (r.log10() - lo + pad) / (hi - lo + 2.0 * pad)
}

fn y_scale(lo: f64, hi: f64) -> impl Fn(f64) -> f64 {
    move |v: f64| BOTTOM - (BOTTOM - TOP) * (v - lo) / (hi - lo).max(1e-9)
}

/// "0.0003", "0.03", "1": a rate as typed.
fn rate_label(r: f64) -> String {
    format!("{r}")
}

/// A value tick's label: about 3 significant digits, powers of ten past 10,000.
fn value_label(v: f64) -> String {
    if v.abs() >= 1e5 {
        format!("{v:.1e}")
    } else {
        short(v)
    }
}

/// 10 to the power `e` as a student reads it: "1,000" up to 1,000, then "10⁴" (short, so
/// it keeps clear of the axis title).
fn power_label(e: i32) -> String {
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    match e {
        0..=3 => {
            let digits = format!("1{}", "0".repeat(e as usize));
            let n = digits.len();
            digits.chars().enumerate().fold(String::new(), |mut out, (i, c)| {
                if i > 0 && (n - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(c);
                out
            })
        }
        _ => {
            let sign = if e < 0 { "⁻" } else { "" };
            let sup: String = e.unsigned_abs().to_string().chars().map(|c| SUP[c as usize - '0' as usize]).collect();
            format!("10{sign}{sup}")
        }
    }
}

/// The value ticks for a plotted range (`lo`..`hi`, in log10 when `log`): whole powers of ten
/// spaced so their labels do not touch, else the ends and the middle.
fn value_ticks(lo: f64, hi: f64, log: bool) -> Vec<(f64, String)> {
    if log && hi.floor() > lo.ceil() {
        let (a, b) = (lo.ceil() as i32, hi.floor() as i32);
        let per_decade = (BOTTOM - TOP) / (hi - lo);
        let every = (18.0 / per_decade).ceil().max(1.0) as usize;
        return (a..=b).step_by(every).map(|e| (e as f64, power_label(e))).collect();
    }
    let label = |v: f64| value_label(if log { 10f64.powf(v) } else { v });
    [lo, (lo + hi) / 2.0, hi].map(|v| (v, label(v))).to_vec()
}

/// The axes: rate ticks (a label only where it does not crowd the one before), value ticks
/// in the left margin, both titles and the "blew up" row's label.
fn axes(rates: &[f64], lo: f64, hi: f64, ticks: Vec<(f64, String)>, title: &'static str) -> impl IntoView {
    let x = x_scale(rates);
    let y = y_scale(lo, hi);
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    let mut last = f64::MIN;
    let xticks = sorted
        .iter()
        .filter_map(|&r| {
            let at = x(r);
            (at - last >= 44.0).then(|| {
                last = at;
                view! { <text class="tick" x=at y=BOTTOM + 16.0 text-anchor="middle">{rate_label(r)}</text> }
            })
        })
        .collect_view();
    let yticks = ticks
        .into_iter()
        .map(|(v, label)| view! { <text class="tick" x=LEFT - 6.0 y=y(v) + 4.0 text-anchor="end">{label}</text> })
        .collect_view();
    let mid = (TOP + BOTTOM) / 2.0;
    view! {
        <line class="axis" x1=LEFT y1=BOTTOM x2=W - RIGHT y2=BOTTOM />
        <line class="axis" x1=LEFT y1=TOP - 6.0 x2=LEFT y2=BOTTOM />
        <line class="blown-row" x1=LEFT y1=BLOWN_Y + 10.0 x2=W - RIGHT y2=BLOWN_Y + 10.0 />
        <text class="tick" x=LEFT - 6.0 y=BLOWN_Y + 4.0 text-anchor="end">"blew up"</text>
        {xticks}
        {yticks}
        <text class="axis-title" x=(LEFT + W - RIGHT) / 2.0 y=H - 8.0 text-anchor="middle">"learning rate (log scale)"</text>
        <text class="axis-title" transform=format!("rotate(-90 14 {mid})") x=14.0 y=mid + 4.0 text-anchor="middle">{title}</text>
    }
}

/// One variant's line through its finite points in rate order (broken where a run blew up).
fn line(pts: &[(f64, Option<f64>)]) -> String {
    let mut sorted = pts.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut d = String::new();
    let mut pen = false;
    for (x, y) in sorted {
        match y {
            Some(y) => {
                d.push_str(&format!("{}{x:.1},{y:.1} ", if pen { "L" } else { "M" }));
                pen = true;
            }
            None => pen = false,
        }
    }
    d
}

/// Which chart: the final loss, or the largest attention logit.
#[derive(Clone, Copy, PartialEq)]
enum Measure {
    Loss,
    Attn,
}

/// One chart's SVG from the ended runs.
fn chart(s: &Sweep, measure: Measure) -> impl IntoView {
    let cap = start_loss(s);
    let pts = points(s, cap);
    let (names, _) = variants(s);
    let rates: Vec<f64> = s.runs.iter().map(|r| r.lr).collect();
    let value = |p: &Point| match measure {
        Measure::Loss => p.loss,
        Measure::Attn => Some(p.attn).filter(|a| a.is_finite()),
    };
    // Attention logits span powers of ten once a run goes unstable: a log scale where all are
    // positive. The loss axis reaches the loss at the start (the dashed line): above is "blew up".
    let log = measure == Measure::Attn && pts.iter().filter_map(value).all(|a| a > 0.0);
    let plot = move |v: f64| if log { v.log10() } else { v };
    let (lo, hi) = match measure {
        Measure::Loss => y_range(pts.iter().filter_map(value).chain(cap)),
        Measure::Attn => y_range_signed(pts.iter().filter_map(value).map(plot)),
    };
    let (x, y) = (x_scale(&rates), y_scale(lo, hi));
    let to_y = |v: f64| y(plot(v));
    let title = match (measure, log) {
        (Measure::Loss, _) => "final loss",
        (Measure::Attn, true) => "attention logit (log)",
        (Measure::Attn, false) => "attention logit",
    };
    let lines = (0..names.len())
        .map(|v| {
            let mine: Vec<(f64, Option<f64>)> =
                pts.iter().filter(|p| p.variant == v).map(|p| (x(p.lr), value(p).map(to_y))).collect();
            view! { <path class=format!("rate-line line-{v} dash-{v}") d=line(&mine) /> }
        })
        .collect_view();
    // Crosses of one rate side by side, so each variant's stays visible.
    let dodge = |v: usize| (v as f64 - (names.len() as f64 - 1.0) / 2.0) * 7.0;
    let marks = pts
        .iter()
        .map(|p| {
            let (name, lr) = (names[p.variant], rate_label(p.lr));
            let loss = p.loss.map_or(String::new(), |l| l.to_string());
            let (diverged, attn) = (p.loss.is_none().to_string(), p.attn.to_string());
            match value(p) {
                Some(v) => view! {
                    <circle class=format!("rate-point line-{}-fill", p.variant) cx=x(p.lr) cy=to_y(v) r=4.5
                        data-variant=name data-lr=lr data-loss=loss data-attn=attn data-diverged=diverged />
                }
                .into_any(),
                None => {
                    let cx = x(p.lr) + dodge(p.variant);
                    view! {
                        <path class=format!("rate-blowup line-{}", p.variant) data-y=BLOWN_Y
                            d=format!("M{:.1},{:.1} l10,10 m0,-10 l-10,10", cx - 5.0, BLOWN_Y - 5.0)
                            data-variant=name data-lr=lr data-loss=loss data-attn=attn data-diverged=diverged />
                    }
                    .into_any()
                }
            }
        })
        .collect_view();
    let start = (measure == Measure::Loss).then_some(cap).flatten().map(|c| {
        view! { <line class="start-line" x1=LEFT y1=to_y(c) x2=W - RIGHT y2=to_y(c) /> }
    });
    view! {
        {axes(&rates, lo, hi, value_ticks(lo, hi, log), title)}
        {start}
        {lines}
        {marks}
    }
}

/// One chart with its caption, drawn as the runs end.
fn figure(sweep: RwSignal<Sweep>, measure: Measure) -> impl IntoView {
    let (testid, label, title, text) = match measure {
        Measure::Loss => (
            "build-rate-loss",
            "Final loss against learning rate, one line per variant",
            "Final loss against learning rate",
            ": each dot is one run; lower means it learned more. Too small a rate barely learns; too big and the run \
             gets worse than where it started, or blows up (✕ in the top row). The dashed line is the loss of the \
             random start.",
        ),
        Measure::Attn => (
            "build-rate-attn",
            "Largest attention logit against learning rate, one line per variant",
            "Largest attention logit against learning rate",
            ": the biggest score the model gave one word for another before softmax. At high rates these scores \
             balloon, which is how big models break; see which fix keeps them down.",
        ),
    };
    view! {
        <figure class="chart rate-chart" data-testid=testid>
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=label>
                {move || sweep.with(|s| chart(s, measure))}
            </svg>
            <figcaption>
                <strong>{title}</strong>
                {text}
            </figcaption>
        </figure>
    }
}

/// The two charts side by side (stacked on a phone), drawn as the runs end.
#[component]
pub fn RateCharts(sweep: RwSignal<Sweep>) -> impl IntoView {
    let cap = move || sweep.with(start_loss).map_or(String::new(), |c| c.to_string());
    let keys = move || {
        sweep.with(|s| {
            variants(s)
                .0
                .into_iter()
                .enumerate()
                .map(|(v, n)| {
                    view! {
                        <li data-variant=n>
                            <svg viewBox="0 0 32 10" width="32" height="10" aria-hidden="true">
                                <line class=format!("line-{v} dash-{v}") x1=1.0 y1=5.0 x2=31.0 y2=5.0 />
                                <circle class=format!("line-{v}-fill") cx=16.0 cy=5.0 r=3.5 />
                            </svg>
                            {n}
                        </li>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <div class="rate-charts" data-testid="build-rate-charts" data-cap=cap>
            {figure(sweep, Measure::Loss)}
            {figure(sweep, Measure::Attn)}
            <ul class="sweep-legend rate-legend" aria-label="Variants">{keys}</ul>
        </div>
    }
}
