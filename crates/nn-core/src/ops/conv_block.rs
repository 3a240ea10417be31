//! A convolution block — `max_pool(relu(conv(x, W) + b), k)` — as one custom op:
//! [`conv2d_relu_max_pool2d`] (with `k = 1`, the block without a pool).
//!
//! Why: in LeNet and VGG the convolution's output and its ReLU's are the largest tensors of a training
//! step (LeNet's first block at batch 64: 64 × 20 × 24 × 24 = 737,280 values each). As separate ops each is
//! a node of candle's backward graph, and candle 0.11 accumulates every node's gradient into a fresh zero
//! tensor (`GradStore::or_insert` + `add`): per node an allocation, a `memset` and an add over the whole
//! tensor, on the calling thread — the part of a 2-thread step that did not scale (docs/performance.md).
//! Fused, the block is one node: its backward chains the pool's scatter (with the ReLU mask folded in,
//! see `PoolGeometry::with_relu`) and the convolution's two products itself, on tensors candle never
//! accumulates.
//!
//! The values are those of the separate ops to the bit, and so are the gradients for finite inputs (the
//! ReLU mask `x ≥ 0` and the pool's all-ties convention compose to "the elements equal to a window maximum
//! `m ≥ 0`"); `tests/ops_fast.rs` checks both, and second-order gradients stay exact because the backward
//! is made of this module's differentiable ops. The op keeps the convolution's output between the forward
//! and the backward pass (only when some operand is in the graph), as the separate ops' graph did.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use nn_core::ops::{conv2d_relu_max_pool2d, Conv2dParams};
//!
//! let x = Tensor::arange(1f32, 17., &Device::Cpu)?.reshape((1, 1, 4, 4))?;
//! let w = Var::new(&[[[[1f32]]], [[[-1f32]]]], &Device::Cpu)?; // identity and negation
//! let b = Var::new(&[0f32, 0.], &Device::Cpu)?;
//! let y = conv2d_relu_max_pool2d(&x, w.as_tensor(), b.as_tensor(), Conv2dParams::default(), 2)?;
//! // Channel 0 pools x (1 … 16); channel 1 pools relu(−x) = 0 everywhere.
//! assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![6., 8., 14., 16., 0., 0., 0., 0.]);
//! let g = y.sum_all()?.backward()?;
//! // ∂b: four windows pass their gradient in channel 0; channel 1's maxima are negative.
//! assert_eq!(g.get(b.as_tensor()).unwrap().to_vec1::<f32>()?, vec![4., 0.]);
//! # Ok::<(), candle_core::Error>(())
//! ```

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Result, Shape, Tensor, WithDType, bail};

use super::conv2d::{Conv2dParams, Geometry, conv2d_bias, fast_bias_geometry};
use super::max_pool::{MaxPoolRoute, PoolGeometry};
use super::{Kernel3, dispatch3, relu};

/// `max_pool(relu(conv(x, w) + b), k)`, keeping `conv(x, w) + b` for the backward pass when `keep`.
struct ConvReluPool {
    conv: Geometry,
    pool: PoolGeometry,
    keep: bool,
    conv_out: Mutex<Option<Tensor>>,
}

impl Kernel3 for ConvReluPool {
    fn run<T: WithDType>(&self, x: &[T], w: &[T], b: &[T]) -> Result<Vec<T>> {
        let g = &self.conv;
        g.check_bias_operands(self.name(), x.len(), w.len(), b.len())?;
        let y = g.forward(x, w, Some(b));
        let pooled = self.pool.pool(&y);
        if self.keep {
            let y = Tensor::from_vec(y, g.out_dims(), &Device::Cpu)?;
            *self.conv_out.lock().unwrap_or_else(|e| e.into_inner()) = Some(y);
        }
        Ok(pooled)
    }
}

impl CustomOp3 for ConvReluPool {
    fn name(&self) -> &'static str {
        "conv2d-relu-max-pool2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = dispatch3(self, self.name(), (s1, l1), (s2, l2), (s3, l3))?;
        Ok((out, self.pool.out_dims().into()))
    }

    /// `∂y = scatter_relu(y, h)` at the convolution's output, then the convolution's gradients.
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        h: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let kept = self.conv_out.lock().unwrap_or_else(|e| e.into_inner());
        let Some(y) = kept.as_ref() else {
            bail!(
                "{}: backward pass without the forward pass's output (no operand was in the graph)",
                self.name()
            );
        };
        let gy = MaxPoolRoute::apply(self.pool, false, y, h)?;
        self.conv.bias_conv_grads(x, w, b, &gy)
    }
}

/// `max_pool2d(relu(conv2d(x, w) + bias), k)` — a convolution block, one op on the fast path (CPU, f32 or
/// f64, groups 1); elsewhere the three ops in sequence (same values and gradients). `k = 1` is the block
/// without a pool. Errors name the mismatched sizes, as [`conv2d_bias`] and [`crate::layers::max_pool2d`].
pub fn conv2d_relu_max_pool2d(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    params: Conv2dParams,
    k: usize,
) -> Result<Tensor> {
    let Some(conv) = fast_bias_geometry(x, w, bias, &params)? else {
        let y = relu(&conv2d_bias(x, w, bias, params)?)?;
        return crate::layers::max_pool2d(&y, k);
    };
    let pool = PoolGeometry::new(conv.out_dims(), k)?.with_relu();
    let op = ConvReluPool {
        conv,
        pool,
        keep: x.track_op() || w.track_op() || bias.track_op(),
        conv_out: Mutex::new(None),
    };
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &bias.contiguous()?, op)
}
