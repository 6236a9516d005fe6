//! TinyLM Lab in the browser: loads stories260K from this site and writes stories on the CPU.

mod engine_host;
mod fetch;
mod runner;
mod settings;
mod ui;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(ui::App);
}
