//! Knock-outs and steering on the GPU (`trace::Edits`, shaders/edit.wgsl): per layer, the
//! bind groups of the dispatches `Plan::layer` adds (heads replaced after attention, the
//! steering addend after the MLP) and which block dispatches it leaves out (a skipped block's
//! output is never added, as the CPU adds zeros). Made once per `set_edits`, nothing per token.

use super::context::GpuContext;
use super::kernels::{groups, storage, uniform, DecodeKernels};
use super::state::Acts;
use super::uniforms::EditDims;
use crate::error::Result;
use crate::trace::Edits;

/// One layer's changes, ready to record.
pub(super) struct LayerEdit {
    pub skip_attn: bool,
    pub skip_mlp: bool,
    /// edit.wgsl `replace` on the heads' outputs (`Acts::ao`).
    replace: Option<wgpu::BindGroup>,
    /// edit.wgsl `add` on the residual (`Acts::x`).
    add: Option<wgpu::BindGroup>,
    /// Row widths: the heads' outputs (`q_dim`) and the residual (`dim`).
    q_dim: usize,
    dim: usize,
}

pub(super) struct GpuEdits {
    pub layers: Vec<LayerEdit>,
}

impl GpuEdits {
    pub fn new(ctx: &GpuContext, k: &DecodeKernels, e: &Edits, a: &Acts) -> GpuEdits {
        let c = e.config();
        let heads_dims = uniform(ctx, "edit heads", &EditDims { dim: c.q_dim() as u32, ..Default::default() });
        let resid_dims = uniform(ctx, "edit resid", &EditDims { dim: c.dim as u32, ..Default::default() });
        let none = wgpu::BufferUsages::empty();
        let layers = (0..c.n_layers)
            .map(|l| {
                let le = e.layer(l);
                let hs = c.head_size();
                let replace = le.replaces().then(|| {
                    let mask: Vec<u32> = (0..c.q_dim()).map(|i| le.replace[i / hs] as u32).collect();
                    let (fill, mask) = (storage(ctx, "edit fill", &le.fill, none), storage(ctx, "edit mask", &mask, none));
                    k.edit.bind(ctx, "edit replace", &[&fill, &mask, &a.ao, &heads_dims])
                });
                let add = le.add.as_ref().map(|v| {
                    let (v, mask) = (storage(ctx, "steer", v, none), storage(ctx, "edit mask", &[0u32], none));
                    k.edit.bind(ctx, "edit add", &[&v, &mask, &a.x, &resid_dims])
                });
                LayerEdit { skip_attn: le.skip_attn, skip_mlp: le.skip_mlp, replace, add, q_dim: c.q_dim(), dim: c.dim }
            })
            .collect();
        GpuEdits { layers }
    }
}

impl LayerEdit {
    /// Knocked-out heads' outputs replaced, after attention and before wo.
    pub fn replace(
        &self,
        k: &DecodeKernels,
        pass: &mut wgpu::ComputePass<'_>,
        rows: usize,
        step: (&wgpu::BindGroup, u32),
    ) -> Result<()> {
        self.record(k, pass, "replace", self.replace.as_ref(), [self.q_dim, rows], step)
    }

    /// The steering addend added to the residual after the layer.
    pub fn add(
        &self,
        k: &DecodeKernels,
        pass: &mut wgpu::ComputePass<'_>,
        rows: usize,
        step: (&wgpu::BindGroup, u32),
    ) -> Result<()> {
        self.record(k, pass, "add", self.add.as_ref(), [self.dim, rows], step)
    }

    /// One edit.wgsl dispatch of `entry` over `[width, rows]`, when this layer has that change.
    fn record(
        &self,
        k: &DecodeKernels,
        pass: &mut wgpu::ComputePass<'_>,
        entry: &str,
        bg: Option<&wgpu::BindGroup>,
        [width, rows]: [usize; 2],
        step: (&wgpu::BindGroup, u32),
    ) -> Result<()> {
        match bg {
            Some(bg) => k.edit.dispatch(pass, entry, bg, step, [groups(width, 64), rows as u32, 1]),
            None => Ok(()),
        }
    }
}
