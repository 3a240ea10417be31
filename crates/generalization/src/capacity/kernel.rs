//! Minimum-norm Gaussian-kernel interpolation (Zhang et al. 2017 §5; Belkin, Ma, Mandal, "To understand deep
//! learning we need to understand kernel learning", ICML 2018): solve `K α = Y` exactly (Cholesky) for the
//! kernel `k(x, x') = exp(−‖x − x'‖² / 2σ²)` and one-hot targets, so the predictor `f(x) = Σ_i α_i k(x_i, x)`
//! fits the training set perfectly. Its RKHS norm `‖f‖² = tr(αᵀ K α) = tr(Yᵀ α)` is a capacity measure
//! that does track generalisation: it grows with label noise while the fit stays perfect.
//!
//! ```
//! use generalization::capacity::kernel::{KernelParams, kernel_interpolation};
//! use ndarray::Array2;
//! // 30 points one unit apart on a line, alternating labels: σ = 0.7 keeps K well conditioned.
//! let x = Array2::from_shape_fn((30, 2), |(i, j)| if j == 0 { i as f64 } else { 0.0 });
//! let y: Vec<usize> = (0..30).map(|i| i % 2).collect();
//! let fits = kernel_interpolation(x.view(), &[&y], x.view(), &y, 2, &KernelParams { bandwidth: 0.7 })?;
//! assert_eq!(fits[0].train_error, 0.0);
//! assert!(fits[0].max_train_residual < 1e-10);
//! # Ok::<(), generalization::GenError>(())
//! ```

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, Par, Side};
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::{
    check_bandwidth, check_labels, check_train_test, one_hot, square_loss_and_error, to_mat,
};
use crate::{GenError, Result};

/// Settings of [`kernel_interpolation`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KernelParams {
    /// σ of the Gaussian kernel (> 0).
    pub bandwidth: f64,
}

/// The interpolant for one labelling of the training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelFit {
    /// Fraction of training points misclassified by the interpolant (0 when the solve is accurate).
    pub train_error: f64,
    /// Largest `|f(x_i) − onehot(y_i)|` over training points and outputs.
    pub max_train_residual: f64,
    /// Fraction of test points misclassified.
    pub test_error: f64,
    /// Mean squared distance of the test predictions to the one-hot test labels.
    pub test_loss: f64,
    /// RKHS norm² `tr(Yᵀ α)`.
    pub rkhs_norm: f64,
}

/// `exp(−‖a_i − b_j‖² / 2σ²)` for all pairs, by `‖a‖² + ‖b‖² − 2 a·b` with one matrix product.
fn gaussian_kernel(a: &Mat<f64>, b: &Mat<f64>, bandwidth: f64) -> Mat<f64> {
    let mut k = Mat::<f64>::zeros(a.nrows(), b.nrows());
    matmul(
        k.as_mut(),
        Accum::Replace,
        a.as_ref(),
        b.transpose(),
        1.0,
        Par::rayon(0),
    );
    let norms = |m: &Mat<f64>| {
        (0..m.nrows())
            .map(|i| (0..m.ncols()).map(|j| m[(i, j)] * m[(i, j)]).sum::<f64>())
            .collect::<Vec<_>>()
    };
    let (na, nb) = (norms(a), norms(b));
    let scale = -0.5 / (bandwidth * bandwidth);
    for j in 0..b.nrows() {
        for i in 0..a.nrows() {
            let d2 = (na[i] + nb[j] - 2.0 * k[(i, j)]).max(0.0);
            k[(i, j)] = (scale * d2).exp();
        }
    }
    k
}

/// The median Euclidean distance between the first `max_points` rows, the usual bandwidth heuristic.
pub fn median_distance(x: ArrayView2<'_, f64>, max_points: usize) -> f64 {
    let n = x.nrows().min(max_points);
    let mut d: Vec<f64> = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in 0..i {
            d.push(
                x.row(i)
                    .iter()
                    .zip(x.row(j))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
                    .sqrt(),
            );
        }
    }
    if d.is_empty() {
        return 1.0;
    }
    let mid = d.len() / 2;
    *d.select_nth_unstable_by(mid, f64::total_cmp).1
}

/// Interpolates each labelling in `train_labels` of the points `x_train` (one Cholesky factorisation of K for
/// all of them) and scores every interpolant on `(x_test, y_test)`.
pub fn kernel_interpolation(
    x_train: ArrayView2<'_, f64>,
    train_labels: &[&[usize]],
    x_test: ArrayView2<'_, f64>,
    y_test: &[usize],
    classes: usize,
    params: &KernelParams,
) -> Result<Vec<KernelFit>> {
    if train_labels.is_empty() {
        return Err(GenError::invalid("labellings", "expected at least one"));
    }
    // The points once, then every further labelling.
    check_train_test(x_train, train_labels[0], x_test, y_test, classes)?;
    for labels in &train_labels[1..] {
        check_labels("training set", x_train.nrows(), labels, classes)?;
    }
    check_bandwidth(params.bandwidth)?;
    let (xtr, xte) = (to_mat(x_train), to_mat(x_test));
    let k = gaussian_kernel(&xtr, &xtr, params.bandwidth);
    let cross = gaussian_kernel(&xte, &xtr, params.bandwidth);
    let llt = k.llt(Side::Lower).map_err(|e| {
        GenError::invalid(
            "kernel matrix",
            format!("not numerically positive definite ({e:?}): duplicate points, or σ too large for n points"),
        )
    })?;
    let mut fits = Vec::with_capacity(train_labels.len());
    for labels in train_labels {
        let y = one_hot(labels, classes);
        let alpha = llt.solve(&y);
        let fitted = &k * &alpha;
        let (_, train_error) = square_loss_and_error(&fitted, labels);
        let mut max_train_residual: f64 = 0.0;
        for i in 0..fitted.nrows() {
            for j in 0..classes {
                max_train_residual = max_train_residual.max((fitted[(i, j)] - y[(i, j)]).abs());
            }
        }
        let (test_loss, test_error) = square_loss_and_error(&(&cross * &alpha), y_test);
        let rkhs_norm = (0..y.nrows())
            .map(|i| (0..classes).map(|j| y[(i, j)] * alpha[(i, j)]).sum::<f64>())
            .sum();
        fits.push(KernelFit {
            train_error,
            max_train_residual,
            test_error,
            test_loss,
            rkhs_norm,
        });
    }
    Ok(fits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn interpolates_and_the_norm_grows_with_label_noise() -> Result<()> {
        // Two Gaussian blobs; true labels by blob, and random labels.
        let mut rng = StdRng::seed_from_u64(0);
        let n = 200;
        let x = Array2::from_shape_fn((n, 5), |(i, _)| {
            rng.random::<f64>() * 0.8 + if i % 2 == 0 { 0.0 } else { 1.0 }
        });
        let truth: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let random: Vec<usize> = (0..n).map(|_| rng.random_range(0..2)).collect();
        let sigma = median_distance(x.view(), 200);
        let fits = kernel_interpolation(
            x.view(),
            &[&truth, &random],
            x.view(),
            &truth,
            2,
            &KernelParams { bandwidth: sigma },
        )?;
        for fit in &fits {
            assert_eq!(fit.train_error, 0.0, "{fit:?}");
            assert!(fit.max_train_residual < 1e-6, "{fit:?}");
        }
        assert!(fits[1].rkhs_norm > 2.0 * fits[0].rkhs_norm, "{fits:?}");
        Ok(())
    }

    #[test]
    fn kernel_values_match_the_definition() {
        let a = Mat::from_fn(3, 2, |i, j| (i + 2 * j) as f64 * 0.3);
        let b = Mat::from_fn(2, 2, |i, j| (i * j) as f64 - 0.5);
        let k = gaussian_kernel(&a, &b, 0.8);
        for i in 0..3 {
            for j in 0..2 {
                let d2: f64 = (0..2).map(|c| (a[(i, c)] - b[(j, c)]).powi(2)).sum();
                assert!((k[(i, j)] - (-d2 / (2.0 * 0.64)).exp()).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn duplicate_points_are_a_clear_error() {
        let x = ndarray::array![[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]];
        let err = kernel_interpolation(
            x.view(),
            &[&[0, 1, 0]],
            x.view(),
            &[0, 1, 0],
            2,
            &KernelParams { bandwidth: 1.0 },
        )
        .unwrap_err();
        assert!(err.to_string().contains("positive definite"), "{err}");
    }
}
