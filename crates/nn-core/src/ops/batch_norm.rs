//! Batch normalisation over the channel axis of (N, C, …) tensors, built from the per-channel ops of
//! [`super::channel`]: same parameters, names, defaults and running-statistics update as
//! `candle_nn::BatchNorm`, without its transposes and strided reductions.
//!
//! Training mode: `μ = Σx/M`, `x_c = x − μ`, `σ² = Σx_c²/M` (biased, M = N·H·W), `y = x_c·γ/√(σ² + ε) + β`;
//! running mean ← (1 − m)·running mean + m·μ, running var ← (1 − m)·running var + m·σ²·M/(M − 1).
//! Eval mode: `y = (x − running mean)·γ/√(running var + ε) + β`. The gradient is that of this
//! composition (through μ and σ² too), exact to every order. Other devices and dtypes use candle's
//! `BatchNorm` (correct, candle-pitfalls.md §2.6).

use candle_core::{DType, Result, Tensor, Var};
use candle_nn::{BatchNormConfig, ModuleT, VarBuilder};

use super::channel::{channel_affine, channel_dot, channel_sum};

/// Batch normalisation with learnable scale γ (`weight`) and shift β (`bias`).
#[derive(Debug, Clone)]
pub struct BatchNorm {
    inner: candle_nn::BatchNorm,
    running_mean: Var,
    running_var: Var,
}

impl BatchNorm {
    /// The running mean (C,).
    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }

    /// The running variance (C,).
    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }

    fn fast(&self, x: &Tensor) -> bool {
        x.device().is_cpu()
            && matches!(x.dtype(), DType::F32 | DType::F64)
            && x.rank() >= 2
            && self.inner.weight_and_bias().is_some()
            && self.running_mean.dtype() == x.dtype()
    }

    fn forward_train(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.running_mean.dim(0)?;
        if x.dim(1)? != c {
            candle_core::bail!(
                "batch-norm input {:?} does not have the expected {c} channels",
                x.shape()
            );
        }
        let m = x.elem_count() / c;
        if m < 2 {
            candle_core::bail!(
                "batch-norm in training mode needs at least 2 values per channel, got {m}"
            );
        }
        let (gamma, beta) = self.inner.weight_and_bias().expect("checked by fast()");
        let ones = Tensor::ones(c, x.dtype(), x.device())?;
        let mean = (channel_sum(x)? / m as f64)?;
        let centred = channel_affine(x, &ones, &mean.neg()?)?;
        let var = (channel_dot(&centred, &centred)? / m as f64)?;
        let scale = gamma.div(&(var.clone() + self.inner.eps())?.sqrt()?)?;
        let y = channel_affine(&centred, &scale, beta)?;
        let mom = self.inner.momentum();
        let rm = ((self.running_mean.as_tensor() * (1.0 - mom))? + (mean.detach() * mom)?)?;
        let unbiased = m as f64 / (m as f64 - 1.0);
        let rv =
            ((self.running_var.as_tensor() * (1.0 - mom))? + (var.detach() * (mom * unbiased))?)?;
        self.running_mean.set(&rm)?;
        self.running_var.set(&rv)?;
        Ok(y)
    }

    fn forward_eval(&self, x: &Tensor) -> Result<Tensor> {
        let (gamma, beta) = self.inner.weight_and_bias().expect("checked by fast()");
        let scale = gamma.div(&(self.running_var.as_tensor() + self.inner.eps())?.sqrt()?)?;
        let shift = (beta - self.running_mean.as_tensor().mul(&scale)?)?;
        channel_affine(x, &scale, &shift)
    }
}

impl From<candle_nn::BatchNorm> for BatchNorm {
    fn from(inner: candle_nn::BatchNorm) -> Self {
        // `Var::from_tensor` of a variable shares its storage: updates land in the VarMap (checkpoints).
        let running_mean = Var::from_tensor(inner.running_mean()).expect("a tensor");
        let running_var = Var::from_tensor(inner.running_var()).expect("a tensor");
        Self {
            inner,
            running_mean,
            running_var,
        }
    }
}

impl ModuleT for BatchNorm {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !self.fast(x) {
            return self.inner.forward_t(x, train);
        }
        if train {
            self.forward_train(x)
        } else {
            self.forward_eval(x)
        }
    }
}

/// A batch norm over `num_features` channels with ε = `eps`, momentum 0.1 and learnable γ, β, created in
/// `vb` under candle-nn's names (`running_mean`, `running_var`, `weight`, `bias`) and initial values.
pub fn batch_norm(num_features: usize, eps: f64, vb: VarBuilder) -> Result<BatchNorm> {
    let config = BatchNormConfig {
        eps,
        ..Default::default()
    };
    candle_nn::batch_norm(num_features, config, vb).map(BatchNorm::from)
}
