//! Auto's choice between the CPU and a WebGPU backend started beside it (`warmup`): once the GPU
//! is ready, a job in the inbox times a few decode steps on both, keeps the figures on the device,
//! and makes the faster one the active backend. A newer activation (another model, backend or adapter) makes the
//! warmed GPU stale: it is dropped unused.

use tinylm_engine::generate::{Backend, Generator};
use tinylm_engine::gpu::AnyBackend;
use tinylm_engine::{Sampler, BOS};

use super::backends;
use super::bridge::{now_ms, post, yield_now};
use super::session::Session;
use super::warmup::keep;
use crate::protocol::{BackendInfo, BackendKind, FromWorker};
use crate::speed::{Speeds, When};

/// Decode time per backend, after a short warm-up (pipelines compile on the first dispatch).
const BUDGET_MS: f64 = 150.0;
const WARM_UP_TOKENS: usize = 3;
/// Tokens timed at least, whatever the budget.
const MIN_TOKENS: usize = 4;

/// The warmed GPU's job: measure (unless kept figures decide), switch to the faster backend and
/// tell the page.
pub async fn on_ready(s: &mut Session) {
    let Some(warm) = s.take_warm() else { return };
    let Ok((stored, active)) = s.active_mut() else { return };
    let config = *stored.model.config();
    let (gpu, start_ms) = match warm.gpu {
        Ok(g) => g,
        Err(e) => {
            active.info.reason = format!("Using the CPU because {}.", backends::plain(&e));
            return post(&FromWorker::Backend { model: active.id, backend: active.info.clone() });
        }
    };
    let mut gpu = gpu;
    let (speeds, when) = match warm.warmup.kept {
        Some(k) => (k, When::Earlier),
        None => match measure(&mut active.backend, &mut gpu).await {
            Ok(s) => {
                keep(&warm.warmup.adapter, &config, s).await;
                (s, When::JustNow)
            }
            Err(why) => {
                active.info.reason = format!("Using the CPU: timing WebGPU failed ({why}).");
                return post(&FromWorker::Backend { model: active.id, backend: active.info.clone() });
            }
        },
    };
    if speeds.gpu_wins() {
        let held = match &gpu {
            AnyBackend::Gpu(g) => backends::gpu_weights(&stored.model, g),
            AnyBackend::Cpu(_) => String::new(),
        };
        active.backend = gpu;
        active.info = BackendInfo {
            kind: BackendKind::WebGpu,
            detail: warm.warmup.adapter,
            reason: speeds.reason(when) + &held,
            start_ms,
            one_thread: None,
        };
    } else {
        active.info.reason = speeds.reason(when);
    }
    post(&FromWorker::Backend { model: active.id, backend: active.info.clone() });
}

/// Decode speeds of the same model on the CPU and on the GPU.
async fn measure(cpu: &mut AnyBackend, gpu: &mut AnyBackend) -> Result<Speeds, String> {
    let cpu = rate(cpu).await?;
    yield_now().await;
    let gpu = rate(gpu).await?;
    Ok(Speeds { cpu, gpu })
}

/// Tokens per second of greedy decoding from BOS, for about `BUDGET_MS` after a warm-up, as
/// run.c measures (tokens after the first, over the time since the first).
async fn rate(b: &mut AnyBackend) -> Result<f64, String> {
    let steps = b.config().seq_len;
    let mut sampler = Sampler::new(0.0, 0.9, 1).map_err(|e| e.to_string())?;
    let mut n = 0;
    b.generate_async(&[BOS], steps.min(WARM_UP_TOKENS + 1), &mut sampler, |_| true).await.map_err(|e| e.to_string())?;
    let (mut first, mut last) = (None, 0.0);
    b.generate_async(&[BOS], steps, &mut sampler, |step| {
        let now = now_ms();
        if !step.from_prompt {
            n += 1;
            first.get_or_insert(now);
            last = now;
        }
        n < MIN_TOKENS || first.is_none_or(|f| now - f < BUDGET_MS)
    })
    .await
    .map_err(|e| e.to_string())?;
    let ms = first.map_or(0.0, |f| last - f);
    Ok(if n > 1 && ms > 0.0 { (n - 1) as f64 * 1000.0 / ms } else { f64::INFINITY })
}
