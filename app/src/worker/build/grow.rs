//! A run: grows a model from random weights, as `tinylm pretrain --config SPEC --seed SEED
//! --text-file TRAIN -z tok512.bin` does, one step at a time with a yield between (Pause and
//! Stop, acted on as they arrive, end a run within one step). Each step's instruments go to the
//! page; every `sample_every` steps a held-out check, a sample on the fixed prompt and a
//! checkpoint; at the end the model as a llama2.c file.

use tinylm_engine::checkpoint::write_v0;
use tinylm_engine::pretrain::{StepMetrics, Trainer};
use tinylm_engine::randmodel::random_weights;
use tinylm_engine::sampler::Sampler;
use tinylm_engine::{Config, Tokenizer};

use super::super::bridge::{now_ms, yield_now};
use super::super::cancel::Cancel;
use super::setup::{data, hyper, open_trainer, send, Data, From, SAMPLE_SEED, SAMPLE_TEMPERATURE, SAMPLE_TOKENS};
use crate::protocol::build::{shape, BuildEvent, BuildStart, RunTiming, StepView};
use crate::protocol::train::Ending;
use crate::protocol::Bytes;

pub async fn run(start: BuildStart, cancel: &Cancel<Ending>) -> Result<(), String> {
    let BuildStart { job, settings: s, text, tokenizer, resume } = start;
    let text_err = |e: tinylm_engine::Error| e.to_string();
    let shape = shape(&s.shape).ok_or_else(|| format!("Unknown shape “{}”.", s.shape))?;
    let c = Config::parse(shape.spec).map_err(text_err)?;
    let tok = Tokenizer::from_bytes(&tokenizer.to_vec(), "tok512.bin").map_err(text_err)?;
    let hyper = hyper(&s);
    hyper.validate().map_err(text_err)?;
    let d = data(&tok, &text, &s, &c, job)?;
    d.train.batch(s.batch, 0, s.data_seed).map_err(text_err)?;
    let (mut t, device) = match resume {
        Some(state) => {
            let opened = open_trainer(&s, From::Checkpoint(&state.to_vec())).await?;
            if opened.0.hyper() != hyper || opened.0.config() != c {
                return Err("The checkpoint was saved with other settings; start a new run.".into());
            }
            opened
        }
        None => {
            let w = random_weights(&c, shape.seed).map_err(text_err)?;
            open_trainer(&s, From::Fresh(&w, hyper)).await?
        }
    };
    send(BuildEvent::Device { job, name: device });
    let prompt = tok.encode(&s.prompt, true, false);
    let mut done = t.steps_done();
    let mut clock = Clock::new();
    if done == 0 {
        clock.check(check(&mut t, &d, &tok, &prompt, job)).await?;
    }
    while done < s.steps {
        if let Some(ending) = cancel.reason(job) {
            return end(&mut t, job, ending, clock).await;
        }
        let batch = d.train.batch(s.batch, done as u64, s.data_seed).map_err(text_err)?;
        let t0 = now_ms();
        let m = t.step_async(&batch).await.map_err(text_err)?.clone();
        let step_ms = now_ms() - t0;
        done = m.step;
        send(BuildEvent::Step { job, m: view(&m, (clock.steps_ms + step_ms) / (clock.steps + 1) as f64) });
        if done % s.sample_every.max(1) == 0 && done < s.steps {
            clock.check(check(&mut t, &d, &tok, &prompt, job)).await?;
            let (_, state) = t.snapshot_async(true).await.map_err(text_err)?;
            send(BuildEvent::Checkpoint { job, step: done, state: Bytes::from_slice(&state) });
        }
        // As the estimate times a step: with the yield after it (for Pause and Stop).
        let t0 = now_ms();
        yield_now().await;
        clock.step(step_ms + now_ms() - t0);
    }
    clock.check(check(&mut t, &d, &tok, &prompt, job)).await?;
    end(&mut t, job, Ending::Finished, clock).await
}

/// Where the run's time goes, by one clock: its steps, its checks, and the whole.
struct Clock {
    start: f64,
    steps: u32,
    steps_ms: f64,
    checks: u32,
    checks_ms: f64,
}

impl Clock {
    fn new() -> Clock {
        Clock { start: now_ms(), steps: 0, steps_ms: 0.0, checks: 0, checks_ms: 0.0 }
    }

    fn step(&mut self, ms: f64) {
        self.steps += 1;
        self.steps_ms += ms;
    }

    async fn check<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
        let t0 = now_ms();
        let out = work.await;
        self.checks += 1;
        self.checks_ms += now_ms() - t0;
        out
    }

    fn timing(&self) -> RunTiming {
        let mean = |ms: f64, n: u32| if n == 0 { 0.0 } else { ms / n as f64 };
        RunTiming {
            steps: self.steps,
            step_ms: mean(self.steps_ms, self.steps),
            checks: self.checks,
            check_ms: mean(self.checks_ms, self.checks),
            total_ms: now_ms() - self.start,
        }
    }
}

/// The run's end: a checkpoint (to resume a pause) and the model file.
async fn end(t: &mut Trainer, job: u64, ending: Ending, clock: Clock) -> Result<(), String> {
    let (w, state) = t.snapshot_async(true).await.map_err(|e| e.to_string())?;
    let step = t.steps_done();
    send(BuildEvent::Checkpoint { job, step, state: Bytes::from_slice(&state) });
    let model = Bytes::from_slice(&write_v0(&w));
    send(BuildEvent::Ended { job, ending, step, model, timing: clock.timing() });
    Ok(())
}

/// The held-out loss and a sample at the current step.
async fn check(t: &mut Trainer, d: &Data, tok: &Tokenizer, prompt: &[u32], job: u64) -> Result<(), String> {
    let step = t.steps_done();
    if !d.held.is_empty() {
        let mut sum = 0.0;
        for b in &d.held.batches {
            sum += t.loss_async(b).await.map_err(|e| e.to_string())? * b.batch as f64;
            yield_now().await;
        }
        send(BuildEvent::Held { job, step, loss: sum / d.held.windows as f64 });
    }
    let mut sampler = Sampler::new(SAMPLE_TEMPERATURE, 0.9, SAMPLE_SEED).map_err(|e| e.to_string())?;
    let tokens = t.sample_async(prompt.to_vec(), SAMPLE_TOKENS, &mut sampler).await.map_err(|e| e.to_string())?;
    // The text after BOS (`decode_all` decodes each token after the one before), prompt included.
    let text = String::from_utf8_lossy(&tok.decode_all(&tokens).map_err(|e| e.to_string())?).into_owned();
    send(BuildEvent::Sample { job, step, text });
    Ok(())
}

fn view(m: &StepMetrics, ms_per_step: f64) -> StepView {
    StepView {
        step: m.step,
        loss: m.loss,
        lr: m.lr,
        grad_norm: m.grad_norm,
        attn_logit_max: m.attn_logit_max.clone(),
        logit_max: m.logit_max,
        lse_mean: m.lse_mean,
        update_ratio: m.update_ratio.iter().flatten().copied().fold(0.0, f64::max),
        ms_per_step,
    }
}
