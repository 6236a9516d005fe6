//! Next-token cross-entropy over rows of logits, forward and backward.

use crate::lora::real::Real;

/// A target that takes no part in the loss (the last position of each sequence).
pub const IGNORE: u32 = u32::MAX;

/// `logsumexp(l) − l[target]` of one row.
fn row_loss<F: Real>(l: &[F], target: usize) -> F {
    let max = l.iter().fold(l[0], |m, &v| if v > m { v } else { m });
    let mut sum = F::ZERO;
    for &v in l {
        sum += (v - max).exp();
    }
    sum.ln() + max - l[target]
}

/// The summed loss (in f64) and the number of rows counted, over `logits [N, vocab]` and one
/// target per row (`IGNORE` skips a row). Targets must be `< vocab` or `IGNORE`.
pub fn cross_entropy<F: Real>(logits: &[F], targets: &[u32], vocab: usize) -> (f64, usize) {
    let mut sum = 0f64;
    let mut count = 0;
    for (l, &t) in logits.chunks_exact(vocab).zip(targets) {
        if t != IGNORE {
            sum += row_loss(l, t as usize).to_f64();
            count += 1;
        }
    }
    (sum, count)
}

/// Turns `logits` into `∂loss/∂logits` in place, for `loss = scale · Σ rows`:
/// `scale · (softmax(l) − onehot(target))`, zero on ignored rows. In place because `[N, vocab]`
/// is the largest activation.
pub fn cross_entropy_bwd<F: Real>(logits: &mut [F], targets: &[u32], vocab: usize, scale: F) {
    let row = |(l, &t): (&mut [F], &u32)| {
        if t == IGNORE {
            l.fill(F::ZERO);
            return;
        }
        super::pointwise::softmax(l);
        l[t as usize] -= F::ONE;
        for v in l.iter_mut() {
            *v *= scale;
        }
    };
    // Rows are independent, so threads change nothing but the time.
    match super::linear::parallel(logits.len()) {
        Some(p) => crate::pool::for_chunks(&*p, logits, vocab, |i, l| row((l, &targets[i]))),
        None => logits.chunks_exact_mut(vocab).zip(targets).for_each(row),
    }
}
