//! Getting file bytes into the worker: downloads from this site (with progress) and files the
//! reader picked. Sizes are checked before anything large is allocated.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{File, ReadableStreamDefaultReader, Response};

use super::host::{now_ms, post, scope};
use super::words;
use crate::protocol::FromWorker;

/// Largest model file we try to hold. The worker's wasm memory (at most 4 GiB, often less on
/// phones) must also fit the unpacked weights and the KV cache next to the file's bytes.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Progress messages are sent at most this often.
const PROGRESS_MS: f64 = 50.0;

/// Downloads `url` (relative to the worker, which sits next to the page) as bytes.
pub async fn download(url: &str, label: &str) -> Result<Vec<u8>, String> {
    let resp = JsFuture::from(scope().fetch_with_str(url))
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

/// Reads a picked or dropped file.
pub async fn read_file(file: &File, label: &str) -> Result<Vec<u8>, String> {
    let size = file.size() as u64;
    if size > MAX_FILE_BYTES {
        return Err(words::too_large(&file.name(), size));
    }
    progress(label, 0, Some(size));
    let buf = JsFuture::from(file.array_buffer())
        .await
        .map_err(|_| format!("Could not read the file “{}”: the browser refused (was it moved or deleted?).", file.name()))?;
    let bytes = Uint8Array::new(&buf).to_vec();
    progress(label, size, Some(size));
    Ok(bytes)
}

pub fn progress(label: &str, done: u64, total: Option<u64>) {
    post(&FromWorker::Progress { label: label.to_string(), done, total });
}
