//! The weights backed by 2 MiB pages where the system allows it (natively on Linux): decode reads
//! every weight once a token, and with 4 KiB pages each page costs a TLB miss, which in a virtual
//! machine is a walk of two page tables. Measured here (2-core EPYC VM, s15m): run.c with its
//! weights copied from the mapped file into ordinary memory fell from ≈290–340 to ≈180–200 tok/s,
//! and `MADV_COLLAPSE` on that memory brought it back to ≈295–315.

use crate::quant_weights::{Matrix, QuantWeights};
use crate::weights::Weights;

/// Asks the kernel to back each large tensor of `w` with huge pages. A hint: where it fails (an
/// older kernel, THP off, another system) the memory stays as it was; contents never change.
pub fn advise(w: &Weights) {
    for (_, t) in w.tensors() {
        advise_slice(t);
    }
}

/// `advise` for weights with quantized matrices (Q8_0's values and scales, blocks' bytes).
pub fn advise_quant(w: &QuantWeights) {
    w.matrices().for_each(advise_matrix);
}

fn advise_matrix(m: &Matrix) {
    match m {
        Matrix::F32(v) => advise_slice(v),
        Matrix::Q8(q) => {
            advise_slice(&q.q);
            advise_slice(&q.scales);
        }
        Matrix::Blocks(b) => advise_slice(&b.data),
        Matrix::Layers(l) => l.iter().for_each(advise_matrix),
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn advise_slice<T>(data: &[T]) {
    const HUGE: usize = 2 << 20;
    let start = data.as_ptr() as usize;
    // The 2 MiB pages that hold any of `data`: a tensor smaller than 2 MiB (a layer stack of
    // s15m's wq) rarely holds a whole aligned one. Pages around it belong to the process too, and
    // collapsing is what the kernel's khugepaged does to any memory of a process when THP is on.
    let (from, to) = (start / HUGE * HUGE, (start + std::mem::size_of_val(data)).next_multiple_of(HUGE));
    if !data.is_empty() {
        // SAFETY: MADV_COLLAPSE only changes which pages back [from, to) (copying their contents,
        // as khugepaged would), never what any address reads; where part of the range is not
        // this process's anonymous memory it fails and changes nothing.
        unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_COLLAPSE) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn advise_slice<T>(_: &[T]) {}

#[cfg(test)]
mod tests {
    use crate::randmodel::{named_shape, random_weights};

    #[test]
    fn advised_weights_read_the_same() {
        let (c, seed) = named_shape("s15m").unwrap();
        let w = random_weights(&c, seed).unwrap();
        let before: Vec<Vec<f32>> = w.tensors().iter().map(|(_, t)| t.to_vec()).collect();
        super::advise(&w);
        for ((s, t), b) in w.tensors().iter().zip(&before) {
            assert!(t.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()), "{:?} changed", s.tensor);
        }
    }
}
