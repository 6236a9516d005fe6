//! Generation, logits and inspection with an unmerged adapter: the CPU backend with the
//! adapter applied after each projection (`cpu::forward_adapted`).

use super::Adapter;
use crate::config::Config;
use crate::cpu::{forward_adapted, Kernels, State};
use crate::error::Result;
use crate::generate::Backend;
use crate::trace::{both, Edits, Hook, StepTrace};
use crate::weights::Weights;

pub struct LoraCpuBackend {
    pub weights: Weights,
    pub adapter: Adapter,
    pub kernels: Kernels,
    state: State,
    edits: Option<Edits>,
}

impl LoraCpuBackend {
    /// The fast kernels; fails with `Mismatch` when the adapter was made for another shape.
    pub fn new(weights: Weights, adapter: Adapter) -> Result<LoraCpuBackend> {
        LoraCpuBackend::with_kernels(weights, adapter, Kernels::Fast)
    }

    pub fn with_kernels(weights: Weights, adapter: Adapter, kernels: Kernels) -> Result<LoraCpuBackend> {
        adapter.check_base(&weights.config)?;
        let state = State::new(&weights.config);
        Ok(LoraCpuBackend { weights, adapter, kernels, state, edits: None })
    }
}

impl Backend for LoraCpuBackend {
    fn config(&self) -> &Config {
        &self.weights.config
    }
    fn name(&self) -> String {
        format!("cpu + LoRA r{}", self.adapter.config.r)
    }
    fn forward(&mut self, token: u32, pos: usize) -> Result<&mut [f32]> {
        let hook = self.edits.as_mut().map(|e| e as &mut dyn Hook);
        forward_adapted(self.kernels, &self.weights, Some(&self.adapter), &mut self.state, token, pos, hook)
    }
    fn forward_traced(&mut self, token: u32, pos: usize, trace: &mut StepTrace) -> Result<&mut [f32]> {
        let mut hook = both(self.edits.as_mut().map(|e| e as &mut dyn Hook), Some(trace));
        let hook = hook.as_mut().map(|h| h as &mut dyn Hook);
        forward_adapted(self.kernels, &self.weights, Some(&self.adapter), &mut self.state, token, pos, hook)
    }
    fn set_edits(&mut self, edits: Option<&Edits>) -> Result<()> {
        self.edits = edits.map(|e| e.check(&self.weights.config).map(|_| e.clone())).transpose()?;
        Ok(())
    }
}
