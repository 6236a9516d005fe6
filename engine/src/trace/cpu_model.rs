//! The model the CPU-only experiments run on (head means, patching): borrowed weights (f32, or
//! a quantized model as kept: no f32 copy), an unmerged adapter if any, and the kernels. Borrowed per call, so a caller that runs an
//! experiment in slices (the web worker) keeps the weights where they are between slices.

use crate::config::Config;
use crate::cpu::{forward_on, ForwardWeights, Kernels, State};
use crate::error::{Error, Result};
use crate::lora::Adapter;

use super::Hook;

#[derive(Clone, Copy)]
pub struct CpuModel<'a> {
    pub weights: &'a dyn ForwardWeights,
    /// Applied unmerged after each projection, as `LoraCpuBackend` does.
    pub adapter: Option<&'a Adapter>,
    pub kernels: Kernels,
}

impl<'a> CpuModel<'a> {
    /// The fast kernels, no adapter.
    pub fn new(weights: &'a dyn ForwardWeights) -> CpuModel<'a> {
        CpuModel { weights, adapter: None, kernels: Kernels::Fast }
    }

    /// With an unmerged adapter; fails with `Mismatch` when it was made for another shape.
    pub fn adapted(weights: &'a dyn ForwardWeights, adapter: Option<&'a Adapter>) -> Result<CpuModel<'a>> {
        if let Some(a) = adapter {
            a.check_base(weights.config())?;
        }
        Ok(CpuModel { weights, adapter, kernels: Kernels::Fast })
    }

    pub fn config(&self) -> &Config {
        self.weights.config()
    }

    /// One forward pass on `state` (its KV cache holding positions `0..pos`).
    pub(crate) fn forward<'s>(
        &self,
        state: &'s mut State,
        token: u32,
        pos: usize,
        hook: Option<&mut dyn Hook>,
    ) -> Result<&'s mut [f32]> {
        forward_on(self.kernels, self.weights, self.adapter, state, token, pos, hook)
    }

    /// Refuses a run that began on a model of another shape.
    pub(crate) fn check(&self, c: &Config, what: &str) -> Result<()> {
        if self.weights.config() != c {
            return Err(Error::InvalidSetting(format!("{what} continues on the model it began on")));
        }
        Ok(())
    }
}
