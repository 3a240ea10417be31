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

use super::{Kernel1, Kernel2, dispatch1, dispatch2, filled_vec, grad_for, on_pool};
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType, bail,
};

/// Element count above which a pass is split over the rayon pool.
const PARALLEL_MIN: usize = 1 << 15;

/// Sizes of one pooling: input planes of h × w (n·c of them), k × k windows, ho × wo outputs; with
/// `relu`, the pooling of `max(x, 0)` (see [`relu_max_pool2d`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PoolGeometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    ho: usize,
    wo: usize,
    relu: bool,
}

impl PoolGeometry {
    pub(super) fn new(dims: (usize, usize, usize, usize), k: usize) -> Result<Self> {
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
            relu: false,
        })
    }

    /// The same pooling of `max(x, 0)`. ReLU is nondecreasing, so `pool(relu(x)) = relu(pool(x))`: the
    /// window maximum `m` is floored at zero, and a window passes its gradient on only where `m ≥ 0` —
    /// to the elements equal to `m`. That is what ReLU's mask (`x ≥ 0`, candle's convention) applied after
    /// the pool's scatter gives for finite inputs: for `m > 0` the maxima are the same elements; for
    /// `m = 0` every element of `relu(x)` ties but the mask keeps only those with `x = 0 = m`; for `m < 0`
    /// the mask keeps none.
    pub(super) fn with_relu(self) -> Self {
        Self { relu: true, ..self }
    }

    /// The pooled output's shape.
    pub(super) fn out_dims(&self) -> (usize, usize, usize, usize) {
        (self.n, self.c, self.ho, self.wo)
    }

    /// A window maximum as the output holds it: floored at zero with `relu`.
    #[inline(always)]
    fn out_value<T: WithDType>(&self, m: T) -> T {
        if !self.relu || m > T::zero() {
            m
        } else {
            T::zero()
        }
    }

    /// Whether a window with maximum `m` passes its gradient on (always without `relu`).
    #[inline(always)]
    fn passes<T: WithDType>(&self, m: T) -> bool {
        !self.relu || m >= T::zero()
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

    /// Whether a pass over `len` elements goes to the rayon pool.
    fn parallel(len: usize) -> bool {
        on_pool(len, PARALLEL_MIN)
    }

    /// `pool`, `scatter` and `gather` with the window side known at compile time for the common 2 and 3:
    /// a window's loops unroll and its compares become selects (the branchy generic loop mispredicted on
    /// every tie test and took ≈ 17 % of a LeNet step).
    pub(super) fn pool<T: WithDType>(&self, x: &[T]) -> Vec<T> {
        match self.k {
            1 => self.pool_k(Fixed::<1>, x),
            2 => self.pool_k(Fixed::<2>, x),
            3 => self.pool_k(Fixed::<3>, x),
            k => self.pool_k(Any(k), x),
        }
    }

    fn scatter<T: WithDType>(&self, x: &[T], h: &[T]) -> Vec<T> {
        match self.k {
            1 => self.scatter_k(Fixed::<1>, x, h),
            2 => self.scatter_k(Fixed::<2>, x, h),
            3 => self.scatter_k(Fixed::<3>, x, h),
            k => self.scatter_k(Any(k), x, h),
        }
    }

    fn gather<T: WithDType>(&self, x: &[T], q: &[T]) -> Vec<T> {
        match self.k {
            1 => self.gather_k(Fixed::<1>, x, q),
            2 => self.gather_k(Fixed::<2>, x, q),
            3 => self.gather_k(Fixed::<3>, x, q),
            k => self.gather_k(Any(k), x, q),
        }
    }

    /// The first index of window `o` of a plane; element (di, dj) of the window is at `base + di·w + dj`.
    #[inline(always)]
    fn window_base(&self, k: usize, o: usize) -> usize {
        (o / self.wo) * k * self.w + (o % self.wo) * k
    }

    fn pool_k<T: WithDType>(&self, side: impl Side, x: &[T]) -> Vec<T> {
        let (xp, yp, w) = (self.x_plane(), self.y_plane(), self.w);
        // SAFETY: every output index 0..y_plane of the plane is written once.
        unsafe {
            filled_vec(self.planes() * yp, yp, Self::parallel(x.len()), |i, out| {
                let xs = &x[i * xp..(i + 1) * xp];
                let k = side.get();
                for (o, u) in out.iter_mut().enumerate() {
                    u.write(self.out_value(window_max(xs, self.window_base(k, o), w, k)));
                }
            })
        }
    }

    fn scatter_k<T: WithDType>(&self, side: impl Side, x: &[T], h: &[T]) -> Vec<T> {
        let (xp, yp, w) = (self.x_plane(), self.y_plane(), self.w);
        let (rows, cols) = (self.ho * self.k, self.wo * self.k);
        // SAFETY: the windows tile rows 0..ho·k × columns 0..wo·k of the plane; each of their elements
        // is written once below, and the rest of the plane (the floor-mode remainder) is written as zero.
        unsafe {
            filled_vec(x.len(), xp, Self::parallel(x.len()), |i, zp| {
                let (xs, hs) = (&x[i * xp..(i + 1) * xp], &h[i * yp..(i + 1) * yp]);
                let k = side.get();
                for (o, &hv) in hs.iter().enumerate() {
                    let base = self.window_base(k, o);
                    let m = window_max(xs, base, w, k);
                    let hv = if self.passes(m) { hv } else { T::zero() };
                    for di in 0..k {
                        let row = base + di * w;
                        for (z, &xv) in zp[row..row + k].iter_mut().zip(&xs[row..row + k]) {
                            z.write(if xv == m { hv } else { T::zero() });
                        }
                    }
                }
                for r in 0..self.h {
                    let from = if r < rows { r * w + cols } else { r * w };
                    for z in &mut zp[from..(r + 1) * w] {
                        z.write(T::zero());
                    }
                }
            })
        }
    }

    fn gather_k<T: WithDType>(&self, side: impl Side, x: &[T], q: &[T]) -> Vec<T> {
        let (xp, yp, w) = (self.x_plane(), self.y_plane(), self.w);
        // SAFETY: every output index 0..y_plane of the plane is written once.
        unsafe {
            filled_vec(self.planes() * yp, yp, Self::parallel(x.len()), |i, up| {
                let (xs, qs) = (&x[i * xp..(i + 1) * xp], &q[i * xp..(i + 1) * xp]);
                let k = side.get();
                for (o, u) in up.iter_mut().enumerate() {
                    let base = self.window_base(k, o);
                    let m = window_max(xs, base, w, k);
                    // Adding +0 for the other elements leaves the sum's bits as summing the maxima alone.
                    let mut acc = T::zero();
                    for di in 0..k {
                        let row = base + di * w;
                        for (&qv, &xv) in qs[row..row + k].iter().zip(&xs[row..row + k]) {
                            acc += if xv == m { qv } else { T::zero() };
                        }
                    }
                    u.write(if self.passes(m) { acc } else { T::zero() });
                }
            })
        }
    }
}

/// A window side, constant (`Fixed`) where the compiler should specialise the loops.
trait Side: Copy + Sync {
    fn get(self) -> usize;
}

#[derive(Clone, Copy)]
struct Fixed<const K: usize>;

impl<const K: usize> Side for Fixed<K> {
    #[inline(always)]
    fn get(self) -> usize {
        K
    }
}

#[derive(Clone, Copy)]
struct Any(usize);

impl Side for Any {
    #[inline(always)]
    fn get(self) -> usize {
        self.0
    }
}

/// The maximum of the k×k window at `base` of a plane of width `w`, scanned row by row with `>` (so a
/// NaN counts only where it leads the window, as in the loop this replaced).
#[inline(always)]
fn window_max<T: WithDType>(x: &[T], base: usize, w: usize, k: usize) -> T {
    let mut m = x[base];
    for di in 0..k {
        for &v in &x[base + di * w..base + di * w + k] {
            m = if v > m { v } else { m };
        }
    }
    m
}

/// `y = pool(x)`.
struct MaxPool(PoolGeometry);

/// `scatter(x, h)` (`gather: false`) or `gather(x, q)` (`gather: true`).
pub(super) struct MaxPoolRoute {
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
        if self.0.relu {
            "relu-max-pool2d-fused"
        } else {
            "max-pool2d-fused"
        }
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
    pub(super) fn apply(
        geom: PoolGeometry,
        gather: bool,
        x: &Tensor,
        t: &Tensor,
    ) -> Result<Tensor> {
        x.contiguous()?
            .apply_op2(&t.contiguous()?, MaxPoolRoute { geom, gather })
    }
}

impl CustomOp2 for MaxPoolRoute {
    fn name(&self) -> &'static str {
        match (self.gather, self.geom.relu) {
            (true, false) => "max-pool2d-gather",
            (false, false) => "max-pool2d-scatter",
            (true, true) => "relu-max-pool2d-gather",
            (false, true) => "relu-max-pool2d-scatter",
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
    require_fast_path("ops::max_pool2d", x)?;
    let geom = PoolGeometry::new(x.dims4()?, k)?;
    x.contiguous()?.apply_op1(MaxPool(geom))
}

/// `max_pool2d(relu(x), k)` as one fused op (CPU, f32 or f64; an error elsewhere, like [`max_pool2d`]):
/// the same values and, for finite inputs, the same gradients as the two ops in sequence, with one pass
/// each way instead of two and no ReLU output in the graph.
pub fn relu_max_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    require_fast_path("ops::relu_max_pool2d", x)?;
    let geom = PoolGeometry::new(x.dims4()?, k)?.with_relu();
    x.contiguous()?.apply_op1(MaxPool(geom))
}

/// An error naming `op` unless `x` can take the fused kernels (f32 or f64 on the CPU).
fn require_fast_path(op: &str, x: &Tensor) -> Result<()> {
    if !uses_fast_max_pool2d(x) {
        bail!(
            "{op}: needs an f32 or f64 tensor on the CPU, got {:?} on {:?}",
            x.dtype(),
            x.device().location()
        );
    }
    Ok(())
}
