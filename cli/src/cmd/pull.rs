//! `tinylm pull`: download a shelf model (and its tokenizer) with the site's list, checks and
//! resume, so a lesson can be prepared from a terminal; `--list` prints the shelf.

use std::path::PathBuf;

use crate::download::{self, Outcome, Want};
use crate::pull_error::PullError;
use crate::shelf::{self, Origin, Shelf};

#[derive(clap::Args)]
pub struct Args {
    /// Shelf model to download (`--list` shows the names).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// Print the shelf instead of downloading.
    #[arg(long)]
    pub list: bool,
    /// Another shelf list in the site's format (default: the site's public/shelf.json, built in).
    #[arg(long)]
    pub shelf: Option<PathBuf>,
    /// Replace the list's hub base URL (a mirror, or a local server).
    #[arg(long)]
    pub hub: Option<String>,
    /// Folder to download into (made if missing).
    #[arg(short = 'o', long = "out", default_value = ".")]
    pub dir: PathBuf,
    /// Accept files the list gives no SHA-256 for, on their size alone (prints the SHA-256 found).
    #[arg(long)]
    pub unverified: bool,
}

pub fn run(a: Args) -> Result<(), PullError> {
    let (text, origin) = match &a.shelf {
        Some(p) => (std::fs::read_to_string(p).map_err(|e| PullError::io(p, e))?, Origin::File(p.clone())),
        None => (shelf::BUILTIN.to_string(), Origin::Builtin),
    };
    let shelf = shelf::parse(&text, &origin, a.hub.as_deref())?;
    match &a.name {
        Some(name) if !a.list => pull(&shelf, &origin, name, &a),
        _ => {
            print_list(&shelf, &a.dir);
            Ok(())
        }
    }
}

fn pull(shelf: &Shelf, origin: &Origin, name: &str, a: &Args) -> Result<(), PullError> {
    let model = shelf::model(shelf, name)?;
    std::fs::create_dir_all(&a.dir).map_err(|e| PullError::io(&a.dir, e))?;
    // Every source is resolved and every hash demanded before the first byte moves.
    let mut jobs = Vec::new();
    for f in &model.files {
        let want = Want { name: f.file_name(), size: f.size, sha256: f.sha256.as_deref() };
        if want.sha256.is_none() && !a.unverified {
            return Err(PullError::Unverified { file: want.name.to_string() });
        }
        jobs.push((shelf::source(shelf, f, origin)?, want));
    }
    let agent = download::agent();
    for (source, want) in &jobs {
        let how = match download::fetch(&agent, source, &a.dir, want, a.unverified)? {
            Outcome::AlreadyHere => "already here".to_string(),
            Outcome::Copied => "copied from the site's files".to_string(),
            Outcome::Downloaded { from: 0 } => "downloaded".to_string(),
            Outcome::Downloaded { from } => format!("resumed from byte {from}"),
        };
        let path = a.dir.join(want.name);
        let check = match want.sha256 {
            Some(_) => "SHA-256 checked".to_string(),
            None => format!(
                "NOT verified: SHA-256 {}",
                download::sha256_hex(&std::fs::read(&path).map_err(|e| PullError::io(&path, e))?)
            ),
        };
        println!("{}  {} bytes  {how}, {check}", path.display(), want.size);
    }
    Ok(())
}

fn print_list(shelf: &Shelf, dir: &std::path::Path) {
    println!("hub: {}", shelf.hub);
    println!(
        "{:<14} {:>9} {:>10} {:>10}  {:<8} {:<8} in {}",
        "name",
        "params",
        "download",
        "memory",
        "licence",
        "sha256",
        dir.display()
    );
    for m in &shelf.models {
        let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
        let verified = if m.files.iter().all(|f| f.sha256.is_some()) { "yes" } else { "missing" };
        let here = if m.files.iter().all(|f| dir.join(f.file_name()).is_file()) { "yes" } else { "no" };
        let memory = m.memory.map(mb).unwrap_or_else(|| "?".into());
        let params = format!("{:.2}M", m.params as f64 / 1e6);
        println!("{:<14} {params:>9} {:>10} {memory:>10}  {:<8} {verified:<8} {here}", m.name, mb(m.download_bytes()), m.licence);
        if !m.about.is_empty() {
            println!("    {}: {}", m.title, m.about);
        }
    }
}
