//! Small wrappers over page-side browser APIs.

use js_sys::{Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};

pub fn window() -> web_sys::Window {
    web_sys::window().expect("the page has a window")
}

/// The fragment without `#`.
pub fn hash() -> String {
    window().location().hash().unwrap_or_default().trim_start_matches('#').to_string()
}

/// Sets the fragment without adding a history entry or reloading.
pub fn replace_hash(hash: &str) {
    let w = window();
    let Ok(href) = w.location().href() else { return };
    let base = href.split('#').next().unwrap_or(&href);
    if let Ok(history) = w.history() {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&format!("{base}#{hash}")));
    }
}

pub fn current_url() -> String {
    window().location().href().unwrap_or_default()
}

/// Best effort: the clipboard may be refused (no permission); the link is shown anyway.
pub fn copy_text(text: &str) {
    let nav = window().navigator();
    let Ok(clipboard) = Reflect::get(&nav, &"clipboard".into()) else { return };
    let write = Reflect::get(&clipboard, &"writeText".into()).ok().and_then(|f| f.dyn_into::<Function>().ok());
    if let Some(write) = write {
        if let Ok(p) = write.call1(&clipboard, &text.into()) {
            // A refusal is expected in some browsers; swallow it so it is not an uncaught error.
            let p = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(p));
            wasm_bindgen_futures::spawn_local(async move {
                let _ = p.await;
            });
        }
    }
}

/// True when the address is on this page's origin (models load only from here).
pub fn same_origin(url: &str) -> bool {
    let w = window();
    let base = w.document().and_then(|d| d.base_uri().ok().flatten()).unwrap_or_default();
    match web_sys::Url::new_with_base(url, &base) {
        Ok(u) => w.location().origin().map(|o| o == u.origin()).unwrap_or(false),
        Err(_) => false,
    }
}

/// Offers `bytes` as a download named `name` (a Blob behind a temporary object URL).
pub fn save_file(name: &str, bytes: &[u8], mime: &str) -> Result<(), String> {
    let blob = gloo::file::Blob::new_with_options(bytes, Some(mime));
    let url = gloo::file::ObjectUrl::from(blob);
    let doc = window().document().ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = doc.create_element("a").map_err(|e| format!("{e:?}"))?.unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    Ok(())
}
