//! `tinylm encode`: token ids of a text, as run.c encodes a prompt (BOS, no EOS).

use std::path::PathBuf;

use tinylm_engine::Result;

use crate::{load, out};

#[derive(clap::Args)]
pub struct Args {
    /// tokenizer.bin or tokenizer.json to encode with.
    #[arg(short = 'z', long)]
    pub tokenizer: PathBuf,
    /// The text.
    pub text: String,
}

pub fn run(a: Args) -> Result<()> {
    let ids = load::tokenizer(&a.tokenizer)?.encode(&a.text, true, false);
    let line: Vec<String> = ids.iter().map(u32::to_string).collect();
    out::line(&line.join(" "))
}
