//! Messages of the model shelf: the page asks the worker to fetch a shelf model's files (or to
//! stop); the worker reports progress and ends each download with one event: stored (verified,
//! on this device), failed (in words) or cancelled.

use serde::{Deserialize, Serialize};

/// One file to fetch: its absolute address, the name it is stored under, and what the list
/// promises about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchFile {
    pub url: String,
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Download {
    /// Ids grow; Cancel stops this download and any older one.
    pub job: u64,
    /// The shelf's name for the model (stored in the item's meta, named by links).
    pub model: String,
    pub params: u64,
    pub licence: String,
    /// The model file first.
    pub files: Vec<FetchFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShelfCmd {
    Download(Download),
    Cancel { job: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShelfEvent {
    /// `done` of `total` bytes of all the model's files; `note` says a connection was cut and
    /// the download resumes.
    Progress {
        job: u64,
        done: u64,
        total: u64,
        note: Option<String>,
    },
    /// Every file arrived whole, matched its SHA-256 and is stored (item `id` of `crate::storage`).
    Stored {
        job: u64,
        model: String,
        id: String,
    },
    Failed {
        job: u64,
        model: String,
        message: String,
    },
    Cancelled {
        job: u64,
        model: String,
    },
}
