//! The one place a forward-pass backend is chosen (`--backend cpu|gpu|auto`).

use tinylm_engine::gpu::{AnyBackend, BackendChoice, GpuOptions};
use tinylm_engine::{Result, Weights};

/// Opens the backend `name` over `weights`, with the reason it was chosen (for `auto`, why the
/// CPU was used when no GPU works).
pub fn open(weights: Weights, name: &str) -> Result<(AnyBackend, String)> {
    let choice: BackendChoice = name.parse()?;
    AnyBackend::open(weights, choice, GpuOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinylm_engine::generate::Backend;
    use tinylm_engine::randmodel::{named_shape, random_weights};

    #[test]
    fn cpu_is_made_and_unknown_names_are_refused_by_name() {
        let (c, seed) = named_shape("micro").unwrap();
        let w = random_weights(&c, seed).unwrap();
        assert!(open(w.clone(), "cpu").unwrap().0.name().starts_with("cpu"));
        let err = open(w, "tpu").err().unwrap().to_string();
        assert!(err.contains("`tpu`") && err.contains("cpu, gpu or auto"), "{err}");
    }
}
