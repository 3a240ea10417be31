//! "Why is there no overfitting?" — capacity and interpolation, with exact linear algebra (faer):
//!
//! * [`random_features`]: random-features regression (Belkin, Hsu, Ma, Mandal, PNAS 2019) over a nested
//!   sweep of feature counts N, ridge λ ≥ 0 and the minimum-norm interpolant at λ = 0: the test error peaks
//!   at the interpolation threshold N ≈ n and falls again ("double descent").
//! * [`theorem1`]: Zhang et al.'s Theorem 1 — an explicit depth-2 ReLU network with 2n + d weights that fits
//!   any labelling of n points.
//! * [`kernel`]: the minimum-norm Gaussian-kernel interpolant (Zhang et al. §5) and its RKHS norm, which grows
//!   with label noise.
//! * [`width_sweep`]: one-hidden-layer MLPs of widths 1 … 4096 trained to zero training error (or a budget)
//!   with and without label noise — test error against the parameter count (Nakkiran et al. 2019).
//! * [`margin`]: the spectrally-normalised margin complexity (Bartlett, Foster, Telgarsky 2017), a capacity
//!   measure that follows the generalisation gap where the parameter count does not;
//!   [`margin_sweep`] measures it for the random-label networks across corruption levels.
//!
//! Data are dense row-major `ndarray` matrices (one sample per row) with labels in `0..classes`; the width
//! sweep trains on nn-core data sets.

pub mod kernel;
pub mod margin;
pub mod margin_sweep;
pub mod random_features;
pub mod theorem1;
pub mod width_sweep;

use faer::Mat;
use ndarray::ArrayView2;

use crate::{GenError, Result};

/// A faer copy of a row-major ndarray matrix.
pub(crate) fn to_mat(x: ArrayView2<'_, f64>) -> Mat<f64> {
    Mat::from_fn(x.nrows(), x.ncols(), |i, j| x[(i, j)])
}

/// Checks a sample matrix and its labels: non-empty, finite, one label per row, labels below `classes`.
pub(crate) fn check_data(
    name: &str,
    x: ArrayView2<'_, f64>,
    labels: &[usize],
    classes: usize,
) -> Result<()> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(GenError::bad_data(
            name,
            format!("empty matrix {}×{}", x.nrows(), x.ncols()),
        ));
    }
    check_labels(name, x.nrows(), labels, classes)?;
    if let Some(((i, j), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(GenError::bad_data(
            name,
            format!("value {v} at row {i}, column {j} is not finite"),
        ));
    }
    Ok(())
}

/// One label per row, each below `classes`.
pub(crate) fn check_labels(
    name: &str,
    rows: usize,
    labels: &[usize],
    classes: usize,
) -> Result<()> {
    if labels.len() != rows {
        return Err(GenError::bad_data(
            name,
            format!("{rows} rows but {} labels", labels.len()),
        ));
    }
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| **l >= classes) {
        return Err(GenError::bad_data(
            name,
            format!("label {l} of row {i} is not below {classes} classes"),
        ));
    }
    Ok(())
}

/// Checks a training and a test set as [`check_data`] does, and that they have the same columns.
pub(crate) fn check_train_test(
    x_train: ArrayView2<'_, f64>,
    y_train: &[usize],
    x_test: ArrayView2<'_, f64>,
    y_test: &[usize],
    classes: usize,
) -> Result<()> {
    check_data("training set", x_train, y_train, classes)?;
    check_data("test set", x_test, y_test, classes)?;
    if x_train.ncols() != x_test.ncols() {
        return Err(GenError::invalid(
            "test set",
            format!(
                "{} columns, the training set has {}",
                x_test.ncols(),
                x_train.ncols()
            ),
        ));
    }
    Ok(())
}

/// A Gaussian bandwidth σ must be finite and positive.
pub(crate) fn check_bandwidth(bandwidth: f64) -> Result<()> {
    if bandwidth.is_finite() && bandwidth > 0.0 {
        Ok(())
    } else {
        Err(GenError::invalid(
            "bandwidth",
            format!("{bandwidth}: expected a finite value > 0"),
        ))
    }
}

/// One-hot targets `n × classes`.
pub(crate) fn one_hot(labels: &[usize], classes: usize) -> Mat<f64> {
    Mat::from_fn(labels.len(), classes, |i, k| {
        if labels[i] == k { 1.0 } else { 0.0 }
    })
}

/// Mean over rows of the squared distance to the one-hot target, and the fraction of rows whose argmax is
/// not the label.
pub(crate) fn square_loss_and_error(predictions: &Mat<f64>, labels: &[usize]) -> (f64, f64) {
    let (n, k) = (predictions.nrows(), predictions.ncols());
    let mut loss = 0.0;
    let mut wrong = 0usize;
    for (i, &label) in labels.iter().enumerate().take(n) {
        let mut best = 0;
        for c in 0..k {
            let target = if c == label { 1.0 } else { 0.0 };
            loss += (predictions[(i, c)] - target).powi(2);
            if predictions[(i, c)] > predictions[(i, best)] {
                best = c;
            }
        }
        wrong += usize::from(best != label);
    }
    (loss / n.max(1) as f64, wrong as f64 / n.max(1) as f64)
}
