//! `tinylm inspect` against the run.c fixtures (stories260K_attention.safetensors, the greedy ids
//! of stories260K_reference.json), `tinylm logits` and the engine's sampler.

use crate::common;
use common::*;
use serde_json::Value;
use tinylm_engine::sampler::{softmax, topp_keep};
use tinylm_engine::Sampler;

const FIXTURE: &str = "reference/stories260K_attention.safetensors";

/// The fixture's 16 input ids (BOS + 15 greedy tokens) and the greedy run they come from.
fn greedy() -> Vec<u32> {
    ids(&reference_json()["greedy_empty_prompt_256_steps"]["ids"])
}

fn id_list(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn inspect(extra: &[&str]) -> Value {
    let (m, z) = (model().display().to_string(), tok512().display().to_string());
    let mut args = vec!["inspect", &m, "-z", &z, "--json"];
    args.extend(extra);
    serde_json::from_slice(&ok(&args)).unwrap()
}

fn fixture_inspect(extra: &[&str]) -> Value {
    let ids = id_list(&greedy()[..16]);
    let mut args = vec!["--ids", &ids];
    args.extend(extra);
    inspect(&args)
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// `tinylm logits` rows `[16, 512]` for the fixture ids.
fn logits_rows() -> Vec<Vec<f32>> {
    let out = scratch("inspect-logits").join("l.safetensors");
    let ids = id_list(&greedy()[..16]);
    ok(&["logits", &model().display().to_string(), "--tokens", &ids, "-o", &out.display().to_string()]);
    let (shape, v) = tensor(&std::fs::read(out).unwrap(), "logits");
    v.chunks(shape[1]).map(<[f32]>::to_vec).collect()
}

#[test]
fn last_layer_lens_top1_is_the_greedy_next_token() {
    let g = greedy();
    let j = fixture_inspect(&["--top", "3"]);
    let layers = j["shape"]["layers"].as_u64().unwrap() as usize;
    let positions = j["positions"].as_array().unwrap();
    assert_eq!(positions.len(), 16);
    for (t, p) in positions.iter().enumerate() {
        assert_eq!(p["position"], t);
        assert_eq!(p["token"], g[t]);
        let lens = p["logit_lens"].as_array().unwrap();
        assert_eq!(lens.len(), layers);
        assert_eq!(lens[layers - 1][0]["id"], g[t + 1], "position {t}");
        assert_eq!(j["logit_lens"][layers - 1][t]["id"], g[t + 1], "position {t}");
        assert_eq!(p["next_token"]["top"][0]["id"], g[t + 1], "position {t}");
    }
}

#[test]
fn next_token_probabilities_are_the_softmax_of_the_logits() {
    let rows = logits_rows();
    let j = fixture_inspect(&["--top", "8", "-t", "1", "-p", "0"]);
    for (t, row) in rows.iter().enumerate() {
        let max = row.iter().fold(f64::MIN, |m, &x| m.max(x as f64));
        let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
        let top = j["positions"][t]["next_token"]["top"].as_array().unwrap();
        assert_eq!(top.len(), 8);
        let mut prev = f64::MAX;
        for c in top {
            let id = c["id"].as_u64().unwrap() as usize;
            let want = (row[id] as f64 - max).exp() / sum;
            let got = c["prob"].as_f64().unwrap();
            assert!((got - want).abs() <= 1e-6, "position {t} id {id}: {got} vs {want}");
            assert!(got <= prev, "position {t}: not in descending order");
            prev = got;
            // No cut at top-p 0: the sampler draws with the model's own probabilities.
            assert!(c["kept"].as_bool().unwrap() && (c["reshaped"].as_f64().unwrap() - got).abs() <= 1e-6);
        }
        // Nothing outside the top 8 beats its last entry.
        let better = row.iter().filter(|&&x| (x as f64 - max).exp() / sum > prev + 1e-7).count();
        assert!(better <= 8, "position {t}: {better} tokens beat the list's last");
    }
}

#[test]
fn top_p_keeps_the_samplers_set() {
    let (temp, topp) = (2.0f32, 0.6f32);
    let rows = logits_rows();
    let j = fixture_inspect(&["--top", "512", "-t", "2", "-p", "0.6"]);
    let mut several = 0;
    for (t, row) in rows.iter().enumerate() {
        let mut probs: Vec<f32> = row.iter().map(|&l| l / temp).collect();
        softmax(&mut probs);
        let mut set = Vec::new();
        let (count, mass) = topp_keep(&probs, topp, &mut set);
        let mut want: Vec<u32> = set[..count].iter().map(|&(i, _)| i).collect();
        want.sort_unstable();
        let next = &j["positions"][t]["next_token"];
        let top = next["top"].as_array().unwrap();
        assert_eq!(top.len(), 512);
        let mut kept: Vec<u32> = top.iter().filter(|c| c["kept"] == true).map(|c| c["id"].as_u64().unwrap() as u32).collect();
        kept.sort_unstable();
        assert_eq!(kept, want, "position {t}");
        assert_eq!(next["kept"], count);
        assert!((next["kept_mass"].as_f64().unwrap() - mass as f64).abs() <= 1e-6);
        // Hand-computed: the kept ones are the likeliest whose sum first passes top-p.
        let mut sorted: Vec<f64> = probs.iter().map(|&p| p as f64).collect();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let (mut cum, mut n) = (0.0, 0);
        while cum <= topp as f64 {
            cum += sorted[n];
            n += 1;
        }
        assert_eq!(n, count, "position {t}: cumulative sums");
        let reshaped: f64 = top.iter().map(|c| c["reshaped"].as_f64().unwrap()).sum();
        assert!((reshaped - 1.0).abs() <= 1e-5, "position {t}: reshaped sums to {reshaped}");
        // The sampler itself never draws outside the kept set.
        let mut s = Sampler::new(temp, topp, t as u64 + 1).unwrap();
        for _ in 0..200 {
            let id = s.sample(&mut row.clone());
            assert!(want.binary_search(&id).is_ok(), "position {t}: sampled {id} outside the kept set");
        }
        several += usize::from(count > 1);
    }
    assert!(several >= 3, "the test should see real cuts, not only argmax");
}

#[test]
fn an_adapter_changes_the_odds_as_logits_does() {
    let dir = data("reference/stories260K_lora_qv_r4/adapter_final").display().to_string();
    let out = scratch("inspect-adapter").join("l.safetensors");
    let ids = id_list(&greedy()[..8]);
    ok(&["logits", &model().display().to_string(), "--tokens", &ids, "--adapter", &dir, "-o", &out.display().to_string()]);
    let (shape, v) = tensor(&std::fs::read(out).unwrap(), "logits");
    let j = inspect(&["--ids", &ids, "--adapter", &dir, "--top", "1"]);
    let base = inspect(&["--ids", &ids, "--top", "1"]);
    let prob = |j: &Value, t: usize| j["positions"][t]["next_token"]["top"][0]["prob"].as_f64().unwrap();
    assert!((0..8).any(|t| (prob(&j, t) - prob(&base, t)).abs() > 1e-3), "the adapter changed nothing");
    for (t, row) in v.chunks(shape[1]).enumerate() {
        let mut p = row.to_vec();
        softmax(&mut p);
        let best = p.iter().enumerate().fold(0, |b, (i, &x)| if x > p[b] { i } else { b });
        let top = &j["positions"][t]["next_token"]["top"][0];
        assert_eq!(top["id"], best, "position {t}");
        assert!((top["prob"].as_f64().unwrap() - p[best] as f64).abs() <= 1e-6, "position {t}");
    }
}

#[test]
fn rollout_rows_sum_to_one() {
    let j = fixture_inspect(&[]);
    for (t, row) in j["rollout_last_layer"].as_array().unwrap().iter().enumerate() {
        let row = f32s(row);
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() <= 1e-5, "row {t} sums to {sum}");
        assert!(row[t + 1..].iter().all(|&x| x == 0.0), "row {t} looks ahead");
        assert_eq!(f32s(&j["positions"][t]["rollout"]), row);
    }
}

#[test]
fn one_heads_attention_equals_run_c() {
    let fixture = std::fs::read(data(FIXTURE)).unwrap();
    let (shape, attn) = tensor(&fixture, "llama2c.attn");
    let (h, n) = (shape[1], shape[2]);
    for (l, hd) in [(0usize, 0usize), (2, 5), (4, 7)] {
        let (ls, hs) = (l.to_string(), hd.to_string());
        let j = fixture_inspect(&["--layer", &ls, "--head", &hs]);
        assert_eq!((j["layer"].as_u64(), j["head"].as_u64()), (Some(l as u64), Some(hd as u64)));
        for t in 0..n {
            let at = ((l * h + hd) * n + t) * n;
            let want = &attn[at..at + n];
            let d = max_diff(&f32s(&j["positions"][t]["attention"]), want);
            assert!(d <= 1e-5, "layer {l} head {hd} row {t}: {d}");
            assert!(max_diff(&f32s(&j["attention_head"][t]), want) <= 1e-5);
        }
    }
}

#[test]
fn one_position_and_text_input() {
    let j = inspect(&["-i", "Once upon a time", "--position", "2", "--top", "2"]);
    assert_eq!(j["tokens"], serde_json::json!([1, 403, 407, 261, 378]));
    assert_eq!(j["pieces"][2], " upon");
    assert_eq!(j["positions"].as_array().unwrap().len(), 1);
    assert_eq!(j["next_token"]["position"], 2);
    assert_eq!(j["logit_lens_positions"], serde_json::json!([2]));
    assert!(j["logit_lens"][0][0].is_null() && j["logit_lens"][0][2]["id"].is_u64());
    // Line breaks and blanks read as the Inspect view shows them.
    let j = inspect(&["-i", "Hi\nthere é", "--top", "1"]);
    assert_eq!(j["pieces"], serde_json::json!(["<s>", "H", "i", "↵", "t", "he", "re", "␣", "é"]));
}

#[test]
fn text_output_marks_kept_and_cut() {
    let (m, z) = (model().display().to_string(), tok512().display().to_string());
    let out = String::from_utf8(ok(&["inspect", &m, "-z", &z, "-i", "Once upon a time", "--layer", "1", "--head", "2"])).unwrap();
    for want in ["next token after position 4", "\",\"", "kept", "cut", "logit lens", "rollout", "attention layer 1 head 2"] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[test]
fn bad_arguments_are_refused_by_name() {
    let (m, z) = (model().display().to_string(), tok512().display().to_string());
    let llama = data("tokenizers/llama2/tokenizer.bin").display().to_string();
    let base = ["inspect", m.as_str(), "-z", z.as_str()];
    let cases: [(&[&str], &str); 9] = [
        (&["--ids", "1,403", "--position", "2"], "--position 2"),
        (&["--ids", "1,403", "--layer", "5", "--head", "0"], "--layer 5"),
        (&["--ids", "1,403", "--layer", "0", "--head", "8"], "--head 8"),
        (&["-i", ""], "empty"),
        (&["--ids", ""], "empty"),
        (&["--ids", "1,x"], "`x`"),
        (&["--ids", "1,403", "-p", "2"], "top-p"),
        (&["--ids", "1,403", "--layer", "0"], "--head"),
        (&["--ids", "1,403", "--top", "0"], "--top 0"),
    ];
    for (extra, want) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let err = fails(&args);
        assert!(err.contains(want), "{extra:?}: {err}");
    }
    let err = fails(&["inspect", &m, "-z", &llama, "--ids", "1"]);
    assert!(err.contains("tokenizer.bin"), "{err}");
}
