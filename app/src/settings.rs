//! The generation settings as typed in the form, checked into numbers with plain-words errors.

pub use crate::protocol::compare::Sampling;
use crate::protocol::compare::MAX_COLUMNS;
pub use crate::protocol::Settings;

/// The raw text of the form fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub temperature: String,
    pub topp: String,
    pub seed: String,
    pub steps: String,
}

impl Form {
    pub fn parse(&self, seq_len: usize) -> Result<Settings, String> {
        let temperature = number(&self.temperature, "Temperature")?;
        let topp = number(&self.topp, "Top-p")?;
        let seed: u64 = whole(&self.seed, "Seed")?;
        if seed == 0 {
            // run.c's xorshift stays at zero forever from a zero seed.
            return Err("Seed must be at least 1.".into());
        }
        let steps = parse_steps(&self.steps, seq_len)?;
        Ok(Settings { temperature, topp, seed, steps })
    }
}

/// The max steps field: 0 (the whole context) up to `seq_len`.
pub fn parse_steps(text: &str, seq_len: usize) -> Result<usize, String> {
    let steps: usize = whole(text, "Steps")?;
    if steps > seq_len {
        return Err(format!("Steps must be at most {seq_len}, the model's context length (0 means all of it)."));
    }
    Ok(steps)
}

/// One row of "Compare settings" as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub temperature: String,
    pub topp: String,
    pub seed: String,
}

/// Checks 2 to `MAX_COLUMNS` rows into samplings, naming the row of the first bad one.
pub fn parse_rows(rows: &[Row]) -> Result<Vec<Sampling>, String> {
    if !(2..=MAX_COLUMNS).contains(&rows.len()) {
        return Err(format!("Compare 2 to {MAX_COLUMNS} settings, not {}.", rows.len()));
    }
    let one = |(i, r): (usize, &Row)| parse_row(r).map_err(|e| format!("Setting {}: {e}", i + 1));
    rows.iter().enumerate().map(one).collect()
}

fn parse_row(r: &Row) -> Result<Sampling, String> {
    let temperature = number(&r.temperature, "Temperature")?;
    if temperature < 0.0 {
        return Err(format!("Temperature must be 0 or more, not {temperature}."));
    }
    let topp = number(&r.topp, "Top-p")?;
    if !(0.0..=1.0).contains(&topp) {
        return Err(format!("Top-p must be between 0 and 1, not {topp}."));
    }
    let seed: u64 = whole(&r.seed, "Seed")?;
    if seed == 0 {
        return Err("Seed must be at least 1.".into());
    }
    Ok(Sampling { temperature, topp, seed })
}

/// A column's heading in words: "temperature 0 (always the likeliest) · top-p 0.9 · seed 42".
pub fn describe(s: &Sampling) -> String {
    let t = s.temperature;
    let how = if t == 0.0 {
        " (always the likeliest)"
    } else if t < 1.0 {
        " (calmer than the model)"
    } else if t == 1.0 {
        " (the model's own odds)"
    } else {
        " (wilder than the model)"
    };
    format!("temperature {}{how} · top-p {} · seed {}", s.temperature, s.topp, s.seed)
}

fn number(text: &str, name: &str) -> Result<f32, String> {
    match text.trim().parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{name} must be a number, not \"{}\".", text.trim())),
    }
}

fn whole<T: std::str::FromStr>(text: &str, name: &str) -> Result<T, String> {
    text.trim().parse::<T>().map_err(|_| format!("{name} must be a whole number ≥ 0, not \"{}\".", text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(t: &str, p: &str, seed: &str, steps: &str) -> Form {
        Form { temperature: t.into(), topp: p.into(), seed: seed.into(), steps: steps.into() }
    }

    #[test]
    fn good_forms_parse() {
        let s = form(" 1.0", "0.9", "133742", "256").parse(512).unwrap();
        assert_eq!(s, Settings { temperature: 1.0, topp: 0.9, seed: 133742, steps: 256 });
    }

    fn row(t: &str, p: &str, seed: &str) -> Row {
        Row { temperature: t.into(), topp: p.into(), seed: seed.into() }
    }

    #[test]
    fn compare_rows_parse_and_read_in_words() {
        let got = parse_rows(&[row("0", "0.9", "42"), row(" 1.2", "1", "7")]).unwrap();
        assert_eq!(
            got,
            vec![Sampling { temperature: 0.0, topp: 0.9, seed: 42 }, Sampling { temperature: 1.2, topp: 1.0, seed: 7 }]
        );
        assert_eq!(describe(&got[0]), "temperature 0 (always the likeliest) · top-p 0.9 · seed 42");
        assert_eq!(describe(&got[1]), "temperature 1.2 (wilder than the model) · top-p 1 · seed 7");
        assert_eq!(
            describe(&Sampling { temperature: 0.8, topp: 0.9, seed: 1 }).split(" · ").next(),
            Some("temperature 0.8 (calmer than the model)")
        );
    }

    #[test]
    fn bad_compare_rows_name_the_row() {
        let ok = row("1", "0.9", "1");
        let err = |bad: Row| parse_rows(&[ok.clone(), bad]).unwrap_err();
        assert_eq!(err(row("-1", "0.9", "1")), "Setting 2: Temperature must be 0 or more, not -1.");
        assert_eq!(err(row("1", "1.5", "1")), "Setting 2: Top-p must be between 0 and 1, not 1.5.");
        assert_eq!(err(row("1", "0.9", "0")), "Setting 2: Seed must be at least 1.");
        assert_eq!(err(row("hot", "0.9", "1")), "Setting 2: Temperature must be a number, not \"hot\".");
        assert_eq!(parse_rows(std::slice::from_ref(&ok)).unwrap_err(), "Compare 2 to 4 settings, not 1.");
        assert!(parse_rows(&vec![ok; 5]).is_err());
    }

    #[test]
    fn bad_forms_say_what_is_wrong() {
        assert_eq!(form("1", "0.9", "0", "8").parse(512).unwrap_err(), "Seed must be at least 1.");
        assert!(form("warm", "0.9", "1", "8").parse(512).unwrap_err().starts_with("Temperature must be a number"));
        assert!(form("1", "0.9", "1", "-3").parse(512).unwrap_err().starts_with("Steps must be a whole number"));
        assert!(form("1", "0.9", "1", "600").parse(512).unwrap_err().contains("at most 512"));
    }
}
