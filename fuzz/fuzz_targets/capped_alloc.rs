//! A cap on any one allocation, for runs without a sanitizer: libFuzzer's `-malloc_limit_mb`
//! needs a sanitizer's malloc hooks, so without ASan (several times the inputs a second) this
//! allocator enforces the same rule — an allocation over `LIMIT` aborts, which libFuzzer
//! reports as a crash with its input. No crate does this; it is a few lines over `System`.
use std::alloc::{GlobalAlloc, Layout, System};

const LIMIT: usize = 512 << 20;

pub struct Capped;

fn check(size: usize) {
    if size > LIMIT {
        eprintln!("an allocation of {size} bytes, over the fuzzing cap of {LIMIT}");
        std::process::abort();
    }
}

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}
