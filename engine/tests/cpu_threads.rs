//! The CPU forward pass on several threads (`tinylm_engine::pool`) against one thread: every
//! logit and attention probability equal bit for bit (products split by rows in blocks of a
//! multiple of 8, heads one task each, so no sum changes order), hence the same greedy story.

use tinylm_engine::cpu::{forward_with, Kernels, State};
use tinylm_engine::pool;
use tinylm_engine::randmodel::{named_shape, random_tokens, random_weights};
use tinylm_engine::trace::StepTrace;
use tinylm_engine::{Config, Weights};

/// Logits and attention rows of `tokens` fed one by one.
fn run(w: &Weights, threads: usize, tokens: &[u32]) -> Vec<(Vec<f32>, Vec<f32>)> {
    pool::install(pool::with_threads(threads), || {
        let mut s = State::new(&w.config);
        let mut out = Vec::new();
        for (pos, &t) in tokens.iter().enumerate() {
            let mut tr = StepTrace::new(&w.config, pos);
            let logits = forward_with(Kernels::Fast, w, &mut s, t, pos, Some(&mut tr)).unwrap().to_vec();
            out.push((logits, tr.attn.clone()));
        }
        out
    })
}

fn check(w: &Weights, positions: usize) {
    let tokens = random_tokens(9, positions, w.config.vocab_size);
    let one = run(w, 1, &tokens);
    for threads in [2, 3, 5] {
        let many = run(w, threads, &tokens);
        for (pos, (a, b)) in one.iter().zip(&many).enumerate() {
            let same = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(same(&a.0, &b.0), "{:?}: logits differ at position {pos} on {threads} threads", w.config);
            assert!(same(&a.1, &b.1), "{:?}: attention differs at position {pos} on {threads} threads", w.config);
        }
    }
}

#[test]
fn s15m_on_several_threads_equals_one_thread_bit_for_bit() {
    let (c, seed) = named_shape("s15m").unwrap();
    // 80 positions: past the point where attention splits its heads (pos ≥ 57 here).
    check(&random_weights(&c, seed).unwrap(), 80);
}

#[test]
fn awkward_shapes_on_several_threads_equal_one_thread_bit_for_bit() {
    // Rows shorter than 256 (the AVX2 kernel takes them eight at a time), row counts that are
    // not multiples of 8, grouped-query attention, an untied classifier.
    for spec in ["120,340,2,6,2,2003,96,untied", "64,172,3,8,4,4099,160", "264,712,1,12,3,999,72"] {
        check(&random_weights(&Config::parse(spec).unwrap(), 5).unwrap(), 72);
    }
}
