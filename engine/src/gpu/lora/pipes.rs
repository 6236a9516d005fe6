//! The training kernels (shaders/lora_*.wgsl): one bind group layout per file, one pipeline per
//! entry point, created once per trainer. Each kernel takes only group 0.

use crate::gpu::context::GpuContext;

/// How a kernel binds each buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Read,
    Write,
    Uniform,
}

/// A WGSL file's layout and its entry points' pipelines.
pub struct Pipe {
    pub layout: wgpu::BindGroupLayout,
    entries: Vec<(&'static str, wgpu::ComputePipeline)>,
}

impl Pipe {
    fn new(ctx: &GpuContext, name: &str, src: &str, slots: &[Slot], entries: &[&'static str]) -> Pipe {
        let dev = &ctx.device;
        let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(name), source: wgpu::ShaderSource::Wgsl(src.into()) });
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
        let layout = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(name), entries: &layout_entries });
        let pl = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor { label: Some(name), bind_group_layouts: &[Some(&layout)], immediate_size: 0 });
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
        Pipe { layout, entries }
    }

    /// The pipeline of entry point `entry`.
    pub fn pipeline(&self, entry: &str) -> &wgpu::ComputePipeline {
        self.entries.iter().find(|(e, _)| *e == entry).map(|(_, p)| p).unwrap_or(&self.entries[0].1)
    }

    /// A bind group with `buffers` bound whole, in binding order.
    pub fn bind(&self, ctx: &GpuContext, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &self.layout, entries: &entries })
    }
}

/// Every training kernel.
pub struct Pipes {
    pub matmul: Pipe,
    pub rmsnorm: Pipe,
    pub rope: Pipe,
    pub attention: Pipe,
    pub swiglu: Pipe,
    pub loss: Pipe,
    pub adamw: Pipe,
}

/// A lora_*.wgsl file after common.wgsl (exp_acc, F32_LOWEST).
macro_rules! with_common {
    ($file:literal) => {
        concat!(include_str!("../../../../shaders/common.wgsl"), include_str!(concat!("../../../../shaders/", $file)))
    };
}

impl Pipes {
    pub fn new(ctx: &GpuContext) -> Pipes {
        use Slot::*;
        let p = |name, src: &str, slots: &[Slot], entries: &[&'static str]| Pipe::new(ctx, name, src, slots, entries);
        Pipes {
            matmul: p("lora matmul", include_str!("../../../../shaders/lora_matmul.wgsl"), &[Read, Read, Write, Uniform], &["main"]),
            rmsnorm: p(
                "lora rmsnorm",
                include_str!("../../../../shaders/lora_rmsnorm.wgsl"),
                &[Read, Read, Read, Write, Uniform],
                &["forward", "backward"],
            ),
            rope: p("lora rope", include_str!("../../../../shaders/lora_rope.wgsl"), &[Read, Write, Uniform], &["forward", "backward"]),
            attention: p(
                "lora attention",
                with_common!("lora_attention.wgsl"),
                &[Read, Read, Read, Read, Write, Write, Uniform],
                &["forward", "backward_q", "backward_kv"],
            ),
            swiglu: p("lora swiglu", with_common!("lora_swiglu.wgsl"), &[Read, Read, Read, Write, Write, Uniform], &["forward", "backward"]),
            loss: p("lora loss", with_common!("lora_loss.wgsl"), &[Read, Write, Write, Uniform], &["main"]),
            adamw: p("lora adamw", include_str!("../../../../shaders/lora_adamw.wgsl"), &[Read, Write, Write, Write, Write, Uniform], &["norm_main", "update"]),
        }
    }
}
