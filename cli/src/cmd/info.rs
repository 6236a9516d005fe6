//! `tinylm info`: what a model file holds.

use std::path::PathBuf;

use serde_json::{json, Value};
use tinylm_engine::checkpoint::Format;
use tinylm_engine::loaded::ModelFormat;
use tinylm_engine::{Config, Result};

use crate::{load, out};

#[derive(clap::Args)]
pub struct Args {
    /// Model: llama2.c checkpoint (v0, v1, v2), GGUF file or Hugging Face folder.
    pub model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

const MB: f64 = 1e6;

/// Every fact `info` reports, as JSON (the text form is printed from it). `llama2c`: the
/// version of a llama2.c file (`None` for GGUF and Hugging Face models).
pub fn describe(c: &Config, format: &str, llama2c: Option<Format>, file_bytes: usize) -> Value {
    let (version, group_size) = match llama2c {
        Some(Format::V0) => (Some(0), None),
        Some(Format::V1) => (Some(1), None),
        Some(Format::V2 { group_size }) => (Some(2), Some(group_size)),
        None => (None, None),
    };
    json!({
        "format": format,
        "version": version,
        "group_size": group_size,
        "dim": c.dim,
        "hidden_dim": c.hidden_dim,
        "n_layers": c.n_layers,
        "n_heads": c.n_heads,
        "n_kv_heads": c.n_kv_heads,
        "vocab_size": c.vocab_size,
        "seq_len": c.seq_len,
        "head_size": c.head_size(),
        "kv_dim": c.kv_dim(),
        "gqa_ratio": c.kv_mul(),
        "rope_theta": c.rope_theta,
        "rope_scaling": c.rope_scaling.map(|r| json!({"type": "llama3", "factor": r.factor,
            "low_freq_factor": r.low_freq_factor, "high_freq_factor": r.high_freq_factor, "original_context": r.original_context})),
        "norm_eps": c.norm_eps,
        "bos_id": c.bos_id,
        "eos_id": c.eos_id,
        "classifier": if c.shared_classifier { "tied" } else { "untied" },
        "parameters": c.n_params(),
        "file_bytes": file_bytes,
        "file_mb": file_bytes as f64 / MB,
        "f32_mb": (c.n_params() * 4) as f64 / MB,
    })
}

pub fn run(a: Args) -> Result<()> {
    let files = load::model_files(&a.model)?;
    let model = load::open_files(&files)?;
    let llama2c = match model.format() {
        ModelFormat::Llama2c(f) => Some(f),
        ModelFormat::Gguf | ModelFormat::HfFolder => None,
    };
    let mut v = describe(model.config(), model.describe(), llama2c, files.iter().map(|(_, b)| b.len()).sum());
    v["file"] = json!(load::name(&a.model));
    v["tokenizer"] = json!(model.tokenizer().map(|t| format!("{} tokens, its own", t.vocab_size())));
    v["file_context"] = json!(model.file_context());
    // What the engine holds in memory for it on the CPU (quantized, F16 and BF16 matrices stay
    // as read), the types they are kept in, and the context cache a run adds: together what a
    // page's memory must have room for before the model loads (`memory::check_model`).
    v["weight_bytes"] = json!(model.held_bytes());
    let kept: Vec<&str> = model.quantized().map(|q| q.kept_types().iter().map(|t| t.name()).collect()).unwrap_or_default();
    v["kept_as"] = json!(if kept.is_empty() { "f32".to_string() } else { kept.join(", ") });
    v["cache_bytes"] = json!(tinylm_engine::memory::cache_bytes(model.config()));
    out::line(&if a.json { v.to_string() } else { text(&v) })
}

fn text(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let f = |k: &str| v[k].as_f64().unwrap_or_default();
    let mut lines = vec![format!("file        {}", s("file")), format!("format      {}", s("format"))];
    for key in ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len", "head_size", "kv_dim"] {
        lines.push(format!("{key:<12}{}", v[key]));
    }
    if let Some(n) = v["file_context"].as_u64() {
        lines.push(format!("context     the file's {n} positions capped to seq_len"));
    }
    lines.push(format!("rope theta  {}", v["rope_theta"]));
    if v["rope_scaling"].is_object() {
        lines.push(format!("rope scale  {}", v["rope_scaling"]));
    }
    lines.push(format!("norm eps    {}", v["norm_eps"]));
    lines.push(format!("bos / eos   {} / {}", v["bos_id"], v["eos_id"]));
    if let Some(t) = v["tokenizer"].as_str() {
        lines.push(format!("tokenizer   {t}"));
    }
    lines.push(format!("gqa ratio   {} query heads per kv head", v["gqa_ratio"]));
    lines.push(format!("classifier  {}", s("classifier")));
    lines.push(format!("parameters  {}", v["parameters"]));
    lines.push(format!("file size   {:.3} MB ({} bytes)", f("file_mb"), v["file_bytes"]));
    lines.push(format!("f32 size    {:.3} MB", f("f32_mb")));
    if let (Some(w), Some(c)) = (v["weight_bytes"].as_u64(), v["cache_bytes"].as_u64()) {
        lines.push(format!(
            "in memory   {:.3} MB of weights ({}) + {:.3} MB of context cache",
            w as f64 / MB,
            s("kept_as"),
            c as f64 / MB
        ));
    }
    lines.join("\n")
}
