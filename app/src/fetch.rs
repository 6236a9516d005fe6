//! Downloads a file from this site as bytes, with errors a reader can act on.

use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let window = web_sys::window().ok_or("this page has no window object")?;
    let unreachable = |_| format!("Could not download {url}: the server did not answer (network error).");
    let resp = JsFuture::from(window.fetch_with_str(url)).await.map_err(unreachable)?;
    let resp: Response = resp.dyn_into().map_err(|_| format!("Could not download {url}: no response."))?;
    if !resp.ok() {
        return Err(format!(
            "Could not download {url}: the server answered {} {}.",
            resp.status(),
            resp.status_text()
        ));
    }
    let body = resp.array_buffer().map_err(|_| format!("Could not read {url}."))?;
    let buf = JsFuture::from(body)
        .await
        .map_err(|_| format!("Could not download {url}: the transfer broke off."))?;
    Ok(Uint8Array::new(&buf).to_vec())
}
