//! The model shelf for `tinylm pull`: the site's `public/shelf.json` built in (or another list
//! in its shape), read by the engine's reader (`tinylm_engine::shelf`, the page's too), and where
//! each file comes from on the command line: the web, the bytes built in, or beside the list.

use std::path::{Path, PathBuf};

pub use tinylm_engine::shelf::{Model, Shelf, ShelfFile};

use crate::pull_error::PullError;

/// The site's own list, built in so `tinylm pull` works without a copy of the site.
pub const BUILTIN: &str = include_str!("../../public/shelf.json");

/// The site files the built-in list names ("site": …), built in for the same reason; they are
/// checked against the list's SHA-256 like any download.
const BUILTIN_SITE_FILES: &[(&str, &[u8])] = &[
    ("models/stories260K.bin", include_bytes!("../../public/models/stories260K.bin")),
    ("models/tok512.bin", include_bytes!("../../public/models/tok512.bin")),
    ("models/tokenizer.bin", include_bytes!("../../public/models/tokenizer.bin")),
];

/// Largest file a list may name here (1 TB): a size beyond it is a typo, not a model.
const MAX_FILE_BYTES: u64 = 1 << 40;

/// Where one file of the shelf comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Fetched over HTTP(S).
    Web(String),
    /// Bytes built into `tinylm` (the built-in list's site files).
    Builtin(&'static [u8]),
    /// A file beside the list (`--shelf FILE`'s site files).
    Local(PathBuf),
}

/// Where the list came from: decides where its site files are read.
#[derive(Debug, Clone)]
pub enum Origin {
    Builtin,
    File(PathBuf),
}

impl Origin {
    fn label(&self) -> String {
        match self {
            Origin::Builtin => "(built in)".into(),
            Origin::File(p) => p.display().to_string(),
        }
    }
}

/// Reads and checks a list with the engine's reader (the page's too); `hub` (from `--hub`)
/// replaces the list's own base URL.
pub fn parse(text: &str, origin: &Origin, hub: Option<&str>) -> Result<Shelf, PullError> {
    Shelf::parse(text, hub, MAX_FILE_BYTES).map_err(|e| PullError::BadList { origin: origin.label(), what: e.to_string() })
}

pub fn model<'a>(shelf: &'a Shelf, name: &str) -> Result<&'a Model, PullError> {
    shelf.model(name).ok_or_else(|| PullError::UnknownModel { name: name.to_string(), known: shelf.names() })
}

/// Where to get `file`, given where the list came from.
pub fn source(shelf: &Shelf, file: &ShelfFile, origin: &Origin) -> Result<Source, PullError> {
    if let Some(address) = shelf.web_address(file) {
        return Ok(Source::Web(address));
    }
    let site = file.site.as_deref().unwrap_or_default();
    match origin {
        Origin::File(list) => Ok(Source::Local(list.parent().unwrap_or(Path::new(".")).join(site))),
        Origin::Builtin => {
            BUILTIN_SITE_FILES.iter().find(|(p, _)| *p == site).map(|(_, b)| Source::Builtin(b)).ok_or_else(|| {
                PullError::BadList { origin: origin.label(), what: format!("the site file {site:?} is not built into tinylm") }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_list_is_valid_and_its_site_files_match() {
        let shelf = parse(BUILTIN, &Origin::Builtin, None).unwrap();
        for f in shelf.models.iter().flat_map(|m| &m.files) {
            if let Source::Builtin(bytes) = source(&shelf, f, &Origin::Builtin).unwrap() {
                assert_eq!(bytes.len() as u64, f.size, "{}", f.file_name());
                assert_eq!(crate::download::sha256_hex(bytes), f.sha256.clone().unwrap(), "{}", f.file_name());
            }
        }
        let m = model(&shelf, "stories15M").unwrap();
        assert_eq!(
            source(&shelf, &m.files[0], &Origin::Builtin).unwrap(),
            Source::Web("https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin".into())
        );
        let list = Origin::File(PathBuf::from("/lesson/shelf.json"));
        assert_eq!(source(&shelf, &m.files[1], &list).unwrap(), Source::Local("/lesson/models/tokenizer.bin".into()));
    }

    #[test]
    fn refusals_name_the_list() {
        let msg = parse("[1,2]", &Origin::File("my.json".into()), None).unwrap_err().to_string();
        assert!(msg.starts_with("shelf list my.json: not a shelf list"), "{msg}");
        let shelf = parse(BUILTIN, &Origin::Builtin, None).unwrap();
        assert!(model(&shelf, "n").unwrap_err().to_string().contains("it has: stories260K, stories15M"));
        // A 1.1 GB file is refused by the page but fine for the command line.
        let big = r#"{"hub":"https://x","models":[{"name":"m","params":1,"licence":"MIT","files":[{"role":"model","path":"b.bin","size":2000000000,"sha256":null}]}]}"#;
        assert!(parse(big, &Origin::Builtin, None).is_ok());
    }
}
