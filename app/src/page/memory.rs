//! Models loaded from this site are remembered for the tab's session (sessionStorage), so a
//! reload brings them back into the menu. Picked files cannot be fetched again: they stay in
//! the menu only until the page is reloaded.

use serde::{Deserialize, Serialize};

use crate::protocol::{ModelEntry, Source};

const KEY: &str = "tinylm.models";

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Remembered {
    /// Same-site models in the order they were loaded.
    pub models: Vec<Source>,
    /// The model in use when the page was left.
    pub active: Option<Source>,
}

pub fn save(models: &[ModelEntry], active: u32) {
    let remembered = Remembered {
        models: models.iter().filter(|m| matches!(m.source, Source::Url { .. })).map(|m| m.source.clone()).collect(),
        active: models.iter().find(|m| m.id == active).map(|m| m.source.clone()),
    };
    if let (Some(storage), Ok(text)) = (storage(), serde_json::to_string(&remembered)) {
        let _ = storage.set_item(KEY, &text);
    }
}

pub fn load() -> Remembered {
    storage().and_then(|s| s.get_item(KEY).ok().flatten()).and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default()
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}
