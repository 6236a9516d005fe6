//! GPU workgroup tuning from the command line (lavapipe here): `bench --backend gpu --tune`
//! prints one row per candidate and a tuning JSON that `generate --tuning` takes; generation
//! with tuned shapes is still llama2.c's greedy story; tunings that do not fit are refused.

use crate::common;
use common::*;

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

fn reference_story() -> String {
    String::from_utf8(std::fs::read(data("reference/stories260K_greedy_256.txt")).unwrap()).unwrap()
}

fn generate_gpu(extra: &[&str]) -> std::process::Output {
    let (m, z) = (model(), tok512());
    let mut args = vec!["generate", s(&m), "-z", s(&z), "-t", "0", "-n", "256", "--backend", "gpu"];
    args.extend_from_slice(extra);
    tinylm(&args)
}

#[test]
fn bench_tune_measures_every_candidate_and_generate_uses_the_result() {
    let dir = scratch("tuning");
    let file = dir.join("stories260K.tuning.json");
    let m = model();
    let out = ok(&["bench", s(&m), "--backend", "gpu", "--tune", "--runs", "1", "-n", "16", "--json", "--save-tuning", s(&file)]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let t = &v["tuning"];
    assert_eq!(t["matvec"].as_array().unwrap().len(), 8, "one entry per candidate: {t}");
    assert_eq!(t["attention"].as_array().unwrap().len(), 4);
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "default and tuned shapes side by side");
    assert!(rows[0]["workgroups"].is_null());
    assert_eq!(rows[1]["workgroups"], t["workgroups"]);
    assert!(rows.iter().all(|r| r["decode_tok_s"].as_f64().unwrap() > 0.0));
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["workgroups"], t["workgroups"]);

    let run = generate_gpu(&["--tuning", s(&file)]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(String::from_utf8(run.stdout).unwrap(), reference_story(), "stdout stays llama2.c's");
}

/// With --f16-classifier the f16 classifier's kernel is tuned too (its own column and choice),
/// and the tuned decode runs it; an adapter without shader-f16 refuses the flag by name.
#[test]
fn bench_tune_with_the_f16_classifier_tunes_its_shape() {
    // Every candidate is measured: a budget (ms) that no machine spends, however loaded.
    let args = [
        "bench",
        "--shape",
        "micro",
        "--backend",
        "gpu",
        "--tune",
        "--tune-budget-ms",
        "1e9",
        "--f16-classifier",
        "--runs",
        "1",
        "-n",
        "8",
    ];
    let out = tinylm(&args);
    let (text, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        assert!(err.contains("shader-f16"), "{err}");
        return;
    }
    assert!(text.contains("f16 cls µs") && text.contains("chosen (f16 classifier)"), "{text}");
    let json = &text[text.find("tuning JSON").unwrap()..];
    let v: serde_json::Value = serde_json::from_str(&json[json.find('{').unwrap()..]).unwrap();
    assert!(v["workgroups"]["classifier_f16"]["x"].is_u64(), "{v}");
    assert!(v["matvec"].as_array().unwrap().iter().all(|m| m["classifier_f16_us"].as_f64().is_some_and(|us| us > 0.0)), "{v}");
}

#[test]
fn bench_tune_prints_the_table_and_the_json() {
    let text =
        String::from_utf8(ok(&["bench", "--shape", "micro", "--backend", "gpu", "--tune", "--runs", "1", "-n", "8"])).unwrap();
    assert!(text.contains("GPU tuning on") && text.contains("classifier µs"), "{text}");
    let table = &text[..text.find("chosen:").unwrap()];
    let rows = table.lines().filter(|l| l.contains("samples") || l.starts_with(|c: char| c.is_ascii_digit())).count();
    assert_eq!(rows, 2 + 8 + 4, "two headers, 8 matvec and 4 attention candidates: {text}");
    assert!(text.contains("[default shapes]") && text.contains("chosen:"), "{text}");
    let json = &text[text.find("tuning JSON").unwrap()..];
    let v: serde_json::Value = serde_json::from_str(&json[json.find('{').unwrap()..]).unwrap();
    assert_eq!(v["config"]["dim"], 16, "micro");
    assert!(fails(&["bench", "--shape", "micro", "--backend", "cpu", "--tune"]).contains("--backend gpu"));
}

#[test]
fn generate_tune_keeps_the_reference_story_and_reports_on_stderr() {
    let run = generate_gpu(&["--tune", "--tune-budget-ms", "3000"]);
    assert!(run.status.success());
    assert_eq!(String::from_utf8(run.stdout).unwrap(), reference_story());
    let err = String::from_utf8(run.stderr).unwrap();
    assert!(err.contains("gpu tuning: layers"), "{err}");
}

#[test]
fn tunings_that_do_not_fit_are_refused() {
    let dir = scratch("tuning_bad");
    let micro = dir.join("micro.json");
    ok(&[
        "bench",
        "--shape",
        "micro",
        "--backend",
        "gpu",
        "--tune",
        "--tune-budget-ms",
        "0",
        "--runs",
        "1",
        "-n",
        "4",
        "--json",
        "--save-tuning",
        s(&micro),
    ]);
    let err = String::from_utf8(generate_gpu(&["--tuning", s(&micro)]).stderr).unwrap();
    assert!(err.contains("measured for a model of shape"), "{err}");
    // Hand-edited past WebGPU's 256 invocations per workgroup: refused at load.
    let big = dir.join("big.json");
    let text = std::fs::read_to_string(&micro).unwrap();
    let at = text.find("\"workgroups\"").unwrap();
    let edited = format!("{}{}", &text[..at], text[at..].replacen("\"x\": 16", "\"x\": 128", 1));
    std::fs::write(&big, edited).unwrap();
    let err = fails(&["bench", "--shape", "micro", "--backend", "gpu", "--runs", "1", "-n", "4", "--tuning", s(&big)]);
    assert!(err.contains("invocations"), "{err}");
    std::fs::write(&big, "{ \"version\": 1 }").unwrap();
    assert!(String::from_utf8(generate_gpu(&["--tuning", s(&big)]).stderr).unwrap().contains("not a GPU tuning"));
    let m = model();
    let cpu = fails(&["generate", s(&m), "-z", s(&tok512()), "--backend", "cpu", "--tune"]);
    assert!(cpu.contains("--backend gpu or auto"), "{cpu}");
}
