//! `generate --compare` (several stories decoded together on the CPU or the GPU) against one
//! `generate` run per setting, and `bench --sequences`'s rows.

use crate::common;
use common::*;

#[test]
fn compare_prints_each_settings_own_story() {
    let base = ["-i", "Once upon a time", "-n", "200", "-p", "0.9", "-s", "5"];
    let mut args = base.to_vec();
    args.extend(["--compare", "t=0; t=1.0,s=133742; t=0.8,p=0.5; t=1.2,s=9"]);
    let got = generate_260k(&args);
    let mut expected = Vec::new();
    for (t, p, s) in [("0", "0.9", "5"), ("1", "0.9", "133742"), ("0.8", "0.5", "5"), ("1.2", "0.9", "9")] {
        expected.extend_from_slice(format!("[t={t} p={p} s={s}]\n").as_bytes());
        expected.extend(generate_260k(&["-i", "Once upon a time", "-n", "200", "-t", t, "-p", p, "-s", s]));
    }
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected));
    // The same stories from one batched pass a step on the GPU (lavapipe here).
    args.extend(["--backend", "gpu"]);
    assert_eq!(String::from_utf8_lossy(&generate_260k(&args)), String::from_utf8_lossy(&expected), "on the GPU");
}

#[test]
fn compare_refuses_bad_settings_in_words() {
    let z = tok512().display().to_string();
    let m = model().display().to_string();
    let err = fails(&["generate", &m, "-z", &z, "--compare", "t=hot"]);
    assert!(err.contains("`hot` is not a number"), "{err}");
    let err = fails(&["generate", &m, "-z", &z, "--compare", "t=1", "--backend", "auto"]);
    assert!(err.contains("--backend cpu or gpu"), "{err}");
}

#[test]
fn bench_sequences_adds_a_batch_row_per_cpu_thread_count() {
    let out = ok(&[
        "bench",
        "--shape",
        "micro",
        "--backend",
        "cpu",
        "--threads",
        "1,2",
        "--sequences",
        "3",
        "--runs",
        "1",
        "-n",
        "8",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let rows = v["results"].as_array().unwrap();
    let seqs: Vec<(u64, u64)> = rows.iter().map(|r| (r["threads"].as_u64().unwrap(), r["sequences"].as_u64().unwrap())).collect();
    assert_eq!(seqs, [(1, 1), (1, 3), (2, 1), (2, 3)]);
    assert_eq!(rows[1]["decode_tokens"], 24, "3 sequences of 8 tokens");
    assert!(rows[1]["decode_tok_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_sequences_adds_a_batch_row_on_the_gpu() {
    let out = ok(&["bench", "--shape", "micro", "--backend", "gpu", "--sequences", "3", "--runs", "1", "-n", "8", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let rows = v["results"].as_array().unwrap();
    let seqs: Vec<u64> = rows.iter().map(|r| r["sequences"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 3]);
    assert!(rows[1]["backend"].as_str().unwrap().starts_with("gpu"), "{}", rows[1]["backend"]);
    assert_eq!(rows[1]["decode_tokens"], 24, "3 sequences of 8 tokens");
}
