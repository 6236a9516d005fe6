//! `bench --sequences N`: greedy decode of N sequences from BOS together on the CPU
//! (`cpu::batch`) or the GPU (`gpu::GpuBatchGeneration`), a row beside each row of one
//! sequence; tokens/s counts every sequence's.

use std::time::Instant;

use tinylm_engine::cpu::batch::BatchGeneration;
use tinylm_engine::cpu::fast;
use tinylm_engine::gpu::{AnyBackend, GpuBatchGeneration, GpuOptions};
use tinylm_engine::{pool, Error, LoadedModel, Result, Sampler, Weights, BOS};

use super::{median, peak_rss_mb, reset_peak_rss, Args, Row};

/// Decode tokens/s of `n` greedy sequences decoded together, on `threads` threads; median of `--runs`.
pub(super) fn measure(w: &Weights, n: usize, threads: Option<usize>, a: &Args) -> Result<Row> {
    reset_peak_rss();
    // As a CPU backend does with its weights (`CpuBackend::with_kernels`).
    tinylm_engine::cpu::hugepages::advise(w);
    let steps = a.steps.clamp(1, w.config.seq_len);
    let once = || -> Result<(usize, f64)> {
        let greedy = || (0..n).map(|_| Sampler::new(0.0, 0.9, 1)).collect::<Result<Vec<_>>>();
        // A short warm-up, as the single-sequence rows have.
        let mut warm = BatchGeneration::new(&w.config, &[BOS], 3, greedy()?)?;
        while !warm.is_done() {
            warm.step(w)?;
        }
        let mut b = BatchGeneration::new(&w.config, &[BOS], steps, greedy()?)?;
        let t = Instant::now();
        while !b.is_done() {
            b.step(w)?;
        }
        let secs = t.elapsed().as_secs_f64();
        let tokens: usize = b.generations.iter().map(|g| g.tokens.len() - 1).sum();
        Ok((tokens, tokens as f64 / secs))
    };
    let p = threads.map(pool::with_threads);
    let runs = (0..a.runs)
        .map(|_| match &p {
            Some(p) => pool::install(p.clone(), once),
            None => once(),
        })
        .collect::<Result<Vec<_>>>()?;
    let backend = format!("cpu ({}) batch of {n}", fast::kernel_name());
    Ok(row(backend, format!("cpu: {n} sequences decoded together"), threads, n, &runs, w.size_bytes()))
}

/// A batch row: `runs` are each run's (tokens, tokens/s); decode only, so the prefill and
/// per-token GPU columns stay 0.
fn row(backend: String, reason: String, threads: Option<usize>, n: usize, runs: &[(usize, f64)], weight_bytes: u64) -> Row {
    Row {
        backend,
        reason,
        threads,
        sequences: n,
        f16_classifier: false,
        workgroups: None,
        runs: runs.len(),
        load_ms: 0.0,
        prefill_tokens: 0,
        prefill_tok_s: 0.0,
        decode_tokens: runs[0].0,
        decode_tok_s: median(runs.iter().map(|r| r.1).collect()),
        submits_per_token: 0.0,
        dispatches_per_token: 0.0,
        bytes_per_token: 0.0,
        peak_rss_mb: peak_rss_mb(),
        weight_mb: Some(weight_bytes as f64 / 1e6),
    }
}

/// The GPU's decode tokens/s of `n` greedy sequences decoded together; median of `--runs`, after
/// a short warm-up (pipelines compile on first use). Loading is not timed.
pub(super) fn measure_gpu(m: &LoadedModel, n: usize, opts: GpuOptions, a: &Args) -> Result<Row> {
    let (opened, why) = crate::backend::open(m, "gpu", opts)?;
    let AnyBackend::Gpu(mut g) = opened.backend else {
        return Err(Error::InvalidSetting(format!("--sequences on the GPU needs a GPU backend ({why})")));
    };
    let steps = a.steps.clamp(1, m.config().seq_len);
    let greedy = || (0..n).map(|_| Sampler::new(0.0, 0.9, 1)).collect::<Result<Vec<_>>>();
    let mut run = |steps: usize| -> Result<(usize, f64)> {
        let mut b = GpuBatchGeneration::new(&mut g, &[BOS], steps, greedy()?)?;
        let t = Instant::now();
        while !b.is_done() {
            b.step(&mut g)?;
        }
        let secs = t.elapsed().as_secs_f64();
        let tokens: usize = b.generations.iter().map(|gen| gen.tokens.len() - 1).sum();
        Ok((tokens, tokens as f64 / secs))
    };
    run(3)?;
    let runs = (0..a.runs).map(|_| run(steps)).collect::<Result<Vec<_>>>()?;
    let backend = format!("{} batch of {n}", g.name());
    Ok(row(backend, format!("gpu: {n} sequences decoded together, a row each"), None, n, &runs, g.weight_bytes()))
}
