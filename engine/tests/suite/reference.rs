//! The CPU path against the stories260K reference outputs of llama2.c run.c.

use crate::common;
use common::*;
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::Generation;
use tinylm_engine::trace::inspect;
use tinylm_engine::Sampler;

fn greedy(prompt: &str, steps: usize) -> (Vec<u32>, String) {
    greedy_on(CpuBackend::reference(stories260k()), prompt, steps)
}

fn greedy_on(mut b: CpuBackend, prompt: &str, steps: usize) -> (Vec<u32>, String) {
    let tok = tok512();
    let mut s = Sampler::new(0.0, 0.9, 1).unwrap();
    let mut g = Generation::new(tok.encode(prompt, true, false), steps, &b.weights.config).unwrap();
    let mut text = Vec::new();
    while let Some(step) = g.step(&mut b, &mut s).unwrap() {
        text.extend_from_slice(tok.decode(step.prev, step.token).unwrap().printable());
    }
    (g.tokens, String::from_utf8(text).unwrap())
}

#[test]
fn greedy_256_from_bos_matches_reference_text_and_ids() {
    let (ids, text) = greedy("", 256);
    let r = reference_json();
    assert_eq!(ids, common::ids(&r["greedy_empty_prompt_256_steps"]["ids"]));
    let expected = String::from_utf8(read("reference/stories260K_greedy_256.txt")).unwrap();
    assert_eq!(format!("{text}\n"), expected);
    let (fast_ids, _) = greedy_on(CpuBackend::new(stories260k()), "", 256);
    assert_eq!(fast_ids, ids, "fast kernels give the same story");
}

/// What `run` prints for a seeded run of `case` on the CPU backend `b`: every piece from the
/// first position on (the prompt's included), then a newline.
fn sampled_text(mut b: CpuBackend, case: &RunC) -> Vec<u8> {
    let tok = tok512();
    let mut s = Sampler::new(case.temperature, case.topp, case.seed).unwrap();
    let mut g = Generation::new(tok.encode(&case.prompt, true, false), case.steps, &b.weights.config).unwrap();
    let mut text = Vec::new();
    while let Some(step) = g.step(&mut b, &mut s).unwrap() {
        text.extend_from_slice(tok.decode(step.prev, step.token).unwrap().printable());
    }
    text.push(b'\n');
    text
}

/// Whole seeded runs (top-p, plain multinomial, a prompt at t 0.7, t 1.5) byte for byte as
/// llama2.c's run.c printed them: the RNG's use per step, the top-p cut and its order, the
/// temperature, all 200–256 steps.
#[test]
fn seeded_runs_equal_run_c_byte_for_byte() {
    for (case, want) in run_c_samples() {
        let got = sampled_text(CpuBackend::reference(stories260k()), &case);
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "{}", case.name);
        let fast = sampled_text(CpuBackend::new(stories260k()), &case);
        assert!(fast == want, "{}: the fast kernels", case.name);
    }
}

#[test]
fn greedy_once_upon_a_time_64() {
    let (ids, _) = greedy("Once upon a time", 64);
    let r = reference_json();
    assert_eq!(ids, common::ids(&r["greedy_prompt_once_upon_a_time_64_steps"]["ids"]));
}

#[test]
fn sentencepiece_encodings() {
    let tok = tok512();
    let r = reference_json();
    let examples = r["encode_examples_sentencepiece_tok512_model"].as_object().unwrap();
    assert_eq!(examples.len(), 4);
    for (text, expected) in examples {
        assert_eq!(tok.encode(text, true, false), ids(expected), "{text}");
    }
}

#[test]
fn logits_first_8_positions() {
    let r = &reference_json()["logits_first_8_positions_of_empty_prompt_run"];
    let tokens = ids(&r["input_ids"]);
    let mut b = CpuBackend::reference(stories260k());
    let ins = inspect(&mut b, &tokens).unwrap();
    for (t, row) in r["logits"].as_array().unwrap().iter().enumerate() {
        let want: Vec<f32> = row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let tol = 1e-5 * max_abs(&want).max(1.0);
        let d = max_diff(ins.logits_at(t), &want);
        assert!(d <= tol, "position {t}: max |Δ| {d} > {tol}");
    }
}

#[test]
fn attention_fixture_logits_attention_residuals() {
    let f = "reference/stories260K_attention.safetensors";
    let (_, tokens) = fixture(f, "tokens");
    let tokens: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
    for b in [CpuBackend::reference(stories260k()), CpuBackend::new(stories260k())] {
        attention_fixture_on(b, &tokens);
    }
}

fn attention_fixture_on(mut b: CpuBackend, tokens: &[u32]) {
    let f = "reference/stories260K_attention.safetensors";
    let ins = inspect(&mut b, tokens).unwrap();
    for src in ["llama2c", "np64"] {
        let (shape, logits) = fixture(f, &format!("{src}.logits"));
        assert_eq!(shape, [16, 512]);
        let tol = 1e-5 * max_abs(&logits).max(1.0);
        let d = max_diff(&ins.logits, &logits);
        assert!(d <= tol, "{src} logits: {d} > {tol}");
        let (shape, attn) = fixture(f, &format!("{src}.attn"));
        assert_eq!(shape, [5, 8, 16, 16]);
        let d = max_diff(&ins.attn, &attn);
        assert!(d <= 1e-5, "{src} attention: {d}");
        let (shape, resid) = fixture(f, &format!("{src}.resid"));
        assert_eq!(shape, [5, 16, 64]);
        let d = max_diff(&ins.resid, &resid);
        assert!(d <= 1e-5 * max_abs(&resid).max(1.0), "{src} residual: {d}");
        println!(
            "{} vs {src}: logits Δ {:.2e}, attention Δ {:.2e}, residual Δ {d:.2e}",
            tinylm_engine::generate::Backend::name(&b),
            max_diff(&ins.logits, &logits),
            max_diff(&ins.attn, &attn)
        );
    }
}
