//! `tinylm logits`: everything the model computes over a token sequence, as safetensors in the
//! layout of the reference fixture `stories260K_attention.safetensors`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::Value;
use tinylm_engine::generate::Backend;
use tinylm_engine::trace::{inspect, Edits, Inspection};
use tinylm_engine::{Error, Result};

use crate::{backend, intervene, load, out};
use tinylm_engine::gpu::GpuOptions;

#[derive(clap::Args)]
pub struct Args {
    /// Model: llama2.c checkpoint (v0, v1 or v2), GGUF file or Hugging Face folder.
    pub model: PathBuf,
    /// Token ids separated by spaces or commas, BOS included ("1 403 407").
    #[arg(long, required_unless_present = "prompt", conflicts_with = "prompt")]
    pub tokens: Option<String>,
    /// Text to encode (with BOS) instead of --tokens; needs --tokenizer unless the model has one.
    #[arg(short = 'i', long)]
    pub prompt: Option<String>,
    /// tokenizer.bin or tokenizer.json for --prompt and --steer's prompts (default: the model's own).
    #[arg(short = 'z', long)]
    pub tokenizer: Option<PathBuf>,
    /// Output .safetensors file.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// cpu, gpu (one batched inspection pass) or auto.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// A PEFT LoRA adapter directory; unmerged on the CPU, merged into the weights on the GPU.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Knock-outs and steering: the file holds the changed model's logits, attention and residuals.
    #[command(flatten)]
    pub edit: intervene::Flags,
}

/// Parses "1 403 407" or "1,403,407".
pub fn parse_tokens(s: &str) -> Result<Vec<u32>> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().map_err(|_| Error::InvalidSetting(format!("`{t}` in --tokens is not a token id"))))
        .collect()
}

pub fn run(a: Args) -> Result<()> {
    let mut model = load::model(&a.model)?;
    if let Some(tp) = &a.tokenizer {
        model = load::with_tokenizer(model, tp)?;
    }
    let tokens = match (&a.tokens, &a.prompt, model.tokenizer()) {
        (Some(t), _, _) => parse_tokens(t)?,
        (None, Some(text), Some(tok)) => tok.encode(text, true, false),
        _ => return Err(Error::InvalidSetting("give --tokens, or --prompt (with --tokenizer unless the model has one)".into())),
    };
    load::use_adapter(&mut model, a.adapter.as_deref())?;
    let mut change = None;
    if !a.edit.is_none() {
        let plan = a.edit.plan(&model)?;
        let strength = plan.single_strength()?;
        let means = plan.means(&model, &tokens)?;
        let edits = Edits::new(model.config(), &plan.intervention(strength), means.as_ref())?;
        change = Some((edits, plan.to_json(plan.steer.is_some().then_some(strength))));
    }
    let (mut opened, _) = backend::open(&model, &a.backend, GpuOptions::default())?;
    if let Some((edits, _)) = &change {
        opened.backend.set_edits(Some(edits))?;
    }
    let ins = match opened.backend.gpu() {
        Some(g) => g.inspect(&tokens)?,
        None => inspect(&mut opened.backend, &tokens)?,
    };
    let about = change.map(|(_, j)| j);
    load::write_file(&a.output, &to_safetensors(&ins, &a.model, a.adapter.as_deref(), about.as_ref())?)?;
    let c = &ins.config;
    out::line(&format!(
        "wrote {}: logits [{t}, {}], attn [{}, {}, {t}, {t}], resid [{}, {t}, {}], tokens [{t}]",
        a.output.display(),
        c.vocab_size,
        c.n_layers,
        c.n_heads,
        c.n_layers,
        c.dim,
        t = ins.len()
    ))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Serializes `logits [T,V]`, `attn [L,H,T,T]`, `resid [L,T,D]` (f32) and `tokens [T]` (i32).
/// `change`: the knock-outs or steering the logits were computed with (metadata "intervention").
pub fn to_safetensors(ins: &Inspection, model: &Path, adapter: Option<&Path>, change: Option<&Value>) -> Result<Vec<u8>> {
    let c = &ins.config;
    let t = ins.len();
    let tokens: Vec<u8> = ins.tokens.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect();
    let parts = [
        ("logits", Dtype::F32, vec![t, c.vocab_size], f32_bytes(&ins.logits)),
        ("attn", Dtype::F32, vec![c.n_layers, c.n_heads, t, t], f32_bytes(&ins.attn)),
        ("resid", Dtype::F32, vec![c.n_layers, t, c.dim], f32_bytes(&ins.resid)),
        ("tokens", Dtype::I32, vec![t], tokens),
    ];
    let views = parts
        .iter()
        .map(|(name, dtype, shape, data)| Ok((*name, TensorView::new(*dtype, shape.clone(), data).map_err(st_err)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut meta = metadata(ins, model, adapter);
    if let Some(c) = change {
        meta.insert("intervention".into(), c.to_string());
    }
    safetensors::serialize(views, Some(meta)).map_err(st_err)
}

fn metadata(ins: &Inspection, model: &Path, adapter: Option<&Path>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert("model".into(), load::name(model));
    if let Some(dir) = adapter {
        m.insert("adapter".into(), load::name(dir));
    }
    m.insert("config".into(), serde_json::to_string(&ins.config).unwrap_or_default());
    m.insert("attn".into(), "post-softmax attn[l, h, t, s] for s <= t; zeros for s > t".into());
    m.insert("resid".into(), "residual stream after layer l's FFN add, before the final RMSNorm".into());
    m.insert("producer".into(), format!("tinylm {} (cpu)", env!("CARGO_PKG_VERSION")));
    m
}

fn st_err(e: safetensors::SafeTensorError) -> Error {
    Error::InvalidSetting(format!("cannot build the safetensors output: {e}"))
}

#[cfg(test)]
mod tests {
    use super::parse_tokens;

    #[test]
    fn token_lists() {
        assert_eq!(parse_tokens("1 403 407").unwrap(), [1, 403, 407]);
        assert_eq!(parse_tokens(" 1,403, 407 ").unwrap(), [1, 403, 407]);
        assert!(parse_tokens("1 x").unwrap_err().to_string().contains("`x`"));
        assert!(parse_tokens("-3").is_err());
    }
}
