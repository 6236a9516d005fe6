//! The experiments: the same short run (shape, random init, data, steps) at each of its runs'
//! rate, warm-up and z-loss, one after another, as `tinylm pretrain --lr-sweep` runs each of its
//! variants: a cosine to a tenth of the rate, and at the end the loss on the next batch.

use tinylm_engine::pretrain::{PretrainBackend, Trainer};
use tinylm_engine::randmodel::random_weights;
use tinylm_engine::{Config, Error, Tokenizer};

use super::super::bridge::yield_now;
use super::super::cancel::Cancel;
use super::setup::{data, hyper, send};
use crate::protocol::build::{shape, BuildEvent, SweepStart};
use crate::protocol::train::Ending;

pub async fn run(start: SweepStart, cancel: &Cancel<Ending>) -> Result<(), String> {
    let SweepStart { job, settings: s, runs, text, tokenizer } = start;
    let text_err = |e: Error| e.to_string();
    let shape = shape(&s.shape).ok_or_else(|| format!("Unknown shape “{}”.", s.shape))?;
    let c = Config::parse(shape.spec).map_err(text_err)?;
    let tok = Tokenizer::from_bytes(&tokenizer.to_vec(), "tok512.bin").map_err(text_err)?;
    let d = data(&tok, &text, &s, &c, job)?;
    let w = random_weights(&c, shape.seed).map_err(text_err)?;
    for (run, spec) in runs.iter().enumerate() {
        let mut h = hyper(&s);
        h.schedule.lr = spec.lr;
        // `--lr-sweep`'s default end of the cosine.
        h.schedule.min_lr = spec.lr / 10.0;
        h.schedule.warmup = spec.warmup;
        h.z_loss = spec.z_loss;
        h.validate().map_err(text_err)?;
        let mut t = Trainer::open_async(PretrainBackend::Cpu, &w, h, None).await.map_err(text_err)?;
        let mut diverged_at = None;
        for k in 0..s.steps {
            if cancel.reason(job).is_some() {
                send(BuildEvent::SweepEnded { job, stopped: true });
                return Ok(());
            }
            let batch = d.train.batch(s.batch, k as u64, s.data_seed).map_err(text_err)?;
            match t.step_async(&batch).await {
                Ok(m) => {
                    let attn = m.attn_logit_max.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    send(BuildEvent::SweepStep { job, run, step: m.step, loss: m.loss, attn })
                }
                // The engine refuses a non-finite loss: the run ends there, as the CLI's does.
                Err(Error::InvalidSetting(msg)) if msg.contains("diverged") => {
                    diverged_at = Some(k + 1);
                    break;
                }
                Err(e) => return Err(e.to_string()),
            }
            yield_now().await;
        }
        let final_loss = match diverged_at {
            Some(_) => None,
            None => {
                let next = d.train.batch(s.batch, s.steps as u64, s.data_seed).map_err(text_err)?;
                Some(t.loss_async(&next).await.map_err(text_err)?).filter(|l| l.is_finite())
            }
        };
        send(BuildEvent::SweepRun { job, run, final_loss, diverged_at });
    }
    send(BuildEvent::SweepEnded { job, stopped: false });
    Ok(())
}
