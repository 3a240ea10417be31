//! Linear SVM with the squared hinge loss, one-vs-rest, as scikit-learn's `LinearSVC` (liblinear):
//! solved in the dual by coordinate descent (`L2R_L2LOSS_SVC_DUAL`, `dual=True`) or in the primal by a
//! trust-region Newton method (`L2R_L2LOSS_SVC`, `dual=False`), chosen as `dual="auto"` does.
//!
//! Each binary problem (class `k` against the rest; with two classes a single problem, class 1 positive)
//! is
//!
//! ```text
//! min_w  ½‖w̃‖² + C·Σᵢ max(0, 1 − yᵢ·w̃·x̃ᵢ)²,      x̃ᵢ = [xᵢ, s],  w̃ = [w, w_b],
//! ```
//!
//! with `s = intercept_scaling` when an intercept is fitted (the intercept `s·w_b` is penalised through
//! `w_b`, as liblinear does).
//!
//! The dual solver works on `min_{α ≥ 0} ½αᵀ(Q + I/(2C))α − Σα`, `Q_ij = yᵢyⱼ x̃ᵢ·x̃ⱼ`, by coordinate
//! descent (Hsieh et al., ICML 2008, Algorithm 3; liblinear's `solve_l2r_l1l2_svc`): in
//! each outer iteration the active coordinates are visited in a fresh random order, each is minimised
//! exactly (`αᵢ ← max(αᵢ − Gᵢ/Q̄ᵢᵢ, 0)`, with `w̃` updated alongside), coordinates at the bound whose
//! gradient exceeds the previous iteration's largest projected gradient are shrunk out, and the solver
//! stops when the spread of projected gradients `max PG − min PG` is at most `tol` over all coordinates
//! (after shrinking, the full set is re-checked), or after `max_iter` outer iterations — the rules of
//! scikit-learn's copy of liblinear.
//!
//! The primal solver is liblinear's TRON (Lin, Weng & Keerthi 2008) on the same objective: conjugate
//! gradients on the generalised Hessian `I + 2C·Σ_{i∈I} x̃ᵢx̃ᵢᵀ` (`I` the samples inside the margin) up to
//! residual `0.1‖g‖` or the trust-region boundary, the trust-region radius updated from the ratio of
//! actual to predicted reduction with liblinear's constants, and the stop `‖g‖ ≤ ε·‖g₀‖` with
//! `ε = tol·max(min(#positive, #negative), 1)/n`, or after `max_iter` accepted Newton steps. The binary
//! problems run in lockstep, so that each pass over the data (a product with `x` or `xᵀ`, split over
//! threads when large) serves every class still running; this batching is several times faster than
//! solving the problems one by one with matrix-vector products.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use nn_core::seed::stream_seed;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::{
    Dense, LinearError, accuracy, axpy, check_labels, dot, infer_classes, linear_scores,
    predict_from_scores, transpose_times,
};

/// Which problem [`LinearSvcParams::fit`] solves (scikit-learn's `dual` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinearSvcSolver {
    /// [`LinearSvcSolver::Dual`] when there are fewer samples than features, else
    /// [`LinearSvcSolver::Primal`] (scikit-learn's `dual="auto"`, its default).
    Auto,
    /// Dual coordinate descent with shrinking (`dual=True`): for few samples or many features.
    Dual,
    /// Trust-region Newton on the primal (`dual=False`): for many more samples than features.
    Primal,
}

/// Settings of [`LinearSvcParams::fit`]; the defaults are scikit-learn's `LinearSVC` defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearSvcParams {
    /// Weight `C` of the squared-hinge loss (finite, > 0). Default 1.
    pub c: f64,
    /// Stopping tolerance (finite, > 0): on the spread of projected dual gradients (dual), or
    /// relative to the initial gradient norm as described in the module documentation (primal).
    /// Default 1e-4.
    pub tol: f64,
    /// Most outer iterations per binary problem (≥ 1): passes over the active samples (dual) or
    /// accepted Newton steps (primal). Default 1000.
    pub max_iter: usize,
    /// Fit an intercept, as the weight of a constant extra feature. Default true.
    pub fit_intercept: bool,
    /// Value `s` of the constant extra feature (finite, > 0); the intercept is `s·w_b` and its penalty
    /// `½w_b²`, so a larger `s` regularises the intercept less. Default 1.
    pub intercept_scaling: f64,
    /// Seed of the dual solver's random visiting order (`StdRng::seed_from_u64`, one derived stream per
    /// binary problem); the primal solver is deterministic without it. Default 0.
    pub seed: u64,
    /// Dual, primal, or chosen from the shape of `x`. Default [`LinearSvcSolver::Auto`], as
    /// scikit-learn.
    pub solver: LinearSvcSolver,
}

impl Default for LinearSvcParams {
    fn default() -> Self {
        Self {
            c: 1.0,
            tol: 1e-4,
            max_iter: 1000,
            fit_intercept: true,
            intercept_scaling: 1.0,
            seed: 0,
            solver: LinearSvcSolver::Auto,
        }
    }
}

/// A fitted one-vs-rest linear SVM.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearSvc {
    coef: Array2<f64>,
    intercept: Array1<f64>,
    n_classes: usize,
    params: LinearSvcParams,
    solver: LinearSvcSolver,
    n_iter: Vec<usize>,
    converged: Vec<bool>,
    dual_objective: Option<Vec<f64>>,
}

impl LinearSvcParams {
    /// Checks every field against its documented domain.
    ///
    /// # Errors
    /// [`LinearError::InvalidParameter`] naming the first bad field.
    pub fn validate(&self) -> Result<(), LinearError> {
        let positive = |name: &'static str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(LinearError::InvalidParameter {
                    name,
                    value,
                    reason: "must be finite and > 0",
                })
            }
        };
        positive("c", self.c)?;
        positive("tol", self.tol)?;
        positive("intercept_scaling", self.intercept_scaling)?;
        if self.max_iter == 0 {
            return Err(LinearError::InvalidParameter {
                name: "max_iter",
                value: 0.0,
                reason: "must be at least 1",
            });
        }
        Ok(())
    }

    /// Fits on `x` (rows are samples) and labels `y` in `0..n_classes`: one binary problem (class 1
    /// against class 0) with two classes, one per class (that class against the rest) otherwise, with
    /// the solver [`LinearSvcParams::solver`] names. The dual solver runs the binary problems in
    /// parallel, each with its own random stream derived from `seed`; the primal one in lockstep, with
    /// parallel passes over `x`. Either way the result depends on the data, the parameters and the seed
    /// only, not on the thread count. Reaching `max_iter` is not an error: see
    /// [`LinearSvc::converged`].
    ///
    /// # Errors
    /// [`LinearError::InvalidParameter`], [`LinearError::EmptyInput`], [`LinearError::NonFinite`],
    /// [`LinearError::LabelCountMismatch`], [`LinearError::EmptyClass`],
    /// [`LinearError::TooFewClasses`].
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[usize]) -> Result<LinearSvc, LinearError> {
        self.validate()?;
        let m = Dense::new(x)?;
        let k = infer_classes(y, m.n)?;
        let problems = if k == 2 { 1 } else { k };
        let bias = self.fit_intercept.then_some(self.intercept_scaling);
        let positive = |j: usize| if problems == 1 { 1 } else { j };
        let dual = match self.solver {
            LinearSvcSolver::Auto => m.n < m.d,
            LinearSvcSolver::Dual => true,
            LinearSvcSolver::Primal => false,
        };
        let solved: Vec<Binary> = if dual {
            let sq_norms: Vec<f64> = (0..m.n).map(|i| dot(m.row(i), m.row(i))).collect();
            (0..problems)
                .into_par_iter()
                .map(|j| {
                    let signs: Vec<f64> = y
                        .iter()
                        .map(|&c| if c == positive(j) { 1.0 } else { -1.0 })
                        .collect();
                    solve_dual(
                        &m,
                        &sq_norms,
                        &signs,
                        self,
                        bias,
                        stream_seed(self.seed, j as u64),
                    )
                })
                .collect()
        } else {
            let signs: Vec<f64> = y
                .iter()
                .flat_map(|&c| {
                    (0..problems).map(move |j| if c == positive(j) { 1.0 } else { -1.0 })
                })
                .collect();
            solve_primal(&m, &signs, problems, self, bias)
        };
        let mut coef = Array2::zeros((problems, m.d));
        let mut intercept = Array1::zeros(problems);
        for (j, b) in solved.iter().enumerate() {
            coef.row_mut(j).assign(&ArrayView1::from(&b.w[..]));
            intercept[j] = bias.map_or(0.0, |s| s * b.w_bias);
        }
        Ok(LinearSvc {
            coef,
            intercept,
            n_classes: k,
            params: *self,
            solver: if dual {
                LinearSvcSolver::Dual
            } else {
                LinearSvcSolver::Primal
            },
            n_iter: solved.iter().map(|b| b.n_iter).collect(),
            converged: solved.iter().map(|b| b.converged).collect(),
            dual_objective: solved.iter().map(|b| b.dual_objective).collect(),
        })
    }
}

impl LinearSvc {
    /// Weights, `problems × n_features`: one row (class 1 positive) with two classes, one row per class
    /// otherwise (scikit-learn's `coef_`).
    pub fn coef(&self) -> ArrayView2<'_, f64> {
        self.coef.view()
    }

    /// Intercepts `intercept_scaling · w_b`, one per row of [`LinearSvc::coef`] (zeros without an
    /// intercept; `intercept_`).
    pub fn intercept(&self) -> ArrayView1<'_, f64> {
        self.intercept.view()
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of features the model was fitted on.
    pub fn n_features(&self) -> usize {
        self.coef.ncols()
    }

    /// The parameters it was fitted with.
    pub fn params(&self) -> &LinearSvcParams {
        &self.params
    }

    /// The solver that ran: [`LinearSvcSolver::Dual`] or [`LinearSvcSolver::Primal`].
    pub fn solver(&self) -> LinearSvcSolver {
        self.solver
    }

    /// Outer iterations run per binary problem (scikit-learn's `n_iter_` is their maximum).
    pub fn n_iter(&self) -> &[usize] {
        &self.n_iter
    }

    /// Whether every binary problem stopped before `max_iter`: on its stopping test, or (primal) when no
    /// further reduction was possible — the cases in which scikit-learn does not warn.
    pub fn converged(&self) -> bool {
        self.converged.iter().all(|&c| c)
    }

    /// Final dual objective `½αᵀ(Q + I/(2C))α − Σα` per binary problem (liblinear's "Objective value";
    /// at the optimum it is minus the primal objective), when the dual solver ran.
    pub fn dual_objectives(&self) -> Option<&[f64]> {
        self.dual_objective.as_deref()
    }

    /// Primal objective `½‖w̃‖² + C·Σᵢ max(0, 1 − yᵢ·w̃·x̃ᵢ)²` of each binary problem on `(x, y)` (its
    /// labels mapped to ±1 as in fitting). Comparable between solvers: for any weights it is at least
    /// minus the dual objective, with equality at the optimum.
    ///
    /// # Errors
    /// [`LinearError::FeatureCountMismatch`], [`LinearError::EmptyInput`], [`LinearError::NonFinite`],
    /// [`LinearError::LabelCountMismatch`], [`LinearError::LabelOutOfRange`].
    pub fn primal_objectives(
        &self,
        x: ArrayView2<'_, f64>,
        y: &[usize],
    ) -> Result<Vec<f64>, LinearError> {
        let m = Dense::with_features(x, self.n_features())?;
        check_labels(y, m.n, self.n_classes)?;
        let rows = self.coef.nrows();
        let z = self.scores(&m);
        let c = self.params.c;
        let s = self.params.intercept_scaling;
        Ok((0..rows)
            .map(|j| {
                let w = self.coef.row(j);
                let w_bias = if self.params.fit_intercept {
                    self.intercept[j] / s
                } else {
                    0.0
                };
                let positive = if rows == 1 { 1 } else { j };
                let loss: f64 = y
                    .iter()
                    .enumerate()
                    .map(|(i, &label)| {
                        let yi = if label == positive { 1.0 } else { -1.0 };
                        let h = (1.0 - yi * z[i * rows + j]).max(0.0);
                        h * h
                    })
                    .sum();
                0.5 * (w.dot(&w) + w_bias * w_bias) + c * loss
            })
            .collect())
    }

    /// Scores `x·coefᵀ + intercept`, `n_samples × rows` (one column with two classes: positive means
    /// class 1).
    ///
    /// # Errors
    /// [`LinearError::FeatureCountMismatch`], [`LinearError::EmptyInput`], [`LinearError::NonFinite`].
    pub fn decision_function(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>, LinearError> {
        let m = Dense::with_features(x, self.n_features())?;
        let z = self.scores(&m);
        Ok(Array2::from_shape_vec((m.n, self.coef.nrows()), z).expect("n·rows scores"))
    }

    /// Class of each row: the highest score (the first on ties), or class 1 when the single binary score
    /// is > 0.
    ///
    /// # Errors
    /// As [`LinearSvc::decision_function`].
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Vec<usize>, LinearError> {
        let m = Dense::with_features(x, self.n_features())?;
        let z = self.scores(&m);
        Ok(predict_from_scores(&z, self.coef.nrows()))
    }

    /// Fraction of rows of `x` whose predicted class equals the label.
    ///
    /// # Errors
    /// As [`LinearSvc::decision_function`], and [`LinearError::LabelCountMismatch`].
    pub fn score(&self, x: ArrayView2<'_, f64>, y: &[usize]) -> Result<f64, LinearError> {
        let pred = self.predict(x)?;
        check_labels(y, pred.len(), usize::MAX)?;
        Ok(accuracy(&pred, y))
    }

    fn scores(&self, m: &Dense<'_>) -> Vec<f64> {
        let coef = self.coef.as_slice().expect("standard layout");
        let intercept = self.intercept.as_slice().expect("standard layout");
        linear_scores(m, coef, self.coef.nrows(), intercept)
    }
}

/// One solved binary problem.
struct Binary {
    w: Vec<f64>,
    w_bias: f64,
    n_iter: usize,
    converged: bool,
    dual_objective: Option<f64>,
}

/// Dual coordinate descent for one binary squared-hinge problem with labels `signs` (±1); `bias` is the
/// constant extra feature, if any.
fn solve_dual(
    x: &Dense<'_>,
    sq_norms: &[f64],
    signs: &[f64],
    params: &LinearSvcParams,
    bias: Option<f64>,
    seed: u64,
) -> Binary {
    let (n, d) = (x.n, x.d);
    let s = bias.unwrap_or(0.0);
    // D_ii = 1/(2C) for the squared hinge; there is no upper bound on α.
    let diag = 0.5 / params.c;
    let qd: Vec<f64> = sq_norms.iter().map(|q| q + s * s + diag).collect();
    let mut alpha = vec![0.0; n];
    let mut w = vec![0.0; d];
    let mut w_bias = 0.0;
    let mut index: Vec<usize> = (0..n).collect();
    let mut active = n;
    // liblinear also keeps the previous minimum projected gradient, to shrink coordinates at the upper
    // bound; the squared hinge has no upper bound, so only the maximum is needed.
    let mut pg_max_old = f64::INFINITY;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n_iter = 0;
    let mut converged = false;
    while n_iter < params.max_iter {
        let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
        for i in 0..active {
            let j = i + rng.random_range(0..active - i);
            index.swap(i, j);
        }
        let mut k = 0;
        while k < active {
            let i = index[k];
            let yi = signs[i];
            let xi = x.row(i);
            let g = yi * (dot(&w, xi) + w_bias * s) - 1.0 + alpha[i] * diag;
            let mut pg = 0.0;
            if alpha[i] == 0.0 {
                if g > pg_max_old {
                    // At the bound and pushing outward: shrink.
                    active -= 1;
                    index.swap(k, active);
                    continue;
                } else if g < 0.0 {
                    pg = g;
                }
            } else {
                pg = g;
            }
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (old - g / qd[i]).max(0.0);
                let step = (alpha[i] - old) * yi;
                axpy(step, xi, &mut w);
                w_bias += step * s;
            }
            k += 1;
        }
        n_iter += 1;
        if pg_max - pg_min <= params.tol {
            if active == n {
                converged = true;
                break;
            }
            // Converged on the shrunk set: re-check every coordinate.
            active = n;
            pg_max_old = f64::INFINITY;
            continue;
        }
        pg_max_old = if pg_max <= 0.0 { f64::INFINITY } else { pg_max };
    }
    let mut v = dot(&w, &w) + w_bias * w_bias;
    for a in &alpha {
        v += a * (a * diag - 2.0);
    }
    Binary {
        w,
        w_bias,
        n_iter,
        converged,
        dual_objective: Some(0.5 * v),
    }
}

/// TRON's step-acceptance and trust-region constants (liblinear's `eta0, eta1, eta2` and
/// `sigma1, sigma2, sigma3`).
const ETA: [f64; 3] = [1e-4, 0.25, 0.75];
const SIGMA: [f64; 3] = [0.25, 0.5, 4.0];

/// One binary problem in the primal trust-region Newton solver. Vectors have `p = d (+1)` entries: the
/// weights, then the bias weight when an intercept is fitted.
struct Newton {
    w: Vec<f64>,
    f: f64,
    g: Vec<f64>,
    delta: f64,
    gnorm0: f64,
    eps: f64,
    /// liblinear's counter: 1 + accepted steps.
    iter: usize,
    search: bool,
    // Conjugate-gradient state of the current trust-region subproblem.
    s: Vec<f64>,
    r: Vec<f64>,
    dir: Vec<f64>,
    rtr: f64,
    cg_tol: f64,
    in_cg: bool,
}

fn norm(v: &[f64]) -> f64 {
    dot(v, v).sqrt()
}

/// Trust-region Newton (liblinear's TRON) for the `problems` binary primal problems at once; `signs` is
/// `n × problems` row-major (±1).
fn solve_primal(
    x: &Dense<'_>,
    signs: &[f64],
    problems: usize,
    params: &LinearSvcParams,
    bias: Option<f64>,
) -> Vec<Binary> {
    let (n, d) = (x.n, x.d);
    let p = d + usize::from(bias.is_some());
    let sb = bias.unwrap_or(0.0);
    let (c, two_c) = (params.c, 2.0 * params.c);
    let sign = |i: usize, k: usize| signs[i * problems + k];
    // Scores x̃ᵢ·w̃ₖ at the current iterates, and the Hessian weights 2C·[yᵢₖ·zᵢₖ < 1] (samples inside
    // the margin), both n × problems row-major.
    let mut z = vec![0.0; n * problems];
    let mut weight = vec![two_c; n * problems];

    // Scores x̃ᵢ·v for each listed vector v (n × vecs.len(), row-major).
    let forward = |vecs: &[&[f64]]| -> Vec<f64> {
        let m = vecs.len();
        let mut v = Vec::with_capacity(m * d);
        let mut c0 = Vec::with_capacity(m);
        for vk in vecs {
            v.extend_from_slice(&vk[..d]);
            c0.push(if bias.is_some() { sb * vk[d] } else { 0.0 });
        }
        linear_scores(x, &v, m, &c0)
    };
    // x̃ᵀu for each column of u (n × m): m vectors of p entries.
    let backward = |u: &[f64], m: usize| -> Vec<Vec<f64>> {
        let (gw, gs) = transpose_times(x, u, m);
        (0..m)
            .map(|j| {
                let mut v = gw[j * d..(j + 1) * d].to_vec();
                if bias.is_some() {
                    v.push(sb * gs[j]);
                }
                v
            })
            .collect()
    };

    // Start at w = 0: every sample is inside the margin, f = C·n, g = −2C·Σ yᵢx̃ᵢ.
    let u: Vec<f64> = signs.iter().map(|y| -two_c * y).collect();
    let g0 = backward(&u, problems);
    let mut st: Vec<Newton> = g0
        .into_iter()
        .enumerate()
        .map(|(k, g)| {
            let pos = (0..n).filter(|&i| sign(i, k) > 0.0).count();
            let gnorm0 = norm(&g);
            Newton {
                w: vec![0.0; p],
                f: c * n as f64,
                delta: gnorm0,
                gnorm0,
                eps: params.tol * pos.min(n - pos).max(1) as f64 / n as f64,
                iter: 1,
                search: gnorm0 > 0.0,
                s: vec![0.0; p],
                r: vec![0.0; p],
                dir: vec![0.0; p],
                rtr: 0.0,
                cg_tol: 0.0,
                in_cg: false,
                g,
            }
        })
        .collect();

    loop {
        let live: Vec<usize> = (0..problems)
            .filter(|&k| st[k].search && st[k].iter <= params.max_iter)
            .collect();
        if live.is_empty() {
            break;
        }
        // Conjugate gradients on every live problem's trust-region subproblem, in lockstep.
        for &k in &live {
            let t = &mut st[k];
            t.s.iter_mut().for_each(|v| *v = 0.0);
            t.r.iter_mut().zip(&t.g).for_each(|(r, g)| *r = -g);
            t.dir.copy_from_slice(&t.r);
            t.rtr = dot(&t.r, &t.r);
            t.cg_tol = 0.1 * norm(&t.g);
            t.in_cg = t.rtr.sqrt() > t.cg_tol;
        }
        loop {
            let cg: Vec<usize> = live.iter().copied().filter(|&k| st[k].in_cg).collect();
            if cg.is_empty() {
                break;
            }
            let m = cg.len();
            // H·dir = dir + 2C·Σ_{i inside the margin at w} x̃ᵢ(x̃ᵢ·dir).
            let dirs: Vec<&[f64]> = cg.iter().map(|&k| &st[k].dir[..]).collect();
            let mut u = forward(&dirs);
            for (ui, wi) in u.chunks_exact_mut(m).zip(weight.chunks_exact(problems)) {
                for (uij, &k) in ui.iter_mut().zip(&cg) {
                    *uij *= wi[k];
                }
            }
            let parts = backward(&u, m);
            for (&k, mut hd) in cg.iter().zip(parts) {
                let t = &mut st[k];
                hd.iter_mut().zip(&t.dir).for_each(|(h, v)| *h += v);
                cg_step(t, &hd);
            }
        }
        // Trial points w + s.
        let trial: Vec<Vec<f64>> = live
            .iter()
            .map(|&k| st[k].w.iter().zip(&st[k].s).map(|(a, b)| a + b).collect())
            .collect();
        let zt = forward(&trial.iter().map(|v| &v[..]).collect::<Vec<_>>());
        let m = live.len();
        let mut accepted = vec![false; m];
        let mut reductions = vec![(0.0, 0.0); m];
        let mut loss = vec![0.0; m];
        for (zi, yi) in zt.chunks_exact(m).zip(signs.chunks_exact(problems)) {
            for ((l, &k), &zij) in loss.iter_mut().zip(&live).zip(zi) {
                let h = (1.0 - yi[k] * zij).max(0.0);
                *l += h * h;
            }
        }
        for (j, &k) in live.iter().enumerate() {
            let t = &mut st[k];
            let w_new = &trial[j];
            let f_new = 0.5 * dot(w_new, w_new) + c * loss[j];
            let gs = dot(&t.g, &t.s);
            let prered = -0.5 * (gs - dot(&t.s, &t.r));
            let actred = t.f - f_new;
            let snorm = norm(&t.s);
            if t.iter == 1 {
                t.delta = t.delta.min(snorm);
            }
            let alpha = if f_new - t.f - gs <= 0.0 {
                SIGMA[2]
            } else {
                SIGMA[0].max(-0.5 * (gs / (f_new - t.f - gs)))
            };
            t.delta = if actred < ETA[0] * prered {
                (alpha.max(SIGMA[0]) * snorm).min(SIGMA[1] * t.delta)
            } else if actred < ETA[1] * prered {
                (SIGMA[0] * t.delta).max((alpha * snorm).min(SIGMA[1] * t.delta))
            } else if actred < ETA[2] * prered {
                (SIGMA[0] * t.delta).max((alpha * snorm).min(SIGMA[2] * t.delta))
            } else {
                t.delta.max((alpha * snorm).min(SIGMA[2] * t.delta))
            };
            if actred > ETA[0] * prered {
                accepted[j] = true;
                t.iter += 1;
                t.w.copy_from_slice(w_new);
                t.f = f_new;
                for i in 0..n {
                    let zij = zt[i * m + j];
                    z[i * problems + k] = zij;
                    weight[i * problems + k] = if sign(i, k) * zij < 1.0 { two_c } else { 0.0 };
                }
            }
            reductions[j] = (actred, prered);
        }
        // Gradients at the accepted points: w + 2C·Σ_{inside} (zᵢ − yᵢ)x̃ᵢ.
        let acc: Vec<usize> = live
            .iter()
            .zip(&accepted)
            .filter_map(|(&k, &a)| a.then_some(k))
            .collect();
        if !acc.is_empty() {
            let ma = acc.len();
            let mut u = vec![0.0; n * ma];
            for (i, ui) in u.chunks_exact_mut(ma).enumerate() {
                let row = i * problems;
                for (uij, &k) in ui.iter_mut().zip(&acc) {
                    *uij = weight[row + k] * (z[row + k] - signs[row + k]);
                }
            }
            for (&k, mut g) in acc.iter().zip(backward(&u, ma)) {
                let t = &mut st[k];
                g.iter_mut().zip(&t.w).for_each(|(g, w)| *g += w);
                t.g = g;
            }
        }
        for (j, &k) in live.iter().enumerate() {
            let t = &mut st[k];
            let (actred, prered) = reductions[j];
            if accepted[j] && norm(&t.g) <= t.eps * t.gnorm0 {
                t.search = false;
            } else if t.f < -1.0e32
                || !(actred.is_finite() && prered.is_finite())
                || (actred.abs() <= 0.0 && prered <= 0.0)
                || (actred.abs() <= 1.0e-12 * t.f.abs() && prered.abs() <= 1.0e-12 * t.f.abs())
            {
                // liblinear's warnings (no further progress is possible), and non-finite reductions
                // (overflowing features), where liblinear would loop forever.
                t.search = false;
            }
        }
    }
    st.into_iter()
        .map(|t| {
            let n_iter = t.iter - 1;
            let w_bias = if bias.is_some() { t.w[d] } else { 0.0 };
            let mut w = t.w;
            w.truncate(d);
            Binary {
                w,
                w_bias,
                n_iter,
                converged: n_iter < params.max_iter,
                dual_objective: None,
            }
        })
        .collect()
}

/// One conjugate-gradient step of TRON's trust-region subproblem, given `hd = H·dir`: stops at the
/// trust-region boundary (`‖s‖ = delta`) or when the residual falls to `cg_tol`.
fn cg_step(t: &mut Newton, hd: &[f64]) {
    let alpha = t.rtr / dot(&t.dir, hd);
    axpy(alpha, &t.dir, &mut t.s);
    if norm(&t.s) > t.delta {
        // Back up and move to the boundary along dir.
        axpy(-alpha, &t.dir, &mut t.s);
        let std = dot(&t.s, &t.dir);
        let sts = dot(&t.s, &t.s);
        let dtd = dot(&t.dir, &t.dir);
        let dsq = t.delta * t.delta;
        let rad = (std * std + dtd * (dsq - sts)).sqrt();
        let a = if std >= 0.0 {
            (dsq - sts) / (std + rad)
        } else {
            (rad - std) / dtd
        };
        axpy(a, &t.dir, &mut t.s);
        axpy(-a, hd, &mut t.r);
        t.in_cg = false;
        return;
    }
    axpy(-alpha, hd, &mut t.r);
    let rtr_new = dot(&t.r, &t.r);
    let beta = rtr_new / t.rtr;
    t.dir
        .iter_mut()
        .zip(&t.r)
        .for_each(|(dv, r)| *dv = r + beta * *dv);
    t.rtr = rtr_new;
    t.in_cg = t.rtr.sqrt() > t.cg_tol;
}
