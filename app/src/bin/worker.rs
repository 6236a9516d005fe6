//! The engine worker, started by the page as `worker_loader.js` (Trunk's loader shim).

fn main() {
    tinylm_app::worker::start();
}
