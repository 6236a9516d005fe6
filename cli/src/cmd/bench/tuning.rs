//! GPU workgroup tuning on the command line: `bench --backend gpu --tune` (measure, print the
//! table and the JSON, compare decode speed with the default shapes) and the `--tune` /
//! `--tuning FILE` flags of `generate` (shapes for this run).

use std::io::Write;
use std::path::Path;

use tinylm_engine::gpu::tune::tune;
use tinylm_engine::gpu::{GpuContext, GpuOptions, Tuning, Workgroups};
use tinylm_engine::{Config, Error, Result};

use crate::load;

/// The shapes `--tuning FILE` or `--tune` ask for (`None`: the defaults). With `--tune` on a
/// machine without a usable GPU (`auto` falling back) the defaults stay and stderr says why.
pub fn workgroups(c: &Config, file: Option<&Path>, tune_ms: Option<f64>, backend: &str) -> Result<Option<Workgroups>> {
    if backend == "cpu" && (file.is_some() || tune_ms.is_some()) {
        return Err(Error::InvalidSetting("--tune and --tuning apply to --backend gpu or auto".into()));
    }
    if let Some(path) = file {
        return read(path)?.workgroups_for(c).map(Some);
    }
    let Some(budget) = tune_ms else { return Ok(None) };
    match GpuContext::new().and_then(|ctx| tune(&ctx, c, budget)) {
        Ok(t) => {
            let cut = if t.cut { " (budget spent: the choice is among the shapes measured)" } else { "" };
            let _ = writeln!(std::io::stderr(), "gpu tuning: {} in {:.0} ms{cut}", t.workgroups, t.elapsed_ms);
            Ok(Some(t.workgroups))
        }
        Err(e) if backend == "auto" => {
            let _ = writeln!(std::io::stderr(), "gpu tuning skipped: {e}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A tuning JSON file (`bench --tune --save-tuning FILE`, or the JSON it prints).
pub fn read(path: &Path) -> Result<Tuning> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io { file: load::name(path), what: e.to_string() })?;
    Tuning::from_json(&text).map_err(|e| Error::InvalidSetting(format!("{}: {e}", load::name(path))))
}

/// `GpuOptions` with `wg`.
pub fn options(base: GpuOptions, wg: Option<Workgroups>) -> GpuOptions {
    GpuOptions { workgroups: wg, ..base }
}

/// The per-candidate table: median µs per dispatch, the default and the chosen shapes marked.
pub fn table(t: &Tuning) -> String {
    let cut = if t.cut { ", cut: the budget ran out before every round" } else { "" };
    let reps = ["classifier", "layer", "attention", "f16 classifier"].iter().zip(&t.reps).map(|(k, n)| format!("{k} {n}"));
    let mut s = format!(
        "GPU tuning on {}: {:.0} ms (budget {:.0} ms{cut}); dispatches per timed submit: {}",
        t.adapter,
        t.elapsed_ms,
        t.budget_ms,
        reps.collect::<Vec<_>>().join(", ")
    );
    if let Some(note) = &t.note {
        return s + "\n" + note;
    }
    let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let mark =
        |default: bool, chosen: bool| format!("{}{}", if default { " default" } else { "" }, if chosen { " chosen" } else { "" });
    // The f16 column only where the device could run the f16 kernel.
    let f16 = t.workgroups.classifier_f16;
    let f16_head = if f16.is_some() { format!(" {:>15}", "f16 cls µs") } else { String::new() };
    s += &format!("\n{:<8} {:>15} {:>15}{f16_head} {:>8}", "matvec", "classifier µs", "layer µs", "samples");
    let d = Workgroups::default();
    for m in &t.matvec {
        let cls = mark(m.shape == d.classifier, m.shape == t.workgroups.classifier).replace(" chosen", " chosen (classifier)");
        let lay = if m.shape == t.workgroups.layers { " chosen (layers)" } else { "" };
        let (f16_col, f16_mark) = match f16 {
            Some(c) => (format!(" {:>15}", us(m.classifier_f16_us)), if m.shape == c { " chosen (f16 classifier)" } else { "" }),
            None => (String::new(), ""),
        };
        s += &format!(
            "\n{:<8} {:>15} {:>15}{f16_col} {:>8}{cls}{lay}{f16_mark}",
            m.shape.to_string(),
            us(m.classifier_us),
            us(m.layer_us),
            m.samples
        );
    }
    s += &format!("\n{:<8} {:>15} {:>15} {:>8}", "attention", "µs", "", "samples");
    for a in &t.attention {
        s += &format!(
            "\n{:<8} {:>15} {:>15} {:>8}{}",
            a.lanes,
            us(a.us),
            "",
            a.samples,
            mark(a.lanes == d.attention, a.lanes == t.workgroups.attention)
        );
    }
    s + &format!("\nchosen: {}", t.workgroups)
}
