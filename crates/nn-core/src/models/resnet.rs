//! [`ResNetSmall`]: a small residual network (He et al. 2016, CIFAR-style) — `conv3×3·16 → BN → ReLU`, three
//! stages of one basic block each (16, 32, 64 channels; stride 1, 2, 2; projection shortcut `conv1×1 → BN`
//! when the shape changes), global average pool, linear read-out.
//!
//! Without batch norm (`batch_norm = false`) every `conv → BN` becomes a convolution with a bias. Why the
//! option: on MNIST-like inputs (a black background) the running statistics of the batch-norm variant
//! amplify a small constant brightness shift into a different prediction, so random noise already fools
//! it — see docs/experiments/universal-perturbations.md.
//!
//! Activations: `stem`, `stage{s}` (after each block's final ReLU), `pool`, `logits`.

use candle_core::Tensor;
use candle_nn::{Conv2dConfig, Module, ModuleT, VarBuilder};

use super::{Classifier, InputSpec, ModelConfig, ModelKind, ModelMeta, Tap};
use crate::Result;
use crate::layers::{global_avg_pool2d, relu};
use crate::ops::{
    BatchNorm, Conv2d, Linear, batch_norm, conv2d_layer as conv2d,
    conv2d_layer_no_bias as conv2d_no_bias, linear_layer as linear,
};

const WIDTHS: [usize; 3] = [16, 32, 64];

/// `conv → BN`, or a biased `conv` when `bn` is `None`.
struct ConvBn {
    conv: Conv2d,
    bn: Option<BatchNorm>,
}

impl ConvBn {
    fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        with_bn: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: k / 2,
            stride,
            ..Default::default()
        };
        Ok(if with_bn {
            Self {
                conv: conv2d_no_bias(c_in, c_out, k, cfg, vb.pp("conv"))?,
                bn: Some(batch_norm(c_out, 1e-5, vb.pp("bn"))?),
            }
        } else {
            Self {
                conv: conv2d(c_in, c_out, k, cfg, vb.pp("conv"))?,
                bn: None,
            }
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let h = self.conv.forward(x)?;
        match &self.bn {
            Some(bn) => bn.forward_t(&h, train),
            None => Ok(h),
        }
    }
}

struct BasicBlock {
    a: ConvBn,
    b: ConvBn,
    shortcut: Option<ConvBn>,
}

impl BasicBlock {
    fn new(c_in: usize, c_out: usize, stride: usize, bn: bool, vb: VarBuilder) -> Result<Self> {
        let shortcut = if stride != 1 || c_in != c_out {
            Some(ConvBn::new(c_in, c_out, 1, stride, bn, vb.pp("shortcut"))?)
        } else {
            None
        };
        Ok(Self {
            a: ConvBn::new(c_in, c_out, 3, stride, bn, vb.pp("a"))?,
            b: ConvBn::new(c_out, c_out, 3, 1, bn, vb.pp("b"))?,
            shortcut,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let h = relu(&self.a.forward_t(x, train)?)?;
        let h = self.b.forward_t(&h, train)?;
        let skip = match &self.shortcut {
            Some(s) => s.forward_t(x, train)?,
            None => x.clone(),
        };
        relu(&(h + skip)?)
    }
}

/// Small ResNet.
pub struct ResNetSmall {
    stem: ConvBn,
    stages: Vec<BasicBlock>,
    fc: Linear,
    meta: ModelMeta,
}

/// A small ResNet for `input` (any image size ≥ 1 px; global pooling removes the spatial size), with batch
/// norm after every convolution when `batch_norm`, else biased convolutions.
pub fn resnet_small(input: InputSpec, batch_norm: bool, vb: VarBuilder) -> Result<ResNetSmall> {
    let stem = ConvBn::new(input.channels, WIDTHS[0], 3, 1, batch_norm, vb.pp("stem"))?;
    let mut stages = Vec::new();
    let mut c_in = WIDTHS[0];
    for (s, &c) in WIDTHS.iter().enumerate() {
        let stride = if s == 0 { 1 } else { 2 };
        stages.push(BasicBlock::new(
            c_in,
            c,
            stride,
            batch_norm,
            vb.pp(format!("stage{}", s + 1)),
        )?);
        c_in = c;
    }
    Ok(ResNetSmall {
        stem,
        stages,
        fc: linear(c_in, input.num_classes, vb.pp("fc"))?,
        meta: ModelMeta::new(
            ModelConfig::new(ModelKind::ResnetSmall, input).with_batch_norm(batch_norm),
            &vb,
        ),
    })
}

impl Classifier for ResNetSmall {
    fn forward_tapped(&self, x: &Tensor, train: bool, tap: Tap<'_>) -> candle_core::Result<Tensor> {
        let mut h = relu(&self.stem.forward_t(x, train)?)?;
        tap("stem", &h);
        for (s, block) in self.stages.iter().enumerate() {
            h = block.forward_t(&h, train)?;
            tap(&format!("stage{}", s + 1), &h);
        }
        let h = global_avg_pool2d(&h)?;
        tap("pool", &h);
        let logits = self.fc.forward(&h)?;
        tap("logits", &logits);
        Ok(logits)
    }

    fn meta(&self) -> &ModelMeta {
        &self.meta
    }
}
