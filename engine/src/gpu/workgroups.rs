//! Workgroup shapes of the decode kernels: a load-time parameter of matvec.wgsl (and
//! matvec_rope.wgsl) and attention.wgsl, written into their source as constants. The default is
//! the shape the kernels were written with; `gpu::tune` measures the candidates on the adapter
//! at hand and picks the fastest.

use crate::error::{Error, Result};

/// One fused-matvec workgroup: `x` lanes along the outputs (4 outputs each, vec4 loads) times
/// `y` lanes splitting the dot product along k.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MatvecShape {
    pub x: u32,
    pub y: u32,
}

impl MatvecShape {
    /// The kernels' original shape: 64 outputs per workgroup, k split 16 ways.
    pub const DEFAULT: MatvecShape = MatvecShape { x: 16, y: 16 };

    /// Invocations per workgroup (saturating: shapes come from JSON files).
    pub fn lanes(self) -> u32 {
        self.x.saturating_mul(self.y)
    }

    /// Output rows one workgroup computes.
    pub fn rows(self) -> usize {
        4 * self.x as usize
    }

    /// Workgroup memory the kernel declares: the staged input (MAXK floats), one vec4 partial
    /// sum per lane, the RMSNorm total.
    fn workgroup_bytes(self) -> u32 {
        self.lanes().saturating_mul(4).saturating_add(MATVEC_MAX_K + 1).saturating_mul(4)
    }
}

impl std::fmt::Display for MatvecShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.x, self.y)
    }
}

/// matvec.wgsl's MAXK.
const MATVEC_MAX_K: u32 = 2816;

/// The shapes the tuner tries, the default first. All fit WebGPU's default of 256 invocations
/// per workgroup. What they trade:
/// - wider `x` (32×8, 64×4, 32×4): longer contiguous runs of each transposed weight row per k
///   step (better coalescing, fewer workgroups re-staging the input), but fewer workgroups in
///   flight for small matrices and a shallower split of k, so longer serial dot products;
/// - deeper `y` (8×32, 8×16): more workgroups for the same rows and short per-lane loops, at
///   the cost of a longer y-ordered reduction and shorter (32–64-byte) contiguous reads;
/// - 128- and 64-lane groups (16×8, 8×16, 32×4, 16×4): more groups resident per core where
///   registers or workgroup memory limit occupancy, and one 64-wide wave on some GPUs.
pub const MATVEC_CANDIDATES: &[MatvecShape] = &[
    MatvecShape::DEFAULT,
    MatvecShape { x: 8, y: 32 },
    MatvecShape { x: 32, y: 8 },
    MatvecShape { x: 64, y: 4 },
    MatvecShape { x: 16, y: 8 },
    MatvecShape { x: 8, y: 16 },
    MatvecShape { x: 32, y: 4 },
    MatvecShape { x: 16, y: 4 },
];

/// attention.wgsl's workgroup sizes to try (powers of two: its max is a halving tree), the
/// default first. More lanes spread the positions of a long context; fewer waste less on
/// short ones.
pub const ATTENTION_CANDIDATES: &[u32] = &[64, 32, 128, 256];

/// The workgroup shapes one backend builds its decode pipelines with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Workgroups {
    /// The layers' matvecs (q|k|v with RoPE, wo, w1|w3, w2).
    pub layers: MatvecShape,
    /// The classifier (usually the largest matrix of a small model).
    pub classifier: MatvecShape,
    /// The classifier when it reads f16 weights (`GpuOptions::f16_classifier`); `None`: the
    /// f32 classifier's shape (tunings made without shader-f16 have none).
    #[serde(default)]
    pub classifier_f16: Option<MatvecShape>,
    /// attention.wgsl's lanes per (head, row).
    pub attention: u32,
}

impl Default for Workgroups {
    fn default() -> Self {
        Workgroups { layers: MatvecShape::DEFAULT, classifier: MatvecShape::DEFAULT, classifier_f16: None, attention: 64 }
    }
}

impl std::fmt::Display for Workgroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "layers {}, classifier {}", self.layers, self.classifier)?;
        if let Some(s) = self.classifier_f16 {
            write!(f, ", f16 classifier {s}")?;
        }
        write!(f, ", attention {}", self.attention)
    }
}

impl Workgroups {
    /// The f16 classifier's shape: its own, or the f32 classifier's.
    pub fn f16_classifier(&self) -> MatvecShape {
        self.classifier_f16.unwrap_or(self.classifier)
    }

    /// Whether the device can run these shapes (and the dispatch sizes stay within its
    /// per-dimension workgroup count); `Error::InvalidSetting` saying which limit, if not.
    pub fn check(&self, limits: &wgpu::Limits) -> Result<()> {
        for (what, s) in [("layer", self.layers), ("classifier", self.classifier), ("f16 classifier", self.f16_classifier())] {
            check_matvec(what, s, limits)?;
        }
        let a = self.attention;
        if a == 0 || !a.is_power_of_two() {
            return Err(bad(format!("attention workgroup size {a} must be a power of two")));
        }
        if a > limits.max_compute_workgroup_size_x || a > limits.max_compute_invocations_per_workgroup {
            return Err(bad(format!(
                "attention workgroup size {a} exceeds this device's limit of {} invocations",
                limits.max_compute_invocations_per_workgroup.min(limits.max_compute_workgroup_size_x)
            )));
        }
        Ok(())
    }
}

fn bad(what: String) -> Error {
    Error::InvalidSetting(format!("GPU workgroup shape: {what}"))
}

fn check_matvec(what: &str, s: MatvecShape, l: &wgpu::Limits) -> Result<()> {
    // 4 x >= 16 rows per workgroup keeps a weight chunk (model::MAX_CHUNK_ROWS) in one dispatch.
    if s.x < 4 || s.y < 1 {
        return Err(bad(format!("{what} matvec {s} needs x >= 4 and y >= 1")));
    }
    let lanes = s.lanes();
    if lanes > l.max_compute_invocations_per_workgroup {
        return Err(bad(format!(
            "{what} matvec {s} is {lanes} invocations, above this device's limit of {}",
            l.max_compute_invocations_per_workgroup
        )));
    }
    if s.x > l.max_compute_workgroup_size_x || s.y > l.max_compute_workgroup_size_y {
        return Err(bad(format!(
            "{what} matvec {s} exceeds this device's workgroup size limits ({} x {})",
            l.max_compute_workgroup_size_x, l.max_compute_workgroup_size_y
        )));
    }
    if s.workgroup_bytes() > l.max_compute_workgroup_storage_size {
        return Err(bad(format!(
            "{what} matvec {s} needs {} bytes of workgroup memory, above this device's {}",
            s.workgroup_bytes(),
            l.max_compute_workgroup_storage_size
        )));
    }
    Ok(())
}

/// The constants matvec.wgsl expects before its body.
pub(crate) fn matvec_consts(s: MatvecShape) -> String {
    format!("const MV_X: u32 = {}u;\nconst MV_Y: u32 = {}u;\n", s.x, s.y)
}

/// The constant attention.wgsl expects.
pub(crate) fn attention_consts(lanes: u32) -> String {
    format!("const ATT_LANES: u32 = {lanes}u;\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_fit_webgpu_defaults_and_bad_shapes_are_refused() {
        let l = wgpu::Limits::default();
        for &s in MATVEC_CANDIDATES {
            let w = Workgroups { layers: s, classifier: s, classifier_f16: Some(s), attention: 64 };
            assert!(w.check(&l).is_ok(), "{s}");
        }
        for &a in ATTENTION_CANDIDATES {
            assert!(Workgroups { attention: a, ..Workgroups::default() }.check(&l).is_ok(), "{a}");
        }
        let big = Workgroups { classifier: MatvecShape { x: 32, y: 16 }, ..Workgroups::default() };
        assert!(matches!(big.check(&l), Err(Error::InvalidSetting(m)) if m.contains("512 invocations")));
        let big16 = Workgroups { classifier_f16: Some(MatvecShape { x: 32, y: 16 }), ..Workgroups::default() };
        assert!(matches!(big16.check(&l), Err(Error::InvalidSetting(m)) if m.contains("f16 classifier matvec")));
        let thin = Workgroups { layers: MatvecShape { x: 2, y: 64 }, ..Workgroups::default() };
        assert!(matches!(thin.check(&l), Err(Error::InvalidSetting(_))));
        assert!(Workgroups { attention: 48, ..Workgroups::default() }.check(&l).is_err());
        assert!(Workgroups { attention: 512, ..Workgroups::default() }.check(&l).is_err());
        // Workgroup memory: 1024 lanes would fit a device allowing them, but not 16 KB.
        let roomy = wgpu::Limits { max_compute_invocations_per_workgroup: 1024, max_compute_workgroup_size_x: 1024, ..l };
        let wide = Workgroups { layers: MatvecShape { x: 64, y: 16 }, ..Workgroups::default() };
        assert!(matches!(wide.check(&roomy), Err(Error::InvalidSetting(m)) if m.contains("workgroup memory")));
    }
}
