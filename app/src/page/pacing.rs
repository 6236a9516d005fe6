//! The reading pace: the story as fast as the engine writes it, or at a typewriter's pace so a
//! class can watch the tokens arrive. The worker's pieces (one per token) wait here and are shown
//! one per tick; the engine's own speed is reported unchanged. Stop drops what still waits.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;

use crate::protocol::RunStats;

/// The typewriter's pace.
pub const TYPEWRITER_TOKENS_PER_S: u32 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingPace {
    Fast,
    Typewriter,
}

impl ReadingPace {
    pub const ALL: [ReadingPace; 2] = [ReadingPace::Fast, ReadingPace::Typewriter];

    /// The typewriter in presentation mode, else as fast as it goes.
    pub fn default_for(present: bool) -> ReadingPace {
        if present {
            ReadingPace::Typewriter
        } else {
            ReadingPace::Fast
        }
    }
    pub fn key(self) -> &'static str {
        match self {
            ReadingPace::Fast => "fast",
            ReadingPace::Typewriter => "typewriter",
        }
    }
    pub fn from_key(key: &str) -> Option<ReadingPace> {
        ReadingPace::ALL.into_iter().find(|p| p.key() == key)
    }
    pub fn label(self) -> String {
        match self {
            ReadingPace::Fast => "As fast as it goes".into(),
            ReadingPace::Typewriter => format!("Typewriter ({TYPEWRITER_TOKENS_PER_S} tokens/s)"),
        }
    }
}

pub type OnEnd = Rc<dyn Fn(RunStats, bool)>;

#[derive(Default)]
struct Queue {
    pieces: VecDeque<String>,
    /// The worker's end of the run (figures, stopped), once it came.
    end: Option<(RunStats, bool)>,
    /// Pieces shown so far in this run.
    shown: usize,
    stopped: bool,
    tick: Option<TimeoutHandle>,
    on_end: Option<OnEnd>,
}

/// The story as shown, fed by the worker's pieces at the chosen pace.
#[derive(Clone, Copy)]
pub struct Reveal {
    pub pace: RwSignal<ReadingPace>,
    story: RwSignal<String>,
    queue: StoredValue<Queue, LocalStorage>,
}

impl Reveal {
    pub fn new(story: RwSignal<String>, present: bool) -> Reveal {
        Reveal { pace: RwSignal::new(ReadingPace::default_for(present)), story, queue: StoredValue::new_local(Queue::default()) }
    }

    /// What runs when the last piece of a run is shown (or the run stopped): its figures, and
    /// whether it was stopped.
    pub fn on_end(&self, f: OnEnd) {
        self.queue.update_value(|q| q.on_end = Some(f));
    }

    /// A new run: nothing waits, nothing is shown.
    pub fn start(&self) {
        self.queue.update_value(|q| {
            if let Some(t) = q.tick.take() {
                t.clear();
            }
            q.pieces.clear();
            q.end = None;
            q.shown = 0;
            q.stopped = false;
        });
    }

    /// The worker's new pieces: shown now, or queued for the typewriter.
    pub fn push(&self, pieces: &[String]) {
        let fast = self.pace.get_untracked() == ReadingPace::Fast;
        let now = self.queue.try_update_value(|q| {
            if q.stopped {
                return None;
            }
            if fast && q.pieces.is_empty() {
                q.shown += pieces.len();
                return Some(pieces.concat());
            }
            q.pieces.extend(pieces.iter().cloned());
            None
        });
        match now.flatten() {
            Some(text) => self.story.update(|s| s.push_str(&text)),
            None => self.schedule(),
        }
    }

    /// The worker ended the run; it ends on the page once every piece is shown.
    pub fn finish(&self, stats: RunStats, stopped: bool) {
        let done = self.queue.try_update_value(|q| {
            q.end = Some((stats, stopped));
            if q.pieces.is_empty() {
                ended(q)
            } else {
                None
            }
        });
        if let Some(end) = done.flatten() {
            end();
        }
    }

    /// Stop: what still waits is never shown. The run ends now if the worker has ended it.
    pub fn stop(&self) {
        let done = self.queue.try_update_value(|q| {
            q.stopped = true;
            q.pieces.clear();
            if let Some(t) = q.tick.take() {
                t.clear();
            }
            ended(q)
        });
        if let Some(end) = done.flatten() {
            end();
        }
    }

    fn schedule(&self) {
        let this = *self;
        let idle = self.queue.with_value(|q| q.tick.is_none() && !q.pieces.is_empty());
        if !idle {
            return;
        }
        let every = Duration::from_millis(1000 / u64::from(TYPEWRITER_TOKENS_PER_S));
        let handle = set_timeout_with_handle(move || this.tick(), every).ok();
        self.queue.update_value(|q| q.tick = handle);
    }

    /// Shows the next piece (all of them if the pace was switched to fast meanwhile).
    fn tick(&self) {
        let fast = self.pace.get_untracked() == ReadingPace::Fast;
        let step = self.queue.try_update_value(|q| {
            q.tick = None;
            let n = if fast { q.pieces.len() } else { 1.min(q.pieces.len()) };
            q.shown += n;
            let text: String = q.pieces.drain(..n).collect();
            let end = if q.pieces.is_empty() { ended(q) } else { None };
            (text, end)
        });
        let Some((text, end)) = step else { return };
        if !text.is_empty() {
            self.story.update(|s| s.push_str(&text));
        }
        match end {
            Some(end) => end(),
            None => self.schedule(),
        }
    }
}

/// The run's end as the page reports it: a stopped run counts the tokens shown.
fn ended(q: &Queue) -> Option<Box<dyn FnOnce()>> {
    let (mut stats, stopped) = q.end?;
    let stopped = stopped || q.stopped;
    if q.stopped {
        let prompt = stats.tokens.saturating_sub(stats.generated);
        stats.generated = q.shown.min(stats.generated);
        stats.tokens = prompt + stats.generated;
    }
    let f = q.on_end.clone()?;
    Some(Box::new(move || f(stats, stopped)))
}
