//! A training run kept on the device: its latest snapshot and the text it trains on, as one
//! stored zip (`archive`): `run.json` (settings, losses, the text), the adapter's two PEFT
//! files and AdamW's state, each under its usual name, so the bytes stay bytes.

use serde::{Deserialize, Serialize};
use tinylm_engine::lora::{CONFIG_FILE, OPTIMIZER_FILE, WEIGHTS_FILE};

use super::archive;
use crate::protocol::train::{AdapterInfo, BaseId, Peft, Snapshot, TrainSettings};
use crate::protocol::Bytes;

/// The run's own file in the zip.
const RUN_FILE: &str = "run.json";

/// A run as saved: what Resume continues from.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedRun {
    pub snapshot: Snapshot,
    pub text: String,
    pub data_label: String,
    /// When it was saved (`Date.now()`): of the two files kept, the newer wins.
    pub saved_ms: f64,
}

/// `run.json`: everything but the three binary files.
#[derive(Serialize, Deserialize)]
struct RunJson {
    name: String,
    settings: TrainSettings,
    base: BaseId,
    step: u32,
    losses: Vec<f64>,
    held: Vec<(u32, f64)>,
    info: AdapterInfo,
    finished: bool,
    text: String,
    data_label: String,
    saved_ms: f64,
}

pub fn to_zip(r: &SavedRun) -> Vec<u8> {
    let s = &r.snapshot;
    let json = RunJson {
        name: s.name.clone(),
        settings: s.settings.clone(),
        base: s.base.clone(),
        step: s.step,
        losses: s.losses.clone(),
        held: s.held.clone(),
        info: s.info.clone(),
        finished: s.finished,
        text: r.text.clone(),
        data_label: r.data_label.clone(),
        saved_ms: r.saved_ms,
    };
    let json = serde_json::to_vec(&json).unwrap_or_default();
    let (weights, optimizer) = (s.adapter.safetensors.to_vec(), s.optimizer.to_vec());
    archive::write(&[
        (RUN_FILE, &json),
        (CONFIG_FILE, s.adapter.config_json.as_bytes()),
        (WEIGHTS_FILE, &weights),
        (OPTIMIZER_FILE, &optimizer),
    ])
}

/// A saved run back; damaged data is an error in words, never a panic.
pub fn from_zip(bytes: &[u8]) -> Result<SavedRun, String> {
    let damaged = |e: String| format!("damaged stored data: {e}");
    let files = archive::read(bytes).map_err(damaged)?;
    let file = |name: &str| {
        files.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice()).ok_or_else(|| damaged(format!("{name} is missing")))
    };
    let j: RunJson = serde_json::from_slice(file(RUN_FILE)?).map_err(|e| damaged(e.to_string()))?;
    let config_json = String::from_utf8(file(CONFIG_FILE)?.to_vec()).map_err(|e| damaged(e.to_string()))?;
    let snapshot = Snapshot {
        name: j.name,
        settings: j.settings,
        base: j.base,
        step: j.step,
        losses: j.losses,
        held: j.held,
        adapter: Peft { config_json, safetensors: Bytes::from_slice(file(WEIGHTS_FILE)?) },
        info: j.info,
        optimizer: Bytes::from_slice(file(OPTIMIZER_FILE)?),
        finished: j.finished,
    };
    Ok(SavedRun { snapshot, text: j.text, data_label: j.data_label, saved_ms: j.saved_ms })
}
