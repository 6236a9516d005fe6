//! PEFT adapter files: `adapter_config.json` and `adapter_model.safetensors`, with PEFT's key
//! names (`base_model.model.model.layers.<l>.self_attn.q_proj.lora_A.weight`) and the Hugging
//! Face row layout, so Hugging Face PEFT loads ours and we load theirs.
//!
//! Layout: HF's `q_proj`/`k_proj` rows are permuted within each head (`hf_rows`); A acts on the
//! unpermuted input, so only the rows of q/k's B (and of their gradients) move.

use std::collections::{BTreeMap, HashMap};

use super::adapter::{module_path, Adapter, Module};
use super::hf_rows::{rows_from_hf, rows_to_hf};
use super::real::Real;
use super::{LoraConfig, Target};
use crate::config::Config;
use crate::error::{Error, Result};

/// The two files of a PEFT adapter directory.
#[derive(Debug, Clone, PartialEq)]
pub struct PeftFiles {
    /// `adapter_config.json`.
    pub config_json: String,
    /// `adapter_model.safetensors`.
    pub safetensors: Vec<u8>,
}

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// PEFT's on-disk key of a module's `lora_A` (`which = 'A'`) or `lora_B` weight.
pub fn peft_key(layer: usize, t: Target, which: char) -> String {
    format!("base_model.model.{}.lora_{which}.weight", module_path(layer, t))
}

/// One tensor under its PEFT key, HF layout, f32.
#[derive(Debug, Clone, PartialEq)]
pub struct HfTensor {
    pub key: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// An adapter's (or a gradient's) tensors as PEFT names and lays them out, sorted by key.
pub fn hf_tensors<F: Real>(ad: &Adapter<F>) -> Vec<HfTensor> {
    let r = ad.config.r;
    let mut out = Vec::new();
    for m in &ad.modules {
        let (o, i) = m.target.shape(&ad.base);
        let b = rows_to_hf(&m.b, m.target, &ad.base, r);
        let f32s = |v: &[F]| v.iter().map(|x| x.to_f64() as f32).collect();
        out.push(HfTensor { key: peft_key(m.layer, m.target, 'A'), shape: vec![r, i], data: f32s(&m.a) });
        out.push(HfTensor { key: peft_key(m.layer, m.target, 'B'), shape: vec![o, r], data: f32s(&b) });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// The two PEFT files of an adapter; `base_model` goes into `base_model_name_or_path`.
pub fn write_peft(ad: &Adapter, base_model: &str) -> Result<PeftFiles> {
    let tensors = hf_tensors(ad);
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let mut views = Vec::new();
    for (t, b) in tensors.iter().zip(&bytes) {
        let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), b)
            .map_err(|e| Error::InvalidSetting(format!("adapter tensor {}: {e}", t.key)))?;
        views.push((t.key.clone(), v));
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let safetensors =
        safetensors::serialize(views, Some(meta)).map_err(|e| Error::InvalidSetting(format!("writing the adapter: {e}")))?;
    Ok(PeftFiles { config_json: config_json(&ad.config, base_model), safetensors })
}

/// `adapter_config.json` with the fields PEFT's `LoraConfig` reads.
fn config_json(c: &LoraConfig, base_model: &str) -> String {
    let targets: Vec<&str> = c.targets.iter().map(|t| t.peft_name()).collect();
    let v = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": c.r,
        "lora_alpha": c.alpha,
        "target_modules": targets,
        "use_rslora": c.rslora,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": false,
        "use_dora": false,
        "init_lora_weights": true,
        "inference_mode": true,
        "modules_to_save": null,
        "layers_to_transform": null,
        "layers_pattern": null,
        "rank_pattern": {},
        "alpha_pattern": {},
        "revision": null,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// Reads a PEFT adapter for a model of shape `base`. `files` names the config and the weights
/// in errors. Wrong shapes for this model are `Mismatch`; anything else wrong is an adapter error.
pub fn read_peft(config_json: &[u8], safetensors: &[u8], base: &Config, files: [&str; 2]) -> Result<Adapter> {
    let config = parse_config(config_json, files[0])?;
    let mut tensors = read_tensors(safetensors, files[1])?;
    check_keys(&tensors, &config, base, files[1])?;
    let mut modules = Vec::new();
    for layer in 0..base.n_layers {
        for &target in &config.targets {
            let (out, n_in) = target.shape(base);
            let mut take = |which: char, shape: [usize; 2]| {
                let key = peft_key(layer, target, which);
                let (got, data) =
                    tensors.remove(&key).ok_or_else(|| Error::adapter(files[1], format!("tensor `{key}` is missing")))?;
                check_shape(&key, &got, shape, config.r, which, files[1])?;
                Ok::<_, Error>(data)
            };
            let a = take('A', [config.r, n_in])?;
            let b = take('B', [out, config.r])?;
            let b = rows_from_hf(&b, target, base, config.r);
            modules.push(Module { layer, target, a, b });
        }
    }
    Ok(Adapter { config, base: *base, modules })
}

/// Every key must name a targeted module of a layer the model has.
fn check_keys(tensors: &Tensors, c: &LoraConfig, base: &Config, file: &str) -> Result<()> {
    for key in tensors.keys() {
        let Some((layer, target)) = parse_key(key) else {
            return Err(Error::adapter(
                file,
                format!("unexpected tensor `{key}` (only LoRA A/B weights of Llama projections are supported)"),
            ));
        };
        if layer >= base.n_layers {
            return Err(Error::Mismatch(format!(
                "{file}: `{key}` is for layer {layer}, but the model has {} layers: the adapter was made for another model",
                base.n_layers
            )));
        }
        if !c.targets.contains(&target) {
            return Err(Error::adapter(
                file,
                format!("`{key}` adapts {}, which adapter_config.json does not target", target.peft_name()),
            ));
        }
    }
    Ok(())
}

/// `(layer, target)` of a PEFT key, or `None` if it is not a LoRA A/B key.
fn parse_key(key: &str) -> Option<(usize, Target)> {
    let rest = key.strip_prefix("base_model.model.model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, which) = rest.rsplit_once(".lora_")?;
    if which != "A.weight" && which != "B.weight" {
        return None;
    }
    let (block, name) = module.split_once('.')?;
    let t = Target::parse(name).filter(|t| t.peft_name() == name)?;
    (t.hf_block() == block).then_some((layer, t))
}

fn check_shape(key: &str, got: &[usize], want: [usize; 2], r: usize, which: char, file: &str) -> Result<()> {
    if got == want {
        return Ok(());
    }
    let rank = match (which, got) {
        ('A', [rank, _]) | ('B', [_, rank]) => Some(*rank),
        _ => None,
    };
    match rank {
        None => Err(Error::adapter(file, format!("`{key}` has shape {got:?}; a LoRA weight is a matrix"))),
        Some(rank) if rank != r => {
            Err(Error::adapter(file, format!("`{key}` has shape {got:?}, rank {rank}, but adapter_config.json says r = {r}")))
        }
        Some(_) => Err(Error::Mismatch(format!(
            "{file}: `{key}` has shape {got:?} but this model needs {want:?}: the adapter was made for another model"
        ))),
    }
}

/// The adapter settings from `adapter_config.json`; refuses features this engine lacks.
fn parse_config(json: &[u8], file: &str) -> Result<LoraConfig> {
    let bad = |what: String| Error::adapter(file, what);
    let v: serde_json::Value = serde_json::from_slice(json).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| bad("must be a JSON object".into()))?;
    let field = |k: &str| obj.get(k).filter(|v| !v.is_null());
    if let Some(t) = field("peft_type") {
        if t.as_str() != Some("LORA") {
            return Err(bad(format!("peft_type is {t}; only LORA adapters are supported")));
        }
    }
    let r = field("r").and_then(|v| v.as_u64()).ok_or_else(|| bad("`r` (the rank) must be a positive integer".into()))?;
    let alpha = match field("lora_alpha") {
        None => 8.0, // PEFT's default
        Some(a) => a.as_f64().ok_or_else(|| bad(format!("lora_alpha {a} is not a number")))?,
    };
    let rslora = field("use_rslora").and_then(|v| v.as_bool()).unwrap_or(false);
    let targets = parse_target_modules(field("target_modules")).map_err(bad)?;
    check_unsupported(obj).map_err(bad)?;
    LoraConfig::new(r as usize, alpha, rslora, targets).map_err(|e| bad(e.to_string()))
}

fn parse_target_modules(v: Option<&serde_json::Value>) -> std::result::Result<Vec<Target>, String> {
    let names: Vec<&str> = match v {
        Some(serde_json::Value::String(s)) if s == "all-linear" => return Ok(Target::ALL.to_vec()),
        Some(serde_json::Value::String(s)) => vec![s.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().map(|x| x.as_str().unwrap_or("?")).collect(),
        _ => return Err("target_modules must list the adapted projections".into()),
    };
    names
        .iter()
        .map(|n| {
            Target::parse(n).filter(|t| t.peft_name() == *n).ok_or_else(|| {
                format!("unknown target module `{n}`; supported: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj")
            })
        })
        .collect()
}

/// PEFT options that change the math or the files in ways this engine does not implement.
fn check_unsupported(obj: &serde_json::Map<String, serde_json::Value>) -> std::result::Result<(), String> {
    let set = |k: &str| match obj.get(k) {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => false,
        Some(serde_json::Value::Object(m)) => !m.is_empty(),
        Some(serde_json::Value::Array(a)) => !a.is_empty(),
        Some(serde_json::Value::String(s)) => !(s.is_empty() || (k == "bias" && s == "none")),
        Some(_) => true,
    };
    for k in [
        "use_dora",
        "fan_in_fan_out",
        "bias",
        "rank_pattern",
        "alpha_pattern",
        "layers_to_transform",
        "modules_to_save",
        "lora_bias",
    ] {
        if set(k) {
            return Err(format!("`{k}` is set; this engine supports plain LoRA only"));
        }
    }
    Ok(())
}

/// A file's tensors by key: shape and values.
pub(crate) type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// All tensors of a safetensors file as f32 (F32, F16, BF16 and F64 accepted), refusing
/// non-finite values.
pub(crate) fn read_tensors(bytes: &[u8], file: &str) -> Result<Tensors> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| Error::adapter(file, format!("not a valid safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (key, view) in st.tensors() {
        let data = to_f32(view.dtype(), view.data()).ok_or_else(|| {
            Error::adapter(file, format!("`{key}` has dtype {:?}; expected F32, F16, BF16 or F64", view.dtype()))
        })?;
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::adapter(file, format!("`{key}` holds a non-finite value ({}) at index {i}", data[i])));
        }
        out.insert(key, (view.shape().to_vec(), data));
    }
    Ok(out)
}

fn to_f32(dtype: safetensors::Dtype, b: &[u8]) -> Option<Vec<f32>> {
    use safetensors::Dtype;
    Some(match dtype {
        Dtype::F32 => b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F64 => b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()) as f32).collect(),
        Dtype::BF16 => b.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect(),
        Dtype::F16 => b.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
        _ => return None,
    })
}

/// IEEE half to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}
