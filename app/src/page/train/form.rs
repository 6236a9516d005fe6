//! Training settings, each with a line of plain-language help, and presets.

use leptos::prelude::*;

use crate::protocol::train::TrainSettings;
use crate::train::{check, one_pass_steps, PRESETS};

#[derive(Clone, Copy)]
pub struct FormSignals {
    pub name: RwSignal<String>,
    /// The name the view last suggested for the text: while the field still holds it, the
    /// name follows the text (a name the reader typed stays).
    pub suggested: RwSignal<String>,
    pub targets: RwSignal<String>,
    pub rank: RwSignal<String>,
    pub alpha: RwSignal<String>,
    pub lr: RwSignal<String>,
    pub steps: RwSignal<String>,
    pub batch: RwSignal<String>,
    pub seq: RwSignal<String>,
    pub seed: RwSignal<String>,
    pub sample_every: RwSignal<String>,
    pub snapshot_every: RwSignal<String>,
    pub prompt: RwSignal<String>,
    /// The sample prompt the view last suggested for the text: while the field still holds it,
    /// a new text brings its own; a prompt the reader typed stays.
    pub prompt_suggested: RwSignal<String>,
    /// The steps a one-pass preset last wrote, while the field still holds them: a new text or
    /// window size recounts them.
    pub pass_steps: RwSignal<Option<String>>,
}

impl FormSignals {
    pub fn new(name: &str) -> FormSignals {
        let s = TrainSettings::default();
        let f = FormSignals {
            name: RwSignal::new(name.into()),
            suggested: RwSignal::new(name.into()),
            targets: RwSignal::new(String::new()),
            rank: RwSignal::new(String::new()),
            alpha: RwSignal::new(String::new()),
            lr: RwSignal::new(String::new()),
            steps: RwSignal::new(String::new()),
            batch: RwSignal::new(String::new()),
            seq: RwSignal::new(String::new()),
            seed: RwSignal::new(String::new()),
            sample_every: RwSignal::new(String::new()),
            snapshot_every: RwSignal::new(String::new()),
            prompt: RwSignal::new(String::new()),
            prompt_suggested: RwSignal::new(s.prompt.clone()),
            pass_steps: RwSignal::new(None),
        };
        f.fill(&s);
        f
    }

    pub fn fill(&self, s: &TrainSettings) {
        self.targets.set(s.targets.clone());
        self.rank.set(s.rank.to_string());
        self.alpha.set(s.alpha.to_string());
        self.lr.set(s.lr.to_string());
        self.steps.set(s.steps.to_string());
        self.batch.set(s.batch.to_string());
        self.seq.set(s.seq.to_string());
        self.seed.set(s.seed.to_string());
        self.sample_every.set(s.sample_every.to_string());
        self.snapshot_every.set(s.snapshot_every.to_string());
        self.prompt.set(s.prompt.clone());
    }

    /// `settings`, tracking every field (for an effect).
    pub fn settings_tracked(&self) -> Result<TrainSettings, String> {
        for sig in [
            self.targets,
            self.rank,
            self.alpha,
            self.lr,
            self.steps,
            self.batch,
            self.seq,
            self.seed,
            self.sample_every,
            self.snapshot_every,
            self.prompt,
        ] {
            sig.track();
        }
        self.settings()
    }

    /// The settings, or which one is wrong.
    pub fn settings(&self) -> Result<TrainSettings, String> {
        fn num<T: std::str::FromStr>(sig: RwSignal<String>, what: &str) -> Result<T, String> {
            sig.get_untracked().trim().parse().map_err(|_| format!("{what} must be a number."))
        }
        let s = TrainSettings {
            targets: self.targets.get_untracked(),
            rank: num(self.rank, "Rank")?,
            alpha: num(self.alpha, "Alpha")?,
            lr: num(self.lr, "Learning rate")?,
            steps: num(self.steps, "Steps")?,
            batch: num(self.batch, "Batch")?,
            seq: num(self.seq, "Sequence length")?,
            seed: num(self.seed, "Seed")?,
            sample_every: num(self.sample_every, "Sample every")?,
            snapshot_every: num(self.snapshot_every, "Checkpoint every")?,
            prompt: self.prompt.get_untracked(),
        };
        check(&s)?;
        Ok(s)
    }
}

#[component]
fn Setting(id: &'static str, label: &'static str, value: RwSignal<String>, hint: &'static str) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    view! {
        <label class="field" for=id>
            <span class="name">{label}</span>
            <input id=id data-testid=id type="text" aria-describedby=hint_id.clone() bind:value=value />
            <small id=hint_id class="hint">{hint}</small>
        </label>
    }
}

impl FormSignals {
    /// Fills in a preset; a one-pass preset's steps follow the text's token count (`train_tokens`,
    /// None while counting: its floor until the count comes).
    fn apply(&self, make: fn() -> TrainSettings, one_pass: bool, train_tokens: Option<usize>) {
        let mut s = TrainSettings { prompt: self.prompt.get_untracked(), ..make() };
        if one_pass {
            s.steps = one_pass_steps(train_tokens.unwrap_or(0), s.batch, s.seq);
        }
        self.fill(&s);
        self.pass_steps.set(one_pass.then(|| s.steps.to_string()));
    }

    /// After a new count or window size, a one-pass preset's steps, if the field still holds them.
    fn recount(&self, train_tokens: usize) {
        let (Some(written), Ok(s)) = (self.pass_steps.get_untracked(), self.settings()) else { return };
        if self.steps.get_untracked() != written {
            self.pass_steps.set(None);
            return;
        }
        let steps = one_pass_steps(train_tokens, s.batch, s.seq).to_string();
        self.steps.set(steps.clone());
        self.pass_steps.set(Some(steps));
    }
}

/// The settings, `busy` while a run goes (they cannot change then). `train_tokens`: the text's
/// training tokens once counted.
#[component]
pub fn SettingsPanel(form: FormSignals, busy: Signal<bool>, train_tokens: Signal<Option<usize>>) -> impl IntoView {
    let f = form;
    Effect::new(move |_| {
        f.batch.track();
        f.seq.track();
        // A run's own count (the same text) changes nothing; its settings are fixed meanwhile.
        if let (Some(n), false) = (train_tokens.get(), busy.get_untracked()) {
            f.recount(n);
        }
    });
    view! {
        <fieldset class="settings" data-testid="train-settings" disabled=move || busy.get()>
            <h3>"2. Settings"</h3>
            <div class="presets">
                {PRESETS.iter().map(|p| {
                    let (make, one_pass) = (p.settings, p.one_pass);
                    view! {
                        <button type="button" class="secondary" data-testid=format!("preset-{}", p.key)
                            on:click=move |_| f.apply(make, one_pass, train_tokens.get_untracked())>{p.label}</button>
                    }
                }).collect_view()}
            </div>
            <div class="fields train-fields">
                <Setting id="train-name" label="Adapter name" value=f.name hint="What it is called in the library." />
                <Setting id="train-targets" label="Targets" value=f.targets
                    hint="Which weight matrices get an adapter: q_proj, k_proj, v_proj, o_proj (attention), gate_proj, up_proj, down_proj (feed-forward), or all." />
                <Setting id="train-rank" label="Rank" value=f.rank
                    hint="How much the adapter can learn: more is more expressive but slower and easier to overfit. 4–16 is typical." />
                <Setting id="train-alpha" label="Alpha" value=f.alpha
                    hint="How strongly the adapter's change is applied (scaled by alpha ÷ rank)." />
                <Setting id="train-lr" label="Learning rate" value=f.lr
                    hint="Size of each update. Too high and the loss jumps about or blows up; too low and nothing changes." />
                <Setting id="train-steps" label="Steps" value=f.steps
                    hint="How many updates to make. The Better preset makes one pass over the text: each window once (at least 100 steps, at most 500)." />
                <Setting id="train-batch" label="Batch" value=f.batch hint="Text windows per update: more gives steadier but slower steps." />
                <Setting id="train-seq" label="Sequence length" value=f.seq hint="Tokens per window the model reads at once." />
                <Setting id="train-seed" label="Seed" value=f.seed
                    hint="Fixes the adapter's random start, the order of the windows and the samples: the same seed gives the same run." />
                <Setting id="train-sample-every" label="Sample every" value=f.sample_every
                    hint="Steps between side-by-side samples (and held-out checks)." />
                <Setting id="train-checkpoint-every" label="Checkpoint every" value=f.snapshot_every
                    hint="Steps between saves to this device, so a closed tab loses little." />
                <Setting id="train-prompt" label="Sample prompt" value=f.prompt hint="The samples start with this." />
            </div>
        </fieldset>
    }
}
