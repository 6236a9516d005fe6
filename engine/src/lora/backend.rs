//! Generation, logits and inspection with an unmerged adapter: the CPU backend with the
//! adapter applied after each projection (`cpu::forward_adapted`). The same as
//! `CpuBackend::with_adapter`, under the name callers know it by.

use std::sync::Arc;

use super::Adapter;
use crate::config::Config;
use crate::cpu::{CpuBackend, Kernels};
use crate::error::Result;
use crate::generate::Backend;
use crate::trace::{Edits, StepTrace};
use crate::weights::Weights;

pub struct LoraCpuBackend(pub CpuBackend);

impl LoraCpuBackend {
    /// The fast kernels; fails with `Mismatch` when the adapter was made for another shape.
    pub fn new(weights: impl Into<Arc<Weights>>, adapter: Adapter) -> Result<LoraCpuBackend> {
        LoraCpuBackend::with_kernels(weights, adapter, Kernels::Fast)
    }

    pub fn with_kernels(weights: impl Into<Arc<Weights>>, adapter: Adapter, kernels: Kernels) -> Result<LoraCpuBackend> {
        CpuBackend::with_adapter(weights.into(), Some(Arc::new(adapter)), kernels).map(LoraCpuBackend)
    }
}

impl Backend for LoraCpuBackend {
    fn config(&self) -> &Config {
        self.0.config()
    }
    fn name(&self) -> String {
        self.0.name()
    }
    fn forward(&mut self, token: u32, pos: usize) -> Result<&mut [f32]> {
        self.0.forward(token, pos)
    }
    fn forward_traced(&mut self, token: u32, pos: usize, trace: &mut StepTrace) -> Result<&mut [f32]> {
        self.0.forward_traced(token, pos, trace)
    }
    fn set_edits(&mut self, edits: Option<&Edits>) -> Result<()> {
        self.0.set_edits(edits)
    }
}
