//! `tinylm inspect`: the Inspect view's figures for a text, on the command line: the tokens,
//! the next-token distribution before and after the sampler's settings, the logit lens, the
//! attention rollout and (asked for) one head's attention. `--json` writes them with the field
//! names of the view's JSON export (cli/README.md). With knock-outs or steering the figures are
//! the changed model's, and `changes` says how the next-token odds moved at each position.

use std::path::PathBuf;

use serde_json::{json, Value};
use tinylm_engine::generate::Backend;
use tinylm_engine::trace::pieces::{raw_readable, token_pieces};
use tinylm_engine::trace::{changes, inspect, lens_top_k, next_tokens, rollout, Change, Edits, Inspection, NextTokens, Top1};
use tinylm_engine::{Error, Result};

use super::logits::parse_tokens;
use crate::{backend, intervene, load, out};
use tinylm_engine::gpu::{AnyBackend, GpuOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Model: llama2.c checkpoint (v0, v1 or v2), GGUF file or Hugging Face folder.
    pub model: PathBuf,
    /// tokenizer.bin or tokenizer.json with the model's vocabulary, for the text and the pieces
    /// (default: the model's own).
    #[arg(short = 'z', long)]
    pub tokenizer: Option<PathBuf>,
    /// Text to inspect (encoded with BOS first).
    #[arg(short = 'i', long, required_unless_present = "ids", conflicts_with = "ids")]
    pub prompt: Option<String>,
    /// Token ids instead of text, BOS included ("1,403,407").
    #[arg(long)]
    pub ids: Option<String>,
    /// cpu, gpu (one batched inspection pass) or auto.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// A PEFT LoRA adapter directory; unmerged on the CPU, merged into the weights on the GPU.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Write one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Temperature of the next-token view (0 is greedy).
    #[arg(short = 't', long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Top-p of the next-token view, in [0, 1] (0 or 1: no cut).
    #[arg(short = 'p', long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub topp: f32,
    /// Candidates shown per position (next token and logit lens).
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// The one position to show (0-based); all by default (text: the next-token table for the last).
    #[arg(long)]
    pub position: Option<usize>,
    /// Layer (0-based) of the attention to show; needs --head.
    #[arg(long, requires = "head")]
    pub layer: Option<usize>,
    /// Head (0-based) of the attention to show; needs --layer.
    #[arg(long, requires = "layer")]
    pub head: Option<usize>,
    /// Knock-outs and steering: the figures are the changed model's; `changes` compares.
    #[command(flatten)]
    pub edit: intervene::Flags,
}

/// The figures of one position.
struct At {
    t: usize,
    next: NextTokens,
    /// `[L]` of the top-K (id, probability), likeliest first.
    lens: Vec<Vec<Top1>>,
    /// Last layer's rollout row `[T]`.
    rollout: Vec<f32>,
    /// The chosen head's attention row `[T]`.
    attention: Option<Vec<f32>>,
}

struct Report {
    backend: String,
    ins: Inspection,
    pieces: Vec<String>,
    vocab: Vec<String>,
    at: Vec<At>,
    /// The chosen (layer, head) and its `[T, T]` attention.
    head: Option<(usize, usize, Vec<f32>)>,
    /// Last layer's rollout `[T, T]`.
    rollout: Vec<f32>,
    /// What was changed (JSON) and how the next-token odds moved.
    change: Option<(Value, Vec<Change>)>,
}

pub fn run(a: Args) -> Result<()> {
    let r = report(&a)?;
    if a.json {
        out::line(&to_json(&a, &r).to_string())
    } else {
        out::write(human(&a, &r).as_bytes()).map(|_| ())
    }
}

fn report(a: &Args) -> Result<Report> {
    if a.top == 0 {
        return Err(Error::InvalidSetting("--top 0 shows nothing; give 1 or more".into()));
    }
    let mut model = load::tokenizer_or_own(load::model(&a.model)?, a.tokenizer.as_deref())?;
    let tokens = match (&a.ids, &a.prompt) {
        (Some(ids), _) => parse_tokens(ids)?,
        (None, Some(text)) if text.is_empty() => {
            return Err(Error::InvalidSetting("nothing to inspect: the text is empty".into()))
        }
        (None, Some(text)) => model.need_tokenizer()?.encode(text, true, false),
        _ => return Err(Error::InvalidSetting("give --prompt or --ids".into())),
    };
    load::use_adapter(&mut model, a.adapter.as_deref())?;
    let tok = model.need_tokenizer()?;
    let mut edits = None;
    if !a.edit.is_none() {
        let plan = a.edit.plan(&model)?;
        let strength = plan.single_strength()?;
        let means = plan.means(&model, &tokens)?;
        let e = Edits::new(model.config(), &plan.intervention(strength), means.as_ref())?;
        edits = Some((e, plan.to_json(plan.steer.is_some().then_some(strength))));
    }
    let (opened, why) = backend::open(&model, &a.backend, GpuOptions::default())?;
    let mut backend = opened.backend;
    let mut ins = inspect_on(&mut backend, &tokens)?;
    let mut change = None;
    if let Some((e, about)) = edits {
        backend.set_edits(Some(&e))?;
        let after = inspect_on(&mut backend, &tokens)?;
        change = Some((about, changes(&ins, &after)?));
        ins = after;
    }
    let c = ins.config;
    let (n, last) = (ins.len(), c.n_layers - 1);
    let positions = match a.position {
        Some(t) if t >= n => {
            return Err(Error::InvalidSetting(format!(
                "--position {t} is past the last token (the text has {n} tokens: 0..{})",
                n - 1
            )))
        }
        Some(t) => vec![t],
        None => (0..n).collect(),
    };
    let head = match (a.layer, a.head) {
        (Some(l), _) if l >= c.n_layers => {
            return Err(Error::InvalidSetting(format!("--layer {l}: the model has {} layers (0..{last})", c.n_layers)))
        }
        (_, Some(h)) if h >= c.n_heads => {
            return Err(Error::InvalidSetting(format!("--head {h}: the model has {} heads (0..{})", c.n_heads, c.n_heads - 1)))
        }
        (Some(l), Some(h)) => Some((l, h, (0..n).flat_map(|t| ins.attn_row(l, h, t).to_vec()).collect::<Vec<f32>>())),
        _ => None,
    };
    let roll = rollout(&ins).split_off(last * n * n);
    let lens_head = model.lens_head();
    let at = positions
        .into_iter()
        .map(|t| {
            Ok(At {
                t,
                next: next_tokens(ins.logits_at(t), a.temperature, a.topp, a.top)?,
                lens: lens_top_k(&lens_head, &ins, t, a.top)?,
                rollout: roll[t * n..(t + 1) * n].to_vec(),
                attention: head.as_ref().map(|(_, _, m)| m[t * n..(t + 1) * n].to_vec()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let vocab = (0..c.vocab_size as u32).map(|i| tok.piece(i).map(raw_readable).unwrap_or_default()).collect();
    Ok(Report { backend: why, pieces: token_pieces(tok, &ins.tokens), vocab, ins, at, head, rollout: roll, change })
}

fn inspect_on(backend: &mut AnyBackend, tokens: &[u32]) -> Result<Inspection> {
    match backend.gpu() {
        Some(g) => g.inspect(tokens),
        None => inspect(backend, tokens),
    }
}

/// How the odds moved, for JSON: per position the next token's probability and rank before
/// and after, the likeliest token before and after, and the KL divergence.
fn changes_json(r: &Report, about: &Value, ch: &[Change]) -> Value {
    let top = |x: &Top1| json!({"id": x.id, "piece": r.vocab[x.id as usize], "prob": x.prob});
    let rows: Vec<Value> = ch
        .iter()
        .map(|c| {
            json!({
                "position": c.position,
                "next": c.next.map(|id| json!({"id": id, "piece": r.vocab[id as usize]})),
                "prob_before": c.before.map(|o| o.prob),
                "prob_after": c.after.map(|o| o.prob),
                "rank_before": c.before.map(|o| o.rank),
                "rank_after": c.after.map(|o| o.rank),
                "top_before": top(&c.top_before),
                "top_after": top(&c.top_after),
                "kl": c.kl,
            })
        })
        .collect();
    json!({"intervention": about, "changes": rows})
}

fn rows(m: &[f32], n: usize) -> Value {
    Value::Array(m.chunks(n.max(1)).map(|r| json!(r)).collect())
}

fn cand_json(r: &Report, next: &NextTokens, t: usize, a: &Args) -> Value {
    let top: Vec<Value> = next
        .top
        .iter()
        .map(|c| json!({"id": c.id, "piece": r.vocab[c.id as usize], "logit": c.logit, "prob": c.prob, "reshaped": c.reshaped, "kept": c.kept}))
        .collect();
    json!({"position": t, "temperature": a.temperature, "top_p": a.topp, "kept": next.kept, "kept_mass": next.kept_mass, "top": top})
}

fn to_json(a: &Args, r: &Report) -> Value {
    let (c, n) = (&r.ins.config, r.ins.len());
    let cell = |x: &Top1| json!({"id": x.id, "piece": r.vocab[x.id as usize], "prob": x.prob});
    // As the view's export: `logit_lens[l][t]` is the top 1, null at positions not shown.
    let lens: Vec<Value> = (0..c.n_layers)
        .map(|l| (0..n).map(|t| r.at.iter().find(|p| p.t == t).map_or(Value::Null, |p| cell(&p.lens[l][0]))).collect())
        .collect();
    let positions: Vec<Value> =
        r.at.iter()
            .map(|p| {
                json!({
                    "position": p.t,
                    "token": r.ins.tokens[p.t],
                    "piece": r.pieces[p.t],
                    "next_token": cand_json(r, &p.next, p.t, a),
                    "logit_lens": p.lens.iter().map(|l| l.iter().map(cell).collect::<Vec<_>>()).collect::<Vec<_>>(),
                    "rollout": p.rollout,
                    "attention": p.attention,
                })
            })
            .collect();
    let last = r.at.last().map(|p| cand_json(r, &p.next, p.t, a));
    let change = r.change.as_ref().map(|(about, ch)| changes_json(r, about, ch));
    json!({
        "model": load::name(&a.model),
        "backend": r.backend,
        "shape": {"layers": c.n_layers, "heads": c.n_heads, "tokens": n, "vocab": c.vocab_size},
        "tokens": r.ins.tokens,
        "pieces": r.pieces,
        "layer": r.head.as_ref().map(|h| h.0),
        "head": r.head.as_ref().map(|h| h.1),
        "attention_head": r.head.as_ref().map(|h| rows(&h.2, n)),
        "rollout_last_layer": rows(&r.rollout, n),
        "logit_lens": lens,
        "logit_lens_positions": r.at.iter().map(|p| p.t).collect::<Vec<_>>(),
        "next_token": last,
        "positions": positions,
        "intervention": change.as_ref().map(|c| c["intervention"].clone()),
        "changes": change.as_ref().map(|c| c["changes"].clone()),
    })
}

fn human(a: &Args, r: &Report) -> String {
    let mut s = format!("backend: {}\ntokens ({}):", r.backend, r.ins.len());
    for (t, (id, piece)) in r.ins.tokens.iter().zip(&r.pieces).enumerate() {
        s += &format!(" {t}:{id}:{piece:?}");
    }
    s += "\n";
    // The next-token table for the chosen position, or for the last one.
    if let Some(p) = r.at.last() {
        let v = &p.next;
        s += &format!(
            "next token after position {} (temperature {}, top-p {}: {} kept, mass {:.4}):\n  {:>5} {:>12} {:>9} {:>9}  kept\n",
            p.t, a.temperature, a.topp, v.kept, v.kept_mass, "id", "piece", "prob", "reshaped"
        );
        for c in &v.top {
            let mark = if c.kept { "kept" } else { "cut" };
            s += &format!(
                "  {:>5} {:>12} {:>9.6} {:>9.6}  {mark}\n",
                c.id,
                format!("{:?}", r.vocab[c.id as usize]),
                c.prob,
                c.reshaped
            );
        }
    }
    s += "logit lens (top 1 per layer: piece prob):\n";
    for p in &r.at {
        let layers: Vec<String> =
            p.lens.iter().enumerate().map(|(l, k)| format!("L{l} {:?} {:.3}", r.vocab[k[0].id as usize], k[0].prob)).collect();
        s += &format!("  {:>3} {:>10}  {}\n", p.t, format!("{:?}", r.pieces[p.t]), layers.join("  "));
    }
    s += "rollout (last layer, row per position):\n";
    s += &rows_text(r.at.iter().map(|p| (p.t, &p.rollout)));
    if let Some((l, h, _)) = &r.head {
        s += &format!("attention layer {l} head {h} (row per position):\n");
        s += &rows_text(r.at.iter().filter_map(|p| p.attention.as_ref().map(|row| (p.t, row))));
    }
    if let Some((about, ch)) = &r.change {
        s += &format!("changed: {} (the figures above are the changed model's)\n", about["description"].as_str().unwrap_or(""));
        s += "what moved (next token: probability before -> after; likeliest before -> after; KL):\n";
        for c in ch {
            let next = c.next.map_or("(end)".to_string(), |id| format!("{:?}", r.vocab[id as usize]));
            let prob = match (c.before, c.after) {
                (Some(b), Some(a)) => format!("{:.3} -> {:.3}", b.prob, a.prob),
                _ => "-".into(),
            };
            let (tb, ta) = (&r.vocab[c.top_before.id as usize], &r.vocab[c.top_after.id as usize]);
            s += &format!("  {:>3} {next:>10} {prob:>15}  {tb:?} -> {ta:?}  {:.4}\n", c.position, c.kl);
        }
    }
    s
}

fn rows_text<'a>(rows: impl Iterator<Item = (usize, &'a Vec<f32>)>) -> String {
    rows.map(|(t, row)| {
        let cells: Vec<String> = row[..=t].iter().map(|x| format!("{x:.3}")).collect();
        format!("  {t:>3}  {}\n", cells.join(" "))
    })
    .collect()
}
