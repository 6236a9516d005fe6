//! Long CPU work in the worker runs in time slices: a yield to the event loop when a slice is
//! spent (so a Stop sent by the page is seen and progress shows), progress posted at most every
//! `PROGRESS_MS`, and whether the page stopped the work. Inspect and the experiments pace their
//! loops with it; each says in its own message what the progress is.

use super::bridge::{now_ms, post, yield_now};
use super::cancel::Cancel;
use crate::protocol::FromWorker;

/// CPU work between yields: short enough that Stop feels instant.
const SLICE_MS: f64 = 25.0;
/// Progress is sent at most this often.
const PROGRESS_MS: f64 = 100.0;

pub struct TimeSlices<'a> {
    pub id: u64,
    stop: &'a Cancel,
    slice: f64,
    posted: f64,
}

impl<'a> TimeSlices<'a> {
    pub fn new(id: u64, stop: &'a Cancel) -> TimeSlices<'a> {
        TimeSlices { id, stop, slice: now_ms(), posted: f64::NEG_INFINITY }
    }

    /// After a chunk of work: posts `progress()` when it is time to, yields when the slice is
    /// spent; true when the page stopped this work.
    pub async fn tick(&mut self, progress: impl FnOnce() -> FromWorker) -> bool {
        if now_ms() - self.posted >= PROGRESS_MS {
            self.posted = now_ms();
            post(&progress());
        }
        if now_ms() - self.slice >= SLICE_MS {
            yield_now().await;
            self.slice = now_ms();
        }
        self.stopped()
    }

    pub fn stopped(&self) -> bool {
        self.stop.is_cancelled(self.id)
    }
}
