//! Full training on the GPU (lavapipe here) against PyTorch (the fixtures of
//! pretrain_reference.rs) and against the CPU trainer: step-0 gradients of every tensor, every
//! step's loss and instruments, the final weights, and a resumed run against an uninterrupted
//! one. Tolerances are the where it gives them (GPU losses 1e-3, final weights 1e-4
//! relative) and otherwise about 10× what lavapipe measured (each comment gives it).
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use common::pretrain::{case, rel, rel1, Case};
use tinylm_engine::gpu::GpuPretrainer;
use tinylm_engine::pretrain::{Pretrainer, StepMetrics};
use tinylm_engine::weights::Tensor;

fn gpu(c: &Case) -> GpuPretrainer {
    let cpu = Pretrainer::<f32>::new(&c.weights, c.hyper).unwrap();
    GpuPretrainer::new(&cpu, None).expect("a GPU adapter (lavapipe) is needed for the GPU tests")
}

#[test]
fn step0_gradients_of_every_tensor_equal_pytorch_and_the_cpu() {
    for name in ["random_gqa", "stories260K"] {
        let c = case(name);
        let (loss, g) = gpu(&c).loss_and_grads(&c.batch(0)).unwrap();
        let want = c.steps()[0]["loss"].as_f64().unwrap();
        // Measured ≤ 4e-7 relative.
        assert!(rel1(loss, want, 1.0) < 1e-5, "{name}: step-0 loss {loss} vs {want}");
        let mut cpu = Pretrainer::<f32>::new(&c.weights, c.hyper).unwrap();
        let (_, cg) = cpu.loss_and_grads(&c.batch(0)).unwrap();
        let mut worst = [0f64; 2];
        for (((spec, got), (_, on_cpu)), tname) in g.iter().zip(cg.iter()).zip(c.names()) {
            assert_eq!(spec.tensor.name(), tname);
            let e = rel(got, &c.tensor(&format!("grad.{tname}")));
            let ec = rel(got, on_cpu);
            worst = [worst[0].max(e), worst[1].max(ec)];
            // The bound for gradients.
            assert!(e < 1e-5, "{name}: GPU gradient of {tname} off PyTorch's by {e:.2e} relative");
            assert!(ec < 1e-5, "{name}: GPU gradient of {tname} off the CPU's by {ec:.2e} relative");
        }
        eprintln!("{name}: GPU step-0 gradients within {:.1e} of PyTorch, {:.1e} of the CPU (relative)", worst[0], worst[1]);
    }
}

fn ratio(m: &StepMetrics, name: &str) -> f64 {
    serde_json::to_value(m).unwrap()["update_ratio"][name].as_f64().unwrap()
}

#[test]
fn training_runs_equal_pytorch() {
    for name in ["random_gqa", "stories260K"] {
        let c = case(name);
        let mut t = gpu(&c);
        let mut worst = [0f64; 4]; // loss, grad norm, instruments, update ratios
        for (k, want) in c.steps().iter().enumerate() {
            let m = t.step(&c.batch(k as u64)).unwrap().clone();
            let f = |key: &str| want[key].as_f64().unwrap();
            let ctx = format!("{name} step {}", k + 1);
            assert_eq!(m.step as usize, k + 1);
            assert!(rel1(m.lr, f("lr"), 1e-12) < 1e-12, "{ctx}: lr {} vs {}", m.lr, f("lr"));
            let e = [rel1(m.loss, f("loss"), 1.0), rel1(m.z_loss, f("z_loss"), 1e-3)];
            worst[0] = worst[0].max(e[0]).max(e[1]);
            // Measured ≤ 1.7e-7 (the GPU bound is 1e-3).
            assert!(
                e[0] < 1e-5 && e[1] < 1e-5,
                "{ctx}: loss {} / z-loss {} vs {} / {}",
                m.loss,
                m.z_loss,
                f("loss"),
                f("z_loss")
            );
            let e = rel1(m.grad_norm, f("grad_norm"), 1.0);
            worst[1] = worst[1].max(e);
            // Measured ≤ 3.2e-7.
            assert!(e < 1e-5, "{ctx}: grad norm {} vs {}", m.grad_norm, f("grad_norm"));
            let mut inst = vec![];
            for (got, want) in m.attn_logit_max.iter().zip(want["attn_logit_max"].as_array().unwrap()) {
                inst.push(("attention logit max", *got, want.as_f64().unwrap()));
            }
            inst.extend([
                ("logit_mean", m.logit_mean, f("logit_mean")),
                ("logit_max", m.logit_max, f("logit_max")),
                ("lse_mean", m.lse_mean, f("lse_mean")),
            ]);
            for (what, got, want) in inst {
                let e = rel1(got, want, 1.0);
                worst[2] = worst[2].max(e);
                // Measured ≤ 1.6e-6.
                assert!(e < 1e-5, "{ctx}: {what} {got} vs {want}");
            }
            for tname in c.names() {
                let (got, want) = (ratio(&m, tname), want["update_ratio"][tname].as_f64().unwrap());
                let e = rel1(got, want, 1e-6);
                worst[3] = worst[3].max(e);
                // Measured ≤ 8.8e-7.
                assert!(e < 1e-5, "{ctx}: update ratio of {tname} {got} vs {want}");
            }
        }
        let final_loss = t.loss(&c.batch(c.steps().len() as u64)).unwrap();
        let want = c.summary["final_loss"].as_f64().unwrap();
        assert!(rel1(final_loss, want, 1.0) < 1e-5, "{name}: final loss {final_loss} vs {want}");
        let cpu = t.to_cpu().unwrap();
        assert_eq!(cpu.steps_done() as usize, c.steps().len());
        let mut wf = 0f64;
        for ((_, got), tname) in cpu.params.iter().zip(c.names()) {
            let e = rel(got, &c.tensor(&format!("final.{tname}")));
            wf = wf.max(e);
            // The bound; measured ≤ 3.2e-5 (as on the CPU, Adam's √v amplifies rounding).
            assert!(e < 1e-4, "{name}: final {tname} off by {e:.2e} relative");
        }
        eprintln!(
            "{name} GPU: losses {:.1e}, grad norms {:.1e}, instruments {:.1e}, update ratios {:.1e}, final weights {wf:.1e} (relative)",
            worst[0], worst[1], worst[2], worst[3]
        );
    }
}

#[test]
fn a_resumed_gpu_run_equals_an_uninterrupted_one() {
    let c = case("random_gqa");
    let mut whole = gpu(&c);
    for k in 0..3 {
        whole.step(&c.batch(k)).unwrap();
    }
    let mut first = gpu(&c);
    for k in 0..2 {
        first.step(&c.batch(k)).unwrap();
    }
    // Through the saved state's bytes, as the CLI and the Build view save it.
    let saved = first.to_cpu().unwrap().save_state(true).unwrap();
    drop(first);
    let restored = Pretrainer::<f32>::from_state(&saved, None, "state").unwrap();
    let mut second = GpuPretrainer::new(&restored, None).unwrap();
    assert_eq!(second.steps_done(), 2);
    let m = second.step(&c.batch(2)).unwrap().clone();
    assert_eq!(m, whole.metrics().clone(), "the resumed step measured the same");
    let (a, b) = (second.to_cpu().unwrap(), whole.to_cpu().unwrap());
    assert!(a.params == b.params, "the weights differ after the resume");
    assert!(a.moments() == b.moments(), "AdamW's moments differ after the resume");
}

#[test]
fn a_diverged_step_is_refused_before_any_update() {
    let c = case("random_gqa");
    let mut w = c.weights.clone();
    // An infinite final gain makes every logit infinite or NaN.
    w.get_mut(Tensor::RmsFinal).fill(f32::INFINITY);
    let cpu = Pretrainer::<f32>::new(&w, c.hyper).unwrap();
    let mut t = GpuPretrainer::new(&cpu, None).unwrap();
    let err = t.step(&c.batch(0)).unwrap_err().to_string();
    assert!(err.contains("diverged"), "{err}");
    assert_eq!(t.steps_done(), 0);
    let after = t.to_cpu().unwrap();
    assert!(after.params == cpu.params, "weights changed after a refused step");
}
