//! The Build view's messages: growing a model from random weights (`tinylm pretrain` in the
//! worker), its per-step instruments, samples on one prompt, checkpoints and the finished model.

use serde::{Deserialize, Serialize};

use super::train::Ending;
use super::Bytes;

/// A shape the Build view offers: a `Config::parse` spec (vocabulary 512: the bundled tok512)
/// and the seed of its random init (as `tinylm pretrain --config SPEC --seed SEED`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub key: &'static str,
    pub label: &'static str,
    pub spec: &'static str,
    pub seed: u64,
}

/// From ~30K to ~1M parameters; all read tok512 and have a 256-token context.
pub const SHAPES: [Shape; 3] = [
    Shape { key: "s30k", label: "Seedling", spec: "32,64,1,4,4,512,256", seed: 30 },
    Shape { key: "s260k", label: "Sapling (the stories260K shape)", spec: "64,172,5,8,4,512,256", seed: 260 },
    Shape { key: "s1m", label: "Tree", spec: "128,344,5,8,4,512,256", seed: 1000 },
];

pub fn shape(key: &str) -> Option<Shape> {
    SHAPES.iter().copied().find(|s| s.key == key)
}

/// Settings of a run, in the CLI's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildSettings {
    /// A key of `SHAPES`.
    pub shape: String,
    pub steps: u32,
    pub lr: f64,
    pub warmup: u32,
    pub batch: usize,
    pub seq: usize,
    pub data_seed: u64,
    pub z_loss: f64,
    /// A sample (and a held-out check) every this many steps.
    pub sample_every: u32,
    pub prompt: String,
    /// Where to train: "cpu", or "gpu" (WebGPU, falling back to the CPU in words). Runs kept
    /// before the choice existed trained on the CPU.
    #[serde(default = "on_the_cpu")]
    pub device: String,
}

fn on_the_cpu() -> String {
    "cpu".into()
}

/// A run to start or continue (boxed in `BuildCmd`: it carries the text and a checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildStart {
    pub job: u64,
    pub settings: BuildSettings,
    pub text: String,
    /// tok512.bin's bytes.
    pub tokenizer: Bytes,
    /// A checkpoint (`Trainer::snapshot_async(true)`) to continue from.
    pub resume: Option<Bytes>,
}

/// An experiment (`tinylm pretrain --lr-sweep`'s runs): one short run from the same random init,
/// data and seed per entry of `runs`, one after another: the learning-rate experiment (rates,
/// the settings' warm-up and z-loss), or warm-up and z-loss at one rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepStart {
    pub job: u64,
    /// The runs' settings (`lr`, `warmup` and `z_loss` unused: each run has its own).
    pub settings: BuildSettings,
    pub runs: Vec<SweepRunSpec>,
    pub text: String,
    pub tokenizer: Bytes,
}

/// Where a run's time went (since it started or resumed), measured in the run by one clock:
/// what the estimate counts (steps, each with its yield, and checks) and the whole.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RunTiming {
    pub steps: u32,
    /// Mean of the steps and of the checks.
    pub step_ms: f64,
    pub checks: u32,
    pub check_ms: f64,
    /// From the first step (or check) to the model file.
    pub total_ms: f64,
}

impl RunTiming {
    /// The estimate's sum with this run's own per-step and per-check costs.
    pub fn counted_ms(&self) -> f64 {
        self.steps as f64 * self.step_ms + self.checks as f64 * self.check_ms
    }
}

/// What differs between an experiment's runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepRunSpec {
    pub lr: f64,
    pub warmup: u32,
    pub z_loss: f64,
}

/// How long a run would take here, measured on its shape before it starts (see `BuildCmd::Estimate`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BuildEstimate {
    /// The whole run: its steps, and a held-out check and a sample every `sample_every` steps.
    pub seconds: f64,
    /// One training step, and one check (the held-out windows' losses and a sample).
    pub step_ms: f64,
    pub check_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BuildCmd {
    Start(Box<BuildStart>),
    /// Stopped by `Stop { job }`.
    Sweep(Box<SweepStart>),
    /// Times a few steps of the settings' shape on random tokens; answered by `Estimated`.
    Estimate {
        req: u64,
        settings: BuildSettings,
    },
    /// Greedy stories of kept models (llama2.c files) on one prompt; answered by `Compared`.
    Compare {
        req: u64,
        models: Vec<Bytes>,
        tokenizer: Bytes,
        prompt: String,
        steps: usize,
    },
    /// Ends run `job` after its current step with a checkpoint (acted on arrival).
    Pause {
        job: u64,
    },
    Stop {
        job: u64,
    },
}

/// One step's instruments (the engine's `StepMetrics`, reduced to what the charts draw).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    pub step: u32,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    /// Largest pre-softmax attention logit per layer.
    pub attn_logit_max: Vec<f64>,
    pub logit_max: f64,
    pub lse_mean: f64,
    /// The largest update-to-weight ratio over the tensors.
    pub update_ratio: f64,
    pub ms_per_step: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BuildEvent {
    /// The text as cut: training is on its first `train_bytes` bytes (UTF-8), the rest held out.
    Data {
        job: u64,
        train_bytes: usize,
        train_tokens: usize,
        held_tokens: usize,
        params: u64,
    },
    /// Where run `job` trains, in words ("WebGPU (google swiftshader (software fallback
    /// adapter))", "the CPU", or "the CPU (why not WebGPU)").
    Device {
        job: u64,
        name: String,
    },
    Step {
        job: u64,
        m: StepView,
    },
    Held {
        job: u64,
        step: u32,
        loss: f64,
    },
    Sample {
        job: u64,
        step: u32,
        text: String,
    },
    /// A checkpoint to keep (OPFS) for a resume.
    Checkpoint {
        job: u64,
        step: u32,
        state: Bytes,
    },
    /// The run ended; `model` is the llama2.c v0 file of its weights.
    Ended {
        job: u64,
        ending: Ending,
        step: u32,
        model: Bytes,
        timing: RunTiming,
    },
    Failed {
        job: u64,
        message: String,
    },
    /// Step `step`'s loss of the experiment's run `run` (an index of its runs) and its largest
    /// pre-softmax attention logit over the layers.
    SweepStep {
        job: u64,
        run: usize,
        step: u32,
        loss: f64,
        attn: f64,
    },
    /// The run's end: the loss on the next batch after its last step (as `--lr-sweep`'s
    /// `final_loss`), or the step where it diverged.
    SweepRun {
        job: u64,
        run: usize,
        final_loss: Option<f64>,
        diverged_at: Option<u32>,
    },
    /// The experiment ended (`stopped`: by Stop, before its last run).
    SweepEnded {
        job: u64,
        stopped: bool,
    },
    Estimated {
        req: u64,
        result: Result<BuildEstimate, String>,
    },
    /// One story per model, in order (or what went wrong, in words).
    Compared {
        req: u64,
        result: Result<Vec<String>, String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinylm_engine::Config;

    #[test]
    fn shapes_span_30k_to_1m_parameters_and_read_tok512() {
        let n: Vec<u64> = SHAPES.iter().map(|s| Config::parse(s.spec).unwrap().n_params()).collect();
        // Counted by hand for the first: 512·32 embedding + 4·32² attention + 3·32·64 MLP + 3·32 gains.
        assert_eq!(n[0], 26_720);
        assert!(n.windows(2).all(|w| w[0] < w[1]) && n[2] > 900_000 && n[2] < 1_100_000, "{n:?}");
        for s in SHAPES {
            let c = Config::parse(s.spec).unwrap();
            assert_eq!((c.vocab_size, c.seq_len), (512, 256), "{}", s.key);
            assert_eq!(shape(s.key), Some(s));
        }
        assert_eq!(shape("nope"), None);
    }

    #[test]
    fn events_survive_the_wire() {
        let m = StepView {
            step: 3,
            loss: 9.5,
            lr: 1e-3,
            grad_norm: 2.0,
            attn_logit_max: vec![1.5, 2.5],
            logit_max: 4.0,
            lse_mean: 6.2,
            update_ratio: 1e-3,
            ms_per_step: 5.0,
        };
        let ev = BuildEvent::Step { job: 1, m };
        assert_eq!(serde_json::from_str::<BuildEvent>(&serde_json::to_string(&ev).unwrap()).unwrap(), ev);
        let ev = BuildEvent::Checkpoint { job: 1, step: 50, state: Bytes::from_slice(&[1, 2, 3]) };
        assert_eq!(serde_json::from_str::<BuildEvent>(&serde_json::to_string(&ev).unwrap()).unwrap(), ev);
    }
}
