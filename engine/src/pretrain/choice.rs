//! The trainer a front end runs: the CPU `Pretrainer` or the GPU's, behind one interface (one
//! step per call, the loss of a batch, the weights and state as bytes), as the CLI and the
//! browser worker use it.

use super::trainer::{Hyper, Pretrainer, StepMetrics};
use crate::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::generate::Generation;
use crate::lora::Batch;
use crate::sampler::Sampler;
use crate::weights::Weights;

/// Where to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PretrainBackend {
    Cpu,
    Gpu,
}

impl PretrainBackend {
    pub fn parse(name: &str) -> Result<PretrainBackend> {
        match name {
            "cpu" => Ok(PretrainBackend::Cpu),
            "gpu" => Ok(PretrainBackend::Gpu),
            other => Err(Error::InvalidSetting(format!("backend `{other}` must be cpu or gpu"))),
        }
    }
}

/// A full-parameter trainer on the CPU or (built with the `gpu` feature) the GPU. The CPU
/// trainer is the state's home: the GPU's reads back into one to save or sample.
pub enum Trainer {
    Cpu(Box<Pretrainer>),
    #[cfg(feature = "gpu")]
    Gpu(Box<crate::gpu::GpuPretrainer>),
}

impl Trainer {
    /// A trainer at `weights` with fresh moments, or continuing `state` (bytes of
    /// `Pretrainer::save_state`, named in errors) when given.
    pub async fn open_async(
        backend: PretrainBackend,
        weights: &Weights,
        hyper: Hyper,
        state: Option<(&[u8], &str)>,
    ) -> Result<Trainer> {
        let cpu = match state {
            Some((bytes, file)) => {
                let t = Pretrainer::from_state(bytes, Some(weights), file)?;
                if t.hyper != hyper {
                    return Err(Error::Mismatch(format!("{file}: the state was saved with other settings")));
                }
                t
            }
            None => Pretrainer::new(weights, hyper)?,
        };
        Trainer::on(backend, cpu).await
    }

    /// Where it runs, in words.
    pub fn device(&self) -> String {
        match self {
            Trainer::Cpu(_) => "the CPU".into(),
            #[cfg(feature = "gpu")]
            Trainer::Gpu(t) => format!("the GPU ({})", t.context().adapter),
        }
    }

    /// The run's settings.
    pub fn hyper(&self) -> Hyper {
        match self {
            Trainer::Cpu(t) => t.hyper,
            #[cfg(feature = "gpu")]
            Trainer::Gpu(t) => t.hyper,
        }
    }

    /// The model's shape.
    pub fn config(&self) -> crate::Config {
        match self {
            Trainer::Cpu(t) => t.params.config,
            #[cfg(feature = "gpu")]
            Trainer::Gpu(t) => t.config(),
        }
    }

    pub fn steps_done(&self) -> u32 {
        match self {
            Trainer::Cpu(t) => t.steps_done(),
            #[cfg(feature = "gpu")]
            Trainer::Gpu(t) => t.steps_done(),
        }
    }

    /// One step on `batch`.
    pub async fn step_async(&mut self, batch: &Batch) -> Result<&StepMetrics> {
        match self {
            Trainer::Cpu(t) => t.step(batch),
            #[cfg(feature = "gpu")]
            Trainer::Gpu(t) => t.step_async(batch).await,
        }
    }

    /// The mean cross-entropy of `batch` at the current weights.
    pub async fn loss_async(&mut self, batch: &Batch) -> Result<f64> {
        match self {
            Trainer::Cpu(t) => t.loss(batch),
            #[cfg(feature = "gpu")]
            Trainer::Gpu(t) => t.loss_async(batch).await,
        }
    }

    /// The weights and the state (`with_weights`: a self-contained snapshot).
    pub async fn snapshot_async(&mut self, with_weights: bool) -> Result<(Weights, Vec<u8>)> {
        match self {
            Trainer::Cpu(t) => Ok((t.weights(), t.save_state(with_weights)?)),
            #[cfg(feature = "gpu")]
            Trainer::Gpu(t) => {
                let cpu = t.to_cpu_async().await?;
                Ok((cpu.weights(), cpu.save_state(with_weights)?))
            }
        }
    }

    /// A sample of the model as trained so far (the Build view's timeline): `prompt` (BOS
    /// first) continued to `steps` positions with run.c's sampler, on the CPU path.
    pub async fn sample_async(&mut self, prompt: Vec<u32>, steps: usize, sampler: &mut Sampler) -> Result<Vec<u32>> {
        let w = match self {
            Trainer::Cpu(t) => t.weights(),
            #[cfg(feature = "gpu")]
            Trainer::Gpu(t) => t.weights_async().await?,
        };
        let mut g = Generation::new(prompt, steps, &w.config)?;
        let mut backend = CpuBackend::new(w);
        while g.step(&mut backend, sampler)?.is_some() {}
        Ok(g.tokens)
    }

    /// A trainer continuing a self-contained snapshot (`snapshot_async(true)`).
    pub async fn from_snapshot_async(backend: PretrainBackend, bytes: &[u8], file: &str) -> Result<Trainer> {
        Trainer::on(backend, Pretrainer::from_state(bytes, None, file)?).await
    }

    /// `cpu` itself, or moved to the GPU.
    async fn on(backend: PretrainBackend, cpu: Pretrainer) -> Result<Trainer> {
        match backend {
            PretrainBackend::Cpu => Ok(Trainer::Cpu(Box::new(cpu))),
            #[cfg(feature = "gpu")]
            PretrainBackend::Gpu => Ok(Trainer::Gpu(Box::new(crate::gpu::GpuPretrainer::new_async(&cpu, None).await?))),
            #[cfg(not(feature = "gpu"))]
            PretrainBackend::Gpu => Err(Error::Gpu("this build has no GPU path; train on the CPU".into())),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Trainer {
    /// Blocking `open_async`.
    pub fn open(backend: PretrainBackend, weights: &Weights, hyper: Hyper, state: Option<(&[u8], &str)>) -> Result<Trainer> {
        block_on(Trainer::open_async(backend, weights, hyper, state))
    }
    /// Blocking `step_async`.
    pub fn step(&mut self, batch: &Batch) -> Result<&StepMetrics> {
        block_on(self.step_async(batch))
    }
    /// Blocking `loss_async`.
    pub fn loss(&mut self, batch: &Batch) -> Result<f64> {
        block_on(self.loss_async(batch))
    }
    /// Blocking `sample_async`.
    pub fn sample(&mut self, prompt: Vec<u32>, steps: usize, sampler: &mut Sampler) -> Result<Vec<u32>> {
        block_on(self.sample_async(prompt, steps, sampler))
    }
    /// Blocking `from_snapshot_async`.
    pub fn from_snapshot(backend: PretrainBackend, bytes: &[u8], file: &str) -> Result<Trainer> {
        block_on(Trainer::from_snapshot_async(backend, bytes, file))
    }
    /// The weights and the moments (without weights), blocking.
    pub fn finish(&mut self) -> Result<(Weights, Vec<u8>)> {
        block_on(self.snapshot_async(false))
    }
}

/// Runs a future to completion on this thread (CPU work completes at once).
#[cfg(not(target_arch = "wasm32"))]
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    #[cfg(feature = "gpu")]
    return pollster::block_on(f);
    #[cfg(not(feature = "gpu"))]
    {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }
}
