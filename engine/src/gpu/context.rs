//! The wgpu device: creation (async, so the browser can await its adapter), the limits we ask
//! for, and the errors wgpu reports out of band, turned into `Error::Gpu`.

use std::sync::{Arc, Mutex};

use crate::error::{Error, NoGpu, Result};

/// A device and its queue, plus a slot where asynchronous wgpu errors (validation, device
/// loss) are parked until the next operation checks them.
#[derive(Clone)]
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    /// What the adapter says about itself ("llvmpipe (LLVM 15…)", backend).
    pub adapter: String,
    /// What the adapter could enable (the device has only what was asked for, see `features`).
    pub adapter_features: wgpu::Features,
    /// The limits the device was created with (WebGPU's defaults).
    pub limits: wgpu::Limits,
    fault: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.adapter).finish()
    }
}

fn gpu_err(what: impl std::fmt::Display) -> Error {
    Error::Gpu(what.to_string())
}

impl GpuContext {
    /// Finds an adapter and opens a device with WebGPU's default limits (never more, so what
    /// runs here runs on any WebGPU device).
    pub async fn new_async() -> Result<GpuContext> {
        Self::with_features_async(wgpu::Features::empty()).await
    }

    /// `new_async`, enabling those of `want` the adapter offers (e.g. SHADER_F16).
    pub async fn with_features_async(want: wgpu::Features) -> Result<GpuContext> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::NoGpu(NoGpu::NoAdapter(e.to_string())))?;
        let info = adapter.get_info();
        let adapter_features = adapter.features();
        let limits = wgpu::Limits::default();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("tinylm"),
                required_features: want & adapter_features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::NoGpu(NoGpu::NoDevice(e.to_string())))?;
        let fault = Arc::new(Mutex::new(None));
        let sink = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| record(&sink, e.to_string())));
        let sink = fault.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let detail = if msg.is_empty() { String::new() } else { format!(": {msg}") };
            record(&sink, format!("the GPU device was lost ({reason:?}){detail}"))
        });
        let name = if info.name.is_empty() { "WebGPU adapter".to_string() } else { info.name.clone() };
        let adapter = format!("{name} ({:?})", info.backend);
        Ok(GpuContext { device, queue, adapter, adapter_features, limits, fault })
    }

    /// Blocking `new_async` for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<GpuContext> {
        pollster::block_on(Self::new_async())
    }

    /// Whether the adapter offers WebGPU's `shader-f16` (for `GpuOptions::f16_classifier`).
    pub fn offers_shader_f16(&self) -> bool {
        self.adapter_features.contains(wgpu::Features::SHADER_F16)
    }

    /// Blocking `with_features_async`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_features(want: wgpu::Features) -> Result<GpuContext> {
        pollster::block_on(Self::with_features_async(want))
    }

    /// `new`, with `shader-f16` enabled where the adapter offers it when `f16` (what
    /// `GpuOptions::f16_classifier` and the tuning of its kernel need).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_shader_f16(f16: bool) -> Result<GpuContext> {
        Self::with_features(if f16 { wgpu::Features::SHADER_F16 } else { wgpu::Features::empty() })
    }

    /// The first asynchronous error wgpu reported, if any (it stays reported: a device that
    /// failed once is not trusted again).
    pub fn check(&self) -> Result<()> {
        match self.fault.lock().map(|f| f.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(msg)) => Err(Error::Gpu(msg)),
            Err(_) => Err(Error::Gpu("error state poisoned".into())),
        }
    }

    /// Runs `f` inside validation and out-of-memory error scopes, so failures while creating
    /// resources come back as errors instead of reaching the uncaptured handler.
    pub async fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = val.pop().await;
        let o = oom.pop().await;
        if let Some(e) = o.or(v) {
            return Err(gpu_err(format!("{what}: {e}")));
        }
        self.check()?;
        Ok(out)
    }
}

fn record(sink: &Mutex<Option<String>>, msg: String) {
    if let Ok(mut slot) = sink.lock() {
        slot.get_or_insert(msg);
    }
}
