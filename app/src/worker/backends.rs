//! Opening the backend the reader chose for a loaded model, and saying in plain words which one
//! runs and why. A failed WebGPU open falls back to the CPU on the same loaded model: nothing is
//! parsed again, and the reason comes typed from the engine (no message is parsed back). Auto
//! never waits for WebGPU: it opens the CPU and, unless the adapter is a software fallback or a
//! kept measurement says the CPU is faster, asks for WebGPU to be started beside it (`speed`).

use js_sys::{Function, Reflect};
use tinylm_engine::gpu::{AnyBackend, BackendChoice, GpuBackend, GpuOptions, Reason, WeightFormat};
use tinylm_engine::{Error, LoadedModel, NoGpu};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::bridge::{now_ms, scope};
use super::warmup::{compile_story_path, Warmup};
use crate::protocol::{BackendInfo, BackendKind, Choice};
use crate::speed::{fallback_reason, When, WARMING};
use crate::words;

/// What opened: the backend, the page's words for it, and for Auto the WebGPU start to make
/// beside it (None: nothing to try, or already decided).
pub struct Opened {
    pub backend: AnyBackend,
    pub info: BackendInfo,
    pub warmup: Option<Warmup>,
}

/// Opens `model` (with its adapter in use) on the backend `choice` asks for. WebGPU falls back
/// to the CPU when it cannot be had; Auto starts on the CPU (see the module's note).
pub async fn open(model: &LoadedModel, choice: Choice) -> Result<Opened, String> {
    if choice == Choice::Auto {
        return open_auto(model).await;
    }
    let missing = webgpu_missing();
    let want = match choice {
        // Without navigator.gpu there is nothing to try.
        Choice::WebGpu if missing.is_none() => BackendChoice::Gpu,
        _ => BackendChoice::Cpu,
    };
    let t0 = now_ms();
    // A tuning the benchmark page measured on this adapter for this model shape, if kept.
    let opts = gpu_options(model, want).await;
    let (backend, failure) = match model.open_backend_async(want, opts).await {
        Ok(o) => match o.reason {
            Reason::NoUsableGpu(e) => (o.backend, Some(e)),
            _ => (o.backend, None),
        },
        Err(e @ (Error::NoGpu(_) | Error::Gpu(_) | Error::OutOfMemory { .. })) => {
            let cpu = model.open_backend_async(BackendChoice::Cpu, opts).await.map_err(|e| words::run_error(&e))?;
            (cpu.backend, Some(e))
        }
        Err(e) => return Err(words::run_error(&e)),
    };
    let mut backend = backend;
    if matches!(backend, AnyBackend::Gpu(_)) {
        compile_story_path(&mut backend).await.map_err(|e| words::run_error(&e))?;
    }
    let start_ms = now_ms() - t0;
    let info = describe(model, &backend, choice, missing.or(failure.map(|f| plain(&f)))).await;
    Ok(Opened { backend, info: BackendInfo { start_ms, ..info }, warmup: None })
}

/// Auto: the CPU at once, with WebGPU to be started beside it when it may be faster.
async fn open_auto(model: &LoadedModel) -> Result<Opened, String> {
    let t0 = now_ms();
    let cpu = model.open_backend_async(BackendChoice::Cpu, GpuOptions::default()).await.map_err(|e| words::run_error(&e))?;
    let start_ms = now_ms() - t0;
    let adapter = match webgpu_missing() {
        Some(why) => Err(why),
        None => probe_adapter().await.ok_or_else(|| plain(&Error::NoGpu(NoGpu::NoAdapter(String::new())))),
    };
    let (reason, warmup) = match adapter {
        Err(why) => (format!("Using the CPU because {why}."), None),
        Ok(a) if a.fallback => (fallback_reason(&a.words), None),
        Ok(a) => {
            let label = a.label();
            match super::warmup::kept(&label, model.config()).await {
                // Known to be slower here: not even started.
                Some(s) if !s.gpu_wins() => (s.reason(When::Earlier), None),
                kept => (WARMING.to_string(), Some(Warmup { adapter: label, kept })),
            }
        }
    };
    Ok(Opened { backend: cpu.backend, info: cpu_info(reason, start_ms), warmup })
}

/// The kept workgroup tuning for this adapter and model shape, when the GPU is wanted.
pub async fn gpu_options(model: &LoadedModel, want: BackendChoice) -> GpuOptions {
    let workgroups = match want {
        BackendChoice::Cpu => None,
        _ => super::tuning::load(&adapter_label().await.unwrap_or_default(), model.config()).await,
    };
    GpuOptions { workgroups, ..GpuOptions::default() }
}

/// The CPU backend as the page shows it: its kernels and threads, and why it was chosen.
fn cpu_info(reason: String, start_ms: f64) -> BackendInfo {
    let detail = format!("WebAssembly, {}, {}", tinylm_engine::cpu::fast::kernel_name(), super::threads::count());
    BackendInfo { kind: BackendKind::Cpu, detail, reason, start_ms, one_thread: super::threads::why_one() }
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
pub fn plain(failure: &Error) -> String {
    match failure {
        Error::NoGpu(NoGpu::NoAdapter(_)) => "WebGPU found no graphics adapter it can use here (it may be switched off in \
             this browser, or the graphics chip is not supported)"
            .into(),
        // "an f32 copy of the weights for the GPU would take 4.87 GB, but …": a sentence already.
        e @ Error::OutOfMemory { .. } => e.to_string(),
        e => format!("WebGPU failed to start ({})", e.gpu_detail().unwrap_or_else(|| e.to_string())),
    }
}

async fn describe(model: &LoadedModel, backend: &AnyBackend, choice: Choice, gpu_problem: Option<String>) -> BackendInfo {
    match backend {
        AnyBackend::Gpu(g) => BackendInfo {
            start_ms: 0.0,
            kind: BackendKind::WebGpu,
            detail: adapter_label().await.unwrap_or_else(|| "WebGPU adapter".into()),
            reason: match choice {
                Choice::WebGpu => "You chose WebGPU: the graphics processor writes the story.",
                _ => "WebGPU works in this browser, so the graphics processor writes the story.",
            }
            .to_string()
                + &gpu_weights(model, g),
            one_thread: None,
        },
        AnyBackend::Cpu(_) => cpu_info(
            match (choice, gpu_problem) {
                (Choice::Cpu, _) => "You chose the CPU.".into(),
                (Choice::WebGpu, Some(p)) => format!("You chose WebGPU, but it is not available: {p}. Using the CPU instead."),
                (_, Some(p)) => format!("Using the CPU because {p}."),
                (_, None) => "Using the CPU.".into(),
            },
            0.0,
        ),
    }
}

/// " " and what the GPU holds of a quantized model, in words; "" for an f32 model.
pub fn gpu_weights(model: &LoadedModel, g: &GpuBackend) -> String {
    let Some(q) = model.quantized() else { return String::new() };
    let held = words::size(g.weight_bytes());
    let types: Vec<&str> = q.kept_types().iter().map(|t| t.name()).collect();
    match (g.weight_format(), types.as_slice()) {
        (WeightFormat::Int8 { .. }, ["Q8_0"]) | (WeightFormat::Half { .. } | WeightFormat::F16 | WeightFormat::Blocks, _) => {
            let t = words::and_list(&types);
            format!(" Its {t} weights stay {t} on the graphics processor ({held}).")
        }
        (WeightFormat::Int8 { .. }, _) => {
            format!(
                " Its {} weights stay quantized on the graphics processor, as 8-bit integers ({held}).",
                words::and_list(&types)
            )
        }
        _ => format!(" The graphics processor holds an f32 copy of its {} weights ({held}).", words::and_list(&types)),
    }
}

/// What the browser says about its WebGPU adapter (wgpu leaves the adapter name empty on the web).
pub struct AdapterFacts {
    /// "google swiftshader", or "WebGPU adapter" when the browser names nothing.
    pub words: String,
    /// `GPUAdapterInfo.isFallbackAdapter`: a software adapter.
    pub fallback: bool,
}

impl AdapterFacts {
    /// "google swiftshader (software fallback adapter)".
    pub fn label(&self) -> String {
        if self.fallback {
            format!("{} (software fallback adapter)", self.words)
        } else {
            self.words.clone()
        }
    }
}

/// The browser's adapter, if it offers one.
pub async fn probe_adapter() -> Option<AdapterFacts> {
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
    let words = if words.is_empty() { "WebGPU adapter".to_string() } else { words.join(" ") };
    Some(AdapterFacts { words, fallback })
}

/// "google swiftshader (software fallback adapter)".
pub async fn adapter_label() -> Option<String> {
    probe_adapter().await.map(|a| a.label())
}
