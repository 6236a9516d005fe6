//! LoRA gradients against f64 central differences of the loss, the check two test files share.

use tinylm_engine::lora::{self, Adapter, Base, Batch};

/// Checks each module's A and B gradient (every element, or about `sample` spread over it) against
/// `(loss(p + h) − loss(p − h)) / 2h`, relative to that gradient's largest element, below
/// `tol`; returns the worst relative error. An all-zero gradient fails (the check would be vacuous).
pub fn lora_central_differences(base: &Base<'_, f64>, ad: &Adapter<f64>, batch: &Batch, sample: Option<usize>, tol: f64) -> f64 {
    let (_, grads) = lora::loss_and_grads(base, ad, batch).unwrap();
    let h = 1e-5;
    let mut worst = 0f64;
    for (i, g) in grads.modules.iter().enumerate() {
        for which in ['A', 'B'] {
            let analytic = if which == 'A' { &g.a } else { &g.b };
            let scale = analytic.iter().fold(0f64, |m, v| m.max(v.abs()));
            assert!(scale > 1e-8, "module {i} {which}: gradient is all zero; the check would be vacuous");
            let stride = sample.map_or(1, |n| analytic.len() / n.max(1) + 1);
            for j in (0..analytic.len()).step_by(stride) {
                let at = |delta: f64| {
                    let mut p = ad.clone();
                    let m = &mut p.modules[i];
                    let x = if which == 'A' { &mut m.a[j] } else { &mut m.b[j] };
                    *x += delta;
                    lora::loss(base, Some(&p), batch).unwrap()
                };
                let numeric = (at(h) - at(-h)) / (2.0 * h);
                let err = (numeric - analytic[j]).abs() / scale;
                worst = worst.max(err);
                assert!(
                    err < tol,
                    "layer {} {:?} {which}[{j}]: analytic {:e}, numeric {numeric:e}",
                    g.layer,
                    g.target,
                    analytic[j]
                );
            }
        }
    }
    worst
}
