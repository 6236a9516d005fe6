//! Writing to stdout without panics: `println!` panics when the reader has gone away
//! (`tinylm … | head`); here a closed pipe ends the output quietly instead, as run.c does
//! when SIGPIPE stops it.

use std::io::{ErrorKind, Write};

use tinylm_engine::{Error, Result};

/// Writes `bytes` and flushes. Returns false once the reader has closed the pipe.
pub fn write(bytes: &[u8]) -> Result<bool> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::Io { file: "stdout".into(), what: e.to_string() }),
    }
}

/// Writes one line.
pub fn line(s: &str) -> Result<()> {
    write(format!("{s}\n").as_bytes()).map(|_| ())
}
