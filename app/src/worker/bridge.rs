//! The worker's side of the browser: messages in and out (typed JS values, `protocol::wire`,
//! with their buffers transferred), the clock, and yielding to the event loop so a Stop sent by
//! the page is seen between steps of work.

use gloo::events::EventListener;
use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, MessageChannel, MessageEvent};

use crate::protocol::{wire, FromWorker, ToWorker};

pub fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Posts `msg`, transferring its buffers.
pub fn post(msg: &FromWorker) {
    let sent = wire::encode(msg)
        .and_then(|(value, transfer)| scope().post_message_with_transfer(&value, &transfer).map_err(|e| format!("{e:?}")));
    if let Err(e) = sent {
        web_sys::console::error_1(&e.into());
    }
}

/// Calls `on_message` with each message the page sends, for as long as the worker lives.
pub fn listen(mut on_message: impl FnMut(ToWorker) + 'static) {
    let listener = EventListener::new(&scope(), "message", move |ev| {
        let Some(ev) = ev.dyn_ref::<MessageEvent>() else { return };
        match wire::decode(ev.data()) {
            Ok(msg) => on_message(msg),
            Err(e) => web_sys::console::error_1(&e.into()),
        }
    });
    listener.forget();
}

pub fn now_ms() -> f64 {
    scope().performance().map_or_else(js_sys::Date::now, |p| p.now())
}

thread_local! {
    /// One channel reused for every yield (ports are cheap but not free).
    static CHANNEL: Option<MessageChannel> = MessageChannel::new().ok();
}

/// Lets queued messages run, then resumes. A MessageChannel round trip is a task like a timer
/// but without the 4 ms clamp that nested timers (gloo's `TimeoutFuture` too) get.
pub async fn yield_now() {
    let promise = Promise::new(&mut |resolve, _| {
        CHANNEL.with(|c| match c {
            Some(c) => {
                c.port1().set_onmessage(Some(&resolve));
                let _ = c.port2().post_message(&JsValue::UNDEFINED);
            }
            None => {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        })
    });
    let _ = JsFuture::from(promise).await;
}
