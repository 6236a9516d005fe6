//! Compiled kernels: a `registry::Spec` made into a bind group layout and one compute pipeline
//! per entry point, once per device (`Kernel`), for decoding (`DecodeKernels`) and training
//! (`gpu::lora`'s `TrainKernels`). Every kernel takes its buffers and its uniform (a `uniforms`
//! struct) in bind group 0; the decode kernels take the per-submit `Step` in group 1.

use std::sync::OnceLock;

use wgpu::util::DeviceExt;

use super::context::GpuContext;
pub use super::registry::Slot;
use super::registry::{Spec, WeightFormat};
pub use super::uniforms::Step;
use super::workgroups::{MatvecShape, Workgroups};
use crate::error::{Error, Result};

/// Bytes between `Step` slots in the step buffer (the dynamic-offset alignment).
pub const STEP_SLOT: u64 = 256;

/// A compiled kernel family: the bind group layout of its `Spec`'s slots and one pipeline per
/// entry point, each made the first time it is asked for. A backend holds every decode kernel,
/// but a run uses about half of their entry points (the fused decode path or the unfused one,
/// knock-outs only when set); making a pipeline is the slow part of loading a model onto a GPU
/// (its driver compiles the shader; ≈0.6 s each on SwiftShader), so the unused ones cost nothing.
/// The shader module is still made at once, so WGSL errors surface while the model loads.
pub struct Kernel {
    pub name: &'static str,
    pub layout: wgpu::BindGroupLayout,
    device: wgpu::Device,
    module: wgpu::ShaderModule,
    pipeline_layout: wgpu::PipelineLayout,
    entries: Vec<(&'static str, OnceLock<wgpu::ComputePipeline>)>,
}

impl Kernel {
    /// `spec` compiled from `src` (its source at some shapes): group 0 from its slots, then the
    /// decode step as group 1 when the spec reads it (`step_layout` must then be given).
    pub(crate) fn new(ctx: &GpuContext, spec: &Spec, src: &str, step_layout: Option<&wgpu::BindGroupLayout>) -> Kernel {
        let dev = &ctx.device;
        let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(spec.name),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        // A bound uniform must hold the whole struct (wgpu checks it when binding).
        let mut uniforms = spec.uniforms.iter();
        let layout_entries: Vec<_> = spec
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (ty, min) = match s {
                    Slot::Read => (wgpu::BufferBindingType::Storage { read_only: true }, None),
                    Slot::Write => (wgpu::BufferBindingType::Storage { read_only: false }, None),
                    Slot::Uniform => (wgpu::BufferBindingType::Uniform, uniforms.next().map(|&b| b as u64)),
                };
                wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty,
                        has_dynamic_offset: false,
                        min_binding_size: min.and_then(wgpu::BufferSize::new),
                    },
                    count: None,
                }
            })
            .collect();
        let layout =
            dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(spec.name), entries: &layout_entries });
        let step = step_layout.filter(|_| spec.step);
        let groups: Vec<_> = std::iter::once(&layout).chain(step).map(Some).collect();
        let pl = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(spec.name),
            bind_group_layouts: &groups,
            immediate_size: 0,
        });
        let entries = spec.entries.iter().map(|&e| (e, OnceLock::new())).collect();
        Kernel { name: spec.name, layout, device: dev.clone(), module, pipeline_layout: pl, entries }
    }

    /// `spec` at the decode shapes `wg`, reading f32 weights.
    pub(crate) fn compile(ctx: &GpuContext, spec: &Spec, wg: &Workgroups, step_layout: Option<&wgpu::BindGroupLayout>) -> Kernel {
        Kernel::compile_for(ctx, spec, wg, WeightFormat::F32, step_layout)
    }

    /// `spec` at the decode shapes `wg`, reading weights in format `f`.
    pub(crate) fn compile_for(
        ctx: &GpuContext,
        spec: &Spec,
        wg: &Workgroups,
        f: WeightFormat,
        step_layout: Option<&wgpu::BindGroupLayout>,
    ) -> Kernel {
        Kernel::new(ctx, spec, &(spec.source)(wg, f), step_layout)
    }

    /// The pipeline of entry point `entry`, made on first use; an entry point the kernel lacks
    /// is an error.
    pub fn pipeline(&self, entry: &str) -> Result<&wgpu::ComputePipeline> {
        let (e, slot) = self
            .entries
            .iter()
            .find(|(e, _)| *e == entry)
            .ok_or_else(|| Error::Gpu(format!("the {} kernel has no entry point `{entry}`", self.name)))?;
        Ok(slot.get_or_init(|| {
            self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(e),
                layout: Some(&self.pipeline_layout),
                module: &self.module,
                entry_point: Some(e),
                compilation_options: Default::default(),
                cache: None,
            })
        }))
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

    /// Records one dispatch of `entry` with group 0 `bg` and the step at its dynamic offset.
    pub fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        entry: &str,
        bg: &wgpu::BindGroup,
        step: (&wgpu::BindGroup, u32),
        groups: [u32; 3],
    ) -> Result<()> {
        pass.set_pipeline(self.pipeline(entry)?);
        pass.set_bind_group(0, bg, &[]);
        pass.set_bind_group(1, step.0, &[step.1]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        Ok(())
    }
}

/// The decode kernels (the forward pass and the sampler), compiled from the registry.
pub struct DecodeKernels {
    pub step_layout: wgpu::BindGroupLayout,
    /// The decode kernels' workgroup shapes (defaults, or `gpu::tune`'s choice).
    pub workgroups: Workgroups,
    /// The format of the weights they read (`gpu::packing`).
    pub format: WeightFormat,
    pub embed: Kernel,
    pub rmsnorm: Kernel,
    /// Entry points `matvec` (one row) and `matmul` (a batch).
    pub matmul: Kernel,
    /// The decode matvec with its producer fused in: entry points `plain`, `norm`, `swiglu`,
    /// in the layers' workgroup shape.
    pub matvec: Kernel,
    /// matvec.wgsl + matvec_rope.wgsl: entry point `norm_rope` (RMSNorm, q|k|v, RoPE, cache).
    pub matvec_rope: Kernel,
    /// matvec.wgsl + mlp.wgsl: entry point `mlp` (a layer's whole FFN by hidden blocks).
    pub mlp: Kernel,
    /// The classifier's `norm` in its own shape; `None` when that is the layers' shape.
    pub matvec_cls: Option<Kernel>,
    /// The classifier's `norm` over f16 weights, on devices opened with SHADER_F16.
    pub matvec_cls_f16: Option<Kernel>,
    pub rope: Kernel,
    pub attention: Kernel,
    /// attention.wgsl + attention_wo.wgsl: entry point `attend_wo`.
    pub attention_wo: Kernel,
    pub swiglu: Kernel,
    /// Entry points `argmax` and `sample`.
    pub sample: Kernel,
    /// Knock-outs and steering: entry points `replace` and `add` (`gpu::edits`).
    pub edit: Kernel,
}

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

impl DecodeKernels {
    /// Every pipeline, the decode kernels in the shapes `wg` (checked by the caller) reading
    /// weights in format `format`.
    pub fn new(ctx: &GpuContext, wg: Workgroups, format: WeightFormat) -> DecodeKernels {
        use super::registry as r;
        let step_layout = step_layout(ctx);
        let k = |spec: &Spec| Kernel::compile_for(ctx, spec, &wg, format, Some(&step_layout));
        // The f16 classifier replaces an f32 one only.
        let f16 = format == WeightFormat::F32 && ctx.device.features().contains(wgpu::Features::SHADER_F16);
        DecodeKernels {
            embed: k(&r::EMBED),
            rmsnorm: k(&r::RMSNORM),
            matmul: k(&r::MATMUL),
            matvec: k(&r::MATVEC),
            matvec_rope: k(&r::MATVEC_ROPE),
            mlp: k(&r::MLP),
            matvec_cls: (wg.classifier != wg.layers).then(|| k(&r::MATVEC_CLS)),
            matvec_cls_f16: f16.then(|| k(&r::MATVEC_CLS_F16)),
            rope: k(&r::ROPE),
            attention: k(&r::ATTENTION),
            attention_wo: k(&r::ATTENTION_WO),
            swiglu: k(&r::SWIGLU),
            sample: k(&r::SAMPLE),
            edit: k(&r::EDIT),
            step_layout,
            workgroups: wg,
            format,
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

/// A uniform buffer holding one of the `uniforms` structs.
pub fn uniform<T: bytemuck::Pod>(ctx: &GpuContext, label: &str, value: &T) -> wgpu::Buffer {
    ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::bytes_of(value),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
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
pub fn step_buffer(ctx: &GpuContext, k: &DecodeKernels, slots: usize) -> (wgpu::Buffer, wgpu::BindGroup) {
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

/// Workgroups needed for `n` items at `per` items each.
pub fn groups(n: usize, per: usize) -> u32 {
    n.div_ceil(per) as u32
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::gpu::registry;

    #[test]
    fn an_unknown_entry_point_is_an_error_naming_the_kernel() {
        let ctx = match GpuContext::new() {
            Ok(c) => c,
            Err(Error::NoGpu(e)) => return println!("skipped: {e}"),
            Err(e) => panic!("{e}"),
        };
        let layout = step_layout(&ctx);
        let k = Kernel::compile(&ctx, &registry::SAMPLE, &Workgroups::default(), Some(&layout));
        assert!(k.pipeline("argmax").is_ok() && k.pipeline("sample").is_ok());
        // Before, "" and unknown names silently ran the first entry point (argmax here).
        for bad in ["", "main", "Sample"] {
            let e = k.pipeline(bad).err().unwrap().to_string();
            assert_eq!(e, format!("GPU: the sample kernel has no entry point `{bad}`"));
        }
    }

    /// Pipelines are made on first use, so one no run dispatches would never be checked: make
    /// every entry point of every kernel, in every weight format whose source differs, and
    /// expect no error from the device.
    #[test]
    fn every_entry_point_of_every_kernel_makes_a_pipeline() {
        let ctx = match GpuContext::with_shader_f16(true) {
            Ok(c) => c,
            Err(Error::NoGpu(e)) => return println!("skipped: {e}"),
            Err(e) => panic!("{e}"),
        };
        let f16 = ctx.device.features().contains(wgpu::Features::SHADER_F16);
        let layout = step_layout(&ctx);
        let wg = Workgroups::default();
        let mut seen = std::collections::HashSet::new();
        let mut made = 0;
        for spec in registry::ALL {
            for f in registry::FORMATS {
                let src = (spec.source)(&wg, f);
                if (src.contains("enable f16") && !f16) || !seen.insert(src.clone()) {
                    continue;
                }
                let k = Kernel::new(&ctx, spec, &src, Some(&layout));
                let all = ctx.scoped(spec.name, || spec.entries.iter().try_for_each(|e| k.pipeline(e).map(drop)));
                pollster::block_on(all).and_then(|r| r).unwrap_or_else(|e| panic!("{} in {f:?}: {e}", spec.name));
                made += spec.entries.len();
            }
        }
        println!("{made} pipelines made (shader-f16: {f16})");
        assert!(made >= registry::ALL.iter().map(|s| s.entries.len()).sum::<usize>());
    }
}
