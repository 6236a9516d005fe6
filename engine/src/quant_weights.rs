//! A model as the CPU backend keeps it: each matrix in f32, as Q8_0 (int8 values and one f32
//! scale per group, as llama2.c v2 files and GGUF Q8_0 tensors hold them) or in GGUF's Q4_0, Q4_K
//! or Q6_K blocks as read (`BlockMatrix`); the norms in f32. Q8_0 takes ~1.1 bytes a weight, Q4_0
//! and Q4_K ~0.56, Q6_K ~0.82, against f32's 4. A tensor whose layers come in different types
//! (Q4_K_M's attn_v and ffn_down: Q6_K in some layers, Q4_K in others) is kept per layer
//! (`Matrix::Layers`). `dequantize` gives the f32 `Weights` for the paths that have no quantized
//! kernels yet (GPU, training, inspection), bit for bit what `quant::dequantize` and the v2 reader
//! give.

use crate::config::Config;
use crate::cpu::blocks::BlockRows;
use crate::cpu::q8::Q8Rows;
use crate::quant::{dequantize, DType};
use crate::weights::{tensor_specs, Tensor, Weights};

/// A Q8_0 matrix (all layers stacked): value `i` of the flattened tensor is
/// `q[i] · scales[i / group]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Q8Matrix {
    pub group: usize,
    pub q: Vec<i8>,
    pub scales: Vec<f32>,
}

impl Q8Matrix {
    /// From ggml Q8_0 blocks (`[f16 d, 32 × i8]`, whole blocks).
    pub fn from_ggml(data: &[u8]) -> Q8Matrix {
        let blocks = data.chunks_exact(34);
        let mut m = Q8Matrix { group: 32, q: Vec::with_capacity(blocks.len() * 32), scales: Vec::with_capacity(blocks.len()) };
        for b in blocks {
            m.scales.push(half::f16::from_le_bytes([b[0], b[1]]).to_f32());
            m.q.extend(b[2..34].iter().map(|&v| v as i8));
        }
        m
    }
}

/// A matrix in ggml blocks of a block type (Q4_0, Q4_K, Q6_K), the file's bytes as they were;
/// rows are whole blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockMatrix {
    pub dtype: DType,
    pub data: Vec<u8>,
}

impl BlockMatrix {
    /// Values held.
    pub fn len(&self) -> usize {
        let (per, bytes) = self.dtype.block();
        self.data.len() / bytes * per
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// One matrix, in the type it is kept in.
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    F32(Vec<f32>),
    Q8(Q8Matrix),
    Blocks(BlockMatrix),
    /// Layers of one tensor kept in different types, each a whole number of rows (and of Q8_0
    /// groups): equal lengths, in layer order.
    Layers(Vec<Matrix>),
}

/// Rows of a `Matrix`, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum MatrixRef<'a> {
    F32(&'a [f32]),
    Q8(Q8Rows<'a>),
    Blocks(BlockRows<'a>),
}

impl MatrixRef<'_> {
    /// Rows held, each `cols` values wide.
    pub fn n_rows(&self, cols: usize) -> usize {
        match self {
            MatrixRef::F32(m) => m.len() / cols.max(1),
            MatrixRef::Q8(m) => m.n_rows(),
            MatrixRef::Blocks(b) => b.n_rows(),
        }
    }

    /// Row `r` (of `out.len()` values) in f32: `quant::dequantize`'s values for quantized rows.
    pub fn row_f32(&self, r: usize, out: &mut [f32]) {
        match self {
            MatrixRef::F32(m) => out.copy_from_slice(&m[r * out.len()..(r + 1) * out.len()]),
            MatrixRef::Q8(m) => m.row_f32(r, out),
            MatrixRef::Blocks(m) => m.row_f32(r, out),
        }
    }
}

impl Matrix {
    /// Values held.
    pub fn len(&self) -> usize {
        match self {
            Matrix::F32(v) => v.len(),
            Matrix::Q8(m) => m.q.len(),
            Matrix::Blocks(m) => m.len(),
            Matrix::Layers(l) => l.iter().map(Matrix::len).sum(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held in memory (values and scales; blocks as the file stores them).
    pub fn bytes(&self) -> u64 {
        match self {
            Matrix::F32(v) => 4 * v.len() as u64,
            Matrix::Q8(m) => m.q.len() as u64 + 4 * m.scales.len() as u64,
            Matrix::Blocks(m) => m.data.len() as u64,
            Matrix::Layers(l) => l.iter().map(Matrix::bytes).sum(),
        }
    }

    /// Kept in some quantized type (not all f32).
    pub fn is_quantized(&self) -> bool {
        match self {
            Matrix::F32(_) => false,
            Matrix::Layers(l) => l.iter().any(Matrix::is_quantized),
            _ => true,
        }
    }

    /// Rows `first..first + n` of a matrix with rows of `cols` values.
    pub fn rows(&self, first: usize, n: usize, cols: usize) -> MatrixRef<'_> {
        match self {
            Matrix::F32(v) => MatrixRef::F32(&v[first * cols..(first + n) * cols]),
            Matrix::Q8(m) => {
                let all = Q8Rows { cols, group: m.group, offset: 0, q: &m.q, scales: &m.scales };
                MatrixRef::Q8(all.rows(first, n))
            }
            Matrix::Blocks(m) => MatrixRef::Blocks(BlockRows { dtype: m.dtype, cols, data: &m.data }.rows(first, n)),
            Matrix::Layers(l) => {
                // Each layer's rows lie in one piece.
                let per = l[0].len() / cols;
                let at = first / per;
                assert!(first + n <= (at + 1) * per, "rows {first}..+{n} span two layers");
                l[at].rows(first - at * per, n, cols)
            }
        }
    }

    /// The f32 values (`q · scale` for Q8_0, `quant::dequantize` for blocks).
    pub fn dequantize(&self) -> Vec<f32> {
        match self {
            Matrix::F32(v) => v.clone(),
            Matrix::Q8(m) => m.q.iter().enumerate().map(|(i, &q)| q as f32 * m.scales[i / m.group]).collect(),
            Matrix::Blocks(m) => {
                let mut out = Vec::new();
                dequantize(m.dtype, &m.data, &mut out);
                out
            }
            Matrix::Layers(l) => l.iter().flat_map(Matrix::dequantize).collect(),
        }
    }

    fn into_f32(self) -> Vec<f32> {
        match self {
            Matrix::F32(v) => v,
            q => q.dequantize(),
        }
    }

    /// Layer pieces of one tensor joined: Q8_0 when every piece is Q8_0 with one group size (each
    /// piece a whole number of groups), blocks when every piece is of one block type, f32 when
    /// every piece is f32, else the pieces as they are (`Layers`; f32 if a Q8_0 piece is not whole
    /// groups).
    pub fn join(pieces: Vec<Matrix>) -> Matrix {
        let whole = |p: &Matrix| !matches!(p, Matrix::Q8(m) if !m.q.len().is_multiple_of(m.group));
        let same = |a: &Matrix, b: &Matrix| match (a, b) {
            (Matrix::F32(_), Matrix::F32(_)) => true,
            (Matrix::Q8(a), Matrix::Q8(b)) => a.group == b.group,
            (Matrix::Blocks(a), Matrix::Blocks(b)) => a.dtype == b.dtype,
            _ => false,
        };
        let Some(first) = pieces.first() else { return Matrix::F32(Vec::new()) };
        if !pieces.iter().all(whole) || matches!(first, Matrix::Layers(_)) {
            return Matrix::F32(pieces.into_iter().flat_map(Matrix::into_f32).collect());
        }
        if !pieces.iter().all(|p| same(first, p)) {
            return Matrix::Layers(pieces);
        }
        match first {
            Matrix::F32(_) => Matrix::F32(pieces.into_iter().flat_map(Matrix::into_f32).collect()),
            Matrix::Q8(m) => {
                let mut out = Q8Matrix { group: m.group, q: Vec::new(), scales: Vec::new() };
                for p in pieces {
                    if let Matrix::Q8(m) = p {
                        out.q.extend_from_slice(&m.q);
                        out.scales.extend_from_slice(&m.scales);
                    }
                }
                Matrix::Q8(out)
            }
            Matrix::Blocks(m) => {
                let mut out = BlockMatrix { dtype: m.dtype, data: Vec::new() };
                for p in pieces {
                    if let Matrix::Blocks(m) = p {
                        out.data.extend_from_slice(&m.data);
                    }
                }
                Matrix::Blocks(out)
            }
            Matrix::Layers(_) => unreachable!("refused above"),
        }
    }
}

/// The model's tensors: norms in f32, matrices as kept.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantWeights {
    pub config: Config,
    pub rms_att: Vec<f32>,
    pub rms_ffn: Vec<f32>,
    pub rms_final: Vec<f32>,
    /// tok_embeddings, wq, wk, wv, wo, w1, w2, w3 and (untied) wcls, in that order.
    matrices: Vec<(Tensor, Matrix)>,
}

/// `(rows, cols)` of one layer's matrix `t` (of the whole tensor for the embedding and classifier).
pub fn matrix_shape(c: &Config, t: Tensor) -> (usize, usize) {
    let (d, h, kv, q, v) = (c.dim, c.hidden_dim, c.kv_dim(), c.q_dim(), c.vocab_size);
    match t {
        Tensor::TokEmbeddings | Tensor::Wcls => (v, d),
        Tensor::RmsAtt | Tensor::RmsFfn | Tensor::RmsFinal => (1, d),
        Tensor::Wq => (q, d),
        Tensor::Wk | Tensor::Wv => (kv, d),
        Tensor::Wo => (d, q),
        Tensor::W1 | Tensor::W3 => (h, d),
        Tensor::W2 => (d, h),
    }
}

const NORMS: [Tensor; 3] = [Tensor::RmsAtt, Tensor::RmsFfn, Tensor::RmsFinal];

impl QuantWeights {
    /// From tensors in `tensor_specs` order (norms must be f32; lengths must match).
    pub fn from_tensors(config: Config, tensors: Vec<Matrix>) -> QuantWeights {
        let specs = tensor_specs(&config);
        assert_eq!(tensors.len(), specs.len(), "tensor count");
        let mut w = QuantWeights { config, rms_att: vec![], rms_ffn: vec![], rms_final: vec![], matrices: vec![] };
        for (s, t) in specs.iter().zip(tensors) {
            assert_eq!(t.len(), s.len, "length of {}", s.tensor.name());
            match s.tensor {
                Tensor::RmsAtt => w.rms_att = t.into_f32(),
                Tensor::RmsFfn => w.rms_ffn = t.into_f32(),
                Tensor::RmsFinal => w.rms_final = t.into_f32(),
                m => w.matrices.push((m, t)),
            }
        }
        w
    }

    /// f32 weights as they are (no copy).
    pub fn from_dense(w: Weights) -> QuantWeights {
        let config = w.config;
        let mut tensors = Vec::new();
        let mut w = w;
        for s in tensor_specs(&config) {
            tensors.push(Matrix::F32(std::mem::take(w.get_mut(s.tensor))));
        }
        QuantWeights::from_tensors(config, tensors)
    }

    /// The matrices held (the tied classifier once, as the embedding table).
    pub fn matrices(&self) -> impl Iterator<Item = &Matrix> {
        self.matrices.iter().map(|(_, m)| m)
    }

    /// Some matrix is kept quantized (Q8_0 or blocks).
    pub fn is_quantized(&self) -> bool {
        self.matrices.iter().any(|(_, m)| m.is_quantized())
    }

    /// The quantized types its matrices are kept in, in `DType` order ("Q4_K", "Q6_K").
    pub fn kept_types(&self) -> Vec<DType> {
        fn add(m: &Matrix, out: &mut Vec<DType>) {
            match m {
                Matrix::F32(_) => {}
                Matrix::Q8(_) => out.push(DType::Q8_0),
                Matrix::Blocks(b) => out.push(b.dtype),
                Matrix::Layers(l) => l.iter().for_each(|m| add(m, out)),
            }
        }
        let mut out = Vec::new();
        self.matrices.iter().for_each(|(_, m)| add(m, &mut out));
        out.sort_by_key(|t| t.ggml_id());
        out.dedup();
        out
    }

    /// The matrix `t` (`Wcls` is the embedding table when tied); norms are not matrices here.
    pub fn matrix(&self, t: Tensor) -> &Matrix {
        let t = if t == Tensor::Wcls && self.config.shared_classifier { Tensor::TokEmbeddings } else { t };
        assert!(!NORMS.contains(&t), "{} is a norm", t.name());
        &self.matrices.iter().find(|(m, _)| *m == t).expect("every matrix is held").1
    }

    /// Layer `l`'s rows of matrix `t` (`[rows, cols]` per layer; whole tensors are layer 0).
    pub fn layer(&self, t: Tensor, l: usize) -> MatrixRef<'_> {
        let (rows, cols) = matrix_shape(&self.config, t);
        self.matrix(t).rows(l * rows, rows, cols)
    }

    /// Bytes of weights held in memory (matrices as kept, norms in f32).
    pub fn size_bytes(&self) -> u64 {
        let norms = 4 * (self.rms_att.len() + self.rms_ffn.len() + self.rms_final.len()) as u64;
        norms + self.matrices.iter().map(|(_, m)| m.bytes()).sum::<u64>()
    }

    /// The f32 weights.
    pub fn dequantize(&self) -> Weights {
        let tensors = tensor_specs(&self.config)
            .iter()
            .map(|s| match s.tensor {
                Tensor::RmsAtt => self.rms_att.clone(),
                Tensor::RmsFfn => self.rms_ffn.clone(),
                Tensor::RmsFinal => self.rms_final.clone(),
                t => self.matrix(t).dequantize(),
            })
            .collect();
        Weights::from_tensors(self.config, tensors)
    }

    /// The f32 weights, moving f32 matrices rather than copying them.
    pub fn into_dense(self) -> Weights {
        let QuantWeights { config, rms_att, rms_ffn, rms_final, mut matrices } = self;
        let mut norms = [Some(rms_att), Some(rms_ffn), Some(rms_final)];
        let tensors = tensor_specs(&config)
            .iter()
            .map(|s| match NORMS.iter().position(|&n| n == s.tensor) {
                Some(i) => norms[i].take().unwrap_or_default(),
                None => {
                    let at = matrices.iter().position(|(t, _)| *t == s.tensor).expect("every matrix is held");
                    matrices.swap_remove(at).1.into_f32()
                }
            })
            .collect();
        Weights::from_tensors(config, tensors)
    }
}
