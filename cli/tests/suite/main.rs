//! The CLI's integration tests as one test binary (`cargo test -p tinylm-cli --test suite
//! [module::]`): each file here is a module and runs the built `tinylm`. As one binary per file,
//! a clean `cargo test` linked the same support code into each of them.

#[path = "../common/mod.rs"]
mod common;

mod backends;
mod compare;
mod errors;
mod finetune;
mod formats;
mod generate;
mod inspect;
mod interp;
mod logits;
mod models;
mod pretrain;
mod pull;
mod tokens;
mod tuning;
