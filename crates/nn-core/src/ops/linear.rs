//! A dense layer `y = x·Wᵀ + b` as one custom op ([`linear`], the layer [`Linear`]).
//!
//! Why: candle-nn's `Linear` is three graph nodes — `W.t()`, the matmul and the bias's broadcast add — and
//! candle 0.11's backward accumulates each node's gradient into a fresh zero tensor (`GradStore::or_insert`
//! and `add`). For the weight that is twice a zero tensor and an add of W's size, the second one strided
//! (the transpose's gradient is a transposed view): for LeNet's `fc1` (400,000 weights) the larger part of
//! the step's serial, non-scaling work (docs/performance.md). As one op, the backward returns
//! `∂x = h·W`, `∂W = hᵀ·x` (already in W's layout) and `∂b = Σ_rows h` directly; each is a candle op, so
//! second-order gradients stay exact.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use nn_core::ops::linear;
//!
//! let x = Tensor::new(&[[1f32, 2.]], &Device::Cpu)?;
//! let w = Var::new(&[[1f32, 0.], [1., 1.], [0., -1.]], &Device::Cpu)?;
//! let b = Tensor::new(&[0.5f32, 0., 0.], &Device::Cpu)?;
//! let y = linear(&x, w.as_tensor(), Some(&b))?;
//! assert_eq!(y.to_vec2::<f32>()?, vec![vec![1.5, 3., -2.]]);
//! let g = y.sum_all()?.backward()?;
//! assert_eq!(g.get(w.as_tensor()).unwrap().to_vec2::<f32>()?, vec![vec![1., 2.]; 3]);
//! # Ok::<(), candle_core::Error>(())
//! ```

use candle_core::{
    CpuStorage, CustomOp3, DType, Layout, Module, Result, Shape, Tensor, WithDType, bail,
};
use candle_nn::VarBuilder;

use super::gemm::{Mat, matmul};
use super::{Kernel3, dispatch3, grad_for};

/// `y (n × out) = x (n × in) · Wᵀ + b` with `W` (out × in).
#[derive(Debug, Clone, Copy)]
struct LinearOp {
    n: usize,
    fan_in: usize,
    fan_out: usize,
}

/// Products below this many multiply-adds run on the calling thread.
const PARALLEL_MIN_FLOPS: usize = 1 << 16;

impl Kernel3 for LinearOp {
    fn run<T: WithDType>(&self, x: &[T], w: &[T], b: &[T]) -> Result<Vec<T>> {
        let Self { n, fan_in, fan_out } = *self;
        if (x.len(), w.len(), b.len()) != (n * fan_in, fan_out * fan_in, fan_out) {
            bail!(
                "linear: operands hold {}, {} and {} values, the shapes need {}, {} and {fan_out}",
                x.len(),
                w.len(),
                b.len(),
                n * fan_in,
                fan_out * fan_in
            );
        }
        // Every row starts as the bias; the product is accumulated onto it.
        let mut y = Vec::with_capacity(n * fan_out);
        for _ in 0..n {
            y.extend_from_slice(b);
        }
        let threads = if n * fan_in * fan_out >= PARALLEL_MIN_FLOPS {
            rayon::current_num_threads()
        } else {
            1
        };
        matmul(
            &mut y,
            Mat::row_major(x, n, fan_in),
            Mat::row_major(w, fan_out, fan_in).t(),
            true,
            threads,
        );
        Ok(y)
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "linear-fused"
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
        Ok((out, (self.n, self.fan_out).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        h: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = grad_for(x, || h.matmul(w))?;
        let dw = grad_for(w, || h.t()?.matmul(x))?;
        let db = grad_for(b, || h.sum(0))?;
        Ok((dx, dw, db))
    }
}

/// Whether [`linear`] takes the fused path: CPU, one float type (f32 or f64) for all three, `x` 2-D.
fn uses_fast_linear(x: &Tensor, w: &Tensor, b: &Tensor) -> bool {
    [x, w, b].iter().all(|t| t.device().is_cpu())
        && matches!(x.dtype(), DType::F32 | DType::F64)
        && w.dtype() == x.dtype()
        && b.dtype() == x.dtype()
        && x.rank() == 2
}

/// `x·Wᵀ + b` for `x` (…, in), `W` (out, in), `b` (out,) — one op for 2-D `x` on the CPU in f32/f64,
/// candle-nn's `Linear` otherwise (the same values up to the GEMM's rounding, the same gradients).
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let Some(b) = b.filter(|b| uses_fast_linear(x, w, b)) else {
        return candle_nn::Linear::new(w.clone(), b.cloned()).forward(x);
    };
    let ((n, fan_in), (fan_out, w_in)) = (x.dims2()?, w.dims2()?);
    if w_in != fan_in || b.dims1()? != fan_out {
        bail!(
            "linear: input (n, {fan_in}), weight ({fan_out}, {w_in}) and bias ({}) do not fit",
            b.dims1()?
        );
    }
    let op = LinearOp { n, fan_in, fan_out };
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, op)
}

/// A dense layer with candle-nn's parameters, names and initialisation (build it with [`linear_layer`] or
/// from a `candle_nn::Linear`); its forward is [`linear`].
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// A layer from a weight (out, in) and an optional bias (out,).
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    /// The weight (out, in).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
}

impl From<candle_nn::Linear> for Linear {
    fn from(l: candle_nn::Linear) -> Self {
        Self::new(l.weight().clone(), l.bias().cloned())
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        linear(x, &self.weight, self.bias.as_ref())
    }
}

/// A `fan_in → fan_out` layer with a bias, created in `vb` under the names `weight` and `bias` with
/// candle-nn's initialisation (so seeded weights equal `candle_nn::linear`'s).
pub fn linear_layer(fan_in: usize, fan_out: usize, vb: VarBuilder) -> Result<Linear> {
    candle_nn::linear(fan_in, fan_out, vb).map(Linear::from)
}
