//! v1 (`ak42`, version 1): 256-byte header, then f32 tensors norms-first:
//! rms_att, rms_ffn, rms_final, tok_embeddings, wq, wk, wv, wo, w1, w2, w3, [wcls].

use super::format::{HEADER_V1, MAGIC};
use crate::bytes::{check_len, put_f32s, put_i32s, Reader};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::weights::{tensor_specs, Tensor, Weights};

/// Tensor order in v1 files.
pub(super) const ORDER: [Tensor; 12] = [
    Tensor::RmsAtt,
    Tensor::RmsFfn,
    Tensor::RmsFinal,
    Tensor::TokEmbeddings,
    Tensor::Wq,
    Tensor::Wk,
    Tensor::Wv,
    Tensor::Wo,
    Tensor::W1,
    Tensor::W2,
    Tensor::W3,
    Tensor::Wcls,
];

/// Reads the common v1/v2 header: the config, and the reader positioned after `shared_classifier`.
pub(super) fn read_header<'a>(data: &'a [u8], file: &'a str) -> Result<(Config, Reader<'a>)> {
    if data.len() < HEADER_V1 {
        return Err(Error::model(file, format!("file is truncated: {} bytes, shorter than the 256-byte header", data.len())));
    }
    let mut r = Reader::new(data, file);
    r.skip(8)?;
    let h = r.header7()?;
    let shared = match r.u8()? {
        0 => false,
        1 => true,
        b => return Err(Error::model(file, format!("shared_classifier flag is {b}; it must be 0 or 1"))),
    };
    Ok((Config::from_header(h, shared, file)?, r))
}

pub fn read(data: &[u8], file: &str) -> Result<Weights> {
    let (config, _) = read_header(data, file)?;
    let specs = tensor_specs(&config);
    let floats: u64 = specs.iter().map(|s| s.len as u64).sum();
    check_len(data, HEADER_V1 as u64 + 4 * floats, file)?;
    crate::memory::check_model(file, 4 * floats, &config)?;
    let mut r = Reader::new(data, file);
    r.skip(HEADER_V1)?;
    let mut read = Vec::with_capacity(specs.len());
    for t in ORDER {
        if let Some(s) = specs.iter().find(|s| s.tensor == t) {
            read.push((t, r.f32s(s.len)?));
        }
    }
    Ok(Weights::from_tensors(config, in_v0_order(&specs, read)))
}

/// Puts tensors read in file order into `tensor_specs` (v0) order.
pub(super) fn in_v0_order(specs: &[crate::weights::TensorSpec], mut read: Vec<(Tensor, Vec<f32>)>) -> Vec<Vec<f32>> {
    specs
        .iter()
        .map(|s| {
            let i = read.iter().position(|(t, _)| *t == s.tensor).expect("every spec was read");
            std::mem::take(&mut read[i].1)
        })
        .collect()
}

/// Writes the 256-byte header of version `version`; v2 passes its group size.
pub(super) fn header(c: &Config, version: i32, group_size: Option<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_V1);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    put_i32s(
        &mut out,
        &[
            version,
            c.dim as i32,
            c.hidden_dim as i32,
            c.n_layers as i32,
            c.n_heads as i32,
            c.n_kv_heads as i32,
            c.vocab_size as i32,
            c.seq_len as i32,
        ],
    );
    out.push(c.shared_classifier as u8);
    if let Some(gs) = group_size {
        put_i32s(&mut out, &[gs as i32]);
    }
    out.resize(HEADER_V1, 0);
    out
}

pub fn write_v1(w: &Weights) -> Vec<u8> {
    let mut out = header(&w.config, 1, None);
    out.reserve(w.size_bytes() as usize);
    for t in ORDER {
        if t == Tensor::Wcls && w.wcls.is_none() {
            continue;
        }
        put_f32s(&mut out, w.get(t));
    }
    out
}
