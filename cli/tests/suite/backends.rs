//! `--backend gpu` (wgpu; lavapipe here) and `tinylm bench`, against the references.

use crate::common;
use common::*;

const FIXTURE: &str = "reference/stories260K_attention.safetensors";

#[test]
fn gpu_generate_prints_the_reference_greedy_story() {
    let (m, z) = (model(), tok512());
    let args = ["generate", m.to_str().unwrap(), "-z", z.to_str().unwrap(), "-t", "0", "-n", "256", "--backend", "gpu"];
    let expected = std::fs::read(data("reference/stories260K_greedy_256.txt")).unwrap();
    assert_eq!(String::from_utf8(ok(&args)).unwrap(), String::from_utf8(expected).unwrap());
}

#[test]
fn gpu_seeded_sampling_equals_the_cpu() {
    let run = |backend: &str| {
        ok(&[
            "generate",
            model().to_str().unwrap(),
            "-z",
            tok512().to_str().unwrap(),
            "-t",
            "1",
            "-p",
            "0.9",
            "-s",
            "133742",
            "--backend",
            backend,
        ])
    };
    let cpu = run("cpu");
    assert!(cpu.starts_with(b"Once upon a time, there was a little boy named Timmy"));
    assert_eq!(run("gpu"), cpu);
}

#[test]
fn gpu_logits_match_the_fixture() {
    let out = scratch("gpu_logits").join("gpu.safetensors");
    let fixture = std::fs::read(data(FIXTURE)).unwrap();
    let (_, tokens) = tensor(&fixture, "tokens");
    let list: Vec<String> = tokens.iter().map(|t| (*t as u32).to_string()).collect();
    ok(&["logits", model().to_str().unwrap(), "--tokens", &list.join(" "), "-o", out.to_str().unwrap(), "--backend", "gpu"]);
    let ours = std::fs::read(&out).unwrap();
    let (_, want) = tensor(&fixture, "llama2c.logits");
    let (_, got) = tensor(&ours, "logits");
    let d = max_diff(&got, &want);
    assert!(d <= 1e-4 * max_abs(&want).max(1.0), "logits Δ {d}");
    let (_, want) = tensor(&fixture, "llama2c.attn");
    let (_, got) = tensor(&ours, "attn");
    assert!(max_diff(&got, &want) <= 1e-4, "attention Δ {}", max_diff(&got, &want));
}

#[test]
fn bench_reports_every_configuration_with_one_submit_per_gpu_token() {
    let out = ok(&["bench", "--shape", "micro", "--runs", "1", "-n", "16", "--prompt-len", "8", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "cpu ×1, cpu ×2, gpu");
    assert_eq!(rows[0]["threads"], 1);
    assert_eq!(rows[1]["threads"], 2);
    for r in rows {
        assert!(r["decode_tok_s"].as_f64().unwrap() > 0.0);
        assert!(r["prefill_tok_s"].as_f64().unwrap() > 0.0);
    }
    let gpu = &rows[2];
    assert!(gpu["backend"].as_str().unwrap().starts_with("gpu"), "{gpu}");
    assert_eq!(gpu["submits_per_token"], 1.0);
    // micro has 2 layers: embedding + 3·2 + classifier + sampler (the three-dispatch layer).
    assert_eq!(gpu["dispatches_per_token"], 9.0, "{gpu}");
    assert_eq!(rows[0]["dispatches_per_token"], 0.0);
    assert!(gpu["bytes_per_token"].as_f64().unwrap() <= 16.0);
    assert!(v["machine"].as_str().unwrap().contains("cores"));
}

#[test]
fn bench_f16_classifier_on_the_gpu_and_named_shapes() {
    // lavapipe offers shader-f16; the row says the f16 classifier ran, still one submit per token.
    let out = ok(&["bench", "--shape", "micro", "--backend", "gpu", "--f16-classifier", "--runs", "1", "-n", "8", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let gpu = &v["results"][0];
    assert_eq!(gpu["f16_classifier"], true, "{gpu}");
    assert_eq!(gpu["submits_per_token"], 1.0);
    // The five-dispatch layer for comparison: 1 + 5·2 + 1 + 1.
    let out = ok(&["bench", "--shape", "micro", "--backend", "gpu", "--five-dispatch", "--runs", "1", "-n", "4", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["results"][0]["dispatches_per_token"], 13.0, "{}", v["results"][0]);
    let err = fails(&["bench", "--shape", "s999m"]);
    assert!(err.contains("s42m") && err.contains("s110m"), "{err}");
}

#[test]
fn bad_backend_and_threads_are_clear_errors() {
    let (m, z) = (model(), tok512());
    let err = fails(&["generate", m.to_str().unwrap(), "-z", z.to_str().unwrap(), "--backend", "tpu"]);
    assert!(err.contains("cpu, gpu or auto"), "{err}");
    let err = fails(&["bench", "--shape", "micro", "--threads", "0"]);
    assert!(err.contains("--threads"), "{err}");
}
