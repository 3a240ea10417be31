//! Random-features regression over a nested sweep of feature counts (Belkin, Hsu, Ma, Mandal, "Reconciling
//! modern machine-learning practice and the classical bias–variance trade-off", PNAS 2019, Fig. 2).
//!
//! Features `φ_j(x) = cos(w_j·x + b_j)` with `w_j ~ N(0, I/σ²)`, `b_j ~ U(0, 2π)` (random Fourier features of
//! the Gaussian kernel of bandwidth σ, Rahimi & Recht 2007), or `φ_j(x) = max(0, w_j·x)` with
//! `w_j ~ N(0, I/d)`; the model `f(x) = Σ_j a_j φ_j(x)` (one output per class, one-hot targets) is fitted by
//! ridge regression, `min ‖Φa − Y‖² + λ‖a‖²` with the features scaled by `√(2/N)` (Fourier) or `√(1/N)`
//! (ReLU), and at λ = 0 by the minimum-norm least-squares solution.
//!
//! All of it goes through the n × n kernel `K = ΦΦᵀ`: `a = Φᵀ(K + λI)⁺Y` for every shape of Φ (the
//! push-through identity; for N < n at λ = 0, `Φᵀ K⁺` is Φ's pseudo-inverse), so predictions are `K α` on the
//! training set and `C α` on the test set with `C = Φ_test Φᵀ` and `α = (K + λI)⁺Y`. The feature counts are
//! nested — the first N features of one seeded stream — so K and C are accumulated once across the sweep,
//! block by block, without ever storing Φ; one symmetric eigendecomposition of K per count serves every λ.
//!
//! ```
//! use generalization::capacity::random_features::{FeatureMap, RandomFeaturesParams, random_features_sweep};
//! use ndarray::Array2;
//! // 40 points on a circle of radius 3 in 2-D, two classes by the sign of the first coordinate.
//! let x = Array2::from_shape_fn((40, 2), |(i, j)| {
//!     let t = i as f64 * std::f64::consts::TAU / 40.0;
//!     3.0 * if j == 0 { t.cos() } else { t.sin() }
//! });
//! let y: Vec<usize> = (0..40).map(|i| usize::from(x[(i, 0)] > 0.0)).collect();
//! let params = RandomFeaturesParams { map: FeatureMap::Fourier { bandwidth: 0.5 }, seed: 0, block: 64 };
//! let points = random_features_sweep(x.view(), &y, x.view(), &y, 2, &[10, 40, 400], &[0.0], &params)?;
//! // Past the threshold the minimum-norm solution interpolates the training set.
//! assert_eq!(points[2].train_error, 0.0);
//! assert!(points[2].train_loss < 1e-8);
//! # Ok::<(), generalization::GenError>(())
//! ```

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par, Side};
use ndarray::ArrayView2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::{check_bandwidth, check_train_test, one_hot, square_loss_and_error, to_mat};
use crate::{GenError, Result};

/// The random feature map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FeatureMap {
    /// `cos(w·x + b)`, `w ~ N(0, I/σ²)`, `b ~ U(0, 2π)`: random Fourier features of the Gaussian kernel
    /// `exp(−‖x − x'‖² / 2σ²)`.
    Fourier {
        /// σ (> 0).
        bandwidth: f64,
    },
    /// `max(0, w·x)`, `w ~ N(0, I/d)`.
    Relu,
}

/// Settings of [`random_features_sweep`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RandomFeaturesParams {
    /// The feature map.
    pub map: FeatureMap,
    /// Seed of the feature stream (`StdRng::seed_from_u64`); feature j is the same for every sweep.
    pub seed: u64,
    /// Features generated and accumulated at a time (memory `(n + m)·block`; not part of the result).
    pub block: usize,
}

impl Default for RandomFeaturesParams {
    fn default() -> Self {
        Self {
            map: FeatureMap::Fourier { bandwidth: 5.0 },
            seed: 0,
            block: 512,
        }
    }
}

/// One point of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RidgePoint {
    /// Number of random features N.
    pub features: usize,
    /// Ridge λ (0: minimum-norm solution).
    pub lambda: f64,
    /// Mean over training rows of `‖f(x) − onehot(y)‖²`.
    pub train_loss: f64,
    /// The same on the test set.
    pub test_loss: f64,
    /// Fraction of training rows misclassified (argmax).
    pub train_error: f64,
    /// Fraction of test rows misclassified.
    pub test_error: f64,
    /// `‖a‖²` summed over the outputs (`tr(αᵀKα)`).
    pub norm: f64,
    /// Smallest eigenvalue of the scaled K that the solve kept (λ = 0: above the cutoff).
    pub smallest_eigenvalue: f64,
}

/// Ridge regression on the first N random features for every N in `counts` (strictly increasing) and every
/// λ in `lambdas` (each ≥ 0), trained on `(x_train, y_train)` and scored on both sets.
#[allow(clippy::too_many_arguments)]
pub fn random_features_sweep(
    x_train: ArrayView2<'_, f64>,
    y_train: &[usize],
    x_test: ArrayView2<'_, f64>,
    y_test: &[usize],
    classes: usize,
    counts: &[usize],
    lambdas: &[f64],
    params: &RandomFeaturesParams,
) -> Result<Vec<RidgePoint>> {
    check_train_test(x_train, y_train, x_test, y_test, classes)?;
    if counts.is_empty() || counts[0] == 0 || counts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(GenError::invalid(
            "feature counts",
            format!("{counts:?}: expected strictly increasing counts ≥ 1"),
        ));
    }
    if lambdas.is_empty() || lambdas.iter().any(|l| !(l.is_finite() && *l >= 0.0)) {
        return Err(GenError::invalid(
            "lambdas",
            format!("{lambdas:?}: expected finite values ≥ 0"),
        ));
    }
    if params.block == 0 {
        return Err(GenError::invalid("block", "must be at least 1"));
    }
    if let FeatureMap::Fourier { bandwidth } = params.map {
        check_bandwidth(bandwidth)?;
    }
    let (n, d) = (x_train.nrows(), x_train.ncols());
    let m = x_test.nrows();
    let (xtr, xte) = (to_mat(x_train), to_mat(x_test));
    let y = one_hot(y_train, classes);
    let mut rng = StdRng::seed_from_u64(params.seed);
    // Unscaled sums Σ_j φ_j(x_i) φ_j(x_k) over the features so far.
    let mut gram = Mat::<f64>::zeros(n, n);
    let mut cross = Mat::<f64>::zeros(m, n);
    let mut generated = 0usize;
    let mut out = Vec::with_capacity(counts.len() * lambdas.len());
    for &count in counts {
        while generated < count {
            let width = params.block.min(count - generated);
            let (w, b) = draw_features(&mut rng, d, width, params.map);
            let phi_train = feature_block(&xtr, &w, &b, params.map);
            let phi_test = feature_block(&xte, &w, &b, params.map);
            matmul(
                gram.as_mut(),
                Accum::Add,
                phi_train.as_ref(),
                phi_train.transpose(),
                1.0,
                Par::rayon(0),
            );
            matmul(
                cross.as_mut(),
                Accum::Add,
                phi_test.as_ref(),
                phi_train.transpose(),
                1.0,
                Par::rayon(0),
            );
            generated += width;
        }
        let scale = match params.map {
            FeatureMap::Fourier { .. } => 2.0 / count as f64,
            FeatureMap::Relu => 1.0 / count as f64,
        };
        let k = Mat::from_fn(n, n, |i, j| scale * 0.5 * (gram[(i, j)] + gram[(j, i)]));
        let c = Mat::from_fn(m, n, |i, j| scale * cross[(i, j)]);
        let evd = k.self_adjoint_eigen(Side::Lower).map_err(|e| {
            GenError::invalid(
                "kernel matrix",
                format!("symmetric eigendecomposition failed: {e:?}"),
            )
        })?;
        let (u, s) = (evd.U(), evd.S().column_vector());
        let largest = (0..n).map(|i| s[i]).fold(0.0, f64::max);
        // Eigenvalues below this are rounding noise of a rank-deficient K (numpy's pinv cutoff, max(n, N)·ε,
        // applied to K's eigenvalues).
        let cutoff = n.max(count) as f64 * f64::EPSILON * largest;
        let uty = u.transpose() * &y;
        for &lambda in lambdas {
            // α = U diag(1/(s + λ)) Uᵀ Y over the kept eigenvalues.
            let kept: Vec<Option<f64>> = (0..n)
                .map(|i| {
                    let v = s[i] + lambda;
                    (if lambda == 0.0 {
                        s[i] > cutoff
                    } else {
                        v > 0.0
                    })
                    .then(|| 1.0 / v)
                })
                .collect();
            let scaled = Mat::from_fn(n, classes, |i, j| {
                kept[i].map_or(0.0, |inv| inv * uty[(i, j)])
            });
            let alpha = u * &scaled;
            let (train_pred, test_pred) = (&k * &alpha, &c * &alpha);
            let (train_loss, train_error) = square_loss_and_error(&train_pred, y_train);
            let (test_loss, test_error) = square_loss_and_error(&test_pred, y_test);
            let norm = (0..classes)
                .map(|j| {
                    (0..n)
                        .map(|i| alpha[(i, j)] * train_pred[(i, j)])
                        .sum::<f64>()
                })
                .sum();
            let smallest_eigenvalue = (0..n)
                .filter(|&i| kept[i].is_some())
                .map(|i| s[i])
                .fold(f64::INFINITY, f64::min);
            out.push(RidgePoint {
                features: count,
                lambda,
                train_loss,
                test_loss,
                train_error,
                test_error,
                norm,
                smallest_eigenvalue,
            });
        }
    }
    Ok(out)
}

/// `d × width` weights and `width` offsets, drawn feature by feature (so the stream does not depend on the
/// block size).
fn draw_features(
    rng: &mut StdRng,
    d: usize,
    width: usize,
    map: FeatureMap,
) -> (Mat<f64>, Vec<f64>) {
    let mut w = Mat::<f64>::zeros(d, width);
    let mut b = vec![0.0; width];
    let scale = match map {
        FeatureMap::Fourier { bandwidth } => 1.0 / bandwidth,
        FeatureMap::Relu => 1.0 / (d as f64).sqrt(),
    };
    for j in 0..width {
        for i in 0..d {
            let z: f64 = StandardNormal.sample(rng);
            w[(i, j)] = scale * z;
        }
        if let FeatureMap::Fourier { .. } = map {
            b[j] = rng.random::<f64>() * std::f64::consts::TAU;
        }
    }
    (w, b)
}

/// `φ(X W + b)` for one block of features.
fn feature_block(x: &Mat<f64>, w: &Mat<f64>, b: &[f64], map: FeatureMap) -> Mat<f64> {
    let mut z = Mat::<f64>::zeros(x.nrows(), w.ncols());
    matmul(
        z.as_mut(),
        Accum::Replace,
        x.as_ref(),
        w.as_ref(),
        1.0,
        Par::rayon(0),
    );
    for j in 0..w.ncols() {
        for i in 0..x.nrows() {
            z[(i, j)] = match map {
                FeatureMap::Fourier { .. } => (z[(i, j)] + b[j]).cos(),
                FeatureMap::Relu => z[(i, j)].max(0.0),
            };
        }
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// The features of the sweep, explicitly: `n × count`, scaled.
    fn explicit_features(x: &Mat<f64>, count: usize, params: &RandomFeaturesParams) -> Mat<f64> {
        let mut rng = StdRng::seed_from_u64(params.seed);
        let (w, b) = draw_features(&mut rng, x.ncols(), count, params.map);
        let phi = feature_block(x, &w, &b, params.map);
        let scale = match params.map {
            FeatureMap::Fourier { .. } => (2.0 / count as f64).sqrt(),
            FeatureMap::Relu => (1.0 / count as f64).sqrt(),
        };
        Mat::from_fn(phi.nrows(), phi.ncols(), |i, j| scale * phi[(i, j)])
    }

    fn data(n: usize, d: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let x = Array2::from_shape_fn((n, d), |_| rng.random::<f64>());
        let y = (0..n).map(|i| (i * 7 + 3) % 3).collect();
        (x, y)
    }

    #[test]
    fn sweep_equals_a_dense_reference_solve() -> Result<()> {
        // Reference: explicit Φ; ridge by the N × N normal equations (λ > 0), the minimum-norm solution by
        // faer's SVD pseudo-inverse (λ = 0); predictions on train and test.
        let (xtr, ytr) = data(30, 4, 1);
        let (xte, yte) = data(17, 4, 2);
        for map in [FeatureMap::Fourier { bandwidth: 0.7 }, FeatureMap::Relu] {
            let params = RandomFeaturesParams {
                map,
                seed: 5,
                block: 7,
            };
            let counts = [12, 30, 75];
            let lambdas = [0.0, 1e-3, 0.5];
            let points = random_features_sweep(
                xtr.view(),
                &ytr,
                xte.view(),
                &yte,
                3,
                &counts,
                &lambdas,
                &params,
            )?;
            let (xtr_m, xte_m) = (to_mat(xtr.view()), to_mat(xte.view()));
            let y = one_hot(&ytr, 3);
            for point in &points {
                let phi = explicit_features(&xtr_m, point.features, &params);
                let phi_test = explicit_features(&xte_m, point.features, &params);
                let a = if point.lambda > 0.0 {
                    let g = phi.transpose() * &phi
                        + Mat::from_fn(point.features, point.features, |i, j| {
                            if i == j { point.lambda } else { 0.0 }
                        });
                    let g_inv = g.self_adjoint_eigen(Side::Lower).map(|e| {
                        let (u, s) = (e.U(), e.S().column_vector());
                        let sd = Mat::from_fn(s.nrows(), s.nrows(), |i, j| {
                            if i == j { 1.0 / s[i] } else { 0.0 }
                        });
                        u * sd * u.transpose()
                    });
                    g_inv.map_err(|e| GenError::invalid("reference", format!("{e:?}")))?
                        * phi.transpose()
                        * &y
                } else {
                    let svd = phi
                        .thin_svd()
                        .map_err(|e| GenError::invalid("reference", format!("{e:?}")))?;
                    let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
                    let cutoff = s[0].max(s[s.nrows() - 1]) * 1e-10;
                    let sd = Mat::from_fn(s.nrows(), s.nrows(), |i, j| {
                        if i == j && s[i] > cutoff {
                            1.0 / s[i]
                        } else {
                            0.0
                        }
                    });
                    v * sd * u.transpose() * &y
                };
                let (train_loss, _) = square_loss_and_error(&(&phi * &a), &ytr);
                let (test_loss, _) = square_loss_and_error(&(&phi_test * &a), &yte);
                // 1e-10 relative everywhere but at the threshold N = n without ridge: there the reference (SVD
                // of Φ) is accurate to κ(Φ)·ε and the sweep, which works with K = ΦΦᵀ, to κ(Φ)²·ε; at these
                // sizes κ(Φ)² is ~1e9, so the two agree to ~1e-6 relative (the peak's height, not its place).
                let relative = if point.lambda == 0.0 && point.features == ytr.len() {
                    1e-5
                } else {
                    1e-10
                };
                assert!(
                    (point.train_loss - train_loss).abs() < 1e-10 * (1.0 + train_loss)
                        && (point.test_loss - test_loss).abs() < relative * (1.0 + test_loss.abs()),
                    "{map:?} N {} λ {}: train {} vs {train_loss}, test {} vs {test_loss}",
                    point.features,
                    point.lambda,
                    point.train_loss,
                    point.test_loss
                );
            }
            // Past the threshold the minimum-norm solution interpolates.
            let last = points
                .iter()
                .find(|p| p.features == 75 && p.lambda == 0.0)
                .expect("point");
            assert!(
                last.train_loss < 1e-18 && last.train_error == 0.0,
                "{last:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_feature_stream_does_not_depend_on_the_block_size() -> Result<()> {
        let (x, y) = data(20, 3, 3);
        let sweep = |block| {
            let params = RandomFeaturesParams {
                map: FeatureMap::Fourier { bandwidth: 1.0 },
                seed: 9,
                block,
            };
            random_features_sweep(x.view(), &y, x.view(), &y, 3, &[5, 33], &[1e-2], &params)
        };
        let (a, b) = (sweep(1)?, sweep(512)?);
        for (p, q) in a.iter().zip(&b) {
            assert!((p.test_loss - q.test_loss).abs() < 1e-12, "{p:?} {q:?}");
        }
        Ok(())
    }

    #[test]
    fn bad_arguments_are_errors() {
        let (x, y) = data(10, 2, 0);
        let p = RandomFeaturesParams::default();
        let run = |counts: &[usize], lambdas: &[f64], classes: usize| {
            random_features_sweep(x.view(), &y, x.view(), &y, classes, counts, lambdas, &p)
        };
        assert!(
            run(&[5, 5], &[0.0], 3)
                .unwrap_err()
                .to_string()
                .contains("strictly increasing")
        );
        assert!(run(&[0], &[0.0], 3).is_err());
        assert!(
            run(&[5], &[-1.0], 3)
                .unwrap_err()
                .to_string()
                .contains("lambdas")
        );
        assert!(
            run(&[5], &[0.0], 2)
                .unwrap_err()
                .to_string()
                .contains("not below 2 classes")
        );
        let mut bad = x.clone();
        bad[(3, 1)] = f64::NAN;
        let err =
            random_features_sweep(bad.view(), &y, x.view(), &y, 3, &[5], &[0.0], &p).unwrap_err();
        assert!(err.to_string().contains("row 3, column 1"), "{err}");
    }
}
