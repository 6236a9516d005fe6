//! The experiment flags shared by `generate`, `logits` and `inspect`: head knock-outs
//! (`--ablate L.H,… [--ablate-mean]`), skipped blocks (`--skip-attn`, `--skip-mlp`) and steering
//! (`--steer L --toward TEXT… --away TEXT… --strength S,…`), turned into `trace::Edits`.

use serde_json::{json, Value};
use tinylm_engine::trace::{
    inspect, steering_direction, Ablation, CpuModel, Edits, HeadId, HeadMeans, HeadMeansRun, Inspection, Intervention, Steer,
};
use tinylm_engine::{Error, LoadedModel, Result};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct Flags {
    /// Knock out heads, LAYER.HEAD,… (0-based, as inspect --layer/--head): their output before the
    /// output projection is zeroed (or set to its mean with --ablate-mean).
    #[arg(long, value_delimiter = ',', value_name = "L.H,…")]
    pub ablate: Vec<String>,
    /// Knocked-out heads output their mean over the text's positions in the unchanged model
    /// (generate: over the unchanged story, prompt included) instead of zeros.
    #[arg(long, requires = "ablate")]
    pub ablate_mean: bool,
    /// Skip these layers' attention blocks (their output zeroed, the residual passing through).
    #[arg(long, value_delimiter = ',', value_name = "L,…")]
    pub skip_attn: Vec<usize>,
    /// Skip these layers' MLP blocks (their output zeroed, the residual passing through).
    #[arg(long, value_delimiter = ',', value_name = "L,…")]
    pub skip_mlp: Vec<usize>,
    /// Steer: add strength × a direction to the residual after this layer (0-based) at every
    /// position. The direction is the mean residual of the --toward prompts minus that of the
    /// --away prompts (each prompt averaged over its tokens after BOS).
    #[arg(long, value_name = "LAYER", requires_all = ["toward", "away"])]
    pub steer: Option<usize>,
    /// A prompt the steering pushes toward (repeat for a list), e.g. "She was happy."
    #[arg(long, value_name = "TEXT", requires = "steer")]
    pub toward: Vec<String>,
    /// A prompt the steering pushes away from (repeat for a list), e.g. "She was sad."
    #[arg(long, value_name = "TEXT", requires = "steer")]
    pub away: Vec<String>,
    /// Steering strength; generate takes a list (one story per strength, side by side).
    #[arg(long, value_delimiter = ',', default_value = "4", allow_negative_numbers = true, requires = "steer")]
    pub strength: Vec<f32>,
}

/// The flags checked, with the steering direction worked out (means come later: they need
/// the text).
pub struct Plan {
    pub heads: Vec<HeadId>,
    pub ablation: Ablation,
    pub skip_attn: Vec<usize>,
    pub skip_mlp: Vec<usize>,
    /// (layer, direction) and the prompts it came from.
    pub steer: Option<(usize, Vec<f32>)>,
    pub toward: Vec<String>,
    pub away: Vec<String>,
    pub strengths: Vec<f32>,
}

impl Flags {
    pub fn is_none(&self) -> bool {
        self.ablate.is_empty() && self.skip_attn.is_empty() && self.skip_mlp.is_empty() && self.steer.is_none()
    }

    /// Parses the heads and works out the steering direction on the CPU (with the model's
    /// adapter, unmerged, when it has one); its tokenizer encodes the steering prompts.
    pub fn plan(&self, model: &LoadedModel) -> Result<Plan> {
        let heads = self.ablate.iter().map(|s| s.parse()).collect::<Result<Vec<HeadId>>>()?;
        let steer = match self.steer {
            None => None,
            Some(layer) => {
                let tok = model
                    .tokenizer()
                    .ok_or_else(|| Error::InvalidSetting("--steer needs --tokenizer to encode its prompts".into()))?;
                let list = |texts: &[String]| -> Result<Vec<Inspection>> {
                    texts.iter().map(|t| inspect(&mut model.cpu(), &tok.encode(t, true, false))).collect()
                };
                Some((layer, steering_direction(&list(&self.toward)?, &list(&self.away)?, layer)?))
            }
        };
        let plan = Plan {
            heads,
            ablation: if self.ablate_mean { Ablation::Mean } else { Ablation::Zero },
            skip_attn: self.skip_attn.clone(),
            skip_mlp: self.skip_mlp.clone(),
            steer,
            toward: self.toward.clone(),
            away: self.away.clone(),
            strengths: if self.steer.is_some() { self.strength.clone() } else { vec![] },
        };
        // Layer and head numbers are checked before any text is run (means come later).
        Edits::new(model.config(), &Intervention { ablation: Ablation::Zero, ..plan.intervention(0.0) }, None)?;
        Ok(plan)
    }
}

impl Plan {
    /// The intervention at steering strength `strength` (ignored without --steer).
    pub fn intervention(&self, strength: f32) -> Intervention {
        Intervention {
            ablate: self.heads.clone(),
            ablation: self.ablation,
            skip_attn: self.skip_attn.clone(),
            skip_mlp: self.skip_mlp.clone(),
            steer: self.steer.as_ref().map(|(layer, d)| Steer { layer: *layer, direction: d.clone(), strength }),
        }
    }

    /// Whether mean ablation needs the heads' means over a text.
    pub fn needs_means(&self) -> bool {
        self.ablation == Ablation::Mean && !self.heads.is_empty()
    }

    /// The heads' means over `tokens` on the CPU when mean ablation needs them.
    pub fn means(&self, model: &LoadedModel, tokens: &[u32]) -> Result<Option<HeadMeans>> {
        if !self.needs_means() {
            return Ok(None);
        }
        HeadMeansRun::run(&CpuModel::adapted(model.forward_weights(), model.adapter().map(|a| a.as_ref()))?, tokens).map(Some)
    }

    /// The one strength `logits` and `inspect` use.
    pub fn single_strength(&self) -> Result<f32> {
        match self.strengths.as_slice() {
            [] => Ok(0.0),
            [s] => Ok(*s),
            _ => Err(Error::InvalidSetting("give one --strength here (generate takes a list)".into())),
        }
    }

    /// What the JSON outputs say was changed.
    pub fn to_json(&self, strength: Option<f32>) -> Value {
        let steer = self.steer.as_ref().map(|(layer, d)| {
            let norm = d.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            json!({"layer": layer, "toward": self.toward, "away": self.away, "strength": strength, "direction_norm": norm, "direction": d})
        });
        json!({
            "ablate": self.heads.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            "ablation": self.ablation,
            "skip_attn": self.skip_attn,
            "skip_mlp": self.skip_mlp,
            "steer": steer,
            "description": self.intervention(strength.unwrap_or(0.0)).describe(),
        })
    }
}
