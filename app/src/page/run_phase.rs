//! Where a training run is: the one phase type of the Train view's (LoRA) and the Build view's
//! (from nothing) runs, which pause, resume and end alike.

use crate::protocol::train::Ending;

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Idle,
    Running,
    /// Pause or Stop was pressed; the worker ends after its current step.
    Ending,
    /// Paused, or a run kept from an earlier visit: Resume continues it.
    Paused,
    /// Finished or stopped (the Train view also ends a pause that left no snapshot here).
    Done(Ending),
    Failed(String),
}

impl Phase {
    /// How a run ended, as a phase.
    pub fn ended(e: Ending) -> Phase {
        match e {
            Ending::Paused => Phase::Paused,
            e => Phase::Done(e),
        }
    }

    /// The name tests and styles read (`data-phase`).
    pub fn key(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Running => "running",
            Phase::Ending => "ending",
            Phase::Paused => "paused",
            Phase::Done(Ending::Finished) => "finished",
            Phase::Done(_) => "stopped",
            Phase::Failed(_) => "error",
        }
    }

    /// Running, or ending after its step.
    pub fn busy(&self) -> bool {
        matches!(self, Phase::Running | Phase::Ending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_map_to_phases_and_keys() {
        assert_eq!(Phase::ended(Ending::Paused), Phase::Paused);
        assert_eq!(Phase::ended(Ending::Finished).key(), "finished");
        assert_eq!(Phase::ended(Ending::Stopped).key(), "stopped");
        assert!(Phase::Ending.busy() && Phase::Running.busy() && !Phase::Paused.busy());
    }
}
