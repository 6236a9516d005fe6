//! The float type the training kernels are written over: f32 for the real path, f64 so tests can
//! check gradients against central differences with many digits to spare.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

pub trait Real:
    Copy
    + Default
    + PartialOrd
    + Debug
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
{
    const ZERO: Self;
    const ONE: Self;
    /// Rounds an f64 to this type (exact for f64).
    fn of(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn sqrt(self) -> Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn sin_cos(self) -> (Self, Self);
    fn is_finite(self) -> bool;
    /// The slice as f32 when `Self` is f32, so the training path can take `cpu::fast`'s SIMD
    /// kernels; `None` for f64 (which keeps the generic kernels).
    fn f32s(_x: &[Self]) -> Option<&[f32]> {
        None
    }
    fn f32s_mut(_x: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
}

macro_rules! real {
    ($t:ty $(, $extra:item)*) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn of(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            fn sin_cos(self) -> (Self, Self) {
                <$t>::sin_cos(self)
            }
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            $($extra)*
        }
    };
}

real!(
    f32,
    fn f32s(x: &[f32]) -> Option<&[f32]> {
        Some(x)
    },
    fn f32s_mut(x: &mut [f32]) -> Option<&mut [f32]> {
        Some(x)
    }
);
real!(f64);

/// Converts a slice between float types.
pub fn cast<A: Real, B: Real>(x: &[A]) -> Vec<B> {
    x.iter().map(|v| B::of(v.to_f64())).collect()
}
