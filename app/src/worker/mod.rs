//! The engine worker: loads models and writes stories off the page's thread, so the page never
//! freezes. It speaks only `protocol` messages.

mod backends;
mod bench;
mod engine;
mod fetch;
mod host;
mod inbox;
mod inspect;
mod run;
mod store;
mod train;
mod tuning;
pub mod words;

use std::cell::Cell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use web_sys::MessageEvent;

use crate::protocol::{FromWorker, ToWorker};
use engine::Engine;
use inbox::{Inbox, Job};

/// Entry point of the worker binary.
pub fn start() {
    console_error_panic_hook::set_once();
    let inbox = Inbox::default();
    let stop: run::StopFlag = Rc::new(Cell::new(0));
    let on_message = {
        let (inbox, stop) = (inbox.clone(), stop.clone());
        Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| receive(ev.data(), &inbox, &stop))
    };
    host::scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The worker lives as long as the page: the handler is never freed.
    on_message.forget();
    let mut engine = Engine::new(stop);
    wasm_bindgen_futures::spawn_local(async move {
        loop {
            let job = inbox.next().await;
            engine.handle(job).await;
        }
    });
    host::post(&FromWorker::Started);
}

/// Stop takes effect at once (the running job sees it at its next yield); everything else
/// waits its turn.
fn receive(data: JsValue, inbox: &Inbox, stop: &run::StopFlag) {
    let Some((text, files)) = host::unpack(data) else { return };
    match ToWorker::from_json(&text) {
        Ok(ToWorker::Stop { run }) => stop.set(stop.get().max(run)),
        Ok(ToWorker::Train(cmd)) if train::control(&cmd) => {}
        Ok(ToWorker::InspectCtl(ctl)) if inspect::control(&ctl) => {}
        Ok(msg) => inbox.push(Job { msg, files, at: host::now_ms() }),
        Err(e) => web_sys::console::error_1(&e.into()),
    }
}
