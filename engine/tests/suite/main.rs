//! The engine's integration tests as one test binary (`cargo test -p tinylm-engine --test suite
//! [module::]`): each file here is a module. As separate binaries (one per file) a clean
//! `cargo test` compiled and linked the engine's dependencies into ~40 executables, which cost
//! more of the 2-core CI's time than the tests' own code. Kept apart, in `engine/tests/`: the
//! tests with their own global allocator (`fuzz_found`, `pretrain_train`), those that change the
//! process's environment or lose their GPU device (`gpu_fallback`, `gpu_device_lost`), and those
//! also built for wasm32 (`fast_kernels`, `pretrain_wasm`, `gemm`, `gpu_browser`,
//! `gpu_lora_browser`, `wasm_bench`).

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod blocks_cpu;
mod cpu_batch;
mod cpu_threads;
mod fast_cpu;
mod formats;
mod gguf_hf;
mod gpu_generate;
mod gpu_interp;
mod gpu_kernels;
mod gpu_lora_kernels;
mod gpu_lora_train;
mod gpu_model;
mod gpu_pretrain;
mod gpu_quantized;
mod gpu_sequences;
mod gpu_tune;
mod hf_tokenizer;
mod inspect;
mod interp;
mod loaded_model;
mod lora_files;
mod lora_gradcheck;
mod lora_kernels;
mod lora_reference;
mod lora_resume;
mod lora_threads;
mod lora_train;
mod pretrain_reference;
mod q8_cpu;
mod quantized_base;
mod reference;
mod sampler;
mod shapes;
mod sniff;
mod tokenizer;
