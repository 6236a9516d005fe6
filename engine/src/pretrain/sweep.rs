//! The learning-rate experiment's four ways of running each rate (plain, with warm-up, with
//! z-loss, with both), as "Small-scale proxies for large-scale Transformer training
//! instabilities" compares them: one list for `tinylm pretrain --lr-sweep` and the Build view,
//! so the page's runs stay the CLI's.

/// The z-loss weight when none is given: the paper's 1e-4.
pub const SWEEP_Z_LOSS: f64 = 1e-4;

/// The four ways' names, in `--lr-sweep`'s order.
pub const SWEEP_WAY_NAMES: [&str; 4] = ["plain", "warm-up", "z-loss", "warm-up + z-loss"];

/// One way of running a rate: its name and the warm-up steps and z-loss weight it uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepWay {
    pub name: &'static str,
    pub warmup: u32,
    pub z_loss: f64,
}

/// The four ways in `--lr-sweep`'s order for runs of `steps` steps: the warm-up and z-loss
/// given, or where 0, a tenth of the run (at least 1 step) and `SWEEP_Z_LOSS`.
pub fn sweep_ways(steps: u32, warmup: u32, z_loss: f64) -> [SweepWay; 4] {
    let warm = if warmup > 0 { warmup } else { (steps / 10).max(1) };
    let z = if z_loss > 0.0 { z_loss } else { SWEEP_Z_LOSS };
    let [plain, warm_up, z_only, both] = SWEEP_WAY_NAMES;
    let way = |name, warmup, z_loss| SweepWay { name, warmup, z_loss };
    [way(plain, 0, 0.0), way(warm_up, warm, 0.0), way(z_only, 0, z), way(both, warm, z)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(w: [SweepWay; 4]) -> Vec<(&'static str, u32, f64)> {
        w.iter().map(|w| (w.name, w.warmup, w.z_loss)).collect()
    }

    #[test]
    fn defaults_are_a_tenth_of_the_run_and_the_papers_z_loss() {
        let want = [("plain", 0, 0.0), ("warm-up", 30, 0.0), ("z-loss", 0, 1e-4), ("warm-up + z-loss", 30, 1e-4)];
        assert_eq!(pairs(sweep_ways(300, 0, 0.0)), want);
        // A run too short for a tenth still warms up for a step.
        assert_eq!(sweep_ways(5, 0, 0.0)[1].warmup, 1);
    }

    #[test]
    fn given_settings_are_kept() {
        let want = [("plain", 0, 0.0), ("warm-up", 7, 0.0), ("z-loss", 0, 3e-3), ("warm-up + z-loss", 7, 3e-3)];
        assert_eq!(pairs(sweep_ways(300, 7, 3e-3)), want);
    }
}
