//! The experiment flags (`--ablate`, `--ablate-mean`, `--skip-attn`, `--skip-mlp`, `--steer`) on
//! `tinylm logits`, `inspect` and `generate`, and `tinylm patch`, against the transformers
//! fixtures of engine/tests/fixtures/interp (scripts/reference/interp.py), on the CPU and GPU.

use crate::common;
use common::*;
use serde_json::Value;

fn fixture() -> (Value, Vec<u8>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/interp");
    let spec = serde_json::from_slice(&std::fs::read(dir.join("stories260K.json")).unwrap()).unwrap();
    (spec, std::fs::read(dir.join("stories260K.safetensors")).unwrap())
}

fn list(v: &Value) -> String {
    v.as_array().unwrap().iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}

/// The knock-out heads as `--ablate` wants them ("0.2,1.5,…").
fn heads(spec: &Value) -> String {
    let h = spec["knockout"]["heads"].as_array().unwrap();
    h.iter().map(|p| format!("{}.{}", p[0], p[1])).collect::<Vec<_>>().join(",")
}

/// `tinylm logits` of the fixture text with `extra` flags: the logits.
fn logits(test: &str, extra: &[String]) -> Vec<f32> {
    let (spec, _) = fixture();
    let out = scratch(test).join("l.safetensors");
    let mut args: Vec<String> =
        ["logits", &model().display().to_string(), "-z", &tok512().display().to_string()].map(String::from).to_vec();
    args.extend(["--tokens".into(), list(&spec["tokens"]), "-o".into(), out.display().to_string()]);
    args.extend(extra.iter().cloned());
    ok(&args);
    tensor(&std::fs::read(out).unwrap(), "logits").1
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn logits_with_knockouts_and_steering_match_the_reference_on_cpu_and_gpu() {
    let (spec, st) = fixture();
    let k = &spec["knockout"];
    let st_ = &spec["steer"];
    let mut steer = vec![s("--steer"), st_["layer"].to_string(), s("--strength"), st_["strength"].to_string()];
    for t in st_["toward_text"].as_array().unwrap() {
        steer.extend([s("--toward"), t.as_str().unwrap().into()]);
    }
    for t in st_["away_text"].as_array().unwrap() {
        steer.extend([s("--away"), t.as_str().unwrap().into()]);
    }
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("ablate_zero.logits", vec![s("--ablate"), heads(&spec)]),
        ("ablate_mean.logits", vec![s("--ablate"), heads(&spec), s("--ablate-mean")]),
        ("skip.logits", vec![s("--skip-attn"), list(&k["skip_attn"]), s("--skip-mlp"), list(&k["skip_mlp"])]),
        ("steer.logits", steer),
    ];
    for (key, flags) in cases {
        let want = tensor(&st, key).1;
        for (backend, tol) in [("cpu", 1e-5 * max_abs(&want).max(1.0)), ("gpu", 1e-4)] {
            let mut args = flags.clone();
            args.extend([s("--backend"), s(backend)]);
            let got = logits(&format!("{key}-{backend}"), &args);
            let d = max_diff(&got, &want);
            println!("{key} on {backend}: max |Δ| {d:.2e}");
            assert!(d <= tol, "{key} on {backend}: {d} > {tol}");
        }
    }
}

#[test]
fn inspect_reports_what_moved() {
    let (spec, _) = fixture();
    let (m, z) = (model().display().to_string(), tok512().display().to_string());
    let ids = list(&spec["tokens"]);
    let run = |extra: &[&str]| -> Value {
        let mut args = vec!["inspect", &m, "-z", &z, "--ids", &ids, "--json", "--top", "1"];
        args.extend(extra);
        serde_json::from_slice(&ok(&args)).unwrap()
    };
    let plain = run(&[]);
    assert!(plain["changes"].is_null() && plain["intervention"].is_null());
    let changed = run(&["--ablate", "1.5,3.0", "--skip-mlp", "4"]);
    assert_eq!(changed["intervention"]["description"], "heads 1.5, 3.0 zeroed; MLP skipped in layer 4");
    let ch = changed["changes"].as_array().unwrap();
    assert_eq!(ch.len(), 16);
    for (t, c) in ch.iter().enumerate() {
        // "before" is the unchanged model's own figure, "after" the changed model's.
        let before = &plain["positions"][t]["next_token"]["top"][0];
        assert_eq!(c["top_before"]["id"], before["id"], "position {t}");
        assert_eq!(c["top_before"]["prob"], before["prob"], "position {t}");
        let after = &changed["positions"][t]["next_token"]["top"][0];
        assert_eq!(c["top_after"]["id"], after["id"], "position {t}");
    }
    assert!(ch[15]["next"].is_null() && ch[15]["prob_before"].is_null());
    assert!(ch.iter().any(|c| c["kl"].as_f64().unwrap() > 0.1), "the knock-outs move something");
    // Nothing changed, the same as without flags: --steer at strength 0.
    let zero = run(&["--steer", "1", "--toward", "happy", "--away", "sad", "--strength", "0"]);
    assert!(zero["changes"].as_array().unwrap().iter().all(|c| c["kl"].as_f64() == Some(0.0)));
    assert_eq!(zero["positions"], plain["positions"]);
}

#[test]
fn generate_regenerates_with_the_same_seed_on_cpu_and_gpu() {
    let (m, z) = (model().display().to_string(), tok512().display().to_string());
    let run = |backend: &str| -> Value {
        let args = ["generate", &m, "-z", &z, "-s", "7", "-n", "80", "--ablate", "1.5,3.0", "--backend", backend, "--json"];
        serde_json::from_slice(&ok(&args)).unwrap()
    };
    let cpu = run("cpu");
    // The unchanged story is plain `generate`'s with the same seed.
    let plain = ok(&["generate", &m, "-z", &z, "-s", "7", "-n", "80"]);
    assert_eq!(format!("{}\n", cpu["original"]["text"].as_str().unwrap()), String::from_utf8(plain).unwrap());
    let (a, b) = (ids(&cpu["original"]["tokens"]), ids(&cpu["runs"][0]["tokens"]));
    let at = a.iter().zip(&b).position(|(x, y)| x != y).expect("the knock-outs change the story");
    assert_eq!(cpu["runs"][0]["first_difference"], at);
    let gpu = run("gpu");
    assert_eq!(gpu["original"]["tokens"], cpu["original"]["tokens"]);
    assert_eq!(gpu["runs"][0]["tokens"], cpu["runs"][0]["tokens"], "GPU knock-outs = CPU knock-outs");
    // Several strengths, side by side; strength 0 is the unchanged story.
    let args = ["generate", &m, "-z", &z, "-t", "0", "-n", "40", "--steer", "2", "--toward", "She was happy."];
    let mut args = args.to_vec();
    args.extend(["--away", "She was sad.", "--strength", "0,3", "--json"]);
    let j: Value = serde_json::from_slice(&ok(&args)).unwrap();
    let runs = j["runs"].as_array().unwrap();
    assert_eq!((runs.len(), &runs[0]["strength"], &runs[1]["strength"]), (2, &Value::from(0.0), &Value::from(3.0)));
    assert!(runs[0]["first_difference"].is_null() && runs[0]["tokens"] == j["original"]["tokens"]);
    assert!(j["intervention"]["steer"]["direction"].as_array().unwrap().len() == 64);
}

#[test]
fn patch_maps_match_the_reference() {
    let (spec, st) = fixture();
    let (m, z) = (model().display().to_string(), tok512().display().to_string());
    let j: Value = serde_json::from_slice(&ok(&["patch", &m, "-z", &z, "--example", "she-or-he", "--json"])).unwrap();
    assert_eq!(j["clean"]["tokens"], spec["patch"]["clean"]);
    assert_eq!(j["corrupt"]["tokens"], spec["patch"]["corrupt"]);
    assert_eq!(
        ids(&Value::from(vec![j["clean_answer"]["id"].clone(), j["corrupt_answer"]["id"].clone()])),
        ids(&spec["patch"]["answers"])
    );
    let f = |v: &Value| -> Vec<f32> {
        let mut out = Vec::new();
        let mut walk = vec![v];
        while let Some(x) = walk.pop() {
            match x {
                Value::Array(a) => walk.extend(a.iter().rev()),
                n => out.push(n.as_f64().unwrap() as f32),
            }
        }
        out
    };
    let tol = 2e-5 * 13.0; // two logits, each within 1e-5·max|logit| (≈13 here)
    assert!(
        max_diff(
            &[j["clean_diff"].as_f64().unwrap() as f32, j["corrupt_diff"].as_f64().unwrap() as f32],
            &tensor(&st, "patch.diffs").1
        ) <= tol
    );
    assert!(max_diff(&f(&j["resid"]), &tensor(&st, "patch.resid").1) <= tol);
    assert!(max_diff(&f(&j["heads"]), &tensor(&st, "patch.heads").1) <= tol);
    // Identical prompts: nothing to recover, every patched run the clean difference.
    let p = "Lily had a big red ball. She loved her";
    let j: Value = serde_json::from_slice(&ok(&[
        "patch",
        &m,
        "-z",
        &z,
        "--clean",
        p,
        "--corrupt",
        p,
        "--clean-answer",
        "b",
        "--corrupt-answer",
        "c",
        "--json",
    ]))
    .unwrap();
    assert_eq!(j["clean_diff"], j["corrupt_diff"]);
    assert!(f(&j["resid"]).iter().chain(&f(&j["heads"])).all(|&x| x == j["clean_diff"].as_f64().unwrap() as f32));
    assert!(j["resid_recovered"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap()).all(Value::is_null));
    let text = String::from_utf8(ok(&["patch", &m, "-z", &z, "--example", "he-or-she"])).unwrap();
    assert!(text.contains("clean 2.01") && text.contains("L4") && text.contains("heads below 10%"), "{text}");
}

#[test]
fn bad_experiments_fail_in_words() {
    let (m, z) = (model().display().to_string(), tok512().display().to_string());
    let gen = |extra: &[&str]| {
        let mut a = vec!["generate", &m, "-z", &z, "-n", "8"];
        a.extend(extra);
        fails(&a)
    };
    assert!(gen(&["--ablate", "9.0"]).contains("5 layers (0..4)"));
    assert!(gen(&["--ablate", "1-2"]).contains("LAYER.HEAD"));
    assert!(gen(&["--skip-mlp", "7"]).contains("layer 7"));
    let out = scratch("bad").join("x.safetensors").display().to_string();
    let err = fails(&["logits", &m, "--tokens", "1,2", "-o", &out, "--steer", "1", "--toward", "a", "--away", "b"]);
    assert!(err.contains("--tokenizer"), "{err}");
    let err = fails(&[
        "logits",
        &m,
        "-z",
        &z,
        "--tokens",
        "1,2",
        "-o",
        &out,
        "--steer",
        "1",
        "--toward",
        "a",
        "--away",
        "b",
        "--strength",
        "1,2",
    ]);
    assert!(err.contains("one --strength"), "{err}");
    let patch = |extra: &[&str]| {
        let mut a = vec!["patch", &m, "-z", &z];
        a.extend(extra);
        fails(&a)
    };
    assert!(patch(&["--example", "nope"]).contains("she-or-he"));
    let e = patch(&["--clean", "The girl", "--corrupt", "The boy", "--clean-answer", "girl", "--corrupt-answer", "boy"]);
    assert!(e.contains("one token"), "{e}");
    let e = patch(&["--clean", "The girl ran", "--corrupt", "The cat ran", "--clean-answer", "she", "--corrupt-answer", "he"]);
    assert!(e.contains("same number of tokens"), "{e}");
}
