//! CPU training split over the pool's threads is bit-identical to one thread (each output element
//! is summed by one thread in the serial order).

use crate::common;
use common::*;
use tinylm_engine::lora::{self, Adapter, Base, Batch, LoraConfig, Target};
use tinylm_engine::pool;
use tinylm_engine::randmodel::random_tokens;

fn run_with(threads: usize) -> (f64, Adapter) {
    let w = stories260k();
    let lora = LoraConfig::new(4, 8.0, false, Target::ALL.to_vec()).unwrap();
    let ad = Adapter::det(&w.config, lora, 3, 0.05).unwrap();
    let tokens: Vec<u32> = (0..4).flat_map(|b| random_tokens(b + 1, 48, w.config.vocab_size)).collect();
    let batch = Batch::new(4, 48, tokens).unwrap();
    pool::install(pool::with_threads(threads), || lora::loss_and_grads(&Base::new(&w), &ad, &batch).unwrap())
}

#[test]
fn threaded_gradients_equal_single_threaded_bit_for_bit() {
    let (l1, g1) = run_with(1);
    let (l3, g3) = run_with(3);
    assert_eq!(l1.to_bits(), l3.to_bits());
    assert_eq!(g1, g3);
    assert!(g1.tensors().flatten().any(|&v| v != 0.0));
}

/// Full training's gradients and two steps on `threads` threads (attention split by sequence).
fn pretrain_with(threads: usize) -> (f64, tinylm_engine::pretrain::Params, tinylm_engine::pretrain::Params) {
    use tinylm_engine::pretrain::{Hyper, Pretrainer};
    let w = stories260k();
    let tokens: Vec<u32> = (0..4).flat_map(|b| random_tokens(b + 11, 48, w.config.vocab_size)).collect();
    let batch = Batch::new(4, 48, tokens).unwrap();
    pool::install(pool::with_threads(threads), || {
        let mut t = Pretrainer::<f32>::new(&w, Hyper { z_loss: 1e-4, ..Hyper::default() }).unwrap();
        let (loss, g) = t.loss_and_grads(&batch).unwrap();
        let g = g.clone();
        t.step(&batch).unwrap();
        t.step(&batch).unwrap();
        (loss, g, t.params.clone())
    })
}

#[test]
fn full_training_on_threads_equals_one_thread_bit_for_bit() {
    let (l1, g1, p1) = pretrain_with(1);
    let (l3, g3, p3) = pretrain_with(3);
    assert_eq!(l1.to_bits(), l3.to_bits());
    assert!(g1 == g3, "gradients differ");
    assert!(p1 == p3, "weights after two steps differ");
    assert!(g1.tensors().iter().flatten().any(|&v| v != 0.0));
}
