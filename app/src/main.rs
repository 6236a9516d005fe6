//! The page: the UI of TinyLM Lab. The engine runs in the worker (`src/bin/worker.rs`).

fn main() {
    #[cfg(target_arch = "wasm32")]
    tinylm_app::page::start();
}
