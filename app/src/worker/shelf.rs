//! Fetching a shelf model onto this device, in the worker (never on the page's thread): the
//! quota checked first, each file streamed with progress straight into its `.part` file in OPFS
//! (`crate::storage::partial`; only the chunk in hand is held in memory), its SHA-256 computed
//! as the bytes arrive, resumed with an HTTP `Range` request after a cut or a stall, and after a
//! reload (the bytes already stored are hashed again first). A file whose SHA-256 is right is
//! renamed from `.part`; once all are, they are moved into the store as one item. A Cancel or a
//! refusal removes the partial download; a connection that keeps breaking leaves it for Resume.
//! Downloads run beside the engine's queue (they are I/O), so a story can be written meanwhile.

use std::cell::RefCell;

use js_sys::{Array, Promise, Reflect, Uint8Array};
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, ReadableStreamDefaultReader, RequestInit, Response};

use super::bridge::{now_ms, post, scope};
use super::cancel::Cancel;
use crate::protocol::shelf::{Download, FetchFile, ShelfEvent};
use crate::protocol::FromWorker;
use crate::storage::partial::{self, PartFile};
use crate::storage::{self, StoreError};
use crate::words::size;

/// Cuts (or stalls) survived per file before the download pauses (kept for Resume).
const MAX_CUTS: u32 = 5;
/// A connection that sends nothing for this long is treated as cut.
const STALL_MS: i32 = 30_000;
const PROGRESS_MS: f64 = 100.0;
/// Bytes read at a time when hashing what an earlier visit stored.
const REHASH_CHUNK: u32 = 1 << 20;

thread_local! {
    /// The request in flight, aborted by a Cancel (`abort`) or a stall.
    static IN_FLIGHT: RefCell<Option<AbortController>> = const { RefCell::new(None) };
}

/// Starts a download; its end is posted as one `ShelfEvent`.
pub fn spawn(d: Download, cancel: Cancel) {
    wasm_bindgen_futures::spawn_local(async move {
        let (job, model) = (d.job, d.model.clone());
        let result = run(&d, &cancel).await;
        if matches!(result, Err(Stop::Cancelled | Stop::Failed(_))) {
            let _ = partial::discard(&model).await;
        }
        let event = match result {
            Ok(id) => ShelfEvent::Stored { job, model, id },
            Err(Stop::Cancelled) => ShelfEvent::Cancelled { job, model },
            Err(Stop::Failed(message) | Stop::Paused(message)) => ShelfEvent::Failed { job, model, message },
        };
        post(&FromWorker::Shelf(event));
    });
}

/// Stops the request in flight at once (a Cancel arrived; the loop then sees the flag).
pub fn abort() {
    IN_FLIGHT.with(|f| {
        if let Some(c) = f.borrow().as_ref() {
            c.abort();
        }
    });
}

enum Stop {
    /// The partial download is removed.
    Cancelled,
    Failed(String),
    /// The partial download is kept for Resume.
    Paused(String),
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Failed(message)
    }
}

/// Quota, every file not yet verified, then one stored item; returns its id.
async fn run(d: &Download, cancel: &Cancel) -> Result<String, Stop> {
    let total: u64 = d.files.iter().map(|f| f.size).sum();
    let dir = partial::open(d).await.map_err(|e| refusal(&d.model, 0, e))?;
    let already = partial::bytes_in(&dir, d).await;
    let room = storage::estimate().await.map_err(|e| e.message())?;
    if let Some(message) = crate::shelf::no_room(&d.model, total - already.min(total), room.usage, room.quota) {
        return Err(Stop::Failed(message));
    }
    let mut progress = Progress { job: d.job, total, before: 0, last: 0.0 };
    for (i, f) in d.files.iter().enumerate() {
        if !partial::is_done(&dir, i, f.size).await {
            fetch_file(&dir, i, f, &mut progress, || cancel.is_cancelled(d.job)).await?;
        }
        progress.before += f.size;
    }
    if cancel.is_cancelled(d.job) {
        return Err(Stop::Cancelled);
    }
    let meta = serde_json::json!({ "shelf": d.model, "params": d.params, "licence": d.licence });
    let entry = partial::commit(&dir, d, meta)
        .await
        .map_err(|e| format!("{} arrived and was verified, but could not be stored. {}", d.model, e.message()))?;
    Ok(entry.id)
}

/// Progress of all the model's files together, posted at most every `PROGRESS_MS`.
struct Progress {
    job: u64,
    total: u64,
    /// Bytes of the files before this one.
    before: u64,
    last: f64,
}

impl Progress {
    fn show(&mut self, have: u64, note: Option<String>, force: bool) {
        if !force && note.is_none() && now_ms() - self.last < PROGRESS_MS {
            return;
        }
        self.last = now_ms();
        post(&FromWorker::Shelf(ShelfEvent::Progress { job: self.job, done: self.before + have, total: self.total, note }));
    }
}

/// One file's `.part`: the bytes so far, on disk and hashed in order.
struct Partial<'a> {
    file: &'a PartFile,
    name: &'a str,
    hasher: Sha256,
    have: u64,
}

impl Partial<'_> {
    /// Hashes what is stored already (an earlier visit's bytes), reading it in chunks.
    fn resume(&mut self, size: u64) -> Result<(), Attempt> {
        let stored = self.file.size().map_err(|e| self.refused(e))?;
        if stored > size {
            return self.restart();
        }
        let buf = Uint8Array::new_with_length(REHASH_CHUNK);
        let mut bytes = vec![0; REHASH_CHUNK as usize];
        while self.have < stored {
            let n = self.file.read_at(&buf, self.have).map_err(|e| self.refused(e))?;
            if n == 0 {
                break;
            }
            buf.subarray(0, n).copy_to(&mut bytes[..n as usize]);
            self.hasher.update(&bytes[..n as usize]);
            self.have += n as u64;
        }
        Ok(())
    }

    /// The chunk onto the disk, then into the hash.
    fn push(&mut self, chunk: &Uint8Array) -> Result<(), Attempt> {
        self.file.write_at(chunk, self.have).map_err(|e| self.refused(e))?;
        self.hasher.update(chunk.to_vec());
        self.have += chunk.length() as u64;
        Ok(())
    }

    /// Drops the bytes so far (the server sent the file from its start).
    fn restart(&mut self) -> Result<(), Attempt> {
        self.file.truncate(0).map_err(|e| self.refused(e))?;
        (self.hasher, self.have) = (Sha256::new(), 0);
        Ok(())
    }

    fn refused(&self, e: StoreError) -> Attempt {
        Attempt::Fatal(refusal(self.name, self.have, e))
    }
}

/// A store's refusal to keep `name` after `have` bytes, in words: the same words whether the
/// browser refused a write or, with even less room, the folder or file the bytes were to go in.
fn refusal(name: &str, have: u64, e: StoreError) -> String {
    match e {
        StoreError::Quota { .. } => format!(
            "The browser refused to store more of {name} on this device at {} (this site's storage is full). \
             Nothing was kept: delete stored models on the Storage tab or free disk space, and try again.",
            size(have)
        ),
        e => format!("{name} could not be written on this device. {}", e.message()),
    }
}

/// File `i` of the download into its `.part`, verified, then renamed.
async fn fetch_file(
    dir: &JsValue,
    i: usize,
    f: &FetchFile,
    progress: &mut Progress,
    cancelled: impl Fn() -> bool,
) -> Result<(), Stop> {
    let file = PartFile::open(dir, i).await.map_err(|e| refusal(&f.name, 0, e))?;
    let mut part = Partial { file: &file, name: &f.name, hasher: Sha256::new(), have: 0 };
    let filled = fill(&mut part, f, progress, &cancelled).await;
    file.close();
    filled?;
    let got = crate::storage::manifest::hex(&std::mem::take(&mut part.hasher).finalize());
    if got != f.sha256 {
        partial::drop_part(dir, i).await;
        return Err(Stop::Failed(format!(
            "{} arrived whole, but its SHA-256 is {got}, not the {} the shelf list gives: the download is \
             damaged or not the file the list means, so it was removed and not stored.",
            f.name, f.sha256
        )));
    }
    partial::finish(dir, i).await.map_err(|e| Stop::Failed(format!("{}: {}", f.name, e.message())))
}

/// Requests until the `.part` holds `f.size` bytes (from where an earlier visit stopped).
async fn fill(part: &mut Partial<'_>, f: &FetchFile, progress: &mut Progress, cancelled: &impl Fn() -> bool) -> Result<(), Stop> {
    part.resume(f.size).map_err(fatal)?;
    if part.have > 0 {
        let note = format!("{} were already on this device; asking for the rest…", size(part.have));
        progress.show(part.have, Some(note), true);
    }
    let mut cuts = 0;
    while part.have < f.size {
        if cancelled() {
            return Err(Stop::Cancelled);
        }
        match attempt(f, part, progress, cancelled).await {
            Ok(()) => {}
            Err(_) if cancelled() => return Err(Stop::Cancelled),
            Err(Attempt::Fatal(message)) => return Err(Stop::Failed(message)),
            Err(Attempt::Cut) => {
                cuts += 1;
                if cuts > MAX_CUTS {
                    return Err(Stop::Paused(format!(
                        "The connection to {} broke {cuts} times ({} of {} received). What arrived is kept on \
                         this device: press Resume to continue, or Discard.",
                        host(&f.url),
                        size(part.have),
                        size(f.size)
                    )));
                }
                let note = format!("The connection was cut at {}; resuming from there…", size(part.have));
                progress.show(part.have, Some(note), true);
                sleep(500 * cuts as i32).await;
            }
        }
    }
    Ok(())
}

fn fatal(a: Attempt) -> Stop {
    match a {
        Attempt::Fatal(m) => Stop::Failed(m),
        Attempt::Cut => Stop::Failed("the partial file could not be read.".into()),
    }
}

enum Attempt {
    /// Cut, stalled or refused mid-way: worth resuming.
    Cut,
    Fatal(String),
}

/// One request: from byte `part.have` (a `Range` request when it is not 0) to the end or a cut.
async fn attempt(
    f: &FetchFile,
    part: &mut Partial<'_>,
    progress: &mut Progress,
    cancelled: &impl Fn() -> bool,
) -> Result<(), Attempt> {
    let resp = request(&f.url, part.have).await?;
    let range = resp.headers().get("content-range").ok().flatten();
    let length = resp.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse().ok());
    match start_of(resp.status(), range.as_deref(), length, part.have, f.size) {
        Ok(0) if part.have > 0 => part.restart()?, // the server ignored the Range: start again
        Ok(_) => {}
        Err(Answer::Restart) => {
            cancel_body(&resp);
            part.restart()?;
            return Err(Attempt::Cut);
        }
        Err(Answer::Fatal(why)) => {
            cancel_body(&resp);
            return Err(Attempt::Fatal(format!("{}: {why} Nothing was stored.", f.url)));
        }
    }
    let Some(body) = resp.body() else { return Err(Attempt::Cut) };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    loop {
        if cancelled() {
            let _ = reader.cancel();
            return Err(Attempt::Cut);
        }
        let Some(chunk) = read(&reader).await? else { break };
        if part.have + chunk.length() as u64 > f.size {
            let _ = reader.cancel();
            return Err(Attempt::Fatal(format!(
                "{}: the server sent more than the {} the shelf list gives; nothing was stored.",
                f.name,
                size(f.size)
            )));
        }
        if let Err(e) = part.push(&chunk) {
            let _ = reader.cancel();
            return Err(e);
        }
        progress.show(part.have, None, false);
    }
    progress.show(part.have, None, true);
    if part.have < f.size {
        return Err(Attempt::Cut);
    }
    Ok(())
}

/// `fetch(url)`, with `Range: bytes=FROM-` when resuming; abortable through `IN_FLIGHT`.
async fn request(url: &str, from: u64) -> Result<Response, Attempt> {
    let controller = AbortController::new().map_err(|_| Attempt::Fatal("this browser cannot stop a download.".into()))?;
    let init = RequestInit::new();
    init.set_signal(Some(&controller.signal()));
    if from > 0 {
        let headers = Headers::new().map_err(|_| Attempt::Cut)?;
        let _ = headers.set("Range", &format!("bytes={from}-"));
        init.set_headers(&headers);
    }
    IN_FLIGHT.with(|f| *f.borrow_mut() = Some(controller));
    match within_stall(scope().fetch_with_str_and_init(url, &init)).await {
        Ok(Some(resp)) => resp.dyn_into().map_err(|_| Attempt::Cut),
        Ok(None) => {
            abort();
            Err(Attempt::Cut)
        }
        // A network error. Before any byte arrived it is most likely no connection, or a host this
        // site may not fetch from (its Content-Security-Policy, or a server without CORS).
        Err(_) if from == 0 => Err(Attempt::Fatal(format!(
            "could not reach {}: there is no connection, or this site may not fetch from that host (its \
             Content-Security-Policy names the hosts the shelf uses).",
            host(url)
        ))),
        Err(_) => Err(Attempt::Cut),
    }
}

/// The next chunk, `None` at the end; a cut or a stall (nothing for `STALL_MS`) is `Cut`.
async fn read(reader: &ReadableStreamDefaultReader) -> Result<Option<Uint8Array>, Attempt> {
    let Some(chunk) = within_stall(reader.read()).await.map_err(|_| Attempt::Cut)? else {
        abort();
        return Err(Attempt::Cut);
    };
    if Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true) {
        return Ok(None);
    }
    Ok(Some(Reflect::get(&chunk, &"value".into()).map_err(|_| Attempt::Cut)?.unchecked_into()))
}

/// `promise`'s value, or `None` when nothing came for `STALL_MS` (a server that went quiet
/// without closing the connection; the caller aborts the request).
async fn within_stall(promise: Promise) -> Result<Option<JsValue>, JsValue> {
    let mut timer = None;
    let stalled = Promise::new(&mut |resolve, _| {
        timer = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, STALL_MS).ok();
    });
    let first = JsFuture::from(Promise::race(&Array::of2(&promise, &stalled))).await;
    if let Some(t) = timer {
        scope().clear_timeout_with_handle(t);
    }
    // The timer resolves with `undefined`; fetch and read() never do.
    first.map(|v| Some(v).filter(|v| !v.is_undefined()))
}

fn cancel_body(resp: &Response) {
    if let Some(body) = resp.body() {
        let _ = body.cancel();
    }
}

async fn sleep(ms: i32) {
    let done = Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(done).await;
}

fn host(url: &str) -> String {
    web_sys::Url::new(url).map(|u| u.host()).unwrap_or_else(|_| url.to_string())
}

/// What an answer to a request from byte `have` means.
#[derive(Debug, PartialEq)]
enum Answer {
    /// Drop the bytes so far and ask again from the start.
    Restart,
    Fatal(String),
}

/// Where the body of an answer starts (`Content-Range` when the server exposes it to the page,
/// otherwise the length of the rest), or what to do instead.
fn start_of(status: u16, range: Option<&str>, length: Option<u64>, have: u64, size: u64) -> Result<u64, Answer> {
    match status {
        200 => Ok(0),
        206 => {
            let start: Option<u64> = range.and_then(|r| r.strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok());
            let fits = match start {
                Some(s) => s == have,
                None => length == Some(size - have),
            };
            if fits {
                Ok(have)
            } else {
                Err(Answer::Restart)
            }
        }
        // The part no longer fits the file the server has.
        416 => Err(Answer::Restart),
        404 => Err(Answer::Fatal("not found (HTTP 404): the shelf list may be out of date, or the file has moved.".into())),
        s => Err(Answer::Fatal(format!("the server answered HTTP {s} instead of the file."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_is_accepted_only_from_the_byte_asked_for() {
        assert_eq!(start_of(200, None, Some(100), 0, 100), Ok(0));
        // A server that ignores the Range sends the whole file again: start over.
        assert_eq!(start_of(200, None, Some(100), 40, 100), Ok(0));
        assert_eq!(start_of(206, Some("bytes 40-99/100"), Some(60), 40, 100), Ok(40));
        assert_eq!(start_of(206, Some("bytes 0-99/100"), Some(100), 40, 100), Err(Answer::Restart));
        // Content-Range not exposed by CORS: the length of the rest decides.
        assert_eq!(start_of(206, None, Some(60), 40, 100), Ok(40));
        assert_eq!(start_of(206, None, Some(100), 40, 100), Err(Answer::Restart));
        assert_eq!(start_of(416, None, None, 40, 100), Err(Answer::Restart));
        assert!(matches!(start_of(404, None, None, 0, 100), Err(Answer::Fatal(m)) if m.contains("404")));
        assert!(matches!(start_of(503, None, None, 0, 100), Err(Answer::Fatal(m)) if m.contains("HTTP 503")));
    }
}
