//! The Build view's state: the form, the run's history (kept in OPFS with its checkpoint, so a
//! reload resumes) and the finished model; signal handles provided as context.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::page::run_phase::Phase;
use crate::page::state::Ctx;
use crate::protocol::build::{BuildCmd, BuildEstimate, BuildSettings, RunTiming, StepView, SweepRunSpec};
use crate::protocol::ToWorker;

/// Everything a run shows, saved beside its checkpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    pub steps: Vec<StepView>,
    pub held: Vec<(u32, f64)>,
    pub samples: Vec<(u32, String)>,
}

impl History {
    /// Forgets what came after step `step` (a resume repeats those steps).
    pub fn truncate(&mut self, step: u32) {
        self.steps.retain(|m| m.step <= step);
        self.held.retain(|h| h.0 <= step);
        self.samples.retain(|s| s.0 <= step);
    }
}

/// The run kept in OPFS: its settings, text and history (the checkpoint is a file beside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    pub settings: BuildSettings,
    pub text: String,
    pub text_label: String,
    pub step: u32,
    pub history: History,
}

/// An experiment (learning rates, or warm-up and z-loss): its runs, each run's losses and how
/// each ended.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sweep {
    pub job: u64,
    pub runs: Vec<SweepRunSpec>,
    /// Per run: (step, loss).
    pub curves: Vec<Vec<(u32, f64)>>,
    /// Per run: the largest attention logit of any step so far.
    pub attn: Vec<f64>,
    /// Per rate, once ended: the loss on the next batch, or the step where it diverged.
    pub ends: Vec<Option<Result<f64, Option<u32>>>>,
    pub running: bool,
    pub stopped: bool,
}

/// A trained model kept in one of the two slots (its llama2.c file is beside `slots.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// The model's file name, e.g. `built-s30k-300.bin`.
    pub name: String,
    pub settings: BuildSettings,
    pub steps: u32,
    /// The last training loss and held-out loss of its run.
    pub loss: Option<f64>,
    pub held: Option<f64>,
}

/// Stories of kept models side by side: (slot, story).
pub type Compared = Vec<(usize, String)>;

/// A model file's content hash for links: the first 16 hex digits of its sha256.
pub fn model_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The two slots' labels.
pub const SLOT_NAMES: [&str; 2] = ["A", "B"];

/// The form's fields, as typed.
#[derive(Clone, Copy)]
pub struct Form {
    pub shape: RwSignal<String>,
    pub corpus: RwSignal<String>,
    pub own_text: RwSignal<String>,
    pub steps: RwSignal<String>,
    pub lr: RwSignal<String>,
    pub warmup: RwSignal<String>,
    pub batch: RwSignal<String>,
    pub seq: RwSignal<String>,
    pub z_loss: RwSignal<String>,
    pub sample_every: RwSignal<String>,
    pub prompt: RwSignal<String>,
    /// The learning-rate experiment's rates (comma-separated) and steps per run.
    pub rates: RwSignal<String>,
    pub sweep_steps: RwSignal<String>,
    /// "four" (plain, warm-up, z-loss, both at each rate) or "one" (the form's warm-up and z-loss).
    pub sweep_ways: RwSignal<String>,
    /// The warm-up and z-loss experiment's rate.
    pub variant_lr: RwSignal<String>,
    /// Where to train: "cpu" or "gpu" (WebGPU).
    pub device: RwSignal<String>,
}

#[derive(Clone, Copy)]
pub struct BuildCtx {
    pub ctx: Ctx,
    pub form: Form,
    pub job: RwSignal<u64>,
    pub phase: RwSignal<Phase>,
    pub history: RwSignal<History>,
    /// The run's settings and text (as started).
    pub run: RwSignal<Option<(BuildSettings, String, String)>>,
    /// Bytes of the text trained on (the rest is held out), its tokens, and the model's size.
    pub data: RwSignal<Option<(usize, usize, usize, u64)>>,
    /// Where the current run trains, in words (the worker's `Device`).
    pub device: RwSignal<Option<String>>,
    /// The step of the newest checkpoint kept on this device.
    pub saved_step: RwSignal<Option<u32>>,
    /// The finished (or stopped) model as a llama2.c file.
    pub model: RwSignal<Option<(u32, Vec<u8>)>>,
    /// Its file name, once it has one (kept from an earlier visit, or named as it ended).
    pub model_name: RwSignal<Option<String>>,
    pub note: RwSignal<String>,
    /// The form kept from an earlier visit has been read back (typing before that is replaced).
    pub form_restored: RwSignal<bool>,
    /// Where the last run's time went (since it started or resumed), as it measured it.
    pub timing: RwSignal<Option<RunTiming>>,
    pub sweep: RwSignal<Sweep>,
    /// The warm-up and z-loss experiment.
    pub variants: RwSignal<Sweep>,
    /// How long the form's run would take here (None while measuring), and the newest request.
    pub estimate: RwSignal<Option<Result<BuildEstimate, String>>>,
    pub estimate_req: RwSignal<u64>,
    /// The two kept models.
    pub slots: RwSignal<[Option<Slot>; 2]>,
    /// The kept models' stories on the prompt (slot order), and the newest request.
    pub compared: RwSignal<Option<Result<Compared, String>>>,
    pub compare_req: RwSignal<u64>,
    /// The slots of the models sent for the newest comparison, in order.
    pub compare_order: StoredValue<Vec<usize>>,
}

impl BuildCtx {
    pub fn new(ctx: Ctx) -> BuildCtx {
        let s = |v: &str| RwSignal::new(v.to_string());
        BuildCtx {
            ctx,
            form: Form {
                shape: s("s30k"),
                corpus: s("tinystories"),
                own_text: s(""),
                steps: s("300"),
                lr: s("0.005"),
                warmup: s("10"),
                batch: s("8"),
                seq: s("64"),
                z_loss: s("0"),
                sample_every: s("50"),
                prompt: s("Once upon a time"),
                rates: s("0.0003, 0.003, 0.03, 1"),
                sweep_steps: s("100"),
                sweep_ways: s("four"),
                variant_lr: s("0.1"),
                device: s("cpu"),
            },
            job: RwSignal::new(0),
            phase: RwSignal::new(Phase::Idle),
            history: RwSignal::new(History::default()),
            run: RwSignal::new(None),
            data: RwSignal::new(None),
            device: RwSignal::new(None),
            saved_step: RwSignal::new(None),
            model: RwSignal::new(None),
            model_name: RwSignal::new(None),
            note: RwSignal::new(String::new()),
            form_restored: RwSignal::new(false),
            timing: RwSignal::new(None),
            sweep: RwSignal::new(Sweep::default()),
            variants: RwSignal::new(Sweep::default()),
            estimate: RwSignal::new(None),
            estimate_req: RwSignal::new(0),
            slots: RwSignal::new([None, None]),
            compared: RwSignal::new(None),
            compare_req: RwSignal::new(0),
            compare_order: StoredValue::new(Vec::new()),
        }
    }

    pub fn send(&self, cmd: BuildCmd) {
        self.ctx.send(&ToWorker::Build(cmd));
    }

    pub fn busy(&self) -> bool {
        self.phase.with(Phase::busy) || self.sweep.with(|s| s.running) || self.variants.with(|s| s.running)
    }
}
