//! [`LeNet`]: Caffe's LeNet with ReLUs — `conv5×5·20 → ReLU → pool2 → conv5×5·50 → ReLU → pool2 → fc 500 →
//! ReLU → fc classes`.
//!
//! Activations: `conv1`, `relu1`, `pool1`, `conv2`, `relu2`, `pool2`, `fc1`, `relu3`, `logits`.
//! On 28×28 inputs: 431,080 parameters.

use candle_core::Tensor;
use candle_nn::{Conv2dConfig, Module, VarBuilder};

use super::{Classifier, InputSpec, ModelConfig, ModelKind, ModelMeta, Tap};
use crate::layers::{max_pool2d, relu};
use crate::ops::{Conv2d, Linear, conv2d_layer as conv2d, linear_layer as linear};
use crate::{NnError, Result};

/// LeNet-style CNN.
pub struct LeNet {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
    meta: ModelMeta,
}

/// A LeNet for `input` (needs images of at least 16×16).
pub fn lenet(input: InputSpec, vb: VarBuilder) -> Result<LeNet> {
    // 5×5 valid conv, pool 2, 5×5 valid conv, pool 2 (floor).
    let side = |s: usize| (s.saturating_sub(4) / 2).saturating_sub(4) / 2;
    let (h, w) = (side(input.height), side(input.width));
    if h == 0 || w == 0 {
        return Err(NnError::invalid(
            "input",
            format!(
                "lenet needs images of at least 16×16, got {}×{}",
                input.height, input.width
            ),
        ));
    }
    let cfg = Conv2dConfig::default();
    Ok(LeNet {
        conv1: conv2d(input.channels, 20, 5, cfg, vb.pp("conv1"))?,
        conv2: conv2d(20, 50, 5, cfg, vb.pp("conv2"))?,
        fc1: linear(50 * h * w, 500, vb.pp("fc1"))?,
        fc2: linear(500, input.num_classes, vb.pp("fc2"))?,
        meta: ModelMeta::new(ModelConfig::new(ModelKind::Lenet, input), &vb),
    })
}

impl Classifier for LeNet {
    fn forward_tapped(
        &self,
        x: &Tensor,
        _train: bool,
        tap: Tap<'_>,
    ) -> candle_core::Result<Tensor> {
        let mut step = |name: &str, t: Tensor| {
            tap(name, &t);
            t
        };
        let h = step("conv1", self.conv1.forward(x)?);
        let h = step("relu1", relu(&h)?);
        let h = step("pool1", max_pool2d(&h, 2)?);
        let h = step("conv2", self.conv2.forward(&h)?);
        let h = step("relu2", relu(&h)?);
        let h = step("pool2", max_pool2d(&h, 2)?);
        let h = step("fc1", self.fc1.forward(&h.flatten_from(1)?)?);
        let h = step("relu3", relu(&h)?);
        Ok(step("logits", self.fc2.forward(&h)?))
    }

    /// The same network with each convolution block as one op (`Conv2d::forward_relu_max_pool`): the same
    /// logits and gradients as `forward_tapped`, with two nodes per block fewer in the backward graph.
    fn forward_t(&self, x: &Tensor, _train: bool) -> candle_core::Result<Tensor> {
        let h = self.conv1.forward_relu_max_pool(x, 2)?;
        let h = self.conv2.forward_relu_max_pool(&h, 2)?;
        let h = relu(&self.fc1.forward(&h.flatten_from(1)?)?)?;
        self.fc2.forward(&h)
    }

    fn meta(&self) -> &ModelMeta {
        &self.meta
    }
}
