//! Knock-outs: the story with and without the heads and blocks switched off (same seed), and
//! how the changed model's next-token odds differ over the unchanged story.

use tinylm_engine::generate::Backend;
use tinylm_engine::trace::{changes, first_difference, Ablation, CpuModel, Edits, HeadMeans, HeadMeansRun, Intervention};
use tinylm_engine::Tokenizer;

use super::run::{err, inspection, story, told, Ticker};
use crate::protocol::experiments::{ChangeRow, ExperimentNews, KnockedOut};
use crate::protocol::inspect::max_tokens;
use crate::protocol::Settings;
use crate::worker::bridge::now_ms;
use crate::worker::session::{Session, NO_MODEL};

/// Passes of the heads' means between ticks.
const MEANS_CHUNK: usize = 4;

pub async fn run(
    s: &mut Session,
    prompt: &str,
    settings: &Settings,
    change: &Intervention,
    tick: &mut Ticker<'_>,
) -> Result<Option<ExperimentNews>, String> {
    let t0 = now_ms();
    let (stored, active) = s.active_mut()?;
    let tok = stored.model.need_tokenizer().map_err(|_| NO_MODEL.to_string())?;
    let c = *stored.model.config();
    if change.steer.is_some() {
        return Err("A knock-out does not steer; use the steering experiment.".into());
    }
    // Layer and head numbers are checked before any story is written.
    Edits::new(&c, &Intervention { ablation: Ablation::Zero, ..change.clone() }, None).map_err(err)?;
    let backend = &mut active.backend;
    let prompt = tok.encode(prompt, true, false);
    backend.set_edits(None).map_err(err)?;
    let Some(original) = story(backend, &prompt, settings, tick, "Writing the unchanged story").await? else { return Ok(None) };
    let means = if change.ablation == Ablation::Mean && !change.ablate.is_empty() {
        let m = CpuModel::adapted(stored.model.forward_weights(), stored.model.adapter().map(|a| a.as_ref())).map_err(err)?;
        match means(&m, &original, tick).await? {
            Some(means) => Some(means),
            None => return Ok(None),
        }
    } else {
        None
    };
    backend.set_edits(Some(&Edits::new(&c, change, means.as_ref()).map_err(err)?)).map_err(err)?;
    let Some(changed) = story(backend, &prompt, settings, tick, "Writing the changed story").await? else { return Ok(None) };
    // The odds over the unchanged story, as far as an inspection may hold it.
    let n = max_tokens(c.n_layers, c.n_heads, c.vocab_size, c.dim, original.len());
    let Some(after) = inspection(backend, &original[..n], tick, "Reading the changed odds").await? else { return Ok(None) };
    backend.set_edits(None).map_err(err)?;
    let Some(before) = inspection(backend, &original[..n], tick, "Reading the unchanged odds").await? else { return Ok(None) };
    let rows = changes(&before, &after).map_err(err)?.into_iter().map(|ch| row(tok, ch)).collect();
    Ok(Some(ExperimentNews::KnockedOut(Box::new(KnockedOut {
        id: tick.id(),
        description: change.describe(),
        shown: crate::words::change(change),
        first_difference: first_difference(&original, &changed),
        original: told(tok, original)?,
        changed: told(tok, changed)?,
        changes: rows,
        backend: backend.name(),
        ms: now_ms() - t0,
    }))))
}

fn row(tok: &Tokenizer, change: tinylm_engine::trace::Change) -> ChangeRow {
    let piece = |id: u32| tok.piece(id).map(tinylm_engine::trace::pieces::raw_readable).unwrap_or_default();
    ChangeRow {
        next: change.next.map(piece),
        top_before: piece(change.top_before.id),
        top_after: piece(change.top_after.id),
        change,
    }
}

/// The heads' means over `tokens` on the CPU, a few positions between ticks.
async fn means(m: &CpuModel<'_>, tokens: &[u32], tick: &mut Ticker<'_>) -> Result<Option<HeadMeans>, String> {
    let mut r = HeadMeansRun::new(m.config(), tokens).map_err(err)?;
    while !r.advance(m, MEANS_CHUNK).map_err(err)? {
        if tick.tick("Averaging the heads' outputs", r.done(), r.total()).await {
            return Ok(None);
        }
    }
    r.finish().map(Some).map_err(err)
}
