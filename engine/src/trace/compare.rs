//! What an experiment moved: the next-token odds at each position before and after a change,
//! and where two stories part.

use serde::{Deserialize, Serialize};

use super::{odds, Inspection, Odds, Top1};
use crate::error::{Error, Result};
use crate::sampler::{argmax, softmax};

/// The next-token distribution at one position, before and after a change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub position: usize,
    /// The token that follows in the text; `None` at the last position.
    pub next: Option<u32>,
    /// The model's odds of `next` before and after.
    pub before: Option<Odds>,
    pub after: Option<Odds>,
    /// The likeliest next token before and after.
    pub top_before: Top1,
    pub top_after: Top1,
    /// KL(before ‖ after) of the two distributions, in nats (0 when nothing moved).
    pub kl: f32,
}

/// Position by position, how `after` (the same tokens through a changed model) differs from
/// `before`.
pub fn changes(before: &Inspection, after: &Inspection) -> Result<Vec<Change>> {
    if before.tokens != after.tokens || before.config != after.config {
        return Err(Error::InvalidSetting("a comparison needs the same text through the same model".into()));
    }
    (0..before.len())
        .map(|t| {
            let (p, q) = (before.logits_at(t), after.logits_at(t));
            let next = before.tokens.get(t + 1).copied();
            Ok(Change {
                position: t,
                next,
                before: next.map(|id| odds(p, id)).transpose()?,
                after: next.map(|id| odds(q, id)).transpose()?,
                top_before: top1(p),
                top_after: top1(q),
                kl: kl(p, q),
            })
        })
        .collect()
}

fn top1(logits: &[f32]) -> Top1 {
    let mut p = logits.to_vec();
    let id = argmax(&p);
    softmax(&mut p);
    Top1 { id: id as u32, prob: p[id] }
}

/// KL(softmax(a) ‖ softmax(b)) in f64 from log-probabilities (so tiny probabilities count).
fn kl(a: &[f32], b: &[f32]) -> f32 {
    let (la, lb) = (log_softmax(a), log_softmax(b));
    la.iter().zip(&lb).map(|(&x, &y)| x.exp() * (x - y)).sum::<f64>().max(0.0) as f32
}

fn log_softmax(z: &[f32]) -> Vec<f64> {
    let m = z.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    let lse = m + z.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
    z.iter().map(|&x| x as f64 - lse).collect()
}

/// The first index where two token lists differ (a list that ends early differs there);
/// `None` when they are equal.
pub fn first_difference(a: &[u32], b: &[u32]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(i),
        None if a.len() != b.len() => Some(a.len().min(b.len())),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{first_difference, kl};

    #[test]
    fn first_difference_of_token_lists() {
        assert_eq!(first_difference(&[1, 2, 3], &[1, 2, 3]), None);
        assert_eq!(first_difference(&[1, 2, 3], &[1, 5, 3]), Some(1));
        assert_eq!(first_difference(&[1, 2], &[1, 2, 3]), Some(2));
        assert_eq!(first_difference(&[], &[]), None);
    }

    #[test]
    fn kl_by_hand() {
        assert_eq!(kl(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
        // softmax([0, ln 3]) = (1/4, 3/4) vs (1/2, 1/2): 1/4·ln(1/2) + 3/4·ln(3/2).
        let want = 0.25 * (0.5f64).ln() + 0.75 * (1.5f64).ln();
        let got = kl(&[0.0, 3f32.ln()], &[0.0, 0.0]) as f64;
        assert!((got - want).abs() < 1e-7, "{got} vs {want}");
    }
}
