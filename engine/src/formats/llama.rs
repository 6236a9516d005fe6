//! What GGUF and Hugging Face Llama files share: the tensor each engine tensor comes from, its
//! expected shape, assembling the tensors from any source, the RoPE row order, and reading
//! llama.cpp's `rope_freqs` table back as llama3 scaling.

use crate::config::{Config, Llama3Rope};
use crate::error::{Error, Result};
use crate::quant_weights::{Matrix, QuantWeights};
use crate::weights::{tensor_specs, Tensor};

/// The row-major shape `[rows, cols]` (or `[n]`) of one layer's (or the whole) `t`.
pub fn shape(c: &Config, t: Tensor) -> Vec<usize> {
    let (d, h, kv, q, v) = (c.dim, c.hidden_dim, c.kv_dim(), c.q_dim(), c.vocab_size);
    match t {
        Tensor::TokEmbeddings | Tensor::Wcls => vec![v, d],
        Tensor::RmsAtt | Tensor::RmsFfn | Tensor::RmsFinal => vec![d],
        Tensor::Wq => vec![q, d],
        Tensor::Wk | Tensor::Wv => vec![kv, d],
        Tensor::Wo => vec![d, q],
        Tensor::W1 | Tensor::W3 => vec![h, d],
        Tensor::W2 => vec![d, h],
    }
}

/// Hugging Face's name of `t` (layer `l` for layer tensors).
pub fn hf_name(t: Tensor, l: usize) -> String {
    let layer = |s: &str| format!("model.layers.{l}.{s}.weight");
    match t {
        Tensor::TokEmbeddings => "model.embed_tokens.weight".into(),
        Tensor::RmsAtt => layer("input_layernorm"),
        Tensor::Wq => layer("self_attn.q_proj"),
        Tensor::Wk => layer("self_attn.k_proj"),
        Tensor::Wv => layer("self_attn.v_proj"),
        Tensor::Wo => layer("self_attn.o_proj"),
        Tensor::RmsFfn => layer("post_attention_layernorm"),
        Tensor::W1 => layer("mlp.gate_proj"),
        Tensor::W2 => layer("mlp.down_proj"),
        Tensor::W3 => layer("mlp.up_proj"),
        Tensor::RmsFinal => "model.norm.weight".into(),
        Tensor::Wcls => "lm_head.weight".into(),
    }
}

/// llama.cpp's GGUF name of `t`.
pub fn gguf_name(t: Tensor, l: usize) -> String {
    let layer = |s: &str| format!("blk.{l}.{s}.weight");
    match t {
        Tensor::TokEmbeddings => "token_embd.weight".into(),
        Tensor::RmsAtt => layer("attn_norm"),
        Tensor::Wq => layer("attn_q"),
        Tensor::Wk => layer("attn_k"),
        Tensor::Wv => layer("attn_v"),
        Tensor::Wo => layer("attn_output"),
        Tensor::RmsFfn => layer("ffn_norm"),
        Tensor::W1 => layer("ffn_gate"),
        Tensor::W2 => layer("ffn_down"),
        Tensor::W3 => layer("ffn_up"),
        Tensor::RmsFinal => "output_norm.weight".into(),
        Tensor::Wcls => "output.weight".into(),
    }
}

/// Builds the model's tensors from `fetch(tensor, layer, shape)`, which returns that layer's piece
/// as kept (its shape already checked against `shape`); a tensor's layers are joined as
/// `Matrix::join` joins them.
pub fn assemble(c: Config, mut fetch: impl FnMut(Tensor, usize, &[usize]) -> Result<Matrix>) -> Result<QuantWeights> {
    let mut tensors = Vec::new();
    for spec in tensor_specs(&c) {
        // Grown from what the file holds, never reserved from the header's sizes: a forged
        // shape must not allocate before its tensors are found (found by fuzzing).
        let shape = shape(&c, spec.tensor);
        let pieces = (0..spec.blocks).map(|l| fetch(spec.tensor, l, &shape)).collect::<Result<Vec<_>>>()?;
        tensors.push(Matrix::join(pieces));
    }
    Ok(QuantWeights::from_tensors(c, tensors))
}

/// Hugging Face's rotate-half rows of q or k (`[heads · hs, cols]`, of any element: f32 values or
/// the bytes of F16 rows) in the engine's interleaved order: within each head, row `2i` is HF's
/// row `i` and row `2i+1` is HF's `i + hs/2`.
pub fn interleave<T: Copy>(w: &[T], hs: usize, cols: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(w.len());
    for head in w.chunks_exact(hs * cols) {
        for i in 0..hs / 2 {
            out.extend_from_slice(&head[i * cols..(i + 1) * cols]);
            out.extend_from_slice(&head[(i + hs / 2) * cols..(i + hs / 2 + 1) * cols]);
        }
    }
    out
}

/// `interleave`'s inverse (for writing Hugging Face files).
pub fn rotate_half(w: &[f32], hs: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.len());
    for head in w.chunks_exact(hs * cols) {
        for half in 0..2 {
            for i in 0..hs / 2 {
                out.extend_from_slice(&head[(2 * i + half) * cols..(2 * i + half + 1) * cols]);
            }
        }
    }
    out
}

/// llama.cpp's `rope_freqs` divisors for a config with llama3 scaling (what `Config::rope_freqs`
/// divides each pair's frequency by).
pub fn rope_divisors(c: &Config) -> Option<Vec<f32>> {
    let r = c.rope_scaling?;
    let plain = Config { rope_scaling: None, ..*c }.rope_freqs();
    Some(plain.iter().map(|&f| r.divisor(f)).collect())
}

/// The llama3 scaling that gives llama.cpp's per-pair divisor table `d` (a GGUF's
/// `rope_freqs.weight`), checked by recomputing every divisor. The table fixes the scaling only
/// up to the choice of the original context, so `context` is used for it.
pub fn llama3_from_divisors(c: &Config, d: &[f32], context: f32, file: &str) -> Result<Option<Llama3Rope>> {
    let bad = || Error::model(file, "rope_freqs.weight does not follow Llama 3's frequency scaling; this lab cannot run it");
    let freqs = Config { rope_scaling: None, ..*c }.rope_freqs();
    if d.len() != freqs.len() || d.iter().any(|v| !v.is_finite() || *v < 1.0 - 1e-6) {
        return Err(bad());
    }
    let factor = d.iter().fold(1f32, |m, &v| m.max(v));
    if factor <= 1.0 + 1e-6 {
        return Ok(None);
    }
    // s = a·x + b with x = 1/wavelength: s ≥ 1 keeps a frequency, s ≤ 0 divides it by factor,
    // between blends; HF's parameters are a = L/(hf − lf), b = −lf/(hf − lf) for context L.
    let x: Vec<f32> = freqs.iter().map(|f| f / (2.0 * std::f32::consts::PI)).collect();
    let s_of = |v: f32| (1.0 / v - 1.0 / factor) / (1.0 - 1.0 / factor);
    let near = |v: f32, t: f32| (v - t).abs() <= 1e-5 * t;
    let mid: Vec<usize> = (0..d.len()).filter(|&i| !near(d[i], 1.0) && !near(d[i], factor)).collect();
    let lo = (0..d.len()).filter(|&i| near(d[i], factor)).map(|i| x[i]).fold(0f32, f32::max);
    let hi = (0..d.len()).filter(|&i| near(d[i], 1.0)).map(|i| x[i]).fold(f32::INFINITY, f32::min);
    let (a, b) = match mid.as_slice() {
        [] if hi.is_finite() => (1.0 / (hi - lo), -lo / (hi - lo)),
        [] => (1.0 / lo.max(f32::MIN_POSITIVE), -2.0),
        [i] => {
            let (xi, si) = (x[*i], s_of(d[*i]));
            let mut a = 2.0 * si / xi;
            if hi.is_finite() {
                a = a.max((1.0 - si) / (hi - xi) * 1.01);
            }
            if lo > 0.0 {
                a = a.max(si / (xi - lo) * 1.01);
            }
            (a, si - a * xi)
        }
        [i, .., j] => {
            let a = (s_of(d[*j]) - s_of(d[*i])) / (x[*j] - x[*i]);
            (a, s_of(d[*i]) - a * x[*i])
        }
    };
    let (low, high) = (-b / a * context, (1.0 - b) / a * context);
    let r = Llama3Rope { factor, low_freq_factor: low, high_freq_factor: high, original_context: context };
    let ok = low > 0.0 && high > low && freqs.iter().zip(d).all(|(&f, &want)| (r.divisor(f) - want).abs() <= 1e-4 * want);
    if ok {
        Ok(Some(r))
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_pairs_rotate_half_rows() {
        // Two heads of 4 rows, 1 column: HF [a0 a1 b0 b1] per head becomes [a0 b0 a1 b1].
        let w: Vec<f32> = (0..8).map(|v| v as f32).collect();
        assert_eq!(interleave(&w, 4, 1), vec![0., 2., 1., 3., 4., 6., 5., 7.]);
        assert_eq!(rotate_half(&interleave(&w, 4, 1), 4, 1), w);
    }

    #[test]
    fn llama3_scaling_survives_the_divisor_table() {
        for (hd, theta, ctx) in [(24, 5e5, 32.0), (64, 5e5, 8192.0), (128, 5e5, 8192.0), (16, 1e4, 64.0)] {
            let mut c = Config::llama2c([hd * 2, 8, 1, 2, 1, 8, 64], true);
            c.rope_theta = theta;
            c.rope_scaling = Some(Llama3Rope { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_context: ctx });
            let d = rope_divisors(&c).unwrap();
            let r = llama3_from_divisors(&c, &d, 1000.0, "t").unwrap().unwrap();
            let back = Config { rope_scaling: Some(r), ..c };
            for (a, b) in back.rope_freqs().iter().zip(c.rope_freqs()) {
                assert!((a - b).abs() <= 1e-4 * b, "hd {hd}: {a} vs {b}");
            }
        }
    }
}
