//! Drives one generation on the main thread, yielding to the event loop between frames so the
//! page stays responsive and the story appears as it is written.

use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::engine_host::{Chunk, Run, Session};
use crate::settings::{Form, Settings};
use crate::ui::Ctx;

/// Work at most this long before letting the browser paint and handle input.
const FRAME_MS: f64 = 16.0;

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Loading,
    Ready,
    Running(Stats),
    Done { stats: Stats, stopped: bool },
    Error(String),
}

/// Forward passes and wall time since the run began (UI updates included).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    pub tokens: usize,
    pub ms: f64,
}

impl Stats {
    pub fn tok_per_s(&self) -> f64 {
        if self.ms > 0.0 {
            self.tokens as f64 * 1000.0 / self.ms
        } else {
            0.0
        }
    }
    fn describe(&self) -> String {
        format!("{} tokens in {:.2} s · {:.1} tok/s", self.tokens, self.ms / 1000.0, self.tok_per_s())
    }
}

impl Status {
    /// A stable word for tests and styling.
    pub fn state(&self) -> &'static str {
        match self {
            Status::Loading => "loading",
            Status::Ready => "ready",
            Status::Running(_) => "running",
            Status::Done { .. } => "done",
            Status::Error(_) => "error",
        }
    }
    pub fn message(&self) -> String {
        match self {
            Status::Loading => "Downloading the model…".into(),
            Status::Ready => "Ready. Press Generate.".into(),
            Status::Running(s) => format!("Writing… {}", s.describe()),
            Status::Done { stats, stopped: false } => format!("Done: {}", stats.describe()),
            Status::Done { stats, stopped: true } => format!("Stopped: {}", stats.describe()),
            Status::Error(m) => m.clone(),
        }
    }
}

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or_else(js_sys::Date::now, |p| p.now())
}

/// Starts a run with the form's settings, unless one is running or the form is invalid.
pub fn start(ctx: Ctx, prompt: String, form: Form) {
    let Some(info) = ctx.info.get_untracked() else { return };
    let settings = match form.parse(info.config.seq_len) {
        Ok(s) => s,
        Err(message) => return ctx.status.set(Status::Error(message)),
    };
    let mut taken = None;
    ctx.session.update_value(|s| taken = s.take());
    let Some(mut session) = taken else { return };
    let id = ctx.run_id.get_untracked() + 1;
    ctx.run_id.set(id);
    spawn_local(async move {
        let status = drive(ctx, &mut session, &prompt, &settings, id).await;
        ctx.session.set_value(Some(session));
        ctx.status.set(status);
    });
}

pub fn stop(ctx: Ctx) {
    ctx.run_id.update(|id| *id += 1);
}

/// Text produced since the last screen update.
#[derive(Default)]
struct Pending {
    prompt: String,
    story: String,
}

impl Pending {
    fn add(&mut self, c: Chunk) {
        if c.from_prompt { &mut self.prompt } else { &mut self.story }.push_str(&c.text);
    }
    fn flush(&mut self, ctx: Ctx) {
        if !self.prompt.is_empty() {
            ctx.out_prompt.update(|s| s.push_str(&self.prompt));
            self.prompt.clear();
        }
        if !self.story.is_empty() {
            ctx.out_story.update(|s| s.push_str(&self.story));
            self.story.clear();
        }
    }
}

async fn drive(ctx: Ctx, session: &mut Session, prompt: &str, settings: &Settings, id: u64) -> Status {
    let mut run = match session.start(prompt, settings) {
        Ok(run) => run,
        Err(e) => return Status::Error(format!("Cannot start: {e}")),
    };
    ctx.out_prompt.set(String::new());
    ctx.out_story.set(String::new());
    let t0 = now_ms();
    let stats = |run: &Run| Stats { tokens: run.positions(), ms: now_ms() - t0 };
    ctx.status.set(Status::Running(Stats::default()));
    let mut pending = Pending::default();
    let mut frame_start = t0;
    let mut stopped = false;
    loop {
        if ctx.run_id.get_untracked() != id {
            stopped = true;
            break;
        }
        match run.step(session) {
            Ok(Some(chunk)) => pending.add(chunk),
            Ok(None) => break,
            Err(e) => {
                pending.flush(ctx);
                return Status::Error(format!("Generation failed: {e}"));
            }
        }
        if now_ms() - frame_start >= FRAME_MS {
            pending.flush(ctx);
            ctx.status.set(Status::Running(stats(&run)));
            TimeoutFuture::new(0).await;
            frame_start = now_ms();
        }
    }
    pending.story.push_str(&run.finish());
    pending.flush(ctx);
    Status::Done { stats: stats(&run), stopped }
}
