//! Max pool with a k×k window and stride k (PyTorch floor mode) on the CPU as one fused pass, with a
//! backward that scatters the gradient to the window maxima — the same values, gradients and tie
//! convention as the reshape + `max` form of [`crate::layers::max_pool2d`], in one pass instead of
//! two reductions and their broadcast/compare/multiply backward.
//!
//! Three custom ops, closed under differentiation like the convolution's:
//! * `y = pool(x)`: `y[.., i, j] = max of the window (i, j)`;
//! * `z = scatter(x, h)` (x-shaped): `z[e] = h[window(e)]` where `x[e]` equals its window's maximum, else 0
//!   — the backward of `pool` with respect to `x`;
//! * `u = gather(x, q)` (y-shaped): `u[w] = Σ_{e ∈ w, x[e] = max w} q[e]` — the adjoint of `scatter` in `h`.
//!
//! Ties: every element equal to its window's maximum receives the full gradient (candle's `max` backward,
//! candle-pitfalls.md §2.1), so [`crate::layers::max_pool2d`] gives bit-identical results on either path
//! and the frozen-mask Jacobians of the adversarial crate stay the exact adjoints. As functions of `x`,
//! `scatter` and `gather` are piecewise constant: their `x`-gradient is zero.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use nn_core::ops::max_pool2d;
//!
//! let x = Var::new(&[[[[1f32, 2.], [3., 4.]]]], &Device::Cpu)?;
//! let y = max_pool2d(x.as_tensor(), 2)?;
//! let g = y.sum_all()?.backward()?;
//! assert_eq!(g.get(x.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?, vec![0., 0., 0., 1.]);
//! # Ok::<(), candle_core::Error>(())
//! ```

use super::{
    Kernel1, Kernel2, dispatch1, dispatch2, filled_vec, for_each_chunk_mut, grad_for, on_pool,
};
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType, bail,
};

/// Element count above which a pass is split over the rayon pool.
const PARALLEL_MIN: usize = 1 << 15;

/// Sizes of one pooling: input planes of h × w (n·c of them), k × k windows, ho × wo outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PoolGeometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    ho: usize,
    wo: usize,
}

impl PoolGeometry {
    fn new(dims: (usize, usize, usize, usize), k: usize) -> Result<Self> {
        let (n, c, h, w) = dims;
        if k == 0 {
            bail!("max_pool2d: kernel size must be at least 1");
        }
        if h < k || w < k {
            bail!("max_pool2d: input {h}x{w} is smaller than the {k}x{k} kernel");
        }
        Ok(Self {
            n,
            c,
            h,
            w,
            k,
            ho: h / k,
            wo: w / k,
        })
    }

    fn x_plane(&self) -> usize {
        self.h * self.w
    }
    fn y_plane(&self) -> usize {
        self.ho * self.wo
    }
    fn planes(&self) -> usize {
        self.n * self.c
    }

    /// Calls `f(output_index, window_base, window_max)` for each window of one plane; element (di, dj)
    /// of a window is at `window_base + di·w + dj`.
    #[inline(always)]
    fn for_each_window<T: WithDType>(&self, x: &[T], mut f: impl FnMut(usize, usize, T)) {
        let (k, w) = (self.k, self.w);
        for i in 0..self.ho {
            for j in 0..self.wo {
                let base = i * k * w + j * k;
                let mut m = x[base];
                for di in 0..k {
                    for &v in &x[base + di * w..base + di * w + k] {
                        if v > m {
                            m = v;
                        }
                    }
                }
                f(i * self.wo + j, base, m);
            }
        }
    }

    /// Whether a pass over `len` elements goes to the rayon pool.
    fn parallel(len: usize) -> bool {
        on_pool(len, PARALLEL_MIN)
    }

    fn pool<T: WithDType>(&self, x: &[T]) -> Vec<T> {
        let (xp, yp) = (self.x_plane(), self.y_plane());
        // SAFETY: `for_each_window` visits every output index 0..y_plane of the plane once.
        unsafe {
            filled_vec(self.planes() * yp, yp, Self::parallel(x.len()), |i, out| {
                self.for_each_window(&x[i * xp..(i + 1) * xp], |o, _, m| {
                    out[o].write(m);
                })
            })
        }
    }

    fn scatter<T: WithDType>(&self, x: &[T], h: &[T]) -> Vec<T> {
        let (k, w) = (self.k, self.w);
        let (xp, yp) = (self.x_plane(), self.y_plane());
        let mut z = vec![T::zero(); x.len()];
        for_each_chunk_mut(&mut z, xp, Self::parallel(x.len()), |i, zp| {
            let (xs, hs) = (&x[i * xp..(i + 1) * xp], &h[i * yp..(i + 1) * yp]);
            self.for_each_window(xs, |o, base, m| {
                for di in 0..k {
                    let row = base + di * w;
                    for (zv, &xv) in zp[row..row + k].iter_mut().zip(&xs[row..row + k]) {
                        if xv == m {
                            *zv = hs[o];
                        }
                    }
                }
            })
        });
        z
    }

    fn gather<T: WithDType>(&self, x: &[T], q: &[T]) -> Vec<T> {
        let (k, w) = (self.k, self.w);
        let (xp, yp) = (self.x_plane(), self.y_plane());
        // SAFETY: as in `pool`, every output index of the plane is visited once.
        unsafe {
            filled_vec(self.planes() * yp, yp, Self::parallel(x.len()), |i, up| {
                let (xs, qs) = (&x[i * xp..(i + 1) * xp], &q[i * xp..(i + 1) * xp]);
                self.for_each_window(xs, |o, base, m| {
                    let mut acc = T::zero();
                    for di in 0..k {
                        let row = base + di * w;
                        for (&qv, &xv) in qs[row..row + k].iter().zip(&xs[row..row + k]) {
                            if xv == m {
                                acc += qv;
                            }
                        }
                    }
                    up[o].write(acc);
                })
            })
        }
    }
}

/// `y = pool(x)`.
struct MaxPool(PoolGeometry);

/// `scatter(x, h)` (`gather: false`) or `gather(x, q)` (`gather: true`).
struct MaxPoolRoute {
    geom: PoolGeometry,
    gather: bool,
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        bail!("{what}: operand holds {got} values, the geometry needs {want}");
    }
    Ok(())
}

impl Kernel1 for MaxPool {
    fn run<T: WithDType>(&self, x: &[T]) -> Result<Vec<T>> {
        let g = &self.0;
        check_len("max-pool2d-fused", x.len(), g.planes() * g.x_plane())?;
        Ok(g.pool(x))
    }
}

impl Kernel2 for MaxPoolRoute {
    fn run<T: WithDType>(&self, x: &[T], t: &[T]) -> Result<Vec<T>> {
        let g = &self.geom;
        let (xl, yl) = (g.planes() * g.x_plane(), g.planes() * g.y_plane());
        check_len("max-pool2d route", x.len(), xl)?;
        if self.gather {
            check_len("max-pool2d-gather", t.len(), xl)?;
            Ok(g.gather(x, t))
        } else {
            check_len("max-pool2d-scatter", t.len(), yl)?;
            Ok(g.scatter(x, t))
        }
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max-pool2d-fused"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        Ok((
            dispatch1(self, self.name(), s, l)?,
            (g.n, g.c, g.ho, g.wo).into(),
        ))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, h: &Tensor) -> Result<Option<Tensor>> {
        MaxPoolRoute::apply(self.0, false, x, h).map(Some)
    }
}

impl MaxPoolRoute {
    fn apply(geom: PoolGeometry, gather: bool, x: &Tensor, t: &Tensor) -> Result<Tensor> {
        x.contiguous()?
            .apply_op2(&t.contiguous()?, MaxPoolRoute { geom, gather })
    }
}

impl CustomOp2 for MaxPoolRoute {
    fn name(&self) -> &'static str {
        if self.gather {
            "max-pool2d-gather"
        } else {
            "max-pool2d-scatter"
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.geom;
        let out = dispatch2(self, self.name(), (s1, l1), (s2, l2))?;
        let shape: Shape = if self.gather {
            (g.n, g.c, g.ho, g.wo).into()
        } else {
            (g.n, g.c, g.h, g.w).into()
        };
        Ok((out, shape))
    }

    /// `scatter` is linear in `h` with adjoint `gather` (and vice versa); both are piecewise constant in
    /// `x`, whose gradient is therefore zero. (candle's backward needs a gradient for every operand that
    /// is part of the graph, so it is an explicit zero tensor, not `None`.)
    fn bwd(
        &self,
        x: &Tensor,
        t: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = grad_for(x, || x.zeros_like())?;
        let dt = grad_for(t, || MaxPoolRoute::apply(self.geom, !self.gather, x, grad))?;
        Ok((dx, dt))
    }
}

/// Whether [`max_pool2d`] takes the fused path for `x` (CPU, f32 or f64).
pub fn uses_fast_max_pool2d(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// Fused k×k / stride-k max pool of `x` (N, C, H, W) → (N, C, ⌊H/k⌋, ⌊W/k⌋) on the CPU in f32/f64 (an
/// error for other devices and dtypes: call [`crate::layers::max_pool2d`], which chooses).
pub fn max_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    if !uses_fast_max_pool2d(x) {
        bail!(
            "ops::max_pool2d: needs an f32 or f64 tensor on the CPU, got {:?} on {:?}",
            x.dtype(),
            x.device().location()
        );
    }
    let geom = PoolGeometry::new(x.dims4()?, k)?;
    x.contiguous()?.apply_op1(MaxPool(geom))
}
