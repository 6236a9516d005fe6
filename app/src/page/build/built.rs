//! The newest built model kept on this device (beside the run), so a reload keeps it: the view
//! offers it again, and a link that names it (by file name and content hash) puts it back in
//! use; a reader without it is told so and the plain model writes.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use wasm_bindgen_futures::spawn_local;

use super::run::{to_menu, FOLDER};
use super::slots;
use super::state::{model_hash as hash, BuildCtx};
use crate::page::link_adapter;
use crate::page::train::store::{read_in, write_in};

const MODEL: &str = "model.bin";
const META: &str = "model.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meta {
    name: String,
    step: u32,
}

/// Keeps the newest model (replacing the one before).
pub fn save(b: BuildCtx) {
    let (Some(name), Some((step, bytes))) = (b.model_name.get_untracked(), b.model.get_untracked()) else { return };
    spawn_local(async move {
        let saved = async {
            write_in(FOLDER, MODEL, &bytes).await?;
            write_in(FOLDER, META, &serde_json::to_vec(&Meta { name, step }).map_err(|e| e.to_string())?).await
        };
        if let Err(e) = saved.await {
            b.note.set(format!("The model could not be kept on this device: {e}"));
        }
    });
}

async fn load() -> Option<(Meta, Vec<u8>)> {
    let meta = serde_json::from_slice(&read_in(FOLDER, META).await?).ok()?;
    Some((meta, read_in(FOLDER, MODEL).await?))
}

/// The model kept from an earlier visit is offered again (use, keep, download).
pub fn restore(b: BuildCtx) {
    spawn_local(async move {
        if let Some((meta, bytes)) = load().await {
            if b.model.with_untracked(Option::is_none) {
                b.model_name.set(Some(meta.name));
                b.model.set(Some((meta.step, bytes)));
            }
        }
    });
}

/// The built model a link names, once the page's models are loaded: this device's copy with the
/// same hash (the newest model or a kept one) goes back in use, else the reader is told.
pub fn resolve_link(b: BuildCtx) {
    let ctx = b.ctx;
    let mut plan = ctx.restore.get_value();
    let Some((name, want)) = plan.built.take() else { return };
    let (adapter, run) = (plan.adapter.take(), plan.run);
    ctx.restore.set_value(plan);
    spawn_local(async move {
        let mut found = None;
        if let Some((meta, bytes)) = load().await {
            found = (hash(&bytes) == want).then_some((meta.name, bytes));
        }
        if found.is_none() {
            found = slots::with_hash(&want).await;
        }
        match found {
            Some((mine, bytes)) => {
                // Its Loaded reply continues the link: its adapter, then its story.
                ctx.restore.set_value(crate::link::Restore { adapter, run, ..Default::default() });
                to_menu(b, mine, bytes).await;
            }
            None => {
                ctx.link_note.set(Some(format!(
                    "This link's story was written with “{name}”, a model grown in the sender's Build tab, which \
                     is not on this device, so the plain model writes instead. Build it with the same settings \
                     (Build tab), then open the link again."
                )));
                link_adapter::restore(ctx, adapter, run);
            }
        }
    });
}
