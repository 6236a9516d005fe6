//! `bench --finetune`: milliseconds per LoRA training step on the CPU and the GPU, with memory.

use std::time::Instant;

use tinylm_engine::gpu::{GpuTrainOptions, GpuTrainer};
use tinylm_engine::lora::{self, parse_targets, Adapter, Base, Batch, LoraConfig, TrainConfig, Trainer};
use tinylm_engine::randmodel::random_tokens;
use tinylm_engine::{Error, Result, Weights};

use super::{machine, median, peak_rss_mb, reset_peak_rss, Args};
use crate::out;

/// One backend's training step: medians and memory.
#[derive(serde::Serialize)]
struct TrainRow {
    backend: String,
    model: String,
    targets: Vec<&'static str>,
    rank: usize,
    batch: usize,
    seq: usize,
    lora_params: usize,
    runs: usize,
    step_ms: f64,
    tokens_per_s: f64,
    /// CPU: the process's peak RSS; GPU: the trainer's buffers.
    peak_mb: Option<f64>,
    /// The step's own high-water mark as `lora::memory_report` computes it.
    computed_peak_mb: f64,
}

/// Which backends `--backend` asks for: cpu, gpu, or both (all, auto).
fn backends(name: &str) -> Result<Vec<bool>> {
    match name {
        "cpu" => Ok(vec![false]),
        "gpu" => Ok(vec![true]),
        "all" | "auto" => Ok(vec![false, true]),
        other => Err(Error::InvalidSetting(format!("backend `{other}` must be cpu, gpu, auto or all"))),
    }
}

pub fn run(w: &Weights, label: &str, a: &Args) -> Result<()> {
    let lora = LoraConfig::new(a.rank, 8.0, false, parse_targets(&a.targets)?)?;
    let mem = lora::memory_report(&w.config, &lora, a.batch, a.seq);
    let mut rows = Vec::new();
    for gpu in backends(&a.backend)? {
        reset_peak_rss();
        let (times, device, gpu_bytes) = time_steps(w, &lora, a, gpu)?;
        let step_ms = median(times);
        rows.push(TrainRow {
            backend: device,
            model: label.to_string(),
            targets: lora.targets.iter().map(|t| t.peft_name()).collect(),
            rank: lora.r,
            batch: a.batch,
            seq: a.seq,
            lora_params: Adapter::<f32>::zeros(&w.config, lora.clone())?.n_params(),
            runs: a.runs,
            step_ms,
            tokens_per_s: (a.batch * a.seq) as f64 / (step_ms * 1e-3),
            peak_mb: gpu_bytes.map(|b| b as f64 / (1u64 << 20) as f64).or_else(peak_rss_mb),
            computed_peak_mb: mem.peak() as f64 / (1u64 << 20) as f64,
        });
    }
    if a.json {
        let v = serde_json::json!({ "machine": machine(), "config": w.config, "finetune": rows });
        return out::line(&serde_json::to_string_pretty(&v).expect("plain data serializes"));
    }
    let r = &rows[0];
    out::line(&format!(
        "machine: {}\nLoRA training step (f32, AdamW), median of {} steps after one warm-up\n\
         model: {}\ntargets {}, r {}, batch {} x {} tokens, {} LoRA parameters; computed peak for the step {:.1} MB",
        machine(),
        r.runs,
        r.model,
        r.targets.join(","),
        r.rank,
        r.batch,
        r.seq,
        r.lora_params,
        r.computed_peak_mb
    ))?;
    for r in &rows {
        let peak = r.peak_mb.map_or("-".into(), |m| format!("{m:.0}"));
        let what = if r.backend == "cpu" { "peak RSS" } else { "GPU buffers" };
        out::line(&format!("{:<28} step {:>10.2} ms ({:.0} tokens/s), {what} {peak} MB", r.backend, r.step_ms, r.tokens_per_s))?;
    }
    Ok(())
}

/// Milliseconds of each of `--runs` training steps on random tokens after one warm-up step,
/// the backend's name, and (GPU) the trainer's buffer bytes.
fn time_steps(w: &Weights, lora: &LoraConfig, a: &Args, gpu: bool) -> Result<(Vec<f64>, String, Option<u64>)> {
    let c = &w.config;
    let tokens = (0..a.batch).flat_map(|b| random_tokens(b as u64 + 1, a.seq, c.vocab_size)).collect();
    let batch = Batch::new(a.batch, a.seq, tokens)?;
    let adapter = Adapter::<f32>::peft_default(c, lora.clone(), 0)?;
    let timed = |mut step: Box<dyn FnMut() -> Result<()> + '_>| -> Result<Vec<f64>> {
        step()?;
        (0..a.runs)
            .map(|_| {
                let start = Instant::now();
                step()?;
                Ok(start.elapsed().as_secs_f64() * 1e3)
            })
            .collect()
    };
    if gpu {
        let mut t = GpuTrainer::new(w, adapter, TrainConfig::default(), GpuTrainOptions::default())?;
        let device = format!("gpu ({})", t.context().adapter);
        let times = timed(Box::new(|| t.step(&batch).map(drop)))?;
        return Ok((times, device, Some(t.gpu_bytes())));
    }
    let base = Base::new(w);
    let mut t = Trainer::new(adapter, TrainConfig::default())?;
    let times = timed(Box::new(|| t.step(&base, &batch).map(drop)))?;
    Ok((times, "cpu".into(), None))
}
