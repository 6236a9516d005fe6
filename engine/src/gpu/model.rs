//! The model's weights on the GPU, uploaded once. Matrices are stored per layer (stacked
//! tensors of big models exceed a buffer) and split by rows into chunks that each fit one
//! storage binding. wq|wk|wv and w1|w3 are stacked per layer so each is one matmul.

use std::borrow::Cow;
use std::ops::Range;

use super::blocks::pack_blocks;
use super::context::GpuContext;
use super::kernels::storage;
use super::packing::{pack_half, pack_int8, WeightFormat};
use super::split::split_rows;
use crate::config::Config;
use crate::cpu::ForwardWeights;
use crate::error::{Error, Result};
use crate::quant::DType;
use crate::quant_int8::natural_group;
use crate::quant_weights::{matrix_shape, Matrix, MatrixRef, QuantWeights};
use crate::weights::{Tensor, Weights};

/// The weights a GPU backend uploads: f32, or a model held quantized (or in F16/BF16) whose
/// matrices the GPU can keep as they are (`kept_format`).
#[derive(Clone, Copy)]
pub enum GpuSource<'a> {
    F32(&'a Weights),
    Quantized(&'a QuantWeights),
}

impl<'a> GpuSource<'a> {
    pub fn config(&self) -> Config {
        *self.weights().config()
    }

    /// The weights as the forward pass reads them (norms and matrices as kept).
    pub fn weights(&self) -> &'a dyn ForwardWeights {
        match *self {
            GpuSource::F32(w) => w,
            GpuSource::Quantized(q) => q,
        }
    }

    /// The format the kernels read (`Half` or `Int8` only where `kept_format` allows it).
    pub fn format(&self) -> Result<WeightFormat> {
        match self {
            GpuSource::F32(_) => Ok(WeightFormat::F32),
            GpuSource::Quantized(q) => kept_format(q).ok_or_else(|| {
                Error::Gpu(
                    "this model's matrices are neither all F16 or all BF16 nor all of one int8 form; load its f32 copy instead"
                        .into(),
                )
            }),
        }
    }
}

/// How the GPU keeps `q`'s matrices without an f32 copy: `Half` when every matrix is F16 (or every
/// one BF16); the file's own blocks when a type takes under a byte a weight (int8 would double
/// Q4_0, Q4_K or Q5_0); else `int8_format`'s form (Q8_0 at 1.125 bytes a weight, read in
/// coalesced words; llama2.c's Q8, whose groups may straddle rows); else the blocks (Q8_0 beside
/// f32 matrices); `None` when nothing fits.
pub fn kept_format(q: &QuantWeights) -> Option<WeightFormat> {
    let blocks = blocks_format(q);
    half_format(q)
        .or_else(|| blocks.filter(|_| kept_types(q).iter().any(|t| under_a_byte(*t))))
        .or_else(|| int8_format(q))
        .or(blocks)
}

/// A type that takes under 8 bits a weight (Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K).
fn under_a_byte(t: DType) -> bool {
    let (per, bytes) = t.block();
    bytes < per
}

/// The type of every matrix of `q` (Q8_0 for llama2.c's Q8).
fn kept_types(q: &QuantWeights) -> Vec<DType> {
    fn types(m: &Matrix, out: &mut Vec<DType>) {
        match m {
            Matrix::Blocks(b) => out.push(b.dtype),
            Matrix::Layers(l) => l.iter().for_each(|m| types(m, out)),
            Matrix::F32(_) => out.push(DType::F32),
            Matrix::Q8(_) => out.push(DType::Q8_0),
        }
    }
    let mut all = Vec::new();
    q.matrices().for_each(|m| types(m, &mut all));
    all
}

/// `Blocks` when every Q8 matrix's groups lie within rows and keep words aligned (`blocks`'
/// `q8_code`; llama2.c v2 files' may not) and every matrix the kernels read is a multiple of 4
/// rows.
fn blocks_format(q: &QuantWeights) -> Option<WeightFormat> {
    let c = &q.config;
    let whole = |g: usize| g.is_multiple_of(4) && [c.dim, c.q_dim(), c.hidden_dim].iter().all(|k| k.is_multiple_of(g));
    fn q8_ok(m: &Matrix, whole: &dyn Fn(usize) -> bool) -> bool {
        match m {
            Matrix::Q8(q) => whole(q.group),
            Matrix::Layers(l) => l.iter().all(|m| q8_ok(m, whole)),
            _ => true,
        }
    }
    (rows_in_fours(c) && q.matrices().all(|m| q8_ok(m, &whole))).then_some(WeightFormat::Blocks)
}

/// `Half` when every matrix of `q` is in one of F16 and BF16 and every matrix the kernels read is
/// a multiple of 4 rows (the vec4 accessors read 4 rows at once).
fn half_format(q: &QuantWeights) -> Option<WeightFormat> {
    let all = kept_types(q);
    match all.first() {
        Some(&t @ (DType::F16 | DType::BF16)) if rows_in_fours(&q.config) && all.iter().all(|&a| a == t) => {
            Some(WeightFormat::Half { bf16: t == DType::BF16 })
        }
        _ => None,
    }
}

/// The int8 form every matrix of `q` can take (`quant_int8`), or `None` (the GPU then takes the
/// f32 copy): no matrix in f32, one group size dividing every type's own (Q8_0 groups within
/// rows; Q4_K_M's Q4_K and Q6_K: groups of 16), mins where Q4_K has them, and every matrix the
/// kernels read a multiple of 4 rows (4 rows share a word).
pub fn int8_format(q: &QuantWeights) -> Option<WeightFormat> {
    let c = &q.config;
    let mut own = Vec::new();
    q.matrices().try_for_each(|m| own_groups(m, &mut own))?;
    let group = own.iter().map(|&(g, _)| g).min()?;
    let mins = own.iter().any(|&(_, m)| m);
    let rows_ok = rows_in_fours(c);
    let cols_ok = [c.dim, c.q_dim(), c.hidden_dim].iter().all(|k| own.iter().all(|&(g, _)| k % g == 0));
    let nested = own.iter().all(|&(g, _)| g % group == 0);
    (rows_ok && cols_ok && nested && group <= u32::MAX as usize).then_some(WeightFormat::Int8 { group: group as u32, mins })
}

/// Every matrix the kernels read (q|k|v, wo and w2, w1|w3, the embedding and classifier) is a
/// multiple of 4 rows: the packed formats hold 4 rows' values at an input in one word or two.
fn rows_in_fours(c: &Config) -> bool {
    [c.q_dim() + 2 * c.kv_dim(), c.dim, 2 * c.hidden_dim, c.vocab_size].iter().all(|r| r % 4 == 0)
}

/// Each piece of `m`'s own (group, has mins); `None` for f32.
fn own_groups(m: &Matrix, out: &mut Vec<(usize, bool)>) -> Option<()> {
    match m {
        Matrix::F32(_) => return None,
        Matrix::Q8(q) => out.push((q.group, false)),
        Matrix::Blocks(b) => out.push(natural_group(b.dtype)?),
        Matrix::Layers(l) => return l.iter().try_for_each(|m| own_groups(m, out)),
    }
    Some(())
}

/// Most rows one matmul dispatch covers: `matvec` gives 16 rows per workgroup and a dispatch
/// dimension holds at most 65535 workgroups.
pub const MAX_CHUNK_ROWS: usize = 65535 * 16;

/// A row-major `[rows, cols]` matrix as row chunks, each its own buffer holding the chunk
/// transposed (`[cols, chunk rows]`), so lanes working on adjacent outputs read adjacent
/// memory (coalesced) while each walks its dot product along k.
pub struct Chunked {
    pub parts: Vec<(wgpu::Buffer, Range<usize>)>,
    pub cols: usize,
}

impl Chunked {
    pub fn upload(ctx: &GpuContext, label: &str, data: &[f32], cols: usize, max_bytes: u64) -> Result<Chunked> {
        let rows = data.len() / cols;
        let parts = split_rows(rows, cols, max_bytes, MAX_CHUNK_ROWS)?
            .into_iter()
            .map(|r| (storage(ctx, label, &transpose(&data[r.start * cols..r.end * cols], cols), wgpu::BufferUsages::empty()), r))
            .collect();
        Ok(Chunked { parts, cols })
    }
}

impl Chunked {
    /// Quantized matrices `views` stacked (their rows in order), `cols` wide, each chunk packed
    /// by `packing::pack_int8` in `format`.
    pub fn upload_int8(
        ctx: &GpuContext,
        label: &str,
        views: &[MatrixRef],
        cols: usize,
        format: WeightFormat,
        max_bytes: u64,
    ) -> Result<Chunked> {
        let WeightFormat::Int8 { group, mins } = format else {
            return Err(Error::Gpu(format!("{label}: {format:?} is not an int8 format")));
        };
        Self::upload_packed(ctx, label, views, cols, max_bytes, |r| {
            pack_int8(views, cols, r.clone(), group as usize, mins)
                .ok_or_else(|| Error::Gpu(format!("{label}: rows {r:?} cannot take the int8 form {format:?}")))
        })
    }

    /// Matrices `views` stacked, `cols` wide, each chunk in their own blocks (`blocks::pack_blocks`).
    pub fn upload_blocks(ctx: &GpuContext, label: &str, views: &[MatrixRef], cols: usize, max_bytes: u64) -> Result<Chunked> {
        // Room for the segment table (at most one segment per view, 4 words each, and the count)
        // and each segment's padding to a word.
        let room = max_bytes.saturating_sub(4 * (1 + 4 * views.len() as u64) + 4 * views.len() as u64);
        Self::upload_packed(ctx, label, views, cols, room, |r| {
            pack_blocks(views, cols, r.clone())
                .ok_or_else(|| Error::Gpu(format!("{label}: rows {r:?} are not all in ggml blocks or f32")))
        })
    }

    /// F16 or BF16 matrices `views` stacked, `cols` wide, each chunk packed by
    /// `packing::pack_half`.
    pub fn upload_half(ctx: &GpuContext, label: &str, views: &[MatrixRef], cols: usize, max_bytes: u64) -> Result<Chunked> {
        Self::upload_packed(ctx, label, views, cols, max_bytes, |r| {
            pack_half(views, cols, r.clone()).ok_or_else(|| Error::Gpu(format!("{label}: rows {r:?} are not all F16 or BF16")))
        })
    }

    /// The rows of `views` stacked, in chunks of a multiple of 4 rows (the packed formats share
    /// words among 4 rows) split as if f32 to fit `max_bytes` (no packed form takes more), each
    /// chunk's words made by `pack`.
    fn upload_packed(
        ctx: &GpuContext,
        label: &str,
        views: &[MatrixRef],
        cols: usize,
        max_bytes: u64,
        pack: impl Fn(&Range<usize>) -> Result<Vec<u32>>,
    ) -> Result<Chunked> {
        let rows = views.iter().map(|v| v.n_rows(cols)).sum();
        let four_rows = 16 * cols as u64;
        let parts = split_rows(rows, cols, max_bytes / four_rows.max(1) * four_rows, MAX_CHUNK_ROWS)?
            .into_iter()
            .map(|r| Ok((storage(ctx, label, &pack(&r)?, wgpu::BufferUsages::empty()), r)))
            .collect::<Result<_>>()?;
        Ok(Chunked { parts, cols })
    }

    /// As `upload`, each chunk stored as IEEE half floats (f16 bits, two per word).
    pub fn upload_f16(ctx: &GpuContext, label: &str, data: &[f32], cols: usize, max_bytes: u64) -> Result<Chunked> {
        let rows = data.len() / cols;
        let parts = split_rows(rows, cols, max_bytes, MAX_CHUNK_ROWS)?
            .into_iter()
            .map(|r| {
                let mut half: Vec<u16> = transpose(&data[r.start * cols..r.end * cols], cols).into_iter().map(f16_bits).collect();
                half.resize(half.len().div_ceil(2) * 2, 0);
                (storage(ctx, label, &half, wgpu::BufferUsages::empty()), r)
            })
            .collect();
        Ok(Chunked { parts, cols })
    }
}

/// `v` rounded to the nearest IEEE half float (ties to even), as its bits.
pub fn f16_bits(v: f32) -> u16 {
    let b = v.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 112; // rebiased to f16's 15
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    // Normal: drop 13 mantissa bits; subnormal: shift the full 24-bit significand further.
    let (m, shift, base) = if e > 0 {
        (man, 13, (e as u32) << 10)
    } else if e >= -10 {
        (man | 0x80_0000, (14 - e) as u32, 0)
    } else {
        return sign;
    };
    let (r, rem, half) = (base | (m >> shift), m & ((1 << shift) - 1), 1u32 << (shift - 1));
    // A carry out of the mantissa correctly bumps the exponent (up to infinity).
    let r = if rem > half || (rem == half && r & 1 == 1) { r + 1 } else { r };
    sign | r as u16
}

/// The value of half-float bits.
pub fn f16_value(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let (e, m) = (((h >> 10) & 0x1f) as i32, (h & 0x3ff) as f32);
    match e {
        0 => sign * m * 2f32.powi(-24),
        31 if m == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        _ => sign * (1.0 + m / 1024.0) * 2f32.powi(e - 15),
    }
}

/// `v` rounded to the nearest half float, as an f32.
pub fn f16_round(v: f32) -> f32 {
    f16_value(f16_bits(v))
}

/// `[rows, cols]` to `[cols, rows]`.
pub fn transpose(m: &[f32], cols: usize) -> Vec<f32> {
    let rows = m.len() / cols;
    let mut t = vec![0.0; m.len()];
    for (r, row) in m.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            t[c * rows + r] = v;
        }
    }
    t
}

pub struct GpuLayer {
    pub rms_att: wgpu::Buffer,
    pub rms_ffn: wgpu::Buffer,
    /// `[dim + 2 kv_dim, dim]`: wq, wk, wv stacked.
    pub wqkv: Chunked,
    pub wo: Chunked,
    /// `[2 hidden, dim]`: w1 then w3.
    pub w13: Chunked,
    pub w2: Chunked,
}

pub struct GpuWeights {
    pub emb: Chunked,
    /// `None` when the classifier is the embedding table.
    pub cls: Option<Chunked>,
    /// The classifier again in f16, for the decode path (`GpuOptions::f16_classifier`).
    pub cls_f16: Option<Chunked>,
    pub rms_final: wgpu::Buffer,
    /// `[seq_len, head_size / 2, 2]` (cos, sin).
    pub rope: wgpu::Buffer,
    pub layers: Vec<GpuLayer>,
}

impl GpuWeights {
    /// Uploads `source`'s weights in `format` (`GpuSource::format`), no weight chunk larger than
    /// `max_bytes`. `f16_cls`: also the classifier in f16 (from f32 weights only).
    pub fn upload(
        ctx: &GpuContext,
        source: GpuSource,
        format: WeightFormat,
        max_bytes: u64,
        f16_cls: bool,
    ) -> Result<GpuWeights> {
        let w = source.weights();
        let c = w.config();
        // Matrices `ts` of layer `l` (whole tensors: 0), their rows stacked, in `format`.
        let up = |label: &str, ts: &[Tensor], l: usize| {
            let cols = matrix_shape(c, ts[0]).1;
            let views: Vec<MatrixRef> = ts.iter().map(|&t| w.matrix(t, l)).collect();
            match format {
                WeightFormat::Int8 { .. } => Chunked::upload_int8(ctx, label, &views, cols, format, max_bytes),
                // F16 here is a model's F16 matrices read through shader-f16 (`backend::on_device`).
                WeightFormat::Half { .. } | WeightFormat::F16 => Chunked::upload_half(ctx, label, &views, cols, max_bytes),
                WeightFormat::Blocks => Chunked::upload_blocks(ctx, label, &views, cols, max_bytes),
                _ => Chunked::upload(ctx, label, &f32_rows(&views)?, cols, max_bytes),
            }
        };
        let vec = |label: &str, data: &[f32]| storage(ctx, label, data, wgpu::BufferUsages::empty());
        let mut layers = Vec::with_capacity(c.n_layers);
        for l in 0..c.n_layers {
            layers.push(GpuLayer {
                rms_att: vec("rms_att", w.norm(Tensor::RmsAtt, l)),
                rms_ffn: vec("rms_ffn", w.norm(Tensor::RmsFfn, l)),
                wqkv: up("wqkv", &[Tensor::Wq, Tensor::Wk, Tensor::Wv], l)?,
                wo: up("wo", &[Tensor::Wo], l)?,
                w13: up("w13", &[Tensor::W1, Tensor::W3], l)?,
                w2: up("w2", &[Tensor::W2], l)?,
            });
        }
        let cls_f16 = match (f16_cls, format) {
            (false, _) => None,
            (true, WeightFormat::F32) => {
                Some(Chunked::upload_f16(ctx, "wcls f16", &f32_rows(&[w.matrix(Tensor::Wcls, 0)])?, c.dim, max_bytes)?)
            }
            (true, _) => return Err(Error::Gpu("the f16 classifier is made from f32 weights, not quantized ones".into())),
        };
        Ok(GpuWeights {
            emb: up("tok_embeddings", &[Tensor::TokEmbeddings], 0)?,
            cls: (!c.shared_classifier).then(|| up("wcls", &[Tensor::Wcls], 0)).transpose()?,
            cls_f16,
            rms_final: vec("rms_final", w.norm(Tensor::RmsFinal, 0)),
            rope: vec("rope", &rope_table(c)),
            layers,
        })
    }

    pub fn classifier(&self) -> &Chunked {
        self.cls.as_ref().unwrap_or(&self.emb)
    }

    /// Bytes of GPU buffers holding weights (matrices in their format, norms, the RoPE table).
    pub fn bytes(&self) -> u64 {
        let chunks = |c: &Chunked| c.parts.iter().map(|(b, _)| b.size()).sum::<u64>();
        let layers = self
            .layers
            .iter()
            .map(|l| l.rms_att.size() + l.rms_ffn.size() + chunks(&l.wqkv) + chunks(&l.wo) + chunks(&l.w13) + chunks(&l.w2));
        let cls = self.cls.iter().chain(&self.cls_f16).map(chunks).sum::<u64>();
        layers.sum::<u64>() + chunks(&self.emb) + cls + self.rms_final.size() + self.rope.size()
    }
}

/// f32 rows of `views` (f32 matrices) stacked; borrowed when there is one.
fn f32_rows<'a>(views: &[MatrixRef<'a>]) -> Result<Cow<'a, [f32]>> {
    let f32s = |v: &MatrixRef<'a>| match *v {
        MatrixRef::F32(m) => Ok(m),
        _ => Err(Error::Gpu("a quantized matrix among f32 weights".into())),
    };
    match views {
        [one] => Ok(Cow::Borrowed(f32s(one)?)),
        _ => Ok(Cow::Owned(views.iter().map(f32s).collect::<Result<Vec<_>>>()?.concat())),
    }
}

/// (cos, sin) of `pos · freq_j` for every position and pair, computed exactly as the CPU
/// path's `ops::rope` does (`Config::rope_freqs`), so both paths rotate by bit-identical factors.
pub fn rope_table(c: &Config) -> Vec<f32> {
    let freqs = c.rope_freqs();
    let mut t = Vec::with_capacity(c.seq_len * c.head_size());
    for pos in 0..c.seq_len {
        for &freq in &freqs {
            let (fci, fcr) = (pos as f32 * freq).sin_cos();
            t.push(fcr);
            t.push(fci);
        }
    }
    t
}
