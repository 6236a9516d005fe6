//! The page's end of the worker: starts it, queues messages until it listens, and hands every
//! reply to the router it was given (the client knows no view, so the page's modules import
//! it and never the other way round). A worker that dies (out of memory, say) is reported to
//! the crash handler, which may start it again.

use std::rc::Rc;

use gloo::events::EventListener;
use js_sys::{Function, Reflect};
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{ErrorEvent, MessageEvent, Worker};

use crate::protocol::{wire, FromWorker, ToWorker};

/// Trunk's loader shim for the worker binary, next to the page: the plain, one-thread engine.
const PLAIN_WORKER_URL: &str = "worker_loader.js";

/// The engine worker's file as boot.js chose it (the threaded build where the page is
/// cross-origin isolated), else the plain one. A restart after a crash takes the plain one, so
/// a threaded build that cannot start is not started again and again.
fn worker_url(restart: bool) -> String {
    let chosen = Reflect::get(&js_sys::global(), &JsValue::from_str("tinylmWorkerUrl")).ok().and_then(|v| v.as_string());
    match chosen {
        Some(url) if !restart => url,
        _ => PLAIN_WORKER_URL.into(),
    }
}

/// The worker boot.js started (`globalThis.tinylmEarlyWorker`), taken once: it and its holder.
fn early_worker() -> Option<(Worker, JsValue)> {
    let global = js_sys::global();
    let key = JsValue::from_str("tinylmEarlyWorker");
    let boot = Reflect::get(&global, &key).ok().filter(|b| b.is_object())?;
    let _ = Reflect::delete_property(global.unchecked_ref::<js_sys::Object>(), &key);
    let worker = Reflect::get(&boot, &"worker".into()).ok()?.dyn_into::<Worker>().ok()?;
    Some((worker, boot))
}

pub type Router = Rc<dyn Fn(FromWorker)>;
/// A view's handler of the worker's messages (each view sees every message and takes its own).
pub type Handler = Box<dyn Fn(&FromWorker)>;
pub type OnCrash = Rc<dyn Fn(String)>;

struct Inner {
    worker: Option<Worker>,
    listening: bool,
    /// Messages (and the buffers they transfer) sent before the worker listens.
    queue: Vec<(JsValue, js_sys::Array)>,
    restarts: u32,
    router: Option<Router>,
    on_crash: Option<OnCrash>,
    _listeners: Vec<EventListener>,
}

/// A handle on the worker, cheap to copy into closures (it lives in the page state, `Ctx`).
#[derive(Clone, Copy)]
pub struct Client(StoredValue<Inner, LocalStorage>);

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with no worker yet: messages sent now wait for `start`.
    pub fn new() -> Client {
        let inner = Inner {
            worker: None,
            listening: false,
            queue: Vec::new(),
            restarts: 0,
            router: None,
            on_crash: None,
            _listeners: Vec::new(),
        };
        Client(StoredValue::new_local(inner))
    }

    /// Where replies go.
    pub fn set_router(&self, router: Router) {
        self.0.update_value(|c| c.router = Some(router));
    }

    /// Called with the browser's words when the worker dies.
    pub fn set_on_crash(&self, on_crash: OnCrash) {
        self.0.update_value(|c| c.on_crash = Some(on_crash));
    }

    /// Starts a fresh worker after a crash (messages wait for it); returns the restarts so far.
    pub fn restart(&self) -> Result<u32, String> {
        // What waited for the dead worker (the page's first load, when it died as it started) is
        // not sent to the new one: the caller asks it for what the page needs now.
        self.0.update_value(|c| {
            c.restarts += 1;
            c.queue.clear();
        });
        self.start()?;
        Ok(self.0.with_value(|c| c.restarts))
    }

    pub fn restarts(&self) -> u32 {
        self.0.with_value(|c| c.restarts)
    }

    /// Starts the worker (replacing any old one). The first time, it adopts the worker boot.js
    /// started before the page's wasm (see `early_worker`).
    pub fn start(&self) -> Result<(), String> {
        let early = early_worker();
        let worker = match &early {
            Some((w, _)) => w.clone(),
            None => Worker::new(&worker_url(self.restarts() > 0))
                .map_err(|_| "This browser could not start the engine (Web Workers are blocked).".to_string())?,
        };
        let this = *self;
        let on_message = EventListener::new(&worker, "message", move |ev| {
            let Some(ev) = ev.dyn_ref::<MessageEvent>() else { return };
            match wire::decode::<FromWorker>(ev.data()) {
                Ok(FromWorker::Started) => this.listening(),
                Ok(msg) => this.route(msg),
                Err(e) => web_sys::console::error_1(&e.into()),
            }
        });
        let on_error = EventListener::new(&worker, "error", move |ev| {
            let what = ev.dyn_ref::<ErrorEvent>().map(|e| e.message()).unwrap_or_default();
            if let Some(crash) = this.0.with_value(|c| c.on_crash.clone()) {
                crash(what);
            }
        });
        let old = self.0.try_update_value(|c| {
            c.listening = false;
            c._listeners = vec![on_message, on_error];
            c.worker.replace(worker)
        });
        if let Some(Some(old)) = old {
            old.terminate();
        }
        // Now that the page listens, the early worker's first messages (its Started) come in.
        if let Some((_, boot)) = early {
            if let Ok(adopt) = Reflect::get(&boot, &"adopt".into()).and_then(|f| f.dyn_into::<Function>()) {
                let _ = adopt.call0(&boot);
            }
        }
        Ok(())
    }

    fn listening(&self) {
        self.0.update_value(|c| {
            c.listening = true;
            if let Some(w) = &c.worker {
                for (data, transfer) in c.queue.drain(..) {
                    let _ = w.post_message_with_transfer(&data, &transfer);
                }
            }
        });
    }

    fn route(&self, msg: FromWorker) {
        if let Some(router) = self.0.with_value(|c| c.router.clone()) {
            router(msg);
        }
    }

    /// Sends a message, transferring its buffers (the sender gives them up).
    pub fn send(&self, msg: &ToWorker) {
        let (data, transfer) = match wire::encode(msg) {
            Ok(m) => m,
            Err(e) => return web_sys::console::error_1(&e.into()),
        };
        self.0.update_value(|c| match (&c.worker, c.listening) {
            (Some(w), true) => {
                let _ = w.post_message_with_transfer(&data, &transfer);
            }
            _ => c.queue.push((data, transfer)),
        });
    }
}
