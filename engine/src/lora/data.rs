//! Training data: token windows of a fixed length, and the seeded order they are batched in.
//!
//! Windows: a token stream of length `L` is cut at starts `0, T−1, 2(T−1), …` (consecutive
//! windows share one token, so every next-token pair is predicted exactly once), plus one last
//! window ending at the stream's end when tokens are left over. A stream shorter than `T` is an
//! error.
//!
//! Order: epoch `e` visits the windows in the permutation given by a Fisher–Yates shuffle with
//! `j = splitmix64(seed ^ fnv1a64("lora.data.epoch.<e>"), i) mod (i + 1)` for `i = n−1 … 1`.
//! The epochs are concatenated into one endless stream and training step `k` takes stream
//! entries `k·B … k·B + B − 1`, so a batch may straddle two epochs and nothing is dropped.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::randmodel::{fnv1a64, splitmix64};
use crate::tokenizer::Tokenizer;

/// Most tokens one batch may hold.
pub const MAX_BATCH_TOKENS: usize = 1 << 24;

/// `batch` sequences of `seq` tokens each, row-major `[batch, seq]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub batch: usize,
    pub seq: usize,
    pub tokens: Vec<u32>,
}

impl Batch {
    pub fn new(batch: usize, seq: usize, tokens: Vec<u32>) -> Result<Batch> {
        if batch == 0 || seq == 0 || batch.checked_mul(seq) != Some(tokens.len()) {
            return Err(Error::InvalidSetting(format!(
                "a batch of {batch} × {seq} tokens needs {} tokens, got {}",
                batch.saturating_mul(seq),
                tokens.len()
            )));
        }
        Ok(Batch { batch, seq, tokens })
    }

    /// One sequence.
    pub fn single(tokens: Vec<u32>) -> Result<Batch> {
        Batch::new(1, tokens.len(), tokens)
    }

    /// Fails unless the model can run it: `seq ≤ seq_len`, every id in the vocabulary.
    pub fn check(&self, c: &Config) -> Result<()> {
        if self.seq > c.seq_len {
            return Err(Error::PromptTooLong { tokens: self.seq, seq_len: c.seq_len });
        }
        if let Some(&bad) = self.tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(Error::TokenOutOfRange { id: bad as i64, vocab_size: c.vocab_size });
        }
        Ok(())
    }

    /// Fails unless each sequence has a next token to predict.
    pub fn check_trainable(&self) -> Result<()> {
        if self.seq < 2 {
            return Err(Error::InvalidSetting("training sequences need at least 2 tokens".into()));
        }
        Ok(())
    }
}

/// Token windows of length `seq`, ready to be batched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub seq: usize,
    windows: Vec<Vec<u32>>,
}

impl Dataset {
    /// BOS + the tokenizer's encoding of `text` (no EOS), cut into windows of `seq`.
    pub fn from_text(tok: &Tokenizer, text: &str, seq: usize, c: &Config) -> Result<Dataset> {
        Dataset::from_token_lists(&[tok.encode(text, true, false)], seq, c)
    }

    /// Each list is cut into windows on its own (a window never spans two lists).
    pub fn from_token_lists(lists: &[Vec<u32>], seq: usize, c: &Config) -> Result<Dataset> {
        if seq < 2 || seq > c.seq_len {
            return Err(Error::InvalidSetting(format!(
                "the training sequence length {seq} must be between 2 and the model's context {}",
                c.seq_len
            )));
        }
        if lists.is_empty() {
            return Err(Error::InvalidSetting("no training data: the token list is empty".into()));
        }
        let mut windows = Vec::new();
        for (i, list) in lists.iter().enumerate() {
            if list.len() < seq {
                return Err(Error::InvalidSetting(format!(
                    "token list {i} has {} tokens, fewer than the sequence length {seq}",
                    list.len()
                )));
            }
            if let Some(&bad) = list.iter().find(|&&t| t as usize >= c.vocab_size) {
                return Err(Error::TokenOutOfRange { id: bad as i64, vocab_size: c.vocab_size });
            }
            windows.extend(window_starts(list.len(), seq).into_iter().map(|s| list[s..s + seq].to_vec()));
        }
        Ok(Dataset { seq, windows })
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
    pub fn window(&self, i: usize) -> &[u32] {
        &self.windows[i]
    }

    /// The window order of epoch `epoch`.
    pub fn epoch_order(&self, seed: u64, epoch: u64) -> Vec<usize> {
        shuffled(self.len(), seed ^ fnv1a64(&format!("lora.data.epoch.{epoch}")))
    }

    /// The batch of `batch` windows for training step `step` (0-based).
    pub fn batch(&self, batch: usize, step: u64, seed: u64) -> Result<Batch> {
        if batch == 0 || batch.checked_mul(self.seq).is_none_or(|n| n > MAX_BATCH_TOKENS) {
            return Err(Error::InvalidSetting(format!(
                "batch size {batch} must be between 1 and {}",
                MAX_BATCH_TOKENS / self.seq
            )));
        }
        let n = self.len() as u64;
        let mut tokens = Vec::with_capacity(batch * self.seq);
        let mut order: (u64, Vec<usize>) = (u64::MAX, Vec::new());
        for j in 0..batch as u64 {
            let at = step.saturating_mul(batch as u64).saturating_add(j);
            let epoch = at / n;
            if order.0 != epoch {
                order = (epoch, self.epoch_order(seed, epoch));
            }
            tokens.extend_from_slice(&self.windows[order.1[(at % n) as usize]]);
        }
        Batch::new(batch, self.seq, tokens)
    }
}

/// Held-out windows per forward pass: the CLI and the browser evaluate in the same chunks.
pub const HELD_CHUNK: usize = 8;

/// The windows a held-out evaluation runs, as passes of at most `HELD_CHUNK` windows: every
/// window of a dataset, or `max_windows` of them spread evenly over it (a fixed sample, the
/// same at every evaluation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldOut {
    pub batches: Vec<Batch>,
    /// Windows in all.
    pub windows: usize,
    pub seq: usize,
}

impl HeldOut {
    pub fn new(data: &Dataset, max_windows: usize) -> Result<HeldOut> {
        let picked = even_sample(data.len(), max_windows);
        let batches = picked
            .chunks(HELD_CHUNK)
            .map(|chunk| Batch::new(chunk.len(), data.seq, chunk.iter().flat_map(|&i| data.window(i).to_vec()).collect()))
            .collect::<Result<Vec<_>>>()?;
        Ok(HeldOut { batches, windows: picked.len(), seq: data.seq })
    }

    /// Nothing to evaluate (the text was shorter than a window).
    pub fn none(seq: usize) -> HeldOut {
        HeldOut { batches: Vec::new(), windows: 0, seq }
    }

    pub fn is_empty(&self) -> bool {
        self.windows == 0
    }
}

/// Which of `n` windows an evaluation uses: all, or `max` evenly spread ones (window i of max
/// sits in the middle of its 1/max-th of the text).
pub fn even_sample(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    (0..max).map(|i| (2 * i + 1) * n / (2 * max)).collect()
}

/// Starts of the windows of `seq` in a stream of `len ≥ seq` tokens.
/// How many windows of `seq` tokens (`seq` ≥ 2) a list of `len` tokens makes: `Dataset`'s cut.
pub fn window_count(len: usize, seq: usize) -> usize {
    window_starts(len, seq).len()
}

fn window_starts(len: usize, seq: usize) -> Vec<usize> {
    let stride = seq - 1;
    let mut starts: Vec<usize> = (0..).map(|i| i * stride).take_while(|&s| s + seq <= len).collect();
    // Pairs after the last full window get one more window, ending at the stream's end.
    if let Some(&last) = starts.last() {
        if last + seq < len {
            starts.push(len - seq);
        }
    }
    starts
}

/// `0..n` shuffled by Fisher–Yates with the splitmix64 stream of `seed`.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (splitmix64(seed, i as u64) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}
