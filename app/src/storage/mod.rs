//! Models and adapters kept on this device, in the browser's Origin Private File System (OPFS),
//! so they are there after a restart and offline. Works in the page and in a worker.
//!
//! # API (async; every error is a [`StoreError`] with a message for the reader)
//!
//! ```ignore
//! use tinylm_app::storage::{self, Data, Kind};
//! // Save: files are written first, the manifest entry (name, size, sha256) is committed last,
//! // so an interrupted or refused write (quota) never shows up as a stored item.
//! let entry = storage::put(Kind::Adapter, "my adapter", vec![
//!     ("adapter_config.json".into(), Data::Bytes(config_json.as_bytes())),
//!     ("adapter_model.safetensors".into(), Data::Bytes(&weights)),
//! ], serde_json::json!({ "base": "stories260K", "rank": 4 })).await?;
//! let adapters = storage::list(Some(Kind::Adapter)).await?;        // Vec<Entry>, oldest first
//! let (entry, bytes) = storage::get_bytes(&entry.id).await?;       // sizes and sha256 checked
//! let (entry, files) = storage::get(&entry.id).await?;             // as `web_sys::File`s
//! storage::delete(&entry.id).await?;
//! ```
//!
//! `Entry { id, kind, name, files: [FileInfo { name, size, sha256 }], meta, saved_ms }`; files
//! come back in the order they were put. `estimate()`, `persist()` and `persisted()` wrap
//! `navigator.storage`. Listing also sweeps folders of writes that never finished. Shelf
//! downloads in progress live beside the items (`partial`) and are committed as one.

pub mod bundle;
pub(crate) mod js;
pub mod manifest;
mod opfs;
pub mod partial;

use js_sys::Uint8Array;
use wasm_bindgen::JsValue;

pub use manifest::{Entry, FileInfo, Kind};

/// One Web Lock around every change of the manifest (page and workers share it).
const LOCK: &str = "tinylm-storage";

/// A file's contents for `put`.
pub enum Data<'a> {
    Bytes(&'a [u8]),
    /// A `File` or `Blob` (e.g. what the reader picked), read by the browser.
    Blob(&'a web_sys::Blob),
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// No OPFS here (an old browser, or storage blocked, e.g. some private windows).
    Unavailable(String),
    /// The browser refused to store more.
    Quota {
        needed: u64,
        usage: Option<u64>,
        quota: Option<u64>,
    },
    NotFound(String),
    /// Stored bytes no longer match the manifest.
    Corrupt(String),
    Other(String),
}

impl StoreError {
    pub fn message(&self) -> String {
        let size = crate::words::size;
        match self {
            StoreError::Unavailable(why) => format!("This browser cannot keep files for this site ({why})."),
            StoreError::Quota { needed, usage, quota } => {
                let room = match (usage, quota) {
                    (Some(u), Some(q)) => format!(" ({} of {} used).", size(*u), size(*q)),
                    _ => ".".into(),
                };
                format!(
                    "Not saved: the browser has no room for {} more for this site{room} Delete stored \
                     models or adapters, or free disk space, and try again. It still works until you reload.",
                    size(*needed)
                )
            }
            StoreError::NotFound(what) => format!("“{what}” is no longer stored on this device."),
            StoreError::Corrupt(what) => {
                format!("The stored copy of “{what}” is damaged; delete it and save it again.")
            }
            StoreError::Other(why) => format!("Storage failed: {why}"),
        }
    }

    fn from_js(e: JsValue) -> StoreError {
        match js::error_name(&e).as_str() {
            "QuotaExceededError" => StoreError::Quota { needed: 0, usage: None, quota: None },
            "NotFoundError" => StoreError::NotFound(js::error_text(&e)),
            "SecurityError" | "NotAllowedError" => StoreError::Unavailable(js::error_text(&e)),
            _ if js::storage_manager().is_err() => StoreError::Unavailable("no navigator.storage".into()),
            _ => StoreError::Other(js::error_text(&e)),
        }
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Stores files as one item and returns its committed entry.
pub async fn put(kind: Kind, name: &str, files: Vec<(String, Data<'_>)>, meta: serde_json::Value) -> Result<Entry> {
    let mut arrays = Vec::with_capacity(files.len());
    for (file_name, data) in files {
        arrays.push((file_name, to_array(data).await?));
    }
    let needed: u64 = arrays.iter().map(|(_, a)| a.length() as u64).sum();
    let id = manifest::make_id(kind, js_sys::Date::now(), js_sys::Math::random());
    let result = js::with_lock(LOCK, write_item(kind, name, &id, &arrays, meta)).await;
    match result {
        Err(StoreError::Quota { .. }) => {
            let (usage, quota) = estimate().await.map(|e| (Some(e.usage), Some(e.quota))).unwrap_or((None, None));
            Err(StoreError::Quota { needed, usage, quota })
        }
        other => other,
    }
}

async fn to_array(data: Data<'_>) -> Result<Uint8Array> {
    match data {
        Data::Bytes(b) => Ok(Uint8Array::from(b)),
        Data::Blob(blob) => {
            let buf = js::call_await(blob.as_ref(), "arrayBuffer", &[]).await.map_err(StoreError::from_js)?;
            Ok(Uint8Array::new(&buf))
        }
    }
}

/// Files into `items/<id>/`, then the manifest entry. Any failure removes the folder again.
async fn write_item(kind: Kind, name: &str, id: &str, files: &[(String, Uint8Array)], meta: serde_json::Value) -> Result<Entry> {
    let items = opfs::items().await.map_err(StoreError::from_js)?;
    let written = async {
        let dir = opfs::subdir(&items, id).await?;
        let mut infos = Vec::with_capacity(files.len());
        for (i, (file_name, data)) in files.iter().enumerate() {
            let sha256 = js::sha256(data).await?;
            opfs::write_file(&dir, &i.to_string(), data).await?;
            infos.push(FileInfo { name: file_name.clone(), size: data.length() as u64, sha256 });
        }
        let entry = Entry { id: id.to_string(), kind, name: name.to_string(), files: infos, meta, saved_ms: js_sys::Date::now() };
        opfs::commit_entry(&entry).await?;
        Ok::<Entry, JsValue>(entry)
    }
    .await;
    match written {
        Ok(entry) => Ok(entry),
        Err(e) => {
            let _ = opfs::remove(&items, id).await;
            Err(StoreError::from_js(e))
        }
    }
}

/// Stored items of `kind` (all with `None`), oldest first. Sweeps unfinished writes.
pub async fn list(kind: Option<Kind>) -> Result<Vec<Entry>> {
    js::with_lock(LOCK, async {
        let root = opfs::root().await?;
        let m = opfs::read_manifest(&root).await?;
        let items = opfs::subdir(&root, "items").await?;
        let folders = opfs::names(&items).await?;
        for orphan in m.orphans(&folders) {
            opfs::remove(&items, orphan).await?;
        }
        Ok::<_, JsValue>(m.entries.into_iter().filter(|e| kind.is_none_or(|k| e.kind == k)).collect())
    })
    .await
    .map_err(StoreError::from_js)
}

/// An item's entry and its files, after checking each file's size and SHA-256.
pub async fn get(id: &str) -> Result<(Entry, Vec<web_sys::File>)> {
    let (entry, files, _) = read(id, false).await?;
    Ok((entry, files))
}

/// Like `get`, with the files' bytes.
pub async fn get_bytes(id: &str) -> Result<(Entry, Vec<Vec<u8>>)> {
    let (entry, _, bytes) = read(id, true).await?;
    Ok((entry, bytes))
}

async fn read(id: &str, keep_bytes: bool) -> Result<(Entry, Vec<web_sys::File>, Vec<Vec<u8>>)> {
    let root = opfs::root().await.map_err(StoreError::from_js)?;
    let m = opfs::read_manifest(&root).await.map_err(StoreError::from_js)?;
    let entry = m.find(id).cloned().ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    let corrupt = || StoreError::Corrupt(entry.name.clone());
    let dir = opfs::subdir(&opfs::items().await.map_err(StoreError::from_js)?, id).await.map_err(StoreError::from_js)?;
    let (mut files, mut bytes) = (Vec::new(), Vec::new());
    for (i, info) in entry.files.iter().enumerate() {
        let file = opfs::file(&dir, &i.to_string()).await.map_err(|_| corrupt())?;
        let buf = js::call_await(file.as_ref(), "arrayBuffer", &[]).await.map_err(StoreError::from_js)?;
        let data = Uint8Array::new(&buf);
        let sha = js::sha256(&data).await.map_err(StoreError::from_js)?;
        if data.length() as u64 != info.size || sha != info.sha256 {
            return Err(corrupt());
        }
        if keep_bytes {
            bytes.push(data.to_vec());
        }
        // Under the caller's name, so loaders see "stories260K.bin" rather than "0".
        files.push(renamed(&file, &info.name)?);
    }
    Ok((entry, files, bytes))
}

fn renamed(file: &web_sys::File, name: &str) -> Result<web_sys::File> {
    let parts = js_sys::Array::of1(file.as_ref());
    web_sys::File::new_with_blob_sequence(&parts, name).map_err(StoreError::from_js)
}

pub async fn delete(id: &str) -> Result<()> {
    js::with_lock(LOCK, async {
        let root = opfs::root().await?;
        let mut m = opfs::read_manifest(&root).await?;
        // The entry goes first: a folder without an entry is an orphan, never a broken item.
        if m.remove(id).is_some() {
            opfs::write_manifest(&root, &m).await?;
        }
        opfs::remove(&opfs::subdir(&root, "items").await?, id).await
    })
    .await
    .map_err(StoreError::from_js)
}

/// `navigator.storage.estimate()`: bytes used and allowed for this site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub usage: u64,
    pub quota: u64,
}

pub async fn estimate() -> Result<Estimate> {
    let storage = js::storage_manager().map_err(|_| StoreError::Unavailable("no navigator.storage".into()))?;
    let e = js::call_await(&storage, "estimate", &[]).await.map_err(StoreError::from_js)?;
    let field = |k| js::get(&e, k).ok().and_then(|v| v.as_f64()).unwrap_or(0.0) as u64;
    Ok(Estimate { usage: field("usage"), quota: field("quota") })
}

/// Asks the browser not to evict this site's storage; true when granted.
pub async fn persist() -> Result<bool> {
    storage_flag("persist").await
}

pub async fn persisted() -> Result<bool> {
    storage_flag("persisted").await
}

async fn storage_flag(method: &str) -> Result<bool> {
    let storage = js::storage_manager().map_err(|_| StoreError::Unavailable("no navigator.storage".into()))?;
    Ok(js::call_await(&storage, method, &[]).await.map_err(StoreError::from_js)?.is_truthy())
}
