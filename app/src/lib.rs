//! TinyLM Lab in the browser. Two programs share this crate: the page (`bin app`, a Leptos UI)
//! and the engine worker (`bin worker`), which loads models and writes stories off the page's
//! thread. They talk only through the typed messages in `protocol`. `train` and `words` are the
//! pure parts both use; `storage` keeps files on the device.

pub mod link;
#[cfg(target_arch = "wasm32")]
pub mod page;
pub mod pick;
pub mod plot;
pub mod protocol;
pub mod settings;
pub mod shelf;
pub mod speed;
pub mod storage;
pub mod train;
pub mod words;
pub mod worker;
