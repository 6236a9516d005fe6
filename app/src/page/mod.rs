//! The page: a Leptos UI that sends work to the engine worker and shows what comes back.

mod actions;
mod app;
mod browser;
mod client;
mod controls;
mod inspect;
mod keys;
mod memory;
mod models;
mod state;
mod storage_panel;
mod train;

pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
