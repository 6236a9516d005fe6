//! A device lost mid-session turns every later call into `Error::Gpu`, never a panic, so the
//! caller can fall back to the CPU.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::Backend;
use tinylm_engine::gpu::{GpuBackend, GpuOptions};
use tinylm_engine::{Error, Sampler};

#[test]
fn a_lost_device_gives_errors_and_the_cpu_takes_over() {
    let w = stories260k();
    let mut g = GpuBackend::new(&w, GpuOptions::default()).expect("a GPU adapter (lavapipe)");
    let want = g.forward(1, 0).unwrap().to_vec();
    g.context().device.destroy();
    let mut s = Sampler::new(0.0, 0.9, 1).unwrap();
    for r in [g.forward(1, 1).map(|_| ()), g.generate(&[1], 8, &mut s, |_| true).map(|_| ()), g.inspect(&[1, 5]).map(|_| ())] {
        match r {
            Err(Error::Gpu(msg)) => println!("after loss: {msg}"),
            other => panic!("expected Error::Gpu, got {other:?}"),
        }
    }
    let mut cpu = CpuBackend::new(w);
    assert_eq!(cpu.forward(1, 0).unwrap().len(), want.len());
}
