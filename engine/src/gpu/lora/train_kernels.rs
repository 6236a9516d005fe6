//! The training kernels (shaders/lora_*.wgsl), compiled from the one registry
//! (`gpu::registry`) once per trainer. Each takes only group 0.

use crate::gpu::context::GpuContext;
pub use crate::gpu::kernels::Kernel;
use crate::gpu::registry as r;
use crate::gpu::workgroups::Workgroups;

/// Every training kernel.
pub struct TrainKernels {
    pub matmul: Kernel,
    pub rmsnorm: Kernel,
    pub rope: Kernel,
    pub attention: Kernel,
    pub swiglu: Kernel,
    pub loss: Kernel,
    pub adamw: Kernel,
}

impl TrainKernels {
    pub fn new(ctx: &GpuContext) -> TrainKernels {
        // Training kernels have no decode shapes: the default source is theirs.
        let k = |spec| Kernel::compile(ctx, spec, &Workgroups::default(), None);
        TrainKernels {
            matmul: k(&r::LORA_MATMUL),
            rmsnorm: k(&r::LORA_RMSNORM),
            rope: k(&r::LORA_ROPE),
            attention: k(&r::LORA_ATTENTION),
            swiglu: k(&r::LORA_SWIGLU),
            loss: k(&r::LORA_LOSS),
            adamw: k(&r::LORA_ADAMW),
        }
    }
}
