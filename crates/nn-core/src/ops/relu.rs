//! ReLU on the CPU as one fused pass forward and one backward, with candle's conventions: `max(x, 0)`,
//! and the gradient mask `x ≥ 0` (gradient 1 at exactly 0, as candle's `relu` backward).
//!
//! candle's own backward builds `zeros_like(x)`, compares, converts the mask to the float type and
//! multiplies — four passes and three temporaries per ReLU. Here `∂x = mask(x) ⊙ h` is one pass, and it is
//! again an op (`relu_mask_mul`) whose derivative in `h` is itself, so second-order gradients stay exact.
//!
//! ```
//! use candle_core::{Device, Var};
//! use nn_core::ops::relu;
//!
//! let x = Var::new(&[-1f32, 0., 2.], &Device::Cpu)?;
//! let y = relu(x.as_tensor())?;
//! assert_eq!(y.to_vec1::<f32>()?, vec![0., 0., 2.]);
//! let g = y.sum_all()?.backward()?;
//! assert_eq!(g.get(x.as_tensor()).unwrap().to_vec1::<f32>()?, vec![0., 1., 1.]);
//! # Ok::<(), candle_core::Error>(())
//! ```

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType, bail,
};

use super::{Kernel1, Kernel2, dispatch1, dispatch2, filled_vec, grad_for, on_pool, same_shape};

/// Element count above which a pass is split over the rayon pool, and the chunk each task takes.
const PARALLEL_MIN: usize = 1 << 16;
const CHUNK: usize = PARALLEL_MIN / 4;

fn map_unary<T: WithDType>(x: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    // SAFETY: chunk i of the output is zipped with the slice of `x` of the same range and length, so every
    // element is written.
    unsafe {
        filled_vec(x.len(), CHUNK, on_pool(x.len(), PARALLEL_MIN), |i, out| {
            let xs = &x[i * CHUNK..i * CHUNK + out.len()];
            for (o, &v) in out.iter_mut().zip(xs) {
                o.write(f(v));
            }
        })
    }
}

fn map_binary<T: WithDType>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
    assert_eq!(
        a.len(),
        b.len(),
        "map_binary: operands of different lengths"
    );
    // SAFETY: as in `map_unary`; `a` and `b` have the output's length (asserted).
    unsafe {
        filled_vec(a.len(), CHUNK, on_pool(a.len(), PARALLEL_MIN), |i, out| {
            let range = i * CHUNK..i * CHUNK + out.len();
            for ((o, &u), &v) in out.iter_mut().zip(&a[range.clone()]).zip(&b[range]) {
                o.write(f(u, v));
            }
        })
    }
}

/// `y = max(x, 0)`.
struct Relu;

/// `z = (x ≥ 0) ⊙ h`.
struct ReluMaskMul;

impl Kernel1 for Relu {
    fn run<T: WithDType>(&self, x: &[T]) -> Result<Vec<T>> {
        Ok(map_unary(x, |v| if v > T::zero() { v } else { T::zero() }))
    }
}

impl Kernel2 for ReluMaskMul {
    fn run<T: WithDType>(&self, x: &[T], h: &[T]) -> Result<Vec<T>> {
        if x.len() != h.len() {
            bail!(
                "relu-mask-mul: operands hold {} and {} values",
                x.len(),
                h.len()
            );
        }
        Ok(map_binary(
            x,
            h,
            |x, h| if x >= T::zero() { h } else { T::zero() },
        ))
    }
}

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "relu-fused"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((dispatch1(self, self.name(), s, l)?, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, h: &Tensor) -> Result<Option<Tensor>> {
        relu_mask_mul(x, h).map(Some)
    }
}

impl CustomOp2 for ReluMaskMul {
    fn name(&self) -> &'static str {
        "relu-mask-mul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        same_shape(self.name(), l1, l2)?;
        Ok((
            dispatch2(self, self.name(), (s1, l1), (s2, l2))?,
            l1.shape().clone(),
        ))
    }

    /// Linear in `h` and self-adjoint there; piecewise constant in `x` (an explicit zero gradient: candle's
    /// backward needs one for every operand in the graph).
    fn bwd(
        &self,
        x: &Tensor,
        h: &Tensor,
        _res: &Tensor,
        q: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = grad_for(x, || x.zeros_like())?;
        let dh = grad_for(h, || relu_mask_mul(x, q))?;
        Ok((dx, dh))
    }
}

fn relu_mask_mul(x: &Tensor, h: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&h.contiguous()?, ReluMaskMul)
}

/// Whether [`relu`] takes the fused path (CPU, f32 or f64).
pub fn uses_fast_relu(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// `max(x, 0)` elementwise: the fused op on the CPU in f32/f64, candle's `relu` elsewhere (same values and
/// gradient convention).
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if uses_fast_relu(x) {
        x.contiguous()?.apply_op1(Relu)
    } else {
        x.relu()
    }
}
