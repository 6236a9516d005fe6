//! The Inspect view's work: one batched inspection pass of the active model over a text, the
//! logit lens and attention rollout, sent to the page with the big arrays as binary buffers.

use js_sys::{Array, Float32Array};
use tinylm_engine::generate::Backend;
use tinylm_engine::gpu::AnyBackend;
use tinylm_engine::tokenizer::Piece;
use tinylm_engine::trace::{self, logit_lens, rollout, Inspection};
use tinylm_engine::Tokenizer;

use super::engine::Engine;
use super::host::{now_ms, post, scope};
use super::words;
use crate::protocol::inspect::{max_tokens, InspectInfo, InspectRequest};
use crate::protocol::{FromWorker, Settings};

/// The tokens of the last story, as the model saw them (re-encoding its text could differ).
#[derive(Debug, Clone)]
pub struct LastRun {
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    pub settings: Settings,
}

pub async fn handle(engine: &mut Engine, req: InspectRequest) {
    match inspect(engine, &req).await {
        Ok((info, parts)) => post_with_parts(&FromWorker::Inspected(Box::new(info)), parts),
        Err(message) => post(&FromWorker::InspectFailed { id: req.id, message }),
    }
}

async fn inspect(engine: &mut Engine, req: &InspectRequest) -> Result<(InspectInfo, [Vec<f32>; 3]), String> {
    let last = if req.last_run { engine.last_run.clone() } else { None };
    let Some((backend, tokenizer, id)) = engine.active_parts() else {
        return Err("No model is loaded yet: wait for it, or load one.".into());
    };
    let (mut tokens, prompt_len, settings) = match last {
        Some(l) => (l.tokens, l.prompt_len, Some(l.settings)),
        None => {
            let t = tokenizer.encode(&req.text, true, false);
            let n = t.len();
            (t, n, None)
        }
    };
    let c = *backend.config();
    let wanted = tokens.len();
    tokens.truncate(max_tokens(c.n_layers, c.n_heads, c.vocab_size, wanted.min(c.seq_len)));
    let t0 = now_ms();
    let ins = match &mut *backend {
        AnyBackend::Gpu(g) => g.inspect_async(&tokens).await,
        AnyBackend::Cpu(cpu) => trace::inspect(cpu, &tokens),
    }
    .map_err(|e| words::run_error(&e))?;
    let cpu_lens = match &*backend {
        AnyBackend::Cpu(cpu) => Some(logit_lens(&cpu.weights, &ins)),
        AnyBackend::Gpu(_) => None,
    };
    let backend_name = backend.name();
    let pieces = token_pieces(tokenizer, &tokens);
    let vocab = (0..c.vocab_size as u32).map(|i| tokenizer.piece(i).map(raw_readable).unwrap_or_default()).collect();
    // The GPU keeps no host copy of the weights: parse them again for the lens.
    let lens = match cpu_lens {
        Some(l) => l,
        None => logit_lens(&engine.weights_of(id)?, &ins),
    }
    .map_err(|e| words::run_error(&e))?;
    let roll = rollout(&ins);
    let info = InspectInfo {
        id: req.id,
        n_layers: c.n_layers,
        n_heads: c.n_heads,
        vocab_size: c.vocab_size,
        tokens: tokens.clone(),
        pieces,
        prompt_len: prompt_len.min(tokens.len()),
        vocab,
        lens,
        backend: backend_name,
        ms: now_ms() - t0,
        settings,
        truncated_from: (wanted > tokens.len()).then_some(wanted),
    };
    let Inspection { attn, logits, .. } = ins;
    Ok((info, [attn, logits, roll]))
}

/// How each token of the text reads, after run.c's decode rules.
fn token_pieces(tok: &Tokenizer, tokens: &[u32]) -> Vec<String> {
    let first = tokens.first().and_then(|&t| tok.piece(t)).map(raw_readable).unwrap_or_default();
    let rest = tokens.windows(2).map(|w| tok.decode(w[0], w[1]).map(|p| readable(&p)).unwrap_or_else(|_| "?".into()));
    std::iter::once(first).chain(rest).collect()
}

/// A vocabulary piece as stored, `<0xHH>` pieces read as `readable` shows bytes.
fn raw_readable(piece: &[u8]) -> String {
    let byte = match piece {
        [b'<', b'0', b'x', _, _, b'>'] => std::str::from_utf8(&piece[3..5]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()),
        _ => None,
    };
    let text = String::from_utf8_lossy(piece);
    match byte {
        Some(b) => readable(&Piece::Byte(b)),
        // llama2.c stores BOS and EOS as "\n<s>\n" and "\n</s>\n".
        None if matches!(text.trim(), "<s>" | "</s>" | "<unk>") => text.trim().to_string(),
        None => visible(&text),
    }
}

/// Text pieces as text (line breaks and tabs as symbols); byte pieces as the character when
/// printable ASCII, else `<0xHH>` (a part of a multi-byte character, or a control byte).
fn readable(p: &Piece) -> String {
    match *p {
        Piece::Text(b) => visible(&String::from_utf8_lossy(b)),
        Piece::Byte(b) if b.is_ascii_graphic() || b == b' ' => (b as char).to_string(),
        Piece::Byte(b'\n') => "↵".into(),
        Piece::Byte(b) => format!("<0x{b:02X}>"),
    }
}

/// Line breaks and tabs as symbols; a piece of only spaces as `␣`s (else it would not show).
fn visible(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b == b' ') {
        return "␣".repeat(s.len());
    }
    s.replace('\n', "↵").replace('\t', "⇥")
}

/// Posts `[json, buffers…]`, transferring the buffers (no copy).
fn post_with_parts(msg: &FromWorker, parts: [Vec<f32>; 3]) {
    let data = Array::of1(&msg.to_json().into());
    let transfer = Array::new();
    for p in parts {
        let arr = Float32Array::from(p.as_slice());
        data.push(&arr);
        transfer.push(&arr.buffer());
    }
    if let Err(e) = scope().post_message_with_transfer(&data, &transfer) {
        web_sys::console::error_1(&e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_read_as_text() {
        assert_eq!(readable(&Piece::Text(b" upon")), " upon");
        assert_eq!(readable(&Piece::Byte(b'\n')), "↵");
        assert_eq!(readable(&Piece::Byte(0xE2)), "<0xE2>");
        assert_eq!(readable(&Piece::Byte(b'A')), "A");
        assert_eq!(raw_readable(b"<0x0A>"), "↵");
        assert_eq!(raw_readable(b"<0xC3>"), "<0xC3>");
        assert_eq!(raw_readable(b"\n<s>\n"), "<s>");
        assert_eq!(raw_readable(b" "), "␣");
    }
}
