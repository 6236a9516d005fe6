//! Messages on the wire: a typed JS value made by serde-wasm-bindgen, posted with every
//! ArrayBuffer inside it (`binary`'s payloads) in the transfer list, so no byte is copied
//! between the threads (and none becomes base64 text).

use js_sys::{Array, ArrayBuffer, Object, Reflect};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};

/// Plain objects for maps and null for `None` (the benchmark page is plain JS and shows its
/// results as JSON); bytes as typed arrays.
const SERIALIZER: serde_wasm_bindgen::Serializer =
    serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true).serialize_missing_as_null(true);

/// The value to post and the buffers to transfer with it.
pub fn encode<T: Serialize>(msg: &T) -> Result<(JsValue, Array), String> {
    let value = msg.serialize(&SERIALIZER).map_err(|e| format!("a message could not be sent: {e}"))?;
    let transfer = Array::new();
    collect_buffers(&value, &transfer);
    Ok((value, transfer))
}

pub fn decode<T: DeserializeOwned>(value: JsValue) -> Result<T, String> {
    serde_wasm_bindgen::from_value(value).map_err(|e| format!("bad message: {e}"))
}

/// Every typed array's buffer inside `v`, once each.
fn collect_buffers(v: &JsValue, out: &Array) {
    if ArrayBuffer::is_view(v) {
        if let Ok(buf) = Reflect::get(v, &"buffer".into()) {
            if !out.includes(&buf, 0) {
                out.push(&buf);
            }
        }
    } else if let Some(a) = v.dyn_ref::<Array>() {
        a.for_each(&mut |item, _, _| collect_buffers(&item, out));
    } else if v.is_object() {
        Object::values(v.unchecked_ref()).for_each(&mut |item, _, _| collect_buffers(&item, out));
    }
}
