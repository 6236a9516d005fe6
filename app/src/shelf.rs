//! The model shelf as the page reads it: the site's `shelf.json` (the list `tinylm pull` also
//! reads, `cli/src/shelf.rs`), where each file is fetched from, what the model card says about a
//! model before it is downloaded, and whether a download fits this site's storage. Plain data,
//! tested natively; the fetching is the worker's (`worker/shelf.rs`), the card the page's.

use serde::{Deserialize, Serialize};

use crate::protocol::MAX_FILE_BYTES;
use crate::words::size;

/// The list's address, relative to the page.
pub const LIST: &str = "shelf.json";

/// Downloads larger than this get a warning before they start (a classroom's shared connection).
pub const BIG_BYTES: u64 = 100_000_000;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Shelf {
    pub hub: String,
    pub models: Vec<ShelfModel>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ShelfModel {
    pub name: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub about: String,
    pub params: u64,
    /// Bytes of memory it needs to run.
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
    /// A file of the site, relative to the list.
    #[serde(default)]
    pub site: Option<String>,
    pub size: u64,
    pub sha256: Option<String>,
}

/// What the card offers for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Its model file is a file of the site (stories260K): used as it is.
    WithTheSite,
    /// Stored on this device (a verified earlier download).
    OnDevice,
    /// Can be downloaded: every file has its SHA-256 in the list.
    Download,
    /// The list gives no SHA-256 for a file: a damaged download could not be caught.
    Unverified,
}

impl Shelf {
    /// Reads the list and checks what the page relies on, in words.
    pub fn parse(text: &str) -> Result<Shelf, String> {
        let shelf: Shelf =
            serde_json::from_str(text).map_err(|e| format!("The model shelf list is not in the site's format: {e}."))?;
        if !is_web_url(&shelf.hub) {
            return Err(format!("The model shelf list's hub “{}” is not an http:// or https:// address.", shelf.hub));
        }
        for m in &shelf.models {
            m.check().map_err(|e| format!("The model shelf list's model “{}”: {e}.", m.name))?;
        }
        Ok(shelf)
    }

    pub fn model(&self, name: &str) -> Option<&ShelfModel> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The address of `file`: the hub's, an absolute one, or (for a site file) relative to the page.
    pub fn address(&self, file: &ShelfFile) -> String {
        match (&file.path, &file.url, &file.site) {
            (Some(p), _, _) => format!("{}/{}", self.hub.trim_end_matches('/'), p),
            (_, Some(u), _) => u.clone(),
            (_, _, Some(s)) => s.clone(),
            _ => String::new(),
        }
    }
}

impl ShelfModel {
    fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
            return Err("the name is empty or holds a slash".into());
        }
        if self.files.iter().filter(|f| f.role == Role::Model).count() != 1 {
            return Err("it must list exactly one file whose role is \"model\"".into());
        }
        self.files.iter().try_for_each(ShelfFile::check)
    }

    /// The model file (checked to be there by `parse`).
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

    /// The shelf's name for the site file of a model that comes with the site, if it does.
    pub fn site_model(&self) -> Option<&str> {
        self.model_file().and_then(|f| f.site.as_deref())
    }

    /// What the card offers, given whether a verified copy is on this device.
    pub fn offer(&self, on_device: bool) -> Offer {
        if self.site_model().is_some() {
            Offer::WithTheSite
        } else if on_device {
            Offer::OnDevice
        } else if self.files.iter().all(|f| f.sha256.is_some()) {
            Offer::Download
        } else {
            Offer::Unverified
        }
    }

    /// "15.2 M parameters · 61.2 MB download · 64.4 MB of memory · MIT".
    pub fn facts(&self) -> String {
        let memory = self.memory.map(|m| format!(" · {} of memory", size(m))).unwrap_or_default();
        format!("{} parameters · {} download{memory} · {}", params(self.params), size(self.download_bytes()), self.licence)
    }

    /// A word of warning before a big download, if it is one.
    pub fn big_warning(&self) -> Option<String> {
        let bytes = self.download_bytes();
        (bytes > BIG_BYTES).then(|| {
            format!(
                "A big download: {}. On a shared classroom connection, fetch it once before the lesson; it then stays \
                 on this device and works offline.",
                size(bytes)
            )
        })
    }
}

impl ShelfFile {
    fn check(&self) -> Result<(), String> {
        let given = [&self.path, &self.url, &self.site].iter().filter(|s| s.is_some()).count();
        if given != 1 {
            return Err("each file needs exactly one of \"path\", \"url\" or \"site\"".into());
        }
        if self.url.as_deref().is_some_and(|u| !is_web_url(u)) {
            return Err(format!("“{}” is not an http:// or https:// address", self.url.as_deref().unwrap_or_default()));
        }
        if let Some(rel) = self.path.as_ref().or(self.site.as_ref()) {
            if rel.starts_with('/') || rel.contains("..") || rel.contains('\\') || rel.contains(':') {
                return Err(format!("“{rel}” must be a relative path without “..”"));
            }
        }
        if self.file_name().is_empty() {
            return Err("a file's path does not end in a file name".into());
        }
        if self.size == 0 || self.size > MAX_FILE_BYTES {
            return Err(format!("{}: size {} is not between 1 byte and {}", self.file_name(), self.size, size(MAX_FILE_BYTES)));
        }
        if let Some(h) = &self.sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(format!("{}: sha256 is not 64 lowercase hexadecimal digits", self.file_name()));
            }
        }
        Ok(())
    }

    /// The name the file is stored and loaded under: the last segment of its path or URL.
    pub fn file_name(&self) -> &str {
        let loc = self.path.as_deref().or(self.url.as_deref()).or(self.site.as_deref()).unwrap_or("");
        let loc = loc.split(['?', '#']).next().unwrap_or(loc);
        loc.rsplit('/').next().unwrap_or(loc)
    }
}

/// `None` when `needed` bytes fit in what the browser lets this site use; otherwise the message
/// the card shows before anything is fetched.
pub fn no_room(name: &str, needed: u64, usage: u64, quota: u64) -> Option<String> {
    let free = quota.saturating_sub(usage);
    (needed > free).then(|| {
        format!(
            "{name} needs {} and this site may use only {} more on this device. Delete stored models on the \
             Storage tab or free disk space (the browser gives a site a share of the free disk), press “Keep \
             offline” there, and try again.",
            size(needed),
            size(free)
        )
    })
}

/// "12.3 MB of 60.8 MB (20 %) · 31 s left", the ETA from the rate so far (`ms` since the start,
/// `from` the bytes there were then).
pub fn progress_text(done: u64, total: u64, from: u64, ms: f64) -> String {
    let pct = if total > 0 { done as f64 * 100.0 / total as f64 } else { 0.0 };
    let rate = (done.saturating_sub(from)) as f64 / (ms / 1000.0).max(1e-3);
    let eta = if done > from && ms >= 500.0 && rate > 0.0 {
        format!(" · {:.0} s left", total.saturating_sub(done) as f64 / rate)
    } else {
        String::new()
    };
    format!("{} of {} ({pct:.0} %){eta}", size(done), size(total))
}

fn params(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1} M", n as f64 / 1e6)
    } else {
        format!("{:.0} K", n as f64 / 1e3)
    }
}

fn is_web_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.chars().any(|c| c.is_whitespace() || c.is_control()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE_LIST: &str = include_str!("../../public/shelf.json");

    #[test]
    fn the_sites_list_reads_and_each_model_gets_its_offer() {
        let s = Shelf::parse(SITE_LIST).unwrap();
        let names: Vec<_> = s.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["stories260K", "stories15M", "stories42M", "stories110M"]);
        let m15 = s.model("stories15M").unwrap();
        assert_eq!(
            s.address(m15.model_file().unwrap()),
            "https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin"
        );
        assert_eq!(s.address(&m15.files[1]), "models/tokenizer.bin");
        // 60,816,028 + 433,869 bytes.
        assert_eq!(m15.download_bytes(), 61_249_897);
        assert_eq!(m15.facts(), "15.2 M parameters · 61.25 MB download · 64.36 MB of memory · MIT");
        assert_eq!(m15.big_warning(), None);
        assert!(s.model("stories110M").unwrap().big_warning().unwrap().contains("438.82 MB"));
        let offers: Vec<_> = s.models.iter().map(|m| m.offer(false)).collect();
        assert_eq!(offers, [Offer::WithTheSite, Offer::Download, Offer::Unverified, Offer::Unverified]);
        assert_eq!(m15.offer(true), Offer::OnDevice);
        let order: Vec<_> = m15.files_in_order().iter().map(|f| f.file_name()).collect();
        assert_eq!(order, ["stories15M.bin", "tokenizer.bin"]);
    }

    #[test]
    fn a_broken_list_is_refused_in_words() {
        let list = |file: &str| {
            format!(r#"{{"hub":"https://x","models":[{{"name":"m","params":1,"licence":"MIT","files":[{file}]}}]}}"#)
        };
        let err = |t: &str| Shelf::parse(t).unwrap_err();
        assert!(err("{").contains("not in the site's format"));
        assert!(err(&list(r#"{"role":"model","path":"../a.bin","size":3,"sha256":null}"#)).contains("without “..”"));
        assert!(err(&list(r#"{"role":"model","path":"a.bin","url":"https://y/a.bin","size":3,"sha256":null}"#))
            .contains("exactly one of"));
        assert!(err(&list(r#"{"role":"model","url":"javascript:x","size":3,"sha256":null}"#)).contains("not an http"));
        assert!(err(&list(r#"{"role":"model","path":"a.bin","size":3,"sha256":"AB"}"#)).contains("64 lowercase"));
        assert!(err(&list(r#"{"role":"model","path":"a.bin","size":0,"sha256":null}"#)).contains("size 0"));
        assert!(err(&list(r#"{"role":"model","path":"a.bin","size":2000000000,"sha256":null}"#)).contains("1.1 GB"));
        assert!(err(&list(r#"{"role":"tokenizer","path":"a.bin","size":3,"sha256":null}"#)).contains("exactly one file"));
        let ok = Shelf::parse(&list(r#"{"role":"model","url":"https://cdn.example/x/a.bin?download=1","size":3,"sha256":null}"#));
        assert_eq!(ok.unwrap().models[0].files[0].file_name(), "a.bin");
    }

    #[test]
    fn room_is_checked_before_a_download() {
        assert_eq!(no_room("stories15M", 61_249_897, 10_000_000, 100_000_000), None);
        let msg = no_room("stories15M", 61_249_897, 60_000_000, 100_000_000).unwrap();
        assert!(msg.starts_with("stories15M needs 61.25 MB and this site may use only 40.00 MB more"), "{msg}");
        // Usage above the quota (it happens after a quota shrinks) is no room at all.
        assert!(no_room("m", 1, 10, 5).unwrap().contains("only 0.0 KB more"));
    }

    #[test]
    fn progress_says_bytes_percent_and_time_left() {
        assert_eq!(progress_text(0, 60_000_000, 0, 0.0), "0.0 KB of 60.00 MB (0 %)");
        // 12 MB in 4 s after a resume from 6 MB: 1.5 MB/s, 36 MB left.
        assert_eq!(progress_text(12_000_000, 48_000_000, 6_000_000, 4000.0), "12.00 MB of 48.00 MB (25 %) · 24 s left");
    }
}
