//! One inspection as the page holds it: the worker's small JSON part and its three arrays.

use crate::protocol::inspect::InspectInfo;

pub struct Data {
    pub info: InspectInfo,
    /// `[L, H, T, T]`.
    pub attn: Vec<f32>,
    /// `[T, V]`.
    pub logits: Vec<f32>,
    /// `[L, T, T]`.
    pub roll: Vec<f32>,
}

impl Data {
    /// Checks the arrays against the shapes the JSON states.
    pub fn new(info: InspectInfo, attn: Vec<f32>, logits: Vec<f32>, roll: Vec<f32>) -> Result<Data, String> {
        let (l, h, t, v) = (info.n_layers, info.n_heads, info.tokens.len(), info.vocab_size);
        let lens_ok = info.lens.iter().all(|c| c.pos < t && c.tops.len() == l);
        if attn.len() != l * h * t * t || logits.len() != t * v || roll.len() != l * t * t || !lens_ok {
            return Err("The engine sent an inspection of the wrong size.".into());
        }
        Ok(Data { info, attn, logits, roll })
    }
    pub fn len(&self) -> usize {
        self.info.tokens.len()
    }
    pub fn layers(&self) -> usize {
        self.info.n_layers
    }
    pub fn heads(&self) -> usize {
        self.info.n_heads
    }
    /// The `[T, T]` attention matrix of one head.
    pub fn head(&self, l: usize, h: usize) -> &[f32] {
        let n = self.len();
        let at = (l * self.heads() + h) * n * n;
        &self.attn[at..at + n * n]
    }
    /// Row `t` of a head, or the mean over the layer's heads when `h` is None.
    pub fn row(&self, l: usize, h: Option<usize>, t: usize) -> Vec<f32> {
        let n = self.len();
        match h {
            Some(h) => self.head(l, h)[t * n..(t + 1) * n].to_vec(),
            None => {
                let mut out = vec![0f32; n];
                for h in 0..self.heads() {
                    for (o, v) in out.iter_mut().zip(&self.head(l, h)[t * n..(t + 1) * n]) {
                        *o += v / self.heads() as f32;
                    }
                }
                out
            }
        }
    }
    pub fn logits_at(&self, t: usize) -> &[f32] {
        let v = self.info.vocab_size;
        &self.logits[t * v..(t + 1) * v]
    }
    /// Rollout `[T, T]` through layer `l`.
    pub fn rollout(&self, l: usize) -> &[f32] {
        let n = self.len();
        &self.roll[l * n * n..(l + 1) * n * n]
    }
    pub fn piece(&self, t: usize) -> &str {
        self.info.pieces.get(t).map_or("", String::as_str)
    }
    pub fn vocab(&self, id: u32) -> &str {
        self.info.vocab.get(id as usize).map_or("?", String::as_str)
    }
    /// Largest value of a head's matrix below its first row (which is always 1).
    pub fn head_max(&self, l: usize, h: usize) -> f32 {
        let n = self.len();
        let m = self.head(l, h)[n.min(n * n)..].iter().fold(0f32, |m, &v| m.max(v));
        if m > 0.0 {
            m
        } else {
            1.0
        }
    }
}
