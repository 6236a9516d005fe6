//! Deterministic random models (shared/docs/reference-models.md): any Llama shape, bit-identical
//! across implementations, so tests and benchmarks need no downloads.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::weights::{tensor_specs, Tensor, Weights};

pub fn fnv1a64(name: &str) -> u64 {
    let mut h = 0xCBF2_9CE4_8422_2325u64;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01B3);
    }
    h
}

/// Element `i` of the splitmix64 stream for `seed`.
pub fn splitmix64(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` values uniform in `center ± bound`, from the stream of `seed ^ fnv1a64(name)`.
pub fn det_uniform(seed: u64, name: &str, n: usize, bound: f64, center: f64) -> Vec<f32> {
    let s = seed ^ fnv1a64(name);
    (0..n as u64)
        .map(|i| {
            let u = (splitmix64(s, i) >> 40) as f64 / (1u64 << 24) as f64;
            (center + bound * (2.0 * u - 1.0)) as f32
        })
        .collect()
}

/// `[1] + [splitmix64(seed, i) mod vocab for i in 0..n-1]`.
pub fn random_tokens(seed: u64, n: usize, vocab: usize) -> Vec<u32> {
    let mut t = vec![crate::BOS];
    t.extend((0..n.saturating_sub(1) as u64).map(|i| (splitmix64(seed, i) % vocab as u64) as u32));
    t
}

/// (center, std) of each tensor in the recipe.
fn init(t: Tensor, c: &Config) -> (f64, f64) {
    let (d, h) = (c.dim as f64, c.hidden_dim as f64);
    match t {
        Tensor::TokEmbeddings | Tensor::Wcls => (0.0, 3.0 / d.sqrt()),
        Tensor::Wq => (0.0, 2.0 / d.sqrt()),
        Tensor::Wk | Tensor::Wv | Tensor::Wo | Tensor::W1 | Tensor::W3 => (0.0, 1.0 / d.sqrt()),
        Tensor::W2 => (0.0, 1.0 / h.sqrt()),
        Tensor::RmsAtt | Tensor::RmsFfn | Tensor::RmsFinal => (1.0, 0.2 / 3f64.sqrt()),
    }
}

/// The random model of shape `c` and `seed`.
pub fn random_weights(c: &Config, seed: u64) -> Result<Weights> {
    c.validate().map_err(Error::InvalidSetting)?;
    let tensors = tensor_specs(c)
        .iter()
        .map(|s| {
            let (center, std) = init(s.tensor, c);
            det_uniform(seed, s.tensor.name(), s.len, std * 3f64.sqrt(), center)
        })
        .collect();
    Ok(Weights::from_tensors(*c, tensors))
}

/// A named shape of the recipe: (config, seed).
pub fn named_shape(name: &str) -> Result<(Config, u64)> {
    let (h, shared, seed): ([i32; 7], bool, u64) = match name {
        "tiny64" => ([64, 172, 5, 8, 4, 512, 256], true, 260),
        "micro" => ([16, 40, 2, 2, 1, 64, 32], true, 21),
        "s15m" => ([288, 768, 6, 6, 6, 32000, 256], true, 15),
        "s42m" => ([512, 1376, 8, 8, 8, 32000, 1024], true, 42),
        "s110m" => ([768, 2048, 12, 12, 12, 32000, 1024], true, 110),
        // SmolLM2-135M's shape (GQA 9/3, tied), with a 512-token context.
        "smol135m" => ([576, 1536, 30, 9, 3, 49152, 512], true, 135),
        _ => return Err(Error::InvalidSetting(format!("unknown shape `{name}`; known: {}", SHAPES.join(", ")))),
    };
    Ok((Config::from_header(h, shared, name)?, seed))
}

pub const SHAPES: [&str; 6] = ["micro", "tiny64", "s15m", "s42m", "s110m", "smol135m"];

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M's config.json numbers, and the parameters they make (tied embeddings, by hand:
    /// 49152·576 + 30·(2·576² + 2·192·576 + 3·1536·576 + 2·576) + 576).
    #[test]
    fn smol135m_has_smollm2_135ms_shape() {
        let (c, _) = named_shape("smol135m").unwrap();
        assert_eq!((c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size), (576, 1536, 30, 9, 3, 49152));
        assert_eq!(c.n_params(), 134_515_008);
    }
}
