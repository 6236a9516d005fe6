//! `tinylm decode`: the text of token ids.
//!
//! Unlike `generate`, which prints run.c's `safe_printf` view (stray single bytes of multi-byte
//! characters dropped), this prints every byte of every piece and then shows the whole as
//! UTF-8, so byte-fallback characters come back intact (invalid sequences become U+FFFD).

use std::path::PathBuf;

use tinylm_engine::{Result, Tokenizer};

use crate::{load, out};

#[derive(clap::Args)]
pub struct Args {
    /// tokenizer.bin or tokenizer.json to decode with.
    #[arg(short = 'z', long)]
    pub tokenizer: PathBuf,
    /// Token ids; BOS (1) marks a sequence start and prints nothing.
    #[arg(required = true, num_args = 1..)]
    pub ids: Vec<u32>,
}

/// Each token is decoded given the one before; the list is read as following BOS, so
/// `403 407` and `1 403 407` print the same.
pub fn decode_ids(tok: &Tokenizer, ids: &[u32]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let bos = tok.bos();
    let mut prev = bos;
    for &id in ids {
        if id != bos {
            out.extend_from_slice(tok.decode(prev, id)?.bytes());
        }
        prev = id;
    }
    Ok(out)
}

pub fn run(a: Args) -> Result<()> {
    let tok = load::tokenizer(&a.tokenizer)?;
    out::line(&String::from_utf8_lossy(&decode_ids(&tok, &a.ids)?))
}
