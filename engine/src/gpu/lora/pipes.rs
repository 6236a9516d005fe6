//! The training kernels (shaders/lora_*.wgsl): one bind group layout per file, one pipeline per
//! entry point, created once per trainer. Each kernel takes only group 0.

use crate::gpu::context::GpuContext;
use crate::gpu::kernels::Kernel;
pub use crate::gpu::kernels::Slot;

/// A WGSL file's layout and its entry points' pipelines: the decode path's `Kernel`, built
/// without the per-dispatch step group.
pub struct Pipe(Kernel);

impl Pipe {
    fn new(ctx: &GpuContext, name: &str, src: &str, slots: &[Slot], entries: &[&'static str]) -> Pipe {
        Pipe(Kernel::new(ctx, None, name, src, slots, entries))
    }

    /// The pipeline of entry point `entry`.
    pub fn pipeline(&self, entry: &str) -> &wgpu::ComputePipeline {
        self.0.pipeline(entry)
    }

    /// A bind group with `buffers` bound whole, in binding order.
    pub fn bind(&self, ctx: &GpuContext, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        self.0.bind(ctx, "lora", buffers)
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

/// A lora_*.wgsl file after common.wgsl (exp_acc, F32_LOWEST, flat_invocation).
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
            matmul: p(
                "lora matmul",
                include_str!("../../../../shaders/lora_matmul.wgsl"),
                &[Read, Read, Write, Uniform],
                &["main"],
            ),
            rmsnorm: p(
                "lora rmsnorm",
                with_common!("lora_rmsnorm.wgsl"),
                &[Read, Read, Read, Write, Uniform],
                &["forward", "backward"],
            ),
            rope: p("lora rope", with_common!("lora_rope.wgsl"), &[Read, Write, Uniform], &["forward", "backward"]),
            attention: p(
                "lora attention",
                with_common!("lora_attention.wgsl"),
                &[Read, Read, Read, Read, Write, Write, Uniform],
                &["forward", "backward_q", "backward_kv"],
            ),
            swiglu: p(
                "lora swiglu",
                with_common!("lora_swiglu.wgsl"),
                &[Read, Read, Read, Write, Write, Uniform],
                &["forward", "backward"],
            ),
            loss: p("lora loss", with_common!("lora_loss.wgsl"), &[Read, Write, Write, Uniform], &["main"]),
            adamw: p(
                "lora adamw",
                include_str!("../../../../shaders/lora_adamw.wgsl"),
                &[Read, Write, Write, Write, Write, Uniform],
                &["norm_main", "update"],
            ),
        }
    }
}
