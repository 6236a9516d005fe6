//! `tinylm logits` against the run.c fixture stories260K_attention.safetensors.

use crate::common;
use common::*;

const FIXTURE: &str = "reference/stories260K_attention.safetensors";

fn logits_file(test: &str, input: &[&str]) -> Vec<u8> {
    let out = scratch(test).join("out.safetensors");
    let mut args = vec!["logits".to_string(), model().display().to_string(), "-o".into(), out.display().to_string()];
    args.extend(input.iter().map(|s| s.to_string()));
    ok(&args);
    std::fs::read(out).unwrap()
}

#[test]
fn matches_run_c_logits_attention_and_residuals() {
    let fixture = std::fs::read(data(FIXTURE)).unwrap();
    let (_, tokens) = tensor(&fixture, "tokens");
    let list: Vec<String> = tokens.iter().map(|t| (*t as u32).to_string()).collect();
    let ours = logits_file("fixture", &["--tokens", &list.join(" ")]);

    let (shape, got) = tensor(&ours, "tokens");
    assert_eq!((shape, got), (vec![16], tokens));
    let (want_shape, want) = tensor(&fixture, "llama2c.logits");
    let (shape, got) = tensor(&ours, "logits");
    assert_eq!(shape, want_shape);
    let tol = 1e-5 * max_abs(&want).max(1.0);
    assert!(max_diff(&got, &want) <= tol, "logits: {} > {tol}", max_diff(&got, &want));
    for (key, ref_key) in [("attn", "llama2c.attn"), ("resid", "llama2c.resid")] {
        let (want_shape, want) = tensor(&fixture, ref_key);
        let (shape, got) = tensor(&ours, key);
        assert_eq!(shape, want_shape, "{key}");
        let tol = 1e-5 * max_abs(&want).max(1.0);
        assert!(max_diff(&got, &want) <= tol, "{key}: {} > {tol}", max_diff(&got, &want));
    }
}

#[test]
fn header_metadata_names_model_and_shape() {
    let ours = logits_file("meta", &["--tokens", "1,403,407"]);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&ours).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert!(meta["model"].ends_with("stories260K.bin"), "{meta:?}");
    let config: serde_json::Value = serde_json::from_str(&meta["config"]).unwrap();
    assert_eq!(config["dim"], 64);
    assert_eq!(config["vocab_size"], 512);
}

#[test]
fn text_input_equals_its_token_ids() {
    let tok = tok512().display().to_string();
    let from_text = logits_file("text", &["-z", &tok, "-i", "Once upon a time"]);
    let from_ids = logits_file("ids", &["--tokens", "1 403 407 261 378"]);
    for key in ["tokens", "logits", "attn", "resid"] {
        assert_eq!(tensor(&from_text, key), tensor(&from_ids, key), "{key}");
    }
}
