//! Generator/critic pairs for 28×28 single-channel images with values in `[0, 1]`.
//!
//! * [`GanArch::Mlp`] — the spec's CPU MLP variant: generator `z(100) → 128 → 256 → 512 → 1024 → 784`
//!   with LeakyReLU(0.2) between layers and a sigmoid output; critic `784 → 512 → 256 → 1` with
//!   LeakyReLU(0.2). 1,506,448 + 533,505 parameters. Optionally (`batch_norm`) the generator's 256-,
//!   512- and 1024-wide layers are batch-normalised before the LeakyReLU, as in the PyTorch-GAN MLP the
//!   spec's recipe comes from (`BatchNorm1d(w, 0.8)`, i.e. ε = 0.8; +3,584 parameters): without it the
//!   non-saturating GAN collapses to one image within 100 iterations (measured: per-pixel std over 64
//!   samples 0.185 → 0.008), with it the samples stay diverse. Batch statistics are used in training and
//!   in sampling alike (no running averages), so a generated image depends on the other codes of its
//!   batch; batches need at least 2 codes.
//! * [`GanArch::Dcgan`] — the official WGAN-GP MNIST architecture (Gulrajani et al., `gan_mnist.py`) with
//!   width `DIM`: generator `fc z → 4·4·4DIM → ReLU → convT5 s2 (2DIM, 8×8) → crop 7×7 → ReLU → convT5 s2
//!   (DIM, 14×14) → ReLU → convT5 s2 (1, 28×28) → sigmoid`; critic `conv5 s2 (DIM) → conv5 s2 (2DIM) →
//!   conv5 s2 (4DIM, 4×4)`, LeakyReLU(0.2) after each, `fc → 1`. TF "SAME" transposed convolution =
//!   `conv_transpose2d(k 5, stride 2, padding 2, output_padding 1)`. No batch norm anywhere (WGAN-GP
//!   forbids it in the critic; the official generator has none either). Convolutions and transposed
//!   convolutions use nn-core's im2col ops ([`crate::ops`]; exact second order for the gradient penalty).
//!
//! The critic returns one unnormalised score per image, shape `[N]` (a logit for the non-saturating GAN).
//!
//! ```
//! use candle_core::{DType, Device};
//! use candle_nn::VarMap;
//! use nn_core::gan::{Critic, GanArch, Generator};
//! use nn_core::models::SeededVarMap;
//!
//! let (gv, dv) = (VarMap::new(), VarMap::new());
//! let g = Generator::new(GanArch::Mlp, 100, 32, false, SeededVarMap::var_builder(&gv, 0, DType::F32, &Device::Cpu))?;
//! let d = Critic::new(GanArch::Mlp, 32, SeededVarMap::var_builder(&dv, 1, DType::F32, &Device::Cpu))?;
//! let z = nn_core::grad::seeded_normal(&[4, 100], DType::F32, &Device::Cpu, 0)?;
//! let x = g.forward(&z)?;
//! assert_eq!(x.dims(), &[4, 1, 28, 28]);
//! assert_eq!(d.forward(&x)?.dims(), &[4]);
//! # Ok::<(), nn_core::NnError>(())
//! ```

use candle_core::Tensor;
use candle_nn::{Conv2dConfig, ConvTranspose2dConfig, Module, VarBuilder};

use crate::ops::{Conv2d, ConvTranspose2d, Linear, conv_transpose2d_layer, conv2d_layer};
use serde::{Deserialize, Serialize};

use crate::{NnError, Result};

/// Image side: the pairs generate and judge 28×28 single-channel images.
pub const IMAGE_SIDE: usize = 28;
/// LeakyReLU slope of every LeakyReLU here.
pub const LEAKY_SLOPE: f64 = 0.2;

const MLP_GENERATOR_WIDTHS: [usize; 4] = [128, 256, 512, 1024];
const MLP_CRITIC_WIDTHS: [usize; 2] = [512, 256];
/// ε of the MLP generator's batch normalisation (PyTorch-GAN's `BatchNorm1d(w, 0.8)`).
pub const GENERATOR_BN_EPS: f64 = 0.8;

/// Which generator/critic pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum GanArch {
    /// Fully connected pair (the spec's CPU variant).
    Mlp,
    /// Convolutional pair of the official WGAN-GP MNIST code, width `DIM`.
    Dcgan,
}

impl GanArch {
    /// Both pairs, in the order the CLI lists them.
    pub const ALL: [GanArch; 2] = [GanArch::Mlp, GanArch::Dcgan];

    /// `"mlp"` or `"dcgan"`.
    pub fn as_str(self) -> &'static str {
        match self {
            GanArch::Mlp => "mlp",
            GanArch::Dcgan => "dcgan",
        }
    }
}

impl std::fmt::Display for GanArch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for GanArch {
    type Err = NnError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mlp" => Ok(GanArch::Mlp),
            "dcgan" => Ok(GanArch::Dcgan),
            _ => Err(NnError::invalid(
                "arch",
                format!("expected mlp or dcgan, got `{s}`"),
            )),
        }
    }
}

fn leaky(x: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::ops::leaky_relu(x, LEAKY_SLOPE)
}

/// `σ(x) = 1/(1 + e^{−x}) = (1 + tanh(x/2))/2`, through `tanh` so that neither the value nor the
/// gradient overflows: the form `1/(1 + e^{−x})` gives a NaN gradient (0·∞) once `e^{−x}` overflows
/// f32 (x < −88), which MNIST's black background reaches in a few thousand WGAN-GP iterations.
fn sigmoid(x: &Tensor) -> candle_core::Result<Tensor> {
    ((x * 0.5)?.tanh()? + 1.0)? * 0.5
}

/// `γ ⊙ (h − mean) / √(var + ε) + β` with the batch's mean and biased variance per feature (`h`:
/// `[N, w]`), ε = [`GENERATOR_BN_EPS`]. Plain tensor ops, so autograd differentiates through the
/// statistics.
fn batch_norm_1d(h: &Tensor, gamma: &Tensor, beta: &Tensor) -> candle_core::Result<Tensor> {
    let centred = h.broadcast_sub(&h.mean_keepdim(0)?)?;
    let var = centred.sqr()?.mean_keepdim(0)?;
    centred
        .broadcast_div(&(var + GENERATOR_BN_EPS)?.sqrt()?)?
        .broadcast_mul(gamma)?
        .broadcast_add(beta)
}

fn same_deconv() -> ConvTranspose2dConfig {
    ConvTranspose2dConfig {
        padding: 2,
        output_padding: 1,
        stride: 2,
        dilation: 1,
    }
}

fn strided_conv() -> Conv2dConfig {
    Conv2dConfig {
        padding: 2,
        stride: 2,
        ..Default::default()
    }
}

fn check_positive(name: &str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(NnError::invalid(name, "must be at least 1"));
    }
    Ok(())
}

/// A generator: latent codes `[N, latent_dim]` → images `[N, 1, 28, 28]` in `(0, 1)`.
#[non_exhaustive]
pub enum Generator {
    /// Fully connected.
    Mlp {
        hidden: Vec<Linear>,
        /// Per hidden layer, the batch-norm scale and shift `(γ, β)` when normalised.
        norms: Vec<Option<(Tensor, Tensor)>>,
        out: Linear,
        latent_dim: usize,
    },
    /// Transposed convolutions.
    Dcgan {
        fc: Linear,
        up: [ConvTranspose2d; 3],
        dim: usize,
        latent_dim: usize,
    },
}

impl Generator {
    /// Builds the `arch` generator for latent dimension `latent_dim` (≥ 1) and width `dim` (DCGAN's
    /// `DIM`, ≥ 1; ignored by the MLP) in `vb` (names `fc1…`, `bn2…4`, `out` / `fc`, `up1…3`).
    /// `batch_norm` normalises the MLP's hidden layers 2–4 (see the module docs); the DCGAN pair has no
    /// batch-norm variant, so `batch_norm` with [`GanArch::Dcgan`] is an error.
    pub fn new(
        arch: GanArch,
        latent_dim: usize,
        dim: usize,
        batch_norm: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        check_positive("latent_dim", latent_dim)?;
        check_positive("dim", dim)?;
        if batch_norm && arch == GanArch::Dcgan {
            return Err(NnError::invalid(
                "generator_batch_norm",
                "batch norm is implemented for the MLP generator only",
            ));
        }
        match arch {
            GanArch::Mlp => {
                let mut hidden = Vec::new();
                let mut fan_in = latent_dim;
                for (i, &w) in MLP_GENERATOR_WIDTHS.iter().enumerate() {
                    hidden.push(crate::ops::linear_layer(
                        fan_in,
                        w,
                        vb.pp(format!("fc{}", i + 1)),
                    )?);
                    fan_in = w;
                }
                let out = crate::ops::linear_layer(fan_in, IMAGE_SIDE * IMAGE_SIDE, vb.pp("out"))?;
                let mut norms = Vec::new();
                for (i, &w) in MLP_GENERATOR_WIDTHS.iter().enumerate() {
                    // The first layer is not normalised (PyTorch-GAN's `normalize=False`).
                    norms.push(if batch_norm && i > 0 {
                        let b = vb.pp(format!("bn{}", i + 1));
                        Some((
                            b.get_with_hints(w, "weight", candle_nn::Init::Const(1.0))?,
                            b.get_with_hints(w, "bias", candle_nn::Init::Const(0.0))?,
                        ))
                    } else {
                        None
                    });
                }
                Ok(Generator::Mlp {
                    hidden,
                    norms,
                    out,
                    latent_dim,
                })
            }
            GanArch::Dcgan => {
                let fc = crate::ops::linear_layer(latent_dim, 4 * 4 * 4 * dim, vb.pp("fc"))?;
                let up = [
                    conv_transpose2d_layer(4 * dim, 2 * dim, 5, same_deconv(), vb.pp("up1"))?,
                    conv_transpose2d_layer(2 * dim, dim, 5, same_deconv(), vb.pp("up2"))?,
                    conv_transpose2d_layer(dim, 1, 5, same_deconv(), vb.pp("up3"))?,
                ];
                Ok(Generator::Dcgan {
                    fc,
                    up,
                    dim,
                    latent_dim,
                })
            }
        }
    }

    /// The latent dimension.
    pub fn latent_dim(&self) -> usize {
        match self {
            Generator::Mlp { latent_dim, .. } | Generator::Dcgan { latent_dim, .. } => *latent_dim,
        }
    }

    /// Images `[N, 1, 28, 28]` for latent codes `z` (`[N, latent_dim]`).
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let latent = self.latent_dim();
        match z.dims() {
            [_, d] if *d == latent => {}
            dims => {
                return Err(NnError::Shape {
                    context: "generator input".into(),
                    expected: format!("[N, {latent}]"),
                    got: format!("{dims:?}"),
                });
            }
        }
        let n = z.dims()[0];
        let x = match self {
            Generator::Mlp {
                hidden, norms, out, ..
            } => {
                if n < 2 && norms.iter().any(Option::is_some) {
                    return Err(NnError::invalid(
                        "latent codes",
                        "the batch-normalised generator needs at least 2 codes per batch",
                    ));
                }
                let mut h = z.clone();
                for (layer, norm) in hidden.iter().zip(norms) {
                    h = layer.forward(&h)?;
                    if let Some((gamma, beta)) = norm {
                        h = batch_norm_1d(&h, gamma, beta)?;
                    }
                    h = leaky(&h)?;
                }
                out.forward(&h)?.reshape((n, 1, IMAGE_SIDE, IMAGE_SIDE))?
            }
            Generator::Dcgan { fc, up, dim, .. } => {
                let h = fc.forward(z)?.relu()?.reshape((n, 4 * dim, 4, 4))?;
                let h = up[0]
                    .forward(&h)?
                    .narrow(2, 0, 7)?
                    .narrow(3, 0, 7)?
                    .relu()?;
                let h = up[1].forward(&h)?.relu()?;
                up[2].forward(&h)?
            }
        };
        Ok(sigmoid(&x)?)
    }
}

/// A critic (discriminator): images `[N, 1, 28, 28]` → scores `[N]`.
#[non_exhaustive]
pub enum Critic {
    /// Fully connected.
    Mlp { hidden: Vec<Linear>, out: Linear },
    /// Strided convolutions.
    Dcgan { convs: [Conv2d; 3], fc: Linear },
}

impl Critic {
    /// Builds the `arch` critic of width `dim` (DCGAN's `DIM`, ≥ 1; ignored by the MLP) in `vb` (names
    /// `fc1`, `fc2`, `out` / `conv1…3`, `fc`).
    pub fn new(arch: GanArch, dim: usize, vb: VarBuilder) -> Result<Self> {
        check_positive("dim", dim)?;
        match arch {
            GanArch::Mlp => {
                let mut hidden = Vec::new();
                let mut fan_in = IMAGE_SIDE * IMAGE_SIDE;
                for (i, &w) in MLP_CRITIC_WIDTHS.iter().enumerate() {
                    hidden.push(crate::ops::linear_layer(
                        fan_in,
                        w,
                        vb.pp(format!("fc{}", i + 1)),
                    )?);
                    fan_in = w;
                }
                let out = crate::ops::linear_layer(fan_in, 1, vb.pp("out"))?;
                Ok(Critic::Mlp { hidden, out })
            }
            GanArch::Dcgan => {
                let convs = [
                    conv2d_layer(1, dim, 5, strided_conv(), vb.pp("conv1"))?,
                    conv2d_layer(dim, 2 * dim, 5, strided_conv(), vb.pp("conv2"))?,
                    conv2d_layer(2 * dim, 4 * dim, 5, strided_conv(), vb.pp("conv3"))?,
                ];
                let fc = crate::ops::linear_layer(4 * 4 * 4 * dim, 1, vb.pp("fc"))?;
                Ok(Critic::Dcgan { convs, fc })
            }
        }
    }

    /// Scores `[N]` of images `x` (`[N, 1, 28, 28]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match x.dims() {
            [_, 1, IMAGE_SIDE, IMAGE_SIDE] => {}
            dims => {
                return Err(NnError::Shape {
                    context: "critic input".into(),
                    expected: format!("[N, 1, {IMAGE_SIDE}, {IMAGE_SIDE}]"),
                    got: format!("{dims:?}"),
                });
            }
        }
        let score = match self {
            Critic::Mlp { hidden, out } => {
                let mut h = x.flatten_from(1)?;
                for layer in hidden {
                    h = leaky(&layer.forward(&h)?)?;
                }
                out.forward(&h)?
            }
            Critic::Dcgan { convs, fc } => {
                let mut h = x.clone();
                for conv in convs {
                    h = leaky(&conv.forward(&h)?)?;
                }
                fc.forward(&h.flatten_from(1)?)?
            }
        };
        Ok(score.squeeze(1)?)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    use super::*;
    use crate::models::{SeededVarMap, parameter_count};

    #[test]
    fn sigmoid_is_exact_and_its_gradient_finite_for_huge_logits() {
        let x = candle_core::Var::new(&[-200f32, -10.0, 0.0, 3.0, 200.0], &Device::Cpu).unwrap();
        let y = sigmoid(x.as_tensor()).unwrap();
        let v = y.to_vec1::<f32>().unwrap();
        for (xi, yi) in [-200f32, -10.0, 0.0, 3.0, 200.0].iter().zip(&v) {
            let want = 1.0 / (1.0 + (-(*xi as f64)).exp());
            assert!(
                (*yi as f64 - want).abs() < 1e-7,
                "σ({xi}) = {yi}, want {want}"
            );
        }
        let g = y.sum_all().unwrap().backward().unwrap();
        let g = g.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        assert!(g.iter().all(|d| d.is_finite()), "{g:?}");
        assert!((g[2] - 0.25).abs() < 1e-7);
    }

    #[test]
    fn shapes_parameter_counts_and_range() {
        let dev = &Device::Cpu;
        for (arch, g_params, d_params) in [
            (GanArch::Mlp, 1_506_448, 533_505),
            // DIM = 4: fc 8·256+256; convT 16·8·25+8, 8·4·25+4, 4·1·25+1 / conv 1·4·25+4, 4·8·25+8,
            // 8·16·25+16, fc 256+1.
            (
                GanArch::Dcgan,
                8 * 256 + 256 + 16 * 8 * 25 + 8 + 8 * 4 * 25 + 4 + 4 * 25 + 1,
                4 * 25 + 4 + 4 * 8 * 25 + 8 + 8 * 16 * 25 + 16 + 256 + 1,
            ),
        ] {
            let (gv, dv) = (VarMap::new(), VarMap::new());
            let latent = if arch == GanArch::Mlp { 100 } else { 8 };
            let g = Generator::new(
                arch,
                latent,
                4,
                false,
                SeededVarMap::var_builder(&gv, 0, DType::F32, dev),
            )
            .unwrap();
            let d =
                Critic::new(arch, 4, SeededVarMap::var_builder(&dv, 1, DType::F32, dev)).unwrap();
            assert_eq!(parameter_count(&gv), g_params, "{arch:?} generator");
            assert_eq!(parameter_count(&dv), d_params, "{arch:?} critic");
            let z = crate::grad::seeded_normal(&[3, latent], DType::F32, dev, 5).unwrap();
            let x = g.forward(&z).unwrap();
            assert_eq!(x.dims(), &[3, 1, 28, 28]);
            let v = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(v.iter().all(|p| *p > 0.0 && *p < 1.0));
            assert_eq!(d.forward(&x).unwrap().dims(), &[3]);
            let err = g
                .forward(&z.narrow(1, 0, latent - 1).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains("generator input"), "{err}");
            let err = d.forward(&z).unwrap_err().to_string();
            assert!(err.contains("critic input"), "{err}");
        }
        assert!("conv".parse::<GanArch>().is_err());
    }
}
