//! Fitting the deep image prior to one corrupted image: `min_θ E(f_θ(z); x₀)` by full-batch Adam from a
//! random θ, with the reference notebooks' details (../shared/specs/generalization.md §2.3): the code z is
//! U(0, 0.1) noise, perturbed by N(0, σ_p²) at every iteration; the output is averaged (EMA 0.99); optional
//! backtracking restores the parameters when PSNR(output, x₀) falls by more than 5 dB in one iteration.
//! Early stopping is the regulariser, and the clean image is unknown in practice, so a stopping rule that
//! needs none is offered: the running variance of the outputs over a window (Wang et al., "Early stopping
//! for deep image prior", 2021) — stop once it has not reached a new minimum (by at least `min_improvement`,
//! relative) for `patience` iterations, and return the averaged output of the iteration of the minimum.
//!
//! A fit can be saved after any iteration and resumed bit-identically (same seed, same thread count).

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use nn_core::checkpoint::{load_tensors, read_json, save_tensors, write_json_atomic};
use nn_core::data::fingerprint_tensors;
use nn_core::models::SeededVarMap;
use nn_core::optim::{Optimizer, OptimizerConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::metrics::{psnr_tensors, ssim_tensors};
use super::net::{SkipNet, SkipNetParams};
use crate::{GenError, Result};

/// What the fit restores.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DipTask {
    /// Denoising (and any corruption left to early stopping): `E = mean((x − x₀)²)`.
    Denoise,
    /// Inpainting: `E = mean(((x − x₀) ⊙ m)²)` with a (1 or C, H, W) mask `m` of ones on known pixels.
    Inpaint {
        /// 1 where x₀ is known, 0 where it is missing.
        mask: Tensor,
    },
    /// Super-resolution: x₀ is the low-resolution image, the output is `factor` times larger, and
    /// `E = mean((d(x) − x₀)²)` with the reference code's Lanczos downsampler d
    /// ([`super::layers::lanczos_downsample`]; factor 2, 4 or 8).
    SuperResolution {
        /// The magnification (2, 4 or 8).
        factor: usize,
    },
}

/// The running-variance stopping rule (no clean image needed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StopRule {
    /// Outputs in the window whose variance is tracked (default 100).
    pub window: usize,
    /// Stop after this many iterations without a new minimum of the variance (default 200).
    pub patience: usize,
    /// A new minimum must be this fraction below the previous one (default 0.01): the variance keeps
    /// creeping down by fractions of a percent long after the fit has settled, which would postpone the
    /// stop indefinitely.
    pub min_improvement: f64,
    /// End the fit when the rule fires (default true); false only records where it fired, to compare
    /// its choice with the whole PSNR curve.
    pub halt: bool,
}

impl Default for StopRule {
    fn default() -> Self {
        Self {
            window: 100,
            patience: 200,
            min_improvement: 0.01,
            halt: true,
        }
    }
}

/// Settings of one fit, validated once by [`DipParams::validate`]. Defaults: the reference denoising
/// recipe at CPU scale (32 channels; 2,500 iterations; Adam 0.01; σ_p = 1/30; EMA 0.99; backtracking on).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DipParams {
    /// The network (default: [`SkipNetParams`] with 32 channels).
    pub net: SkipNetParams,
    /// Iterations in total (a resumed fit continues to this count; default 2,500).
    pub iterations: usize,
    /// Adam's learning rate (default 0.01, no weight decay).
    pub lr: f64,
    /// σ_p, the standard deviation of the noise added to the code z at every iteration (default 1/30).
    pub input_noise: f64,
    /// Weight of the old value in the output average (default 0.99).
    pub ema: f64,
    /// Restore the previous parameters when PSNR(output, x₀) drops by more than 5 dB (default true).
    pub backtracking: bool,
    /// Seeds z, the network's initial weights and the per-iteration input noise (default 0).
    pub seed: u64,
    /// The stopping rule; `None` runs all iterations (default `None`).
    pub stop: Option<StopRule>,
}

impl Default for DipParams {
    fn default() -> Self {
        Self {
            net: SkipNetParams {
                channels: 32,
                ..SkipNetParams::default()
            },
            iterations: 2500,
            lr: 0.01,
            input_noise: 1.0 / 30.0,
            ema: 0.99,
            backtracking: true,
            seed: 0,
            stop: None,
        }
    }
}

impl DipParams {
    /// Checks every setting once.
    pub fn validate(&self) -> Result<()> {
        self.net.validate()?;
        if self.iterations == 0 {
            return Err(GenError::invalid("iterations", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(GenError::invalid(
                "lr",
                format!("must be > 0, got {}", self.lr),
            ));
        }
        if !(self.input_noise.is_finite() && self.input_noise >= 0.0) {
            return Err(GenError::invalid(
                "input_noise",
                format!("must be ≥ 0, got {}", self.input_noise),
            ));
        }
        if !(0.0..1.0).contains(&self.ema) {
            return Err(GenError::invalid(
                "ema",
                format!("must be in [0, 1), got {}", self.ema),
            ));
        }
        if let Some(s) = self.stop
            && (s.window < 2 || s.patience == 0 || !(0.0..1.0).contains(&s.min_improvement))
        {
            return Err(GenError::invalid(
                "stop",
                format!(
                    "window must be ≥ 2, patience ≥ 1 and min_improvement in [0, 1), got {}, {} and {}",
                    s.window, s.patience, s.min_improvement
                ),
            ));
        }
        Ok(())
    }
}

/// One iteration's record. PSNRs in dB (data range 1); those against the clean image only when it was given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DipRecord {
    pub iteration: usize,
    /// The loss E (mean squared error over pixels and channels, masked for inpainting).
    pub loss: f64,
    /// PSNR(output, x₀): how well the corrupted input is fitted (rises throughout).
    pub psnr_corrupted: f64,
    /// PSNR(output, clean).
    pub psnr_output: Option<f64>,
    /// PSNR(averaged output, clean).
    pub psnr_ema: Option<f64>,
    /// The stopping rule's running variance (once its window is full).
    pub variance: Option<f64>,
    /// Backtracking restored the parameters at this iteration.
    pub backtracked: bool,
}

/// What a finished (or stopped) fit reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DipSummary {
    pub iterations_done: usize,
    /// The iteration the stopping rule chose (the variance minimum), if it fired.
    pub stopped_at: Option<usize>,
    /// Backtracking restorations.
    pub backtracks: usize,
    /// PSNR/SSIM of the final averaged output and, when the rule fired, of its chosen output (clean given).
    pub final_psnr_ema: Option<f64>,
    pub final_ssim_ema: Option<f64>,
    pub stop_psnr_ema: Option<f64>,
    /// The best PSNR of the averaged output over the run and its iteration (clean given).
    pub peak_psnr_ema: Option<(usize, f64)>,
    /// The best PSNR of the single output and its iteration (clean given).
    pub peak_psnr_output: Option<(usize, f64)>,
}

/// The stopping rule's state: the last `window` outputs (downscaled to ≤ 128² to bound memory) and the
/// variance minimum so far.
struct VarianceTracker {
    rule: StopRule,
    frames: VecDeque<Vec<f32>>,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    best: Option<(usize, f64)>,
}

impl VarianceTracker {
    fn new(rule: StopRule) -> Self {
        Self {
            rule,
            frames: VecDeque::new(),
            sum: Vec::new(),
            sum_sq: Vec::new(),
            best: None,
        }
    }

    /// Adds the output of `iteration`; returns the window's variance once full and whether it is a new
    /// minimum.
    fn push(&mut self, iteration: usize, frame: Vec<f32>) -> (Option<f64>, bool) {
        if self.sum.is_empty() {
            self.sum = vec![0.0; frame.len()];
            self.sum_sq = vec![0.0; frame.len()];
        }
        for ((s, q), &v) in self.sum.iter_mut().zip(&mut self.sum_sq).zip(&frame) {
            *s += f64::from(v);
            *q += f64::from(v) * f64::from(v);
        }
        self.frames.push_back(frame);
        if self.frames.len() > self.rule.window {
            let old = self.frames.pop_front().expect("non-empty");
            for ((s, q), &v) in self.sum.iter_mut().zip(&mut self.sum_sq).zip(&old) {
                *s -= f64::from(v);
                *q -= f64::from(v) * f64::from(v);
            }
        }
        if self.frames.len() < self.rule.window {
            return (None, false);
        }
        let n = self.rule.window as f64;
        let var = self
            .sum
            .iter()
            .zip(&self.sum_sq)
            .map(|(s, q)| (q / n - (s / n) * (s / n)).max(0.0))
            .sum::<f64>()
            / self.sum.len() as f64;
        let better = self
            .best
            .is_none_or(|(_, b)| var < b * (1.0 - self.rule.min_improvement));
        if better {
            self.best = Some((iteration, var));
        }
        (Some(var), better)
    }

    fn should_stop(&self, iteration: usize) -> bool {
        self.best
            .is_some_and(|(i, _)| iteration >= i + self.rule.patience)
    }
}

/// `state.json` of a saved fit.
#[derive(Debug, Serialize, Deserialize)]
struct SavedState {
    format: u32,
    params: DipParams,
    /// A fingerprint of the corrupted image and mask, so a checkpoint is not resumed on other data.
    data: String,
    iterations_done: usize,
    optimizer_steps: u64,
    psnr_last: Option<f64>,
    history: Vec<DipRecord>,
    stopped_at: Option<usize>,
}

const STATE_FILE: &str = "state.json";
const TENSORS_FILE: &str = "fit.safetensors";

/// One deep-image-prior fit in progress.
pub struct DipFit {
    params: DipParams,
    task: DipTask,
    device: Device,
    varmap: VarMap,
    net: SkipNet,
    optimizer: Optimizer,
    /// The fixed code z (1, input_channels, H, W).
    z: Tensor,
    /// x₀ as (1, C, H, W); the mask (1, 1 or C, H, W) for inpainting.
    target: Tensor,
    mask: Option<Tensor>,
    clean: Option<Tensor>,
    data_fingerprint: String,
    output: Option<Tensor>,
    ema: Option<Tensor>,
    /// Backtracking: the parameters after the last accepted iteration and its PSNR(output, x₀).
    snapshot: Vec<(String, Tensor)>,
    psnr_last: Option<f64>,
    tracker: Option<VarianceTracker>,
    /// The averaged output at the variance minimum.
    stop_image: Option<Tensor>,
    stopped_at: Option<usize>,
    history: Vec<DipRecord>,
}

/// A seed for one purpose and iteration, from the run's seed (SplitMix64-style mixing).
fn derive_seed(seed: u64, stream: u64, iteration: u64) -> u64 {
    use nn_core::seed::{GOLDEN_GAMMA, mix64};
    mix64(seed ^ stream.wrapping_mul(GOLDEN_GAMMA) ^ iteration.wrapping_mul(0xbf58_476d_1ce4_e5b9))
}

const STREAM_CODE: u64 = 1;
const STREAM_WEIGHTS: u64 = 2;
const STREAM_INPUT_NOISE: u64 = 3;

impl DipFit {
    /// Prepares a fit of `corrupted` ((C, H, W) in [0, 1], C = 1 or 3, H and W multiples of 2^levels).
    /// `clean`, when known, is only used to report PSNR/SSIM. The network's output channels are set to C.
    pub fn new(
        params: &DipParams,
        task: DipTask,
        corrupted: &Tensor,
        clean: Option<&Tensor>,
        device: &Device,
    ) -> Result<Self> {
        params.validate()?;
        let (c, h, w) = corrupted.dims3().map_err(|_| {
            GenError::invalid(
                "image",
                format!(
                    "expected a (C, H, W) image, got shape {:?}",
                    corrupted.dims()
                ),
            )
        })?;
        if c != 1 && c != 3 {
            return Err(GenError::invalid(
                "image",
                format!("expected 1 or 3 channels, got {c}"),
            ));
        }
        // The output's size: the corrupted image's, or `factor` times it for super-resolution.
        let (oh, ow) = match &task {
            DipTask::SuperResolution { factor } => {
                if !matches!(factor, 2 | 4 | 8) {
                    return Err(GenError::invalid(
                        "factor",
                        format!("super-resolution by 2, 4 or 8, got {factor}"),
                    ));
                }
                (h * factor, w * factor)
            }
            _ => (h, w),
        };
        params.net.check_size(oh, ow)?;
        if let Some(cl) = clean
            && cl.dims() != [c, oh, ow]
        {
            return Err(GenError::invalid(
                "clean",
                format!(
                    "the clean image is {:?} but the restored one will be {:?}",
                    cl.dims(),
                    [c, oh, ow]
                ),
            ));
        }
        let mask = match &task {
            DipTask::Denoise | DipTask::SuperResolution { .. } => None,
            DipTask::Inpaint { mask } => {
                let (mc, mh, mw) = mask.dims3().map_err(|_| {
                    GenError::invalid(
                        "mask",
                        format!(
                            "expected a (1 or C, H, W) mask, got shape {:?}",
                            mask.dims()
                        ),
                    )
                })?;
                if (mc != 1 && mc != c) || mh != h || mw != w {
                    return Err(GenError::invalid(
                        "mask",
                        format!("the mask is {mc}×{mh}×{mw} but the image is {c}×{h}×{w}"),
                    ));
                }
                Some(mask.to_dtype(DType::F32)?.unsqueeze(0)?.to_device(device)?)
            }
        };
        let mut data_fingerprint = match &mask {
            Some(mk) => fingerprint_tensors(&[corrupted, mk])?,
            None => fingerprint_tensors(&[corrupted])?,
        };
        if let DipTask::SuperResolution { factor } = &task {
            data_fingerprint.push_str(&format!("-sr{factor}"));
        }
        let params = DipParams {
            net: SkipNetParams {
                output_channels: c,
                ..params.net
            },
            ..*params
        };
        let varmap = VarMap::new();
        let vb = SeededVarMap::var_builder(
            &varmap,
            derive_seed(params.seed, STREAM_WEIGHTS, 0),
            DType::F32,
            device,
        );
        let net = SkipNet::new(&params.net, vb)?;
        let optimizer = Optimizer::new(OptimizerConfig::adam(params.lr), &varmap)?;
        let mut rng = StdRng::seed_from_u64(derive_seed(params.seed, STREAM_CODE, 0));
        let n = params.net.input_channels * oh * ow;
        let code: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 0.1).collect();
        let z = Tensor::from_vec(code, (1, params.net.input_channels, oh, ow), device)?;
        let target = corrupted
            .to_dtype(DType::F32)?
            .unsqueeze(0)?
            .to_device(device)?;
        let clean = clean
            .map(|t| t.to_dtype(DType::F32)?.unsqueeze(0)?.to_device(device))
            .transpose()?;
        Ok(Self {
            params,
            task,
            device: device.clone(),
            varmap,
            net,
            optimizer,
            z,
            target,
            mask,
            clean,
            data_fingerprint,
            output: None,
            ema: None,
            snapshot: Vec::new(),
            psnr_last: None,
            tracker: params.stop.map(VarianceTracker::new),
            stop_image: None,
            stopped_at: None,
            history: Vec::new(),
        })
    }

    /// The settings (with the output channels set to the image's).
    pub fn params(&self) -> &DipParams {
        &self.params
    }

    /// Iterations done so far.
    pub fn iterations_done(&self) -> usize {
        self.history.len()
    }

    /// Whether the fit has run all its iterations or a halting stopping rule has fired.
    pub fn finished(&self) -> bool {
        let halted = self.stopped_at.is_some() && self.params.stop.is_some_and(|s| s.halt);
        halted || self.history.len() >= self.params.iterations
    }

    /// The per-iteration records.
    pub fn history(&self) -> &[DipRecord] {
        &self.history
    }

    /// The last output f_θ(z) as (C, H, W), if any iteration ran.
    pub fn output(&self) -> Option<Tensor> {
        self.output.as_ref().and_then(|t| t.squeeze(0).ok())
    }

    /// The averaged output as (C, H, W).
    pub fn averaged_output(&self) -> Option<Tensor> {
        self.ema.as_ref().and_then(|t| t.squeeze(0).ok())
    }

    /// The restored image: the averaged output at the stopping rule's choice when it fired, else the last
    /// averaged output.
    pub fn restored(&self) -> Option<Tensor> {
        match (&self.stop_image, self.stopped_at) {
            (Some(img), Some(_)) => img.squeeze(0).ok(),
            _ => self.averaged_output(),
        }
    }

    /// The output as the corruption sees it: downsampled for super-resolution, else itself.
    fn degraded(&self, out: &Tensor) -> Result<Tensor> {
        Ok(match &self.task {
            DipTask::SuperResolution { factor } => super::layers::lanczos_downsample(out, *factor)?,
            _ => out.clone(),
        })
    }

    /// The loss of `fitted`, the output as the corruption sees it ([`DipFit::degraded`]).
    fn loss(&self, fitted: &Tensor) -> Result<Tensor> {
        let diff = (fitted - &self.target)?;
        let diff = match (&self.task, &self.mask) {
            (DipTask::Inpaint { .. }, Some(m)) => diff.broadcast_mul(m)?,
            _ => diff,
        };
        Ok(diff.sqr()?.mean_all()?)
    }

    fn parameters(&self) -> Result<Vec<(String, Tensor)>> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| GenError::invalid("varmap", "lock poisoned"))?;
        let mut v: Vec<(String, Tensor)> = data
            .iter()
            .map(|(k, var)| Ok((k.clone(), var.as_tensor().copy()?)))
            .collect::<Result<_>>()?;
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    }

    fn restore(&self, values: &[(String, Tensor)]) -> Result<()> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| GenError::invalid("varmap", "lock poisoned"))?;
        for (k, t) in values {
            if let Some(var) = data.get(k) {
                var.set(t)?;
            }
        }
        Ok(())
    }

    /// One iteration: forward with a perturbed code, loss, backward, Adam step (or a backtrack), output
    /// average, record. Does nothing once [`DipFit::finished`].
    pub fn step(&mut self) -> Result<()> {
        if self.finished() {
            return Ok(());
        }
        let i = self.history.len();
        let input = if self.params.input_noise > 0.0 {
            // f32 normals straight from the generator: this is half a million draws per iteration at 128².
            let mut rng =
                StdRng::seed_from_u64(derive_seed(self.params.seed, STREAM_INPUT_NOISE, i as u64));
            let values: Vec<f32> = (0..self.z.elem_count())
                .map(|_| rng.sample(StandardNormal))
                .collect();
            let noise = Tensor::from_vec(values, self.z.dims(), &self.device)?;
            (&self.z + (noise * self.params.input_noise)?)?
        } else {
            self.z.clone()
        };
        let out = self.net.forward(&input)?;
        let fitted = self.degraded(&out)?;
        let loss = self.loss(&fitted)?;
        let loss_value = loss.to_scalar::<f32>()? as f64;
        if !loss_value.is_finite() {
            return Err(GenError::invalid(
                "lr",
                format!("the loss became {loss_value} at iteration {i}; lower the learning rate"),
            ));
        }
        let grads = loss.backward()?;
        let out = out.detach();
        let psnr_corrupted = psnr_tensors(&fitted.detach(), &self.target)?;
        // Backtracking as the reference: except at multiples of 100, a drop of more than 5 dB restores the
        // last accepted parameters and skips this update.
        let mut backtracked = false;
        if self.params.backtracking
            && !i.is_multiple_of(100)
            && let Some(last) = self.psnr_last
            && psnr_corrupted - last < -5.0
            && !self.snapshot.is_empty()
        {
            let snapshot = std::mem::take(&mut self.snapshot);
            self.restore(&snapshot)?;
            self.snapshot = snapshot;
            backtracked = true;
        }
        if !backtracked {
            if self.params.backtracking {
                self.snapshot = self.parameters()?;
                self.psnr_last = Some(psnr_corrupted);
            }
            self.optimizer.step(&grads)?;
        }
        let ema = match &self.ema {
            None => out.clone(),
            Some(avg) => ((avg * self.params.ema)? + (&out * (1.0 - self.params.ema))?)?,
        };
        let (psnr_output, psnr_ema) = match &self.clean {
            Some(c) => (Some(psnr_tensors(&out, c)?), Some(psnr_tensors(&ema, c)?)),
            None => (None, None),
        };
        let mut variance = None;
        if let Some(tracker) = &mut self.tracker {
            let (var, new_min) = tracker.push(i, downscaled_frame(&out)?);
            variance = var;
            if new_min && self.stopped_at.is_none() {
                self.stop_image = Some(ema.copy()?);
            }
            if self.stopped_at.is_none() && tracker.should_stop(i) {
                self.stopped_at = tracker.best.map(|(it, _)| it);
            }
        }
        self.output = Some(out);
        self.ema = Some(ema);
        self.history.push(DipRecord {
            iteration: i,
            loss: loss_value,
            psnr_corrupted,
            psnr_output,
            psnr_ema,
            variance,
            backtracked,
        });
        Ok(())
    }

    /// The summary of the fit so far.
    pub fn summary(&self) -> Result<DipSummary> {
        let peak = |f: fn(&DipRecord) -> Option<f64>| {
            self.history
                .iter()
                .filter_map(|r| f(r).map(|p| (r.iteration, p)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        };
        let (final_psnr_ema, final_ssim_ema) = match (&self.clean, self.averaged_output()) {
            (Some(c), Some(e)) => {
                let c = c.squeeze(0)?;
                (Some(psnr_tensors(&e, &c)?), Some(ssim_tensors(&e, &c)?))
            }
            _ => (None, None),
        };
        let stop_psnr_ema = match (&self.clean, &self.stop_image, self.stopped_at) {
            (Some(c), Some(img), Some(_)) => Some(psnr_tensors(img, c)?),
            _ => None,
        };
        Ok(DipSummary {
            iterations_done: self.history.len(),
            stopped_at: self.stopped_at,
            backtracks: self.history.iter().filter(|r| r.backtracked).count(),
            final_psnr_ema,
            final_ssim_ema,
            stop_psnr_ema,
            peak_psnr_ema: peak(|r| r.psnr_ema),
            peak_psnr_output: peak(|r| r.psnr_output),
        })
    }

    /// Saves the fit to `dir` (created if needed): tensors first, then `state.json` (the commit point),
    /// each written atomically. The stopping rule's window is not saved: a resumed fit refills it.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| nn_core::NnError::io(dir, e))?;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (k, v) in self.parameters()? {
            tensors.insert(format!("model.{k}"), v);
        }
        for (k, v) in &self.snapshot {
            tensors.insert(format!("snapshot.{k}"), v.clone());
        }
        tensors.extend(self.optimizer.state_tensors());
        for (name, t) in [
            ("output", &self.output),
            ("ema", &self.ema),
            ("stop_image", &self.stop_image),
        ] {
            if let Some(t) = t {
                tensors.insert(name.to_string(), t.clone());
            }
        }
        save_tensors(&tensors, &dir.join(TENSORS_FILE))?;
        let state = SavedState {
            format: 1,
            params: self.params,
            data: self.data_fingerprint.clone(),
            iterations_done: self.history.len(),
            optimizer_steps: self.optimizer.steps(),
            psnr_last: self.psnr_last,
            history: self.history.clone(),
            stopped_at: self.stopped_at,
        };
        write_json_atomic(&dir.join(STATE_FILE), &state)?;
        Ok(())
    }

    /// Restores a fit saved by [`DipFit::save`] in `dir` into this freshly created one; `Ok(false)` when
    /// `dir` holds no saved fit. A fit of other settings (but the iteration budget) or other data is an
    /// error naming the difference.
    pub fn resume(&mut self, dir: &Path) -> Result<bool> {
        let path = dir.join(STATE_FILE);
        if !path.exists() {
            return Ok(false);
        }
        let state: SavedState = read_json(&path)?;
        let mismatch = |what: &str| {
            GenError::invalid(
                "out",
                format!(
                    "{} holds a fit with other {what}; use another output directory or delete it",
                    dir.display()
                ),
            )
        };
        let budget_free = |p: &DipParams| DipParams {
            iterations: 0,
            ..*p
        };
        if budget_free(&state.params) != budget_free(&self.params) {
            return Err(mismatch("settings"));
        }
        if state.data != self.data_fingerprint {
            return Err(mismatch("data (image or mask)"));
        }
        let tensors = load_tensors(&dir.join(TENSORS_FILE), &self.device)?;
        let model: Vec<(String, Tensor)> = tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("model.").map(|n| (n.to_string(), v.clone())))
            .collect();
        self.restore(&model)?;
        let mut snapshot: Vec<(String, Tensor)> = tensors
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("snapshot.")
                    .map(|n| (n.to_string(), v.clone()))
            })
            .collect();
        snapshot.sort_by(|a, b| a.0.cmp(&b.0));
        self.snapshot = snapshot;
        self.optimizer.load_state(&tensors, state.optimizer_steps)?;
        self.output = tensors.get("output").cloned();
        self.ema = tensors.get("ema").cloned();
        self.stop_image = tensors.get("stop_image").cloned();
        self.psnr_last = state.psnr_last;
        self.stopped_at = state.stopped_at;
        self.history = state.history;
        Ok(true)
    }
}

/// The output as host f32 values, area-downscaled by an integer factor to at most 128 pixels a side (the
/// stopping rule's window holds 100 of them).
fn downscaled_frame(out: &Tensor) -> Result<Vec<f32>> {
    let (_, _, h, w) = out.dims4()?;
    let f = h.max(w).div_ceil(128).max(1);
    let t = if f > 1 && h % f == 0 && w % f == 0 {
        out.avg_pool2d(f)?
    } else {
        out.clone()
    };
    Ok(t.to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_params() -> DipParams {
        DipParams {
            net: SkipNetParams {
                channels: 8,
                skip_channels: 2,
                levels: 3,
                input_channels: 4,
                ..SkipNetParams::default()
            },
            iterations: 6,
            ..DipParams::default()
        }
    }

    fn image(seed: u64) -> Tensor {
        nn_core::grad::seeded_normal(&[1, 16, 16], DType::F32, &Device::Cpu, seed)
            .unwrap()
            .affine(0.1, 0.5)
            .unwrap()
            .clamp(0f32, 1f32)
            .unwrap()
    }

    #[test]
    fn the_loss_falls_and_records_are_complete() -> Result<()> {
        let clean = image(1);
        let noisy = super::super::image::add_gaussian_noise(&clean, 25.0, 2)?;
        let params = DipParams {
            iterations: 40,
            ..small_params()
        };
        let mut fit = DipFit::new(
            &params,
            DipTask::Denoise,
            &noisy,
            Some(&clean),
            &Device::Cpu,
        )?;
        while !fit.finished() {
            fit.step()?;
        }
        let h = fit.history();
        assert_eq!(h.len(), 40);
        assert!(
            h[39].loss < 0.6 * h[0].loss,
            "{} → {}",
            h[0].loss,
            h[39].loss
        );
        assert!(
            h.iter()
                .all(|r| r.psnr_ema.is_some() && r.psnr_output.is_some())
        );
        assert_eq!(fit.restored().unwrap().dims(), &[1, 16, 16]);
        let s = fit.summary()?;
        assert!(s.final_ssim_ema.is_some() && s.peak_psnr_ema.is_some());
        Ok(())
    }

    #[test]
    fn a_resumed_fit_is_bit_identical() -> Result<()> {
        let noisy = image(3);
        let mask = super::super::image::random_pixel_mask(16, 16, 0.5, 4)?;
        let params = DipParams {
            stop: Some(StopRule {
                window: 2,
                patience: 100,
                min_improvement: 0.0,
                halt: true,
            }),
            ..small_params()
        };
        let task = DipTask::Inpaint { mask: mask.clone() };
        let mut straight = DipFit::new(&params, task.clone(), &noisy, None, &Device::Cpu)?;
        for _ in 0..6 {
            straight.step()?;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut first = DipFit::new(&params, task.clone(), &noisy, None, &Device::Cpu)?;
        for _ in 0..3 {
            first.step()?;
        }
        first.save(dir.path())?;
        let mut resumed = DipFit::new(&params, task.clone(), &noisy, None, &Device::Cpu)?;
        assert!(resumed.resume(dir.path())?);
        for _ in 0..3 {
            resumed.step()?;
        }
        let a = straight.output().unwrap().flatten_all()?.to_vec1::<f32>()?;
        let b = resumed.output().unwrap().flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(a, b);
        assert_eq!(straight.history()[5].loss, resumed.history()[5].loss);
        // Other data in the same directory is refused.
        let mut other = DipFit::new(&params, DipTask::Denoise, &noisy, None, &Device::Cpu)?;
        let e = other.resume(dir.path()).unwrap_err().to_string();
        assert!(e.contains("other data"), "{e}");
        Ok(())
    }

    #[test]
    fn variance_rule_stops_at_the_minimum_after_its_patience() {
        let mut t = VarianceTracker::new(StopRule {
            window: 2,
            patience: 3,
            min_improvement: 0.0,
            halt: true,
        });
        // Frames whose successive differences shrink then grow: the variance has one minimum.
        let steps = [0.0f32, 1.0, 1.5, 1.7, 1.75, 1.9, 2.3, 3.0, 4.0];
        let mut stop = None;
        for (i, &v) in steps.iter().enumerate() {
            t.push(i, vec![v; 4]);
            if t.should_stop(i) {
                stop = Some(i);
                break;
            }
        }
        assert_eq!(t.best.map(|b| b.0), Some(4));
        assert_eq!(stop, Some(7));
    }

    #[test]
    fn super_resolution_fits_the_low_resolution_image() -> Result<()> {
        let clean = image(5).broadcast_as((3, 16, 16))?.contiguous()?;
        let clean = Tensor::cat(&[&clean, &clean], 1)?; // 3 × 32 × 16
        let low = super::super::layers::lanczos_downsample(&clean.unsqueeze(0)?, 2)?.squeeze(0)?;
        let params = DipParams {
            iterations: 30,
            ..small_params()
        };
        let task = DipTask::SuperResolution { factor: 2 };
        let mut fit = DipFit::new(&params, task, &low, Some(&clean), &Device::Cpu)?;
        while !fit.finished() {
            fit.step()?;
        }
        assert_eq!(fit.output().unwrap().dims(), &[3, 32, 16]);
        let h = fit.history();
        assert!(h[29].loss < 0.6 * h[0].loss);
        assert!(h[29].psnr_output.is_some());
        let bad = DipFit::new(
            &params,
            DipTask::SuperResolution { factor: 3 },
            &low,
            None,
            &Device::Cpu,
        );
        assert!(bad.err().unwrap().to_string().contains("2, 4 or 8"));
        Ok(())
    }

    #[test]
    fn bad_inputs_are_clear_errors() -> Result<()> {
        let p = small_params();
        let odd = Tensor::zeros((3, 12, 16), DType::F32, &Device::Cpu)?;
        let e = DipFit::new(&p, DipTask::Denoise, &odd, None, &Device::Cpu)
            .err()
            .unwrap();
        assert!(e.to_string().contains("divisible by 8"), "{e}");
        let img = Tensor::zeros((3, 16, 16), DType::F32, &Device::Cpu)?;
        let mask = Tensor::ones((1, 8, 8), DType::F32, &Device::Cpu)?;
        let e = DipFit::new(&p, DipTask::Inpaint { mask }, &img, None, &Device::Cpu)
            .err()
            .unwrap();
        assert!(e.to_string().contains("mask"), "{e}");
        let bad = DipParams { ema: 1.0, ..p };
        assert!(bad.validate().is_err());
        Ok(())
    }
}
