//! Zhang et al.'s Theorem 1 ("Understanding deep learning requires rethinking generalization", ICLR 2017,
//! §4): a depth-2 ReLU network with **2n + d** weights represents *any* function on n points in d
//! dimensions. Construction: a random projection `z = a·x` (distinct on the sample with probability 1),
//! thresholds `b` interleaved with the sorted projections (`b_1 < z_(1) < b_2 < z_(2) < …`), so that
//! `A_ij = max(0, z_(i) − b_j)` is lower triangular with a positive diagonal; the output weights solve
//! `A w = y` by forward substitution. The network is `f(x) = Σ_j w_j max(0, a·x − b_j)`.
//!
//! The weights grow like 1/(smallest gap between projections), so plain f64 sums would leave residuals of
//! ~1e-6 on 1,000 MNIST images; every sum here (the projection, the substitution and the prediction) is a
//! compensated dot product (Ogita, Rump & Oishi's Dot2: twice the working precision), which brings the
//! residual to the rounding of the labels themselves.
//!
//! ```
//! use generalization::capacity::theorem1::Theorem1Network;
//! use ndarray::array;
//! let x = array![[0.0, 1.0], [1.0, 0.5], [0.3, 0.3], [2.0, -1.0]];
//! let y = [3.0, -1.0, 0.5, 7.0];
//! let net = Theorem1Network::fit(x.view(), &y, 0)?;
//! assert_eq!(net.weights(), 2 * 4 + 2);
//! let fitted = net.predict(x.view())?;
//! assert!(fitted.iter().zip(&y).all(|(f, t)| (f - t).abs() < 1e-12));
//! # Ok::<(), generalization::GenError>(())
//! ```

use faer::Mat;
use ndarray::ArrayView2;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::{GenError, Result};

/// The fitted network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Theorem1Network {
    /// Projection `a` (d weights).
    pub projection: Vec<f64>,
    /// Thresholds `b` (n weights), increasing.
    pub thresholds: Vec<f64>,
    /// Output weights `w` (n weights).
    pub output: Vec<f64>,
    /// The training points' projections `z_(i)`, sorted (not weights of the network; they define the
    /// design matrix).
    pub sorted_projections: Vec<f64>,
}

/// `a + b` exactly as `s + e` (Knuth's TwoSum).
#[inline]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let z = s - a;
    (s, (a - (s - z)) + (b - z))
}

/// Σ xᵢ yᵢ in twice the working precision (Dot2), rounded once.
fn dot2(pairs: impl Iterator<Item = (f64, f64)>) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for (x, y) in pairs {
        let p = x * y;
        let e = x.mul_add(y, -p);
        let (t, q) = two_sum(s, p);
        s = t;
        c += q + e;
    }
    s + c
}

impl Theorem1Network {
    /// Builds the network that maps row i of `x` to `y[i]`; the projection is drawn from `seed`. Fails when two
    /// rows project to the same value (identical rows, or a measure-zero accident).
    pub fn fit(x: ArrayView2<'_, f64>, y: &[f64], seed: u64) -> Result<Self> {
        let (n, d) = (x.nrows(), x.ncols());
        if n == 0 || d == 0 || y.len() != n {
            return Err(GenError::bad_data(
                "theorem 1 sample",
                format!("{n}×{d} points with {} targets", y.len()),
            ));
        }
        if let Some(((i, j), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(GenError::bad_data(
                "theorem 1 sample",
                format!("value {v} at row {i}, column {j}"),
            ));
        }
        if let Some((i, v)) = y.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(GenError::bad_data(
                "theorem 1 targets",
                format!("target {v} of row {i}"),
            ));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let projection: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
        let z: Vec<f64> = (0..n)
            .map(|i| dot2(x.row(i).iter().copied().zip(projection.iter().copied())))
            .collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| z[i].total_cmp(&z[j]));
        if let Some(w) = order.windows(2).find(|w| z[w[0]] == z[w[1]]) {
            return Err(GenError::bad_data(
                "theorem 1 sample",
                format!(
                    "rows {} and {} have the same projection (identical points?)",
                    w[0], w[1]
                ),
            ));
        }
        let sorted: Vec<f64> = order.iter().map(|&i| z[i]).collect();
        // b_1 half a gap below the smallest projection, then midpoints.
        let first_gap = if n > 1 { sorted[1] - sorted[0] } else { 1.0 };
        let thresholds: Vec<f64> = (0..n)
            .map(|j| {
                if j == 0 {
                    sorted[0] - 0.5 * first_gap
                } else {
                    0.5 * (sorted[j - 1] + sorted[j])
                }
            })
            .collect();
        // Forward substitution on A_ij = z_(i) − b_j (j ≤ i).
        let mut output = vec![0.0; n];
        for i in 0..n {
            let partial = dot2((0..i).map(|j| (sorted[i] - thresholds[j], output[j])));
            let (rest, err) = two_sum(y[order[i]], -partial);
            output[i] = (rest + err) / (sorted[i] - thresholds[i]);
        }
        Ok(Theorem1Network {
            projection,
            thresholds,
            output,
            sorted_projections: sorted,
        })
    }

    /// Number of weights: d + 2n.
    pub fn weights(&self) -> usize {
        self.projection.len() + self.thresholds.len() + self.output.len()
    }

    /// `f(x)` for every row of `x`.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Vec<f64>> {
        if x.ncols() != self.projection.len() {
            return Err(GenError::invalid(
                "points",
                format!(
                    "{} columns, the network was built for {}",
                    x.ncols(),
                    self.projection.len()
                ),
            ));
        }
        Ok((0..x.nrows())
            .map(|i| {
                let z = dot2(
                    x.row(i)
                        .iter()
                        .copied()
                        .zip(self.projection.iter().copied()),
                );
                dot2(
                    self.thresholds
                        .iter()
                        .zip(&self.output)
                        .map(|(&b, &w)| ((z - b).max(0.0), w)),
                )
            })
            .collect())
    }

    /// The n × n lower-triangular matrix `A_ij = max(0, z_(i) − b_j)` of the construction (sorted order).
    pub fn design_matrix(&self) -> Mat<f64> {
        let n = self.thresholds.len();
        Mat::from_fn(n, n, |i, j| {
            (self.sorted_projections[i] - self.thresholds[j]).max(0.0)
        })
    }

    /// 2-norm condition number `σ_max / σ_min` of [`Theorem1Network::design_matrix`] (singular values by
    /// faer's SVD): how hard the exact fit is.
    pub fn condition_number(&self) -> Result<f64> {
        let s = self.design_matrix().singular_values().map_err(|e| {
            GenError::invalid("design matrix", format!("singular values failed: {e:?}"))
        })?;
        let max = s.iter().copied().fold(0.0, f64::max);
        let min = s.iter().copied().fold(f64::INFINITY, f64::min);
        Ok(max / min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::Rng;

    #[test]
    fn fits_random_labels_of_many_points_to_rounding_and_counts_its_weights() -> Result<()> {
        let mut rng = StdRng::seed_from_u64(4);
        let (n, d) = (500, 50);
        let x = Array2::from_shape_fn((n, d), |_| rng.random::<f64>());
        let y: Vec<f64> = (0..n)
            .map(|_| f64::from(rng.random_range(0u8..10)))
            .collect();
        let net = Theorem1Network::fit(x.view(), &y, 1)?;
        assert_eq!(net.weights(), 2 * n + d);
        let fitted = net.predict(x.view())?;
        let worst = fitted
            .iter()
            .zip(&y)
            .map(|(f, t)| (f - t).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-8, "max residual {worst:e}");
        // Thresholds interleave the projections; the design matrix is lower triangular, positive diagonal.
        assert!(net.thresholds.windows(2).all(|w| w[0] < w[1]));
        let a = net.design_matrix();
        assert!((0..n).all(|i| a[(i, i)] > 0.0 && (i + 1..n).all(|j| a[(i, j)] == 0.0)));
        let kappa = net.condition_number()?;
        assert!(kappa.is_finite() && kappa > 1.0, "{kappa}");
        Ok(())
    }

    #[test]
    fn duplicate_points_and_bad_input_are_errors() {
        let x = ndarray::array![[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]];
        let err = Theorem1Network::fit(x.view(), &[0.0, 1.0, 2.0], 0).unwrap_err();
        assert!(err.to_string().contains("same projection"), "{err}");
        assert!(Theorem1Network::fit(x.view(), &[0.0, 1.0], 0).is_err());
        let nan = ndarray::array![[f64::NAN, 0.0]];
        assert!(Theorem1Network::fit(nan.view(), &[0.0], 0).is_err());
    }
}
