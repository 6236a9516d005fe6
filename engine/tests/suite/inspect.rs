//! The inspection views' numbers: the logit lens, attention rollout and the next-token view
//! against the forward pass, hand-computed cases and run.c's sampler.

use crate::common;
use common::*;
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::randmodel::{named_shape, random_tokens, random_weights};
use tinylm_engine::sampler::{argmax, softmax, topp_keep, Sampler};
use tinylm_engine::trace::{
    inspect, lens_at, lens_flops, lens_top_k, logit_lens, next_tokens, odds, rollout, Inspection, Inspector, LensHead, Rollout,
};
use tinylm_engine::{Error, Rng, Weights};

fn micro() -> Weights {
    let (c, seed) = named_shape("micro").unwrap();
    random_weights(&c, seed).unwrap()
}

const FIXTURE: &str = "reference/stories260K_attention.safetensors";

fn fixture_tokens() -> Vec<u32> {
    fixture(FIXTURE, "tokens").1.iter().map(|&t| t as u32).collect()
}

fn fixture_inspection() -> Inspection {
    inspect(&mut CpuBackend::new(stories260k()), &fixture_tokens()).unwrap()
}

#[test]
fn batched_inspection_of_the_fixture_text_matches_llama2c() {
    let ins = fixture_inspection();
    let (shape, attn) = fixture(FIXTURE, "llama2c.attn");
    assert_eq!(shape, [5, 8, 16, 16]);
    assert!(max_diff(&ins.attn, &attn) <= 1e-5, "attention {}", max_diff(&ins.attn, &attn));
    let (_, resid) = fixture(FIXTURE, "llama2c.resid");
    assert!(max_diff(&ins.resid, &resid) <= 1e-4, "residual {}", max_diff(&ins.resid, &resid));
}

#[test]
fn logit_lens_last_layer_is_the_argmax_of_the_logits_everywhere() {
    let w = stories260k();
    let ins = fixture_inspection();
    let lens = logit_lens(&w, &ins).unwrap();
    let (l, n) = (w.config.n_layers, ins.len());
    assert_eq!(lens.len(), l * n);
    for t in 0..n {
        let mut p = ins.logits_at(t).to_vec();
        let want = argmax(&p) as u32;
        softmax(&mut p);
        let got = lens[(l - 1) * n + t];
        assert_eq!(got.id, want, "position {t}");
        assert!((got.prob - p[want as usize]).abs() <= 1e-6, "position {t}: {} vs {}", got.prob, p[want as usize]);
    }
    // The greedy text: at position t the model's top-1 is the next fixture token.
    let tokens = fixture_tokens();
    for t in 0..n - 1 {
        assert_eq!(lens[(l - 1) * n + t].id, tokens[t + 1], "greedy position {t}");
    }
    // Earlier layers are not all the same as the last (the lens shows something).
    assert!((0..n).any(|t| lens[t].id != lens[(l - 1) * n + t].id));
}

#[test]
fn logit_lens_refuses_weights_of_another_model() {
    let ins = fixture_inspection();
    let other = micro();
    assert!(matches!(logit_lens(&other, &ins), Err(Error::InvalidSetting(_))));
}

/// Runs `tokens` through an `Inspector` `chunk` positions per call on a fresh backend.
fn inspect_in_chunks(w: &Weights, tokens: &[u32], chunk: usize) -> Inspection {
    let mut b = CpuBackend::new(w.clone());
    let mut run = Inspector::new(&w.config, tokens).unwrap();
    let mut calls = 0;
    while !run.advance(&mut b, chunk).unwrap() {
        calls += 1;
        assert_eq!(run.done(), calls * chunk, "progress after {calls} calls");
        assert!(!run.is_finished());
    }
    assert_eq!((run.done(), run.total()), (tokens.len(), tokens.len()));
    run.finish().unwrap()
}

fn s15m() -> Weights {
    let (c, seed) = named_shape("s15m").unwrap();
    random_weights(&c, seed).unwrap()
}

#[test]
fn inspector_in_chunks_equals_one_shot_inspect_exactly() {
    let w = stories260k();
    let tokens = fixture_tokens();
    let whole = fixture_inspection();
    for chunk in [1, 3, 7, 16, 100] {
        assert!(inspect_in_chunks(&w, &tokens, chunk) == whole, "stories260K in chunks of {chunk}");
    }
    let w = s15m();
    let tokens = random_tokens(15, 12, w.config.vocab_size);
    let whole = inspect(&mut CpuBackend::new(w.clone()), &tokens).unwrap();
    assert!(whole.logits.iter().any(|&x| x != 0.0));
    for chunk in [1, 5] {
        assert!(inspect_in_chunks(&w, &tokens, chunk) == whole, "s15m in chunks of {chunk}");
    }
}

#[test]
fn an_unfinished_or_misused_inspector_is_an_error() {
    let w = stories260k();
    let mut run = Inspector::new(&w.config, &fixture_tokens()).unwrap();
    let mut b = CpuBackend::new(w.clone());
    assert!(!run.advance(&mut b, 4).unwrap());
    assert!(matches!(run.clone().finish(), Err(Error::InvalidSetting(_))));
    assert!(matches!(run.advance(&mut CpuBackend::new(micro()), 1), Err(Error::InvalidSetting(_))));
    assert!(matches!(Inspector::new(&w.config, &[]), Err(Error::InvalidSetting(_))));
    let long = vec![1u32; w.config.seq_len + 1];
    assert!(matches!(Inspector::new(&w.config, &long), Err(Error::PromptTooLong { .. })));
}

#[test]
fn lens_on_demand_equals_the_full_lens_columns() {
    for (w, tokens) in [(stories260k(), fixture_tokens()), {
        let w = s15m();
        let t = random_tokens(7, 6, w.config.vocab_size);
        (w, t)
    }] {
        let ins = inspect(&mut CpuBackend::new(w.clone()), &tokens).unwrap();
        let full = logit_lens(&w, &ins).unwrap();
        let (l, n) = (w.config.n_layers, ins.len());
        // The lens reads only the residuals: drop the rest as the worker does.
        let mut kept = ins.clone();
        kept.attn = Vec::new();
        kept.logits = Vec::new();
        let rms = w.rms_final.clone();
        let cls = w.classifier().to_vec();
        let copied = LensHead::new(w.config, &rms, &cls).unwrap();
        for t in 0..n {
            let col = lens_at(&copied, &kept, t).unwrap();
            assert_eq!(col.len(), l);
            for li in 0..l {
                assert_eq!(col[li], full[li * n + t], "layer {li} position {t}");
            }
            assert_eq!(col[l - 1].id, argmax(ins.logits_at(t)) as u32, "last layer is the argmax at {t}");
            // The top 3 per layer (`tinylm inspect --top 3`): led by the lens's top 1, descending.
            for (li, top) in lens_top_k(&copied, &kept, t, 3).unwrap().into_iter().enumerate() {
                assert_eq!(top[0], col[li], "top 3 at layer {li} position {t}");
                assert!(top[1].prob <= top[0].prob && top[2].prob <= top[1].prob);
            }
        }
        assert!(lens_at(&LensHead::of(&w), &kept, n).is_err());
        assert!(LensHead::new(w.config, &rms[1..], &cls).is_err());
        assert!(lens_at(&LensHead::of(&micro()), &kept, 0).is_err());
    }
    // stories110M over 512 positions: 12 layers × 512 × 32000 × 768 × 2 ≈ 302 GFLOP.
    let (c, _) = named_shape("s110m").unwrap();
    assert!((lens_flops(&c, 512) - 2.0 * 12.0 * 512.0 * 32000.0 * 768.0).abs() < 1.0);
}

#[test]
fn rollout_in_layer_steps_equals_rollout() {
    let ins = fixture_inspection();
    let mut r = Rollout::new(&ins);
    let mut steps = 0;
    while !r.advance(&ins) {
        steps += 1;
        assert_eq!(r.done(), steps);
    }
    assert_eq!(r.done(), 5);
    assert!(r.advance(&ins), "advancing past the end does nothing");
    assert_eq!(r.finish(), rollout(&ins));
}

/// Dense matrix product of [n,n] row-major matrices, the textbook way.
fn matmul_dense(a: &[f32], b: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = (0..n).map(|k| a[i * n + k] * b[k * n + j]).sum();
        }
    }
    out
}

#[test]
fn rollout_is_the_product_of_residual_mixed_mean_attention() {
    let ins = fixture_inspection();
    let (l, h, n) = (5, 8, ins.len());
    let r = rollout(&ins);
    assert_eq!(r.len(), l * n * n);
    let mut want: Option<Vec<f32>> = None;
    for li in 0..l {
        let mut a = vec![0f32; n * n];
        for t in 0..n {
            for hi in 0..h {
                for (s, v) in ins.attn_row(li, hi, t).iter().enumerate() {
                    a[t * n + s] += 0.5 * v / h as f32;
                }
            }
            a[t * n + t] += 0.5;
        }
        let next = match want {
            None => a,
            Some(prev) => matmul_dense(&a, &prev, n),
        };
        let got = &r[li * n * n..(li + 1) * n * n];
        assert!(max_diff(got, &next) <= 1e-5, "layer {li}: {}", max_diff(got, &next));
        for t in 0..n {
            let sum: f32 = got[t * n..(t + 1) * n].iter().sum();
            assert!((sum - 1.0).abs() <= 1e-4, "layer {li} row {t} sums to {sum}");
            assert!(got[t * n + t + 1..(t + 1) * n].iter().all(|&v| v == 0.0), "causal");
        }
        want = Some(next);
    }
    // Position 0 can only trace back to itself.
    assert_eq!(r[0], 1.0);
}

#[test]
fn rollout_of_one_position_is_one() {
    let w = micro();
    let ins = inspect(&mut CpuBackend::new(w), &[1]).unwrap();
    assert!(rollout(&ins).iter().all(|&v| (v - 1.0).abs() < 1e-6));
}

/// Every token the sampler draws over many coins, and for each kept token a coin that draws it.
fn sampler_reachable(logits: &[f32], temperature: f32, topp: f32) -> std::collections::BTreeSet<u32> {
    let mut s = Sampler::new(temperature, topp, 1).unwrap();
    let mut rng = Rng::new(42);
    let mut probs: Vec<f32> = logits.iter().map(|l| l / temperature).collect();
    softmax(&mut probs);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20_000 {
        seen.insert(s.choose(&probs, rng.next_f32()));
    }
    seen
}

#[test]
fn top_p_marking_is_the_samplers_kept_set() {
    let ins = fixture_inspection();
    for (t, temperature, topp) in [(3, 1.0, 0.9), (7, 0.8, 0.5), (12, 1.5, 0.95), (0, 1.0, 0.3)] {
        let logits = ins.logits_at(t);
        let view = next_tokens(logits, temperature, topp, 512).unwrap();
        let marked: std::collections::BTreeSet<u32> = view.top.iter().filter(|c| c.kept).map(|c| c.id).collect();
        assert_eq!(marked.len(), view.kept);
        // Independently of topp_keep: what the sampler actually draws lies in the marked set,
        // and with 20k coins it reaches every marked token of reasonable probability.
        let reached = sampler_reachable(logits, temperature, topp);
        assert!(reached.is_subset(&marked), "t={t}: drawn {reached:?} not within {marked:?}");
        for c in view.top.iter().filter(|c| c.kept && c.reshaped > 1e-3) {
            assert!(reached.contains(&c.id), "t={t}: kept {} (p {}) never drawn", c.id, c.reshaped);
        }
        // And exactly the sampler's own rule.
        let mut probs: Vec<f32> = logits.iter().map(|l| l / temperature).collect();
        softmax(&mut probs);
        let mut set = Vec::new();
        let (count, mass) = topp_keep(&probs, topp, &mut set);
        let rule: std::collections::BTreeSet<u32> = set[..count].iter().map(|p| p.0).collect();
        assert_eq!(marked, rule);
        assert_eq!(view.kept_mass, mass);
        let total: f32 = view.top.iter().map(|c| c.reshaped).sum();
        assert!((total - 1.0).abs() < 1e-5, "reshaped sums to {total}");
    }
}

#[test]
fn temperature_zero_and_no_cut() {
    let logits = [0.5, 2.0, -1.0, 2.0];
    let greedy = next_tokens(&logits, 0.0, 0.9, 4).unwrap();
    assert_eq!(greedy.kept, 1);
    let first = greedy.top.iter().find(|c| c.kept).unwrap();
    assert_eq!((first.id, first.reshaped), (1, 1.0));
    let all = next_tokens(&logits, 1.0, 1.0, 2).unwrap();
    assert_eq!(all.kept, 4);
    assert_eq!(all.top.len(), 2);
    // Hand-computed softmax of [0.5, 2, -1, 2]: e^2 / (e^0.5 + 2e^2 + e^-1).
    let e = |x: f32| x.exp();
    let p1 = e(2.0) / (e(0.5) + 2.0 * e(2.0) + e(-1.0));
    assert!((all.top[0].prob - p1).abs() < 1e-6 && all.top[0].id == 1 && all.top[1].id == 3);
    assert!(next_tokens(&logits, -1.0, 0.9, 4).is_err());
    assert!(next_tokens(&[], 1.0, 0.9, 4).is_err());
}

#[test]
fn odds_give_probability_and_rank() {
    let logits = [0.5, 2.0, -1.0, 2.0];
    let o = odds(&logits, 0).unwrap();
    assert_eq!(o.rank, 3);
    let e = |x: f32| x.exp();
    assert!((o.prob - e(0.5) / (e(0.5) + 2.0 * e(2.0) + e(-1.0))).abs() < 1e-6);
    assert_eq!(odds(&logits, 3).unwrap().rank, 1);
    assert!(matches!(odds(&logits, 4), Err(Error::TokenOutOfRange { .. })));
}

/// The GPU's batched inspection feeds the same views: its attention is llama2.c's (1e-4), and
/// the logit lens of its last-layer residuals picks the argmax of its own logits.
#[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
#[test]
fn gpu_inspection_feeds_the_same_views() {
    use tinylm_engine::gpu::{GpuBackend, GpuOptions};
    let w = stories260k();
    let mut g = GpuBackend::new(&w, GpuOptions::default()).expect("a GPU adapter (lavapipe) is needed for the GPU tests");
    let ins = g.inspect(&fixture_tokens()).unwrap();
    let (_, attn) = fixture(FIXTURE, "llama2c.attn");
    assert!(max_diff(&ins.attn, &attn) <= 1e-4, "attention {}", max_diff(&ins.attn, &attn));
    let lens = logit_lens(&w, &ins).unwrap();
    let (l, n) = (w.config.n_layers, ins.len());
    for t in 0..n {
        assert_eq!(lens[(l - 1) * n + t].id, argmax(ins.logits_at(t)) as u32, "position {t}");
    }
    let cpu = rollout(&fixture_inspection());
    assert!(max_diff(&rollout(&ins), &cpu) <= 1e-4, "rollout {}", max_diff(&rollout(&ins), &cpu));
}
