//! `tinylm generate`: llama2.c `run`'s generate mode, byte for byte on stdout.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tinylm_engine::generate::Generation;
use tinylm_engine::{Result, Sampler};

use super::bench::tuning;
use crate::{backend, load, out};
use tinylm_engine::gpu::GpuOptions;

#[derive(clap::Args)]
pub struct Args {
    /// Model: llama2.c checkpoint (v0, v1, v2), GGUF file or Hugging Face folder.
    pub model: PathBuf,
    /// tokenizer.bin or tokenizer.json with the model's vocabulary (default: the model's own).
    #[arg(short = 'z', long)]
    pub tokenizer: Option<PathBuf>,
    /// 0 is greedy; negative counts as 0 (as run.c).
    #[arg(short = 't', long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Top-p (nucleus) threshold; outside [0, 1] counts as 0.9 (as run.c).
    #[arg(short = 'p', long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub topp: f32,
    /// RNG seed; 0 or absent takes the clock (as run.c).
    #[arg(short = 's', long, default_value_t = 0, allow_negative_numbers = true)]
    pub seed: i64,
    /// Forward passes including the prompt; 0, negative or above the context means the context.
    #[arg(short = 'n', long, default_value_t = 256, allow_negative_numbers = true)]
    pub steps: i64,
    /// Prompt text.
    #[arg(short = 'i', long, default_value = "")]
    pub prompt: String,
    /// cpu (run.c exactly), gpu (wgpu; same greedy story, sampling equal up to float sums) or auto.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// A PEFT LoRA adapter directory (`tinylm finetune`'s output); merged into the weights on the GPU.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// GPU: decode with the workgroup shapes of this tuning JSON (`tinylm bench --backend gpu --tune`).
    #[arg(long, conflicts_with = "tune")]
    pub tuning: Option<PathBuf>,
    /// GPU: measure the decode kernels' workgroup shapes on this adapter before generating
    /// (within --tune-budget-ms; the choice goes to stderr).
    #[arg(long)]
    pub tune: bool,
    /// --tune: time budget in milliseconds.
    #[arg(long, default_value_t = 2000.0, requires = "tune")]
    pub tune_budget_ms: f64,
}

/// run.c stores atoi's int in an unsigned long long (negative values wrap) and takes the
/// clock's seconds when the result is 0.
pub fn resolve_seed(seed: i64) -> u64 {
    match seed as u64 {
        0 => SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_secs() as u32 as u64),
        s => s,
    }
}

pub fn run(a: Args) -> Result<()> {
    let (weights, own) = load::model(&a.model)?;
    let tok = load::tokenizer_for(a.tokenizer.as_deref(), own, &weights, &a.model)?;
    let mut sampler = Sampler::from_cli(a.temperature, a.topp, resolve_seed(a.seed))?;
    let prompt = tok.encode(&a.prompt, true, false);
    let steps = a.steps.max(0) as usize;
    // Checks the prompt against the model before any backend is opened.
    Generation::new(prompt.clone(), steps, &weights.config)?;
    let adapter = load::adapter_opt(a.adapter.as_deref(), &weights)?;
    let wg = tuning::workgroups(&weights.config, a.tuning.as_deref(), a.tune.then_some(a.tune_budget_ms), &a.backend)?;
    let opts = tuning::options(GpuOptions::default(), wg);
    let (mut model, why) = backend::open_adapted_with(weights, &a.backend, adapter, opts)?;
    if a.backend != "cpu" {
        let _ = writeln!(std::io::stderr(), "backend: {why}");
    }

    let mut start: Option<Instant> = None;
    let mut emitted = 0usize;
    let mut failure = None;
    model.generate(&prompt, steps, &mut sampler, |step| {
        // Flushed per token, as run.c; a closed pipe ends the run.
        let piece = match tok.decode(step.prev, step.token) {
            Ok(p) => p,
            Err(e) => {
                failure = Some(e);
                return false;
            }
        };
        // run.c drops lone non-printable bytes; a Hugging Face tokenizer's byte pieces are
        // parts of characters and are written as they are.
        match out::write(if tok.is_hf() { piece.bytes() } else { piece.printable() }) {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                failure = Some(e);
                return false;
            }
        }
        emitted += 1;
        // As run.c: time from the first emission, the first pass being slower.
        start.get_or_insert_with(Instant::now);
        true
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    out::write(b"\n")?;
    report_speed(emitted, start);
    Ok(())
}

/// run.c's `achieved tok/s` line: tokens after the first emission over the time since it.
fn report_speed(emitted: usize, start: Option<Instant>) {
    let Some(start) = start.filter(|_| emitted > 1) else { return };
    let secs = start.elapsed().as_secs_f64();
    let _ = writeln!(std::io::stderr(), "achieved tok/s: {:.6}", (emitted - 1) as f64 / secs);
}

#[cfg(test)]
mod tests {
    use super::resolve_seed;

    #[test]
    fn seeds_follow_run_c() {
        assert_eq!(resolve_seed(133742), 133742);
        assert_eq!(resolve_seed(-1), u64::MAX, "atoi's -1 stored in an unsigned long long");
        assert_ne!(resolve_seed(0), 0, "0 takes the clock");
    }
}
