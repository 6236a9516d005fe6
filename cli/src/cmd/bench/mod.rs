//! `tinylm bench`: load time, prefill and decode speed, GPU submits and readback per token, and
//! peak memory, for each backend (and CPU thread count) side by side in one run; medians.
//! `--adapter` measures generation with a LoRA adapter; `--finetune` one LoRA training step;
//! `--tune` the GPU decode kernels' workgroup shapes (`tuning`).

use std::path::PathBuf;
use std::time::Instant;

use tinylm_engine::checkpoint::Format;
use tinylm_engine::gpu::bench::{measure as measure_open, BenchReport};
use tinylm_engine::gpu::{AnyBackend, BackendChoice, GpuOptions, Workgroups};
use tinylm_engine::loaded::ModelFormat;
use tinylm_engine::randmodel::{named_shape, random_weights};
use tinylm_engine::{Error, LoadedModel, Result};

use crate::{backend, load, out};

mod batch;
mod finetune;
pub mod tuning;

#[derive(clap::Args)]
pub struct Args {
    /// Model (llama2.c checkpoint, GGUF file or Hugging Face folder); or use --shape for a
    /// deterministic random model.
    #[arg(required_unless_present = "shape", conflicts_with = "shape")]
    pub model: Option<PathBuf>,
    /// A named random shape instead of a file: micro, tiny64, s15m, s42m, s110m, smol135m.
    #[arg(long)]
    pub shape: Option<String>,
    /// Tokenizer (accepted for symmetry with generate; benchmarks use token ids).
    #[arg(short = 'z', long)]
    pub tokenizer: Option<PathBuf>,
    /// cpu, gpu, auto, or all (the CPU at each --threads count, then the GPU).
    #[arg(long, default_value = "all")]
    pub backend: String,
    /// Tokens to decode greedily from BOS.
    #[arg(short = 'n', long, default_value_t = 256)]
    pub steps: usize,
    /// Prompt positions for the prefill measurement.
    #[arg(long, default_value_t = 64)]
    pub prompt_len: usize,
    /// CPU thread counts to measure, e.g. "1,2".
    #[arg(long, default_value = "1,2")]
    pub threads: String,
    /// Runs per configuration; medians are reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// GPU: the decode classifier reads f16 weights (needs `shader-f16`; refused without it);
    /// with --tune, its kernel is tuned too.
    #[arg(long)]
    pub f16_classifier: bool,
    /// GPU: decode with the five-dispatch fused layer instead of the three-dispatch one (to
    /// compare them; `dispatches_per_token` tells the rows apart).
    #[arg(long)]
    pub five_dispatch: bool,
    /// Generate with this PEFT LoRA adapter (CPU: unmerged; GPU: merged into the weights).
    #[arg(long, conflicts_with = "finetune")]
    pub adapter: Option<PathBuf>,
    /// Time one LoRA training step (f32, AdamW) instead of generation, on the CPU and/or the GPU
    /// (--backend cpu, gpu, or all): median over --runs steps.
    #[arg(long)]
    pub finetune: bool,
    /// --finetune: LoRA rank.
    #[arg(long, default_value_t = 4, requires = "finetune")]
    pub rank: usize,
    /// --finetune: adapted projections.
    #[arg(long, default_value = "q_proj,v_proj", requires = "finetune")]
    pub targets: String,
    /// --finetune: sequences per step.
    #[arg(long, default_value_t = 1, requires = "finetune")]
    pub batch: usize,
    /// --finetune: tokens per sequence.
    #[arg(long, default_value_t = 64, requires = "finetune")]
    pub seq: usize,
    /// GPU: measure every candidate workgroup shape of the decode kernels on this adapter and
    /// this model's matrices, print the table and the tuning JSON, and decode with the default
    /// and the chosen shapes side by side (needs --backend gpu).
    #[arg(long, conflicts_with_all = ["finetune", "tuning"])]
    pub tune: bool,
    /// --tune: time budget in milliseconds (the tuning is cut when it is spent).
    #[arg(long, default_value_t = 10000.0)]
    pub tune_budget_ms: f64,
    /// --tune: also write the tuning JSON to this file (for `generate --tuning`).
    #[arg(long, requires = "tune")]
    pub save_tuning: Option<PathBuf>,
    /// GPU rows decode with the workgroup shapes of this tuning JSON (from --tune).
    #[arg(long)]
    pub tuning: Option<PathBuf>,
    /// Also time this many greedy sequences decoded together, a row beside each CPU thread
    /// count's (`cpu::batch`) and the GPU's (`gpu::GpuBatchGeneration`); tokens/s counts every
    /// sequence's tokens.
    #[arg(long, conflicts_with_all = ["finetune", "tune", "adapter"])]
    pub sequences: Option<usize>,
}

/// One configuration's medians.
#[derive(serde::Serialize)]
struct Row {
    backend: String,
    reason: String,
    threads: Option<usize>,
    /// Sequences decoded together (1 but for `--sequences` rows).
    sequences: usize,
    /// GPU decode with the f16 classifier (`--f16-classifier`).
    f16_classifier: bool,
    /// GPU: the decode kernels' workgroup shapes (`None`: the defaults).
    workgroups: Option<Workgroups>,
    runs: usize,
    load_ms: f64,
    prefill_tokens: usize,
    prefill_tok_s: f64,
    decode_tokens: usize,
    decode_tok_s: f64,
    submits_per_token: f64,
    /// GPU: compute dispatches one decoded token records (0 on the CPU).
    dispatches_per_token: f64,
    bytes_per_token: f64,
    peak_rss_mb: Option<f64>,
    /// CPU: bytes of weights the backend holds (Q8_0/Q4_0/Q4_K/Q6_K matrices quantized), in MB.
    weight_mb: Option<f64>,
}

pub fn run(a: Args) -> Result<()> {
    let (mut m, label) = model(&a)?;
    if a.runs == 0 {
        return Err(Error::InvalidSetting("--runs must be at least 1".into()));
    }
    if a.finetune {
        return finetune::run(m.weights(), &label, &a);
    }
    load::use_adapter(&mut m, a.adapter.as_deref())?;
    if a.tune {
        return tune(&m, &label, &a);
    }
    let wg = a.tuning.as_deref().map(|f| tuning::read(f)?.workgroups_for(m.config())).transpose()?;
    let mut rows = Vec::new();
    for (choice, threads) in plan(&a)? {
        rows.push(measure(&m, choice, threads, &a, wg)?);
        match (a.sequences, choice) {
            (Some(n), BackendChoice::Cpu) => rows.push(batch::measure(m.weights(), n, threads, &a)?),
            (Some(n), BackendChoice::Gpu) => rows.push(batch::measure_gpu(&m, n, gpu_options(&a, wg), &a)?),
            _ => {}
        }
    }
    report(&m, &label, &a, &rows, None)
}

/// `--tune`: the tuning, then decode with the default and the chosen shapes.
fn tune(m: &LoadedModel, label: &str, a: &Args) -> Result<()> {
    if a.backend != "gpu" {
        return Err(Error::InvalidSetting("--tune measures the GPU: use it with --backend gpu".into()));
    }
    let t = {
        // With --f16-classifier the device gets shader-f16 (where offered), so the f16
        // classifier's shapes are measured too.
        let ctx = tinylm_engine::gpu::GpuContext::with_shader_f16(a.f16_classifier)?;
        tinylm_engine::gpu::tune::tune(&ctx, m.config(), a.tune_budget_ms)?
    };
    if let Some(path) = &a.save_tuning {
        std::fs::write(path, t.to_json()).map_err(|e| Error::Io { file: load::name(path), what: e.to_string() })?;
    }
    let rows = [None, Some(t.workgroups)]
        .into_iter()
        .map(|wg| measure(m, BackendChoice::Gpu, None, a, wg))
        .collect::<Result<Vec<_>>>()?;
    report(m, label, a, &rows, Some(&t))
}

fn report(m: &LoadedModel, label: &str, a: &Args, rows: &[Row], tuned: Option<&tinylm_engine::gpu::Tuning>) -> Result<()> {
    let c = *m.config();
    let header = format!(
        "machine: {}\nmodel: {label}{} (dim {}, hidden {}, layers {}, heads {}/{}, vocab {}, {:.1} MB f32)\n\
         prefill {} positions, decode {} tokens from BOS, median of {} runs",
        machine(),
        a.adapter.as_ref().map_or(String::new(), |d| format!(" + LoRA adapter {}", d.display())),
        c.dim,
        c.hidden_dim,
        c.n_layers,
        c.n_heads,
        c.n_kv_heads,
        c.vocab_size,
        c.n_params() as f64 * 4e-6,
        a.prompt_len,
        a.steps,
        a.runs
    );
    if a.json {
        let adapter = a.adapter.as_deref().map(load::name);
        let v = serde_json::json!({ "machine": machine(), "model": label, "adapter": adapter, "config": c, "runs": a.runs, "results": rows, "tuning": tuned });
        out::line(&serde_json::to_string_pretty(&v).expect("plain data serializes"))
    } else {
        out::line(&header)?;
        if let Some(t) = tuned {
            out::line(&tuning::table(t))?;
        }
        out::line(&table(rows))?;
        match tuned {
            Some(t) => out::line(&format!("tuning JSON (for generate --tuning FILE):\n{}", t.to_json())),
            None => Ok(()),
        }
    }
}

fn model(a: &Args) -> Result<(LoadedModel, String)> {
    match (&a.model, &a.shape) {
        (Some(p), _) => Ok((load::model(p)?, load::name(p))),
        (None, Some(s)) => {
            let (c, seed) = named_shape(s)?;
            let label = format!("random {s} (seed {seed})");
            Ok((LoadedModel::from_weights(&label, ModelFormat::Llama2c(Format::V0), random_weights(&c, seed)?), label))
        }
        (None, None) => Err(Error::InvalidSetting("give a model file or --shape".into())),
    }
}

/// The configurations to measure, in order.
fn plan(a: &Args) -> Result<Vec<(BackendChoice, Option<usize>)>> {
    let threads: Vec<usize> = a
        .threads
        .split(',')
        .map(|t| t.trim().parse().ok().filter(|&n: &usize| n >= 1))
        .collect::<Option<_>>()
        .ok_or_else(|| Error::InvalidSetting(format!("--threads `{}` must list counts like 1,2", a.threads)))?;
    let cpu = threads.iter().map(|&t| (BackendChoice::Cpu, Some(t)));
    Ok(match a.backend.as_str() {
        "all" => cpu.chain([(BackendChoice::Gpu, None)]).collect(),
        "cpu" => cpu.collect(),
        other => vec![(other.parse()?, None)],
    })
}

fn measure(m: &LoadedModel, choice: BackendChoice, threads: Option<usize>, a: &Args, wg: Option<Workgroups>) -> Result<Row> {
    let gpu_opts = gpu_options(a, wg);
    reset_peak_rss();
    let weight_mb = std::cell::Cell::new(None);
    let once = || {
        let t = Instant::now();
        // With an adapter the GPU runs the merged weights, the CPU the unmerged adapter, as
        // `generate --adapter` does.
        let (mut opened, why) = backend::open(m, &choice.to_string(), gpu_opts)?;
        // What the backend holds: CPU memory, or GPU memory (quantized models stay quantized).
        weight_mb.set(Some(
            match &opened.backend {
                AnyBackend::Cpu(c) => c.weight_bytes(),
                AnyBackend::Gpu(g) => g.weight_bytes(),
            } as f64
                / 1e6,
        ));
        measure_open(&mut opened.backend, why, t.elapsed().as_secs_f64(), a.prompt_len, a.steps)
    };
    let mut reports: Vec<BenchReport> = Vec::with_capacity(a.runs);
    // The CPU's threads start once per configuration, as in an app that keeps its pool.
    let pool = threads.map(tinylm_engine::pool::with_threads);
    for _ in 0..a.runs {
        reports.push(match &pool {
            Some(p) => tinylm_engine::pool::install(p.clone(), once)?,
            None => once()?,
        });
    }
    let med = |f: fn(&BenchReport) -> f64| median(reports.iter().map(f).collect());
    let first = &reports[0];
    Ok(Row {
        backend: first.backend.clone(),
        reason: first.reason.clone(),
        threads,
        sequences: 1,
        f16_classifier: first.f16_classifier,
        workgroups: wg.filter(|_| first.backend.starts_with("gpu")),
        runs: a.runs,
        load_ms: med(|r| r.load_s) * 1e3,
        prefill_tokens: first.prefill_tokens,
        prefill_tok_s: med(|r| r.prefill_tok_s),
        decode_tokens: first.decode_tokens,
        decode_tok_s: med(|r| r.decode_tok_s),
        submits_per_token: med(|r| r.submits_per_token),
        dispatches_per_token: med(|r| r.dispatches_per_token),
        bytes_per_token: med(|r| r.bytes_per_token),
        peak_rss_mb: peak_rss_mb(),
        weight_mb: weight_mb.get(),
    })
}

/// The GPU options the flags ask for.
fn gpu_options(a: &Args, wg: Option<Workgroups>) -> GpuOptions {
    GpuOptions { f16_classifier: a.f16_classifier, workgroups: wg, three_dispatch: !a.five_dispatch, ..GpuOptions::default() }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<46} {:>7} {:>9} {:>13} {:>12} {:>11} {:>14} {:>9} {:>8} {:>10}",
        "backend",
        "threads",
        "load ms",
        "prefill tok/s",
        "decode tok/s",
        "submits/tok",
        "dispatches/tok",
        "bytes/tok",
        "peak MB",
        "weights MB"
    );
    for r in rows {
        let threads = r.threads.map_or("-".into(), |t| t.to_string());
        let peak = r.peak_rss_mb.map_or("-".into(), |m| format!("{m:.0}"));
        let weights = r.weight_mb.map_or("-".into(), |m| format!("{m:.1}"));
        let mut name = if r.f16_classifier { format!("{} +f16 cls", r.backend) } else { r.backend.clone() };
        if r.backend.starts_with("gpu") {
            name += &r.workgroups.map_or(" [default shapes]".to_string(), |w| format!(" [{w}]"));
        }
        s += &format!(
            "\n{:<46} {:>7} {:>9.1} {:>13.0} {:>12.1} {:>11.2} {:>14.0} {:>9.1} {:>8} {:>10}",
            name,
            threads,
            r.load_ms,
            r.prefill_tok_s,
            r.decode_tok_s,
            r.submits_per_token,
            r.dispatches_per_token,
            r.bytes_per_token,
            peak,
            weights
        );
        if r.backend.starts_with("cpu") && r.reason.contains("no usable GPU") {
            s += &format!("\n  ({})", r.reason);
        }
    }
    s
}

/// The processor's name and core count, to label the figures.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// Resets the kernel's peak-RSS mark (Linux), so each configuration reports its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory since the last reset (Linux `VmHWM`).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
