//! The guided tour: a few steps through Generate → Inspect → Train, shown on a first visit (and
//! again from the Help button). It sits in the page's flow above the tabs, so it never covers
//! what it talks about; each step switches to its tab and outlines the part it describes.
//! Skipping or finishing it is remembered on this device (localStorage). On a phone's narrow
//! screen a first visit shows only a one-line offer ("Show the tour"), so the story box and the
//! Generate button stay in the first screen; Help always opens the steps themselves. Leaving the
//! step's tab by the tabs folds the tour to one line too ("Tour paused.", "Resume"), so a
//! step's box is never pinned over another view.

use crate::page::browser;
use leptos::prelude::*;

const SEEN_KEY: &str = "tinylm-tour-seen";
/// Below this width (CSS pixels, the stylesheet's 40rem) a first visit's tour starts folded.
const NARROW_PX: f64 = 640.0;

struct Step {
    tab: &'static str,
    /// A selector for what the step is about (outlined while it is shown).
    spot: &'static str,
    title: &'static str,
    text: &'static str,
}

const STEPS: &[Step] = &[
    Step {
        tab: "generate",
        spot: "#prompt",
        title: "A language model in your browser",
        text: "This lab runs a tiny story-writing model on this device. Type the start of a story in the Prompt box, or leave it empty and let the model begin.",
    },
    Step {
        tab: "generate",
        spot: "#generate",
        title: "Write a story",
        text: "Temperature, top-p and seed decide how each next piece of text is picked. Press Generate and watch the story appear, one token at a time.",
    },
    Step {
        tab: "inspect",
        spot: "[data-testid=tokens]",
        title: "Look inside: tokens",
        text: "Inspect shows what the model worked out. Each box is one token. Point at a token (or move with the arrow keys) to see which earlier tokens it pays attention to.",
    },
    Step {
        tab: "inspect",
        spot: ".overview",
        title: "Attention heads",
        text: "Each small square is one attention head in one layer. Click one to see it large: every row is a token, and the colours show how much it looks back at each earlier token.",
    },
    Step {
        tab: "inspect",
        spot: ".next",
        title: "What comes next?",
        text: "The next-token table shows the model's odds for the next token and how temperature and top-p change them. The logit lens further down shows what each layer would guess.",
    },
    Step {
        tab: "train",
        spot: "[data-testid=train-start]",
        title: "Teach it a style",
        text: "Train teaches the model a new style with a small adapter (LoRA). Pick a text, press Start and watch the loss: lower means the model predicts the text better.",
    },
    Step {
        tab: "generate",
        spot: "#help",
        title: "That's it!",
        text: "Words with a dotted underline explain themselves when you click them, and every view has a “What am I looking at?”. Press Help to take this tour again.",
    },
];

/// How the tour shows its step.
#[derive(Clone, Copy, PartialEq)]
pub enum Fold {
    /// The step itself, in the box pinned at the screen's top.
    Open,
    /// One line that offers the tour (a first visit on a narrow screen).
    Offer,
    /// One line that offers to go on (the person left the step's tab by the tabs).
    Paused,
}

/// The tour's state, provided as context so the Help button can start it again.
#[derive(Clone, Copy)]
pub struct TourState {
    /// The step shown, or None when the tour is closed.
    pub step: RwSignal<Option<usize>>,
    /// Whether the step itself is shown, or only a line that offers it.
    pub fold: RwSignal<Fold>,
}

fn storage() -> Option<web_sys::Storage> {
    browser::window().local_storage().ok().flatten()
}

impl TourState {
    /// Open on a first visit (nothing remembered), closed otherwise; folded to one line on a
    /// narrow screen.
    pub fn load() -> TourState {
        let seen = storage().and_then(|s| s.get_item(SEEN_KEY).ok().flatten()).is_some();
        let narrow = browser::window().inner_width().ok().and_then(|w| w.as_f64()).is_some_and(|w| w < NARROW_PX);
        let fold = if narrow { Fold::Offer } else { Fold::Open };
        TourState { step: RwSignal::new((!seen).then_some(0)), fold: RwSignal::new(fold) }
    }
    pub fn start(&self) {
        self.fold.set(Fold::Open);
        self.step.set(Some(0));
    }
    /// The step shown in full, if any (untracked).
    fn shown(&self) -> Option<usize> {
        self.step.get_untracked().filter(|_| self.fold.get_untracked() == Fold::Open)
    }
    /// Closes the tour and remembers that it was seen.
    pub fn close(&self) {
        if let Some(s) = storage() {
            let _ = s.set_item(SEEN_KEY, "1");
        }
        self.step.set(None);
    }
}

/// Outlines step `at`'s element (and no other) once its tab has drawn it: tries again for a
/// few seconds (Inspect draws its views when the inspection arrives), while the step is shown.
fn outline(tour: TourState, at: Option<usize>, tries: u32) {
    let run = move || {
        if tour.shown() != at {
            return;
        }
        let Some(doc) = browser::window().document() else { return };
        while let Some(old) = doc.query_selector(".tour-spot").ok().flatten() {
            let _ = old.class_list().remove_1("tour-spot");
        }
        match at.and_then(|i| doc.query_selector(STEPS[i].spot).ok().flatten()) {
            Some(el) => {
                let _ = el.class_list().add_1("tour-spot");
                bring_into_view(&doc, &el);
            }
            None if at.is_some() && tries > 0 => outline(tour, at, tries - 1),
            None => {}
        }
    };
    set_timeout(run, std::time::Duration::from_millis(100));
}

/// Scrolls the page so the outlined element shows below the tour box where it does not. The box
/// stays pinned to the screen's top as the page scrolls (style.css), so a subject far down the
/// page (the next-token table, Train's Start) comes up to just under it: the step's text and its
/// subject are on the screen together, on a phone, a laptop and a projector alike.
fn bring_into_view(doc: &web_sys::Document, el: &web_sys::Element) {
    let win = browser::window();
    let Some(height) = win.inner_height().ok().and_then(|h| h.as_f64()) else { return };
    let (spot, margin) = (el.get_bounding_client_rect(), 12.0);
    let Some(tour_el) = doc.query_selector("[data-testid=tour]").ok().flatten() else { return };
    let tour = tour_el.get_bounding_client_rect();
    // Where the spot's top may go at the highest: just under the box once it is pinned.
    let under_pinned = pinned_top(&tour_el) + tour.height() + margin;
    // Before the box in the page (the last step's Help button), whatever the pinned box covers.
    let before = tour_el.compare_document_position(el) & web_sys::Node::DOCUMENT_POSITION_PRECEDING != 0;
    let by = if before {
        // Up to show it (the box goes back to its place under the header).
        (spot.top() - margin).min(0.0)
    } else if spot.top() < tour.bottom() + margin {
        // Hidden under the box (scrolled past): down to just under it.
        spot.top() - under_pinned
    } else if spot.bottom() + margin > height {
        // Below the screen: up by what shows its bottom, at most to just under the box.
        (spot.bottom() + margin - height).min(spot.top() - under_pinned)
    } else {
        0.0
    };
    if by.abs() >= 1.0 {
        win.scroll_by_with_x_and_y(0.0, by);
    }
}

/// The open box's distance from the screen's top while the page scrolls under it: its computed
/// `top` (style.css says how far).
fn pinned_top(el: &web_sys::Element) -> f64 {
    let style = browser::window().get_computed_style(el).ok().flatten();
    let top = style.and_then(|s| s.get_property_value("top").ok());
    top.and_then(|t| t.trim_end_matches("px").parse().ok()).unwrap_or(0.0)
}

/// Shows the folded tour's step, and moves the focus to its Next button (the button
/// pressed is gone).
fn unfold(tour: TourState) {
    tour.fold.set(Fold::Open);
    set_timeout(
        || {
            let next = browser::window().document().and_then(|d| d.query_selector("[data-testid=tour-next]").ok().flatten());
            if let Some(el) = next {
                let _ = wasm_bindgen::JsCast::unchecked_into::<web_sys::HtmlElement>(el).focus();
            }
        },
        std::time::Duration::ZERO,
    );
}

#[component]
pub fn Tour(tour: TourState, tab: RwSignal<&'static str>) -> impl IntoView {
    Effect::new(move |_| {
        let at = tour.step.get().filter(|_| tour.fold.get() == Fold::Open);
        if let Some(i) = at {
            tab.set(STEPS[i].tab);
        }
        outline(tour, at, 50);
    });
    // The person switched tabs away from the step (Next and Back switch to it just above): fold
    // to one line rather than stay pinned over the other view. Only the tab is tracked, so a new
    // step is never seen with the old step's tab.
    Effect::new(move |_| {
        let shown = tab.get();
        if tour.shown().is_some_and(|i| STEPS[i].tab != shown) {
            tour.fold.set(Fold::Paused);
        }
    });
    let last = STEPS.len() - 1;
    let at = move || tour.step.get().unwrap_or(0);
    let paused = move || tour.fold.get() == Fold::Paused;
    view! {
        // Folded: one line that offers the tour (a first visit on a phone) or to go on with it.
        <Show when=move || tour.step.with(Option::is_some) && tour.fold.get() != Fold::Open>
            <aside class="tour tour-folded" data-testid="tour" data-folded="true" aria-label="Tour">
                <p>{move || if paused() { "Tour paused." } else { "New here?" }}</p>
                <div class="actions">
                    // "Resume" alone keeps the paused line to one line on a phone.
                    <button type="button" data-testid="tour-open" on:click=move |_| unfold(tour)
                        aria-label=move || if paused() { "Resume the tour" } else { "Show the tour" }>
                        {move || if paused() { "Resume" } else { "Show the tour" }}
                    </button>
                    <button type="button" class="secondary" data-testid="tour-skip" on:click=move |_| tour.close()>"Skip"</button>
                </div>
            </aside>
        </Show>
        <Show when=move || tour.step.with(Option::is_some) && tour.fold.get() == Fold::Open>
            <aside class="tour" data-testid="tour" aria-labelledby="tour-title" data-step=move || at().to_string()
                data-tab=move || STEPS[at()].tab>
                <p class="tour-count">{move || format!("Tour · step {} of {}", at() + 1, STEPS.len())}</p>
                <h2 id="tour-title">{move || STEPS[at()].title}</h2>
                <p>{move || STEPS[at()].text}</p>
                <div class="actions">
                    <button type="button" class="secondary" data-testid="tour-back" disabled=move || at() == 0
                        on:click=move |_| tour.step.set(Some(at().saturating_sub(1)))>"Back"</button>
                    <button type="button" data-testid="tour-next"
                        on:click=move |_| if at() == last { tour.close() } else { tour.step.set(Some(at() + 1)) }>
                        {move || if at() == last { "Finish" } else { "Next" }}
                    </button>
                    <button type="button" class="secondary" data-testid="tour-skip" on:click=move |_| tour.close()>"Skip the tour"</button>
                </div>
            </aside>
        </Show>
    }
}
