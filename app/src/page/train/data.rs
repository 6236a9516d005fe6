//! The training text: a bundled book or story collection, pasted text, or a .txt file; with its
//! token count and the held-out part the worker reports.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{File, HtmlInputElement, Response};

use super::state::TrainCtx;
use crate::protocol::train::TrainCmd;
use crate::train::{prompt_of_text, style_of_file, style_of_text};

/// A text shipped with the site (public/corpora/, see its LICENSE-NOTES.md).
pub struct Corpus {
    pub key: &'static str,
    pub file: &'static str,
    pub title: &'static str,
    pub licence: &'static str,
    /// The samples' prompt for this text: words from it, so the adapter's sample can go on in
    /// its style (its names) where the plain model's cannot (measured: README, "Presets chosen
    /// by measurement").
    pub prompt: &'static str,
    /// The adapter's name the Train view suggests for it.
    pub style: &'static str,
    /// Offered in the Train view. The lesson text is for building a model: it is the bundled
    /// model's own style, so an adapter has nothing to learn from it (the Quick demo raised its
    /// held-out loss, 1.662 → 1.670).
    pub train: bool,
}

pub static CORPORA: [Corpus; 5] = [
    Corpus {
        key: "peter-rabbit",
        file: "corpora/peter-rabbit.txt",
        title: "The Tale of Peter Rabbit — Beatrix Potter (5 KB)",
        licence: "Public domain (Project Gutenberg #14304, 1916 edition)",
        prompt: "Mr. McGregor",
        style: "Peter Rabbit style",
        train: true,
    },
    Corpus {
        key: "aesop",
        file: "corpora/aesop.txt",
        title: "Aesop's Fables, tr. Townsend (222 KB)",
        licence: "Public domain (Project Gutenberg #21)",
        prompt: "The Fox and the",
        style: "Aesop style",
        train: true,
    },
    Corpus {
        key: "alice",
        file: "corpora/alice.txt",
        title: "Alice's Adventures in Wonderland — Lewis Carroll (144 KB)",
        licence: "Public domain (Project Gutenberg #11)",
        prompt: "Alice",
        style: "Alice style",
        train: true,
    },
    Corpus {
        key: "tinystories",
        file: "corpora/tinystories.txt",
        title: "TinyStories, first 100 KB of the validation set",
        licence: "CDLA-Sharing-1.0 (Eldan & Li, 2023)",
        prompt: "Once upon a time",
        style: "TinyStories style",
        train: true,
    },
    // Large enough for a lesson-length Build run: 15 minutes of the Sapling shape (~10M tokens)
    // sees each of its ~930K training tokens about 11 times, not hundreds (README).
    Corpus {
        key: "tinystories-lesson",
        file: "corpora/tinystories-lesson.txt",
        title: "TinyStories, 2,316 stories (2 MB, for a lesson-length run)",
        licence: "CDLA-Sharing-1.0 (Eldan & Li, 2023)",
        prompt: "Once upon a time",
        style: "TinyStories style",
        train: false,
    },
];

fn set_text(t: TrainCtx, text: String, label: String) {
    t.counts.set(None);
    t.data.label.set(label);
    t.send(TrainCmd::Count { text: text.clone() });
    t.data.text.set(text);
}

pub fn load_corpus(t: TrainCtx, key: String) {
    let Some(c) = CORPORA.iter().find(|c| c.key == key) else {
        return;
    };
    t.data.source.set(key);
    suggest_prompt(t, c.prompt.to_string());
    suggest(t, c.style.to_string());
    spawn_local(async move {
        let text = async {
            let w = web_sys::window()?;
            let resp: Response = JsFuture::from(w.fetch_with_str(c.file)).await.ok()?.dyn_into().ok()?;
            JsFuture::from(resp.text().ok()?).await.ok()?.as_string()
        };
        match text.await {
            Some(text) => set_text(t, text, format!("{} — {}", c.title, c.licence)),
            None => t.note.set(format!("Could not load {}.", c.file)),
        }
    });
}

/// The suggested adapter name follows the text until the reader names the adapter.
fn suggest(t: TrainCtx, name: String) {
    let f = t.form;
    let untouched = f.name.with_untracked(|n| *n == f.suggested.get_untracked() || CORPORA.iter().any(|o| o.style == n));
    if untouched {
        f.name.set(name.clone());
    }
    f.suggested.set(name);
}

/// The sample prompt follows the text (a bundled text's own, or the first words of the reader's)
/// until the reader types one: "Alice" stayed for a pasted story that has no Alice in it.
fn suggest_prompt(t: TrainCtx, prompt: String) {
    let f = t.form;
    let untouched = f.prompt.with_untracked(|p| {
        p.trim().is_empty() || *p == f.prompt_suggested.get_untracked() || CORPORA.iter().any(|o| o.prompt == p)
    });
    if untouched {
        f.prompt.set(prompt.clone());
    }
    f.prompt_suggested.set(prompt);
}

pub fn load_default(t: TrainCtx) {
    load_corpus(t, CORPORA[0].key.into());
}

async fn read_txt(t: TrainCtx, f: File) {
    match gloo::file::futures::read_as_text(&gloo::file::File::from(f.clone())).await.ok() {
        Some(text) => {
            suggest(t, style_of_file(&f.name()));
            suggest_prompt(t, prompt_of_text(&text));
            set_text(t, text, format!("your file {}", f.name()))
        }
        None => t.note.set(format!("Could not read {} as text.", f.name())),
    }
}

#[component]
pub fn DataPanel(t: TrainCtx) -> impl IntoView {
    let d = t.data;
    let change = move |ev: leptos::ev::Event| {
        let key = event_target_value(&ev);
        if key == "paste" || key == "file" {
            d.source.set(key);
        } else {
            load_corpus(t, key);
        }
    };
    let on_file = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        if let Some(f) = input.files().and_then(|l| l.get(0)) {
            spawn_local(read_txt(t, f));
        }
    };
    let pasted = move |ev: leptos::ev::Event| {
        let text = event_target_value(&ev);
        suggest(t, style_of_text(&text));
        suggest_prompt(t, prompt_of_text(&text));
        set_text(t, text, "pasted text".into());
    };
    view! {
        <div class="data" data-testid="train-data">
            <h3 id="train-text-title">"1. Text to learn from"</h3>
            // Each option says whether it is chosen: a select's own value, set while the panel is
            // built, comes before its options and is lost (the Build view's menus had that bug).
            <select data-testid="corpus" aria-labelledby="train-text-title" on:change=change disabled=move || t.busy()>
                {CORPORA
                    .iter()
                    .filter(|c| c.train)
                    .map(|c| view! { <option value=c.key prop:selected=move || d.source.get() == c.key>{c.title}</option> })
                    .collect_view()}
                <option value="paste" prop:selected=move || d.source.get() == "paste">"Paste your own text"</option>
                <option value="file" prop:selected=move || d.source.get() == "file">"Upload a .txt file"</option>
            </select>
            <Show when=move || d.source.get() == "paste">
                <textarea data-testid="paste" rows="5" aria-label="Your text" placeholder="Paste a story or a few pages of a book…" on:change=pasted></textarea>
            </Show>
            <Show when=move || d.source.get() == "file">
                <label class="upload">
                    <span>"A .txt file: "</span>
                    <input type="file" accept=".txt,text/plain" data-testid="text-upload" on:change=on_file />
                </label>
            </Show>
            <p class="hint" data-testid="data-source">{move || d.label.get()}</p>
            <p class="counts" data-testid="counts"
                data-train-chars=move || t.counts.get().map(|c| c.train_chars.to_string()).unwrap_or_default()
                data-train-tokens=move || t.counts.get().map(|c| c.train_tokens.to_string()).unwrap_or_default()
                data-held-windows=move || t.counts.get().map(|c| c.held_windows.to_string()).unwrap_or_default()>
                {move || match t.counts.get() {
                    Some(c) => format!(
                        "{} characters → {} tokens for training, {} held out (the last tenth of the text, never trained on, to see if the model learns the style rather than the words).",
                        d.text.with(|s| s.chars().count()), c.train_tokens, c.held_tokens
                    ),
                    None => "Counting tokens…".to_string(),
                }}
            </p>
            <details class="preview">
                <summary>"Show the text"</summary>
                <pre class="text-preview" tabindex="0" role="region" aria-label="The training text">{move || d.text.with(|s| s.chars().take(3000).collect::<String>())}</pre>
            </details>
        </div>
    }
}
