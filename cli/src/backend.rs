//! The one place a forward-pass backend is chosen, so `--backend` can grow here alone.

use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::Backend;
use tinylm_engine::{Error, Result, Weights};

/// Backends this build can create.
pub const BACKENDS: [&str; 1] = ["cpu"];

/// Creates the backend named `name` over `weights`.
pub fn make_backend(weights: Weights, name: &str) -> Result<Box<dyn Backend>> {
    match name {
        "cpu" => Ok(Box::new(CpuBackend::new(weights))),
        other => Err(Error::InvalidSetting(format!(
            "backend `{other}` is not available in this build; available: {}",
            BACKENDS.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinylm_engine::randmodel::{named_shape, random_weights};

    #[test]
    fn cpu_is_made_and_others_are_refused_by_name() {
        let (c, seed) = named_shape("micro").unwrap();
        let w = random_weights(&c, seed).unwrap();
        assert!(make_backend(w.clone(), "cpu").unwrap().name().starts_with("cpu"));
        let err = make_backend(w, "gpu").err().unwrap().to_string();
        assert!(err.contains("`gpu`") && err.contains("cpu"), "{err}");
    }
}
