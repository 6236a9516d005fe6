//! `tinylm bench`: load time, prefill and decode speed, GPU submits and readback per token, and
//! peak memory, for each backend (and CPU thread count) side by side in one run; medians.
//! `--adapter` measures generation with a LoRA adapter; `--finetune` one LoRA training step.

use std::path::PathBuf;
use std::time::Instant;

use tinylm_engine::generate::Backend;
use tinylm_engine::gpu::bench::{bench, BenchReport};
use tinylm_engine::gpu::{BackendChoice, GpuOptions};
use tinylm_engine::lora::{self, parse_targets, Adapter, Base, Batch, LoraConfig, TrainConfig, Trainer};
use tinylm_engine::randmodel::{named_shape, random_tokens, random_weights};
use tinylm_engine::{Error, Result, Sampler, Weights, BOS};

use crate::{backend, load, out};

#[derive(clap::Args)]
pub struct Args {
    /// Model checkpoint; or use --shape for a deterministic random model.
    #[arg(required_unless_present = "shape", conflicts_with = "shape")]
    pub model: Option<PathBuf>,
    /// A named random shape instead of a file: micro, tiny64, s15m, s42m, s110m.
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
    /// Generate with this PEFT LoRA adapter (CPU: unmerged; GPU: merged into the weights).
    #[arg(long, conflicts_with = "finetune")]
    pub adapter: Option<PathBuf>,
    /// Time one LoRA training step (CPU, f32, AdamW) instead of generation: median over --runs steps.
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
}

/// One configuration's medians.
#[derive(serde::Serialize)]
struct Row {
    backend: String,
    reason: String,
    threads: Option<usize>,
    runs: usize,
    load_ms: f64,
    prefill_tokens: usize,
    prefill_tok_s: f64,
    decode_tokens: usize,
    decode_tok_s: f64,
    submits_per_token: f64,
    bytes_per_token: f64,
    peak_rss_mb: Option<f64>,
}

pub fn run(a: Args) -> Result<()> {
    let (weights, label) = model(&a)?;
    if a.runs == 0 {
        return Err(Error::InvalidSetting("--runs must be at least 1".into()));
    }
    if a.finetune {
        return finetune(&weights, &label, &a);
    }
    let adapter = load::adapter_opt(a.adapter.as_deref(), &weights)?;
    let mut rows = Vec::new();
    for (choice, threads) in plan(&a)? {
        rows.push(measure(&weights, adapter.as_ref(), choice, threads, &a)?);
    }
    let c = weights.config;
    let header = format!(
        "machine: {}\nmodel: {label}{} (dim {}, hidden {}, layers {}, heads {}/{}, vocab {}, {:.1} MB f32)\n\
         prefill {} positions, decode {} tokens from BOS, median of {} runs",
        machine(), a.adapter.as_ref().map_or(String::new(), |d| format!(" + LoRA adapter {}", d.display())), c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
        c.n_params() as f64 * 4e-6, a.prompt_len, a.steps, a.runs
    );
    if a.json {
        let adapter = a.adapter.as_deref().map(load::name);
        let v = serde_json::json!({ "machine": machine(), "model": label, "adapter": adapter, "config": c, "runs": a.runs, "results": rows });
        out::line(&serde_json::to_string_pretty(&v).expect("plain data serializes"))
    } else {
        out::line(&header)?;
        out::line(&table(&rows))
    }
}

fn model(a: &Args) -> Result<(Weights, String)> {
    match (&a.model, &a.shape) {
        (Some(p), _) => Ok((load::model(p)?.0, load::name(p))),
        (None, Some(s)) => {
            let (c, seed) = named_shape(s)?;
            Ok((random_weights(&c, seed)?, format!("random {s} (seed {seed})")))
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

fn measure(w: &Weights, ad: Option<&Adapter>, choice: BackendChoice, threads: Option<usize>, a: &Args) -> Result<Row> {
    // The GPU has no LoRA kernels: it runs the merged weights, as `generate --adapter` does.
    let merged = match (ad, choice) {
        (Some(ad), BackendChoice::Gpu | BackendChoice::Auto) => Some(ad.merged(w)?),
        _ => None,
    };
    reset_peak_rss();
    let once = || match (ad, &merged) {
        (_, Some(m)) => bench(m.clone(), choice, GpuOptions::default(), a.prompt_len, a.steps),
        (Some(ad), None) => bench_lora_cpu(w.clone(), ad.clone(), a.prompt_len, a.steps),
        (None, None) => bench(w.clone(), choice, GpuOptions::default(), a.prompt_len, a.steps),
    };
    let mut reports: Vec<BenchReport> = Vec::with_capacity(a.runs);
    for _ in 0..a.runs {
        reports.push(match threads {
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| Error::InvalidSetting(format!("cannot start {n} threads: {e}")))?
                .install(once)?,
            None => once()?,
        });
    }
    let med = |f: fn(&BenchReport) -> f64| median(reports.iter().map(f).collect());
    let first = &reports[0];
    Ok(Row {
        backend: first.backend.clone(),
        reason: first.reason.clone(),
        threads,
        runs: a.runs,
        load_ms: med(|r| r.load_s) * 1e3,
        prefill_tokens: first.prefill_tokens,
        prefill_tok_s: med(|r| r.prefill_tok_s),
        decode_tokens: first.decode_tokens,
        decode_tok_s: med(|r| r.decode_tok_s),
        submits_per_token: med(|r| r.submits_per_token),
        bytes_per_token: med(|r| r.bytes_per_token),
        peak_rss_mb: peak_rss_mb(),
    })
}

/// The engine's `bench` for the CPU with an unmerged adapter: load, prefill position by
/// position, greedy decode from BOS after a short warm-up.
fn bench_lora_cpu(w: Weights, ad: Adapter, prompt_len: usize, decode: usize) -> Result<BenchReport> {
    let seq = w.config.seq_len;
    let prompt = random_tokens(1, prompt_len.clamp(1, seq), w.config.vocab_size);
    let t = Instant::now();
    let (mut b, why) = backend::open_adapted(w, "cpu", Some(ad))?;
    let load_s = t.elapsed().as_secs_f64();
    let mut s = Sampler::new(0.0, 0.9, 1)?;
    b.generate(&[BOS], 3, &mut s, |_| true)?;
    let t = Instant::now();
    for (pos, &tok) in prompt.iter().enumerate() {
        b.forward(tok, pos)?;
    }
    let prefill_tok_s = prompt.len() as f64 / t.elapsed().as_secs_f64().max(1e-9);
    let t = Instant::now();
    let decoded = b.generate(&[BOS], decode.clamp(1, seq), &mut s, |_| true)?.len() - 1;
    let decode_tok_s = decoded as f64 / t.elapsed().as_secs_f64().max(1e-9);
    Ok(BenchReport {
        backend: b.name(),
        reason: why,
        load_s,
        prefill_tokens: prompt.len(),
        prefill_tok_s,
        decode_tokens: decoded,
        decode_tok_s,
        submits_per_token: 0.0,
        bytes_per_token: 0.0,
    })
}

/// `--finetune`'s result: one training step's medians and memory.
#[derive(serde::Serialize)]
struct TrainRow {
    model: String,
    targets: Vec<&'static str>,
    rank: usize,
    batch: usize,
    seq: usize,
    lora_params: usize,
    runs: usize,
    step_ms: f64,
    tokens_per_s: f64,
    peak_rss_mb: Option<f64>,
    /// The step's own high-water mark as `lora::memory_report` computes it.
    computed_peak_mb: f64,
}

fn finetune(w: &Weights, label: &str, a: &Args) -> Result<()> {
    let lora = LoraConfig::new(a.rank, 8.0, false, parse_targets(&a.targets)?)?;
    reset_peak_rss();
    let times = time_steps(w, &lora, a.batch, a.seq, a.runs)?;
    let step_ms = median(times);
    let mem = lora::memory_report(&w.config, &lora, a.batch, a.seq);
    let row = TrainRow {
        model: label.to_string(),
        targets: lora.targets.iter().map(|t| t.peft_name()).collect(),
        rank: lora.r,
        batch: a.batch,
        seq: a.seq,
        lora_params: Adapter::<f32>::zeros(&w.config, lora.clone())?.n_params(),
        runs: a.runs,
        step_ms,
        tokens_per_s: (a.batch * a.seq) as f64 / (step_ms * 1e-3),
        peak_rss_mb: peak_rss_mb(),
        computed_peak_mb: mem.peak() as f64 / (1u64 << 20) as f64,
    };
    if a.json {
        let v = serde_json::json!({ "machine": machine(), "config": w.config, "finetune": row });
        return out::line(&serde_json::to_string_pretty(&v).expect("plain data serializes"));
    }
    let peak = row.peak_rss_mb.map_or("-".into(), |m| format!("{m:.0}"));
    out::line(&format!(
        "machine: {}\nLoRA training step (CPU, f32, AdamW), median of {} steps after one warm-up\n\
         model: {}\ntargets {}, r {}, batch {} x {} tokens, {} LoRA parameters\n\
         step {:.2} ms ({:.0} tokens/s), peak RSS {peak} MB (computed for the step: {:.1} MB)",
        machine(), row.runs, row.model, row.targets.join(","), row.rank, row.batch, row.seq, row.lora_params,
        row.step_ms, row.tokens_per_s, row.computed_peak_mb
    ))
}

/// Milliseconds of each of `runs` training steps on random tokens, after one warm-up step.
fn time_steps(w: &Weights, lora: &LoraConfig, batch: usize, seq: usize, runs: usize) -> Result<Vec<f64>> {
    let c = &w.config;
    let tokens = (0..batch).flat_map(|b| random_tokens(b as u64 + 1, seq, c.vocab_size)).collect();
    let batch = Batch::new(batch, seq, tokens)?;
    let base = Base::new(w);
    let mut t = Trainer::new(Adapter::<f32>::peft_default(c, lora.clone(), 0)?, TrainConfig::default())?;
    t.step(&base, &batch)?;
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            t.step(&base, &batch)?;
            Ok(start.elapsed().as_secs_f64() * 1e3)
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<46} {:>7} {:>9} {:>13} {:>12} {:>11} {:>9} {:>8}",
        "backend", "threads", "load ms", "prefill tok/s", "decode tok/s", "submits/tok", "bytes/tok", "peak MB"
    );
    for r in rows {
        let threads = r.threads.map_or("-".into(), |t| t.to_string());
        let peak = r.peak_rss_mb.map_or("-".into(), |m| format!("{m:.0}"));
        s += &format!(
            "\n{:<46} {:>7} {:>9.1} {:>13.0} {:>12.1} {:>11.2} {:>9.1} {:>8}",
            r.backend, threads, r.load_ms, r.prefill_tok_s, r.decode_tok_s, r.submits_per_token, r.bytes_per_token, peak
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
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|m| m.trim().to_string()))
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
