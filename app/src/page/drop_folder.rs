//! A folder dropped on the drop zone (a Hugging Face model folder, or one holding a GGUF or
//! llama2.c file): its tree is listed through the entries API (`webkitGetAsEntry`), and only
//! the files `pick::in_folder` chooses are opened, named by their path ("smol/config.json"), so
//! the engine names the model for its folder. Dropped files alone take the plain `FileList` way.

use js_sys::{Array, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{DataTransfer, File};

use crate::pick;
use crate::storage::js::{call, error_text, get};

/// Entries listed at most: a folder dropped by mistake (a home folder) is refused in words
/// instead of being walked for minutes.
const MAX_ENTRIES: usize = 5_000;
/// Folder levels walked below a dropped one (a model's files sit at its top).
const MAX_DEPTH: usize = 3;

/// The dropped items' entries, when one of them is a folder. Taken during the drop event: the
/// browser empties the DataTransfer after it.
pub fn entries(dt: &DataTransfer) -> Option<Vec<JsValue>> {
    let items = get(dt, "items").ok()?;
    let n = get(&items, "length").ok()?.as_f64()? as u32;
    let entries: Vec<JsValue> = (0..n)
        .filter_map(|i| Reflect::get_u32(&items, i).ok())
        .filter_map(|item| call(&item, "webkitGetAsEntry", &[]).ok())
        .filter(|e| e.is_object())
        .collect();
    entries.iter().any(is_dir).then_some(entries)
}

fn is_dir(entry: &JsValue) -> bool {
    get(entry, "isDirectory").is_ok_and(|v| v.is_truthy())
}

/// The files to load from the dropped entries, as (path in the folder, file), or why none.
pub async fn files(entries: Vec<JsValue>) -> Result<Vec<(String, File)>, String> {
    let listed = walk(entries).await?;
    let paths: Vec<String> = listed.iter().map(|(p, _)| p.clone()).collect();
    let mut out = Vec::new();
    for i in pick::in_folder(&paths)? {
        let (path, entry) = &listed[i];
        let file = with_callbacks(entry, "file")
            .await
            .map_err(|e| format!("Could not read “{path}” from the dropped folder ({}).", error_text(&e)))?;
        out.push((path.clone(), file.unchecked_into()));
    }
    Ok(out)
}

/// Every file entry under `entries`, by its path without the leading "/", in path order.
async fn walk(entries: Vec<JsValue>) -> Result<Vec<(String, JsValue)>, String> {
    let mut stack: Vec<(JsValue, usize)> = entries.into_iter().map(|e| (e, 0)).collect();
    let mut files = Vec::new();
    while let Some((entry, depth)) = stack.pop() {
        let path = get(&entry, "fullPath").ok().and_then(|p| p.as_string()).unwrap_or_default();
        if !is_dir(&entry) {
            files.push((path.trim_start_matches('/').to_string(), entry));
        } else if depth < MAX_DEPTH {
            let inside = children(&entry)
                .await
                .map_err(|e| format!("Could not list the dropped folder “{path}” ({}).", error_text(&e)))?;
            stack.extend(inside.into_iter().map(|c| (c, depth + 1)));
        }
        if stack.len() + files.len() > MAX_ENTRIES {
            return Err(format!(
                "The dropped folder holds more than {MAX_ENTRIES} files: drop the model's own folder (or its files) instead."
            ));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// A folder entry's children: `readEntries` hands them out in batches until an empty one.
async fn children(dir: &JsValue) -> Result<Vec<JsValue>, JsValue> {
    let reader = call(dir, "createReader", &[])?;
    let mut all = Vec::new();
    loop {
        let batch: Array = with_callbacks(&reader, "readEntries").await?.dyn_into()?;
        if batch.length() == 0 {
            return Ok(all);
        }
        all.extend(batch.iter());
    }
}

/// `obj.name(onSuccess, onError)`, the entries API's callback style, as a future.
async fn with_callbacks(obj: &JsValue, name: &str) -> Result<JsValue, JsValue> {
    let promise = Promise::new(&mut |resolve, reject| {
        if let Err(e) = call(obj, name, &[resolve.into(), reject.clone().into()]) {
            let _ = reject.call1(&JsValue::UNDEFINED, &e);
        }
    });
    JsFuture::from(promise).await
}
