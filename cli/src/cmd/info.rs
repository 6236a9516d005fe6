//! `tinylm info`: what a model file holds.

use std::path::PathBuf;

use serde_json::{json, Value};
use tinylm_engine::checkpoint::Format;
use tinylm_engine::loaded::ModelFormat;
use tinylm_engine::{Config, LoadedModel, NamedFile, Result};

use crate::{load, out};

#[derive(clap::Args)]
pub struct Args {
    /// Model checkpoint (llama2.c v0, v1 or v2).
    pub model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

const MB: f64 = 1e6;

/// Every fact `info` reports, as JSON (the text form is printed from it).
pub fn describe(c: &Config, format: Format, file_bytes: usize) -> Value {
    let (version, group_size) = match format {
        Format::V0 => (0, None),
        Format::V1 => (1, None),
        Format::V2 { group_size } => (2, Some(group_size)),
    };
    json!({
        "format": format.describe(),
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
        "classifier": if c.shared_classifier { "tied" } else { "untied" },
        "parameters": c.n_params(),
        "file_bytes": file_bytes,
        "file_mb": file_bytes as f64 / MB,
        "f32_mb": (c.n_params() * 4) as f64 / MB,
    })
}

pub fn run(a: Args) -> Result<()> {
    let data = load::read_file(&a.model, "model")?;
    let model = LoadedModel::open(&[NamedFile::new(&load::name(&a.model), &data)])?;
    let ModelFormat::Llama2c(format) = model.format();
    let mut v = describe(model.config(), format, data.len());
    v["file"] = json!(load::name(&a.model));
    out::line(&if a.json { v.to_string() } else { text(&v) })
}

fn text(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let f = |k: &str| v[k].as_f64().unwrap_or_default();
    let mut lines = vec![format!("file        {}", s("file")), format!("format      {}", s("format"))];
    for key in ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len", "head_size", "kv_dim"] {
        lines.push(format!("{key:<12}{}", v[key]));
    }
    lines.push(format!("gqa ratio   {} query heads per kv head", v["gqa_ratio"]));
    lines.push(format!("classifier  {}", s("classifier")));
    lines.push(format!("parameters  {}", v["parameters"]));
    lines.push(format!("file size   {:.3} MB ({} bytes)", f("file_mb"), v["file_bytes"]));
    lines.push(format!("f32 size    {:.3} MB", f("f32_mb")));
    lines.join("\n")
}
