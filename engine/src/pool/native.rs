//! `Workers`: persistent native threads for `Pool`. A call publishes the task (a new epoch in
//! one atomic word), wakes the workers, takes tasks itself, and waits for the last one; workers
//! spin briefly between calls (decode calls the pool ~30–50 times a token, microseconds apart)
//! and then sleep, so an idle engine costs nothing.
//!
//! Hand-written rather than rayon: decode calls the pool ~50 times a token for a few tens of
//! microseconds of work each, and the same kernels split this way ran s15m decode on two threads
//! 5–18% faster than on rayon's pool (side by side, README "CPU threads"); and a wasm host needs
//! the same split behind its own workers (issue 20), which rayon's scheduler does not give.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use super::Pool;

/// Tasks per published round (the claim word has 16 bits for the count); more run in rounds.
const MAX_TASKS: usize = 0xffff;
/// How long an idle worker polls for the next call before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

type Task<'a> = &'a (dyn Fn(usize) + Sync);

/// State shared by the caller and the workers.
struct Shared {
    /// `epoch << 32 | n_tasks << 16 | next_task`: a task is taken by raising `next_task` while the
    /// epoch is the one the taker saw, so a worker late from an earlier call takes nothing.
    claim: AtomicU64,
    /// Tasks of the current epoch that have returned.
    done: AtomicUsize,
    /// The current call's task: points at the caller's `Task` (alive until `done == n_tasks`).
    task: AtomicPtr<Task<'static>>,
    panicked: AtomicBool,
    shutdown: AtomicBool,
}

impl Shared {
    /// Takes the next task of `epoch`, if any is left.
    fn take(&self, epoch: u64) -> Option<usize> {
        let mut c = self.claim.load(Acquire);
        loop {
            let (n, next) = ((c >> 16) & 0xffff, c & 0xffff);
            if c >> 32 != epoch || next >= n {
                return None;
            }
            match self.claim.compare_exchange_weak(c, c + 1, AcqRel, Acquire) {
                Ok(_) => return Some(next as usize),
                Err(now) => c = now,
            }
        }
    }

    /// Runs the tasks of `epoch` this thread can take.
    fn work(&self, epoch: u64) {
        while let Some(i) = self.take(epoch) {
            // SAFETY: task `i` of this epoch is not yet done, so the caller is still inside `run`
            // and the `Task` it published (before the epoch, with Release) is alive.
            let task = unsafe { *self.task.load(Acquire) };
            if catch_unwind(AssertUnwindSafe(|| super::as_task(|| task(i)))).is_err() {
                self.panicked.store(true, Relaxed);
            }
            self.done.fetch_add(1, Release);
        }
    }
}

/// `threads − 1` persistent worker threads plus the calling thread.
pub struct Workers {
    shared: Arc<Shared>,
    threads: Vec<Thread>,
    handles: Vec<JoinHandle<()>>,
    /// One call at a time; a second caller meanwhile runs its tasks on its own thread.
    calling: Mutex<u64>,
}

impl Workers {
    /// A pool of `threads` threads in all (at least 1: then no worker is started).
    pub fn new(threads: usize) -> Workers {
        let shared = Arc::new(Shared {
            claim: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            task: AtomicPtr::new(std::ptr::null_mut()),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        });
        let handles: Vec<JoinHandle<()>> = (1..threads.max(1))
            .map(|k| {
                let s = shared.clone();
                thread::Builder::new()
                    .name(format!("tinylm-cpu-{k}"))
                    .spawn(move || worker(&s))
                    .expect("the operating system refused to start a CPU worker thread")
            })
            .collect();
        let threads = handles.iter().map(|h| h.thread().clone()).collect();
        Workers { shared, threads, handles, calling: Mutex::new(0) }
    }

    fn round(&self, epoch: u64, n: usize, task: Task) {
        let s = &*self.shared;
        // Published before the epoch (Release on `claim`), read by takers after they take.
        let slot: *const Task = &task;
        s.task.store(slot as *mut Task<'static>, Release);
        s.done.store(0, Relaxed);
        s.claim.store(epoch << 32 | (n as u64) << 16, Release);
        for t in &self.threads {
            t.unpark();
        }
        s.work(epoch);
        wait_until(|| s.done.load(Acquire) == n);
    }
}

impl Pool for Workers {
    fn threads(&self) -> usize {
        self.threads.len() + 1
    }

    fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        if n_tasks == 0 {
            return;
        }
        let Ok(mut epoch) = self.calling.try_lock() else {
            // Another thread is calling this pool: do this call's work here instead of waiting.
            return super::as_task(|| (0..n_tasks).for_each(task));
        };
        for start in (0..n_tasks).step_by(MAX_TASKS) {
            let n = MAX_TASKS.min(n_tasks - start);
            *epoch = (*epoch + 1) & 0xffff_ffff;
            self.round(*epoch, n, &|i| task(start + i));
        }
        if self.shared.panicked.swap(false, Relaxed) {
            drop(epoch);
            resume_unwind(Box::new("a CPU pool task panicked"));
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Release);
        // A new epoch with no tasks wakes every worker, which then sees the shutdown.
        self.shared.claim.fetch_add(1 << 32, Release);
        for t in &self.threads {
            t.unpark();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

fn worker(s: &Shared) {
    let mut seen = 0;
    loop {
        let epoch = wait_for_epoch(s, seen);
        if s.shutdown.load(Acquire) {
            return;
        }
        seen = epoch;
        s.work(epoch);
    }
}

/// Polls for an epoch other than `seen` for `SPIN`, then sleeps until woken (`unpark`).
fn wait_for_epoch(s: &Shared, seen: u64) -> u64 {
    let start = Instant::now();
    let mut polls = 0u32;
    loop {
        let epoch = s.claim.load(Acquire) >> 32;
        if epoch != seen || s.shutdown.load(Acquire) {
            return epoch;
        }
        polls = polls.wrapping_add(1);
        if !polls.is_multiple_of(64) {
            std::hint::spin_loop();
        } else if start.elapsed() > SPIN {
            // `unpark` before `park` makes `park` return at once: no wake-up is lost.
            thread::park();
        } else {
            thread::yield_now();
        }
    }
}

/// Spins on `ready`, yielding the core between polls after the first few (a worker that was
/// descheduled mid-task needs it).
fn wait_until(ready: impl Fn() -> bool) {
    let mut polls = 0u32;
    while !ready() {
        polls += 1;
        if polls < 256 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}
