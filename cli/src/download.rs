//! Fetching one shelf file into a folder: streamed to `NAME.part`, resumed with an HTTP `Range`
//! request after a cut, checked (size, SHA-256) and only then renamed to `NAME`, so a half or
//! damaged file never sits under the model's name.

use std::fs::{self, OpenOptions};
use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::pull_error::PullError;
use crate::shelf::Source;

/// The file the list promises.
pub struct Want<'a> {
    pub name: &'a str,
    pub size: u64,
    pub sha256: Option<&'a str>,
}

/// How a file came to be in the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    AlreadyHere,
    /// Downloaded; `from` > 0 when a kept part was resumed.
    Downloaded {
        from: u64,
    },
    /// Copied from a site file (built in or beside the list).
    Copied,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> Result<String, PullError> {
    let mut f = fs::File::open(path).map_err(|e| PullError::io(path, e))?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h).map_err(|e| PullError::io(path, e))?;
    Ok(hex(&h.finalize()))
}

/// One client for every file: redirects followed (the hub sends files to its CDN's host), HTTP
/// errors returned as statuses so each gets its own words.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(10)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .user_agent(concat!("tinylm-pull/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Puts `want` into `dir` from `source`. Refuses a file the list gives no SHA-256 for unless
/// `unverified_ok`.
pub fn fetch(agent: &ureq::Agent, source: &Source, dir: &Path, want: &Want, unverified_ok: bool) -> Result<Outcome, PullError> {
    if want.sha256.is_none() && !unverified_ok {
        return Err(PullError::Unverified { file: want.name.to_string() });
    }
    let dest = dir.join(want.name);
    if dest.exists() {
        return check_existing(&dest, want).map(|()| Outcome::AlreadyHere);
    }
    let part = part_path(dir, want.name);
    let outcome = match source {
        Source::Web(url) => Outcome::Downloaded { from: download(agent, url, &part, want)? },
        Source::Builtin(bytes) => {
            fs::write(&part, bytes).map_err(|e| PullError::io(&part, e))?;
            Outcome::Copied
        }
        Source::Local(from) => {
            fs::copy(from, &part).map_err(|e| PullError::io(from, e))?;
            Outcome::Copied
        }
    };
    verify(&part, want)?;
    fs::rename(&part, &dest).map_err(|e| PullError::io(&dest, e))?;
    Ok(outcome)
}

/// A file already under the name is kept only if it is the list's file.
fn check_existing(dest: &Path, want: &Want) -> Result<(), PullError> {
    let in_the_way = |what: String| PullError::InTheWay { path: dest.display().to_string(), what };
    let len = dest.metadata().map_err(|e| PullError::io(dest, e))?.len();
    if len != want.size {
        return Err(in_the_way(format!("{len} bytes, the list says {}", want.size)));
    }
    match want.sha256 {
        Some(sha) if sha256_file(dest)? != sha => Err(in_the_way("its SHA-256 differs from the list's".into())),
        _ => Ok(()),
    }
}

/// Size, then SHA-256 (when the list gives one); a complete part that fails is deleted, since
/// resuming it could never succeed.
fn verify(part: &Path, want: &Want) -> Result<(), PullError> {
    let len = part.metadata().map_err(|e| PullError::io(part, e))?.len();
    let got = if len == want.size { want.sha256.map(|_| sha256_file(part)).transpose()? } else { None };
    let err = if len != want.size {
        PullError::WrongSize { file: want.name.to_string(), got: len, size: want.size }
    } else {
        match (got, want.sha256) {
            (Some(got), Some(sha)) if got != sha => {
                PullError::WrongHash { file: want.name.to_string(), got, want: sha.to_string() }
            }
            _ => return Ok(()),
        }
    };
    let _ = fs::remove_file(part);
    Err(err)
}

/// Streams `url` into `part`, resuming from the bytes already there. Returns where it resumed.
fn download(agent: &ureq::Agent, url: &str, part: &Path, want: &Want) -> Result<u64, PullError> {
    let mut have = part.metadata().map(|m| m.len()).unwrap_or(0);
    if have > want.size {
        fs::remove_file(part).map_err(|e| PullError::io(part, e))?;
        have = 0;
    }
    if have == want.size {
        return Ok(have);
    }
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let mut resp = req.call().map_err(|e| PullError::Unreachable { url: url.to_string(), what: e.to_string() })?;
    let start = match resp.status().as_u16() {
        200 => 0, // the server ignored the Range: start again
        206 => {
            let range = resp.headers().get("content-range").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            match range_start(&range) {
                Some(s) if s == have => have,
                _ => return Err(PullError::BadRange { url: url.to_string(), got: range, want: have }),
            }
        }
        404 => return Err(PullError::NotFound { url: url.to_string() }),
        416 => {
            // The part no longer fits the file the server has: drop it so the next try starts clean.
            let _ = fs::remove_file(part);
            return Err(PullError::Status { url: url.to_string(), status: 416 });
        }
        status => return Err(PullError::Status { url: url.to_string(), status }),
    };
    let mut file = OpenOptions::new().create(true).write(true).truncate(false).open(part).map_err(|e| PullError::io(part, e))?;
    file.set_len(start).and_then(|()| file.seek(SeekFrom::Start(start))).map_err(|e| PullError::io(part, e))?;
    let mut body = resp.body_mut().as_reader();
    let mut progress = Progress::new(want.name, want.size, start);
    let mut buf = vec![0u8; 1 << 16];
    let mut got = start;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break, // a cut connection: the bytes so far stay in the part
        };
        if got + n > want.size {
            drop(file);
            let _ = fs::remove_file(part);
            return Err(PullError::TooLarge { file: want.name.to_string(), size: want.size });
        }
        file.write_all(&buf[..n as usize]).map_err(|e| PullError::io(part, e))?;
        got += n;
        progress.show(got);
    }
    file.sync_all().map_err(|e| PullError::io(part, e))?;
    progress.done();
    if got < want.size {
        let part = part.display().to_string();
        return Err(PullError::Cut { url: url.to_string(), got, size: want.size, part });
    }
    Ok(start)
}

/// The first byte of `Content-Range: bytes START-END/TOTAL`.
fn range_start(header: &str) -> Option<u64> {
    header.strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

/// Bytes, percent, speed and time left on one terminal line (nothing when stderr is not a
/// terminal, so logs stay clean).
struct Progress {
    name: String,
    size: u64,
    from: u64,
    started: Instant,
    shown: Option<Instant>,
    tty: bool,
}

impl Progress {
    fn new(name: &str, size: u64, from: u64) -> Progress {
        Progress { name: name.into(), size, from, started: Instant::now(), shown: None, tty: io::stderr().is_terminal() }
    }

    fn show(&mut self, got: u64) {
        if !self.tty || self.shown.is_some_and(|t| t.elapsed() < Duration::from_millis(250)) {
            return;
        }
        self.shown = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = (got - self.from) as f64 / secs;
        let eta = if rate > 0.0 { format!("{:.0} s left", (self.size - got) as f64 / rate) } else { "…".into() };
        eprint!(
            "\r{}: {:.1} of {:.1} MB ({:.0}%), {:.1} MB/s, {eta}   ",
            self.name,
            got as f64 / 1e6,
            self.size as f64 / 1e6,
            100.0 * got as f64 / self.size as f64,
            rate / 1e6
        );
    }

    fn done(&self) {
        if self.shown.is_some() {
            eprintln!();
        }
    }
}

/// The part file a download of `name` into `dir` keeps.
fn part_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.part"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_start() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start(""), None);
    }

    #[test]
    fn sha256_of_abc() {
        // FIPS 180-2 example.
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
