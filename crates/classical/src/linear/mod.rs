//! Linear classifiers on dense feature matrices, as scikit-learn 1.9 fits them:
//!
//! - [`Standardizer`]: per-column centring and scaling to unit (population) variance, as
//!   `sklearn.preprocessing.StandardScaler`.
//! - [`LogisticRegressionParams`] → [`LogisticRegression`]: L2-regularised logistic regression minimising
//!   `C·Σᵢ logloss(xᵢ, yᵢ) + ½‖W‖²_F` (intercepts not penalised) with L-BFGS, as
//!   `sklearn.linear_model.LogisticRegression(solver="lbfgs")`: multinomial (softmax) for three or more
//!   classes, binomial (one weight vector) for two.
//! - [`LinearSvcParams`] → [`LinearSvc`]: one-vs-rest L2-regularised squared-hinge linear SVM, as
//!   `sklearn.svm.LinearSVC`: liblinear's dual coordinate descent (Hsieh et al., ICML 2008) or its
//!   primal trust-region Newton method, chosen from the shape of the data as scikit-learn's
//!   `dual="auto"` chooses ([`LinearSvcSolver`]).
//!
//! Every estimator has the same shape: a `…Params` struct with documented defaults, checked once by
//! `validate()`, whose `fit(x, y)` returns a fitted model with `predict`, `decision_function` (and
//! `predict_proba` for logistic regression). Rows of `x` are samples; labels are `usize` in
//! `0..n_classes`, where `n_classes` is one more than the largest label and every class must occur.
//! Bad input is reported as a [`LinearError`], never by a panic.
//!
//! ```
//! use classical::linear::{LinearSvcParams, LogisticRegressionParams, Standardizer};
//! use ndarray::array;
//!
//! let x = array![[0.0, 0.1], [0.2, 0.0], [3.0, 3.1], [3.2, 2.9], [0.1, 3.0], [0.0, 3.2]];
//! let y = [0, 0, 1, 1, 2, 2];
//! let scaler = Standardizer::fit(x.view())?;
//! let xs = scaler.transform(x.view())?;
//!
//! let logistic = LogisticRegressionParams::default().fit(xs.view(), &y)?;
//! assert_eq!(logistic.predict(xs.view())?, y);
//! let p = logistic.predict_proba(xs.view())?;
//! assert!((p.row(0).sum() - 1.0).abs() < 1e-12);
//!
//! let svm = LinearSvcParams::default().fit(xs.view(), &y)?;
//! assert_eq!(svm.predict(xs.view())?, y);
//! # Ok::<(), classical::linear::LinearError>(())
//! ```

mod logistic;
mod standardize;
mod svm;

use std::borrow::Cow;

use ndarray::ArrayView2;

pub use logistic::{LogisticRegression, LogisticRegressionParams, LogisticStop};
pub use standardize::Standardizer;
pub use svm::{LinearSvc, LinearSvcParams, LinearSvcSolver};

/// What went wrong in fitting or applying a linear model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LinearError {
    /// The feature matrix has no rows or no columns.
    #[error("empty feature matrix: {n_samples} samples × {n_features} features")]
    EmptyInput {
        /// Rows of the matrix given.
        n_samples: usize,
        /// Columns of the matrix given.
        n_features: usize,
    },
    /// The number of labels differs from the number of rows of the feature matrix.
    #[error("{n_labels} labels for {n_samples} samples")]
    LabelCountMismatch {
        /// Rows of the feature matrix.
        n_samples: usize,
        /// Length of the label slice.
        n_labels: usize,
    },
    /// The feature matrix has a different number of columns from the one the model was fitted on.
    #[error("the model was fitted on {expected} features, the matrix has {found}")]
    FeatureCountMismatch {
        /// Features the model (or standardiser) was fitted on.
        expected: usize,
        /// Columns of the matrix given.
        found: usize,
    },
    /// A parameter array (coefficients, intercepts) has the wrong shape.
    #[error("{name} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Which array.
        name: &'static str,
        /// The shape it must have (a vector's shape is `[len, 1]`).
        expected: [usize; 2],
        /// The shape it has.
        found: [usize; 2],
    },
    /// A label is not below the number of classes.
    #[error("label {label} at index {index} is out of range for {n_classes} classes")]
    LabelOutOfRange {
        /// Position of the label in the slice.
        index: usize,
        /// The label.
        label: usize,
        /// The number of classes it must be below.
        n_classes: usize,
    },
    /// A class below the largest label has no samples.
    #[error(
        "class {class} of 0..{n_classes} has no samples (labels must be 0..n_classes, each present)"
    )]
    EmptyClass {
        /// The missing class.
        class: usize,
        /// One more than the largest label.
        n_classes: usize,
    },
    /// Fewer than two classes: nothing to separate.
    #[error("need at least 2 classes, got {n_classes}")]
    TooFewClasses {
        /// The number of classes found.
        n_classes: usize,
    },
    /// A feature value is NaN or infinite.
    #[error("non-finite feature {value} at row {row}, column {col}")]
    NonFinite {
        /// Row (sample) index.
        row: usize,
        /// Column (feature) index.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// A parameter is outside its domain.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's field name.
        name: &'static str,
        /// Its value (integers converted to `f64`).
        value: f64,
        /// What it must be.
        reason: &'static str,
    },
}

/// A dense, row-major, finite copy (or borrow) of a feature matrix.
pub(crate) struct Dense<'a> {
    pub(crate) data: Cow<'a, [f64]>,
    pub(crate) n: usize,
    pub(crate) d: usize,
}

impl<'a> Dense<'a> {
    /// Borrows `x` when it is in standard (row-major, contiguous) layout, copies it otherwise; checks
    /// that it is non-empty and finite.
    pub(crate) fn new(x: ArrayView2<'a, f64>) -> Result<Self, LinearError> {
        let (n, d) = x.dim();
        if n == 0 || d == 0 {
            return Err(LinearError::EmptyInput {
                n_samples: n,
                n_features: d,
            });
        }
        let data: Cow<'a, [f64]> = match x.to_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(x.iter().copied().collect()),
        };
        if let Some(k) = data.iter().position(|v| !v.is_finite()) {
            return Err(LinearError::NonFinite {
                row: k / d,
                col: k % d,
                value: data[k],
            });
        }
        Ok(Self { data, n, d })
    }

    /// As [`Dense::new`], and the matrix must have `expected` columns.
    pub(crate) fn with_features(
        x: ArrayView2<'a, f64>,
        expected: usize,
    ) -> Result<Self, LinearError> {
        if x.ncols() != expected {
            return Err(LinearError::FeatureCountMismatch {
                expected,
                found: x.ncols(),
            });
        }
        Self::new(x)
    }

    /// Row `i`.
    #[inline]
    pub(crate) fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.d..(i + 1) * self.d]
    }
}

/// Checks training labels against `n` samples and returns the number of classes (largest label + 1,
/// each class present, at least 2).
pub(crate) fn infer_classes(y: &[usize], n: usize) -> Result<usize, LinearError> {
    if y.len() != n {
        return Err(LinearError::LabelCountMismatch {
            n_samples: n,
            n_labels: y.len(),
        });
    }
    let max = y.iter().copied().max().unwrap_or(0);
    if max >= n {
        // More classes than samples: some class below `max` is certainly empty; name the smallest.
        let mut seen: Vec<usize> = y.to_vec();
        seen.sort_unstable();
        seen.dedup();
        let class = seen
            .iter()
            .enumerate()
            .find(|&(i, &c)| i != c)
            .map_or(seen.len(), |(i, _)| i);
        return Err(LinearError::EmptyClass {
            class,
            n_classes: max.saturating_add(1),
        });
    }
    let k = max + 1;
    let mut count = vec![0usize; k];
    for &c in y {
        count[c] += 1;
    }
    if let Some(class) = count.iter().position(|&c| c == 0) {
        return Err(LinearError::EmptyClass {
            class,
            n_classes: k,
        });
    }
    if k < 2 {
        return Err(LinearError::TooFewClasses { n_classes: k });
    }
    Ok(k)
}

/// Checks evaluation labels: `n` of them, each below `n_classes`.
pub(crate) fn check_labels(y: &[usize], n: usize, n_classes: usize) -> Result<(), LinearError> {
    if y.len() != n {
        return Err(LinearError::LabelCountMismatch {
            n_samples: n,
            n_labels: y.len(),
        });
    }
    match y.iter().position(|&c| c >= n_classes) {
        Some(index) => Err(LinearError::LabelOutOfRange {
            index,
            label: y[index],
            n_classes,
        }),
        None => Ok(()),
    }
}

/// Fraction of equal entries (both slices have the same length, checked by the caller).
pub(crate) fn accuracy(pred: &[usize], y: &[usize]) -> f64 {
    let hits = pred.iter().zip(y).filter(|(a, b)| a == b).count();
    hits as f64 / y.len() as f64
}

/// Class predictions from decision scores, `rows` per sample: one row (a binary problem) predicts class 1
/// for a positive score, several rows the largest.
pub(crate) fn predict_from_scores(z: &[f64], rows: usize) -> Vec<usize> {
    if rows == 1 {
        z.iter().map(|&v| usize::from(v > 0.0)).collect()
    } else {
        z.chunks_exact(rows).map(argmax).collect()
    }
}

/// Index of the largest entry; the first on ties (as `numpy.argmax`).
#[inline]
pub(crate) fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (k, &z) in v.iter().enumerate().skip(1) {
        if z > v[best] {
            best = k;
        }
    }
    best
}

/// `Σ a_i b_i` with eight independent accumulators (vectorises; the order is fixed). No `mul_add`:
/// without a target FMA feature it is a slow library call.
#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f64; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `y += alpha·x`.
#[inline]
pub(crate) fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// Rows per rayon task for a pass over `n` samples: a function of `n` only (never of the thread
/// count), so that sums over tasks, taken in task order, are identical for any number of threads.
pub(crate) fn task_rows(n: usize) -> usize {
    const MIN_ROWS: usize = 256;
    const MAX_TASKS: usize = 64;
    n.div_ceil(MAX_TASKS).max(MIN_ROWS)
}

/// Below this many multiply-adds (or with a one-thread pool) a pass runs its tasks one after another on
/// the calling thread: waking the rayon pool costs tens of microseconds, more than such a pass. The tasks and the order of their
/// partial sums are the same either way, so the result is too.
const PAR_MIN_WORK: usize = 1 << 20;

/// `f(0), f(1), …, f(n_tasks − 1)` in order, computed in parallel when `work` (multiply-adds) is large.
pub(crate) fn map_tasks<T: Send>(
    n_tasks: usize,
    work: usize,
    f: impl Fn(usize) -> T + Sync + Send,
) -> Vec<T> {
    use rayon::prelude::*;
    if n_tasks <= 1 || work < PAR_MIN_WORK || rayon::current_num_threads() == 1 {
        (0..n_tasks).map(f).collect()
    } else {
        (0..n_tasks).into_par_iter().map(f).collect()
    }
}

/// Rows per matrix-product block inside a task (the block of `x` stays in cache between the two
/// products of a gradient evaluation).
pub(crate) const BLOCK_ROWS: usize = 128;

/// `uᵀ·x` for an `n × m` row-major `u`: the `m × d` row-major product, and the `m` column sums of `u`.
/// Tasks of [`task_rows`]`(n)` rows run in parallel (sequential faer products inside) and their partial
/// sums are added in task order, so the result does not depend on the thread count.
pub(crate) fn transpose_times(x: &Dense<'_>, u: &[f64], m: usize) -> (Vec<f64>, Vec<f64>) {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, MatMut, MatRef, Par};
    let (n, d) = (x.n, x.d);
    let tr = task_rows(n);
    let parts: Vec<Vec<f64>> = map_tasks(n.div_ceil(tr), n * d * m, |t| {
        let (r0, r1) = (t * tr, ((t + 1) * tr).min(n));
        let mut g = vec![0.0; m * d + m];
        let (gw, gs) = g.split_at_mut(m * d);
        let ut = &u[r0 * m..r1 * m];
        matmul(
            MatMut::from_row_major_slice_mut(gw, m, d),
            Accum::Replace,
            MatRef::from_row_major_slice(ut, r1 - r0, m).transpose(),
            MatRef::from_row_major_slice(&x.data[r0 * d..r1 * d], r1 - r0, d),
            1.0,
            Par::Seq,
        );
        for row in ut.chunks_exact(m) {
            for (s, v) in gs.iter_mut().zip(row) {
                *s += v;
            }
        }
        g
    });
    let mut gw = vec![0.0; m * d];
    let mut gs = vec![0.0; m];
    for p in &parts {
        for (a, v) in gw.iter_mut().zip(&p[..m * d]) {
            *a += v;
        }
        for (a, v) in gs.iter_mut().zip(&p[m * d..]) {
            *a += v;
        }
    }
    (gw, gs)
}

/// `x · coefᵀ + intercept` for a `rows × d` row-major `coef`: an `n × rows` row-major score matrix.
/// Rows are computed in fixed blocks (sequential faer products), in parallel over tasks; every score
/// depends on its own row only, so the result does not depend on the thread count.
pub(crate) fn linear_scores(
    x: &Dense<'_>,
    coef: &[f64],
    rows: usize,
    intercept: &[f64],
) -> Vec<f64> {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, MatMut, MatRef, Par};
    use rayon::prelude::*;
    let (n, d) = (x.n, x.d);
    let wt = MatRef::from_row_major_slice(coef, rows, d).transpose();
    let mut out = vec![0.0; n * rows];
    let tr = task_rows(n);
    let task = |(t, chunk): (usize, &mut [f64])| {
        let r0 = t * tr;
        for (b, zb) in chunk.chunks_mut(BLOCK_ROWS * rows).enumerate() {
            let b0 = r0 + b * BLOCK_ROWS;
            let nb = zb.len() / rows;
            let xb = MatRef::from_row_major_slice(&x.data[b0 * d..(b0 + nb) * d], nb, d);
            matmul(
                MatMut::from_row_major_slice_mut(zb, nb, rows),
                Accum::Replace,
                xb,
                wt,
                1.0,
                Par::Seq,
            );
            for zi in zb.chunks_exact_mut(rows) {
                for (z, b) in zi.iter_mut().zip(intercept) {
                    *z += b;
                }
            }
        }
    };
    if n * d * rows < PAR_MIN_WORK || rayon::current_num_threads() == 1 {
        out.chunks_mut(tr * rows).enumerate().for_each(task);
    } else {
        out.par_chunks_mut(tr * rows).enumerate().for_each(task);
    }
    out
}
