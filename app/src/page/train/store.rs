//! Keeps the current run on this device, in the origin-private file system (OPFS): its latest
//! snapshot with its text (`train::saved`, a stored zip), in a folder of its own. (The adapter
//! library uses `crate::storage`.) Called through `Reflect`, so no unstable web-sys API is needed.
//!
//! A snapshot is never lost to a crash or a full disk mid-write: the run is kept in two files
//! written in turn (`SLOTS`), a write never touches the file holding the newest good snapshot,
//! and reading takes the newest one that reads.

use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

const FOLDER: &str = "tinylm-train";
/// The two files a run is kept in, in turn.
pub const SLOTS: [&str; 2] = ["run.zip", "run-b.zip"];
/// Where older builds kept a run (base64 text in JSON): removed with the run.
const OLD_SLOTS: [&str; 2] = ["run.json", "run-b.json"];

fn err(what: &str) -> impl Fn(JsValue) -> String + '_ {
    move |e| format!("Could not {what} on this device's storage ({}).", e.as_string().unwrap_or_else(|| format!("{e:?}")))
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

async fn folder_named(name: &str) -> Result<JsValue, JsValue> {
    let nav = web_sys::window().ok_or("no window")?.navigator();
    let storage = Reflect::get(&nav, &"storage".into())?;
    let root = call(&storage, "getDirectory", &[]).await?;
    call(&root, "getDirectoryHandle", &[name.into(), create()]).await
}

pub async fn write(name: &str, bytes: &[u8]) -> Result<(), String> {
    write_in(FOLDER, name, bytes).await
}

/// Writes file `name` of OPFS folder `dir` (another view's folder: the Build view's run).
pub async fn write_in(dir: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
    let go = async {
        let file = call(&folder_named(dir).await?, "getFileHandle", &[name.into(), create()]).await?;
        let w = call(&file, "createWritable", &[]).await?;
        // The file changes only on close(); a failed write is aborted, leaving it as it was.
        if let Err(e) = call(&w, "write", &[Uint8Array::from(bytes).into()]).await {
            let _ = call(&w, "abort", &[]).await;
            return Err(e);
        }
        call(&w, "close", &[]).await?;
        Ok(())
    };
    go.await.map_err(|e| {
        if js_name(&e) == "QuotaExceededError" {
            "The browser has no room left for this site; free some (delete stored models or adapters) to save again.".into()
        } else {
            err("save")(e)
        }
    })
}

fn js_name(e: &JsValue) -> String {
    Reflect::get(e, &"name".into()).ok().and_then(|v| v.as_string()).unwrap_or_default()
}

/// The file's bytes, or None when it does not exist (or storage is unavailable).
pub async fn read(name: &str) -> Option<Vec<u8>> {
    read_in(FOLDER, name).await
}

/// The bytes of file `name` of OPFS folder `dir`, or None.
pub async fn read_in(dir: &str, name: &str) -> Option<Vec<u8>> {
    let go = async {
        let file = call(&folder_named(dir).await?, "getFileHandle", &[name.into()]).await?;
        let blob = call(&file, "getFile", &[]).await?;
        call(&blob, "arrayBuffer", &[]).await
    };
    go.await.ok().map(|buf| Uint8Array::new(&buf).to_vec())
}

pub async fn remove(name: &str) {
    remove_in(FOLDER, name).await
}

pub async fn remove_in(dir: &str, name: &str) {
    if let Ok(dir) = folder_named(dir).await {
        let _ = call(&dir, "removeEntry", &[name.into()]).await;
    }
}

/// What the run's writer does next.
enum Op {
    /// Save this run state of this step.
    Save(Vec<u8>, u32),
    /// The run ended: forget it.
    Clear,
}

/// Called after each save with the step and how it went.
pub type Done = Rc<dyn Fn(u32, Result<(), String>)>;

struct Queue {
    /// The newest operation waiting (only the newest is kept), and whether the writer is busy.
    next: Option<(Op, Done)>,
    busy: bool,
    /// Which slot holds the newest good snapshot; the next write goes to the other one.
    good: Option<usize>,
}

/// The run's writer: one write at a time, in the slot not holding the newest good snapshot.
#[derive(Clone, Copy)]
pub struct Saver(StoredValue<Queue, LocalStorage>);

impl Saver {
    pub fn new() -> Saver {
        Saver(StoredValue::new_local(Queue { next: None, busy: false, good: None }))
    }

    /// Saves the run state `bytes` (of step `step`); `done` hears how it went.
    pub fn save(&self, bytes: Vec<u8>, step: u32, done: Done) {
        self.push(Op::Save(bytes, step), done);
    }

    /// Removes the run (after the ones queued before it).
    pub fn clear(&self) {
        self.push(Op::Clear, Rc::new(|_, _| {}));
    }

    fn push(&self, op: Op, done: Done) {
        let start = self.0.try_update_value(|q| {
            q.next = Some((op, done));
            !std::mem::replace(&mut q.busy, true)
        });
        if start != Some(true) {
            return;
        }
        let this = *self;
        wasm_bindgen_futures::spawn_local(async move {
            while let Some((op, done)) = this.0.try_update_value(|q| q.next.take()).flatten() {
                match op {
                    Op::Save(bytes, step) => {
                        let slot = this.0.with_value(|q| q.good.map_or(0, |s| 1 - s));
                        let result = write(SLOTS[slot], &bytes).await;
                        if result.is_ok() {
                            this.0.update_value(|q| q.good = Some(slot));
                        }
                        done(step, result);
                    }
                    Op::Clear => {
                        for slot in SLOTS.iter().chain(&OLD_SLOTS) {
                            remove(slot).await;
                        }
                        this.0.update_value(|q| q.good = None);
                    }
                }
            }
            this.0.update_value(|q| q.busy = false);
        });
    }

    /// The newest of the run states kept, by `newest` (a damaged or half-written file is
    /// skipped), and remembers its slot so the next save leaves it alone.
    pub async fn load<T>(&self, parse: impl Fn(&[u8]) -> Option<T>, newest: impl Fn(&T) -> f64) -> Option<T> {
        let mut best: Option<(usize, T)> = None;
        for (slot, name) in SLOTS.iter().enumerate() {
            let Some(run) = read(name).await.and_then(|b| parse(&b)) else {
                continue;
            };
            if best.as_ref().is_none_or(|(_, b)| newest(&run) > newest(b)) {
                best = Some((slot, run));
            }
        }
        let (slot, run) = best?;
        self.0.update_value(|q| q.good = Some(slot));
        Some(run)
    }
}
