//! `tinylm`: the TinyLM Lab command line. Each subcommand lives in `cmd/`; files are read and
//! backends created in `load` and `backend` so later subcommands share them.

mod backend;
mod cmd;
mod download;
mod intervene;
mod load;
mod out;
mod pull_error;
mod shelf;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tinylm", version, about = "Run and inspect llama2.c, GGUF and Hugging Face Llama models (TinyLM Lab)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text exactly as llama2.c `run` does (`tinylm run` works too).
    #[command(alias = "run")]
    Generate(cmd::generate::Args),
    /// Write logits, attention and residuals of a token sequence to a safetensors file.
    Logits(cmd::logits::Args),
    /// The Inspect view's figures: next-token odds, logit lens, attention rollout, one head's attention.
    Inspect(cmd::inspect::Args),
    /// Print the token ids of a text (BOS first).
    Encode(cmd::encode::Args),
    /// Print the text of token ids.
    Decode(cmd::decode::Args),
    /// Write a deterministic random model (shared/docs/reference-models.md).
    MakeModel(cmd::make_model::Args),
    /// Activation patching: which layers, positions and heads carry the difference between two prompts.
    Patch(cmd::patch::Args),
    /// Describe a model file.
    Info(cmd::info::Args),
    /// Measure load, prefill and decode speed on each backend, side by side (or a LoRA training step).
    Bench(cmd::bench::Args),
    /// Fine-tune a LoRA adapter on text or token ids (CPU); writes a PEFT adapter directory.
    Finetune(cmd::finetune::Args),
    /// Train every weight of a model (from a checkpoint or random weights); or --lr-sweep.
    Pretrain(cmd::pretrain::Args),
    /// Merge a LoRA adapter into the model's weights and write a checkpoint.
    Merge(cmd::merge::Args),
    /// Write a model (llama2.c, GGUF or Hugging Face folder) as llama2.c, GGUF or safetensors.
    Convert(cmd::convert::Args),
    /// Download a model of the site's shelf (and its tokenizer), checked by SHA-256; --list prints the shelf.
    Pull(cmd::pull::Args),
}

fn run(command: Command) -> tinylm_engine::Result<()> {
    match command {
        Command::Generate(a) => cmd::generate::run(a),
        Command::Logits(a) => cmd::logits::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Encode(a) => cmd::encode::run(a),
        Command::Decode(a) => cmd::decode::run(a),
        Command::MakeModel(a) => cmd::make_model::run(a),
        Command::Patch(a) => cmd::patch::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Finetune(a) => cmd::finetune::run(a),
        Command::Merge(a) => cmd::merge::run(a),
        Command::Pretrain(a) => cmd::pretrain::run(a),
        Command::Convert(a) => cmd::convert::run(a),
        Command::Pull(_) => unreachable!("pull is run by main"),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap formats its own "error: …" with usage; help and version are not failures.
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    // `pull` has its own error type: downloads fail in ways a model file does not.
    match cli.command {
        Command::Pull(a) => finish(cmd::pull::run(a)),
        command => finish(run(command)),
    }
}

fn finish<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}
