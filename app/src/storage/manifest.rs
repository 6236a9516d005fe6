//! The storage manifest: what is stored, as plain data (no browser calls, tested natively).
//! An entry exists here only once all its files were written, so a listed item is complete.

use serde::{Deserialize, Serialize};

/// What an item is. Models carry `model` and `tokenizer` files; adapters whatever the trainer
/// writes (e.g. PEFT's `adapter_config.json` and `adapter_model.safetensors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Model,
    Adapter,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Model => "model",
            Kind::Adapter => "adapter",
        }
    }
}

/// One file of an item. On disk it is `items/<id>/<index>`; `name` is the caller's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub name: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub kind: Kind,
    /// Shown to the reader, e.g. "stories260K.bin".
    pub name: String,
    pub files: Vec<FileInfo>,
    /// Free-form JSON from the caller (a model's shape, an adapter's base model and losses…).
    #[serde(default)]
    pub meta: serde_json::Value,
    /// When it was saved (ms since the epoch).
    pub saved_ms: f64,
}

impl Entry {
    /// Bytes of all its files.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub entries: Vec<Entry>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest { version: 1, entries: Vec::new() }
    }
}

impl Manifest {
    /// A missing or unreadable manifest is an empty store (its item folders are then orphans
    /// and are swept).
    pub fn parse(text: &str) -> Manifest {
        serde_json::from_str(text).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn find(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Adds `entry`, replacing one with the same id.
    pub fn commit(&mut self, entry: Entry) {
        self.entries.retain(|e| e.id != entry.id);
        self.entries.push(entry);
    }

    pub fn remove(&mut self, id: &str) -> Option<Entry> {
        let at = self.entries.iter().position(|e| e.id == id)?;
        Some(self.entries.remove(at))
    }

    /// Item folders on disk that no entry names: writes that never finished.
    pub fn orphans<'a>(&self, folders: &'a [String]) -> Vec<&'a String> {
        folders.iter().filter(|f| self.find(f).is_none()).collect()
    }
}

/// A fresh item id: kind, time and a random part, safe as a folder name.
pub fn make_id(kind: Kind, now_ms: f64, random: f64) -> String {
    format!("{}-{:x}-{:06x}", kind.word(), now_ms as u64, (random * 16_777_216.0) as u32 & 0xff_ffff)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, sizes: &[u64]) -> Entry {
        Entry {
            id: id.into(),
            kind: Kind::Model,
            name: "m.bin".into(),
            files: sizes.iter().map(|&s| FileInfo { name: "f".into(), size: s, sha256: "00".into() }).collect(),
            meta: serde_json::json!({"dim": 64}),
            saved_ms: 1.0,
        }
    }

    #[test]
    fn commit_replace_remove_and_round_trip() {
        let mut m = Manifest::default();
        m.commit(entry("a", &[3, 4]));
        m.commit(entry("b", &[1]));
        m.commit(entry("a", &[10]));
        assert_eq!(m.entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(m.find("a").unwrap().size(), 10);
        assert_eq!(Manifest::parse(&m.to_json()), m);
        assert_eq!(m.remove("b").unwrap().id, "b");
        assert!(m.remove("b").is_none());
    }

    #[test]
    fn unreadable_manifest_is_empty_and_unlisted_folders_are_orphans() {
        assert_eq!(Manifest::parse("{not json"), Manifest::default());
        let mut m = Manifest::default();
        m.commit(entry("done", &[1]));
        let folders = vec!["done".to_string(), "half".to_string()];
        assert_eq!(m.orphans(&folders), [&"half".to_string()]);
    }

    #[test]
    fn ids_and_hex() {
        assert_eq!(make_id(Kind::Adapter, 255.0, 0.5), "adapter-ff-800000");
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        // The kind is written in lowercase in the manifest.
        assert_eq!(serde_json::to_string(&Kind::Model).unwrap(), "\"model\"");
    }
}
