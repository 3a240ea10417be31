//! Per-channel ops on (N, C, …) tensors, each one pass over the data: [`channel_sum`] (`Σ` over every
//! axis but the channel), [`channel_dot`] (`Σ x·y` likewise) and [`channel_affine`] (`x·a[c] + b[c]`).
//!
//! Why: a (C,)-shaped operand broadcast over (N, C, H, W) — a bias, a batch-norm scale — gets its gradient
//! from candle's `sum` over axes (0, 2, 3), a strided reduction that took 18 % of a LeNet training step
//! (docs/performance.md). These ops reduce plane by plane, contiguously, in a fixed order (so results do
//! not depend on the thread count), with f64 accumulators. They are closed under differentiation:
//! `channel_affine`'s gradients are `channel_affine`, `channel_dot` and `channel_sum`; `channel_dot`'s are
//! `channel_affine`; `channel_sum`'s is a broadcast — so gradients of every order stay exact.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, WithDType, bail,
};
use rayon::prelude::*;

use super::{
    Kernel1, Kernel2, Kernel3, dispatch1, dispatch2, dispatch3, filled_vec, grad_for, on_pool,
    same_shape,
};

/// (N, C, plane) of a tensor of rank ≥ 2 whose axis 1 is the channel.
fn channel_dims(shape: &Shape, what: &str) -> Result<(usize, usize, usize)> {
    let dims = shape.dims();
    if dims.len() < 2 {
        bail!("{what}: needs a tensor of rank ≥ 2 (N, C, …), got shape {dims:?}");
    }
    Ok((dims[0], dims[1], dims[2..].iter().product()))
}

/// Work (elements) below which a pass stays on the calling thread.
const PARALLEL_MIN: usize = 1 << 15;

/// `out[c] = Σ_n Σ_p f(n, c, p)` for the planes of `x` (and `y`), channel by channel in parallel, each
/// channel summed image by image in order.
fn reduce_planes<T: WithDType>(
    n: usize,
    c: usize,
    plane: usize,
    sum_plane: impl Fn(usize) -> f64 + Sync,
) -> Vec<T> {
    let per_channel = |ch: usize| {
        let acc: f64 = (0..n).map(|b| sum_plane((b * c + ch) * plane)).sum();
        T::from_f64(acc)
    };
    if on_pool(n * c * plane, PARALLEL_MIN) {
        (0..c).into_par_iter().map(per_channel).collect()
    } else {
        (0..c).map(per_channel).collect()
    }
}

/// Independent accumulators of [`lane_sum`]: a single running f64 sum is one dependent add per element
/// (latency-bound, 10 % of a deep-image-prior step); eight lanes pipeline and vectorise. The order is
/// fixed, so results do not depend on the machine or the thread count.
const LANES: usize = 8;

/// `Σ f(x_i)` in f64 over [`LANES`] interleaved partial sums, added in order at the end.
fn lane_sum<T: Copy>(x: &[T], f: impl Fn(T) -> f64) -> f64 {
    let mut acc = [0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    let tail: f64 = rest.iter().map(|&v| f(v)).sum();
    acc.iter().sum::<f64>() + tail
}

/// `Σ f(x_i, y_i)` likewise.
fn lane_sum2<T: Copy>(x: &[T], y: &[T], f: impl Fn(T, T) -> f64) -> f64 {
    let mut acc = [0f64; LANES];
    let (cx, cy) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (rx, ry) = (cx.remainder(), cy.remainder());
    for (a8, b8) in cx.zip(cy) {
        for ((a, &u), &v) in acc.iter_mut().zip(a8).zip(b8) {
            *a += f(u, v);
        }
    }
    let tail: f64 = rx.iter().zip(ry).map(|(&u, &v)| f(u, v)).sum();
    acc.iter().sum::<f64>() + tail
}

/// `Σ_{n, …} x[n, c, …]` → (C,).
struct ChannelSum;

/// The kernels, given (N, C, plane).
struct Sum((usize, usize, usize));
struct Dot((usize, usize, usize));
/// Given (C, plane).
struct Affine(usize, usize);

impl Kernel1 for Sum {
    fn run<T: WithDType>(&self, x: &[T]) -> Result<Vec<T>> {
        let (n, c, plane) = self.0;
        Ok(reduce_planes(n, c, plane, |start| {
            lane_sum(&x[start..start + plane], |v| v.to_f64())
        }))
    }
}

impl Kernel2 for Dot {
    fn run<T: WithDType>(&self, x: &[T], y: &[T]) -> Result<Vec<T>> {
        let (n, c, plane) = self.0;
        Ok(reduce_planes(n, c, plane, |start| {
            let (xs, ys) = (&x[start..start + plane], &y[start..start + plane]);
            lane_sum2(xs, ys, |a, b| a.to_f64() * b.to_f64())
        }))
    }
}

impl Kernel3 for Affine {
    fn run<T: WithDType>(&self, x: &[T], a: &[T], b: &[T]) -> Result<Vec<T>> {
        let (c, plane) = (self.0, self.1);
        if plane == 0 || c == 0 {
            return Ok(Vec::new());
        }
        // SAFETY: chunk i is plane i of the output, zipped with plane i of `x` (same length).
        let y = unsafe {
            filled_vec(x.len(), plane, on_pool(x.len(), PARALLEL_MIN), |i, yp| {
                let (s, t) = (a[i % c], b[i % c]);
                for (o, &v) in yp.iter_mut().zip(&x[i * plane..(i + 1) * plane]) {
                    o.write(v * s + t);
                }
            })
        };
        Ok(y)
    }
}

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "channel-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let planes = channel_dims(l.shape(), self.name())?;
        Ok((dispatch1(&Sum(planes), self.name(), s, l)?, planes.1.into()))
    }

    /// The adjoint of the sum: each channel's gradient broadcast back over its planes (a broadcast view;
    /// candle's gradient accumulation reads it in place, a copy cost a full pass).
    fn bwd(&self, x: &Tensor, _res: &Tensor, q: &Tensor) -> Result<Option<Tensor>> {
        let mut shape = vec![1; x.rank()];
        shape[1] = q.dims1()?;
        Ok(Some(q.reshape(shape)?.broadcast_as(x.shape())?))
    }
}

/// `Σ_{n, …} x·y` → (C,).
struct ChannelDot;

impl CustomOp2 for ChannelDot {
    fn name(&self) -> &'static str {
        "channel-dot"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        same_shape(self.name(), l1, l2)?;
        let planes = channel_dims(l1.shape(), self.name())?;
        let out = dispatch2(&Dot(planes), self.name(), (s1, l1), (s2, l2))?;
        Ok((out, planes.1.into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        y: &Tensor,
        _res: &Tensor,
        q: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = grad_for(x, || channel_scale(y, q))?;
        let dy = grad_for(y, || channel_scale(x, q))?;
        Ok((dx, dy))
    }
}

/// `x·a[c] + b[c]`.
struct ChannelAffine;

impl CustomOp3 for ChannelAffine {
    fn name(&self) -> &'static str {
        "channel-affine"
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
        let (_n, c, plane) = channel_dims(l1.shape(), self.name())?;
        if l2.shape().elem_count() != c || l3.shape().elem_count() != c {
            bail!(
                "{}: scale {:?} and shift {:?} must have {c} entries",
                self.name(),
                l2.shape(),
                l3.shape()
            );
        }
        let out = dispatch3(&Affine(c, plane), self.name(), (s1, l1), (s2, l2), (s3, l3))?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        h: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = grad_for(x, || channel_scale(h, a))?;
        let da = grad_for(a, || channel_dot(h, x))?;
        let db = grad_for(b, || channel_sum(h))?;
        Ok((dx, da, db))
    }
}

/// `Σ_{n, …} x[n, c, …]` of an (N, C, …) tensor → (C,). CPU, f32/f64.
pub fn channel_sum(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(ChannelSum)
}

/// `Σ_{n, …} x·y` per channel of two (N, C, …) tensors of one shape → (C,). CPU, f32/f64.
pub fn channel_dot(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&y.contiguous()?, ChannelDot)
}

/// `x·a[c] + b[c]` for an (N, C, …) tensor and (C,) tensors `a`, `b`. CPU, f32/f64.
pub fn channel_affine(x: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(&a.contiguous()?, &b.contiguous()?, ChannelAffine)
}

/// `x·a[c]`.
pub fn channel_scale(x: &Tensor, a: &Tensor) -> Result<Tensor> {
    channel_affine(x, a, &a.zeros_like()?)
}

/// `x + b[c]`.
pub fn channel_shift(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    channel_affine(x, &b.ones_like()?, b)
}
