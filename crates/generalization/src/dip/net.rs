//! The deep image prior's "skip" hourglass (Ulyanov et al., the reference code's `skip(...)`), as
//! ../shared/specs/generalization.md §2.2 describes it: five levels, each with a 1×1 skip branch, two 3×3
//! convolutions down (the first with stride 2), ×2 upsampling, batch norm on the concatenation, and a 3×3
//! and a 1×1 convolution up; LeakyReLU 0.2 after every batch norm but the concatenation's; reflection
//! padding before every 3×3 convolution; a 1×1 convolution and a sigmoid at the output. Batch norm always
//! uses the statistics of the current input (training mode, as the reference does at every call).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::VarMap;
//! use generalization::dip::{SkipNet, SkipNetParams};
//! use nn_core::models::SeededVarMap;
//!
//! let params = SkipNetParams { channels: 8, ..SkipNetParams::default() };
//! let varmap = VarMap::new();
//! let net = SkipNet::new(&params, SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu))?;
//! let z = Tensor::zeros((1, 32, 64, 64), DType::F32, &Device::Cpu)?;
//! assert_eq!(net.forward(&z)?.dims(), &[1, 3, 64, 64]);
//! assert_eq!(params.parameter_count(), SkipNet::trainable_count(&varmap));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use candle_core::{Module, ModuleT, Result as CResult, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use nn_core::ops::{self, BatchNorm, Conv2d, Conv2dParams};
use serde::{Deserialize, Serialize};

use super::layers::{leaky_relu, reflection_pad2d, upsample_bilinear2x, upsample_nearest2x};
use crate::{GenError, Result};

/// Slope of the LeakyReLU after each batch norm.
const LEAKY_SLOPE: f64 = 0.2;
/// Batch-norm ε (PyTorch's default, the reference's).
const BN_EPS: f64 = 1e-5;

/// How the decoder upsamples by 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Upsample {
    /// Bilinear with `align_corners = false` (the reference's choice for denoising and super-resolution).
    #[default]
    Bilinear,
    /// Nearest neighbour (the reference's choice for inpainting; fits, and overfits, faster).
    Nearest,
}

impl Upsample {
    /// Both modes, in the order the CLI lists them.
    pub const ALL: [Upsample; 2] = [Upsample::Bilinear, Upsample::Nearest];
}

impl std::fmt::Display for Upsample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Upsample::Bilinear => "bilinear",
            Upsample::Nearest => "nearest",
        })
    }
}

impl std::str::FromStr for Upsample {
    type Err = GenError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "bilinear" => Ok(Upsample::Bilinear),
            "nearest" => Ok(Upsample::Nearest),
            _ => Err(GenError::invalid(
                "upsample",
                format!("expected bilinear or nearest, got `{s}`"),
            )),
        }
    }
}

/// The hourglass's sizes. Defaults: the reference denoising network (32 input channels, 128 channels
/// down and up, 4 skip channels, 5 levels, bilinear upsampling, 3 output channels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipNetParams {
    /// Channels of the input code z (default 32).
    pub input_channels: usize,
    /// Channels of the output image: 3 (RGB) or 1 (grey) (default 3).
    pub output_channels: usize,
    /// Channels of every down and up convolution, n_d = n_u (default 128).
    pub channels: usize,
    /// Channels of every skip branch, n_s; 0 removes the skips (default 4).
    pub skip_channels: usize,
    /// Levels (scales); image sides must be divisible by 2^levels (default 5).
    pub levels: usize,
    /// Upsampling in the decoder (default bilinear).
    pub upsample: Upsample,
}

impl Default for SkipNetParams {
    fn default() -> Self {
        Self {
            input_channels: 32,
            output_channels: 3,
            channels: 128,
            skip_channels: 4,
            levels: 5,
            upsample: Upsample::Bilinear,
        }
    }
}

impl SkipNetParams {
    /// Checks every size once.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("input_channels", self.input_channels),
            ("output_channels", self.output_channels),
            ("channels", self.channels),
            ("levels", self.levels),
        ] {
            if v == 0 {
                return Err(GenError::invalid(name, "must be at least 1"));
            }
        }
        if self.levels > 10 {
            return Err(GenError::invalid(
                "levels",
                format!("at most 10 (images of side ≥ 1024), got {}", self.levels),
            ));
        }
        Ok(())
    }

    /// The side every image dimension must be divisible by: 2^levels.
    pub fn side_multiple(&self) -> usize {
        1 << self.levels
    }

    /// Checks that an h × w image fits the network: both sides positive multiples of 2^levels, and at least
    /// two pixels at the coarsest level (batch norm needs two values per channel).
    pub fn check_size(&self, h: usize, w: usize) -> Result<()> {
        let m = self.side_multiple();
        if h == 0 || w == 0 || !h.is_multiple_of(m) || !w.is_multiple_of(m) {
            return Err(GenError::invalid(
                "image",
                format!(
                    "the {}-level network needs sides divisible by {m}, got {h}×{w} (resize or crop the image)",
                    self.levels
                ),
            ));
        }
        if (h / m) * (w / m) < 2 {
            return Err(GenError::invalid(
                "image",
                format!(
                    "{h}×{w} is too small for {} levels: the coarsest level would hold one pixel, and batch norm needs two (use a side of at least {})",
                    self.levels,
                    2 * m
                ),
            ));
        }
        Ok(())
    }

    /// Trainable parameters (convolution weights and biases, batch-norm γ and β), from the architecture:
    /// 2,217,831 for the defaults, 572,455 with 64 channels, 152,199 with 32.
    pub fn parameter_count(&self) -> usize {
        let conv = |cin: usize, cout: usize, k: usize| cin * cout * k * k + cout;
        let bn = |c: usize| 2 * c;
        let (n, ns) = (self.channels, self.skip_channels);
        let mut total = 0;
        for level in 0..self.levels {
            let cin = if level == 0 { self.input_channels } else { n };
            if ns > 0 {
                total += conv(cin, ns, 1) + bn(ns);
            }
            total += conv(cin, n, 3) + bn(n) + conv(n, n, 3) + bn(n);
            // The deeper level (or, at the bottom, the second down convolution) gives n channels.
            total += bn(ns + n) + conv(ns + n, n, 3) + bn(n) + conv(n, n, 1) + bn(n);
        }
        total + conv(n, self.output_channels, 1)
    }
}

/// A convolution whose weight and bias start from PyTorch's default `U(±1/√fan_in)`.
fn conv(cin: usize, cout: usize, k: usize, stride: usize, vb: VarBuilder) -> CResult<Conv2d> {
    let bound = 1.0 / ((cin * k * k) as f64).sqrt();
    let init = Init::Uniform {
        lo: -bound,
        up: bound,
    };
    let weight = vb.get_with_hints((cout, cin, k, k), "weight", init)?;
    let bias = vb.get_with_hints(cout, "bias", init)?;
    Ok(Conv2d::new(
        weight,
        Some(bias),
        Conv2dParams {
            stride,
            ..Default::default()
        },
    ))
}

/// Reflection pad, convolution, batch norm (training mode), LeakyReLU 0.2.
struct ConvBnAct {
    pad: usize,
    conv: Conv2d,
    bn: BatchNorm,
}

impl ConvBnAct {
    fn new(cin: usize, cout: usize, k: usize, stride: usize, vb: VarBuilder) -> CResult<Self> {
        Ok(Self {
            pad: (k - 1) / 2,
            conv: conv(cin, cout, k, stride, vb.pp("conv"))?,
            bn: ops::batch_norm(cout, BN_EPS, vb.pp("bn"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let x = self.conv.forward(&reflection_pad2d(x, self.pad)?)?;
        leaky_relu(&self.bn.forward_t(&x, true)?, LEAKY_SLOPE)
    }
}

/// One level of the hourglass.
struct Level {
    skip: Option<ConvBnAct>,
    down: [ConvBnAct; 2],
    concat_bn: BatchNorm,
    up: [ConvBnAct; 2],
}

/// The deep image prior's network, `f_θ(z)` with values in (0, 1).
pub struct SkipNet {
    params: SkipNetParams,
    levels: Vec<Level>,
    out: Conv2d,
}

impl SkipNet {
    /// Creates the network's variables in `vb` (names `level{i}.{skip,down0,down1,concat_bn,up0,up1}.…`
    /// and `out`).
    pub fn new(params: &SkipNetParams, vb: VarBuilder) -> Result<Self> {
        params.validate()?;
        let (n, ns) = (params.channels, params.skip_channels);
        let mut levels = Vec::with_capacity(params.levels);
        for i in 0..params.levels {
            let vb = vb.pp(format!("level{i}"));
            let cin = if i == 0 { params.input_channels } else { n };
            levels.push(Level {
                skip: if ns > 0 {
                    Some(ConvBnAct::new(cin, ns, 1, 1, vb.pp("skip"))?)
                } else {
                    None
                },
                down: [
                    ConvBnAct::new(cin, n, 3, 2, vb.pp("down0"))?,
                    ConvBnAct::new(n, n, 3, 1, vb.pp("down1"))?,
                ],
                concat_bn: ops::batch_norm(ns + n, BN_EPS, vb.pp("concat_bn"))?,
                up: [
                    ConvBnAct::new(ns + n, n, 3, 1, vb.pp("up0"))?,
                    ConvBnAct::new(n, n, 1, 1, vb.pp("up1"))?,
                ],
            });
        }
        let out = conv(n, params.output_channels, 1, 1, vb.pp("out"))?;
        Ok(Self {
            params: *params,
            levels,
            out,
        })
    }

    /// The sizes it was built with.
    pub fn params(&self) -> &SkipNetParams {
        &self.params
    }

    /// Trainable values in `varmap` (everything but batch norm's running statistics, which the deep image
    /// prior never uses).
    pub fn trainable_count(varmap: &VarMap) -> usize {
        varmap
            .data()
            .lock()
            .map(|d| {
                d.iter()
                    .filter(|(k, _)| !k.contains("running_"))
                    .map(|(_, v)| v.elem_count())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// `f_θ(z)` for an input code z of shape (N, input_channels, H, W), H and W divisible by 2^levels.
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let (_, c, h, w) = z.dims4()?;
        if c != self.params.input_channels {
            return Err(GenError::invalid(
                "input",
                format!(
                    "the network needs (N, {}, H, W), got {:?}",
                    self.params.input_channels,
                    z.dims()
                ),
            ));
        }
        self.params.check_size(h, w)?;
        let y = self.level(0, z)?;
        Ok(candle_nn::ops::sigmoid(&self.out.forward(&y)?)?)
    }

    fn level(&self, i: usize, x: &Tensor) -> CResult<Tensor> {
        let l = &self.levels[i];
        let mut d = l.down[1].forward(&l.down[0].forward(x)?)?;
        if i + 1 < self.levels.len() {
            d = self.level(i + 1, &d)?;
        }
        d = match self.params.upsample {
            Upsample::Bilinear => upsample_bilinear2x(&d)?,
            Upsample::Nearest => upsample_nearest2x(&d)?,
        };
        let c = match &l.skip {
            Some(skip) => Tensor::cat(&[skip.forward(x)?, d], 1)?,
            None => d,
        };
        let c = l.concat_bn.forward_t(&c, true)?;
        l.up[1].forward(&l.up[0].forward(&c)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use nn_core::models::SeededVarMap;

    fn build(params: &SkipNetParams) -> (VarMap, SkipNet) {
        let varmap = VarMap::new();
        let vb = SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu);
        let net = SkipNet::new(params, vb).unwrap();
        (varmap, net)
    }

    #[test]
    fn parameter_counts_match_the_reference_network() {
        for (channels, expected) in [(128, 2_217_831), (64, 572_455), (32, 152_199)] {
            let params = SkipNetParams {
                channels,
                ..SkipNetParams::default()
            };
            assert_eq!(params.parameter_count(), expected, "{channels} channels");
            let (varmap, _) = build(&params);
            assert_eq!(
                SkipNet::trainable_count(&varmap),
                expected,
                "{channels} channels, built"
            );
        }
        let no_skip = SkipNetParams {
            channels: 16,
            skip_channels: 0,
            levels: 3,
            output_channels: 1,
            ..SkipNetParams::default()
        };
        let (varmap, _) = build(&no_skip);
        assert_eq!(SkipNet::trainable_count(&varmap), no_skip.parameter_count());
    }

    #[test]
    fn output_is_an_image_in_the_unit_interval_and_sizes_are_checked() -> Result<()> {
        for upsample in [Upsample::Bilinear, Upsample::Nearest] {
            let params = SkipNetParams {
                channels: 8,
                levels: 3,
                output_channels: 1,
                upsample,
                ..SkipNetParams::default()
            };
            let (_, net) = build(&params);
            let z = nn_core::grad::seeded_normal(&[1, 32, 16, 24], DType::F32, &Device::Cpu, 1)?;
            let y = net.forward(&z)?;
            assert_eq!(y.dims(), &[1, 1, 16, 24]);
            let v = y.flatten_all()?.to_vec1::<f32>()?;
            assert!(v.iter().all(|&p| p > 0.0 && p < 1.0));
            let bad = Tensor::zeros((1, 32, 12, 16), DType::F32, &Device::Cpu)?;
            let e = net.forward(&bad).unwrap_err().to_string();
            assert!(e.contains("divisible by 8"), "{e}");
        }
        Ok(())
    }
}
