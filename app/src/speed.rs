//! Auto's choice of backend by measurement: the decode speeds of the loaded model on the CPU and
//! on WebGPU, kept per (adapter, model shape) so a later visit reuses them, and the choice with
//! its reason in words. Pure, tested natively; the worker times and keeps them (`worker::speed`).

use serde::{Deserialize, Serialize};
use tinylm_engine::Config;

/// Decode speeds of one model shape on one adapter, in tokens per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Speeds {
    pub cpu: f64,
    pub gpu: f64,
}

/// When the speeds were measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    JustNow,
    /// Before (kept on this device).
    Earlier,
}

impl Speeds {
    /// WebGPU only when it is faster; a tie keeps the CPU, which starts at once.
    pub fn gpu_wins(&self) -> bool {
        self.gpu > self.cpu
    }

    /// "Measured just now on this device: WebGPU writes 850 tokens/s, the CPU 310 tokens/s, so
    /// WebGPU writes the story."
    pub fn reason(&self, when: When) -> String {
        let when = match when {
            When::JustNow => "Measured just now on this device",
            When::Earlier => "Measured earlier on this device",
        };
        let (cpu, gpu) = (rate(self.cpu), rate(self.gpu));
        if self.gpu_wins() {
            format!("{when}: WebGPU writes {gpu} tokens/s, the CPU {cpu} tokens/s, so WebGPU writes the story.")
        } else {
            format!("{when}: the CPU writes {cpu} tokens/s, WebGPU {gpu} tokens/s, so the CPU writes the story.")
        }
    }
}

/// Why Auto skips a software adapter without measuring it.
pub fn fallback_reason(adapter: &str) -> String {
    format!(
        "Using the CPU: the only WebGPU adapter here ({adapter}) is a software fallback that runs on this \
         processor, which the CPU path does faster."
    )
}

/// What the page says while the CPU writes and WebGPU is started and measured beside it.
pub const WARMING: &str = "The CPU writes at once while WebGPU starts; then the faster of the two, measured here, takes over.";

/// The file name a measurement is kept under: an FNV-1a hash of the adapter's description and
/// the model's shape, so any change of either misses.
pub fn key(adapter: &str, c: &Config) -> String {
    let text = format!("speed|{adapter}|{c:?}");
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    format!("{h:016x}.json")
}

/// "2,600", "310", "5.4": whole numbers with thousands separated, one decimal under 10.
pub fn rate(x: f64) -> String {
    if !x.is_finite() || x < 0.0 {
        return "–".into();
    }
    if x < 10.0 {
        return format!("{x:.1}");
    }
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_faster_backend_wins_and_the_reason_gives_both_figures() {
        let cpu_faster = Speeds { cpu: 2600.4, gpu: 5.44 };
        assert!(!cpu_faster.gpu_wins());
        assert_eq!(
            cpu_faster.reason(When::JustNow),
            "Measured just now on this device: the CPU writes 2,600 tokens/s, WebGPU 5.4 tokens/s, so the CPU writes the story."
        );
        let gpu_faster = Speeds { cpu: 310.0, gpu: 1234567.0 };
        assert!(gpu_faster.gpu_wins());
        assert!(gpu_faster
            .reason(When::Earlier)
            .starts_with("Measured earlier on this device: WebGPU writes 1,234,567 tokens/s, the CPU 310 tokens/s, so WebGPU"));
        // A tie keeps the CPU (it needs no start).
        assert!(!Speeds { cpu: 10.0, gpu: 10.0 }.gpu_wins());
    }

    #[test]
    fn rates_read_well() {
        assert_eq!(rate(999.6), "1,000");
        assert_eq!(rate(100.0), "100");
        assert_eq!(rate(9.96), "10.0");
        assert_eq!(rate(f64::NAN), "–");
    }

    #[test]
    fn keys_differ_by_adapter_and_shape() {
        let c = Config::llama2c([64, 172, 5, 8, 4, 512, 512], true);
        let d = Config { seq_len: 256, ..c };
        assert_ne!(key("a", &c), key("b", &c));
        assert_ne!(key("a", &c), key("a", &d));
        assert_eq!(key("a", &c), key("a", &c));
    }
}
