//! Training pieces: the data windows and their seeded order, AdamW and clipping by hand, a
//! short real training run, the memory report and the step timer.

use crate::common;
use common::*;
use tinylm_engine::lora::kernels::{adamw, AdamW};
use tinylm_engine::lora::{self, memory_report, Adapter, Base, Batch, Dataset, LoraConfig, Target, TrainConfig, Trainer};
use tinylm_engine::randmodel::{fnv1a64, random_weights, splitmix64};
use tinylm_engine::{Config, Error};

fn tiny_config() -> Config {
    Config::parse("16,40,2,4,2,37,12,untied").unwrap()
}

#[test]
fn windows_overlap_by_one_token_and_cover_every_pair() {
    let c = tiny_config();
    let list = |n: u32| (0..n).map(|i| i % 37).collect::<Vec<u32>>();
    let d = Dataset::from_token_lists(&[list(10)], 4, &c).unwrap();
    let starts: Vec<u32> = (0..d.len()).map(|i| d.window(i)[0]).collect();
    assert_eq!(starts, [0, 3, 6]);
    // One token left over: a last window ending at the end.
    let d = Dataset::from_token_lists(&[list(11)], 4, &c).unwrap();
    assert_eq!((0..d.len()).map(|i| d.window(i)[0]).collect::<Vec<_>>(), [0, 3, 6, 7]);
    assert_eq!((lora::window_count(10, 4), lora::window_count(11, 4), lora::window_count(3, 4)), (3, 4, 0));
    // Every next-token pair of every list is predicted by some window, for many lengths.
    for len in 4..40 {
        for seq in 2..=4.min(len as usize) {
            let l = list(len);
            let d = Dataset::from_token_lists(&[l.clone(), list(seq as u32)], seq, &c).unwrap();
            let mut pairs: Vec<(u32, u32)> =
                (0..d.len()).flat_map(|i| d.window(i).windows(2).map(|p| (p[0], p[1])).collect::<Vec<_>>()).collect();
            pairs.sort();
            assert_eq!(lora::window_count(len as usize, seq) + 1, d.len(), "len {len} seq {seq}");
            for p in l.windows(2) {
                assert!(pairs.binary_search(&(p[0], p[1])).is_ok(), "len {len} seq {seq}: pair {p:?}");
            }
        }
    }
}

/// The documented order, written out again: Fisher–Yates with splitmix64 per epoch.
fn documented_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let s = seed ^ fnv1a64(&format!("lora.data.epoch.{epoch}"));
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        v.swap(i, (splitmix64(s, i as u64) % (i as u64 + 1)) as usize);
    }
    v
}

#[test]
fn batches_follow_the_documented_seeded_order() {
    let c = tiny_config();
    let list: Vec<u32> = (0..60).map(|i| (i * 7 % 37) as u32).collect();
    let d = Dataset::from_token_lists(&[list], 5, &c).unwrap();
    assert_eq!(d.len(), 15);
    let (b, seed) = (4, 42);
    let stream: Vec<usize> = (0..3).flat_map(|e| documented_order(d.len(), seed, e)).collect();
    for step in 0..10u64 {
        let batch = d.batch(b, step, seed).unwrap();
        let want: Vec<u32> = (0..b).flat_map(|j| d.window(stream[step as usize * b + j]).to_vec()).collect();
        assert_eq!(batch.tokens, want, "step {step}");
        assert_eq!((batch.batch, batch.seq), (b, 5));
    }
    assert_eq!(d.epoch_order(seed, 0), documented_order(15, seed, 0));
    assert_ne!(d.epoch_order(seed, 0), d.epoch_order(seed, 1));
    assert_ne!(d.epoch_order(seed, 0), d.epoch_order(seed + 1, 0));
    // A dataset smaller than the batch repeats windows rather than failing.
    let small = Dataset::from_token_lists(&[vec![1, 2, 3]], 3, &c).unwrap();
    assert_eq!(small.batch(3, 0, 0).unwrap().tokens, [1, 2, 3, 1, 2, 3, 1, 2, 3]);
}

#[test]
fn text_is_encoded_with_bos_like_the_fixture() {
    let w = stories260k();
    let summary: serde_json::Value = serde_json::from_slice(&read("reference/stories260K_lora_qv_r4/summary.json")).unwrap();
    let text = summary["input"]["texts"][0].as_str().unwrap();
    let d = Dataset::from_text(&tok512(), text, 64, &w.config).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d.window(0), ids(&summary["input"]["tokens"][0]));
}

#[test]
fn bad_data_settings_are_errors() {
    let c = tiny_config();
    let ok = vec![1u32; 12];
    let invalid = |r: Result<Dataset, Error>| assert!(matches!(r, Err(Error::InvalidSetting(_))), "{r:?}");
    invalid(Dataset::from_token_lists(std::slice::from_ref(&ok), 1, &c));
    invalid(Dataset::from_token_lists(std::slice::from_ref(&ok), 13, &c));
    invalid(Dataset::from_token_lists(&[vec![1, 2]], 3, &c));
    invalid(Dataset::from_token_lists(&[], 3, &c));
    assert!(matches!(Dataset::from_token_lists(&[vec![1, 37, 2]], 3, &c), Err(Error::TokenOutOfRange { id: 37, .. })));
    let d = Dataset::from_token_lists(&[ok], 4, &c).unwrap();
    assert!(matches!(d.batch(0, 0, 0), Err(Error::InvalidSetting(_))));
    assert!(matches!(d.batch(usize::MAX, 0, 0), Err(Error::InvalidSetting(_))));
    // Batches the model cannot run.
    let w = random_weights(&c, 1).unwrap();
    let ad = Adapter::<f32>::peft_default(&c, LoraConfig::new(2, 4.0, false, vec![Target::Q]).unwrap(), 0).unwrap();
    let base = Base::new(&w);
    let long = Batch::single(vec![1; 13]).unwrap();
    assert!(matches!(lora::loss_and_grads(&base, &ad, &long), Err(Error::PromptTooLong { .. })));
    let bad_token = Batch::single(vec![1, 40]).unwrap();
    assert!(matches!(lora::loss_and_grads(&base, &ad, &bad_token), Err(Error::TokenOutOfRange { id: 40, .. })));
    let one = Batch::single(vec![1]).unwrap();
    assert!(matches!(lora::loss_and_grads(&base, &ad, &one), Err(Error::InvalidSetting(_))));
    assert!(Batch::new(2, 3, vec![1; 5]).is_err());
    // Optimizer settings.
    for bad in
        [AdamW { lr: -1.0, ..AdamW::default() }, AdamW { beta1: 1.0, ..AdamW::default() }, AdamW { eps: 0.0, ..AdamW::default() }]
    {
        assert!(Trainer::new(ad.clone(), TrainConfig { adamw: bad, clip_norm: None }).is_err());
    }
    assert!(Trainer::new(ad.clone(), TrainConfig { clip_norm: Some(f64::NAN), ..TrainConfig::default() }).is_err());
    assert!(matches!(LoraConfig::new(0, 1.0, false, vec![Target::Q]), Err(Error::InvalidSetting(_))));
    assert!(LoraConfig::new(2, 1.0, false, vec![]).is_err());
    assert!(lora::parse_targets("q_proj,lm_head").is_err());
    assert_eq!(lora::parse_targets("wq, v_proj,w1").unwrap(), [Target::Q, Target::V, Target::Gate]);
}

#[test]
fn adamw_matches_the_formula_by_hand() {
    let h = AdamW { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1 };
    let (mut p, mut m, mut v) = ([1.0f64], [0.0f64], [0.0f64]);
    adamw(&mut p, &[0.5], &mut m, &mut v, 1, &h);
    // p·(1 − lr·wd) − lr · m̂ / (√v̂ + eps), m̂ = g, v̂ = g².
    assert!((p[0] - (0.99 - 0.1 * 0.5 / (0.5 + 1e-8))).abs() < 1e-15);
    adamw(&mut p, &[-0.25], &mut m, &mut v, 2, &h);
    let (m2, v2) = (0.9 * 0.05 + 0.1 * -0.25, 0.999 * 0.00025 + 0.001 * 0.0625);
    let want =
        (0.99 - 0.1 * 0.5 / (0.5 + 1e-8)) * 0.99 - 0.1 * (m2 / (1.0 - 0.81)) / ((v2 / (1.0 - 0.999f64.powi(2))).sqrt() + 1e-8);
    assert!((p[0] - want).abs() < 1e-12, "{} vs {want}", p[0]);
}

#[test]
fn clipping_scales_the_gradients_to_the_global_norm() {
    let c = tiny_config();
    let w = random_weights(&c, 3).unwrap();
    let ad = Adapter::<f64>::det(&c, LoraConfig::new(2, 4.0, false, vec![Target::V, Target::Down]).unwrap(), 1, 0.2).unwrap();
    let base = lora::BaseBuf::<f64>::new(&w);
    let batch = Batch::single(vec![1, 5, 9, 20, 3, 3, 30]).unwrap();
    let (_, g) = lora::loss_and_grads(&base.view(), &ad, &batch).unwrap();
    let norm = g.tensors().flat_map(|t| t.iter()).map(|v| v * v).sum::<f64>().sqrt();
    // With beta1 = beta2 = 0, no decay, eps = 1 and lr = 1, one step moves p by −g'/(|g'| + 1)
    // where g' is the clipped gradient, so the step shows the clipping.
    let adamw = AdamW { lr: 1.0, beta1: 0.0, beta2: 0.0, eps: 1.0, weight_decay: 0.0 };
    let max = 1e-3;
    let mut t = Trainer::new(ad.clone(), TrainConfig { adamw, clip_norm: Some(max) }).unwrap();
    let r = t.step(&base.view(), &batch).unwrap();
    assert!((r.grad_norm - norm).abs() < 1e-12 * norm);
    assert!(norm > max);
    let coef = max / (norm + 1e-6);
    for ((p0, p1), g) in ad.tensors().zip(t.adapter.tensors()).zip(g.tensors()) {
        for ((a, b), g) in p0.iter().zip(p1).zip(g) {
            let gc = g * coef;
            assert!((b - (a - gc / (gc.abs() + 1.0))).abs() < 1e-15);
        }
    }
}

#[test]
fn training_on_a_story_lowers_the_loss_deterministically() {
    let w = stories260k();
    let text = String::from_utf8(read("corpora/gutenberg/the_tale_of_peter_rabbit_pg14304.txt")).unwrap();
    let data = Dataset::from_text(&tok512(), &text, 32, &w.config).unwrap();
    assert!(data.len() > 20, "{} windows", data.len());
    let cfg = LoraConfig::new(4, 8.0, false, vec![Target::Q, Target::V, Target::O, Target::Down]).unwrap();
    let run = || {
        let ad = Adapter::<f32>::peft_default(&w.config, cfg.clone(), 7).unwrap();
        let adamw = AdamW { lr: 5e-3, ..AdamW::default() };
        let mut t = Trainer::new(ad, TrainConfig { adamw, clip_norm: Some(1.0) }).unwrap();
        let eval = data.batch(8, 0, 1).unwrap();
        let before = lora::loss(&Base::new(&w), Some(&t.adapter), &eval).unwrap();
        for step in 0..12 {
            t.step(&Base::new(&w), &data.batch(4, step, 1).unwrap()).unwrap();
        }
        let after = lora::loss(&Base::new(&w), Some(&t.adapter), &eval).unwrap();
        (before, after, t.adapter)
    };
    let (before, after, ad) = run();
    assert!(after < before - 0.05, "loss {before} -> {after}");
    assert_eq!(run().2, ad, "same seeds, same adapter");
}

#[test]
fn memory_report_matches_the_allocations() {
    for (c, lora) in [
        (tiny_config(), LoraConfig::new(3, 6.0, true, Target::ALL.to_vec()).unwrap()),
        (stories260k().config, LoraConfig::new(4, 8.0, false, vec![Target::Q, Target::V]).unwrap()),
    ] {
        let w = random_weights(&c, 2).unwrap();
        let ad = Adapter::<f32>::peft_default(&c, lora.clone(), 0).unwrap();
        let (b, t) = (2, 8);
        let acts = lora::forward(&Base::new(&w), Some(&ad), &Batch::new(b, t, vec![1; b * t]).unwrap()).unwrap();
        let m = memory_report(&c, &lora, b, t);
        assert_eq!(m.activations, acts.bytes());
        assert_eq!(m.adapter, ad.n_params() as u64 * 4);
        assert_eq!(m.base_weights, w.size_bytes());
        assert!(m.peak() > m.base_weights + m.activations);
    }
    let m = memory_report(&stories260k().config, &LoraConfig::new(4, 8.0, false, vec![Target::Q, Target::V]).unwrap(), 1, 64);
    eprintln!("stories260K, q/v r4, 1 × 64: {m:?}, peak {} bytes", m.peak());
}

#[test]
fn step_timer_runs() {
    let w = random_weights(&tiny_config(), 1).unwrap();
    let ms = lora::time_step_ms(&w, &LoraConfig::new(2, 4.0, false, Target::ALL.to_vec()).unwrap(), 2, 12, 3).unwrap();
    assert!(ms.is_finite() && ms > 0.0, "{ms}");
}
