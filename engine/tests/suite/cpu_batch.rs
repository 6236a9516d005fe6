//! Several sequences decoded together (`cpu::batch`) against each sequence's single run: the same
//! logits bit for bit (rows in the same blocks of a multiple of 8, on one thread and on several),
//! hence the same greedy and seeded tokens and the same stop at BOS.

use crate::common;

use tinylm_engine::cpu::batch::{forward_batch, BatchGeneration};
use tinylm_engine::cpu::{forward_with, CpuBackend, Kernels, State};
use tinylm_engine::generate::Generation;
use tinylm_engine::pool;
use tinylm_engine::randmodel::{named_shape, random_tokens, random_weights};
use tinylm_engine::{Sampler, Weights};

/// Sequences of random tokens fed at staggered positions, batched and one by one. Seven, so the
/// batch goes through the kernels for four, two and one sequences while all are live, and other
/// mixes while the late ones have not started.
fn logits_equal_single_runs(w: &Weights, threads: usize) {
    const N: usize = 7;
    let c = &w.config;
    let seqs: Vec<Vec<u32>> = (0..N).map(|k| random_tokens(k as u64 + 7, 40, c.vocab_size)).collect();
    // Sequence k starts 5·k positions late, so the batch holds different positions.
    let start = |k: usize| 5 * k;
    pool::install(pool::with_threads(threads), || {
        let mut single: Vec<State> = (0..N).map(|_| State::new(c)).collect();
        let mut batch: Vec<State> = (0..N).map(|_| State::new(c)).collect();
        for step in 0..40 {
            let live: Vec<usize> = (0..N).filter(|&k| step >= start(k)).collect();
            let tokens: Vec<u32> = live.iter().map(|&k| seqs[k][step - start(k)]).collect();
            let pos: Vec<usize> = live.iter().map(|&k| step - start(k)).collect();
            let mut states: Vec<&mut State> =
                batch.iter_mut().enumerate().filter(|(k, _)| live.contains(k)).map(|(_, s)| s).collect();
            forward_batch(w, &mut states, &tokens, &pos).unwrap();
            for (j, &k) in live.iter().enumerate() {
                let one = forward_with(Kernels::Fast, w, &mut single[k], tokens[j], pos[j], None).unwrap().to_vec();
                let many = states[j].logits();
                let same = one.iter().zip(many).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{threads} threads: sequence {k} at position {} differs", pos[j]);
            }
        }
    });
}

#[test]
fn batched_logits_equal_single_runs_bit_for_bit() {
    let (c, seed) = named_shape("s15m").unwrap();
    let s15m = random_weights(&c, seed).unwrap();
    for threads in [1, 2] {
        logits_equal_single_runs(&common::stories260k(), threads);
        logits_equal_single_runs(&s15m, threads);
    }
}

/// Each sampler's tokens from `prompt`, alone on the CPU backend.
fn single(w: &Weights, prompt: &[u32], steps: usize, s: Sampler) -> Vec<u32> {
    let mut b = CpuBackend::new(w.clone());
    let mut s = s;
    let mut g = Generation::new(prompt.to_vec(), steps, &w.config).unwrap();
    while g.step(&mut b, &mut s).unwrap().is_some() {}
    g.tokens
}

fn batched(w: &Weights, prompt: &[u32], steps: usize, samplers: Vec<Sampler>) -> Vec<Vec<u32>> {
    let mut b = BatchGeneration::new(&w.config, prompt, steps, samplers).unwrap();
    while !b.is_done() {
        b.step(w).unwrap();
    }
    b.generations.into_iter().map(|g| g.tokens).collect()
}

#[test]
fn stories260k_batch_of_four_equals_four_single_runs() {
    let (w, tok) = (common::stories260k(), common::tok512());
    let prompt = tok.encode("Once upon a time", true, false);
    let settings = [(0.0, 0.9, 1), (0.8, 0.9, 1), (1.0, 0.9, 2), (1.0, 0.9, 133742)];
    let make = || settings.iter().map(|&(t, p, s)| Sampler::new(t, p, s).unwrap()).collect::<Vec<_>>();
    for threads in [1, 2] {
        let got = pool::install(pool::with_threads(threads), || batched(&w, &prompt, 300, make()));
        for (k, (g, s)) in got.iter().zip(make()).enumerate() {
            assert_eq!(g, &single(&w, &prompt, 300, s), "{threads} threads: sequence {k} ({:?})", settings[k]);
        }
        // Some sequence stopped at BOS before the others, so the batch shrank on the way.
        assert!(got.iter().any(|g| g.len() < 300), "lengths {:?}", got.iter().map(Vec::len).collect::<Vec<_>>());
    }
}

#[test]
fn s15m_batch_of_four_equals_four_single_runs() {
    let (c, seed) = named_shape("s15m").unwrap();
    let w = random_weights(&c, seed).unwrap();
    let make = || (0..4).map(|k| Sampler::new(0.5 * k as f32, 0.9, k as u64 + 1).unwrap()).collect::<Vec<_>>();
    let got = pool::install(pool::with_threads(2), || batched(&w, &[1], 40, make()));
    for (k, (g, s)) in got.iter().zip(make()).enumerate() {
        assert_eq!(g, &single(&w, &[1], 40, s), "sequence {k}");
    }
}

#[test]
fn bad_batches_are_refused_in_words() {
    let w = common::stories260k();
    let none = BatchGeneration::new(&w.config, &[1], 10, vec![]).err().unwrap().to_string();
    assert!(none.contains("1 to 16"), "{none}");
    let many = (0..17).map(|_| Sampler::new(0.0, 0.9, 1).unwrap()).collect();
    assert!(BatchGeneration::new(&w.config, &[1], 10, many).is_err());
    let mut s = State::new(&w.config);
    let err = forward_batch(&w, &mut [&mut s], &[1, 2], &[0]).unwrap_err().to_string();
    assert!(err.contains("as many tokens"), "{err}");
    assert!(forward_batch(&w, &mut [&mut s], &[600], &[0]).is_err(), "token out of range");
    assert!(forward_batch(&w, &mut [&mut s], &[1], &[512]).is_err(), "position past the context");
}
