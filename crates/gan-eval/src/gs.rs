//! The Geometry Score (Khrulkov & Oseledets, ICML 2018), following the reference code
//! (github.com/KhrulkovV/geometry-score, `gs/utils.py` and `gs/geom_score.py`) step by step.
//!
//! One draw ([`relative_living_times`]), for a point cloud X (N × D, used as given):
//! 1. `L_0` landmark indices, drawn uniformly **with replacement** ([`mean_rlt`] draws them; duplicates are
//!    distinct vertices at the same place).
//! 2. Witnesses: all N points. `A[w, l] = ‖x_w − x_{landmark l}‖` (plain Euclidean distance).
//! 3. `α_max = γ · max_{w,l} A[w, l]` (this draw's maximum).
//! 4. The relaxed weak witness complex (gudhi's `WitnessComplex` with `max_alpha_square = α_max`) up to
//!    triangles. In closed form: for witness w and a simplex σ with `p` = the first position, in w's sorted
//!    distances, of a landmark not in σ, σ is witnessed when `d_{max σ} − α_max ≤ d_p` with relaxation
//!    `r_w(σ) = max(0, d_{max σ} − d_p)`; σ ∈ K when some witness witnesses it and its facets are in K, and
//!    `f(σ) = max(min_w r_w(σ), max over facets f(τ))`, vertices at 0.
//! 5. H1 persistence over Z/2: union–find over the edges in filtration order (negative edges merge
//!    components; their rows are cleared from the triangle boundaries), then column reduction of the
//!    triangle columns; a reduced column with lowest edge e gives the bar `[f(e), f(t))`; positive edges
//!    left unpaired are essential: `[f(e), ∞)`, cut at α_max.
//! 6. `RLT[i]` = (length of `{α ∈ [0, α_max] : β₁(α) = i}`) / α_max, intervals half-open; lengths where
//!    `β₁ ≥ i_max` are dropped; no bar at all gives `RLT = e₀`.
//!
//! [`mean_rlt`] averages `n_draws` RLTs (in parallel; draw k uses landmarks drawn from
//! `stream_seed(seed, k)`, so the result depends on the seed only), and
//! `GS(a, b) = Σ_i (MRLT_a[i] − MRLT_b[i])²` ([`geometry_score`], no square root; papers report GS × 10³).
//!
//! Defaults as the reference: `L_0 = 64`, `i_max = 100`, `γ = N/640000` (its `1/128 · N/5000`; grows with
//! N), `n = 1000` draws. The README example uses `L_0 = 32, γ = 1/8`.
//!
//! Speed: distances come from one blocked GEMM `L Xᵀ` per draw for D ≥ [`GEMM_MIN_DIM`] (direct sums
//! below, bit-for-bit scipy's `cdist`), or — in [`mean_rlt`] with many draws — from all N² distances
//! computed once ([`PRECOMPUTE_MAX_POINTS`]); each witness sorts only the landmarks within `d₂ + α_max`;
//! edge and triangle values live in packed tables reused across draws (no allocation per simplex); H1 uses
//! union–find on the edges (clearing) and Z/2 column reduction with a pivot map over positive edges only.
//!
//! ```
//! use gan_eval::gs::{geometry_score, mean_rlt, GsConfig};
//! use gan_eval::toy;
//!
//! let circle = toy::circle(500, 0.02, 0);
//! let disk = toy::filled_disk(500, 1);
//! let cfg = GsConfig { landmarks: 32, gamma: Some(1.0 / 8.0), i_max: 10, n_draws: 20, seed: 0 };
//! let a = mean_rlt(circle.view(), &cfg)?;
//! let b = mean_rlt(disk.view(), &cfg)?;
//! assert!(a.mrlt[1] > 0.5 && b.mrlt[0] > 0.5); // one hole vs none
//! assert!(geometry_score(&a.mrlt, &b.mrlt)? > 0.3);
//! # Ok::<(), gan_eval::GanEvalError>(())
//! ```

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use ndarray::ArrayView2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::util::{check_finite, check_rows, stream_seed};
use crate::{GanEvalError, Result};

/// Reference default number of landmarks.
pub const DEFAULT_LANDMARKS: usize = 64;
/// Reference default number of RLT entries.
pub const DEFAULT_I_MAX: usize = 100;
/// Reference default number of landmark draws.
pub const DEFAULT_DRAWS: usize = 1000;
/// From this dimension on, distances are computed as `‖x‖² + ‖l‖² − 2xᵀl` with a blocked GEMM;
/// below it, directly as `Σ (x_k − l_k)²` (bit-for-bit as `scipy.spatial.distance.cdist`).
pub const GEMM_MIN_DIM: usize = 16;
/// [`mean_rlt`] computes all N² point distances once (8·N² bytes) instead of N·L₀ per draw when
/// D ≥ [`GEMM_MIN_DIM`], N ≤ this and `n_draws · L₀ ≥ 2N`.
pub const PRECOMPUTE_MAX_POINTS: usize = 6000;
/// Largest supported `L_0`: the per-draw triangle table has `L_0(L_0−1)(L_0−2)/6` entries.
pub const MAX_LANDMARKS: usize = 256;

/// The reference's default γ for N points: `1/128 · N/5000 = N/640000`.
pub fn default_gamma(n_points: usize) -> f64 {
    n_points as f64 / 640_000.0
}

/// Parameters of [`mean_rlt`]; defaults as the reference's `rlts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GsConfig {
    /// Landmarks per draw, `L_0` (default 64; 1 ≤ L_0 ≤ min(N, [`MAX_LANDMARKS`])).
    pub landmarks: usize,
    /// Relaxation factor γ > 0; `None` (default): [`default_gamma`] of the cloud's size.
    pub gamma: Option<f64>,
    /// Number of RLT entries (default 100).
    pub i_max: usize,
    /// Number of landmark draws (default 1000).
    pub n_draws: usize,
    /// Seed of the landmark draws.
    pub seed: u64,
}

impl Default for GsConfig {
    fn default() -> Self {
        Self {
            landmarks: DEFAULT_LANDMARKS,
            gamma: None,
            i_max: DEFAULT_I_MAX,
            n_draws: DEFAULT_DRAWS,
            seed: 0,
        }
    }
}

impl GsConfig {
    /// The γ used for a cloud of `n_points` points.
    pub fn gamma_for(&self, n_points: usize) -> f64 {
        self.gamma.unwrap_or_else(|| default_gamma(n_points))
    }

    /// Checks every field against a cloud of `n_points` points.
    pub fn validate(&self, n_points: usize) -> Result<()> {
        check_landmark_count(self.landmarks, n_points)?;
        check_gamma(self.gamma_for(n_points))?;
        check_i_max(self.i_max)?;
        if self.n_draws == 0 {
            return Err(GanEvalError::invalid("n_draws", "must be at least 1"));
        }
        Ok(())
    }
}

fn check_landmark_count(landmarks: usize, n_points: usize) -> Result<()> {
    if landmarks == 0 || landmarks > n_points {
        return Err(GanEvalError::invalid(
            "landmarks",
            format!("must be between 1 and the number of points ({n_points}), got {landmarks}"),
        ));
    }
    if landmarks > MAX_LANDMARKS {
        return Err(GanEvalError::invalid(
            "landmarks",
            format!(
                "at most {MAX_LANDMARKS} are supported (the triangle table grows as L³/6), got {landmarks}"
            ),
        ));
    }
    Ok(())
}

fn check_gamma(gamma: f64) -> Result<()> {
    if !(gamma.is_finite() && gamma > 0.0) {
        return Err(GanEvalError::invalid(
            "gamma",
            format!("must be a finite number > 0, got {gamma}"),
        ));
    }
    Ok(())
}

fn check_i_max(i_max: usize) -> Result<()> {
    if i_max == 0 {
        return Err(GanEvalError::invalid("i_max", "must be at least 1"));
    }
    Ok(())
}

/// The outcome of one draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rlt {
    /// Relative living times, length `i_max`.
    pub rlt: Vec<f64>,
    /// `γ · max A` of this draw.
    pub alpha_max: f64,
    /// H1 bars `[birth, death]` with positive length, sorted; essential bars end at `alpha_max`.
    pub bars: Vec<[f64; 2]>,
    /// Whether each bar is essential (its death was ∞ and was cut at `alpha_max`).
    pub essential: Vec<bool>,
    /// Number of edges and triangles of the witness complex.
    pub edges: usize,
    /// Number of triangles of the witness complex.
    pub triangles: usize,
}

/// Mean relative living times over many draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanRlt {
    /// MRLT, length `i_max`.
    pub mrlt: Vec<f64>,
    /// Standard error of each entry (sample std, ddof 1, / √n_draws; 0 for one draw).
    pub std_err: Vec<f64>,
    /// Number of draws.
    pub n_draws: usize,
    /// Landmarks per draw.
    pub landmarks: usize,
    /// γ used.
    pub gamma: f64,
    /// Number of points in the cloud.
    pub n_points: usize,
}

/// RLT of one draw with the given landmark indices (rows of `points`, repeats allowed).
pub fn relative_living_times(
    points: ArrayView2<'_, f64>,
    landmarks: &[usize],
    gamma: f64,
    i_max: usize,
) -> Result<Rlt> {
    check_rows(points, "points", 1)?;
    check_finite(points, "points")?;
    let n = points.nrows();
    // Explicit indices may repeat, so only the table size limits their number.
    check_landmark_count(landmarks.len(), MAX_LANDMARKS)?;
    if let Some((k, &l)) = landmarks.iter().enumerate().find(|(_, l)| **l >= n) {
        return Err(GanEvalError::invalid(
            "landmark indices",
            format!("index {l} at position {k} is out of range for {n} points"),
        ));
    }
    check_gamma(gamma)?;
    check_i_max(i_max)?;
    let cloud = Cloud::new(points);
    let mut ws = Workspace::new(n, landmarks.len());
    ws.draw(&cloud, landmarks, gamma, i_max, Par::rayon(0))
}

/// MRLT of `points` over `config.n_draws` landmark draws (rayon-parallel, deterministic in the seed).
pub fn mean_rlt(points: ArrayView2<'_, f64>, config: &GsConfig) -> Result<MeanRlt> {
    mean_rlt_with_progress(points, config, &|| {})
}

/// [`mean_rlt`], calling `tick` once per finished draw (for progress bars).
pub fn mean_rlt_with_progress(
    points: ArrayView2<'_, f64>,
    config: &GsConfig,
    tick: &(dyn Fn() + Sync),
) -> Result<MeanRlt> {
    check_rows(points, "points", 1)?;
    check_finite(points, "points")?;
    let n = points.nrows();
    config.validate(n)?;
    let gamma = config.gamma_for(n);
    let mut cloud = Cloud::new(points);
    let l0 = config.landmarks;
    cloud.precompute(config.n_draws, l0);
    let rlts: Vec<Vec<f64>> = (0..config.n_draws)
        .into_par_iter()
        .map_init(
            || (Workspace::new(n, l0), Vec::with_capacity(l0)),
            |(ws, idx), k| {
                landmark_draw_into(n, l0, config.seed, k, idx);
                let r = ws.draw(&cloud, idx, gamma, config.i_max, Par::Seq);
                tick();
                r.map(|r| r.rlt)
            },
        )
        .collect::<Result<_>>()?;
    let nd = rlts.len() as f64;
    let mrlt: Vec<f64> = (0..config.i_max)
        .map(|i| rlts.iter().map(|r| r[i]).sum::<f64>() / nd)
        .collect();
    let std_err = (0..config.i_max)
        .map(|i| {
            if rlts.len() < 2 {
                return 0.0;
            }
            let var = rlts
                .iter()
                .map(|r| (r[i] - mrlt[i]) * (r[i] - mrlt[i]))
                .sum::<f64>()
                / (nd - 1.0);
            (var / nd).sqrt()
        })
        .collect();
    Ok(MeanRlt {
        mrlt,
        std_err,
        n_draws: config.n_draws,
        landmarks: l0,
        gamma,
        n_points: n,
    })
}

/// The landmark indices of draw `k` in [`mean_rlt`]: `landmarks` indices uniform in `0..n_points`, with
/// replacement, from the seed `stream_seed(seed, k)`.
pub fn landmark_draw(n_points: usize, landmarks: usize, seed: u64, k: usize) -> Vec<usize> {
    let mut idx = Vec::with_capacity(landmarks);
    landmark_draw_into(n_points, landmarks, seed, k, &mut idx);
    idx
}

fn landmark_draw_into(
    n_points: usize,
    landmarks: usize,
    seed: u64,
    k: usize,
    idx: &mut Vec<usize>,
) {
    let mut rng = StdRng::seed_from_u64(stream_seed(seed, k as u64));
    idx.clear();
    idx.extend((0..landmarks).map(|_| rng.random_range(0..n_points)));
}

/// `GS = Σ_i (a[i] − b[i])²` of two MRLT vectors of equal length.
pub fn geometry_score(mrlt_a: &[f64], mrlt_b: &[f64]) -> Result<f64> {
    if mrlt_a.len() != mrlt_b.len() || mrlt_a.is_empty() {
        return Err(GanEvalError::shape(
            "geometry_score",
            "two non-empty MRLT vectors of the same length (same i_max)",
            format!("lengths {} and {}", mrlt_a.len(), mrlt_b.len()),
        ));
    }
    if let Some(v) = mrlt_a.iter().chain(mrlt_b).find(|v| !v.is_finite()) {
        return Err(GanEvalError::invalid(
            "mrlt",
            format!("holds a non-finite value ({v})"),
        ));
    }
    Ok(mrlt_a
        .iter()
        .zip(mrlt_b)
        .map(|(a, b)| (a - b) * (a - b))
        .sum())
}

/// RLT of a set of H1 intervals `[birth, death)` (`death = ∞` allowed, replaced by `alpha_max`), as the
/// reference's `relative`: the axis is cut at every endpoint and at 0 and α_max; each piece counts for the
/// number of intervals containing it; pieces with `≥ i_max` intervals are dropped; the lengths are divided
/// by α_max. No interval at all gives `e₀`. Intervals must have `birth ≤ death`.
pub fn rlt_from_bars(bars: &[[f64; 2]], alpha_max: f64, i_max: usize) -> Result<Vec<f64>> {
    check_i_max(i_max)?;
    if !(alpha_max.is_finite() && alpha_max > 0.0) {
        return Err(GanEvalError::invalid(
            "alpha_max",
            format!("must be a finite number > 0, got {alpha_max}"),
        ));
    }
    let mut births = Vec::with_capacity(bars.len());
    let mut deaths = Vec::with_capacity(bars.len());
    for (k, &[b, d]) in bars.iter().enumerate() {
        let d = if d.is_infinite() && d > 0.0 {
            alpha_max
        } else {
            d
        };
        if !(b.is_finite() && d.is_finite() && b >= 0.0 && b <= d) {
            return Err(GanEvalError::invalid(
                "bars",
                format!("bar {k} = [{b}, {d}] is not an interval with 0 ≤ birth ≤ death"),
            ));
        }
        births.push(b);
        deaths.push(d);
    }
    let mut rlt = vec![0.0; i_max];
    if bars.is_empty() {
        rlt[0] = 1.0;
        return Ok(rlt);
    }
    sweep(&mut births, &mut deaths, alpha_max, &mut rlt);
    Ok(rlt)
}

/// The sweep behind [`rlt_from_bars`] (validated input; sorts `births` and `deaths` in place).
fn sweep(births: &mut [f64], deaths: &mut [f64], alpha_max: f64, rlt: &mut [f64]) {
    let mut points: Vec<f64> = Vec::with_capacity(2 * births.len() + 2);
    points.extend_from_slice(births);
    points.extend_from_slice(deaths);
    points.push(0.0);
    points.push(alpha_max);
    points.sort_by(f64::total_cmp);
    points.dedup();
    births.sort_by(f64::total_cmp);
    deaths.sort_by(f64::total_cmp);
    let (mut ib, mut id) = (0usize, 0usize);
    for w in points.windows(2) {
        let x = w[0];
        while ib < births.len() && births[ib] <= x {
            ib += 1;
        }
        while id < deaths.len() && deaths[id] <= x {
            id += 1;
        }
        // Intervals containing (x, next): born at or before x, dying after x.
        let count = ib - id;
        if count < rlt.len() {
            rlt[count] += w[1] - x;
        }
    }
    for v in rlt.iter_mut() {
        *v /= alpha_max;
    }
}

/// The point cloud in row-major f64 (borrowed when already standard layout) with its squared norms (for
/// the GEMM distance route).
struct Cloud<'a> {
    data: std::borrow::Cow<'a, [f64]>,
    n: usize,
    dim: usize,
    sq_norms: Vec<f64>,
    /// All N × N point–point distances (row-major), when precomputed by [`Cloud::precompute`].
    all: Option<Vec<f64>>,
}

impl<'a> Cloud<'a> {
    fn new(points: ArrayView2<'a, f64>) -> Self {
        let (n, dim) = points.dim();
        let data = match points.to_slice() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(points.iter().copied().collect()),
        };
        let sq_norms = if dim >= GEMM_MIN_DIM {
            data.chunks_exact(dim)
                .map(|r| r.iter().map(|v| v * v).sum())
                .collect()
        } else {
            Vec::new()
        };
        Self {
            data,
            n,
            dim,
            sq_norms,
            all: None,
        }
    }

    /// Computes every point–point distance once (one N × N × D GEMM) when that is cheaper than the
    /// per-draw N × L₀ × D products and fits in [`PRECOMPUTE_MAX_POINTS`]² entries.
    fn precompute(&mut self, draws: usize, landmarks: usize) {
        let n = self.n;
        if self.dim < GEMM_MIN_DIM || n > PRECOMPUTE_MAX_POINTS || draws * landmarks < 2 * n {
            return;
        }
        let x = MatRef::from_row_major_slice(&self.data, n, self.dim);
        let mut g = Mat::<f64>::zeros(n, n);
        matmul(
            g.as_mut(),
            Accum::Replace,
            x,
            x.transpose(),
            1.0,
            faer::get_global_parallelism(),
        );
        let mut all = vec![0.0; n * n];
        for j in 0..n {
            for i in 0..n {
                all[i * n + j] = if i == j {
                    0.0
                } else {
                    (self.sq_norms[i] + self.sq_norms[j] - 2.0 * g[(i, j)])
                        .max(0.0)
                        .sqrt()
                };
            }
        }
        self.all = Some(all);
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Index of the edge {a, b}, a < b, in the packed list of pairs.
#[inline]
fn edge_index(a: usize, b: usize) -> usize {
    b * (b - 1) / 2 + a
}

/// Index of the triangle {a, b, c}, a < b < c, in the packed list of triples.
#[inline]
fn triangle_index(a: usize, b: usize, c: usize) -> usize {
    c * (c - 1) * (c - 2) / 6 + b * (b - 1) / 2 + a
}

#[inline]
fn sort3(a: usize, b: usize, c: usize) -> (usize, usize, usize) {
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    let (b, c) = if b < c { (b, c) } else { (c, b) };
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    (a, b, c)
}

const ABSENT: u32 = u32::MAX;

/// Buffers of one draw, reused across draws (no allocation per simplex).
struct Workspace {
    l: usize,
    /// Vertices of each packed edge / triangle.
    edge_ends: Vec<[u16; 2]>,
    tri_ends: Vec<[u16; 3]>,
    /// N × L witness–landmark distances, row-major.
    dist: Vec<f64>,
    /// Gathered landmark coordinates (L × D) and the L × N Gram matrix `L Xᵀ` for the GEMM route.
    lmk: Vec<f64>,
    gram: Mat<f64>,
    /// Min relaxation per edge / triangle (∞ = never witnessed).
    edge_val: Vec<f64>,
    tri_val: Vec<f64>,
    /// A witness's candidate landmarks, sorted by distance.
    cand: Vec<(f64, u32)>,
    /// Persistence buffers.
    order: Vec<(f64, u32)>,
    parent: Vec<u32>,
    edge_rank: Vec<u32>,
    rank_value: Vec<f64>,
    pivot_col: Vec<u32>,
    pool: Vec<u32>,
    cols: Vec<(u32, u32)>,
    col: Vec<u32>,
    scratch: Vec<u32>,
    bars: Vec<[f64; 2]>,
    essential: Vec<bool>,
}

impl Workspace {
    fn new(_n: usize, l: usize) -> Self {
        let n_edges = l * l.saturating_sub(1) / 2;
        let n_tri = if l >= 3 { l * (l - 1) * (l - 2) / 6 } else { 0 };
        let mut edge_ends = Vec::with_capacity(n_edges);
        for b in 1..l {
            for a in 0..b {
                edge_ends.push([a as u16, b as u16]);
            }
        }
        let mut tri_ends = Vec::with_capacity(n_tri);
        for c in 2..l {
            for b in 1..c {
                for a in 0..b {
                    tri_ends.push([a as u16, b as u16, c as u16]);
                }
            }
        }
        Self {
            l,
            edge_ends,
            tri_ends,
            dist: Vec::new(),
            lmk: Vec::new(),
            gram: Mat::new(),
            edge_val: vec![f64::INFINITY; n_edges],
            tri_val: vec![f64::INFINITY; n_tri],
            cand: Vec::with_capacity(l),
            order: Vec::new(),
            parent: vec![0; l],
            edge_rank: vec![ABSENT; n_edges],
            rank_value: Vec::new(),
            pivot_col: Vec::new(),
            pool: Vec::new(),
            cols: Vec::new(),
            col: Vec::new(),
            scratch: Vec::new(),
            bars: Vec::new(),
            essential: Vec::new(),
        }
    }

    fn draw(
        &mut self,
        cloud: &Cloud,
        landmarks: &[usize],
        gamma: f64,
        i_max: usize,
        par: Par,
    ) -> Result<Rlt> {
        debug_assert_eq!(landmarks.len(), self.l);
        self.distances(cloud, landmarks, par);
        let max_dist = self.dist.iter().copied().fold(0.0f64, f64::max);
        let alpha_max = gamma * max_dist;
        if !(alpha_max > 0.0 && alpha_max.is_finite()) {
            return Err(GanEvalError::invalid(
                "points",
                format!(
                    "α_max = γ·max distance = {alpha_max}: the landmarks coincide with every point (all points identical?)"
                ),
            ));
        }
        self.witness_complex(cloud.n, alpha_max);
        let (edges, triangles) = self.h1();
        let mut rlt = vec![0.0; i_max];
        if self.bars.is_empty() {
            rlt[0] = 1.0;
        } else {
            let mut births: Vec<f64> = self.bars.iter().map(|b| b[0]).collect();
            let mut deaths: Vec<f64> = self
                .bars
                .iter()
                .map(|b| if b[1].is_infinite() { alpha_max } else { b[1] })
                .collect();
            sweep(&mut births, &mut deaths, alpha_max, &mut rlt);
        }
        let mut pairs: Vec<([f64; 2], bool)> = self
            .bars
            .iter()
            .zip(&self.essential)
            .map(|(b, &e)| ([b[0], if e { alpha_max } else { b[1] }], e))
            .collect();
        pairs.sort_by(|x, y| {
            x.0[0]
                .total_cmp(&y.0[0])
                .then(x.0[1].total_cmp(&y.0[1]))
                .then(x.1.cmp(&y.1))
        });
        Ok(Rlt {
            rlt,
            alpha_max,
            bars: pairs.iter().map(|p| p.0).collect(),
            essential: pairs.iter().map(|p| p.1).collect(),
            edges,
            triangles,
        })
    }

    /// Fills `dist` (N × L) with witness–landmark distances.
    fn distances(&mut self, cloud: &Cloud, landmarks: &[usize], par: Par) {
        let (n, l, dim) = (cloud.n, self.l, cloud.dim);
        self.dist.clear();
        self.dist.resize(n * l, 0.0);
        if let Some(all) = &cloud.all {
            // The matrix is symmetric: read landmark rows contiguously and scatter them into columns.
            for (j, &lm) in landmarks.iter().enumerate() {
                let src = &all[lm * n..(lm + 1) * n];
                for (w, &v) in src.iter().enumerate() {
                    self.dist[w * l + j] = v;
                }
            }
            return;
        }
        self.lmk.clear();
        for &lm in landmarks {
            self.lmk.extend_from_slice(cloud.row(lm));
        }
        // Squared distances first, then one vectorisable square-root pass (same values as sqrt(sum)).
        if dim < GEMM_MIN_DIM {
            for (w, out) in self.dist.chunks_exact_mut(l).enumerate() {
                let xw = cloud.row(w);
                for (o, xl) in out.iter_mut().zip(self.lmk.chunks_exact(dim)) {
                    *o = xw.iter().zip(xl).map(|(a, b)| (a - b) * (a - b)).sum();
                }
            }
        } else {
            let x = MatRef::from_row_major_slice(&cloud.data, n, dim);
            let lm = MatRef::from_row_major_slice(&self.lmk, l, dim);
            // G = L Xᵀ (L × N, column-major): witness w's inner products are contiguous.
            if self.gram.nrows() != l || self.gram.ncols() != n {
                self.gram = Mat::zeros(l, n);
            }
            let g = &mut self.gram;
            matmul(g.as_mut(), Accum::Replace, lm, x.transpose(), 1.0, par);
            for (w, out) in self.dist.chunks_exact_mut(l).enumerate() {
                let nw = cloud.sq_norms[w];
                let gw = g.col(w);
                for (j, (o, &lmi)) in out.iter_mut().zip(landmarks).enumerate() {
                    *o = if lmi == w {
                        0.0
                    } else {
                        (nw + cloud.sq_norms[lmi] - 2.0 * gw[j]).max(0.0)
                    };
                }
            }
        }
        for v in self.dist.iter_mut() {
            *v = v.sqrt();
        }
    }

    /// Minimum relaxation of every edge and triangle over all witnesses (closed form of gudhi's relaxed
    /// witness complex, see the module docs).
    fn witness_complex(&mut self, n: usize, alpha: f64) {
        let l = self.l;
        self.edge_val.fill(f64::INFINITY);
        self.tri_val.fill(f64::INFINITY);
        for w in 0..n {
            let row = &self.dist[w * l..(w + 1) * l];
            // Third smallest distance: every landmark that can be in a witnessed simplex of ≤ 3 vertices
            // satisfies d − α ≤ d_2.
            let (mut m0, mut m1, mut m2) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
            for &d in row {
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
            let cand = &mut self.cand;
            cand.clear();
            cand.extend(
                row.iter()
                    .enumerate()
                    .filter(|(_, d)| **d - alpha <= m2)
                    .map(|(j, &d)| (d, j as u32)),
            );
            cand.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let c = cand.len();
            let id = |p: usize| cand[p].1 as usize;
            let dd = |p: usize| cand[p].0;
            // Last position j with d_j − α ≤ d_p.
            let reach = |p: usize| {
                let dp = dd(p);
                let mut q = p;
                while q + 1 < c && dd(q + 1) - alpha <= dp {
                    q += 1;
                }
                q
            };
            let ev = &mut self.edge_val;
            let tv = &mut self.tri_val;
            let mut upd_e = |a: usize, b: usize, v: f64| {
                let (a, b) = if a < b { (a, b) } else { (b, a) };
                let e = &mut ev[edge_index(a, b)];
                if v < *e {
                    *e = v;
                }
            };
            let mut upd_t = |a: usize, b: usize, cc: usize, v: f64| {
                let (a, b, cc) = sort3(a, b, cc);
                let t = &mut tv[triangle_index(a, b, cc)];
                if v < *t {
                    *t = v;
                }
            };
            // σ = first positions only (first omitted p = |σ|): relaxation 0.
            if c >= 2 {
                upd_e(id(0), id(1), 0.0);
            }
            if c >= 3 {
                upd_t(id(0), id(1), id(2), 0.0);
            }
            // p = 0: σ ⊂ {1..=q0}.
            if c >= 2 {
                let q0 = reach(0);
                let d0 = dd(0);
                for k in 2..=q0 {
                    let v = dd(k) - d0;
                    for j in 1..k {
                        upd_e(id(j), id(k), v);
                        for i in 1..j {
                            upd_t(id(i), id(j), id(k), v);
                        }
                    }
                }
            }
            // p = 1: σ = {0} ∪ T, T ⊂ {2..=q1}.
            if c >= 3 {
                let q1 = reach(1);
                let d1 = dd(1);
                for k in 2..=q1 {
                    let v = dd(k) - d1;
                    upd_e(id(0), id(k), v);
                    for j in 2..k {
                        upd_t(id(0), id(j), id(k), v);
                    }
                }
            }
            // p = 2: σ = {0, 1, j}, j ∈ {3..=q2}.
            if c >= 4 {
                let q2 = reach(2);
                let d2 = dd(2);
                for k in 3..=q2 {
                    upd_t(id(0), id(1), id(k), dd(k) - d2);
                }
            }
        }
    }

    /// H1 bars of the complex in `edge_val`/`tri_val` (into `bars`, `essential`); returns the number of
    /// edges and triangles.
    fn h1(&mut self) -> (usize, usize) {
        let l = self.l;
        self.bars.clear();
        self.essential.clear();
        // Edges in filtration order; union–find splits them into negative (H0 deaths) and positive.
        self.order.clear();
        self.order.extend(
            self.edge_val
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(e, &v)| (v, e as u32)),
        );
        self.order
            .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let n_edges = self.order.len();
        for (i, p) in self.parent.iter_mut().enumerate() {
            *p = i as u32;
        }
        fn find(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                let gp = parent[parent[x as usize] as usize];
                parent[x as usize] = gp;
                x = gp;
            }
            x
        }
        self.edge_rank.fill(ABSENT);
        self.rank_value.clear();
        for &(v, e) in &self.order {
            let [a, b] = self.edge_ends[e as usize];
            let (ra, rb) = (
                find(&mut self.parent, a as u32),
                find(&mut self.parent, b as u32),
            );
            if ra != rb {
                self.parent[ra.max(rb) as usize] = ra.min(rb);
            } else {
                self.edge_rank[e as usize] = self.rank_value.len() as u32;
                self.rank_value.push(v);
            }
        }
        let n_pos = self.rank_value.len();
        // Triangles whose three edges are in the complex, in filtration order.
        self.order.clear();
        if l >= 3 {
            let mut t = 0usize;
            for c in 2..l {
                for b in 1..c {
                    for a in 0..b {
                        let v = self.tri_val[t];
                        if v.is_finite() {
                            let (e1, e2, e3) =
                                (edge_index(a, b), edge_index(a, c), edge_index(b, c));
                            let (f1, f2, f3) =
                                (self.edge_val[e1], self.edge_val[e2], self.edge_val[e3]);
                            if f1.is_finite() && f2.is_finite() && f3.is_finite() {
                                self.order.push((v.max(f1).max(f2).max(f3), t as u32));
                            }
                        }
                        t += 1;
                    }
                }
            }
        }
        self.order
            .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let n_tri = self.order.len();
        // Column reduction with a pivot → stored-column map; rows of negative edges are cleared.
        self.pivot_col.clear();
        self.pivot_col.resize(n_pos, ABSENT);
        self.pool.clear();
        self.cols.clear();
        for k in 0..n_tri {
            let (ft, t) = self.order[k];
            let [a, b, c] = self.tri_ends[t as usize].map(usize::from);
            self.col.clear();
            for e in [edge_index(a, b), edge_index(a, c), edge_index(b, c)] {
                let r = self.edge_rank[e];
                if r != ABSENT {
                    self.col.push(r);
                }
            }
            self.col.sort_unstable();
            while let Some(&low) = self.col.last() {
                let pc = self.pivot_col[low as usize];
                if pc == ABSENT {
                    let start = self.pool.len() as u32;
                    self.pool.extend_from_slice(&self.col);
                    self.cols.push((start, self.col.len() as u32));
                    self.pivot_col[low as usize] = (self.cols.len() - 1) as u32;
                    let birth = self.rank_value[low as usize];
                    if ft > birth {
                        self.bars.push([birth, ft]);
                        self.essential.push(false);
                    }
                    break;
                }
                let (s, len) = self.cols[pc as usize];
                let other = &self.pool[s as usize..(s + len) as usize];
                xor_sorted(&self.col, other, &mut self.scratch);
                std::mem::swap(&mut self.col, &mut self.scratch);
            }
        }
        for r in 0..n_pos {
            if self.pivot_col[r] == ABSENT {
                self.bars.push([self.rank_value[r], f64::INFINITY]);
                self.essential.push(true);
            }
        }
        (n_edges, n_tri)
    }
}

/// Symmetric difference of two sorted lists (Z/2 column addition) into `out`.
fn xor_sorted(a: &[u32], b: &[u32], out: &mut Vec<u32>) {
    out.clear();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_indices_are_dense_and_ordered() {
        let l = 9;
        let mut e = 0;
        for b in 1..l {
            for a in 0..b {
                assert_eq!(edge_index(a, b), e);
                e += 1;
            }
        }
        let mut t = 0;
        for c in 2..l {
            for b in 1..c {
                for a in 0..b {
                    assert_eq!(triangle_index(a, b, c), t);
                    t += 1;
                }
            }
        }
        assert_eq!(sort3(5, 1, 3), (1, 3, 5));
        assert_eq!(sort3(2, 9, 0), (0, 2, 9));
    }

    #[test]
    fn xor_of_sorted_columns() {
        let mut out = Vec::new();
        xor_sorted(&[1, 3, 5, 9], &[3, 4, 9], &mut out);
        assert_eq!(out, vec![1, 4, 5]);
    }
}
