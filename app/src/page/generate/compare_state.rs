//! The state of "Compare settings" (part of the page's `Ctx`): the rows as typed, the stories
//! so far and how the run stands, updated from the worker's `CompareNews`.

use leptos::prelude::*;

use crate::protocol::compare::{CompareNews, MAX_COLUMNS};

/// A row of the form: temperature, top-p and seed as typed.
#[derive(Clone, Copy)]
pub struct RowSignals {
    pub temperature: RwSignal<String>,
    pub topp: RwSignal<String>,
    pub seed: RwSignal<String>,
}

/// One story being written: its heading and its text so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub heading: String,
    pub prompt: String,
    pub story: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Idle,
    Running,
    Done { tokens: usize, elapsed_ms: f64, stopped: bool },
    Error(String),
}

impl Phase {
    pub fn state(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Running => "running",
            Phase::Done { .. } => "done",
            Phase::Error(_) => "error",
        }
    }

    pub fn message(&self, n: usize) -> String {
        match self {
            Phase::Idle => String::new(),
            Phase::Running => format!("Writing {n} stories together…"),
            Phase::Done { tokens, elapsed_ms, stopped } => {
                let how = if *stopped { "Stopped" } else { "Done" };
                format!("{how}: {n} stories, {tokens} tokens in all in {:.2} s.", elapsed_ms / 1000.0)
            }
            Phase::Error(m) => m.clone(),
        }
    }
}

/// The section's state, part of the page's `Ctx`.
#[derive(Clone, Copy)]
pub struct CompareState {
    pub rows: [RowSignals; MAX_COLUMNS],
    /// Rows shown (2 to `MAX_COLUMNS`).
    pub count: RwSignal<usize>,
    pub columns: RwSignal<Vec<Column>>,
    pub phase: RwSignal<Phase>,
    pub run: RwSignal<u64>,
}

impl CompareState {
    /// Greedy, calmer and wilder than the model, one seed: the differences are the settings'.
    pub fn new() -> CompareState {
        let row = |t: &str| RowSignals {
            temperature: RwSignal::new(t.into()),
            topp: RwSignal::new("0.9".into()),
            seed: RwSignal::new("42".into()),
        };
        CompareState {
            rows: [row("0"), row("0.8"), row("1.2"), row("1")],
            count: RwSignal::new(3),
            columns: RwSignal::new(Vec::new()),
            phase: RwSignal::new(Phase::Idle),
            run: RwSignal::new(0),
        }
    }

    pub fn running(&self) -> bool {
        self.phase.with(|p| *p == Phase::Running)
    }

    /// Applies the worker's news of the current compare run.
    pub fn receive(&self, news: &CompareNews) {
        if news.run() != self.run.get_untracked() || !self.running() {
            return;
        }
        match news {
            CompareNews::Text { columns, .. } => self.columns.update(|cols| {
                for (col, new) in cols.iter_mut().zip(columns) {
                    col.prompt.push_str(&new.prompt);
                    col.story.push_str(&new.story);
                }
            }),
            CompareNews::Finished { tokens, elapsed_ms, stopped, .. } => {
                let tokens = tokens.iter().sum();
                self.phase.set(Phase::Done { tokens, elapsed_ms: *elapsed_ms, stopped: *stopped });
            }
            CompareNews::Failed { message, .. } => {
                // Refused before any text: no empty columns under the message.
                if self.columns.with_untracked(|cols| cols.iter().all(|c| c.prompt.is_empty() && c.story.is_empty())) {
                    self.columns.set(Vec::new());
                }
                self.phase.set(Phase::Error(message.clone()));
            }
        }
    }
}

impl Default for CompareState {
    fn default() -> Self {
        CompareState::new()
    }
}
