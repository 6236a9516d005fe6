//! The worker's router: each message goes to its feature's handler with the session (the
//! loaded models and the active one). Control messages (Stop, Pause, a newer lens request) act
//! on arrival through the one cancellation type; the rest wait their turn in the inbox.

use super::cancel::Cancels;
use super::inbox::{Inbox, Job, Work};
use super::inspect::Kept;
use super::session::Session;
use super::{bench, build, compare, experiments, generate, inspect, models, speed, train};
use crate::protocol::build::BuildCmd;
use crate::protocol::experiments::ExperimentRequest;
use crate::protocol::inspect::InspectCtl;
use crate::protocol::shelf::ShelfCmd;
use crate::protocol::train::{Ending, TrainCmd};
use crate::protocol::ToWorker;

pub struct Router {
    session: Session,
    cancels: Cancels,
    /// The Inspect view's state: the last inspection's residuals, for its logit lens.
    kept: Option<Kept>,
}

/// What a message does on arrival: a control acts at once (and is consumed unless it also has
/// work to queue); the rest is queued.
pub fn on_arrival(msg: ToWorker, cancels: &Cancels) -> Option<ToWorker> {
    match msg {
        ToWorker::Stop { run } => cancels.generate.cancel(run, ()),
        ToWorker::Train(TrainCmd::Pause { job }) => cancels.train.cancel(job, Ending::Paused),
        ToWorker::Train(TrainCmd::Stop { job }) => cancels.train.cancel(job, Ending::Stopped),
        ToWorker::Build(BuildCmd::Pause { job }) => cancels.build.cancel(job, Ending::Paused),
        ToWorker::Build(BuildCmd::Stop { job }) => cancels.build.cancel(job, Ending::Stopped),
        ToWorker::InspectCtl(InspectCtl::Stop { id }) => cancels.inspect.cancel(id, ()),
        ToWorker::Experiment(ExperimentRequest::Stop { id }) => cancels.experiment.cancel(id, ()),
        ToWorker::Shelf(ShelfCmd::Cancel { job }) => {
            cancels.shelf.cancel(job, ());
            super::shelf::abort();
        }
        ToWorker::InspectCtl(InspectCtl::Lens { seq, .. }) => {
            // A newer lens request ends the older ones early; it then waits its turn.
            cancels.lens.cancel(seq.saturating_sub(1), ());
            return Some(msg);
        }
        msg => return Some(msg),
    }
    None
}

impl Router {
    pub fn new(cancels: Cancels, inbox: Inbox) -> Router {
        Router { session: Session::new(inbox), cancels, kept: None }
    }

    pub async fn handle(&mut self, job: Job) {
        let s = &mut self.session;
        let msg = match job.msg {
            Work::Page(msg) => msg,
            Work::GpuReady => return speed::on_ready(s).await,
        };
        match msg {
            ToWorker::Load { source, choice, files } => models::load(s, source, files, choice).await,
            ToWorker::Select { model, choice } => models::select(s, model, choice).await,
            ToWorker::Generate { run, prompt, settings } => {
                let req = generate::Request { run, prompt, settings, t0: job.at };
                generate::run(s, req, &self.cancels.generate).await;
            }
            ToWorker::Compare(req) => compare::run(s, req, &self.cancels.generate).await,
            ToWorker::Inspect(req) => inspect::run(s, req, &mut self.kept, &self.cancels.inspect).await,
            ToWorker::InspectCtl(InspectCtl::Lens { id, seq, positions }) => {
                inspect::on_demand(s, &self.kept, id, seq, positions, &self.cancels.lens).await
            }
            ToWorker::Train(cmd) => train::handle(s, cmd, &self.cancels.train).await,
            ToWorker::Bench(req) => bench::handle(req).await,
            ToWorker::Build(cmd) => build::handle(cmd, &self.cancels.build).await,
            ToWorker::Experiment(req) => experiments::handle(s, req, &self.cancels.experiment).await,
            // Controls acted on arrival (`on_arrival`); downloads start there too (`worker::start`).
            ToWorker::Stop { .. } | ToWorker::InspectCtl(InspectCtl::Stop { .. }) | ToWorker::Shelf(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_act_on_arrival_and_work_is_queued() {
        let c = Cancels::default();
        assert!(on_arrival(ToWorker::Stop { run: 4 }, &c).is_none());
        assert!(c.generate.is_cancelled(4) && !c.generate.is_cancelled(5));
        assert!(on_arrival(ToWorker::Train(TrainCmd::Pause { job: 2 }), &c).is_none());
        assert_eq!(c.train.reason(2), Some(Ending::Paused));
        assert!(on_arrival(ToWorker::InspectCtl(InspectCtl::Stop { id: 9 }), &c).is_none());
        assert!(c.inspect.is_cancelled(9));
        assert!(on_arrival(ToWorker::Experiment(ExperimentRequest::Stop { id: 3 }), &c).is_none());
        assert!(c.experiment.is_cancelled(3) && !c.experiment.is_cancelled(4));
        assert!(on_arrival(ToWorker::Shelf(ShelfCmd::Cancel { job: 2 }), &c).is_none());
        assert!(c.shelf.is_cancelled(2) && !c.shelf.is_cancelled(3));
        // A lens request supersedes the older ones and is queued itself.
        let lens = ToWorker::InspectCtl(InspectCtl::Lens { id: 1, seq: 5, positions: vec![3] });
        assert_eq!(on_arrival(lens.clone(), &c), Some(lens));
        assert!(c.lens.is_cancelled(4) && !c.lens.is_cancelled(5));
        let count = ToWorker::Train(TrainCmd::Count { text: "x".into() });
        assert_eq!(on_arrival(count.clone(), &c), Some(count));
    }
}
