//! A GGUF file of a `llama` model: `llama.*` metadata → `Config`, tensors → `QuantWeights` (F16,
//! BF16 and quantized matrices kept in their type, norms and F32 in f32)
//! (llama.cpp already stores q/k in the engine's RoPE order), tokenizer metadata → `Tokenizer`.

use std::collections::BTreeMap;

use super::gguf::{Gguf, Value};
use super::{llama, Opened, MAX_CONTEXT};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::memory;
use crate::quant::{dequantize, DType};
use crate::quant_weights::{BlockMatrix, Matrix, Q8Matrix};
use crate::tokenizer::Tokenizer;
use crate::weights::{tensor_specs, Tensor};

pub fn read(data: &[u8], file: &str) -> Result<Opened> {
    let g = Gguf::parse(data, file)?;
    let (config, file_context) = config(&g, file)?;
    let mut types: BTreeMap<&'static str, usize> = BTreeMap::new();
    let fetch = |t: Tensor, l: usize, shape: &[usize]| -> Result<Matrix> {
        let name = llama::gguf_name(t, l);
        let info = g.tensor(&name).ok_or_else(|| Error::model(file, format!("has no tensor {name}")))?;
        // GGUF lists dimensions innermost first.
        let dims: Vec<usize> = info.dims.iter().rev().map(|&d| d as usize).collect();
        if dims != shape {
            return Err(Error::model(file, format!("tensor {name} has shape {dims:?}; the metadata implies {shape:?}")));
        }
        *types.entry(info.dtype.name()).or_default() += 1;
        Ok(match kept(info.dtype, shape) {
            Kept::Q8 => Matrix::Q8(Q8Matrix::from_ggml(g.bytes(info))),
            Kept::Blocks => Matrix::Blocks(BlockMatrix { dtype: info.dtype, data: g.bytes(info).to_vec() }),
            Kept::F32 => {
                let mut out = Vec::new();
                dequantize(info.dtype, g.bytes(info), &mut out);
                Matrix::F32(out)
            }
        })
    };
    memory::check_model(file, held_bytes(&g, &config), &config)?;
    let weights = llama::assemble(config, fetch)?;
    let tokenizer = match g.get("tokenizer.ggml.tokens") {
        Some(_) => Some(Tokenizer::from_gguf(&g, file)?.with_specials(config.bos_id, config.eos_id)),
        None => None,
    };
    if let Some(t) = &tokenizer {
        t.check_vocab(config.vocab_size, file, file)?;
    }
    let mut by_count: Vec<_> = types.into_iter().collect();
    by_count.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let names: Vec<String> = by_count.iter().map(|(t, n)| format!("{t} ×{n}")).collect();
    let format = format!("GGUF v{}, {}", g.version, names.join(", "));
    Ok(Opened { weights, tokenizer, format, file_context })
}

/// How a tensor is held.
enum Kept {
    /// `Q8Matrix`: int8 values and an f32 scale per 32.
    Q8,
    /// The file's bytes (the CPU's `blocks` kernels; F16 and BF16 are blocks of one value).
    Blocks,
    F32,
}

/// Matrices stay in their type when their rows are whole blocks; norms, F32 and anything else
/// become f32.
fn kept(t: DType, shape: &[usize]) -> Kept {
    let whole_rows = shape.len() == 2 && shape[1].is_multiple_of(t.block().0);
    match t {
        DType::F32 => Kept::F32,
        DType::Q8_0 if whole_rows => Kept::Q8,
        _ if whole_rows => Kept::Blocks,
        _ => Kept::F32,
    }
}

/// Bytes the model's tensors will take held as `kept` says, from the header alone, up to the
/// first missing tensor (tensors missing or misshapen are refused later, by the reader).
fn held_bytes(g: &Gguf, c: &Config) -> u64 {
    let mut held = 0u64;
    for spec in tensor_specs(c) {
        let shape = llama::shape(c, spec.tensor);
        for l in 0..spec.blocks {
            // The reader refuses a file at its first missing tensor: no need to look further
            // (a forged layer count of 65,535 made this loop look up every name; found by fuzzing).
            let Some(info) = g.tensor(&llama::gguf_name(spec.tensor, l)) else { return held };
            let n = info.elements();
            held = held.saturating_add(match kept(info.dtype, &shape) {
                Kept::Q8 => n + 4 * (n / 32),
                Kept::Blocks => (info.end - info.start) as u64,
                Kept::F32 => 4 * n,
            });
        }
    }
    held
}

fn config(g: &Gguf, file: &str) -> Result<(Config, usize)> {
    let bad = |what: String| Error::model(file, what);
    let arch = g.get("general.architecture").and_then(Value::as_str).unwrap_or("(none)");
    if arch != "llama" {
        return Err(bad(format!("architecture `{arch}` is not a Llama model this lab can run")));
    }
    let int = |key: &str| -> Result<Option<usize>> {
        match g.get(&format!("llama.{key}")) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|&n| n > 0 && n <= u32::MAX as u64)
                .map(|n| Some(n as usize))
                .ok_or_else(|| bad(format!("llama.{key} is {v:?}, not a positive count"))),
        }
    };
    let need = |key: &str| int(key)?.ok_or_else(|| bad(format!("has no llama.{key}")));
    let float = |key: &str, default: f32| g.get(&format!("llama.{key}")).and_then(Value::as_f64).map_or(default, |v| v as f32);
    let (dim, n_heads) = (need("embedding_length")?, need("attention.head_count")?);
    let head_dim = match int("attention.key_length")? {
        Some(k) => k,
        None if dim.is_multiple_of(n_heads) => dim / n_heads,
        None => return Err(bad(format!("attention.head_count {n_heads} does not divide embedding_length {dim}"))),
    };
    if int("attention.value_length")?.is_some_and(|v| v != head_dim) {
        return Err(bad("value heads of another width than key heads are not supported".into()));
    }
    if int("rope.dimension_count")?.is_some_and(|r| r != head_dim) {
        return Err(bad("RoPE on part of each head (rope.dimension_count ≠ head width) is not supported".into()));
    }
    let vocab = match int("vocab_size")? {
        Some(v) => v,
        None => g.get("tokenizer.ggml.tokens").and_then(Value::as_array).map(<[Value]>::len).unwrap_or(0),
    };
    let file_context = need("context_length")?;
    let id = |key: &str| g.get(key).and_then(Value::as_u64).map(|v| v as u32);
    let mut c = Config {
        dim,
        hidden_dim: need("feed_forward_length")?,
        n_layers: need("block_count")?,
        n_heads,
        n_kv_heads: int("attention.head_count_kv")?.unwrap_or(n_heads),
        vocab_size: vocab,
        seq_len: file_context.min(MAX_CONTEXT),
        shared_classifier: g.tensor("output.weight").is_none(),
        head_dim,
        rope_theta: float("rope.freq_base", 10000.0),
        rope_scaling: None,
        norm_eps: float("attention.layer_norm_rms_epsilon", 1e-5),
        bos_id: id("tokenizer.ggml.bos_token_id").unwrap_or(1),
        eos_id: id("tokenizer.ggml.eos_token_id"),
    };
    if let Some(t) = g.get("llama.rope.scaling.type").and_then(Value::as_str).filter(|t| *t != "none") {
        return Err(bad(format!("RoPE scaling `{t}` is not supported (llama3's rope_freqs is)")));
    }
    c.validate().map_err(bad)?;
    if let Some(info) = g.tensor("rope_freqs.weight") {
        if info.dtype != DType::F32 || info.elements() != (head_dim / 2) as u64 {
            return Err(bad(format!("rope_freqs.weight must be {} F32 values", head_dim / 2)));
        }
        let mut d = Vec::new();
        dequantize(DType::F32, g.bytes(info), &mut d);
        c.rope_scaling = llama::llama3_from_divisors(&c, &d, file_context as f32, file)?;
    }
    Ok((c, file_context))
}
