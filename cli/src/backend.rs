//! The one place a forward-pass backend is chosen (`--backend cpu|gpu|auto`) for a loaded
//! model, with the adapter it carries (`--adapter DIR`): unmerged on the CPU (the PEFT math
//! exactly), merged into the uploaded weights on the GPU (`W += s·B·A`; logits equal the
//! unmerged ones within 1e-4).

use tinylm_engine::gpu::{BackendChoice, GpuOptions, Opened, WeightFormat};
use tinylm_engine::{LoadedModel, Result};

/// Opens `name` for `model`, with the reason it was chosen (for `auto`, why the CPU was used
/// when no GPU works).
pub fn open(model: &LoadedModel, name: &str, opts: GpuOptions) -> Result<(Opened, String)> {
    let choice: BackendChoice = name.parse()?;
    let opened = model.open_backend(choice, opts)?;
    let mut why = opened.why();
    match (model.adapter(), opened.backend.gpu_ref()) {
        (Some(_), Some(_)) => why += " (LoRA adapter merged into the weights)",
        (Some(_), None) => why += " (adapter unmerged)",
        (None, _) => {}
    }
    if let (Some(q), Some(g)) = (model.quantized(), opened.backend.gpu_ref()) {
        let types: Vec<&str> = q.kept_types().iter().map(|t| t.name()).collect();
        why += &match g.weight_format() {
            WeightFormat::Int8 { .. } => format!(" ({} weights kept quantized on the GPU, as int8)", types.join(", ")),
            WeightFormat::Half { .. } | WeightFormat::F16 | WeightFormat::Blocks => {
                format!(" ({} weights kept as read on the GPU)", types.join(", "))
            }
            _ => format!(" (an f32 copy of the {} weights on the GPU)", types.join(", ")),
        };
    }
    Ok((opened, why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinylm_engine::generate::Backend;
    use tinylm_engine::gpu::AnyBackend;
    use tinylm_engine::loaded::ModelFormat;
    use tinylm_engine::lora::{Adapter, LoraConfig, Target};
    use tinylm_engine::randmodel::{named_shape, random_weights};

    fn micro() -> LoadedModel {
        let (c, seed) = named_shape("micro").unwrap();
        let w = random_weights(&c, seed).unwrap();
        LoadedModel::from_weights("micro", ModelFormat::Llama2c(tinylm_engine::checkpoint::Format::V0), w)
    }

    #[test]
    fn cpu_is_made_and_unknown_names_are_refused_by_name() {
        let m = micro();
        assert!(open(&m, "cpu", GpuOptions::default()).unwrap().0.backend.name().starts_with("cpu"));
        let err = open(&m, "tpu", GpuOptions::default()).err().unwrap().to_string();
        assert!(err.contains("`tpu`") && err.contains("cpu, gpu or auto"), "{err}");
    }

    #[test]
    fn an_adapter_on_the_cpu_stays_unmerged() {
        let mut m = micro();
        let c = *m.config();
        let lora = LoraConfig::new(2, 4.0, false, vec![Target::Q, Target::V]).unwrap();
        let ad = Adapter::det(&c, lora, 7, 0.05).unwrap();
        let merged = ad.merged(m.weights()).unwrap();
        m.set_adapter(Some(ad)).unwrap();
        let (mut o, why) = open(&m, "cpu", GpuOptions::default()).unwrap();
        assert!(matches!(&o.backend, AnyBackend::Cpu(b) if b.adapter.is_some()) && why.contains("unmerged"), "{why}");
        let unmerged = o.backend.forward(1, 0).unwrap().to_vec();
        let plain = LoadedModel::from_weights("merged", m.format(), merged);
        let merged = open(&plain, "cpu", GpuOptions::default()).unwrap().0.backend.forward(1, 0).unwrap().to_vec();
        let d = unmerged.iter().zip(&merged).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(d <= 1e-4, "merged vs unmerged logits differ by {d}");
        assert!(open(&m, "tpu", GpuOptions::default()).is_err());
    }

    /// The reason says what the GPU holds of a quantized model (lavapipe here).
    #[test]
    fn the_gpu_says_whether_the_weights_stay_quantized() {
        let (c, seed) = named_shape("micro").unwrap();
        let w = random_weights(&c, seed).unwrap();
        // Groups of 8 divide every row of micro (dim 16, hidden 40); 16 do not (40).
        for (group, words) in
            [(8, "(Q8_0 weights kept quantized on the GPU, as int8)"), (16, "(an f32 copy of the Q8_0 weights on the GPU)")]
        {
            let file = tinylm_engine::checkpoint::write_v2(&w, group).unwrap();
            let m = LoadedModel::open(&[tinylm_engine::NamedFile::new("micro_q8.bin", &file)]).unwrap();
            let (o, why) = open(&m, "gpu", GpuOptions::default()).unwrap();
            assert!(o.backend.gpu_ref().is_some() && why.ends_with(words), "{why}");
        }
        // F16 matrices stay F16.
        let file = tinylm_engine::formats::write::gguf(&w, tinylm_engine::quant::DType::F16, None, "micro").unwrap();
        let m = LoadedModel::open(&[tinylm_engine::NamedFile::new("micro.f16.gguf", &file)]).unwrap();
        let (o, why) = open(&m, "gpu", GpuOptions::default()).unwrap();
        assert!(o.backend.gpu_ref().is_some() && why.ends_with("(F16 weights kept as read on the GPU)"), "{why}");
    }
}
