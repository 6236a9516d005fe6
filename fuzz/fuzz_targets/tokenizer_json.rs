//! tokenizer.json: read, encode a text with specials, decode.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod capped_alloc;
#[global_allocator]
static ALLOC: capped_alloc::Capped = capped_alloc::Capped;

use tinylm_engine::Tokenizer;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tokenizer::from_json(data, "tokenizer.json") {
        let ids = t.encode("Once upon a time, 123 🙂 <s>", true, true);
        let _ = t.decode_all(&ids);
    }
});
