//! A GGUF file: header, metadata, tensor infos, tensors (dequantized) and tokenizer metadata.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod capped_alloc;
#[global_allocator]
static ALLOC: capped_alloc::Capped = capped_alloc::Capped;

use tinylm_engine::{LoadedModel, NamedFile};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = LoadedModel::open(&[NamedFile::new("fuzz.gguf", data)]) {
        if let Some(t) = m.tokenizer() {
            let ids = t.encode("Once upon a time, 123 🙂", true, false);
            let _ = t.decode_all(&ids);
        }
    }
});
