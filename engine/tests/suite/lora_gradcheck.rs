//! LoRA gradients against f64 central differences of the loss on a tiny random model with every
//! target kind, rsLoRA, grouped K/V heads (4 heads, 2 kv heads) and an untied classifier.

use crate::common;
use common::max_diff;
use tinylm_engine::cpu::Kernels;
use tinylm_engine::lora::{self, Adapter, Base, BaseBuf, Batch, LoraConfig, LoraCpuBackend, Target};
use tinylm_engine::randmodel::{random_tokens, random_weights};
use tinylm_engine::trace::inspect;
use tinylm_engine::{Config, Weights};

fn tiny() -> Weights {
    let c = Config::parse("16,40,2,4,2,37,12,untied").unwrap();
    random_weights(&c, 7).unwrap()
}

fn all_targets_rslora(c: &Config) -> Adapter<f64> {
    let cfg = LoraConfig::new(3, 5.0, true, Target::ALL.to_vec()).unwrap();
    assert!((cfg.scaling() - 5.0 / 3f64.sqrt()).abs() < 1e-15);
    // B ≠ 0 so that every A gets a gradient.
    Adapter::<f64>::det(c, cfg, 99, 0.3).unwrap()
}

/// Two sequences of 6 tokens.
fn batch(c: &Config) -> Batch {
    let mut t = random_tokens(1, 6, c.vocab_size);
    t.extend(random_tokens(2, 6, c.vocab_size));
    Batch::new(2, 6, t).unwrap()
}

#[test]
fn gradients_match_central_differences_for_every_target() {
    let w = tiny();
    let base = BaseBuf::<f64>::new(&w);
    let base = base.view();
    let ad = all_targets_rslora(&w.config);
    let batch = batch(&w.config);
    let (loss, _) = lora::loss_and_grads(&base, &ad, &batch).unwrap();
    assert!((loss - lora::loss(&base, Some(&ad), &batch).unwrap()).abs() < 1e-14);

    let worst = common::gradcheck::lora_central_differences(&base, &ad, &batch, None, 1e-6);
    eprintln!("worst relative error over {} parameters: {worst:e}", ad.n_params());
}

#[test]
fn f32_gradients_agree_with_f64() {
    let w = tiny();
    let ad64 = all_targets_rslora(&w.config);
    let batch = batch(&w.config);
    let (l64, g64) = lora::loss_and_grads(&BaseBuf::<f64>::new(&w).view(), &ad64, &batch).unwrap();
    let (l32, g32) = lora::loss_and_grads(&Base::new(&w), &ad64.cast::<f32>(), &batch).unwrap();
    assert!((l32 - l64).abs() < 1e-5 * l64, "{l32} vs {l64}");
    for (a, b) in g32.modules.iter().zip(&g64.modules) {
        for (x, y) in [(&a.a, &b.a), (&a.b, &b.b)] {
            let scale = y.iter().fold(0f64, |m, v| m.max(v.abs()));
            // NaN-safe: a NaN gradient makes `d` NaN, and the check below fails.
            let d =
                x.iter().zip(y).map(|(p, q)| (*p as f64 - q).abs()).fold(0f64, |m, v| if v > m || v.is_nan() { v } else { m });
            assert!(d <= 1e-4 * scale, "layer {} {:?}: {d:e} vs scale {scale:e}", a.layer, a.target);
        }
    }
}

/// The batched loss is the mean of the per-sequence next-token losses of the engine's token-by-
/// token forward (a check of the batch layout and the targets, independent of the kernels).
#[test]
fn batched_loss_equals_the_token_by_token_forward() {
    let w = tiny();
    let ad = all_targets_rslora(&w.config).cast::<f32>();
    let batch = batch(&w.config);
    let mut sum = 0f64;
    for seq in batch.tokens.chunks(batch.seq) {
        let mut b = LoraCpuBackend::with_kernels(w.clone(), ad.clone(), Kernels::Reference).unwrap();
        let ins = inspect(&mut b, seq).unwrap();
        for t in 0..seq.len() - 1 {
            let l: Vec<f64> = ins.logits_at(t).iter().map(|&v| v as f64).collect();
            let max = l.iter().cloned().fold(f64::MIN, f64::max);
            let lse = l.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
            sum += lse - l[seq[t + 1] as usize];
        }
    }
    let want = sum / (batch.batch * (batch.seq - 1)) as f64;
    let got = lora::loss(&Base::new(&w), Some(&ad), &batch).unwrap();
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
}

#[test]
fn merged_random_model_matches_the_unmerged_adapter() {
    let w = tiny();
    let ad = all_targets_rslora(&w.config).cast::<f32>();
    let tokens = random_tokens(5, 12, w.config.vocab_size);
    let unmerged =
        inspect(&mut LoraCpuBackend::with_kernels(w.clone(), ad.clone(), Kernels::Reference).unwrap(), &tokens).unwrap();
    let merged = inspect(&mut tinylm_engine::cpu::CpuBackend::reference(ad.merged(&w).unwrap()), &tokens).unwrap();
    let base = inspect(&mut tinylm_engine::cpu::CpuBackend::reference(w.clone()), &tokens).unwrap();
    let d = max_diff(&unmerged.logits, &merged.logits);
    assert!(d <= 1e-4, "merged vs unmerged: {d:e}");
    let moved = max_diff(&unmerged.logits, &base.logits);
    assert!(moved > 1e-2, "the adapter should change the logits ({moved:e})");
}
