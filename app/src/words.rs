//! Engine errors and file problems in words a student can act on (the page and the worker).

use tinylm_engine::Error;

pub fn too_large(file: &str, bytes: u64) -> String {
    format!(
        "“{file}” is {}: too large for this device. In the browser this app can hold model files \
         up to {} (the model must also fit in memory unpacked). Try a smaller model.",
        size(bytes),
        size(crate::protocol::MAX_FILE_BYTES)
    )
}

/// "1.06 MB", "433 KB", "6.2 KB".
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e4 {
        format!("{:.0} KB", b / 1e3)
    } else {
        format!("{:.1} KB", b / 1e3)
    }
}

/// A guess at what a file really is, from its first bytes, when it is not what we expect.
fn kind_of(bytes: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"\x89PNG") || starts(b"\xFF\xD8\xFF") || starts(b"GIF8") {
        Some("a picture")
    } else if starts(b"%PDF") {
        Some("a PDF document")
    } else if starts(b"PK\x03\x04") {
        Some("a zip archive (a PyTorch .pt/.pth checkpoint is one: convert it with llama2.c's export.py)")
    } else if starts(b"GGUF") {
        Some("a GGUF model (llama.cpp's format, not llama2.c's)")
    } else if bytes.len() > 8 && bytes[8..].starts_with(b"{\"") {
        Some("a safetensors file (give it together with its folder's config.json and tokenizer.json)")
    } else if !bytes.is_empty()
        && bytes.iter().take(512).all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (32..127).contains(&b))
    {
        Some("a text file")
    } else {
        None
    }
}

/// "1 layer", "2 layers": `n` and the noun, plural unless one.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A knock-out or steering change as the page shows it, layers and heads counted from 1 as
/// everywhere else on the page (the engine's `Intervention::describe`, the CLI's words, counts
/// from 0): "head 3 of layer 2 and head 5 of layer 4 zeroed; MLP skipped in layer 5".
pub fn change(i: &tinylm_engine::trace::Intervention) -> String {
    use tinylm_engine::trace::Ablation;
    let layers = |v: &[usize]| {
        let n: Vec<String> = v.iter().map(|l| (l + 1).to_string()).collect();
        let n: Vec<&str> = n.iter().map(String::as_str).collect();
        format!("{} {}", if v.len() == 1 { "layer" } else { "layers" }, and_list(&n))
    };
    let mut parts = Vec::new();
    if !i.ablate.is_empty() {
        let heads: Vec<String> = i.ablate.iter().map(|h| format!("head {} of layer {}", h.head + 1, h.layer + 1)).collect();
        let heads: Vec<&str> = heads.iter().map(String::as_str).collect();
        let how = match i.ablation {
            Ablation::Zero => "zeroed",
            Ablation::Mean if heads.len() == 1 => "set to its mean output",
            Ablation::Mean => "set to their mean output",
        };
        parts.push(format!("{} {how}", and_list(&heads)));
    }
    if !i.skip_attn.is_empty() {
        parts.push(format!("attention skipped in {}", layers(&i.skip_attn)));
    }
    if !i.skip_mlp.is_empty() {
        parts.push(format!("MLP skipped in {}", layers(&i.skip_mlp)));
    }
    if let Some(s) = &i.steer {
        parts.push(format!("steered after layer {} with strength {}", s.layer + 1, s.strength));
    }
    if parts.is_empty() {
        return "nothing changed".into();
    }
    parts.join("; ")
}

/// An adapter refused because it was made for another model, in plain words: `adapter` its
/// name, `made_for` the model it was trained on, `in_use` the model in use (each when known).
pub fn adapter_not_for(adapter: Option<&str>, made_for: Option<&str>, in_use: Option<&str>) -> String {
    let this = adapter.map_or("This adapter".to_string(), |a| format!("“{a}”"));
    let now = in_use.map_or("the model in use".to_string(), |m| format!("{m}, the model in use"));
    match made_for {
        Some(base) if Some(base) == in_use => format!(
            "{this} was made for another file named {base}, not for the one in use (their contents differ). An \
             adapter only works with the model it was trained on: load that file, then try again."
        ),
        Some(base) => format!(
            "{this} was made for the model {base}, not for {now}. An adapter only works with the model it was \
             trained on: choose {base} in the Model menu of the Generate tab (or load its file again), then try again."
        ),
        None => format!(
            "{this} was made for another model, not for {now}: its sizes do not fit. An adapter only works with the \
             model it was trained on: load that model first, then try again."
        ),
    }
}

/// "A", "A and B", "A, B and C".
pub fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Why a model file was refused.
pub fn bad_model(file: &str, bytes: &[u8], err: &Error) -> String {
    let detail = match err {
        Error::BadFile { what, .. } => what.clone(),
        other => other.to_string(),
    };
    let pick = "Pick a llama2.c checkpoint (.bin) such as stories260K.bin, a GGUF file (.gguf) or a Hugging Face folder";
    match (kind_of(bytes), file.to_ascii_lowercase().ends_with(".gguf")) {
        (kind, true) => format!(
            "“{file}” is named .gguf but is not a GGUF file (those begin with the letters GGUF){}. It may \
             be damaged, or another kind of file renamed.",
            kind.map_or(String::new(), |k| format!(": it looks like {k}"))
        ),
        (Some(kind), false) => format!("“{file}” is not a model file: it looks like {kind}. {pick}."),
        (None, false) => {
            format!(
                "“{file}” is not a model file this app can read ({detail}). {pick}; the file may also be damaged or cut short."
            )
        }
    }
}

/// Why a GGUF file was refused: the reader's own words (a cut-short file, a tensor type or an
/// architecture this lab cannot run).
pub fn bad_gguf(file: &str, err: &Error) -> String {
    format!(
        "“{file}” is a GGUF file this app cannot use: {}. GGUF Llama models in F32, F16, BF16, Q8_0, Q4_0, \
         Q4_1, Q5_0, Q5_1, Q4_K or Q6_K are read (so Q4_K_M files too); the file may also be damaged or cut short.",
        detail(err)
    )
}

/// A model refused because the page's memory has no room for it (`Error::OutOfMemory`, asked
/// before any weight is copied): the sizes, and what to do.
pub fn no_room(err: &Error) -> String {
    format!(
        "{}. Reload the page to free the models loaded before it, or pick a smaller or more quantized \
         file (Q8_0 takes about a quarter of F32, Q4_K_M about a seventh).",
        capitalised(&err.to_string())
    )
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().collect::<String>() + c.as_str())
}

/// Why a Hugging Face folder was refused.
pub fn bad_folder(err: &Error) -> String {
    let what = match err {
        Error::BadFile { file, what, .. } => format!("{file}: {what}"),
        other => other.to_string(),
    };
    format!(
        "This Hugging Face folder cannot be used ({what}). Llama-family folders (LlamaForCausalLM) with \
         config.json, .safetensors weights in F32, F16 or BF16 and tokenizer.json are read."
    )
}

fn detail(err: &Error) -> String {
    match err {
        Error::BadFile { what, .. } => what.clone(),
        other => other.to_string(),
    }
}

/// Why a tokenizer file was refused.
pub fn bad_tokenizer(file: &str, bytes: &[u8], err: &Error) -> String {
    let detail = match err {
        Error::BadFile { what, .. } => what.clone(),
        other => other.to_string(),
    };
    let seems = kind_of(bytes).map(|k| format!(": it looks like {k}")).unwrap_or_default();
    format!(
        "“{file}” is not a tokenizer file{seems} ({detail}). Pick the tokenizer.bin that came with \
         the model."
    )
}

pub fn mismatch(tokenizer: &str, tokens: usize, model: &str, vocab: usize) -> String {
    format!(
        "The tokenizer “{tokenizer}” does not match the model “{model}”: the tokenizer knows {tokens} \
         word pieces but the model was trained with {vocab}. Pick the tokenizer that came with the model."
    )
}

/// Why "Compare settings" refuses while Generate uses an adapter (the batch has none).
pub const COMPARE_NO_ADAPTER: &str =
    "Compare settings writes with the model alone: stop using the adapter (Train view) to compare settings.";

/// Where "Compare settings" runs, whatever the backend above.
pub const COMPARE_ON_CPU: &str = "The settings are written together on the CPU (one pass over the \
     weights for all of them), whatever backend Generate uses; each story is the one Generate would \
     write alone with those settings on the CPU. A model stored in fewer bits (Q8_0, Q4) is \
     unpacked to 32-bit numbers for this first: more memory, and its stories may differ a little \
     from Generate's.";

/// An unfinished download's files were deleted (from its shelf card or the Storage tab).
pub fn half_removed(model: &str) -> String {
    format!("The half-downloaded {model} was removed from this device.")
}

/// A failed run or a refused setting.
pub fn run_error(err: &Error) -> String {
    match err {
        Error::PromptTooLong { tokens, seq_len } => format!(
            "The prompt is too long for this model: it is {tokens} tokens and the model can only \
             see {seq_len}. Shorten the prompt."
        ),
        Error::Gpu(e) => format!("The graphics processor (WebGPU) failed: {e}. Switch the backend to CPU and try again."),
        Error::InvalidSetting(e) => format!("Cannot start: invalid setting: {e}."),
        other => format!("Generation failed: {other}."),
    }
}

/// What the Storage panel says of the browser's usage figure, which counts more than its list:
/// `listed` is the bytes of the models, adapters and unfinished downloads it lists; the rest is
/// the lab's offline copy of itself (program, built-in models) and small notes such as GPU
/// tunings. Without this, "15 MB used" next to one 117 KB adapter reads as a leak.
pub fn storage_use(usage: u64, quota: u64, listed: u64) -> String {
    let share = if quota > 0 { usage as f64 * 100.0 / quota as f64 } else { 0.0 };
    let total = format!("This site uses {} of the {} the browser allows it ({share:.1}%)", size(usage), size(quota));
    let own = "the lab's own files (its program and built-in models), kept so it works offline";
    if listed == 0 {
        format!("{total}: {own}.")
    } else if listed < usage {
        format!("{total}: {} for what is listed below, and about {} for {own}.", size(listed), size(usage - listed))
    } else {
        format!("{total}, almost all of it for what is listed below.")
    }
}

/// A sample as shown beside another: runs of empty lines (a book's paragraph breaks, which a
/// model trained on it writes many of) kept as one, and no trailing blank lines, so two
/// stories stay side by side on a screen. The text itself is unchanged.
pub fn one_blank_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut newlines = 0;
    for ch in text.trim_end().chars() {
        if ch == '\n' {
            newlines += 1;
            if newlines > 2 {
                continue;
            }
        } else {
            newlines = 0;
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_the_plural_unless_one() {
        assert_eq!(format!("{} × {}", count(1, "layer"), count(4, "head")), "1 layer × 4 heads");
    }

    #[test]
    fn a_change_counts_layers_and_heads_from_one() {
        use tinylm_engine::trace::{Ablation, HeadId, Intervention};
        let head = |layer, head| HeadId { layer, head };
        let ko = Intervention { ablate: vec![head(1, 2), head(3, 4)], skip_mlp: vec![4], ..Default::default() };
        assert_eq!(change(&ko), "head 3 of layer 2 and head 5 of layer 4 zeroed; MLP skipped in layer 5");
        let one =
            Intervention { ablate: vec![head(0, 0)], ablation: Ablation::Mean, skip_attn: vec![0, 2], ..Default::default() };
        assert_eq!(change(&one), "head 1 of layer 1 set to its mean output; attention skipped in layers 1 and 3");
        assert_eq!(change(&Intervention::default()), "nothing changed");
    }

    #[test]
    fn an_adapter_for_another_model_names_both_models_and_what_to_do() {
        assert_eq!(
            adapter_not_for(Some("Alice style (20 steps)"), Some("stories260K.bin"), Some("other.bin")),
            "“Alice style (20 steps)” was made for the model stories260K.bin, not for other.bin, the model in use. An \
             adapter only works with the model it was trained on: choose stories260K.bin in the Model menu of the \
             Generate tab (or load its file again), then try again."
        );
        let same = adapter_not_for(Some("a"), Some("m.bin"), Some("m.bin"));
        assert!(same.starts_with("“a” was made for another file named m.bin, not for the one in use"), "{same}");
        let unknown = adapter_not_for(None, None, None);
        assert!(unknown.starts_with("This adapter was made for another model, not for the model in use"), "{unknown}");
        for m in [same, unknown] {
            assert!(!m.contains("shape") && !m.contains("mismatch") && !m.contains("hash"), "{m}");
        }
    }

    #[test]
    fn lists_read_as_english() {
        assert_eq!(and_list(&[]), "");
        assert_eq!(and_list(&["Q8_0"]), "Q8_0");
        assert_eq!(and_list(&["Q4_K", "Q6_K"]), "Q4_K and Q6_K");
        assert_eq!(and_list(&["Q5_0", "Q8_0", "Q6_K"]), "Q5_0, Q8_0 and Q6_K");
    }

    #[test]
    fn a_model_without_room_is_explained_with_its_sizes() {
        let e = tinylm_engine::memory::fits(
            "“tinyllama.f16.gguf” (its weights and its context's cache)",
            2_300_000_000,
            2_500_000_000,
            4 << 30,
        )
        .unwrap_err();
        assert_eq!(
            no_room(&e),
            "“tinyllama.f16.gguf” (its weights and its context's cache) would take 2.30 GB, but this page's memory has \
             room for 1.79 GB more. Reload the page to free the models loaded before it, or pick a smaller or more \
             quantized file (Q8_0 takes about a quarter of F32, Q4_K_M about a seventh)."
        );
    }

    #[test]
    fn files_are_recognised_by_their_first_bytes() {
        let e = Error::model("x", "length mismatch");
        assert!(bad_model("cat.png", b"\x89PNG\r\n\x1a\n....", &e).contains("a picture"));
        assert!(bad_model("m.pt", b"PK\x03\x04rest", &e).contains("export.py"));
        assert!(bad_model("notes.txt", b"Once upon a time\n", &e).contains("a text file"));
        let odd = bad_model("m.bin", &[0, 1, 2, 250, 3], &e);
        assert!(odd.contains("length mismatch") && odd.contains("damaged"), "{odd}");
    }

    #[test]
    fn storage_use_says_what_the_figure_holds() {
        assert_eq!(
            storage_use(15_470_000, 10_000_000_000, 117_000),
            "This site uses 15.47 MB of the 10.0 GB the browser allows it (0.2%): 117 KB for what is listed \
             below, and about 15.35 MB for the lab's own files (its program and built-in models), kept so it works offline."
        );
        assert!(storage_use(15_470_000, 10_000_000_000, 0)
            .ends_with("(0.2%): the lab's own files (its program and built-in models), kept so it works offline."));
        // The estimate may round below the listed bytes: no negative remainder.
        assert_eq!(
            storage_use(1_000_000, 0, 1_056_540),
            "This site uses 1.00 MB of the 0.0 KB the browser allows it (0.0%), almost all of it for what is listed below."
        );
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size(1_056_540), "1.06 MB");
        assert_eq!(size(433_869), "434 KB");
        assert_eq!(size(6_227), "6.2 KB");
        assert_eq!(size(5_200_000_000), "5.2 GB");
    }

    #[test]
    fn a_mismatch_names_both_sizes() {
        let m = mismatch("tokenizer.bin", 32000, "stories260K.bin", 512);
        assert!(m.contains("32000") && m.contains("512") && m.contains("does not match"), "{m}");
    }

    #[test]
    fn runs_of_empty_lines_are_kept_as_one() {
        assert_eq!(one_blank_line("Peter\n\n\n\n\nran.\nHe hid.\n\n\n"), "Peter\n\nran.\nHe hid.");
        assert_eq!(one_blank_line("a\n\nb"), "a\n\nb");
        assert_eq!(one_blank_line(""), "");
    }
}
