//! The FID-Inception-v3 network of pytorch-fid ("pt_inception-2015-12-05"): torchvision's Inception-v3
//! topology with the TF 2015-12-05 weights, 1008 classes and the patched blocks FID uses — average pools
//! that exclude padding from the count, and a 3×3/s1 **max** pool in the last block (Mixed_7c).
//! Outputs the 2048-d "pool3" features (FID) and the unbiased logits `pool3 · Wᵀ` (no bias; IS).
//!
//! Weights cannot be downloaded here: convert pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` to
//! safetensors once (`crates/gan-eval/scripts/convert_fid_inception.py`, needs torch and safetensors):
//!
//! ```text
//! import torch; from safetensors.torch import save_file
//! sd = torch.load("pt_inception-2015-12-05-6726825d.pth", map_location="cpu")
//! save_file({k: v.float().contiguous() for k, v in sd.items()
//!            if not k.endswith("num_batches_tracked")}, "fid_inception_v3.safetensors")
//! ```
//!
//! Keys follow torchvision (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_var`, `fc.weight`,
//! …); every BasicConv2d (conv without bias → BatchNorm, eps 0.001 → ReLU) is folded at load time into one
//! convolution with bias: `w' = w·γ/√(σ²+ε)`, `b' = β − μγ/√(σ²+ε)`.
//!
//! Input pipeline as pytorch-fid: images in [0, 1] (grey images are replicated to 3 channels), bilinear
//! resize to 299×299 with PyTorch's `align_corners=false` rule (`nn_core::layers::upsample_bilinear2d`),
//! then `2x − 1`. Cost ≈ 5.7 GMAC per 299×299 image.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use gan_eval::features::{FidInceptionV3, InceptionInput};
//!
//! // Random weights: shapes only (real use: FidInceptionV3::load("fid_inception_v3.safetensors", ..)).
//! let net = FidInceptionV3::random(0, &Device::Cpu)?;
//! let x = Tensor::rand(0f32, 1f32, (1, 1, 28, 28), &Device::Cpu)?;
//! let out = net.extract(&x, &InceptionInput { resize_to: Some(75), normalize: true }, 1)?;
//! assert_eq!(out.pool3.dim(), (1, 2048));
//! assert_eq!(out.logits_unbiased.dim(), (1, 1008));
//! # Ok::<(), gan_eval::GanEvalError>(())
//! ```

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::init::{DEFAULT_KAIMING_NORMAL, Init};
use candle_nn::{VarBuilder, VarMap};
use ndarray::Array2;
use nn_core::layers::{avg_pool2d_strided, global_avg_pool2d, max_pool2d_strided};
use nn_core::models::SeededVarMap;
use serde::{Deserialize, Serialize};

use super::domain::to_f64;
use crate::{GanEvalError, Result};

/// BatchNorm epsilon of the TF Inception weights.
pub const BN_EPS: f64 = 1e-3;
/// Number of output classes of the FID Inception (1008: ImageNet's 1000 plus 8 unused).
pub const NUM_CLASSES: usize = 1008;
/// Dimension of the pool3 features.
pub const POOL3_DIM: usize = 2048;

/// Input preprocessing options (defaults: pytorch-fid's `resize_input=True, normalize_input=True`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InceptionInput {
    /// Bilinear resize (`align_corners=false`) to this square size; `None`: keep the input size (≥ 75).
    pub resize_to: Option<usize>,
    /// Map [0, 1] to [−1, 1] by `2x − 1`.
    pub normalize: bool,
}

impl Default for InceptionInput {
    fn default() -> Self {
        Self {
            resize_to: Some(299),
            normalize: true,
        }
    }
}

/// Pool3 features and unbiased logits of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InceptionOutputs {
    /// N × 2048 pool3 features.
    pub pool3: Array2<f64>,
    /// N × 1008 logits without the fc bias.
    pub logits_unbiased: Array2<f64>,
}

/// BasicConv2d with BatchNorm folded in, followed by ReLU.
struct ConvBn {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    pad: (usize, usize),
}

impl ConvBn {
    fn new(
        vb: &VarBuilder,
        name: &str,
        cin: usize,
        cout: usize,
        k: (usize, usize),
        stride: usize,
        pad: (usize, usize),
    ) -> Result<Self> {
        let vb = vb.pp(name);
        // The hints only matter for random weights ([`FidInceptionV3::random`]); files give the values.
        let w = vb.pp("conv").get_with_hints(
            (cout, cin, k.0, k.1),
            "weight",
            DEFAULT_KAIMING_NORMAL,
        )?;
        let bn = vb.pp("bn");
        let get = |name: &str, init: f64| -> Result<Tensor> {
            Ok(bn
                .get_with_hints(cout, name, Init::Const(init))?
                .to_dtype(DType::F64)?)
        };
        let gamma = get("weight", 1.0)?;
        let beta = get("bias", 0.0)?;
        let mean = get("running_mean", 0.0)?;
        let var = get("running_var", 1.0)?;
        let scale = gamma.div(&(var + BN_EPS)?.sqrt()?)?;
        let weight = w
            .to_dtype(DType::F64)?
            .broadcast_mul(&scale.reshape((cout, 1, 1, 1))?)?
            .to_dtype(DType::F32)?;
        let bias = (beta - mean.mul(&scale)?)?
            .to_dtype(DType::F32)?
            .reshape((1, cout, 1, 1))?;
        Ok(Self {
            weight,
            bias,
            stride,
            pad,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (ph, pw) = self.pad;
        let y = if ph == pw {
            x.conv2d(&self.weight, ph, self.stride, 1, 1)?
        } else {
            x.pad_with_zeros(2, ph, ph)?
                .pad_with_zeros(3, pw, pw)?
                .conv2d(&self.weight, 0, self.stride, 1, 1)?
        };
        Ok(y.broadcast_add(&self.bias)?.relu()?)
    }
}

fn cat(parts: &[Tensor]) -> Result<Tensor> {
    Ok(Tensor::cat(parts, 1)?)
}

/// 3×3/s1 average pool with padding 1, padding excluded from the count (pytorch-fid's patch).
fn avg_pool_3x3_s1(x: &Tensor) -> Result<Tensor> {
    Ok(avg_pool2d_strided(x, 3, 1, 1, false)?)
}

/// 3×3/s2 max pool, no padding, floor mode.
fn max_pool_3x3_s2(x: &Tensor) -> Result<Tensor> {
    Ok(max_pool2d_strided(x, 3, 2, 0)?)
}

struct BlockA {
    b1: ConvBn,
    b5_1: ConvBn,
    b5_2: ConvBn,
    b3_1: ConvBn,
    b3_2: ConvBn,
    b3_3: ConvBn,
    pool: ConvBn,
}

impl BlockA {
    fn new(vb: &VarBuilder, cin: usize, pool_features: usize) -> Result<Self> {
        Ok(Self {
            b1: ConvBn::new(vb, "branch1x1", cin, 64, (1, 1), 1, (0, 0))?,
            b5_1: ConvBn::new(vb, "branch5x5_1", cin, 48, (1, 1), 1, (0, 0))?,
            b5_2: ConvBn::new(vb, "branch5x5_2", 48, 64, (5, 5), 1, (2, 2))?,
            b3_1: ConvBn::new(vb, "branch3x3dbl_1", cin, 64, (1, 1), 1, (0, 0))?,
            b3_2: ConvBn::new(vb, "branch3x3dbl_2", 64, 96, (3, 3), 1, (1, 1))?,
            b3_3: ConvBn::new(vb, "branch3x3dbl_3", 96, 96, (3, 3), 1, (1, 1))?,
            pool: ConvBn::new(vb, "branch_pool", cin, pool_features, (1, 1), 1, (0, 0))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        cat(&[
            self.b1.forward(x)?,
            self.b5_2.forward(&self.b5_1.forward(x)?)?,
            self.b3_3
                .forward(&self.b3_2.forward(&self.b3_1.forward(x)?)?)?,
            self.pool.forward(&avg_pool_3x3_s1(x)?)?,
        ])
    }
}

struct BlockB {
    b3: ConvBn,
    d1: ConvBn,
    d2: ConvBn,
    d3: ConvBn,
}

impl BlockB {
    fn new(vb: &VarBuilder, cin: usize) -> Result<Self> {
        Ok(Self {
            b3: ConvBn::new(vb, "branch3x3", cin, 384, (3, 3), 2, (0, 0))?,
            d1: ConvBn::new(vb, "branch3x3dbl_1", cin, 64, (1, 1), 1, (0, 0))?,
            d2: ConvBn::new(vb, "branch3x3dbl_2", 64, 96, (3, 3), 1, (1, 1))?,
            d3: ConvBn::new(vb, "branch3x3dbl_3", 96, 96, (3, 3), 2, (0, 0))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        cat(&[
            self.b3.forward(x)?,
            self.d3.forward(&self.d2.forward(&self.d1.forward(x)?)?)?,
            max_pool_3x3_s2(x)?,
        ])
    }
}

struct BlockC {
    b1: ConvBn,
    s: [ConvBn; 3],
    d: [ConvBn; 5],
    pool: ConvBn,
}

impl BlockC {
    fn new(vb: &VarBuilder, cin: usize, c7: usize) -> Result<Self> {
        let (h, v) = ((1, 7), (7, 1));
        let (ph, pv) = ((0, 3), (3, 0));
        Ok(Self {
            b1: ConvBn::new(vb, "branch1x1", cin, 192, (1, 1), 1, (0, 0))?,
            s: [
                ConvBn::new(vb, "branch7x7_1", cin, c7, (1, 1), 1, (0, 0))?,
                ConvBn::new(vb, "branch7x7_2", c7, c7, h, 1, ph)?,
                ConvBn::new(vb, "branch7x7_3", c7, 192, v, 1, pv)?,
            ],
            d: [
                ConvBn::new(vb, "branch7x7dbl_1", cin, c7, (1, 1), 1, (0, 0))?,
                ConvBn::new(vb, "branch7x7dbl_2", c7, c7, v, 1, pv)?,
                ConvBn::new(vb, "branch7x7dbl_3", c7, c7, h, 1, ph)?,
                ConvBn::new(vb, "branch7x7dbl_4", c7, c7, v, 1, pv)?,
                ConvBn::new(vb, "branch7x7dbl_5", c7, 192, h, 1, ph)?,
            ],
            pool: ConvBn::new(vb, "branch_pool", cin, 192, (1, 1), 1, (0, 0))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let chain = |convs: &[ConvBn]| -> Result<Tensor> {
            let mut y = x.clone();
            for c in convs {
                y = c.forward(&y)?;
            }
            Ok(y)
        };
        cat(&[
            self.b1.forward(x)?,
            chain(&self.s)?,
            chain(&self.d)?,
            self.pool.forward(&avg_pool_3x3_s1(x)?)?,
        ])
    }
}

struct BlockD {
    a1: ConvBn,
    a2: ConvBn,
    b: [ConvBn; 4],
}

impl BlockD {
    fn new(vb: &VarBuilder, cin: usize) -> Result<Self> {
        Ok(Self {
            a1: ConvBn::new(vb, "branch3x3_1", cin, 192, (1, 1), 1, (0, 0))?,
            a2: ConvBn::new(vb, "branch3x3_2", 192, 320, (3, 3), 2, (0, 0))?,
            b: [
                ConvBn::new(vb, "branch7x7x3_1", cin, 192, (1, 1), 1, (0, 0))?,
                ConvBn::new(vb, "branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3))?,
                ConvBn::new(vb, "branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0))?,
                ConvBn::new(vb, "branch7x7x3_4", 192, 192, (3, 3), 2, (0, 0))?,
            ],
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for c in &self.b {
            y = c.forward(&y)?;
        }
        cat(&[
            self.a2.forward(&self.a1.forward(x)?)?,
            y,
            max_pool_3x3_s2(x)?,
        ])
    }
}

struct BlockE {
    b1: ConvBn,
    s1: ConvBn,
    s2a: ConvBn,
    s2b: ConvBn,
    d1: ConvBn,
    d2: ConvBn,
    d3a: ConvBn,
    d3b: ConvBn,
    pool: ConvBn,
    /// Max pool in the pool branch (Mixed_7c of the FID network); average otherwise.
    max_pool: bool,
}

impl BlockE {
    fn new(vb: &VarBuilder, cin: usize, max_pool: bool) -> Result<Self> {
        Ok(Self {
            b1: ConvBn::new(vb, "branch1x1", cin, 320, (1, 1), 1, (0, 0))?,
            s1: ConvBn::new(vb, "branch3x3_1", cin, 384, (1, 1), 1, (0, 0))?,
            s2a: ConvBn::new(vb, "branch3x3_2a", 384, 384, (1, 3), 1, (0, 1))?,
            s2b: ConvBn::new(vb, "branch3x3_2b", 384, 384, (3, 1), 1, (1, 0))?,
            d1: ConvBn::new(vb, "branch3x3dbl_1", cin, 448, (1, 1), 1, (0, 0))?,
            d2: ConvBn::new(vb, "branch3x3dbl_2", 448, 384, (3, 3), 1, (1, 1))?,
            d3a: ConvBn::new(vb, "branch3x3dbl_3a", 384, 384, (1, 3), 1, (0, 1))?,
            d3b: ConvBn::new(vb, "branch3x3dbl_3b", 384, 384, (3, 1), 1, (1, 0))?,
            pool: ConvBn::new(vb, "branch_pool", cin, 192, (1, 1), 1, (0, 0))?,
            max_pool,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = self.s1.forward(x)?;
        let d = self.d2.forward(&self.d1.forward(x)?)?;
        let pooled = if self.max_pool {
            // PyTorch pads max pools with −∞, as `max_pool2d_strided` does.
            max_pool2d_strided(x, 3, 1, 1)?
        } else {
            avg_pool_3x3_s1(x)?
        };
        cat(&[
            self.b1.forward(x)?,
            cat(&[self.s2a.forward(&s)?, self.s2b.forward(&s)?])?,
            cat(&[self.d3a.forward(&d)?, self.d3b.forward(&d)?])?,
            self.pool.forward(&pooled)?,
        ])
    }
}

/// pytorch-fid's FID Inception-v3 (inference only).
pub struct FidInceptionV3 {
    stem: [ConvBn; 5],
    mixed_5: [BlockA; 3],
    mixed_6a: BlockB,
    mixed_6: [BlockC; 4],
    mixed_7a: BlockD,
    mixed_7b: BlockE,
    mixed_7c: BlockE,
    /// fc weight, 2048 × 1008 (transposed once at load).
    fc_t: Tensor,
    device: Device,
}

impl FidInceptionV3 {
    /// Builds the network from `vb` (f32), whose tensors are named as pytorch-fid's state dict.
    pub fn from_var_builder(vb: VarBuilder) -> Result<Self> {
        let stem = [
            ConvBn::new(&vb, "Conv2d_1a_3x3", 3, 32, (3, 3), 2, (0, 0))?,
            ConvBn::new(&vb, "Conv2d_2a_3x3", 32, 32, (3, 3), 1, (0, 0))?,
            ConvBn::new(&vb, "Conv2d_2b_3x3", 32, 64, (3, 3), 1, (1, 1))?,
            ConvBn::new(&vb, "Conv2d_3b_1x1", 64, 80, (1, 1), 1, (0, 0))?,
            ConvBn::new(&vb, "Conv2d_4a_3x3", 80, 192, (3, 3), 1, (0, 0))?,
        ];
        let mixed_5 = [
            BlockA::new(&vb.pp("Mixed_5b"), 192, 32)?,
            BlockA::new(&vb.pp("Mixed_5c"), 256, 64)?,
            BlockA::new(&vb.pp("Mixed_5d"), 288, 64)?,
        ];
        let mixed_6a = BlockB::new(&vb.pp("Mixed_6a"), 288)?;
        let mixed_6 = [
            BlockC::new(&vb.pp("Mixed_6b"), 768, 128)?,
            BlockC::new(&vb.pp("Mixed_6c"), 768, 160)?,
            BlockC::new(&vb.pp("Mixed_6d"), 768, 160)?,
            BlockC::new(&vb.pp("Mixed_6e"), 768, 192)?,
        ];
        let mixed_7a = BlockD::new(&vb.pp("Mixed_7a"), 768)?;
        let mixed_7b = BlockE::new(&vb.pp("Mixed_7b"), 1280, false)?;
        let mixed_7c = BlockE::new(&vb.pp("Mixed_7c"), 2048, true)?;
        let fc_t = vb
            .pp("fc")
            .get_with_hints((NUM_CLASSES, POOL3_DIM), "weight", DEFAULT_KAIMING_NORMAL)?
            .t()?
            .contiguous()?;
        // The bias is part of the state dict but unused ("logits_unbiased"); require it for completeness.
        let _ = vb.pp("fc").get(NUM_CLASSES, "bias")?;
        Ok(Self {
            stem,
            mixed_5,
            mixed_6a,
            mixed_6,
            mixed_7a,
            mixed_7b,
            mixed_7c,
            fc_t,
            device: vb.device().clone(),
        })
    }

    /// Loads converted pytorch-fid weights from a safetensors file (see the module docs).
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        if !path.exists() {
            return Err(GanEvalError::BadFile {
                path: path.to_path_buf(),
                reason: "no such file; convert pt_inception-2015-12-05-6726825d.pth with crates/gan-eval/scripts/convert_fid_inception.py".into(),
            });
        }
        // SAFETY: the file is memory-mapped read-only and not modified while the network is built
        // (every tensor is copied into the folded convolutions).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path], DType::F32, device) }
            .map_err(|e| GanEvalError::BadFile {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Self::from_var_builder(vb).map_err(|e| GanEvalError::BadFile {
            path: path.to_path_buf(),
            reason: format!("not FID-Inception weights: {e}"),
        })
    }

    /// The network with seeded random weights (for tests and shape checks only).
    pub fn random(seed: u64, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = SeededVarMap::var_builder(&varmap, seed, DType::F32, device);
        Self::from_var_builder(vb)
    }

    /// Names and shapes of every tensor the network reads, in construction order (the state dict of
    /// pytorch-fid without `num_batches_tracked`).
    pub fn parameter_shapes() -> Result<Vec<(String, Vec<usize>)>> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        Self::from_var_builder(vb)?;
        let data = varmap
            .data()
            .lock()
            .map_err(|_| GanEvalError::invalid("varmap", "lock poisoned"))?;
        let mut out: Vec<(String, Vec<usize>)> = data
            .iter()
            .map(|(k, v)| (k.clone(), v.dims().to_vec()))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Maps images (`[N, 1 or 3, H, W]` in [0, 1]) to the network input: grey replicated to RGB, resized,
    /// normalised.
    pub fn preprocess(&self, images: &Tensor, input: &InceptionInput) -> Result<Tensor> {
        let dims = images.dims();
        if dims.len() != 4 || !(dims[1] == 1 || dims[1] == 3) {
            return Err(GanEvalError::shape(
                "FID-Inception images",
                "[N, 1 or 3, H, W] with values in [0, 1]",
                format!("{dims:?}"),
            ));
        }
        let mut x = images.to_device(&self.device)?.to_dtype(DType::F32)?;
        if dims[1] == 1 {
            x = Tensor::cat(&[&x, &x, &x], 1)?;
        }
        if let Some(s) = input.resize_to
            && (dims[2] != s || dims[3] != s)
        {
            x = nn_core::layers::upsample_bilinear2d(&x, s, s)?;
        }
        let (h, w) = (x.dims()[2], x.dims()[3]);
        if h < 75 || w < 75 {
            return Err(GanEvalError::shape(
                "FID-Inception input",
                "at least 75×75 after resizing",
                format!("{h}×{w}"),
            ));
        }
        if input.normalize {
            x = x.affine(2.0, -1.0)?;
        }
        Ok(x)
    }

    /// Pool3 features `[N, 2048]` of a preprocessed batch.
    pub fn pool3(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for (i, c) in self.stem.iter().enumerate() {
            y = c.forward(&y)?;
            if i == 2 || i == 4 {
                y = max_pool_3x3_s2(&y)?;
            }
        }
        for b in &self.mixed_5 {
            y = b.forward(&y)?;
        }
        y = self.mixed_6a.forward(&y)?;
        for b in &self.mixed_6 {
            y = b.forward(&y)?;
        }
        y = self.mixed_7a.forward(&y)?;
        y = self.mixed_7b.forward(&y)?;
        y = self.mixed_7c.forward(&y)?;
        Ok(global_avg_pool2d(&y)?)
    }

    /// Pool3 features and unbiased logits of `images` (see [`FidInceptionV3::preprocess`]), in batches.
    pub fn extract(
        &self,
        images: &Tensor,
        input: &InceptionInput,
        batch_size: usize,
    ) -> Result<InceptionOutputs> {
        if batch_size == 0 {
            return Err(GanEvalError::invalid("batch_size", "must be at least 1"));
        }
        let n = images.dims().first().copied().unwrap_or(0);
        let (mut pool3, mut logits) = (Vec::new(), Vec::new());
        let mut start = 0;
        while start < n {
            let len = batch_size.min(n - start);
            let x = self.preprocess(&images.narrow(0, start, len)?, input)?;
            let p = self.pool3(&x)?;
            let l = p.matmul(&self.fc_t)?;
            pool3.extend(to_f64(&p)?);
            logits.extend(to_f64(&l)?);
            start += len;
        }
        let err = |e: ndarray::ShapeError| GanEvalError::invalid("images", e.to_string());
        Ok(InceptionOutputs {
            pool3: Array2::from_shape_vec((n, POOL3_DIM), pool3).map_err(err)?,
            logits_unbiased: Array2::from_shape_vec((n, NUM_CLASSES), logits).map_err(err)?,
        })
    }
}
