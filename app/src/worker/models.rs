//! The model menu's work: loading a model (the bundled one, one from this site, or files the
//! reader picked, whose bytes come in the message) and switching to a model loaded before or
//! to another backend.

use super::bridge::scope;
use super::fetch::{download, progress};
use super::session::Session;
use super::store::{file_name, Files};
use crate::protocol::{Choice, NamedBytes, Source, MAX_FILE_BYTES};
use crate::words;

/// The files shipped with the site, next to the page.
pub const BUNDLED_MODEL: &str = "models/stories260K.bin";
pub const BUNDLED_TOKENIZER: &str = "models/tok512.bin";

/// Reads and checks a new model, then makes it the active one.
pub async fn load(s: &mut Session, source: Source, files: Vec<NamedBytes>, choice: Choice) {
    let result = async {
        let files = gather(s, &source, files).await?;
        progress(&format!("Checking {}", files.model_name), 0, None);
        let id = s.store.add(source, files)?;
        s.activate(id, choice).await
    };
    let result = result.await;
    s.report(result);
}

/// Switches to model `id` of the menu, or the active one to another backend.
pub async fn select(s: &mut Session, id: u32, choice: Choice) {
    let result = match s.store.get(id) {
        Ok(_) => s.activate(id, choice).await,
        Err(e) => Err(e),
    };
    s.report(result);
}

/// The bytes of a model and its tokenizer, wherever they come from.
async fn gather(s: &Session, source: &Source, files: Vec<NamedBytes>) -> Result<Files, String> {
    match source {
        Source::Bundled => Ok(Files {
            model_name: file_name(BUNDLED_MODEL),
            model: download(BUNDLED_MODEL, "Downloading stories260K").await?,
            tokenizer_name: file_name(BUNDLED_TOKENIZER),
            tokenizer: download(BUNDLED_TOKENIZER, "Downloading its tokenizer").await?,
        }),
        Source::Url { model, tokenizer } => {
            same_origin(model)?;
            let model_name = file_name(model);
            let bytes = download(model, &format!("Downloading {model_name}")).await?;
            let (tokenizer_name, tokenizer) = match tokenizer {
                Some(t) => {
                    same_origin(t)?;
                    (file_name(t), download(t, "Downloading the tokenizer").await?)
                }
                None => lent_tokenizer(s)?,
            };
            Ok(Files { model_name, model: bytes, tokenizer_name, tokenizer })
        }
        Source::Files { .. } | Source::Shelf { .. } => {
            let mut files = files.into_iter();
            let model = files.next().ok_or("No model file was given.")?;
            if model.bytes.len() as u64 > MAX_FILE_BYTES {
                return Err(words::too_large(&model.name, model.bytes.len() as u64));
            }
            let (tokenizer_name, tokenizer) = match files.next() {
                Some(t) => (t.name, t.bytes.to_vec()),
                None => lent_tokenizer(s)?,
            };
            Ok(Files { model_name: model.name, model: model.bytes.to_vec(), tokenizer_name, tokenizer })
        }
    }
}

/// Without a tokenizer, a model gets the bundled tok512 (right for 512-token models).
fn lent_tokenizer(s: &Session) -> Result<(String, Vec<u8>), String> {
    let (name, bytes) = s.store.bundled_tokenizer().ok_or("Give the model's tokenizer file too.")?;
    Ok((format!("{name} (bundled; no tokenizer was given)"), bytes))
}

/// Privacy: models come only from this site. The check is here as well as in the page, and
/// the CSP's connect-src 'self' enforces it a third time.
fn same_origin(url: &str) -> Result<(), String> {
    let here = scope().location();
    let full = web_sys::Url::new_with_base(url, &here.href()).map_err(|_| format!("“{url}” is not a valid address."))?;
    if full.origin() != here.origin() {
        return Err(format!(
            "“{url}” is on another site. For your privacy this page only loads models from its own \
             site ({}); download the files and pick them with “Choose files” instead.",
            here.origin()
        ));
    }
    Ok(())
}
