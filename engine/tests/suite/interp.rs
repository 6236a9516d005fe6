//! The Inspect experiments on the CPU (knock-outs, mean ablation, skipped blocks, activation
//! patching, steering) against Hugging Face transformers with forward hooks, float64
//! (scripts/reference/interp.py, fixtures in tests/fixtures/interp), for stories260K and a
//! random GQA model (6 heads on 2 kv heads, head size 10, untied); and the exact identities:
//! nothing knocked out and strength 0 leave the logits bit for bit, identical prompts patch to
//! the clean difference everywhere.

use crate::common;
use common::interp::{case, cases, idx, Case};
use common::*;
use serde_json::Value;
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::Backend;
use tinylm_engine::randmodel::random_weights;
use tinylm_engine::trace::{
    inspect, steering_direction, Ablation, CpuModel, Edits, HeadId, HeadMeansRun, Inspection, Intervention, PatchMaps, Patcher,
    Steer, PATCH_EXAMPLES,
};
use tinylm_engine::{Config, Error};

fn plain(c: &Case) -> Inspection {
    inspect(&mut CpuBackend::new(c.weights.clone()), &c.tokens()).unwrap()
}

/// Asserts `got` is within the CPU tolerance of the fixture's `key` and differs from the
/// unchanged logits by far more (so the change itself is checked).
fn check_logits(c: &Case, key: &str, got: &[f32], unchanged: &[f32]) -> f32 {
    let want = c.tensor(key);
    let (d, tol) = (max_diff(got, &want), c.tol(&want));
    assert!(d <= tol, "{} {key}: max |Δ| {d} > {tol}", c.name);
    let moved = max_diff(&want, unchanged);
    assert!(moved > 100.0 * tol, "{} {key}: the change moved the logits by only {moved}", c.name);
    d
}

#[test]
fn knockouts_match_the_transformers_reference() {
    for c in cases() {
        let unchanged = plain(&c);
        // The unchanged run against the reference first: the twin is the same model.
        let base = c.tensor("logits");
        assert!(max_diff(&unchanged.logits, &base) <= c.tol(&base), "{} unchanged", c.name);
        let (heads, skip_attn, skip_mlp) = c.knockout();
        let zero = Intervention { ablate: heads.clone(), ..Intervention::default() };
        let dz = check_logits(&c, "ablate_zero.logits", &c.run(&zero, None).logits, &unchanged.logits);

        let means = HeadMeansRun::run(&CpuModel::new(&c.weights), &c.tokens()).unwrap();
        let dm_means = max_diff(&means.means, &c.tensor("ablate_mean.means"));
        assert!(dm_means <= 1e-5, "{} means {dm_means}", c.name);
        let mean = Intervention { ablate: heads, ablation: Ablation::Mean, ..Intervention::default() };
        let dm = check_logits(&c, "ablate_mean.logits", &c.run(&mean, Some(&means)).logits, &unchanged.logits);

        let skip = Intervention { skip_attn, skip_mlp, ..Intervention::default() };
        let ds = check_logits(&c, "skip.logits", &c.run(&skip, None).logits, &unchanged.logits);
        eprintln!("{}: max |Δ| zero {dz:.2e}, mean {dm:.2e} (means {dm_means:.2e}), skip {ds:.2e}", c.name);
    }
}

#[test]
fn nothing_knocked_out_and_strength_zero_leave_the_logits_exactly() {
    for c in cases() {
        let unchanged = plain(&c);
        let d = c.weights.config.dim;
        let direction: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin()).collect();
        let zero_steer = Steer { layer: 1, direction, strength: 0.0 };
        for iv in [Intervention::default(), Intervention { steer: Some(zero_steer), ..Intervention::default() }] {
            let got = c.run(&iv, None);
            assert!(got == unchanged, "{}: {} changed the inspection", c.name, iv.describe());
        }
        // Mean ablation of no heads needs no means.
        let none = Intervention { ablation: Ablation::Mean, ..Intervention::default() };
        assert!(c.run(&none, None) == unchanged);
        // Clearing the edits restores the model.
        let mut b = CpuBackend::new(c.weights.clone());
        let iv = Intervention { skip_mlp: vec![0], ..Intervention::default() };
        b.set_edits(Some(&Edits::new(&c.weights.config, &iv, None).unwrap())).unwrap();
        assert!(inspect(&mut b, &c.tokens()).unwrap() != unchanged);
        b.set_edits(None).unwrap();
        assert!(inspect(&mut b, &c.tokens()).unwrap() == unchanged);
    }
}

fn patch_of(c: &Case) -> PatchMaps {
    let p = &c.spec["patch"];
    let (a, b) = (p["answers"][0].as_u64().unwrap() as u32, p["answers"][1].as_u64().unwrap() as u32);
    Patcher::run(&CpuModel::new(&c.weights), &ids(&p["clean"]), &ids(&p["corrupt"]), a, b).unwrap()
}

#[test]
fn patching_maps_match_the_transformers_reference() {
    for c in cases() {
        let maps = patch_of(&c);
        let diffs = c.tensor("patch.diffs");
        // Differences of two logits, each within the logit tolerance.
        let tol = 2e-5 * max_abs(&c.tensor("logits")).max(1.0);
        let d0 = max_diff(&[maps.clean_diff, maps.corrupt_diff], &diffs);
        assert!(d0 <= tol, "{}: clean/corrupt differences {d0} > {tol}", c.name);
        assert!((diffs[0] - diffs[1]).abs() > 1.0, "{}: the prompts barely differ", c.name);
        let (dr, dh) = (max_diff(&maps.resid, &c.tensor("patch.resid")), max_diff(&maps.heads, &c.tensor("patch.heads")));
        assert!(dr <= tol && dh <= tol, "{}: residual map {dr}, heads map {dh} > {tol}", c.name);
        // The map says something: the last layer at the last position brings everything back,
        // and some head moves the difference by a tenth of the gap.
        let (l, t) = (maps.n_layers, maps.len());
        assert_eq!(maps.resid_at(l - 1, t - 1), maps.clean_diff, "{}", c.name);
        let gap = maps.clean_diff - maps.corrupt_diff;
        assert!(maps.heads.iter().any(|&x| (x - maps.corrupt_diff).abs() > 0.1 * gap.abs()), "{}", c.name);
        eprintln!("{}: gap {gap:.3}, max |Δ| residual map {dr:.2e}, heads map {dh:.2e}", c.name);
    }
}

#[test]
fn patching_identical_prompts_gives_the_clean_difference_everywhere() {
    for c in cases() {
        let clean = ids(&c.spec["patch"]["clean"]);
        let maps = Patcher::run(&CpuModel::new(&c.weights), &clean, &clean, 5, 9).unwrap();
        assert_eq!(maps.clean_diff, maps.corrupt_diff);
        assert!(maps.resid.iter().chain(&maps.heads).all(|&x| x == maps.clean_diff), "{}", c.name);
        assert_eq!(maps.recovered(maps.clean_diff), None, "no gap to recover");
    }
}

#[test]
fn patching_in_slices_equals_one_run_and_reports_progress() {
    let c = case("random_gqa");
    let whole = patch_of(&c);
    let p = &c.spec["patch"];
    let (a, b) = (p["answers"][0].as_u64().unwrap() as u32, p["answers"][1].as_u64().unwrap() as u32);
    let m = CpuModel::new(&c.weights);
    let mut run = Patcher::new(&c.weights.config, &ids(&p["clean"]), &ids(&p["corrupt"]), a, b).unwrap();
    let t = whole.len();
    // Two plain runs, then per position (1 + heads) runs per layer from there to the end.
    assert_eq!(run.total(), 2 * t + 3 * 7 * t * (t + 1) / 2);
    let mut calls = 0;
    while !run.advance(&m, 7).unwrap() {
        calls += 1;
        assert_eq!(run.done(), 7 * calls);
        assert!(matches!(run.clone().finish(), Err(Error::InvalidSetting(_))));
    }
    assert_eq!(run.done(), run.total());
    assert!(run.finish().unwrap() == whole);
}

#[test]
fn steering_matches_the_transformers_reference() {
    for c in cases() {
        let s = &c.spec["steer"];
        let layer = idx(&s["layer"]);
        let ins = |list: &Value| -> Vec<Inspection> {
            list.as_array().unwrap().iter().map(|p| inspect(&mut CpuBackend::new(c.weights.clone()), &ids(p)).unwrap()).collect()
        };
        let direction = steering_direction(&ins(&s["toward"]), &ins(&s["away"]), layer).unwrap();
        let want = c.tensor("steer.direction");
        let dd = max_diff(&direction, &want);
        assert!(dd <= 1e-5 * max_abs(&want).max(1.0), "{}: direction {dd}", c.name);
        let strength = s["strength"].as_f64().unwrap() as f32;
        let iv = Intervention { steer: Some(Steer { layer, direction, strength }), ..Intervention::default() };
        let ds = check_logits(&c, "steer.logits", &c.run(&iv, None).logits, &plain(&c).logits);
        eprintln!("{}: max |Δ| direction {dd:.2e}, steered logits {ds:.2e}", c.name);
    }
}

#[test]
fn bad_experiments_are_refused_in_words() {
    let w = stories260k();
    let c = &w.config;
    let msg = |iv: Intervention| Edits::new(c, &iv, None).unwrap_err().to_string();
    let heads = |l, h| Intervention { ablate: vec![HeadId { layer: l, head: h }], ..Intervention::default() };
    assert!(msg(heads(5, 0)).contains("5 layers (0..4)"), "{}", msg(heads(5, 0)));
    assert!(msg(heads(0, 8)).contains("8 heads per layer (0..7)"));
    assert!(msg(Intervention { skip_mlp: vec![9], ..Intervention::default() }).contains("layer 9"));
    let mean = Intervention { ablation: Ablation::Mean, ..heads(1, 1) };
    assert!(msg(mean).contains("mean outputs"));
    let steer = |direction: Vec<f32>, strength| Intervention {
        steer: Some(Steer { layer: 0, direction, strength }),
        ..Intervention::default()
    };
    assert!(msg(steer(vec![1.0; 3], 1.0)).contains("3 values"));
    assert!(msg(steer(vec![1.0; 64], f32::NAN)).contains("finite"));
    assert_eq!("1.3".parse::<HeadId>().unwrap(), HeadId { layer: 1, head: 3 });
    assert!("1-3".parse::<HeadId>().unwrap_err().to_string().contains("LAYER.HEAD"));
    // Means of another model; edits on another model.
    let other = random_weights(&Config::parse("16,40,2,2,1,64,32").unwrap(), 1).unwrap();
    let means = HeadMeansRun::run(&CpuModel::new(&other), &[1, 5, 6]).unwrap();
    assert!(Edits::new(c, &Intervention { ablation: Ablation::Mean, ..heads(0, 0) }, Some(&means)).is_err());
    let e = Edits::new(&other.config, &Intervention::default(), None).unwrap();
    assert!(CpuBackend::new(w.clone()).set_edits(Some(&e)).is_err());
    // Patching: unequal lengths, bad answers, empty prompts.
    let p = |a: &[u32], b: &[u32], x| Patcher::new(c, a, b, x, 3).map(|_| ()).unwrap_err().to_string();
    assert!(p(&[1, 2, 3], &[1, 2], 4).contains("same number of tokens (3 and 2)"));
    assert!(p(&[1, 2], &[1, 3], 512).contains("out of range"));
    assert!(p(&[], &[], 4).contains("empty"));
    // Steering: empty list, BOS-only prompt, a layer past the end.
    let ins = inspect(&mut CpuBackend::new(w.clone()), &[1, 300, 301]).unwrap();
    let bos = inspect(&mut CpuBackend::new(w.clone()), &[1]).unwrap();
    let one = std::slice::from_ref(&ins);
    assert!(steering_direction(&[], one, 0).unwrap_err().to_string().contains("empty"));
    assert!(steering_direction(one, &[bos], 0).unwrap_err().to_string().contains("only BOS"));
    assert!(steering_direction(one, one, 5).unwrap_err().to_string().contains("5 layers"));
}

#[test]
fn ready_made_patching_examples_work_on_stories260k() {
    let (w, tok) = (stories260k(), tok512());
    for ex in PATCH_EXAMPLES {
        let (clean, corrupt) = (tok.encode(ex.clean, true, false), tok.encode(ex.corrupt, true, false));
        let one = |s: &str| match tok.encode(s, false, false)[..] {
            [id] => id,
            ref v => panic!("{}: answer {s:?} is {v:?}", ex.name),
        };
        let maps = Patcher::run(&CpuModel::new(&w), &clean, &corrupt, one(ex.clean_answer), one(ex.corrupt_answer)).unwrap();
        eprintln!(
            "{}: {} tokens, clean difference {:.3}, corrupted {:.3}",
            ex.name,
            clean.len(),
            maps.clean_diff,
            maps.corrupt_diff
        );
        // Measured: she-or-he 5.675 / -3.899, he-or-she 2.018 / -5.377, ball-or-car 3.242 / -3.339.
        assert!(maps.clean_diff > 1.0 && maps.corrupt_diff < -1.0, "{}", ex.name);
        // Before the first changed token both runs are the same: patching there changes nothing.
        let at = clean.iter().zip(&corrupt).position(|(a, b)| a != b).unwrap();
        for l in 0..maps.n_layers {
            assert!((0..at).all(|t| maps.resid_at(l, t) == maps.corrupt_diff), "{} layer {l}", ex.name);
            assert!((0..maps.n_heads).all(|h| (0..at).all(|t| maps.heads_at(l, h, t) == maps.corrupt_diff)));
        }
        // After layer 2 one position holds nearly all of it (measured 0.96, 0.98, 0.97).
        let row: Vec<f32> = (0..maps.len()).map(|t| maps.recovered(maps.resid_at(2, t)).unwrap()).collect();
        eprintln!("  recovered after layer 2: {row:.2?}");
        assert!(row.iter().any(|&r| r > 0.9), "{}", ex.name);
    }
}
