//! One model quantized several ways, built from the four quantized GGUF fixtures (the same model
//! in each): held Q8_0 beside Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K blocks, so stacked q|k|v and
//! w1|w3 chunks hold several types, as a real SmolLM2 Q4_K_M file does. No file access, so the
//! wasm tests include it too (`tests/gpu_browser.rs`, by path).

use tinylm_engine::quant_weights::{Matrix, QuantWeights};
use tinylm_engine::weights::{tensor_specs, Tensor};
use tinylm_engine::LoadedModel;

/// The mix from the opened `quant.q8_0`, `quant.q4_0`, `quant.q4_k_m` and `quant.q5_mix` fixtures.
pub fn held_q8_among_blocks(q8: &LoadedModel, q4: &LoadedModel, km: &LoadedModel, q5: &LoadedModel) -> QuantWeights {
    let from = |m: &LoadedModel, t| m.quantized().unwrap().matrix(t).clone();
    let base = q8.quantized().unwrap();
    let tensors = tensor_specs(&base.config)
        .iter()
        .map(|s| match s.tensor {
            Tensor::RmsAtt => Matrix::F32(base.rms_att.clone()),
            Tensor::RmsFfn => Matrix::F32(base.rms_ffn.clone()),
            Tensor::RmsFinal => Matrix::F32(base.rms_final.clone()),
            Tensor::Wq => from(q4, Tensor::Wq),
            Tensor::Wk | Tensor::W2 => from(km, s.tensor),
            Tensor::W1 | Tensor::W3 | Tensor::Wo => from(q5, s.tensor),
            t => from(q8, t),
        })
        .collect();
    QuantWeights::from_tensors(base.config, tensors)
}
