//! `tinylm pretrain --lr-sweep`: the learning-rate experiment of "Small-scale proxies for
//! large-scale Transformer training instabilities": the same shape, data and steps at each rate,
//! plain, with warm-up, with z-loss and with both, recording the final loss and how the
//! attention and output logits grew; `lr_sweep.json` is laid out for the Build view's charts.

use serde::Serialize;
use tinylm_engine::pretrain::{sweep_ways, Hyper, PretrainBackend, SweepWay, Trainer};
use tinylm_engine::{Error, Result};

use super::{to_text, Args, Job};
use crate::{load, out};

pub const SWEEP_FILE: &str = "lr_sweep.json";

#[derive(Serialize)]
struct Run {
    lr: f64,
    /// Loss on the next batch after the last step; `null` when the run diverged.
    final_loss: Option<f64>,
    /// The step whose loss was not finite, if any.
    diverged_at: Option<u32>,
    /// Per step: cross-entropy, the largest attention logit over the layers, the mean
    /// log-normaliser and the largest output logit.
    loss: Vec<f64>,
    attn_logit_max: Vec<f64>,
    lse_mean: Vec<f64>,
    logit_max: Vec<f64>,
}

#[derive(Serialize)]
struct Variant {
    name: &'static str,
    warmup: u32,
    z_loss: f64,
    runs: Vec<Run>,
}

fn rates(list: &str) -> Result<Vec<f64>> {
    let lrs: Vec<f64> = list
        .split(',')
        .map(|s| s.trim().parse().map_err(|_| Error::InvalidSetting(format!("--lr-sweep: `{s}` is not a learning rate"))))
        .collect::<Result<_>>()?;
    if lrs.is_empty() || lrs.iter().any(|&lr| !(lr.is_finite() && lr > 0.0)) {
        return Err(Error::InvalidSetting("--lr-sweep needs positive learning rates separated by commas".into()));
    }
    Ok(lrs)
}

pub fn run(a: Args, backend: PretrainBackend) -> Result<()> {
    let lrs = rates(a.lr_sweep.as_deref().unwrap_or_default())?;
    let mut job = Job::fresh(&a)?;
    let base = job.run.hyper;
    let steps = base.schedule.steps;
    let ways = sweep_ways(steps, a.warmup.unwrap_or(0), a.z_loss.unwrap_or(0.0));
    std::fs::create_dir_all(&a.output)
        .map_err(|e| Error::Io { file: load::name(&a.output), what: format!("cannot create the output directory: {e}") })?;
    out::line(&format!("learning-rate sweep: {} rates × 4 variants, {steps} steps each; {}", lrs.len(), job.describe()))?;
    let mut variants = Vec::new();
    for SweepWay { name, warmup, z_loss } in ways {
        let mut runs = Vec::new();
        for &lr in &lrs {
            let mut h = base;
            h.schedule.lr = lr;
            h.schedule.min_lr = a.min_lr.unwrap_or(lr / 10.0).min(lr);
            h.schedule.warmup = warmup;
            h.z_loss = z_loss;
            let r = one_run(&mut job, backend, h)?;
            out::line(&format!(
                "{name:>16}  lr {lr:<8.2e} final loss {}  max attention logit {:.2}",
                r.final_loss.map_or("diverged".to_string(), |l| format!("{l:.4}")),
                r.attn_logit_max.iter().cloned().fold(f64::NAN, f64::max)
            ))?;
            runs.push(r);
        }
        variants.push(Variant { name, warmup, z_loss, runs });
    }
    let json = serde_json::json!({
        "start": job.run.start, "config": job.run.config, "steps": steps, "data": job.run.data,
        "settings": base, "variants": variants,
    });
    load::write_file(&a.output.join(SWEEP_FILE), to_text(&json)?.as_bytes())?;
    out::line(&format!("wrote {}", a.output.join(SWEEP_FILE).display()))
}

/// One run from the job's start, to the end or its first non-finite loss.
fn one_run(job: &mut Job, backend: PretrainBackend, h: Hyper) -> Result<Run> {
    let mut t = Trainer::open(backend, &job.weights, h, None)?;
    let mut r = Run {
        lr: h.schedule.lr,
        final_loss: None,
        diverged_at: None,
        loss: vec![],
        attn_logit_max: vec![],
        lse_mean: vec![],
        logit_max: vec![],
    };
    for k in 0..h.schedule.steps {
        match t.step(&job.batch(k)?) {
            Ok(m) => {
                r.loss.push(m.loss);
                r.attn_logit_max.push(m.attn_logit_max.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
                r.lse_mean.push(m.lse_mean);
                r.logit_max.push(m.logit_max);
            }
            Err(Error::InvalidSetting(msg)) if msg.contains("diverged") => {
                r.diverged_at = Some(k + 1);
                return Ok(r);
            }
            Err(e) => return Err(e),
        }
    }
    let last = t.loss(&job.batch(h.schedule.steps)?)?;
    r.final_loss = last.is_finite().then_some(last);
    Ok(r)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_parse() {
        assert_eq!(super::rates("1e-3, 3e-3").unwrap(), [1e-3, 3e-3]);
        assert!(super::rates("1e-3,x").is_err() && super::rates("0").is_err() && super::rates("").is_err());
    }
}
