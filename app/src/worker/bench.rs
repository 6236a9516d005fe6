//! The benchmark page's timing runs (`ToWorker::Bench`): the same measure as `tinylm bench`,
//! greedy decode of `steps` tokens from BOS after a short warm-up, tokens per second of the
//! whole decode, on the backend the page asked for.

use tinylm_engine::generate::Backend;
use tinylm_engine::gpu::AnyBackend;
use tinylm_engine::randmodel::{named_shape, random_weights};
use tinylm_engine::{checkpoint, Sampler, Weights, BOS};

use super::engine::BUNDLED_MODEL;
use super::fetch::{download, progress};
use super::host::{now_ms, post, yield_now};
use super::{backends, tuning};
use crate::protocol::bench::{BenchModel, BenchRequest, BenchResult};
use crate::protocol::Choice;
use crate::protocol::FromWorker;
use tinylm_engine::gpu::tune::tune_async;
use tinylm_engine::gpu::{GpuContext, Tuning};
use tinylm_engine::Config;

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
    let (origin, model) = fetch(&req.model).await?;
    let first = weights(&origin)?;
    let model_ms = now_ms() - t0;
    let tuning = match (req.tune, req.choice) {
        (true, Choice::WebGpu | Choice::Auto) => tune(&first.config, &model).await,
        _ => None,
    };
    progress(&format!("Starting the backend for {model}"), 0, None);
    let (mut backend, info) = backends::open(first, req.choice, || weights(&origin)).await?;
    let workgroups = backend.gpu().map(|g| g.workgroups());
    let steps = req.steps.min(backend.config().seq_len);
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

/// Where the weights come from: the bundled file's bytes, or a shape to make.
enum Origin {
    Bytes(Vec<u8>),
    Shape(String),
}

async fn fetch(model: &BenchModel) -> Result<(Origin, String), String> {
    Ok(match model {
        BenchModel::Bundled => (Origin::Bytes(download(BUNDLED_MODEL, "Downloading stories260K").await?), "stories260K".into()),
        BenchModel::Shape(name) => {
            let seed = named_shape(name).map_err(|e| e.to_string())?.1;
            progress(&format!("Making a random {name} model"), 0, None);
            yield_now().await;
            (Origin::Shape(name.clone()), format!("random {name} (seed {seed})"))
        }
    })
}

/// The weights (again, for the CPU fallback after a failed GPU open).
fn weights(origin: &Origin) -> Result<Weights, String> {
    match origin {
        Origin::Bytes(b) => checkpoint::read(b, "stories260K.bin").map(|w| w.0).map_err(|e| e.to_string()),
        Origin::Shape(name) => {
            let (c, seed) = named_shape(name).map_err(|e| e.to_string())?;
            random_weights(&c, seed).map_err(|e| e.to_string())
        }
    }
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
