//! Keeps the Train view's data on this device, in the origin-private file system (OPFS): the
//! current run's last checkpoint (with its text), as a JSON file in a folder of its own. (The
//! adapter library uses `crate::storage`.) Called through `Reflect`, so no unstable web-sys API is needed.
//!
//! A checkpoint is never lost to a crash or a full disk mid-write: the run is kept in two
//! files written in turn ([`SLOTS`]), a write never touches the file holding the newest good
//! checkpoint, and reading takes the newest one that parses.

use std::cell::{Cell, RefCell};

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

const FOLDER: &str = "tinylm-train";
/// The two files a run is kept in, in turn (the first is also where older builds kept it).
pub const SLOTS: [&str; 2] = ["run.json", "run-b.json"];

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
        // The file changes only on close(); a failed write is aborted, leaving it as it was.
        if let Err(e) = call(&w, "write", &[text.into()]).await {
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

/// What the run's writer does next.
enum Op {
    /// Save this run state (JSON) of this step.
    Save(String, u32),
    /// The run ended: forget it.
    Clear,
}

thread_local! {
    /// The newest operation waiting, and whether the writer is busy: one write at a time, and
    /// only the newest waiting one is kept.
    static QUEUE: RefCell<(Option<Op>, bool)> = const { RefCell::new((None, false)) };
    /// Which slot holds the newest good checkpoint; the next write goes to the other one.
    static GOOD: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Called after each save with the step and how it went.
pub type Done = fn(u32, Result<(), String>);

/// Saves the run state `json` (of step `step`) in the slot not holding the newest good one.
pub fn save(json: String, step: u32, done: Done) {
    push(Op::Save(json, step), done);
}

/// Removes the run (after the ones queued before it).
pub fn clear() {
    push(Op::Clear, |_, _| {});
}

fn push(op: Op, done: Done) {
    let start = QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        q.0 = Some(op);
        !std::mem::replace(&mut q.1, true)
    });
    if !start {
        return;
    }
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(op) = QUEUE.with(|q| q.borrow_mut().0.take()) {
            match op {
                Op::Save(json, step) => {
                    let slot = GOOD.with(|g| g.get().map_or(0, |s| 1 - s));
                    let result = write(SLOTS[slot], &json).await;
                    if result.is_ok() {
                        GOOD.with(|g| g.set(Some(slot)));
                    }
                    done(step, result);
                }
                Op::Clear => {
                    for slot in SLOTS {
                        remove(slot).await;
                    }
                    GOOD.with(|g| g.set(None));
                }
            }
        }
        QUEUE.with(|q| q.borrow_mut().1 = false);
    });
}

/// The newest of the run states kept, by `newest` (a damaged or half-written file is skipped),
/// and remembers its slot so the next save leaves it alone.
pub async fn load<T>(parse: impl Fn(&str) -> Option<T>, newest: impl Fn(&T) -> f64) -> Option<T> {
    let mut best: Option<(usize, T)> = None;
    for (slot, name) in SLOTS.iter().enumerate() {
        let Some(run) = read(name).await.and_then(|s| parse(&s)) else {
            continue;
        };
        if best.as_ref().is_none_or(|(_, b)| newest(&run) > newest(b)) {
            best = Some((slot, run));
        }
    }
    let (slot, run) = best?;
    GOOD.with(|g| g.set(Some(slot)));
    Some(run)
}
