//! The compute pipelines, one per WGSL entry point, created once per device. Every kernel
//! takes its buffers and sizes in bind group 0 and the per-submit `Step` in group 1.

use wgpu::util::DeviceExt;

use super::context::GpuContext;
use super::workgroups::{attention_consts, matvec_consts, MatvecShape, Workgroups};

/// Bytes between `Step` slots in the step buffer (the dynamic-offset alignment).
pub const STEP_SLOT: u64 = 256;

/// The per-submit uniform, `Step` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Step {
    pub n_rows: u32,
    pub pos0: u32,
    pub in_row0: u32,
    pub mode: u32,
    pub coin: f32,
    pub temperature: f32,
    pub topp: f32,
    pub cutoff: f32,
}

/// How a kernel binds each buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Read,
    Write,
    Uniform,
}

/// A bind group layout and the pipelines of one WGSL file that share it.
pub struct Kernel {
    pub layout: wgpu::BindGroupLayout,
    entries: Vec<(&'static str, wgpu::ComputePipeline)>,
}

impl Kernel {
    /// One WGSL file: its group-0 layout from `slots`, then `step` as group 1 when given (the
    /// decode kernels' per-dispatch uniforms; the training kernels take group 0 only).
    pub(crate) fn new(
        ctx: &GpuContext,
        step: Option<&wgpu::BindGroupLayout>,
        name: &str,
        src: &str,
        slots: &[Slot],
        entries: &[&'static str],
    ) -> Kernel {
        let dev = &ctx.device;
        let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        let layout_entries: Vec<_> = slots
            .iter()
            .enumerate()
            .map(|(i, s)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match s {
                        Slot::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Slot::Write => wgpu::BufferBindingType::Storage { read_only: false },
                        Slot::Uniform => wgpu::BufferBindingType::Uniform,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout =
            dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(name), entries: &layout_entries });
        let groups: Vec<_> = std::iter::once(&layout).chain(step).map(Some).collect();
        let pl = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(name),
            bind_group_layouts: &groups,
            immediate_size: 0,
        });
        let entries = entries
            .iter()
            .map(|&e| {
                let p = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(e),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(e),
                    compilation_options: Default::default(),
                    cache: None,
                });
                (e, p)
            })
            .collect();
        Kernel { layout, entries }
    }

    /// The pipeline of entry point `entry` (the first one for "").
    pub fn pipeline(&self, entry: &str) -> &wgpu::ComputePipeline {
        self.entries.iter().find(|(e, _)| entry.is_empty() || *e == entry).map(|(_, p)| p).unwrap_or(&self.entries[0].1)
    }

    /// A bind group with `buffers` bound whole, in binding order.
    pub fn bind(&self, ctx: &GpuContext, label: &str, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(label), layout: &self.layout, entries: &entries })
    }
}

/// Every kernel of the forward pass and the sampler.
pub struct Kernels {
    pub step_layout: wgpu::BindGroupLayout,
    /// The decode kernels' workgroup shapes (defaults, or `gpu::tune`'s choice).
    pub workgroups: Workgroups,
    pub embed: Kernel,
    pub rmsnorm: Kernel,
    /// Entry points `matvec` (one row) and `matmul` (a batch).
    pub matmul: Kernel,
    /// The decode matvec with its producer fused in: entry points `plain`, `norm`, `swiglu`,
    /// in the layers' workgroup shape.
    pub matvec: Kernel,
    /// matvec.wgsl + matvec_rope.wgsl: entry point `norm_rope` (RMSNorm, q|k|v, RoPE, cache).
    pub matvec_rope: Kernel,
    /// The classifier's `norm` in its own shape; `None` when that is the layers' shape.
    pub matvec_cls: Option<Kernel>,
    /// The classifier's `norm` over f16 weights, on devices opened with SHADER_F16.
    pub matvec_cls_f16: Option<Kernel>,
    pub rope: Kernel,
    pub attention: Kernel,
    pub swiglu: Kernel,
    /// Entry points `argmax` and `sample`.
    pub sample: Kernel,
    /// Knock-outs and steering: entry points `replace` and `add` (`gpu::edits`).
    pub edit: Kernel,
}

macro_rules! shader {
    ($file:literal) => {
        concat!(include_str!("../../../shaders/common.wgsl"), include_str!(concat!("../../../shaders/", $file)))
    };
}

/// The RoPE pair and KV-cache write shared by rope.wgsl and matvec_rope.wgsl.
const ROPE_PAIR: &str = include_str!("../../../shaders/rope_pair.wgsl");

pub(crate) const MATVEC_SLOTS: &[Slot] = &[Slot::Read, Slot::Read, Slot::Write, Slot::Uniform, Slot::Read];
const MATVEC_ENTRIES: &[&str] = &["plain", "norm", "swiglu"];

/// matvec.wgsl in workgroup shape `shape` with its weight type `W4` defined: f32, or f16
/// (`enable` must come first).
pub(crate) fn matvec_src(shape: MatvecShape, f16: bool) -> String {
    let (enable, ty) = if f16 { ("enable f16;\n", "f16") } else { ("", "f32") };
    let consts = matvec_consts(shape);
    let common = include_str!("../../../shaders/common.wgsl");
    let body = include_str!("../../../shaders/matvec.wgsl");
    format!("{enable}{consts}{common}alias W4 = vec4<{ty}>;\n{body}")
}

/// attention.wgsl with `lanes` lanes per workgroup.
pub(crate) fn attention_src(lanes: u32) -> String {
    attention_consts(lanes) + shader!("attention.wgsl")
}

pub(crate) const ATTENTION_SLOTS: &[Slot] = &[Slot::Read, Slot::Read, Slot::Write, Slot::Write, Slot::Uniform];

/// The step group's layout: one `Step` at a dynamic offset.
pub(crate) fn step_layout(ctx: &GpuContext) -> wgpu::BindGroupLayout {
    ctx.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("step"),
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: wgpu::BufferSize::new(std::mem::size_of::<Step>() as u64),
            },
            count: None,
        }],
    })
}

impl Kernels {
    /// Every pipeline, the decode kernels in the shapes `wg` (checked by the caller).
    pub fn new(ctx: &GpuContext, wg: Workgroups) -> Kernels {
        use Slot::*;
        let step_layout = step_layout(ctx);
        let k = |name, src: &str, slots: &[Slot], entries: &[&'static str]| {
            Kernel::new(ctx, Some(&step_layout), name, src, slots, entries)
        };
        let f16 = ctx.device.features().contains(wgpu::Features::SHADER_F16);
        Kernels {
            embed: k("embed", shader!("embed.wgsl"), &[Read, Read, Write, Uniform], &["main"]),
            rmsnorm: k("rmsnorm", shader!("rmsnorm.wgsl"), &[Read, Read, Write, Uniform], &["main"]),
            matmul: k("matmul", shader!("matmul.wgsl"), &[Read, Read, Write, Uniform], &["matvec", "matmul"]),
            matvec: k("matvec", matvec_src(wg.layers, false).as_str(), MATVEC_SLOTS, MATVEC_ENTRIES),
            matvec_rope: k(
                "matvec rope",
                (matvec_src(wg.layers, false) + ROPE_PAIR + include_str!("../../../shaders/matvec_rope.wgsl")).as_str(),
                &[Read, Read, Write, Uniform, Read, Read, Write, Uniform],
                &["norm_rope"],
            ),
            matvec_cls: (wg.classifier != wg.layers)
                .then(|| k("matvec cls", matvec_src(wg.classifier, false).as_str(), MATVEC_SLOTS, &["norm"])),
            matvec_cls_f16: f16
                .then(|| k("matvec cls f16", matvec_src(wg.f16_classifier(), true).as_str(), MATVEC_SLOTS, &["norm"])),
            rope: k(
                "rope",
                &[shader!("rope_pair.wgsl"), include_str!("../../../shaders/rope.wgsl")].concat(),
                &[Read, Read, Write, Write, Uniform],
                &["main"],
            ),
            attention: k("attention", attention_src(wg.attention).as_str(), ATTENTION_SLOTS, &["main"]),
            swiglu: k("swiglu", shader!("swiglu.wgsl"), &[Read, Write, Uniform], &["main"]),
            sample: k("sample", shader!("sample.wgsl"), &[Read, Write, Write, Uniform], &["argmax", "sample"]),
            edit: k("edit", shader!("edit.wgsl"), &[Read, Read, Write, Uniform], &["replace", "add"]),
            step_layout,
            workgroups: wg,
        }
    }

    /// The f32 classifier's kernel (entry `norm`) with the shape it was compiled in, which
    /// its dispatch size depends on.
    pub fn classifier(&self) -> (&Kernel, MatvecShape) {
        match &self.matvec_cls {
            Some(k) => (k, self.workgroups.classifier),
            None => (&self.matvec, self.workgroups.layers),
        }
    }

    /// The same over f16 weights, where the device has SHADER_F16.
    pub fn classifier_f16(&self) -> Option<(&Kernel, MatvecShape)> {
        self.matvec_cls_f16.as_ref().map(|k| (k, self.workgroups.f16_classifier()))
    }
}

/// A uniform buffer holding `words` (u32 or f32 bit patterns), padded to 16 bytes.
pub fn uniform(ctx: &GpuContext, label: &str, words: &[u32]) -> wgpu::Buffer {
    let mut w = words.to_vec();
    w.resize(words.len().div_ceil(4).max(1) * 4, 0);
    ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(&w),
        usage: wgpu::BufferUsages::UNIFORM,
    })
}

/// A storage buffer initialised with `data`.
pub fn storage<T: bytemuck::Pod>(ctx: &GpuContext, label: &str, data: &[T], extra: wgpu::BufferUsages) -> wgpu::Buffer {
    ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(data),
        usage: wgpu::BufferUsages::STORAGE | extra,
    })
}

/// An uninitialised (zeroed) buffer of `bytes`.
pub fn buffer(ctx: &GpuContext, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size: bytes.max(4), usage, mapped_at_creation: false })
}

/// The step buffer (`slots` Step slots) and its dynamic-offset bind group.
pub fn step_buffer(ctx: &GpuContext, k: &Kernels, slots: usize) -> (wgpu::Buffer, wgpu::BindGroup) {
    step_buffer_in(ctx, &k.step_layout, slots)
}

/// `step_buffer` for a given step layout.
pub(crate) fn step_buffer_in(ctx: &GpuContext, layout: &wgpu::BindGroupLayout, slots: usize) -> (wgpu::Buffer, wgpu::BindGroup) {
    let buf = buffer(ctx, "step", slots as u64 * STEP_SLOT, wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST);
    let bg = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("step"),
        layout,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &buf,
                offset: 0,
                size: wgpu::BufferSize::new(std::mem::size_of::<Step>() as u64),
            }),
        }],
    });
    (buf, bg)
}

/// Records one dispatch.
pub fn dispatch(
    pass: &mut wgpu::ComputePass<'_>,
    pipeline: &wgpu::ComputePipeline,
    bg: &wgpu::BindGroup,
    step: (&wgpu::BindGroup, u32),
    groups: [u32; 3],
) {
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bg, &[]);
    pass.set_bind_group(1, step.0, &[step.1]);
    pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
}

/// Workgroups needed for `n` items at `per` items each.
pub fn groups(n: usize, per: usize) -> u32 {
    n.div_ceil(per) as u32
}
