//! The generation settings as typed in the form, checked into numbers with plain-words errors.

/// Sampling settings for one run (ranges are checked again by the engine's `Sampler`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub temperature: f32,
    pub topp: f32,
    pub seed: u64,
    /// 0 means the whole context, as in run.c.
    pub steps: usize,
}

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
    text.trim()
        .parse::<T>()
        .map_err(|_| format!("{name} must be a whole number ≥ 0, not \"{}\".", text.trim()))
}
