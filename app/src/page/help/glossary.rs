//! The glossary: one plain definition per word, shown where the word appears (`Term`: the word
//! as a button that opens its definition just after it, announced to screen readers) and as a
//! list (`Glossary`).

use leptos::prelude::*;

/// (key, definition). The key is the word as a student meets it.
pub const WORDS: &[(&str, &str)] = &[
    ("token", "A piece of text the model reads or writes at a time: a word, part of a word, a letter or a space with a word."),
    ("probability", "How likely something is, from 0% (never) to 100% (certain). The model gives every possible next token one."),
    ("logit", "The model's raw score for a possible next token, before the scores are turned into probabilities. Higher means more likely."),
    ("temperature", "How adventurous the choice of the next token is: 0 always takes the likeliest, 1 follows the model's own odds, higher is wilder."),
    ("top-p", "Only the likeliest tokens that together make up this share of the probability can be chosen; the rare ones are cut."),
    ("seed", "The number that sets the dice: the same seed with the same settings always gives the same story."),
    ("attention", "How a token looks back at earlier tokens to decide what comes next. Each token shares out 100% of its attention."),
    ("head", "One attention pattern inside a layer. Each layer has several heads, and each can look for something different."),
    ("layer", "One step of the model's thinking. The text passes through the layers one after another; each adds to what the last one found."),
    ("residual stream", "The running list of numbers for each token that every layer reads from and adds to, from the first layer to the last."),
    ("logit lens", "A peek inside: the model's final step applied after every layer, to see what it would predict if it stopped there."),
    ("rollout", "An estimate of how much each word of the input flows into each position, multiplying the attention of all layers together."),
    ("LoRA", "Low-Rank Adaptation: a way to teach a model something new by training a small set of extra numbers while the model itself stays as it is."),
    ("adapter", "The small set of extra numbers LoRA trains. It can be switched on and off, shared, and only fits the model it was trained on."),
    ("loss", "How surprised the model is by the real next token, on average. Lower means it predicts the text better."),
    ("held-out", "A part of the text kept aside and never trained on, used to check whether the model learned the style rather than the exact words."),
    ("overfitting", "When a model memorises its training text instead of learning the style: the training loss keeps falling but the held-out loss rises."),
];

/// The definition of `key` (as in `WORDS`).
pub fn define(key: &str) -> &'static str {
    WORDS.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map_or("", |(_, d)| d)
}

/// A glossary word in running text: `text` (the word as written there, `key` by default) as a
/// button that shows the definition of `key` right after it.
#[component]
pub fn Term(key: &'static str, #[prop(optional)] text: Option<&'static str>) -> impl IntoView {
    let open = RwSignal::new(false);
    view! {
        <button type="button" class="term" data-term=key aria-expanded=move || open.get().to_string()
            on:click=move |_| open.update(|o| *o = !*o)>{text.unwrap_or(key)}</button>
        <Show when=move || open.get()>
            <span class="definition" role="note" data-testid="definition">{define(key)}</span>
        </Show>
    }
}

/// Every word and its definition.
#[component]
pub fn Glossary() -> impl IntoView {
    view! {
        <details class="glossary" data-testid="glossary">
            <summary>"Glossary: the words this page uses"</summary>
            <dl>
                {WORDS.iter().map(|(k, d)| view! { <div><dt>{*k}</dt><dd>{*d}</dd></div> }).collect_view()}
            </dl>
        </details>
    }
}
