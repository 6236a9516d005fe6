//! One module per subcommand: its clap arguments and its `run`.

pub mod batch_stories;
pub mod bench;
pub mod convert;
pub mod decode;
pub mod encode;
pub mod finetune;
pub mod generate;
pub mod info;
pub mod inspect;
pub mod logits;
pub mod make_model;
pub mod merge;
pub mod patch;
pub mod pretrain;
pub mod pull;
