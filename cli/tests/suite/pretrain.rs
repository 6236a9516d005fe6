//! `tinylm pretrain` against the PyTorch reference run (engine/tests/fixtures/pretrain), its
//! resume, its outputs and errors, and the learning-rate experiment.

use crate::common;

use std::path::Path;

use common::{fails, ok, scratch, tensor};
use serde_json::Value;
use tinylm_engine::checkpoint;
use tinylm_engine::randmodel::random_tokens;

fn fixture() -> (Value, Vec<u8>) {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/pretrain/random_gqa");
    (
        serde_json::from_slice(&std::fs::read(d.join("summary.json")).unwrap()).unwrap(),
        std::fs::read(d.join("reference.safetensors")).unwrap(),
    )
}

/// The fixture's run as flags (its data: 300 tokens of seed 11, windows of 16, 3 per step).
fn gqa_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let tokens: Vec<String> = random_tokens(11, 300, 96).iter().map(u32::to_string).collect();
    let mut v: Vec<String> = [
        "pretrain",
        "--config",
        "48,128,2,6,2,96,16,untied",
        "--seed",
        "7",
        "--tokens",
        &tokens.join(" "),
        "--seq",
        "16",
        "--batch",
        "3",
        "--steps",
        "5",
        "--lr",
        "3e-3",
        "--min-lr",
        "3e-4",
        "--warmup",
        "2",
        "--schedule",
        "cosine",
        "--wd",
        "0.1",
        "--clip",
        "1.0",
        "--z-loss",
        "1e-3",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(out.display().to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn pretrain_reproduces_the_pytorch_run() {
    let (summary, reference) = fixture();
    let out = scratch("pretrain-gqa");
    ok(&gqa_args(&out, &[]));
    let losses = read_json(&out.join("losses.json"));
    let steps = summary["steps"].as_array().unwrap();
    let mut want: Vec<f64> = steps.iter().map(|s| s["loss"].as_f64().unwrap()).collect();
    want.push(summary["final_loss"].as_f64().unwrap());
    let got: Vec<f64> = losses.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        // 1e-5 relative (the CPU bound); the engine test measures ≤ 2e-7.
        assert!((g - w).abs() < 1e-5 * w.abs(), "loss {k}: {g} vs {w}");
    }
    let metrics = read_json(&out.join("metrics.json"));
    for (m, s) in metrics.as_array().unwrap().iter().zip(steps) {
        for key in ["lr", "grad_norm", "lse_mean", "logit_max"] {
            let (g, w) = (m[key].as_f64().unwrap(), s[key].as_f64().unwrap());
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1e-3), "{key}: {g} vs {w}");
        }
        assert_eq!(m["attn_logit_max"].as_array().unwrap().len(), 2);
        assert!(m["update_ratio"]["wcls"].is_number() && m["held_out"].is_null());
    }
    let (w, format) = checkpoint::read(&std::fs::read(out.join("model.bin")).unwrap(), "model.bin").unwrap();
    assert!(format.describe().contains("v0") || format.describe().contains("legacy"), "{}", format.describe());
    for (spec, got) in w.tensors() {
        let want = tensor(&reference, &format!("final.{}", spec.tensor.name())).1;
        let e = common::max_diff(got, &want) / common::max_abs(&want);
        // The bound; the engine test measures ≤ 2.7e-5.
        assert!(e < 1e-4, "final {} off by {e:e}", spec.tensor.name());
    }
}

#[test]
fn a_resumed_run_writes_what_an_uninterrupted_one_writes() {
    let (whole, part, resumed) = (scratch("pretrain-whole"), scratch("pretrain-part"), scratch("pretrain-resumed"));
    ok(&gqa_args(&whole, &[]));
    ok(&gqa_args(&part, &["--stop-after", "2"]));
    assert_eq!(read_json(&part.join("run.json"))["steps_done"], 2);
    ok(&["pretrain", "--resume", part.to_str().unwrap(), "-o", resumed.to_str().unwrap()]);
    for f in ["model.bin", "optimizer.safetensors", "losses.json", "metrics.json", "run.json"] {
        assert!(std::fs::read(whole.join(f)).unwrap() == std::fs::read(resumed.join(f)).unwrap(), "{f} differs");
    }
    // A resumed run keeps its settings.
    let e = fails(&["pretrain", "--resume", part.to_str().unwrap(), "--lr", "1", "-o", resumed.to_str().unwrap()]);
    assert!(e.contains("--lr cannot change a resumed run"), "{e}");
}

#[test]
fn pretrain_on_the_gpu_reproduces_the_pytorch_run_and_resumes() {
    let (summary, reference) = fixture();
    let (whole, part, resumed) = (scratch("pretrain-gpu"), scratch("pretrain-gpu-part"), scratch("pretrain-gpu-resumed"));
    let said = String::from_utf8(ok(&gqa_args(&whole, &["--backend", "gpu"]))).unwrap();
    assert!(said.contains("on the GPU"), "{said}");
    let steps = summary["steps"].as_array().unwrap();
    let mut want: Vec<f64> = steps.iter().map(|s| s["loss"].as_f64().unwrap()).collect();
    want.push(summary["final_loss"].as_f64().unwrap());
    let got = read_json(&whole.join("losses.json"));
    for (k, (g, w)) in got.as_array().unwrap().iter().zip(&want).enumerate() {
        let g = g.as_f64().unwrap();
        // The GPU bound is 1e-3 relative; engine/tests/gpu_pretrain.rs measures ≤ 2e-7.
        assert!((g - w).abs() < 1e-5 * w.abs(), "GPU loss {k}: {g} vs {w}");
    }
    let (w, _) = checkpoint::read(&std::fs::read(whole.join("model.bin")).unwrap(), "model.bin").unwrap();
    for (spec, got) in w.tensors() {
        let want = tensor(&reference, &format!("final.{}", spec.tensor.name())).1;
        let e = common::max_diff(got, &want) / common::max_abs(&want);
        assert!(e < 1e-4, "GPU final {} off by {e:e}", spec.tensor.name());
    }
    // Stopped after 2 steps and resumed on the GPU: the same files as the run without a stop.
    ok(&gqa_args(&part, &["--backend", "gpu", "--stop-after", "2"]));
    ok(&["pretrain", "--resume", part.to_str().unwrap(), "--backend", "gpu", "-o", resumed.to_str().unwrap()]);
    for f in ["model.bin", "optimizer.safetensors", "losses.json", "metrics.json", "run.json"] {
        assert!(std::fs::read(whole.join(f)).unwrap() == std::fs::read(resumed.join(f)).unwrap(), "GPU {f} differs");
    }
}

#[test]
fn bad_settings_are_refused_in_words() {
    let d = scratch("pretrain-bad");
    for (flags, says) in [
        (vec!["--clip", "-1"], "--clip"),
        (vec!["--z-loss", "-0.1"], "z-loss"),
        (vec!["--schedule", "linear"], "schedule `linear`"),
        (vec!["--lr-sweep", "1e-3,x"], "`x` is not a learning rate"),
        (vec!["--min-lr", "1"], "minimum learning rate"),
    ] {
        let mut args = gqa_args(&d, &[]);
        for pair in flags.chunks(2) {
            let at = args.iter().position(|a| a == pair[0]).unwrap_or(args.len());
            if at < args.len() {
                args[at + 1] = pair[1].to_string();
            } else {
                args.extend(pair.iter().map(|s| s.to_string()));
            }
        }
        let e = fails(&args);
        assert!(e.contains(says), "{flags:?}: {e}");
    }
    let e = fails(&["pretrain", "--shape", "nope", "--tokens", "1 2 3", "-o", d.to_str().unwrap()]);
    assert!(e.contains("unknown shape"), "{e}");
}

#[test]
fn text_training_with_held_out_loss_and_a_model_that_generates() {
    let d = scratch("pretrain-text");
    let text = common::data("corpora/gutenberg/the_tale_of_peter_rabbit_pg14304.txt");
    let (m, z) = (common::model(), common::tok512());
    ok(&[
        "pretrain",
        m.to_str().unwrap(),
        "-z",
        z.to_str().unwrap(),
        "--text-file",
        text.to_str().unwrap(),
        "--eval-file",
        text.to_str().unwrap(),
        "--steps",
        "3",
        "--eval-every",
        "2",
        "--seq",
        "32",
        "-o",
        d.to_str().unwrap(),
    ]);
    let metrics = read_json(&d.join("metrics.json"));
    let held: Vec<&Value> = metrics.as_array().unwrap().iter().map(|m| &m["held_out"]).collect();
    assert!(held[0].is_null() && held[1].is_number() && held[2].is_number(), "{held:?}");
    let story = ok(&["generate", d.join("model.bin").to_str().unwrap(), "-z", z.to_str().unwrap(), "-t", "0", "-n", "16"]);
    assert!(!story.is_empty());
}

#[test]
fn the_learning_rate_sweep_writes_its_curves() {
    let d = scratch("pretrain-sweep");
    let tokens: Vec<String> = random_tokens(4, 200, 64).iter().map(u32::to_string).collect();
    ok(&[
        "pretrain",
        "--shape",
        "micro",
        "--tokens",
        &tokens.join(" "),
        "--seq",
        "16",
        "--batch",
        "4",
        "--steps",
        "6",
        "--lr-sweep",
        "1e-3,1e-1,30",
        "-o",
        d.to_str().unwrap(),
    ]);
    let j = read_json(&d.join("lr_sweep.json"));
    let variants = j["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 4);
    assert_eq!(variants[3]["name"], "warm-up + z-loss");
    for v in variants {
        let runs = v["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 3);
        let small = &runs[0];
        assert!(small["final_loss"].as_f64().unwrap() < small["loss"][0].as_f64().unwrap() + 1.0);
        for r in runs {
            let n = r["loss"].as_array().unwrap().len();
            assert!(r["diverged_at"].is_number() || n == 6, "{r}");
            assert_eq!(r["attn_logit_max"].as_array().unwrap().len(), n);
        }
    }
}
