//! `tinylm convert`: a model (llama2.c, GGUF or a Hugging Face folder) written as another:
//! llama2.c (f32 v0, q8_0 v2), GGUF (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1) or a Hugging Face folder of
//! safetensors (f32, f16, bf16).

use std::path::{Path, PathBuf};

use tinylm_engine::checkpoint::{default_group_size, write_v0, write_v2};
use tinylm_engine::config::{Config, LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA};
use tinylm_engine::formats::write;
use tinylm_engine::quant::DType;
use tinylm_engine::{Error, Result};

use crate::{load, out};

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Target {
    Llama2c,
    Gguf,
    Safetensors,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Type {
    F32,
    F16,
    Bf16,
    #[value(name = "q8_0")]
    Q8_0,
    #[value(name = "q4_0")]
    Q4_0,
    #[value(name = "q4_1")]
    Q4_1,
    #[value(name = "q5_0")]
    Q5_0,
    #[value(name = "q5_1")]
    Q5_1,
}

#[derive(clap::Args)]
pub struct Args {
    /// Model: llama2.c checkpoint, GGUF file or Hugging Face folder.
    pub model: PathBuf,
    /// Output: a file (llama2c, gguf) or a folder (safetensors).
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// What to write.
    #[arg(long, value_enum)]
    pub to: Target,
    /// Weight type (norms stay f32). llama2c: f32 (v0) or q8_0 (v2); safetensors: f32, f16, bf16;
    /// gguf: any (q4_0, q4_1, q5_0, q5_1 by ggml's reference quantizers; rows that are not whole
    /// blocks of 32 stay F16, as llama.cpp does).
    #[arg(long = "type", value_enum, default_value = "f32")]
    pub dtype: Type,
    /// A tokenizer to write into the GGUF (llama2.c tokenizer.bin); default: none.
    #[arg(short = 'z', long)]
    pub tokenizer: Option<PathBuf>,
}

/// Why a model cannot be a llama2.c file (which stores only the seven header sizes), if so.
pub fn llama2c_misfit(c: &Config) -> Option<String> {
    let mut why = vec![];
    if c.head_dim * c.n_heads != c.dim {
        why.push(format!("head_dim {} × {} heads ≠ dim {}", c.head_dim, c.n_heads, c.dim));
    }
    if c.rope_theta != LLAMA2C_ROPE_THETA || c.rope_scaling.is_some() {
        why.push(format!("RoPE base {} {}", c.rope_theta, if c.rope_scaling.is_some() { "with llama3 scaling" } else { "" }));
    }
    if c.norm_eps != LLAMA2C_NORM_EPS {
        why.push(format!("rms_norm_eps {}", c.norm_eps));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

pub fn run(a: Args) -> Result<()> {
    let m = load::model(&a.model)?;
    let w: &tinylm_engine::Weights = m.weights();
    let tok = a.tokenizer.as_deref().map(load::tokenizer).transpose()?;
    let dtype = match a.dtype {
        Type::F32 => DType::F32,
        Type::F16 => DType::F16,
        Type::Bf16 => DType::BF16,
        Type::Q8_0 => DType::Q8_0,
        Type::Q4_0 => DType::Q4_0,
        Type::Q4_1 => DType::Q4_1,
        Type::Q5_0 => DType::Q5_0,
        Type::Q5_1 => DType::Q5_1,
    };
    let written = match a.to {
        Target::Llama2c => {
            if let Some(why) = llama2c_misfit(&w.config) {
                return Err(Error::InvalidSetting(format!("a llama2.c file cannot hold this model: {why}")));
            }
            let bytes = match dtype {
                DType::F32 => write_v0(w),
                DType::Q8_0 => write_v2(w, default_group_size(w.config.dim))?,
                t => return Err(Error::InvalidSetting(format!("llama2.c files hold f32 (v0) or q8_0 (v2), not {}", t.name()))),
            };
            load::write_file(&a.output, &bytes)?;
            bytes.len()
        }
        Target::Gguf => {
            let name = a.model.file_stem().map_or("model".into(), |s| s.to_string_lossy().to_string());
            let bytes = write::gguf(w, dtype, tok.as_ref(), &name)?;
            load::write_file(&a.output, &bytes)?;
            bytes.len()
        }
        Target::Safetensors => write_folder(&a.output, w, dtype)?,
    };
    out::line(&format!("wrote {} ({} bytes): {} as {:?} {:?}", a.output.display(), written, m.describe(), a.to, a.dtype))
}

fn write_folder(dir: &Path, w: &tinylm_engine::Weights, dtype: DType) -> Result<usize> {
    let (config, st) = write::hf_folder(w, dtype)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Io { file: load::name(dir), what: format!("cannot create the folder: {e}") })?;
    load::write_file(&dir.join("config.json"), config.as_bytes())?;
    load::write_file(&dir.join("model.safetensors"), &st)?;
    Ok(config.len() + st.len())
}
