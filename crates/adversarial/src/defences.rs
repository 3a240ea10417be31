//! Defences: input transformations, Gaussian-noise training, and the Papernot et al. (2017) substitute-model
//! black-box attack.
//!
//! * [`InputTransform`]: bit-depth reduction and 3×3 median smoothing (Feature Squeezing, Xu et al. 2018),
//!   JPEG-style compression, additive Gaussian noise. [`Defended`] puts a transform in front of a model.
//!   Its gradient is the **identity** through the transform (BPDA, Athalye et al. 2018), so the attacks of
//!   this crate run against a `Defended` model are *adaptive*; perturbations computed on the bare model and
//!   then evaluated on a `Defended` one are the *non-adaptive* setting the talk shows.
//! * **JPEG-style compression** (a simplified baseline JPEG, documented here because it is not libjpeg):
//!   per channel, values `x·255 − 128` are padded to a multiple of 8 by edge replication, cut into 8×8
//!   blocks, transformed by the orthonormal 2-d DCT-II, each coefficient rounded to a multiple of the
//!   standard JPEG luminance table entry scaled by quality (IJG rule: `s = 5000/Q` for Q < 50, else
//!   `200 − 2Q`; entry `⌊(T·s + 50)/100⌋` clamped to `[1, 255]`), transformed back and clamped to `[0, 1]`.
//!   No colour conversion, no chroma subsampling, no entropy coding (lossless anyway).
//! * [`train_with_gaussian_noise`]: every training batch is `clip(x + σ·N(0, I))`, fresh seeded noise per
//!   step (Gaussian data augmentation; randomized-smoothing training).
//! * [`train_with_augmentation`] with [`Augmentation::LinfShift`]: light ℓ∞ augmentation — a seeded
//!   fraction `f` of each batch gets `clip(x + δ·s)`, `δ ~ U[0, δ_max]` per image, and `s` either random
//!   ±1 signs per pixel or one constant ±1 for the whole image (a brightness offset), each with
//!   probability ½. Makes a batch-norm network insensitive to random noise and brightness shifts of the
//!   size of the attack budget without training on any attack.
//! * [`substitute_attack`]: Papernot's black-box attack — the oracle only returns labels:
//!   ```text
//!   S₀ ← seed images (e.g. 150 held-out)
//!   for ρ = 0 … rounds−1:
//!       label S_ρ with the oracle; train the substitute F on it
//!       S_{ρ+1} ← S_ρ ∪ { clip(x + λ_ρ · sign(∂F_{oracle(x)}(x)/∂x)) },  λ_ρ = λ·(−1)^{⌊ρ/τ⌋}
//!   FGSM(ε) on F, transferred to the oracle
//!   ```
//!   λ is signed: the paper writes `+λ` with the periodic sign flip every τ rounds; the cleverhans tutorial
//!   (`mnist_blackbox.py`, coefficient `2·[⌊ρ/3⌋ ≠ 0] − 1`) *starts* with −λ — each new point steps
//!   against the gradient of the oracle's class, towards the decision boundary — which is the default
//!   here (λ = −0.1, τ = 3).
//!
//! ```
//! use adversarial::defences::InputTransform;
//! use candle_core::{Device, Tensor};
//!
//! let x = Tensor::new(&[[[[0.1f32, 0.4], [0.6, 0.9]]]], &Device::Cpu)?;
//! let y = InputTransform::BitDepth { bits: 1 }.apply(&x)?;
//! assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![0.0, 0.0, 1.0, 1.0]);
//! # Ok::<(), adversarial::AdvError>(())
//! ```

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use nn_core::data::Dataset;
use nn_core::models::{Classifier, ModelConfig, SeededVarMap, build_model};
use nn_core::optim::Optimizer;
use nn_core::progress::Progress;
use nn_core::train::{TrainConfig, TrainOptions, epoch_seed, evaluate, train, train_epoch};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::attacks::{EVAL_BATCH, FgsmConfig, check_batch, fgsm, predict};
use crate::error::{AdvError, Result, check_nonneg};
use crate::net::{LogitModel, Pullback};
use crate::norm::Clip;

/// An input transformation used as a defence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
#[non_exhaustive]
pub enum InputTransform {
    /// `round(x·(2^bits − 1)) / (2^bits − 1)` after clamping to [0, 1] (1 ≤ bits ≤ 16).
    BitDepth { bits: u32 },
    /// Median over a `window × window` neighbourhood (odd window), edges replicated.
    Median { window: usize },
    /// JPEG-style DCT quantisation with quality 1–100 (see the module header).
    Jpeg { quality: u32 },
    /// `clip(x + σ·N(0, I))` to [0, 1], seeded (the same noise pattern at every call).
    GaussianNoise { sigma: f64, seed: u64 },
}

impl InputTransform {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        match *self {
            InputTransform::BitDepth { bits } if (1..=16).contains(&bits) => Ok(()),
            InputTransform::BitDepth { bits } => Err(AdvError::invalid(
                "bits",
                format!("must be in 1..=16, got {bits}"),
            )),
            InputTransform::Median { window } if window % 2 == 1 => Ok(()),
            InputTransform::Median { window } => Err(AdvError::invalid(
                "window",
                format!("must be odd and at least 1, got {window}"),
            )),
            InputTransform::Jpeg { quality } if (1..=100).contains(&quality) => Ok(()),
            InputTransform::Jpeg { quality } => Err(AdvError::invalid(
                "quality",
                format!("must be in 1..=100, got {quality}"),
            )),
            InputTransform::GaussianNoise { sigma, .. } => check_nonneg("sigma", sigma),
        }
    }

    /// A short label for reports.
    pub fn label(&self) -> String {
        match *self {
            InputTransform::BitDepth { bits } => format!("{bits}-bit depth"),
            InputTransform::Median { window } => format!("{window}×{window} median"),
            InputTransform::Jpeg { quality } => format!("JPEG-style q{quality}"),
            InputTransform::GaussianNoise { sigma, .. } => format!("Gaussian noise σ={sigma}"),
        }
    }

    /// Applies the transform to images `[N, C, H, W]` (values in [0, 1]).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        self.validate()?;
        check_batch(x, "images")?;
        match *self {
            InputTransform::BitDepth { bits } => {
                let levels = ((1u64 << bits) - 1) as f64;
                Ok(x.clamp(0.0, 1.0)?
                    .affine(levels, 0.0)?
                    .round()?
                    .affine(1.0 / levels, 0.0)?)
            }
            InputTransform::Median { window } => median_filter(x, window),
            InputTransform::Jpeg { quality } => jpeg_like(x, quality),
            InputTransform::GaussianNoise { sigma, seed } => {
                let noise = nn_core::grad::seeded_normal(x.dims(), x.dtype(), x.device(), seed)?;
                Ok((x + noise.affine(sigma, 0.0)?)?.clamp(0.0, 1.0)?)
            }
        }
    }
}

fn median_filter(x: &Tensor, window: usize) -> Result<Tensor> {
    if window == 1 {
        return Ok(x.clone());
    }
    let (_, _, h, w) = x.dims4()?;
    let r = window / 2;
    let xp = x.pad_with_same(2, r, r)?.pad_with_same(3, r, r)?;
    let mut views = Vec::with_capacity(window * window);
    for di in 0..window {
        for dj in 0..window {
            views.push(xp.narrow(2, di, h)?.narrow(3, dj, w)?);
        }
    }
    let stacked = Tensor::stack(&views, 4)?.contiguous()?;
    let (sorted, _) = stacked.sort_last_dim(true)?;
    Ok(sorted.narrow(4, window * window / 2, 1)?.squeeze(4)?)
}

/// The standard JPEG luminance quantisation table (ITU T.81, Annex K).
const JPEG_LUMA: [f64; 64] = [
    16., 11., 10., 16., 24., 40., 51., 61., 12., 12., 14., 19., 26., 58., 60., 55., 14., 13., 16.,
    24., 40., 57., 69., 56., 14., 17., 22., 29., 51., 87., 80., 62., 18., 22., 37., 56., 68., 109.,
    103., 77., 24., 35., 55., 64., 81., 104., 113., 92., 49., 64., 78., 87., 103., 121., 120.,
    101., 72., 92., 95., 98., 112., 100., 103., 99.,
];

/// The quantisation table for `quality` (IJG scaling).
pub fn jpeg_quant_table(quality: u32) -> [f64; 64] {
    let q = quality.clamp(1, 100) as f64;
    let scale = if q < 50.0 {
        5000.0 / q
    } else {
        200.0 - 2.0 * q
    };
    JPEG_LUMA.map(|t| ((t * scale + 50.0) / 100.0).floor().clamp(1.0, 255.0))
}

/// The orthonormal 8×8 DCT-II matrix `D[k][n] = α(k) cos(π(2n+1)k/16)`.
fn dct_matrix() -> Vec<f64> {
    let mut d = vec![0.0; 64];
    for k in 0..8 {
        let a = if k == 0 {
            (1.0f64 / 8.0).sqrt()
        } else {
            (2.0f64 / 8.0).sqrt()
        };
        for n in 0..8 {
            d[k * 8 + n] = a * (std::f64::consts::PI * (2 * n + 1) as f64 * k as f64 / 16.0).cos();
        }
    }
    d
}

fn jpeg_like(x: &Tensor, quality: u32) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let dt = x.dtype();
    let (hp, wp) = (h.div_ceil(8) * 8, w.div_ceil(8) * 8);
    let xs = x
        .clamp(0.0, 1.0)?
        .to_dtype(DType::F64)?
        .affine(255.0, -128.0)?;
    let xs = xs
        .pad_with_same(2, 0, hp - h)?
        .pad_with_same(3, 0, wp - w)?;
    let blocks = xs
        .reshape((n, c, hp / 8, 8, wp / 8, 8))?
        .permute((0, 1, 2, 4, 3, 5))?
        .contiguous()?
        .reshape((n * c * (hp / 8) * (wp / 8), 8, 8))?;
    let dev = x.device();
    let d = Tensor::from_vec(dct_matrix(), (8, 8), dev)?;
    let dt_m = d.t()?.contiguous()?;
    let coef = d.broadcast_matmul(&blocks)?.broadcast_matmul(&dt_m)?;
    let q = Tensor::from_vec(jpeg_quant_table(quality).to_vec(), (8, 8), dev)?;
    let quantised = coef.broadcast_div(&q)?.round()?.broadcast_mul(&q)?;
    let back = dt_m.broadcast_matmul(&quantised)?.broadcast_matmul(&d)?;
    let img = back
        .reshape((n, c, hp / 8, wp / 8, 8, 8))?
        .permute((0, 1, 2, 4, 3, 5))?
        .contiguous()?
        .reshape((n, c, hp, wp))?
        .narrow(2, 0, h)?
        .narrow(3, 0, w)?;
    Ok(img
        .affine(1.0 / 255.0, 128.0 / 255.0)?
        .clamp(0.0, 1.0)?
        .to_dtype(dt)?)
}

/// A model behind an input transform: `logits(x) = model(T(x))`, with the identity as the transform's
/// gradient (BPDA) so that gradient attacks remain possible.
pub struct Defended<'a, M: ?Sized> {
    pub model: &'a M,
    pub transform: InputTransform,
}

impl<M: LogitModel + ?Sized> LogitModel for Defended<'_, M> {
    fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let tx = self
            .transform
            .apply(&x.detach())
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?
            .to_dtype(x.dtype())?;
        // Forward value T(x); backward the identity (straight-through).
        let bypass = (x + (tx - x.detach())?)?;
        self.model.logits(&bypass)
    }
    fn dtype(&self) -> DType {
        self.model.dtype()
    }
    /// BPDA: the logits of `T(x)`, pulled back as if `T` were the identity.
    fn linearize_logits(&self, x: &Tensor) -> Result<(Tensor, Pullback<'_>)> {
        let tx = self.transform.apply(&x.detach())?.to_dtype(x.dtype())?;
        self.model.linearize_logits(&tx)
    }
}

/// Metrics of one epoch of [`train_with_gaussian_noise`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoiseEpoch {
    pub epoch: usize,
    /// Mean training loss on the noisy batches.
    pub train_loss: f64,
    /// Clean test accuracy after the epoch (when a test set was given).
    pub test_accuracy: Option<f64>,
}

/// Input augmentation applied to every training batch by [`train_with_augmentation`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
#[non_exhaustive]
pub enum Augmentation {
    /// `clip(x + σ·N(0, I))` on every image (`sigma ≥ 0`; 0 is ordinary training).
    Gaussian { sigma: f64 },
    /// On a fraction `fraction ∈ [0, 1]` of the images of each batch (chosen per image, seeded):
    /// `clip(x + δ·s)` with `δ ~ U[0, max_eps]` per image and `s` random ±1 signs per pixel or one
    /// constant ±1 over the image, each with probability ½. The others stay clean.
    LinfShift { max_eps: f64, fraction: f64 },
}

impl Augmentation {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Augmentation::Gaussian { sigma } => check_nonneg("sigma", sigma),
            Augmentation::LinfShift { max_eps, fraction } => {
                check_nonneg("max_eps", max_eps)?;
                if !(0.0..=1.0).contains(&fraction) {
                    return Err(AdvError::invalid(
                        "fraction",
                        format!("must be in [0, 1], got {fraction}"),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Parses `none`, `gauss:SIGMA` or `linf:MAX_EPS[:FRACTION]` (fraction defaults to 0.5).
    pub fn parse(spec: &str) -> Result<Self> {
        let num = |name: &str, t: &str| {
            t.parse::<f64>().map_err(|_| {
                AdvError::invalid(name, format!("expected a number in `{spec}`, got `{t}`"))
            })
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let aug = match parts.as_slice() {
            ["none"] => Augmentation::Gaussian { sigma: 0.0 },
            ["gauss", s] => Augmentation::Gaussian {
                sigma: num("sigma", s)?,
            },
            ["linf", e] => Augmentation::LinfShift {
                max_eps: num("max_eps", e)?,
                fraction: 0.5,
            },
            ["linf", e, f] => Augmentation::LinfShift {
                max_eps: num("max_eps", e)?,
                fraction: num("fraction", f)?,
            },
            _ => {
                return Err(AdvError::invalid(
                    "augmentation",
                    format!("expected none, gauss:SIGMA or linf:MAX_EPS[:FRACTION], got `{spec}`"),
                ));
            }
        };
        aug.validate()?;
        Ok(aug)
    }

    /// Short tag for file names: `none`, `gauss0.2`, `linf0.2x0.5`.
    pub fn tag(&self) -> String {
        match *self {
            Augmentation::Gaussian { sigma: 0.0 } => "none".into(),
            Augmentation::Gaussian { sigma } => format!("gauss{sigma}"),
            Augmentation::LinfShift { max_eps, fraction } => format!("linf{max_eps}x{fraction}"),
        }
    }

    /// The augmented batch; `seed` fixes the randomness.
    pub fn apply(&self, x: &Tensor, seed: u64) -> Result<Tensor> {
        match *self {
            Augmentation::Gaussian { sigma: 0.0 } => Ok(x.clone()),
            Augmentation::Gaussian { sigma } => {
                let noise = nn_core::grad::seeded_normal(x.dims(), x.dtype(), x.device(), seed)?;
                Ok((x + noise.affine(sigma, 0.0)?)?.clamp(0.0, 1.0)?)
            }
            Augmentation::LinfShift { max_eps, fraction } => {
                let n = check_batch(x, "augmentation batch")?;
                let per = x.elem_count() / n.max(1);
                let mut rng = StdRng::seed_from_u64(seed);
                let mut delta = vec![0f32; x.elem_count()];
                for img in delta.chunks_mut(per) {
                    if rng.random::<f64>() >= fraction {
                        continue;
                    }
                    let d = (rng.random::<f64>() * max_eps) as f32;
                    if rng.random::<bool>() {
                        img.iter_mut()
                            .for_each(|v| *v = if rng.random::<bool>() { d } else { -d });
                    } else {
                        let c = if rng.random::<bool>() { d } else { -d };
                        img.iter_mut().for_each(|v| *v = c);
                    }
                }
                let delta = Tensor::from_vec(delta, x.dims(), x.device())?.to_dtype(x.dtype())?;
                Ok((x + delta)?.clamp(0.0, 1.0)?)
            }
        }
    }
}

/// Trains `model` (variables in `varmap`) with Gaussian data augmentation: each batch becomes
/// `clip(x + σ·ε)`, `ε ~ N(0, I)` drawn from a seed derived from `(config.seed, epoch, step)`. Uses
/// `config`'s optimiser, batch size, schedule and epochs. `sigma = 0` is ordinary training.
pub fn train_with_gaussian_noise(
    model: &dyn Classifier,
    varmap: &VarMap,
    train_set: &Dataset,
    test_set: Option<&Dataset>,
    sigma: f64,
    config: &TrainConfig,
    progress: Option<&dyn Progress>,
) -> Result<Vec<NoiseEpoch>> {
    check_nonneg("sigma", sigma)?;
    train_with_augmentation(
        model,
        varmap,
        train_set,
        test_set,
        &Augmentation::Gaussian { sigma },
        config,
        progress,
    )
}

/// Trains `model` with `augmentation` applied to every batch (seed derived from `(config.seed, epoch,
/// step)`); otherwise as [`nn_core::train::train`]: `config`'s optimiser, batch size, schedule, epochs.
pub fn train_with_augmentation(
    model: &dyn Classifier,
    varmap: &VarMap,
    train_set: &Dataset,
    test_set: Option<&Dataset>,
    augmentation: &Augmentation,
    config: &TrainConfig,
    progress: Option<&dyn Progress>,
) -> Result<Vec<NoiseEpoch>> {
    augmentation.validate()?;
    config.validate()?;
    if train_set.is_empty() {
        return Err(AdvError::invalid("train_set", "is empty"));
    }
    let mut opt = Optimizer::new(config.optimizer.clone(), varmap)?;
    let mut out = Vec::new();
    if let Some(p) = progress {
        p.start(
            (config.epochs * train_set.len().div_ceil(config.batch_size)) as u64,
            0,
        );
    }
    for epoch in 0..config.epochs {
        opt.set_learning_rate(config.schedule.lr_at(config.optimizer.lr(), epoch));
        let seed = epoch_seed(config.seed, epoch);
        let pass = train_epoch(
            model,
            &mut opt,
            train_set,
            config.batch_size,
            seed,
            epoch,
            |x, step| augmentation.apply(&x, epoch_seed(seed, step + 1)),
            |_| {
                if let Some(p) = progress {
                    p.advance(1);
                }
            },
        )?;
        let test_accuracy = test_set
            .map(|t| evaluate(model, t, EVAL_BATCH).map(|e| e.accuracy))
            .transpose()?;
        out.push(NoiseEpoch {
            epoch: epoch + 1,
            train_loss: pass.loss,
            test_accuracy,
        });
    }
    Ok(out)
}

/// Parameters of [`substitute_attack`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubstituteConfig {
    /// Substitute training rounds ρ_max (default 6).
    pub rounds: usize,
    /// Jacobian augmentation step λ, signed (default −0.1: cleverhans starts towards the boundary; the
    /// paper's convention is +0.1).
    pub lambda: f64,
    /// Flip the sign of λ every `tau` rounds (cleverhans; default Some(3)); None: always +λ.
    pub tau: Option<usize>,
    /// Training of the substitute in every round (default 10 epochs, Adam 1e-3, batch 32).
    pub train: TrainConfig,
    /// FGSM budget ε on the substitute (default 0.3 on [0, 1] MNIST).
    pub fgsm_eps: f64,
    /// Seed of the substitute's weights (default 0).
    pub seed: u64,
}

impl Default for SubstituteConfig {
    fn default() -> Self {
        Self {
            rounds: 6,
            lambda: -0.1,
            tau: Some(3),
            train: TrainConfig {
                epochs: 10,
                batch_size: 32,
                ..TrainConfig::default()
            },
            fgsm_eps: 0.3,
            seed: 0,
        }
    }
}

/// One round of the substitute training.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubstituteRound {
    pub round: usize,
    /// Size of S_ρ (= oracle queries this round).
    pub set_size: usize,
    /// Share of the test images on which substitute and oracle agree, after training this round.
    pub agreement: f64,
}

/// The outcome of [`substitute_attack`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubstituteReport {
    pub rounds: Vec<SubstituteRound>,
    /// Total labels requested from the oracle.
    pub oracle_queries: usize,
    /// Oracle accuracy (true labels) on the clean test images.
    pub oracle_clean_accuracy: f64,
    /// Substitute accuracy (true labels) on the clean test images.
    pub substitute_accuracy: f64,
    /// Oracle accuracy on the FGSM examples crafted on the substitute.
    pub oracle_adversarial_accuracy: f64,
    /// Share of test images whose oracle label the transferred example changed.
    pub transfer_rate: f64,
    /// White-box success of FGSM on the substitute itself.
    pub substitute_fgsm_success: f64,
    pub fgsm_eps: f64,
}

/// Papernot et al.'s substitute black-box attack on `oracle` (labels only), see the module header.
/// `seed_set`'s labels are ignored (the oracle labels it); `test_set` measures the transfer. The
/// substitute is built from `substitute` with weights seeded by `config.seed`.
pub fn substitute_attack<O: LogitModel + ?Sized>(
    oracle: &O,
    seed_set: &Dataset,
    test_set: &Dataset,
    substitute: &ModelConfig,
    config: &SubstituteConfig,
) -> Result<SubstituteReport> {
    if config.rounds == 0 {
        return Err(AdvError::invalid("rounds", "must be at least 1, got 0"));
    }
    if !config.lambda.is_finite() {
        return Err(AdvError::invalid(
            "lambda",
            format!("must be a finite number, got {}", config.lambda),
        ));
    }
    check_nonneg("fgsm_eps", config.fgsm_eps)?;
    if seed_set.is_empty() || test_set.is_empty() {
        return Err(AdvError::invalid(
            "seed_set/test_set",
            "both must hold at least one image",
        ));
    }
    let varmap = VarMap::new();
    let vb = SeededVarMap::var_builder(&varmap, config.seed, DType::F32, &Device::Cpu);
    let sub = build_model(substitute, vb)?;
    let mut s = seed_set.images.clone();
    let mut rounds = Vec::new();
    let mut queries = 0;
    let test_oracle = predict(oracle, &test_set.images, EVAL_BATCH)?;
    for rho in 0..config.rounds {
        let labels = predict(oracle, &s, EVAL_BATCH)?;
        queries += labels.len();
        let n = labels.len();
        let data = Dataset::new(
            s.clone(),
            Tensor::from_vec(labels.clone(), n, s.device())?,
            seed_set.classes.clone(),
            format!("{}/substitute-round{rho}", seed_set.name),
            seed_set.provenance,
        )?;
        let train_cfg = TrainConfig {
            seed: config.train.seed.wrapping_add(rho as u64),
            ..config.train.clone()
        };
        train(
            sub.as_ref(),
            &varmap,
            &data,
            None,
            &train_cfg,
            &TrainOptions::default(),
        )?;
        let sub_pred = predict(sub.as_ref(), &test_set.images, EVAL_BATCH)?;
        let agreement = agree(&sub_pred, &test_oracle);
        rounds.push(SubstituteRound {
            round: rho + 1,
            set_size: n,
            agreement,
        });
        if rho + 1 == config.rounds {
            break;
        }
        // Jacobian-based augmentation at the oracle's labels.
        let sign = match config.tau {
            Some(t) if t > 0 && (rho / t) % 2 == 1 => -1.0,
            _ => 1.0,
        };
        let idx = Tensor::from_vec(labels, (n, 1), s.device())?;
        let g = nn_core::grad::input_gradient(|z| sub.forward_t(z, false)?.gather(&idx, 1), &s)?;
        let new = (&s + g.sign()?.affine(sign * config.lambda, 0.0)?)?.clamp(0.0, 1.0)?;
        s = Tensor::cat(&[&s, &new], 0)?;
    }
    let truth = test_set.labels_vec()?;
    let adv = fgsm(
        sub.as_ref(),
        &test_set.images,
        None,
        &FgsmConfig {
            eps: config.fgsm_eps,
            clip: Clip::default(),
            ..FgsmConfig::default()
        },
    )?;
    let oracle_adv = predict(oracle, &adv.adversarial, EVAL_BATCH)?;
    Ok(SubstituteReport {
        rounds,
        oracle_queries: queries,
        oracle_clean_accuracy: agree(&test_oracle, &truth),
        substitute_accuracy: agree(
            &predict(sub.as_ref(), &test_set.images, EVAL_BATCH)?,
            &truth,
        ),
        oracle_adversarial_accuracy: agree(&oracle_adv, &truth),
        transfer_rate: 1.0 - agree(&oracle_adv, &test_oracle),
        substitute_fgsm_success: adv.report.success_rate,
        fgsm_eps: config.fgsm_eps,
    })
}

fn agree(a: &[u32], b: &[u32]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len().max(1) as f64
}

/// Accuracy of `model` (through an optional transform) against `labels`.
pub fn accuracy<M: LogitModel + ?Sized>(model: &M, images: &Tensor, labels: &[u32]) -> Result<f64> {
    let pred = predict(model, images, EVAL_BATCH)?;
    if pred.len() != labels.len() {
        return Err(AdvError::shape(
            "labels",
            format!("{} labels", pred.len()),
            format!("{}", labels.len()),
        ));
    }
    Ok(agree(&pred, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dct_is_orthonormal_and_jpeg_at_q100_is_nearly_lossless() {
        let d = dct_matrix();
        for i in 0..8 {
            for j in 0..8 {
                let dot: f64 = (0..8).map(|k| d[i * 8 + k] * d[j * 8 + k]).sum();
                assert!((dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        assert_eq!(jpeg_quant_table(50), JPEG_LUMA);
        assert!(jpeg_quant_table(100).iter().all(|&q| q == 1.0));
        let x = nn_core::grad::seeded_normal(&[2, 1, 11, 13], DType::F32, &Device::Cpu, 0)
            .unwrap()
            .affine(0.2, 0.5)
            .unwrap()
            .clamp(0.0, 1.0)
            .unwrap();
        let y = jpeg_like(&x, 100).unwrap();
        assert_eq!(y.dims(), x.dims());
        // Quantisation step 1 on 0..255: error ≤ 0.5·8/255 per pixel at worst, far less on average.
        let err = (y - &x)
            .unwrap()
            .abs()
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(err < 2.0 / 255.0, "{err}");
        // A constant image survives any quality exactly (only the DC coefficient is non-zero).
        let c = Tensor::full(0.5f32, (1, 1, 8, 8), &Device::Cpu).unwrap();
        let yc = jpeg_like(&c, 10).unwrap();
        let m = (yc - &c)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(m < 2.0 / 255.0, "{m}");
    }

    #[test]
    fn median_filter_removes_an_impulse() {
        let mut v = vec![0.2f32; 25];
        v[12] = 1.0; // centre of a 5×5 image
        let x = Tensor::from_vec(v, (1, 1, 5, 5), &Device::Cpu).unwrap();
        let y = InputTransform::Median { window: 3 }.apply(&x).unwrap();
        let vals = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(vals.iter().all(|&a| (a - 0.2).abs() < 1e-7), "{vals:?}");
        assert!(InputTransform::Median { window: 2 }.apply(&x).is_err());
        assert!(InputTransform::Jpeg { quality: 0 }.apply(&x).is_err());
        assert!(InputTransform::BitDepth { bits: 0 }.apply(&x).is_err());
        assert!(
            InputTransform::GaussianNoise {
                sigma: -1.0,
                seed: 0
            }
            .apply(&x)
            .is_err()
        );
    }
}
