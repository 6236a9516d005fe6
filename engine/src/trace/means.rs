//! The heads' mean outputs over a text (what mean ablation puts in), a few positions at a time on
//! the CPU. Apart from `edits` so that `Edits` (which the backends hold) needs no CPU model.

use super::edits::{check_tokens, HeadMeans};
use super::{CpuModel, Hook};
use crate::config::Config;
use crate::cpu::State;
use crate::error::{Error, Result};

/// `HeadMeans` a few positions per `advance` (as `Inspector`), on the CPU with its own cache.
#[derive(Debug, Clone)]
pub struct HeadMeansRun {
    tokens: Vec<u32>,
    config: Config,
    state: State,
    sums: Vec<f64>,
    next: usize,
}

/// Adds each layer's head outputs (`[q_dim]`) to running sums.
struct SumHeads<'a> {
    dim: usize,
    sums: &'a mut [f64],
}

impl Hook for SumHeads<'_> {
    fn heads(&mut self, l: usize, _pos: usize, o: &mut [f32]) {
        for (s, &x) in self.sums[l * self.dim..(l + 1) * self.dim].iter_mut().zip(o.iter()) {
            *s += x as f64;
        }
    }
}

impl HeadMeansRun {
    pub fn new(c: &Config, tokens: &[u32]) -> Result<HeadMeansRun> {
        check_tokens(c, tokens, "the text for the heads' means")?;
        let sums = vec![0.0; c.n_layers * c.q_dim()];
        Ok(HeadMeansRun { tokens: tokens.to_vec(), config: *c, state: State::new(c), sums, next: 0 })
    }

    pub fn done(&self) -> usize {
        self.next
    }
    pub fn total(&self) -> usize {
        self.tokens.len()
    }

    /// Runs up to `positions` more positions; returns whether all have run.
    pub fn advance(&mut self, m: &CpuModel, positions: usize) -> Result<bool> {
        m.check(&self.config, "the heads' means")?;
        let end = (self.next + positions).min(self.total());
        let mut hook = SumHeads { dim: self.config.q_dim(), sums: &mut self.sums };
        for pos in self.next..end {
            m.forward(&mut self.state, self.tokens[pos], pos, Some(&mut hook))?;
            self.next = pos + 1;
        }
        Ok(self.next == self.total())
    }

    pub fn finish(self) -> Result<HeadMeans> {
        if self.next != self.total() {
            return Err(Error::InvalidSetting(format!("the heads' means stopped at {} of {} tokens", self.next, self.total())));
        }
        let n = self.total() as f64;
        let means = self.sums.iter().map(|&s| (s / n) as f32).collect();
        Ok(HeadMeans { config: self.config, positions: self.total(), means })
    }

    /// The whole run at once.
    pub fn run(m: &CpuModel, tokens: &[u32]) -> Result<HeadMeans> {
        let mut r = HeadMeansRun::new(m.config(), tokens)?;
        r.advance(m, tokens.len())?;
        r.finish()
    }
}
