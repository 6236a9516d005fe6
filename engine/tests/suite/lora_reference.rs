//! LoRA against the PEFT reference (shared/data/reference/stories260K_lora_qv_r4): init recipe,
//! logits with the PEFT adapters, step-0 gradients, five AdamW steps, files and merging.

use crate::common;
use common::*;
use tinylm_engine::cpu::Kernels;
use tinylm_engine::lora::{
    self, hf_tensors, read_peft, write_peft, AdamW, Adapter, Base, Batch, LoraConfig, LoraCpuBackend, Target, TrainConfig,
    Trainer,
};
use tinylm_engine::trace::inspect;
use tinylm_engine::{checkpoint, Config};

const DIR: &str = "reference/stories260K_lora_qv_r4";
const REF: &str = "reference/stories260K_lora_qv_r4/lora_reference.safetensors";

fn tokens() -> Vec<u32> {
    let (shape, t) = fixture(REF, "tokens");
    assert_eq!(shape, [1, 64]);
    t.iter().map(|&v| v as u32).collect()
}

fn peft_adapter(which: &str, c: &Config) -> Adapter {
    let cfg = read(&format!("{DIR}/{which}/adapter_config.json"));
    let st = read(&format!("{DIR}/{which}/adapter_model.safetensors"));
    read_peft(&cfg, &st, c, ["adapter_config.json", "adapter_model.safetensors"]).unwrap()
}

fn lora_config() -> LoraConfig {
    LoraConfig::new(4, 8.0, false, vec![Target::Q, Target::V]).unwrap()
}

/// Max |a − b| over max |b|, per tensor.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    max_diff(a, b) / max_abs(b)
}

/// Each tensor of `ad` (HF layout) against the same key of a safetensors fixture.
fn assert_tensors_match(ad: &Adapter, file: &str, rel_tol: f32) {
    let ours = hf_tensors(ad);
    let st_bytes = read(file);
    let st = safetensors::SafeTensors::deserialize(&st_bytes).unwrap();
    assert_eq!(ours.len(), st.names().len(), "{file}: tensor count");
    let mut worst = 0f32;
    for t in &ours {
        let (shape, want) = fixture(file, &t.key);
        assert_eq!(t.shape, shape, "{}", t.key);
        let d = rel_diff(&t.data, &want);
        worst = worst.max(d);
        assert!(d <= rel_tol, "{file} {}: relative difference {d:e} > {rel_tol:e}", t.key);
    }
    eprintln!("{file}: worst relative difference {worst:e}");
}

#[test]
fn det_init_reproduces_adapter_init_bit_for_bit() {
    let w = stories260k();
    let ad = Adapter::<f32>::det(&w.config, lora_config(), 1234, 0.05).unwrap();
    assert_tensors_match(&ad, &format!("{DIR}/adapter_init/adapter_model.safetensors"), 0.0);
    assert_eq!(ad, peft_adapter("adapter_init", &w.config));
}

fn assert_logits(got: &[f32], key: &str) {
    let (shape, want) = fixture(REF, key);
    assert_eq!(shape, [1, 64, 512]);
    let tol = 1e-5 * max_abs(&want).max(1.0);
    let d = max_diff(got, &want);
    assert!(d <= tol, "{key}: max |Δ| {d:e} > {tol:e}");
    eprintln!("{key}: max |Δ| {d:e} (tolerance {tol:e})");
}

#[test]
fn logits_with_the_peft_adapters_match_peft() {
    let w = stories260k();
    for (which, key) in [("adapter_init", "logits_init"), ("adapter_final", "logits_final")] {
        let ad = peft_adapter(which, &w.config);
        // The batched training forward, on the fast kernels and on the reference ones.
        let fast = lora::forward(&Base::new(&w), Some(&ad), &Batch::single(tokens()).unwrap()).unwrap();
        assert_logits(&fast.logits, key);
        let reference = Base::new(&w).with_kernels(Kernels::Reference);
        let acts = lora::forward(&reference, Some(&ad), &Batch::single(tokens()).unwrap()).unwrap();
        assert_logits(&acts.logits, key);
        // Token by token through the engine's CPU forward with the adapter unmerged.
        for kernels in [Kernels::Reference, Kernels::Fast] {
            let mut b = LoraCpuBackend::with_kernels(w.clone(), ad.clone(), kernels).unwrap();
            let ins = inspect(&mut b, &tokens()).unwrap();
            assert_logits(&ins.logits, key);
            if kernels == Kernels::Reference {
                assert_eq!(ins.logits, acts.logits, "batched forward = cpu::forward_adapted, bit for bit");
            }
        }
    }
    let acts = lora::forward(&Base::new(&w), None, &Batch::single(tokens()).unwrap()).unwrap();
    assert_logits(&acts.logits, "logits_base");
}

#[test]
fn step0_loss_and_gradients_match_peft() {
    let w = stories260k();
    let ad = peft_adapter("adapter_init", &w.config);
    let (loss, grads) = lora::loss_and_grads(&Base::new(&w), &ad, &Batch::single(tokens()).unwrap()).unwrap();
    let (_, losses) = fixture(REF, "losses");
    assert!((loss - losses[0] as f64).abs() <= 1e-5 * losses[0] as f64, "loss {loss} vs {}", losses[0]);
    assert_tensors_match(&grads, &format!("{DIR}/grads_step0.safetensors"), 1e-5);
}

fn reference_trainer(w: &tinylm_engine::Weights) -> Trainer {
    let adamw = AdamW { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 };
    Trainer::new(peft_adapter("adapter_init", &w.config), TrainConfig { adamw, clip_norm: None }).unwrap()
}

#[test]
fn five_adamw_steps_match_peft_losses_and_final_adapter() {
    let w = stories260k();
    let base = Base::new(&w);
    let batch = Batch::single(tokens()).unwrap();
    let mut t = reference_trainer(&w);
    let mut losses = Vec::new();
    for _ in 0..5 {
        losses.push(t.step(&base, &batch).unwrap().loss);
    }
    losses.push(lora::loss(&base, Some(&t.adapter), &batch).unwrap());
    let (_, want) = fixture(REF, "losses");
    for (k, (got, want)) in losses.iter().zip(&want).enumerate() {
        let want = *want as f64;
        assert!((got - want).abs() <= 1e-5 * want, "loss {k}: {got} vs {want}");
        eprintln!("loss {k}: {got:.7} vs PEFT {want:.7}");
    }
    assert_tensors_match(&t.adapter, &format!("{DIR}/adapter_final/adapter_model.safetensors"), 1e-3);
}

#[test]
fn adapter_written_as_peft_equals_the_reference_files() {
    let w = stories260k();
    let ad = peft_adapter("adapter_final", &w.config);
    let files = write_peft(&ad, "stories260K").unwrap();
    // Tensors: same keys, shapes and values as PEFT's file.
    let ours = safetensors::SafeTensors::deserialize(&files.safetensors).unwrap();
    let theirs_bytes = read(&format!("{DIR}/adapter_final/adapter_model.safetensors"));
    let theirs = safetensors::SafeTensors::deserialize(&theirs_bytes).unwrap();
    let mut names: Vec<_> = ours.names();
    let mut want: Vec<_> = theirs.names();
    names.sort();
    want.sort();
    assert_eq!(names, want);
    for name in names {
        let (a, b) = (ours.tensor(name).unwrap(), theirs.tensor(name).unwrap());
        assert_eq!((a.dtype(), a.shape()), (b.dtype(), b.shape()), "{name}");
        assert_eq!(a.data(), b.data(), "{name}");
    }
    // The config fields PEFT reads.
    let cfg: serde_json::Value = serde_json::from_str(&files.config_json).unwrap();
    let reference: serde_json::Value =
        serde_json::from_slice(&read(&format!("{DIR}/adapter_final/adapter_config.json"))).unwrap();
    for k in ["peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "bias", "use_rslora", "use_dora", "fan_in_fan_out"] {
        assert_eq!(cfg[k], reference[k], "{k}");
    }
    let targets = |v: &serde_json::Value| {
        let mut t: Vec<String> =
            v["target_modules"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
        t.sort();
        t
    };
    assert_eq!(targets(&cfg), targets(&reference));
    assert_eq!(cfg["base_model_name_or_path"], "stories260K");
    // And it reads back to the same adapter.
    assert_eq!(read_peft(files.config_json.as_bytes(), &files.safetensors, &w.config, ["c", "s"]).unwrap(), ad);
}

#[test]
fn merged_model_matches_the_unmerged_adapter_and_survives_v0_v1() {
    let w = stories260k();
    let ad = peft_adapter("adapter_final", &w.config);
    let unmerged =
        inspect(&mut LoraCpuBackend::with_kernels(w.clone(), ad.clone(), Kernels::Reference).unwrap(), &tokens()).unwrap();
    let merged = ad.merged(&w).unwrap();
    assert_ne!(merged.wq, w.wq);
    assert_eq!(merged.wk, w.wk, "k_proj is not targeted");
    for bytes in [checkpoint::write_v0(&merged), checkpoint::write_v1(&merged)] {
        let (back, _) = checkpoint::read(&bytes, "merged.bin").unwrap();
        assert_eq!(back, merged);
        let got = inspect(&mut tinylm_engine::cpu::CpuBackend::reference(back), &tokens()).unwrap();
        let d = max_diff(&got.logits, &unmerged.logits);
        assert!(d <= 1e-4, "merged vs unmerged logits: {d:e}");
    }
    assert_logits(&unmerged.logits, "logits_final");
}
