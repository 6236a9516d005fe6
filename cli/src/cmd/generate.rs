//! `tinylm generate`: llama2.c `run`'s generate mode, byte for byte on stdout; with knock-outs or
//! steering (or `--json`), the unchanged story and the changed ones with the same seed, side by
//! side, with the first differing token marked.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tinylm_engine::generate::{Backend, Generation, Generator};
use tinylm_engine::gpu::AnyBackend;
use tinylm_engine::trace::pieces::token_pieces;
use tinylm_engine::trace::{first_difference, Edits};
use tinylm_engine::{LoadedModel, Result, Sampler, Tokenizer};

use super::bench::tuning;
use crate::{backend, intervene, load, out};
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
    /// Write one JSON object (the stories, their tokens, what was changed) instead of the text.
    #[arg(long)]
    pub json: bool,
    /// Knock-outs and steering: the story is regenerated with them (same seed) beside the original.
    #[command(flatten)]
    pub edit: intervene::Flags,
    /// Several stories of the prompt decoded together (--backend cpu, or gpu: one batched pass a
    /// step), one per setting: "t=0.8,s=1;t=1.0,p=0.5,s=2" (keys left out take -t/-p/-s); each
    /// equals its own run.
    #[arg(long, conflicts_with_all = ["tuning", "tune"])]
    pub compare: Option<String>,
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
    let mut model = load::tokenizer_or_own(load::model(&a.model)?, a.tokenizer.as_deref())?;
    let mut sampler = Sampler::from_cli(a.temperature, a.topp, resolve_seed(a.seed))?;
    let prompt = model.need_tokenizer()?.encode(&a.prompt, true, false);
    let steps = a.steps.max(0) as usize;
    // Checks the prompt against the model before any backend is opened.
    Generation::new(prompt.clone(), steps, model.config())?;
    if let Some(spec) = &a.compare {
        return super::batch_stories::run(&a, spec, &model, model.need_tokenizer()?, &prompt, steps);
    }
    load::use_adapter(&mut model, a.adapter.as_deref())?;
    let tok = model.need_tokenizer()?;
    let wg = tuning::workgroups(model.config(), a.tuning.as_deref(), a.tune.then_some(a.tune_budget_ms), &a.backend)?;
    let opts = tuning::options(GpuOptions::default(), wg);
    if a.json || !a.edit.is_none() {
        return compare(&a, &model, &prompt, opts);
    }
    let (mut opened, why) = backend::open(&model, &a.backend, opts)?;
    if a.backend != "cpu" {
        let _ = writeln!(std::io::stderr(), "backend: {why}");
    }

    let mut start: Option<Instant> = None;
    let mut emitted = 0usize;
    let mut failure = None;
    opened.backend.generate(&prompt, steps, &mut sampler, |step| {
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

/// One story: its tokens, how they read, the text.
fn story(tok: &Tokenizer, tokens: &[u32]) -> Result<Value> {
    let mut text = Vec::new();
    for w in tokens.windows(2) {
        text.extend_from_slice(tok.decode(w[0], w[1])?.printable());
    }
    Ok(json!({"tokens": tokens, "pieces": token_pieces(tok, tokens), "text": String::from_utf8_lossy(&text)}))
}

/// The unchanged story, then one per steering strength (or one with the knock-outs), each
/// from the same seed; JSON or text side by side.
fn compare(a: &Args, model: &LoadedModel, prompt: &[u32], opts: GpuOptions) -> Result<()> {
    let tok = model.need_tokenizer()?;
    let plan = (!a.edit.is_none()).then(|| a.edit.plan(model)).transpose()?;
    let config = *model.config();
    let (opened, why) = backend::open(model, &a.backend, opts)?;
    let mut backend = opened.backend;
    let seed = resolve_seed(a.seed);
    let steps = a.steps.max(0) as usize;
    let run = |b: &mut AnyBackend| -> Result<Vec<u32>> {
        let mut sampler = Sampler::from_cli(a.temperature, a.topp, seed)?;
        b.generate(prompt, steps, &mut sampler, |_| true)
    };
    let original = run(&mut backend)?;
    let mut runs = Vec::new();
    if let Some(plan) = &plan {
        // Mean ablation averages over the unchanged story, which the backend wrote first.
        let means = plan.means(model, &original)?;
        let strengths: Vec<Option<f32>> =
            if plan.strengths.is_empty() { vec![None] } else { plan.strengths.iter().map(|&s| Some(s)).collect() };
        for strength in strengths {
            let iv = plan.intervention(strength.unwrap_or(0.0));
            backend.set_edits(Some(&Edits::new(&config, &iv, means.as_ref())?))?;
            let tokens = run(&mut backend)?;
            runs.push((strength, iv.describe(), tokens));
        }
        backend.set_edits(None)?;
    }
    if a.json {
        let runs = runs
            .iter()
            .map(|(strength, what, tokens)| {
                let mut v = story(tok, tokens)?;
                v["strength"] = json!(strength);
                v["description"] = json!(what);
                v["first_difference"] = json!(first_difference(&original, tokens));
                Ok(v)
            })
            .collect::<Result<Vec<_>>>()?;
        let j = json!({
            "model": load::name(&a.model),
            "backend": why,
            "seed": seed,
            "temperature": a.temperature,
            "top_p": a.topp,
            "steps": steps,
            "prompt": a.prompt,
            "intervention": plan.as_ref().map(|p| p.to_json(None)),
            "original": story(tok, &original)?,
            "runs": runs,
        });
        return out::line(&j.to_string());
    }
    let text = |tokens: &[u32]| story(tok, tokens).map(|v| v["text"].as_str().unwrap_or_default().to_string());
    let mut s = format!("unchanged (seed {seed}):\n{}\n", text(&original)?);
    for (_, what, tokens) in &runs {
        s += &format!("\n{what}:\n{}\n", text(tokens)?);
        s += &match first_difference(&original, tokens) {
            None => "(the same story)\n".to_string(),
            Some(i) => {
                let piece = |v: &[u32]| v.get(i).map_or("(end)".to_string(), |_| format!("{:?}", token_pieces(tok, &v[..=i])[i]));
                format!("first difference at token {i}: {} -> {}\n", piece(&original), piece(tokens))
            }
        };
    }
    out::write(s.as_bytes()).map(|_| ())
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
