//! Downloads in progress, kept in OPFS so that they survive a reload: `tinylm/partial/<hex of
//! the shelf name>/` holds `record.json` (the shelf's request: addresses, sizes, SHA-256s),
//! `<i>.part` (file `i` as far as it arrived) and `<i>` (file `i`, whole and verified). Nothing
//! here is an item of the store: `list()` never shows it, and only `commit` moves the verified
//! files into `items/` as one entry. The worker writes the `.part` through a
//! `FileSystemSyncAccessHandle` (each chunk lands on disk as it arrives, no copy held).

use js_sys::Uint8Array;
use wasm_bindgen::JsValue;

use super::js::{call, call_await, options};
use super::manifest::{hex, Entry, FileInfo, Kind};
use super::{opfs, StoreError, LOCK};
use crate::protocol::shelf::Download;

const PARTIAL: &str = "partial";
const RECORD: &str = "record.json";

/// A download that did not finish, as the shelf card shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    pub model: String,
    /// Bytes on this device (verified files and the `.part`).
    pub have: u64,
    pub total: u64,
}

fn folder_name(model: &str) -> String {
    hex(model.as_bytes())
}

async fn partials() -> Result<JsValue, JsValue> {
    opfs::subdir(&opfs::root().await?, PARTIAL).await
}

/// The folder of `d`'s download: the one there if its record is `d`'s request, otherwise a
/// fresh one (an old download of another version of the list is dropped).
pub async fn open(d: &Download) -> Result<JsValue, StoreError> {
    async {
        let parts = partials().await?;
        let name = folder_name(&d.model);
        let dir = opfs::subdir(&parts, &name).await?;
        if read_record(&dir).await?.is_some_and(|r| same_files(&r, d)) {
            return Ok(dir);
        }
        opfs::remove(&parts, &name).await?;
        let dir = opfs::subdir(&parts, &name).await?;
        let record = Download { job: 0, ..d.clone() };
        let text = serde_json::to_string(&record).unwrap_or_default();
        opfs::write_file(&dir, RECORD, &Uint8Array::from(text.as_bytes())).await?;
        Ok(dir)
    }
    .await
    .map_err(StoreError::from_js)
}

fn same_files(a: &Download, b: &Download) -> bool {
    a.files == b.files
}

async fn read_record(dir: &JsValue) -> Result<Option<Download>, JsValue> {
    match opfs::file(dir, RECORD).await {
        Ok(f) => Ok(serde_json::from_str(&call_await(f.as_ref(), "text", &[]).await?.as_string().unwrap_or_default()).ok()),
        Err(e) if super::js::error_name(&e) == "NotFoundError" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes `model`'s unfinished download, if any.
pub async fn discard(model: &str) -> Result<(), StoreError> {
    async { opfs::remove(&partials().await?, &folder_name(model)).await }.await.map_err(StoreError::from_js)
}

/// The downloads that did not finish. (Not while the worker writes one: its `.part` is locked.)
pub async fn unfinished() -> Result<Vec<Unfinished>, StoreError> {
    async {
        let parts = partials().await?;
        let mut out = Vec::new();
        for name in opfs::names(&parts).await? {
            let dir = opfs::subdir(&parts, &name).await?;
            let Some(record) = read_record(&dir).await? else { continue };
            let have = bytes_in(&dir, &record).await;
            let total = record.files.iter().map(|f| f.size).sum();
            out.push(Unfinished { model: record.model, have, total });
        }
        Ok::<_, JsValue>(out)
    }
    .await
    .map_err(StoreError::from_js)
}

/// Bytes of `d`'s download on this device: its verified files and its `.part`s.
pub async fn bytes_in(dir: &JsValue, d: &Download) -> u64 {
    let mut have = 0;
    for (i, f) in d.files.iter().enumerate() {
        have += match opfs::file(dir, &i.to_string()).await {
            Ok(_) => f.size,
            Err(_) => opfs::file(dir, &part_name(i)).await.map(|p| p.size() as u64).unwrap_or(0),
        };
    }
    have
}

fn part_name(i: usize) -> String {
    format!("{i}.part")
}

/// Whether file `i` is already whole and verified (renamed from its `.part`).
pub async fn is_done(dir: &JsValue, i: usize, size: u64) -> bool {
    opfs::file(dir, &i.to_string()).await.is_ok_and(|f| f.size() as u64 == size)
}

/// File `i`'s `.part`, open for reading and writing at any offset.
pub struct PartFile {
    handle: JsValue,
}

impl PartFile {
    pub async fn open(dir: &JsValue, i: usize) -> Result<PartFile, StoreError> {
        async {
            let file = call_await(dir, "getFileHandle", &[part_name(i).into(), options("create", true)]).await?;
            call_await(&file, "createSyncAccessHandle", &[]).await
        }
        .await
        .map(|handle| PartFile { handle })
        .map_err(StoreError::from_js)
    }

    pub fn size(&self) -> Result<u64, StoreError> {
        let n = call(&self.handle, "getSize", &[]).map_err(StoreError::from_js)?;
        Ok(n.as_f64().unwrap_or(0.0) as u64)
    }

    /// Writes all of `data` at byte `at` (a refusal for room is `StoreError::Quota`).
    pub fn write_at(&self, data: &Uint8Array, at: u64) -> Result<(), StoreError> {
        let written = call(&self.handle, "write", &[data.into(), options("at", at as f64)]).map_err(StoreError::from_js)?;
        if written.as_f64() != Some(data.length() as f64) {
            return Err(StoreError::Quota { needed: data.length() as u64, usage: None, quota: None });
        }
        Ok(())
    }

    /// Reads into `buf` from byte `at`; returns the bytes read.
    pub fn read_at(&self, buf: &Uint8Array, at: u64) -> Result<u32, StoreError> {
        let n = call(&self.handle, "read", &[buf.into(), options("at", at as f64)]).map_err(StoreError::from_js)?;
        Ok(n.as_f64().unwrap_or(0.0) as u32)
    }

    pub fn truncate(&self, len: u64) -> Result<(), StoreError> {
        call(&self.handle, "truncate", &[(len as f64).into()]).map(drop).map_err(StoreError::from_js)
    }

    /// Flushes and releases the file (another tab or a later visit may then open it).
    pub fn close(&self) {
        let _ = call(&self.handle, "flush", &[]);
        let _ = call(&self.handle, "close", &[]);
    }
}

/// Renames file `i`'s `.part` (closed, verified) to `i`.
pub async fn finish(dir: &JsValue, i: usize) -> Result<(), StoreError> {
    async {
        let file = call_await(dir, "getFileHandle", &[part_name(i).into()]).await?;
        call_await(&file, "move", &[i.to_string().into()]).await.map(drop)
    }
    .await
    .map_err(StoreError::from_js)
}

/// Removes file `i`'s `.part` (it failed its SHA-256, or the download was refused).
pub async fn drop_part(dir: &JsValue, i: usize) {
    let _ = opfs::remove(dir, &part_name(i)).await;
}

/// Moves the verified files of `d`'s download into the store as one item (files moved, not
/// copied; the manifest entry last), then removes the download's folder.
pub async fn commit(dir: &JsValue, d: &Download, meta: serde_json::Value) -> Result<Entry, StoreError> {
    let id = super::manifest::make_id(Kind::Model, js_sys::Date::now(), js_sys::Math::random());
    let moved = super::js::with_lock(LOCK, async {
        let items = opfs::items().await?;
        let target = opfs::subdir(&items, &id).await?;
        let result = async {
            for i in 0..d.files.len() {
                let file = call_await(dir, "getFileHandle", &[i.to_string().into()]).await?;
                call_await(&file, "move", &[target.clone(), i.to_string().into()]).await?;
            }
            let files = d.files.iter().map(|f| FileInfo { name: f.name.clone(), size: f.size, sha256: f.sha256.clone() });
            let entry = Entry {
                id: id.clone(),
                kind: Kind::Model,
                name: d.model.clone(),
                files: files.collect(),
                meta,
                saved_ms: js_sys::Date::now(),
            };
            opfs::commit_entry(&entry).await?;
            Ok::<Entry, JsValue>(entry)
        }
        .await;
        if result.is_err() {
            let _ = opfs::remove(&items, &id).await;
        }
        result
    })
    .await
    .map_err(StoreError::from_js)?;
    let _ = discard(&d.model).await;
    Ok(moved)
}
