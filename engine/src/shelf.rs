//! The model shelf list (`public/shelf.json`, or a teacher's own list in its shape): one reader
//! for the page and `tinylm pull`, so both accept and refuse exactly the same lists. A list is
//! read and checked before anything is fetched, so a mistake in an edited list is reported in
//! words instead of turning into a strange download. Where the bytes come from, and how a model
//! is shown, stay with each front end.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Shelf {
    /// Base URL that the files' `path`s are joined to.
    pub hub: String,
    pub models: Vec<Model>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Model,
    Tokenizer,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
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

/// Why a list was refused; each variant says in words what to mend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShelfError {
    #[error("not a shelf list in the site's format: {0}")]
    Format(String),
    #[error("the hub {0:?} is not an http:// or https:// address")]
    Hub(String),
    #[error("the name {0:?} is used by two models")]
    SameName(String),
    #[error("model {model:?}: {what}")]
    Model { model: String, what: String },
}

impl Shelf {
    /// Reads and checks a list. `hub` (a mirror, a local server) replaces the list's own base
    /// URL; no file may be larger than `max_file_bytes` (what the front end can hold).
    pub fn parse(text: &str, hub: Option<&str>, max_file_bytes: u64) -> Result<Shelf, ShelfError> {
        let mut shelf: Shelf = serde_json::from_str(text).map_err(|e| ShelfError::Format(e.to_string()))?;
        if let Some(h) = hub {
            shelf.hub = h.to_string();
        }
        if !is_web_url(&shelf.hub) {
            return Err(ShelfError::Hub(shelf.hub));
        }
        let mut names = HashSet::new();
        for m in &shelf.models {
            m.check(max_file_bytes).map_err(|what| ShelfError::Model { model: m.name.clone(), what })?;
            if !names.insert(m.name.as_str()) {
                return Err(ShelfError::SameName(m.name.clone()));
            }
        }
        Ok(shelf)
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The models' names, comma-separated (for "it has: …").
    pub fn names(&self) -> String {
        self.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Where a hub or web file is fetched from; `None` for a site file, which each front end
    /// finds beside its own copy of the list.
    pub fn web_address(&self, file: &ShelfFile) -> Option<String> {
        match (&file.path, &file.url) {
            (Some(p), _) => Some(format!("{}/{}", self.hub.trim_end_matches('/'), p)),
            (_, Some(u)) => Some(u.clone()),
            _ => None,
        }
    }
}

impl Model {
    fn check(&self, max_file_bytes: u64) -> Result<(), String> {
        if self.name.is_empty() || self.name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
            return Err("the name is empty or holds a slash or control character".into());
        }
        if self.files.iter().filter(|f| f.role == Role::Model).count() != 1 {
            return Err("it must list exactly one file whose role is \"model\"".into());
        }
        let mut names = HashSet::new();
        for f in &self.files {
            f.check(max_file_bytes)?;
            if !names.insert(f.file_name()) {
                return Err(format!("it names two files {:?}", f.file_name()));
            }
        }
        Ok(())
    }

    /// The model file (`parse` checked there is exactly one).
    pub fn model_file(&self) -> Option<&ShelfFile> {
        self.files.iter().find(|f| f.role == Role::Model)
    }

    /// The model file first, then the tokenizer: the order the engine is given files in.
    pub fn files_in_order(&self) -> Vec<&ShelfFile> {
        let mut files: Vec<&ShelfFile> = self.files.iter().collect();
        files.sort_by_key(|f| f.role != Role::Model);
        files
    }

    pub fn download_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The site file of a model that comes with the site, if it does.
    pub fn site_model(&self) -> Option<&str> {
        self.model_file().and_then(|f| f.site.as_deref())
    }
}

impl ShelfFile {
    fn location(&self) -> &str {
        self.path.as_deref().or(self.url.as_deref()).or(self.site.as_deref()).unwrap_or("")
    }

    /// The name the file is saved and loaded under: the last segment of its path or URL.
    pub fn file_name(&self) -> &str {
        let loc = self.location();
        let loc = loc.split(['?', '#']).next().unwrap_or(loc);
        loc.rsplit('/').next().unwrap_or(loc)
    }

    fn check(&self, max_file_bytes: u64) -> Result<(), String> {
        let given = [&self.path, &self.url, &self.site].iter().filter(|s| s.is_some()).count();
        if given != 1 {
            return Err("each file needs exactly one of \"path\" (on the hub), \"url\" or \"site\"".into());
        }
        if let Some(u) = self.url.as_deref().filter(|u| !is_web_url(u)) {
            return Err(format!("the url {u:?} is not an http:// or https:// address"));
        }
        for rel in [&self.path, &self.site].into_iter().flatten() {
            let escapes = rel.starts_with('/') || rel.split('/').any(|seg| seg == "..");
            if escapes || rel.contains('\\') || rel.contains(':') {
                return Err(format!("{rel:?} must be a relative path without \"..\""));
            }
        }
        let name = self.file_name();
        if name.is_empty() || name == "." || name.ends_with(".part") || name.chars().any(char::is_control) {
            return Err(format!("{:?} does not end in a usable file name", self.location()));
        }
        if self.size == 0 || self.size > max_file_bytes {
            return Err(format!("{name}: size {} is not between 1 byte and {}", self.size, gigabytes(max_file_bytes)));
        }
        if let Some(h) = &self.sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(format!("{name}: sha256 {h:?} is not 64 lowercase hexadecimal digits"));
            }
        }
        Ok(())
    }
}

fn gigabytes(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

fn is_web_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.chars().any(|c| c.is_whitespace() || c.is_control()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE_LIST: &str = include_str!("../../public/shelf.json");
    const GB: u64 = 1 << 30;

    #[test]
    fn the_sites_list_reads() {
        let s = Shelf::parse(SITE_LIST, None, GB).unwrap();
        assert_eq!(s.hub, "https://huggingface.co");
        assert_eq!(s.names(), "stories260K, stories15M, stories42M, stories110M");
        let m15 = s.model("stories15M").unwrap();
        assert_eq!(
            s.web_address(m15.model_file().unwrap()).unwrap(),
            "https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin"
        );
        assert_eq!(s.web_address(&m15.files[1]), None);
        // 60,816,028 + 433,869 bytes.
        assert_eq!(m15.download_bytes(), 61_249_897);
        let order: Vec<_> = m15.files_in_order().iter().map(|f| f.file_name()).collect();
        assert_eq!(order, ["stories15M.bin", "tokenizer.bin"]);
        assert_eq!(s.model("stories260K").unwrap().site_model(), Some("models/stories260K.bin"));
        assert_eq!(m15.site_model(), None);
    }

    fn list(hub: &str, files: &str) -> String {
        format!(r#"{{"hub":"{hub}","models":[{{"name":"m","params":1,"licence":"MIT","files":[{files}]}}]}}"#)
    }

    fn refusal(files: &str) -> String {
        Shelf::parse(&list("https://x", files), None, GB).unwrap_err().to_string()
    }

    #[test]
    fn a_broken_list_is_refused_in_words() {
        assert!(matches!(Shelf::parse("[1,2]", None, GB), Err(ShelfError::Format(_))));
        assert_eq!(
            Shelf::parse(&list("ftp://x", r#"{"role":"model","path":"b.bin","size":3,"sha256":null}"#), None, GB),
            Err(ShelfError::Hub("ftp://x".into()))
        );
        for (file, words) in [
            (r#"{"role":"model","path":"../b.bin","size":3,"sha256":null}"#, "without \"..\""),
            (r#"{"role":"model","site":"a/../../b.bin","size":3,"sha256":null}"#, "without \"..\""),
            (r#"{"role":"model","site":"c:b.bin","size":3,"sha256":null}"#, "without \"..\""),
            (r#"{"role":"model","path":"b.bin","url":"https://y/b","size":3,"sha256":null}"#, "exactly one of"),
            (r#"{"role":"model","url":"javascript:x","size":3,"sha256":null}"#, "not an http"),
            (r#"{"role":"model","path":"b.bin","size":3,"sha256":"ABC"}"#, "64 lowercase"),
            (r#"{"role":"tokenizer","path":"b.bin","size":3,"sha256":null}"#, "exactly one file"),
            (r#"{"role":"model","path":"b/","size":3,"sha256":null}"#, "usable file name"),
            (r#"{"role":"model","path":"b.bin.part","size":3,"sha256":null}"#, "usable file name"),
            (r#"{"role":"model","path":"b.bin","size":0,"sha256":null}"#, "size 0 is not between 1 byte and 1.1 GB"),
            (r#"{"role":"model","path":"b.bin","size":2000000000,"sha256":null}"#, "size 2000000000"),
        ] {
            let msg = refusal(file);
            assert!(msg.starts_with("model \"m\": ") && msg.contains(words), "{file}: {msg}");
        }
        let two = r#"{"role":"model","path":"a/b.bin","size":3,"sha256":null},{"role":"tokenizer","url":"https://y/b.bin","size":3,"sha256":null}"#;
        assert!(refusal(two).contains("two files \"b.bin\""));
        let model = r#"{"name":"m","params":1,"licence":"MIT","files":[{"role":"model","path":"b.bin","size":3,"sha256":null}]}"#;
        let twice = format!(r#"{{"hub":"https://x","models":[{model},{model}]}}"#);
        assert_eq!(Shelf::parse(&twice, None, GB), Err(ShelfError::SameName("m".into())));
    }

    #[test]
    fn a_hub_override_and_web_addresses() {
        let files = r#"{"role":"model","path":"a/b.bin","size":3,"sha256":null},{"role":"tokenizer","url":"https://cdn.example/x/t.bin?download=1","size":3,"sha256":null}"#;
        let s = Shelf::parse(&list("https://x/", files), Some("http://127.0.0.1:9"), GB).unwrap();
        let m = s.model("m").unwrap();
        assert_eq!(s.web_address(&m.files[0]).unwrap(), "http://127.0.0.1:9/a/b.bin");
        assert_eq!(s.web_address(&m.files[1]).unwrap(), "https://cdn.example/x/t.bin?download=1");
        assert_eq!(m.files[1].file_name(), "t.bin");
        // The override is checked like the list's own hub.
        assert!(matches!(Shelf::parse(&list("https://x/", files), Some("file:///etc"), GB), Err(ShelfError::Hub(_))));
        assert!(s.model("n").is_none());
    }
}
