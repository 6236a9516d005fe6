//! The model shelf: the site's `public/shelf.json` (or another list in its shape), read and
//! checked before anything is fetched, so a mistake in a teacher's edited list is reported in
//! words instead of turning into a strange download.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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

/// Largest file a list may name (1 TB): a size beyond it is a typo, not a model.
const MAX_FILE_BYTES: u64 = 1 << 40;

#[derive(Debug, Deserialize)]
pub struct Shelf {
    pub hub: String,
    pub models: Vec<Model>,
}

#[derive(Debug, Deserialize)]
pub struct Model {
    pub name: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub about: String,
    pub params: u64,
    /// Bytes of memory the model needs to run (f32 weights plus the key/value cache).
    #[serde(default)]
    pub memory: Option<u64>,
    pub licence: String,
    pub files: Vec<ShelfFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Model,
    Tokenizer,
}

#[derive(Debug, Deserialize)]
pub struct ShelfFile {
    pub role: Role,
    /// Joined to the hub's base URL.
    #[serde(default)]
    pub path: Option<String>,
    /// An absolute http(s) URL.
    #[serde(default)]
    pub url: Option<String>,
    /// A file of the site itself, relative to the list.
    #[serde(default)]
    pub site: Option<String>,
    pub size: u64,
    pub sha256: Option<String>,
}

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

impl Shelf {
    /// Reads and checks a list; `hub` (from `--hub`) replaces the list's own base URL.
    pub fn parse(text: &str, origin: &Origin, hub: Option<&str>) -> Result<Shelf, PullError> {
        let bad = |what: String| PullError::BadList { origin: origin.label(), what };
        let mut shelf: Shelf =
            serde_json::from_str(text).map_err(|e| bad(format!("not a shelf list in the site's format: {e}")))?;
        if let Some(h) = hub {
            shelf.hub = h.to_string();
        }
        if !is_web_url(&shelf.hub) {
            return Err(bad(format!("the hub {:?} is not an http:// or https:// address", shelf.hub)));
        }
        let mut names = HashSet::new();
        for m in &shelf.models {
            m.check().map_err(&bad)?;
            if !names.insert(m.name.as_str()) {
                return Err(bad(format!("the name {:?} is used by two models", m.name)));
            }
        }
        Ok(shelf)
    }

    pub fn model(&self, name: &str) -> Result<&Model, PullError> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| PullError::UnknownModel {
            name: name.to_string(),
            known: self.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }
}

impl Model {
    fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
            return Err(format!("the model name {:?} is empty or holds a slash or control character", self.name));
        }
        if self.files.iter().filter(|f| f.role == Role::Model).count() != 1 {
            return Err(format!("model {:?} must list exactly one file whose role is \"model\"", self.name));
        }
        let mut names = HashSet::new();
        for f in &self.files {
            f.check().map_err(|e| format!("model {:?}: {e}", self.name))?;
            if !names.insert(f.file_name()) {
                return Err(format!("model {:?} names two files {:?}", self.name, f.file_name()));
            }
        }
        Ok(())
    }

    pub fn download_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

impl ShelfFile {
    fn location(&self) -> &str {
        self.path.as_deref().or(self.url.as_deref()).or(self.site.as_deref()).unwrap_or("")
    }

    /// The name the file is saved under: the last segment of its path or URL.
    pub fn file_name(&self) -> &str {
        let loc = self.location();
        let loc = loc.split(['?', '#']).next().unwrap_or(loc);
        loc.rsplit('/').next().unwrap_or(loc)
    }

    fn check(&self) -> Result<(), String> {
        let given = [&self.path, &self.url, &self.site].iter().filter(|s| s.is_some()).count();
        if given != 1 {
            return Err("each file needs exactly one of \"path\" (on the hub), \"url\" or \"site\"".into());
        }
        if let Some(u) = &self.url {
            if !is_web_url(u) {
                return Err(format!("the url {u:?} is not an http:// or https:// address"));
            }
        }
        for rel in [&self.path, &self.site].into_iter().flatten() {
            if rel.starts_with('/') || rel.split('/').any(|seg| seg == "..") || rel.contains('\\') {
                return Err(format!("{rel:?} must be a relative path without \"..\""));
            }
        }
        let name = self.file_name();
        if name.is_empty() || name == "." || name.ends_with(".part") || name.chars().any(char::is_control) {
            return Err(format!("{:?} does not end in a usable file name", self.location()));
        }
        if self.size == 0 || self.size > MAX_FILE_BYTES {
            return Err(format!("{name}: size {} is not between 1 byte and 1 TB", self.size));
        }
        if let Some(h) = &self.sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(format!("{name}: sha256 {h:?} is not 64 lowercase hexadecimal digits"));
            }
        }
        Ok(())
    }

    /// Where to get the file, given the hub's base URL and where the list came from.
    pub fn source(&self, hub: &str, origin: &Origin) -> Result<Source, PullError> {
        if let Some(p) = &self.path {
            return Ok(Source::Web(format!("{}/{}", hub.trim_end_matches('/'), p)));
        }
        if let Some(u) = &self.url {
            return Ok(Source::Web(u.clone()));
        }
        let site = self.site.as_deref().unwrap_or_default();
        match origin {
            Origin::File(list) => Ok(Source::Local(list.parent().unwrap_or(Path::new(".")).join(site))),
            Origin::Builtin => {
                BUILTIN_SITE_FILES.iter().find(|(p, _)| *p == site).map(|(_, b)| Source::Builtin(b)).ok_or_else(|| {
                    PullError::BadList {
                        origin: origin.label(),
                        what: format!("the site file {site:?} is not built into tinylm"),
                    }
                })
            }
        }
    }
}

fn is_web_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.chars().any(|c| c.is_whitespace() || c.is_control()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_list_is_valid_and_its_site_files_match() {
        let shelf = Shelf::parse(BUILTIN, &Origin::Builtin, None).unwrap();
        assert_eq!(shelf.hub, "https://huggingface.co");
        let names: Vec<_> = shelf.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["stories260K", "stories15M", "stories42M", "stories110M"]);
        for f in shelf.models.iter().flat_map(|m| &m.files) {
            if let Source::Builtin(bytes) = f.source(&shelf.hub, &Origin::Builtin).unwrap() {
                assert_eq!(bytes.len() as u64, f.size, "{}", f.file_name());
                assert_eq!(crate::download::sha256_hex(bytes), f.sha256.clone().unwrap(), "{}", f.file_name());
            }
        }
        let m = shelf.model("stories15M").unwrap();
        assert_eq!(
            m.files[0].source(&shelf.hub, &Origin::Builtin).unwrap(),
            Source::Web("https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin".into())
        );
        assert_eq!(m.files[1].file_name(), "tokenizer.bin");
    }

    #[test]
    fn bad_lists_are_refused_in_words() {
        let file = r#"{"role":"model","path":"a/b.bin","size":3,"sha256":null}"#;
        let list = |hub: &str, files: &str| {
            format!(r#"{{"hub":"{hub}","models":[{{"name":"m","params":1,"licence":"MIT","files":[{files}]}}]}}"#)
        };
        let parse = |t: &str| Shelf::parse(t, &Origin::Builtin, None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(parse("[1,2]").contains("not a shelf list"));
        assert!(parse(&list("ftp://x", file)).contains("not an http"));
        assert!(parse(&list("https://x", r#"{"role":"model","path":"../b.bin","size":3,"sha256":null}"#)).contains("\"..\""));
        assert!(parse(&list("https://x", r#"{"role":"model","path":"b.bin","url":"https://y/b","size":3,"sha256":null}"#))
            .contains("exactly one of"));
        assert!(parse(&list("https://x", r#"{"role":"model","path":"b.bin","size":3,"sha256":"ABC"}"#)).contains("64 lowercase"));
        assert!(parse(&list("https://x", r#"{"role":"tokenizer","path":"b.bin","size":3,"sha256":null}"#))
            .contains("exactly one file"));
        assert!(parse(&list("https://x", r#"{"role":"model","path":"b/","size":3,"sha256":null}"#)).contains("usable file name"));
        assert!(parse(&list("https://x", r#"{"role":"model","path":"b.bin","size":0,"sha256":null}"#)).contains("size 0"));
        let ok = Shelf::parse(&list("https://x/", file), &Origin::Builtin, Some("http://127.0.0.1:9")).unwrap();
        assert_eq!(
            ok.models[0].files[0].source(&ok.hub, &Origin::Builtin).unwrap(),
            Source::Web("http://127.0.0.1:9/a/b.bin".into())
        );
        assert!(ok.model("n").unwrap_err().to_string().contains("it has: m"));
    }
}
