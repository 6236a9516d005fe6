//! The learning rate of each step: llama2.c `train.py`'s `get_lr` (linear warm-up from 0, then
//! cosine decay to a minimum at the last step) or a constant rate after the same warm-up.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Cosine,
    Constant,
}

impl ScheduleKind {
    pub fn parse(name: &str) -> crate::Result<ScheduleKind> {
        match name {
            "cosine" => Ok(ScheduleKind::Cosine),
            "constant" => Ok(ScheduleKind::Constant),
            other => Err(crate::Error::InvalidSetting(format!("schedule `{other}` must be cosine or constant"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    /// The peak rate.
    pub lr: f64,
    /// Where the cosine ends (`train.py`'s `min_lr`).
    pub min_lr: f64,
    /// Steps of linear warm-up (`warmup_iters`).
    pub warmup: u32,
    /// The run's length (`lr_decay_iters = max_iters`).
    pub steps: u32,
}

impl Schedule {
    /// The rate of step `it` (0-based, `train.py`'s `iter_num`): `lr · it / warmup` during the
    /// warm-up (so 0 at step 0), then `min_lr + ½(1 + cos(π·r))(lr − min_lr)` with
    /// `r = (it − warmup) / (steps − warmup)` for cosine, `lr` for constant; `min_lr` past `steps`.
    pub fn lr(&self, it: u32) -> f64 {
        if it < self.warmup {
            return self.lr * it as f64 / self.warmup as f64;
        }
        if self.kind == ScheduleKind::Constant {
            return self.lr;
        }
        if it > self.steps {
            return self.min_lr;
        }
        // A run no longer than its warm-up has nothing to decay over (train.py would divide by 0).
        let span = self.steps.saturating_sub(self.warmup).max(1);
        let ratio = (it - self.warmup) as f64 / span as f64;
        let coeff = 0.5 * (1.0 + (std::f64::consts::PI * ratio).cos());
        self.min_lr + coeff * (self.lr - self.min_lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_is_train_py_get_lr() {
        // Hand-computed from train.py's get_lr with learning_rate 1e-3, min_lr 1e-4,
        // warmup_iters 2, lr_decay_iters 6.
        let s = Schedule { kind: ScheduleKind::Cosine, lr: 1e-3, min_lr: 1e-4, warmup: 2, steps: 6 };
        let want = [0.0, 5e-4, 1e-3, 1e-4 + 0.5 * (1.0 + (0.25f64 * std::f64::consts::PI).cos()) * 9e-4, 5.5e-4];
        for (it, w) in want.iter().enumerate() {
            assert!((s.lr(it as u32) - w).abs() < 1e-15, "step {it}: {} vs {w}", s.lr(it as u32));
        }
        assert!((s.lr(6) - 1e-4).abs() < 1e-15 && s.lr(7) == 1e-4);
    }

    #[test]
    fn constant_keeps_the_rate_after_warm_up() {
        let s = Schedule { kind: ScheduleKind::Constant, lr: 2e-3, min_lr: 0.0, warmup: 4, steps: 10 };
        assert_eq!([s.lr(0), s.lr(2), s.lr(4), s.lr(50)], [0.0, 1e-3, 2e-3, 2e-3]);
    }
}
