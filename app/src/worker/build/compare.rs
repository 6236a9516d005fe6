//! Kept models side by side: each model's story on one prompt with the same sampler, so only
//! the weights make them differ.

use tinylm_engine::checkpoint;
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::Generation;
use tinylm_engine::{Sampler, Tokenizer};

use super::setup::{SAMPLE_SEED, SAMPLE_TEMPERATURE};
use crate::protocol::Bytes;

pub fn stories(models: &[Bytes], tokenizer: &Bytes, prompt: &str, steps: usize) -> Result<Vec<String>, String> {
    let err = |e: tinylm_engine::Error| e.to_string();
    let tok = Tokenizer::from_bytes(&tokenizer.to_vec(), "tok512.bin").map_err(err)?;
    let prompt = tok.encode(prompt, true, false);
    models
        .iter()
        .map(|m| {
            let (w, _) = checkpoint::read(&m.to_vec(), "kept model").map_err(err)?;
            let mut sampler = Sampler::new(SAMPLE_TEMPERATURE, 0.9, SAMPLE_SEED).map_err(err)?;
            let mut g = Generation::new(prompt.clone(), steps.min(w.config.seq_len), &w.config).map_err(err)?;
            let mut backend = CpuBackend::new(w);
            while g.step(&mut backend, &mut sampler).map_err(err)?.is_some() {}
            Ok(String::from_utf8_lossy(&tok.decode_all(&g.tokens).map_err(err)?).into_owned())
        })
        .collect()
}
