//! `tinylm generate --compare "t=0.8,s=1;t=1.0,s=2"`: the same prompt under several sampling
//! settings, decoded together on the CPU (`cpu::batch`, each weight read once a step for all;
//! each story equal to its own `generate` run) or, with `--backend gpu`, the GPU
//! (`gpu::GpuBatchGeneration`, one batched pass a step); printed one after another, each after a
//! header.

use std::io::Write;
use std::time::Instant;

use tinylm_engine::cpu::batch::{BatchGeneration, MAX_BATCH};
use tinylm_engine::generate::Generation;
use tinylm_engine::gpu::{AnyBackend, GpuBatchGeneration, GpuOptions};
use tinylm_engine::{Error, LoadedModel, Result, Sampler, Tokenizer};

use super::generate::{resolve_seed, Args};
use crate::out;

/// One setting of `--compare`: temperature, top-p and seed (as `-t`, `-p`, `-s`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    pub t: f32,
    pub p: f32,
    pub s: i64,
}

/// Parses `t=0.8,p=0.9,s=1;t=1.0,s=2`: settings split by `;`, keys `t`, `p`, `s` split by `,`;
/// a key left out takes `-t`/`-p`/`-s`'s value.
pub fn parse(spec: &str, default: Setting) -> Result<Vec<Setting>> {
    let bad = |why: String| Error::InvalidSetting(format!("--compare `{spec}`: {why}"));
    let mut out = Vec::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let mut s = default;
        for kv in part.split(',').map(str::trim) {
            let (k, v) = kv.split_once('=').ok_or_else(|| bad(format!("`{kv}` is not key=value (t, p or s)")))?;
            let num = || bad(format!("`{kv}`: `{v}` is not a number"));
            match k.trim() {
                "t" => s.t = v.trim().parse().map_err(|_| num())?,
                "p" => s.p = v.trim().parse().map_err(|_| num())?,
                "s" => s.s = v.trim().parse().map_err(|_| num())?,
                other => return Err(bad(format!("unknown key `{other}` (t, p or s)"))),
            }
        }
        out.push(s);
    }
    if out.is_empty() || out.len() > MAX_BATCH {
        return Err(bad(format!("give 1 to {MAX_BATCH} settings split by `;`, not {}", out.len())));
    }
    Ok(out)
}

/// Decodes every setting's story together, then prints them in order.
pub fn run(a: &Args, spec: &str, model: &LoadedModel, tok: &Tokenizer, prompt: &[u32], steps: usize) -> Result<()> {
    if !matches!(a.backend.as_str(), "cpu" | "gpu") || a.adapter.is_some() {
        return Err(Error::InvalidSetting("--compare runs without an adapter on --backend cpu or gpu".into()));
    }
    if a.json || !a.edit.is_none() {
        return Err(Error::InvalidSetting("--compare takes neither --json nor knock-outs or steering".into()));
    }
    let settings = parse(spec, Setting { t: a.temperature, p: a.topp, s: a.seed })?;
    let samplers = settings.iter().map(|s| Sampler::from_cli(s.t, s.p, resolve_seed(s.s))).collect::<Result<Vec<_>>>()?;
    let start = Instant::now();
    let generations =
        if a.backend == "gpu" { on_gpu(model, prompt, steps, samplers)? } else { on_cpu(model, prompt, steps, samplers)? };
    let secs = start.elapsed().as_secs_f64();
    let mut tokens = 0;
    for (s, g) in settings.iter().zip(&generations) {
        out::write(format!("[t={} p={} s={}]\n", s.t, s.p, s.s).as_bytes())?;
        for w in g.tokens.windows(2) {
            if !out::write(tok.decode(w[0], w[1])?.printable())? {
                return Ok(());
            }
        }
        out::write(b"\n")?;
        tokens += g.tokens.len() - 1;
    }
    let _ = writeln!(std::io::stderr(), "{} stories, {tokens} tokens in all: {:.6} tok/s", settings.len(), tokens as f64 / secs);
    Ok(())
}

fn on_cpu(model: &LoadedModel, prompt: &[u32], steps: usize, samplers: Vec<Sampler>) -> Result<Vec<Generation>> {
    let weights = model.weights();
    tinylm_engine::cpu::hugepages::advise(weights);
    let mut batch = BatchGeneration::new(&weights.config, prompt, steps, samplers)?;
    while !batch.is_done() {
        batch.step(weights)?;
    }
    Ok(batch.generations)
}

fn on_gpu(model: &LoadedModel, prompt: &[u32], steps: usize, samplers: Vec<Sampler>) -> Result<Vec<Generation>> {
    let (opened, why) = crate::backend::open(model, "gpu", GpuOptions::default())?;
    let AnyBackend::Gpu(mut g) = opened.backend else {
        return Err(Error::InvalidSetting(format!("--compare on the GPU needs a GPU backend ({why})")));
    };
    let mut batch = GpuBatchGeneration::new(&mut g, prompt, steps, samplers)?;
    while !batch.is_done() {
        batch.step(&mut g)?;
    }
    Ok(batch.generations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_take_the_defaults_for_keys_left_out() {
        let d = Setting { t: 1.0, p: 0.9, s: 7 };
        let got = parse("t=0.8, s=1; t=0 ;p=0.5", d).unwrap();
        assert_eq!(
            got,
            vec![Setting { t: 0.8, p: 0.9, s: 1 }, Setting { t: 0.0, p: 0.9, s: 7 }, Setting { t: 1.0, p: 0.5, s: 7 }]
        );
        for bad in ["", "t", "t=x", "q=1", ";;"] {
            assert!(parse(bad, d).is_err(), "{bad}");
        }
        assert!(parse(&vec!["t=1"; 17].join(";"), d).unwrap_err().to_string().contains("1 to 16"));
    }
}
