//! Which kernels the CPU forward pass runs: run.c's scalar reference or the fast ones.

use super::heads::AttendFn;
use super::{fast, ops};

/// Which matrix–vector kernel the forward pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// run.c's scalar loops, the reference.
    Reference,
    /// SIMD and threads (`fast.rs`), tested against the reference.
    Fast,
}

impl Kernels {
    pub(super) fn attend(self) -> AttendFn {
        match self {
            Kernels::Reference => ops::attend,
            Kernels::Fast => fast::attend,
        }
    }
    pub(super) fn swiglu(self) -> fn(&mut [f32], &[f32]) {
        match self {
            Kernels::Reference => ops::swiglu,
            Kernels::Fast => fast::swiglu,
        }
    }
    pub(super) fn rmsnorm(self) -> fn(&mut [f32], &[f32], &[f32], f32) {
        match self {
            Kernels::Reference => ops::rmsnorm_eps,
            Kernels::Fast => fast::rmsnorm_eps,
        }
    }
}
