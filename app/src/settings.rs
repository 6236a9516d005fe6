//! The generation settings as typed in the form, checked into numbers with plain-words errors.

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
        let steps: usize = whole(&self.steps, "Steps")?;
        if steps > seq_len {
            return Err(format!("Steps must be at most {seq_len}, the model's context length (0 means all of it)."));
        }
        Ok(Settings { temperature, topp, seed, steps })
    }
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

    #[test]
    fn bad_forms_say_what_is_wrong() {
        assert_eq!(form("1", "0.9", "0", "8").parse(512).unwrap_err(), "Seed must be at least 1.");
        assert!(form("warm", "0.9", "1", "8").parse(512).unwrap_err().starts_with("Temperature must be a number"));
        assert!(form("1", "0.9", "1", "-3").parse(512).unwrap_err().starts_with("Steps must be a whole number"));
        assert!(form("1", "0.9", "1", "600").parse(512).unwrap_err().contains("at most 512"));
    }
}
