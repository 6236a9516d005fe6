//! A classroom bundle: what is stored on this device (models, shelf downloads, adapters) as one
//! zip, so a teacher downloads once and carries it to the class's computers (a USB stick, a
//! shared drive) instead of thirty downloads over one connection. `tinylm-bundle.json` lists the
//! items (kind, name, meta, and each file's name, size and SHA-256); the files follow as
//! `items/<n>/<file name>`, stored (`train::archive`). Plain data, tested natively; reading and
//! writing the store is `storage`'s, the buttons the Storage panel's.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::manifest::{hex, Entry, FileInfo, Kind};
use crate::train::archive;

/// The index's name in the zip.
pub const INDEX: &str = "tinylm-bundle.json";
/// The file name offered for a download.
pub const FILE_NAME: &str = "tinylm-bundle.zip";
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Index {
    bundle: u32,
    items: Vec<Item>,
}

/// One stored item as the bundle lists it (its id and date are the receiving store's own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub kind: Kind,
    pub name: String,
    #[serde(default)]
    pub meta: serde_json::Value,
    pub files: Vec<FileInfo>,
}

/// An item read back from a bundle, its files checked against the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Unpacked {
    pub item: Item,
    pub data: Vec<Vec<u8>>,
}

impl Item {
    /// Whether `e` is this item already (same kind, name and bytes), so an import skips it.
    pub fn is_stored_as(&self, e: &Entry) -> bool {
        e.kind == self.kind && e.name == self.name && e.files == self.files
    }
}

/// The zip of `items` (each stored entry with its files' bytes, in the entry's order).
pub fn pack(items: &[(Entry, Vec<Vec<u8>>)]) -> Vec<u8> {
    let index = Index {
        bundle: VERSION,
        items: items
            .iter()
            .map(|(e, _)| Item { kind: e.kind, name: e.name.clone(), meta: e.meta.clone(), files: e.files.clone() })
            .collect(),
    };
    let index = serde_json::to_vec_pretty(&index).unwrap_or_default();
    let mut files: Vec<(String, &[u8])> = vec![(INDEX.to_string(), &index)];
    for (n, (e, data)) in items.iter().enumerate() {
        for (f, bytes) in e.files.iter().zip(data) {
            files.push((path(n, &f.name), bytes));
        }
    }
    let named: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    archive::write(&named)
}

/// Reads a bundle and checks every file's size and SHA-256 against its index before anything
/// is stored; the first problem is said in words.
pub fn unpack(bytes: &[u8]) -> Result<Vec<Unpacked>, String> {
    let not_bundle = "That file is not a TinyLM Lab bundle (made with “Save everything as one file”).";
    let mut files = archive::read(bytes).map_err(|e| {
        if e.contains("damaged") {
            "The bundle is damaged (its zip checksums fail); copy it again. Nothing was added.".to_string()
        } else {
            format!("{not_bundle} {e}")
        }
    })?;
    let at = files.iter().position(|(n, _)| n == INDEX).ok_or_else(|| not_bundle.to_string())?;
    let index: Index = serde_json::from_slice(&files[at].1).map_err(|e| format!("{not_bundle} Its list is unreadable: {e}."))?;
    if index.bundle != VERSION {
        return Err(format!("This bundle is of a newer kind ({}); update the lab to read it.", index.bundle));
    }
    let mut out = Vec::with_capacity(index.items.len());
    for (n, item) in index.items.into_iter().enumerate() {
        let mut data = Vec::with_capacity(item.files.len());
        for f in &item.files {
            let want = path(n, &f.name);
            let i = files.iter().position(|(name, _)| *name == want).ok_or_else(|| missing(&item.name, &f.name))?;
            let bytes = std::mem::take(&mut files[i].1);
            if bytes.len() as u64 != f.size || hex(&Sha256::digest(&bytes)) != f.sha256 {
                return Err(format!(
                    "The bundle is damaged: “{}” of “{}” is not the file it lists (size or SHA-256 differ). Nothing was added.",
                    f.name, item.name
                ));
            }
            data.push(bytes);
        }
        if item.files.is_empty() {
            return Err(missing(&item.name, "its files"));
        }
        out.push(Unpacked { item, data });
    }
    Ok(out)
}

fn missing(item: &str, file: &str) -> String {
    format!("The bundle is incomplete: “{file}” of “{item}” is missing. Nothing was added.")
}

fn path(n: usize, file: &str) -> String {
    format!("items/{n}/{file}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: Kind, name: &str, files: &[(&str, &[u8])]) -> (Entry, Vec<Vec<u8>>) {
        let infos = files
            .iter()
            .map(|(n, b)| FileInfo { name: n.to_string(), size: b.len() as u64, sha256: hex(&Sha256::digest(b)) })
            .collect();
        let meta = serde_json::json!({ "shelf": name });
        let e = Entry { id: format!("id-{name}"), kind, name: name.into(), files: infos, meta, saved_ms: 1.0 };
        (e, files.iter().map(|(_, b)| b.to_vec()).collect())
    }

    fn sample() -> Vec<(Entry, Vec<Vec<u8>>)> {
        vec![
            entry(Kind::Model, "stories15M", &[("stories15M.bin", b"model bytes"), ("tokenizer.bin", b"tok")]),
            entry(Kind::Adapter, "rabbit", &[("adapter_config.json", b"{}"), ("adapter_model.safetensors", &[1, 2, 3])]),
        ]
    }

    #[test]
    fn a_bundle_round_trips_with_its_index_first() {
        let items = sample();
        let zip = pack(&items);
        let files = archive::read(&zip).unwrap();
        let names: Vec<_> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                INDEX,
                "items/0/stories15M.bin",
                "items/0/tokenizer.bin",
                "items/1/adapter_config.json",
                "items/1/adapter_model.safetensors"
            ]
        );
        // SHA-256("tok"), computed independently with `printf tok | sha256sum`.
        let index = String::from_utf8(files[0].1.clone()).unwrap();
        assert!(index.contains("\"sha256\": \"1a7674eb4ee78df7e1ac439a93c3fa8e3c945784d4dec9fd8e3011738b2f1d62\""), "{index}");
        let back = unpack(&zip).unwrap();
        assert_eq!(back.len(), 2);
        for ((e, data), u) in items.iter().zip(&back) {
            assert!(u.item.is_stored_as(e));
            assert_eq!(&u.data, data);
            assert_eq!(u.item.meta, e.meta);
        }
        assert!(!back[0].item.is_stored_as(&items[1].0));
    }

    #[test]
    fn a_damaged_or_foreign_file_is_refused_before_anything_is_added() {
        let zip = pack(&sample());
        // The adapter's last byte flipped: the zip's own CRC-32 catches it first.
        let mut bad = zip.clone();
        let at = bad.windows(3).position(|w| w == [1, 2, 3]).unwrap();
        bad[at + 2] = 9;
        assert_eq!(
            unpack(&bad).unwrap_err(),
            "The bundle is damaged (its zip checksums fail); copy it again. Nothing was added."
        );
        // A zip whose files do not match its index (rewritten with consistent CRCs).
        let mut files = archive::read(&zip).unwrap();
        files[4].1 = vec![1, 2, 4];
        let named: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        let msg = unpack(&archive::write(&named)).unwrap_err();
        assert_eq!(
            msg,
            "The bundle is damaged: “adapter_model.safetensors” of “rabbit” is not the file it lists (size or SHA-256 \
             differ). Nothing was added."
        );
        let msg = unpack(&archive::write(&named[..4])).unwrap_err();
        assert!(msg.starts_with("The bundle is incomplete: “adapter_model.safetensors” of “rabbit” is missing"), "{msg}");
        // A PEFT zip, and not a zip at all.
        let peft = archive::write(&[("adapter_config.json", b"{}")]);
        assert!(unpack(&peft).unwrap_err().starts_with("That file is not a TinyLM Lab bundle"));
        assert!(unpack(b"hello").unwrap_err().starts_with("That file is not a TinyLM Lab bundle"));
        let newer = archive::write(&[(INDEX, br#"{"bundle":2,"items":[]}"#)]);
        assert!(unpack(&newer).unwrap_err().contains("newer kind (2)"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Any bytes, and a real bundle with bytes changed anywhere: an item list or a message, never a
        /// panic (the zip reader checks sizes against the file before allocating).
        #[test]
        fn any_bytes_read_without_panic(noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
                                        at in 0usize..4096, byte in proptest::prelude::any::<u8>()) {
            let _ = unpack(&noise);
            let mut zip = pack(&sample());
            let i = at % zip.len();
            zip[i] = byte;
            let _ = unpack(&zip);
        }
    }
}
