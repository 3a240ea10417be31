//! Witness–landmark distances of one draw, exact wherever the witness complex reads them.
//!
//! The complex needs, per witness, only the landmarks within `d₂ + α_max` of it (`d₂` = its third
//! smallest distance), and the draw needs the largest distance (for `α_max`). Two routes give the same
//! numbers:
//!
//! * **Squared** (D < [`GEMM_MIN_DIM`], or when screening is impossible): every squared distance is
//!   computed exactly ([`exact_sq`]); square roots are taken for the few candidates only.
//! * **Screened** (D ≥ [`GEMM_MIN_DIM`]): `ỹ = f32(x − x₀)` (x₀ = the first point), converted block by
//!   block, and a single-precision GEMM `Ỹ_L Ỹ_blockᵀ` give `s̃ = ‖ỹ_w‖² + ‖ỹ_l‖² − 2 ỹ_w·ỹ_l` with a
//!   rigorous bound `|s̃ − s| ≤ K·(‖ỹ_w‖ + ‖ỹ_l‖)² + A` on the exact route's squared distance `s` (the
//!   f32 rounding of the inputs, `2⁻²³‖ỹ‖` per point; the f32 dot product, `γ_D ‖ỹ_w‖‖ỹ_l‖` with
//!   `γ_D = D·2⁻²⁴/(1 − D·2⁻²⁴)`, valid for any summation order; the f64 steps and the exact route's own
//!   rounding; A: subnormals). A witness's candidates are the landmarks with `s̃ − E ≤ (√U₂ + α)²`
//!   (`U₂` = third smallest `s̃ + E`), with `α = 1.05 γ √(largest upper bound so far)`, computed exactly
//!   while the block is in cache; witnesses whose α was below the final `α_max` are redone exactly at
//!   the end, and the maximum itself is computed exactly over the rows that can hold it. Candidate sets
//!   are supersets of the needed ones, which does not change the complex (see `super::complex`).
//!
//! * **Prepared** (many draws on one cloud, [`Cloud::prepare_for_draws`]): all N² squared distances
//!   once, `max(0, ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j)` from f64 GEMMs over the upper triangle, mirrored (exactly
//!   symmetric, round-off level: not the exact route), with each row's maximum. A draw reads its
//!   landmarks' rows (= their columns): α_max from the row maxima, then per chunk of witnesses the three
//!   smallest and the threshold test vectorised over witnesses (bit masks), no transposed copy; it
//!   selects exactly what the per-witness selection selects from the same numbers (tested).
//!
//! "Exact" is [`exact_sq`] followed by one `sqrt`: below [`GEMM_MIN_DIM`] the plain left-to-right sum
//! (bit-for-bit `scipy.spatial.distance.cdist`), from it on a fixed 16-lane fused multiply–add sum
//! (≈ 1e-16 relative to cdist). Every route evaluates exactly these expressions for the distances it
//! keeps, so the routes agree bit for bit (tested).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::GEMM_MIN_DIM;
use crate::util::all_finite;
use crate::{GanEvalError, Result};

/// Witnesses per GEMM block of the screened route (the f32 block is `BLOCK · D` values).
const BLOCK: usize = 128;
/// Witnesses per chunk of the prepared route (`L` landmark-row segments of this length stay in cache).
const ROW_CHUNK: usize = 256;
/// Unit roundoff of f32 and f64.
const U32: f64 = 1.0 / 16_777_216.0;
const U64: f64 = f64::EPSILON / 2.0;
/// Screening needs `‖ỹ‖² ≤ 2¹⁰⁰` (no f32 overflow in the products and sums).
const MAX_SCREEN_NORM: f64 = 1.2676506002282294e30;

/// Exact squared distance of two rows (the value every route agrees on). Below [`GEMM_MIN_DIM`]: the
/// plain left-to-right sum; from it on: 16 lanes (element `16m + i` in lane i) accumulated with fused
/// multiply–adds, reduced as `b_k = a_k + a_{8+k}`, `c_i = b_i + b_{4+i}`, `(c₀ + c₂) + (c₁ + c₃)`, plus
/// the left-to-right sum of the last `D mod 16` terms. The AVX2 kernel computes exactly this.
#[inline(always)]
pub(super) fn exact_sq(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < GEMM_MIN_DIM {
        return a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { avx::exact_sq(a, b) };
    }
    exact_sq_scalar(a, b)
}

/// The portable build of [`exact_sq`] for D ≥ [`GEMM_MIN_DIM`].
#[inline(always)]
fn exact_sq_scalar(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            let t = x[i] - y[i];
            acc[i] = t.mul_add(t, acc[i]);
        }
    }
    let mut rem = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        rem += (x - y) * (x - y);
    }
    let bk: [f64; 8] = std::array::from_fn(|k| acc[k] + acc[8 + k]);
    let c: [f64; 4] = std::array::from_fn(|i| bk[i] + bk[4 + i]);
    ((c[0] + c[2]) + (c[1] + c[3])) + rem
}

/// Tests: `exact_sq` through every kernel this CPU can run (scalar first).
#[cfg(test)]
pub(super) fn exact_sq_all_kernels(a: &[f64], b: &[f64]) -> Vec<f64> {
    let scalar = exact_sq_scalar(a, b);
    let mut out = vec![scalar];
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            out.push(unsafe { avx::exact_sq(a, b) });
        }
    }
    out
}

/// `((a₀+a₄)+(a₂+a₆)) + ((a₁+a₅)+(a₃+a₇))`: the order a 2 × 4-lane vector reduction takes.
#[inline(always)]
fn lane_sum(a: [f64; 8]) -> f64 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

/// Writes `f32(x − origin)` into `out` and returns `Σ out²` in f64 (non-finite or huge when the row is
/// not screenable).
#[inline(always)]
fn convert_row(x: &[f64], origin: &[f64], out: &mut [f32]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { avx::convert_row(x, origin, out) };
    }
    let mut acc = [0.0f64; 8];
    let mut rem = 0.0;
    let (cx, co, mut cy) = (
        x.chunks_exact(8),
        origin.chunks_exact(8),
        out.chunks_exact_mut(8),
    );
    let (rx, ro) = (cx.remainder(), co.remainder());
    for ((a, o), y) in cx.zip(co).zip(&mut cy) {
        for i in 0..8 {
            let v = (a[i] - o[i]) as f32;
            y[i] = v;
            acc[i] += f64::from(v) * f64::from(v);
        }
    }
    for ((a, o), y) in rx.iter().zip(ro).zip(cy.into_remainder()) {
        let v = (a - o) as f32;
        *y = v;
        rem += f64::from(v) * f64::from(v);
    }
    lane_sum(acc) + rem
}

/// AVX2 builds of the kernels, lane for lane the same arithmetic as the portable code (`convert_row`: two
/// 4-lane accumulators = lanes 0–3 and 4–7, no fused multiply–add; `exact_sq`: four 4-lane FMA
/// accumulators; the same final reductions).
#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    fn reduce(acc0: __m256d, acc1: __m256d) -> f64 {
        let v = _mm256_add_pd(acc0, acc1);
        let p = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
        _mm_cvtsd_f64(p) + _mm_cvtsd_f64(_mm_unpackhi_pd(p, p))
    }

    /// `super::exact_sq` with four 4-lane accumulators (accumulator q holds lanes 4q..4q+3).
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn exact_sq(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len().min(b.len());
        let m = n / 16 * 16;
        let mut acc = [_mm256_setzero_pd(); 4];
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut k = 0;
        while k < m {
            for (q, acc) in acc.iter_mut().enumerate() {
                // SAFETY: k + 16 ≤ m ≤ len of both slices.
                let (x, y) = unsafe {
                    (
                        _mm256_loadu_pd(pa.add(k + 4 * q)),
                        _mm256_loadu_pd(pb.add(k + 4 * q)),
                    )
                };
                let t = _mm256_sub_pd(x, y);
                *acc = _mm256_fmadd_pd(t, t, *acc);
            }
            k += 16;
        }
        let mut rem = 0.0;
        for (x, y) in a[m..n].iter().zip(&b[m..n]) {
            rem += (x - y) * (x - y);
        }
        // c_i = (a_i + a_{8+i}) + (a_{4+i} + a_{12+i}).
        let c = _mm256_add_pd(_mm256_add_pd(acc[0], acc[2]), _mm256_add_pd(acc[1], acc[3]));
        reduce4(c) + rem
    }

    /// The three smallest per lane of 8 (two 4-lane min/max networks), then merged across lanes.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn third_smallest(values: &[f64]) -> f64 {
        let inf = _mm256_set1_pd(f64::INFINITY);
        let mut m = [[inf; 3]; 2];
        let n = values.len() / 8 * 8;
        let p = values.as_ptr();
        let mut k = 0;
        while k < n {
            for (h, m) in m.iter_mut().enumerate() {
                // SAFETY: k + 8 ≤ n ≤ values.len().
                let v = unsafe { _mm256_loadu_pd(p.add(k + 4 * h)) };
                feed(m, v);
            }
            k += 8;
        }
        // Merge: feed the other half's triples, then the other 128-bit half's, then the neighbour
        // lane's; every lane then holds the three smallest of all 8 lanes.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn feed(m: &mut [__m256d; 3], v: __m256d) {
            let t0 = _mm256_max_pd(m[0], v);
            m[0] = _mm256_min_pd(m[0], v);
            let t1 = _mm256_max_pd(m[1], t0);
            m[1] = _mm256_min_pd(m[1], t0);
            m[2] = _mm256_min_pd(m[2], t1);
        }
        let [mut a, b] = m;
        for v in b {
            feed(&mut a, v);
        }
        let swapped = a.map(|v| _mm256_permute2f128_pd::<1>(v, v));
        for v in swapped {
            feed(&mut a, v);
        }
        #[allow(clippy::redundant_closure)] // target-feature functions do not implement `Fn`
        let swapped = a.map(|v| _mm256_permute_pd::<0b0101>(v));
        for v in swapped {
            feed(&mut a, v);
        }
        let mut m2 = _mm256_cvtsd_f64(a[2]);
        if n < values.len() {
            let lanes = [_mm256_cvtsd_f64(a[0]), _mm256_cvtsd_f64(a[1]), m2];
            m2 = super::third_smallest_scalar(lanes.iter().chain(&values[n..]).copied());
        }
        m2
    }

    /// `super::for_each_le` with vector compares and bit masks.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn for_each_le(values: &[f64], thr: f64, mut f: impl FnMut(usize)) {
        let t = _mm256_set1_pd(thr);
        let n = values.len() / 8 * 8;
        let p = values.as_ptr();
        let mut k = 0;
        while k < n {
            // SAFETY: k + 8 ≤ n ≤ values.len().
            let (v0, v1) = unsafe { (_mm256_loadu_pd(p.add(k)), _mm256_loadu_pd(p.add(k + 4))) };
            let m0 = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LE_OQ>(v0, t)) as u32;
            let m1 = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LE_OQ>(v1, t)) as u32;
            let mut mask = m0 | (m1 << 4);
            while mask != 0 {
                f(k + mask.trailing_zeros() as usize);
                mask &= mask - 1;
            }
            k += 8;
        }
        for (j, &v) in values[n..].iter().enumerate() {
            if v <= thr {
                f(n + j);
            }
        }
    }

    /// `(c₀ + c₂) + (c₁ + c₃)`.
    #[target_feature(enable = "avx2,fma")]
    fn reduce4(c: __m256d) -> f64 {
        let p = _mm_add_pd(_mm256_castpd256_pd128(c), _mm256_extractf128_pd::<1>(c));
        _mm_cvtsd_f64(p) + _mm_cvtsd_f64(_mm_unpackhi_pd(p, p))
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn convert_row(x: &[f64], origin: &[f64], out: &mut [f32]) -> f64 {
        let n = x.len().min(origin.len()).min(out.len());
        let m = n / 8 * 8;
        let (mut acc0, mut acc1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let (px, po, py) = (x.as_ptr(), origin.as_ptr(), out.as_mut_ptr());
        let mut k = 0;
        while k < m {
            // SAFETY: k + 8 ≤ m ≤ len of all three slices.
            unsafe {
                let v0 = _mm256_cvtpd_ps(_mm256_sub_pd(
                    _mm256_loadu_pd(px.add(k)),
                    _mm256_loadu_pd(po.add(k)),
                ));
                let v1 = _mm256_cvtpd_ps(_mm256_sub_pd(
                    _mm256_loadu_pd(px.add(k + 4)),
                    _mm256_loadu_pd(po.add(k + 4)),
                ));
                _mm_storeu_ps(py.add(k), v0);
                _mm_storeu_ps(py.add(k + 4), v1);
                let (w0, w1) = (_mm256_cvtps_pd(v0), _mm256_cvtps_pd(v1));
                acc0 = _mm256_add_pd(acc0, _mm256_mul_pd(w0, w0));
                acc1 = _mm256_add_pd(acc1, _mm256_mul_pd(w1, w1));
            }
            k += 8;
        }
        let mut rem = 0.0;
        for ((a, o), y) in x[m..n].iter().zip(&origin[m..n]).zip(&mut out[m..n]) {
            let v = (a - o) as f32;
            *y = v;
            rem += f64::from(v) * f64::from(v);
        }
        reduce(acc0, acc1) + rem
    }
}

/// Whether the AVX2 + FMA builds of the hot loops can run on this CPU.
#[inline]
pub(super) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `$name` calling the `#[inline(always)]` body `$body` through an AVX2 + FMA build when the CPU
/// has the features (same results: Rust never contracts `a * b + c`, and the sums have a fixed order).
macro_rules! simd_dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident / $avx:ident => $body:ident (&mut self $(, $a:ident : $t:ty)*) -> $r:ty) => {
        $(#[$m])*
        $vis fn $name(&mut self $(, $a: $t)*) -> $r {
            #[cfg(target_arch = "x86_64")]
            if $crate::gs::distances::has_avx2() {
                // SAFETY: the CPU has the features `$avx` is compiled for (checked just above).
                return unsafe { self.$avx($($a),*) };
            }
            self.$body($($a),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx(&mut self $(, $a: $t)*) -> $r {
            self.$body($($a),*)
        }
    };
}
pub(super) use simd_dispatch;

/// The point cloud in row-major f64 (borrowed when already standard layout), optionally with a full
/// f32 screening copy (when many draws reuse it).
pub(super) struct Cloud<'a> {
    pub data: std::borrow::Cow<'a, [f64]>,
    pub n: usize,
    pub dim: usize,
    /// `f32(x − x₀)` for all points and their squared norms (`None`: converted block by block per draw).
    screen: Option<(Vec<f32>, Vec<f64>)>,
    /// All N × N squared distances and row maxima, when precomputed by [`Cloud::prepare_for_draws`].
    pub all: Option<AllPairs>,
}

impl<'a> Cloud<'a> {
    pub fn new(data: std::borrow::Cow<'a, [f64]>, n: usize, dim: usize) -> Self {
        Self {
            data,
            n,
            dim,
            screen: None,
            all: None,
        }
    }

    /// Prepares for many draws: the f32 screening copy once, or — when `n_draws · L₀ ≥ 2N` and
    /// N ≤ [`super::PRECOMPUTE_MAX_POINTS`] — all N² squared distances ([`AllPairs`], round-off level,
    /// not the exact route).
    pub fn prepare_for_draws(&mut self, draws: usize, landmarks: usize) {
        let (n, dim) = (self.n, self.dim);
        if dim < GEMM_MIN_DIM {
            return;
        }
        if n <= super::PRECOMPUTE_MAX_POINTS && draws * landmarks >= 2 * n {
            self.all = Some(self.all_squared_distances());
            return;
        }
        let mut y = vec![0.0f32; n * dim];
        let mut norms = vec![0.0; n];
        self.convert_all(&mut y, &mut norms);
        self.screen = Some((y, norms));
    }

    /// All N² squared distances `max(0, ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j)` (row-major, diagonal 0) and each
    /// row's maximum. Only the pairs i < j are computed (one f64 GEMM per panel of [`PANEL`] rows
    /// against the rows from the panel on) and mirrored, so the matrix is exactly symmetric.
    fn all_squared_distances(&self) -> AllPairs {
        let (n, dim) = (self.n, self.dim);
        let x = MatRef::from_row_major_slice(&self.data, n, dim);
        let sq: Vec<f64> = self
            .data
            .chunks_exact(dim)
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect();
        let mut all = vec![0.0; n * n];
        for i0 in (0..n).step_by(PANEL) {
            let b = PANEL.min(n - i0);
            // Rows i0..i0 + b, columns i0..n of `all` (row stride n). Built as the transpose of a
            // column-major view: faer 0.24's `from_row_major_slice_with_stride_mut` swaps the strides.
            let g = MatMut::from_column_major_slice_with_stride_mut(
                &mut all[i0 * n + i0..],
                n - i0,
                b,
                n,
            )
            .transpose_mut();
            matmul(
                g,
                Accum::Replace,
                x.subrows(i0, b),
                x.subrows(i0, n - i0).transpose(),
                1.0,
                faer::get_global_parallelism(),
            );
            mirror_panel(&mut all, &sq, n, i0, b);
        }
        let row_max = all
            .chunks_exact(n)
            .map(|r| {
                let mut m = [0.0f64; 8];
                let c = r.chunks_exact(8);
                let rest = c.remainder();
                for v in c {
                    for k in 0..8 {
                        m[k] = if v[k] > m[k] { v[k] } else { m[k] };
                    }
                }
                m.iter().chain(rest).copied().fold(0.0f64, f64::max)
            })
            .collect();
        AllPairs { sq: all, row_max }
    }

    simd_dispatch!(fn convert_all / convert_all_avx2 => convert_all_body(&mut self, y: &mut [f32], norms: &mut [f64]) -> ());

    #[inline(always)]
    fn convert_all_body(&mut self, y: &mut [f32], norms: &mut [f64]) {
        let dim = self.dim;
        let origin = &self.data[..dim];
        for ((x, out), nrm) in self
            .data
            .chunks_exact(dim)
            .zip(y.chunks_exact_mut(dim))
            .zip(norms)
        {
            *nrm = convert_row(x, origin, out);
        }
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Rows per GEMM panel of [`Cloud::prepare_for_draws`].
const PANEL: usize = 256;

/// All N² squared distances of a cloud (row-major, symmetric) and each row's maximum.
pub(super) struct AllPairs {
    pub sq: Vec<f64>,
    pub row_max: Vec<f64>,
}

/// Turns the Gram entries `all[i][j]`, i in the panel `i0..i0 + b`, j > i, into squared distances and
/// mirrors them to `all[j][i]` (j outer: the mirrored writes are contiguous, the panel's `b` rows are
/// `b` sequential streams); zeroes the panel's diagonal.
fn mirror_panel(all: &mut [f64], sq: &[f64], n: usize, i0: usize, b: usize) {
    for j in i0 + 1..n {
        let hi = b.min(j - i0);
        for i in i0..i0 + hi {
            let v = (sq[i] + sq[j] - 2.0 * all[i * n + j]).max(0.0);
            all[i * n + j] = v;
            all[j * n + i] = v;
        }
    }
    for i in i0..i0 + b {
        all[i * n + i] = 0.0;
    }
}

/// Per-draw distance results (buffers reused across draws): per witness, its candidate landmarks with
/// exact distances, sorted by (distance, index) — a superset of `{j : d_j − α ≤ d₂}` whose first three
/// entries are the three nearest landmarks.
#[derive(Default)]
pub(super) struct Distances {
    /// Tests: skip the screened route.
    #[cfg(test)]
    pub exact_only: bool,
    pool: Vec<(f64, u32)>,
    span: Vec<(u32, u32)>,
    /// Squared route with stored rows: N × L exact squared distances.
    sq: Vec<f64>,
    /// Scratch rows of one witness.
    row: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    /// Screened route: the α each witness's candidates were selected with, each row's largest upper
    /// bound.
    alpha_used: Vec<f64>,
    row_hi: Vec<f64>,
    lmk32: Vec<f32>,
    lmk_norm: Vec<f64>,
    lmk_sqrt: Vec<f64>,
    /// SoA landmark coordinates (D < GEMM_MIN_DIM): coordinate k of landmark j at `k·L + j`.
    lmk_soa: Vec<f64>,
    blk32: Vec<f32>,
    norms_blk: Vec<f64>,
    /// L × BLOCK Gram block `Ỹ_L Ỹ_blockᵀ`, column-major.
    gram: Vec<f32>,
    /// Prepared route: the candidate landmarks of each witness of one chunk, as bit masks, and the
    /// chunk's offsets in the landmarks' rows.
    masks: Vec<u64>,
    offsets: Vec<usize>,
}

impl Distances {
    /// The candidates of witness `w` (after [`Distances::compute`]).
    #[inline(always)]
    pub fn candidates(&self, w: usize) -> &[(f64, u32)] {
        let (s, len) = self.span[w];
        &self.pool[s as usize..(s + len) as usize]
    }

    /// Fills the candidate lists for `landmarks` and returns `α_max = γ · (largest distance)`.
    pub fn compute(&mut self, cloud: &Cloud, landmarks: &[usize], gamma: f64) -> Result<f64> {
        let (n, l) = (cloud.n, landmarks.len());
        self.pool.clear();
        self.span.clear();
        self.span.resize(n, (0, 0));
        if let Some(all) = &cloud.all {
            // Symmetric: the landmarks' rows are their columns. The largest distance is the largest
            // row maximum.
            let max_sq = landmarks
                .iter()
                .map(|&lm| all.row_max[lm])
                .fold(0.0f64, f64::max);
            let alpha = gamma * max_sq.sqrt();
            self.candidates_of_rows(&all.sq, n, landmarks, alpha);
            return Ok(alpha);
        }
        #[cfg(test)]
        let screen = !self.exact_only;
        #[cfg(not(test))]
        let screen = true;
        if screen
            && cloud.dim >= GEMM_MIN_DIM
            && (cloud.dim as f64) * U32 < 0.25
            && let Some(alpha) = self.screen(cloud, landmarks, gamma)?
        {
            return Ok(alpha);
        }
        check_finite_rows(&cloud.data, cloud.dim, "points")?;
        if cloud.dim < GEMM_MIN_DIM {
            return Ok(self.small_dim(cloud, landmarks, gamma));
        }
        self.fill_exact(cloud, landmarks);
        Ok(self.candidates_of_stored(n, l, gamma))
    }

    /// Candidates from the stored exact squared distances `sq` (two passes: the maximum, then the rows).
    fn candidates_of_stored(&mut self, n: usize, l: usize, gamma: f64) -> f64 {
        let alpha = gamma * self.sq.iter().copied().fold(0.0f64, f64::max).sqrt();
        for w in 0..n {
            let start = self.pool.len();
            push_candidates(&self.sq[w * l..(w + 1) * l], alpha, &mut self.pool);
            self.span[w] = span_of(start, self.pool.len());
        }
        alpha
    }

    simd_dispatch!(fn candidates_of_rows / candidates_of_rows_avx2 => candidates_of_rows_body(&mut self, all: &[f64], n: usize, landmarks: &[usize], alpha: f64) -> ());

    /// Candidates from the rows of a symmetric N × N matrix of squared distances: what
    /// [`Distances::candidates_of_stored`] selects from its transpose, witness by witness, computed
    /// [`ROW_CHUNK`] witnesses at a time across the landmark rows (three smallest and the threshold
    /// compares vectorised over witnesses; no transposed copy).
    #[inline(always)]
    fn candidates_of_rows_body(&mut self, all: &[f64], n: usize, landmarks: &[usize], alpha: f64) {
        let l = landmarks.len();
        self.lo.resize(ROW_CHUNK, 0.0);
        self.hi.resize(ROW_CHUNK, 0.0);
        self.row.resize(ROW_CHUNK, 0.0);
        let words = l.div_ceil(64);
        self.masks.resize(ROW_CHUNK * words, 0);
        for w0 in (0..n).step_by(ROW_CHUNK) {
            let cw = ROW_CHUNK.min(n - w0);
            // The three smallest of each witness (min/max network, as `third_smallest`).
            let (m0, m1, m2) = (&mut self.lo[..cw], &mut self.hi[..cw], &mut self.row[..cw]);
            m0.fill(f64::INFINITY);
            m1.fill(f64::INFINITY);
            m2.fill(f64::INFINITY);
            let next = (w0 + cw).min(n);
            let cn = ROW_CHUNK.min(n - next);
            for &lm in landmarks {
                let r = &all[lm * n + w0..lm * n + w0 + cw];
                // The next chunk's segment of this row (64 rows are too many streams for the
                // hardware prefetcher).
                prefetch_lines(&all[lm * n + next..lm * n + next + cn]);
                for i in 0..cw {
                    let v = r[i];
                    let t0 = if m0[i] > v { m0[i] } else { v };
                    m0[i] = if m0[i] < v { m0[i] } else { v };
                    let t1 = if m1[i] > t0 { m1[i] } else { t0 };
                    m1[i] = if m1[i] < t0 { m1[i] } else { t0 };
                    m2[i] = if m2[i] < t1 { m2[i] } else { t1 };
                }
            }
            for t in m2.iter_mut() {
                *t = sq_threshold(*t, alpha);
            }
            // Which landmarks are candidates of each witness: bit j of word j/64 of the witness's mask
            // (word-major, branch-free and vectorised over witnesses).
            let thr = &self.row[..cw];
            let masks = &mut self.masks[..cw * words];
            masks.fill(0);
            for (j, &lm) in landmarks.iter().enumerate() {
                let r = &all[lm * n + w0..lm * n + w0 + cw];
                let bit = 1u64 << (j & 63);
                let m = &mut masks[(j >> 6) * cw..(j >> 6) * cw + cw];
                for i in 0..cw {
                    m[i] |= if r[i] <= thr[i] { bit } else { 0 };
                }
            }
            // Each witness's candidates in landmark order, then sorted by (distance, landmark).
            self.offsets.clear();
            self.offsets.extend(landmarks.iter().map(|&lm| lm * n + w0));
            for i in 0..cw {
                let first = self.pool.len();
                for word in 0..words {
                    let mut m = self.masks[word * cw + i];
                    while m != 0 {
                        let j = word * 64 + m.trailing_zeros() as usize;
                        m &= m - 1;
                        self.pool.push((all[self.offsets[j] + i].sqrt(), j as u32));
                    }
                }
                sort_candidates(&mut self.pool[first..]);
                self.span[w0 + i] = span_of(first, self.pool.len());
            }
        }
    }

    simd_dispatch!(fn fill_exact / fill_exact_avx2 => fill_exact_body(&mut self, cloud: &Cloud, landmarks: &[usize]) -> ());

    #[inline(always)]
    fn fill_exact_body(&mut self, cloud: &Cloud, landmarks: &[usize]) {
        let l = landmarks.len();
        self.sq.clear();
        self.sq.resize(cloud.n * l, 0.0);
        for (w, out) in self.sq.chunks_exact_mut(l).enumerate() {
            let xw = cloud.row(w);
            for (o, &lm) in out.iter_mut().zip(landmarks) {
                *o = exact_sq(xw, cloud.row(lm));
            }
        }
    }

    simd_dispatch!(fn small_dim / small_dim_avx2 => small_dim_body(&mut self, cloud: &Cloud, landmarks: &[usize], gamma: f64) -> f64);

    /// D < GEMM_MIN_DIM: one pass, each row computed across landmarks (SoA), candidates selected with
    /// an upper bound of α (γ · the bounding-box diagonal ≥ γ · every distance).
    #[inline(always)]
    fn small_dim_body(&mut self, cloud: &Cloud, landmarks: &[usize], gamma: f64) -> f64 {
        let (n, l, dim) = (cloud.n, landmarks.len(), cloud.dim);
        let mut diag = 0.0;
        for k in 0..dim {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for x in cloud.data.chunks_exact(dim) {
                lo = if x[k] < lo { x[k] } else { lo };
                hi = if x[k] > hi { x[k] } else { hi };
            }
            diag += (hi - lo) * (hi - lo);
        }
        let alpha_ub = gamma * diag.sqrt() * (1.0 + 1e-9);
        self.lmk_soa.clear();
        self.lmk_soa.resize(dim * l, 0.0);
        for (j, &lm) in landmarks.iter().enumerate() {
            for (k, &v) in cloud.row(lm).iter().enumerate() {
                self.lmk_soa[k * l + j] = v;
            }
        }
        self.row.clear();
        self.row.resize(l, 0.0);
        // Running maximum per landmark (vectorises across landmarks).
        self.hi.clear();
        self.hi.resize(l, 0.0);
        for w in 0..n {
            let xw = cloud.row(w);
            // Left-to-right over the coordinates, as `exact_sq`.
            let c0 = &self.lmk_soa[..l];
            if dim == 2 {
                let c1 = &self.lmk_soa[l..2 * l];
                for ((r, &a), &b) in self.row.iter_mut().zip(c0).zip(c1) {
                    *r = (xw[0] - a) * (xw[0] - a) + (xw[1] - b) * (xw[1] - b);
                }
            } else {
                for (r, &c) in self.row.iter_mut().zip(c0) {
                    *r = (xw[0] - c) * (xw[0] - c);
                }
                for (&xk, ck) in xw.iter().zip(self.lmk_soa.chunks_exact(l)).skip(1) {
                    for (r, &c) in self.row.iter_mut().zip(ck) {
                        *r += (xk - c) * (xk - c);
                    }
                }
            }
            for (m, &s) in self.hi.iter_mut().zip(&self.row) {
                *m = if s > *m { s } else { *m };
            }
            // Squared distances for now; one vectorised square-root pass and the sorts follow.
            let start = self.pool.len();
            let thr = sq_threshold(third_smallest(&self.row), alpha_ub);
            let (pool, row) = (&mut self.pool, &self.row);
            for_each_le(row, thr, |j| pool.push((row[j], j as u32)));
            self.span[w] = span_of(start, self.pool.len());
        }
        for c in &mut self.pool {
            c.0 = c.0.sqrt();
        }
        for &(s, len) in &self.span {
            sort_candidates(&mut self.pool[s as usize..(s + len) as usize]);
        }
        gamma * self.hi.iter().copied().fold(0.0f64, f64::max).sqrt()
    }

    simd_dispatch!(fn screen / screen_avx2 => screen_body(&mut self, cloud: &Cloud, landmarks: &[usize], gamma: f64) -> Result<Option<f64>>);

    /// The screened route (module docs); `Ok(None)` when some row cannot be screened (out of f32's safe
    /// range), an error when a row is not finite.
    #[inline(always)]
    fn screen_body(
        &mut self,
        cloud: &Cloud,
        landmarks: &[usize],
        gamma: f64,
    ) -> Result<Option<f64>> {
        let (n, l, dim) = (cloud.n, landmarks.len(), cloud.dim);
        let origin = cloud.row(0);
        let df = dim as f64;
        // |s̃ − s| ≤ K·(‖ỹ_w‖ + ‖ỹ_l‖)² + A·(1 + ‖ỹ_w‖ + ‖ỹ_l‖), s the exact route's squared distance
        // (f32 GEMM γ_D/2, f64 evaluation and norms, the exact route's own rounding, the f32 rounding of
        // the inputs 2⁻²³ per point; A: subnormal products), with 1 % slack.
        let gamma_d = df * U32 / (1.0 - df * U32);
        let k = 1.01
            * (gamma_d / 2.0
                + (3.0 * df + 10.0) * U64 * 1.02
                + 2.1 * 2f64.powi(-23)
                + 2f64.powi(-44));
        let a = df * 2f64.powi(-140);
        let ok = |norm: f64| norm.is_finite() && norm <= MAX_SCREEN_NORM;
        // Landmarks.
        self.lmk32.clear();
        self.lmk32.resize(l * dim, 0.0);
        self.lmk_norm.clear();
        for (&lm, out) in landmarks.iter().zip(self.lmk32.chunks_exact_mut(dim)) {
            let nrm = match &cloud.screen {
                Some((y, norms)) => {
                    out.copy_from_slice(&y[lm * dim..(lm + 1) * dim]);
                    norms[lm]
                }
                None => convert_row(cloud.row(lm), origin, out),
            };
            if !ok(nrm) {
                return unscreenable(cloud, lm);
            }
            self.lmk_norm.push(nrm);
        }
        self.lmk_sqrt.clear();
        self.lmk_sqrt.extend(self.lmk_norm.iter().map(|v| v.sqrt()));
        self.alpha_used.clear();
        self.alpha_used.resize(n, 0.0);
        self.row_hi.clear();
        self.row_hi.resize(n, 0.0);
        self.gram.resize(l * BLOCK, 0.0);
        self.norms_blk.resize(BLOCK, 0.0);
        self.lo.resize(l, 0.0);
        self.hi.resize(l, 0.0);
        let mut max_lo = f64::NEG_INFINITY;
        let mut max_hi = 0.0f64;
        for start in (0..n).step_by(BLOCK) {
            let b = BLOCK.min(n - start);
            let y_blk: &[f32] = match &cloud.screen {
                Some((y, norms)) => {
                    self.norms_blk[..b].copy_from_slice(&norms[start..start + b]);
                    &y[start * dim..(start + b) * dim]
                }
                None => {
                    self.blk32.resize(BLOCK * dim, 0.0);
                    for (i, out) in self.blk32[..b * dim].chunks_exact_mut(dim).enumerate() {
                        self.norms_blk[i] = convert_row(cloud.row(start + i), origin, out);
                    }
                    &self.blk32[..b * dim]
                }
            };
            if let Some(i) = self.norms_blk[..b].iter().position(|&v| !ok(v)) {
                return unscreenable(cloud, start + i);
            }
            let lm = MatRef::from_row_major_slice(&self.lmk32, l, dim);
            let yb = MatRef::from_row_major_slice(y_blk, b, dim);
            let g = MatMut::from_column_major_slice_mut(&mut self.gram[..l * b], l, b);
            matmul(g, Accum::Replace, lm, yb.transpose(), 1.0f32, Par::Seq);
            // Bounds of the block's squared distances; the running maximum gives this block's α.
            for i in 0..b {
                let nw = self.norms_blk[i];
                let sw = nw.sqrt();
                let gw = &self.gram[i * l..(i + 1) * l];
                let mut row_hi = 0.0f64;
                for (j, (&g, (&nl, &sl))) in gw
                    .iter()
                    .zip(self.lmk_norm.iter().zip(&self.lmk_sqrt))
                    .enumerate()
                {
                    let s = nw + nl - 2.0 * f64::from(g);
                    let t = sw + sl;
                    let e = k * t * t + a * (1.0 + t);
                    let (lo, hi) = (s - e, s + e);
                    self.lo[j] = lo;
                    self.hi[j] = hi;
                    row_hi = if hi > row_hi { hi } else { row_hi };
                    max_lo = if lo > max_lo { lo } else { max_lo };
                }
                self.row_hi[start + i] = row_hi;
                max_hi = max_hi.max(row_hi);
                let alpha = 1.05 * gamma * max_hi.sqrt();
                self.alpha_used[start + i] = alpha;
                let thr = sq_threshold(third_smallest(&self.hi), alpha);
                let w = start + i;
                let xw = cloud.row(w);
                let first = self.pool.len();
                let pool = &mut self.pool;
                for_each_le(&self.lo, thr, |j| {
                    let d = exact_sq(xw, cloud.row(landmarks[j])).sqrt();
                    pool.push((d, j as u32));
                });
                sort_candidates(&mut self.pool[first..]);
                self.span[w] = span_of(first, self.pool.len());
            }
        }
        // The largest distance, exactly: only rows whose bounds reach the largest lower bound.
        let mut max_sq = 0.0f64;
        for w in 0..n {
            if self.row_hi[w] >= max_lo {
                let xw = cloud.row(w);
                for &lm in landmarks {
                    max_sq = max_sq.max(exact_sq(xw, cloud.row(lm)));
                }
            }
        }
        let alpha = gamma * max_sq.sqrt();
        // Witnesses selected with a smaller α than the final one: redo them exactly.
        self.row.resize(l, 0.0);
        for w in 0..n {
            if self.alpha_used[w] < alpha {
                let xw = cloud.row(w);
                for (r, &lm) in self.row.iter_mut().zip(landmarks) {
                    *r = exact_sq(xw, cloud.row(lm));
                }
                let first = self.pool.len();
                push_candidates(&self.row, alpha, &mut self.pool);
                self.span[w] = span_of(first, self.pool.len());
            }
        }
        Ok(Some(alpha))
    }
}

/// A row that cannot be screened: an error when it holds a non-finite value, else `Ok(None)`.
fn unscreenable(cloud: &Cloud, row: usize) -> Result<Option<f64>> {
    check_finite_rows(cloud.row(row), cloud.dim, "points").map_err(|e| match e {
        GanEvalError::NonFinite {
            name, col, value, ..
        } => GanEvalError::NonFinite {
            name,
            row,
            col,
            value,
        },
        other => other,
    })?;
    Ok(None)
}

/// `((√u₂ + α)(1 + 10⁻¹²))²(1 + 10⁻¹²)`: every squared distance `s` with `√s − α ≤ √u₂` (in floating
/// point) is at most this (∞ when `u₂` is).
#[inline(always)]
fn sq_threshold(u2: f64, alpha: f64) -> f64 {
    let t = (u2.sqrt() + alpha) * (1.0 + 1e-12);
    t * t * (1.0 + 1e-12)
}

/// Appends the candidates of one row of exact squared distances, selected with `alpha ≥ α_max`.
#[inline(always)]
fn push_candidates(row: &[f64], alpha: f64, pool: &mut Vec<(f64, u32)>) {
    let thr = sq_threshold(third_smallest(row), alpha);
    let first = pool.len();
    for_each_le(row, thr, |j| pool.push((row[j].sqrt(), j as u32)));
    sort_candidates(&mut pool[first..]);
}

/// Sorts by (distance, landmark); the keys are distinct, so the order is unique (insertion sort for the
/// usual handful of candidates).
#[inline(always)]
fn sort_candidates(c: &mut [(f64, u32)]) {
    // Distances are ≥ +0 (or +∞), whose bit patterns order as the numbers (as `total_cmp`).
    let less = |a: &(f64, u32), b: &(f64, u32)| (a.0.to_bits(), a.1) < (b.0.to_bits(), b.1);
    if c.len() > 24 {
        c.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        return;
    }
    for i in 1..c.len() {
        let x = c[i];
        let mut j = i;
        while j > 0 && less(&x, &c[j - 1]) {
            c[j] = c[j - 1];
            j -= 1;
        }
        c[j] = x;
    }
}

#[inline(always)]
fn span_of(start: usize, end: usize) -> (u32, u32) {
    (start as u32, (end - start) as u32)
}

/// The third smallest value (∞ when there are fewer than three).
#[inline(always)]
pub(super) fn third_smallest(values: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { avx::third_smallest(values) };
    }
    third_smallest_scalar(values.iter().copied())
}

#[inline(always)]
pub(super) fn third_smallest_scalar(values: impl Iterator<Item = f64>) -> f64 {
    let (mut m0, mut m1, mut m2) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for d in values {
        if d < m2 {
            if d < m1 {
                m2 = m1;
                if d < m0 {
                    m1 = m0;
                    m0 = d;
                } else {
                    m1 = d;
                }
            } else {
                m2 = d;
            }
        }
    }
    m2
}

/// Calls `f(j)` for every `j` with `values[j] <= thr`, in increasing `j` (compares 8 at a time).
#[inline(always)]
pub(super) fn for_each_le(values: &[f64], thr: f64, mut f: impl FnMut(usize)) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { avx::for_each_le(values, thr, f) };
    }
    let c = values.chunks_exact(8);
    let rest = c.remainder();
    let mut base = 0;
    for v in c {
        let mut mask = 0u32;
        for (i, &x) in v.iter().enumerate() {
            mask |= u32::from(x <= thr) << i;
        }
        while mask != 0 {
            f(base + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
        base += 8;
    }
    for (j, &v) in rest.iter().enumerate() {
        if v <= thr {
            f(base + j);
        }
    }
}

/// Asks for the cache lines of `s` (a hint; no effect on results).
#[inline(always)]
fn prefetch_lines(s: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    for k in (0..s.len()).step_by(8) {
        // SAFETY: a prefetch of an address inside `s` (SSE, part of the x86_64 baseline).
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                s.as_ptr().add(k).cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}

/// Errors unless the row-major `data` (`n × dim`) is finite, naming the first bad entry.
pub(super) fn check_finite_rows(data: &[f64], dim: usize, name: &str) -> Result<()> {
    if all_finite(data) {
        return Ok(());
    }
    let k = data.iter().position(|v| !v.is_finite()).unwrap_or(0);
    Err(GanEvalError::NonFinite {
        name: name.to_string(),
        row: k / dim,
        col: k % dim,
        value: data[k],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud_data(n: usize, dim: usize) -> Vec<f64> {
        (0..n * dim)
            .map(|k| (((k * 7919) % 1009) as f64 / 1009.0 - 0.5) * (1.0 + (k / dim % 5) as f64))
            .collect()
    }

    /// The prepared route (all pairs, candidates read from landmark rows) equals transposing the
    /// landmarks' rows into witness rows and selecting witness by witness; the matrix is symmetric
    /// with a zero diagonal and the row maxima are the rows' maxima.
    #[test]
    fn prepared_rows_equal_the_stored_transpose() {
        for (n, dim, l) in [
            (300usize, 20usize, 16usize),
            (517, 33, 64),
            (40, 16, 3),
            (260, 17, 130),
        ] {
            let data = cloud_data(n, dim);
            let mut cloud = Cloud::new(std::borrow::Cow::Borrowed(&data), n, dim);
            cloud.prepare_for_draws(n, l);
            let all = cloud.all.as_ref().expect("prepared");
            for i in 0..n {
                assert_eq!(all.sq[i * n + i], 0.0);
                let row = &all.sq[i * n..(i + 1) * n];
                assert_eq!(all.row_max[i], row.iter().copied().fold(0.0, f64::max));
                for j in 0..i {
                    assert_eq!(all.sq[i * n + j].to_bits(), all.sq[j * n + i].to_bits());
                    let exact = exact_sq(cloud.row(i), cloud.row(j));
                    assert!(
                        (all.sq[i * n + j] - exact).abs() <= 1e-12 * (1.0 + exact),
                        "n {n}: ({i}, {j}): {} vs {exact}",
                        all.sq[i * n + j]
                    );
                }
            }
            for gamma in [0.01, 0.1, 0.5] {
                let landmarks: Vec<usize> = (0..l).map(|k| (k * 37 + 5) % n).collect();
                let mut prepared = Distances::default();
                let alpha = prepared.compute(&cloud, &landmarks, gamma).unwrap();
                let mut stored = Distances::default();
                stored.span.resize(n, (0, 0));
                stored.sq = (0..n)
                    .flat_map(|w| landmarks.iter().map(move |&lm| (w, lm)))
                    .map(|(w, lm)| all.sq[lm * n + w])
                    .collect();
                let alpha_stored = stored.candidates_of_stored(n, l, gamma);
                assert_eq!(alpha.to_bits(), alpha_stored.to_bits());
                for w in 0..n {
                    assert_eq!(prepared.candidates(w), stored.candidates(w), "witness {w}");
                }
            }
        }
    }
}
