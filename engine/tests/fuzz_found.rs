//! The inputs the fuzzers found (fuzz/, committed in tests/fixtures/fuzz_found), each now
//! handled: a tokenizer.bin too short for run.c's byte fallback (it encoded to ids past its
//! vocabulary and panicked; such bytes are now <unk>), a tokenizer.json whose template names an undefined special token
//! (the tokenizers crate panicked when encoding; again under a misspelt processor type), a GGUF whose metadata implies 6.4 GB of
//! weights it does not hold (it was allocated before any tensor was looked up), and a GGUF
//! claiming 65,535 layers (the check for room before loading looked up every layer's names).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use tinylm_engine::{LoadedModel, NamedFile, Tokenizer};

/// Records the largest single allocation.
struct Largest;
static LARGEST: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LARGEST.fetch_max(n, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static GLOBAL: Largest = Largest;

fn found(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/fuzz_found/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn a_tokenizer_bin_without_the_byte_pieces_encodes_unknown_bytes_as_unk() {
    let t = Tokenizer::from_bytes(&found("tokenizer_short_vocab.bin"), "tok.bin").unwrap();
    assert!(t.vocab_size() < 259, "the case is a vocabulary without all byte pieces");
    // 🙂 is F0 9F 99 82: F0 + 3 is past this vocabulary (215 pieces), so it is <unk>; the others
    // are run.c's byte + 3.
    let ids = t.encode("Once upon a time 🙂", false, false);
    assert!(ids.iter().all(|&id| (id as usize) < t.vocab_size()), "{ids:?}");
    assert_eq!(t.vocab_size(), 215);
    assert_eq!(&ids[ids.len() - 4..], [0, 0x9f + 3, 0x99 + 3, 0x82 + 3]);
    assert_eq!(t.encode_reference("🙂"), t.encode("🙂", false, false));
}

#[test]
fn a_tokenizer_json_whose_template_names_an_undefined_token_is_refused() {
    let e = Tokenizer::from_json(&found("tokenizer_template_gap.json"), "tokenizer.json").unwrap_err().to_string();
    assert!(e.contains("does not define"), "{e}");
}

/// The same gap under a misspelt processor type ("]emplateProcessing"), which the tokenizers
/// crate still reads as a template.
#[test]
fn a_template_gap_under_a_misspelt_type_is_refused_too() {
    let e = Tokenizer::from_json(&found("tokenizer_template_misnamed.json"), "tokenizer.json").unwrap_err().to_string();
    assert!(e.contains("does not define"), "{e}");
}

#[test]
fn a_gguf_with_a_forged_shape_allocates_only_what_it_holds() {
    let bytes = found("gguf_forged_shape.gguf");
    let Err(e) = LoadedModel::open(&[NamedFile { name: "m.gguf", bytes: &bytes }]) else { panic!("a forged file was opened") };
    let e = e.to_string();
    assert!(e.contains("m.gguf"), "{e}");
    // The file is 34 KB; its metadata implies 6.4 GB. Nothing near that may be asked for.
    // (The counter is the whole binary's; the other tests here allocate a few KB.)
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest < 64 << 20, "an allocation of {largest} bytes");
}

/// A GGUF whose metadata says 65,535 layers but holds tensors for a few: refused at the first
/// missing tensor. (The memory check before loading once looked up every name of every layer
/// first, which took the fuzzer's 10 s limit.)
#[test]
fn a_gguf_claiming_65535_layers_is_refused_at_its_first_missing_tensor() {
    let bytes = found("gguf_many_layers.gguf");
    let Err(e) = LoadedModel::open(&[NamedFile { name: "m.gguf", bytes: &bytes }]) else { panic!("a forged file was opened") };
    let e = e.to_string();
    assert!(e.contains("m.gguf") && e.contains("has no tensor blk."), "{e}");
}
