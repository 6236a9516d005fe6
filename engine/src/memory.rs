//! Room for a large allocation, asked before making it. In the browser the engine's memory is
//! one wasm32 linear memory, which can never pass 4 GiB (the threaded build declares that
//! maximum; the plain build's address space ends there): an allocation past it aborts the
//! worker, losing what it held. So a model too big for what is left (`check_model`, asked by every
//! reader before it copies weights) and the big copies a caller can do without (the f32 copy of
//! a quantized model for the GPU) are refused in words first.
//! Natively the operating system decides, and nothing is refused here.

use crate::config::Config;
use crate::error::{Error, Result};

/// wasm32's whole address space.
pub const WASM_CEILING: u64 = 4 << 30;

/// Bytes the process's memory holds now and the most it can grow to; `None` natively (unless
/// a test `pretend`s).
pub fn usage() -> Option<(u64, u64)> {
    #[cfg(target_arch = "wasm32")]
    {
        let pages = core::arch::wasm32::memory_size(0) as u64;
        Some((pages * 65536, WASM_CEILING))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        PRETEND.with(|p| p.get())
    }
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static PRETEND: std::cell::Cell<Option<(u64, u64)>> = const { std::cell::Cell::new(None) };
}

/// Natively, on this thread: `usage` says `(used, ceiling)` as wasm32 would, so tests reach the
/// refusals without 4 GiB models; `None` restores the native answer.
#[cfg(not(target_arch = "wasm32"))]
pub fn pretend(usage: Option<(u64, u64)>) {
    PRETEND.with(|p| p.set(usage));
}

/// `Error::OutOfMemory` when `bytes` more (for `what`) would not fit here; see `fits`.
pub fn check_room(what: &str, bytes: u64) -> Result<()> {
    match usage() {
        Some((used, ceiling)) => fits(what, bytes, used, ceiling),
        None => Ok(()),
    }
}

/// Bytes of a model's context cache (keys and values of every layer, f32), made when it runs.
pub fn cache_bytes(c: &Config) -> u64 {
    2 * 4 * (c.n_layers as u64) * (c.seq_len as u64) * (c.kv_dim() as u64)
}

/// `Error::OutOfMemory` when a model's weights as they will be held (`weights` bytes) and its
/// context cache would not fit here: each reader asks once its header is read, before it copies
/// any weight, so a model too big for the page is refused in words, not by a crashed worker.
pub fn check_model(file: &str, weights: u64, c: &Config) -> Result<()> {
    check_room(&format!("“{file}” (its weights and its context's cache)"), weights + cache_bytes(c))
}

/// `Error::OutOfMemory` when `bytes` more than `used` would pass `ceiling`. The free part of the
/// memory already grown is counted as used: an allocator may not find `bytes` in one piece there.
pub fn fits(what: &str, bytes: u64, used: u64, ceiling: u64) -> Result<()> {
    let room = ceiling.saturating_sub(used);
    if bytes <= room {
        return Ok(());
    }
    Err(Error::OutOfMemory { what: what.to_string(), needed: bytes, room })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_past_the_ceiling_is_refused_in_words() {
        assert!(fits("x", 1 << 30, 1 << 30, WASM_CEILING).is_ok());
        assert!(fits("x", 3 << 30, 1 << 30, WASM_CEILING).is_ok(), "exactly the room left");
        let e = fits("an f32 copy of the weights for the GPU", 4_870_000_000, 1_200_000_000, WASM_CEILING).unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { needed: 4_870_000_000, room: 3_094_967_296, .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "an f32 copy of the weights for the GPU would take 4.87 GB, but this page's memory has room for 3.09 GB more"
        );
        // More in use than the ceiling (cannot happen in wasm32, but no underflow).
        assert!(fits("x", 1, 5 << 30, WASM_CEILING).is_err());
        assert!(fits("x", 683_000, WASM_CEILING - 12_300_000, WASM_CEILING).is_ok());
        let small = fits("a copy", 12_300_000, WASM_CEILING - 683_000, WASM_CEILING).unwrap_err();
        assert_eq!(small.to_string(), "a copy would take 12 MB, but this page's memory has room for 683 KB more");
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn natively_nothing_is_refused_unless_pretended() {
        assert_eq!(usage(), None);
        assert!(check_room("x", u64::MAX).is_ok());
        pretend(Some((1 << 30, WASM_CEILING)));
        assert!(check_room("x", 3 << 30).is_ok() && check_room("x", (3 << 30) + 1).is_err());
        pretend(None);
        assert!(check_room("x", u64::MAX).is_ok());
    }
}
