//! Zip archives (the `zip` crate): a PEFT adapter as one download, taken back on upload, and a
//! training run's saved state. Entries are stored (uncompressed): that keeps compression code
//! out of the page's wasm, and Python's zipfile and every unzip tool read them. A compressed
//! zip (another tool's default) is refused with a message.

use std::io::{Cursor, Read, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

const COMPRESSED: &str = "This zip is compressed; unzip it and upload adapter_config.json and adapter_model.safetensors instead.";

fn damaged<E>(_: E) -> String {
    "The zip file is damaged.".into()
}

/// A zip of `files` (name, bytes), stored, dated 1980-01-01 (so the same files make the same zip).
pub fn write(files: &[(&str, &[u8])]) -> Vec<u8> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(DateTime::default())
        .large_file(false);
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in files {
        // Writing to memory fails only for names or sizes zip cannot hold (over 4 GiB).
        let ok = w.start_file(*name, options).is_ok() && w.write_all(data).is_ok();
        debug_assert!(ok, "zip entry {name}");
    }
    w.finish().map(Cursor::into_inner).unwrap_or_default()
}

/// The files of a zip, in order. Sizes come from the file and are checked against its length
/// before anything is allocated; a damaged entry (its CRC-32 included) is refused.
pub fn read(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(|_| "That is not a zip file.".to_string())?;
    if zip.is_empty() {
        return Err("That is not a zip file.".into());
    }
    let mut files = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(damaged)?;
        if f.is_dir() {
            continue;
        }
        if f.compression() != CompressionMethod::Stored {
            return Err(COMPRESSED.into());
        }
        if f.size() > bytes.len() as u64 {
            return Err(damaged(()));
        }
        let name = f.name().map_err(damaged)?.into_owned();
        let mut data = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut data).map_err(damaged)?;
        files.push((name, data));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let files: [(&str, &[u8]); 2] = [("adapter_config.json", b"{\"r\": 4}"), ("adapter_model.safetensors", &[0, 1, 2, 255])];
        let z = write(&files);
        assert_eq!(&z[..4], b"PK\x03\x04");
        // The first entry is stored (method 0) with its size in the local header, as a reader
        // walking local headers (the browser tests' unzip) expects.
        assert_eq!(u16::from_le_bytes([z[8], z[9]]), 0);
        assert_eq!(u32::from_le_bytes([z[18], z[19], z[20], z[21]]), files[0].1.len() as u32);
        // End record: 22 bytes, entry count 2.
        let end = &z[z.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 2);
        let back = read(&z).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].0.as_str(), back[0].1.as_slice()), files[0]);
        assert_eq!((back[1].0.as_str(), back[1].1.as_slice()), files[1]);
        assert_eq!(write(&files), z, "the same files make the same zip");
    }

    #[test]
    fn damage_is_refused() {
        let mut z = write(&[("a", b"hello")]);
        let at = z.windows(5).position(|w| w == b"hello").unwrap();
        z[at] ^= 1; // a byte of the data: the CRC-32 no longer matches
        assert!(read(&z).unwrap_err().contains("damaged"));
        assert_eq!(read(b"not a zip").unwrap_err(), "That is not a zip file.");
    }

    /// A deflated entry as other tools write it (Python's zipfile with ZIP_DEFLATED, "hi"):
    /// refused by name rather than read as garbage.
    #[test]
    fn compressed_entries_are_refused_by_name() {
        let deflated: &[u8] = &[
            0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x00, 0xac, 0x2a, 0x93, 0xd8, 0x04,
            0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x61, 0xcb, 0xc8, 0x04, 0x00, 0x50, 0x4b, 0x01,
            0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x00, 0xac, 0x2a, 0x93, 0xd8, 0x04, 0x00,
            0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
            0x01, 0x00, 0x00, 0x00, 0x00, 0x61, 0x50, 0x4b, 0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x2f,
            0x00, 0x00, 0x00, 0x23, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(read(deflated).unwrap_err(), COMPRESSED);
    }
}
