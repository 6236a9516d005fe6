//! The benchmark page's timing runs (`ToWorker::Bench`): the same measure as `tinylm bench`,
//! greedy decode of `steps` tokens from BOS after a short warm-up, tokens per second of the
//! whole decode, on the backend the page asked for.

use tinylm_engine::checkpoint::Format;
use tinylm_engine::generate::{Backend, Generator};
use tinylm_engine::gpu::tune::tune_async;
use tinylm_engine::gpu::{AnyBackend, GpuContext, Tuning};
use tinylm_engine::loaded::ModelFormat;
use tinylm_engine::randmodel::{named_shape, random_weights};
use tinylm_engine::{Config, LoadedModel, NamedFile, Sampler, BOS};

use super::bridge::{now_ms, post, yield_now};
use super::fetch::{download, progress};
use super::models::BUNDLED_MODEL;
use super::{backends, tuning};
use crate::protocol::bench::{BenchModel, BenchRequest, BenchResult};
use crate::protocol::{Choice, FromWorker};

/// Tokens decoded before timing (GPU pipelines compile, first allocations happen).
const WARM_UP: usize = 4;

pub async fn handle(req: BenchRequest) {
    let msg = match run(&req).await {
        Ok(r) => FromWorker::Benched(r),
        Err(message) => FromWorker::BenchFailed { id: req.id, message },
    };
    post(&msg);
}

async fn run(req: &BenchRequest) -> Result<BenchResult, String> {
    if req.runs == 0 || req.steps == 0 {
        return Err("runs and steps must be at least 1".into());
    }
    let t0 = now_ms();
    let (loaded, model) = load(&req.model).await?;
    let model_ms = now_ms() - t0;
    let tuning = match (req.tune, req.choice) {
        (true, Choice::WebGpu | Choice::Auto) => tune(loaded.config(), &model).await,
        _ => None,
    };
    progress(&format!("Starting the backend for {model}"), 0, None);
    let backends::Opened { mut backend, info, .. } = backends::open(&loaded, req.choice).await?;
    let workgroups = backend.gpu().map(|g| g.workgroups());
    let steps = req.steps.min(backend.config().seq_len);
    wait_for_threads().await;
    decode(&mut backend, WARM_UP.min(steps)).await?;
    let mut runs = Vec::with_capacity(req.runs);
    for i in 0..req.runs {
        progress(&format!("{model}: run {} of {}", i + 1, req.runs), i as u64, Some(req.runs as u64));
        // Let the page's messages through between runs.
        yield_now().await;
        let t = now_ms();
        let decoded = decode(&mut backend, steps).await?;
        runs.push(decoded as f64 / ((now_ms() - t) / 1e3).max(1e-9));
    }
    Ok(BenchResult {
        id: req.id,
        model,
        kind: info.kind,
        backend: backend.name(),
        detail: info.detail,
        reason: info.reason,
        model_ms,
        start_ms: info.start_ms,
        steps,
        median_tok_s: median(&runs),
        runs,
        workgroups,
        tuning,
    })
}

/// Longest wait for the CPU pool's threads before timing.
const THREADS_WAIT_MS: f64 = 10_000.0;

/// Waits, yielding, until every CPU pool thread takes tasks (at most `THREADS_WAIT_MS`). Their
/// Web Workers start beside this one and come up only while it yields, and a bench page makes its
/// model first without yielding, so its first run would otherwise time one thread.
async fn wait_for_threads() {
    let pool = tinylm_engine::pool::current();
    let t = now_ms();
    while pool.running() < pool.threads() && now_ms() - t < THREADS_WAIT_MS {
        yield_now().await;
    }
}

/// Most time the page's tuning run may take (SwiftShader needs seconds; see README).
const TUNE_BUDGET_MS: f64 = 4000.0;

/// Measures the workgroup shapes on this WebGPU adapter and keeps the result, so this and
/// later loads of a model of this shape decode with them. `None` without WebGPU.
async fn tune(c: &Config, model: &str) -> Option<Tuning> {
    progress(&format!("Tuning the GPU kernels for {model}"), 0, None);
    let ctx = GpuContext::new_async().await.ok()?;
    let t = tune_async(&ctx, c, TUNE_BUDGET_MS, &now_ms).await.ok()?;
    drop(ctx);
    if let Err(e) = tuning::save(&backends::adapter_label().await.unwrap_or_default(), &t).await {
        web_sys::console::warn_1(&e.into());
    }
    Some(t)
}

/// Greedy decode of `steps` tokens from BOS; returns how many were decoded.
async fn decode(backend: &mut AnyBackend, steps: usize) -> Result<usize, String> {
    let mut sampler = Sampler::new(0.0, 0.9, 1).map_err(|e| e.to_string())?;
    let tokens = backend.generate_async(&[BOS], steps, &mut sampler, |_| true).await.map_err(|e| e.to_string())?;
    Ok(tokens.len().saturating_sub(1))
}

/// The model to time: the bundled file (downloaded and parsed), or a random one of a shape.
async fn load(model: &BenchModel) -> Result<(LoadedModel, String), String> {
    Ok(match model {
        BenchModel::Bundled => {
            let bytes = download(BUNDLED_MODEL, "Downloading stories260K").await?;
            let m = LoadedModel::open(&[NamedFile::new("stories260K.bin", &bytes)]).map_err(|e| e.to_string())?;
            (m, "stories260K".into())
        }
        BenchModel::Shape(name) => {
            let (c, seed) = named_shape(name).map_err(|e| e.to_string())?;
            progress(&format!("Making a random {name} model"), 0, None);
            yield_now().await;
            let label = format!("random {name} (seed {seed})");
            let w = random_weights(&c, seed).map_err(|e| e.to_string())?;
            (LoadedModel::from_weights(&label, ModelFormat::Llama2c(Format::V0), w), label)
        }
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}
