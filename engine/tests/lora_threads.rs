//! CPU training split over the pool's threads is bit-identical to one thread (each output element
//! is summed by one thread in the serial order).

mod common;
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
