//! `Workers`: persistent threads for `Pool`. A call publishes the task (a new epoch in one atomic
//! word), wakes the workers, takes tasks itself, and waits for the last one; workers spin briefly
//! between calls (decode calls the pool ~30–50 times a token, microseconds apart) and then sleep,
//! so an idle engine costs nothing.
//!
//! Natively `Workers::new` starts the threads. In wasm built with `+atomics` (the threaded worker
//! build, issue 20) std cannot start threads, so `Workers::hosted` makes the pool and the host
//! starts Web Workers on the same module and shared memory, each of which calls `serve`: the same
//! claims, the same split, the same results bit for bit. (`park`/`unpark` are std's, on
//! `memory.atomic.wait32`/`notify` there.)
//!
//! Hand-written rather than rayon: decode calls the pool ~50 times a token for a few tens of
//! microseconds of work each, and the same kernels split this way ran s15m decode on two threads
//! 5–18% faster than on rayon's pool (side by side, README "CPU threads"); and a wasm host needs
//! the same split behind its own workers (issue 20), which rayon's scheduler does not give.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
#[cfg(not(target_arch = "wasm32"))]
use std::thread::JoinHandle;
use std::thread::{self, Thread};

use super::Pool;

/// Tasks per published round (the claim word has 16 bits for the count); more run in rounds.
const MAX_TASKS: usize = 0xffff;
/// How long an idle worker polls for the next call before it sleeps (natively a time; wasm has no
/// clock in std, so there a count of polls of about that length).
#[cfg(not(target_arch = "wasm32"))]
const SPIN: std::time::Duration = std::time::Duration::from_micros(200);
/// In V8 a poll is a plain load (wasm has no pause instruction), so 2^16 of them lasted only
/// tens of microseconds: the worker slept about once per s15m token and the next product waited
/// for its wake-up (a futex wake, slow in a VM). 2^20 keeps it polling through a token's gaps.
#[cfg(target_arch = "wasm32")]
const SPIN_POLLS: u32 = 1 << 20;

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
    /// A hosted thread stopped inside a task (a trap in its Web Worker): its task never finishes,
    /// so the caller stops waiting and fails instead of hanging.
    lost: AtomicBool,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            claim: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            task: AtomicPtr::new(std::ptr::null_mut()),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            lost: AtomicBool::new(false),
        }
    }
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
    /// Threads in all, the caller's included.
    size: usize,
    /// The workers that have started (a hosted pool's register as their hosts start them; tasks
    /// never depend on how many have, since the caller takes whatever is left).
    threads: Mutex<Vec<Thread>>,
    #[cfg(not(target_arch = "wasm32"))]
    handles: Vec<JoinHandle<()>>,
    /// One call at a time; a second caller meanwhile runs its tasks on its own thread.
    calling: Mutex<u64>,
}

impl Workers {
    /// A pool of `threads` threads in all (at least 1: then no worker is started).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(threads: usize) -> Workers {
        let shared = Arc::new(Shared::default());
        let handles: Vec<JoinHandle<()>> = (1..threads.max(1))
            .map(|k| {
                let s = shared.clone();
                thread::Builder::new()
                    .name(format!("tinylm-cpu-{k}"))
                    .spawn(move || worker(&s))
                    .expect("the operating system refused to start a CPU worker thread")
            })
            .collect();
        let started = Mutex::new(handles.iter().map(|h| h.thread().clone()).collect());
        Workers { shared, size: threads.max(1), threads: started, handles, calling: Mutex::new(0) }
    }

    /// A pool of `threads` threads in all whose workers the host starts: each of `threads − 1`
    /// host threads calls `serve`. Usable at once (the caller runs what no worker has taken).
    /// The web build's pool; natively its tests start std threads as the host.
    pub fn hosted(threads: usize) -> Workers {
        let shared = Arc::new(Shared::default());
        Workers {
            shared,
            size: threads.max(1),
            threads: Mutex::new(Vec::new()),
            #[cfg(not(target_arch = "wasm32"))]
            handles: Vec::new(),
            calling: Mutex::new(0),
        }
    }

    /// Runs this thread as one of the pool's workers until the pool is dropped (a hosted pool's
    /// Web Worker calls this and never returns while the engine lives).
    pub fn serve(&self) {
        self.threads.lock().unwrap_or_else(|e| e.into_inner()).push(thread::current());
        worker(&self.shared);
    }

    /// Workers that have started (`serve` or spawned), the caller not counted.
    pub fn started(&self) -> usize {
        self.threads.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Ends every worker's `serve` (a hosted pool's hosts hold it, so it is never dropped while
    /// they serve); later calls run on the caller alone.
    pub fn stop(&self) {
        self.shared.shutdown.store(true, Release);
        // A new epoch with no tasks wakes every worker, which then sees the shutdown.
        self.shared.claim.fetch_add(1 << 32, Release);
        self.wake();
    }

    /// Tells a waiting caller that a worker stopped inside a task (its host saw it trap).
    pub fn thread_lost(&self) {
        self.shared.lost.store(true, Release);
    }

    fn round(&self, epoch: u64, n: usize, task: Task) {
        let s = &*self.shared;
        // Published before the epoch (Release on `claim`), read by takers after they take.
        let slot: *const Task = &task;
        s.task.store(slot as *mut Task<'static>, Release);
        s.done.store(0, Relaxed);
        s.claim.store(epoch << 32 | (n as u64) << 16, Release);
        self.wake();
        s.work(epoch);
        wait_until(|| s.done.load(Acquire) == n || s.lost.load(Acquire));
    }

    fn wake(&self) {
        for t in self.threads.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            t.unpark();
        }
    }
}

impl Pool for Workers {
    fn threads(&self) -> usize {
        self.size
    }

    fn running(&self) -> usize {
        self.started() + 1
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
        if self.shared.lost.load(Acquire) {
            panic!("a CPU worker thread stopped in the middle of a task");
        }
        if self.shared.panicked.swap(false, Relaxed) {
            drop(epoch);
            resume_unwind(Box::new("a CPU pool task panicked"));
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
        #[cfg(not(target_arch = "wasm32"))]
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
    let mut spin = Spin::start();
    loop {
        let epoch = s.claim.load(Acquire) >> 32;
        if epoch != seen || s.shutdown.load(Acquire) {
            return epoch;
        }
        match spin.poll() {
            Poll::Spin => std::hint::spin_loop(),
            Poll::Yield => thread::yield_now(),
            // `unpark` before `park` makes `park` return at once: no wake-up is lost.
            Poll::Sleep => thread::park(),
        }
    }
}

/// An idle worker's spin: how long it has polled.
struct Spin {
    polls: u32,
    #[cfg(not(target_arch = "wasm32"))]
    start: std::time::Instant,
}

enum Poll {
    Spin,
    Yield,
    Sleep,
}

impl Spin {
    fn start() -> Spin {
        Spin {
            polls: 0,
            #[cfg(not(target_arch = "wasm32"))]
            start: std::time::Instant::now(),
        }
    }

    /// What to do after one more poll: spin, and every 64th poll yield or, once `SPIN` is over,
    /// sleep.
    fn poll(&mut self) -> Poll {
        self.polls = self.polls.wrapping_add(1);
        if !self.polls.is_multiple_of(64) {
            return Poll::Spin;
        }
        #[cfg(not(target_arch = "wasm32"))]
        let over = self.start.elapsed() > SPIN;
        #[cfg(target_arch = "wasm32")]
        let over = self.polls > SPIN_POLLS;
        if over {
            Poll::Sleep
        } else {
            Poll::Yield
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
