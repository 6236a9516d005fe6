//! Activations and the KV cache, resident on the GPU for the backend's lifetime, sized for a
//! batch of up to `batch` rows (positions) at once.

use super::context::GpuContext;
use super::kernels::{buffer, step_buffer, DecodeKernels};
use crate::config::Config;
use crate::error::{Error, Result};

pub struct Acts {
    /// Rows per batch chunk.
    pub batch: usize,
    /// Step slots: one per chunk of a full-context prefill, plus the head's (the last).
    pub slots: usize,
    /// `[seq_len + 1]` u32: the token at each position (the sampler writes the next one).
    pub tokens: wgpu::Buffer,
    pub x: wgpu::Buffer,
    pub xn: wgpu::Buffer,
    pub qkv: wgpu::Buffer,
    pub q: wgpu::Buffer,
    pub ao: wgpu::Buffer,
    /// `[batch, n_heads, seq_len]`.
    pub att: wgpu::Buffer,
    pub hb: wgpu::Buffer,
    pub hg: wgpu::Buffer,
    /// `[batch, vocab]`.
    pub logits: wgpu::Buffer,
    pub probs: wgpu::Buffer,
    /// Per layer `[sequences, 2, seq_len, kv_dim]`: each sequence's keys then values.
    pub kv: Vec<wgpu::Buffer>,
    /// Sequences with a KV cache of their own (several stories in one pass; normally 1).
    pub sequences: usize,
    pub step: wgpu::Buffer,
    pub step_bg: wgpu::BindGroup,
}

/// Bytes per row of each batch-sized activation, and the fixed-size ones.
fn row_bytes(c: &Config) -> [u64; 7] {
    let f = |n: usize| n as u64 * 4;
    [
        f(c.dim.max(c.q_dim())),
        f(c.q_dim() + 2 * c.kv_dim()),
        f(c.n_heads * c.seq_len),
        f(2 * c.hidden_dim),
        f(c.hidden_dim),
        f(c.vocab_size),
        0,
    ]
}

/// Floats of one sequence's KV cache in a layer: keys then values, `[2, seq_len, kv_dim]`.
pub fn kv_stride(c: &Config) -> usize {
    2 * c.seq_len * c.kv_dim()
}

/// Refuses `n` sequences (each with its own KV cache) unless they fit one batch of rows and each
/// layer's caches fit one storage binding.
pub fn check_sequences(c: &Config, limits: &wgpu::Limits, batch: usize, n: usize) -> Result<()> {
    let max = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
    let bytes = n as u64 * kv_stride(c) as u64 * 4;
    if n == 0 || n > batch {
        return Err(Error::InvalidSetting(format!("this GPU backend decodes 1 to {batch} sequences together, not {n}")));
    }
    if bytes > max {
        return Err(Error::Gpu(format!(
            "{n} sequences' KV caches take {bytes} bytes a layer, more than this device's {max}-byte storage binding"
        )));
    }
    Ok(())
}

/// The largest batch ≤ `want` whose activations each fit a storage binding.
pub fn choose_batch(c: &Config, limits: &wgpu::Limits, want: usize) -> Result<usize> {
    let max = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
    let fixed = [2 * c.seq_len as u64 * c.kv_dim() as u64 * 4, c.vocab_size as u64 * 4, (c.seq_len as u64 + 1) * 4];
    if let Some(&big) = fixed.iter().find(|&&b| b > max) {
        return Err(Error::Gpu(format!("a {big}-byte activation buffer exceeds this device's {max}-byte storage binding")));
    }
    let widest = row_bytes(c).into_iter().max().unwrap_or(4).max(4);
    let fit = (max / widest) as usize;
    if fit == 0 {
        return Err(Error::Gpu(format!(
            "one row of activations ({widest} bytes) exceeds this device's {max}-byte storage binding"
        )));
    }
    Ok(want.clamp(1, c.seq_len).min(fit))
}

impl Acts {
    pub fn new(ctx: &GpuContext, k: &DecodeKernels, c: &Config, batch: usize, sequences: usize) -> Acts {
        use wgpu::BufferUsages as U;
        let act = U::STORAGE | U::COPY_SRC | U::COPY_DST;
        let b = batch as u64;
        let f = |label: &str, floats: u64| buffer(ctx, label, floats * 4, act);
        let slots = c.seq_len.div_ceil(batch) + 1;
        let (step, step_bg) = step_buffer(ctx, k, slots);
        let kv_floats = sequences as u64 * kv_stride(c) as u64;
        Acts {
            batch,
            slots,
            tokens: f("tokens", c.seq_len as u64 + 1),
            x: f("x", b * c.dim as u64),
            xn: f("xn", b * c.dim as u64),
            qkv: f("qkv", b * (c.q_dim() + 2 * c.kv_dim()) as u64),
            q: f("q", b * c.q_dim() as u64),
            ao: f("ao", b * c.q_dim() as u64),
            att: f("att", b * (c.n_heads * c.seq_len) as u64),
            hb: f("hb", b * 2 * c.hidden_dim as u64),
            hg: f("hg", b * c.hidden_dim as u64),
            logits: f("logits", b * c.vocab_size as u64),
            probs: f("probs", c.vocab_size as u64),
            kv: (0..c.n_layers).map(|_| f("kv", kv_floats)).collect(),
            sequences,
            step,
            step_bg,
        }
    }

    /// Byte offset of step slot `i` (the head's is `slots - 1`).
    pub fn slot(&self, i: usize) -> u32 {
        (i as u64 * super::kernels::STEP_SLOT) as u32
    }
    pub fn head_slot(&self) -> usize {
        self.slots - 1
    }
}
