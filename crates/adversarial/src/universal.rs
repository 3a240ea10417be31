//! Universal perturbations: the fooling rate, UAP (Moosavi-Dezfooli et al., CVPR 2017) and universal PGD.
//!
//! * **Fooling rate** = `#{x : argmax f(clip(x + v)) ≠ argmax f(x)} / N` — no ground-truth labels; the
//!   clipping is explicit ([`Clip`]) and reported with every number. Evaluate on images disjoint from
//!   those used to build `v`.
//! * **UAP**, exactly as the official code (the inner DeepFool is always ℓ2, the projection enforces the
//!   ℓp budget):
//!   ```text
//!   v ← 0
//!   while fooling(X) < 1 − δ and pass < max_passes:
//!       shuffle X (seeded)
//!       for x in X:
//!           if k̂(x + v) = k̂(x):
//!               (Δv, iters) ← DeepFool_ℓ2(x + v, max_iter = 10)
//!               if iters < max_iter − 1 and x + v + Δv is fooled:  v ← Proj_{p,ξ}(v + Δv)
//!       fooling(X) recomputed on all of X
//!   return the v of the best pass (the per-pass rate can oscillate at small ξ)
//!   ```
//!   `chunk > 1` runs DeepFool for `chunk` images at a time against the same `v` (batched, faster), then
//!   applies their increments one after the other; `chunk = 1` is the exact sequential algorithm.
//! * **Universal PGD**: one shared `v` maximising the mean cross-entropy over mini-batches,
//!   `v ← Proj(v + α·sign(∇ᵥ))` (ℓ∞) or `v + α·∇ᵥ/‖∇ᵥ‖₂` (ℓ2), with the clipped inputs in the loss.
//!
//! ```
//! use adversarial::norm::Clip;
//! use adversarial::universal::fooling_rate;
//! use adversarial::net::{Layer, Net};
//! use candle_core::{Device, Tensor};
//! use nn_core::models::InputSpec;
//!
//! // f(x) = [x₁, x₂]; v = (−0.3, +0.3) moves both images across x₁ = x₂.
//! let w = Tensor::new(&[[1f32, 0.], [0., 1.]], &Device::Cpu)?;
//! let net = Net::new("affine", InputSpec::new(1, 1, 2, 2), vec![
//!     Layer::Flatten.into(), Layer::linear(w, None).named("logits")])?;
//! let x = Tensor::new(&[[[[0.6f32, 0.5]]], [[[0.9, 0.1]]]], &Device::Cpu)?;
//! let v = Tensor::new(&[[[-0.3f32, 0.3]]], &Device::Cpu)?;
//! let r = fooling_rate(&net, &x, &v, Clip::default())?;
//! assert_eq!(r.fooling_rate, 0.5); // the second image stays: 0.6 > 0.4
//! # Ok::<(), adversarial::AdvError>(())
//! ```

use candle_core::{D, Tensor};
use nn_core::progress::Progress;
use serde::{Deserialize, Serialize};

use crate::attacks::{
    DeepFoolConfig, EVAL_BATCH, check_batch, cross_entropy_cotangent, deepfool, predict,
};
use crate::error::{AdvError, Result, check_at_least_one, check_nonneg};
use crate::net::LogitModel;
use crate::norm::{Clip, Norm, Perturbation, lp_norm, project};

/// Fooling rate and related numbers of one perturbation on one image set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FoolingReport {
    pub n: usize,
    /// Images whose predicted label changed.
    pub fooled: usize,
    /// `fooled / n`.
    pub fooling_rate: f64,
    /// The clipping used.
    pub clip: Clip,
    /// Accuracy on clean and on perturbed images (when labels were given).
    pub clean_accuracy: Option<f64>,
    pub perturbed_accuracy: Option<f64>,
    /// Histogram over classes of the perturbed predictions of the fooled images (the "dominant labels").
    pub dominant_labels: Vec<usize>,
    /// `‖v‖_∞` and `‖v‖₂` of the perturbation as given (before clipping).
    pub linf: f64,
    pub l2: f64,
}

/// Clean predictions of a fixed image set, reused to evaluate many perturbations.
pub struct FoolingEvaluator {
    images: Tensor,
    clean: Vec<u32>,
    labels: Option<Vec<u32>>,
    batch_size: usize,
}

impl FoolingEvaluator {
    /// Predicts the clean labels of `images` once. `labels` (true labels) only add accuracies.
    pub fn new<M: LogitModel + ?Sized>(
        model: &M,
        images: &Tensor,
        labels: Option<&[u32]>,
    ) -> Result<Self> {
        let n = check_batch(images, "images")?;
        if let Some(l) = labels
            && l.len() != n
        {
            return Err(AdvError::shape(
                "labels",
                format!("{n} labels (one per image)"),
                format!("{}", l.len()),
            ));
        }
        let batch_size = EVAL_BATCH;
        Ok(Self {
            clean: predict(model, images, batch_size)?,
            images: images.clone(),
            labels: labels.map(<[u32]>::to_vec),
            batch_size,
        })
    }

    /// The clean predictions.
    pub fn clean_predictions(&self) -> &[u32] {
        &self.clean
    }

    /// Predictions on `clip(x + v)`; `v` is one image `[C, H, W]` (universal) or `[N, C, H, W]`.
    pub fn perturbed_predictions<M: LogitModel + ?Sized>(
        &self,
        model: &M,
        v: &Tensor,
        clip: Clip,
    ) -> Result<Vec<u32>> {
        clip.validate()?;
        let dims = self.images.dims();
        let universal = v.dims() == &dims[1..];
        if !universal && v.dims() != dims {
            return Err(AdvError::shape(
                "perturbation",
                format!("{:?} (universal) or {:?} (per image)", &dims[1..], dims),
                format!("{:?}", v.dims()),
            ));
        }
        let v = v.to_dtype(self.images.dtype())?;
        let n = dims[0];
        let mut out = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let len = self.batch_size.min(n - start);
            let x = self.images.narrow(0, start, len)?;
            let xv = if universal {
                x.broadcast_add(&v)?
            } else {
                (x + v.narrow(0, start, len)?)?
            };
            let xv = clip.apply(&xv)?.to_dtype(model.dtype())?;
            out.extend(model.logits(&xv)?.argmax(D::Minus1)?.to_vec1::<u32>()?);
            start += len;
        }
        Ok(out)
    }

    /// The fooling rate of `v` (see the module header) and accuracies.
    pub fn evaluate<M: LogitModel + ?Sized>(
        &self,
        model: &M,
        v: &Tensor,
        clip: Clip,
    ) -> Result<FoolingReport> {
        let pert = self.perturbed_predictions(model, v, clip)?;
        let n = self.clean.len();
        let num_classes = pert
            .iter()
            .chain(&self.clean)
            .map(|&c| c as usize + 1)
            .max()
            .unwrap_or(0);
        let mut dominant = vec![0usize; num_classes];
        let mut fooled = 0;
        for (&c, &p) in self.clean.iter().zip(&pert) {
            if c != p {
                fooled += 1;
                dominant[p as usize] += 1;
            }
        }
        let acc = |pred: &[u32]| {
            self.labels.as_ref().map(|l| {
                l.iter().zip(pred).filter(|(a, b)| a == b).count() as f64 / n.max(1) as f64
            })
        };
        Ok(FoolingReport {
            n,
            fooled,
            fooling_rate: fooled as f64 / n.max(1) as f64,
            clip,
            clean_accuracy: acc(&self.clean),
            perturbed_accuracy: acc(&pert),
            dominant_labels: dominant,
            linf: lp_norm(v, Norm::Inf)?,
            l2: lp_norm(v, Norm::L2)?,
        })
    }
}

/// The fooling rate of `v` on `images` (no labels needed); see [`FoolingEvaluator`] to reuse the clean
/// predictions for several perturbations.
pub fn fooling_rate<M: LogitModel + ?Sized>(
    model: &M,
    images: &Tensor,
    v: &Tensor,
    clip: Clip,
) -> Result<FoolingReport> {
    FoolingEvaluator::new(model, images, None)?.evaluate(model, v, clip)
}

/// Parameters of [`universal_perturbation`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UapConfig {
    /// Radius ξ of the ℓp ball (default 10/255 ≈ 0.039, the paper's ℓ∞ budget on [0, 1] images).
    pub xi: f64,
    /// Norm of the budget (default ∞).
    pub norm: Norm,
    /// Stop once the fooling rate on X reaches `1 − delta` (default 0.2).
    pub delta: f64,
    /// Maximum passes over X (default 10; always bounded).
    pub max_passes: usize,
    /// The inner DeepFool (default: ℓ2, overshoot 0.02, 10 classes, `max_iter` 10, no clipping).
    pub deepfool: DeepFoolConfig,
    /// Clipping of `x + v` in every prediction (default `[0, 1]`).
    pub clip: Clip,
    /// Images per batched DeepFool call (default 1 = the exact sequential algorithm).
    pub chunk: usize,
    /// Seed of the per-pass shuffles (default 0).
    pub seed: u64,
}

impl Default for UapConfig {
    fn default() -> Self {
        Self {
            xi: 10.0 / 255.0,
            norm: Norm::Inf,
            delta: 0.2,
            max_passes: 10,
            deepfool: DeepFoolConfig {
                max_iter: 10,
                ..DeepFoolConfig::default()
            },
            clip: Clip::default(),
            chunk: 1,
            seed: 0,
        }
    }
}

impl UapConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        check_nonneg("xi", self.xi)?;
        self.norm.validate("norm")?;
        if !(0.0..=1.0).contains(&self.delta) {
            return Err(AdvError::invalid(
                "delta",
                format!("must be in [0, 1], got {}", self.delta),
            ));
        }
        check_at_least_one("max_passes", self.max_passes)?;
        check_at_least_one("chunk", self.chunk)?;
        self.deepfool.validate()?;
        if self.deepfool.norm != Norm::L2 {
            return Err(AdvError::invalid(
                "deepfool.norm",
                "the UAP loop uses the ℓ2 DeepFool (the projection enforces the budget)",
            ));
        }
        self.clip.validate()
    }
}

/// One pass of the UAP loop.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UapPass {
    /// 1-based pass number.
    pub pass: usize,
    /// Fooling rate on X after the pass.
    pub fooling_rate: f64,
    /// DeepFool increments applied in the pass.
    pub updates: usize,
    /// DeepFool calls whose result was discarded (not converged in `max_iter − 1` steps).
    pub rejected: usize,
    /// `‖v‖_p` after the pass.
    pub norm: f64,
}

/// The outcome of [`universal_perturbation`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UapResult {
    /// The perturbation of the best pass, `[C, H, W]`.
    pub perturbation: Perturbation,
    /// Pass that produced it (0: no pass improved on v = 0).
    pub best_pass: usize,
    /// Its fooling rate on X.
    pub best_fooling_rate: f64,
    pub history: Vec<UapPass>,
    /// True when the target `1 − δ` was reached before `max_passes`.
    pub reached_target: bool,
    pub config: UapConfig,
}

/// Seeded permutation of `0..n`.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    nn_core::data::permutation(n, seed)
}

/// The UAP algorithm (see the module header) on the images `X` (`[m, C, H, W]`). `progress`, when given,
/// advances once per image visited.
pub fn universal_perturbation<M: LogitModel + ?Sized>(
    model: &M,
    images: &Tensor,
    config: &UapConfig,
    progress: Option<&dyn Progress>,
) -> Result<UapResult> {
    config.validate()?;
    let m = check_batch(images, "images")?;
    let x_all = images.to_dtype(model.dtype())?;
    let eval = FoolingEvaluator::new(model, &x_all, None)?;
    let clean = eval.clean_predictions().to_vec();
    let shape = x_all.dims()[1..].to_vec();
    let mut v = Tensor::zeros(shape.as_slice(), x_all.dtype(), x_all.device())?;
    let mut best = (v.clone(), 0usize, 0.0f64);
    let mut history = Vec::new();
    let mut fooling = 0.0;
    let mut pass = 0;
    if let Some(p) = progress {
        p.start((m * config.max_passes) as u64, 0);
    }
    while fooling < 1.0 - config.delta && pass < config.max_passes {
        pass += 1;
        let order = shuffled(m, config.seed.wrapping_add(pass as u64));
        let (mut updates, mut rejected) = (0, 0);
        for chunk in order.chunks(config.chunk) {
            let idx = Tensor::from_vec(
                chunk.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                chunk.len(),
                x_all.device(),
            )?;
            let xc = x_all.index_select(&idx, 0)?;
            let xv = config.clip.apply(&xc.broadcast_add(&v)?)?;
            let pred = predict(model, &xv, EVAL_BATCH)?;
            let open: Vec<usize> = (0..chunk.len())
                .filter(|&j| pred[j] == clean[chunk[j]])
                .collect();
            if let Some(p) = progress {
                p.advance(chunk.len() as u64);
            }
            if open.is_empty() {
                continue;
            }
            let oidx = Tensor::from_vec(
                open.iter().map(|&j| j as u32).collect::<Vec<_>>(),
                open.len(),
                x_all.device(),
            )?;
            // DeepFool from the input the model actually sees, clip(x + v); its own iterates are clipped
            // only if `config.deepfool.clip` says so (default: not, as in the official code).
            let df = deepfool(model, &xv.index_select(&oidx, 0)?, &config.deepfool)?;
            for (a, img) in df.report.images.iter().enumerate() {
                if img.fooled && img.iterations + 1 < config.deepfool.max_iter {
                    let dv = df.perturbations.get(a)?;
                    v = project(&(&v + dv)?, config.norm, config.xi)?;
                    updates += 1;
                } else {
                    rejected += 1;
                }
            }
        }
        let report = eval.evaluate(model, &v, config.clip)?;
        fooling = report.fooling_rate;
        let norm = lp_norm(&v, config.norm)?;
        tracing::info!(pass, fooling, updates, rejected, norm, "UAP pass");
        if let Some(p) = progress {
            p.message(&format!("pass {pass}: fooling {:.1}%", 100.0 * fooling));
        }
        history.push(UapPass {
            pass,
            fooling_rate: fooling,
            updates,
            rejected,
            norm,
        });
        if fooling > best.2 {
            best = (v.clone(), pass, fooling);
        }
    }
    Ok(UapResult {
        perturbation: Perturbation::from_tensor(&best.0)?,
        best_pass: best.1,
        best_fooling_rate: best.2,
        reached_target: fooling >= 1.0 - config.delta,
        history,
        config: *config,
    })
}

/// Parameters of [`universal_pgd`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UniversalPgdConfig {
    /// Budget ε (default 0.1).
    pub eps: f64,
    /// ∞ (default) or 2.
    pub norm: Norm,
    /// Number of steps (default 300).
    pub steps: usize,
    /// Step size α (default `None` = ε/10).
    pub step_size: Option<f64>,
    /// Images per step (default 128).
    pub batch_size: usize,
    /// Seed of the batch order (default 0).
    pub seed: u64,
    /// Clipping of `x + v` inside the loss (default `[0, 1]`).
    pub clip: Clip,
}

impl Default for UniversalPgdConfig {
    fn default() -> Self {
        Self {
            eps: 0.1,
            norm: Norm::Inf,
            steps: 300,
            step_size: None,
            batch_size: 128,
            seed: 0,
            clip: Clip::default(),
        }
    }
}

/// The outcome of [`universal_pgd`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UniversalPgdResult {
    /// `v`, `[C, H, W]`, `‖v‖_p ≤ ε`.
    pub perturbation: Perturbation,
    /// `(step, mean cross-entropy of that step's batch before the update)`, every 25 steps and the last.
    pub loss_history: Vec<(usize, f64)>,
    pub config: UniversalPgdConfig,
}

/// Universal PGD (see the module header). `labels`: true labels, or `None` for the model's clean
/// predictions (no labels needed).
pub fn universal_pgd<M: LogitModel + ?Sized>(
    model: &M,
    images: &Tensor,
    labels: Option<&[u32]>,
    config: &UniversalPgdConfig,
    progress: Option<&dyn Progress>,
) -> Result<UniversalPgdResult> {
    check_nonneg("eps", config.eps)?;
    check_at_least_one("steps", config.steps)?;
    check_at_least_one("batch_size", config.batch_size)?;
    config.clip.validate()?;
    if !matches!(config.norm, Norm::Inf) && config.norm != Norm::L2 {
        return Err(AdvError::invalid(
            "norm",
            format!("universal PGD supports p = 2 or ∞, got {}", config.norm),
        ));
    }
    let alpha = config.step_size.unwrap_or(config.eps / 10.0);
    check_nonneg("step_size", alpha)?;
    let m = check_batch(images, "images")?;
    let x_all = images.to_dtype(model.dtype())?;
    let y_all = match labels {
        Some(l) if l.len() == m => l.to_vec(),
        Some(l) => {
            return Err(AdvError::shape(
                "labels",
                format!("{m} labels"),
                format!("{}", l.len()),
            ));
        }
        None => predict(model, &x_all, EVAL_BATCH)?,
    };
    let mut v = Tensor::zeros(&x_all.dims()[1..], x_all.dtype(), x_all.device())?;
    let mut order = shuffled(m, config.seed);
    let mut cursor = 0;
    let mut epoch = 0u64;
    let mut loss_history = Vec::new();
    if let Some(p) = progress {
        p.start(config.steps as u64, 0);
    }
    for step_no in 0..config.steps {
        if cursor >= m {
            epoch += 1;
            order = shuffled(m, config.seed.wrapping_add(epoch));
            cursor = 0;
        }
        let take = config.batch_size.min(m - cursor);
        let batch = &order[cursor..cursor + take];
        cursor += take;
        let idx = Tensor::from_vec(
            batch.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            take,
            x_all.device(),
        )?;
        let xb = x_all.index_select(&idx, 0)?;
        let yb = Tensor::from_vec(
            batch.iter().map(|&i| y_all[i]).collect::<Vec<_>>(),
            take,
            x_all.device(),
        )?;
        // ∇ᵥ mean CE(f(clip(x + v)), y): the pullback of (softmax − onehot)/b, masked where the clip is
        // active (inclusive at the bounds, so that pixels at exactly 0 or 1 can start to move).
        let xv = xb.broadcast_add(&v)?;
        let z = config.clip.apply(&xv)?;
        let (logits, pullback) = model.linearize_logits(&z)?;
        if step_no % 25 == 0 || step_no + 1 == config.steps {
            let loss = nn_core::layers::cross_entropy(&logits, &yb)?
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?;
            loss_history.push((step_no, loss));
        }
        let u = cross_entropy_cotangent(
            &logits,
            &batch.iter().map(|&i| y_all[i]).collect::<Vec<_>>(),
        )?
        .affine(1.0 / take as f64, 0.0)?;
        let mut g = pullback(&u)?;
        if let Clip::Range { lo, hi } = config.clip {
            let inside = (xv.ge(lo)? * xv.le(hi)?)?.to_dtype(g.dtype())?;
            g = (g * inside)?;
        }
        let g = g.sum(0)?;
        let step = match config.norm {
            Norm::Inf => g.sign()?,
            _ => {
                let n = lp_norm(&g, Norm::L2)?;
                if n == 0.0 { g } else { g.affine(1.0 / n, 0.0)? }
            }
        };
        v = project(&(&v + step.affine(alpha, 0.0)?)?, config.norm, config.eps)?;
        if let Some(p) = progress {
            p.advance(1);
        }
    }
    Ok(UniversalPgdResult {
        perturbation: Perturbation::from_tensor(&v)?,
        loss_history,
        config: *config,
    })
}
