//! run.c's sampler: RNG stream, argmax, multinomial and top-p, on hand-worked cases.

use tinylm_engine::sampler::{argmax, sample_mult, sample_topp, softmax, topp_keep};
use tinylm_engine::{Rng, Sampler};

/// First draws for seed 42, worked out by hand from run.c's xorshift* formula.
#[test]
fn rng_stream_matches_run_c_formula() {
    let mut r = Rng::new(42);
    let u: Vec<u32> = (0..4).map(|_| r.next_u32()).collect();
    assert_eq!(u, [1456360119, 3359763283, 3393612768, 4054632243]);
    let mut r = Rng::new(42);
    assert_eq!(r.next_f32(), (1456360119u32 >> 8) as f32 / 16777216.0);
    assert_eq!(r.next_f32(), 0.782_255_8);
}

#[test]
fn argmax_takes_the_first_maximum() {
    assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
    assert_eq!(argmax(&[3.0]), 0);
}

#[test]
fn softmax_sums_to_one_and_keeps_order() {
    let mut x = [1.0f32, 2.0, 3.0];
    softmax(&mut x);
    let e: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|v| (v - 3.0f64).exp()).collect();
    let z: f64 = e.iter().sum();
    for (a, b) in x.iter().zip(&e) {
        assert!((*a as f64 - b / z).abs() < 1e-7);
    }
}

#[test]
fn multinomial_walks_the_cdf() {
    let p = [0.1f32, 0.2, 0.3, 0.4];
    assert_eq!(sample_mult(&p, 0.05), 0);
    assert_eq!(sample_mult(&p, 0.1), 1, "coin < cdf is strict");
    assert_eq!(sample_mult(&p, 0.59), 2);
    assert_eq!(sample_mult(&p, 0.999_999_9), 3);
    assert_eq!(sample_mult(&[0.5, 0.49], 0.995), 1, "rounding falls to the last index");
}

#[test]
fn topp_keeps_the_shortest_prefix_over_p() {
    // n = 5, topp 0.6: cutoff (1-0.6)/4 = 0.1 drops 0.05; sorted 0.4, 0.3, 0.15, 0.1;
    // cumulative 0.4, 0.7 > 0.6 → keep two.
    let p = [0.1f32, 0.4, 0.05, 0.3, 0.15];
    let mut kept = Vec::new();
    let (n, cum) = topp_keep(&p, 0.6, &mut kept);
    assert_eq!(n, 2);
    assert_eq!(&kept[..n], &[(1, 0.4), (3, 0.3)]);
    assert!((cum - 0.7).abs() < 1e-6);
    // r = coin · 0.7: coin 0.5 → 0.35 < 0.4 → token 1; coin 0.6 → 0.42 → token 3.
    assert_eq!(sample_topp(&p, 0.6, 0.5, &mut kept), 1);
    assert_eq!(sample_topp(&p, 0.6, 0.6, &mut kept), 3);
}

#[test]
fn topp_sort_is_stable_on_ties() {
    let p = [0.25f32, 0.25, 0.25, 0.25];
    let mut kept = Vec::new();
    let (n, _) = topp_keep(&p, 0.6, &mut kept);
    assert_eq!(kept[..n].iter().map(|k| k.0).collect::<Vec<_>>(), [0, 1, 2]);
}

#[test]
fn sample_divides_by_temperature_then_draws_one_coin() {
    let logits = [1.0f32, 2.0, 0.5, 3.0];
    let mut s = Sampler::new(0.7, 0.0, 99).unwrap();
    let mut l = logits;
    let got = s.sample(&mut l);
    // By hand: probabilities of logits/0.7, one coin from seed 99, multinomial.
    let mut probs: Vec<f32> = logits.iter().map(|v| v / 0.7).collect();
    softmax(&mut probs);
    let coin = Rng::new(99).next_f32();
    assert_eq!(got as usize, sample_mult(&probs, coin));
    assert_eq!(s.rng, {
        let mut r = Rng::new(99);
        r.next_u32();
        r
    });
    assert_eq!(&l[..], &probs[..], "logits become the probabilities, as in run.c");
}

#[test]
fn greedy_consumes_no_randomness() {
    let mut s = Sampler::new(0.0, 0.9, 5).unwrap();
    assert_eq!(s.sample(&mut [0.0, 9.0, 1.0]), 1);
    assert_eq!(s.rng, Rng::new(5));
}

#[test]
fn settings_are_checked_or_clamped_like_run_c() {
    assert!(Sampler::new(-1.0, 0.9, 1).is_err());
    assert!(Sampler::new(f32::NAN, 0.9, 1).is_err());
    assert!(Sampler::new(1.0, 1.5, 1).is_err());
    let s = Sampler::from_cli(-2.0, 7.0, 1).unwrap();
    assert_eq!((s.temperature, s.topp), (0.0, 0.9));
}
