//! The model menu's work: loading a model (the bundled one, one from this site, or files the
//! reader picked, whose bytes come in the message) and switching to a model loaded before or
//! to another backend.

use super::bridge::scope;
use super::fetch::{download, progress};
use super::session::Session;
use super::store::{file_name, needs_tokenizer, Files};
use crate::protocol::{Choice, NamedBytes, Source, MAX_FILE_BYTES};
use crate::words;

/// The files shipped with the site, next to the page.
pub const BUNDLED_MODEL: &str = "models/stories260K.bin";
pub const BUNDLED_TOKENIZER: &str = "models/tok512.bin";

/// Reads and checks a new model, then makes it the active one.
pub async fn load(s: &mut Session, source: Source, files: Vec<NamedBytes>, choice: Choice) {
    let result = async {
        let files = gather(s, &source, files).await?;
        progress(&format!("Checking {}", files.files[0].0), 0, None);
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
        Source::Bundled => Ok(Files::pair(
            file_name(BUNDLED_MODEL),
            download(BUNDLED_MODEL, "Downloading stories260K").await?,
            file_name(BUNDLED_TOKENIZER),
            download(BUNDLED_TOKENIZER, "Downloading its tokenizer").await?,
        )),
        Source::Url { model, tokenizer } => {
            same_origin(model)?;
            let model_name = file_name(model);
            let bytes = download(model, &format!("Downloading {model_name}")).await?;
            let mut files = vec![(model_name, bytes)];
            if let Some(t) = tokenizer {
                same_origin(t)?;
                files.push((file_name(t), download(t, "Downloading the tokenizer").await?));
            }
            with_lent_tokenizer(s, files)
        }
        Source::Files { .. } | Source::Shelf { .. } => {
            if files.is_empty() {
                return Err("No model file was given.".into());
            }
            let total: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
            if total > MAX_FILE_BYTES {
                return Err(words::too_large(&files[0].name, total));
            }
            with_lent_tokenizer(s, files.into_iter().map(|f| (f.name, f.bytes.to_vec())).collect())
        }
    }
}

/// A llama2.c model given alone gets the bundled tok512 (right for 512-token models); GGUF
/// files and Hugging Face folders carry their own tokenizer.
fn with_lent_tokenizer(s: &Session, mut files: Vec<(String, Vec<u8>)>) -> Result<Files, String> {
    if needs_tokenizer(&files) {
        let (name, bytes) = s.store.bundled_tokenizer().ok_or("Give the model's tokenizer file too.")?;
        files.push((format!("{name} (bundled; no tokenizer was given)"), bytes));
    }
    Ok(Files { files })
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
