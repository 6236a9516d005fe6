//! Activation patching on the CPU path (whatever the active backend): the engine's `Patcher`,
//! a few forward passes between ticks.

use tinylm_engine::trace::{pieces, CpuModel, Patcher};
use tinylm_engine::Tokenizer;

use super::run::{err, Ticker};
use crate::protocol::experiments::{ExperimentNews, Patched, MAX_PATCH_TOKENS};
use crate::worker::bridge::now_ms;
use crate::worker::session::{Session, NO_MODEL};

/// Forward passes between ticks (a tick only yields once a time slice is spent).
const CHUNK: usize = 8;

pub async fn run(
    s: &mut Session,
    [clean, corrupt]: [&str; 2],
    [clean_answer, corrupt_answer]: [&str; 2],
    tick: &mut Ticker<'_>,
) -> Result<Option<ExperimentNews>, String> {
    let t0 = now_ms();
    let (stored, _) = s.active()?;
    let tok = stored.model.need_tokenizer().map_err(|_| NO_MODEL.to_string())?;
    let (a, b) = (tok.encode(clean, true, false), tok.encode(corrupt, true, false));
    if a.len() != b.len() {
        return Err(format!(
            "The clean prompt has {} tokens and the corrupted one {}: they must have the same number. \
             Change one word for another word of the same length in tokens.",
            a.len() - 1,
            b.len() - 1
        ));
    }
    if a.len() > MAX_PATCH_TOKENS {
        return Err(format!("The prompts have {} tokens; patching takes at most {}.", a.len() - 1, MAX_PATCH_TOKENS - 1));
    }
    let answers = (one_token(tok, clean_answer, "clean")?, one_token(tok, corrupt_answer, "corrupted")?);
    let m = CpuModel::adapted(stored.model.forward_weights(), stored.model.adapter().map(|a| a.as_ref())).map_err(err)?;
    let mut p = Patcher::new(m.config(), &a, &b, answers.0, answers.1).map_err(err)?;
    while !p.advance(&m, CHUNK).map_err(err)? {
        if tick.tick("Patching", p.done(), p.total()).await {
            return Ok(None);
        }
    }
    let maps = p.finish().map_err(err)?;
    let piece = |id: u32| tok.piece(id).map(pieces::raw_readable).unwrap_or_default();
    Ok(Some(ExperimentNews::Patched(Box::new(Patched {
        id: tick.id(),
        clean_pieces: pieces::token_pieces(tok, &maps.clean),
        corrupt_pieces: pieces::token_pieces(tok, &maps.corrupt),
        clean_answer: piece(maps.clean_answer),
        corrupt_answer: piece(maps.corrupt_answer),
        maps,
        ms: now_ms() - t0,
    }))))
}

/// The one token `text` encodes to (with the tokenizer's leading space, as after a word), as
/// `tinylm patch` reads its answers.
fn one_token(tok: &Tokenizer, text: &str, which: &str) -> Result<u32, String> {
    match tok.encode(text, false, false)[..] {
        [id] => Ok(id),
        [] => Err(format!("The {which} answer is empty.")),
        ref ids => Err(format!(
            "The {which} answer “{text}” is {} tokens ({}); give a word the model reads as one token.",
            ids.len(),
            ids.iter().map(|&i| tok.piece(i).map(pieces::raw_readable).unwrap_or_default()).collect::<Vec<_>>().join(" · ")
        )),
    }
}
