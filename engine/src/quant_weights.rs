//! A model as the CPU backend keeps it: each matrix in f32 or as Q8_0 (int8 values and one f32
//! scale per group, as llama2.c v2 files and GGUF Q8_0 tensors hold them), the norms in f32.
//! Q8_0 takes ~1.1 bytes a weight against f32's 4. `dequantize` gives the f32 `Weights` for the
//! paths that have no Q8_0 kernels yet (GPU, training, inspection), bit for bit what
//! `quant::dequantize` and the v2 reader give (`q as f32 · scale`).

use crate::config::Config;
use crate::cpu::q8::Q8Rows;
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

/// One matrix, in the type it is kept in.
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    F32(Vec<f32>),
    Q8(Q8Matrix),
}

/// Rows of a `Matrix`, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum MatrixRef<'a> {
    F32(&'a [f32]),
    Q8(Q8Rows<'a>),
}

impl Matrix {
    /// Values held.
    pub fn len(&self) -> usize {
        match self {
            Matrix::F32(v) => v.len(),
            Matrix::Q8(m) => m.q.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held in memory (values and scales).
    pub fn bytes(&self) -> u64 {
        match self {
            Matrix::F32(v) => 4 * v.len() as u64,
            Matrix::Q8(m) => m.q.len() as u64 + 4 * m.scales.len() as u64,
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
        }
    }

    /// The f32 values (`q · scale` for Q8_0).
    pub fn dequantize(&self) -> Vec<f32> {
        match self {
            Matrix::F32(v) => v.clone(),
            Matrix::Q8(m) => m.q.iter().enumerate().map(|(i, &q)| q as f32 * m.scales[i / m.group]).collect(),
        }
    }

    fn into_f32(self) -> Vec<f32> {
        match self {
            Matrix::F32(v) => v,
            q => q.dequantize(),
        }
    }

    /// Layer pieces of one tensor joined: Q8_0 when every piece is Q8_0 with one group size (each
    /// piece a whole number of groups), f32 otherwise.
    pub fn join(pieces: Vec<Matrix>) -> Matrix {
        let group = match pieces.first() {
            Some(Matrix::Q8(m)) => m.group,
            _ => 0,
        };
        let all_q8 = pieces.iter().all(|p| matches!(p, Matrix::Q8(m) if m.group == group && m.q.len().is_multiple_of(group)));
        if !all_q8 || pieces.is_empty() {
            return Matrix::F32(pieces.into_iter().flat_map(Matrix::into_f32).collect());
        }
        let mut out = Q8Matrix { group, q: Vec::new(), scales: Vec::new() };
        for p in pieces {
            if let Matrix::Q8(m) = p {
                out.q.extend_from_slice(&m.q);
                out.scales.extend_from_slice(&m.scales);
            }
        }
        Matrix::Q8(out)
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

    /// Some matrix is kept as Q8_0.
    pub fn has_q8(&self) -> bool {
        self.matrices.iter().any(|(_, m)| matches!(m, Matrix::Q8(_)))
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
