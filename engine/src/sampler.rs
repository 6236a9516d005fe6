//! run.c's sampler, bit for bit: xorshift RNG, argmax, multinomial and top-p, all in f32.

use crate::error::{Error, Result};

/// run.c's xorshift* generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rng {
    pub state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u32(&mut self) -> u32 {
        let mut s = self.state;
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        self.state = s;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// A float in [0, 1) with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / 16_777_216.0
    }
}

/// Sampling settings and RNG state.
#[derive(Debug, Clone)]
pub struct Sampler {
    pub temperature: f32,
    pub topp: f32,
    pub rng: Rng,
    /// Scratch for top-p (index, probability), reused to avoid allocation per token.
    scratch: Vec<(u32, f32)>,
}

impl Sampler {
    /// Settings are checked here; run.c's CLI clamps instead (see `from_cli`).
    pub fn new(temperature: f32, topp: f32, seed: u64) -> Result<Sampler> {
        if !(temperature >= 0.0 && temperature.is_finite()) {
            return Err(Error::InvalidSetting(format!("temperature {temperature} must be a finite number ≥ 0")));
        }
        if !(0.0..=1.0).contains(&topp) {
            return Err(Error::InvalidSetting(format!("top-p {topp} must be between 0 and 1")));
        }
        Ok(Sampler { temperature, topp, rng: Rng::new(seed), scratch: Vec::new() })
    }

    /// run.c's command-line rules: negative temperature → 0; top-p outside [0,1] → 0.9.
    pub fn from_cli(temperature: f32, topp: f32, seed: u64) -> Result<Sampler> {
        let t = if temperature < 0.0 { 0.0 } else { temperature };
        let p = if !(0.0..=1.0).contains(&topp) { 0.9 } else { topp };
        Sampler::new(t, p, seed)
    }

    /// Picks the next token from `logits` (which it overwrites with probabilities when t > 0).
    pub fn sample(&mut self, logits: &mut [f32]) -> u32 {
        if self.temperature == 0.0 {
            return argmax(logits) as u32;
        }
        for l in logits.iter_mut() {
            *l /= self.temperature;
        }
        softmax(logits);
        let coin = self.rng.next_f32();
        self.choose(logits, coin)
    }

    /// The token a coin selects from probabilities, by multinomial or top-p per the settings.
    pub fn choose(&mut self, probs: &[f32], coin: f32) -> u32 {
        if self.topp <= 0.0 || self.topp >= 1.0 {
            sample_mult(probs, coin) as u32
        } else {
            sample_topp(probs, self.topp, coin, &mut self.scratch)
        }
    }
}

/// Index of the first maximum (NaNs never win; a NaN first element does).
pub fn argmax(x: &[f32]) -> usize {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::argmax(x);
    #[allow(unreachable_code)]
    argmax_scalar(x)
}

/// `argmax` one element at a time: the reference the SIMD form is tested against.
pub fn argmax_scalar(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate().skip(1) {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// `argmax` in simd128 lanes (here rather than in `cpu::fast`, which uses this module's softmax).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use std::arch::wasm32::*;

    #[inline(always)]
    fn load(x: &[f32], at: usize) -> v128 {
        let s = &x[at..at + 4];
        // SAFETY: `s` holds four floats (bounds checked above); v128_load takes unaligned pointers.
        unsafe { v128_load(s.as_ptr() as *const v128) }
    }

    /// `sampler::argmax_scalar`'s index, four lanes at a time: each lane keeps the largest of its
    /// elements that beat the first (a NaN never compares greater, so never wins), then the first
    /// element equal to the largest of the lanes is the answer. The scalar loop's dependent reload
    /// of `x[best]` took ≈0.1 ms of a token on a 32,000-word vocabulary in V8 (2-core VM), ≈5% of a
    /// two-thread s15m step.
    pub fn argmax(x: &[f32]) -> usize {
        let n = x.len();
        if n < 8 || x[0].is_nan() {
            return super::argmax_scalar(x);
        }
        let body = n - n % 4;
        let mut m = f32x4_splat(x[0]);
        for j in (0..body).step_by(4) {
            let v = load(x, j);
            m = v128_bitselect(v, m, f32x4_gt(v, m));
        }
        let lanes =
            [f32x4_extract_lane::<0>(m), f32x4_extract_lane::<1>(m), f32x4_extract_lane::<2>(m), f32x4_extract_lane::<3>(m)];
        let max = lanes.into_iter().chain(x[body..].iter().copied()).fold(x[0], |m, v| if v > m { v } else { m });
        let mv = f32x4_splat(max);
        for j in (0..body).step_by(4) {
            let hit = i32x4_bitmask(f32x4_eq(load(x, j), mv));
            if hit != 0 {
                return j + hit.trailing_zeros() as usize;
            }
        }
        body + x[body..].iter().position(|&v| v == max).unwrap_or(0)
    }
}

/// In-place softmax as run.c: subtract the max, exp, sum in order, divide.
pub fn softmax(x: &mut [f32]) {
    softmax_stats(x);
}

/// `softmax`, returning the max and the sum of `e^(x−max)` it divided by (`max + ln(sum)` is the
/// logsumexp); `(−∞, 0)` for an empty `x`.
pub fn softmax_stats(x: &mut [f32]) -> (f32, f32) {
    let Some(&first) = x.first() else { return (f32::NEG_INFINITY, 0.0) };
    let max = x.iter().fold(first, |m, &v| if v > m { v } else { m });
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
    (max, sum)
}

/// Multinomial: first index whose cdf exceeds the coin; the last index on rounding.
pub fn sample_mult(probs: &[f32], coin: f32) -> usize {
    let mut cdf = 0f32;
    for (i, &p) in probs.iter().enumerate() {
        cdf += p;
        if coin < cdf {
            return i;
        }
    }
    probs.len() - 1
}

/// The tokens top-p keeps, in sampling order: candidates with p ≥ (1−topp)/(n−1), sorted by
/// descending probability (stable, like glibc's merge sort), cut after the cumulative sum first
/// exceeds topp. Returns the count kept and that cumulative sum.
pub fn topp_keep(probs: &[f32], topp: f32, out: &mut Vec<(u32, f32)>) -> (usize, f32) {
    out.clear();
    let cutoff = (1.0f32 - topp) / (probs.len() as f32 - 1.0);
    out.extend(probs.iter().enumerate().filter(|(_, &p)| p >= cutoff).map(|(i, &p)| (i as u32, p)));
    out.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    let mut cumulative = 0f32;
    let mut last = out.len().saturating_sub(1);
    for (i, &(_, p)) in out.iter().enumerate() {
        cumulative += p;
        if cumulative > topp {
            last = i;
            break;
        }
    }
    (last + 1, cumulative)
}

/// run.c `sample_topp`.
pub fn sample_topp(probs: &[f32], topp: f32, coin: f32, scratch: &mut Vec<(u32, f32)>) -> u32 {
    let (kept, cumulative) = topp_keep(probs, topp, scratch);
    if scratch.is_empty() {
        // Only possible with non-finite probabilities or a one-token vocabulary.
        return argmax(probs) as u32;
    }
    let r = coin * cumulative;
    let mut cdf = 0f32;
    for &(i, p) in &scratch[..kept] {
        cdf += p;
        if r < cdf {
            return i;
        }
    }
    scratch[kept - 1].0
}
