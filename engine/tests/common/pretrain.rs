//! The PyTorch reference runs of full training (engine/tests/fixtures/pretrain, made by
//! scripts/pretrain_fixture.py): their model, data, settings and results.

use std::path::PathBuf;

use serde_json::Value;
use tinylm_engine::lora::{Batch, Dataset};
use tinylm_engine::pretrain::{Hyper, Schedule, ScheduleKind};
use tinylm_engine::randmodel::{random_tokens, random_weights};
use tinylm_engine::{Config, Weights};

pub struct Case {
    pub name: &'static str,
    pub weights: Weights,
    pub data: Dataset,
    pub batch: usize,
    pub data_seed: u64,
    pub hyper: Hyper,
    pub summary: Value,
    pub reference: Vec<u8>,
}

pub fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pretrain").join(name)
}

/// `random_gqa` (48,128,2,6,2,96,16, untied, seed 7: GQA 3×, cosine with warm-up, clipping,
/// z-loss) or `stories260K` (tied, constant rate, no clipping, no z-loss).
pub fn case(name: &'static str) -> Case {
    let d = dir(name);
    let summary: Value = serde_json::from_slice(&std::fs::read(d.join("summary.json")).unwrap()).unwrap();
    let reference = std::fs::read(d.join("reference.safetensors")).unwrap();
    let weights = match name {
        "random_gqa" => random_weights(&Config::parse("48,128,2,6,2,96,16,untied").unwrap(), 7).unwrap(),
        "stories260K" => super::stories260k(),
        other => panic!("no case {other}"),
    };
    let dd = &summary["data"];
    let n = |v: &Value| v.as_u64().unwrap();
    let tokens = random_tokens(n(&dd["tokens_seed"]), n(&dd["tokens"]) as usize, weights.config.vocab_size);
    let data = Dataset::from_token_lists(&[tokens], n(&dd["seq"]) as usize, &weights.config).unwrap();
    assert_eq!(data.len() as u64, n(&dd["windows"]), "the fixture cut the stream into as many windows");
    let s = &summary["settings"];
    let f = |k: &str| s[k].as_f64().unwrap();
    let kind = if s["schedule"] == "cosine" { ScheduleKind::Cosine } else { ScheduleKind::Constant };
    let schedule =
        Schedule { kind, lr: f("lr"), min_lr: f("min_lr"), warmup: n(&s["warmup"]) as u32, steps: n(&s["steps"]) as u32 };
    let hyper = Hyper {
        schedule,
        beta1: f("beta1"),
        beta2: f("beta2"),
        eps: f("eps"),
        weight_decay: f("wd"),
        clip: (f("clip") > 0.0).then(|| f("clip")),
        z_loss: f("z_loss"),
    };
    Case { name, weights, batch: n(&dd["batch"]) as usize, data_seed: n(&dd["data_seed"]), data, hyper, summary, reference }
}

impl Case {
    pub fn batch(&self, step: u64) -> Batch {
        self.data.batch(self.batch, step, self.data_seed).unwrap()
    }
    pub fn steps(&self) -> &Vec<Value> {
        self.summary["steps"].as_array().unwrap()
    }
    /// A reference tensor (`grad.wq`, `final.rms_att` …).
    pub fn tensor(&self, key: &str) -> Vec<f32> {
        super::tensor(&self.reference, key).1
    }
    /// The tensor names the fixture holds, llama2.c order.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = vec!["tok_embeddings", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final"];
        if !self.weights.config.shared_classifier {
            v.push("wcls");
        }
        v
    }
}

/// `max|a − b| / max|b|`.
pub fn rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    (super::max_diff(a, b) / super::max_abs(b)) as f64
}

/// `|a − b| / max(|b|, floor)`.
pub fn rel1(a: f64, b: f64, floor: f64) -> f64 {
    (a - b).abs() / b.abs().max(floor)
}
