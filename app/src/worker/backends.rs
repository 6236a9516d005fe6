//! Opening the backend the reader chose, and saying in plain words which one runs and why.

use js_sys::{Function, Reflect};
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::Backend;
use tinylm_engine::gpu::{AnyBackend, BackendChoice, GpuOptions};
use tinylm_engine::Weights;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::host::{now_ms, scope};
use crate::protocol::{BackendInfo, BackendKind, Choice};

/// Opens `weights` on the backend `choice` asks for. WebGPU falls back to the CPU when it
/// cannot be had (`again` parses the weights anew, as a failed GPU open consumes them).
pub async fn open(
    weights: Weights,
    choice: Choice,
    again: impl FnOnce() -> Result<Weights, String>,
) -> Result<(AnyBackend, BackendInfo), String> {
    let missing = webgpu_missing();
    let want = match choice {
        Choice::Cpu => BackendChoice::Cpu,
        // Without navigator.gpu there is nothing to try.
        _ if missing.is_some() => BackendChoice::Cpu,
        Choice::Auto => BackendChoice::Auto,
        Choice::WebGpu => BackendChoice::Gpu,
    };
    let t0 = now_ms();
    // A tuning the benchmark page measured on this adapter for this model shape, if kept.
    let workgroups = match want {
        BackendChoice::Cpu => None,
        _ => super::tuning::load(&adapter_label().await.unwrap_or_default(), &weights.config).await,
    };
    let opts = GpuOptions { workgroups, ..GpuOptions::default() };
    let (backend, failure) = match AnyBackend::open_async(weights, want, opts).await {
        // Auto reports a GPU failure in its reason: "cpu: no usable GPU (…)".
        Ok((b, why)) => (b, why.strip_prefix("cpu: no usable GPU (").map(|r| r.trim_end_matches(')').to_string())),
        Err(e) => (AnyBackend::Cpu(CpuBackend::new(again()?)), Some(e.to_string())),
    };
    let start_ms = now_ms() - t0;
    let info = describe(&backend, choice, missing.or(failure.map(|f| plain(&f)))).await;
    Ok((backend, BackendInfo { start_ms, ..info }))
}

/// Why WebGPU cannot even be tried here, if so.
fn webgpu_missing() -> Option<String> {
    let gpu = Reflect::get(&scope().navigator(), &"gpu".into()).unwrap_or(JsValue::UNDEFINED);
    if !gpu.is_undefined() && !gpu.is_null() {
        return None;
    }
    Some(if scope().is_secure_context() {
        "this browser does not offer WebGPU (it may be switched off or not supported yet)".into()
    } else {
        "WebGPU needs a secure page (https or localhost)".into()
    })
}

/// A GPU failure in words: the engine's text is kept, after a sentence a reader can follow.
fn plain(failure: &str) -> String {
    let detail = failure.trim_start_matches("GPU: ");
    if detail.contains("no GPU adapter") {
        "WebGPU found no graphics adapter it can use here (it may be switched off in this browser, \
         or the graphics chip is not supported)"
            .into()
    } else {
        format!("WebGPU failed to start ({detail})")
    }
}

async fn describe(backend: &AnyBackend, choice: Choice, gpu_problem: Option<String>) -> BackendInfo {
    match backend {
        AnyBackend::Gpu(_) => BackendInfo {
            start_ms: 0.0,
            kind: BackendKind::WebGpu,
            detail: adapter_label().await.unwrap_or_else(|| "WebGPU adapter".into()),
            reason: match choice {
                Choice::WebGpu => "You chose WebGPU: the graphics processor writes the story.".into(),
                _ => "WebGPU works in this browser, so the graphics processor writes the story.".into(),
            },
        },
        AnyBackend::Cpu(c) => BackendInfo {
            start_ms: 0.0,
            kind: BackendKind::Cpu,
            detail: format!("WebAssembly, {}", c.name().trim_start_matches("cpu (").trim_end_matches(')')),
            reason: match (choice, gpu_problem) {
                (Choice::Cpu, _) => "You chose the CPU.".into(),
                (Choice::WebGpu, Some(p)) => format!("You chose WebGPU, but it is not available: {p}. Using the CPU instead."),
                (_, Some(p)) => format!("Using the CPU because {p}."),
                (_, None) => "Using the CPU.".into(),
            },
        },
    }
}

/// "google swiftshader (fallback adapter)", from the browser's own adapter description
/// (wgpu leaves the adapter name empty on the web).
pub async fn adapter_label() -> Option<String> {
    let gpu = Reflect::get(&scope().navigator(), &"gpu".into()).ok()?;
    let request: Function = Reflect::get(&gpu, &"requestAdapter".into()).ok()?.dyn_into().ok()?;
    let adapter = JsFuture::from(js_sys::Promise::from(request.call0(&gpu).ok()?)).await.ok()?;
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    let info = Reflect::get(&adapter, &"info".into()).ok()?;
    let field = |k: &str| Reflect::get(&info, &k.into()).ok().and_then(|v| v.as_string()).filter(|s| !s.is_empty());
    let words: Vec<String> = ["vendor", "architecture", "description"].into_iter().filter_map(field).collect();
    let fallback = Reflect::get(&info, &"isFallbackAdapter".into()).map(|v| v.is_truthy()).unwrap_or(false);
    let mut label = if words.is_empty() { "WebGPU adapter".to_string() } else { words.join(" ") };
    if fallback {
        label.push_str(" (software fallback adapter)");
    }
    Some(label)
}
