//! v2 (`ak42`, version 2, Q8_0 as runq.c reads it): header with group size, f32 norms, then each
//! quantized tensor (per layer for layer tensors) as int8 values followed by f32 group scales.

use super::format::{Format, HEADER_V1};
use super::v1::{header, read_header};
use crate::bytes::{check_len, put_f32s, Reader};
use crate::error::{Error, Result};
use crate::quant_weights::{Matrix, Q8Matrix, QuantWeights};
use crate::weights::{tensor_specs, Tensor, Weights};

const NORMS: [Tensor; 3] = [Tensor::RmsAtt, Tensor::RmsFfn, Tensor::RmsFinal];
const QUANTIZED: [Tensor; 9] =
    [Tensor::TokEmbeddings, Tensor::Wq, Tensor::Wk, Tensor::Wv, Tensor::Wo, Tensor::W1, Tensor::W2, Tensor::W3, Tensor::Wcls];

pub fn read(data: &[u8], file: &str) -> Result<(Weights, Format)> {
    let (q, f) = read_quant(data, file)?;
    Ok((q.into_dense(), f))
}

/// `read`, keeping the quantized tensors as Q8_0 (int8 values, one f32 scale per group).
pub fn read_quant(data: &[u8], file: &str) -> Result<(QuantWeights, Format)> {
    let (config, mut r) = read_header(data, file)?;
    let gs = r.i32()?;
    if gs <= 0 || !config.dim.is_multiple_of(gs as usize) {
        return Err(Error::model(file, format!("group size {gs} must be positive and divide dim {}", config.dim)));
    }
    let gs = gs as usize;
    let specs = tensor_specs(&config);
    let mut expected = HEADER_V1 as u64;
    for s in &specs {
        expected += if NORMS.contains(&s.tensor) { 4 * s.len as u64 } else { s.len as u64 + 4 * (s.len / gs) as u64 };
    }
    check_len(data, expected, file)?;
    // Held as stored: int8 values, f32 scales and norms.
    crate::memory::check_model(file, expected - HEADER_V1 as u64, &config)?;

    let mut r = Reader::new(data, file);
    r.skip(HEADER_V1)?;
    let mut read = Vec::with_capacity(specs.len());
    for t in NORMS {
        let s = specs.iter().find(|s| s.tensor == t).expect("norms always exist");
        read.push((t, Matrix::F32(r.f32s(s.len)?)));
    }
    for t in QUANTIZED {
        let Some(s) = specs.iter().find(|s| s.tensor == t) else { continue };
        // Every matrix has dim as a factor, so each layer's block is whole groups.
        let mut m = Q8Matrix { group: gs, q: Vec::with_capacity(s.len), scales: Vec::with_capacity(s.len / gs) };
        for _ in 0..s.blocks {
            m.q.extend(r.i8s(s.per_layer)?.iter().map(|&v| v as i8));
            m.scales.extend(r.f32s(s.per_layer / gs)?);
        }
        read.push((t, Matrix::Q8(m)));
    }
    let tensors = specs
        .iter()
        .map(|s| {
            let i = read.iter().position(|(t, _)| *t == s.tensor).expect("every spec was read");
            read.swap_remove(i).1
        })
        .collect();
    Ok((QuantWeights::from_tensors(config, tensors), Format::V2 { group_size: gs }))
}

/// The group size llama2.c's exporter picks: 64, halved until it divides dim.
pub fn default_group_size(dim: usize) -> usize {
    let mut gs = 64;
    while !dim.is_multiple_of(gs) {
        gs /= 2;
    }
    gs
}

/// Quantizes one block: per group `scale = max|w| / 127`, `q = round(w / scale)` (ties to even).
fn quantize(w: &[f32], gs: usize) -> (Vec<u8>, Vec<f32>) {
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(w.len() / gs);
    for g in w.chunks(gs) {
        let scale = g.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        scales.push(scale);
        for v in g {
            let x = if scale > 0.0 { (v / scale).round_ties_even().clamp(-127.0, 127.0) } else { 0.0 };
            q.push((x as i8) as u8);
        }
    }
    (q, scales)
}

pub fn write_v2(w: &Weights, group_size: usize) -> Result<Vec<u8>> {
    let c = &w.config;
    if group_size == 0 || !c.dim.is_multiple_of(group_size) {
        return Err(Error::InvalidSetting(format!("group size {group_size} must divide dim {}", c.dim)));
    }
    let mut out = header(c, 2, Some(group_size));
    for t in NORMS {
        put_f32s(&mut out, w.get(t));
    }
    for s in tensor_specs(c).iter().filter(|s| QUANTIZED.contains(&s.tensor)) {
        for block in w.get(s.tensor).chunks(s.per_layer) {
            let (q, scales) = quantize(block, group_size);
            out.extend_from_slice(&q);
            put_f32s(&mut out, &scales);
        }
    }
    Ok(out)
}
