//! The Build form kept on this device: the text choice (a bundled text, or the reader's own
//! text) and every setting, saved as typed, so a reload shows the form as it was left.

use std::collections::BTreeMap;

use leptos::prelude::*;
use wasm_bindgen_futures::spawn_local;

use super::run::FOLDER;
use super::state::{BuildCtx, Form};
use crate::page::train::store::{read_in, write_in};

const FILE: &str = "form.json";

/// Each field's name in the saved file and its signal, in one place for reading and writing.
/// The file maps names to the fields as typed (text, so a half-typed number survives too).
fn fields(f: Form) -> [(&'static str, RwSignal<String>); 16] {
    [
        ("shape", f.shape),
        ("corpus", f.corpus),
        ("own_text", f.own_text),
        ("steps", f.steps),
        ("lr", f.lr),
        ("warmup", f.warmup),
        ("batch", f.batch),
        ("seq", f.seq),
        ("z_loss", f.z_loss),
        ("sample_every", f.sample_every),
        ("prompt", f.prompt),
        ("rates", f.rates),
        ("sweep_steps", f.sweep_steps),
        ("sweep_ways", f.sweep_ways),
        ("variant_lr", f.variant_lr),
        ("device", f.device),
    ]
}

/// After `kept` (the kept run's restore, which sets the fields it was started with), the saved
/// form (the newest typing) fills the fields; from then on every change is saved.
pub fn restore(b: BuildCtx, kept: impl std::future::Future<Output = ()> + 'static) {
    let ready = b.form_restored;
    let writer = StoredValue::new(Writer::default());
    Effect::new(move |_| {
        let saved: BTreeMap<&str, String> = fields(b.form).into_iter().map(|(name, sig)| (name, sig.get())).collect();
        // Not before the saved form was read: the defaults would replace it.
        if ready.get() {
            if let Ok(json) = serde_json::to_vec(&saved) {
                save(writer, json);
            }
        }
    });
    spawn_local(async move {
        kept.await;
        let read = read_in(FOLDER, FILE).await;
        if let Some(mut saved) = read.and_then(|j| serde_json::from_slice::<BTreeMap<String, String>>(&j).ok()) {
            for (name, sig) in fields(b.form) {
                // A field added since the file was written (or left empty) keeps its default;
                // the reader's own text is restored even when empty.
                match saved.remove(name) {
                    Some(v) if !v.is_empty() || sig == b.form.own_text => sig.set(v),
                    _ => {}
                }
            }
        }
        ready.set(true);
    });
}

/// One write at a time, the newest last (writes of one OPFS file could otherwise close out of
/// order and leave an older form).
#[derive(Default)]
struct Writer {
    busy: bool,
    next: Option<Vec<u8>>,
}

fn save(writer: StoredValue<Writer>, json: Vec<u8>) {
    writer.update_value(|w| w.next = Some(json));
    if writer.with_value(|w| w.busy) {
        return;
    }
    writer.update_value(|w| w.busy = true);
    spawn_local(async move {
        while let Some(json) = writer.try_update_value(|w| w.next.take()).flatten() {
            let _ = write_in(FOLDER, FILE, &json).await;
        }
        writer.update_value(|w| w.busy = false);
    });
}
