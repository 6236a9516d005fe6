//! Thin dynamic calls into the browser (OPFS, SubtleCrypto, Web Locks). They go through
//! `Reflect` so the same code runs in the page and in a worker, without web-sys features.

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

pub fn get(obj: &JsValue, key: &str) -> Result<JsValue, JsValue> {
    Reflect::get(obj, &JsValue::from_str(key))
}

/// `obj.name(...args)`.
pub fn call(obj: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = get(obj, name)?.dyn_into().map_err(|_| JsValue::from_str(&format!("no {name}()")))?;
    f.apply(obj, &args.iter().collect::<Array>())
}

/// `await obj.name(...args)`.
pub async fn call_await(obj: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let value = call(obj, name, args)?;
    JsFuture::from(Promise::resolve(&value)).await
}

/// `{ key: value }`.
pub fn options(key: &str, value: impl Into<JsValue>) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &key.into(), &value.into());
    o.into()
}

/// `navigator.storage` of the page or the worker.
pub fn storage_manager() -> Result<JsValue, JsValue> {
    let nav = get(&js_sys::global(), "navigator")?;
    let storage = get(&nav, "storage")?;
    if storage.is_undefined() {
        return Err(JsValue::from_str("navigator.storage is missing"));
    }
    Ok(storage)
}

/// The DOMException name of an error (e.g. "QuotaExceededError"), or "".
pub fn error_name(e: &JsValue) -> String {
    get(e, "name").ok().and_then(|n| n.as_string()).unwrap_or_default()
}

pub fn error_text(e: &JsValue) -> String {
    let message = get(e, "message").ok().and_then(|n| n.as_string());
    message.or_else(|| e.as_string()).unwrap_or_else(|| format!("{e:?}"))
}

/// Lowercase hex SHA-256 through SubtleCrypto.
pub async fn sha256(data: &Uint8Array) -> Result<String, JsValue> {
    let subtle = get(&get(&js_sys::global(), "crypto")?, "subtle")?;
    let digest = call_await(&subtle, "digest", &["SHA-256".into(), data.into()]).await?;
    Ok(super::manifest::hex(&Uint8Array::new(&digest).to_vec()))
}

/// Runs `body` holding the Web Lock `name`, so the page and a worker never rewrite the manifest
/// at the same time. Without Web Locks it just runs.
pub async fn with_lock<T>(name: &str, body: impl std::future::Future<Output = T>) -> T {
    let locks = get(&js_sys::global(), "navigator").and_then(|n| get(&n, "locks"));
    let Some(locks) = locks.ok().filter(|l| !l.is_undefined()) else { return body.await };
    // `release` settles when we are done; the lock is held until then.
    let mut release_fn = None;
    let release = Promise::new(&mut |resolve, _| release_fn = Some(resolve));
    let mut acquired_fn = None;
    let acquired = Promise::new(&mut |resolve, _| acquired_fn = Some(resolve));
    let (Some(release_fn), Some(acquired_fn)) = (release_fn, acquired_fn) else { return body.await };
    let granted = Closure::once_into_js(move |_lock: JsValue| {
        let _ = acquired_fn.call0(&JsValue::UNDEFINED);
        release
    });
    let held = match call(&locks, "request", &[name.into(), granted]) {
        Ok(p) => p,
        Err(_) => return body.await,
    };
    let _ = JsFuture::from(acquired).await;
    let out = body.await;
    let _ = release_fn.call0(&JsValue::UNDEFINED);
    let _ = JsFuture::from(Promise::resolve(&held)).await;
    out
}
