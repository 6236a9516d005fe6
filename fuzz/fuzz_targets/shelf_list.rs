//! A model shelf list (`shelf.json`): a teacher's edited list is read by the page and `tinylm pull`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tinylm_engine::shelf::Shelf;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(shelf) = Shelf::parse(text, None, 1 << 30) {
            for m in &shelf.models {
                for f in m.files_in_order() {
                    let _ = (shelf.web_address(f), f.file_name());
                }
            }
        }
    }
});
