//! The Origin Private File System layout: `tinylm/manifest.json` and `tinylm/items/<id>/<n>`.

use js_sys::Uint8Array;
use wasm_bindgen::JsValue;

use super::js::{call_await, get, options, storage_manager};
use super::manifest::{Entry, Manifest};

const ROOT: &str = "tinylm";
const MANIFEST: &str = "manifest.json";
const ITEMS: &str = "items";
/// Bytes handed to one `write()`: big files go in pieces, never as one huge copy.
const CHUNK: u32 = 8 << 20;

pub async fn root() -> Result<JsValue, JsValue> {
    let opfs = call_await(&storage_manager()?, "getDirectory", &[]).await?;
    subdir(&opfs, ROOT).await
}

pub async fn subdir(dir: &JsValue, name: &str) -> Result<JsValue, JsValue> {
    call_await(dir, "getDirectoryHandle", &[name.into(), options("create", true)]).await
}

pub async fn items() -> Result<JsValue, JsValue> {
    subdir(&root().await?, ITEMS).await
}

/// Writes `data` to `dir/name` through a writable stream. Chromium applies it only on
/// `close()`; on failure the stream is aborted so nothing half-written stays behind.
pub async fn write_file(dir: &JsValue, name: &str, data: &Uint8Array) -> Result<(), JsValue> {
    let handle = call_await(dir, "getFileHandle", &[name.into(), options("create", true)]).await?;
    let stream = call_await(&handle, "createWritable", &[]).await?;
    let result = write_chunks(&stream, data).await;
    match result {
        Ok(()) => call_await(&stream, "close", &[]).await.map(drop),
        Err(e) => {
            let _ = call_await(&stream, "abort", &[]).await;
            Err(e)
        }
    }
}

async fn write_chunks(stream: &JsValue, data: &Uint8Array) -> Result<(), JsValue> {
    let len = data.length();
    let mut at = 0;
    while at < len {
        let end = (at + CHUNK).min(len);
        call_await(stream, "write", &[data.subarray(at, end).into()]).await?;
        at = end;
    }
    Ok(())
}

/// The `File` at `dir/name`.
pub async fn file(dir: &JsValue, name: &str) -> Result<web_sys::File, JsValue> {
    let handle = call_await(dir, "getFileHandle", &[name.into()]).await?;
    Ok(wasm_bindgen::JsCast::unchecked_into(call_await(&handle, "getFile", &[]).await?))
}

pub async fn remove(dir: &JsValue, name: &str) -> Result<(), JsValue> {
    match call_await(dir, "removeEntry", &[name.into(), options("recursive", true)]).await {
        Err(e) if super::js::error_name(&e) != "NotFoundError" => Err(e),
        _ => Ok(()),
    }
}

/// Names in a directory (its async `keys()` iterator, drained).
pub async fn names(dir: &JsValue) -> Result<Vec<String>, JsValue> {
    let iter = super::js::call(dir, "keys", &[])?;
    let mut out = Vec::new();
    loop {
        let step = call_await(&iter, "next", &[]).await?;
        if get(&step, "done")?.is_truthy() {
            return Ok(out);
        }
        out.extend(get(&step, "value")?.as_string());
    }
}

pub async fn read_manifest(root: &JsValue) -> Result<Manifest, JsValue> {
    match file(root, MANIFEST).await {
        Ok(f) => {
            let text = call_await(f.as_ref(), "text", &[]).await?;
            Ok(Manifest::parse(&text.as_string().unwrap_or_default()))
        }
        Err(e) if super::js::error_name(&e) == "NotFoundError" => Ok(Manifest::default()),
        Err(e) => Err(e),
    }
}

pub async fn write_manifest(root: &JsValue, m: &Manifest) -> Result<(), JsValue> {
    let text = m.to_json();
    write_file(root, MANIFEST, &Uint8Array::from(text.as_bytes())).await
}

/// Lists `entry` (its files already written) in the manifest: written last, so an item is
/// listed only once it is whole.
pub async fn commit_entry(entry: &Entry) -> Result<(), JsValue> {
    let root = root().await?;
    let mut m = read_manifest(&root).await?;
    m.commit(entry.clone());
    write_manifest(&root, &m).await
}
