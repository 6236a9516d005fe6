//! v2 (`ak42`, version 2, Q8_0 as runq.c reads it): header with group size, f32 norms, then each
//! quantized tensor (per layer for layer tensors) as int8 values followed by f32 group scales.

use super::format::{Format, HEADER_V1};
use super::v1::{header, in_v0_order, read_header};
use crate::bytes::{check_len, put_f32s, Reader};
use crate::error::{Error, Result};
use crate::weights::{tensor_specs, Tensor, Weights};

const NORMS: [Tensor; 3] = [Tensor::RmsAtt, Tensor::RmsFfn, Tensor::RmsFinal];
const QUANTIZED: [Tensor; 9] =
    [Tensor::TokEmbeddings, Tensor::Wq, Tensor::Wk, Tensor::Wv, Tensor::Wo, Tensor::W1, Tensor::W2, Tensor::W3, Tensor::Wcls];

pub fn read(data: &[u8], file: &str) -> Result<(Weights, Format)> {
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

    let mut r = Reader::new(data, file);
    r.skip(HEADER_V1)?;
    let mut read = Vec::with_capacity(specs.len());
    for t in NORMS {
        let s = specs.iter().find(|s| s.tensor == t).expect("norms always exist");
        read.push((t, r.f32s(s.len)?));
    }
    for t in QUANTIZED {
        let Some(s) = specs.iter().find(|s| s.tensor == t) else { continue };
        let mut out = Vec::with_capacity(s.len);
        for _ in 0..s.blocks {
            let q = r.i8s(s.per_layer)?;
            let scales = r.f32s(s.per_layer / gs)?;
            out.extend(q.iter().enumerate().map(|(i, &v)| (v as i8) as f32 * scales[i / gs]));
        }
        read.push((t, out));
    }
    Ok((Weights::from_tensors(config, in_v0_order(&specs, read)), Format::V2 { group_size: gs }))
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
