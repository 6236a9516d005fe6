//! The model shelf as the page shows it: the site's `shelf.json`, read by the engine's reader
//! (`tinylm_engine::shelf`, which `tinylm pull` uses too), where each file is fetched from, what
//! the model card says about a model before it is downloaded, and whether a download fits this
//! site's storage. Plain data, tested natively; the fetching is the worker's (`worker/shelf.rs`),
//! the card the page's.

pub use tinylm_engine::shelf::{Model as ShelfModel, Role, Shelf, ShelfFile};

use crate::protocol::MAX_FILE_BYTES;
use crate::words::size;

/// The list's address, relative to the page.
pub const LIST: &str = "shelf.json";

/// Downloads larger than this get a warning before they start (a classroom's shared connection).
pub const BIG_BYTES: u64 = 100_000_000;

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

/// Reads the list (files up to what the page can hold), the refusal in a sentence.
pub fn parse(text: &str) -> Result<Shelf, String> {
    Shelf::parse(text, None, MAX_FILE_BYTES).map_err(|e| format!("The model shelf list is refused: {e}."))
}

/// The address of `file`: the hub's, an absolute one, or (for a site file) relative to the page.
pub fn address(shelf: &Shelf, file: &ShelfFile) -> String {
    shelf.web_address(file).or_else(|| file.site.clone()).unwrap_or_default()
}

/// What the model card says about a shelf model.
pub trait Card {
    /// What the card offers, given whether a verified copy is on this device.
    fn offer(&self, on_device: bool) -> Offer;
    /// "15.2 M parameters · 61.2 MB download · 64.4 MB of memory · MIT".
    fn facts(&self) -> String;
    /// A word of warning before a big download, if it is one.
    fn big_warning(&self) -> Option<String>;
}

impl Card for ShelfModel {
    fn offer(&self, on_device: bool) -> Offer {
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

    fn facts(&self) -> String {
        let memory = self.memory.map(|m| format!(" · {} of memory", size(m))).unwrap_or_default();
        format!("{} parameters · {} download{memory} · {}", params(self.params), size(self.download_bytes()), self.licence)
    }

    fn big_warning(&self) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const SITE_LIST: &str = include_str!("../../public/shelf.json");

    #[test]
    fn the_sites_list_reads_and_each_model_gets_its_offer() {
        let s = parse(SITE_LIST).unwrap();
        let names: Vec<_> = s.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["stories260K", "stories15M", "stories42M", "stories110M"]);
        let m15 = s.model("stories15M").unwrap();
        assert_eq!(
            address(&s, m15.model_file().unwrap()),
            "https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin"
        );
        assert_eq!(address(&s, &m15.files[1]), "models/tokenizer.bin");
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
    fn a_broken_list_is_refused_in_a_sentence_with_the_pages_limit() {
        // The checks themselves are the engine's (`tinylm_engine::shelf` tests them all).
        let list = |file: &str| {
            format!(r#"{{"hub":"https://x","models":[{{"name":"m","params":1,"licence":"MIT","files":[{file}]}}]}}"#)
        };
        assert_eq!(parse("{").unwrap_err().split(':').next(), Some("The model shelf list is refused"));
        let msg = parse(&list(r#"{"role":"model","path":"../a.bin","size":3,"sha256":null}"#)).unwrap_err();
        assert!(msg.contains("without \"..\"") && msg.ends_with('.'), "{msg}");
        // The page holds files of up to 1 GiB; `tinylm pull` takes larger ones.
        assert!(parse(&list(r#"{"role":"model","path":"a.bin","size":2000000000,"sha256":null}"#))
            .unwrap_err()
            .contains("1.1 GB"));
        assert!(parse(&list(r#"{"role":"model","path":"a.bin","size":1000000000,"sha256":null}"#)).is_ok());
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
