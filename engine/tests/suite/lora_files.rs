//! PEFT adapter files: round trips, the q/k row layout checked against the fixture README's
//! formula, other dtypes and config forms, and bad adapters refused with clear errors.

use crate::common;
use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use tinylm_engine::error::InputKind;
use tinylm_engine::lora::{hf_tensors, read_peft, write_peft, Adapter, LoraConfig, LoraCpuBackend, Target};
use tinylm_engine::randmodel::random_weights;
use tinylm_engine::{Config, Error, Weights};

const DIR: &str = "reference/stories260K_lora_qv_r4/adapter_final";

fn tiny() -> Weights {
    random_weights(&Config::parse("16,40,2,4,2,37,12,untied").unwrap(), 7).unwrap()
}

fn all_targets(c: &Config) -> Adapter {
    let cfg = LoraConfig::new(3, 5.0, true, Target::ALL.to_vec()).unwrap();
    Adapter::det(c, cfg, 5, 0.3).unwrap()
}

fn load(cfg: &[u8], st: &[u8], c: &Config) -> Result<Adapter, Error> {
    read_peft(cfg, st, c, ["adapter_config.json", "adapter_model.safetensors"])
}

fn reference_files() -> (Value, Vec<u8>) {
    let cfg = serde_json::from_slice(&read(&format!("{DIR}/adapter_config.json"))).unwrap();
    (cfg, read(&format!("{DIR}/adapter_model.safetensors")))
}

/// `(key, shape, f32 values)`.
type Named = (String, Vec<usize>, Vec<f32>);

/// A safetensors file of named f32 tensors.
fn st_file(tensors: &[Named]) -> Vec<u8> {
    st_file_typed(
        tensors
            .iter()
            .map(|(k, s, v)| (k.clone(), safetensors::Dtype::F32, s.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect(),
    )
}

fn st_file_typed(tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>) -> Vec<u8> {
    let views: Vec<_> =
        tensors.iter().map(|(k, d, s, b)| (k.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, None).unwrap()
}

/// The reference adapter's tensors, as `(key, shape, values)`.
fn reference_tensors() -> Vec<Named> {
    let (_, st) = reference_files();
    let f = safetensors::SafeTensors::deserialize(&st).unwrap();
    let mut names = f.names();
    names.sort();
    names
        .iter()
        .map(|n| {
            let t = f.tensor(n).unwrap();
            (
                n.to_string(),
                t.shape().to_vec(),
                t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
            )
        })
        .collect()
}

fn cfg_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[test]
fn every_target_round_trips_through_peft_files() {
    let w = tiny();
    let ad = all_targets(&w.config);
    let files = write_peft(&ad, "tiny").unwrap();
    assert_eq!(load(files.config_json.as_bytes(), &files.safetensors, &w.config).unwrap(), ad);
    let cfg: Value = serde_json::from_str(&files.config_json).unwrap();
    assert_eq!(cfg["use_rslora"], true);
    assert_eq!(cfg["target_modules"].as_array().unwrap().len(), 7);
    assert_eq!(cfg["peft_type"], "LORA");
    assert_eq!(cfg["task_type"], "CAUSAL_LM");
}

/// `W_hf = W_l2c.reshape(heads, hs/2, 2, in).transpose(0, 2, 1, 3).reshape(out, in)`: HF row
/// `h·hs + c·hs/2 + j` is llama2.c row `h·hs + 2j + c`.
fn hf_row_to_l2c(row: usize, hs: usize) -> usize {
    let (h, within) = (row / hs, row % hs);
    let (c, j) = (within / (hs / 2), within % (hs / 2));
    h * hs + 2 * j + c
}

#[test]
fn merged_deltas_follow_the_readme_row_layout_for_q_and_k() {
    let w = tiny();
    let c = w.config;
    let ad = all_targets(&c);
    let merged = ad.merged(&w).unwrap();
    let s = ad.config.scaling() as f32;
    let hf = hf_tensors(&ad);
    let get = |key: &str| hf.iter().find(|t| t.key == key).unwrap();
    for (target, name, base, new) in [
        (Target::Q, "q_proj", &w.wq, &merged.wq),
        (Target::K, "k_proj", &w.wk, &merged.wk),
        (Target::V, "v_proj", &w.wv, &merged.wv),
        (Target::Down, "down_proj", &w.w2, &merged.w2),
    ] {
        let (out, n_in) = target.shape(&c);
        let block = if target == Target::Down { "mlp" } else { "self_attn" };
        for layer in 0..c.n_layers {
            let key = |ab: char| format!("base_model.model.model.layers.{layer}.{block}.{name}.lora_{ab}.weight");
            let (a, b) = (&get(&key('A')).data, &get(&key('B')).data);
            for o in 0..out {
                let row = if matches!(target, Target::Q | Target::K) { hf_row_to_l2c(o, c.head_size()) } else { o };
                for i in 0..n_in {
                    let delta: f32 = (0..3).map(|k| b[o * 3 + k] * a[k * n_in + i]).sum::<f32>() * s;
                    let at = layer * out * n_in + row * n_in + i;
                    let got = new[at] - base[at];
                    assert!((got - delta).abs() < 1e-5, "{name} layer {layer} HF row {o} col {i}: {got} vs {delta}");
                }
            }
        }
    }
}

#[test]
fn half_precision_files_and_config_forms_load() {
    let w = stories260k();
    let (mut cfg, _) = reference_files();
    let want = load(&cfg_bytes(&cfg), &reference_files().1, &w.config).unwrap();
    // BF16: the top halves of the f32 values (truncation), read back exactly as those.
    let bf16: Vec<_> = reference_tensors()
        .into_iter()
        .map(|(k, s, v)| {
            let bytes = v.iter().flat_map(|x| ((x.to_bits() >> 16) as u16).to_le_bytes()).collect();
            (k, safetensors::Dtype::BF16, s, bytes)
        })
        .collect();
    let got = load(&cfg_bytes(&cfg), &st_file_typed(bf16), &w.config).unwrap();
    for (g, t) in got.modules.iter().zip(&want.modules) {
        for (x, y) in g.a.iter().zip(&t.a) {
            assert_eq!(*x, f32::from_bits(y.to_bits() & 0xffff_0000));
        }
    }
    // F16: 1.0, -2.5 and a subnormal, hand-encoded.
    let (a_key, b_key) = (
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
    );
    let mut tensors: Vec<_> = reference_tensors()
        .into_iter()
        .map(|(k, s, v)| (k, safetensors::Dtype::F32, s, v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()))
        .collect();
    let mut f16 = vec![0u8; 4 * 64 * 2];
    f16[0..2].copy_from_slice(&0x3c00u16.to_le_bytes());
    f16[2..4].copy_from_slice(&0xc100u16.to_le_bytes());
    f16[4..6].copy_from_slice(&0x0001u16.to_le_bytes());
    let at = tensors.iter().position(|t| t.0 == a_key).unwrap();
    tensors[at] = (a_key.into(), safetensors::Dtype::F16, vec![4, 64], f16);
    let got = load(&cfg_bytes(&cfg), &st_file_typed(tensors), &w.config).unwrap();
    assert_eq!(&got.modules[0].a[..4], &[1.0, -2.5, 2f32.powi(-24), 0.0]);
    assert!(hf_tensors(&got).iter().any(|t| t.key == b_key));
    // Config forms: target list as one string; lora_alpha missing is PEFT's default 8.
    cfg["target_modules"] = json!(["v_proj", "q_proj", "q_proj"]);
    cfg.as_object_mut().unwrap().remove("lora_alpha");
    let got = load(&cfg_bytes(&cfg), &reference_files().1, &w.config).unwrap();
    assert_eq!(got.config.alpha, 8.0);
    assert_eq!(got.config.targets, [Target::Q, Target::V]);
}

fn expect_adapter_error(r: Result<Adapter, Error>, needle: &str) {
    match r {
        Err(Error::BadFile { kind: InputKind::Adapter, what, .. }) => {
            assert!(what.contains(needle), "error `{what}` should mention `{needle}`")
        }
        other => panic!("expected an adapter error about `{needle}`, got {other:?}"),
    }
}

fn expect_mismatch(r: Result<Adapter, Error>, needle: &str) {
    match r {
        Err(Error::Mismatch(what)) => assert!(what.contains(needle), "`{what}` should mention `{needle}`"),
        other => panic!("expected a mismatch about `{needle}`, got {other:?}"),
    }
}

#[test]
fn bad_configs_are_adapter_errors() {
    let w = stories260k();
    let (cfg, st) = reference_files();
    let with = |k: &str, v: Value| {
        let mut c = cfg.clone();
        c[k] = v;
        load(&cfg_bytes(&c), &st, &w.config)
    };
    expect_adapter_error(with("r", json!(0)), "rank 0");
    expect_adapter_error(with("r", json!(-4)), "`r`");
    expect_adapter_error(with("r", json!(8)), "r = 8");
    expect_adapter_error(with("target_modules", json!(["q_proj", "embed_tokens"])), "embed_tokens");
    expect_adapter_error(with("target_modules", json!(["q_proj"])), "does not target");
    expect_adapter_error(with("target_modules", json!(["q_proj", "v_proj", "k_proj"])), "is missing");
    expect_adapter_error(with("target_modules", Value::Null), "target_modules");
    expect_adapter_error(with("peft_type", json!("IA3")), "only LORA");
    expect_adapter_error(with("use_dora", json!(true)), "use_dora");
    expect_adapter_error(with("bias", json!("all")), "bias");
    expect_adapter_error(with("rank_pattern", json!({"q_proj": 8})), "rank_pattern");
    expect_adapter_error(with("lora_alpha", json!("eight")), "lora_alpha");
    expect_adapter_error(load(b"{not json", &st, &w.config), "not valid JSON");
    expect_adapter_error(load(b"[1, 2]", &st, &w.config), "JSON object");
}

#[test]
fn bad_tensors_are_adapter_errors_or_mismatches() {
    let w = stories260k();
    let (cfg, st) = reference_files();
    let cfg = cfg_bytes(&cfg);
    let t = reference_tensors();
    let edit = |f: &dyn Fn(&mut Vec<Named>)| {
        let mut t = t.clone();
        f(&mut t);
        load(&cfg, &st_file(&t), &w.config)
    };
    // Missing, unexpected and misplaced keys.
    expect_adapter_error(
        edit(&|t| {
            t.remove(3);
        }),
        "is missing",
    );
    expect_adapter_error(
        edit(&|t| t.push(("base_model.model.lm_head.lora_A.weight".into(), vec![4, 64], vec![0.0; 256]))),
        "unexpected tensor",
    );
    expect_adapter_error(edit(&|t| t[0].0 = t[0].0.replace("lora_A", "lora_C")), "unexpected tensor");
    expect_mismatch(edit(&|t| t.push((t[0].0.replace("layers.0.", "layers.7."), vec![4, 64], vec![0.0; 256]))), "layer 7");
    // Shapes: rank disagreeing with the config, another model's width, not a matrix.
    expect_adapter_error(edit(&|t| t[0] = (t[0].0.clone(), vec![8, 64], vec![0.0; 512])), "rank 8");
    expect_mismatch(edit(&|t| t[0] = (t[0].0.clone(), vec![4, 32], vec![0.0; 128])), "another model");
    expect_adapter_error(edit(&|t| t[0] = (t[0].0.clone(), vec![256], vec![0.0; 256])), "matrix");
    // Values.
    expect_adapter_error(edit(&|t| t[5].2[17] = f32::NAN), "non-finite");
    expect_adapter_error(edit(&|t| t[2].2[0] = f32::INFINITY), "non-finite");
    let ints = vec![(t[0].0.clone(), safetensors::Dtype::I32, vec![4, 64], vec![0u8; 1024])];
    expect_adapter_error(load(&cfg, &st_file_typed(ints), &w.config), "dtype");
    // Files that are not safetensors, or whose header lies about the sizes.
    expect_adapter_error(load(&cfg, b"", &w.config), "not a valid safetensors");
    expect_adapter_error(load(&cfg, &st[..st.len() - 4], &w.config), "not a valid safetensors");
    let mut padded = st.clone();
    padded.extend_from_slice(&[0; 8]);
    expect_adapter_error(load(&cfg, &padded, &w.config), "not a valid safetensors");
    expect_adapter_error(load(&cfg, &lying_header(&st), &w.config), "not a valid safetensors");
    let mut huge = st.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    expect_adapter_error(load(&cfg, &huge, &w.config), "not a valid safetensors");
}

/// The same file with the first tensor's data_offsets claiming 4 more bytes (which overlap the
/// next tensor); the header keeps its length.
fn lying_header(st: &[u8]) -> Vec<u8> {
    let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&st[8..8 + n]).unwrap();
    let lied = header.replacen("[0,1024]", "[0,1028]", 1);
    assert!(lied != header && lied.len() == n);
    [&st[..8], lied.as_bytes(), &st[8 + n..]].concat()
}

#[test]
fn an_adapter_for_another_model_is_a_mismatch() {
    let w = stories260k();
    let (cfg, st) = reference_files();
    let cfg = cfg_bytes(&cfg);
    // Narrower model: the shapes disagree.
    let narrow = Config { dim: 32, ..w.config };
    expect_mismatch(load(&cfg, &st, &narrow), "another model");
    // Fewer layers: a key names a layer the model lacks.
    let shallow = Config { n_layers: 3, ..w.config };
    expect_mismatch(load(&cfg, &st, &shallow), "layer");
    // A loaded adapter given to another model's backend or merge.
    let ad = load(&cfg, &st, &w.config).unwrap();
    let other = tiny();
    assert!(matches!(LoraCpuBackend::new(other.clone(), ad.clone()), Err(Error::Mismatch(_))));
    assert!(matches!(ad.merged(&other), Err(Error::Mismatch(_))));
    // An adapter edited into an inconsistent layout is refused, not indexed out of bounds.
    let mut broken = ad.clone();
    broken.modules[3].a.pop();
    assert!(matches!(LoraCpuBackend::new(w.clone(), broken.clone()), Err(Error::BadFile { kind: InputKind::Adapter, .. })));
    let batch = tinylm_engine::lora::Batch::single(vec![1, 2, 3]).unwrap();
    assert!(tinylm_engine::lora::loss_and_grads(&tinylm_engine::lora::Base::new(&w), &broken, &batch).is_err());
    broken.modules.pop();
    assert!(broken.merged(&w).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Corrupted files never panic: each is loaded or refused with an error.
    #[test]
    fn corrupted_adapter_files_never_panic(at in 0usize..20_000, byte in any::<u8>(), cut in 0usize..20_000, which in 0u8..3) {
        let (cfg, st) = reference_files();
        let cfg = cfg_bytes(&cfg);
        let w = stories260k_config();
        let (mut c, mut s) = (cfg.clone(), st.clone());
        match which {
            0 => { let i = at % s.len(); s[i] = byte; }
            1 => s.truncate(cut % s.len()),
            _ => { let i = at % c.len(); c[i] = byte; }
        }
        let _ = load(&c, &s, &w);
    }
}

fn stories260k_config() -> Config {
    Config::from_header([64, 172, 5, 8, 4, 512, 512], true, "stories260K").unwrap()
}
