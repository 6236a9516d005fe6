//! The shelf in the model card: each model with what it is, its size before any download, a
//! warning for a big one, and Use, Download (with progress, time left and Cancel), Resume or
//! Discard for a download an earlier visit left half done, or why it is not offered.

use leptos::prelude::*;

use super::{cancel, discard, download, use_model, Busy, ShelfState};
use crate::shelf::{progress_text, Card, Offer, Shelf, ShelfModel};
use crate::words::size;

#[component]
pub fn ShelfCard() -> impl IntoView {
    let s = expect_context::<ShelfState>();
    view! {
        <details class="shelf" data-testid="shelf" open=true>
            <summary>"More models (the shelf)"</summary>
            {move || s.list.with(|l| match l {
                None => view! { <p class="hint">"Reading the shelf…"</p> }.into_any(),
                Some(Err(e)) => view! { <p class="note bad" data-testid="shelf-error">{e.clone()}</p> }.into_any(),
                Some(Ok(shelf)) => view! {
                    <p class="hint">{privacy(shelf)}</p>
                    <ul class="shelf-list">
                        {shelf.models.iter().map(|m| item(s, m.clone())).collect_view()}
                    </ul>
                }.into_any(),
            })}
            <p data-testid="shelf-note" role="status" class=move || if s.note.get().is_some_and(|n| n.0) { "note bad" } else { "note" }>
                {move || s.note.get().map(|n| n.1)}
            </p>
        </details>
    }
}

/// What is fetched, from where, and what is not sent.
fn privacy(shelf: &Shelf) -> String {
    let host = web_sys::Url::new(&shelf.hub).map(|u| u.host()).unwrap_or_else(|_| shelf.hub.clone());
    format!(
        "A download fetches the model's file from {host} (and the file host it sends you to) only when you press \
         Download; nothing you type is sent. Each file's SHA-256 is checked before it is kept on this device, \
         where it works offline."
    )
}

fn item(s: ShelfState, m: ShelfModel) -> impl IntoView {
    let name = m.name.clone();
    let on_device = {
        let name = name.clone();
        move || s.stored.with(|st| st.iter().any(|(n, _)| *n == name))
    };
    let offer = {
        let m = m.clone();
        let on_device = on_device.clone();
        Memo::new(move |_| m.offer(on_device()))
    };
    let busy_here = {
        let name = name.clone();
        move || s.busy.with(|b| b.as_ref().filter(|b| b.model == name).cloned())
    };
    let offered = {
        let name = name.clone();
        move || s.offered.with(|o| o.as_deref() == Some(name.as_str()))
    };
    let unfinished = {
        let name = name.clone();
        move || {
            let idle = s.busy.with(Option::is_none);
            s.unfinished.with(|u| u.iter().find(|u| u.model == name && idle).map(|u| (u.have, u.total)))
        }
    };
    let title = if m.title.is_empty() { m.name.clone() } else { m.title.clone() };
    let bytes = size(m.download_bytes());
    let (use_name, get_name, resume_name, drop_name) = (name.clone(), name.clone(), name.clone(), name.clone());
    let half = unfinished.clone();
    view! {
        <li data-testid="shelf-item" data-name=name.clone() data-offer=move || offer_key(offer.get()) class:offered=offered>
            <div class="shelf-head">
                <span class="name">{title}</span>
                <span class="badge" data-testid="shelf-where">{move || where_word(offer.get())}</span>
            </div>
            <p class="hint">{m.facts()}</p>
            <p class="about">{m.about.clone()}</p>
            // A model not offered yet gets a plain note, not the big-download warning in red: to a
            // teacher that looked like an error (the list merely lacks its checksum).
            {(!matches!(offer.get_untracked(), Offer::WithTheSite | Offer::Unverified)).then(|| m.big_warning()).flatten()
                .map(|w| view! { <p class="warn" data-testid="shelf-big">{w}</p> })}
            <Show when=move || offer.get() == Offer::Unverified>
                <p class="later" data-testid="shelf-later">"Not offered yet: its download can't be checked."</p>
            </Show>
            <div class="buttons">
                <Show when=move || matches!(offer.get(), Offer::WithTheSite | Offer::OnDevice)>
                    <button type="button" class="secondary" data-testid="shelf-use"
                        disabled=move || s.ctx.running() || s.ctx.loading()
                        on:click={ let n = use_name.clone(); move |_| use_model(s, n.clone()) }>"Use"</button>
                </Show>
                <Show when=move || offer.get() == Offer::Download && unfinished().is_none()>
                    <button type="button" data-testid="shelf-download" disabled=move || s.busy.with(Option::is_some)
                        on:click={ let n = get_name.clone(); move |_| download(s, &n) }>{format!("Download ({bytes})")}</button>
                </Show>
            </div>
            {move || (offer.get() == Offer::Download).then(&half).flatten().map(|(have, total)| {
                let (r, d) = (resume_name.clone(), drop_name.clone());
                view! {
                    <div class="buttons" data-testid="shelf-half">
                        <p class="hint" data-testid="shelf-half-text">{format!("Half downloaded: {} of {}", size(have), size(total))}</p>
                        <button type="button" data-testid="shelf-resume-button" disabled=move || s.busy.with(Option::is_some)
                            on:click=move |_| download(s, &r)>"Resume"</button>
                        <button type="button" class="secondary" data-testid="shelf-discard"
                            on:click=move |_| discard(s, d.clone())>"Discard"</button>
                    </div>
                }
            })}
            {move || busy_here().map(|b| view! { <Downloading s b /> })}
        </li>
    }
}

#[component]
fn Downloading(s: ShelfState, b: Busy) -> impl IntoView {
    let text = progress_text(b.done, b.total, b.from, js_sys::Date::now() - b.since);
    view! {
        <div class="downloading">
            <progress data-testid="shelf-progress" max=b.total.to_string() value=b.done.to_string()
                aria-label=format!("Downloading {}", b.model)></progress>
            <p class="hint" data-testid="shelf-progress-text">{text}</p>
            {b.note.map(|n| view! { <p class="hint" data-testid="shelf-resume">{n}</p> })}
            <button type="button" class="secondary" data-testid="shelf-cancel" on:click=move |_| cancel(s)>"Cancel"</button>
        </div>
    }
}

fn offer_key(o: Offer) -> &'static str {
    match o {
        Offer::WithTheSite => "site",
        Offer::OnDevice => "device",
        Offer::Download => "download",
        Offer::Unverified => "unverified",
    }
}

fn where_word(o: Offer) -> &'static str {
    match o {
        Offer::WithTheSite => "comes with the site",
        Offer::OnDevice => "on this device",
        Offer::Download | Offer::Unverified => "",
    }
}
