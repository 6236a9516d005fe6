//! The CPU forward pass on several threads (`tinylm_engine::pool`) against one thread: every
//! logit and attention probability equal bit for bit (products split by rows in blocks of a
//! multiple of 8, heads one task each, so no sum changes order), hence the same greedy story and
//! the same seeded samples (stories260K, whose greedy story is also run.c's, and s15m's shape).

use crate::common;

use tinylm_engine::cpu::{forward_with, CpuBackend, Kernels, State};
use tinylm_engine::generate::Generation;
use tinylm_engine::pool;
use tinylm_engine::randmodel::{named_shape, random_tokens, random_weights};
use tinylm_engine::trace::StepTrace;
use tinylm_engine::{Config, Sampler, Tokenizer, Weights};

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

/// Greedy (or seeded) tokens and their text from BOS on `threads` threads (fast kernels).
fn story(w: &Weights, tok: &Tokenizer, threads: usize, steps: usize, sampler: Sampler) -> (Vec<u32>, String) {
    pool::install(pool::with_threads(threads), || {
        let mut b = CpuBackend::with_kernels(w.clone(), Kernels::Fast);
        let mut s = sampler;
        let mut g = Generation::new(vec![1], steps, &w.config).unwrap();
        let mut text = Vec::new();
        while let Some(step) = g.step(&mut b, &mut s).unwrap() {
            text.extend_from_slice(tok.decode(step.prev, step.token).unwrap().printable());
        }
        (g.tokens, String::from_utf8_lossy(&text).into_owned())
    })
}

#[test]
fn stories260k_stories_on_two_threads_equal_one_thread_and_run_c() {
    let (w, tok) = (common::stories260k(), common::tok512());
    // 400 steps: attention splits its heads from position 255 on here, the classifier always.
    let greedy = || Sampler::new(0.0, 0.9, 1).unwrap();
    let (one, one_text) = story(&w, &tok, 1, 400, greedy());
    let (two, two_text) = story(&w, &tok, 2, 400, greedy());
    assert!(one.len() > 300, "the story ran past position 255 ({} tokens)", one.len());
    assert_eq!(one, two, "greedy tokens");
    assert_eq!(one_text, two_text);
    let expected = String::from_utf8(common::read("reference/stories260K_greedy_256.txt")).unwrap();
    let (_, first_256) = story(&w, &tok, 2, 256, greedy());
    assert_eq!(format!("{first_256}\n"), expected, "run.c's greedy story, on two threads");
    // Seeded top-p sampling (the README's run.c example) draws the same tokens too.
    let seeded = || Sampler::new(1.0, 0.9, 133742).unwrap();
    assert_eq!(story(&w, &tok, 1, 400, seeded()).0, story(&w, &tok, 2, 400, seeded()).0, "seeded samples");
}

#[test]
fn s15m_greedy_text_on_two_threads_equals_one_thread() {
    let (c, seed) = named_shape("s15m").unwrap();
    let w = random_weights(&c, seed).unwrap();
    let tok = Tokenizer::from_bytes(&common::read("tokenizers/llama2/tokenizer.bin"), "tokenizer.bin").unwrap();
    let greedy = || Sampler::new(0.0, 0.9, 1).unwrap();
    let (one, one_text) = story(&w, &tok, 1, 96, greedy());
    let (two, two_text) = story(&w, &tok, 2, 96, greedy());
    assert_eq!(one.len(), 97, "BOS and 96 generated tokens (no BOS before the end)");
    assert_eq!(one, two);
    assert_eq!(one_text, two_text);
}
