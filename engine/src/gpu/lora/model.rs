//! What the trainer keeps on the GPU for its whole life: the frozen weights (one buffer per
//! tensor and layer, each checked against the storage-binding limit), the RoPE table, and the
//! LoRA parameters, their gradients and AdamW's moments as flat arrays.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{buffer, storage};
use crate::gpu::rope_table;
use crate::lora::{Adapter, Target};
use crate::weights::{Tensor, Weights};

pub fn usage() -> wgpu::BufferUsages {
    use wgpu::BufferUsages as U;
    U::STORAGE | U::COPY_DST | U::COPY_SRC
}

/// A storage buffer of `floats` f32, refused above the device's binding limit.
pub fn sized(ctx: &GpuContext, what: &str, floats: usize) -> Result<wgpu::Buffer> {
    check_size(ctx, what, floats)?;
    Ok(buffer(ctx, what, floats as u64 * 4, usage()))
}

pub fn check_size(ctx: &GpuContext, what: &str, floats: usize) -> Result<()> {
    let bytes = floats as u64 * 4;
    let max = ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size);
    if bytes > max {
        return Err(Error::Gpu(format!(
            "{what} needs {bytes} bytes, over the GPU's {max}-byte storage binding limit; use a smaller batch"
        )));
    }
    Ok(())
}

fn upload(ctx: &GpuContext, what: &str, data: &[f32]) -> Result<wgpu::Buffer> {
    check_size(ctx, what, data.len())?;
    Ok(storage(ctx, what, data, wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC))
}

/// One layer's frozen tensors.
pub struct Layer {
    pub rms_att: wgpu::Buffer,
    pub rms_ffn: wgpu::Buffer,
    /// Indexed like `Target::ALL`: wq, wk, wv, wo, w1, w3, w2.
    pub w: [wgpu::Buffer; 7],
}

/// The frozen model on the GPU; the embedding table stays on the host (rows are gathered there).
pub struct Frozen {
    pub config: Config,
    pub layers: Vec<Layer>,
    pub rms_final: wgpu::Buffer,
    pub wcls: wgpu::Buffer,
    pub rope: wgpu::Buffer,
    pub embeddings: Vec<f32>,
}

impl Frozen {
    pub fn new(ctx: &GpuContext, w: &Weights) -> Result<Frozen> {
        let c = w.config;
        let block = |t: Tensor, l: usize| {
            let all = w.get(t);
            let n = all.len() / c.n_layers;
            upload(ctx, t.name(), &all[l * n..(l + 1) * n])
        };
        let mut layers = Vec::with_capacity(c.n_layers);
        for l in 0..c.n_layers {
            let ws = Target::ALL.map(|t| block(t.tensor(), l));
            let [q, k, v, o, g, u, d] = ws;
            layers.push(Layer {
                rms_att: block(Tensor::RmsAtt, l)?,
                rms_ffn: block(Tensor::RmsFfn, l)?,
                w: [q?, k?, v?, o?, g?, u?, d?],
            });
        }
        Ok(Frozen {
            config: c,
            layers,
            rms_final: upload(ctx, "rms_final", w.get(Tensor::RmsFinal))?,
            wcls: upload(ctx, "the classifier", w.get(Tensor::Wcls))?,
            rope: upload(ctx, "rope table", &rope_table(&c))?,
            embeddings: w.get(Tensor::TokEmbeddings).to_vec(),
        })
    }
}

/// The trained parameters as one flat array (every module's A then B, in `Adapter::tensors`
/// order) with gradients and moments of the same layout.
pub struct Params {
    /// The adapter's shape (its values are stale: the GPU holds the live ones).
    pub shape: Adapter,
    /// `(A offset, B offset)` of each module, in floats.
    pub offsets: Vec<(usize, usize)>,
    pub len: usize,
    pub params: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    pub m: wgpu::Buffer,
    pub v: wgpu::Buffer,
    /// The gradient norm (one float).
    pub norm: wgpu::Buffer,
}

/// The flat concatenation of an adapter-shaped value.
pub fn flatten(ad: &Adapter) -> Vec<f32> {
    ad.tensors().flatten().copied().collect()
}

/// Fills `shape`'s tensors from a flat array made by `flatten`.
pub fn unflatten(shape: &Adapter, flat: &[f32]) -> Adapter {
    let mut out = shape.clone();
    let mut at = 0;
    for t in out.tensors_mut() {
        let n = t.len();
        t.copy_from_slice(&flat[at..at + n]);
        at += n;
    }
    out
}

impl Params {
    pub fn new(ctx: &GpuContext, adapter: &Adapter, m: &Adapter, v: &Adapter) -> Result<Params> {
        let mut offsets = Vec::new();
        let mut at = 0;
        for md in &adapter.modules {
            offsets.push((at, at + md.a.len()));
            at += md.a.len() + md.b.len();
        }
        let len = at;
        Ok(Params {
            shape: adapter.clone(),
            offsets,
            len,
            params: upload(ctx, "LoRA parameters", &flatten(adapter))?,
            grads: sized(ctx, "LoRA gradients", len)?,
            m: upload(ctx, "AdamW m", &flatten(m))?,
            v: upload(ctx, "AdamW v", &flatten(v))?,
            norm: sized(ctx, "gradient norm", 1)?,
        })
    }
}
