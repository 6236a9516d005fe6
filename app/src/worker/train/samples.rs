//! Samples: the same prompt and seed with an adapter off and on, written on the CPU through the
//! engine's one generation loop (the Train view's samples and the library's comparison).

use std::sync::Arc;

use tinylm_engine::generate::{Backend, Generator, Pace, Step};
use tinylm_engine::gpu::AnyBackend;
use tinylm_engine::lora::Adapter;
use tinylm_engine::tokenizer::Utf8Stream;
use tinylm_engine::{Error, LoadedModel, Sampler, Tokenizer};

use crate::train::adapter_error;

/// Tokens per sample.
const SAMPLE_TOKENS: usize = 48;

/// The same prompt and seed with the adapter off and on (the samples, the library's
/// comparison), on the CPU through the one generation loop.
pub fn off_and_on(m: &LoadedModel, adapter: Adapter, prompt: &str, seed: u64) -> Result<(String, String), String> {
    let tok = m.need_tokenizer().map_err(|e| e.to_string())?;
    adapter.check_base(m.config()).map_err(|e| adapter_error(&e))?;
    let story = |adapter| -> Result<String, Error> {
        let mut b = AnyBackend::Cpu(m.cpu_with(adapter));
        story(&mut b, tok, prompt, seed)
    };
    let result = story(None).and_then(|off| Ok((off, story(Some(Arc::new(adapter)))?)));
    result.map_err(|e| e.to_string())
}

/// Decodes a story as it is written.
struct Text<'a> {
    tok: &'a Tokenizer,
    utf8: Utf8Stream,
    out: String,
    failed: Option<Error>,
}

impl Pace for Text<'_> {
    fn token(&mut self, step: Step) -> bool {
        match self.tok.decode(step.prev, step.token) {
            Ok(p) => {
                self.out.push_str(&self.utf8.push(p.bytes()));
                true
            }
            Err(e) => {
                self.failed = Some(e);
                false
            }
        }
    }
}

/// `SAMPLE_TOKENS` tokens after the prompt at temperature 0.8, top-p 0.9, from `seed`.
fn story(b: &mut AnyBackend, tok: &Tokenizer, prompt: &str, seed: u64) -> Result<String, Error> {
    let c = *b.config();
    let prompt = tok.encode(prompt, true, false);
    let steps = (prompt.len() + SAMPLE_TOKENS).min(c.seq_len);
    let mut sampler = Sampler::new(0.8, 0.9, seed)?;
    let mut text = Text { tok, utf8: Utf8Stream::default(), out: String::new(), failed: None };
    // The CPU path's futures never wait: polled once, they are done.
    now_or_never(b.run_async(&prompt, steps, &mut sampler, &mut text))
        .unwrap_or_else(|| Err(Error::InvalidSetting("a CPU story had to wait".into())))?;
    if let Some(e) = text.failed {
        return Err(e);
    }
    text.out.push_str(&text.utf8.finish());
    Ok(text.out)
}

/// Polls `f` once: its value if it is ready.
fn now_or_never<T>(f: impl std::future::Future<Output = T>) -> Option<T> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}
