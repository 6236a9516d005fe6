//! Several sequences decoded together on the GPU (`GpuBackend::forward_sequences`,
//! `GpuBatchGeneration`) against each sequence alone on the CPU path: logits within the GPU
//! tolerance (1e-4 of the largest logit) at every step, with each sequence's own KV cache (their
//! tokens differ), greedy and seeded tokens equal to the single runs.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;
use common::*;
use tinylm_engine::cpu::CpuBackend;
use tinylm_engine::generate::{Backend, Generation};
use tinylm_engine::gpu::{GpuBackend, GpuBatchGeneration, GpuOptions};
use tinylm_engine::randmodel::{random_tokens, random_weights};
use tinylm_engine::{Config, Sampler, Weights};

fn gpu(w: &Weights) -> GpuBackend {
    GpuBackend::new(w, GpuOptions::default()).expect("a GPU adapter (lavapipe) is needed for the GPU tests")
}

/// `n` sequences of different random tokens, fed together for `steps` positions, against each
/// sequence on its own CPU backend.
fn rows_equal_single_runs(w: &Weights, n: usize, steps: usize) {
    let mut g = gpu(w);
    g.set_sequences(n).unwrap();
    let seqs: Vec<Vec<u32>> = (0..n).map(|k| random_tokens(k as u64 + 3, steps, w.config.vocab_size)).collect();
    let mut cpus: Vec<CpuBackend> = (0..n).map(|_| CpuBackend::new(w.clone())).collect();
    let v = w.config.vocab_size;
    let mut worst = 0f32;
    for pos in 0..steps {
        let tokens: Vec<u32> = seqs.iter().map(|s| s[pos]).collect();
        let got = g.forward_sequences(&tokens, pos).unwrap();
        assert_eq!(got.len(), n * v);
        for (k, cpu) in cpus.iter_mut().enumerate() {
            let want = cpu.forward(tokens[k], pos).unwrap();
            let (err, scale) = (max_diff(&got[k * v..(k + 1) * v], want), max_abs(want).max(1.0));
            assert!(err <= 1e-4 * scale, "{n} sequences: sequence {k} at position {pos}: error {err} (max |logit| {scale})");
            worst = worst.max(err / scale);
        }
    }
    println!("{n} sequences × {steps} positions: worst error {worst:.2e} of the largest logit");
}

#[test]
fn each_row_is_its_own_sequence() {
    rows_equal_single_runs(&stories260k(), 4, 24);
    // GQA (kv_mul 2) and an odd count of sequences.
    let c = Config::parse("64,160,2,4,2,96,32").unwrap();
    rows_equal_single_runs(&random_weights(&c, 9).unwrap(), 3, 20);
}

#[test]
fn a_batch_of_stories_equals_the_single_stories() {
    // One prompt under four samplings (greedy, then seeded temperatures), as `generate --compare`:
    // each sequence's tokens are its own run's on the CPU.
    let w = stories260k();
    let make = || (0..4).map(|k| Sampler::new(0.4 * k as f32, 0.9, k as u64 + 11).unwrap()).collect::<Vec<_>>();
    let prompt = [1u32, 403, 407];
    let mut g = gpu(&w);
    let mut b = GpuBatchGeneration::new(&mut g, &prompt, 80, make()).unwrap();
    while !b.is_done() {
        b.step(&mut g).unwrap();
    }
    for (k, (gen, mut s)) in b.generations.iter().zip(make()).enumerate() {
        let mut cpu = CpuBackend::new(w.clone());
        let mut alone = Generation::new(prompt.to_vec(), 80, &w.config).unwrap();
        while alone.step(&mut cpu, &mut s).unwrap().is_some() {}
        assert_eq!(gen.tokens, alone.tokens, "sequence {k}");
    }
    // Back to one sequence: an empty cache, and the single path's logits.
    g.set_sequences(1).unwrap();
    let one = g.forward_sequences(&[1], 0).unwrap();
    let want = CpuBackend::new(w.clone()).forward(1, 0).unwrap().to_vec();
    assert!(max_diff(&one, &want) <= 1e-4 * max_abs(&want).max(1.0));
}

#[test]
fn bad_batches_are_refused_in_words() {
    let w = stories260k();
    let mut g = gpu(&w);
    let e = g.set_sequences(0).unwrap_err().to_string();
    assert!(e.contains("decodes 1 to") && e.contains("not 0"), "{e}");
    g.set_sequences(2).unwrap();
    let e = g.forward_sequences(&[1, 2, 3], 0).unwrap_err().to_string();
    assert!(e.contains("3 tokens for 2 sequences"), "{e}");
    let e = g.forward_sequences(&[1, 99999], 0).unwrap_err().to_string();
    assert!(e.contains("99999"), "{e}");
}
