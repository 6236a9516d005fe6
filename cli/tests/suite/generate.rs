//! `tinylm generate` against llama2.c run.c's outputs for stories260K.

use crate::common;
use common::*;
use tinylm_engine::Tokenizer;

#[test]
fn greedy_256_is_the_reference_text_byte_for_byte() {
    let expected = std::fs::read(data("reference/stories260K_greedy_256.txt")).unwrap();
    assert_eq!(String::from_utf8_lossy(&generate_260k(&["-t", "0", "-n", "256"])), String::from_utf8_lossy(&expected));
}

#[test]
fn greedy_with_prompt_matches_reference_ids() {
    let r = reference_json();
    let ids = ids(&r["greedy_prompt_once_upon_a_time_64_steps"]["ids"]);
    let tok = Tokenizer::from_bytes(&std::fs::read(tok512()).unwrap(), "tok512.bin").unwrap();
    let mut expected = Vec::new();
    for w in ids.windows(2) {
        expected.extend_from_slice(tok.decode(w[0], w[1]).unwrap().printable());
    }
    expected.push(b'\n');
    let got = generate_260k(&["-i", "Once upon a time", "-n", "64", "-t", "0"]);
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected));
}

#[test]
fn seeded_sampling_reproduces_llama2c_doc_story() {
    let args = ["-t", "1.0", "-p", "0.9", "-s", "133742", "-n", "256"];
    let a = generate_260k(&args);
    let text = String::from_utf8_lossy(&a);
    assert!(text.starts_with("Once upon a time, there was a little boy named Timmy"), "{text}");
    assert_eq!(a, generate_260k(&args), "same seed, same story");
    let other = generate_260k(&["-t", "1.0", "-p", "0.9", "-s", "42", "-n", "256"]);
    assert_ne!(a, other, "another seed, another story");
}

/// Whole seeded runs byte for byte as llama2.c's run.c printed them (top-p, plain multinomial,
/// a prompt at t 0.7, t 1.5), on the CPU and on the GPU backend.
#[test]
fn seeded_runs_equal_run_c_on_both_backends() {
    let psv = std::fs::read_to_string(data("reference/sampling_run_c/cases.psv")).unwrap();
    let cases = run_c_cases(&psv);
    assert_eq!(cases.len(), 4);
    for c in cases {
        let want = std::fs::read(data(&format!("reference/sampling_run_c/{}.txt", c.name))).unwrap();
        let (t, p, seed, n) = (c.temperature.to_string(), c.topp.to_string(), c.seed.to_string(), c.steps.to_string());
        let mut args = vec!["-t", &t, "-p", &p, "-s", &seed, "-n", &n];
        if !c.prompt.is_empty() {
            args.extend(["-i", &c.prompt]);
        }
        assert_eq!(String::from_utf8_lossy(&generate_260k(&args)), String::from_utf8_lossy(&want), "{} (cpu)", c.name);
        args.extend(["--backend", "gpu"]);
        assert_eq!(String::from_utf8_lossy(&generate_260k(&args)), String::from_utf8_lossy(&want), "{} (gpu)", c.name);
    }
}

#[test]
fn run_is_generate_as_llama2c_users_type_it() {
    let expected = std::fs::read(data("reference/stories260K_greedy_256.txt")).unwrap();
    let args =
        ["run".to_string(), model().display().to_string(), "-z".into(), tok512().display().to_string(), "-t".into(), "0".into()];
    assert_eq!(String::from_utf8_lossy(&ok(&args)), String::from_utf8_lossy(&expected));
}

#[test]
fn long_options_equal_short_ones() {
    let short = generate_260k(&["-t", "0.8", "-p", "0.5", "-s", "7", "-n", "40", "-i", "Tom"]);
    let long = generate_260k(&["--temperature", "0.8", "--topp", "0.5", "--seed", "7", "--steps", "40", "--prompt", "Tom"]);
    assert_eq!(short, long);
}

#[test]
fn out_of_range_settings_are_clamped_as_run_c() {
    // Negative temperature is greedy.
    assert_eq!(generate_260k(&["-t", "-1", "-n", "48"]), generate_260k(&["-t", "0", "-n", "48"]));
    // Top-p outside [0, 1] is 0.9.
    assert_eq!(generate_260k(&["-p", "1.5", "-s", "9", "-n", "48"]), generate_260k(&["-p", "0.9", "-s", "9", "-n", "48"]));
    // Steps 0, negative or beyond the context mean the whole context (512).
    let full = generate_260k(&["-t", "0", "-n", "512"]);
    assert!(full.len() > 566, "512 steps say more than 256");
    assert_eq!(generate_260k(&["-t", "0", "-n", "0"]), full);
    assert_eq!(generate_260k(&["-t", "0", "-n", "-3"]), full);
    assert_eq!(generate_260k(&["-t", "0", "-n", "9999"]), full);
}

#[test]
fn speed_goes_to_stderr_only() {
    let mut args = vec!["generate".to_string(), model().display().to_string(), "-z".into()];
    args.extend([tok512().display().to_string(), "-t".into(), "0".into(), "-n".into(), "20".into()]);
    let out = tinylm(&args);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("achieved tok/s: "), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("tok/s"));
}
