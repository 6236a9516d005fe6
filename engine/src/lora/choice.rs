//! The one trainer choice: an adapter trained on the CPU (`Trainer` over the shared weights) or
//! on the GPU (`gpu::GpuTrainer`), behind one type, and the one held-out evaluation. Both
//! `tinylm finetune` and the browser worker train through this.

use std::sync::Arc;

use super::data::{Batch, HeldOut};
use super::model::{loss, Base};
use super::train::{OptimizerState, StepReport, TrainConfig, Trainer};
use super::Adapter;
use crate::error::Result;
#[cfg(not(target_arch = "wasm32"))]
use crate::generate::block_on;
use crate::generate::Pace;
use crate::quant_weights::QuantWeights;
use crate::weights::Weights;

/// The frozen model a trainer reads: f32 weights, or a quantized model's matrices as they are
/// kept (on the CPU, dequantized a tile at a time inside the products: `lora::quant_base`; the
/// GPU trainer uploads an f32 copy).
#[derive(Debug, Clone)]
pub enum TrainBase {
    Dense(Arc<Weights>),
    Quant(Arc<QuantWeights>),
}

impl TrainBase {
    fn base(&self) -> Base<'_, f32> {
        match self {
            TrainBase::Dense(w) => Base::new(w),
            TrainBase::Quant(q) => Base::quantized(q),
        }
    }
}

impl From<&Arc<Weights>> for TrainBase {
    fn from(w: &Arc<Weights>) -> TrainBase {
        TrainBase::Dense(w.clone())
    }
}

/// Where an adapter trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainDevice {
    Cpu,
    Gpu,
}

// One trainer lives per run, so the CPU variant's size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Device {
    Cpu(Trainer),
    #[cfg(feature = "gpu")]
    Gpu(Box<crate::gpu::GpuTrainer>),
}

/// An adapter being trained on either device, over weights shared with the loaded model.
pub struct AnyTrainer {
    base: TrainBase,
    device: Device,
}

impl AnyTrainer {
    /// A trainer on `device` for `adapter`, fresh or resuming AdamW's `state`. A GPU that
    /// cannot be had is an error (`Error::NoGpu` / `Error::Gpu`); the caller may fall back.
    pub async fn new_async(
        base: impl Into<TrainBase>,
        adapter: Adapter,
        config: TrainConfig,
        state: Option<OptimizerState>,
        device: TrainDevice,
    ) -> Result<AnyTrainer> {
        let base = base.into();
        let device = match device {
            TrainDevice::Cpu => Device::Cpu(match state {
                Some(state) => Trainer::restore(adapter, config, state)?,
                None => Trainer::new(adapter, config)?,
            }),
            #[cfg(feature = "gpu")]
            TrainDevice::Gpu => {
                let opts = crate::gpu::GpuTrainOptions { context: None, state };
                let weights = match &base {
                    TrainBase::Dense(w) => w.clone(),
                    TrainBase::Quant(q) => Arc::new(q.dequantize()),
                };
                Device::Gpu(Box::new(crate::gpu::GpuTrainer::new_async(&weights, adapter, config, opts).await?))
            }
            #[cfg(not(feature = "gpu"))]
            TrainDevice::Gpu => return Err(crate::Error::Gpu("this engine was built without the GPU".into())),
        };
        Ok(AnyTrainer { base, device })
    }

    /// "the CPU" or "the GPU (adapter name)".
    pub fn device_name(&self) -> String {
        match &self.device {
            Device::Cpu(_) => "the CPU".into(),
            #[cfg(feature = "gpu")]
            Device::Gpu(t) => format!("the GPU ({})", t.context().adapter),
        }
    }

    pub fn device(&self) -> TrainDevice {
        match &self.device {
            Device::Cpu(_) => TrainDevice::Cpu,
            #[cfg(feature = "gpu")]
            Device::Gpu(_) => TrainDevice::Gpu,
        }
    }

    pub fn config(&self) -> TrainConfig {
        match &self.device {
            Device::Cpu(t) => t.config,
            #[cfg(feature = "gpu")]
            Device::Gpu(t) => t.config,
        }
    }

    /// Steps done so far.
    pub fn steps_done(&self) -> u32 {
        match &self.device {
            Device::Cpu(t) => t.steps_done(),
            #[cfg(feature = "gpu")]
            Device::Gpu(t) => t.steps_done(),
        }
    }

    /// One step on `batch`: its loss before the update, and the update.
    pub async fn step_async(&mut self, batch: &Batch) -> Result<StepReport> {
        match &mut self.device {
            Device::Cpu(t) => t.step(&self.base.base(), batch),
            #[cfg(feature = "gpu")]
            Device::Gpu(t) => t.step_async(batch).await,
        }
    }

    /// The mean next-token loss over `batch` with the adapter as it is (no update).
    pub async fn loss_async(&mut self, batch: &Batch) -> Result<f64> {
        match &mut self.device {
            Device::Cpu(t) => loss(&self.base.base(), Some(&t.adapter), batch),
            #[cfg(feature = "gpu")]
            Device::Gpu(t) => t.loss_async(batch).await,
        }
    }

    /// The held-out evaluation: the mean loss over every window of `held` (each pass's mean
    /// weighted by its windows), asking `pace` between passes; None when there is nothing to
    /// evaluate or `pace` stopped it.
    pub async fn held_out_async<P: Pace + ?Sized>(&mut self, held: &HeldOut, pace: &mut P) -> Result<Option<f64>> {
        if held.is_empty() {
            return Ok(None);
        }
        let mut sum = 0.0;
        for b in &held.batches {
            sum += self.loss_async(b).await? * b.batch as f64;
            if !pace.between().await {
                return Ok(None);
            }
        }
        Ok(Some(sum / held.windows as f64))
    }

    /// The adapter as trained so far (read back from the GPU there).
    pub async fn adapter_async(&self) -> Result<Adapter> {
        match &self.device {
            Device::Cpu(t) => Ok(t.adapter.clone()),
            #[cfg(feature = "gpu")]
            Device::Gpu(t) => t.adapter_async().await,
        }
    }

    /// The adapter and AdamW's state, to save and resume from.
    pub async fn state_async(&self) -> Result<(Adapter, OptimizerState)> {
        match &self.device {
            Device::Cpu(t) => Ok((t.adapter.clone(), t.optimizer_state())),
            #[cfg(feature = "gpu")]
            Device::Gpu(t) => Ok((t.adapter_async().await?, t.optimizer_state_async().await?)),
        }
    }
}

/// Blocking twins for native callers.
#[cfg(not(target_arch = "wasm32"))]
impl AnyTrainer {
    pub fn new(
        base: impl Into<TrainBase>,
        adapter: Adapter,
        config: TrainConfig,
        state: Option<OptimizerState>,
        device: TrainDevice,
    ) -> Result<AnyTrainer> {
        block_on(Self::new_async(base, adapter, config, state, device))
    }
    pub fn step(&mut self, batch: &Batch) -> Result<StepReport> {
        block_on(self.step_async(batch))
    }
    pub fn loss(&mut self, batch: &Batch) -> Result<f64> {
        block_on(self.loss_async(batch))
    }
    pub fn held_out(&mut self, held: &HeldOut) -> Result<Option<f64>> {
        block_on(self.held_out_async(held, &mut crate::generate::Unpaced))
    }
    pub fn state(&self) -> Result<(Adapter, OptimizerState)> {
        block_on(self.state_async())
    }
}
