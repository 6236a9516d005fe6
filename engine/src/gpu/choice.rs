//! Choosing between the CPU and the GPU: `--backend cpu|gpu|auto`.

use std::fmt;
use std::str::FromStr;

use super::backend::{GpuBackend, GpuOptions};
use crate::config::Config;
use crate::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::generate::{Backend, Generation, Step};
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

/// Either backend behind one type.
// One per session, so the size gap between variants costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub enum AnyBackend {
    Cpu(CpuBackend),
    Gpu(GpuBackend),
}

impl AnyBackend {
    /// Opens the backend `choice` asks for and says why that one. `Auto` falls back to the CPU
    /// when no adapter or device can be had (the reason gives the GPU error). `Gpu` fails with
    /// `Error::Gpu` instead; the caller may then fall back itself.
    pub async fn open_async(weights: Weights, choice: BackendChoice, opts: GpuOptions) -> Result<(AnyBackend, String)> {
        match choice {
            BackendChoice::Cpu => Ok((AnyBackend::Cpu(CpuBackend::new(weights)), "cpu: requested".into())),
            BackendChoice::Gpu => {
                let g = GpuBackend::new_async(&weights, opts).await?;
                let why = format!("{}: requested", g.name());
                Ok((AnyBackend::Gpu(g), why))
            }
            BackendChoice::Auto => match GpuBackend::new_async(&weights, opts).await {
                Ok(g) => {
                    let why = format!("{}: a GPU adapter is available", g.name());
                    Ok((AnyBackend::Gpu(g), why))
                }
                Err(e) => Ok((AnyBackend::Cpu(CpuBackend::new(weights)), format!("cpu: no usable GPU ({e})"))),
            },
        }
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

    /// Generation with each backend's best path: the CPU's `Generation` loop, or the GPU's
    /// batched prefill and on-GPU sampling. Same semantics and return value as
    /// `GpuBackend::generate_async`.
    pub async fn generate_async<F: FnMut(Step) -> bool>(
        &mut self,
        prompt: &[u32],
        steps: usize,
        sampler: &mut Sampler,
        mut on_token: F,
    ) -> Result<Vec<u32>> {
        match self {
            AnyBackend::Gpu(g) => g.generate_async(prompt, steps, sampler, on_token).await,
            AnyBackend::Cpu(c) => {
                let mut g = Generation::new(prompt.to_vec(), steps, &c.weights.config)?;
                while let Some(step) = g.step(c, sampler)? {
                    if !on_token(step) {
                        break;
                    }
                }
                Ok(g.tokens)
            }
        }
    }

    /// Blocking `generate_async`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn generate<F: FnMut(Step) -> bool>(
        &mut self,
        prompt: &[u32],
        steps: usize,
        sampler: &mut Sampler,
        on_token: F,
    ) -> Result<Vec<u32>> {
        pollster::block_on(self.generate_async(prompt, steps, sampler, on_token))
    }

    fn inner(&mut self) -> &mut dyn Backend {
        match self {
            AnyBackend::Cpu(c) => c,
            AnyBackend::Gpu(g) => g,
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
