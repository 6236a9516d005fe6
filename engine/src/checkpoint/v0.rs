//! v0, the legacy format: 7 × i32 header (negative vocab = untied classifier), f32 tensors in
//! v0 order, the unused RoPE tables, then the classifier when untied.

use crate::bytes::{check_len, put_f32s, put_i32s, Reader};
use crate::config::Config;
use crate::error::Result;
use crate::weights::{tensor_specs, Weights};

const HEADER: u64 = 28;

fn rope_table_len(c: &Config) -> usize {
    c.seq_len * c.head_size() / 2
}

/// The config in a v0 header (negative vocab: an untied classifier).
fn config(r: &mut Reader, file: &str) -> Result<Config> {
    let mut h = r.header7()?;
    let shared = h[5] > 0;
    h[5] = h[5].checked_abs().unwrap_or(0);
    Config::from_header(h, shared, file)
}

/// The file length a v0 header implies.
fn implied_len(c: &Config) -> u64 {
    let floats: u64 = tensor_specs(c).iter().map(|s| s.len as u64).sum::<u64>() + 2 * rope_table_len(c) as u64;
    HEADER + 4 * floats
}

/// Whether `data` is a v0 file: its header is valid and implies exactly its length (v0 has no
/// magic number).
pub fn recognise(data: &[u8]) -> bool {
    let mut r = Reader::new(data, "");
    config(&mut r, "").is_ok_and(|c| implied_len(&c) == data.len() as u64)
}

pub fn read(data: &[u8], file: &str) -> Result<Weights> {
    let mut r = Reader::new(data, file);
    let config = config(&mut r, file)?;
    let specs = tensor_specs(&config);
    check_len(data, implied_len(&config), file)?;
    let floats: u64 = specs.iter().map(|s| s.len as u64).sum();
    crate::memory::check_model(file, 4 * floats, &config)?;

    let mut tensors = Vec::with_capacity(specs.len());
    for s in &specs {
        if s.tensor == crate::weights::Tensor::Wcls {
            r.skip(2 * 4 * rope_table_len(&config))?;
        }
        tensors.push(r.f32s(s.len)?);
    }
    Ok(Weights::from_tensors(config, tensors))
}

/// Writes a v0 file, RoPE tables included (computed as llama2.c's exporter does).
pub fn write_v0(w: &Weights) -> Vec<u8> {
    let c = &w.config;
    let vocab = if c.shared_classifier { c.vocab_size as i32 } else { -(c.vocab_size as i32) };
    let mut out = Vec::with_capacity(28 + w.size_bytes() as usize);
    put_i32s(
        &mut out,
        &[c.dim as i32, c.hidden_dim as i32, c.n_layers as i32, c.n_heads as i32, c.n_kv_heads as i32, vocab, c.seq_len as i32],
    );
    for (spec, t) in w.tensors() {
        if spec.tensor == crate::weights::Tensor::Wcls {
            continue;
        }
        put_f32s(&mut out, t);
    }
    let (cos, sin) = rope_tables(c);
    put_f32s(&mut out, &cos);
    put_f32s(&mut out, &sin);
    if let Some(wcls) = &w.wcls {
        put_f32s(&mut out, wcls);
    }
    out
}

/// `cos/sin(pos · 10000^(−2j/hs))`, `[seq_len, hs/2]`; run.c ignores them.
fn rope_tables(c: &Config) -> (Vec<f32>, Vec<f32>) {
    let hs = c.head_size();
    let mut cos = Vec::with_capacity(rope_table_len(c));
    let mut sin = Vec::with_capacity(rope_table_len(c));
    for pos in 0..c.seq_len {
        for j in 0..hs / 2 {
            let angle = pos as f64 * 10000f64.powf(-2.0 * j as f64 / hs as f64);
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    (cos, sin)
}
