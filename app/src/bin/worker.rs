//! The engine worker, started by the page as `worker_loader.js` (Trunk's loader shim).

fn main() {
    #[cfg(target_arch = "wasm32")]
    tinylm_app::worker::start();
}
