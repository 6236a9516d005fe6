//! `tinylm merge`: a LoRA adapter folded into the model's weights (`W += s·B·A`, as PEFT's
//! `merge_and_unload`), written as a plain checkpoint any llama2.c runner reads.

use std::path::PathBuf;

use tinylm_engine::checkpoint::{default_group_size, write_v0, write_v1, write_v2};
use tinylm_engine::{Error, Result};

use super::make_model::FileFormat;
use crate::{load, out};

#[derive(clap::Args)]
pub struct Args {
    /// Base model: llama2.c checkpoint (v0, v1 or v2), or a GGUF file or Hugging Face folder that
    /// a llama2.c checkpoint can hold (the merged model is written as one; see `tinylm convert`).
    pub model: PathBuf,
    /// PEFT adapter directory (adapter_config.json + adapter_model.safetensors).
    #[arg(long)]
    pub adapter: PathBuf,
    /// Output checkpoint.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// v0 (what run.c reads), v1 (f32) or v2 (Q8_0, requantized after the merge).
    #[arg(long, value_enum, default_value = "v0")]
    pub format: FileFormat,
    /// Q8_0 group size for v2 (default: 64 halved until it divides dim).
    #[arg(long)]
    pub group_size: Option<usize>,
}

pub fn run(a: Args) -> Result<()> {
    let model = load::model(&a.model)?;
    if let Some(why) = super::convert::llama2c_misfit(model.config()) {
        return Err(Error::InvalidSetting(format!("a llama2.c file cannot hold {}: {why}", model.name())));
    }
    let adapter = load::adapter(&a.adapter, model.config())?;
    let merged = adapter.merged(model.weights())?;
    let bytes = match a.format {
        FileFormat::V0 => write_v0(&merged),
        FileFormat::V1 => write_v1(&merged),
        FileFormat::V2 => write_v2(&merged, a.group_size.unwrap_or_else(|| default_group_size(merged.config.dim)))?,
    };
    load::write_file(&a.output, &bytes)?;
    let c = &adapter.config;
    let targets: Vec<&str> = c.targets.iter().map(|t| t.peft_name()).collect();
    out::line(&format!(
        "wrote {}: {} with the adapter {} merged (r {}, scale {}, {}; {} bytes)",
        a.output.display(),
        a.model.display(),
        a.adapter.display(),
        c.r,
        c.scaling(),
        targets.join(", "),
        bytes.len()
    ))
}
