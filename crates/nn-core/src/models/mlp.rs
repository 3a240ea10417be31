//! [`Mlp`]: flatten, then `Linear → ReLU` for each hidden width, then a linear read-out.
//!
//! Activations: `fc1`, `relu1`, …, `logits`. 784-512-512-10 has 669,706 parameters.

use candle_core::Tensor;
use candle_nn::{Module, VarBuilder};

use crate::ops::{Linear, linear_layer as linear};

use super::{Classifier, InputSpec, ModelConfig, ModelKind, ModelMeta, Tap};
use crate::layers::relu;
use crate::{NnError, Result};

/// Multi-layer perceptron.
pub struct Mlp {
    hidden: Vec<Linear>,
    out: Linear,
    meta: ModelMeta,
}

/// An MLP for `input` with hidden `widths` (empty: a linear classifier).
pub fn mlp(input: InputSpec, widths: &[usize], vb: VarBuilder) -> Result<Mlp> {
    if let Some(w) = widths.iter().find(|&&w| w == 0) {
        return Err(NnError::invalid(
            "mlp_widths",
            format!("widths must be positive, got {w}"),
        ));
    }
    let mut hidden = Vec::with_capacity(widths.len());
    let mut fan_in = input.numel();
    for (i, &w) in widths.iter().enumerate() {
        hidden.push(linear(fan_in, w, vb.pp(format!("fc{}", i + 1)))?);
        fan_in = w;
    }
    let out = linear(fan_in, input.num_classes, vb.pp("out"))?;
    let config = ModelConfig {
        mlp_widths: widths.to_vec(),
        ..ModelConfig::new(ModelKind::Mlp, input)
    };
    Ok(Mlp {
        hidden,
        out,
        meta: ModelMeta::new(config, &vb),
    })
}

impl Classifier for Mlp {
    fn forward_tapped(
        &self,
        x: &Tensor,
        _train: bool,
        tap: Tap<'_>,
    ) -> candle_core::Result<Tensor> {
        let mut h = x.flatten_from(1)?;
        for (i, layer) in self.hidden.iter().enumerate() {
            h = layer.forward(&h)?;
            tap(&format!("fc{}", i + 1), &h);
            h = relu(&h)?;
            tap(&format!("relu{}", i + 1), &h);
        }
        let logits = self.out.forward(&h)?;
        tap("logits", &logits);
        Ok(logits)
    }

    fn meta(&self) -> &ModelMeta {
        &self.meta
    }
}
