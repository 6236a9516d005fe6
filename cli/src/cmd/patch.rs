//! `tinylm patch`: activation patching (trace::Patcher) of a clean and a corrupted prompt, on
//! the CPU: how much of the clean logit difference each layer × position's residual, and each
//! head's output, brings back into the corrupted run.

use std::path::PathBuf;

use serde_json::{json, Value};
use tinylm_engine::trace::pieces::{raw_readable, token_pieces};
use tinylm_engine::trace::{CpuModel, PatchExample, PatchMaps, Patcher, PATCH_EXAMPLES};
use tinylm_engine::{Error, Result, Tokenizer};

use crate::{load, out};

#[derive(clap::Args)]
pub struct Args {
    /// Model: llama2.c checkpoint (v0, v1 or v2), GGUF file or Hugging Face folder.
    #[arg(required_unless_present = "list")]
    pub model: Option<PathBuf>,
    /// tokenizer.bin or tokenizer.json with the model's vocabulary (default: the model's own).
    #[arg(short = 'z', long)]
    pub tokenizer: Option<PathBuf>,
    /// A ready-made example (see --list).
    #[arg(long, conflicts_with_all = ["clean", "corrupt", "clean_answer", "corrupt_answer"])]
    pub example: Option<String>,
    /// The clean prompt (its answer is --clean-answer).
    #[arg(long, requires_all = ["corrupt", "clean_answer", "corrupt_answer"])]
    pub clean: Option<String>,
    /// The corrupted prompt: as many tokens as the clean one, a word changed.
    #[arg(long, requires = "clean")]
    pub corrupt: Option<String>,
    /// The answer the clean prompt favours; one token once encoded (e.g. "she").
    #[arg(long, requires = "clean")]
    pub clean_answer: Option<String>,
    /// The answer the corrupted prompt favours (e.g. "he").
    #[arg(long, requires = "clean")]
    pub corrupt_answer: Option<String>,
    /// List the ready-made examples.
    #[arg(long)]
    pub list: bool,
    /// A PEFT LoRA adapter directory, applied unmerged.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Write one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<()> {
    if a.list {
        let mut s = String::new();
        for e in PATCH_EXAMPLES {
            s += &format!(
                "{}: {:?} vs {:?}, answers {:?} / {:?}\n  {}\n",
                e.name, e.clean, e.corrupt, e.clean_answer, e.corrupt_answer, e.about
            );
        }
        return out::write(s.as_bytes()).map(|_| ());
    }
    let Some(model) = &a.model else {
        return Err(Error::InvalidSetting("give the model (and --tokenizer unless it has one)".into()));
    };
    let ex = example(&a)?;
    let mut m = load::tokenizer_or_own(load::model(model)?, a.tokenizer.as_deref())?;
    load::use_adapter(&mut m, a.adapter.as_deref())?;
    let tok = m.need_tokenizer()?;
    let (clean, corrupt) = (tok.encode(&ex.clean, true, false), tok.encode(&ex.corrupt, true, false));
    let answers = (one_token(tok, &ex.clean_answer, "--clean-answer")?, one_token(tok, &ex.corrupt_answer, "--corrupt-answer")?);
    let maps = Patcher::run(
        &CpuModel::adapted(m.forward_weights(), m.adapter().map(|a| a.as_ref()))?,
        &clean,
        &corrupt,
        answers.0,
        answers.1,
    )?;
    if a.json {
        return out::line(&to_json(model, &ex, tok, &maps).to_string());
    }
    out::write(human(&ex, tok, &maps).as_bytes()).map(|_| ())
}

/// The prompts and answers, from --example or the flags.
struct Example {
    name: Option<String>,
    clean: String,
    corrupt: String,
    clean_answer: String,
    corrupt_answer: String,
}

fn example(a: &Args) -> Result<Example> {
    let own = |e: &PatchExample| Example {
        name: Some(e.name.into()),
        clean: e.clean.into(),
        corrupt: e.corrupt.into(),
        clean_answer: e.clean_answer.into(),
        corrupt_answer: e.corrupt_answer.into(),
    };
    match (&a.example, &a.clean, &a.corrupt, &a.clean_answer, &a.corrupt_answer) {
        (Some(name), ..) => PATCH_EXAMPLES.iter().find(|e| e.name == name).map(own).ok_or_else(|| {
            let names: Vec<&str> = PATCH_EXAMPLES.iter().map(|e| e.name).collect();
            Error::InvalidSetting(format!("no example `{name}`; there are {}", names.join(", ")))
        }),
        (None, Some(c), Some(x), Some(ca), Some(xa)) => {
            Ok(Example { name: None, clean: c.clone(), corrupt: x.clone(), clean_answer: ca.clone(), corrupt_answer: xa.clone() })
        }
        _ => Err(Error::InvalidSetting("give --example NAME, or --clean, --corrupt, --clean-answer and --corrupt-answer".into())),
    }
}

/// The one token `text` encodes to (with the tokenizer's leading space, as after a word).
fn one_token(tok: &Tokenizer, text: &str, flag: &str) -> Result<u32> {
    match tok.encode(text, false, false)[..] {
        [id] => Ok(id),
        ref ids => {
            let pieces: Vec<String> =
                ids.iter().map(|&i| format!("{:?}", tok.piece(i).map(raw_readable).unwrap_or_default())).collect();
            Err(Error::InvalidSetting(format!(
                "{flag} {text:?} is {} tokens ({}); give a word that is one token",
                ids.len(),
                pieces.join(" ")
            )))
        }
    }
}

fn piece(tok: &Tokenizer, id: u32) -> String {
    tok.piece(id).map(raw_readable).unwrap_or_default()
}

fn to_json(model: &std::path::Path, ex: &Example, tok: &Tokenizer, m: &PatchMaps) -> Value {
    let (l, h, t) = (m.n_layers, m.n_heads, m.len());
    let rec = |v: f32| m.recovered(v);
    let resid: Vec<Vec<f32>> = (0..l).map(|li| (0..t).map(|ti| m.resid_at(li, ti)).collect()).collect();
    let heads: Vec<Vec<Vec<f32>>> =
        (0..l).map(|li| (0..h).map(|hi| (0..t).map(|ti| m.heads_at(li, hi, ti)).collect()).collect()).collect();
    let map_rec =
        |rows: &Vec<Vec<f32>>| -> Vec<Vec<Option<f32>>> { rows.iter().map(|r| r.iter().map(|&v| rec(v)).collect()).collect() };
    json!({
        "model": load::name(model),
        "example": ex.name,
        "clean": {"text": ex.clean, "tokens": m.clean, "pieces": token_pieces(tok, &m.clean)},
        "corrupt": {"text": ex.corrupt, "tokens": m.corrupt, "pieces": token_pieces(tok, &m.corrupt)},
        "clean_answer": {"id": m.clean_answer, "piece": piece(tok, m.clean_answer)},
        "corrupt_answer": {"id": m.corrupt_answer, "piece": piece(tok, m.corrupt_answer)},
        "clean_diff": m.clean_diff,
        "corrupt_diff": m.corrupt_diff,
        "layers": l,
        "heads_per_layer": h,
        "resid": resid,
        "resid_recovered": map_rec(&resid),
        "heads": heads,
        "heads_recovered": heads.iter().map(map_rec).collect::<Vec<_>>(),
    })
}

/// The maps as tables of the recovered percentage, the tokens as columns.
fn human(ex: &Example, tok: &Tokenizer, m: &PatchMaps) -> String {
    let (l, h, t) = (m.n_layers, m.n_heads, m.len());
    let (ca, xa) = (piece(tok, m.clean_answer), piece(tok, m.corrupt_answer));
    let mut s = format!(
        "clean:   {:?}\ncorrupt: {:?}\nlogit({ca:?}) - logit({xa:?}) at the last position: clean {:.4}, corrupted {:.4}\n",
        ex.clean, ex.corrupt, m.clean_diff, m.corrupt_diff
    );
    let Some(_) = m.recovered(m.clean_diff) else {
        return s + "the two prompts give the same difference: nothing to recover\n";
    };
    let pct = |v: f32| m.recovered(v).map_or("   -".into(), |r| format!("{:4.0}", 100.0 * r));
    let pieces = token_pieces(tok, &m.corrupt);
    s += "how much of the clean difference comes back (%), patching the clean residual after each layer:\n      ";
    s += &pieces.iter().map(|p| format!("{:>6}", truncate(p))).collect::<String>();
    for li in 0..l {
        s += &format!("\nL{li:<4} ");
        s += &(0..t).map(|ti| format!("{:>6}", pct(m.resid_at(li, ti)))).collect::<String>();
    }
    s += "\npatching one head's clean output (heads that bring back at least 10% somewhere):\n      ";
    s += &pieces.iter().map(|p| format!("{:>6}", truncate(p))).collect::<String>();
    let mut hidden = 0;
    for li in 0..l {
        for hi in 0..h {
            let row: Vec<f32> = (0..t).map(|ti| m.heads_at(li, hi, ti)).collect();
            if row.iter().all(|&v| m.recovered(v).is_none_or(|r| r.abs() < 0.1)) {
                hidden += 1;
                continue;
            }
            s += &format!("\n{:<5} ", format!("{li}.{hi}"));
            s += &row.iter().map(|&v| format!("{:>6}", pct(v))).collect::<String>();
        }
    }
    s + &format!("\n({hidden} heads below 10% everywhere not shown)\n")
}

fn truncate(p: &str) -> String {
    p.chars().take(5).collect()
}
