//! The CPU kernels' threads: a fixed set of workers behind one small interface, `Pool::run(n,
//! &task)`, which calls `task(i)` for every `i < n` on any of its threads and returns when all
//! have returned.
//!
//! Kernels split their work into tasks whose results do not depend on which thread runs them or
//! how many there are (rows of a product in fixed blocks, attention heads), so any pool gives
//! the single-thread result bit for bit. Natively the pool is `Workers` (persistent threads,
//! no spin-up per call); in wasm it is `Serial` until a host installs its own: in the threaded
//! build (`+atomics`) that is `Workers::hosted`, whose threads are Web Workers sharing the
//! module's memory (issue 20).
//!
//! Kernels ask for `current()`: the pool `install`ed on this thread, else the process default
//! (`set_default`, natively all cores). Inside a task `current()` is `Serial`, so a kernel called
//! from a task never waits on its own pool.

#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
mod workers;

use std::cell::{Cell, RefCell};
use std::sync::{Arc, OnceLock, RwLock};

#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
pub use workers::Workers;

/// A fixed set of threads that runs numbered tasks.
pub trait Pool: Send + Sync {
    /// Threads that run tasks, the calling thread included.
    fn threads(&self) -> usize;
    /// Calls `task(i)` exactly once for every `i in 0..n_tasks`, on any of the pool's threads
    /// (the caller's included), and returns when every call has returned. A panicking task
    /// panics here, after the others have finished.
    fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync));
    /// Threads taking tasks now, the caller's included: fewer than `threads` while a host's
    /// workers are still starting.
    fn running(&self) -> usize {
        self.threads()
    }
}

/// One thread: the tasks in order on the caller's thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Serial;

impl Pool for Serial {
    fn threads(&self) -> usize {
        1
    }
    fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..n_tasks).for_each(task);
    }
}

thread_local! {
    /// The pool `install`ed on this thread.
    static INSTALLED: RefCell<Option<Arc<dyn Pool>>> = const { RefCell::new(None) };
    /// Set while this thread runs a pool's task (always on a worker).
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

fn default_slot() -> &'static RwLock<Option<Arc<dyn Pool>>> {
    static SLOT: OnceLock<RwLock<Option<Arc<dyn Pool>>>> = OnceLock::new();
    SLOT.get_or_init(|| RwLock::new(None))
}

/// The pool kernels use on this thread: `Serial` inside a task, else the `install`ed one, else
/// the default.
pub fn current() -> Arc<dyn Pool> {
    if in_task() {
        return serial();
    }
    if let Some(p) = INSTALLED.with(|i| i.borrow().clone()) {
        return p;
    }
    if let Some(p) = default_slot().read().unwrap_or_else(|e| e.into_inner()).clone() {
        return p;
    }
    let mut slot = default_slot().write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(make_default).clone()
}

/// `Serial`, shared (so asking for it inside a task allocates nothing).
fn serial() -> Arc<dyn Pool> {
    static SERIAL: OnceLock<Arc<dyn Pool>> = OnceLock::new();
    SERIAL.get_or_init(|| Arc::new(Serial)).clone()
}

/// Natively `TINYLM_THREADS` threads when that is set to a count, else every core
/// (`available_parallelism`); in wasm one thread.
fn make_default() -> Arc<dyn Pool> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let cores = || std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = std::env::var(THREADS_VAR).ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n > 0);
        return with_threads(n.unwrap_or_else(cores));
    }
    #[allow(unreachable_code)]
    serial()
}

/// The environment variable that sets the default pool's thread count natively (as
/// `RAYON_NUM_THREADS` did before the pool).
pub const THREADS_VAR: &str = "TINYLM_THREADS";

/// Replaces the process's default pool (e.g. a wasm host's Web Workers, once they are up).
pub fn set_default(pool: Arc<dyn Pool>) {
    *default_slot().write().unwrap_or_else(|e| e.into_inner()) = Some(pool);
}

/// Runs `f` with `pool` as this thread's pool (what `current()` returns), then restores the
/// previous one.
pub fn install<R>(pool: Arc<dyn Pool>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<dyn Pool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            INSTALLED.with(|i| *i.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(INSTALLED.with(|i| i.borrow_mut().replace(pool)));
    f()
}

/// A pool of `n` threads: `Serial` for one, natively `Workers` for more (wasm: `Serial`).
pub fn with_threads(n: usize) -> Arc<dyn Pool> {
    #[cfg(not(target_arch = "wasm32"))]
    if n > 1 {
        return Arc::new(Workers::new(n));
    }
    let _ = n;
    serial()
}

/// Whether this thread is running a pool's task (so a pool's other threads may be streaming
/// weights beside it).
pub fn in_task() -> bool {
    IN_TASK.with(Cell::get)
}

/// Marks this thread as running tasks while `f` runs, so kernels inside stay on it. Every `Pool`
/// runs its tasks inside this (a wasm pool's Web Workers too), so no task waits on a pool.
pub fn as_task<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_TASK.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(IN_TASK.with(|c| c.replace(true)));
    f()
}

/// Calls `f(i, chunk)` for the `i`-th chunk of `size` elements of `out` (the last may be
/// shorter), one task per chunk.
pub fn for_chunks<T: Send>(pool: &dyn Pool, out: &mut [T], size: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    for_chunks_of(pool, [out], [size], |_, i, chunk| f(i, chunk));
}

/// `for_chunks` over two outputs split into the same number of chunks: `f(i, a_i, b_i)`.
pub fn for_chunks2<A: Send, B: Send>(
    pool: &dyn Pool,
    a: &mut [A],
    a_size: usize,
    b: &mut [B],
    b_size: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync,
) {
    let (pa, pb) = (Parts::new(a, a_size), Parts::new(b, b_size));
    assert_eq!(pa.count(), pb.count(), "for_chunks2: the outputs split into different numbers of chunks");
    // SAFETY: as `for_chunks`, for each output.
    pool.run(pa.count(), &|i| f(i, unsafe { pa.get(i) }, unsafe { pb.get(i) }));
}

/// `for_chunks2` over `N` outputs of one type: output `j` in chunks of `sizes[j]`, every output in
/// the same number of chunks, `f(i, [chunk i of each output])`.
pub fn for_zipped_chunks<T: Send, const N: usize>(
    pool: &dyn Pool,
    outs: [&mut [T]; N],
    sizes: [usize; N],
    f: impl Fn(usize, [&mut [T]; N]) + Sync,
) {
    let mut size = sizes.into_iter();
    let parts = outs.map(|o| Parts::new(o, size.next().unwrap_or(1)));
    let count = parts.first().map_or(0, Parts::count);
    assert!(parts.iter().all(|p| p.count() == count), "for_zipped_chunks: the outputs split into different numbers of chunks");
    // SAFETY: as `for_chunks`, for each output: task `i` alone takes chunk `i` of each.
    pool.run(count, &|i| f(i, std::array::from_fn(|j| unsafe { parts[j].get(i) })));
}

/// `for_chunks` over several outputs in one pool call: output `j` in chunks of `sizes[j]`, each
/// chunk one task, `f(j, i, chunk)` for the `i`-th chunk of output `j`.
pub fn for_chunks_of<T: Send, const N: usize>(
    pool: &dyn Pool,
    outs: [&mut [T]; N],
    sizes: [usize; N],
    f: impl Fn(usize, usize, &mut [T]) + Sync,
) {
    let mut size = sizes.into_iter();
    let parts = outs.map(|o| Parts::new(o, size.next().unwrap_or(1)));
    let total = parts.iter().map(Parts::count).sum();
    pool.run(total, &|mut i| {
        let mut j = 0;
        while i >= parts[j].count() {
            i -= parts[j].count();
            j += 1;
        }
        // SAFETY: as `for_chunks`: each task index maps to one (output, chunk) pair.
        f(j, i, unsafe { parts[j].get(i) })
    });
}

/// A mutable slice cut into chunks that tasks take one each.
struct Parts<T> {
    ptr: *mut T,
    len: usize,
    size: usize,
}

// SAFETY: `Parts` only hands out disjoint chunks (see `get`), so sharing it is sharing `&mut [T]`s
// of distinct elements, which `T: Send` allows.
unsafe impl<T: Send> Sync for Parts<T> {}

impl<T> Parts<T> {
    fn new(s: &mut [T], size: usize) -> Parts<T> {
        Parts { ptr: s.as_mut_ptr(), len: s.len(), size: size.max(1) }
    }
    fn count(&self) -> usize {
        self.len.div_ceil(self.size)
    }
    /// Chunk `i`.
    ///
    /// # Safety
    /// No two live references may come from the same `i` (the pool gives each index once).
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self, i: usize) -> &mut [T] {
        let start = i * self.size;
        assert!(start < self.len, "chunk {i} out of range");
        let n = self.size.min(self.len - start);
        // SAFETY: `start + n <= len`, within the slice `new` borrowed mutably for our lifetime;
        // disjoint from every other index's chunk.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), n) }
    }
}

/// Rows per task for a matrix of `rows × cols` floats on `threads` threads: a multiple of 8
/// (the SIMD kernels take rows eight at a time, so blocks keep their grouping and the result
/// is the one-block result bit for bit), at most `CACHE_BLOCK` bytes of weights (a task's rows
/// stream through L1/L2 once), and small enough that every thread gets several blocks.
pub fn block_rows(rows: usize, cols: usize, threads: usize) -> usize {
    let by_cache = (CACHE_BLOCK / (4 * cols.max(1))).max(8) / 8 * 8;
    let by_balance = rows.div_ceil(4 * threads.max(1)).div_ceil(8) * 8;
    by_cache.min(by_balance).max(8)
}

/// Bytes of weights per task (`block_rows`): half of a 1–2 MiB L2 (Zen 4, Skylake). Against 64 KiB,
/// s15m on two threads decoded ≈9% faster (alternating runs here): the classifier goes in fewer,
/// longer sequential streams, and layer matrices are split by `by_balance` either way.
const CACHE_BLOCK: usize = 512 << 10;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    #[test]
    fn every_task_runs_once_on_any_pool() {
        for pool in [with_threads(1), with_threads(2), with_threads(5)] {
            for n in [0, 1, 3, 64, 1000, 70_000] {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                pool.run(n, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "{} threads, {n} tasks", pool.threads());
            }
        }
    }

    #[test]
    fn chunks_cover_the_slice_once() {
        let pool = with_threads(3);
        let mut v = vec![0u32; 1001];
        for_chunks(&*pool, &mut v, 64, |i, c| c.iter_mut().for_each(|x| *x += i as u32 + 1));
        for (j, x) in v.iter().enumerate() {
            assert_eq!(*x, (j / 64) as u32 + 1);
        }
    }

    #[test]
    fn kernels_inside_a_task_see_one_thread() {
        let pool = with_threads(2);
        let inner = AtomicUsize::new(0);
        install(pool.clone(), || {
            assert_eq!(current().threads(), 2);
            pool.run(8, &|_| {
                inner.fetch_max(current().threads(), Ordering::Relaxed);
            });
        });
        assert_eq!(inner.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn install_is_scoped() {
        let before = current().threads();
        install(Arc::new(Serial), || assert_eq!(current().threads(), 1));
        assert_eq!(current().threads(), before);
    }

    #[test]
    fn a_panicking_task_panics_in_the_caller_and_the_pool_goes_on() {
        let pool = with_threads(2);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(16, &|i| assert!(i != 11, "task 11 fails"));
        }));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        pool.run(16, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 16);
    }

    /// The web build's shape: a hosted pool, with threads the host starts (here std threads,
    /// there Web Workers) calling `serve`, some late, gives every task once and kernels' results
    /// equal to `Serial`'s bit for bit.
    #[test]
    fn a_hosted_pool_runs_tasks_before_and_after_its_threads_start() {
        let pool = Arc::new(Workers::hosted(3));
        let sums = |p: &dyn Pool| {
            let mut out = vec![0f32; 1000];
            for_chunks(p, &mut out, 8, |b, o| o.iter_mut().enumerate().for_each(|(j, x)| *x = ((b * 8 + j) as f32).sqrt() * 0.1));
            out
        };
        let serial = sums(&Serial);
        assert_eq!(sums(&*pool), serial, "no thread started yet: the caller runs every task");
        assert_eq!((pool.threads(), pool.running()), (3, 1));
        let hosts: Vec<_> = (0..2)
            .map(|_| {
                let p = pool.clone();
                std::thread::spawn(move || p.serve())
            })
            .collect();
        while pool.started() < 2 {
            std::thread::yield_now();
        }
        assert_eq!((pool.threads(), pool.running()), (3, 3));
        let seen = Mutex::new(std::collections::HashSet::new());
        for _ in 0..200 {
            assert_eq!(sums(&*pool), serial);
            pool.run(64, &|_| {
                seen.lock().unwrap().insert(std::thread::current().id());
                // Work the optimizer cannot fold away (a sum's closed form would be instant),
                // long enough that the woken threads take some tasks.
                let t = std::time::Instant::now();
                while t.elapsed() < std::time::Duration::from_micros(20) {
                    std::hint::spin_loop();
                }
            });
        }
        assert!(seen.lock().unwrap().len() > 1, "the hosted threads took tasks");
        pool.stop();
        for h in hosts {
            h.join().unwrap();
        }
    }

    #[test]
    fn blocks_are_multiples_of_eight_and_cache_sized() {
        assert_eq!(block_rows(288, 288, 2), 40);
        assert_eq!(block_rows(32000, 288, 2), 448);
        assert_eq!(block_rows(5, 64, 2), 8);
        for (r, c, t) in [(1, 1, 1), (768, 288, 2), (288, 768, 16), (32000, 4096, 8)] {
            let b = block_rows(r, c, t);
            assert!(b.is_multiple_of(8) && b >= 8, "{r}x{c} on {t}: {b}");
        }
    }
}
