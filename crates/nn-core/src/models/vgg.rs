//! [`VggSmall`]: a VGG-style CNN — three blocks of `(conv3×3 → ReLU) ×2 → max-pool 2` with 16, 32 and 64
//! channels, then `fc 128 → ReLU → fc classes`. No batch norm, as in the original VGG.
//!
//! Activations: `block{b}_conv{i}`, `block{b}_relu{i}`, `block{b}_pool` for b = 1..3, i = 1..2, then `fc1`,
//! `relu_fc1`, `logits`.

use candle_core::Tensor;
use candle_nn::{Conv2dConfig, Module, VarBuilder};

use super::{Classifier, InputSpec, ModelConfig, ModelKind, ModelMeta, Tap};
use crate::layers::{max_pool2d, relu};
use crate::ops::{Conv2d, Linear, conv2d_layer as conv2d, linear_layer as linear};
use crate::{NnError, Result};

const WIDTHS: [usize; 3] = [16, 32, 64];

/// VGG-style CNN.
pub struct VggSmall {
    convs: Vec<[Conv2d; 2]>,
    fc1: Linear,
    fc2: Linear,
    meta: ModelMeta,
}

/// A small VGG for `input` (needs images of at least 8×8).
pub fn vgg_small(input: InputSpec, vb: VarBuilder) -> Result<VggSmall> {
    let (h, w) = (input.height / 8, input.width / 8);
    if h == 0 || w == 0 {
        return Err(NnError::invalid(
            "input",
            format!(
                "vgg-small needs images of at least 8×8, got {}×{}",
                input.height, input.width
            ),
        ));
    }
    let cfg = Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    let mut convs = Vec::new();
    let mut c_in = input.channels;
    for (b, &c) in WIDTHS.iter().enumerate() {
        let vb = vb.pp(format!("block{}", b + 1));
        convs.push([
            conv2d(c_in, c, 3, cfg, vb.pp("conv1"))?,
            conv2d(c, c, 3, cfg, vb.pp("conv2"))?,
        ]);
        c_in = c;
    }
    Ok(VggSmall {
        convs,
        fc1: linear(c_in * h * w, 128, vb.pp("fc1"))?,
        fc2: linear(128, input.num_classes, vb.pp("fc2"))?,
        meta: ModelMeta::new(ModelConfig::new(ModelKind::VggSmall, input), &vb),
    })
}

impl Classifier for VggSmall {
    fn forward_tapped(
        &self,
        x: &Tensor,
        _train: bool,
        tap: Tap<'_>,
    ) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (b, block) in self.convs.iter().enumerate() {
            for (i, conv) in block.iter().enumerate() {
                h = conv.forward(&h)?;
                tap(&format!("block{}_conv{}", b + 1, i + 1), &h);
                h = relu(&h)?;
                tap(&format!("block{}_relu{}", b + 1, i + 1), &h);
            }
            h = max_pool2d(&h, 2)?;
            tap(&format!("block{}_pool", b + 1), &h);
        }
        let h = self.fc1.forward(&h.flatten_from(1)?)?;
        tap("fc1", &h);
        let h = relu(&h)?;
        tap("relu_fc1", &h);
        let logits = self.fc2.forward(&h)?;
        tap("logits", &logits);
        Ok(logits)
    }

    /// The same network with each convolution (+ ReLU, + the block's pool) as one op
    /// (`Conv2d::forward_relu_max_pool`): the same logits and gradients as `forward_tapped`.
    fn forward_t(&self, x: &Tensor, _train: bool) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for [conv1, conv2] in &self.convs {
            h = conv1.forward_relu_max_pool(&h, 1)?;
            h = conv2.forward_relu_max_pool(&h, 2)?;
        }
        let h = relu(&self.fc1.forward(&h.flatten_from(1)?)?)?;
        self.fc2.forward(&h)
    }

    fn meta(&self) -> &ModelMeta {
        &self.meta
    }
}
