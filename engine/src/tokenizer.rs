//! llama2.c `tokenizer.bin`: pieces with merge scores; encoding and decoding exactly as run.c.
//! Hugging Face tokenizers (`tokenizer.json`, or GGUF metadata) behind the same type: `hf`.

pub mod hf;

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::bytes::Reader;
use crate::error::{Error, InputKind, Result};
use crate::BOS;

/// Longest piece we accept, a guard against hostile length fields.
const MAX_PIECE_BYTES: usize = 1 << 16;
/// run.c starts its best-merge search at this score, so pieces at or below it never merge.
const NO_MERGE_SCORE: f32 = -1e10;

#[derive(Debug, Clone)]
pub struct Tokenizer {
    pieces: Vec<Vec<u8>>,
    scores: Vec<f32>,
    /// Piece → lowest id with that piece.
    lookup: HashMap<Vec<u8>, u32>,
    max_token_length: usize,
    /// A Hugging Face tokenizer encodes instead of run.c's rules (then `scores` are zero).
    hf: Option<hf::HfTokenizer>,
    bos: u32,
    eos: u32,
    /// Decoding drops a leading space after BOS (run.c, SentencePiece); byte-level BPE does not.
    strip_after_bos: bool,
}

/// The bytes a token prints as, after run.c's decode rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a [u8]),
    /// A `<0xHH>` byte-fallback piece: one raw byte.
    Byte(u8),
}

impl Piece<'_> {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Piece::Text(b) => b,
            Piece::Byte(b) => std::slice::from_ref(b),
        }
    }

    /// What run.c's `safe_printf` prints: single bytes that are neither printable ASCII nor
    /// whitespace are dropped (they are pieces of multi-byte characters).
    pub fn printable(&self) -> &[u8] {
        let b = self.bytes();
        match b {
            [c] if !(c.is_ascii_graphic() || *c == b' ' || is_c_space(*c)) => &[],
            _ => b,
        }
    }
}

/// C's `isspace` in the C locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Parses a `<0xHH>` piece.
fn byte_piece(p: &[u8]) -> Option<u8> {
    match p {
        [b'<', b'0', b'x', h, l, b'>'] => {
            let hex = |c: u8| (c as char).to_digit(16);
            Some((hex(*h)? * 16 + hex(*l)?) as u8)
        }
        _ => None,
    }
}

impl Tokenizer {
    /// Reads every entry of a `tokenizer.bin`. `file` names it in errors.
    pub fn from_bytes(data: &[u8], file: &str) -> Result<Tokenizer> {
        let bad = |what: String| Error::tokenizer(file, what);
        let mut r = Reader::of_kind(data, file, InputKind::Tokenizer);
        let max_len = r.i32()?;
        if max_len <= 0 || max_len as usize > MAX_PIECE_BYTES {
            return Err(bad(format!("max_token_length is {max_len}; this is not a llama2.c tokenizer")));
        }
        let (mut pieces, mut scores) = (Vec::new(), Vec::new());
        while !r.at_end() {
            let id = pieces.len();
            let score = r.f32()?;
            let len = r.i32()?;
            if len < 0 || len as usize > MAX_PIECE_BYTES {
                return Err(bad(format!("token {id} has length {len}")));
            }
            if score.is_nan() {
                return Err(bad(format!("token {id} has a NaN score")));
            }
            pieces.push(r.take(len as usize)?.to_vec());
            scores.push(score);
        }
        if pieces.len() < 3 {
            return Err(bad(format!("has {} tokens; a vocabulary needs at least <unk>, BOS and EOS", pieces.len())));
        }
        let mut lookup = HashMap::with_capacity(pieces.len());
        for (id, p) in pieces.iter().enumerate().rev() {
            lookup.insert(p.clone(), id as u32);
        }
        Ok(Tokenizer {
            pieces,
            scores,
            lookup,
            max_token_length: max_len as usize,
            hf: None,
            bos: BOS,
            eos: crate::EOS,
            strip_after_bos: true,
        })
    }

    /// Reads a Hugging Face `tokenizer.json`.
    pub fn from_json(data: &[u8], file: &str) -> Result<Tokenizer> {
        Ok(Tokenizer::from_hf(hf::from_json(data, file)?))
    }

    /// The tokenizer a GGUF file's metadata describes.
    pub fn from_gguf(g: &crate::formats::gguf::Gguf, file: &str) -> Result<Tokenizer> {
        Ok(Tokenizer::from_hf(hf::from_gguf(g, file)?))
    }

    fn from_hf(l: hf::Loaded) -> Tokenizer {
        let max_token_length = l.pieces.iter().map(Vec::len).max().unwrap_or(0);
        Tokenizer {
            scores: vec![0.0; l.pieces.len()],
            lookup: HashMap::new(),
            max_token_length,
            pieces: l.pieces,
            hf: Some(l.hf),
            bos: l.bos.unwrap_or(BOS),
            eos: l.eos.unwrap_or(crate::EOS),
            strip_after_bos: l.strip_leading_space,
        }
    }

    /// Uses the model's BOS/EOS ids (a config's `bos_token_id`/`eos_token_id` win over guesses
    /// from the tokenizer's special tokens).
    pub fn with_specials(mut self, bos: u32, eos: Option<u32>) -> Tokenizer {
        self.bos = bos;
        if let Some(e) = eos {
            self.eos = e;
        }
        self
    }

    /// The id this tokenizer's texts start with.
    pub fn bos(&self) -> u32 {
        self.bos
    }

    /// Whether this is a Hugging Face tokenizer (its own encoding rules, not run.c's).
    pub fn is_hf(&self) -> bool {
        self.hf.is_some()
    }

    /// Fails unless this tokenizer has exactly the model's vocabulary size.
    pub fn check_vocab(&self, model_vocab: usize, tokenizer_file: &str, model_file: &str) -> Result<()> {
        if self.vocab_size() != model_vocab {
            return Err(Error::VocabMismatch {
                tokenizer: tokenizer_file.into(),
                tokens: self.vocab_size(),
                model: model_file.into(),
                vocab: model_vocab,
            });
        }
        Ok(())
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }
    pub fn max_token_length(&self) -> usize {
        self.max_token_length
    }
    pub fn piece(&self, id: u32) -> Option<&[u8]> {
        self.pieces.get(id as usize).map(|p| p.as_slice())
    }
    pub fn score(&self, id: u32) -> Option<f32> {
        self.scores.get(id as usize).copied()
    }
    fn id_of(&self, piece: &[u8]) -> Option<u32> {
        self.lookup.get(piece).copied()
    }

    /// Encodes like run.c `encode(text, bos, eos)`: dummy prefix, code points or their bytes,
    /// then best-score merges (leftmost on ties) until none applies.
    /// A Hugging Face tokenizer encodes as its library does, `bos` adding what its
    /// post-processor adds (and BOS when that leaves nothing, so a generation has a start).
    pub fn encode(&self, text: &str, bos: bool, eos: bool) -> Vec<u32> {
        if let Some(h) = &self.hf {
            let mut tokens = h.encode(text, bos);
            if bos && tokens.is_empty() {
                tokens.push(self.bos);
            }
            if eos {
                tokens.push(self.eos);
            }
            return tokens;
        }
        let mut tokens = Vec::with_capacity(text.len() + 3);
        if bos {
            tokens.push(BOS);
        }
        let start = tokens.len();
        tokens.extend(self.encode_unmerged(text));
        self.merge(&mut tokens, start);
        if eos {
            tokens.push(crate::EOS);
        }
        tokens
    }

    /// run.c's byte fallback, `byte + 3`, where the vocabulary has that id; a small vocabulary
    /// without the 256 byte pieces (a random model's) gets <unk> (id 0) instead of an id it does
    /// not have (run.c would read past its table; the fuzzer found the panic).
    fn byte_id(&self, b: u8) -> u32 {
        let id = b as u32 + 3;
        if (id as usize) < self.pieces.len() {
            id
        } else {
            0
        }
    }

    /// The dummy prefix, then each code point as its piece or as its bytes (id = byte + 3).
    fn encode_unmerged(&self, text: &str) -> Vec<u32> {
        let mut tokens = Vec::with_capacity(text.len() + 1);
        if !text.is_empty() {
            tokens.push(self.id_of(b" ").unwrap_or(self.byte_id(b' ')));
        }
        for ch in text.chars() {
            let mut buf = [0u8; 4];
            let bytes = ch.encode_utf8(&mut buf).as_bytes();
            match self.id_of(bytes) {
                Some(id) => tokens.push(id),
                None => tokens.extend(bytes.iter().map(|&b| self.byte_id(b))),
            }
        }
        tokens
    }

    /// Applies the best merge repeatedly to `tokens[start..]`: a heap of candidate pairs keyed
    /// by (score, leftmost), with stale entries skipped, so long texts encode in O(n log n) and
    /// the merges are exactly run.c's (see `merge_reference`).
    fn merge(&self, tokens: &mut Vec<u32>, start: usize) {
        let mut seq = Merging::new(&tokens[start..]);
        let mut heap = BinaryHeap::new();
        for i in 0..seq.ids.len().saturating_sub(1) {
            self.push_pair(&mut heap, &seq, i, i + 1);
        }
        while let Some(c) = heap.pop() {
            if !seq.is_current(&c) {
                continue;
            }
            seq.merge(c.left, c.right, c.merged);
            if let Some(p) = seq.prev(c.left) {
                self.push_pair(&mut heap, &seq, p, c.left);
            }
            if let Some(n) = seq.next(c.left) {
                self.push_pair(&mut heap, &seq, c.left, n);
            }
        }
        tokens.truncate(start);
        tokens.extend(seq.into_tokens());
    }

    fn push_pair(&self, heap: &mut BinaryHeap<Candidate>, seq: &Merging, left: usize, right: usize) {
        let (a, b) = (seq.ids[left], seq.ids[right]);
        let mut pair = self.pieces[a as usize].clone();
        pair.extend_from_slice(&self.pieces[b as usize]);
        if let Some(id) = self.id_of(&pair) {
            let score = self.scores[id as usize];
            if score > NO_MERGE_SCORE {
                heap.push(Candidate { score, left, right, a, b, merged: id });
            }
        }
    }

    /// run.c's merge loop as written: scan all pairs for the best score, merge, repeat.
    /// Quadratic; kept as the reference the fast `merge` is tested against.
    pub fn encode_reference(&self, text: &str) -> Vec<u32> {
        let mut tokens = self.encode_unmerged(text);
        let mut pair = Vec::with_capacity(2 * self.max_token_length + 2);
        loop {
            let mut best: Option<(f32, u32, usize)> = None;
            for i in 0..tokens.len().saturating_sub(1) {
                pair.clear();
                pair.extend_from_slice(&self.pieces[tokens[i] as usize]);
                pair.extend_from_slice(&self.pieces[tokens[i + 1] as usize]);
                if let Some(id) = self.id_of(&pair) {
                    let score = self.scores[id as usize];
                    if score > best.map_or(NO_MERGE_SCORE, |b| b.0) {
                        best = Some((score, id, i));
                    }
                }
            }
            let Some((_, id, i)) = best else { return tokens };
            tokens[i] = id;
            tokens.remove(i + 1);
        }
    }

    /// Decodes `token` following `prev` as run.c does: after BOS a leading space is dropped;
    /// `<0xHH>` pieces are raw bytes.
    pub fn decode(&self, prev: u32, token: u32) -> Result<Piece<'_>> {
        let mut p = self.piece(token).ok_or(Error::TokenOutOfRange { id: token as i64, vocab_size: self.vocab_size() })?;
        if prev == self.bos && self.strip_after_bos && p.first() == Some(&b' ') {
            p = &p[1..];
        }
        Ok(match byte_piece(p) {
            Some(b) => Piece::Byte(b),
            None => Piece::Text(p),
        })
    }

    /// Bytes of a whole token sequence (first token treated as following BOS context `prev`).
    pub fn decode_all(&self, tokens: &[u32]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for w in tokens.windows(2) {
            out.extend_from_slice(self.decode(w[0], w[1])?.bytes());
        }
        Ok(out)
    }
}

/// Joins streamed bytes into UTF-8 text, holding back an incomplete character until its last
/// byte arrives (so byte-fallback pieces show as the character the model wrote).
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds bytes and returns the text that is now complete. Invalid sequences become U+FFFD.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).expect("checked valid"));
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + n);
                        }
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                    }
                }
            }
        }
    }

    /// Ends the stream: a dangling partial character becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let s = if self.pending.is_empty() { String::new() } else { "\u{FFFD}".to_string() };
        self.pending.clear();
        s
    }
}

/// A mergeable adjacent pair, ordered by score then by leftmost position.
#[derive(Debug)]
struct Candidate {
    score: f32,
    left: usize,
    right: usize,
    /// The token ids the pair had when pushed; a later merge makes the entry stale.
    a: u32,
    b: u32,
    merged: u32,
}

impl Ord for Candidate {
    fn cmp(&self, o: &Self) -> Ordering {
        self.score.total_cmp(&o.score).then(o.left.cmp(&self.left))
    }
}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Candidate {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Candidate {}

/// Tokens in a linked list; a merge keeps the left node, so node order is sequence order.
struct Merging {
    ids: Vec<u32>,
    next: Vec<usize>,
    prev: Vec<usize>,
    alive: Vec<bool>,
}

const NONE: usize = usize::MAX;

impl Merging {
    fn new(ids: &[u32]) -> Merging {
        let n = ids.len();
        Merging {
            ids: ids.to_vec(),
            next: (1..=n).map(|i| if i < n { i } else { NONE }).collect(),
            prev: (0..n).map(|i| if i > 0 { i - 1 } else { NONE }).collect(),
            alive: vec![true; n],
        }
    }
    fn next(&self, i: usize) -> Option<usize> {
        Some(self.next[i]).filter(|&n| n != NONE)
    }
    fn prev(&self, i: usize) -> Option<usize> {
        Some(self.prev[i]).filter(|&p| p != NONE)
    }
    fn is_current(&self, c: &Candidate) -> bool {
        self.alive[c.left] && self.next[c.left] == c.right && self.ids[c.left] == c.a && self.ids[c.right] == c.b
    }
    fn merge(&mut self, left: usize, right: usize, id: u32) {
        self.ids[left] = id;
        self.alive[right] = false;
        self.next[left] = self.next[right];
        if let Some(n) = self.next(right) {
            self.prev[n] = left;
        }
    }
    fn into_tokens(self) -> Vec<u32> {
        self.ids.into_iter().zip(self.alive).filter(|(_, a)| *a).map(|(t, _)| t).collect()
    }
}
