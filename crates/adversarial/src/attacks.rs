//! Per-image attacks: FGSM, PGD (ℓ∞ / ℓ2, random start) and DeepFool (multiclass, top-k candidates,
//! overshoot), all batched.
//!
//! * **FGSM** (Goodfellow et al. 2015): `x' = x + ε · sign(∇ₓ CE(f(x), y))` (ℓ∞) or
//!   `x + ε · ∇/‖∇‖₂` (ℓ2, the "fast gradient method"); `y` = the given labels, else the model's
//!   predictions.
//! * **PGD** (Madry et al. 2018): from `x + δ₀` (δ₀ uniform in the ε-ball when `random_start`), repeat
//!   `x ← Π_{B(x₀, ε)}(x + α·sign(∇))` (ℓ∞) or `x + α·∇/‖∇‖₂` (ℓ2), clipping after each step.
//! * **DeepFool** (Moosavi-Dezfooli et al. 2016), on logits `f`, `k₀ = argmax f(x)`, candidates the
//!   top `num_classes` classes of `f(x)` (k₀ first):
//!   ```text
//!   r_tot ← 0;  xᵢ ← x
//!   while argmax f(xᵢ) = k₀ and i < max_iter:
//!       w_k ← ∇f_k(xᵢ) − ∇f_k₀(xᵢ);  g_k ← f_k(xᵢ) − f_k₀(xᵢ)
//!       l ← argmin_k |g_k| / ‖w_k‖_q                        (q = p/(p−1))
//!       r ← (|g_l|/‖w_l‖_q + s) · |w_l|^{q−1} ⊙ sign(w_l) / ‖w_l‖_q^{q−1}   (ℓ2, s = 0: |g_l|/‖w_l‖₂² · w_l)
//!       r_tot ← r_tot + r;  xᵢ₊₁ ← x + (1 + η)·r_tot          (overshoot η applied to the total)
//!   return (1 + η)·r_tot
//!   ```
//!   `s` = `min_step` (default 1e-4, the official PyTorch code's guard; 0 = the paper). All candidate
//!   gradients of all images come from one linearised forward pass and `num_classes − 1` pullbacks.
//!
//! ```
//! use adversarial::attacks::{deepfool, DeepFoolConfig};
//! use adversarial::net::{Layer, Net};
//! use candle_core::{Device, Tensor};
//! use nn_core::models::InputSpec;
//!
//! // Two classes, f(x) = [x₁, x₂]: the boundary is x₁ = x₂.
//! let w = Tensor::new(&[[1f32, 0.], [0., 1.]], &Device::Cpu)?;
//! let net = Net::new("affine", InputSpec::new(1, 1, 2, 2), vec![
//!     Layer::Flatten.into(), Layer::linear(w, None).named("logits")])?;
//! let x = Tensor::new(&[[[[0.3f32, 0.1]]]], &Device::Cpu)?;
//! let cfg = DeepFoolConfig { min_step: 0.0, ..DeepFoolConfig::default() };
//! let out = deepfool(&net, &x, &cfg)?;
//! assert!(out.report.images[0].fooled);
//! // Closest boundary point is at ℓ2 distance 0.2/√2; overshoot 2 %.
//! assert!((out.report.images[0].l2 - 1.02 * 0.2 / 2f64.sqrt()).abs() < 1e-5);
//! # Ok::<(), adversarial::AdvError>(())
//! ```

use candle_core::{D, DType, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Uniform};
use serde::{Deserialize, Serialize};

use crate::error::{AdvError, Result, check_at_least_one, check_nonneg};
use crate::net::LogitModel;
use crate::norm::{Clip, Norm, lp_norms_per_row};

/// Batch size of the forward-only evaluations of this crate (predictions, fooling rates): large enough
/// for efficient GEMMs, small enough to keep peak memory low (a 500-image batch of VGG/ResNet-sized
/// activations and im2col buffers pushed a run past 10 GB of resident memory).
pub const EVAL_BATCH: usize = 128;

/// Predicted labels (argmax of the logits), evaluated in batches of `batch_size`.
pub fn predict<M: LogitModel + ?Sized>(
    model: &M,
    images: &Tensor,
    batch_size: usize,
) -> Result<Vec<u32>> {
    check_at_least_one("batch_size", batch_size)?;
    let n = images.dim(0)?;
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let len = batch_size.min(n - start);
        let x = images.narrow(0, start, len)?.to_dtype(model.dtype())?;
        out.extend(model.logits(&x)?.argmax(D::Minus1)?.to_vec1::<u32>()?);
        start += len;
    }
    Ok(out)
}

pub(crate) fn check_batch(images: &Tensor, what: &str) -> Result<usize> {
    match images.dims() {
        [n, _, _, _] => Ok(*n),
        d => Err(AdvError::shape(what, "[N, C, H, W]", format!("{d:?}"))),
    }
}

fn labels_or_predictions<M: LogitModel + ?Sized>(
    model: &M,
    images: &Tensor,
    labels: Option<&[u32]>,
) -> Result<Vec<u32>> {
    let n = images.dim(0)?;
    match labels {
        Some(l) if l.len() == n => Ok(l.to_vec()),
        Some(l) => Err(AdvError::shape(
            "labels",
            format!("{n} labels (one per image)"),
            format!("{}", l.len()),
        )),
        None => predict(model, images, EVAL_BATCH),
    }
}

/// `∇ₓ Σᵢ CE(f(xᵢ), yᵢ)`: the per-image gradients of the per-image losses, `[N, C, H, W]`, as the
/// pullback of `softmax(f(x)) − onehot(y)` through the model ([`LogitModel::linearize_logits`]).
pub fn loss_gradient<M: LogitModel + ?Sized>(
    model: &M,
    images: &Tensor,
    labels: &[u32],
) -> Result<Tensor> {
    let x = images.to_dtype(model.dtype())?;
    let (logits, pullback) = model.linearize_logits(&x)?;
    pullback(&cross_entropy_cotangent(&logits, labels)?)
}

/// `∂ Σᵢ CE(logitsᵢ, yᵢ) / ∂ logits = softmax(logits) − onehot(y)`.
pub(crate) fn cross_entropy_cotangent(logits: &Tensor, labels: &[u32]) -> Result<Tensor> {
    let (n, k) = logits.dims2()?;
    if labels.len() != n {
        return Err(AdvError::shape(
            "labels",
            format!("{n} labels"),
            format!("{}", labels.len()),
        ));
    }
    if let Some(&bad) = labels.iter().find(|&&l| l as usize >= k) {
        return Err(AdvError::invalid(
            "labels",
            format!("label {bad} but the model has {k} classes"),
        ));
    }
    let mut onehot = vec![0f32; n * k];
    for (i, &l) in labels.iter().enumerate() {
        onehot[i * k + l as usize] = 1.0;
    }
    let onehot = Tensor::from_vec(onehot, (n, k), logits.device())?.to_dtype(logits.dtype())?;
    Ok((nn_core::layers::softmax(logits, D::Minus1)? - onehot)?)
}

/// Per-image projection of a batch `δ` `[N, …]` onto the ε-ball (ℓ∞: clamp; ℓ2: `δᵢ·min(1, ε/‖δᵢ‖₂)`).
pub(crate) fn project_rows(delta: &Tensor, p: Norm, eps: f64) -> Result<Tensor> {
    match p {
        Norm::Inf => Ok(delta.clamp(-eps, eps)?),
        Norm::L(2.0) => {
            let norms = row_l2(delta)?;
            let factor = norms
                .affine(1.0 / eps.max(f64::MIN_POSITIVE), 0.0)?
                .maximum(1.0)?
                .recip()?;
            Ok(delta.broadcast_mul(&factor)?)
        }
        other => Err(AdvError::invalid(
            "norm",
            format!("per-image attacks support p = 2 or ∞, got {other}"),
        )),
    }
}

/// `‖δᵢ‖₂` per row, shaped `[N, 1, 1, …]` for broadcasting.
fn row_l2(delta: &Tensor) -> Result<Tensor> {
    let n = delta.dim(0)?;
    let mut keep = vec![n];
    keep.extend(std::iter::repeat_n(1, delta.rank() - 1));
    Ok(delta
        .flatten_from(1)?
        .sqr()?
        .sum_keepdim(1)?
        .sqrt()?
        .reshape(keep)?)
}

/// `g / ‖g‖₂` per row (zero rows stay zero).
fn normalise_rows(g: &Tensor) -> Result<Tensor> {
    let norms = row_l2(g)?.maximum(1e-12)?;
    Ok(g.broadcast_div(&norms)?)
}

/// Summary of a per-image attack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttackReport {
    pub n: usize,
    /// Images whose predicted label differs from the clean prediction.
    pub changed: usize,
    /// `changed / n`.
    pub success_rate: f64,
    /// Mean `‖x' − x‖_∞` and `‖x' − x‖₂` over the images.
    pub mean_linf: f64,
    pub mean_l2: f64,
    pub clip: Clip,
}

/// Adversarial images and their summary.
#[derive(Debug, Clone)]
pub struct AttackOutput {
    /// `[N, C, H, W]` adversarial images (clipped as configured).
    pub adversarial: Tensor,
    pub report: AttackReport,
}

fn summarise<M: LogitModel + ?Sized>(
    model: &M,
    images: &Tensor,
    adversarial: Tensor,
    clip: Clip,
) -> Result<AttackOutput> {
    let n = images.dim(0)?;
    let clean = predict(model, images, EVAL_BATCH)?;
    let adv = predict(model, &adversarial, EVAL_BATCH)?;
    let changed = clean.iter().zip(&adv).filter(|(a, b)| a != b).count();
    let delta = (&adversarial - images.to_dtype(adversarial.dtype())?)?;
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(AttackOutput {
        report: AttackReport {
            n,
            changed,
            success_rate: changed as f64 / n.max(1) as f64,
            mean_linf: mean(lp_norms_per_row(&delta, Norm::Inf)?),
            mean_l2: mean(lp_norms_per_row(&delta, Norm::L2)?),
            clip,
        },
        adversarial,
    })
}

/// Parameters of [`fgsm`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FgsmConfig {
    /// Budget ε in input units (default 0.1 on [0, 1] images = 25.5/255).
    pub eps: f64,
    /// ∞ (sign step, default) or 2 (normalised gradient step).
    pub norm: Norm,
    pub clip: Clip,
}

impl Default for FgsmConfig {
    fn default() -> Self {
        Self {
            eps: 0.1,
            norm: Norm::Inf,
            clip: Clip::default(),
        }
    }
}

/// One-step fast gradient attack (see the module header). `labels`: the true labels, or `None` to use
/// the model's own predictions.
pub fn fgsm<M: LogitModel + ?Sized>(
    model: &M,
    images: &Tensor,
    labels: Option<&[u32]>,
    config: &FgsmConfig,
) -> Result<AttackOutput> {
    check_nonneg("eps", config.eps)?;
    config.clip.validate()?;
    check_batch(images, "images")?;
    let y = labels_or_predictions(model, images, labels)?;
    let x = images.to_dtype(model.dtype())?;
    let g = loss_gradient(model, &x, &y)?;
    let step = match config.norm {
        Norm::Inf => g.sign()?,
        Norm::L(2.0) => normalise_rows(&g)?,
        other => {
            return Err(AdvError::invalid(
                "norm",
                format!("FGSM supports p = 2 or ∞, got {other}"),
            ));
        }
    };
    let adv = config.clip.apply(&(&x + step.affine(config.eps, 0.0)?)?)?;
    summarise(model, &x, adv, config.clip)
}

/// [`fgsm`] on `images` in batches of `batch` (which bounds the memory of the input gradient), against the
/// model's own predictions: the fraction of images whose predicted label changes. Equal to one [`fgsm`]
/// call on the whole set (every image is attacked independently).
pub fn fgsm_success_rate<M: LogitModel + ?Sized>(
    model: &M,
    images: &Tensor,
    config: &FgsmConfig,
    batch: usize,
) -> Result<f64> {
    if batch == 0 {
        return Err(AdvError::invalid("batch", "must be at least 1"));
    }
    let n = check_batch(images, "images")?;
    let mut changed = 0;
    for start in (0..n).step_by(batch) {
        let x = images.narrow(0, start, batch.min(n - start))?;
        changed += fgsm(model, &x, None, config)?.report.changed;
    }
    Ok(changed as f64 / n as f64)
}

/// Parameters of [`pgd`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PgdConfig {
    /// Budget ε (default 0.1).
    pub eps: f64,
    /// ∞ (default) or 2.
    pub norm: Norm,
    /// Step size α (default `None` = 2.5·ε/steps, Madry et al.).
    pub step_size: Option<f64>,
    /// Number of steps (default 40).
    pub steps: usize,
    /// Start from a uniformly random point of the ε-ball (default true).
    pub random_start: bool,
    /// Seed of the random start (default 0).
    pub seed: u64,
    pub clip: Clip,
}

impl Default for PgdConfig {
    fn default() -> Self {
        Self {
            eps: 0.1,
            norm: Norm::Inf,
            step_size: None,
            steps: 40,
            random_start: true,
            seed: 0,
            clip: Clip::default(),
        }
    }
}

/// Projected gradient descent on the cross-entropy (see the module header).
pub fn pgd<M: LogitModel + ?Sized>(
    model: &M,
    images: &Tensor,
    labels: Option<&[u32]>,
    config: &PgdConfig,
) -> Result<AttackOutput> {
    check_nonneg("eps", config.eps)?;
    check_at_least_one("steps", config.steps)?;
    config.clip.validate()?;
    if !matches!(config.norm, Norm::Inf) && config.norm != Norm::L2 {
        return Err(AdvError::invalid(
            "norm",
            format!("PGD supports p = 2 or ∞, got {}", config.norm),
        ));
    }
    let alpha = config
        .step_size
        .unwrap_or(2.5 * config.eps / config.steps as f64);
    check_nonneg("step_size", alpha)?;
    check_batch(images, "images")?;
    let y = labels_or_predictions(model, images, labels)?;
    let x0 = images.to_dtype(model.dtype())?;
    let mut x = x0.clone();
    if config.random_start && config.eps > 0.0 {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let u = Uniform::new(-1.0f64, 1.0).map_err(|e| AdvError::invalid("eps", e.to_string()))?;
        let vals: Vec<f64> = (0..x0.elem_count()).map(|_| u.sample(&mut rng)).collect();
        let r = Tensor::from_vec(vals, x0.shape(), x0.device())?.to_dtype(x0.dtype())?;
        let start = match config.norm {
            Norm::Inf => r.affine(config.eps, 0.0)?,
            // A random direction with a uniformly random radius in [0, ε].
            _ => {
                let n = x0.dim(0)?;
                let radii: Vec<f64> = (0..n)
                    .map(|_| config.eps * (u.sample(&mut rng) + 1.0) / 2.0)
                    .collect();
                let radii =
                    Tensor::from_vec(radii, (n, 1, 1, 1), x0.device())?.to_dtype(x0.dtype())?;
                normalise_rows(&r)?.broadcast_mul(&radii)?
            }
        };
        x = config.clip.apply(&(&x0 + start)?)?;
    }
    for _ in 0..config.steps {
        let g = loss_gradient(model, &x, &y)?;
        let step = match config.norm {
            Norm::Inf => g.sign()?,
            _ => normalise_rows(&g)?,
        };
        let moved = (&x + step.affine(alpha, 0.0)?)?;
        let delta = project_rows(&(moved - &x0)?, config.norm, config.eps)?;
        x = config.clip.apply(&(&x0 + delta)?)?;
    }
    summarise(model, &x0, x, config.clip)
}

/// Parameters of [`deepfool`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeepFoolConfig {
    /// Overshoot η applied to the total perturbation (default 0.02).
    pub overshoot: f64,
    /// Number of top classes considered, the original class included (default 10).
    pub num_classes: usize,
    /// Maximum number of linearisation steps (default 50; the UAP loop uses 10).
    pub max_iter: usize,
    /// Norm of the minimal perturbation: 2 (default) or ∞ (or any p > 1).
    pub norm: Norm,
    /// Clipping of the iterates (default `Clip::None`, as in the paper and the official code).
    pub clip: Clip,
    /// Added to every step's ℓp length (default 1e-4, as the official PyTorch code: without it an iterate
    /// can land on the linearised boundary and stall; 0 gives the paper's exact step).
    pub min_step: f64,
}

impl Default for DeepFoolConfig {
    fn default() -> Self {
        Self {
            overshoot: 0.02,
            num_classes: 10,
            max_iter: 50,
            norm: Norm::L2,
            clip: Clip::None,
            min_step: 1e-4,
        }
    }
}

impl DeepFoolConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_nonneg("overshoot", self.overshoot)?;
        check_nonneg("min_step", self.min_step)?;
        if self.num_classes < 2 {
            return Err(AdvError::invalid(
                "num_classes",
                format!(
                    "need at least 2 candidate classes, got {}",
                    self.num_classes
                ),
            ));
        }
        check_at_least_one("max_iter", self.max_iter)?;
        self.norm.validate("norm")?;
        if self.norm == Norm::L(1.0) {
            return Err(AdvError::invalid(
                "norm",
                "DeepFool supports p in (1, ∞], got 1",
            ));
        }
        self.clip.validate()
    }
}

/// DeepFool's outcome for one image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeepFoolImage {
    /// Clean predicted class k₀.
    pub original: u32,
    /// Predicted class of `x + r`.
    pub adversarial: u32,
    /// `adversarial ≠ original`.
    pub fooled: bool,
    /// Linearisation steps taken.
    pub iterations: usize,
    /// `‖r‖₂`, `‖r‖_∞`, and `‖r‖₂ / ‖x‖₂`.
    pub l2: f64,
    pub linf: f64,
    pub rho: f64,
}

/// Summary of a [`deepfool`] run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeepFoolReport {
    pub images: Vec<DeepFoolImage>,
    /// Share of images whose label changed.
    pub fooled_fraction: f64,
    /// Median `‖r‖₂` over the fooled images (NaN when none).
    pub median_l2: f64,
    /// `ρ_adv = mean ‖r‖₂/‖x‖₂` over the fooled images (the paper's robustness measure).
    pub rho_adv: f64,
    pub config: DeepFoolConfig,
}

impl DeepFoolReport {
    /// The summary of per-image results (e.g. of several batches concatenated).
    pub fn from_images(images: Vec<DeepFoolImage>, config: DeepFoolConfig) -> Self {
        let fooled: Vec<&DeepFoolImage> = images.iter().filter(|r| r.fooled).collect();
        let mut fooled_l2: Vec<f64> = fooled.iter().map(|r| r.l2).collect();
        let rho_adv = if fooled.is_empty() {
            f64::NAN
        } else {
            fooled.iter().map(|r| r.rho).sum::<f64>() / fooled.len() as f64
        };
        DeepFoolReport {
            fooled_fraction: fooled.len() as f64 / images.len().max(1) as f64,
            median_l2: median(&mut fooled_l2),
            rho_adv,
            images,
            config,
        }
    }
}

/// [`deepfool`] on `images` in chunks of `chunk` (its candidate gradients hold every image once per class,
/// so a chunk bounds the memory), summarised over all of them as one run.
pub fn deepfool_chunked<M: LogitModel + ?Sized>(
    model: &M,
    images: &Tensor,
    config: &DeepFoolConfig,
    chunk: usize,
) -> Result<DeepFoolReport> {
    if chunk == 0 {
        return Err(AdvError::invalid("chunk", "must be at least 1"));
    }
    let n = check_batch(images, "images")?;
    let mut all = Vec::with_capacity(n);
    for start in (0..n).step_by(chunk) {
        let x = images.narrow(0, start, chunk.min(n - start))?;
        all.extend(deepfool(model, &x, config)?.report.images);
    }
    Ok(DeepFoolReport::from_images(all, *config))
}

/// Minimal perturbations and their summary.
#[derive(Debug, Clone)]
pub struct DeepFoolOutput {
    /// `[N, C, H, W]` perturbations `r` (the clipped difference when clipping is on).
    pub perturbations: Tensor,
    pub report: DeepFoolReport,
}

/// Logits at `x` `[n, C, H, W]` and, for every candidate `j = 1..K−1`, the gradient of
/// `f_{classes[i][j]} − f_{classes[i][0]}` at `xᵢ`, as `[n, K−1, C·H·W]`: one forward pass and K − 1
/// pullbacks.
fn candidate_gradients<M: LogitModel + ?Sized>(
    model: &M,
    x: &Tensor,
    classes: &[Vec<u32>],
) -> Result<(Tensor, Tensor)> {
    let (n, c, h, w) = x.dims4()?;
    let k = classes[0].len();
    let (logits, pullback) = model.linearize_logits(x)?;
    let num_classes = logits.dim(1)?;
    let mut grads = Vec::with_capacity(k - 1);
    for j in 1..k {
        let mut u = vec![0f32; n * num_classes];
        for (i, cls) in classes.iter().enumerate() {
            u[i * num_classes + cls[j] as usize] += 1.0;
            u[i * num_classes + cls[0] as usize] -= 1.0;
        }
        let u = Tensor::from_vec(u, (n, num_classes), x.device())?.to_dtype(logits.dtype())?;
        grads.push(pullback(&u)?.reshape((n, 1, c * h * w))?);
    }
    Ok((logits, Tensor::cat(&grads, 1)?))
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

/// DeepFool on every image of `images` (see the module header), batched.
pub fn deepfool<M: LogitModel + ?Sized>(
    model: &M,
    images: &Tensor,
    config: &DeepFoolConfig,
) -> Result<DeepFoolOutput> {
    config.validate()?;
    let n = check_batch(images, "images")?;
    let x0 = images.to_dtype(model.dtype())?;
    let (_, c, h, w) = x0.dims4()?;
    let d = c * h * w;
    let dev = x0.device().clone();
    let logits0 = model.logits(&x0)?;
    let num_classes = logits0.dim(1)?;
    let k = config.num_classes.min(num_classes);
    let order = logits0.arg_sort_last_dim(false)?.to_vec2::<u32>()?;
    let classes: Vec<Vec<u32>> = order.iter().map(|o| o[..k].to_vec()).collect();
    let original: Vec<u32> = classes.iter().map(|c| c[0]).collect();
    let q = config.norm.dual();
    let scale = 1.0 + config.overshoot;

    let mut r_tot = Tensor::zeros((n, d), x0.dtype(), &dev)?;
    let mut iterations = vec![0usize; n];
    let mut active: Vec<usize> = (0..n).collect();
    for it in 0..=config.max_iter {
        if active.is_empty() {
            break;
        }
        let idx = Tensor::from_vec(
            active.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            active.len(),
            &dev,
        )?;
        let x_base = x0.index_select(&idx, 0)?;
        let r_act = r_tot.index_select(&idx, 0)?.reshape(x_base.shape())?;
        let x_cur = config.clip.apply(&(&x_base + r_act.affine(scale, 0.0)?)?)?;
        let cls: Vec<Vec<u32>> = active.iter().map(|&i| classes[i].clone()).collect();
        if it == config.max_iter {
            break;
        }
        // Differences to the original class: w_k = ∇f_k − ∇f_k0, g_k = f_k − f_k0 (k = 1..K−1).
        let (logits, w_diff) = candidate_gradients(model, &x_cur, &cls)?;
        let pred = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
        let logit_rows = logits.to_dtype(DType::F64)?.to_vec2::<f64>()?;
        let w_norms = match q {
            Norm::Inf => w_diff.abs()?.max(2)?,
            Norm::L(1.0) => w_diff.abs()?.sum(2)?,
            Norm::L(2.0) => w_diff.sqr()?.sum(2)?.sqrt()?,
            Norm::L(qq) => w_diff.abs()?.powf(qq)?.sum(2)?.powf(1.0 / qq)?,
        }
        .to_dtype(DType::F64)?
        .to_vec2::<f64>()?;
        let mut still = Vec::new();
        let mut rows = Vec::new();
        let mut coefs = Vec::new();
        for (a, &i) in active.iter().enumerate() {
            if pred[a] != original[i] {
                continue; // fooled after `it` steps
            }
            let f0 = logit_rows[a][original[i] as usize];
            let mut best: Option<(usize, f64)> = None;
            for j in 0..k - 1 {
                let gk = logit_rows[a][classes[i][j + 1] as usize] - f0;
                let wn = w_norms[a][j];
                if wn > 0.0 && wn.is_finite() {
                    let ratio = gk.abs() / wn;
                    if best.is_none_or(|(_, b)| ratio < b) {
                        best = Some((j, ratio));
                    }
                }
            }
            let Some((j, _)) = best else {
                continue; // flat logits: no direction to move in
            };
            let gk = (logit_rows[a][classes[i][j + 1] as usize] - f0).abs();
            let wn = w_norms[a][j];
            // Step length in the ℓp norm: |g_l|/‖w_l‖_q (+ min_step), along the unit-ℓp direction
            // |w|^{q−1} ⊙ sign(w) / ‖w‖_q^{q−1}.
            let length = gk / wn + config.min_step;
            let coef = match q {
                Norm::L(qq) => length / wn.powf(qq - 1.0),
                Norm::Inf => length,
            };
            rows.push((a * (k - 1) + j) as u32);
            coefs.push(coef);
            still.push(i);
        }
        if still.is_empty() {
            active.clear();
            break;
        }
        let m = still.len();
        let w_sel = w_diff
            .reshape((active.len() * (k - 1), d))?
            .index_select(&Tensor::from_vec(rows, m, &dev)?, 0)?;
        let dir = match q {
            Norm::L(2.0) => w_sel,
            Norm::L(1.0) => w_sel.sign()?,
            Norm::L(qq) => (w_sel.abs()?.powf(qq - 1.0)? * w_sel.sign()?)?,
            Norm::Inf => {
                // p = 1 is rejected in validate(); q = ∞ cannot occur.
                return Err(AdvError::invalid("norm", "DeepFool with p = 1"));
            }
        };
        let coef = Tensor::from_vec(coefs, (m, 1), &dev)?.to_dtype(dir.dtype())?;
        let r = dir.broadcast_mul(&coef)?;
        let sidx = Tensor::from_vec(still.iter().map(|&i| i as u32).collect::<Vec<_>>(), m, &dev)?;
        r_tot = r_tot.index_add(&sidx, &r, 0)?;
        for &i in &still {
            iterations[i] += 1;
        }
        active = still;
    }

    let x_adv = config
        .clip
        .apply(&(&x0 + r_tot.reshape(x0.shape())?.affine(scale, 0.0)?)?)?;
    let pert = (&x_adv - &x0)?;
    let adv_labels = predict(model, &x_adv, EVAL_BATCH)?;
    let l2 = lp_norms_per_row(&pert, Norm::L2)?;
    let linf = lp_norms_per_row(&pert, Norm::Inf)?;
    let xn = lp_norms_per_row(&x0, Norm::L2)?;
    let images_report: Vec<DeepFoolImage> = (0..n)
        .map(|i| DeepFoolImage {
            original: original[i],
            adversarial: adv_labels[i],
            fooled: adv_labels[i] != original[i],
            iterations: iterations[i],
            l2: l2[i],
            linf: linf[i],
            rho: if xn[i] > 0.0 { l2[i] / xn[i] } else { f64::NAN },
        })
        .collect();
    Ok(DeepFoolOutput {
        perturbations: pert,
        report: DeepFoolReport::from_images(images_report, *config),
    })
}
