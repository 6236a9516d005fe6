//! What can go wrong fetching a shelf model, by kind, each said in words a teacher can act on.

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The list is not in the site's format or names something unusable.
    #[error("shelf list {origin}: {what}")]
    BadList { origin: String, what: String },
    #[error("no model named {name:?} on the shelf (it has: {known}); `tinylm pull --list` shows them")]
    UnknownModel { name: String, known: String },
    #[error("{url}: not found on the server (HTTP 404); the shelf list may be out of date or the file may have moved")]
    NotFound { url: String },
    #[error("{url}: the server answered HTTP {status} instead of the file")]
    Status { url: String, status: u16 },
    #[error("{url}: cannot reach the server: {what}")]
    Unreachable { url: String, what: String },
    /// The body ended (or failed) before the whole file arrived; the part is kept for a resume.
    #[error("{url}: the connection was cut after {got} of {size} bytes; {part} is kept: run the same command again to resume")]
    Cut { url: String, got: u64, size: u64, part: String },
    #[error("{file}: the server sent more than the {size} bytes the shelf list gives; the download was deleted")]
    TooLarge { file: String, size: u64 },
    #[error("{file}: {got} bytes where the shelf list gives {size}; it was deleted")]
    WrongSize { file: String, got: u64, size: u64 },
    #[error("{url}: the server answered a resume request with bytes from {got} instead of {want}")]
    BadRange { url: String, got: String, want: u64 },
    /// The bytes are complete but are not the file the list names; the part is deleted.
    #[error("{file}: its SHA-256 is {got} but the shelf list says {want}: the download is damaged or not the file the list means, so it was deleted")]
    WrongHash { file: String, got: String, want: String },
    #[error("{file}: the shelf list gives no SHA-256, so a damaged or changed download could not be caught; add its sha256 to the list, or pass --unverified to accept it on its size alone")]
    Unverified { file: String },
    #[error("{path} already exists and is not the shelf's file ({what}); move it away or choose another folder with -o")]
    InTheWay { path: String, what: String },
    #[error("{file}: {what}")]
    Io { file: String, what: String },
}

impl PullError {
    pub fn io(file: &std::path::Path, e: std::io::Error) -> PullError {
        PullError::Io { file: file.display().to_string(), what: e.to_string() }
    }
}
