//! Downloads from this site into the worker, with progress. Sizes are checked before anything
//! large is allocated. (Picked files arrive as bytes in the Load message.)

use std::cell::RefCell;

use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

use super::bridge::{now_ms, post, scope};
use crate::protocol::{FromWorker, MAX_FILE_BYTES};
use crate::words;

/// Progress messages are sent at most this often.
const PROGRESS_MS: f64 = 50.0;

thread_local! {
    /// Requests started before anyone asked (`prefetch`), by URL; each is used once.
    static EARLY: RefCell<Vec<(&'static str, Promise)>> = const { RefCell::new(Vec::new()) };
}

/// Starts fetching `urls` now, so a later `download` of one finds it under way: the worker asks
/// for the bundled model while the page is still starting (its Load comes later).
pub fn prefetch(urls: &[&'static str]) {
    let requests = urls.iter().map(|&u| {
        let p = scope().fetch_with_str(u);
        // Handled here too, so a failure unused yet is no "uncaught" error; `download` sees it.
        let noop = Closure::<dyn FnMut(JsValue)>::new(|_| {});
        let _ = p.catch(&noop);
        noop.forget();
        (u, p)
    });
    EARLY.with(|e| e.borrow_mut().extend(requests));
}

/// The request for `url`: the prefetched one if there is one, else a new one.
fn request(url: &str) -> Promise {
    let early = EARLY.with(|e| {
        let mut e = e.borrow_mut();
        e.iter().position(|(u, _)| *u == url).map(|i| e.swap_remove(i).1)
    });
    early.unwrap_or_else(|| scope().fetch_with_str(url))
}

/// Downloads `url` (relative to the worker, which sits next to the page) as bytes.
pub async fn download(url: &str, label: &str) -> Result<Vec<u8>, String> {
    let resp = JsFuture::from(request(url))
        .await
        .map_err(|_| format!("Could not download {url}: the server did not answer (network error)."))?;
    let resp: Response = resp.dyn_into().map_err(|_| format!("Could not download {url}: no response."))?;
    if !resp.ok() {
        return Err(format!("Could not download {url}: the server answered {} {}.", resp.status(), resp.status_text()));
    }
    let total = resp.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = total.filter(|&n| n > MAX_FILE_BYTES) {
        if let Some(body) = resp.body() {
            let _ = body.cancel();
        }
        return Err(words::too_large(url, n));
    }
    let Some(body) = resp.body() else { return Ok(Vec::new()) };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let broke = || format!("Could not download {url}: the transfer broke off.");
    let mut bytes = Vec::with_capacity(total.unwrap_or(0) as usize);
    let mut last = 0.0;
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|_| broke())?;
        if Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true) {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(|_| broke())?.unchecked_into();
        if bytes.len() as u64 + value.length() as u64 > MAX_FILE_BYTES {
            let _ = reader.cancel();
            return Err(words::too_large(url, bytes.len() as u64 + value.length() as u64));
        }
        let at = bytes.len();
        bytes.resize(at + value.length() as usize, 0);
        value.copy_to(&mut bytes[at..]);
        if now_ms() - last >= PROGRESS_MS {
            last = now_ms();
            progress(label, bytes.len() as u64, total);
        }
    }
    progress(label, bytes.len() as u64, total.or(Some(bytes.len() as u64)));
    Ok(bytes)
}

pub fn progress(label: &str, done: u64, total: Option<u64>) {
    post(&FromWorker::Progress { label: label.to_string(), done, total });
}
