//! The one place a forward-pass backend is chosen (`--backend cpu|gpu|auto`), with or without a
//! LoRA adapter (`--adapter DIR`).

use tinylm_engine::generate::{Backend, Generation, Step};
use tinylm_engine::gpu::{AnyBackend, BackendChoice, GpuBackend, GpuOptions};
use tinylm_engine::lora::{Adapter, LoraCpuBackend};
use tinylm_engine::trace::{Edits, StepTrace};
use tinylm_engine::{Config, Result, Sampler, Weights};

/// Opens the backend `name` over `weights`, with the reason it was chosen (for `auto`, why the
/// CPU was used when no GPU works).
#[cfg(test)]
pub fn open(weights: Weights, name: &str) -> Result<(AnyBackend, String)> {
    let choice: BackendChoice = name.parse()?;
    AnyBackend::open(weights, choice, GpuOptions::default())
}

/// A backend, possibly carrying a LoRA adapter.
// One per command, so the size gap between variants costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub enum Model {
    Plain(AnyBackend),
    /// The CPU forward with the adapter applied after each projection (unmerged).
    Lora(LoraCpuBackend),
}

/// Opens `name` over `weights` with `adapter` if given. On the CPU the adapter stays unmerged
/// (the PEFT math exactly); the GPU has no LoRA kernels, so there it is merged into the weights
/// first (`W += s·B·A`; logits equal the unmerged ones within 1e-4).
pub fn open_adapted(weights: Weights, name: &str, adapter: Option<Adapter>) -> Result<(Model, String)> {
    open_adapted_with(weights, name, adapter, GpuOptions::default())
}

/// `open_adapted` with GPU options (e.g. tuned workgroup shapes).
pub fn open_adapted_with(weights: Weights, name: &str, adapter: Option<Adapter>, opts: GpuOptions) -> Result<(Model, String)> {
    let choice: BackendChoice = name.parse()?;
    match (adapter, choice) {
        (None, _) => AnyBackend::open(weights, choice, opts).map(|(b, why)| (Model::Plain(b), why)),
        (Some(ad), BackendChoice::Cpu) => {
            let b = LoraCpuBackend::new(weights, ad)?;
            let why = format!("{}: requested (adapter unmerged)", b.name());
            Ok((Model::Lora(b), why))
        }
        (Some(ad), _) => {
            let merged = ad.merged(&weights)?;
            let (b, why) = AnyBackend::open(merged, choice, opts)?;
            Ok((Model::Plain(b), format!("{why} (LoRA adapter merged into the weights)")))
        }
    }
}

impl Model {
    pub fn gpu(&mut self) -> Option<&mut GpuBackend> {
        match self {
            Model::Plain(b) => b.gpu(),
            Model::Lora(_) => None,
        }
    }

    /// Generation with the backend's best path (see `AnyBackend::generate`).
    pub fn generate<F: FnMut(Step) -> bool>(
        &mut self,
        prompt: &[u32],
        steps: usize,
        sampler: &mut Sampler,
        mut on_token: F,
    ) -> Result<Vec<u32>> {
        match self {
            Model::Plain(b) => b.generate(prompt, steps, sampler, on_token),
            Model::Lora(b) => {
                let mut g = Generation::new(prompt.to_vec(), steps, &b.weights.config)?;
                while let Some(step) = g.step(b, sampler)? {
                    if !on_token(step) {
                        break;
                    }
                }
                Ok(g.tokens)
            }
        }
    }

    fn inner(&mut self) -> &mut dyn Backend {
        match self {
            Model::Plain(b) => b,
            Model::Lora(b) => b,
        }
    }
}

impl Backend for Model {
    fn config(&self) -> &Config {
        match self {
            Model::Plain(b) => b.config(),
            Model::Lora(b) => b.config(),
        }
    }
    fn name(&self) -> String {
        match self {
            Model::Plain(b) => b.name(),
            Model::Lora(b) => b.name(),
        }
    }
    fn forward(&mut self, token: u32, pos: usize) -> Result<&mut [f32]> {
        self.inner().forward(token, pos)
    }
    fn forward_traced(&mut self, token: u32, pos: usize, trace: &mut StepTrace) -> Result<&mut [f32]> {
        self.inner().forward_traced(token, pos, trace)
    }
    fn set_edits(&mut self, edits: Option<&Edits>) -> Result<()> {
        self.inner().set_edits(edits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinylm_engine::generate::Backend;
    use tinylm_engine::lora::{LoraConfig, Target};
    use tinylm_engine::randmodel::{named_shape, random_weights};

    #[test]
    fn cpu_is_made_and_unknown_names_are_refused_by_name() {
        let (c, seed) = named_shape("micro").unwrap();
        let w = random_weights(&c, seed).unwrap();
        assert!(open(w.clone(), "cpu").unwrap().0.name().starts_with("cpu"));
        let err = open(w, "tpu").err().unwrap().to_string();
        assert!(err.contains("`tpu`") && err.contains("cpu, gpu or auto"), "{err}");
    }

    #[test]
    fn an_adapter_on_the_cpu_stays_unmerged() {
        let (c, seed) = named_shape("micro").unwrap();
        let w = random_weights(&c, seed).unwrap();
        let lora = LoraConfig::new(2, 4.0, false, vec![Target::Q, Target::V]).unwrap();
        let ad = Adapter::det(&c, lora, 7, 0.05).unwrap();
        let (mut m, why) = open_adapted(w.clone(), "cpu", Some(ad.clone())).unwrap();
        assert!(matches!(m, Model::Lora(_)) && why.contains("unmerged"), "{why}");
        let unmerged = m.forward(1, 0).unwrap().to_vec();
        let (mut plain, _) = open(ad.merged(&w).unwrap(), "cpu").unwrap();
        let merged = plain.forward(1, 0).unwrap().to_vec();
        let d = unmerged.iter().zip(&merged).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(d <= 1e-4, "merged vs unmerged logits differ by {d}");
        assert!(open_adapted(w, "tpu", Some(ad)).is_err());
    }
}
