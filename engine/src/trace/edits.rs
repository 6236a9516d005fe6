//! Knock-outs and steering: changes to the forward pass that hold at every position, so a
//! story can be regenerated (same seed) or a text re-inspected with them.
//!
//! - A knocked-out head's output (its slice of the attention output, before the output
//!   projection) is replaced by zeros, or by its mean over a text's positions (`HeadMeans`).
//! - A skipped attention or MLP block has its output zeroed: the residual passes through.
//! - Steering adds `strength · direction` to the residual stream after one layer.
//!
//! `Intervention` says what to change (serde, for the worker and the CLI's JSON); `Edits` is
//! it checked against a model and ready for the forward pass (a `Hook` on the CPU, uploaded
//! by `GpuBackend::set_edits` on the GPU).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Hook;
use crate::config::Config;
use crate::error::{Error, Result};

/// A head by layer and index, both 0-based (as `tinylm inspect --layer/--head`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HeadId {
    pub layer: usize,
    pub head: usize,
}

impl FromStr for HeadId {
    type Err = Error;
    /// "L.H", e.g. "1.3".
    fn from_str(s: &str) -> Result<HeadId> {
        let bad = || Error::InvalidSetting(format!("head `{s}` must be LAYER.HEAD, both 0-based (e.g. 1.3)"));
        let (l, h) = s.trim().split_once('.').ok_or_else(bad)?;
        Ok(HeadId { layer: l.parse().map_err(|_| bad())?, head: h.parse().map_err(|_| bad())? })
    }
}

impl fmt::Display for HeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.layer, self.head)
    }
}

/// What a knocked-out head outputs instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ablation {
    /// Zeros.
    #[default]
    Zero,
    /// Its mean output over a text's positions in the unchanged model.
    Mean,
}

/// Steering: `strength · direction` added to the residual after `layer` at every position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Steer {
    pub layer: usize,
    /// `[dim]`, e.g. from `steering_direction`.
    pub direction: Vec<f32>,
    pub strength: f32,
}

/// What to change in the forward pass. The default changes nothing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Intervention {
    /// Heads knocked out.
    pub ablate: Vec<HeadId>,
    pub ablation: Ablation,
    /// Layers whose attention block's output is zeroed.
    pub skip_attn: Vec<usize>,
    /// Layers whose MLP block's output is zeroed.
    pub skip_mlp: Vec<usize>,
    pub steer: Option<Steer>,
}

impl Intervention {
    /// Whether it changes nothing (no heads, no blocks, no steering).
    pub fn is_none(&self) -> bool {
        self.ablate.is_empty() && self.skip_attn.is_empty() && self.skip_mlp.is_empty() && self.steer.is_none()
    }

    /// What is changed, in words ("heads 1.3, 2.0 zeroed; MLP skipped in layer 2").
    pub fn describe(&self) -> String {
        // "layer 4", "layers 1, 3": the plural only for more than one.
        let list = |v: &[usize]| {
            let n = v.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ");
            if v.len() == 1 {
                format!("layer {n}")
            } else {
                format!("layers {n}")
            }
        };
        let mut parts = Vec::new();
        if !self.ablate.is_empty() {
            let heads: Vec<String> = self.ablate.iter().map(|h| h.to_string()).collect();
            let noun = if heads.len() == 1 { "head" } else { "heads" };
            let how = match self.ablation {
                Ablation::Zero => "zeroed",
                Ablation::Mean if heads.len() == 1 => "set to its mean output",
                Ablation::Mean => "set to their mean output",
            };
            parts.push(format!("{noun} {} {how}", heads.join(", ")));
        }
        if !self.skip_attn.is_empty() {
            parts.push(format!("attention skipped in {}", list(&self.skip_attn)));
        }
        if !self.skip_mlp.is_empty() {
            parts.push(format!("MLP skipped in {}", list(&self.skip_mlp)));
        }
        if let Some(s) = &self.steer {
            parts.push(format!("steered after layer {} with strength {}", s.layer, s.strength));
        }
        if parts.is_empty() {
            return "nothing changed".into();
        }
        parts.join("; ")
    }
}

/// Every head's mean output over the positions of a text, `[L, q_dim]` (head h of layer l at
/// `l·q_dim + h·head_size`), in the unchanged model: what mean ablation puts in.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadMeans {
    pub config: Config,
    /// Positions averaged.
    pub positions: usize,
    pub means: Vec<f32>,
}

impl HeadMeans {
    /// Head `h` of layer `l`'s mean output, `[head_size]`.
    pub fn head(&self, l: usize, h: usize) -> &[f32] {
        let hs = self.config.head_size();
        let at = l * self.config.q_dim() + h * hs;
        &self.means[at..at + hs]
    }
}

/// A non-empty token list of in-vocabulary ids that fits the context.
pub(crate) fn check_tokens(c: &Config, tokens: &[u32], what: &str) -> Result<()> {
    if tokens.is_empty() {
        return Err(Error::InvalidSetting(format!("{what} is empty")));
    }
    if tokens.len() > c.seq_len {
        return Err(Error::PromptTooLong { tokens: tokens.len(), seq_len: c.seq_len });
    }
    match tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
        Some(&bad) => Err(Error::TokenOutOfRange { id: bad as i64, vocab_size: c.vocab_size }),
        None => Ok(()),
    }
}

/// One layer's changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerEdit {
    /// `[n_heads]`: whether the head's output is replaced by `fill`.
    pub replace: Vec<bool>,
    /// `[q_dim]`: what replaced heads output (zeros, or their means).
    pub fill: Vec<f32>,
    pub skip_attn: bool,
    pub skip_mlp: bool,
    /// `[dim]`: `strength · direction`, added to the residual after the layer.
    pub add: Option<Vec<f32>>,
}

impl LayerEdit {
    /// Whether it replaces any head.
    pub fn replaces(&self) -> bool {
        self.replace.iter().any(|&r| r)
    }
}

/// An `Intervention` checked against a model, per layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Edits {
    config: Config,
    layers: Vec<LayerEdit>,
}

impl Edits {
    /// Checks `iv` against `c` (layers, heads, the direction's length, a finite strength);
    /// mean ablation needs `means` of this model.
    pub fn new(c: &Config, iv: &Intervention, means: Option<&HeadMeans>) -> Result<Edits> {
        let (nl, nh, d, hs) = (c.n_layers, c.n_heads, c.dim, c.head_size());
        let layer_ok = |l: usize, what: &str| {
            if l >= nl {
                return Err(Error::InvalidSetting(format!(
                    "{what}: layer {l} does not exist; the model has {nl} layers (0..{})",
                    nl - 1
                )));
            }
            Ok(())
        };
        let mut layers = vec![LayerEdit { replace: vec![false; nh], fill: vec![0.0; c.q_dim()], ..LayerEdit::default() }; nl];
        let means = match (iv.ablation, iv.ablate.is_empty(), means) {
            (Ablation::Mean, false, None) => {
                return Err(Error::InvalidSetting("mean ablation needs the heads' mean outputs over a text".into()))
            }
            (Ablation::Mean, false, Some(m)) if m.config != *c => {
                return Err(Error::InvalidSetting("the heads' means were taken on another model".into()))
            }
            (Ablation::Mean, _, m) => m,
            (Ablation::Zero, _, _) => None,
        };
        for &HeadId { layer, head } in &iv.ablate {
            layer_ok(layer, &format!("knock-out {layer}.{head}"))?;
            if head >= nh {
                return Err(Error::InvalidSetting(format!(
                    "knock-out {layer}.{head}: head {head} does not exist; the model has {nh} heads per layer (0..{})",
                    nh - 1
                )));
            }
            let e = &mut layers[layer];
            e.replace[head] = true;
            if let Some(m) = means {
                e.fill[head * hs..(head + 1) * hs].copy_from_slice(m.head(layer, head));
            }
        }
        for &l in &iv.skip_attn {
            layer_ok(l, "skipping attention")?;
            layers[l].skip_attn = true;
        }
        for &l in &iv.skip_mlp {
            layer_ok(l, "skipping the MLP")?;
            layers[l].skip_mlp = true;
        }
        if let Some(s) = &iv.steer {
            layer_ok(s.layer, "steering")?;
            if s.direction.len() != d {
                return Err(Error::InvalidSetting(format!(
                    "the steering direction has {} values; the model's residual has {d}",
                    s.direction.len()
                )));
            }
            if !s.strength.is_finite() || s.direction.iter().any(|x| !x.is_finite()) {
                return Err(Error::InvalidSetting("the steering strength and direction must be finite numbers".into()));
            }
            layers[s.layer].add = Some(s.direction.iter().map(|&x| s.strength * x).collect());
        }
        Ok(Edits { config: *c, layers })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn layer(&self, l: usize) -> &LayerEdit {
        &self.layers[l]
    }

    /// Refuses edits made for a model of another shape.
    pub fn check(&self, c: &Config) -> Result<()> {
        if self.config != *c {
            return Err(Error::InvalidSetting("these knock-outs or steering were made for another model".into()));
        }
        Ok(())
    }
}

impl Hook for Edits {
    fn heads(&mut self, l: usize, _pos: usize, o: &mut [f32]) {
        let e = &self.layers[l];
        let hs = self.config.head_size();
        for (h, _) in e.replace.iter().enumerate().filter(|(_, &r)| r) {
            o[h * hs..(h + 1) * hs].copy_from_slice(&e.fill[h * hs..(h + 1) * hs]);
        }
    }
    fn attention_out(&mut self, l: usize, _pos: usize, y: &mut [f32]) {
        if self.layers[l].skip_attn {
            y.fill(0.0);
        }
    }
    fn mlp_out(&mut self, l: usize, _pos: usize, y: &mut [f32]) {
        if self.layers[l].skip_mlp {
            y.fill(0.0);
        }
    }
    fn resid(&mut self, l: usize, _pos: usize, x: &mut [f32]) {
        if let Some(add) = &self.layers[l].add {
            for (a, b) in x.iter_mut().zip(add) {
                *a += b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_counts_in_words() {
        let head = |layer, head| HeadId { layer, head };
        let one = Intervention { ablate: vec![head(1, 3)], ablation: Ablation::Mean, skip_attn: vec![2], ..Default::default() };
        assert_eq!(one.describe(), "head 1.3 set to its mean output; attention skipped in layer 2");
        let two = Intervention { ablate: vec![head(1, 3), head(2, 0)], skip_mlp: vec![0, 4], ..Default::default() };
        assert_eq!(two.describe(), "heads 1.3, 2.0 zeroed; MLP skipped in layers 0, 4");
        assert_eq!(Intervention::default().describe(), "nothing changed");
    }
}
