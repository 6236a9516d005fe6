//! Experiments on the active model (the Inspect view's panel): knock-outs and steering run on
//! the active backend (on WebGPU through the GPU edit kernel), activation patching and the
//! heads' means on the CPU path whatever the backend. Long work yields to the worker's event
//! loop between slices, so progress shows and Stop works; the backend's edits are always
//! cleared afterwards, so Generate and Inspect see the unchanged model.

mod knockout;
mod patch;
mod run;
mod steer;

use tinylm_engine::generate::Backend;

use super::bridge::post;
use super::cancel::Cancel;
use super::session::Session;
use crate::protocol::experiments::{ExperimentNews, ExperimentRequest};
use crate::protocol::FromWorker;
use run::Ticker;

pub async fn handle(s: &mut Session, req: ExperimentRequest, stop: &Cancel) {
    let id = match &req {
        ExperimentRequest::KnockOut { id, .. } | ExperimentRequest::Steer { id, .. } | ExperimentRequest::Patch { id, .. } => *id,
        // Acted on arrival.
        ExperimentRequest::Stop { .. } => return,
    };
    let mut tick = Ticker::new(id, stop);
    let result = if tick.tick("Starting", 0, 1).await {
        Ok(None)
    } else {
        match req {
            ExperimentRequest::KnockOut { prompt, settings, change, .. } => {
                knockout::run(s, &prompt, &settings, &change, &mut tick).await
            }
            ExperimentRequest::Steer { prompt, settings, layer, toward, away, strengths, .. } => {
                let lists = steer::Lists { toward: &toward, away: &away };
                steer::run(s, &prompt, &settings, layer, lists, &strengths, &mut tick).await
            }
            ExperimentRequest::Patch { clean, corrupt, clean_answer, corrupt_answer, .. } => {
                patch::run(s, [clean.as_str(), corrupt.as_str()], [clean_answer.as_str(), corrupt_answer.as_str()], &mut tick)
                    .await
            }
            ExperimentRequest::Stop { .. } => Ok(None),
        }
    };
    // Whatever happened, the model is unchanged for the next piece of work.
    if let Some(a) = s.active.as_mut() {
        let _ = a.backend.set_edits(None);
    }
    let news = match result {
        Ok(Some(news)) => news,
        Ok(None) => ExperimentNews::Stopped { id },
        Err(message) => ExperimentNews::Failed { id, message },
    };
    post(&FromWorker::Experiment(news));
}
