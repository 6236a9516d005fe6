//! GPU failures are typed values a caller can recover from: no adapter (`Error::NoGpu`, forced
//! here by asking wgpu for a backend this build lacks), and the loaded model falls back to the
//! CPU without parsing its file again. Its own test binary, because the environment variable
//! applies to the whole process.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;
use std::sync::Arc;

use tinylm_engine::generate::Generator;
use tinylm_engine::gpu::{AnyBackend, BackendChoice, GpuBackend, GpuOptions, Reason};
use tinylm_engine::loaded::parses_on_this_thread;
use tinylm_engine::{Error, LoadedModel, NamedFile, NoGpu, Sampler};

#[test]
fn no_adapter_is_an_error_and_auto_falls_back_to_the_cpu() {
    // Read by wgpu's InstanceDescriptor::from_env; Metal is not compiled in on this build.
    std::env::set_var("WGPU_BACKEND", "metal");
    let w = stories260k();
    match GpuBackend::new(&w, GpuOptions::default()) {
        Err(Error::NoGpu(NoGpu::NoAdapter(msg))) => println!("gpu: {msg}"),
        Err(e) => panic!("expected Error::NoGpu, got {e:?}"),
        Ok(_) => panic!("expected no adapter"),
    }
    assert!(matches!(AnyBackend::open(w.clone(), BackendChoice::Gpu, GpuOptions::default()), Err(Error::NoGpu(_))));
    let (mut b, why) = AnyBackend::open(w, BackendChoice::Auto, GpuOptions::default()).unwrap();
    println!("auto: {why}");
    assert!(b.gpu().is_none() && why.starts_with("cpu: no usable GPU"), "{why}");
    let mut s = Sampler::new(0.0, 0.9, 1).unwrap();
    let ids = b.generate(&[1], 256, &mut s, |_| true).unwrap();
    assert_eq!(ids, common::ids(&reference_json()["greedy_empty_prompt_256_steps"]["ids"]));

    // The loaded model: a failed GPU open hands nothing over, so the CPU opens from the same
    // parsed weights (shared, not copied), and nothing is parsed again.
    let (model, tok) = (common::read("models/stories260K.bin"), common::read("tokenizers/tok512.bin"));
    let before = parses_on_this_thread();
    let m = LoadedModel::open(&[NamedFile::new("stories260K.bin", &model), NamedFile::new("tok512.bin", &tok)]).unwrap();
    assert_eq!(parses_on_this_thread(), before + 1);
    let e = m.open_backend(BackendChoice::Gpu, GpuOptions::default()).err().unwrap();
    assert!(matches!(e, Error::NoGpu(NoGpu::NoAdapter(_))), "{e:?}");
    let mut cpu = m.open_backend(BackendChoice::Cpu, GpuOptions::default()).unwrap();
    let AnyBackend::Cpu(c) = &cpu.backend else { panic!("the CPU") };
    assert!(Arc::ptr_eq(c.weights.f32().unwrap(), m.weights()), "the CPU backend shares the loaded weights");
    let auto = m.open_backend(BackendChoice::Auto, GpuOptions::default()).unwrap();
    assert!(matches!(auto.reason, Reason::NoUsableGpu(Error::NoGpu(NoGpu::NoAdapter(_)))), "{:?}", auto.reason);
    assert!(auto.why().starts_with("cpu: no usable GPU (GPU: no GPU adapter: "), "{}", auto.why());
    let mut s = Sampler::new(0.0, 0.9, 1).unwrap();
    let ids = cpu.backend.generate(&[1], 256, &mut s, |_| true).unwrap();
    assert_eq!(ids, common::ids(&reference_json()["greedy_empty_prompt_256_steps"]["ids"]));
    assert_eq!(parses_on_this_thread(), before + 1, "parsed once");
    std::env::remove_var("WGPU_BACKEND");
}
