//! AdamW's state on disk: `optimizer.safetensors` beside a PEFT adapter, so training can stop
//! and resume with the same next step.
//!
//! Keys are the adapter's PEFT keys prefixed by `exp_avg.` (first moment) or `exp_avg_sq.`
//! (second moment), f32, in the Hugging Face row layout like the adapter file; the step count is
//! the metadata entry `step`.

use std::collections::HashMap;

use super::adapter::Adapter;
use super::hf_rows::rows_from_hf;
use super::peft::{hf_tensors, peft_key, read_tensors, Tensors};
use super::train::OptimizerState;
use crate::error::{Error, Result};

/// The file's name in an adapter directory.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const FORMAT: &str = "tinylm-adamw-1";
const PREFIXES: [&str; 2] = ["exp_avg.", "exp_avg_sq."];

/// The bytes of `optimizer.safetensors` for `state`.
pub fn write_optimizer(state: &OptimizerState) -> Result<Vec<u8>> {
    let mut named = Vec::new();
    for (prefix, moment) in PREFIXES.iter().zip([&state.m, &state.v]) {
        for t in hf_tensors(moment) {
            let bytes: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            named.push((format!("{prefix}{}", t.key), t.shape, bytes));
        }
    }
    let mut views = Vec::new();
    for (key, shape, bytes) in &named {
        let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
            .map_err(|e| Error::InvalidSetting(format!("optimizer tensor {key}: {e}")))?;
        views.push((key.clone(), v));
    }
    let meta = HashMap::from([("format".to_string(), FORMAT.to_string()), ("step".to_string(), state.step.to_string())]);
    let mut bytes = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::InvalidSetting(format!("writing the optimizer state: {e}")))?;
    fix_metadata_order(&mut bytes, state.step);
    Ok(bytes)
}

/// safetensors keeps the metadata in a `HashMap`, so its two entries come out in either order;
/// putting `format` first makes the same state always the same bytes (the length is the same
/// either way, so no offset moves).
fn fix_metadata_order(bytes: &mut [u8], step: u32) {
    let want = format!(r#"{{"format":"{FORMAT}","step":"{step}"}}"#);
    let swapped = format!(r#"{{"step":"{step}","format":"{FORMAT}"}}"#);
    let header_end = bytes.len().min(8 + u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()) as usize);
    let header = &mut bytes[8..header_end];
    if let Some(at) = header.windows(swapped.len()).position(|w| w == swapped.as_bytes()) {
        header[at..at + want.len()].copy_from_slice(want.as_bytes());
    }
}

/// Reads `optimizer.safetensors` for `adapter` (named `file` in errors). A file for another
/// adapter shape is `Mismatch`; a damaged one is an adapter error.
pub fn read_optimizer(bytes: &[u8], adapter: &Adapter, file: &str) -> Result<OptimizerState> {
    let step = read_step(bytes, file)?;
    let mut tensors = read_tensors(bytes, file)?;
    let mut m = adapter.zeros_like();
    let mut v = adapter.zeros_like();
    for (prefix, moment) in PREFIXES.iter().zip([&mut m, &mut v]) {
        for module in &mut moment.modules {
            let (l, t) = (module.layer, module.target);
            module.a = take(&mut tensors, &format!("{prefix}{}", peft_key(l, t, 'A')), module.a.len(), file)?;
            let b = take(&mut tensors, &format!("{prefix}{}", peft_key(l, t, 'B')), module.b.len(), file)?;
            module.b = rows_from_hf(&b, t, &adapter.base, adapter.config.r);
        }
    }
    if let Some(key) = tensors.keys().next() {
        return Err(Error::Mismatch(format!(
            "{file}: unexpected tensor `{key}`: the optimizer state was saved for another adapter"
        )));
    }
    if v.tensors().flatten().any(|&x| x < 0.0) {
        return Err(Error::adapter(file, "a second moment is negative"));
    }
    Ok(OptimizerState { step, m, v })
}

fn read_step(bytes: &[u8], file: &str) -> Result<u32> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::adapter(file, format!("not a valid safetensors file: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(Error::adapter(file, format!("not an optimizer state (metadata `format` is not {FORMAT})")));
    }
    meta.get("step")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::adapter(file, "the metadata `step` is missing or not a step count"))
}

fn take(tensors: &mut Tensors, key: &str, len: usize, file: &str) -> Result<Vec<f32>> {
    let (_, data) = tensors.remove(key).ok_or_else(|| {
        Error::Mismatch(format!("{file}: tensor `{key}` is missing: the optimizer state was saved for another adapter"))
    })?;
    if data.len() != len {
        return Err(Error::Mismatch(format!("{file}: `{key}` has {} values, the adapter needs {len}", data.len())));
    }
    Ok(data)
}
