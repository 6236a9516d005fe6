//! `gpu::tune` on whatever adapter wgpu finds (lavapipe in CI): a choice from the candidate
//! list with one measured entry per candidate, a cut when the budget runs out, decode with the
//! tuned shapes equal to the llama2.c reference, and typed errors for tunings that do not fit.
//! No test depends on how fast this machine is: the budget logic runs on a virtual clock
//! (`tune_async`'s injected `now_ms`), and real-clock tunings get a budget they cannot spend.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;
use common::*;
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::Generator;
use tinylm_engine::gpu::tune::{tune, tune_async, TUNING_VERSION};
use tinylm_engine::gpu::{
    GpuBackend, GpuContext, GpuOptions, MatvecShape, Tuning, Workgroups, ATTENTION_CANDIDATES, MATVEC_CANDIDATES,
};
use tinylm_engine::randmodel::{named_shape, random_tokens, random_weights};
use tinylm_engine::trace::inspect;
use tinylm_engine::{Config, Error, Sampler};

fn ctx() -> GpuContext {
    GpuContext::new().expect("a GPU adapter (lavapipe) is needed for the GPU tests")
}

/// A budget (ms) no real tuning spends: tests on the real clock are never cut.
const NO_LIMIT: f64 = 1e9;

/// `tune_async` on a virtual clock that advances 1 ms each time it is read, so the budget
/// runs out after the same steps on any machine, at any load.
fn tune_virtual(c: &Config, budget_ms: f64) -> Tuning {
    let ms = std::cell::Cell::new(0.0);
    let now = || {
        ms.set(ms.get() + 1.0);
        ms.get()
    };
    pollster::block_on(tune_async(&ctx(), c, budget_ms, &now)).unwrap()
}

fn print_table(t: &Tuning) {
    println!(
        "{}: chosen {} in {:.0} ms (budget {:.0}, cut {}), reps {:?}",
        t.adapter, t.workgroups, t.elapsed_ms, t.budget_ms, t.cut, t.reps
    );
    for m in &t.matvec {
        let (c, l, f) = (m.classifier_us, m.layer_us, m.classifier_f16_us);
        println!(
            "  matvec {:>5}: classifier {c:?} µs, layer {l:?} µs, f16 classifier {f:?} µs, {} samples",
            m.shape.to_string(),
            m.samples
        );
    }
    for a in &t.attention {
        println!("  attention {:>3}: {:?} µs, {} samples", a.lanes, a.us, a.samples);
    }
}

#[test]
fn the_tuner_measures_every_candidate_and_chooses_one_of_them() {
    let c = stories260k().config;
    let t = tune(&ctx(), &c, NO_LIMIT).unwrap();
    print_table(&t);
    assert!(!t.cut && t.note.is_none());
    let shapes: Vec<MatvecShape> = t.matvec.iter().map(|m| m.shape).collect();
    assert_eq!(shapes, MATVEC_CANDIDATES, "one entry per candidate, in order");
    assert_eq!(t.attention.iter().map(|a| a.lanes).collect::<Vec<_>>(), ATTENTION_CANDIDATES);
    for m in &t.matvec {
        assert_eq!(m.samples, 5, "{}", m.shape);
        assert!(m.classifier_us.unwrap() > 0.0 && m.layer_us.unwrap() > 0.0);
    }
    assert!(t.attention.iter().all(|a| a.samples == 5 && a.us.unwrap() > 0.0));
    let w = t.workgroups;
    assert!(MATVEC_CANDIDATES.contains(&w.layers) && MATVEC_CANDIDATES.contains(&w.classifier));
    assert!(w.classifier_f16.is_none() && t.reps.len() == 3, "no f16 kernel on a device opened without shader-f16");
    assert!(ATTENTION_CANDIDATES.contains(&w.attention));
    // The classifier's choice is the fastest measured, or the default within 3% of it.
    let best = t.matvec.iter().map(|m| m.classifier_us.unwrap()).fold(f64::INFINITY, f64::min);
    let chosen = t.matvec.iter().find(|m| m.shape == w.classifier).unwrap().classifier_us.unwrap();
    assert!(chosen == best || (w.classifier == MatvecShape::DEFAULT && chosen * 0.97 <= best), "{chosen} vs best {best}");
    assert_eq!(t.workgroups_for(&c).unwrap(), w);
    let back = Tuning::from_json(&t.to_json()).unwrap();
    assert_eq!(
        (back.workgroups, back.config, back.matvec.len(), back.cut),
        (t.workgroups, t.config, t.matvec.len(), t.cut),
        "the JSON round-trips"
    );
}

#[test]
fn a_spent_budget_cuts_the_tuning_and_keeps_the_default() {
    let c = stories260k().config;
    let t = tune_virtual(&c, 0.0);
    print_table(&t);
    assert!(t.cut, "nothing fits in 0 ms");
    assert_eq!(t.matvec.len(), MATVEC_CANDIDATES.len(), "the table still lists every candidate");
    assert!(t.matvec.iter().all(|m| m.samples == 0 && m.classifier_us.is_none()));
    assert_eq!(t.workgroups, Workgroups::default());
}

/// What SwiftShader sees in the browser: the budget runs out once the default shape has its
/// first sample. The smallest virtual budget that measures anything measures only the default,
/// once; the cut tuning chooses it, and says it was cut when its clock passed the budget.
#[test]
fn a_budget_spent_after_the_default_keeps_the_default_and_says_so() {
    let c = stories260k().config;
    let (budget, t) = (0..200)
        .map(|b| (b as f64, tune_virtual(&c, b as f64)))
        .find(|(_, t)| t.matvec[0].samples > 0)
        .expect("a budget of 200 virtual ms measures the default");
    print_table(&t);
    assert!(t.cut && t.elapsed_ms > budget, "cut at {} virtual ms of {budget}", t.elapsed_ms);
    assert_eq!(t.matvec[0].samples, 1, "the default, once");
    assert!(t.matvec[0].classifier_us.is_some() && t.matvec[0].layer_us.is_some());
    assert!(t.matvec[1..].iter().all(|m| m.samples == 0) && t.attention.iter().all(|a| a.samples == 0));
    assert_eq!(t.workgroups, Workgroups::default());
    // On the same clock, a budget it cannot spend measures every candidate five times; equal
    // timings (1 virtual ms a submit) keep the default.
    let all = tune_virtual(&c, NO_LIMIT);
    assert!(!all.cut && all.matvec.iter().all(|m| m.samples == 5) && all.attention.iter().all(|a| a.samples == 5));
    assert_eq!(all.workgroups, Workgroups::default());
}

#[test]
fn shapes_the_fused_path_cannot_take_have_nothing_to_tune() {
    let c = Config::from_header([96, 200, 2, 4, 2, 301, 32], true, "test").unwrap();
    let t = tune(&ctx(), &c, NO_LIMIT).unwrap();
    assert!(t.note.as_deref().is_some_and(|n| n.contains("nothing to tune")), "{:?}", t.note);
    assert!(t.matvec.is_empty() && t.workgroups == Workgroups::default());
}

/// A tuned backend decodes the llama2.c reference story token for token, and its logits at
/// every position stay within 1e-4 of the CPU reference.
#[test]
fn decode_with_the_tuned_shapes_matches_the_reference() {
    let w = stories260k();
    let t = tune(&ctx(), &w.config, NO_LIMIT).unwrap();
    let opts = GpuOptions { workgroups: Some(t.workgroups_for(&w.config).unwrap()), ..GpuOptions::default() };
    let mut g = GpuBackend::new(&w, opts).unwrap();
    assert_eq!(g.workgroups(), t.workgroups);
    let mut s = Sampler::new(0.0, 0.9, 1).unwrap();
    let ids = g.generate(&[1], 256, &mut s, |_| true).unwrap();
    assert_eq!(ids, ids_of("greedy_empty_prompt_256_steps"));
    let tokens = random_tokens(4, 48, 512);
    let got = inspect(&mut g, &tokens).unwrap();
    let want = inspect(&mut CpuBackend::reference(w), &tokens).unwrap();
    let (d, tol) = (max_diff(&got.logits, &want.logits), 1e-4 * max_abs(&want.logits).max(1.0));
    println!("tuned {}: logits max|Δ| {d:.2e} (tolerance {tol:.2e})", t.workgroups);
    assert!(d <= tol, "{d} > {tol}");
}

/// Where the device has shader-f16 (lavapipe does), the f16 classifier's kernel is timed for
/// every candidate and gets its own choice, and a backend with that choice and the f16
/// classifier matches the CPU on an f16-rounded classifier. A tuning written before the f16
/// fields existed (three reps, no f16 entries) still reads, as the f32 classifier's shape.
#[test]
fn the_f16_classifier_gets_its_own_shape_where_the_device_has_shader_f16() {
    use tinylm_engine::gpu::f16_round;
    let ctx = GpuContext::with_shader_f16(true).unwrap();
    let w = stories260k();
    let t = tune(&ctx, &w.config, NO_LIMIT).unwrap();
    print_table(&t);
    if !ctx.offers_shader_f16() {
        assert!(t.workgroups.classifier_f16.is_none() && t.reps.len() == 3);
        println!("no shader-f16 on {}: nothing more to check", ctx.adapter);
        return;
    }
    assert!(!t.cut && t.reps.len() == 4, "{:?}", t.reps);
    assert!(t.matvec.iter().all(|m| m.classifier_f16_us.is_some_and(|us| us > 0.0)));
    let chosen = t.workgroups.classifier_f16.expect("an f16 classifier shape");
    let us = |s: MatvecShape| t.matvec.iter().find(|m| m.shape == s).unwrap().classifier_f16_us.unwrap();
    let best = t.matvec.iter().map(|m| m.classifier_f16_us.unwrap()).fold(f64::INFINITY, f64::min);
    assert!(us(chosen) == best || (chosen == MatvecShape::DEFAULT && us(chosen) * 0.97 <= best));

    let opts = GpuOptions { workgroups: Some(t.workgroups), f16_classifier: true, ..GpuOptions::default() };
    let mut g = GpuBackend::new(&w, opts).unwrap();
    assert!(g.is_f16_classifier() && g.workgroups() == t.workgroups);
    let mut rounded = w.clone();
    rounded.wcls = Some(w.tok_embeddings.iter().map(|&v| f16_round(v)).collect());
    let tokens = random_tokens(5, 40, 512);
    let got = inspect(&mut g, &tokens).unwrap();
    let want = inspect(&mut CpuBackend::reference(rounded), &tokens).unwrap();
    let (d, tol) = (max_diff(&got.logits, &want.logits), 1e-4 * max_abs(&want.logits).max(1.0));
    println!("f16 classifier {chosen}: logits max|Δ| {d:.2e} (tolerance {tol:.2e})");
    assert!(d <= tol, "{d} > {tol}");

    let mut old: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
    old["workgroups"].as_object_mut().unwrap().remove("classifier_f16");
    old["reps"].as_array_mut().unwrap().truncate(3);
    old["matvec"].as_array_mut().unwrap().iter_mut().for_each(|m| drop(m.as_object_mut().unwrap().remove("classifier_f16_us")));
    let back = Tuning::from_json(&old.to_string()).unwrap().workgroups_for(&w.config).unwrap();
    assert_eq!((back.classifier_f16, back.f16_classifier()), (None, t.workgroups.classifier));
}

fn ids_of(key: &str) -> Vec<u32> {
    ids(&reference_json()[key]["ids"])
}

#[test]
fn tunings_that_do_not_fit_are_typed_errors() {
    let w = stories260k();
    // 32 × 16 = 512 invocations: above WebGPU's default limit of 256.
    let big = Workgroups { classifier: MatvecShape { x: 32, y: 16 }, ..Workgroups::default() };
    let r = GpuBackend::new(&w, GpuOptions { workgroups: Some(big), ..GpuOptions::default() });
    assert!(matches!(&r, Err(Error::InvalidSetting(m)) if m.contains("512 invocations")), "{:?}", r.err());
    let odd = Workgroups { attention: 96, ..Workgroups::default() };
    assert!(matches!(
        GpuBackend::new(&w, GpuOptions { workgroups: Some(odd), ..GpuOptions::default() }),
        Err(Error::InvalidSetting(_))
    ));
    // A tuning made for another model shape.
    let (micro, _) = named_shape("micro").unwrap();
    let t = tune_virtual(&micro, 0.0);
    assert!(matches!(t.workgroups_for(&w.config), Err(Error::Mismatch(m)) if m.contains("not this one")));
    assert!(matches!(Tuning { version: TUNING_VERSION + 1, ..t.clone() }.workgroups_for(&micro), Err(Error::Mismatch(_))));
    assert!(matches!(Tuning::from_json("{\"version\": 1}"), Err(Error::InvalidSetting(_))));
    assert!(matches!(Tuning::from_json("not json"), Err(Error::InvalidSetting(_))));
    // A hand-edited JSON with a shape past the limit parses, then the load refuses it.
    let edited = t.to_json().replacen("\"x\": 16", "\"x\": 128", 1);
    let shapes = Tuning::from_json(&edited).unwrap().workgroups_for(&micro).unwrap();
    let mw = random_weights(&micro, 1).unwrap();
    assert!(matches!(
        GpuBackend::new(&mw, GpuOptions { workgroups: Some(shapes), ..GpuOptions::default() }),
        Err(Error::InvalidSetting(_))
    ));
}
