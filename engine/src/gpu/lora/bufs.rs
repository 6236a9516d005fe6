//! The buffers both GPU trainers (LoRA's and full training's) make per batch shape: each layer's
//! activations the backward reads (as `lora::LayerActs`) and the backward's scratch (as the CPU
//! trainers' `Scratch`), each checked against the storage-binding limit and counted.

use super::model::sized;
use crate::config::Config;
use crate::error::Result;
use crate::gpu::context::GpuContext;

/// Makes storage buffers, adding up their bytes.
pub struct Sizer<'a> {
    ctx: &'a GpuContext,
    pub bytes: u64,
}

impl<'a> Sizer<'a> {
    pub fn new(ctx: &'a GpuContext) -> Sizer<'a> {
        Sizer { ctx, bytes: 0 }
    }

    /// A buffer of `floats` f32 (`what` names it in errors).
    pub fn f(&mut self, what: &str, floats: usize) -> Result<wgpu::Buffer> {
        self.bytes += floats as u64 * 4;
        sized(self.ctx, what, floats)
    }
}

/// Floats of the attention probabilities `[batch, n_heads, seq, seq]`.
fn probs(c: &Config, batch: usize, seq: usize) -> usize {
    batch * c.n_heads * seq * seq
}

/// One layer's kept activations over `n` rows.
pub struct LayerActs {
    pub xn_att: wgpu::Buffer,
    pub q: wgpu::Buffer,
    pub k: wgpu::Buffer,
    pub v: wgpu::Buffer,
    pub probs: wgpu::Buffer,
    pub att: wgpu::Buffer,
    pub x_mid: wgpu::Buffer,
    pub xn_ffn: wgpu::Buffer,
    pub h1: wgpu::Buffer,
    pub h3: wgpu::Buffer,
    pub g: wgpu::Buffer,
}

impl LayerActs {
    pub fn new(s: &mut Sizer, c: &Config, batch: usize, seq: usize) -> Result<LayerActs> {
        let n = batch * seq;
        let (d, kv, hd, q) = (c.dim, c.kv_dim(), c.hidden_dim, c.q_dim());
        Ok(LayerActs {
            xn_att: s.f("xn", n * d)?,
            q: s.f("q", n * q)?,
            k: s.f("k", n * kv)?,
            v: s.f("v", n * kv)?,
            probs: s.f("the attention probabilities", probs(c, batch, seq))?,
            att: s.f("att", n * q)?,
            x_mid: s.f("x_mid", n * d)?,
            xn_ffn: s.f("xn", n * d)?,
            h1: s.f("h1", n * hd)?,
            h3: s.f("h3", n * hd)?,
            g: s.f("g", n * hd)?,
        })
    }
}

/// The backward's gradients over `n` rows, reused across layers.
pub struct Scratch {
    pub dx: wgpu::Buffer,
    pub dxn: wgpu::Buffer,
    pub datt: wgpu::Buffer,
    pub dq: wgpu::Buffer,
    pub dk: wgpu::Buffer,
    pub dv: wgpu::Buffer,
    pub dg: wgpu::Buffer,
    pub dh1: wgpu::Buffer,
    pub dh3: wgpu::Buffer,
    /// The attention probabilities' gradient.
    pub ds: wgpu::Buffer,
}

impl Scratch {
    pub fn new(s: &mut Sizer, c: &Config, batch: usize, seq: usize) -> Result<Scratch> {
        let n = batch * seq;
        let (d, kv, hd, q) = (c.dim, c.kv_dim(), c.hidden_dim, c.q_dim());
        Ok(Scratch {
            dx: s.f("dx", n * d)?,
            dxn: s.f("dxn", n * d)?,
            datt: s.f("datt", n * q)?,
            dq: s.f("dq", n * q)?,
            dk: s.f("dk", n * kv)?,
            dv: s.f("dv", n * kv)?,
            dg: s.f("dg", n * hd)?,
            dh1: s.f("dh1", n * hd)?,
            dh3: s.f("dh3", n * hd)?,
            ds: s.f("ds", probs(c, batch, seq))?,
        })
    }
}
