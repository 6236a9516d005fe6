//! The loaded model: files sniffed and parsed once, the weights shared by every backend and
//! trainer opened from it, the one generation loop with its pace, and the one trainer choice
//! and held-out evaluation (checked against the CPU trainer and `lora::loss` directly).
#![cfg(not(target_arch = "wasm32"))]

use crate::common;
use std::sync::Arc;

use common::*;
use tinylm_engine::checkpoint::{self, Format};
use tinylm_engine::generate::{Backend, Generation, Generator, Pace, Step};
use tinylm_engine::gpu::{AnyBackend, BackendChoice, GpuOptions};
use tinylm_engine::loaded::{parses_on_this_thread, sniff, ModelFormat};
use tinylm_engine::lora::{
    self, even_sample, AdamW, Adapter, AnyTrainer, Base, Batch, Dataset, HeldOut, LoraConfig, Target, TrainConfig, TrainDevice,
    Trainer,
};
use tinylm_engine::randmodel::{named_shape, random_weights};
use tinylm_engine::{Error, LoadedModel, NamedFile, Sampler};

fn files() -> (Vec<u8>, Vec<u8>) {
    (read("models/stories260K.bin"), read("tokenizers/tok512.bin"))
}

#[test]
fn sniffing_finds_the_model_and_the_tokenizer_in_either_order() {
    let (model, tok) = files();
    let (m, t) = (NamedFile::new("m.bin", &model), NamedFile::new("t.bin", &tok));
    let s = sniff(&[m, t]).unwrap();
    assert_eq!((s.format, s.model, s.tokenizer), (ModelFormat::Llama2c(Format::V0), 0, Some(1)));
    let s = sniff(&[t, m]).unwrap();
    assert_eq!((s.model, s.tokenizer), (1, Some(0)));
    let (c, seed) = named_shape("micro").unwrap();
    let w = random_weights(&c, seed).unwrap();
    for (bytes, want) in [
        (checkpoint::write_v1(&w), Format::V1),
        (checkpoint::write_v2(&w, 16).unwrap(), Format::V2 { group_size: 16 }),
        (checkpoint::write_v0(&w), Format::V0),
    ] {
        let s = sniff(&[NamedFile::new("x", &tok), NamedFile::new("micro.bin", &bytes)]).unwrap();
        assert_eq!((s.format, s.model), (ModelFormat::Llama2c(want), 1));
    }
    // Nothing recognisable: the first file is the model, so parsing names its problem.
    let cut = &model[..1000];
    let e = LoadedModel::open(&[NamedFile::new("cut.bin", cut), t]).unwrap_err().to_string();
    assert!(e.contains("cut.bin") && e.contains("truncated"), "{e}");
    let e = LoadedModel::open(&[m, t, t]).unwrap_err().to_string();
    assert!(e.contains("3 files"), "{e}");
    assert!(LoadedModel::open(&[]).is_err());
}

#[test]
fn a_tokenizer_of_another_vocabulary_is_a_typed_error() {
    let model = read("models/stories260K.bin");
    let llama = read("tokenizers/llama2/tokenizer.bin");
    let e = LoadedModel::open(&[NamedFile::new("m.bin", &model), NamedFile::new("tokenizer.bin", &llama)]).unwrap_err();
    assert!(matches!(e, Error::VocabMismatch { tokens: 32000, vocab: 512, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "tokenizer tokenizer.bin has 32000 tokens but model m.bin expects 512: they do not belong together"
    );
}

/// Stops after `stop_after` tokens, counting the yields between forward passes.
struct Counting {
    tokens: Vec<Step>,
    betweens: usize,
    stop_after: usize,
}

impl Pace for Counting {
    fn token(&mut self, step: Step) -> bool {
        self.tokens.push(step);
        self.tokens.len() < self.stop_after
    }
    async fn between(&mut self) -> bool {
        self.betweens += 1;
        true
    }
}

#[test]
fn parsed_once_whatever_is_done_with_it() {
    let (model, tok) = files();
    let before = parses_on_this_thread();
    let mut m = LoadedModel::open(&[NamedFile::new("stories260K.bin", &model), NamedFile::new("tok512.bin", &tok)]).unwrap();
    assert_eq!(parses_on_this_thread(), before + 1);
    assert_eq!(m.name(), "stories260K.bin");
    assert_eq!(m.tokenizer_name(), Some("tok512.bin"));
    let want = ids(&reference_json()["greedy_empty_prompt_256_steps"]["ids"]);

    // Generation through the one loop, on a backend sharing the weights.
    let mut opened = m.open_backend(BackendChoice::Cpu, GpuOptions::default()).unwrap();
    let AnyBackend::Cpu(cpu) = &opened.backend else { panic!("asked for the CPU") };
    assert!(Arc::ptr_eq(cpu.weights.f32().unwrap(), m.weights()));
    let mut s = Sampler::new(0.0, 0.9, 1).unwrap();
    assert_eq!(opened.backend.generate(&[1], 256, &mut s, |_| true).unwrap(), want);
    // A pace hears every token, is asked between forward passes, and stops the run.
    let mut pace = Counting { tokens: Vec::new(), betweens: 0, stop_after: 10 };
    let mut s = Sampler::new(0.0, 0.9, 1).unwrap();
    let got = pollster::block_on(opened.backend.run_async(&[1], 256, &mut s, &mut pace)).unwrap();
    assert_eq!(got, want[..11]);
    assert_eq!((pace.tokens.len(), pace.betweens), (10, 9));
    assert_eq!(pace.tokens[3], Step { prev: want[3], token: want[4], pos: 4, from_prompt: false });

    // Training and the held-out evaluation from the same weights.
    let tok = m.need_tokenizer().unwrap().clone();
    let data = Dataset::from_text(&tok, &"Once upon a time, there was a little dog. ".repeat(20), 16, m.config()).unwrap();
    let lora = LoraConfig::new(2, 4.0, false, vec![Target::Q, Target::V]).unwrap();
    let ad = Adapter::peft_default(m.config(), lora, 3).unwrap();
    let mut t = AnyTrainer::new(m.weights(), ad.clone(), TrainConfig::default(), None, TrainDevice::Cpu).unwrap();
    t.step(&data.batch(2, 0, 1).unwrap()).unwrap();
    t.held_out(&HeldOut::new(&data, 4).unwrap()).unwrap();

    // An adapter in use: backends opened afterwards apply it, still without parsing.
    m.set_adapter(Some(ad)).unwrap();
    let mut with = m.open_backend(BackendChoice::Cpu, GpuOptions::default()).unwrap();
    assert!(with.backend.name().starts_with("cpu + LoRA r2"), "{}", with.backend.name());
    let mut s = Sampler::new(0.0, 0.9, 1).unwrap();
    with.backend.generate(&[1], 32, &mut s, |_| true).unwrap();
    assert_eq!(parses_on_this_thread(), before + 1, "parsed once");
}

#[test]
fn the_trainer_choice_trains_as_the_cpu_trainer_and_evaluates_held_out_windows() {
    let w = Arc::new(stories260k());
    let tok = tok512();
    let data = Dataset::from_text(&tok, &"The cat sat on the mat and looked at the sun. ".repeat(40), 32, &w.config).unwrap();
    let lora = LoraConfig::new(4, 8.0, false, vec![Target::Q, Target::V]).unwrap();
    let ad = Adapter::peft_default(&w.config, lora, 1234).unwrap();
    let config = TrainConfig { adamw: AdamW { lr: 1e-2, ..AdamW::default() }, clip_norm: None };
    let mut any = AnyTrainer::new(&w, ad.clone(), config, None, TrainDevice::Cpu).unwrap();
    let mut plain = Trainer::new(ad, config).unwrap();
    let base = Base::new(&w);
    for step in 0..3 {
        let b = data.batch(4, step, 7).unwrap();
        let (a, p) = (any.step(&b).unwrap(), plain.step(&base, &b).unwrap());
        assert_eq!(a, p, "step {step}");
    }
    assert_eq!((any.device(), any.device_name(), any.steps_done()), (TrainDevice::Cpu, "the CPU".to_string(), 3));
    let (adapter, state) = any.state().unwrap();
    assert_eq!(adapter, plain.adapter);
    assert_eq!(state, plain.optimizer_state());

    // The held-out loss is the mean over windows, whatever the chunking: the same number as
    // one loss over every window at once (within f32 summation order, measured 1e-7).
    let held = HeldOut::new(&data, usize::MAX).unwrap();
    assert_eq!(held.windows, data.len());
    assert!(held.batches.len() > 1 && held.batches.iter().all(|b| b.batch <= lora::HELD_CHUNK));
    let got = any.held_out(&held).unwrap().unwrap();
    let all: Vec<u32> = (0..data.len()).flat_map(|i| data.window(i).to_vec()).collect();
    let want = lora::loss(&base, Some(&plain.adapter), &Batch::new(data.len(), data.seq, all).unwrap()).unwrap();
    assert!((got - want).abs() <= 1e-6 * want, "held-out {got} vs one pass {want}");
    assert_eq!(any.held_out(&HeldOut::none(32)).unwrap(), None);
}

#[test]
fn held_out_samples_are_all_windows_or_an_even_spread() {
    assert_eq!(even_sample(5, 8), [0, 1, 2, 3, 4]);
    assert_eq!(even_sample(0, 8), Vec::<usize>::new());
    assert_eq!(even_sample(1000, 10), [50, 150, 250, 350, 450, 550, 650, 750, 850, 950]);
    let s = even_sample(257, 256);
    assert_eq!(s.len(), 256);
    assert!(s.windows(2).all(|w| w[0] < w[1]) && *s.last().unwrap() < 257);
}

#[test]
fn a_generation_runs_as_the_step_loop() {
    // `Generation::run` is `step` in a loop: the same tokens, and a stop keeps the ones so far.
    let w = stories260k();
    let mut b = tinylm_engine::cpu::CpuBackend::new(w.clone());
    let prompt = tok512().encode("Once upon a time", true, false);
    let mut s = Sampler::new(1.0, 0.9, 42).unwrap();
    let mut g = Generation::new(prompt.clone(), 64, &w.config).unwrap();
    while g.step(&mut b, &mut s).unwrap().is_some() {}
    let mut b = tinylm_engine::cpu::CpuBackend::new(w.clone());
    let mut s = Sampler::new(1.0, 0.9, 42).unwrap();
    let run = Generation::new(prompt, 64, &w.config).unwrap();
    let got = pollster::block_on(run.run(&mut b, &mut s, &mut |_| true)).unwrap();
    assert_eq!(got, g.tokens);
}

/// Every reader asks for room for the model as it will be held, before copying weights: with
/// exactly its weights and context cache left (`memory::pretend`, as a wasm32 page near its
/// 4 GiB) it opens, holding exactly that many weight bytes; with one byte less it is refused in
/// words naming the file. llama2.c v0 and v2 (Q8_0), GGUF (Q4_K_M, F16), a sharded BF16 folder.
#[test]
fn a_model_without_room_is_refused_before_its_weights_are_copied() {
    use tinylm_engine::memory;
    let fixture = |rel: &str| {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats").join(rel);
        let paths: Vec<_> = match p.is_dir() {
            true => std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()).collect(),
            false => vec![p],
        };
        paths.iter().map(|p| (p.display().to_string(), std::fs::read(p).unwrap())).collect::<Vec<_>>()
    };
    let (v0, _) = files();
    let v2 = checkpoint::write_v2(&stories260k(), 4).unwrap();
    let cases = [
        vec![("stories260K.bin".to_string(), v0)],
        vec![("stories260K_q8.bin".to_string(), v2)],
        fixture("gguf/quant.q4_k_m.gguf"),
        fixture("gguf/gqa_untied.f16.gguf"),
        fixture("hf/mha_tied_bf16"),
    ];
    const CEILING: u64 = 4 << 30;
    for files in cases {
        let named: Vec<NamedFile> = files.iter().map(|(n, b)| NamedFile::new(n, b)).collect();
        let m = LoadedModel::open(&named).unwrap();
        let need = m.held_bytes() + memory::cache_bytes(m.config());
        memory::pretend(Some((CEILING - need, CEILING)));
        let fits = LoadedModel::open(&named).map(|m| m.held_bytes());
        memory::pretend(Some((CEILING - need + 1, CEILING)));
        let refused = LoadedModel::open(&named).err();
        memory::pretend(None);
        assert_eq!(fits.unwrap(), m.held_bytes(), "{}", files[0].0);
        let e = refused.unwrap_or_else(|| panic!("{}: opened without room", files[0].0));
        assert!(matches!(e, Error::OutOfMemory { needed, .. } if needed == need), "{e:?}");
        let name = m.name().rsplit('/').next().unwrap().to_string();
        assert!(e.to_string().contains(&name) && e.to_string().contains("this page's memory has room for"), "{e}");
    }
}
