//! Build: growing a model from random weights (`grow`, as `tinylm pretrain`), the
//! learning-rate experiment (`sweep`), the time a run would take (`estimate`) and stories of
//! kept models side by side (`compare`).

mod compare;
mod estimate;
mod grow;
mod setup;
mod sweep;

use super::cancel::Cancel;
use crate::protocol::build::{BuildCmd, BuildEvent};
use crate::protocol::train::Ending;
use setup::send;

pub async fn handle(cmd: BuildCmd, cancel: &Cancel<Ending>) {
    match cmd {
        BuildCmd::Start(start) => {
            let job = start.job;
            if let Err(message) = grow::run(*start, cancel).await {
                send(BuildEvent::Failed { job, message });
            }
        }
        BuildCmd::Sweep(start) => {
            let job = start.job;
            if let Err(message) = sweep::run(*start, cancel).await {
                send(BuildEvent::Failed { job, message });
            }
        }
        BuildCmd::Estimate { req, settings } => send(BuildEvent::Estimated { req, result: estimate::measure(&settings).await }),
        BuildCmd::Compare { req, models, tokenizer, prompt, steps } => {
            send(BuildEvent::Compared { req, result: compare::stories(&models, &tokenizer, &prompt, steps) })
        }
        // Acted on when they arrived (`router::on_arrival`).
        BuildCmd::Pause { .. } | BuildCmd::Stop { .. } => {}
    }
}
