//! GPU failures are typed values a caller can recover from: no adapter (`Error::NoGpu`, forced here by
//! asking wgpu for a backend this build lacks) and a device lost mid-session. Its own test
//! binary, because the environment variable applies to the whole process.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;
use tinylm_engine::gpu::{AnyBackend, BackendChoice, GpuBackend, GpuOptions};
use tinylm_engine::{Error, NoGpu, Sampler};

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
    std::env::remove_var("WGPU_BACKEND");
}
