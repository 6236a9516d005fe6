//! The engine worker: loads models and writes stories off the page's thread, so the page never
//! freezes. A thin router (`router`) hands each `protocol` message to its feature (`models`,
//! `generate`, `inspect`, `train`, `bench`), each given the session's loaded model; shelf
//! downloads (`shelf`) run beside them.

mod backends;
mod bench;
mod bridge;
mod build;
mod cancel;
mod compare;
mod experiments;
mod fetch;
mod generate;
mod inbox;
mod inspect;
mod models;
mod router;
mod session;
mod shelf;
mod slices;
mod speed;
mod store;
mod threads;
mod train;
mod tuning;
mod warmup;

use cancel::Cancels;
use inbox::{Inbox, Job, Work};
use router::{on_arrival, Router};

use crate::protocol::shelf::ShelfCmd;
use crate::protocol::{FromWorker, ToWorker};

/// Entry point of the worker binary.
pub fn start() {
    console_error_panic_hook::set_once();
    // The page loads the bundled model first, always: its files are asked for now, beside the
    // page's own start, rather than when the page's Load arrives.
    fetch::prefetch(&[models::BUNDLED_MODEL, models::BUNDLED_TOKENIZER]);
    let inbox = Inbox::default();
    let cancels = Cancels::default();
    {
        let (inbox, cancels) = (inbox.clone(), cancels.clone());
        bridge::listen(move |msg| match on_arrival(msg, &cancels) {
            // A download is I/O, not engine work: it starts at once, beside the queue.
            Some(ToWorker::Shelf(ShelfCmd::Download(d))) => shelf::spawn(d, cancels.shelf.clone()),
            Some(msg) => inbox.push(Job { msg: Work::Page(msg), at: bridge::now_ms() }),
            None => {}
        });
    }
    let mut router = Router::new(cancels, inbox.clone());
    wasm_bindgen_futures::spawn_local(async move {
        loop {
            let job = inbox.next().await;
            router.handle(job).await;
        }
    });
    bridge::post(&FromWorker::Started);
}
