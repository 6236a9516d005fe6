//! GPU workgroup tunings kept on this device: one JSON file per (adapter, model shape) in the
//! Origin Private File System (`tinylm-gpu-tuning/<key>.json`), written by the benchmark page's
//! tuning run and read whenever a model opens on WebGPU. A missing, unreadable or stale file
//! (another shape, another tuner version) just means the default shapes.

use js_sys::{Function, Object, Promise, Reflect};
use tinylm_engine::gpu::{Tuning, Workgroups};
use tinylm_engine::Config;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

const DIR: &str = "tinylm-gpu-tuning";

/// What is stored: the browser's adapter description (wgpu has no name for it on the web)
/// with the tuning.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    adapter: String,
    tuning: Tuning,
}

/// The file name for (adapter, shape): an FNV-1a hash of both, so any change of either misses.
fn key(adapter: &str, c: &Config) -> String {
    let text = format!("{adapter}|{c:?}");
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    format!("{h:016x}.json")
}

/// The stored shapes for this adapter and model shape, if a valid tuning is kept.
pub async fn load(adapter: &str, c: &Config) -> Option<Workgroups> {
    let text = read(DIR, &key(adapter, c)).await.ok()?;
    let stored: Stored = serde_json::from_str(&text).ok()?;
    (stored.adapter == adapter).then_some(())?;
    stored.tuning.workgroups_for(c).ok()
}

/// Keeps `t` for this adapter (its model shape is inside).
pub async fn save(adapter: &str, t: &Tuning) -> Result<(), String> {
    let stored = Stored { adapter: adapter.to_string(), tuning: t.clone() };
    let text = serde_json::to_string(&stored).map_err(|e| e.to_string())?;
    write(DIR, &key(adapter, &t.config), &text).await.map_err(|e| format!("could not keep the GPU tuning: {e:?}"))
}

fn get(obj: &JsValue, k: &str) -> Result<JsValue, JsValue> {
    Reflect::get(obj, &k.into())
}

async fn call(obj: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = get(obj, name)?.dyn_into().map_err(|_| JsValue::from_str(name))?;
    let v = f.apply(obj, &args.iter().collect::<js_sys::Array>())?;
    JsFuture::from(Promise::resolve(&v)).await
}

fn create() -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"create".into(), &true.into());
    o.into()
}

async fn dir(name: &str) -> Result<JsValue, JsValue> {
    let storage = get(&get(&js_sys::global(), "navigator")?, "storage")?;
    let root = call(&storage, "getDirectory", &[]).await?;
    call(&root, "getDirectoryHandle", &[name.into(), create()]).await
}

/// A small text file of directory `dir` (also the kept backend speeds, `speed`).
pub async fn read(dir_name: &str, name: &str) -> Result<String, JsValue> {
    let file = call(&call(&dir(dir_name).await?, "getFileHandle", &[name.into()]).await?, "getFile", &[]).await?;
    call(&file, "text", &[]).await?.as_string().ok_or_else(|| "not text".into())
}

pub async fn write(dir_name: &str, name: &str, text: &str) -> Result<(), JsValue> {
    let handle = call(&dir(dir_name).await?, "getFileHandle", &[name.into(), create()]).await?;
    let stream = call(&handle, "createWritable", &[]).await?;
    call(&stream, "write", &[text.into()]).await?;
    call(&stream, "close", &[]).await.map(drop)
}
