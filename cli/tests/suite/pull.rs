//! `tinylm pull` against a real HTTP server on 127.0.0.1 playing the hub (std::net, HTTP/1.1):
//! `Range`, a redirect to another port (as the hub sends files to its CDN's host), a 404, a
//! connection cut midway, a file whose hash is wrong. Each case ends with the model in the folder
//! or a message in words, never a half file under the model's name; the pulled model then
//! writes the same story as the original.

use crate::common;
use common::*;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// The test hub: `/files/NAME` served with `Range`, `/moved/NAME` redirected to the CDN's port,
/// `/cut/NAME` cut halfway through the body (`cuts` times), `/plain/NAME` the same but ignoring
/// `Range` (as some servers do), anything else 404.
struct Hub {
    port: u16,
    cdn_port: u16,
    /// "PORT PATH RANGE" of every request, in order.
    log: Arc<Mutex<Vec<String>>>,
    cuts: Arc<AtomicUsize>,
}

impl Hub {
    fn start(cuts: usize) -> Hub {
        let files: Arc<HashMap<String, Vec<u8>>> = Arc::new(HashMap::from([
            ("stories260K.bin".to_string(), std::fs::read(model()).unwrap()),
            ("tok512.bin".to_string(), std::fs::read(tok512()).unwrap()),
        ]));
        let log = Arc::new(Mutex::new(Vec::new()));
        let cuts = Arc::new(AtomicUsize::new(cuts));
        let hub = TcpListener::bind("127.0.0.1:0").unwrap();
        let cdn = TcpListener::bind("127.0.0.1:0").unwrap();
        let (port, cdn_port) = (hub.local_addr().unwrap().port(), cdn.local_addr().unwrap().port());
        for listener in [hub, cdn] {
            let (files, log, cuts) = (files.clone(), log.clone(), cuts.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    serve(stream, &files, &log, &cuts, cdn_port);
                }
            });
        }
        Hub { port, cdn_port, log, cuts }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, files: &HashMap<String, Vec<u8>>, log: &Mutex<Vec<String>>, cuts: &AtomicUsize, cdn_port: u16) {
    let port = stream.local_addr().unwrap().port();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut from = 0usize;
    let mut ranged = false;
    let honours_range = !path.starts_with("/plain/");
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
            from = v.trim().trim_end_matches('-').parse().unwrap();
            ranged = true;
        }
    }
    let range = if ranged { format!("bytes={from}-") } else { "-".into() };
    log.lock().unwrap().push(format!("{port} {path} {range}"));
    if !honours_range {
        (from, ranged) = (0, false);
    }
    let mut out = stream;
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let Some(body) = files.get(name).filter(|_| ["files", "moved", "cut", "plain"].contains(&kind)) else {
        let _ = out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
        return;
    };
    if kind == "moved" {
        let head = format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{cdn_port}/files/{name}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let _ = out.write_all(head.as_bytes());
        return;
    }
    let rest = &body[from.min(body.len())..];
    let head = if ranged {
        let (last, total) = (body.len() - 1, body.len());
        format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{last}/{total}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", rest.len())
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", rest.len())
    };
    let _ = out.write_all(head.as_bytes());
    let cut =
        (kind == "cut" || kind == "plain") && cuts.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let _ = out.write_all(if cut { &rest[..rest.len() / 2] } else { rest });
    // Dropping the stream closes it: mid-body when cut.
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A shelf list for `hub` with models whose model file is at `model_path` (hash `model_sha`).
fn shelf(dir: &Path, hub: &str, models: &[(&str, &str, Option<&str>)]) -> PathBuf {
    let m = std::fs::read(model()).unwrap();
    let t = std::fs::read(tok512()).unwrap();
    let models: Vec<_> = models
        .iter()
        .map(|(name, path, model_sha)| {
            serde_json::json!({"name": name, "title": name, "about": "test", "params": 260032, "licence": "MIT",
            "files": [{"role": "model", "path": path, "size": m.len(), "sha256": model_sha},
                      {"role": "tokenizer", "path": "files/tok512.bin", "size": t.len(), "sha256": sha(&t)}]})
        })
        .collect();
    let list = dir.join("shelf.json");
    std::fs::write(&list, serde_json::json!({"hub": hub, "models": models}).to_string()).unwrap();
    list
}

fn real_sha() -> String {
    sha(&std::fs::read(model()).unwrap())
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn greedy(model: &Path, tok: &Path) -> Vec<u8> {
    ok(&[
        "generate".as_ref(),
        model.as_os_str(),
        "-z".as_ref(),
        tok.as_os_str(),
        "-t".as_ref(),
        "0".as_ref(),
        "-n".as_ref(),
        "128".as_ref(),
    ])
}

/// `tinylm pull NAME --shelf LIST -o DIR`'s arguments.
fn pull_args<'a>(name: &'a str, list: &'a Path, dir: &'a Path) -> [&'a std::ffi::OsStr; 6] {
    ["pull".as_ref(), name.as_ref(), "--shelf".as_ref(), list.as_os_str(), "-o".as_ref(), dir.as_os_str()]
}

#[test]
fn pull_follows_the_redirect_and_the_model_writes_the_same_story() {
    let hub = Hub::start(0);
    let dir = scratch("pull-redirect");
    let out = dir.join("models");
    let list = shelf(&dir, &hub.url(), &[("tiny", "moved/stories260K.bin", Some(&real_sha()))]);
    let stdout = String::from_utf8(ok(&pull_args("tiny", &list, &out))).unwrap();
    assert!(stdout.contains("stories260K.bin  1056540 bytes  downloaded, SHA-256 checked"), "{stdout}");
    assert_eq!(listing(&out), ["stories260K.bin", "tok512.bin"]);
    let reqs = hub.requests();
    assert_eq!(reqs[0], format!("{} /moved/stories260K.bin -", hub.port), "{reqs:?}");
    assert_eq!(
        reqs[1],
        format!("{} /files/stories260K.bin -", hub.cdn_port),
        "the redirect to another host is followed: {reqs:?}"
    );
    assert_eq!(greedy(&out.join("stories260K.bin"), &out.join("tok512.bin")), greedy(&model(), &tok512()));
    // A second pull finds the checked files and fetches nothing.
    let again = String::from_utf8(ok(&pull_args("tiny", &list, &out))).unwrap();
    assert!(again.contains("already here"), "{again}");
    assert_eq!(hub.requests().len(), reqs.len());
}

#[test]
fn a_cut_connection_keeps_the_part_and_the_next_pull_resumes_with_range() {
    let hub = Hub::start(1);
    let dir = scratch("pull-cut");
    let list = shelf(&dir, &hub.url(), &[("tiny", "cut/stories260K.bin", Some(&real_sha()))]);
    let m = dir.join("m");
    let args = pull_args("tiny", &list, &m);
    let err = fails(&args);
    let half = 1056540 / 2;
    assert!(err.contains(&format!("the connection was cut after {half} of 1056540 bytes")), "{err}");
    assert!(err.contains("run the same command again to resume"), "{err}");
    assert_eq!(listing(&dir.join("m")), ["stories260K.bin.part"], "no half file under the model's name");
    assert_eq!(std::fs::metadata(dir.join("m/stories260K.bin.part")).unwrap().len(), half as u64);
    assert_eq!(hub.cuts.load(Ordering::SeqCst), 0);

    let stdout = String::from_utf8(ok(&args)).unwrap();
    assert!(stdout.contains(&format!("resumed from byte {half}, SHA-256 checked")), "{stdout}");
    assert!(hub.requests().contains(&format!("{} /cut/stories260K.bin bytes={half}-", hub.port)), "{:?}", hub.requests());
    assert_eq!(listing(&dir.join("m")), ["stories260K.bin", "tok512.bin"]);
    assert_eq!(std::fs::read(dir.join("m/stories260K.bin")).unwrap(), std::fs::read(model()).unwrap());
}

#[test]
fn a_server_that_ignores_range_gets_a_fresh_download_after_a_cut() {
    let hub = Hub::start(1);
    let dir = scratch("pull-plain");
    let list = shelf(&dir, &hub.url(), &[("tiny", "plain/stories260K.bin", Some(&real_sha()))]);
    let m = dir.join("m");
    let args = pull_args("tiny", &list, &m);
    assert!(fails(&args).contains("the connection was cut after 528270 of 1056540 bytes"));
    let stdout = String::from_utf8(ok(&args)).unwrap();
    assert!(stdout.contains("stories260K.bin  1056540 bytes  downloaded, SHA-256 checked"), "{stdout}");
    assert!(hub.requests().contains(&format!("{} /plain/stories260K.bin bytes=528270-", hub.port)), "{:?}", hub.requests());
    assert_eq!(std::fs::read(m.join("stories260K.bin")).unwrap(), std::fs::read(model()).unwrap());
}

#[test]
fn not_found_wrong_hash_and_unverified_end_in_words_with_nothing_stored() {
    let hub = Hub::start(0);
    let dir = scratch("pull-errors");
    let wrong = sha(b"not the model");
    let list = shelf(
        &dir,
        &hub.url(),
        &[
            ("gone", "files/missing.bin", Some(&real_sha())),
            ("bad", "files/stories260K.bin", Some(&wrong)),
            ("open", "files/stories260K.bin", None),
        ],
    );
    let pull = |name: &str, out: &str, extra: &[&str]| {
        let mut a = vec!["pull".to_string(), name.into(), "--shelf".into(), list.display().to_string(), "-o".into()];
        a.push(dir.join(out).display().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let err = fails(&pull("gone", "a", &[]));
    assert!(err.contains(&format!("{}/files/missing.bin: not found on the server (HTTP 404)", hub.url())), "{err}");
    assert!(listing(&dir.join("a")).is_empty());

    let err = fails(&pull("bad", "b", &[]));
    assert!(err.contains(&format!("stories260K.bin: its SHA-256 is {} but the shelf list says {wrong}", real_sha())), "{err}");
    assert!(err.contains("so it was deleted"), "{err}");
    assert!(listing(&dir.join("b")).is_empty(), "{:?}", listing(&dir.join("b")));

    let err = fails(&pull("open", "c", &[]));
    assert!(err.contains("stories260K.bin: the shelf list gives no SHA-256") && err.contains("--unverified"), "{err}");
    assert!(listing(&dir.join("c")).is_empty());
    let stdout = String::from_utf8(ok(&pull("open", "c", &["--unverified"]))).unwrap();
    assert!(stdout.contains(&format!("NOT verified: SHA-256 {}", real_sha())), "{stdout}");

    // A list that says one byte less than the server sends: the extra byte is refused.
    std::fs::write(dir.join("small.json"), std::fs::read_to_string(&list).unwrap().replace("1056540", "1056539")).unwrap();
    let mut a = pull("bad", "f", &[]);
    a[3] = dir.join("small.json").display().to_string();
    let err = fails(&a);
    assert!(err.contains("stories260K.bin: the server sent more than the 1056539 bytes the shelf list gives"), "{err}");
    assert!(listing(&dir.join("f")).is_empty());

    let err = fails(&pull("nothing", "d", &[]));
    assert!(err.contains("no model named \"nothing\" on the shelf (it has: gone, bad, open)"), "{err}");
    let err = fails(&pull("gone", "d", &["--hub", "http://127.0.0.1:1"]));
    assert!(err.contains("http://127.0.0.1:1/files/missing.bin: cannot reach the server"), "{err}");

    // A different file under the model's name is never overwritten.
    std::fs::create_dir_all(dir.join("e")).unwrap();
    std::fs::copy(tok512(), dir.join("e/stories260K.bin")).unwrap();
    let err = fails(&pull("bad", "e", &[]));
    assert!(
        err.contains("stories260K.bin already exists and is not the shelf's file (6227 bytes, the list says 1056540)"),
        "{err}"
    );
}

#[test]
fn bad_lists_are_refused_in_words() {
    let dir = scratch("pull-badlist");
    let list = dir.join("shelf.json");
    std::fs::write(&list, r#"{"hub": "https://example.org", "models": [{"name": "x"}]}"#).unwrap();
    let err = fails(&["pull".as_ref(), "x".as_ref(), "--shelf".as_ref(), list.as_os_str()]);
    assert!(err.starts_with(&format!("error: shelf list {}: not a shelf list in the site's format", list.display())), "{err}");
    let err = fails(&["pull", "x", "--shelf", "/nonexistent/shelf.json"]);
    assert!(err.contains("/nonexistent/shelf.json"), "{err}");
}

#[test]
fn builtin_shelf_lists_the_site_models_and_copies_the_bundled_one() {
    let dir = scratch("pull-builtin");
    let list = String::from_utf8(ok(&["pull".as_ref(), "--list".as_ref(), "-o".as_ref(), dir.as_os_str()])).unwrap();
    assert!(list.starts_with("hub: https://huggingface.co\n"), "{list}");
    for (name, download) in
        [("stories260K", "1.1 MB"), ("stories15M", "61.2 MB"), ("stories42M", "167.5 MB"), ("stories110M", "438.8 MB")]
    {
        let row = list.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{list}"));
        assert!(row.contains(download), "{row}");
    }
    let stdout = String::from_utf8(ok(&["pull".as_ref(), "stories260K".as_ref(), "-o".as_ref(), dir.as_os_str()])).unwrap();
    assert!(stdout.contains("copied from the site's files, SHA-256 checked"), "{stdout}");
    let public = Path::new(env!("CARGO_MANIFEST_DIR")).join("../public/models");
    assert_eq!(std::fs::read(dir.join("stories260K.bin")).unwrap(), std::fs::read(public.join("stories260K.bin")).unwrap());
    assert_eq!(listing(&dir), ["stories260K.bin", "tok512.bin"]);
    // stories42M has no published SHA-256 yet: refused before any byte is fetched.
    let err = fails(&["pull".as_ref(), "stories42M".as_ref(), "-o".as_ref(), dir.as_os_str()]);
    assert!(err.contains("stories42M.bin: the shelf list gives no SHA-256"), "{err}");
    assert_eq!(listing(&dir), ["stories260K.bin", "tok512.bin"]);
}
