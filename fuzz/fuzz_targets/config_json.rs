//! config.json alone (the reader stops at the missing weights once the config is read).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tinylm_engine::{LoadedModel, NamedFile};

fuzz_target!(|data: &[u8]| {
    let _ = LoadedModel::open(&[NamedFile::new("config.json", data)]);
});
