//! A Hugging Face `LlamaForCausalLM` folder: `config.json` (transformers 4's `rope_theta` /
//! `rope_scaling` or transformers 5's `rope_parameters`), `model.safetensors` or shards named by
//! `model.safetensors.index.json` (F32, or F16 and BF16 matrices kept in their type), and
//! `tokenizer.json`.

use std::collections::{BTreeMap, HashMap};

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use super::{base, llama, Opened, MAX_CONTEXT};
use crate::config::{Config, Llama3Rope};
use crate::error::{Error, Result};
use crate::quant::{dequantize, DType};
use crate::quant_weights::{BlockMatrix, Matrix};
use crate::tokenizer::Tokenizer;
use crate::weights::Tensor;

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const INDEX: &str = "model.safetensors.index.json";
pub const TOKENIZER: &str = "tokenizer.json";

pub(crate) fn read(files: &[(&str, &[u8])]) -> Result<Opened> {
    let find = |name: &str| files.iter().find(|(n, _)| base(n) == name).copied();
    let (cfg_name, cfg_bytes) = find(CONFIG).ok_or_else(|| Error::model("(folder)", "has no config.json"))?;
    let (config, file_context) = config(cfg_bytes, cfg_name)?;
    let shards = shards(&find)?;
    crate::memory::check_model(cfg_name, held_bytes(&shards, &config), &config)?;
    let mut dtypes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let hs = config.head_size();
    let weights = llama::assemble(config, |t, l, shape| {
        let name = llama::hf_name(t, l);
        let (file, st) = shards.get(&name).ok_or_else(|| Error::model(cfg_name, format!("the weights have no tensor {name}")))?;
        let view = st.tensor(&name).map_err(|e| Error::model(file, format!("tensor {name}: {e}")))?;
        if view.shape() != shape {
            return Err(Error::model(file, format!("tensor {name} has shape {:?}; config.json implies {shape:?}", view.shape())));
        }
        let dtype = match view.dtype() {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            d => return Err(Error::model(file, format!("tensor {name} is {d:?}; F32, F16 and BF16 are read"))),
        };
        *dtypes.entry(dtype.name()).or_default() += 1;
        // q and k rows in the engine's RoPE order; F16 and BF16 matrices stay in their type (the
        // CPU's `blocks` kernels), anything else becomes f32.
        let rope = matches!(t, Tensor::Wq | Tensor::Wk);
        if keeps_half(view.dtype(), shape) {
            let data = view.data();
            let data = if rope { llama::interleave(data, hs, 2 * config.dim) } else { data.to_vec() };
            return Ok(Matrix::Blocks(BlockMatrix { dtype, data }));
        }
        let mut out = Vec::new();
        dequantize(dtype, view.data(), &mut out);
        Ok(Matrix::F32(if rope { llama::interleave(&out, hs, config.dim) } else { out }))
    })?;
    let tokenizer = match find(TOKENIZER) {
        Some((name, bytes)) => {
            let t = Tokenizer::from_json(bytes, name)?.with_specials(config.bos_id, config.eos_id);
            t.check_vocab(config.vocab_size, name, cfg_name)?;
            Some(t)
        }
        None => None,
    };
    let names: Vec<String> = dtypes.iter().map(|(t, n)| format!("{t} ×{n}")).collect();
    let layout = if shards.sharded() { "sharded safetensors" } else { "safetensors" };
    Ok(Opened { weights, tokenizer, format: format!("Hugging Face {layout}, {}", names.join(", ")), file_context })
}

/// F16 and BF16 matrices are held as read; norms and F32 become f32.
fn keeps_half(d: Dtype, shape: &[usize]) -> bool {
    matches!(d, Dtype::F16 | Dtype::BF16) && shape.len() == 2
}

/// Bytes the model's tensors will take held (`keeps_half`: 2 a value, else 4), from the
/// safetensors headers alone, up to the first missing tensor (tensors missing or misshapen are
/// refused later, by the reader).
fn held_bytes(shards: &Shards, c: &Config) -> u64 {
    let mut held = 0u64;
    for spec in crate::weights::tensor_specs(c) {
        let shape = llama::shape(c, spec.tensor);
        for l in 0..spec.blocks {
            let name = llama::hf_name(spec.tensor, l);
            // The reader refuses the folder at its first missing tensor: stop there too.
            let Some(view) = shards.get(&name).and_then(|(_, st)| st.tensor(&name).ok()) else { return held };
            let n = view.shape().iter().fold(1u64, |a, &d| a.saturating_mul(d as u64));
            held = held.saturating_add(n.saturating_mul(if keeps_half(view.dtype(), &shape) { 2 } else { 4 }));
        }
    }
    held
}

/// Looks a file of the folder up by its base name: (its name, its bytes).
type Find<'a> = dyn Fn(&str) -> Option<(&'a str, &'a [u8])> + 'a;

/// The parsed safetensors files and, per tensor name, which of them holds it.
struct Shards<'a> {
    files: Vec<(&'a str, SafeTensors<'a>)>,
    of: HashMap<String, usize>,
}

impl<'a> Shards<'a> {
    fn get(&self, tensor: &str) -> Option<&(&'a str, SafeTensors<'a>)> {
        self.of.get(tensor).map(|&i| &self.files[i])
    }
    fn sharded(&self) -> bool {
        self.files.len() > 1 || self.files.iter().any(|(f, _)| base(f) != WEIGHTS)
    }
}

/// `model.safetensors`, or the shards `model.safetensors.index.json` names, each parsed once.
fn shards<'a>(find: &Find<'a>) -> Result<Shards<'a>> {
    let parse = |(name, bytes): (&'a str, &'a [u8])| {
        SafeTensors::deserialize(bytes)
            .map(|st| (name, st))
            .map_err(|e| Error::model(name, format!("is not a safetensors file: {e}")))
    };
    if let Some(f) = find(WEIGHTS) {
        let (name, st) = parse(f)?;
        let of = st.names().into_iter().map(|n| (n.to_string(), 0)).collect();
        return Ok(Shards { files: vec![(name, st)], of });
    }
    let (index_name, index) =
        find(INDEX).ok_or_else(|| Error::model("(folder)", "has neither model.safetensors nor its index"))?;
    let v: Value = serde_json::from_slice(index).map_err(|e| Error::model(index_name, format!("is not JSON: {e}")))?;
    let map = v.get("weight_map").and_then(Value::as_object).ok_or_else(|| Error::model(index_name, "has no weight_map"))?;
    let mut sh = Shards { files: Vec::new(), of: HashMap::new() };
    let mut slot: HashMap<&str, usize> = HashMap::new();
    for (tensor, shard) in map {
        let shard = shard.as_str().ok_or_else(|| Error::model(index_name, format!("names no file for {tensor}")))?;
        let i = match slot.get(shard) {
            Some(&i) => i,
            None => {
                let f = find(shard).ok_or_else(|| Error::model(index_name, format!("names shard {shard}, which is missing")))?;
                sh.files.push(parse(f)?);
                slot.insert(shard, sh.files.len() - 1);
                sh.files.len() - 1
            }
        };
        sh.of.insert(tensor.clone(), i);
    }
    Ok(sh)
}

/// `config.json` → (`Config`, the file's context length).
pub fn config(bytes: &[u8], file: &str) -> Result<(Config, usize)> {
    let bad = |what: String| Error::model(file, what);
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("is not JSON: {e}")))?;
    let arch = v.pointer("/architectures/0").and_then(Value::as_str).unwrap_or("(no architecture)");
    if arch != "LlamaForCausalLM" {
        return Err(bad(format!("{arch} is not a Llama model this lab can run")));
    }
    for (key, what) in [("attention_bias", "attention biases"), ("mlp_bias", "MLP biases")] {
        if v.get(key).and_then(Value::as_bool) == Some(true) {
            return Err(bad(format!("{what} are not supported")));
        }
    }
    if let Some(act) = v.get("hidden_act").and_then(Value::as_str).filter(|a| *a != "silu") {
        return Err(bad(format!("activation {act} is not supported (SiLU is)")));
    }
    let count = |key: &str| -> Result<Option<usize>> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => x
                .as_u64()
                .filter(|&n| n > 0 && n <= u32::MAX as u64)
                .map(|n| Some(n as usize))
                .ok_or_else(|| bad(format!("{key} is {x}, not a positive count"))),
        }
    };
    let need = |key: &str| count(key)?.ok_or_else(|| bad(format!("has no {key}")));
    let (dim, n_heads) = (need("hidden_size")?, need("num_attention_heads")?);
    let head_dim = match count("head_dim")? {
        Some(h) => h,
        None if dim.is_multiple_of(n_heads) => dim / n_heads,
        None => return Err(bad(format!("num_attention_heads {n_heads} does not divide hidden_size {dim}"))),
    };
    let file_context = count("max_position_embeddings")?.unwrap_or(MAX_CONTEXT);
    let id = |key: &str| match v.get(key) {
        Some(Value::Array(a)) => a.first().and_then(Value::as_u64),
        Some(x) => x.as_u64(),
        None => None,
    };
    let (theta, scaling) = rope(&v, file)?;
    let c = Config {
        dim,
        hidden_dim: need("intermediate_size")?,
        n_layers: need("num_hidden_layers")?,
        n_heads,
        n_kv_heads: count("num_key_value_heads")?.unwrap_or(n_heads),
        vocab_size: need("vocab_size")?,
        seq_len: file_context.min(MAX_CONTEXT),
        // transformers' LlamaConfig defaults to an untied head.
        shared_classifier: v.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false),
        head_dim,
        rope_theta: theta,
        rope_scaling: scaling,
        norm_eps: v.get("rms_norm_eps").and_then(Value::as_f64).unwrap_or(1e-6) as f32,
        bos_id: id("bos_token_id").unwrap_or(1) as u32,
        eos_id: id("eos_token_id").map(|e| e as u32),
    };
    c.validate().map_err(bad)?;
    Ok((c, file_context))
}

/// RoPE base and scaling from `rope_parameters` (transformers 5) or `rope_theta` and
/// `rope_scaling` (transformers 4).
fn rope(v: &Value, file: &str) -> Result<(f32, Option<Llama3Rope>)> {
    let bad = |what: String| Error::model(file, what);
    let params = v.get("rope_parameters").filter(|p| p.is_object());
    let scaling = params.or_else(|| v.get("rope_scaling").filter(|p| p.is_object()));
    let theta =
        params.and_then(|p| p.get("rope_theta")).or_else(|| v.get("rope_theta")).and_then(Value::as_f64).unwrap_or(10000.0);
    let Some(s) = scaling else { return Ok((theta as f32, None)) };
    let kind = s.get("rope_type").or_else(|| s.get("type")).and_then(Value::as_str).unwrap_or("default");
    match kind {
        "default" => Ok((theta as f32, None)),
        "llama3" => {
            let f = |key: &str| {
                s.get(key)
                    .and_then(Value::as_f64)
                    .map(|x| x as f32)
                    .ok_or_else(|| bad(format!("llama3 rope scaling has no {key}")))
            };
            let r = Llama3Rope {
                factor: f("factor")?,
                low_freq_factor: f("low_freq_factor")?,
                high_freq_factor: f("high_freq_factor")?,
                original_context: f("original_max_position_embeddings")?,
            };
            Ok((theta as f32, Some(r)))
        }
        k => Err(bad(format!("RoPE scaling `{k}` is not supported (llama3 is)"))),
    }
}
