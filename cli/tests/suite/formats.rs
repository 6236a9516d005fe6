//! GGUF files and Hugging Face folders on the command line: logits (CPU and GPU) against
//! transformers' fixtures with the model's own tokenizer (no -z), greedy generation, `info`,
//! `convert` round trips (llama2.c ↔ GGUF ↔ safetensors) and refusals.

use crate::common;
use common::*;
use std::path::PathBuf;

fn fx(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/formats").join(rel)
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

const PROMPT: &str = "Once upon a time, there was a little robot who";

/// `tinylm logits` of the prompt (encoded by the model's own tokenizer) vs the fixture's logits.
fn logits_error(model: &str, reference: &str, backend: &str) -> f32 {
    let out = scratch(&format!("fmt-{}-{backend}", reference.replace('/', "_"))).join("l.safetensors");
    ok(&["logits", s(&fx(model)), "-i", PROMPT, "-o", s(&out), "--backend", backend]);
    let got = tensor(&std::fs::read(&out).unwrap(), "logits").1;
    let r = std::fs::read(fx(&format!("reference/{reference}.safetensors"))).unwrap();
    let want = tensor(&r, "logits").1;
    assert_eq!(got.len(), want.len(), "{model}: the prompt encodes to the fixture's tokens");
    max_diff(&got, &want) / max_abs(&want).max(1.0)
}

#[test]
fn logits_of_gguf_and_hf_models_match_transformers() {
    for (model, reference) in [
        ("hf/llama3_headdim", "llama3_headdim"),
        ("hf/mha_tied_bf16", "mha_tied_bf16"),
        ("gguf/quant.q4_k_m.gguf", "quant.q4_k_m.gguf"),
        ("gguf/mha_tied.f32.gguf", "mha_tied.f32.gguf"),
    ] {
        let cpu = logits_error(model, reference, "cpu");
        assert!(cpu <= 1e-5, "{model} cpu: {cpu:e}");
        let gpu = logits_error(model, reference, "gpu");
        assert!(gpu <= 1e-4, "{model} gpu: {gpu:e}");
    }
}

#[test]
fn greedy_generation_continues_as_transformers() {
    // The tokens after the prompt decode to the reference's greedy tokens' text.
    let r = std::fs::read(fx("reference/gqa_untied.safetensors")).unwrap();
    let greedy: Vec<String> = tensor(&r, "greedy").1.iter().map(|&t| (t as u32).to_string()).collect();
    let tokens: Vec<String> = tensor(&r, "tokens").1.iter().map(|&t| (t as u32).to_string()).collect();
    // -n counts positions: the prompt after BOS, then the greedy tokens.
    let n = (tokens.len() + greedy.len() - 1).to_string();
    let model = fx("hf/gqa_untied");
    for backend in ["cpu", "gpu"] {
        let story = ok(&["generate", s(&model), "-t", "0", "-n", &n, "-i", PROMPT, "--backend", backend]);
        let tok = fx("tokenizers/bbpe.json");
        let mut args = vec!["decode", "-z", s(&tok)];
        args.extend(tokens.iter().chain(&greedy).map(String::as_str));
        let want = ok(&args);
        assert_eq!(String::from_utf8_lossy(&story).trim_end(), String::from_utf8_lossy(&want).trim_end(), "{backend}");
    }
}

#[test]
fn info_describes_gguf_and_hf_models() {
    let v: serde_json::Value = serde_json::from_slice(&ok(&["info", s(&fx("gguf/llama3_headdim.f32.gguf")), "--json"])).unwrap();
    assert_eq!((v["head_size"].as_u64(), v["rope_theta"].as_f64(), v["n_kv_heads"].as_u64()), (Some(24), Some(5e5), Some(1)));
    assert_eq!(v["rope_scaling"]["factor"].as_f64(), Some(8.0));
    assert!(v["format"].as_str().unwrap().starts_with("GGUF v3"), "{v}");
    let v: serde_json::Value = serde_json::from_slice(&ok(&["info", s(&fx("hf/mha_tied_bf16")), "--json"])).unwrap();
    assert!(v["format"].as_str().unwrap().contains("sharded safetensors, BF16"), "{v}");
    assert_eq!(v["tokenizer"].as_str(), Some("512 tokens, its own"));
    // Held as BF16 (2 bytes a matrix weight, the norms in f32), and the cache a run adds: keys
    // and values of every layer and position, f32.
    let n = |k: &str| v[k].as_u64().unwrap();
    let norms = n("dim") * (2 * n("n_layers") + 1);
    assert_eq!(n("weight_bytes"), 2 * (n("parameters") - norms) + 4 * norms);
    assert_eq!(v["kept_as"].as_str(), Some("BF16"));
    assert_eq!(n("cache_bytes"), 2 * 4 * n("n_layers") * n("seq_len") * n("kv_dim"));
    let text = String::from_utf8(ok(&["info", s(&fx("hf/mha_tied_bf16"))])).unwrap();
    assert!(text.contains(&format!("in memory   {:.3} MB of weights (BF16) + ", n("weight_bytes") as f64 / 1e6)), "{text}");
}

#[test]
fn convert_round_trips_keep_the_story() {
    // stories260K → GGUF (f32, with tok512 inside) → safetensors → llama2.c: the greedy story is
    // run.c's at every step (and the weights come back bit for bit); GGUF q8_0 and llama2.c v2 (q8_0) tell the same first sentence.
    let dir = scratch("convert");
    let (m, z) = (model(), tok512());
    let story = |path: &std::path::Path, with_z: bool| {
        let mut args = vec!["generate", s(path), "-t", "0", "-n", "100"];
        if with_z {
            args.extend(["-z", s(&z)]);
        }
        String::from_utf8(ok(&args)).unwrap()
    };
    let want = story(&m, true);
    let (g, hf, back, q8) = (dir.join("s.gguf"), dir.join("s_hf"), dir.join("s.bin"), dir.join("s8.gguf"));
    ok(&["convert", s(&m), "--to", "gguf", "-z", s(&z), "-o", s(&g)]);
    assert_eq!(story(&g, false), want, "GGUF with its own tokenizer");
    ok(&["convert", s(&g), "--to", "safetensors", "-o", s(&hf)]);
    assert_eq!(story(&hf, true), want, "safetensors folder");
    ok(&["convert", s(&hf), "--to", "llama2c", "-o", s(&back)]);
    assert_eq!(story(&back, true), want, "back to llama2.c");
    // The same bytes as llama2.c → llama2.c (whose unused RoPE tables are recomputed).
    let direct = dir.join("direct.bin");
    ok(&["convert", s(&m), "--to", "llama2c", "-o", s(&direct)]);
    assert!(std::fs::read(&back).unwrap() == std::fs::read(&direct).unwrap(), "round trip changed the weights");
    ok(&["convert", s(&m), "--to", "gguf", "--type", "q8_0", "-o", s(&q8)]);
    let first = |t: &str| t.split('.').next().unwrap().to_string();
    assert_eq!(first(&story(&q8, true)), first(&want));
}

#[test]
fn convert_writes_the_legacy_4_and_5_bit_types() {
    // stories260K as GGUF Q4_0, Q4_1, Q5_0, Q5_1 (quantizers checked byte for byte against gguf-py
    // in the engine's tests/suite/formats.rs): every matrix whose rows are whole blocks of 32 in that
    // type (w2's rows of 172 stay F16, as llama.cpp does), the file a model `generate` runs, and
    // with 5 bits and a min the greedy story's first sentence is still f32's.
    let dir = scratch("convert-4-5");
    let (m, z) = (model(), tok512());
    let story = |p: &std::path::Path| String::from_utf8(ok(&["generate", s(p), "-z", s(&z), "-t", "0", "-n", "60"])).unwrap();
    let first = |t: &str| t.split('.').next().unwrap().to_string();
    let want = story(&m);
    for t in ["q4_0", "q4_1", "q5_0", "q5_1"] {
        let f = dir.join(format!("s.{t}.gguf"));
        ok(&["convert", s(&m), "--to", "gguf", "--type", t, "-o", s(&f)]);
        let info = String::from_utf8(ok(&["info", s(&f)])).unwrap();
        assert!(info.contains(&format!("GGUF v3, {} ×31, F32 ×11, F16 ×5", t.to_uppercase())), "{t}: {info}");
        let got = story(&f);
        assert!(got.starts_with("Once upon a time"), "{t}: {got}");
        if t == "q5_1" {
            assert_eq!(first(&got), first(&want), "{t}");
        }
    }
    let e = fails(&["convert", s(&m), "--to", "llama2c", "--type", "q4_0", "-o", s(&dir.join("x.bin"))]);
    assert!(e.contains("llama2.c files hold f32 (v0) or q8_0 (v2), not Q4_0"), "{e}");
}

#[test]
fn refusals_are_in_words() {
    let dir = scratch("convert-refusals");
    let e = fails(&["convert", s(&fx("hf/llama3_headdim")), "--to", "llama2c", "-o", s(&dir.join("x.bin"))]);
    assert!(e.contains("a llama2.c file cannot hold this model: head_dim 24"), "{e}");
    let e = fails(&["convert", s(&fx("hf/gqa_untied")), "--to", "safetensors", "--type", "q8_0", "-o", s(&dir.join("x"))]);
    assert!(e.contains("safetensors holds F32, F16 or BF16"), "{e}");
    let e = fails(&["generate", s(&model()), "-n", "4"]);
    assert!(e.contains("carries no tokenizer: give one with -z"), "{e}");
}
