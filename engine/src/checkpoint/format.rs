//! What tells the llama2.c versions apart: the versioned formats' magic number and header size,
//! and the `Format` a checkpoint was read from.

/// Magic number of the versioned formats, "ak42" read as a little-endian u32.
pub const MAGIC: u32 = 0x616b_3432;
/// Size of the v1/v2 header.
pub const HEADER_V1: usize = 256;

/// The file format a checkpoint was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    V0,
    V1,
    /// Q8_0 weights, dequantized to f32 on load.
    V2 {
        group_size: usize,
    },
}

impl Format {
    pub fn describe(&self) -> String {
        match self {
            Format::V0 => "llama2.c v0 (legacy, f32)".into(),
            Format::V1 => "llama2.c v1 (ak42, f32)".into(),
            Format::V2 { group_size } => format!("llama2.c v2 (ak42, Q8_0, group size {group_size})"),
        }
    }
}
