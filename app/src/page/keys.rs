//! Keyboard shortcuts for classrooms: Enter writes a story, Esc stops it (or a compare).

use leptos::ev;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, KeyboardEvent};

use super::actions;
use super::state::Ctx;

/// Esc stops from anywhere. Enter generates from the prompt box (Shift+Enter adds a line) or
/// when nothing in particular has focus; on buttons and menus Enter keeps its usual meaning.
pub fn install(ctx: Ctx) {
    let handle = window_event_listener(ev::keydown, move |e: KeyboardEvent| {
        if e.key() == "Escape" {
            actions::stop(ctx);
            return;
        }
        if e.key() != "Enter" || e.shift_key() || e.ctrl_key() || e.alt_key() || e.meta_key() || e.is_composing() {
            return;
        }
        let target = e.target().and_then(|t| t.dyn_into::<HtmlElement>().ok());
        let tag = target.as_ref().map(|t| t.tag_name().to_ascii_lowercase()).unwrap_or_default();
        let id = target.as_ref().map(|t| t.id()).unwrap_or_default();
        if id == "prompt" || tag == "body" || tag == "pre" || tag.is_empty() {
            e.prevent_default();
            actions::generate(ctx);
        }
    });
    // The page lives as long as the document: keep the listener.
    std::mem::forget(handle);
}
