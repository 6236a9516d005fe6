//! Choosing between the CPU and the GPU: `--backend cpu|gpu|auto`.

use std::fmt;
use std::str::FromStr;

use std::sync::Arc;

use super::backend::{GpuBackend, GpuOptions};
use crate::config::Config;
use crate::cpu::{CpuBackend, Kernels};
use crate::error::{Error, Result};
use crate::generate::{Backend, Generation, Generator, Pace};
use crate::lora::Adapter;
use crate::sampler::Sampler;
use crate::trace::{Edits, StepTrace};
use crate::weights::Weights;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    Cpu,
    Gpu,
    /// The GPU when an adapter works, else the CPU.
    #[default]
    Auto,
}

impl FromStr for BackendChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(BackendChoice::Cpu),
            "gpu" => Ok(BackendChoice::Gpu),
            "auto" => Ok(BackendChoice::Auto),
            _ => Err(Error::InvalidSetting(format!("backend `{s}` must be cpu, gpu or auto"))),
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendChoice::Cpu => "cpu",
            BackendChoice::Gpu => "gpu",
            BackendChoice::Auto => "auto",
        })
    }
}

/// Why the backend that opened is the one in use (typed, so callers choose their own words).
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// The caller asked for this device.
    Requested,
    /// `Auto`, and a GPU adapter works.
    GpuAvailable,
    /// `Auto`, and no GPU could be used: the error says why (`Error::NoGpu` when there is none
    /// at all; `Error::Gpu` when one failed).
    NoUsableGpu(Error),
}

/// A backend that opened, and why it is this one.
pub struct Opened {
    pub backend: AnyBackend,
    pub reason: Reason,
}

impl Opened {
    /// The reason in the CLI's words: "cpu: requested", "gpu (…): a GPU adapter is available",
    /// "cpu: no usable GPU (GPU: no GPU adapter: …)".
    pub fn why(&self) -> String {
        let name = self.backend.name();
        let name = if self.backend.gpu_ref().is_some() { name } else { "cpu".into() };
        match &self.reason {
            Reason::Requested => format!("{name}: requested"),
            Reason::GpuAvailable => format!("{name}: a GPU adapter is available"),
            Reason::NoUsableGpu(e) => format!("{name}: no usable GPU ({e})"),
        }
    }
}

/// Either backend behind one type.
// One per session, so the size gap between variants costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub enum AnyBackend {
    /// The CPU, with the adapter (if any) unmerged.
    Cpu(CpuBackend),
    /// The GPU, with the adapter (if any) merged into the uploaded weights.
    Gpu(GpuBackend),
}

impl AnyBackend {
    /// Opens the backend `choice` asks for over shared `weights` (never copied, never consumed:
    /// after a failure the caller still has them), with `adapter` unmerged on the CPU and
    /// merged into the uploaded weights on the GPU (`W += s·B·A`; logits within 1e-4 of the
    /// unmerged ones). `Auto` falls back to the CPU when no GPU can be used, with the GPU's
    /// error as the reason; `Gpu` fails instead, and the caller may fall back itself.
    pub async fn open_shared(
        weights: &Arc<Weights>,
        adapter: Option<&Arc<Adapter>>,
        choice: BackendChoice,
        opts: GpuOptions,
    ) -> Result<Opened> {
        let cpu = || CpuBackend::with_adapter(weights.clone(), adapter.cloned(), Kernels::Fast).map(AnyBackend::Cpu);
        let gpu = async || -> Result<AnyBackend> {
            let g = match adapter {
                Some(a) => GpuBackend::new_async(&a.merged(weights)?, opts).await?,
                None => GpuBackend::new_async(weights, opts).await?,
            };
            Ok(AnyBackend::Gpu(g))
        };
        Ok(match choice {
            BackendChoice::Cpu => Opened { backend: cpu()?, reason: Reason::Requested },
            BackendChoice::Gpu => Opened { backend: gpu().await?, reason: Reason::Requested },
            BackendChoice::Auto => match gpu().await {
                Ok(backend) => Opened { backend, reason: Reason::GpuAvailable },
                Err(e) => Opened { backend: cpu()?, reason: Reason::NoUsableGpu(e) },
            },
        })
    }

    /// Opens the backend `choice` asks for and says why that one (see `open_shared`).
    pub async fn open_async(weights: Weights, choice: BackendChoice, opts: GpuOptions) -> Result<(AnyBackend, String)> {
        let opened = Self::open_shared(&Arc::new(weights), None, choice, opts).await?;
        let why = opened.why();
        Ok((opened.backend, why))
    }

    /// Blocking `open_async`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(weights: Weights, choice: BackendChoice, opts: GpuOptions) -> Result<(AnyBackend, String)> {
        pollster::block_on(Self::open_async(weights, choice, opts))
    }

    pub fn gpu(&mut self) -> Option<&mut GpuBackend> {
        match self {
            AnyBackend::Gpu(g) => Some(g),
            AnyBackend::Cpu(_) => None,
        }
    }

    pub fn gpu_ref(&self) -> Option<&GpuBackend> {
        match self {
            AnyBackend::Gpu(g) => Some(g),
            AnyBackend::Cpu(_) => None,
        }
    }

    fn inner(&mut self) -> &mut dyn Backend {
        match self {
            AnyBackend::Cpu(c) => c,
            AnyBackend::Gpu(g) => g,
        }
    }
}

impl Generator for AnyBackend {
    /// The one generation loop, with each backend's best path: the CPU's `Generation` with
    /// `pace` asked between forward passes, or the GPU's batched prefill and on-GPU sampling
    /// (its waits for the GPU are the yields there).
    async fn run_async<P: Pace + ?Sized>(
        &mut self,
        prompt: &[u32],
        steps: usize,
        sampler: &mut Sampler,
        pace: &mut P,
    ) -> Result<Vec<u32>> {
        match self {
            AnyBackend::Gpu(g) => g.run_async(prompt, steps, sampler, pace).await,
            AnyBackend::Cpu(c) => {
                let c: &mut CpuBackend = c;
                let config = c.weights.config;
                Generation::new(prompt.to_vec(), steps, &config)?.run(c, sampler, pace).await
            }
        }
    }
}

impl Backend for AnyBackend {
    fn config(&self) -> &Config {
        match self {
            AnyBackend::Cpu(c) => c.config(),
            AnyBackend::Gpu(g) => g.config(),
        }
    }
    fn name(&self) -> String {
        match self {
            AnyBackend::Cpu(c) => c.name(),
            AnyBackend::Gpu(g) => g.name(),
        }
    }
    fn forward(&mut self, token: u32, pos: usize) -> Result<&mut [f32]> {
        self.inner().forward(token, pos)
    }
    fn forward_traced(&mut self, token: u32, pos: usize, trace: &mut StepTrace) -> Result<&mut [f32]> {
        self.inner().forward_traced(token, pos, trace)
    }
    fn set_edits(&mut self, edits: Option<&Edits>) -> Result<()> {
        self.inner().set_edits(edits)
    }
}
