//! Bad input: a message naming what is wrong, status 1, never a panic.

use crate::common;
use common::*;

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

#[test]
fn missing_model_file_is_named() {
    let err = fails(&["generate", "no/such/model.bin", "-z", &s(&tok512())]);
    assert!(err.contains("no/such/model.bin") && err.contains("model"), "{err}");
    let err = fails(&["info", "no/such/model.bin"]);
    assert!(err.contains("no/such/model.bin"), "{err}");
}

#[test]
fn missing_tokenizer_file_is_named() {
    let err = fails(&["generate", &s(&model()), "-z", "nope/tok.bin"]);
    assert!(err.contains("nope/tok.bin") && err.contains("tokenizer"), "{err}");
}

#[test]
fn truncated_model_is_named() {
    let dir = scratch("trunc");
    let p = dir.join("cut.bin");
    std::fs::write(&p, &std::fs::read(model()).unwrap()[..100_000]).unwrap();
    let err = fails(&["generate", &s(&p), "-z", &s(&tok512())]);
    assert!(err.contains("cut.bin") && err.contains("truncated"), "{err}");
    let err = fails(&["info", &s(&p)]);
    assert!(err.contains("cut.bin"), "{err}");
}

#[test]
fn tokenizer_of_another_vocabulary_is_refused() {
    let llama = data("tokenizers/llama2/tokenizer.bin");
    let err = fails(&["generate", &s(&model()), "-z", &s(&llama)]);
    assert!(err.contains("32000") && err.contains("512") && err.contains("tokenizer.bin"), "{err}");
    let err = fails(&["logits", &s(&model()), "-z", &s(&llama), "-i", "hi", "-o", "/dev/null"]);
    assert!(err.contains("32000"), "{err}");
}

#[test]
fn prompt_longer_than_the_context_is_refused() {
    let prompt = "Once upon a time ".repeat(200);
    let err = fails(&["generate", &s(&model()), "-z", &s(&tok512()), "-i", &prompt]);
    assert!(err.contains("context") && err.contains("512"), "{err}");
}

#[test]
fn bad_config_is_explained() {
    let out = s(&scratch("badcfg").join("m.bin"));
    let err = fails(&["make-model", "--config", "16,40,2,2", "--seed", "1", "-o", &out]);
    assert!(err.contains("dim,hidden,layers,heads,kv_heads,vocab,seq"), "{err}");
    let err = fails(&["make-model", "--config", "16,40,2,3,1,64,32", "--seed", "1", "-o", &out]);
    assert!(err.contains("n_heads 3 does not divide dim 16"), "{err}");
    let err = fails(&["make-model", "--config", "16,40,2,2,1,64,32", "-o", &out]);
    assert!(err.contains("--seed"), "{err}");
    let err = fails(&["make-model", "--shape", "huge", "-o", &out]);
    assert!(err.contains("huge") && err.contains("micro"), "{err}");
    assert!(!std::path::Path::new(&out).exists(), "nothing written on error");
}

#[test]
fn bad_tokens_are_explained() {
    let err = fails(&["logits", &s(&model()), "--tokens", "1 9999", "-o", "/dev/null"]);
    assert!(err.contains("9999") && err.contains("512"), "{err}");
    let err = fails(&["logits", &s(&model()), "--tokens", "1 x", "-o", "/dev/null"]);
    assert!(err.contains("`x`"), "{err}");
    let err = fails(&["decode", "-z", &s(&tok512()), "1", "700"]);
    assert!(err.contains("700"), "{err}");
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let err = fails(&["generate", &s(&model())]);
    assert!(err.contains("--tokenizer"), "{err}");
    fails(&["frobnicate"]);
    let help = tinylm(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("make-model"));
}

#[test]
fn unwritable_output_is_named() {
    let err = fails(&["make-model", "--shape", "micro", "-o", "/no/such/dir/m.bin"]);
    assert!(err.contains("/no/such/dir/m.bin"), "{err}");
}
