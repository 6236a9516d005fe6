//! The page: a Leptos UI that sends work to the engine worker and shows what comes back. The
//! page state (`state::Ctx`) and each view's state live in Leptos context; `app` routes the
//! worker's messages to them; the client (`client`) knows no view.

mod actions;
mod app;
mod browser;
mod build;
mod client;
mod drop_folder;
mod experiments;
mod generate;
mod help;
mod inspect;
mod keys;
mod link_adapter;
mod memory;
mod models;
mod pacing;
mod run_phase;
mod shelf;
mod state;
mod storage_panel;
mod train;

pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
