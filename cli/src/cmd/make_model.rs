//! `tinylm make-model`: a deterministic random model of a named shape or a given config.

use std::path::PathBuf;

use tinylm_engine::checkpoint::{default_group_size, write_v0, write_v1, write_v2};
use tinylm_engine::randmodel::{named_shape, random_weights};
use tinylm_engine::{Config, Error, Result};

use crate::{load, out};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FileFormat {
    /// Legacy llama2.c (what `run.c` reads).
    V0,
    /// ak42 version 1, f32.
    V1,
    /// ak42 version 2, Q8_0 (what `runq.c` reads).
    V2,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("shape_or_config").required(true).args(["shape", "config"])))]
pub struct Args {
    /// A named shape: micro, tiny64, s15m, s42m, s110m, smol135m.
    #[arg(long)]
    pub shape: Option<String>,
    /// dim,hidden,layers,heads,kv_heads,vocab,seq[,untied]
    #[arg(long)]
    pub config: Option<String>,
    /// Seed of the weights; defaults to the named shape's seed (required with --config).
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, value_enum, default_value = "v0")]
    pub format: FileFormat,
    /// Q8_0 group size for v2 (default: 64 halved until it divides dim).
    #[arg(long)]
    pub group_size: Option<usize>,
    /// Output file.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
}

/// The config and seed the arguments ask for.
fn shape(a: &Args) -> Result<(Config, u64)> {
    match (&a.shape, &a.config) {
        (Some(name), _) => {
            let (c, seed) = named_shape(name)?;
            Ok((c, a.seed.unwrap_or(seed)))
        }
        (None, Some(spec)) => {
            let seed = a.seed.ok_or_else(|| Error::InvalidSetting("--config needs --seed".into()))?;
            Ok((Config::parse(spec)?, seed))
        }
        (None, None) => Err(Error::InvalidSetting("give --shape or --config".into())),
    }
}

pub fn run(a: Args) -> Result<()> {
    let (c, seed) = shape(&a)?;
    let w = random_weights(&c, seed)?;
    let bytes = match a.format {
        FileFormat::V0 => write_v0(&w),
        FileFormat::V1 => write_v1(&w),
        FileFormat::V2 => write_v2(&w, a.group_size.unwrap_or_else(|| default_group_size(c.dim)))?,
    };
    load::write_file(&a.output, &bytes)?;
    out::line(&format!("wrote {} ({} parameters, seed {seed}, {} bytes)", a.output.display(), c.n_params(), bytes.len()))
}
