//! Steering directions: the mean difference of the residual streams of two lists of prompts.

use super::Inspection;
use crate::error::{Error, Result};

/// The direction at `layer` that points from the `away` prompts to the `toward` prompts
/// ("happy" vs "sad" sentences): for each prompt, its residual after `layer` averaged over its
/// positions after BOS (BOS's residual is the same in every prompt); the mean of those over
/// each list; `toward`'s mean minus `away`'s, `[dim]`. Sums in f64.
pub fn steering_direction(toward: &[Inspection], away: &[Inspection], layer: usize) -> Result<Vec<f32>> {
    let a = list_mean(toward, layer, "toward")?;
    let b = list_mean(away, layer, "away")?;
    if a.len() != b.len() {
        return Err(Error::InvalidSetting("the two prompt lists were inspected on different models".into()));
    }
    Ok(a.iter().zip(&b).map(|(x, y)| (x - y) as f32).collect())
}

fn list_mean(list: &[Inspection], layer: usize, name: &str) -> Result<Vec<f64>> {
    let Some(first) = list.first() else {
        return Err(Error::InvalidSetting(format!("the `{name}` prompt list is empty")));
    };
    let c = first.config;
    if layer >= c.n_layers {
        return Err(Error::InvalidSetting(format!(
            "steering layer {layer} does not exist; the model has {} layers (0..{})",
            c.n_layers,
            c.n_layers - 1
        )));
    }
    let mut sum = vec![0f64; c.dim];
    for (i, ins) in list.iter().enumerate() {
        if ins.config != c {
            return Err(Error::InvalidSetting("the prompts were inspected on different models".into()));
        }
        let n = ins.len();
        if n < 2 {
            return Err(Error::InvalidSetting(format!("prompt {} of the `{name}` list is empty (only BOS)", i + 1)));
        }
        let mut mean = vec![0f64; c.dim];
        for t in 1..n {
            for (m, &x) in mean.iter_mut().zip(ins.resid_at(layer, t)) {
                *m += x as f64;
            }
        }
        for (s, m) in sum.iter_mut().zip(&mean) {
            *s += m / (n - 1) as f64;
        }
    }
    Ok(sum.into_iter().map(|s| s / list.len() as f64).collect())
}
