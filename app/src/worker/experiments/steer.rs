//! Steering: a direction at one layer from the mean difference of two prompt lists' residuals
//! (on the CPU), added at several strengths while the story is written (same seed).

use tinylm_engine::generate::Backend;
use tinylm_engine::trace::{first_difference, inspect, steering_direction, Edits, Inspection, Intervention, Steer};
use tinylm_engine::LoadedModel;

use super::run::{err, story, told, Ticker};
use crate::protocol::experiments::{ExperimentNews, Steered, SteeredStory, MAX_STEER_PROMPTS, MAX_STRENGTHS};
use crate::protocol::Settings;
use crate::worker::bridge::now_ms;
use crate::worker::session::{Session, NO_MODEL};

/// The two prompt lists: steering pushes toward the first and away from the second.
pub struct Lists<'a> {
    pub toward: &'a [String],
    pub away: &'a [String],
}

pub async fn run(
    s: &mut Session,
    prompt: &str,
    settings: &Settings,
    layer: usize,
    lists: Lists<'_>,
    strengths: &[f32],
    tick: &mut Ticker<'_>,
) -> Result<Option<ExperimentNews>, String> {
    let t0 = now_ms();
    if strengths.is_empty() || strengths.len() > MAX_STRENGTHS {
        return Err(format!("Give between 1 and {MAX_STRENGTHS} strengths."));
    }
    let (stored, active) = s.active_mut()?;
    let tok = stored.model.need_tokenizer().map_err(|_| NO_MODEL.to_string())?;
    let c = *stored.model.config();
    let Some(toward) = residuals(&stored.model, lists.toward, "“toward”", tick).await? else { return Ok(None) };
    let Some(away) = residuals(&stored.model, lists.away, "“away”", tick).await? else { return Ok(None) };
    let direction = steering_direction(&toward, &away, layer).map_err(err)?;
    let backend = &mut active.backend;
    let prompt = tok.encode(prompt, true, false);
    backend.set_edits(None).map_err(err)?;
    let Some(original) = story(backend, &prompt, settings, tick, "Writing the unchanged story").await? else { return Ok(None) };
    let mut runs = Vec::new();
    for &strength in strengths {
        let change = Intervention { steer: Some(Steer { layer, direction: direction.clone(), strength }), ..Default::default() };
        backend.set_edits(Some(&Edits::new(&c, &change, None).map_err(err)?)).map_err(err)?;
        let what = format!("Writing the story at strength {strength}");
        let Some(tokens) = story(backend, &prompt, settings, tick, &what).await? else { return Ok(None) };
        runs.push(SteeredStory { strength, first_difference: first_difference(&original, &tokens), story: told(tok, tokens)? });
    }
    backend.set_edits(None).map_err(err)?;
    let direction_norm = direction.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    Ok(Some(ExperimentNews::Steered(Box::new(Steered {
        id: tick.id(),
        layer,
        direction_norm,
        original: told(tok, original)?,
        runs,
        backend: backend.name(),
        ms: now_ms() - t0,
    }))))
}

/// Each prompt of a list through the unchanged model on the CPU (as `tinylm generate --steer`).
async fn residuals(
    model: &LoadedModel,
    texts: &[String],
    name: &str,
    tick: &mut Ticker<'_>,
) -> Result<Option<Vec<Inspection>>, String> {
    let texts: Vec<&String> = texts.iter().filter(|t| !t.trim().is_empty()).collect();
    if texts.is_empty() || texts.len() > MAX_STEER_PROMPTS {
        return Err(format!("The {name} list needs between 1 and {MAX_STEER_PROMPTS} sentences."));
    }
    let tok = model.need_tokenizer().map_err(err)?;
    let mut out = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let tokens = tok.encode(t, true, false);
        if tokens.len() > model.config().seq_len {
            return Err(format!("A sentence of the {name} list is longer than the model's context."));
        }
        out.push(inspect(&mut model.cpu(), &tokens).map_err(err)?);
        if tick.tick(&format!("Reading the {name} sentences"), i + 1, texts.len()).await {
            return Ok(None);
        }
    }
    Ok(Some(out))
}
