//! The one cancellation type for all long work in the worker (a story, an inspection, the
//! logit lens, a training run): the page cancels every piece of work up to an id (with a
//! reason, e.g. Pause or Stop for training), as its message arrives; the work checks between
//! its steps. Ids grow, so cancelling one cancels the older ones too.

use std::cell::Cell;
use std::rc::Rc;

#[derive(Clone)]
pub struct Cancel<R: Copy = ()>(Rc<Cell<Option<(u64, R)>>>);

impl<R: Copy> Default for Cancel<R> {
    fn default() -> Self {
        Cancel(Rc::new(Cell::new(None)))
    }
}

impl<R: Copy> Cancel<R> {
    /// Cancels work `id` and every older one, for `why` (the newest reason wins).
    pub fn cancel(&self, id: u64, why: R) {
        let up_to = self.0.get().map_or(0, |(i, _)| i);
        self.0.set(Some((id.max(up_to), why)));
    }

    /// Why work `id` was cancelled, if it was.
    pub fn reason(&self, id: u64) -> Option<R> {
        self.0.get().filter(|(up_to, _)| id <= *up_to).map(|(_, why)| why)
    }

    pub fn is_cancelled(&self, id: u64) -> bool {
        self.reason(id).is_some()
    }
}

/// The worker's cancellations, one per kind of long work.
#[derive(Clone, Default)]
pub struct Cancels {
    /// Stories, by run id.
    pub generate: Cancel,
    /// Inspections, by request id.
    pub inspect: Cancel,
    /// Logit lens requests, by their `seq`: a newer one supersedes the older.
    pub lens: Cancel,
    /// Experiments (knock-outs, patching, steering), by request id.
    pub experiment: Cancel,
    /// Training runs, by job id, with how they end.
    pub train: Cancel<crate::protocol::train::Ending>,
    /// Build runs (growing a model), by job id, with how they end.
    pub build: Cancel<crate::protocol::train::Ending>,
    /// Shelf downloads, by job id.
    pub shelf: Cancel,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::train::Ending;

    #[test]
    fn cancelling_an_id_cancels_the_older_ones() {
        let c: Cancel = Cancel::default();
        assert!(!c.is_cancelled(1));
        c.cancel(3, ());
        assert!(c.is_cancelled(1) && c.is_cancelled(3) && !c.is_cancelled(4));
        // An older cancel never un-cancels a newer id.
        c.cancel(2, ());
        assert!(c.is_cancelled(3));
    }

    #[test]
    fn the_newest_reason_wins() {
        let c: Cancel<Ending> = Cancel::default();
        c.cancel(5, Ending::Paused);
        assert_eq!(c.reason(5), Some(Ending::Paused));
        c.cancel(5, Ending::Stopped);
        assert_eq!(c.reason(5), Some(Ending::Stopped));
        assert_eq!(c.reason(6), None);
        assert_eq!(c.clone().reason(4), Some(Ending::Stopped), "clones share the state");
    }
}
