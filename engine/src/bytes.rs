//! A bounds-checked little-endian reader: every read past the end is an error naming the file.

use crate::error::{Error, InputKind, Result};

pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    file: &'a str,
    kind: InputKind,
}

impl<'a> Reader<'a> {
    /// A reader of a model file.
    pub fn new(data: &'a [u8], file: &'a str) -> Self {
        Reader { data, pos: 0, file, kind: InputKind::Model }
    }

    pub fn of_kind(data: &'a [u8], file: &'a str, kind: InputKind) -> Self {
        Reader { data, pos: 0, file, kind }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn error(&self, what: String) -> Error {
        Error::BadFile { kind: self.kind, file: self.file.to_string(), what }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            self.error(format!(
                "file is truncated: needs {} more bytes at offset {} but has {}",
                n,
                self.pos,
                self.data.len() - self.pos
            ))
        })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }

    pub fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn f32(&mut self) -> Result<f32> {
        let b = self.take(4)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let b = self.take(n.checked_mul(4).ok_or_else(|| self.error("tensor size overflows".into()))?)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    pub fn i8s(&mut self, n: usize) -> Result<&'a [u8]> {
        self.take(n)
    }

    pub fn header7(&mut self) -> Result<[i32; 7]> {
        let mut h = [0i32; 7];
        for v in &mut h {
            *v = self.i32()?;
        }
        Ok(h)
    }
}

/// Fails unless the file is exactly `expected` bytes long.
pub fn check_len(data: &[u8], expected: u64, file: &str) -> Result<()> {
    if data.len() as u64 != expected {
        let how = if (data.len() as u64) < expected { "truncated" } else { "longer than its header says" };
        return Err(Error::model(
            file,
            format!("file is {how}: the header implies {expected} bytes but the file has {}", data.len()),
        ));
    }
    Ok(())
}

pub fn put_i32s(out: &mut Vec<u8>, vals: &[i32]) {
    for v in vals {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

pub fn put_f32s(out: &mut Vec<u8>, vals: &[f32]) {
    out.reserve(vals.len() * 4);
    for v in vals {
        out.extend_from_slice(&v.to_le_bytes());
    }
}
