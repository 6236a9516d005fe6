//! Keeps the Train view's data on this device, in the origin-private file system (OPFS): the
//! current run's last checkpoint (with its text), as a JSON file in a folder of its own. (The
//! adapter library uses `crate::storage`.) Called through `Reflect`, so no unstable web-sys API is needed.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

const FOLDER: &str = "tinylm-train";
pub const RUN_FILE: &str = "run.json";

fn err(what: &str) -> impl Fn(JsValue) -> String + '_ {
    move |e| {
        format!(
            "Could not {what} on this device's storage ({}).",
            e.as_string().unwrap_or_else(|| format!("{e:?}"))
        )
    }
}

/// `obj.name(args…)`, awaited when it returns a promise.
async fn call(obj: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = Reflect::get(obj, &name.into())?.dyn_into()?;
    let out = f.apply(obj, &args.iter().collect())?;
    match out.dyn_into::<Promise>() {
        Ok(p) => JsFuture::from(p).await,
        Err(v) => Ok(v),
    }
}

fn create() -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"create".into(), &JsValue::TRUE);
    o.into()
}

async fn folder() -> Result<JsValue, JsValue> {
    let nav = web_sys::window().ok_or("no window")?.navigator();
    let storage = Reflect::get(&nav, &"storage".into())?;
    let root = call(&storage, "getDirectory", &[]).await?;
    call(&root, "getDirectoryHandle", &[FOLDER.into(), create()]).await
}

pub async fn write(name: &str, text: &str) -> Result<(), String> {
    let go = async {
        let file = call(&folder().await?, "getFileHandle", &[name.into(), create()]).await?;
        let w = call(&file, "createWritable", &[]).await?;
        call(&w, "write", &[text.into()]).await?;
        call(&w, "close", &[]).await?;
        Ok(())
    };
    go.await.map_err(err("save"))
}

/// The file's text, or None when it does not exist (or storage is unavailable).
pub async fn read(name: &str) -> Option<String> {
    let go = async {
        let file = call(&folder().await?, "getFileHandle", &[name.into()]).await?;
        let blob = call(&file, "getFile", &[]).await?;
        call(&blob, "text", &[]).await
    };
    go.await.ok()?.as_string()
}

pub async fn remove(name: &str) {
    if let Ok(dir) = folder().await {
        let _ = call(&dir, "removeEntry", &[name.into()]).await;
    }
}
