//! GGUF v2/v3 (llama.cpp's format): header, metadata key/values, tensor infos, aligned data.
//!
//! Written here rather than taken from a crate: the GGUF crates on crates.io read v3 only and
//! size maps and vectors from header counts before checking them against the file. Here no
//! count sizes an allocation: every string, array and tensor is checked against the bytes that
//! remain before it is read, and every size is a checked product.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::quant::{ggml_type_name, DType};

pub const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// Deepest array nesting accepted (real files nest at most once).
const MAX_DEPTH: usize = 2;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Value>),
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::UInt(v) => Some(v),
            Value::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v),
            Value::UInt(v) => Some(v as f64),
            Value::Int(v) => Some(v as f64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the row length (innermost).
    pub dims: Vec<u64>,
    pub dtype: DType,
    /// Byte range in the file.
    pub start: usize,
    pub end: usize,
}

impl TensorInfo {
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

pub struct Gguf<'a> {
    pub version: u32,
    pub meta: HashMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    data: &'a [u8],
}

struct Cursor<'a, 'f> {
    data: &'a [u8],
    pos: usize,
    file: &'f str,
}

impl<'a> Cursor<'a, '_> {
    fn err(&self, what: String) -> Error {
        Error::model(self.file, what)
    }
    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return Err(self.err(format!("file is truncated: needs {n} bytes at offset {} but has {left}", self.pos)));
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.u64()?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err(format!("{what} is not UTF-8 text")))
    }
    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<Value> {
        Ok(match ty {
            0 => Value::UInt(self.take(1)?[0] as u64),
            1 => Value::Int(self.take(1)?[0] as i8 as i64),
            2 => Value::UInt(u16::from_le_bytes(self.take(2)?.try_into().expect("2")) as u64),
            3 => Value::Int(i16::from_le_bytes(self.take(2)?.try_into().expect("2")) as i64),
            4 => Value::UInt(self.u32()? as u64),
            5 => Value::Int(self.u32()? as i32 as i64),
            6 => Value::Float(f32::from_bits(self.u32()?) as f64),
            7 => match self.take(1)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(self.err(format!("metadata {key}: {b} is not a boolean"))),
            },
            8 => Value::Str(self.string(&format!("metadata {key}"))?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(self.err(format!("metadata {key}: arrays nested too deep")));
                }
                let (ety, n) = (self.u32()?, self.u64()?);
                // Every element takes at least one byte: a count beyond the bytes left is a lie.
                if n > (self.data.len() - self.pos) as u64 {
                    return Err(self.err(format!("metadata {key}: array of {n} elements runs past the end of the file")));
                }
                let mut v = Vec::new();
                for _ in 0..n {
                    v.push(self.value(ety, key, depth + 1)?);
                }
                Value::Array(v)
            }
            10 => Value::UInt(self.u64()?),
            11 => Value::Int(self.u64()? as i64),
            12 => Value::Float(f64::from_bits(self.u64()?)),
            t => return Err(self.err(format!("metadata {key} has unknown value type {t}"))),
        })
    }
}

impl<'a> Gguf<'a> {
    /// Parses the header, metadata and tensor infos, checking every tensor's bytes lie in the file.
    pub fn parse(data: &'a [u8], file: &str) -> Result<Gguf<'a>> {
        let mut c = Cursor { data, pos: 0, file };
        if c.take(4)? != MAGIC {
            return Err(c.err("not a GGUF file (no GGUF magic)".into()));
        }
        let version = c.u32()?;
        if !(2..=3).contains(&version) {
            return Err(c.err(format!("GGUF version {version} is not supported (2 and 3 are)")));
        }
        let (n_tensors, n_kv) = (c.u64()?, c.u64()?);
        let mut meta = HashMap::new();
        for _ in 0..n_kv {
            let key = c.string("a metadata key")?;
            let ty = c.u32()?;
            let v = c.value(ty, &key, 0)?;
            if meta.insert(key.clone(), v).is_some() {
                return Err(c.err(format!("metadata key {key} appears twice")));
            }
        }
        let alignment = match meta.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => v
                .as_u64()
                .filter(|a| a.is_power_of_two() && *a <= 1 << 20)
                .ok_or_else(|| c.err(format!("general.alignment {v:?} must be a power of two up to 1 MiB")))?,
        };
        let mut raw = Vec::new();
        for _ in 0..n_tensors {
            raw.push(Self::tensor_info(&mut c)?);
        }
        let start = (c.pos as u64).div_ceil(alignment) * alignment;
        let mut tensors = Vec::new();
        for (name, dims, ty, offset) in raw {
            tensors.push(Self::place(name, dims, ty, offset, start, alignment, data.len(), file)?);
        }
        Ok(Gguf { version, meta, tensors, data })
    }

    fn tensor_info(c: &mut Cursor) -> Result<(String, Vec<u64>, u32, u64)> {
        let name = c.string("a tensor name")?;
        let n_dims = c.u32()?;
        if n_dims == 0 || n_dims > 4 {
            return Err(c.err(format!("tensor {name} has {n_dims} dimensions (1 to 4 allowed)")));
        }
        let mut dims = Vec::new();
        for _ in 0..n_dims {
            dims.push(c.u64()?);
        }
        Ok((name, dims, c.u32()?, c.u64()?))
    }

    #[allow(clippy::too_many_arguments)]
    fn place(
        name: String,
        dims: Vec<u64>,
        ty: u32,
        offset: u64,
        start: u64,
        alignment: u64,
        len: usize,
        file: &str,
    ) -> Result<TensorInfo> {
        let bad = |what: String| Error::model(file, format!("tensor {name}: {what}"));
        let dtype = DType::from_ggml(ty).ok_or_else(|| bad(format!("type {} is not one this lab reads", ggml_type_name(ty))))?;
        let elements = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d).filter(|&p| p <= crate::config::MAX_TENSOR_ELEMENTS))
            .ok_or_else(|| bad(format!("shape {dims:?} is too large")))?;
        if !dims[0].is_multiple_of(dtype.block().0 as u64) {
            return Err(bad(format!("rows of {} are not whole {} blocks", dims[0], dtype.name())));
        }
        let bytes = dtype.bytes_of(elements).ok_or_else(|| bad(format!("shape {dims:?} is not whole blocks")))?;
        if !offset.is_multiple_of(alignment) {
            return Err(bad(format!("offset {offset} is not aligned to {alignment}")));
        }
        let begin = start.checked_add(offset).filter(|&b| b <= len as u64);
        let end = begin.and_then(|b| b.checked_add(bytes)).filter(|&e| e <= len as u64);
        match (begin, end) {
            (Some(b), Some(e)) => Ok(TensorInfo { dtype, start: b as usize, end: e as usize, dims, name }),
            _ => Err(bad(format!("its {bytes} bytes at offset {offset} lie past the end of the file ({len} bytes)"))),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.meta.get(key)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    pub fn bytes(&self, t: &TensorInfo) -> &'a [u8] {
        &self.data[t.start..t.end]
    }
}
