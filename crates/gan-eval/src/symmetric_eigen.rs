//! Eigenvalues (values only) of a dense symmetric matrix by two-stage tridiagonalisation, the route FID
//! takes for `Lᵀ Σ_b L`.
//!
//! A one-stage Householder tridiagonalisation (LAPACK `dsytrd`, faer's `tridiag_in_place`) spends half its
//! 4/3·d³ flops in matrix–vector products that stream the whole trailing matrix from memory once per
//! column: at d = 2,048 (32 MB) it runs at a quarter of GEMM speed and barely gains from a second thread.
//! The two-stage scheme (Bischof, Lang & Sun's SBR; LAPACK `dsytrd_2stage`) splits it:
//!
//! 1. **Dense → band** of half-bandwidth `b`: for each panel of `b` columns, a Householder QR of the part
//!    below the band, then the two-sided update `A ← QᵀAQ` of the trailing matrix as matrix–matrix products
//!    (`Q = I − V T Vᵀ`; `X = A V T`, `W = X − ½ V (TᵀVᵀX)`, `A −= V Wᵀ + W Vᵀ`), reading the trailing
//!    matrix twice per `b` columns instead of once per column: `X` in one pass over its lower triangle
//!    ([`symmetric_times`]), the update as one triangular product of inner dimension `2b`.
//! 2. **Band → tridiagonal** by bulge chasing: sweep `j` annihilates column `j` below the subdiagonal with
//!    one reflector of length `b`, which fills a `b × b` block below the band; the next reflector
//!    annihilates that block's first column, and so on down the matrix (the rest of each bulge is
//!    annihilated by the following sweeps). It works on a compact copy of the band, `(2b + 1) × d`, that
//!    stays in cache, compiled for AVX2/FMA where the CPU has them (pulp's run-time dispatch). On several
//!    threads the sweeps are pipelined, each a few steps behind the previous one, with the same result
//!    bit for bit ([`Band::chase_to_tridiagonal`]).
//!
//! The tridiagonal eigenvalues then come from the Pal–Walker–Kahan (root-free) QL/QR iteration, as
//! LAPACK's `dsterf`. All transformations are orthogonal similarities, so the eigenvalues are those of
//! the input to backward-stable rounding, as with the one-stage route; the tests compare them with faer's
//! solver.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{BlockStructure, matmul as tri_matmul};
use faer::reborrow::{Reborrow, ReborrowMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use faer::{Accum, Mat, MatMut, MatRef, Par};

/// Half-bandwidth of the first stage: wide enough for the panel products to run near GEMM speed, narrow
/// enough for the bulge chasing (≈ 6·d²·b flops) to stay small. At d = 2,048, 16, 24 and 32 were within
/// a few per cent of each other, 24 ahead on 1 and 2 threads; 48 and 64 were slower. A multiple of 8 (see
/// [`dot`]).
const BAND: usize = 24;
const _: () = assert!(BAND.is_multiple_of(8));

const SYMM_BLOCK: usize = 64;

/// The eigenvalues (unordered) of the symmetric matrix whose lower triangle `a` holds; `a` is overwritten.
/// Fails only if the tridiagonal QL/QR iteration does not converge (30·d iterations, as LAPACK).
pub(crate) fn symmetric_eigenvalues(mut a: MatMut<'_, f64>, par: Par) -> Result<Vec<f64>, String> {
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "square matrix");
    if n == 0 {
        return Ok(Vec::new());
    }
    let b = BAND.min(n - 1).max(1);
    reduce_to_band(a.rb_mut(), b, par);
    let mut band = Band::from_lower(a.rb(), b);
    band.chase_to_tridiagonal(par.degree());
    let (mut d, mut e) = band.tridiagonal();
    tridiagonal_eigenvalues(&mut d, &mut e)?;
    Ok(d)
}

/// Stage 2's sweeps inside pulp's target-feature context (AVX2/FMA where the CPU has them): `with_simd`
/// and everything it calls are `inline(always)`, so they compile with those features. (A closure given to
/// `dispatch` is not inlined there and compiles for the baseline CPU.) One thread, on the band itself.
struct Chase<'a>(&'a mut Band);

impl pulp::WithSimd for Chase<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let (n, b) = (self.0.n, self.0.b);
        let mut work = StepWork::new(b);
        for j in 0..n.saturating_sub(2) {
            for (k, step) in Sweep::new(j, n, b).enumerate() {
                chase_step(self.0, n, b, step, k == 0, &mut work);
            }
        }
    }
}

/// One thread's share of the pipelined chase (see [`Band::chase_to_tridiagonal`]): of every sweep `j`,
/// the steps whose first column lies in the `thread`-th of `threads` equal parts of `j..n`.
struct ChaseShare<'a> {
    shared: &'a SharedBand,
    thread: usize,
    threads: usize,
}

impl pulp::WithSimd for ChaseShare<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let sh = self.shared;
        let mut work = StepWork::new(sh.b);
        for j in 0..sh.n - 2 {
            let cut = |t: usize| j + (sh.n - j) * t / self.threads;
            let (start, end) = (cut(self.thread), cut(self.thread + 1));
            let mut steps = Sweep::new(j, sh.n, sh.b).enumerate().peekable();
            while let Some((k, step)) = steps.next() {
                if step.0 < start {
                    continue;
                }
                if step.0 >= end {
                    break;
                }
                // This sweep's earlier steps (another thread's), and the previous sweep far enough
                // ahead.
                sh.wait_for(j, k);
                if j > 0 {
                    sh.wait_for(j - 1, k + LAG);
                }
                let mut window = sh.lock(step.0, step.2);
                chase_step(&mut window, sh.n, sh.b, step, k == 0, &mut work);
                drop(window);
                let finished = if steps.peek().is_some() {
                    k + 1
                } else {
                    usize::MAX
                };
                sh.done[j].store(finished, Ordering::Release);
            }
        }
    }
}

/// [`panel_qr`] in the same context.
struct PanelQr<'a> {
    panel: MatMut<'a, f64>,
    r: usize,
    v: MatMut<'a, f64>,
}

impl pulp::WithSimd for PanelQr<'_> {
    type Output = [f64; BAND];

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> [f64; BAND] {
        panel_qr(self.panel, self.r, self.v)
    }
}

/// `Σ xᵢ yᵢ` over the shorter length, in eight interleaved partial sums: the compiler keeps them in
/// vector registers, where a single running sum (a chain of dependent additions) cannot be vectorised.
/// Most of the chase's columns have exactly `BAND` entries: for them a fixed-length copy of the same sums
/// compiles without loop tails (≈ 9 % of the chase), with the same result.
#[inline(always)]
fn dot(x: &[f64], y: &[f64]) -> f64 {
    if let (Ok(x), Ok(y)) = (<&[f64; BAND]>::try_from(x), <&[f64; BAND]>::try_from(y)) {
        let mut acc = [0.0f64; 8];
        for c in 0..BAND / 8 {
            for l in 0..8 {
                acc[l] += x[8 * c + l] * y[8 * c + l];
            }
        }
        return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    }
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let (xs, ys) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: f64 = xs
        .remainder()
        .iter()
        .zip(ys.remainder())
        .map(|(a, b)| a * b)
        .sum();
    let mut acc = [0.0f64; 8];
    for (a, b) in xs.zip(ys) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `y ← y + α x` over the shorter length (with a fixed-length path for `BAND` entries, as [`dot`]).
#[inline(always)]
fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    if let (Ok(x), Ok(y)) = (
        <&[f64; BAND]>::try_from(x),
        <&mut [f64; BAND]>::try_from(&mut *y),
    ) {
        // Indexed, not zipped: over fixed-length arrays this compiles to straight-line vector code,
        // the zipped form did not (0.071 against 0.097 s for the one-thread chase at d = 2,048).
        #[allow(clippy::needless_range_loop)]
        for l in 0..BAND {
            y[l] += alpha * x[l];
        }
        return;
    }
    y.iter_mut().zip(x).for_each(|(y, x)| *y += alpha * x);
}

/// A reflector `H = I − τ v vᵀ` (`v[0] = 1`) with `H x = β e₁`, from `x` (LAPACK's `dlarfg`). On return
/// `x[0] = β` and `x[1..]` holds `v[1..]`; returns `τ` (0 when `x[1..]` is already zero: `H = I`).
#[inline(always)]
fn make_reflector(x: &mut [f64]) -> f64 {
    let (alpha, rest) = x.split_first_mut().expect("non-empty");
    let norm = dot(rest, rest).sqrt();
    if norm == 0.0 {
        return 0.0;
    }
    let beta = -alpha.hypot(norm).copysign(*alpha);
    let tau = (beta - *alpha) / beta;
    let scale = 1.0 / (*alpha - beta);
    rest.iter_mut().for_each(|v| *v *= scale);
    *alpha = beta;
    tau
}

/// Stage 1: `a` (lower triangle) to a symmetric band of half-bandwidth `b` by orthogonal similarity. On
/// return the lower triangle holds the band and zeros below it.
fn reduce_to_band(mut a: MatMut<'_, f64>, b: usize, par: Par) {
    let n = a.nrows();
    // Workspaces sized for the first (largest) panel and reused: fresh ones of a few MB per panel cost
    // page faults on every panel.
    let rows = n.saturating_sub(b);
    let mut work = PanelWork {
        panel: Mat::zeros(rows, b),
        vw: Mat::zeros(rows, 2 * b),
        wv: Mat::zeros(rows, 2 * b),
        y: Mat::zeros(rows, b),
        t: Mat::zeros(b, b),
        yx: Mat::zeros(b, b),
    };
    let mut k = 0;
    // A panel of a single row is already inside the band.
    while n >= k + b + 2 {
        let m = n - k - b;
        let r = b.min(m - 1);
        let mut panel = work.panel.as_mut().submatrix_mut(0, 0, m, b);
        panel.copy_from(a.rb().submatrix(k + b, k, m, b));
        let mut v = work.vw.as_mut().submatrix_mut(0, 0, m, r);
        let tau = pulp::Arch::new().dispatch(PanelQr {
            panel: panel.rb_mut(),
            r,
            v: v.rb_mut(),
        });
        let mut gram = work.yx.as_mut().submatrix_mut(0, 0, r, r);
        matmul(
            gram.rb_mut(),
            Accum::Replace,
            v.rb().transpose(),
            v.rb(),
            1.0,
            Par::Seq,
        );
        block_reflector_t(
            work.t.as_mut().submatrix_mut(0, 0, r, r),
            &tau[..r],
            gram.rb(),
        );
        // R into the band, zeros below it.
        let mut below = a.rb_mut().submatrix_mut(k + b, k, m, b);
        below.fill(0.0);
        for j in 0..b {
            for i in 0..=j.min(m - 1) {
                below[(i, j)] = panel[(i, j)];
            }
        }
        update_trailing(
            a.rb_mut().submatrix_mut(k + b, k + b, m, m),
            &mut work,
            m,
            r,
            par,
        );
        k += b;
    }
}

/// Per-panel workspaces of [`reduce_to_band`]; each panel uses their leading `m × r` parts.
struct PanelWork {
    panel: Mat<f64>,
    /// `[V | W]`: the reflectors, and `X = A V T` turned into `W`.
    vw: Mat<f64>,
    /// `[W | V]`, for `A −= [V W] [W V]ᵀ`.
    wv: Mat<f64>,
    /// `Y = V T`.
    y: Mat<f64>,
    t: Mat<f64>,
    yx: Mat<f64>,
}

/// Column `j` of a column-major view (the workspaces' submatrices) as a slice.
#[inline(always)]
fn column(m: MatRef<'_, f64>, j: usize) -> &[f64] {
    m.col(j)
        .try_as_col_major()
        .expect("unit row stride")
        .as_slice()
}

#[inline(always)]
fn column_mut(m: MatMut<'_, f64>, j: usize) -> &mut [f64] {
    m.col_mut(j)
        .try_as_col_major_mut()
        .expect("unit row stride")
        .as_slice_mut()
}

/// Householder QR of the `m × b` `panel` (its first `r` columns' reflectors, LAPACK's `dgeqr2`): on return
/// the panel's upper triangle holds R and `v` the reflectors (unit lower trapezoidal, zeros above); returns
/// their `τ`.
#[inline(always)]
fn panel_qr(mut panel: MatMut<'_, f64>, r: usize, mut v: MatMut<'_, f64>) -> [f64; BAND] {
    let b = panel.ncols();
    let mut tau = [0.0f64; BAND];
    for c in 0..r {
        let tc = make_reflector(&mut column_mut(panel.rb_mut(), c)[c..]);
        tau[c] = tc;
        let vcol = column_mut(v.rb_mut(), c);
        vcol[..c].fill(0.0);
        vcol[c] = 1.0;
        vcol[c + 1..].copy_from_slice(&column(panel.rb(), c)[c + 1..]);
        let vc = &column(v.rb(), c)[c..];
        for j in c + 1..b {
            let col = &mut column_mut(panel.rb_mut(), j)[c..];
            let s = dot(col, vc);
            axpy(-tc * s, vc, col);
        }
    }
    tau
}

/// `T` (upper triangular, `r × r`) with `H_0 ⋯ H_{r−1} = I − V T Vᵀ` from the reflectors' `τ` and their
/// Gram matrix `G = VᵀV` (LAPACK's `dlarft`, forward, with the inner products from one GEMM): column by
/// column, `T[..i, i] = −τ_i T[..i, ..i] G[..i, i]`.
fn block_reflector_t(mut t: MatMut<'_, f64>, tau: &[f64], gram: MatRef<'_, f64>) {
    for (i, &tau_i) in tau.iter().enumerate() {
        t[(i, i)] = tau_i;
        for row in 0..i {
            t[(row, i)] = -tau_i * (row..i).map(|c| t[(row, c)] * gram[(c, i)]).sum::<f64>();
        }
    }
}

/// `A ← Qᵀ A Q` for the symmetric `a` (lower triangle read and written) and `Q = I − V T Vᵀ`, with `V` and
/// `T` in `work` (`m × r` and `r × r`).
fn update_trailing(mut a: MatMut<'_, f64>, work: &mut PanelWork, m: usize, r: usize, par: Par) {
    let (v, mut x) = work
        .vw
        .as_mut()
        .submatrix_mut(0, 0, m, 2 * r)
        .split_at_col_mut(r);
    let mut y = work.y.as_mut().submatrix_mut(0, 0, m, r);
    let t = work.t.as_ref().submatrix(0, 0, r, r);
    matmul(y.rb_mut(), Accum::Replace, v.rb(), t, 1.0, par);
    symmetric_times(x.rb_mut(), a.rb(), y.rb(), par);
    // W = X − ½ V (Yᵀ X); then A −= V Wᵀ + W Vᵀ, lower triangle only, as one product of width 2r.
    let mut yx = work.yx.as_mut().submatrix_mut(0, 0, r, r);
    matmul(
        yx.rb_mut(),
        Accum::Replace,
        y.rb().transpose(),
        x.rb(),
        1.0,
        par,
    );
    matmul(x.rb_mut(), Accum::Add, v.rb(), yx.rb(), -0.5, par);
    let mut wv = work.wv.as_mut().submatrix_mut(0, 0, m, 2 * r);
    wv.rb_mut().subcols_mut(0, r).copy_from(x.rb());
    wv.rb_mut().subcols_mut(r, r).copy_from(v.rb());
    let vw = work.vw.as_ref().submatrix(0, 0, m, 2 * r);
    tri_matmul(
        a.rb_mut(),
        BlockStructure::TriangularLower,
        Accum::Add,
        vw,
        BlockStructure::Rectangular,
        wv.rb().transpose(),
        BlockStructure::Rectangular,
        -1.0,
        par,
    );
}

/// `X = A Y` for the symmetric `a` read from its lower triangle, in one pass over it: each column panel
/// `[A_JJ; R]` of the lower triangle gives `X_J += A_JJ Y_J + Rᵀ Y_below` and `X_below += R Y_J`, the
/// second product reading `R` from cache. (Two triangular products, `tril(A)·Y` and
/// `strict_tril(A)ᵀ·Y`, would stream the triangle from memory twice; with `Y` only `b` columns wide they
/// are bound by that traffic.)
fn symmetric_times(mut x: MatMut<'_, f64>, a: MatRef<'_, f64>, y: MatRef<'_, f64>, par: Par) {
    let m = a.nrows();
    let blocks: Vec<usize> = (0..m).step_by(SYMM_BLOCK).collect();
    let threads = par.degree();
    if threads < 2 || blocks.len() < 2 {
        symmetric_times_blocks(x, a, y, blocks.into_iter());
        return;
    }
    // Thread `t` takes every `threads`-th column panel into a private `X` (the panels shrink down the
    // matrix, so interleaving balances the work); the partial products are then summed.
    use rayon::prelude::*;
    let partial: Vec<Mat<f64>> = (0..threads)
        .into_par_iter()
        .map(|t| {
            let mut xt = Mat::<f64>::zeros(m, y.ncols());
            symmetric_times_blocks(
                xt.as_mut(),
                a,
                y,
                blocks.iter().copied().skip(t).step_by(threads),
            );
            xt
        })
        .collect();
    x.copy_from(&partial[0]);
    for p in &partial[1..] {
        x += p;
    }
}

/// `X += A_panel-terms` for the column panels starting at `starts` (see [`symmetric_times`]), one
/// thread; `x` must start at zero.
fn symmetric_times_blocks(
    mut x: MatMut<'_, f64>,
    a: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    starts: impl Iterator<Item = usize>,
) {
    let m = a.nrows();
    x.fill(0.0);
    for j0 in starts {
        let w = SYMM_BLOCK.min(m - j0);
        let j1 = j0 + w;
        let diag = a.submatrix(j0, j0, w, w);
        let (mut xj, mut xbelow) = x.rb_mut().subrows_mut(j0, m - j0).split_at_row_mut(w);
        let yj = y.subrows(j0, w);
        tri_matmul(
            xj.rb_mut(),
            BlockStructure::Rectangular,
            Accum::Add,
            diag,
            BlockStructure::TriangularLower,
            yj,
            BlockStructure::Rectangular,
            1.0,
            Par::Seq,
        );
        tri_matmul(
            xj.rb_mut(),
            BlockStructure::Rectangular,
            Accum::Add,
            diag.transpose(),
            BlockStructure::StrictTriangularUpper,
            yj,
            BlockStructure::Rectangular,
            1.0,
            Par::Seq,
        );
        if j1 < m {
            let r = a.submatrix(j1, j0, m - j1, w);
            matmul(
                xj.rb_mut(),
                Accum::Add,
                r.transpose(),
                y.subrows(j1, m - j1),
                1.0,
                Par::Seq,
            );
            matmul(xbelow.rb_mut(), Accum::Add, r, yj, 1.0, Par::Seq);
        }
    }
}

/// Column segments of the band (rows `i0..=i1` of column `j`, `0 ≤ i − j ≤ 2b`), from the band itself or
/// from the locked blocks of one step.
trait Columns {
    fn col(&mut self, j: usize, i0: usize, i1: usize) -> &mut [f64];
}

impl Columns for Band {
    #[inline(always)]
    fn col(&mut self, j: usize, i0: usize, i1: usize) -> &mut [f64] {
        let base = j * self.ld;
        &mut self.data[base + i0 - j..=base + i1 - j]
    }
}

/// Steps a sweep waits behind the previous one (see [`Band::chase_to_tridiagonal`]).
const LAG: usize = 3;

/// The band split into blocks of `2^shift ≥ b` columns, each behind a lock, and each sweep's count of
/// finished steps (`usize::MAX` once finished), for the pipelined chase.
struct SharedBand {
    n: usize,
    b: usize,
    ld: usize,
    shift: u32,
    blocks: Vec<Mutex<Vec<f64>>>,
    done: Vec<AtomicUsize>,
}

impl SharedBand {
    /// Waits until sweep `j` has finished `steps` steps (or all of them).
    #[inline(always)]
    fn wait_for(&self, j: usize, steps: usize) {
        let mut spins = 0u32;
        while self.done[j].load(Ordering::Acquire) < steps {
            if spins < 1 << 12 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// The blocks holding columns `c..=r1` (at most three: `r1 − c < 2b`), locked.
    #[inline(always)]
    fn lock(&self, c: usize, r1: usize) -> Window<'_> {
        let first = c >> self.shift;
        let last = r1 >> self.shift;
        let guard = |i: usize| {
            (i <= last).then(|| {
                self.blocks[i]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            })
        };
        Window {
            first,
            shift: self.shift,
            ld: self.ld,
            guards: [guard(first), guard(first + 1), guard(first + 2)],
        }
    }
}

/// The locked blocks of one step of the pipelined chase.
struct Window<'a> {
    first: usize,
    shift: u32,
    ld: usize,
    guards: [Option<MutexGuard<'a, Vec<f64>>>; 3],
}

impl Columns for Window<'_> {
    #[inline(always)]
    fn col(&mut self, j: usize, i0: usize, i1: usize) -> &mut [f64] {
        let block = self.guards[(j >> self.shift) - self.first]
            .as_deref_mut()
            .expect("the step locked every block it touches");
        let base = (j & ((1 << self.shift) - 1)) * self.ld;
        &mut block[base + i0 - j..=base + i1 - j]
    }
}

/// The steps `(c, r0, r1)` of sweep `j`: step 0 annihilates column `j` below the subdiagonal (rows
/// `j + 1..=j + b`), step `k ≥ 1` the first column of the bulge that step `k − 1` created in rows
/// `r0..=r1`.
struct Sweep {
    c: usize,
    r0: usize,
    r1: usize,
    n: usize,
    b: usize,
}

impl Sweep {
    fn new(j: usize, n: usize, b: usize) -> Self {
        Sweep {
            c: j,
            r0: j + 1,
            r1: (j + b).min(n - 1),
            n,
            b,
        }
    }
}

impl Iterator for Sweep {
    type Item = (usize, usize, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.r1 <= self.r0 {
            return None;
        }
        let step = (self.c, self.r0, self.r1);
        self.c = self.r0;
        self.r0 = self.r1 + 1;
        self.r1 = (self.r1 + self.b).min(self.n - 1);
        Some(step)
    }
}

/// A step's scratch vectors (the first `b ≤ BAND` entries used), on the stack.
struct StepWork {
    v: [f64; BAND],
    p: [f64; BAND],
    q: [f64; BAND],
}

impl StepWork {
    fn new(b: usize) -> Self {
        assert!(b <= BAND, "half-bandwidth {b} above BAND");
        StepWork {
            v: [0.0; BAND],
            p: [0.0; BAND],
            q: [0.0; BAND],
        }
    }
}

/// One step `(c, r0, r1)` of a sweep: the reflector that annihilates rows `r0 + 1..=r1` of column `c`,
/// applied from the left to the rest of the bulge's columns (not on a sweep's first step, which has no
/// bulge), from both sides to the diagonal block `r0..=r1`, and from the right to the block below it,
/// where it creates the next bulge.
#[inline(always)]
fn chase_step(
    cols: &mut impl Columns,
    n: usize,
    b: usize,
    (c, r0, r1): (usize, usize, usize),
    first_step: bool,
    work: &mut StepWork,
) {
    let len = r1 - r0 + 1;
    let x = cols.col(c, r0, r1);
    let tau = make_reflector(x);
    work.v[0] = 1.0;
    work.v[1..len].copy_from_slice(&x[1..]);
    x[1..].fill(0.0);
    if tau == 0.0 {
        return;
    }
    let v = &work.v[..len];
    if !first_step {
        for col in c + 1..r0 {
            let s = cols.col(col, r0, r1);
            let d = dot(s, v);
            axpy(-tau * d, v, s);
        }
    }
    two_sided(cols, r0, v, tau, &mut work.p[..len]);
    // The block below, from the right: C ← C − τ (C v) vᵀ.
    let (s0, s1) = (r1 + 1, (r1 + b).min(n - 1));
    if s0 <= s1 {
        let q = &mut work.q[..s1 - s0 + 1];
        q.fill(0.0);
        for (t, &vt) in v.iter().enumerate() {
            axpy(vt, cols.col(r0 + t, s0, s1), q);
        }
        for (t, &vt) in v.iter().enumerate() {
            axpy(-tau * vt, q, cols.col(r0 + t, s0, s1));
        }
    }
}

/// `S ← H S H` for the diagonal block `S` at rows/columns `r0..r0 + v.len()`, `H = I − τ v vᵀ`.
#[inline(always)]
fn two_sided(cols: &mut impl Columns, r0: usize, v: &[f64], tau: f64, p: &mut [f64]) {
    let len = v.len();
    p.fill(0.0);
    // p = τ S v from the lower triangle: column qc adds S[qc.., qc]·v[qc] to p[qc..] and its dot
    // with v[qc + 1..] to p[qc].
    for qc in 0..len {
        let col = cols.col(r0 + qc, r0 + qc, r0 + len - 1);
        let below = dot(&col[1..], &v[qc + 1..]);
        axpy(v[qc], col, &mut p[qc..]);
        p[qc] += below;
    }
    p.iter_mut().for_each(|e| *e *= tau);
    let alpha = -0.5 * tau * dot(p, v);
    axpy(alpha, v, p);
    // S −= v wᵀ + w vᵀ (w = p now), lower triangle.
    for qc in 0..len {
        let (vq, wq) = (v[qc], p[qc]);
        let col = cols.col(r0 + qc, r0 + qc, r0 + len - 1);
        col.iter_mut()
            .zip(&v[qc..])
            .zip(&p[qc..])
            .for_each(|((s, vi), wi)| *s -= vi * wq + wi * vq);
    }
}

/// The lower half of a symmetric band matrix with room for the bulges: element `(i, j)`,
/// `0 ≤ i − j ≤ 2b`, at `data[j·(2b + 1) + i − j]`, so every column segment is contiguous.
struct Band {
    n: usize,
    b: usize,
    ld: usize,
    data: Vec<f64>,
}

impl Band {
    /// The band of half-bandwidth `b` of the lower triangle of `a` (zeros below it are assumed).
    fn from_lower(a: MatRef<'_, f64>, b: usize) -> Self {
        let n = a.nrows();
        let ld = 2 * b + 1;
        let mut data = vec![0.0; ld * n];
        for j in 0..n {
            for i in j..(j + b + 1).min(n) {
                data[j * ld + i - j] = a[(i, j)];
            }
        }
        Band { n, b, ld, data }
    }

    /// Stage 2: bulge chasing down to tridiagonal form (orthogonal similarities only), on `threads`
    /// threads. Step `k` of a sweep touches columns `[c, r₁]`, which meet those of the previous sweep's
    /// steps up to `k + 2` only: it starts once that sweep has finished `k + 3` steps ([`LAG`]) and then
    /// runs beside it. Each sweep is cut into `threads` equal runs of steps, one per thread, so a sweep's
    /// data moves between cores once per cut, not once per step: thread `t` works on the `t`-th run of
    /// sweep `j` while thread `t − 1` works on that of sweep `j + 1`. (Cuts fixed in the matrix would
    /// leave one thread idle while the other finishes its longer runs.) Every entry sees the same
    /// operations in the same order as on one thread: the result does not depend on the thread count.
    fn chase_to_tridiagonal(&mut self, threads: usize) {
        let (n, b, ld) = (self.n, self.b, self.ld);
        if b < 2 || n < 3 {
            return;
        }
        // Below a few sweeps per thread the waiting would cost more than it saves.
        let threads = threads.clamp(1, (n / (4 * b)).max(1));
        if threads == 1 {
            pulp::Arch::new().dispatch(Chase(self));
            return;
        }
        let shift = b.next_power_of_two().trailing_zeros();
        let block_len = (1usize << shift) * ld;
        let shared = SharedBand {
            n,
            b,
            ld,
            shift,
            blocks: self
                .data
                .chunks(block_len)
                .map(|c| Mutex::new(c.to_vec()))
                .collect(),
            done: (0..n - 2).map(|_| AtomicUsize::new(0)).collect(),
        };
        std::thread::scope(|scope| {
            for thread in 1..threads {
                let shared = &shared;
                scope.spawn(move || {
                    pulp::Arch::new().dispatch(ChaseShare {
                        shared,
                        thread,
                        threads,
                    })
                });
            }
            pulp::Arch::new().dispatch(ChaseShare {
                shared: &shared,
                thread: 0,
                threads,
            });
        });
        for (chunk, block) in self.data.chunks_mut(block_len).zip(shared.blocks) {
            chunk.copy_from_slice(&block.into_inner().unwrap_or_else(PoisonError::into_inner));
        }
    }

    /// Diagonal and subdiagonal.
    fn tridiagonal(&self) -> (Vec<f64>, Vec<f64>) {
        let d = (0..self.n).map(|j| self.data[j * self.ld]).collect();
        let e = (0..self.n.saturating_sub(1))
            .map(|j| self.data[j * self.ld + 1])
            .collect();
        (d, e)
    }
}

/// Eigenvalues of the symmetric tridiagonal matrix with diagonal `d` and subdiagonal `e`, into `d`
/// (unordered; `e` is destroyed): the Pal–Walker–Kahan variant of implicit QL, as LAPACK's `dsterf`, on
/// each unreduced block; a block whose last diagonal entry is the smaller in magnitude is reversed first,
/// which is `dsterf`'s switch to QR. Blocks with entries beyond 1e±100 are scaled, as squaring them would
/// overflow or underflow.
fn tridiagonal_eigenvalues(d: &mut [f64], e: &mut [f64]) -> Result<(), String> {
    let n = d.len();
    if n <= 1 {
        return Ok(());
    }
    let eps = f64::EPSILON / 2.0;
    let max_iter = 30 * n;
    let mut iterations = 0;
    let mut start = 0;
    while start < n {
        // The unreduced block start..=end.
        let mut end = start;
        while end + 1 < n && e[end].abs() > eps * (d[end].abs().sqrt() * d[end + 1].abs().sqrt()) {
            end += 1;
        }
        if end + 1 < n {
            e[end] = 0.0;
        }
        if end > start {
            let (db, eb) = (&mut d[start..=end], &mut e[start..end]);
            if db[db.len() - 1].abs() < db[0].abs() {
                db.reverse();
                eb.reverse();
            }
            let norm = db
                .iter()
                .chain(eb.iter())
                .fold(0.0f64, |m, v| m.max(v.abs()));
            let scale = if norm > 1e100 || (norm < 1e-100 && norm > 0.0) {
                norm
            } else {
                1.0
            };
            if scale != 1.0 {
                db.iter_mut().chain(eb.iter_mut()).for_each(|v| *v /= scale);
            }
            ql_block(db, eb, eps, &mut iterations, max_iter)?;
            if scale != 1.0 {
                db.iter_mut().for_each(|v| *v *= scale);
            }
        }
        start = end + 1;
    }
    Ok(())
}

/// Root-free implicit QL on one unreduced block (eigenvalues into `d`).
fn ql_block(
    d: &mut [f64],
    e: &mut [f64],
    eps: f64,
    iterations: &mut usize,
    max_iter: usize,
) -> Result<(), String> {
    let n = d.len();
    e.iter_mut().for_each(|v| *v *= *v);
    let mut l = 0;
    while l < n {
        // Look for a small (squared) subdiagonal entry.
        let mut m = l;
        while m + 1 < n && e[m].abs().sqrt() > eps * (d[m].abs() + d[m + 1].abs()) {
            m += 1;
        }
        if m + 1 < n {
            e[m] = 0.0;
        }
        if m == l {
            l += 1;
            continue;
        }
        if m == l + 1 {
            let (rt1, rt2) = eigenvalues_2x2(d[l], e[l].sqrt(), d[l + 1]);
            d[l] = rt1;
            d[l + 1] = rt2;
            e[l] = 0.0;
            l += 2;
            continue;
        }
        if *iterations == max_iter {
            return Err(format!(
                "the tridiagonal QL iteration did not converge in {max_iter} iterations"
            ));
        }
        *iterations += 1;
        // Wilkinson-type shift from the leading 2 × 2.
        let p0 = d[l];
        let rte = e[l].sqrt();
        let mut sigma = (d[l + 1] - p0) / (2.0 * rte);
        let r = sigma.hypot(1.0);
        sigma = p0 - rte / (sigma + r.copysign(sigma));
        let (mut c, mut s) = (1.0f64, 0.0f64);
        let mut gamma = d[m] - sigma;
        let mut p = gamma * gamma;
        for i in (l..m).rev() {
            let bb = e[i];
            let r = p + bb;
            if i + 1 != m {
                e[i + 1] = s * r;
            }
            let old_c = c;
            c = p / r;
            s = bb / r;
            let old_gamma = gamma;
            let alpha = d[i];
            gamma = c * (alpha - sigma) - s * old_gamma;
            d[i + 1] = old_gamma + (alpha - gamma);
            p = if c != 0.0 {
                gamma * gamma / c
            } else {
                old_c * bb
            };
        }
        e[l] = s * p;
        d[l] = sigma + gamma;
    }
    Ok(())
}

/// Eigenvalues of `[[a, b], [b, c]]` (LAPACK's `dlae2`): the larger in magnitude first, the other from
/// the determinant to keep its relative accuracy.
fn eigenvalues_2x2(a: f64, b: f64, c: f64) -> (f64, f64) {
    let sm = a + c;
    let df = a - c;
    let adf = df.abs();
    let tb = b + b;
    let ab = tb.abs();
    let (acmx, acmn) = if a.abs() > c.abs() { (a, c) } else { (c, a) };
    let rt = if adf > ab {
        adf * (1.0 + (ab / adf).powi(2)).sqrt()
    } else if adf < ab {
        ab * (1.0 + (adf / ab).powi(2)).sqrt()
    } else {
        ab * std::f64::consts::SQRT_2
    };
    if sm < 0.0 {
        let rt1 = 0.5 * (sm - rt);
        (rt1, (acmx / rt1) * acmn - (b / rt1) * b)
    } else if sm > 0.0 {
        let rt1 = 0.5 * (sm + rt);
        (rt1, (acmx / rt1) * acmn - (b / rt1) * b)
    } else {
        (0.5 * rt, -0.5 * rt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Side;

    fn lcg(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        }
    }

    /// Sorted eigenvalues from faer's one-stage solver.
    fn reference(a: &Mat<f64>) -> Vec<f64> {
        let mut v = a.self_adjoint_eigenvalues(Side::Lower).unwrap();
        v.sort_by(f64::total_cmp);
        v
    }

    fn ours(a: &Mat<f64>, par: Par) -> Vec<f64> {
        let mut w = a.clone();
        let mut v = symmetric_eigenvalues(w.as_mut(), par).unwrap();
        v.sort_by(f64::total_cmp);
        v
    }

    fn assert_close(got: &[f64], want: &[f64], what: &str) {
        let scale = want
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(f64::MIN_POSITIVE);
        let worst = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f64, f64::max);
        assert_eq!(got.len(), want.len());
        assert!(
            worst <= 1e-12 * scale,
            "{what}: max |Δλ| = {worst:e} (‖A‖ ≈ {scale:e})"
        );
    }

    #[test]
    fn dense_matrices_of_every_size_around_the_band_match_the_one_stage_solver() {
        let mut next = lcg(1);
        let b = BAND;
        for n in [
            1,
            2,
            3,
            5,
            b - 1,
            b,
            b + 1,
            b + 2,
            2 * b - 1,
            2 * b + 1,
            2 * b + 2,
            4 * b + 1,
            130,
            300,
        ] {
            let x = Mat::<f64>::from_fn(n, n, |_, _| next());
            let a = &x + x.transpose();
            for par in [Par::Seq, Par::rayon(2)] {
                assert_close(&ours(&a, par), &reference(&a), &format!("n = {n}"));
            }
        }
    }

    #[test]
    fn covariance_like_spectra_match_spd_graded_and_rank_deficient() {
        let mut next = lcg(2);
        let n = 200;
        // SPD with a spread of 1e-8 … 1e4, and a rank-deficient Gram matrix (zeros among the eigenvalues).
        let x = Mat::<f64>::from_fn(n, n, |_, _| next());
        let graded = Mat::<f64>::from_fn(n, n, |i, j| {
            x[(i, j)] * 10f64.powf(4.0 - 12.0 * j as f64 / n as f64)
        });
        let spd = &graded * graded.transpose();
        assert_close(&ours(&spd, Par::Seq), &reference(&spd), "graded SPD");
        let thin = Mat::<f64>::from_fn(n, 40, |_, _| next());
        let gram = &thin * thin.transpose();
        let got = ours(&gram, Par::Seq);
        assert_close(&got, &reference(&gram), "rank 40");
        // Σ √λ is what FID takes. |√x − √y| ≤ √|x − y|, so two backward-stable solvers, each within
        // ε‖A‖ of the true eigenvalues, agree on it to n·√(2ε‖A‖); the graded spectrum's smallest
        // eigenvalues (≈ 1e-16‖A‖) make this the binding bound.
        let s = |v: &[f64]| v.iter().map(|x| x.max(0.0).sqrt()).sum::<f64>();
        let want = reference(&spd);
        let bound = n as f64 * (2.0 * 1e-12 * want[n - 1]).sqrt();
        let diff = (s(&ours(&spd, Par::Seq)) - s(&want)).abs();
        assert!(diff <= bound, "Σ√λ differs by {diff:e} > {bound:e}");
    }

    #[test]
    fn known_spectra_diagonal_identity_and_two_by_two() {
        // Already diagonal: the eigenvalues are the diagonal, exactly.
        let a = Mat::<f64>::from_fn(70, 70, |i, j| if i == j { i as f64 - 20.5 } else { 0.0 });
        let want: Vec<f64> = (0..70).map(|i| i as f64 - 20.5).collect();
        assert_eq!(ours(&a, Par::Seq), want);
        // A multiple of the identity, and [[2, 1], [1, 2]] → {1, 3}.
        let id = Mat::<f64>::from_fn(40, 40, |i, j| if i == j { 3.0 } else { 0.0 });
        assert!(ours(&id, Par::Seq).iter().all(|v| (v - 3.0).abs() < 1e-14));
        let two = Mat::<f64>::from_fn(2, 2, |i, j| if i == j { 2.0 } else { 1.0 });
        assert_close(&ours(&two, Par::Seq), &[1.0, 3.0], "2 × 2");
        // The tridiagonal (1, −2, 1) of order 50: λ_k = −2 + 2 cos(kπ/51).
        let n = 50;
        let mut d = vec![-2.0; n];
        let mut e = vec![1.0; n - 1];
        tridiagonal_eigenvalues(&mut d, &mut e).unwrap();
        d.sort_by(f64::total_cmp);
        let mut want: Vec<f64> = (1..=n)
            .map(|k| -2.0 + 2.0 * (k as f64 * std::f64::consts::PI / (n as f64 + 1.0)).cos())
            .collect();
        want.sort_by(f64::total_cmp);
        assert_close(&d, &want, "second difference");
    }

    #[test]
    fn one_pass_symmetric_product_equals_the_dense_product() {
        let mut next = lcg(4);
        // Sizes around the column-panel width, on one and two threads (the two-thread path sums
        // per-thread partial products).
        for n in [
            1,
            5,
            SYMM_BLOCK - 1,
            SYMM_BLOCK,
            SYMM_BLOCK + 1,
            3 * SYMM_BLOCK + 7,
        ] {
            let x = Mat::<f64>::from_fn(n, n, |_, _| next());
            let a = &x + x.transpose();
            let lower = Mat::<f64>::from_fn(n, n, |i, j| if i >= j { a[(i, j)] } else { f64::NAN });
            let y = Mat::<f64>::from_fn(n, 7, |_, _| next());
            let want = &a * &y;
            for par in [Par::Seq, Par::rayon(2)] {
                let mut got = Mat::<f64>::from_fn(n, 7, |_, _| f64::NAN);
                symmetric_times(got.as_mut(), lower.as_ref(), y.as_ref(), par);
                let err = (&got - &want).norm_max();
                assert!(err <= 1e-13 * want.norm_max().max(1.0), "n = {n}: {err:e}");
            }
        }
    }

    #[test]
    fn the_pipelined_chase_gives_the_one_thread_result_bit_for_bit() {
        let mut next = lcg(5);
        let (n, b) = (203, 8);
        let x = Mat::<f64>::from_fn(n, n, |_, _| next());
        let mut a = &x + x.transpose();
        reduce_to_band(a.as_mut(), b, Par::Seq);
        let chased = |threads: usize| {
            let mut band = Band::from_lower(a.as_ref(), b);
            band.chase_to_tridiagonal(threads);
            band.data
        };
        let one = chased(1);
        // 2, 3 and 6 threads (6 = n / 4b, the most this size allows); 64 is clamped to 6.
        for threads in [2, 3, 6, 64] {
            assert!(chased(threads) == one, "{threads} threads differ from one");
        }
    }

    #[test]
    fn stage_two_leaves_a_tridiagonal_matrix() {
        let mut next = lcg(3);
        let n = 90;
        let x = Mat::<f64>::from_fn(n, n, |_, _| next());
        let mut a = &x + x.transpose();
        reduce_to_band(a.as_mut(), 8, Par::Seq);
        for j in 0..n {
            for i in j + 9..n {
                assert_eq!(a[(i, j)], 0.0, "stage 1 left ({i}, {j}) outside the band");
            }
        }
        let mut band = Band::from_lower(a.as_ref(), 8);
        band.chase_to_tridiagonal(1);
        let worst = (0..n)
            .flat_map(|j| (2..band.ld).map(move |o| (j, o)))
            .map(|(j, o)| band.data[j * band.ld + o].abs())
            .fold(0.0f64, f64::max);
        assert!(worst < 1e-13, "bulge left: {worst:e}");
    }
}
