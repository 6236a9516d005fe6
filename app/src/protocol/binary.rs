//! Binary payloads inside messages. In the browser they are JS typed arrays, so they cross to
//! the other thread as transferred ArrayBuffers (`wire`) and a model's bytes never pass through
//! the page's own memory; natively (the tests) plain vectors.

use serde::{Deserialize, Serialize};

/// Bytes: a model or tokenizer file, an adapter's safetensors, AdamW's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bytes(
    #[cfg(target_arch = "wasm32")]
    #[serde(with = "serde_wasm_bindgen::preserve")]
    js_sys::Uint8Array,
    #[cfg(not(target_arch = "wasm32"))] Vec<u8>,
);

/// f32 values: an inspection's attention, logits and rollout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Floats(
    #[cfg(target_arch = "wasm32")]
    #[serde(with = "serde_wasm_bindgen::preserve")]
    js_sys::Float32Array,
    #[cfg(not(target_arch = "wasm32"))] Vec<f32>,
);

#[cfg(target_arch = "wasm32")]
impl Bytes {
    /// Copies `bytes` out of this thread's memory.
    pub fn from_slice(bytes: &[u8]) -> Bytes {
        Bytes(js_sys::Uint8Array::from(bytes))
    }
    /// Bytes already in JS memory (a file read by the browser), without copying.
    pub fn from_array(a: js_sys::Uint8Array) -> Bytes {
        Bytes(a)
    }
    pub fn array(&self) -> &js_sys::Uint8Array {
        &self.0
    }
    /// A copy in this thread's memory.
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }
    pub fn len(&self) -> usize {
        self.0.length() as usize
    }
    /// A copy with a buffer of its own: sending a message transfers (detaches) the buffers in
    /// it, so a sender that keeps using the bytes sends a copy.
    pub fn copy(&self) -> Bytes {
        Bytes(self.0.slice(0, self.0.length()))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Bytes {
    pub fn from_slice(bytes: &[u8]) -> Bytes {
        Bytes(bytes.to_vec())
    }
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.clone()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn copy(&self) -> Bytes {
        self.clone()
    }
}

impl Bytes {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(target_arch = "wasm32")]
impl Floats {
    pub fn from_slice(values: &[f32]) -> Floats {
        Floats(js_sys::Float32Array::from(values))
    }
    /// A copy in this thread's memory.
    pub fn to_vec(&self) -> Vec<f32> {
        self.0.to_vec()
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Floats {
    pub fn from_slice(values: &[f32]) -> Floats {
        Floats(values.to_vec())
    }
    pub fn to_vec(&self) -> Vec<f32> {
        self.0.clone()
    }
}

/// Equal contents (the tests compare messages).
impl PartialEq for Bytes {
    fn eq(&self, other: &Bytes) -> bool {
        self.to_vec() == other.to_vec()
    }
}

impl PartialEq for Floats {
    fn eq(&self, other: &Floats) -> bool {
        self.to_vec() == other.to_vec()
    }
}
