//! How long a run would take here, measured before it starts: the settings' shape from its
//! random init, warm-up steps, then the median of a few timed steps on random tokens (the
//! time of a step does not depend on which tokens), one held-out window's loss and a sample.
//! A check is counted with the most held-out windows a run takes (`HELD_MAX`). On the device
//! the run would train on.

use tinylm_engine::lora::Batch;
use tinylm_engine::randmodel::random_weights;
use tinylm_engine::{Config, Rng, Sampler};

use super::super::bridge::{now_ms, yield_now};
use super::setup::{hyper, open_trainer, From, HELD_MAX, SAMPLE_SEED, SAMPLE_TEMPERATURE, SAMPLE_TOKENS};
use crate::protocol::build::{shape, BuildEstimate, BuildSettings};

/// Timed steps after the warm-up.
const TIMED: usize = 3;
const WARM_MS: f64 = 200.0;

pub async fn measure(s: &BuildSettings) -> Result<BuildEstimate, String> {
    let err = |e: tinylm_engine::Error| e.to_string();
    let shape = shape(&s.shape).ok_or_else(|| format!("Unknown shape “{}”.", s.shape))?;
    let c = Config::parse(shape.spec).map_err(err)?;
    let w = random_weights(&c, shape.seed).map_err(err)?;
    let (mut t, _) = open_trainer(s, From::Fresh(&w, hyper(s))).await?;
    let mut rng = Rng::new(s.data_seed);
    let mut tokens = |n: usize| (0..n).map(|_| rng.next_u32() % c.vocab_size as u32).collect::<Vec<u32>>();
    let batch = Batch::new(s.batch, s.seq, tokens(s.batch * s.seq)).map_err(err)?;
    // Warm-up: the engine's code is compiled lazily and optimised once hot, so its first steps
    // are slower (measured up to 3× for the smallest shape): at least one step and WARM_MS.
    let t0 = now_ms();
    while t.steps_done() == 0 || now_ms() - t0 < WARM_MS {
        t.step_async(&batch).await.map_err(err)?;
        yield_now().await;
    }
    let mut timed = Vec::with_capacity(TIMED);
    for _ in 0..TIMED {
        let t0 = now_ms();
        t.step_async(&batch).await.map_err(err)?;
        // A run yields after each step (for Pause and Stop): timed too.
        yield_now().await;
        timed.push(now_ms() - t0);
    }
    timed.sort_by(f64::total_cmp);
    let step_ms = timed[TIMED / 2];
    // A check: the held-out windows (at most HELD_MAX, in batches of the run's size) and a sample.
    let one = Batch::new(1, s.seq, tokens(s.seq)).map_err(err)?;
    let t0 = now_ms();
    t.loss_async(&one).await.map_err(err)?;
    let window_ms = now_ms() - t0;
    let mut sampler = Sampler::new(SAMPLE_TEMPERATURE, 0.9, SAMPLE_SEED).map_err(err)?;
    let t0 = now_ms();
    t.sample_async(vec![1], SAMPLE_TOKENS, &mut sampler).await.map_err(err)?;
    let check_ms = window_ms * HELD_MAX as f64 + (now_ms() - t0);
    let checks = s.steps / s.sample_every.max(1) + 1;
    let seconds = (step_ms * s.steps as f64 + check_ms * checks as f64) / 1000.0;
    Ok(BuildEstimate { seconds, step_ms, check_ms })
}
