//! A store-only (uncompressed) zip writer and reader, enough to hand out a PEFT adapter as one
//! download and take it back. Format: PKWARE APPNOTE 6.3 (local headers, central directory,
//! end record), no data descriptors, no zip64, CRC-32 (IEEE).

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// The fields local and central headers share: version, flags, method, time, date, crc, sizes,
/// name length.
fn common(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    u16le(out, 20); // version needed: 2.0
    u16le(out, 0x0800); // flags: names are UTF-8
    u16le(out, 0); // stored
    u16le(out, 0); // time 00:00
    u16le(out, 0x21); // date 1980-01-01
    u32le(out, crc32(data));
    u32le(out, data.len() as u32);
    u32le(out, data.len() as u32);
    u16le(out, name.len() as u16);
}

/// A zip of `files` (name, bytes), stored. Each file must be under 4 GiB.
pub fn write(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len() as u32;
        u32le(&mut out, 0x0403_4b50);
        common(&mut out, name, data);
        u16le(&mut out, 0); // extra length
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);

        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, 20); // made by: 2.0
        common(&mut central, name, data);
        for _ in 0..4 {
            u16le(&mut central, 0); // extra, comment, disk, internal attributes
        }
        u32le(&mut central, 0); // external attributes
        u32le(&mut central, offset);
        central.extend_from_slice(name.as_bytes());
    }
    let (start, size) = (out.len() as u32, central.len() as u32);
    out.extend_from_slice(&central);
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, files.len() as u16);
    u16le(&mut out, files.len() as u16);
    u32le(&mut out, size);
    u32le(&mut out, start);
    u16le(&mut out, 0);
    out
}

/// The stored files of a zip, read through its local headers. Compressed entries (any other
/// zip tool's default) and damaged files are refused with a message.
pub fn read(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    // Offsets come from the file: every sum is checked (usize is 32 bits on wasm32).
    let span = |at: usize, len: usize| bytes.get(at..at.checked_add(len)?);
    let le16 = |at: usize| span(at, 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let le32 = |at: usize| span(at, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let bad = || "The zip file is damaged.".to_string();
    let mut files = Vec::new();
    let mut at = 0;
    while le32(at) == Some(0x0403_4b50) {
        let (flags, method) = (le16(at + 6).ok_or_else(bad)?, le16(at + 8).ok_or_else(bad)?);
        if method != 0 || flags & 8 != 0 {
            return Err(
                "This zip is compressed; unzip it and upload adapter_config.json and adapter_model.safetensors instead.".into()
            );
        }
        let size = le32(at + 18).ok_or_else(bad)?;
        let (name_len, extra) = (le16(at + 26).ok_or_else(bad)?, le16(at + 28).ok_or_else(bad)?);
        let name_at = at + 30;
        let data_at = name_at + name_len + extra;
        let name = span(name_at, name_len).ok_or_else(bad)?;
        let data = span(data_at, size).ok_or_else(bad)?;
        if crc32(data) != le32(at + 14).ok_or_else(bad)? as u32 {
            return Err(bad());
        }
        files.push((String::from_utf8_lossy(name).into_owned(), data.to_vec()));
        at = data_at + size;
    }
    if files.is_empty() {
        return Err("That is not a zip file.".into());
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_and_layout() {
        let files: [(&str, &[u8]); 2] = [("adapter_config.json", b"{\"r\": 4}"), ("adapter_model.safetensors", &[0, 1, 2, 255])];
        let z = write(&files);
        assert_eq!(&z[..4], b"PK\x03\x04");
        // End record: 22 bytes, entry count 2, central directory right after the data.
        let end = &z[z.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 2);
        let back = read(&z).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].0.as_str(), back[0].1.as_slice()), files[0]);
        assert_eq!((back[1].0.as_str(), back[1].1.as_slice()), files[1]);
    }

    #[test]
    fn damage_is_refused() {
        let mut z = write(&[("a", b"hello")]);
        z[35] ^= 1; // a byte of the data
        assert!(read(&z).unwrap_err().contains("damaged"));
        assert!(read(b"not a zip").is_err());
    }
}
