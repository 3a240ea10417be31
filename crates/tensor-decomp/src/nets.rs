//! TT (recurrent) and CP (shallow) networks over image patches, on candle, trainable with
//! `nn_core::train::train` (both implement [`nn_core::models::Classifier`]).
//!
//! An image is cut into `d` non-overlapping `p×p` patches `x_1, …, x_d` (row-major over the patch grid),
//! each mapped by one shared, learned feature map `f(x) = σ(A x + b) ∈ R^m` (σ the logistic sigmoid).
//! The score of class `y` is `ℓ_y = ⟨W_y, f(x_1) ⊗ … ⊗ f(x_d)⟩`, the network type being the format of `W`:
//!
//! * **TT network** (a recurrent net with a bilinear cell): `h_0 = 1`,
//!   `h_k[β] = Σ_{α,i} G_k[α,i,β] h_{k−1}[α] f(x_k)[i]`, `ℓ = h_d`; cores `[r_{k−1}, m, r_k]` with
//!   `r_0 = 1`, inner ranks `r`, `r_d = #classes`. With `shared_cores`, `G_2 = … = G_{d−1}` (a genuine
//!   RNN). Parameters `Σ_k r_{k−1}·m·r_k` (middle cores counted once when shared).
//! * **CP network** (one hidden layer, product pooling): `ℓ_y = Σ_α λ_{y,α} Π_k ⟨f(x_k), v^{(k)}_α⟩`.
//!   Parameters `R·m·d + R·C`.
//!
//! Both count the feature map's `m·(C·p²) + m` parameters besides.
//!
//! **Initialisation.** A product of `d` random factors explodes or vanishes (log-normal outputs spanning
//! `e^{±10}` at d = 16 for zero-mean factors). Every product weight is therefore parametrised as
//! `fixed carry + trained Δ`: the carry makes each factor ≈ 1 at initialisation (`G_k[α,i,β] ∋
//! δ_{αβ}/(m·f̄)`, `v^{(k)}_α ∋ 1/(m·f̄)` with `f̄ = 1/2`, the feature map's output at zero
//! pre-activation; the feature bias starts at 0, so a blank patch maps to exactly `f̄`), and
//! `Δ ~ N(0, g²/(r_{k−1}·m))` — the spec's variance `1/(r_{k−1}·m)` times a gain `g = 2/√d` (independent
//! cores, CP factors: the log of the product then stays O(1) for any d) or `g = 2/d` (shared cores,
//! whose deviation from the identity compounds coherently). The first and last TT cores have no carry
//! and `g = 1`. `centred: false` drops the carry and the gain (plain spec init, for comparison).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::VarMap;
//! use nn_core::models::{Classifier, InputSpec, SeededVarMap};
//! use tensor_decomp::nets::{tensor_net, NetFormat, TensorNetConfig};
//!
//! let config = TensorNetConfig::new(NetFormat::Tt { rank: 4, shared_cores: true }, InputSpec::new(1, 28, 28, 10));
//! let varmap = VarMap::new();
//! let net = tensor_net(&config, SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu))?;
//! let x = Tensor::rand(0f32, 1f32, (3, 1, 28, 28), &Device::Cpu)?;
//! assert_eq!(net.forward_t(&x, false)?.dims(), &[3, 10]);
//! assert_eq!(nn_core::models::parameter_count(&varmap), config.parameter_count()?.total);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use candle_core::{DType, Module, Tensor};
use candle_nn::{Init, Linear, VarBuilder};
use nn_core::models::{Classifier, InputSpec, ModelConfig, ModelKind, ModelMeta, Tap};
use serde::{Deserialize, Serialize};

use ndarray::{Array2, Array3};

use crate::cp::{CpTensor, cp_to_tt};
use crate::tt::TensorTrain;
use crate::{Result, TdError};

/// The format of the class weight tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum NetFormat {
    /// Recurrent network: TT cores with inner rank `rank`.
    Tt { rank: usize, shared_cores: bool },
    /// Shallow network: CP rank `rank` (the hidden width).
    Cp { rank: usize },
}

impl NetFormat {
    /// The width: TT rank or CP rank.
    pub fn rank(&self) -> usize {
        match *self {
            NetFormat::Tt { rank, .. } | NetFormat::Cp { rank } => rank,
        }
    }
}

/// Everything that defines a tensor network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorNetConfig {
    pub format: NetFormat,
    /// Image shape and number of classes.
    pub input: InputSpec,
    /// Patch side `p` (default 7: a 28×28 image is a sequence of 16 patches).
    pub patch: usize,
    /// Feature-map width `m` (default 4, as in the paper).
    pub features: usize,
    /// Carry + Δ initialisation (default true; see the module docs).
    pub centred: bool,
}

/// Parameter counts of a tensor network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCount {
    /// `m·(C·p²) + m`.
    pub feature_map: usize,
    /// TT cores or CP factors and weights.
    pub weights: usize,
    pub total: usize,
}

impl TensorNetConfig {
    /// `format` on `input`, with patch 7, 4 features, centred initialisation.
    pub fn new(format: NetFormat, input: InputSpec) -> Self {
        Self {
            format,
            input,
            patch: 7,
            features: 4,
            centred: true,
        }
    }

    /// Checks every field once.
    pub fn validate(&self) -> Result<()> {
        let i = &self.input;
        if i.channels == 0 || i.height == 0 || i.width == 0 {
            return Err(TdError::invalid(
                "input",
                format!("image shape must be positive, got {i:?}"),
            ));
        }
        if i.num_classes < 2 {
            return Err(TdError::invalid(
                "num_classes",
                format!("need at least 2, got {}", i.num_classes),
            ));
        }
        if self.patch == 0
            || !i.height.is_multiple_of(self.patch)
            || !i.width.is_multiple_of(self.patch)
        {
            return Err(TdError::invalid(
                "patch",
                format!(
                    "patch side {} must be ≥ 1 and divide the image size {}×{}",
                    self.patch, i.height, i.width
                ),
            ));
        }
        if self.features == 0 {
            return Err(TdError::invalid(
                "features",
                "feature-map width m must be at least 1",
            ));
        }
        if self.format.rank() == 0 {
            return Err(TdError::invalid(
                "rank",
                "network rank (width) must be at least 1",
            ));
        }
        Ok(())
    }

    /// Number of patches `d`.
    pub fn positions(&self) -> usize {
        (self.input.height / self.patch.max(1)) * (self.input.width / self.patch.max(1))
    }

    /// Length of one flattened patch, `C·p²`.
    pub fn patch_dim(&self) -> usize {
        self.input.channels * self.patch * self.patch
    }

    /// TT ranks `[1, r, …, r, #classes]` (length d + 1).
    pub fn tt_ranks(&self) -> Vec<usize> {
        let d = self.positions();
        let r = self.format.rank();
        let mut ranks = vec![1];
        ranks.extend(std::iter::repeat_n(r, d.saturating_sub(1)));
        ranks.push(self.input.num_classes);
        ranks
    }

    /// Parameter counts (spec §2: TT `Σ r_{k−1}·m·r_k`, CP `R·m·d + R·C`, plus the feature map).
    pub fn parameter_count(&self) -> Result<ParamCount> {
        self.validate()?;
        let m = self.features;
        let d = self.positions();
        let feature_map = m * self.patch_dim() + m;
        let weights = match self.format {
            NetFormat::Tt { shared_cores, .. } => {
                let ranks = self.tt_ranks();
                let sizes: Vec<usize> = (0..d).map(|k| ranks[k] * m * ranks[k + 1]).collect();
                if shared_cores && d > 2 {
                    sizes[0] + sizes[1] + sizes[d - 1]
                } else {
                    sizes.iter().sum()
                }
            }
            NetFormat::Cp { rank } => rank * m * d + rank * self.input.num_classes,
        };
        Ok(ParamCount {
            feature_map,
            weights,
            total: feature_map + weights,
        })
    }
}

/// `fixed + trained` weight (the fixed part may be absent).
#[derive(Clone)]
struct Param {
    delta: Tensor,
    carry: Option<Tensor>,
}

impl Param {
    fn value(&self) -> candle_core::Result<Tensor> {
        match &self.carry {
            Some(c) => self.delta.add(c),
            None => Ok(self.delta.clone()),
        }
    }
}

enum Weights {
    /// One entry per position; with shared cores the middle entries are clones of one variable.
    Tt(Vec<Param>),
    /// `v` `[d, m, R]`, `λ` `[R, C]`.
    Cp { v: Param, lambda: Tensor },
}

/// A TT or CP network (see the module docs).
pub struct TensorNet {
    config: TensorNetConfig,
    meta: ModelMeta,
    feature: Linear,
    weights: Weights,
}

/// Mean of the feature map's output at zero pre-activation (σ(0)).
const F_BAR: f64 = 0.5;

/// Relative size of the trained part Δ against the carry, at `d = 1` (scaled by `1/√d`).
const DELTA_GAIN: f64 = 2.0;

fn gaussian(std: f64) -> Init {
    Init::Randn {
        mean: 0.0,
        stdev: std,
    }
}

/// Builds the network `config` describes, creating its variables through `vb` (use
/// `nn_core::models::SeededVarMap` for seeded weights). Variables: `feature.weight`, `feature.bias`;
/// TT: `core{k}` (or `core_first`, `core_mid`, `core_last` when shared); CP: `factors`, `lambda`.
pub fn tensor_net(config: &TensorNetConfig, vb: VarBuilder) -> Result<TensorNet> {
    config.validate()?;
    let m = config.features;
    let d = config.positions();
    let dtype = vb.dtype();
    let device = vb.device().clone();
    // Kaiming-normal weights as candle's `linear`, but zero bias: a blank patch then maps to exactly
    // f̄ = σ(0) = 1/2 in every feature, so the carry below multiplies by exactly 1 there.
    let fvb = vb.pp("feature");
    let feature = Linear::new(
        fvb.get_with_hints(
            (m, config.patch_dim()),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?,
        Some(fvb.get_with_hints(m, "bias", Init::Const(0.0))?),
    );
    let carry_value = 1.0 / (m as f64 * F_BAR);
    // With the carry, each of the d factors is 1 + noise. Independent noise of std ∝ 1/√d keeps the log
    // of the product O(1) whatever d is; one shared core repeated d times compounds its deviation from
    // the identity coherently (spectral radius^d), so it needs std ∝ 1/d.
    let shared = matches!(
        config.format,
        NetFormat::Tt {
            shared_cores: true,
            ..
        }
    );
    let delta_std = if shared {
        DELTA_GAIN / d as f64
    } else {
        DELTA_GAIN / (d as f64).sqrt()
    };
    let weights = match config.format {
        NetFormat::Tt { rank, shared_cores } => {
            let ranks = config.tt_ranks();
            let make = |name: &str, r0: usize, r1: usize, middle: bool| -> Result<Param> {
                let std = if middle && config.centred {
                    delta_std
                } else {
                    1.0
                };
                let delta =
                    vb.get_with_hints((r0, m, r1), name, gaussian(std / ((r0 * m) as f64).sqrt()))?;
                let carry = if middle && config.centred {
                    let data: Vec<f64> = (0..r0 * m * r1)
                        .map(|idx| {
                            let (a, b) = (idx / (m * r1), idx % r1);
                            if a == b { carry_value } else { 0.0 }
                        })
                        .collect();
                    Some(Tensor::from_vec(data, (r0, m, r1), &device)?.to_dtype(dtype)?)
                } else {
                    None
                };
                Ok(Param { delta, carry })
            };
            let mut cores = Vec::with_capacity(d);
            if shared_cores && d > 2 {
                let first = make("core_first", 1, rank, false)?;
                let mid = make("core_mid", rank, rank, true)?;
                let last = make("core_last", rank, ranks[d], false)?;
                cores.push(first);
                for _ in 1..d - 1 {
                    cores.push(mid.clone());
                }
                cores.push(last);
            } else {
                for k in 0..d {
                    let middle = k > 0 && k + 1 < d;
                    cores.push(make(&format!("core{k}"), ranks[k], ranks[k + 1], middle)?);
                }
            }
            Weights::Tt(cores)
        }
        NetFormat::Cp { rank } => {
            let std = if config.centred { delta_std } else { 1.0 };
            let delta =
                vb.get_with_hints((d, m, rank), "factors", gaussian(std / (m as f64).sqrt()))?;
            let carry = if config.centred {
                Some(Tensor::full(carry_value, (d, m, rank), &device)?.to_dtype(dtype)?)
            } else {
                None
            };
            let lambda = vb.get_with_hints(
                (rank, config.input.num_classes),
                "lambda",
                gaussian(1.0 / (rank as f64).sqrt()),
            )?;
            Weights::Cp {
                v: Param { delta, carry },
                lambda,
            }
        }
    };
    Ok(TensorNet {
        meta: ModelMeta {
            config: ModelConfig {
                // nn-core's ModelKind has no variant for models defined outside nn-core; the kind is not
                // used to rebuild tensor networks (see `TensorNet::tensor_config`).
                mlp_widths: Vec::new(),
                ..ModelConfig::new(ModelKind::Mlp, config.input)
            },
            dtype,
            device,
        },
        config: config.clone(),
        feature,
        weights,
    })
}

impl TensorNet {
    /// The tensor-network configuration.
    pub fn tensor_config(&self) -> &TensorNetConfig {
        &self.config
    }

    /// Patches `[N, d, C·p²]` of images `[N, C, H, W]` (row-major over the patch grid).
    pub fn patches(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let p = self.config.patch;
        let i = &self.config.input;
        if (c, h, w) != (i.channels, i.height, i.width) {
            candle_core::bail!(
                "tensor network built for {}×{}×{} images got {c}×{h}×{w}",
                i.channels,
                i.height,
                i.width
            );
        }
        x.reshape((n, c, h / p, p, w / p, p))?
            .permute(vec![0, 2, 4, 1, 3, 5])?
            .contiguous()?
            .reshape((n, (h / p) * (w / p), c * p * p))
    }

    /// Features `f(x_k) = σ(A x_k + b)`, `[N, d, m]`; σ computed as `(1 + tanh(z/2))/2` (no overflow).
    pub fn features(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let pre = self.feature.forward(&self.patches(x)?)?;
        ((pre * 0.5)?.tanh()? + 1.0)? * 0.5
    }

    /// The weight tensor `W_y` of class `y` (shape `[m; d]`) in TT format, as the forward pass uses it
    /// (carry included): for a TT network the cores with the last one restricted to class `y`; for a CP
    /// network [`crate::cp::cp_to_tt`] of `(λ_{:,y}; v^{(1)}, …, v^{(d)})`. Then
    /// `ℓ_y(X) = ⟨W_y, f(x_1) ⊗ … ⊗ f(x_d)⟩`, and rank statements about `W_y` (e.g.
    /// [`crate::expressivity::cp_rank_lower_bound`]) apply to the trained network.
    pub fn weight_tensor(&self, class: usize) -> Result<TensorTrain> {
        let c = self.config.input.num_classes;
        if class >= c {
            return Err(TdError::invalid(
                "class",
                format!("must be < {c}, got {class}"),
            ));
        }
        let to_vec = |t: &Tensor| -> Result<Vec<f64>> {
            Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
        };
        match &self.weights {
            Weights::Tt(cores) => {
                let d = cores.len();
                let mut out = Vec::with_capacity(d);
                for (k, core) in cores.iter().enumerate() {
                    let g = core.value()?;
                    let (r0, m, r1) = g.dims3()?;
                    let data = to_vec(&g)?;
                    let full = Array3::from_shape_vec((r0, m, r1), data).expect("length matches");
                    out.push(if k + 1 == d {
                        full.slice(ndarray::s![.., .., class..class + 1]).to_owned()
                    } else {
                        full
                    });
                }
                TensorTrain::from_cores(out)
            }
            Weights::Cp { v, lambda } => {
                let v = v.value()?;
                let (d, m, r) = v.dims3()?;
                let vv = to_vec(&v)?;
                let lam = to_vec(lambda)?;
                let weights: Vec<f64> = (0..r).map(|a| lam[a * c + class]).collect();
                let factors = (0..d)
                    .map(|k| Array2::from_shape_fn((m, r), |(i, a)| vv[(k * m + i) * r + a]))
                    .collect();
                Ok(cp_to_tt(&CpTensor::new(weights, factors)?))
            }
        }
    }
}

impl Classifier for TensorNet {
    fn forward_tapped(
        &self,
        x: &Tensor,
        _train: bool,
        tap: Tap<'_>,
    ) -> candle_core::Result<Tensor> {
        let f = self.features(x)?;
        tap("features", &f);
        let n = f.dim(0)?;
        let m = self.config.features;
        let d = self.config.positions();
        let logits = match &self.weights {
            Weights::Tt(cores) => {
                let mut h = Tensor::ones((n, 1), f.dtype(), f.device())?;
                for (k, core) in cores.iter().enumerate() {
                    let g = core.value()?;
                    let (r0, _, r1) = g.dims3()?;
                    let fk = f.narrow(1, k, 1)?.squeeze(1)?;
                    let outer = h.unsqueeze(2)?.broadcast_mul(&fk.unsqueeze(1)?)?;
                    h = outer
                        .reshape((n, r0 * m))?
                        .matmul(&g.reshape((r0 * m, r1))?)?;
                    if k + 2 == d {
                        tap("state", &h);
                    }
                }
                h
            }
            Weights::Cp { v, lambda } => {
                let z = f.transpose(0, 1)?.contiguous()?.matmul(&v.value()?)?; // [d, N, R]
                let mut pooled = z.get(0)?;
                for k in 1..d {
                    pooled = pooled.mul(&z.get(k)?)?;
                }
                tap("pooled", &pooled);
                pooled.matmul(lambda)?
            }
        };
        tap("logits", &logits);
        Ok(logits)
    }

    fn meta(&self) -> &ModelMeta {
        &self.meta
    }
}
