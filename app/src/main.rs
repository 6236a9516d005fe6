//! The page: the UI of TinyLM Lab. The engine runs in the worker (`src/bin/worker.rs`).

fn main() {
    tinylm_app::page::start();
}
