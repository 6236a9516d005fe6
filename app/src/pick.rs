//! Which of the picked or dropped files is the model and which the tokenizer.

/// Given `(name, size)` of each file, the index of the model and of the tokenizer (if any).
/// A name with "tok" in it marks the tokenizer; otherwise the smaller file is (tokenizers are
/// kilobytes, models megabytes).
pub fn split(files: &[(String, u64)]) -> Result<(usize, Option<usize>), String> {
    let is_tok = |i: usize| files[i].0.to_ascii_lowercase().contains("tok");
    match files.len() {
        0 => Err("Choose a model file (.bin), and its tokenizer if it has its own.".into()),
        1 if is_tok(0) => Err(format!("“{}” looks like a tokenizer. Choose the model file too (both at once).", files[0].0)),
        1 => Ok((0, None)),
        2 => {
            let tok = match (is_tok(0), is_tok(1)) {
                (true, false) => 0,
                (false, true) => 1,
                _ if files[0].1 <= files[1].1 => 0,
                _ => 1,
            };
            Ok((1 - tok, Some(tok)))
        }
        n => Err(format!("{n} files were given: choose only the model and its tokenizer.")),
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    fn f(names: &[(&str, u64)]) -> Vec<(String, u64)> {
        names.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    #[test]
    fn tokenizer_by_name_then_by_size() {
        assert_eq!(split(&f(&[("tok512.bin", 6227), ("stories260K.bin", 1_056_540)])), Ok((1, Some(0))));
        assert_eq!(split(&f(&[("model.bin", 9), ("tokenizer.bin", 433_869)])), Ok((0, Some(1))));
        assert_eq!(split(&f(&[("a.bin", 900), ("b.bin", 100)])), Ok((0, Some(1))));
        assert_eq!(split(&f(&[("m.bin", 5)])), Ok((0, None)));
    }

    #[test]
    fn odd_picks_are_explained() {
        assert!(split(&[]).is_err());
        assert!(split(&f(&[("tokenizer.bin", 5)])).unwrap_err().contains("looks like a tokenizer"));
        assert!(split(&f(&[("a", 1), ("b", 2), ("c", 3)])).unwrap_err().starts_with("3 files"));
    }
}
