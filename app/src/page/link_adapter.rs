//! The adapter a link names: looked for in this device's adapter library by its content hash and
//! put in use (the link's story then runs, if the link asks), or the reader is told it is not
//! here and the plain model writes.

use leptos::prelude::*;
use wasm_bindgen_futures::spawn_local;

use super::actions;
use super::state::Ctx;
use crate::link::AdapterLink;
use crate::protocol::train::{BaseId, Peft, TrainCmd};
use crate::protocol::{Bytes, ToWorker};
use crate::storage::{self, Kind};
use crate::train::{adapter_hash, AdapterMeta};

/// Once the link's model is in use: its adapter, then its story (`run`).
pub fn restore(ctx: Ctx, adapter: Option<AdapterLink>, run: bool) {
    let Some(want) = adapter else {
        if run {
            actions::generate(ctx);
        }
        return;
    };
    spawn_local(async move {
        match find(&want).await {
            Some((name, base, peft)) => {
                if run {
                    ctx.restore.update_value(|r| r.awaiting = Some(want.hash.clone()));
                }
                ctx.send(&ToWorker::Train(TrainCmd::Use { adapter: Some((name, base, peft)) }));
            }
            None => {
                ctx.link_note.set(Some(format!(
                    "This link's story was written with the adapter “{}”, which is not on this device, so \
                     the plain model writes instead. Train or upload that adapter (Train tab), then open \
                     the link again.",
                    want.name
                )));
                if run {
                    actions::generate(ctx);
                }
            }
        }
    });
}

/// The worker put an adapter in use (or refused it): the link's story runs once its adapter is.
pub fn using(ctx: Ctx, hash: Option<&str>, error: Option<&str>) {
    let Some(want) = ctx.restore.with_value(|r| r.awaiting.clone()) else { return };
    if hash != Some(want.as_str()) && error.is_none() {
        return;
    }
    ctx.restore.update_value(|r| r.awaiting = None);
    if let Some(e) = error {
        ctx.link_note.set(Some(e.to_string()));
    }
    actions::generate(ctx);
}

/// The library's adapter with the link's content hash (those of the same name are read first).
async fn find(want: &AdapterLink) -> Option<(String, BaseId, Peft)> {
    let mut entries = storage::list(Some(Kind::Adapter)).await.ok()?;
    entries.sort_by_key(|e| e.name != want.name);
    for e in entries {
        let Ok(meta) = serde_json::from_value::<AdapterMeta>(e.meta.clone()) else { continue };
        let Ok((_, files)) = storage::get_bytes(&e.id).await else { continue };
        let Ok([config, weights]) = <[Vec<u8>; 2]>::try_from(files) else { continue };
        let peft = Peft { config_json: String::from_utf8_lossy(&config).into_owned(), safetensors: Bytes::from_slice(&weights) };
        if adapter_hash(&peft) == want.hash {
            return Some((e.name, meta.base, peft));
        }
    }
    None
}
