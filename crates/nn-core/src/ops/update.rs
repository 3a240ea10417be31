//! In-place optimiser updates on the CPU: each pass reads and writes every element once, with no
//! temporaries, instead of the dozen allocating tensor ops per parameter of the generic path in
//! [`crate::optim`]. Arithmetic is done in the parameter's own type (as PyTorch does).
//!
//! A pass is a candle in-place op (`InplaceOp3`): one tensor is written, two are read. Adam is three
//! passes (first moment, second moment, parameter), SGD with momentum two, RMSProp two.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, InplaceOp3, Layout, Result, Tensor, WithDType, bail};
use rayon::prelude::*;

/// Element count above which a pass is split over the rayon pool.
const PARALLEL_MIN: usize = 1 << 16;

/// One elementwise in-place pass. `d = g + λθ` is the weight-decayed gradient.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pass {
    /// `s ← decay·s + weight·d` (or `weight·d²` when `square`); reads (g, θ).
    Moment {
        decay: f64,
        weight: f64,
        square: bool,
        weight_decay: f64,
    },
    /// `θ ← θ − lr·(m/bc1)/(√(v/bc2) + ε)`; reads (m, v).
    AdamParam {
        lr: f64,
        bc1: f64,
        bc2: f64,
        eps: f64,
    },
    /// `θ ← θ − lr·(d + μ·b)` (Nesterov) or `θ − lr·b` (heavy ball) or `θ − lr·d` (μ = 0); reads (b, g).
    SgdParam {
        lr: f64,
        momentum: f64,
        nesterov: bool,
        weight_decay: f64,
    },
    /// `θ ← θ − lr·d/(√v + ε)`; reads (v, g).
    RmsParam {
        lr: f64,
        eps: f64,
        weight_decay: f64,
    },
}

impl Pass {
    /// Runs the pass over contiguous slices, with the variant chosen once outside the loop so that each
    /// loop body is a plain vectorisable expression.
    fn run<T: Real>(&self, dst: &mut [T], a: &[T], b: &[T]) {
        match *self {
            Pass::Moment {
                decay,
                weight,
                square,
                weight_decay,
            } => {
                let (decay, weight, weight_decay) =
                    (T::of(decay), T::of(weight), T::of(weight_decay));
                // Reads (g, θ).
                if square {
                    zip3(dst, a, b, move |s, g, th| {
                        let d = g + weight_decay * th;
                        decay * s + weight * (d * d)
                    })
                } else {
                    zip3(dst, a, b, move |s, g, th| {
                        decay * s + weight * (g + weight_decay * th)
                    })
                }
            }
            Pass::AdamParam { lr, bc1, bc2, eps } => {
                let (a1, a2, eps) = (T::of(lr / bc1), T::of(1.0 / bc2), T::of(eps));
                zip3(dst, a, b, move |th, m, v| {
                    th - a1 * m / ((v * a2).sqrt() + eps)
                })
            }
            Pass::SgdParam {
                lr,
                momentum,
                nesterov,
                weight_decay,
            } => {
                let zero_momentum = momentum == 0.0;
                let (lr, momentum, weight_decay) =
                    (T::of(lr), T::of(momentum), T::of(weight_decay));
                // Reads (b, g).
                if zero_momentum {
                    zip3(dst, a, b, move |th, _, g| th - lr * (g + weight_decay * th))
                } else if nesterov {
                    zip3(dst, a, b, move |th, buf, g| {
                        th - lr * (g + weight_decay * th + momentum * buf)
                    })
                } else {
                    zip3(dst, a, b, move |th, buf, _| th - lr * buf)
                }
            }
            Pass::RmsParam {
                lr,
                eps,
                weight_decay,
            } => {
                let (lr, eps, weight_decay) = (T::of(lr), T::of(eps), T::of(weight_decay));
                // Reads (v, g).
                zip3(dst, a, b, move |th, v, g| {
                    th - lr * (g + weight_decay * th) / (v.sqrt() + eps)
                })
            }
        }
    }
}

/// The float types an update runs in.
trait Real: WithDType + std::ops::Mul<Output = Self> + std::ops::Add<Output = Self> {
    fn of(v: f64) -> Self;
    fn sqrt(self) -> Self;
}

impl Real for f32 {
    fn of(v: f64) -> Self {
        v as f32
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}

impl Real for f64 {
    fn of(v: f64) -> Self {
        v
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}

/// `dst[i] ← f(dst[i], a[i], b[i])`; split over the rayon pool when long.
fn zip3<T: Real>(dst: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T, T) -> T + Sync + Copy) {
    let body = move |dst: &mut [T], a: &[T], b: &[T]| {
        for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
            *d = f(*d, x, y);
        }
    };
    if super::on_pool(dst.len(), PARALLEL_MIN) {
        let chunk = PARALLEL_MIN / 4;
        dst.par_chunks_mut(chunk)
            .zip(a.par_chunks(chunk).zip(b.par_chunks(chunk)))
            .for_each(|(d, (a, b))| body(d, a, b));
    } else {
        body(dst, a, b);
    }
}

fn slice_mut<'a, T>(data: &'a mut [T], l: &Layout) -> Result<&'a mut [T]> {
    match l.contiguous_offsets() {
        Some((s, e)) if e <= data.len() => Ok(&mut data[s..e]),
        _ => bail!("optimiser update: parameter or state is not contiguous"),
    }
}

impl InplaceOp3 for Pass {
    fn name(&self) -> &'static str {
        "optimizer-update"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        a: &CpuStorage,
        la: &Layout,
        b: &CpuStorage,
        lb: &Layout,
    ) -> Result<()> {
        let n = dst_l.shape().elem_count();
        if la.shape().elem_count() != n || lb.shape().elem_count() != n {
            bail!("optimiser update: operand sizes differ");
        }
        let dtype = dst.dtype();
        match (dst, a, b) {
            (CpuStorage::F32(d), CpuStorage::F32(a), CpuStorage::F32(b)) => self.run(
                slice_mut(d, dst_l)?,
                super::contiguous_slice(a, la, "optimiser update")?,
                super::contiguous_slice(b, lb, "optimiser update")?,
            ),
            (CpuStorage::F64(d), CpuStorage::F64(a), CpuStorage::F64(b)) => self.run(
                slice_mut(d, dst_l)?,
                super::contiguous_slice(a, la, "optimiser update")?,
                super::contiguous_slice(b, lb, "optimiser update")?,
            ),
            _ => bail!("optimiser update: only f32 and f64 of one dtype, got {dtype:?}"),
        }
        Ok(())
    }
}

/// Whether `t` can be updated in place by [`Pass`]: on the CPU, f32 or f64, contiguous.
pub(crate) fn updatable(t: &Tensor) -> bool {
    t.device().is_cpu()
        && matches!(t.dtype(), candle_core::DType::F32 | candle_core::DType::F64)
        && t.is_contiguous()
}

/// Applies `pass` to `dst` in place, reading `a` and `b` (made contiguous first).
pub(crate) fn apply(pass: Pass, dst: &Tensor, a: &Tensor, b: &Tensor) -> Result<()> {
    dst.inplace_op3(&a.contiguous()?, &b.contiguous()?, &pass)
}
