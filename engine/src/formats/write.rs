//! Writing models as GGUF (v3, llama metadata, a llama2.c tokenizer as `llama` tokenizer
//! metadata) and as a Hugging Face folder (config.json + model.safetensors), for `tinylm convert`.

use std::collections::HashMap;

use super::llama::{gguf_name, hf_name, rope_divisors, rotate_half};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::quant::{quantize, DType};
use crate::tokenizer::Tokenizer;
use crate::weights::{tensor_specs, Tensor, Weights};

const ALIGNMENT: usize = 32;

/// Each tensor of `w` per layer, as (tensor, layer, row-major shape, values in the engine's order).
fn layers(w: &Weights) -> Vec<(Tensor, usize, Vec<usize>, &[f32])> {
    let c = &w.config;
    let mut out = Vec::new();
    for spec in tensor_specs(c) {
        let shape = super::llama::shape(c, spec.tensor);
        for (l, block) in w.get(spec.tensor).chunks(spec.per_layer).enumerate() {
            out.push((spec.tensor, l, shape.clone(), block));
        }
    }
    out
}

struct GgufOut {
    buf: Vec<u8>,
    kvs: u64,
}

impl GgufOut {
    fn str(&mut self, s: &str) {
        self.buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
        self.buf.extend_from_slice(s.as_bytes());
    }
    fn key(&mut self, k: &str, ty: u32) {
        self.kvs += 1;
        self.str(k);
        self.buf.extend_from_slice(&ty.to_le_bytes());
    }
    fn u32(&mut self, k: &str, v: u32) {
        self.key(k, 4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, k: &str, v: f32) {
        self.key(k, 6);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn bool(&mut self, k: &str, v: bool) {
        self.key(k, 7);
        self.buf.push(v as u8);
    }
    fn text(&mut self, k: &str, v: &str) {
        self.key(k, 8);
        self.str(v);
    }
    fn array(&mut self, k: &str, ty: u32, n: usize) {
        self.key(k, 9);
        self.buf.extend_from_slice(&ty.to_le_bytes());
        self.buf.extend_from_slice(&(n as u64).to_le_bytes());
    }
}

/// GGUF v3 of `w` with matrices stored as `dtype` (norms F32), and `tok`'s vocabulary when it
/// is a llama2.c tokenizer.
pub fn gguf(w: &Weights, dtype: DType, tok: Option<&Tokenizer>, name: &str) -> Result<Vec<u8>> {
    let c = &w.config;
    let mut m = GgufOut { buf: Vec::new(), kvs: 0 };
    m.text("general.architecture", "llama");
    m.text("general.name", name);
    for (k, v) in [
        ("context_length", c.seq_len),
        ("embedding_length", c.dim),
        ("block_count", c.n_layers),
        ("feed_forward_length", c.hidden_dim),
        ("attention.head_count", c.n_heads),
        ("attention.head_count_kv", c.n_kv_heads),
        ("rope.dimension_count", c.head_dim),
        ("attention.key_length", c.head_dim),
        ("attention.value_length", c.head_dim),
        ("vocab_size", c.vocab_size),
    ] {
        m.u32(&format!("llama.{k}"), v as u32);
    }
    m.f32("llama.rope.freq_base", c.rope_theta);
    m.f32("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
    if let Some(t) = tok.filter(|t| !t.is_hf()) {
        llama_tokenizer(&mut m, t, c);
    }
    // Tensors: infos then data, each at an aligned offset.
    let mut tensors: Vec<(String, Vec<usize>, DType, Vec<u8>)> = Vec::new();
    for (t, l, shape, data) in layers(w) {
        // Rows that are not whole blocks of `dtype` fall back to F16, as llama.cpp's quantizer does.
        let ty = match shape.len() {
            1 => DType::F32,
            _ if shape[1] % dtype.block().0 != 0 => DType::F16,
            _ => dtype,
        };
        let bytes = quantize(ty, data).ok_or_else(|| {
            Error::InvalidSetting(format!(
                "{} rows of {} cannot be stored as {}",
                gguf_name(t, l),
                shape[shape.len() - 1],
                ty.name()
            ))
        })?;
        tensors.push((gguf_name(t, l), shape, ty, bytes));
    }
    if let Some(d) = rope_divisors(c) {
        let bytes = quantize(DType::F32, &d).expect("f32");
        tensors.push(("rope_freqs.weight".into(), vec![d.len()], DType::F32, bytes));
    }
    let mut info = GgufOut { buf: Vec::new(), kvs: 0 };
    let mut offset = 0usize;
    for (name, shape, ty, bytes) in &tensors {
        info.str(name);
        info.buf.extend_from_slice(&(shape.len() as u32).to_le_bytes());
        for d in shape.iter().rev() {
            info.buf.extend_from_slice(&(*d as u64).to_le_bytes());
        }
        info.buf.extend_from_slice(&ty.ggml_id().to_le_bytes());
        info.buf.extend_from_slice(&(offset as u64).to_le_bytes());
        offset = (offset + bytes.len()).div_ceil(ALIGNMENT) * ALIGNMENT;
    }
    let mut out = Vec::with_capacity(offset + m.buf.len() + info.buf.len() + 64);
    out.extend_from_slice(super::gguf::MAGIC);
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&m.kvs.to_le_bytes());
    out.extend_from_slice(&m.buf);
    out.extend_from_slice(&info.buf);
    for (_, _, _, bytes) in &tensors {
        out.resize(out.len().div_ceil(ALIGNMENT) * ALIGNMENT, 0);
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

/// A llama2.c tokenizer as GGUF `llama` tokenizer metadata: SentencePiece spelling (`▁` for
/// space, `<s>`/`</s>` for llama2.c's BOS/EOS pieces), scores, and token types.
fn llama_tokenizer(m: &mut GgufOut, t: &Tokenizer, c: &Config) {
    let n = t.vocab_size();
    let pieces: Vec<String> = (0..n as u32)
        .map(|id| match id {
            1 => "<s>".into(),
            2 => "</s>".into(),
            _ => String::from_utf8_lossy(t.piece(id).unwrap_or_default()).replace(' ', "\u{2581}"),
        })
        .collect();
    m.text("tokenizer.ggml.model", "llama");
    m.array("tokenizer.ggml.tokens", 8, n);
    for p in &pieces {
        m.str(p);
    }
    m.array("tokenizer.ggml.scores", 6, n);
    for id in 0..n as u32 {
        m.buf.extend_from_slice(&t.score(id).unwrap_or(0.0).to_le_bytes());
    }
    m.array("tokenizer.ggml.token_type", 5, n);
    for (id, p) in pieces.iter().enumerate() {
        // 1 normal, 2 unknown, 3 control, 6 byte.
        let ty: i32 = match id {
            0 => 2,
            1 | 2 => 3,
            _ if p.len() == 6 && p.starts_with("<0x") && p.ends_with('>') => 6,
            _ => 1,
        };
        m.buf.extend_from_slice(&ty.to_le_bytes());
    }
    m.u32("tokenizer.ggml.bos_token_id", c.bos_id);
    // llama2.c models end a story with BOS (run.c stops there): keep that as the EOS.
    m.u32("tokenizer.ggml.eos_token_id", c.stop_token());
    m.u32("tokenizer.ggml.unknown_token_id", 0);
    m.bool("tokenizer.ggml.add_bos_token", true);
    m.bool("tokenizer.ggml.add_eos_token", false);
}

/// A Hugging Face folder's `config.json` and `model.safetensors` (F32, F16 or BF16; q/k rows in
/// HF's rotate-half order).
pub fn hf_folder(w: &Weights, dtype: DType) -> Result<(String, Vec<u8>)> {
    let c = &w.config;
    let st_dtype = match dtype {
        DType::F32 => safetensors::Dtype::F32,
        DType::F16 => safetensors::Dtype::F16,
        DType::BF16 => safetensors::Dtype::BF16,
        t => return Err(Error::InvalidSetting(format!("safetensors holds F32, F16 or BF16, not {}", t.name()))),
    };
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (t, l, shape, data) in layers(w) {
        let data = match t {
            Tensor::Wq | Tensor::Wk => rotate_half(data, c.head_size(), c.dim),
            _ => data.to_vec(),
        };
        tensors.push((hf_name(t, l), shape, quantize(dtype, &data).expect("float types store any length")));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, s, b)| (n.clone(), safetensors::tensor::TensorView::new(st_dtype, s.clone(), b).expect("sizes match")))
        .collect();
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let st = safetensors::serialize(views, Some(meta)).map_err(|e| Error::InvalidSetting(e.to_string()))?;
    let rope_scaling = c.rope_scaling.map(|r| {
        serde_json::json!({"rope_type": "llama3", "factor": r.factor, "low_freq_factor": r.low_freq_factor,
            "high_freq_factor": r.high_freq_factor, "original_max_position_embeddings": r.original_context})
    });
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": c.dim, "intermediate_size": c.hidden_dim, "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads, "num_key_value_heads": c.n_kv_heads, "head_dim": c.head_dim,
        "vocab_size": c.vocab_size, "max_position_embeddings": c.seq_len, "rms_norm_eps": c.norm_eps,
        "rope_theta": c.rope_theta, "rope_scaling": rope_scaling, "tie_word_embeddings": c.shared_classifier,
        "bos_token_id": c.bos_id, "eos_token_id": c.eos_id.unwrap_or(c.bos_id),
        "attention_bias": false, "mlp_bias": false,
        "torch_dtype": match dtype { DType::F16 => "float16", DType::BF16 => "bfloat16", _ => "float32" },
    });
    Ok((serde_json::to_string_pretty(&config).expect("json") + "\n", st))
}
