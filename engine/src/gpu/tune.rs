//! `gpu::tune`: picks the decode kernels' workgroup shapes by measuring every candidate
//! (`MATVEC_CANDIDATES`, `ATTENTION_CANDIDATES`) on the adapter at hand and on the model's own
//! matrix shapes — the classifier (`norm`, as decode runs it; also over f16 weights where the
//! device was opened with SHADER_F16), one layer's four matvecs, and attention at mid-context. Weights are zero-filled buffers: the kernels' speed does not
//! depend on the values.
//!
//! Timing is wall clock around a submit of many dispatches and a 4-byte readback (timestamp
//! queries are an optional feature, so this works on every WebGPU device), in rounds that
//! interleave the candidates (drift hits them alike), median per candidate. Submits are sized
//! from the weights' bytes and one timed dispatch, so slow adapters (software rasterizers) get
//! few dispatches per submit. The whole tuning, pipeline compilation included, stops when
//! `budget_ms` is spent; the result then says it was cut and chooses among what was measured. The default shape is measured first in each round
//! and is kept unless another is clearly (`MARGIN`) faster, so noise does not flip the choice.

use super::context::GpuContext;
use super::kernels::{buffer, groups, step_buffer_in, step_layout, uniform, Kernel, Step};
use super::model::MAX_CHUNK_ROWS;
use super::plan::{attention_dims, FUSED_MAX_K};
use super::readback;
use super::registry::{attention_source, matvec_source, Spec, WeightFormat, ATTENTION, MATVEC_CLS};
use super::split::split_rows;
use super::uniforms::MatmulDims;
use super::workgroups::{MatvecShape, Workgroups, ATTENTION_CANDIDATES, MATVEC_CANDIDATES};
use crate::config::Config;
use crate::error::{Error, Result};

/// The JSON layout's version; a stored tuning of another version is measured again.
pub const TUNING_VERSION: u32 = 1;
/// Rounds per candidate when the budget allows.
const ROUNDS: usize = 5;
/// Another shape must beat the default's median by this fraction to be chosen.
const MARGIN: f64 = 0.03;
/// Bytes of weights one timed submit should read (many dispatches of a small matrix).
const SUBMIT_BYTES: usize = 16 << 20;
const MAX_REPS: usize = 32;

/// One matvec candidate's medians (µs per dispatch; `None`: not measured within the budget).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MatvecTiming {
    pub shape: MatvecShape,
    /// The classifier matvec.
    pub classifier_us: Option<f64>,
    /// The classifier over f16 weights (measured only on devices with SHADER_F16 enabled).
    #[serde(default)]
    pub classifier_f16_us: Option<f64>,
    /// One layer's four matvecs together.
    pub layer_us: Option<f64>,
    /// Timed submits behind each median.
    pub samples: usize,
}

/// One attention candidate's median (µs per dispatch, all heads, one row at mid-context).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttentionTiming {
    pub lanes: u32,
    pub us: Option<f64>,
    pub samples: usize,
}

/// A tuning: the shapes chosen for one (adapter, model shape) and the table behind the choice.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tuning {
    pub version: u32,
    /// The adapter it was measured on (`GpuContext::adapter`).
    pub adapter: String,
    /// The model shape it was measured for; it applies to this shape only.
    pub config: Config,
    pub workgroups: Workgroups,
    pub matvec: Vec<MatvecTiming>,
    pub attention: Vec<AttentionTiming>,
    /// Dispatches per timed submit: classifier, layer, attention, f16 classifier (when measured).
    pub reps: Vec<usize>,
    pub budget_ms: f64,
    pub elapsed_ms: f64,
    /// The budget ran out before every candidate had its rounds.
    pub cut: bool,
    /// Why nothing was measured (the fused decode path does not apply to this shape).
    pub note: Option<String>,
}

impl Tuning {
    /// The shapes to load `c` with: `Error::Mismatch` when this tuning was made for another
    /// model shape (or by another version of the tuner).
    pub fn workgroups_for(&self, c: &Config) -> Result<Workgroups> {
        if self.version != TUNING_VERSION {
            return Err(Error::Mismatch(format!(
                "this GPU tuning has format version {}, this program reads version {TUNING_VERSION}: tune again",
                self.version
            )));
        }
        if self.config != *c {
            let s = |c: &Config| {
                format!(
                    "dim {} hidden {} layers {} heads {}/{} vocab {} seq {}",
                    c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len
                )
            };
            return Err(Error::Mismatch(format!(
                "this GPU tuning was measured for a model of shape {}, not this one ({})",
                s(&self.config),
                s(c)
            )));
        }
        Ok(self.workgroups)
    }

    /// Parses a tuning's JSON (`bench --tune` prints it); `Error::InvalidSetting` if it is not one.
    pub fn from_json(text: &str) -> Result<Tuning> {
        serde_json::from_str(text)
            .map_err(|e| Error::InvalidSetting(format!("not a GPU tuning (JSON from `tinylm bench --backend gpu --tune`): {e}")))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serializes")
    }
}

/// Whether matvec.wgsl runs this model's decode (plan::fusable for every matrix).
fn fused_applies<'a>(mut mats: impl Iterator<Item = &'a Mat>) -> bool {
    mats.all(|m| m.cols <= FUSED_MAX_K && m.chunks.iter().all(|r| r.len() % 4 == 0))
}

/// A weight matrix of the model, as zeroed row chunks (of f32, or f16 for the f16 classifier).
struct Mat {
    cols: usize,
    elem: usize,
    chunks: Vec<std::ops::Range<usize>>,
    bufs: Vec<wgpu::Buffer>,
    dims: Vec<wgpu::Buffer>,
}

impl Mat {
    fn new(ctx: &GpuContext, rows: usize, cols: usize, max_bytes: u64) -> Result<Mat> {
        Self::of(ctx, rows, cols, max_bytes, 4)
    }

    fn of(ctx: &GpuContext, rows: usize, cols: usize, max_bytes: u64, elem: usize) -> Result<Mat> {
        let chunks = split_rows(rows, cols, max_bytes, MAX_CHUNK_ROWS)?;
        let bufs =
            chunks.iter().map(|r| buffer(ctx, "tune w", (r.len() * cols * elem) as u64, wgpu::BufferUsages::STORAGE)).collect();
        let dims = chunks.iter().map(|r| uniform(ctx, "tune d", &MatmulDims::chunk(r.clone(), cols, rows, false))).collect();
        Ok(Mat { cols, elem, chunks, bufs, dims })
    }

    fn bytes(&self) -> usize {
        self.chunks.iter().map(|r| r.len() * self.cols * self.elem).sum()
    }
}

/// Shared inputs and outputs of the timed dispatches.
struct Rig {
    step_layout: wgpu::BindGroupLayout,
    step_bg: wgpu::BindGroup,
    _step: wgpu::Buffer,
    x: wgpu::Buffer,
    g: wgpu::Buffer,
    out: wgpu::Buffer,
    probe: wgpu::Buffer,
    cls: Mat,
    /// The classifier in f16, where the device has SHADER_F16 enabled.
    cls_f16: Option<Mat>,
    layer: Vec<Mat>,
    att: [wgpu::Buffer; 5],
}

/// One dispatch, ready to record.
struct Job {
    pipeline: wgpu::ComputePipeline,
    bg: wgpu::BindGroup,
    groups: [u32; 3],
}

/// A candidate's pipelines and jobs, and its samples (µs per dispatch).
struct Candidate {
    jobs: Vec<Vec<Job>>,
    /// Each job group's kind: 0 classifier, 1 layer, 2 attention, 3 f16 classifier (its
    /// `Tuning::reps` slot).
    kinds: Vec<usize>,
    samples: Vec<Vec<f64>>,
}

impl Rig {
    fn new(ctx: &GpuContext, c: &Config) -> Result<Rig> {
        use wgpu::BufferUsages as U;
        let max = ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size);
        let (d, h, kv) = (c.dim, c.hidden_dim, c.kv_dim());
        let step_layout = step_layout(ctx);
        let (step, step_bg) = step_buffer_in(ctx, &step_layout, 1);
        ctx.queue.write_buffer(
            &step,
            0,
            bytemuck::bytes_of(&Step { n_rows: 1, pos0: (c.seq_len / 2) as u32, ..Step::default() }),
        );
        let k = d.max(h);
        let ones = |n: usize| super::kernels::storage(ctx, "tune x", &vec![0.5f32; n], U::empty());
        let widest = c.vocab_size.max(2 * h).max(d + 2 * kv);
        Ok(Rig {
            step_layout,
            step_bg,
            _step: step,
            x: ones(2 * k),
            g: ones(k),
            out: buffer(ctx, "tune out", (widest * 4) as u64, U::STORAGE | U::COPY_SRC),
            probe: buffer(ctx, "tune probe", 4, U::MAP_READ | U::COPY_DST),
            cls: Mat::new(ctx, c.vocab_size, d, max)?,
            cls_f16: match ctx.device.features().contains(wgpu::Features::SHADER_F16) {
                true => Some(Mat::of(ctx, c.vocab_size, d, max, 2)?),
                false => None,
            },
            layer: vec![
                Mat::new(ctx, d + 2 * kv, d, max)?,
                Mat::new(ctx, d, d, max)?,
                Mat::new(ctx, 2 * h, d, max)?,
                Mat::new(ctx, d, h, max)?,
            ],
            att: [
                ones(d),
                ones(2 * c.seq_len * kv),
                buffer(ctx, "tune att", (c.n_heads * c.seq_len * 4) as u64, U::STORAGE),
                buffer(ctx, "tune o", (d * 4) as u64, U::STORAGE),
                uniform(ctx, "tune att d", &attention_dims(c)),
            ],
        })
    }

    fn kernel(&self, ctx: &GpuContext, spec: &Spec, src: &str) -> Kernel {
        Kernel::new(ctx, spec, src, Some(&self.step_layout))
    }

    /// `norm` over every chunk of `m` in shape `s`.
    fn matvec_jobs(&self, ctx: &GpuContext, k: &Kernel, s: MatvecShape, m: &Mat) -> Result<Vec<Job>> {
        m.bufs
            .iter()
            .zip(&m.dims)
            .zip(&m.chunks)
            .map(|((w, d), r)| {
                Ok(Job {
                    pipeline: k.pipeline("norm")?.clone(),
                    bg: k.bind(ctx, "tune", &[&self.x, w, &self.out, d, &self.g]),
                    groups: [groups(r.len(), s.rows()), 1, 1],
                })
            })
            .collect()
    }

    /// Jobs of shape `s`: [classifier, layer, f16 classifier if the device has it].
    fn matvec_candidate(&self, ctx: &GpuContext, s: MatvecShape) -> Result<Candidate> {
        let k = self.kernel(ctx, &MATVEC_CLS, &matvec_source(s, WeightFormat::F32, &[]));
        let cls = self.matvec_jobs(ctx, &k, s, &self.cls)?;
        let layer = self
            .layer
            .iter()
            .map(|m| self.matvec_jobs(ctx, &k, s, m))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let mut cand = Candidate { jobs: vec![cls, layer], kinds: vec![0, 1], samples: vec![Vec::new(), Vec::new()] };
        if let Some(m) = &self.cls_f16 {
            let k16 = self.kernel(ctx, &MATVEC_CLS, &matvec_source(s, WeightFormat::F16, &[]));
            cand.jobs.push(self.matvec_jobs(ctx, &k16, s, m)?);
            cand.kinds.push(3);
            cand.samples.push(Vec::new());
        }
        Ok(cand)
    }

    fn attention_candidate(&self, ctx: &GpuContext, lanes: u32, heads: usize) -> Result<Candidate> {
        let k = self.kernel(ctx, &ATTENTION, &attention_source(lanes));
        let a = &self.att;
        let job = Job {
            pipeline: k.pipeline("main")?.clone(),
            bg: k.bind(ctx, "tune", &[&a[0], &a[1], &a[2], &a[3], &a[4]]),
            groups: [heads as u32, 1, 1],
        };
        Ok(Candidate { jobs: vec![vec![job]], kinds: vec![2], samples: vec![Vec::new()] })
    }

    /// One timed submit per job group of each of `cands`; false (stopping) once out of time.
    async fn sample(
        &self,
        ctx: &GpuContext,
        cands: &mut [Candidate],
        reps: &[usize],
        out_of_time: &dyn Fn() -> bool,
        now_ms: &dyn Fn() -> f64,
    ) -> Result<bool> {
        for cand in cands {
            for (g, jobs) in cand.jobs.iter().enumerate() {
                if out_of_time() {
                    return Ok(false);
                }
                let n = reps[cand.kinds[g]];
                let ms = self.time(ctx, jobs, n, now_ms).await?;
                cand.samples[g].push(ms * 1e3 / n as f64);
            }
        }
        Ok(true)
    }

    /// Records `reps` times `jobs`, submits, waits for a 4-byte readback: ms of wall clock.
    async fn time(&self, ctx: &GpuContext, jobs: &[Job], reps: usize, now_ms: &dyn Fn() -> f64) -> Result<f64> {
        let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tune") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            for _ in 0..reps {
                for j in jobs {
                    pass.set_pipeline(&j.pipeline);
                    pass.set_bind_group(0, &j.bg, &[]);
                    pass.set_bind_group(1, &self.step_bg, &[0]);
                    pass.dispatch_workgroups(j.groups[0], j.groups[1], j.groups[2]);
                }
            }
        }
        enc.copy_buffer_to_buffer(&self.out, 0, &self.probe, 0, 4);
        let t0 = now_ms();
        let sub = ctx.queue.submit([enc.finish()]);
        readback::read(ctx, &self.probe, 4, sub).await?;
        Ok(now_ms() - t0)
    }
}

/// Dispatches per submit so one submit reads about `SUBMIT_BYTES`.
fn reps_for(bytes: usize) -> usize {
    (SUBMIT_BYTES / bytes.max(1)).clamp(2, MAX_REPS)
}

/// The median, to the nanosecond (enough for µs tables, and short in JSON).
fn median(v: &[f64]) -> Option<f64> {
    let mut s: Vec<f64> = v.iter().map(|x| (x * 1e3).round() / 1e3).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

/// The index with the lowest median, the default (index 0) unless beaten by `MARGIN`.
fn choose(medians: &[Option<f64>]) -> usize {
    let best = medians.iter().enumerate().filter_map(|(i, m)| m.map(|m| (i, m))).min_by(|a, b| a.1.total_cmp(&b.1));
    match (best, medians.first().copied().flatten()) {
        (Some((i, m)), Some(d)) if m < d * (1.0 - MARGIN) => i,
        (Some((i, _)), None) => i,
        _ => 0,
    }
}

/// Measures the candidates for model shape `c` on `ctx` within about `budget_ms` (wall clock
/// from `now_ms`, in milliseconds; the browser passes `performance.now`).
pub async fn tune_async(ctx: &GpuContext, c: &Config, budget_ms: f64, now_ms: &dyn Fn() -> f64) -> Result<Tuning> {
    c.validate().map_err(Error::InvalidSetting)?;
    let t0 = now_ms();
    let fits = |w: Workgroups| w.check(&ctx.limits).is_ok();
    let shapes: Vec<MatvecShape> = MATVEC_CANDIDATES
        .iter()
        .copied()
        .filter(|&s| fits(Workgroups { layers: s, classifier: s, classifier_f16: Some(s), ..Workgroups::default() }))
        .collect();
    let lanes: Vec<u32> =
        ATTENTION_CANDIDATES.iter().copied().filter(|&a| fits(Workgroups { attention: a, ..Workgroups::default() })).collect();
    let rig = ctx.scoped("preparing the GPU tuning", || Rig::new(ctx, c)).await??;
    let mut t = Tuning {
        version: TUNING_VERSION,
        adapter: ctx.adapter.clone(),
        config: *c,
        workgroups: Workgroups::default(),
        matvec: Vec::new(),
        attention: Vec::new(),
        reps: [
            reps_for(rig.cls.bytes()),
            reps_for(rig.layer.iter().map(Mat::bytes).sum()),
            reps_for(c.seq_len / 2 * 2 * c.dim * 4),
        ]
        .into_iter()
        .chain(rig.cls_f16.as_ref().map(|m| reps_for(m.bytes())))
        .collect(),
        budget_ms,
        elapsed_ms: 0.0,
        cut: false,
        note: None,
    };
    if !fused_applies(std::iter::once(&rig.cls).chain(&rig.layer)) {
        t.note = Some(
            "the fused decode kernels do not apply to this model shape (unaligned rows or inputs over 2816), so there is nothing to tune".into(),
        );
        t.elapsed_ms = now_ms() - t0;
        return Ok(t);
    }
    let out_of_time = || now_ms() - t0 > budget_ms;
    // Each candidate in turn: compile, an untimed submit per job group (the first candidate of
    // each kind also times one dispatch, to size its submits to about `target_ms`), then one
    // timed sample; so a spent budget leaves the earliest candidates (the default first) measured.
    let target_ms = (budget_ms / 200.0).clamp(1.0, 20.0);
    let mut calibrated = [false; 4];
    let mut cands: Vec<Candidate> = Vec::new();
    for i in 0..shapes.len() + lanes.len() {
        if out_of_time() {
            t.cut = true;
            break;
        }
        let cand = ctx
            .scoped("compiling a tuning candidate", || match shapes.get(i) {
                Some(&s) => rig.matvec_candidate(ctx, s),
                None => rig.attention_candidate(ctx, lanes[i - shapes.len()], c.n_heads),
            })
            .await??;
        for (jobs, &k) in cand.jobs.iter().zip(&cand.kinds) {
            rig.time(ctx, jobs, 1, now_ms).await?;
            if !calibrated[k] {
                let one = rig.time(ctx, jobs, 1, now_ms).await?;
                t.reps[k] = t.reps[k].min((target_ms / one.max(1e-3)) as usize).max(1);
                calibrated[k] = true;
            }
        }
        cands.push(cand);
        let last = cands.len() - 1;
        if !rig.sample(ctx, &mut cands[last..], &t.reps, &out_of_time, now_ms).await? {
            t.cut = true;
            break;
        }
    }
    for _ in 1..ROUNDS {
        if t.cut || !rig.sample(ctx, &mut cands, &t.reps, &out_of_time, now_ms).await? {
            t.cut = true;
            break;
        }
    }
    ctx.check()?;
    t.matvec = shapes
        .iter()
        .enumerate()
        .map(|(i, &shape)| {
            let s = cands.get(i).map_or(&[][..], |c| &c.samples[..]);
            let med = |k: usize| s.get(k).and_then(|v| median(v));
            MatvecTiming {
                shape,
                classifier_us: med(0),
                layer_us: med(1),
                classifier_f16_us: med(2),
                samples: s.iter().map(Vec::len).min().unwrap_or(0),
            }
        })
        .collect();
    t.attention = lanes
        .iter()
        .enumerate()
        .map(|(i, &lanes)| {
            let s = cands.get(shapes.len() + i).map_or(&[][..], |c| &c.samples[0][..]);
            AttentionTiming { lanes, us: median(s), samples: s.len() }
        })
        .collect();
    let cls: Vec<_> = t.matvec.iter().map(|m| m.classifier_us).collect();
    let layer: Vec<_> = t.matvec.iter().map(|m| m.layer_us).collect();
    let att_us: Vec<_> = t.attention.iter().map(|a| a.us).collect();
    let f16: Vec<_> = t.matvec.iter().map(|m| m.classifier_f16_us).collect();
    t.workgroups = Workgroups {
        classifier: shapes[choose(&cls)],
        layers: shapes[choose(&layer)],
        classifier_f16: rig.cls_f16.as_ref().map(|_| shapes[choose(&f16)]),
        attention: lanes[choose(&att_us)],
    };
    t.elapsed_ms = (now_ms() - t0).round();
    Ok(t)
}

/// Blocking `tune_async` with the process clock.
#[cfg(not(target_arch = "wasm32"))]
pub fn tune(ctx: &GpuContext, c: &Config, budget_ms: f64) -> Result<Tuning> {
    let start = std::time::Instant::now();
    let now = move || start.elapsed().as_secs_f64() * 1e3;
    pollster::block_on(tune_async(ctx, c, budget_ms, &now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_kept_unless_clearly_beaten() {
        assert_eq!(choose(&[Some(10.0), Some(9.8), None]), 0, "2% is noise");
        assert_eq!(choose(&[Some(10.0), Some(9.0), Some(9.5)]), 1);
        assert_eq!(choose(&[None, Some(5.0), Some(4.0)]), 2, "no default measured: the fastest");
        assert_eq!(choose(&[None, None]), 0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
        assert_eq!(reps_for(1), MAX_REPS);
        assert_eq!(reps_for(usize::MAX), 2);
    }
}
