//! Full training beyond the PyTorch comparison: gradients against central differences (f64,
//! z-loss included), the fast weight-gradient kernel against the generic one, resume from saved
//! state equal to an uninterrupted run, no memory kept by a step, and damaged state files.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::pretrain::case;
use tinylm_engine::cpu::Kernels;
use tinylm_engine::lora::kernels as lk;
use tinylm_engine::pool;
use tinylm_engine::pretrain::{kernel, read_state, Hyper, Params, Pretrainer};
use tinylm_engine::randmodel::{random_tokens, random_weights};
use tinylm_engine::weights::Tensor;
use tinylm_engine::{lora::Batch, Config};

/// Counts the allocations of the thread that asks, its live bytes and its largest allocation.
struct Counting;
thread_local!(static ALLOCS: Cell<(u64, i64, usize)> = const { Cell::new((0, 0, 0)) });
fn note(bytes: isize, size: usize) {
    let _ = ALLOCS.try_with(|c| {
        let (n, live, big) = c.get();
        c.set((n + (bytes > 0) as u64, live + bytes as i64, big.max(size)))
    });
}
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size() as isize, l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note(-(l.size() as isize), 0);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note(n as isize - l.size() as isize, n);
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

/// (allocations, live bytes, largest allocation) of this thread so far.
fn allocations() -> (u64, i64, usize) {
    ALLOCS.with(Cell::get)
}

fn micro() -> (tinylm_engine::Weights, Batch) {
    let c = Config::parse("16,40,2,4,2,37,12,untied").unwrap();
    let w = random_weights(&c, 3).unwrap();
    let mut tokens = random_tokens(9, 6, 37);
    tokens.extend(random_tokens(10, 6, 37));
    (w, Batch::new(2, 6, tokens).unwrap())
}

/// The training objective in f64: mean cross-entropy + z-loss.
fn objective(t: &mut Pretrainer<f64>, b: &Batch) -> f64 {
    let st = t.loss_stats(b).unwrap();
    (st.ce_sum + t.hyper.z_loss * st.lse_sq_sum) / st.rows as f64
}

#[test]
fn gradients_of_every_tensor_equal_central_differences() {
    for tied in [false, true] {
        let (mut w, b) = micro();
        if tied {
            w.wcls = None;
            w.config.shared_classifier = true;
        }
        let hyper = Hyper { z_loss: 0.05, ..Hyper::default() };
        let mut t = Pretrainer::<f64>::new(&w, hyper).unwrap().with_kernels(Kernels::Reference);
        let grads: Params<f64> = t.loss_and_grads(&b).unwrap().1.clone();
        for (spec, g) in grads.iter() {
            for i in (0..g.len()).step_by(g.len() / 7 + 1) {
                let h = 1e-5;
                let at = |t: &mut Pretrainer<f64>, d: f64| {
                    t.params.get_mut(spec.tensor)[i] += d;
                    let v = objective(t, &b);
                    t.params.get_mut(spec.tensor)[i] -= d;
                    v
                };
                let num = (at(&mut t, h) - at(&mut t, -h)) / (2.0 * h);
                // f64 central differences agree to ~1e-9 here; a wrong term is off by ≥1e-3.
                assert!(
                    (num - g[i]).abs() < 1e-7 * (1.0 + num.abs()),
                    "{} [{i}] tied {tied}: {num} vs {}",
                    spec.tensor.name(),
                    g[i]
                );
            }
        }
    }
}

/// Below `gemm::MIN_ROWS` batch rows; from there on `gemm` computes it (tests/gemm.rs).
#[test]
fn fast_weight_gradient_equals_the_generic_kernel_bit_for_bit() {
    let (n, n_in, n_out) = (lk::gemm::MIN_ROWS - 1, 53, 41);
    let dy: Vec<f32> = random_tokens(1, n * n_out, 1000).iter().map(|&v| v as f32 / 500.0 - 1.0).collect();
    let x: Vec<f32> = random_tokens(2, n * n_in, 1000).iter().map(|&v| v as f32 / 300.0 - 1.5).collect();
    let start: Vec<f32> = random_tokens(3, n_out * n_in, 1000).iter().map(|&v| v as f32 / 1000.0).collect();
    let (mut fast, mut generic) = (start.clone(), start);
    kernel::matmul_dw(Kernels::Fast, &mut fast, &dy, &x, n_in);
    lk::matmul_dw(&mut generic, &dy, &x, n_in, 1.0);
    assert_eq!(fast, generic);
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let c = case("random_gqa");
    let steps = c.steps().len() as u64;
    let mut whole = Pretrainer::<f32>::new(&c.weights, c.hyper).unwrap();
    let mut first = Pretrainer::<f32>::new(&c.weights, c.hyper).unwrap();
    let mut log = Vec::new();
    for k in 0..steps {
        log.push(whole.step(&c.batch(k)).unwrap().clone());
    }
    for k in 0..2 {
        first.step(&c.batch(k)).unwrap();
    }
    // A snapshot with the weights, and moments alone beside the model's f32 weights.
    let resumed = [
        Pretrainer::from_state(&first.save_state(true).unwrap(), None, "state").unwrap(),
        Pretrainer::from_state(&first.save_state(false).unwrap(), Some(&first.weights()), "state").unwrap(),
    ];
    for mut r in resumed {
        assert_eq!(r.steps_done(), 2);
        for k in 2..steps {
            assert_eq!(r.step(&c.batch(k)).unwrap(), &log[k as usize], "step {}", k + 1);
        }
        assert_eq!(r.params, whole.params);
        assert_eq!(r.moments(), whole.moments());
    }
}

/// The Reference kernels allocate nothing in a step. The Fast ones allocate only sgemm's packing
/// buffers (`lora::kernels::gemm`; matrixmultiply takes no caller workspace), each freed within
/// its call: no bytes are kept and none is larger than a few cache blocks, so a long run in a
/// browser tab does not grow its memory.
#[test]
fn a_step_keeps_no_memory() {
    let c = case("stories260K");
    let (b0, b1, b2) = (c.batch(0), c.batch(1), c.batch(2));
    pool::install(pool::with_threads(1), || {
        for kernels in [Kernels::Fast, Kernels::Reference] {
            let mut t = Pretrainer::<f32>::new(&c.weights, c.hyper).unwrap().with_kernels(kernels);
            t.step(&b0).unwrap(); // makes the buffers
            let (n0, live0, _) = allocations();
            t.step(&b1).unwrap();
            t.step(&b2).unwrap();
            let (n, live, biggest) = allocations();
            assert_eq!(live, live0, "{kernels:?}: a training step kept memory");
            if kernels == Kernels::Reference {
                assert_eq!(n - n0, 0, "{kernels:?}: a training step allocated");
            }
            // matrixmultiply's packing for sgemm (kc × (mc + nc) floats) is about 1 MiB.
            assert!(biggest <= 4 << 20, "{kernels:?}: an allocation of {biggest} bytes");
        }
    });
}

#[test]
fn damaged_or_foreign_state_is_refused_in_words() {
    let c = case("random_gqa");
    let mut t = Pretrainer::<f32>::new(&c.weights, c.hyper).unwrap();
    t.step(&c.batch(0)).unwrap();
    let bytes = t.save_state(false).unwrap();
    let err = |b: &[u8]| read_state(b, "opt.safetensors").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err(&bytes[..bytes.len() / 2]).contains("not a valid safetensors file"));
    assert!(err(b"").contains("opt.safetensors"));
    let other = random_weights(&Config::parse("48,128,2,6,2,96,16").unwrap(), 7).unwrap();
    let e = Pretrainer::from_state(&bytes, Some(&other), "opt.safetensors").err().unwrap().to_string();
    assert!(e.contains("another") || e.contains("shape"), "{e}");
    let e = Pretrainer::from_state(&bytes, None, "opt.safetensors").err().unwrap().to_string();
    assert!(e.contains("holds no weights"), "{e}");
    assert!(Pretrainer::from_state(&t.save_state(true).unwrap(), None, "s").is_ok());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        /// Any byte changed, or the file cut anywhere: an error or a state, never a panic.
        #[test]
        fn state_reader_never_panics(at in 0usize..1 << 20, byte in any::<u8>(), cut in any::<bool>()) {
            let (w, b) = micro();
            let mut t = Pretrainer::<f32>::new(&w, Hyper::default()).unwrap();
            t.step(&b).unwrap();
            let mut bytes = t.save_state(true).unwrap();
            let at = at % bytes.len();
            if cut { bytes.truncate(at) } else { bytes[at] = byte }
            if let Ok(s) = read_state(&bytes, "s") {
                prop_assert_eq!(s.config, w.config);
            }
        }
    }
}

#[test]
fn decay_skips_the_norm_gains() {
    // One step from the same weights: the gradients are equal, so only the decay can differ.
    let (w, b) = micro();
    let one = |wd: f64| {
        let mut h = Hyper { weight_decay: wd, ..Hyper::default() };
        h.schedule.warmup = 0;
        let mut t = Pretrainer::<f32>::new(&w, h).unwrap();
        t.step(&b).unwrap();
        t.params
    };
    let (with, without) = (one(0.5), one(0.0));
    for t in [Tensor::RmsAtt, Tensor::RmsFfn, Tensor::RmsFinal] {
        assert_eq!(with.get(t), without.get(t), "{} was decayed", t.name());
    }
    for t in [Tensor::TokEmbeddings, Tensor::Wq, Tensor::W2, Tensor::Wcls] {
        assert_ne!(with.get(t), without.get(t), "{} was not decayed", t.name());
    }
}

#[test]
fn the_worker_api_steps_snapshots_and_samples() {
    use tinylm_engine::checkpoint::{read, write_v0};
    use tinylm_engine::cpu::CpuBackend;
    use tinylm_engine::generate::Generation;
    use tinylm_engine::pretrain::{PretrainBackend, Trainer};
    use tinylm_engine::Sampler;
    let c = case("random_gqa");
    let mut t = Trainer::open(PretrainBackend::Cpu, &c.weights, c.hyper, None).unwrap();
    let mut whole = Trainer::open(PretrainBackend::Cpu, &c.weights, c.hyper, None).unwrap();
    for k in 0..2 {
        t.step(&c.batch(k)).unwrap();
        whole.step(&c.batch(k)).unwrap();
    }
    // A snapshot taken between calls (as the page keeps in OPFS) continues the same run.
    let (_, snap) = block(t.snapshot_async(true)).unwrap();
    let mut t = Trainer::from_snapshot(PretrainBackend::Cpu, &snap, "snapshot").unwrap();
    let third = whole.step(&c.batch(2)).unwrap().clone();
    assert_eq!(t.step(&c.batch(2)).unwrap(), &third);
    // A sample equals generating from the model file the run would write.
    let got = t.sample(vec![1, 5, 9], 12, &mut Sampler::new(0.8, 0.9, 42).unwrap()).unwrap();
    let (w, _) = read(&write_v0(&block(t.snapshot_async(false)).unwrap().0), "model.bin").unwrap();
    let mut g = Generation::new(vec![1, 5, 9], 12, &w.config).unwrap();
    let (mut b, mut s) = (CpuBackend::new(w), Sampler::new(0.8, 0.9, 42).unwrap());
    while g.step(&mut b, &mut s).unwrap().is_some() {}
    assert_eq!(got, g.tokens);
    // The same snapshot continues on the GPU trainer (lavapipe here): the step measures the same
    // loss within f32 rounding (gpu_pretrain.rs holds the GPU trainer to PyTorch).
    let mut g = Trainer::from_snapshot(PretrainBackend::Gpu, &snap, "snapshot").unwrap();
    assert!(g.device().starts_with("the GPU"), "{}", g.device());
    let (on_gpu, on_cpu) = (g.step(&c.batch(2)).unwrap().loss, third.loss);
    assert!((on_gpu - on_cpu).abs() <= 1e-5 * on_cpu, "GPU {on_gpu} vs CPU {on_cpu}");
}

/// Polls a future that completes at once (the CPU trainer's).
fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
