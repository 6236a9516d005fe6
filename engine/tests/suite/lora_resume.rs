//! Resuming training: AdamW's state saved to `optimizer.safetensors` (with the adapter in PEFT
//! files) and restored gives the same run as not stopping.

use tinylm_engine::lora::{
    self, read_optimizer, read_peft, write_optimizer, write_peft, AdamW, Adapter, Base, Dataset, LoraConfig, OptimizerState,
    Target, TrainConfig, Trainer,
};
use tinylm_engine::randmodel::random_weights;
use tinylm_engine::{Config, Error};

fn setup() -> (tinylm_engine::Weights, Dataset, Adapter, TrainConfig) {
    let c = Config::parse("16,40,2,4,2,37,12,untied").unwrap();
    let w = random_weights(&c, 3).unwrap();
    let tokens: Vec<u32> = (0..80).map(|i| (i * 11 % 37) as u32).collect();
    let data = Dataset::from_token_lists(&[tokens], 6, &c).unwrap();
    let lora = LoraConfig::new(3, 6.0, false, vec![Target::Q, Target::K, Target::Down]).unwrap();
    let ad = Adapter::det(&c, lora, 5, 0.05).unwrap();
    let cfg = TrainConfig { adamw: AdamW { lr: 1e-2, ..AdamW::default() }, clip_norm: None };
    (w, data, ad, cfg)
}

fn run(t: &mut Trainer, w: &tinylm_engine::Weights, data: &Dataset, steps: std::ops::Range<u64>) -> Vec<f64> {
    steps.map(|s| t.step(&Base::new(w), &data.batch(3, s, 9).unwrap()).unwrap().loss).collect()
}

fn max_rel(a: &Adapter, b: &Adapter) -> f64 {
    let (mut diff, mut max) = (0f64, 0f64);
    for (x, y) in a.tensors().flatten().zip(b.tensors().flatten()) {
        let d = (x - y).abs() as f64;
        diff = if d.is_nan() || diff.is_nan() { f64::NAN } else { diff.max(d) };
        max = max.max(x.abs() as f64);
    }
    diff / max
}

#[test]
fn saving_and_restoring_the_optimizer_continues_the_same_run() {
    let (w, data, ad, cfg) = setup();
    let (n, k) = (8, 3);
    let mut straight = Trainer::new(ad.clone(), cfg).unwrap();
    let losses = run(&mut straight, &w, &data, 0..n);

    let mut first = Trainer::new(ad, cfg).unwrap();
    let mut resumed_losses = run(&mut first, &w, &data, 0..k);
    // Through the files, as `tinylm finetune -o` and `--init-adapter` do.
    let peft = write_peft(&first.adapter, "m.bin").unwrap();
    let opt = write_optimizer(&first.optimizer_state()).unwrap();
    let adapter = read_peft(peft.config_json.as_bytes(), &peft.safetensors, &w.config, ["c", "w"]).unwrap();
    let state = read_optimizer(&opt, &adapter, "optimizer.safetensors").unwrap();
    assert_eq!(state, first.optimizer_state(), "the file holds the state exactly");
    let mut second = Trainer::restore(adapter, cfg, state).unwrap();
    assert_eq!(second.steps_done(), k as u32);
    resumed_losses.extend(run(&mut second, &w, &data, k..n));

    for (a, b) in losses.iter().zip(&resumed_losses) {
        assert!((a - b).abs() <= 1e-6 * a.abs(), "{losses:?} vs {resumed_losses:?}");
    }
    let rel = max_rel(&straight.adapter, &second.adapter);
    assert!(rel <= 1e-6, "adapter differs by {rel:e} relative");
    // Fresh moments instead would differ: the test can fail.
    let mut fresh = Trainer::new(first.adapter.clone(), cfg).unwrap();
    run(&mut fresh, &w, &data, k..n);
    assert!(max_rel(&straight.adapter, &fresh.adapter) > 1e-4);
    let _ = lora::loss(&Base::new(&w), Some(&second.adapter), &data.batch(3, 0, 9).unwrap()).unwrap();
}

#[test]
fn optimizer_files_for_another_adapter_or_damaged_are_errors() {
    let (w, _, ad, cfg) = setup();
    let state = Trainer::new(ad.clone(), cfg).unwrap().optimizer_state();
    let bytes = write_optimizer(&state).unwrap();
    let other =
        Adapter::<f32>::zeros(&w.config, LoraConfig::new(2, 6.0, false, vec![Target::Q, Target::K, Target::Down]).unwrap())
            .unwrap();
    assert!(matches!(read_optimizer(&bytes, &other, "o"), Err(Error::Mismatch(_))));
    let fewer = Adapter::<f32>::zeros(&w.config, LoraConfig::new(3, 6.0, false, vec![Target::Q]).unwrap()).unwrap();
    assert!(matches!(read_optimizer(&bytes, &fewer, "o"), Err(Error::Mismatch(_))));
    assert!(read_optimizer(b"not a file", &ad, "o").is_err());
    // The adapter file itself is not an optimizer state.
    let peft = write_peft(&ad, "m").unwrap();
    assert!(read_optimizer(&peft.safetensors, &ad, "o").unwrap_err().to_string().contains("format"));
    let bad = OptimizerState { step: 1, m: other.clone(), v: other };
    assert!(matches!(Trainer::restore(ad, cfg, bad), Err(Error::Mismatch(_))));
}

#[test]
fn the_same_optimizer_state_is_always_the_same_bytes() {
    let (_, _, ad, cfg) = setup();
    let mut state = Trainer::new(ad.clone(), cfg).unwrap().optimizer_state();
    state.step = 12;
    // Each write hashes its metadata afresh (a new RandomState), so without a fixed order 16
    // writes agree only with odds 2^-15.
    let first = write_optimizer(&state).unwrap();
    for _ in 0..15 {
        assert_eq!(write_optimizer(&state).unwrap(), first);
    }
    let header = String::from_utf8_lossy(&first[..200.min(first.len())]).into_owned();
    assert!(header.contains(r#""__metadata__":{"format":"tinylm-adamw-1","step":"12"}"#), "{header}");
    assert_eq!(read_optimizer(&first, &ad, "o").unwrap().step, 12);
}
