//! The flat arrays full training keeps on the GPU for its whole life, in `Layout`'s order:
//! weights, gradients, AdamW's moments, the weights before the last update, and the small
//! buffers the optimizer's reductions write.

use super::layout::Layout;
use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::storage;
use crate::gpu::lora::model::{check_size, sized};
use crate::pretrain::Params;

pub struct Flat {
    pub params: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    pub m: wgpu::Buffer,
    pub v: wgpu::Buffer,
    /// The parameters before the last update (for the update norms).
    pub old: wgpu::Buffer,
    /// The gradient norm (one float).
    pub norm: wgpu::Buffer,
    /// `(Σ Δ², Σ w²)` of each tensor's last update.
    pub sums: wgpu::Buffer,
    /// Bound where a kernel writes nothing.
    pub spare: wgpu::Buffer,
}

impl Flat {
    /// `params` and AdamW's `m` and `v` uploaded; the rest zeros.
    pub fn new(ctx: &GpuContext, layout: &Layout, params: &Params, m: &Params, v: &Params) -> Result<Flat> {
        Ok(Flat {
            params: upload(ctx, "the weights", &layout.flatten(params))?,
            grads: sized(ctx, "the gradients", layout.len)?,
            m: upload(ctx, "AdamW m", &layout.flatten(m))?,
            v: upload(ctx, "AdamW v", &layout.flatten(v))?,
            old: sized(ctx, "the weights before the update", layout.len)?,
            norm: sized(ctx, "gradient norm", 1)?,
            sums: sized(ctx, "update norms", 2 * layout.specs.len())?,
            spare: sized(ctx, "spare", 1)?,
        })
    }
}

/// A storage buffer holding `data`, refused above the device's binding limit.
pub fn upload(ctx: &GpuContext, what: &str, data: &[f32]) -> Result<wgpu::Buffer> {
    check_size(ctx, what, data.len())?;
    Ok(storage(ctx, what, data, wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC))
}
