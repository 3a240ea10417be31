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
//! 5. H1 persistence over Z/2 (the pairs of the column reduction of the triangle boundaries, computed
//!    as persistent cohomology): union–find over the edges in filtration order (negative edges merge
//!    components and are cleared), then the coboundary columns of the positive edges are reduced from
//!    the youngest edge to the oldest; a column with oldest triangle t gives the bar `[f(e), f(t))`;
//!    positive edges whose column vanishes are essential: `[f(e), ∞)`, cut at α_max.
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
//! Speed (one draw is single-threaded; [`mean_rlt`] runs draws in parallel): the complex needs, per
//! witness, only the landmarks within `d₂ + α_max` (≈ 3–7 of 64) and the largest distance. For
//! D ≥ [`GEMM_MIN_DIM`] a single-precision GEMM on `f32(x − x₀)` screens all N·L₀ pairs with a rigorous
//! error bound, and only the pairs that can matter are computed exactly in f64 (`distances` module docs);
//! below it, all squared distances are computed exactly (bit-for-bit scipy's `cdist`) landmark-parallel
//! and square roots are taken for the candidates only. Either way the result equals computing every
//! distance exactly. [`mean_rlt`] with many draws converts the cloud once, or computes all N² distances
//! once ([`PRECOMPUTE_MAX_POINTS`]; f64 GEMMs over the upper triangle, mirrored; round-off level), and
//! each draw then reads its landmarks' rows. Edge and triangle values live in packed tables with
//! touched-entry lists (no allocation per simplex; [`relative_living_times`] keeps its buffers per
//! thread between calls); H1 is persistent cohomology with clearing, its columns filled at once in
//! filtration order and the colliding ones reduced in a bit set. Hot loops have AVX2 builds chosen at
//! run time, with the same arithmetic as the portable code.
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

use ndarray::ArrayView2;
use nn_core::progress::Progress;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::util::{check_rows, stream_seed};
use crate::{GanEvalError, Result};

mod complex;
mod distances;

use complex::Workspace;
use distances::{Cloud, check_finite_rows};

/// Reference default number of landmarks.
pub const DEFAULT_LANDMARKS: usize = 64;
/// Reference default number of RLT entries.
pub const DEFAULT_I_MAX: usize = 100;
/// Reference default number of landmark draws.
pub const DEFAULT_DRAWS: usize = 1000;
/// From this dimension on, witness–landmark pairs are screened by a single-precision GEMM and the needed
/// ones computed exactly with a 16-lane sum; below it, every squared distance is `Σ (x_k − l_k)²` left to
/// right (bit-for-bit as `scipy.spatial.distance.cdist`).
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
    let cloud = cloud_of(points)?;
    let n = cloud.n;
    // Explicit indices may repeat, so only the table size limits their number.
    if landmarks.is_empty() || landmarks.len() > MAX_LANDMARKS {
        return Err(GanEvalError::invalid(
            "landmark indices",
            format!(
                "{} given: expected 1 … {MAX_LANDMARKS} indices (repeats allowed)",
                landmarks.len()
            ),
        ));
    }
    if let Some((k, &l)) = landmarks.iter().enumerate().find(|(_, l)| **l >= n) {
        return Err(GanEvalError::invalid(
            "landmark indices",
            format!("index {l} at position {k} is out of range for {n} points"),
        ));
    }
    check_gamma(gamma)?;
    check_i_max(i_max)?;
    // Reuse this thread's buffers (the tables and, for clouds up to CACHE_MAX_ENTRIES · L₀ entries, the
    // N × L₀ distance buffers): repeated single draws then allocate nothing large.
    let l = landmarks.len();
    let mut ws = WORKSPACE
        .with(|c| c.borrow_mut().take())
        .filter(|w| w.l == l)
        .unwrap_or_else(|| Workspace::new(l));
    let r = ws.draw(&cloud, landmarks, gamma, i_max);
    if n * l <= CACHE_MAX_ENTRIES {
        WORKSPACE.with(|c| *c.borrow_mut() = Some(ws));
    }
    r
}

/// Largest N·L₀ whose buffers [`relative_living_times`] keeps per thread between calls (≈ 32 MB).
const CACHE_MAX_ENTRIES: usize = 1 << 21;

thread_local! {
    static WORKSPACE: std::cell::RefCell<Option<Workspace>> = const { std::cell::RefCell::new(None) };
}

/// The cloud as row-major f64 (borrowed when already standard layout; finiteness is checked by the
/// draw, fused with its first pass over the data).
fn cloud_of(points: ArrayView2<'_, f64>) -> Result<Cloud<'_>> {
    let (n, dim) = points.dim();
    let data = match points.to_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(points.iter().copied().collect()),
    };
    Ok(Cloud::new(data, n, dim))
}

/// MRLT of `points` over `config.n_draws` landmark draws (rayon-parallel, deterministic in the seed).
pub fn mean_rlt(points: ArrayView2<'_, f64>, config: &GsConfig) -> Result<MeanRlt> {
    mean_rlt_with_progress(points, config, None)
}

/// [`mean_rlt`], reporting the `n_draws` draws to `progress` (one unit per finished draw).
pub fn mean_rlt_with_progress(
    points: ArrayView2<'_, f64>,
    config: &GsConfig,
    progress: Option<&dyn Progress>,
) -> Result<MeanRlt> {
    if let Some(p) = progress {
        p.start(config.n_draws as u64, 0);
    }
    check_rows(points, "points", 1)?;
    let mut cloud = cloud_of(points)?;
    check_finite_rows(&cloud.data, cloud.dim, "points")?;
    let n = cloud.n;
    config.validate(n)?;
    let gamma = config.gamma_for(n);
    let l0 = config.landmarks;
    if config.n_draws > 1 {
        cloud.prepare_for_draws(config.n_draws, l0);
    }
    let rlts: Vec<Vec<f64>> = (0..config.n_draws)
        .into_par_iter()
        .map_init(
            || (Workspace::new(l0), Vec::with_capacity(l0)),
            |(ws, idx), k| {
                landmark_draw_into(n, l0, config.seed, k, idx);
                let r = ws.draw(&cloud, idx, gamma, config.i_max);
                if let Some(p) = progress {
                    p.advance(1);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    use complex::{edge_index, sort3, triangle_index};

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

    fn gaussian(n: usize, d: usize, seed: u64) -> ndarray::Array2<f64> {
        use rand_distr::StandardNormal;
        let mut rng = StdRng::seed_from_u64(seed);
        ndarray::Array2::from_shape_simple_fn((n, d), || rng.sample::<f64, _>(StandardNormal))
    }

    /// One draw through the screened route and through the exact route (every distance computed
    /// exactly): the two must agree bit for bit.
    fn both_routes(x: &ndarray::Array2<f64>, idx: &[usize], gamma: f64) -> (Rlt, Rlt) {
        let cloud = cloud_of(x.view()).unwrap();
        let mut ws = Workspace::new(idx.len());
        let screened = ws.draw(&cloud, idx, gamma, 100).unwrap();
        let mut ws = Workspace::new(idx.len());
        ws.exact_only = true;
        let exact = ws.draw(&cloud, idx, gamma, 100).unwrap();
        (screened, exact)
    }

    #[test]
    fn screened_route_equals_the_exact_route_bit_for_bit() {
        // 64-D Gaussian, plus a large common offset (large bounds, many candidates), plus a cloud
        // whose farthest points come last (α grows after the first blocks: witnesses are redone), plus
        // tiny coordinates (absolute error terms); 700 points = several GEMM blocks.
        let g = gaussian(700, 64, 1);
        let offset = &g + 1.0e4;
        let mut late = g.clone();
        for (i, mut row) in late.rows_mut().into_iter().enumerate() {
            row *= 1.0 + 2.0 * (i as f64 / 700.0).powi(4);
        }
        let tiny = &g * 1e-25;
        let idx = landmark_draw(700, 32, 3, 0);
        for (name, x, gamma) in [
            ("gaussian", &g, 0.02),
            ("gaussian, γ large", &g, 0.2),
            ("offset 1e4", &offset, 0.02),
            ("farthest last", &late, 0.02),
            ("tiny", &tiny, 0.02),
        ] {
            let (s, e) = both_routes(x, &idx, gamma);
            assert_eq!(s, e, "{name}");
            assert!(
                e.edges > 32 && e.triangles > 0,
                "{name}: non-trivial complex"
            );
        }
    }

    #[test]
    fn workspace_reuse_across_draws_changes_nothing() {
        let x = gaussian(300, 20, 2);
        let mut ws = Workspace::new(16);
        let cloud = cloud_of(x.view()).unwrap();
        for k in 0..6 {
            let idx = landmark_draw(300, 16, 7, k);
            let reused = ws.draw(&cloud, &idx, 0.15, 50).unwrap();
            let fresh = Workspace::new(16).draw(&cloud, &idx, 0.15, 50).unwrap();
            assert_eq!(reused, fresh, "draw {k}");
        }
    }

    #[test]
    fn simd_kernels_equal_the_scalar_definitions() {
        let g = gaussian(3, 53, 4);
        let (a, b) = (g.row(0).to_vec(), g.row(1).to_vec());
        // Scalar definition of `exact_sq` for D ≥ 16 (16 FMA lanes, fixed reduction, tail).
        let mut acc = [0.0f64; 16];
        for k in 0..48 {
            let t = a[k] - b[k];
            acc[k % 16] = t.mul_add(t, acc[k % 16]);
        }
        let bk: Vec<f64> = (0..8).map(|k| acc[k] + acc[8 + k]).collect();
        let c: Vec<f64> = (0..4).map(|i| bk[i] + bk[4 + i]).collect();
        let tail = (48..53).fold(0.0, |s, k| s + (a[k] - b[k]) * (a[k] - b[k]));
        let want = ((c[0] + c[2]) + (c[1] + c[3])) + tail;
        assert_eq!(distances::exact_sq(&a, &b).to_bits(), want.to_bits());
        for (k, v) in distances::exact_sq_all_kernels(&a, &b).iter().enumerate() {
            assert_eq!(v.to_bits(), want.to_bits(), "kernel {k}");
        }
        let direct: f64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        assert!((want - direct).abs() <= 1e-14 * direct);
        // Third smallest, with ties and a tail.
        for len in [2usize, 3, 8, 13, 64] {
            let v: Vec<f64> = (0..len).map(|i| ((i * 37) % 11) as f64).collect();
            let mut s = v.clone();
            s.sort_by(f64::total_cmp);
            let want = if len < 3 { f64::INFINITY } else { s[2] };
            assert_eq!(distances::third_smallest(&v), want, "len {len}");
            assert_eq!(
                distances::third_smallest_scalar(v.iter().copied()),
                want,
                "len {len}"
            );
            let mut got = Vec::new();
            distances::for_each_le(&v, 4.0, |j| got.push(j));
            let expect: Vec<usize> = (0..len).filter(|&j| v[j] <= 4.0).collect();
            assert_eq!(got, expect, "len {len}");
        }
    }
}
