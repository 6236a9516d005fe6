//! GGUF files and Hugging Face folders against transformers (fixtures in
//! tests/fixtures/formats, made by its make_fixtures.py): logits on the CPU reference and fast
//! paths, greedy tokens, the models' tokenizers; the GPU path (lavapipe); and the readers'
//! refusals; knock-outs, steering and patching on a model whose q is wider than its residual.
#![cfg(not(target_arch = "wasm32"))]

use crate::common;

use std::path::PathBuf;

use common::{max_abs, max_diff, tensor};
use tinylm_engine::cpu::{self, CpuBackend, Kernels, State};
use tinylm_engine::generate::Backend;
use tinylm_engine::gpu::{GpuBackend, GpuOptions};
use tinylm_engine::sampler::argmax;
use tinylm_engine::trace::{Ablation, CpuModel, Edits, HeadId, HeadMeans, HeadMeansRun, Hook, Intervention, Patcher, Steer};
use tinylm_engine::{Error, LoadedModel, NamedFile, Weights};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats")
}

fn read(rel: &str) -> Vec<u8> {
    let p = dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file of a fixture folder (or the one GGUF file), as named buffers.
fn files(rel: &str) -> Vec<(String, Vec<u8>)> {
    let p = dir().join(rel);
    if p.is_dir() {
        let mut v: Vec<_> = std::fs::read_dir(&p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|f| (f.display().to_string(), std::fs::read(&f).unwrap()))
            .collect();
        v.sort();
        v
    } else {
        vec![(p.display().to_string(), read(rel))]
    }
}

/// A fixture through `LoadedModel::open`, as every front end opens models.
fn open(rel: &str) -> Result<LoadedModel, Error> {
    let f = files(rel);
    let named: Vec<(&str, &[u8])> = f.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    open_named(&named)
}

fn open_named(files: &[(&str, &[u8])]) -> Result<LoadedModel, Error> {
    let named: Vec<NamedFile> = files.iter().map(|&(n, b)| NamedFile::new(n, b)).collect();
    LoadedModel::open(&named)
}

fn logits_of(k: Kernels, w: &Weights, tokens: &[u32]) -> Vec<f32> {
    let mut s = State::new(&w.config);
    tokens.iter().enumerate().flat_map(|(pos, &t)| cpu::forward_with(k, w, &mut s, t, pos, None).unwrap().to_vec()).collect()
}

fn greedy(w: &Weights, tokens: &[u32], n: usize) -> Vec<u32> {
    let mut s = State::new(&w.config);
    let mut out = Vec::new();
    let mut last = Vec::new();
    for (pos, &t) in tokens.iter().enumerate() {
        last = cpu::forward(w, &mut s, t, pos, None).unwrap().to_vec();
    }
    for pos in tokens.len()..tokens.len() + n {
        let next = argmax(&last) as u32;
        out.push(next);
        last = cpu::forward(w, &mut s, next, pos, None).unwrap().to_vec();
    }
    out
}

/// (fixture, reference) pairs: every model file made by make_fixtures.py.
const CASES: [(&str, &str); 13] = [
    ("hf/gqa_untied", "gqa_untied"),
    ("hf/mha_tied_bf16", "mha_tied_bf16"),
    ("hf/llama3_headdim", "llama3_headdim"),
    ("hf/llama3_headdim_f16", "llama3_headdim_f16"),
    ("gguf/gqa_untied.f32.gguf", "gqa_untied.f32.gguf"),
    ("gguf/gqa_untied.f16.gguf", "gqa_untied.f16.gguf"),
    ("gguf/gqa_untied.bf16.gguf", "gqa_untied.bf16.gguf"),
    ("gguf/mha_tied.f32.gguf", "mha_tied.f32.gguf"),
    ("gguf/llama3_headdim.f32.gguf", "llama3_headdim.f32.gguf"),
    ("gguf/quant.q8_0.gguf", "quant.q8_0.gguf"),
    ("gguf/quant.q4_0.gguf", "quant.q4_0.gguf"),
    ("gguf/quant.q4_k_m.gguf", "quant.q4_k_m.gguf"),
    // Q5_0, Q5_1 and Q4_1: llama.cpp's fallbacks for rows that are not whole super-blocks.
    ("gguf/quant.q5_mix.gguf", "quant.q5_mix.gguf"),
];

/// The CPU tolerance, 1e-5·max(1, max|logit|). Measured over these fixtures: 1.2e-6 to
/// 5.0e-6 (worst: Q4_K_M, fast kernels) — f32 sums in another order than torch's.
const CPU_TOL: f32 = 1e-5;

#[test]
fn logits_and_greedy_tokens_match_transformers() {
    for (rel, reference) in CASES {
        let m = open(rel).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let r = read(&format!("reference/{reference}.safetensors"));
        let tokens: Vec<u32> = tensor(&r, "tokens").1.iter().map(|&t| t as u32).collect();
        let (_, want) = tensor(&r, "logits");
        let tok = m.tokenizer().unwrap_or_else(|| panic!("{rel} carries its tokenizer"));
        let prompt = "Once upon a time, there was a little robot who";
        assert_eq!(tok.encode(prompt, true, false), tokens, "{rel}: prompt encoding");
        let scale = max_abs(&want).max(1.0);
        for k in [Kernels::Reference, Kernels::Fast] {
            let got = logits_of(k, m.weights(), &tokens);
            let err = max_diff(&got, &want) / scale;
            assert!(err <= CPU_TOL, "{rel} {k:?}: max error {err:e} (relative)");
        }
        let want_greedy: Vec<u32> = tensor(&r, "greedy").1.iter().map(|&t| t as u32).collect();
        assert_eq!(greedy(m.weights(), &tokens, want_greedy.len()), want_greedy, "{rel}: greedy tokens");
    }
}

#[test]
fn configs_read_both_transformers_layouts() {
    // transformers 4 keys (rope_theta, rope_scaling) and 5 keys (rope_parameters), and GGUF's
    // key_length + rope_freqs, all give the same model shape and RoPE frequencies.
    let a = *open("hf/llama3_headdim").unwrap().config();
    let b = *open("hf/llama3_headdim_f16").unwrap().config();
    let g = *open("gguf/llama3_headdim.f32.gguf").unwrap().config();
    assert_eq!((a.head_dim, a.q_dim(), a.dim, a.n_kv_heads, a.rope_theta), (24, 96, 64, 1, 5e5));
    assert!(a.rope_scaling.is_some() && a == b);
    for (x, y) in g.rope_freqs().iter().zip(a.rope_freqs()) {
        assert!((x - y).abs() <= 1e-6 * y, "{x} vs {y}");
    }
    let t = *open("hf/mha_tied_bf16").unwrap().config();
    assert_eq!((t.rope_theta, t.norm_eps, t.shared_classifier, t.bos_id, t.eos_id), (1e5, 1e-6, true, 1, Some(2)));
    let u = *open("hf/gqa_untied").unwrap().config();
    assert_eq!((u.shared_classifier, u.n_heads, u.n_kv_heads, u.stop_token()), (false, 4, 2, 1));
}

#[test]
fn gguf_version_2_reads_as_3_and_others_are_refused() {
    let mut v = read("gguf/gqa_untied.f32.gguf");
    let three = open_named(&[("m.gguf", &v)]).unwrap().into_weights();
    v[4..8].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(open_named(&[("m.gguf", &v)]).unwrap().into_weights(), three);
    v[4..8].copy_from_slice(&1u32.to_le_bytes());
    let e = open_named(&[("m.gguf", &v)]).unwrap_err().to_string();
    assert!(e.contains("GGUF version 1 is not supported"), "{e}");
}

#[test]
fn bad_files_are_refused_in_words() {
    let v = read("gguf/quant.q4_k_m.gguf");
    for cut in [3, 10, 100, 5000, v.len() / 2, v.len() - 1] {
        let e = open_named(&[("m.gguf", &v[..cut])]).unwrap_err();
        assert!(matches!(e, Error::BadFile { .. }), "cut at {cut}: {e}");
    }
    let mut cfg: serde_json::Value = serde_json::from_slice(&read("hf/gqa_untied/config.json")).unwrap();
    cfg["architectures"] = serde_json::json!(["Qwen2ForCausalLM"]);
    let st = read("hf/gqa_untied/model.safetensors");
    let text = serde_json::to_vec(&cfg).unwrap();
    let e = open_named(&[("config.json", &text), ("model.safetensors", &st)]).unwrap_err().to_string();
    assert!(e.contains("Qwen2ForCausalLM is not a Llama model this lab can run"), "{e}");
    cfg["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
    cfg["hidden_size"] = serde_json::json!(96);
    let text = serde_json::to_vec(&cfg).unwrap();
    let e = open_named(&[("config.json", &text), ("model.safetensors", &st)]).unwrap_err().to_string();
    assert!(e.contains("has shape [384, 64]; config.json implies [384, 96]"), "{e}");
    cfg["hidden_size"] = serde_json::json!(64);
    cfg["rope_parameters"] = serde_json::json!({"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0});
    let text = serde_json::to_vec(&cfg).unwrap();
    let e = open_named(&[("config.json", &text), ("model.safetensors", &st)]).unwrap_err().to_string();
    assert!(e.contains("RoPE scaling `yarn` is not supported"), "{e}");
    // A shard the index names but the folder lacks.
    let f = files("hf/mha_tied_bf16");
    let named: Vec<(&str, &[u8])> =
        f.iter().filter(|(n, _)| !n.ends_with("00002-of-00003.safetensors")).map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let e = open_named(&named).unwrap_err().to_string();
    assert!(e.contains("names shard model-00002-of-00003.safetensors, which is missing"), "{e}");
}

#[test]
fn hf_q_and_k_rows_are_put_in_the_engines_rope_order() {
    // The same weights from the HF folder (rotate-half rows) and the GGUF (llama.cpp's
    // interleaved rows) must be identical once read.
    let hf = open("hf/gqa_untied").unwrap().into_weights();
    let gg = open("gguf/gqa_untied.f32.gguf").unwrap().into_weights();
    assert!(hf.wq == gg.wq && hf.wk == gg.wk, "q/k rows differ");
    assert!(hf == gg, "weights differ");
}

/// The GPU tolerance, 1e-4·max(1, max|logit|) (lavapipe). Measured: see the test output.
const GPU_TOL: f32 = 1e-4;

#[test]
fn gpu_logits_and_greedy_tokens_match_transformers() {
    for (rel, reference) in CASES {
        let m = open(rel).unwrap();
        let r = read(&format!("reference/{reference}.safetensors"));
        let tokens: Vec<u32> = tensor(&r, "tokens").1.iter().map(|&t| t as u32).collect();
        let (_, want) = tensor(&r, "logits");
        let scale = max_abs(&want).max(1.0);
        let mut g = GpuBackend::new(m.weights(), GpuOptions::default()).expect("a GPU adapter (lavapipe)");
        // Batched (prefill / inspect) path.
        let batched = g.inspect(&tokens).unwrap().logits;
        // One-row decode path (fused kernels where the shapes allow).
        let mut g = GpuBackend::new(m.weights(), GpuOptions::default()).unwrap();
        let decoded: Vec<f32> = tokens.iter().enumerate().flat_map(|(p, &t)| g.forward(t, p).unwrap().to_vec()).collect();
        for (path, got) in [("batched", batched), ("decode", decoded)] {
            let err = max_diff(&got, &want) / scale;
            println!("{rel} GPU {path}: max error {err:.2e} (relative)");
            assert!(err <= GPU_TOL, "{rel} GPU {path}: max error {err:e}");
        }
        let want_greedy: Vec<u32> = tensor(&r, "greedy").1.iter().map(|&t| t as u32).collect();
        let mut last = g.forward(*tokens.last().unwrap(), tokens.len() - 1).map(|l| l.to_vec());
        // Re-running the last position overwrites its cache row with the same values.
        let mut got = Vec::new();
        for pos in tokens.len()..tokens.len() + want_greedy.len() {
            let next = argmax(&last.unwrap()) as u32;
            got.push(next);
            last = g.forward(next, pos).map(|l| l.to_vec());
        }
        assert_eq!(got, want_greedy, "{rel}: GPU greedy tokens");
    }
}

#[test]
fn lora_trainer_runs_these_models_as_the_cpu_path() {
    // The trainer's batched forward (no adapter, reference kernels) equals cpu::forward's
    // reference bit for bit on models with head_dim ≠ dim / heads, llama3 scaling, rope_theta 1e5
    // and rms_norm_eps 1e-6 (the fast kernels within the CPU tolerance: measured ≤ 1.8e-6).
    use tinylm_engine::lora::{self, BaseBuf, Batch};
    for rel in ["hf/llama3_headdim", "hf/mha_tied_bf16", "gguf/quant.q4_k_m.gguf"] {
        let w = open(rel).unwrap().into_weights();
        let tokens: Vec<u32> = (0..10).map(|i| (i * 37 + 5) % w.config.vocab_size as u32).collect();
        let base = BaseBuf::<f32>::new(&w);
        let acts = lora::forward(&base.view(), None, &Batch::new(1, tokens.len(), tokens.clone()).unwrap()).unwrap();
        for k in [Kernels::Fast, Kernels::Reference] {
            let want = logits_of(k, &w, &tokens);
            let err = max_diff(&acts.logits, &want) / max_abs(&want).max(1.0);
            println!("{rel} {k:?}: trainer forward differs by {err:e}");
            match k {
                Kernels::Reference => assert!(acts.logits == want, "{rel}: trainer forward differs by {err:e}"),
                Kernels::Fast => assert!(err <= CPU_TOL, "{rel}: trainer forward differs by {err:e}"),
            }
        }
    }
}

#[test]
fn lora_gradients_match_central_differences_with_head_dim_and_llama3_rope() {
    // f64 gradients of every target on the llama3_headdim model (q 96 wide, dim 64, MQA),
    // against central differences, a sample of elements per module.
    use tinylm_engine::lora::{Adapter, BaseBuf, Batch, LoraConfig, Target};
    let w = open("hf/llama3_headdim").unwrap().into_weights();
    let base = BaseBuf::<f64>::new(&w);
    let base = base.view();
    let cfg = LoraConfig::new(2, 4.0, false, Target::ALL.to_vec()).unwrap();
    let ad = Adapter::<f64>::det(&w.config, cfg, 5, 0.3).unwrap();
    let tokens: Vec<u32> = (0..12).map(|i| (i * 53 + 11) % w.config.vocab_size as u32).collect();
    let batch = Batch::new(2, 6, tokens).unwrap();
    let worst = common::gradcheck::lora_central_differences(&base, &ad, &batch, Some(5), 1e-6);
    eprintln!("worst relative error: {worst:e}");
}

#[test]
fn gpu_lora_gradients_match_the_cpu_trainer_on_these_models() {
    // Loss and every A/B gradient of a GPU training step against the CPU trainer (f32), on
    // models with head_dim 24 and llama3 scaling, and with rms_norm_eps 1e-6 and theta 1e5.
    use tinylm_engine::gpu::{GpuTrainOptions, GpuTrainer};
    use tinylm_engine::lora::{self, Adapter, BaseBuf, Batch, LoraConfig, Target, TrainConfig};
    for rel in ["hf/llama3_headdim", "hf/mha_tied_bf16"] {
        let w = open(rel).unwrap().into_weights();
        let cfg = LoraConfig::new(4, 8.0, false, Target::ALL.to_vec()).unwrap();
        let ad = Adapter::<f32>::det(&w.config, cfg, 3, 0.2).unwrap();
        let tokens: Vec<u32> = (0..16).map(|i| (i * 29 + 3) % w.config.vocab_size as u32).collect();
        let batch = Batch::new(2, 8, tokens).unwrap();
        let base = BaseBuf::<f32>::new(&w);
        let (want_loss, want) = lora::loss_and_grads(&base.view(), &ad, &batch).unwrap();
        let mut g = GpuTrainer::new(&w, ad, TrainConfig::default(), GpuTrainOptions::default()).expect("lavapipe");
        let (loss, got) = g.loss_and_grads(&batch).unwrap();
        assert!((loss - want_loss).abs() <= 1e-5 * want_loss.abs(), "{rel}: loss {loss} vs {want_loss}");
        let mut worst = 0f32;
        for (a, b) in got.tensors().zip(want.tensors()) {
            let d = max_diff(a, b) / max_abs(b).max(f32::MIN_POSITIVE);
            worst = worst.max(d);
        }
        println!("{rel}: GPU gradients within {worst:.2e} of the CPU trainer's (relative)");
        // Measured ≤ 3.0e-6 (f32 sums in other orders on lavapipe); about ten times that.
        assert!(worst <= 3e-5, "{rel}: GPU gradients differ by {worst:e}");
    }
}

/// Adds each layer's head outputs (`[q_dim]`) over the positions run.
struct SumHeads {
    q: usize,
    sums: Vec<f64>,
}

impl Hook for SumHeads {
    fn heads(&mut self, l: usize, _pos: usize, o: &mut [f32]) {
        assert_eq!(o.len(), self.q, "the heads' outputs are n_heads · head_dim wide");
        for (s, &x) in self.sums[l * self.q..][..self.q].iter_mut().zip(o.iter()) {
            *s += x as f64;
        }
    }
}

/// Knock-outs, mean ablation, steering and patching on a model whose q (n_heads · head_dim = 96)
/// is wider than its residual (dim 64), on the CPU and the GPU.
#[test]
fn experiments_run_on_a_model_whose_q_is_wider_than_dim() {
    let m = open("hf/llama3_headdim").unwrap();
    let (w, c) = (m.weights(), *m.config());
    assert_eq!((c.q_dim(), c.dim), (96, 64));
    let tokens = m.tokenizer().unwrap().encode("Once upon a time, there was a little robot", true, false);
    let on = |b: &mut dyn Backend| -> Vec<f32> {
        tokens.iter().enumerate().flat_map(|(p, &t)| b.forward(t, p).unwrap().to_vec()).collect()
    };
    let cpu_with = |iv: &Intervention, means: Option<&HeadMeans>| {
        let mut b = CpuBackend::new(w.clone());
        b.set_edits(Some(&Edits::new(&c, iv, means).unwrap())).unwrap();
        on(&mut b)
    };
    let plain = on(&mut CpuBackend::new(w.clone()));
    // Every head of the last layer zeroed is that layer's attention skipped, bit for bit.
    let last = c.n_layers - 1;
    let all = (0..c.n_heads).map(|head| HeadId { layer: last, head }).collect();
    let zeroed = cpu_with(&Intervention { ablate: all, ..Intervention::default() }, None);
    assert_eq!(zeroed, cpu_with(&Intervention { skip_attn: vec![last], ..Intervention::default() }, None));
    assert!(max_diff(&zeroed, &plain) > 1e-3);

    // The heads' means, against sums taken here by a hook on the reference forward pass.
    let means = HeadMeansRun::run(&CpuModel::new(w), &tokens).unwrap();
    let mut sum = SumHeads { q: c.q_dim(), sums: vec![0.0; c.n_layers * c.q_dim()] };
    let mut s = State::new(&c);
    for (p, &t) in tokens.iter().enumerate() {
        cpu::forward(w, &mut s, t, p, Some(&mut sum)).unwrap();
    }
    let hs = c.head_size();
    for (l, h) in (0..c.n_layers).flat_map(|l| (0..c.n_heads).map(move |h| (l, h))) {
        let want = sum.sums[l * c.q_dim() + h * hs..][..hs].iter().map(|&x| (x / tokens.len() as f64) as f32);
        for (got, want) in means.head(l, h).iter().zip(want) {
            // The fast kernels' sums against the reference's: measured ≤ 1e-7 here.
            assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "head {l}.{h}: {got} vs {want}");
        }
    }

    // Mean ablation and steering together: the GPU (batched and per token) as the CPU.
    let iv = Intervention {
        ablate: vec![HeadId { layer: 0, head: 1 }, HeadId { layer: last, head: c.n_heads - 1 }],
        ablation: Ablation::Mean,
        steer: Some(Steer { layer: 0, direction: (0..c.dim).map(|i| (i as f32 * 0.37).sin()).collect(), strength: 2.0 }),
        ..Intervention::default()
    };
    let want = cpu_with(&iv, Some(&means));
    assert!(max_diff(&want, &plain) > 1e-3);
    let mut g = GpuBackend::new(w, GpuOptions::default()).expect("a GPU adapter (lavapipe)");
    g.set_edits(Some(&Edits::new(&c, &iv, Some(&means)).unwrap())).unwrap();
    let scale = max_abs(&want).max(1.0);
    let batched = g.inspect(&tokens).unwrap().logits;
    let per_token = on(&mut g);
    for (path, got) in [("batched", batched), ("per token", per_token)] {
        let err = max_diff(&got, &want) / scale;
        println!("edits on the GPU, {path}: max error {err:.2e} (relative)");
        assert!(err <= GPU_TOL, "{path}: {err:e}");
    }

    // Patching identical prompts: every patched run gives the clean difference.
    let maps = Patcher::run(&CpuModel::new(w), &tokens, &tokens, 5, 9).unwrap();
    assert!(maps.resid.iter().chain(&maps.heads).all(|&x| x == maps.clean_diff));
}
