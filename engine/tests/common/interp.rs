//! The interp fixtures (tests/fixtures/interp, from scripts/reference/interp.py): stories260K
//! and a random GQA model, each with its spec (JSON) and reference tensors (safetensors).

use serde_json::Value;
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::Backend;
use tinylm_engine::randmodel::random_weights;
use tinylm_engine::trace::{inspect, Edits, HeadId, HeadMeans, Inspection, Intervention};
use tinylm_engine::{Config, Weights};

use super::{ids, max_abs, stories260k, tensor};

pub struct Case {
    pub name: &'static str,
    pub weights: Weights,
    pub spec: Value,
    st: Vec<u8>,
}

pub fn case(name: &'static str) -> Case {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interp");
    let spec: Value = serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let st = std::fs::read(dir.join(format!("{name}.safetensors"))).unwrap();
    let weights = match spec.get("config") {
        Some(c) => random_weights(&Config::parse(c.as_str().unwrap()).unwrap(), spec["seed"].as_u64().unwrap()).unwrap(),
        None => stories260k(),
    };
    Case { name, weights, spec, st }
}

pub fn cases() -> [Case; 2] {
    [case("stories260K"), case("random_gqa")]
}

impl Case {
    pub fn tensor(&self, key: &str) -> Vec<f32> {
        tensor(&self.st, key).1
    }
    pub fn tokens(&self) -> Vec<u32> {
        ids(&self.spec["tokens"])
    }
    pub fn knockout(&self) -> (Vec<HeadId>, Vec<usize>, Vec<usize>) {
        let k = &self.spec["knockout"];
        let heads = k["heads"].as_array().unwrap().iter().map(|p| HeadId { layer: idx(&p[0]), head: idx(&p[1]) }).collect();
        let list = |v: &Value| v.as_array().unwrap().iter().map(idx).collect();
        (heads, list(&k["skip_attn"]), list(&k["skip_mlp"]))
    }
    /// The logits of the fixture text on the CPU backend with `iv` installed.
    pub fn run(&self, iv: &Intervention, means: Option<&HeadMeans>) -> Inspection {
        let mut b = CpuBackend::new(self.weights.clone());
        b.set_edits(Some(&Edits::new(&self.weights.config, iv, means).unwrap())).unwrap();
        inspect(&mut b, &self.tokens()).unwrap()
    }
    /// The CPU tolerance: 1e-5·max(1, max|logit|) of the reference.
    pub fn tol(&self, reference: &[f32]) -> f32 {
        1e-5 * max_abs(reference).max(1.0)
    }
}

pub fn idx(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

impl Case {
    /// The fixture's changes with the keys of their reference logits: zero and mean ablation
    /// (give `Edits::new` the means), skipped blocks, and steering along the reference direction.
    pub fn changes(&self) -> Vec<(&'static str, Intervention)> {
        let (heads, skip_attn, skip_mlp) = self.knockout();
        let s = &self.spec["steer"];
        let steer = tinylm_engine::trace::Steer {
            layer: idx(&s["layer"]),
            direction: self.tensor("steer.direction"),
            strength: s["strength"].as_f64().unwrap() as f32,
        };
        vec![
            ("ablate_zero.logits", Intervention { ablate: heads.clone(), ..Intervention::default() }),
            (
                "ablate_mean.logits",
                Intervention { ablate: heads, ablation: tinylm_engine::trace::Ablation::Mean, ..Intervention::default() },
            ),
            ("skip.logits", Intervention { skip_attn, skip_mlp, ..Intervention::default() }),
            ("steer.logits", Intervention { steer: Some(steer), ..Intervention::default() }),
        ]
    }
}
