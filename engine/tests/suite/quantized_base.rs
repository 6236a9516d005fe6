//! A quantized model used without an f32 copy. The logit lens (`LoadedModel::lens_head`) reads
//! the classifier as kept: its last layer is the quantized forward's own output, and every
//! layer agrees with the lens over the f32 copy. Experiments (patching, head means) run on the
//! weights as held (`LoadedModel::forward_weights`). LoRA training on a quantized base
//! (`Base::quantized`, `lora::quant_base`): the frozen
//! matrices stay Q8_0 / Q4_K / Q6_K and are dequantized a tile of rows at a time inside the
//! products. Against the same training on the dequantized f32 copy (`Base::new`): the forward
//! logits, each step's loss and the adapter after several steps, on llama2.c's own Q8_0 export
//! of stories260K (5 layers, groups of 64, a 512-row classifier: two tiles) and the GGUF Q8_0
//! and Q4_K_M fixtures (Q4_K and Q6_K blocks).
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use common::{max_abs, max_diff, read};
use tinylm_engine::lora::kernels::AdamW;
use tinylm_engine::lora::{
    self, forward, Adapter, AnyTrainer, Base, Dataset, LoraConfig, Target, TrainConfig, TrainDevice, Trainer,
};
use tinylm_engine::randmodel::splitmix64;
use tinylm_engine::{LoadedModel, NamedFile};

/// The CPU tolerance, relative to max(1, max|value|).
const TOL: f32 = 1e-5;

fn quantized(name: &str, bytes: Vec<u8>) -> LoadedModel {
    let m = LoadedModel::open(&[NamedFile::new(name, &bytes)]).unwrap();
    assert!(m.quantized().is_some(), "{name} is kept quantized");
    m
}

fn tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    (0..n as u64).map(|i| (splitmix64(seed, i) % vocab as u64) as u32).collect()
}

fn check(name: &str, m: &LoadedModel) {
    let q = m.quantized().unwrap();
    let dense = q.dequantize();
    let c = q.config;
    let data = Dataset::from_token_lists(&[tokens(40 * 32, c.vocab_size, 11)], 32, &c).unwrap();
    let all = vec![Target::Q, Target::K, Target::V, Target::O, Target::Gate, Target::Up, Target::Down];
    let cfg = LoraConfig::new(4, 8.0, false, all).unwrap();
    let run = |base: &Base<f32>| {
        let ad = Adapter::<f32>::peft_default(&c, cfg.clone(), 7).unwrap();
        // B starts at zero: a few steps make it non-zero, so every product's gradient path counts.
        let mut t =
            Trainer::new(ad, TrainConfig { adamw: AdamW { lr: 1e-2, ..AdamW::default() }, clip_norm: Some(1.0) }).unwrap();
        let losses: Vec<f64> = (0..4).map(|s| t.step(base, &data.batch(4, s, 1).unwrap()).unwrap().loss).collect();
        let logits = forward(base, Some(&t.adapter), &data.batch(4, 9, 1).unwrap()).unwrap().logits;
        (losses, logits, t.adapter)
    };
    let (want_loss, want_logits, want_ad) = run(&Base::new(&dense));
    let (loss, logits, ad) = run(&Base::quantized(q));
    for (s, (a, b)) in loss.iter().zip(&want_loss).enumerate() {
        assert!((a - b).abs() <= TOL as f64 * b.abs().max(1.0), "{name} step {s}: loss {a} vs {b}");
    }
    let d = max_diff(&logits, &want_logits) / max_abs(&want_logits).max(1.0);
    assert!(d <= TOL, "{name}: logits after training differ by {d}");
    let flat = |a: &Adapter<f32>| a.tensors().flatten().copied().collect::<Vec<f32>>();
    let (got, want) = (flat(&ad), flat(&want_ad));
    let dw = max_diff(&got, &want) / max_abs(&want).max(1.0);
    assert!(dw <= TOL, "{name}: adapter differs by {dw}");
    assert!(want_loss[3] < want_loss[0], "{name}: the run learns ({want_loss:?})");
    println!("{name}: losses {loss:?}, logits {d:.1e}, adapter {dw:.1e}");
}

#[test]
fn training_on_a_quantized_base_equals_training_on_its_f32_copy() {
    let v2 = quantized("stories260K.v2-q80.bin", read("models/stories260K.v2-q80.bin"));
    check("stories260K v2 Q8_0", &v2);
    let fx = |f: &str| std::fs::read(format!("{}/tests/fixtures/formats/gguf/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    check("GGUF Q8_0", &quantized("quant.q8_0.gguf", fx("quant.q8_0.gguf")));
    check("GGUF Q4_K_M", &quantized("quant.q4_k_m.gguf", fx("quant.q4_k_m.gguf")));
}

#[test]
fn the_forward_on_a_quantized_base_is_the_dense_forward_bit_for_bit() {
    let m = quantized("stories260K.v2-q80.bin", read("models/stories260K.v2-q80.bin"));
    let q = m.quantized().unwrap();
    let dense = q.dequantize();
    let data = Dataset::from_token_lists(&[tokens(8 * 32, q.config.vocab_size, 5)], 32, &q.config).unwrap();
    let batch = data.batch(8, 0, 1).unwrap();
    let a = forward(&Base::new(&dense), None, &batch).unwrap().logits;
    let b = forward(&Base::quantized(q), None, &batch).unwrap().logits;
    assert_eq!(a, b);
    let _ = lora::loss(&Base::quantized(q), None, &batch).unwrap();
}

#[test]
fn a_quantized_model_trains_on_the_cpu_without_an_f32_copy() {
    let m = quantized(
        "quant.q4_k_m.gguf",
        std::fs::read(format!("{}/tests/fixtures/formats/gguf/quant.q4_k_m.gguf", env!("CARGO_MANIFEST_DIR"))).unwrap(),
    );
    let held = m.held_bytes();
    let c = *m.config();
    let data = Dataset::from_token_lists(&[tokens(20 * 32, c.vocab_size, 3)], 32, &c).unwrap();
    let cfg = LoraConfig::new(4, 8.0, false, vec![Target::Q, Target::V, Target::Down]).unwrap();
    let ad = Adapter::<f32>::peft_default(&c, cfg, 1).unwrap();
    let mut t = AnyTrainer::new(m.train_base(), ad.clone(), TrainConfig::default(), None, TrainDevice::Cpu).unwrap();
    let mut d = AnyTrainer::new(
        &std::sync::Arc::new(m.quantized().unwrap().dequantize()),
        ad,
        TrainConfig::default(),
        None,
        TrainDevice::Cpu,
    )
    .unwrap();
    for s in 0..3 {
        let b = data.batch(4, s, 1).unwrap();
        assert_eq!(t.step(&b).unwrap().loss, d.step(&b).unwrap().loss, "step {s}");
    }
    assert_eq!(m.held_bytes(), held, "no f32 copy was made ({held} bytes held, quantized)");
    assert!(held < m.quantized().unwrap().dequantize().size_bytes(), "held bytes are the quantized ones");
}

#[test]
fn the_logit_lens_reads_a_quantized_classifier_as_kept() {
    use tinylm_engine::sampler::argmax;
    use tinylm_engine::trace::{inspect, lens_at, LensHead};
    for (name, m) in [
        ("stories260K v2 Q8_0", quantized("stories260K.v2-q80.bin", read("models/stories260K.v2-q80.bin"))),
        ("GGUF Q4_K_M", {
            let f = format!("{}/tests/fixtures/formats/gguf/quant.q4_k_m.gguf", env!("CARGO_MANIFEST_DIR"));
            quantized("quant.q4_k_m.gguf", std::fs::read(f).unwrap())
        }),
    ] {
        let held = m.held_bytes();
        let c = *m.config();
        let toks = tokens(12, c.vocab_size, 9);
        // The inspection on the quantized CPU backend; its lens from the classifier as kept.
        let ins = inspect(&mut m.cpu_with(None), &toks).unwrap();
        let head = m.lens_head();
        assert_eq!(m.held_bytes(), held, "{name}: no f32 copy");
        let dense = m.quantized().unwrap().dequantize();
        for t in 0..toks.len() {
            let col = lens_at(&head, &ins, t).unwrap();
            // The last layer is the quantized forward's own output, exactly.
            assert_eq!(col[c.n_layers - 1].id, argmax(ins.logits_at(t)) as u32, "{name} position {t}");
            // Every layer against the lens over the f32 copy.
            let want = lens_at(&LensHead::of(&dense), &ins, t).unwrap();
            for (a, b) in col.iter().zip(&want) {
                assert_eq!(a.id, b.id, "{name} position {t}");
                assert!((a.prob - b.prob).abs() <= TOL, "{name} position {t}: {} vs {}", a.prob, b.prob);
            }
        }
    }
}

/// Experiments on a quantized model without an f32 copy (`LoadedModel::forward_weights`):
/// activation patching, head means and a knock-out run on the quantized forward, each within
/// 1e-5 of the same experiment on the dequantized f32 copy, and `held_bytes` stays quantized.
#[test]
fn experiments_run_on_the_quantized_weights() {
    use tinylm_engine::trace::{CpuModel, HeadMeansRun, Patcher};
    let m = quantized("stories260K.v2-q80.bin", read("models/stories260K.v2-q80.bin"));
    let held = m.held_bytes();
    let dense = m.quantized().unwrap().dequantize();
    let (kept, copy) = (CpuModel::new(m.forward_weights()), CpuModel::new(&dense));
    let clean = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376];
    let corrupt = [1, 403, 407, 261, 378, 432, 383, 286, 261, 298];
    let (a, b) = (Patcher::run(&kept, &clean, &corrupt, 5, 9).unwrap(), Patcher::run(&copy, &clean, &corrupt, 5, 9).unwrap());
    let scale = max_abs(&b.resid).max(1.0);
    assert!(max_diff(&a.resid, &b.resid) <= TOL * scale && max_diff(&a.heads, &b.heads) <= TOL * scale);
    assert!((a.clean_diff - b.clean_diff).abs() <= TOL * scale);
    // The clean run is the quantized backend's own forward, bit for bit (the f32 copy's differs
    // in rounding): the experiment read the quantized matrices.
    let mut backend = m.cpu();
    let mut last = Vec::new();
    for (p, &t) in clean.iter().enumerate() {
        last = tinylm_engine::generate::Backend::forward(&mut backend, t, p).unwrap().to_vec();
    }
    assert_eq!(a.clean_diff.to_bits(), (last[5] - last[9]).to_bits());
    let (ma, mb) = (HeadMeansRun::run(&kept, &clean).unwrap(), HeadMeansRun::run(&copy, &clean).unwrap());
    for (l, h) in [(0, 0), (2, 3), (4, 7)] {
        assert!(max_diff(ma.head(l, h), mb.head(l, h)) <= TOL, "head {l}.{h}");
    }
    assert_eq!(m.held_bytes(), held, "no f32 copy was made");
}
