//! The worker's side of the browser: posting messages, the clock, and yielding to the event
//! loop so a Stop sent by the page is seen between tokens.

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, MessageChannel};

use crate::protocol::FromWorker;

pub fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

pub fn post(msg: &FromWorker) {
    // Posting only fails for uncloneable values; a string always clones.
    let _ = scope().post_message(&JsValue::from_str(&msg.to_json()));
}

pub fn now_ms() -> f64 {
    scope().performance().map_or_else(js_sys::Date::now, |p| p.now())
}

thread_local! {
    /// One channel reused for every yield (ports are cheap but not free).
    static CHANNEL: Option<MessageChannel> = MessageChannel::new().ok();
}

/// Lets queued messages run, then resumes. A MessageChannel round trip is a task like a
/// timer but without the 4 ms clamp that nested timers get.
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

/// Splits an incoming message into its JSON text and any attached values (files).
pub fn unpack(data: JsValue) -> Option<(String, Vec<JsValue>)> {
    if let Some(text) = data.as_string() {
        return Some((text, Vec::new()));
    }
    let parts: Array = data.dyn_into().ok()?;
    let text = parts.get(0).as_string()?;
    Some((text, parts.iter().skip(1).collect()))
}
