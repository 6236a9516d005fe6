//! llama2.c checkpoint files: reading v0 (legacy), v1 (`ak42`) and v2 (Q8_0), writing all three.
//!
//! Every header field is validated before it sizes anything, and the file length must be
//! exactly what the header implies, so a truncated or padded file is refused by name.

mod format;
mod v0;
mod v1;
mod v2;

pub use format::{Format, HEADER_V1, MAGIC};
pub use v0::write_v0;
pub use v1::write_v1;
pub use v2::{default_group_size, write_v2};

use crate::error::{Error, Result};
use crate::quant_weights::QuantWeights;
use crate::weights::Weights;

/// Reads a checkpoint of any supported version. `file` names it in errors.
pub fn read(data: &[u8], file: &str) -> Result<(Weights, Format)> {
    if data.len() < 4 {
        return Err(Error::model(file, format!("only {} bytes long; this is not a model file", data.len())));
    }
    let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    if magic != MAGIC {
        return Ok((v0::read(data, file)?, Format::V0));
    }
    let mut r = crate::bytes::Reader::new(data, file);
    r.skip(4)?;
    match r.i32()? {
        1 => Ok((v1::read(data, file)?, Format::V1)),
        2 => v2::read(data, file),
        v => Err(Error::model(file, format!("format version {v} is not supported (expected 1 or 2)"))),
    }
}

/// Reads a checkpoint keeping a v2 file's matrices as Q8_0 (v0 and v1 files: f32 matrices).
pub fn read_quant(data: &[u8], file: &str) -> Result<(QuantWeights, Format)> {
    match recognise(data) {
        Some(Format::V2 { .. }) => v2::read_quant(data, file),
        _ => read(data, file).map(|(w, f)| (QuantWeights::from_dense(w), f)),
    }
}

/// Which version `data` is, from its magic number and version (v1, v2), or, for v0, which has
/// none, from a valid header that implies exactly its length; None when it is none of them.
/// Cheap: no weights are read.
pub fn recognise(data: &[u8]) -> Option<Format> {
    let word = |at: usize| data.get(at..at + 4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if word(0) == Some(MAGIC as i32) {
        return match word(4)? {
            1 => Some(Format::V1),
            // The group size follows the 7 header fields and the shared-classifier byte.
            2 => word(37).filter(|&g| g > 0).map(|g| Format::V2 { group_size: g as usize }),
            _ => None,
        };
    }
    v0::recognise(data).then_some(Format::V0)
}

/// Reads only the header: the shape and format, for `info` and for checks before loading.
pub fn read_config(data: &[u8], file: &str) -> Result<(crate::Config, Format)> {
    // The readers validate the length against the header before touching weights, so reading
    // the whole file costs one pass; this keeps one code path for both.
    read(data, file).map(|(w, f)| (w.config, f))
}
