//! Fuzzing the readers of what a user hands the Train view or what storage hands back: the
//! zip reader, the upload's PEFT pair (adapter_config.json + safetensors), and a stored
//! checkpoint (its JSON, adapter and AdamW state). Damaged input must give an error message,
//! never a panic or an allocation sized by a header.

use proptest::prelude::*;
use tinylm_engine::lora::{parse_targets, write_optimizer, write_peft, AdamW, Adapter, LoraConfig, TrainConfig, Trainer};
use tinylm_engine::Config;

use super::*;

fn stories260k() -> Config {
    Config::from_header([64, 172, 5, 8, 4, 512, 512], true, "stories260K").unwrap()
}

fn adapter() -> Adapter {
    let lora = LoraConfig::new(4, 8.0, false, parse_targets("q_proj,v_proj").unwrap()).unwrap();
    Adapter::peft_default(&stories260k(), lora, 7).unwrap()
}

fn peft() -> Peft {
    let f = write_peft(&adapter(), "stories260K").unwrap();
    Peft::new(f.config_json, &f.safetensors)
}

fn tc() -> TrainConfig {
    TrainConfig { adamw: AdamW::default(), clip_norm: None }
}

fn optimizer_bytes() -> Vec<u8> {
    let t = Trainer::new(adapter(), tc()).unwrap();
    write_optimizer(&t.optimizer_state()).unwrap()
}

fn checkpoint() -> Checkpoint {
    let a = adapter();
    Checkpoint {
        name: "fuzz".into(),
        settings: TrainSettings::default(),
        base: BaseId { name: "stories260K".into(), hash: file_hash(b"m") },
        step: 0,
        losses: vec![],
        held: vec![],
        info: AdapterInfo { rank: 4, alpha: 8.0, targets: vec!["q_proj".into(), "v_proj".into()], params: a.n_params() },
        adapter: peft(),
        optimizer_b64: b64(&optimizer_bytes()),
        finished: false,
    }
}

fn upload_zip() -> Vec<u8> {
    let p = peft();
    let weights = p.safetensors().unwrap();
    zip::write(&[("adapter_config.json", p.config_json.as_bytes()), ("adapter_model.safetensors", &weights)])
}

/// The whole upload path: zip → PEFT pair → adapter for stories260K.
fn upload(zip_bytes: Vec<u8>) -> Result<Adapter, String> {
    let p = peft_from_upload(vec![("a.zip".into(), zip_bytes)])?;
    read_adapter(&p, &stories260k())
}

/// One of: a byte set, a cut, or a little-endian u32 written at a spot (a header field).
fn damage(bytes: &mut Vec<u8>, how: u8, at: usize, value: u32) {
    if bytes.is_empty() {
        return;
    }
    let i = at % bytes.len();
    match how % 3 {
        0 => bytes[i] = value as u8,
        1 => bytes.truncate(i),
        _ => {
            let end = (i + 4).min(bytes.len());
            let le = value.to_le_bytes();
            bytes[i..end].copy_from_slice(&le[..end - i]);
        }
    }
}

#[test]
fn the_undamaged_files_are_read() {
    let got = upload(upload_zip()).unwrap();
    assert_eq!(got.n_params(), adapter().n_params());
    let t = restore_trainer(&checkpoint(), &stories260k(), tc()).unwrap();
    assert_eq!(t.steps_done(), 0);
    // The optimizer must be at the checkpoint's step.
    let ahead = Checkpoint { step: 5, ..checkpoint() };
    let e = restore_trainer(&ahead, &stories260k(), tc()).err().unwrap();
    assert!(e.contains("step 0") && e.contains("step 5"), "{e}");
}

#[test]
fn zip_sizes_past_the_end_are_refused() {
    let mut z = upload_zip();
    // The first entry's size field (local header offset 18) says 4 GiB − 1.
    z[18..22].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(zip::read(&z).unwrap_err().contains("damaged"));
}

/// The key of every tensor of a valid adapter file, for headers that get past the names.
fn keys() -> Vec<String> {
    let bytes = peft().safetensors().unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header.keys().filter(|k| *k != "__metadata__").cloned().collect()
}

/// A safetensors file with the given header entries and `data` after it.
fn safetensors_with(entries: &[(String, String, Vec<u64>, [u64; 2])], data: &[u8]) -> Vec<u8> {
    let header: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(k, dtype, shape, offsets)| {
            let v = serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": offsets });
            (k.clone(), v)
        })
        .collect();
    let json = serde_json::to_vec(&header).unwrap();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    out.extend_from_slice(data);
    out
}

fn big() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..100, Just(4u64), Just(64u64), Just(1u64 << 31), Just(1u64 << 40), Just(u64::MAX)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn zip_reader_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300), lead in any::<bool>()) {
        // Half the cases start with a local-header signature, to get past the first check.
        let mut b = if lead { b"PK\x03\x04".to_vec() } else { Vec::new() };
        b.extend(bytes);
        let _ = zip::read(&b);
    }

    #[test]
    fn a_damaged_upload_zip_is_refused_or_read(how in any::<u8>(), at in any::<usize>(), value in any::<u32>(), twice in any::<bool>()) {
        let mut z = upload_zip();
        damage(&mut z, how, at, value);
        if twice {
            damage(&mut z, how.wrapping_add(1), at / 3, value.rotate_left(7));
        }
        let _ = upload(z);
    }

    #[test]
    fn damaged_peft_files_are_refused_or_read(how in any::<u8>(), at in any::<usize>(), value in any::<u32>(), config in any::<bool>()) {
        let p = peft();
        let (mut w, mut c) = (p.safetensors().unwrap(), p.config_json.into_bytes());
        damage(if config { &mut c } else { &mut w }, how, at, value);
        let p = Peft::new(String::from_utf8_lossy(&c).into_owned(), &w);
        let _ = read_adapter(&p, &stories260k());
    }

    #[test]
    fn safetensors_headers_of_any_shape_are_refused_or_read(
        picks in proptest::collection::vec((0usize..64, 0u8..4, proptest::collection::vec(big(), 0..4), big(), big()), 0..6),
        data_len in 0usize..2048,
        drop_valid in any::<bool>(),
    ) {
        let keys = keys();
        let dtypes = ["F32", "F16", "I64", "BOOL"];
        let entries: Vec<_> = picks
            .into_iter()
            .map(|(k, d, shape, a, b)| (keys[k % keys.len()].clone(), dtypes[d as usize].to_string(), shape, [a, b]))
            .collect();
        let file = safetensors_with(&entries, &vec![0u8; data_len]);
        let mut p = peft();
        p.safetensors_b64 = b64(&file);
        let _ = read_adapter(&p, &stories260k());
        if drop_valid {
            // The length prefix claims more header than there is.
            let mut f = file.clone();
            f[..8].copy_from_slice(&u64::MAX.to_le_bytes());
            p.safetensors_b64 = b64(&f);
            prop_assert!(read_adapter(&p, &stories260k()).is_err());
        }
    }

    #[test]
    fn adapter_configs_with_any_numbers_are_refused_or_read(
        r in prop_oneof![any::<i64>().prop_map(serde_json::Value::from), any::<f64>().prop_map(serde_json::Value::from), Just(serde_json::Value::Null)],
        alpha in any::<f64>(),
        targets in proptest::collection::vec("[a-z_]{0,10}", 0..4),
    ) {
        let mut config: serde_json::Value = serde_json::from_str(&peft().config_json).unwrap();
        config["r"] = r;
        config["lora_alpha"] = serde_json::Value::from(alpha);
        config["target_modules"] = serde_json::Value::from(targets);
        let mut p = peft();
        p.config_json = config.to_string();
        let _ = read_adapter(&p, &stories260k());
    }

    #[test]
    fn a_damaged_checkpoint_is_refused_or_resumed(how in any::<u8>(), at in any::<usize>(), value in any::<u32>(), part in 0u8..3) {
        let mut ck = checkpoint();
        match part {
            0 => {
                let mut json = ck.to_json().into_bytes();
                damage(&mut json, how, at, value);
                match Checkpoint::from_json(&String::from_utf8_lossy(&json)) {
                    Ok(c) => ck = c,
                    Err(e) => { prop_assert!(e.starts_with("damaged stored data")); return Ok(()); }
                }
            }
            1 => {
                let mut opt = optimizer_bytes();
                damage(&mut opt, how, at, value);
                ck.optimizer_b64 = b64(&opt);
            }
            _ => {
                let mut text = ck.optimizer_b64.into_bytes();
                damage(&mut text, how, at, value);
                ck.optimizer_b64 = String::from_utf8_lossy(&text).into_owned();
            }
        }
        let _ = restore_trainer(&ck, &stories260k(), tc());
    }
}
