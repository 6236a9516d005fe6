//! llama2.c tokenizer.bin: read, encode (fast and run.c's reference merge), decode.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tinylm_engine::Tokenizer;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tokenizer::from_bytes(data, "tokenizer.bin") {
        let ids = t.encode("Once upon a time 🙂", true, true);
        let _ = t.encode_reference("abc");
        let _ = t.decode_all(&ids);
    }
});
