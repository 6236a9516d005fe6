//! Checkpoint formats and the deterministic random-model recipe.

use crate::common;
use common::{fixture, max_abs, max_diff};
use tinylm_engine::checkpoint::{self, Format};
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::randmodel::{det_uniform, fnv1a64, named_shape, random_tokens, random_weights, splitmix64};
use tinylm_engine::trace::inspect;
use tinylm_engine::weights::Tensor;
use tinylm_engine::Config;

/// Reference values computed by hand from the recipe in shared/docs/reference-models.md
/// (an independent Python transcription, arbitrary-precision integers masked to 64 bits).
#[test]
fn random_stream_fixed_values() {
    assert_eq!(fnv1a64("wq"), 0x08cb_4707_b56d_0e45);
    assert_eq!(fnv1a64("tok_embeddings"), 0xa082_3965_e393_a4b0);
    assert_eq!(splitmix64(21, 0), 0x06ca_0a95_b7e8_25c7);
    assert_eq!(splitmix64(21, 1), 0xea4f_ff29_25fe_d5bf);
    assert_eq!(splitmix64(21, 2), 0x8664_aefe_785e_c6bf);
    // micro: wq std 2/sqrt(16), bound std·√3.
    let bound = (2.0 / 16f64.sqrt()) * 3f64.sqrt();
    let wq = det_uniform(21, "wq", 4, bound, 0.0);
    let bits: Vec<u32> = wq.iter().map(|v| v.to_bits()).collect();
    assert_eq!(bits, [0xbdef8045, 0xbea283d2, 0x3eb112d7, 0xbe00e1c1]);
    assert_eq!(random_tokens(7, 6, 64), [1, 23, 28, 2, 11, 26]);
}

// The recipe against an independent implementation's hashes: tests/fast_kernels.rs (natively
// and in wasm).

#[test]
fn random_model_uses_recipe_and_is_reproducible() {
    let (c, seed) = named_shape("micro").unwrap();
    let a = random_weights(&c, seed).unwrap();
    let b = random_weights(&c, seed).unwrap();
    assert_eq!(a, b);
    let bits: Vec<u32> = a.rms_att[..3].iter().map(|v| v.to_bits()).collect();
    assert_eq!(bits, [0x3f4d44ad, 0x3f5549b5, 0x3f63982f]);
    assert!(a.rms_att.iter().all(|&v| (0.8..=1.2).contains(&v)));
    let other = random_weights(&c, seed + 1).unwrap();
    assert_ne!(a.wq, other.wq);
    assert_eq!(c.n_params(), a.tensors().iter().map(|(s, _)| s.len as u64).sum::<u64>());
}

#[test]
fn named_shapes_have_documented_sizes() {
    let (c, _) = named_shape("s15m").unwrap();
    assert_eq!((c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.vocab_size), (288, 768, 6, 6, 32000));
    // stories15M has 15.2M parameters (tied embeddings).
    assert_eq!(c.n_params(), 15_191_712);
    assert!(named_shape("s9000").is_err());
}

fn untied() -> tinylm_engine::Weights {
    random_weights(&Config::parse("32,64,2,4,2,50,16,untied").unwrap(), 3).unwrap()
}

#[test]
fn v0_v1_v0_round_trip_is_bitwise() {
    for w in [untied(), random_weights(&named_shape("micro").unwrap().0, 21).unwrap()] {
        let v0 = checkpoint::write_v0(&w);
        let (r0, f0) = checkpoint::read(&v0, "a.bin").unwrap();
        assert_eq!(f0, Format::V0);
        assert_eq!(r0, w);
        let v1 = checkpoint::write_v1(&r0);
        let (r1, f1) = checkpoint::read(&v1, "b.bin").unwrap();
        assert_eq!(f1, Format::V1);
        assert_eq!(r1, w);
        assert_eq!(checkpoint::write_v0(&r1), v0, "v0 bytes identical after the round trip");
    }
}

#[test]
fn stories260k_v0_rewrites_to_the_same_weights() {
    let bytes = common::read("models/stories260K.bin");
    let (w, f) = checkpoint::read(&bytes, "stories260K.bin").unwrap();
    assert_eq!(f, Format::V0);
    assert!(w.config.shared_classifier);
    let again = checkpoint::write_v0(&w);
    assert_eq!(again.len(), bytes.len());
    // The weights region is bitwise identical (RoPE tables may round differently).
    let c = w.config;
    let weights_end = 28 + 4 * (c.n_params() as usize);
    assert_eq!(again[..weights_end], bytes[..weights_end]);
}

#[test]
fn v2_quantized_round_trip_within_half_a_step() {
    let w = untied();
    let gs = checkpoint::default_group_size(w.config.dim);
    assert_eq!(gs, 32);
    let v2 = checkpoint::write_v2(&w, gs).unwrap();
    let (q, f) = checkpoint::read(&v2, "q.bin").unwrap();
    assert_eq!(f, Format::V2 { group_size: 32 });
    assert_eq!(q.rms_att, w.rms_att, "norms stay f32");
    for t in [Tensor::TokEmbeddings, Tensor::Wq, Tensor::W2, Tensor::Wcls] {
        for (gq, gw) in q.get(t).chunks(gs).zip(w.get(t).chunks(gs)) {
            let step = gw.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (a, b) in gq.iter().zip(gw) {
                assert!((a - b).abs() <= step * 0.5 + 1e-7, "{t:?}: {a} vs {b}");
            }
        }
    }
    // Writing the dequantized weights again reproduces the file exactly.
    assert_eq!(checkpoint::write_v2(&q, gs).unwrap(), v2);
    assert!(checkpoint::write_v2(&w, 5).is_err());
}

#[test]
fn v2_group_size_must_divide_dim() {
    let w = untied();
    let mut v2 = checkpoint::write_v2(&w, 32).unwrap();
    v2[37..41].copy_from_slice(&7i32.to_le_bytes());
    let e = checkpoint::read(&v2, "q.bin").unwrap_err().to_string();
    assert!(e.contains("group size 7"), "{e}");
}

// Files written by llama2.c's own exporter (export.py @350e04f, see shared/data/reference/
// FIXTURES.md), so the readers and writers are checked against code that is not ours.

#[test]
fn llama2c_v1_export_reads_as_the_v0_weights_and_our_writer_gives_its_bytes() {
    let v0 = checkpoint::read(&common::read("models/stories260K.bin"), "stories260K.bin").unwrap().0;
    let file = common::read("models/stories260K.v1.bin");
    let (w, f) = checkpoint::read(&file, "stories260K.v1.bin").unwrap();
    assert_eq!(f, Format::V1);
    assert_eq!(w, v0, "version1_export stores the f32 weights unchanged");
    assert!(checkpoint::write_v1(&w) == file, "write_v1 reproduces llama2.c's v1 file byte for byte");
}

#[test]
fn llama2c_v2_export_reads_as_its_q80_groups_and_our_writer_gives_its_bytes() {
    let v0 = checkpoint::read(&common::read("models/stories260K.bin"), "stories260K.bin").unwrap().0;
    let file = common::read("models/stories260K.v2-q80.bin");
    let (q, f) = checkpoint::read(&file, "stories260K.v2-q80.bin").unwrap();
    assert_eq!(f, Format::V2 { group_size: 64 });
    assert_eq!(q.config, v0.config);
    assert_eq!((q.rms_att.clone(), q.rms_final.clone()), (v0.rms_att.clone(), v0.rms_final.clone()), "norms stay f32");
    assert_ne!(q.wq, v0.wq, "the matrices are the dequantized Q8_0 values");
    assert!(checkpoint::write_v2(&v0, 64).unwrap() == file, "write_v2 (Q8_0, groups of 64) reproduces export.py's file");
    assert!(checkpoint::write_v2(&q, 64).unwrap() == file, "and re-quantizing what was read changes nothing");
}

/// The v2 model run: its logits against Hugging Face transformers on export.py's dequantized
/// weights (stories260K_v2_q80_logits.safetensors), which differ from the f32 logits by 0.29.
/// Measured: 1.7e-5 (reference kernels), 1.1e-5 (fast kernels), max |logit| 20.5; tolerance
/// 1e-5·max(1, max|logit|) = 2.0e-4.
#[test]
fn llama2c_v2_export_runs_to_the_transformers_logits() {
    const FIXTURE: &str = "reference/stories260K_v2_q80_logits.safetensors";
    let (q, _) = checkpoint::read(&common::read("models/stories260K.v2-q80.bin"), "v2").unwrap();
    let tokens: Vec<u32> = fixture(FIXTURE, "tokens").1.iter().map(|&t| t as u32).collect();
    let (shape, want) = fixture(FIXTURE, "logits");
    assert_eq!(shape, [16, 512]);
    let got = inspect(&mut CpuBackend::reference(q.clone()), &tokens).unwrap().logits;
    let (d, tol) = (max_diff(&got, &want), 1e-5 * max_abs(&want).max(1.0));
    println!("v2 logits vs transformers: max |Δ| {d:.2e} (tolerance {tol:.2e})");
    assert!(d <= tol, "{d} > {tol}");
    let fast = inspect(&mut CpuBackend::new(q), &tokens).unwrap().logits;
    assert!(max_diff(&fast, &want) <= tol, "the fast CPU kernels too");
    // The check tells a v2 reader from one that is merely close: the f32 model is 0.29 away.
    let v0 = checkpoint::read(&common::read("models/stories260K.bin"), "v0").unwrap().0;
    let f32_logits = inspect(&mut CpuBackend::reference(v0), &tokens).unwrap().logits;
    assert!(max_diff(&f32_logits, &want) > 100.0 * tol);
}

/// tinylm's Q4_0, Q4_1, Q5_0 and Q5_1 quantizers (`tinylm convert --type`) against gguf-py's on
/// the same input, byte for byte (fixtures/formats/quantize/make_quantize_ref.py: a zero block,
/// equal values, spikes, |max| ties, rounding boundaries, tiny and large scales, random blocks).
#[test]
fn legacy_quantizers_match_gguf_py_byte_for_byte() {
    use tinylm_engine::quant::{quantize, DType};
    let dir = "fixtures/formats/quantize";
    let read =
        |name: &str| std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(dir).join(name)).unwrap();
    let x: Vec<f32> = read("input.f32").chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(x.len(), 38 * 32);
    for (name, t, block) in [
        ("q4_0.bin", DType::Q4_0, 18),
        ("q4_1.bin", DType::Q4_1, 20),
        ("q5_0.bin", DType::Q5_0, 22),
        ("q5_1.bin", DType::Q5_1, 24),
    ] {
        let (want, got) = (read(name), quantize(t, &x).unwrap());
        assert_eq!(got.len(), want.len(), "{name}");
        for (b, (g, w)) in got.chunks(block).zip(want.chunks(block)).enumerate() {
            assert_eq!(g, w, "{name}: block {b}");
        }
    }
}
