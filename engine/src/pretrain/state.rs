//! A trainer's state as bytes (safetensors): AdamW's moments and step count, the run's
//! settings and, for a self-contained snapshot, the weights. The CLI writes the moments beside
//! `model.bin` (`optimizer.safetensors`); the browser keeps one snapshot with the weights.
//!
//! Keys: `exp_avg.<tensor>`, `exp_avg_sq.<tensor>` and (optionally) `param.<tensor>`, f32, each
//! tensor stacked over layers in llama2.c layout with its llama2.c name; one metadata entry
//! `tinylm` holding `{"format", "step", "config", "hyper"}` as JSON (one entry, so the bytes do
//! not depend on a map's order and equal states give equal files).

use std::collections::HashMap;

use super::params::Params;
use super::trainer::{Hyper, Moments, Pretrainer};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::weights::Weights;

/// The name of the moments file in a `tinylm pretrain` output directory.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const FORMAT: &str = "tinylm-pretrain-1";
const META_KEY: &str = "tinylm";

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    format: String,
    step: u32,
    config: Config,
    hyper: Hyper,
}

/// What a state file holds.
pub struct SavedState {
    pub config: Config,
    pub hyper: Hyper,
    pub moments: Moments,
    /// Present in a snapshot written with the weights.
    pub params: Option<Params>,
}

impl Pretrainer<f32> {
    /// The state as bytes; `with_weights` makes it a self-contained snapshot.
    pub fn save_state(&self, with_weights: bool) -> Result<Vec<u8>> {
        let o = self.moments();
        let mut parts: Vec<(&str, &Params)> = vec![("exp_avg", &o.m), ("exp_avg_sq", &o.v)];
        if with_weights {
            parts.push(("param", &self.params));
        }
        let mut named = Vec::new();
        for (prefix, p) in parts {
            for (spec, t) in p.iter() {
                named.push((
                    format!("{prefix}.{}", spec.tensor.name()),
                    t.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
                ));
            }
        }
        let views = named
            .iter()
            .map(|(k, b)| {
                let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![b.len() / 4], b)
                    .map_err(|e| Error::InvalidSetting(format!("state tensor {k}: {e}")))?;
                Ok((k.clone(), v))
            })
            .collect::<Result<Vec<_>>>()?;
        let header = Header { format: FORMAT.into(), step: o.step, config: self.params.config, hyper: self.hyper };
        let meta = HashMap::from([(META_KEY.to_string(), to_json(&header)?)]);
        safetensors::serialize(views, Some(meta)).map_err(|e| Error::InvalidSetting(format!("writing the training state: {e}")))
    }

    /// A trainer continuing a saved state: the snapshot's own weights, or `weights` (which
    /// must have the state's shape) when it has none.
    pub fn from_state(bytes: &[u8], weights: Option<&Weights>, file: &str) -> Result<Pretrainer<f32>> {
        let s = read_state(bytes, file)?;
        let params = match (s.params, weights) {
            (Some(p), _) => p,
            (None, Some(w)) if w.config == s.config => Params::from_weights(w),
            (None, Some(w)) => {
                return Err(Error::Mismatch(format!(
                    "{file}: the training state is for a model of shape {:?}, the model is {:?}",
                    s.config, w.config
                )))
            }
            (None, None) => return Err(Error::adapter(file, "the training state holds no weights; give the model too")),
        };
        Pretrainer::restore(params, s.hyper, s.moments)
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::InvalidSetting(format!("training state: {e}")))
}

/// Reads a state written by `save_state` (named `file` in errors). Every size is checked
/// against the shape in its metadata before anything is allocated for it.
pub fn read_state(bytes: &[u8], file: &str) -> Result<SavedState> {
    let bad = |what: String| Error::adapter(file, what);
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let not_state = || bad(format!("not a training state (no `{META_KEY}` metadata of format {FORMAT})"));
    let h: Header = serde_json::from_str(meta.get(META_KEY).ok_or_else(not_state)?).map_err(|_| not_state())?;
    if h.format != FORMAT {
        return Err(not_state());
    }
    let (step, config, hyper) = (h.step, h.config, h.hyper);
    config.validate().map_err(|e| bad(format!("the model shape in the metadata is not usable: {e}")))?;
    hyper.validate().map_err(|e| bad(format!("its settings are not usable: {e}")))?;
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let specs = crate::weights::tensor_specs(&config);
    // Each tensor's size is checked before it is read, so what is allocated is what the file holds.
    let load = |prefix: &str, required: bool| -> Result<Option<Params>> {
        let mut tensors = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let key = format!("{prefix}.{}", spec.tensor.name());
            let t = match st.tensor(&key) {
                Ok(t) => t,
                Err(_) if !required && i == 0 => return Ok(None),
                Err(_) => return Err(bad(format!("tensor `{key}` is missing"))),
            };
            if t.dtype() != safetensors::Dtype::F32 || t.data().len() != spec.len * 4 {
                return Err(bad(format!("tensor `{key}` must be {} f32 values", spec.len)));
            }
            tensors.push(t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect());
        }
        Ok(Some(Params::from_tensors(config, tensors)))
    };
    let m = load("exp_avg", true)?.expect("required");
    let v = load("exp_avg_sq", true)?.expect("required");
    if v.tensors().iter().flatten().any(|&x| x.is_nan() || x < 0.0) {
        return Err(bad("a second moment is negative or not a number".into()));
    }
    let params = load("param", false)?;
    let expected = 2 + params.is_some() as usize;
    if st.len() != expected * specs.len() {
        return Err(bad("it holds tensors a training state of this shape does not have".into()));
    }
    Ok(SavedState { config, hyper, moments: Moments { step, m, v }, params })
}
