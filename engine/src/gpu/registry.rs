//! Every WGSL kernel the engine compiles, decode and training alike: its source, group 0's
//! bindings in binding order, its entry points and the sizes of its uniforms. `Kernel::new`
//! builds the bind group layout and the pipelines from a `Spec`, so the Rust side never
//! restates a shader's bindings elsewhere; the test below holds each `Spec` against the
//! `@binding`s, entry points and uniform structs its WGSL declares.
//!
//! To add a kernel: write shaders/NAME.wgsl (headed by its bindings), add its uniform struct to
//! `uniforms`, a `Spec` here (and to `ALL`), and a field to `DecodeKernels` or `TrainKernels`.

use std::mem::size_of;

use super::uniforms::*;
use Slot::{Read, Uniform, Write};

/// How a kernel binds each buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Read,
    Write,
    Uniform,
}

pub use super::packing::WeightFormat;
use super::workgroups::{attention_consts, matvec_consts, MatvecShape, Workgroups};

/// One WGSL kernel family: a source and the pipelines made from its entry points.
pub struct Spec {
    pub name: &'static str,
    /// Group 0's bindings, in binding order.
    pub slots: &'static [Slot],
    pub entries: &'static [&'static str],
    /// Bytes of each uniform among `slots`, in order (each a struct of `uniforms`).
    pub uniforms: &'static [usize],
    /// Reads the per-submit `Step` (common.wgsl) as group 1: the decode kernels do.
    pub step: bool,
    /// The source, in the decode shapes `wg` where the kernel has a shape, reading weights in
    /// the format given where it reads weights.
    pub source: fn(&Workgroups, WeightFormat) -> String,
}

const COMMON: &str = include_str!("../../../shaders/common.wgsl");
const ROPE_PAIR: &str = include_str!("../../../shaders/rope_pair.wgsl");

macro_rules! wgsl {
    ($file:literal) => {
        include_str!(concat!("../../../shaders/", $file))
    };
}

/// matvec.wgsl in workgroup shape `shape` reading `w` (and the weight bindings in `more`, of
/// the files appended to it) in format `f`.
pub fn matvec_source(shape: MatvecShape, f: WeightFormat, more: &[&str]) -> String {
    let names: Vec<&str> = std::iter::once("w").chain(more.iter().copied()).collect();
    format!("{}{}{COMMON}{}{}", f.enable(), matvec_consts(shape), f.accessors(&names, &[]), wgsl!("matvec.wgsl"))
}

/// attention.wgsl with `lanes` lanes per workgroup.
pub fn attention_source(lanes: u32) -> String {
    format!("{}{COMMON}{}", attention_consts(lanes), wgsl!("attention.wgsl"))
}

/// A kernel reading one weight binding `name` element by element, in format `f`.
fn scalar_source(f: WeightFormat, name: &str, file: &str) -> String {
    format!("{}{COMMON}{}{file}", f.enable(), f.accessors(&[], &[name]))
}

const MATVEC_SLOTS: &[Slot] = &[Read, Read, Write, Uniform, Read];

pub const EMBED: Spec = Spec {
    name: "embed",
    slots: &[Read, Read, Write, Uniform],
    entries: &["main"],
    uniforms: &[size_of::<EmbedDims>()],
    step: true,
    source: |_, f| scalar_source(f, "table", wgsl!("embed.wgsl")),
};

pub const RMSNORM: Spec = Spec {
    name: "rmsnorm",
    slots: &[Read, Read, Write, Uniform],
    entries: &["main"],
    uniforms: &[size_of::<NormDims>()],
    step: true,
    source: |_, _| format!("{COMMON}{}", wgsl!("rmsnorm.wgsl")),
};

/// Entry points `matvec` (one row) and `matmul` (a batch).
pub const MATMUL: Spec = Spec {
    name: "matmul",
    slots: &[Read, Read, Write, Uniform],
    entries: &["matvec", "matmul"],
    uniforms: &[size_of::<MatmulDims>()],
    step: true,
    source: |_, f| scalar_source(f, "w", wgsl!("matmul.wgsl")),
};

/// The decode matvec with its producer fused in (`plain`, `norm`, `swiglu`), the layers' shape.
pub const MATVEC: Spec = Spec {
    name: "matvec",
    slots: MATVEC_SLOTS,
    entries: &["plain", "norm", "swiglu"],
    uniforms: &[size_of::<MatmulDims>()],
    step: true,
    source: |wg, f| matvec_source(wg.layers, f, &[]),
};

/// RMSNorm, q|k|v, RoPE and the cache write in one dispatch (matvec.wgsl + matvec_rope.wgsl).
pub const MATVEC_ROPE: Spec = Spec {
    name: "matvec rope",
    slots: &[Read, Read, Write, Uniform, Read, Read, Write, Uniform, Write],
    entries: &["norm_rope"],
    uniforms: &[size_of::<MatmulDims>(), size_of::<RopeDims>()],
    step: true,
    source: |wg, f| matvec_source(wg.layers, f, &[]) + ROPE_PAIR + wgsl!("matvec_rope.wgsl"),
};

/// The three-dispatch layer's whole FFN: RMSNorm, w1|w3, SwiGLU, w2 by hidden blocks
/// (matvec.wgsl + mlp.wgsl), the layers' shape.
pub const MLP: Spec = Spec {
    name: "mlp",
    slots: &[Read, Read, Write, Uniform, Read, Read, Uniform],
    entries: &["mlp"],
    uniforms: &[size_of::<MatmulDims>(), size_of::<MlpDims>()],
    step: true,
    source: |wg, f| matvec_source(wg.layers, f, &["w2"]) + wgsl!("mlp.wgsl"),
};

/// The classifier's `norm` in its own shape.
pub const MATVEC_CLS: Spec = Spec {
    name: "matvec cls",
    slots: MATVEC_SLOTS,
    entries: &["norm"],
    uniforms: &[size_of::<MatmulDims>()],
    step: true,
    source: |wg, f| matvec_source(wg.classifier, f, &[]),
};

/// The classifier's `norm` over f16 weights (devices with SHADER_F16 only).
pub const MATVEC_CLS_F16: Spec = Spec {
    name: "matvec cls f16",
    slots: MATVEC_SLOTS,
    entries: &["norm"],
    uniforms: &[size_of::<MatmulDims>()],
    step: true,
    source: |wg, _| matvec_source(wg.f16_classifier(), WeightFormat::F16, &[]),
};

pub const ROPE: Spec = Spec {
    name: "rope",
    slots: &[Read, Read, Write, Write, Uniform],
    entries: &["main"],
    uniforms: &[size_of::<RopeDims>()],
    step: true,
    source: |_, _| format!("{COMMON}{ROPE_PAIR}{}", wgsl!("rope.wgsl")),
};

pub const ATTENTION: Spec = Spec {
    name: "attention",
    slots: &[Read, Read, Write, Write, Uniform],
    entries: &["main"],
    uniforms: &[size_of::<AttentionDims>()],
    step: true,
    source: |wg, _| attention_source(wg.attention),
};

/// One row's attention and the output projection by heads (attention.wgsl +
/// attention_wo.wgsl).
pub const ATTENTION_WO: Spec = Spec {
    name: "attention wo",
    slots: &[Read, Read, Write, Write, Uniform, Read, Write, Uniform],
    entries: &["attend_wo"],
    uniforms: &[size_of::<AttentionDims>(), size_of::<WoDims>()],
    step: true,
    source: |wg, f| {
        let wo = f.accessors(&["wo"], &[]);
        format!("{}{}{wo}{}", f.enable(), attention_source(wg.attention), wgsl!("attention_wo.wgsl"))
    },
};

pub const SWIGLU: Spec = Spec {
    name: "swiglu",
    slots: &[Read, Write, Uniform],
    entries: &["main"],
    uniforms: &[size_of::<SwigluDims>()],
    step: true,
    source: |_, _| format!("{COMMON}{}", wgsl!("swiglu.wgsl")),
};

/// Entry points `argmax` and `sample`.
pub const SAMPLE: Spec = Spec {
    name: "sample",
    slots: &[Read, Write, Write, Uniform],
    entries: &["argmax", "sample"],
    uniforms: &[size_of::<SampleDims>()],
    step: true,
    source: |_, _| format!("{COMMON}{}", wgsl!("sample.wgsl")),
};

/// Knock-outs and steering (`gpu::edits`): entry points `replace` and `add`.
pub const EDIT: Spec = Spec {
    name: "edit",
    slots: &[Read, Read, Write, Uniform],
    entries: &["replace", "add"],
    uniforms: &[size_of::<EditDims>()],
    step: true,
    source: |_, _| format!("{COMMON}{}", wgsl!("edit.wgsl")),
};

pub const LORA_MATMUL: Spec = Spec {
    name: "lora matmul",
    slots: &[Read, Read, Write, Uniform],
    entries: &["main"],
    uniforms: &[size_of::<LoraMatmulDims>()],
    step: false,
    source: |_, _| wgsl!("lora_matmul.wgsl").to_string(),
};

pub const LORA_RMSNORM: Spec = Spec {
    name: "lora rmsnorm",
    slots: &[Read, Read, Read, Write, Uniform],
    entries: &["forward", "backward"],
    uniforms: &[size_of::<LoraNormDims>()],
    step: false,
    source: |_, _| format!("{COMMON}{}", wgsl!("lora_rmsnorm.wgsl")),
};

pub const LORA_ROPE: Spec = Spec {
    name: "lora rope",
    slots: &[Read, Write, Uniform],
    entries: &["forward", "backward"],
    uniforms: &[size_of::<LoraRopeDims>()],
    step: false,
    source: |_, _| format!("{COMMON}{}", wgsl!("lora_rope.wgsl")),
};

pub const LORA_ATTENTION: Spec = Spec {
    name: "lora attention",
    slots: &[Read, Read, Read, Read, Write, Write, Uniform],
    entries: &["forward", "backward_q", "backward_kv"],
    uniforms: &[size_of::<LoraAttentionDims>()],
    step: false,
    source: |_, _| format!("{COMMON}{}", wgsl!("lora_attention.wgsl")),
};

pub const LORA_SWIGLU: Spec = Spec {
    name: "lora swiglu",
    slots: &[Read, Read, Read, Write, Write, Uniform],
    entries: &["forward", "backward"],
    uniforms: &[size_of::<LoraSwigluDims>()],
    step: false,
    source: |_, _| format!("{COMMON}{}", wgsl!("lora_swiglu.wgsl")),
};

pub const LORA_LOSS: Spec = Spec {
    name: "lora loss",
    slots: &[Read, Write, Write, Uniform],
    entries: &["main"],
    uniforms: &[size_of::<LossDims>()],
    step: false,
    source: |_, _| format!("{COMMON}{}", wgsl!("lora_loss.wgsl")),
};

pub const LORA_ADAMW: Spec = Spec {
    name: "lora adamw",
    slots: &[Read, Write, Write, Write, Write, Uniform],
    entries: &["norm_main", "update"],
    uniforms: &[size_of::<AdamwDims>()],
    step: false,
    source: |_, _| wgsl!("lora_adamw.wgsl").to_string(),
};

pub const PRETRAIN: Spec = Spec {
    name: "pretrain",
    slots: &[Read, Read, Read, Write, Write, Uniform],
    entries: &["embed", "embed_grad", "inv_rms", "gain_grad", "attn_rows", "max_into", "seg_sums"],
    uniforms: &[size_of::<PretrainDims>()],
    step: false,
    source: |_, _| format!("{COMMON}{}", wgsl!("pretrain.wgsl")),
};

/// Every weight format a kernel's source is written for, for the checks on every kernel.
#[cfg(test)]
pub const FORMATS: [WeightFormat; 7] = [
    WeightFormat::F32,
    WeightFormat::Int8 { group: 32, mins: false },
    WeightFormat::Int8 { group: 16, mins: true },
    WeightFormat::Half { bf16: false },
    WeightFormat::Half { bf16: true },
    WeightFormat::Blocks,
    WeightFormat::F16,
];

/// Every kernel, for the checks below.
#[cfg(test)]
pub const ALL: [&Spec; 22] = [
    &EMBED,
    &RMSNORM,
    &MATMUL,
    &MATVEC,
    &MATVEC_ROPE,
    &MLP,
    &MATVEC_CLS,
    &MATVEC_CLS_F16,
    &ROPE,
    &ATTENTION,
    &ATTENTION_WO,
    &SWIGLU,
    &SAMPLE,
    &EDIT,
    &LORA_MATMUL,
    &LORA_RMSNORM,
    &LORA_ROPE,
    &LORA_ATTENTION,
    &LORA_SWIGLU,
    &LORA_LOSS,
    &LORA_ADAMW,
    &PRETRAIN,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// One `@group(g) @binding(b) var<…> name: Type;` declaration.
    #[derive(Debug, PartialEq)]
    struct Binding {
        group: u32,
        binding: u32,
        slot: Slot,
        ty: String,
    }

    fn number_after(line: &str, key: &str) -> Option<u32> {
        let rest = &line[line.find(key)? + key.len()..];
        rest[..rest.find(')')?].trim().parse().ok()
    }

    /// Every binding the source declares, in the order written.
    fn bindings(src: &str) -> Vec<Binding> {
        src.lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .filter(|l| l.contains("@binding("))
            .map(|l| {
                let slot = if l.contains("var<uniform>") {
                    Uniform
                } else if l.contains("var<storage, read_write>") {
                    Write
                } else if l.contains("var<storage, read>") {
                    Read
                } else {
                    panic!("a binding of an unknown kind: {l}")
                };
                let ty = l.rsplit(':').next().unwrap_or("").trim().trim_end_matches(';').trim().to_string();
                Binding {
                    group: number_after(l, "@group(").expect("a group"),
                    binding: number_after(l, "@binding(").expect("a binding"),
                    slot,
                    ty,
                }
            })
            .collect()
    }

    /// Bytes of WGSL struct `name` (fields of 4-byte scalars only, as every uniform here is).
    fn struct_bytes(src: &str, name: &str) -> usize {
        let at = src.find(&format!("struct {name} {{")).unwrap_or_else(|| panic!("struct {name} not found"));
        let body = &src[at..];
        let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
        let fields: Vec<&str> = body
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect();
        for f in &fields {
            let ty = f.rsplit(':').next().unwrap().trim();
            assert!(["u32", "f32", "i32"].contains(&ty), "{name}.{f}: only 4-byte scalars are expected");
        }
        4 * fields.len()
    }

    #[test]
    fn every_kernel_declares_the_bindings_its_spec_lists() {
        for spec in ALL {
            for f in FORMATS {
                check_bindings(spec, &(spec.source)(&Workgroups::default(), f));
            }
        }
    }

    fn check_bindings(spec: &Spec, src: &str) {
        let all = bindings(src);
        let group0: Vec<&Binding> = all.iter().filter(|b| b.group == 0).collect();
        let slots: Vec<Slot> = group0.iter().map(|b| b.slot).collect();
        assert_eq!(slots, spec.slots, "{}: group 0 bindings", spec.name);
        let numbers: Vec<u32> = group0.iter().map(|b| b.binding).collect();
        assert_eq!(numbers, (0..spec.slots.len() as u32).collect::<Vec<_>>(), "{}: binding numbers", spec.name);
        let step = all.iter().any(|b| (b.group, b.binding, b.slot, b.ty.as_str()) == (1, 0, Uniform, "Step"));
        assert!(step || !spec.step, "{}: the decode step must be group 1, binding 0", spec.name);
        assert!(all.iter().all(|b| b.group <= 1), "{}: only groups 0 and 1", spec.name);
        let uniforms: Vec<usize> = group0.iter().filter(|b| b.slot == Uniform).map(|b| struct_bytes(src, &b.ty)).collect();
        assert_eq!(uniforms, spec.uniforms, "{}: uniform struct sizes (WGSL vs Rust)", spec.name);
        for e in spec.entries {
            assert!(src.contains(&format!("fn {e}(")), "{}: no entry point {e}", spec.name);
        }
    }

    #[test]
    fn the_step_matches_common_wgsl() {
        assert_eq!(struct_bytes(COMMON, "Step"), size_of::<super::super::uniforms::Step>());
    }

    #[test]
    fn a_misdeclared_binding_is_caught() {
        // The checker itself: a storage binding declared read_write where the spec says read.
        let src = "@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n";
        assert_eq!(bindings(src)[0].slot, Write);
        assert_eq!(bindings("@group(0) @binding(3) var<uniform> d: Dims; // d\n")[0].ty, "Dims");
        assert_eq!(struct_bytes("struct D { a: u32, b: f32,\n c: u32 }", "D"), 12);
    }
}
