//! Compare settings: one prompt under several samplings decoded together on the CPU
//! (`BatchGeneration`, each weight read once a step for every column) on the model's f32
//! weights, whatever backend Generate uses (a quantized model's are dequantized once, as for
//! Inspect). Each column equals its own single run on the CPU. Yields every time slice so a Stop
//! is seen, and streams every column's new text together.

use tinylm_engine::cpu::batch::BatchGeneration;
use tinylm_engine::generate::Step;
use tinylm_engine::tokenizer::Utf8Stream;
use tinylm_engine::{Error, Sampler, Tokenizer};

use super::bridge::{now_ms, post, yield_now};
use super::cancel::Cancel;
use super::session::{Session, NO_MODEL};
use crate::protocol::compare::{ColumnText, CompareNews, CompareRequest, Sampling, MAX_COLUMNS};
use crate::protocol::FromWorker;
use crate::words;

/// CPU work between yields, and the least time between two messages of text (as Generate's).
const SLICE_MS: f64 = 25.0;
const POST_MS: f64 = 20.0;

fn tell(news: CompareNews) {
    post(&FromWorker::Compare(news));
}

pub async fn run(s: &mut Session, req: CompareRequest, stop: &Cancel) {
    let run = req.run;
    let t0 = now_ms();
    match write(s, &req, stop).await {
        Ok(tokens) => {
            let stopped = stop.is_cancelled(run);
            tell(CompareNews::Finished { run, tokens, elapsed_ms: now_ms() - t0, stopped });
        }
        Err(message) => tell(CompareNews::Failed { run, message }),
    }
}

/// Writes every column to its end (or the Stop); returns each one's forward passes.
async fn write(s: &Session, req: &CompareRequest, stop: &Cancel) -> Result<Vec<usize>, String> {
    let (stored, _) = s.active()?;
    let model = &stored.model;
    if model.adapter().is_some() {
        return Err(words::COMPARE_NO_ADAPTER.into());
    }
    if req.columns.is_empty() || req.columns.len() > MAX_COLUMNS {
        return Err(format!("Compare writes 1 to {MAX_COLUMNS} settings at once, not {}.", req.columns.len()));
    }
    let tokenizer = model.need_tokenizer().map_err(|_| NO_MODEL.to_string())?;
    let prompt = tokenizer.encode(&req.prompt, true, false);
    let samplers = req.columns.iter().enumerate().map(sampler).collect::<Result<Vec<_>, _>>()?;
    let weights = model.weights().clone();
    let mut batch = BatchGeneration::new(&weights.config, &prompt, req.steps, samplers).map_err(|e| words::run_error(&e))?;
    let mut cols: Vec<Column> = req.columns.iter().map(|_| Column::default()).collect();
    let (mut slice, mut last_post) = (now_ms(), now_ms());
    while !batch.is_done() && !stop.is_cancelled(req.run) {
        let steps = batch.step(&weights).map_err(|e| words::run_error(&e))?;
        for (col, step) in cols.iter_mut().zip(steps) {
            if let Some(step) = step {
                col.push(tokenizer, step).map_err(|e| words::run_error(&e))?;
            }
        }
        if now_ms() - last_post >= POST_MS {
            send(req.run, &mut cols);
            last_post = now_ms();
        }
        if now_ms() - slice >= SLICE_MS {
            yield_now().await;
            slice = now_ms();
        }
    }
    cols.iter_mut().for_each(Column::finish);
    send(req.run, &mut cols);
    Ok(batch.generations.iter().map(|g| g.positions()).collect())
}

/// A column's sampler, or why its setting is refused, naming the column.
fn sampler((i, s): (usize, &Sampling)) -> Result<Sampler, String> {
    Sampler::new(s.temperature, s.topp, s.seed).map_err(|e| format!("Setting {}: {}", i + 1, words::run_error(&e)))
}

fn send(run: u64, cols: &mut [Column]) {
    let columns = cols.iter_mut().map(|c| std::mem::take(&mut c.text)).collect();
    tell(CompareNews::Text { run, columns });
}

/// One column's text not yet sent; byte-fallback pieces are joined into characters.
#[derive(Default)]
struct Column {
    utf8: Utf8Stream,
    text: ColumnText,
}

impl Column {
    fn push(&mut self, tokenizer: &Tokenizer, step: Step) -> Result<(), Error> {
        let piece = tokenizer.decode(step.prev, step.token)?;
        let text = self.utf8.push(piece.bytes());
        match step.from_prompt {
            true => self.text.prompt.push_str(&text),
            false => self.text.story.push_str(&text),
        }
        Ok(())
    }

    /// An unfinished character at the end is shown as U+FFFD.
    fn finish(&mut self) {
        let tail = self.utf8.finish();
        self.text.story.push_str(&tail);
    }
}
