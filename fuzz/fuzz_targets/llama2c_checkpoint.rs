//! llama2.c checkpoints (v0, v1, v2).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tinylm_engine::checkpoint;

fuzz_target!(|data: &[u8]| {
    let _ = checkpoint::read(data, "model.bin");
});
