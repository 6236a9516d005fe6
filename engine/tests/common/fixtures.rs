//! Comparisons and fixture decoding shared by the engine's and the CLI's integration tests
//! (the CLI's tests include this file by path).
#![allow(dead_code)]

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// A tensor of a safetensors file: shape and values (int32 as f32).
pub fn tensor(bytes: &[u8], key: &str) -> (Vec<usize>, Vec<f32>) {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let t = st.tensor(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    let vals = match t.dtype() {
        safetensors::Dtype::F32 => t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        safetensors::Dtype::I32 => t.data().chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
        d => panic!("{key}: dtype {d:?}"),
    };
    (t.shape().to_vec(), vals)
}

/// The larger of `m` and `v`, NaN if either is (`f32::max` skips a NaN, so a NaN result would
/// pass every `<= tolerance` check).
pub fn nan_max(m: f32, v: f32) -> f32 {
    if m.is_nan() || v.is_nan() {
        f32::NAN
    } else {
        m.max(v)
    }
}

/// Largest |x|; NaN if any x is NaN.
pub fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, v| nan_max(m, v.abs()))
}

/// Largest |a − b|; NaN if any difference is.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length");
    a.iter().zip(b).fold(0f32, |m, (x, y)| nan_max(m, (x - y).abs()))
}

/// One seeded run printed by llama2.c's `run.c` (shared/data/reference/sampling_run_c/).
pub struct RunC {
    pub name: String,
    pub temperature: f32,
    pub topp: f32,
    pub seed: u64,
    pub steps: usize,
    /// Empty: no prompt (BOS only).
    pub prompt: String,
}

/// The cases of `sampling_run_c/cases.psv` (`name|temperature|topp|seed|steps|prompt`).
pub fn run_c_cases(psv: &str) -> Vec<RunC> {
    psv.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(6, '|').collect();
            assert_eq!(f.len(), 6, "cases.psv line `{l}`");
            RunC {
                name: f[0].to_string(),
                temperature: f[1].parse().unwrap(),
                topp: f[2].parse().unwrap(),
                seed: f[3].parse().unwrap(),
                steps: f[4].parse().unwrap(),
                prompt: f[5].to_string(),
            }
        })
        .collect()
}

/// The SHA-256 of a v0 file without its two RoPE tables (whose last bits depend on the cos/sin
/// library), as random_models_sha256.json gives it.
pub fn sha256_without_rope_tables(c: &tinylm_engine::Config, file: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let classifier = if c.shared_classifier { 0 } else { c.vocab_size * c.dim };
    let rope_at = 28 + 4 * (c.n_params() as usize - classifier);
    let rope_len = 4 * c.seq_len * c.head_size();
    let digest = Sha256::new().chain_update(&file[..rope_at]).chain_update(&file[rope_at + rope_len..]).finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Logits of `tokens` at every position, and `n` greedy tokens after them.
pub fn greedy_run(b: &mut dyn tinylm_engine::generate::Backend, tokens: &[u32], n: usize) -> (Vec<f32>, Vec<u32>) {
    let mut logits = Vec::new();
    let mut last = Vec::new();
    for (pos, &t) in tokens.iter().enumerate() {
        last = b.forward(t, pos).unwrap().to_vec();
        logits.extend_from_slice(&last);
    }
    let mut out = Vec::new();
    for pos in tokens.len()..tokens.len() + n {
        let next = tinylm_engine::sampler::argmax(&last) as u32;
        out.push(next);
        last = b.forward(next, pos).unwrap().to_vec();
    }
    (logits, out)
}
