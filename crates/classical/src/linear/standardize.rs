//! Per-column standardisation, as `sklearn.preprocessing.StandardScaler` (with mean and with std).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::{Dense, LinearError};

/// Centres each column on its mean and divides it by its population standard deviation, exactly as
/// scikit-learn's `StandardScaler`: the variance is the corrected two-pass estimate
/// `(Σ(x−x̄)² − (Σ(x−x̄))²/n)/n`, and a column whose variance is indistinguishable from zero
/// (`var ≤ n·ε·var + (n·x̄·ε)²`, Chan, Golub & LeVeque's bound, as scikit-learn tests it) gets scale 1, so
/// it is only centred.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    mean: Array1<f64>,
    var: Array1<f64>,
    scale: Array1<f64>,
    n_samples: usize,
}

impl Standardizer {
    /// Fits the per-column mean and scale of `x` (rows are samples).
    ///
    /// # Errors
    /// [`LinearError::EmptyInput`] for a matrix without rows or columns, [`LinearError::NonFinite`]
    /// for a NaN or infinite entry.
    pub fn fit(x: ArrayView2<'_, f64>) -> Result<Self, LinearError> {
        let m = Dense::new(x)?;
        let (n, d) = (m.n, m.d);
        let nf = n as f64;
        let mut sum = vec![0.0; d];
        for i in 0..n {
            for (s, v) in sum.iter_mut().zip(m.row(i)) {
                *s += v;
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / nf).collect();
        let mut correction = vec![0.0; d];
        let mut sq = vec![0.0; d];
        for i in 0..n {
            for (j, v) in m.row(i).iter().enumerate() {
                let t = v - mean[j];
                correction[j] += t;
                sq[j] += t * t;
            }
        }
        let eps = f64::EPSILON;
        let mut var = Vec::with_capacity(d);
        let mut scale = Vec::with_capacity(d);
        for j in 0..d {
            let v = (sq[j] - correction[j] * correction[j] / nf) / nf;
            let bound = nf * eps * v + (nf * mean[j] * eps).powi(2);
            var.push(v);
            scale.push(if v <= bound { 1.0 } else { v.sqrt() });
        }
        Ok(Self {
            mean: Array1::from(mean),
            var: Array1::from(var),
            scale: Array1::from(scale),
            n_samples: n,
        })
    }

    /// Fits on `x` and returns the standardiser with the standardised `x`.
    ///
    /// # Errors
    /// As [`Standardizer::fit`].
    pub fn fit_transform(x: ArrayView2<'_, f64>) -> Result<(Self, Array2<f64>), LinearError> {
        let s = Self::fit(x)?;
        let t = s.transform(x)?;
        Ok((s, t))
    }

    /// `(x − mean) / scale`, column by column.
    ///
    /// # Errors
    /// [`LinearError::FeatureCountMismatch`] when `x` has a different number of columns from the
    /// fitted matrix; [`LinearError::EmptyInput`], [`LinearError::NonFinite`] as in fitting.
    pub fn transform(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>, LinearError> {
        let m = Dense::with_features(x, self.mean.len())?;
        let (mean, scale) = (
            self.mean.as_slice().unwrap_or_default(),
            self.scale.as_slice().unwrap_or_default(),
        );
        let mut out = Vec::with_capacity(m.n * m.d);
        for i in 0..m.n {
            out.extend(
                m.row(i)
                    .iter()
                    .zip(mean.iter().zip(scale))
                    .map(|(v, (mu, s))| (v - mu) / s),
            );
        }
        Ok(Array2::from_shape_vec((m.n, m.d), out).expect("n·d values"))
    }

    /// Per-column mean (`StandardScaler.mean_`).
    pub fn mean(&self) -> ArrayView1<'_, f64> {
        self.mean.view()
    }

    /// Per-column population variance (`StandardScaler.var_`).
    pub fn var(&self) -> ArrayView1<'_, f64> {
        self.var.view()
    }

    /// Per-column divisor: the standard deviation, or 1 for a constant column (`StandardScaler.scale_`).
    pub fn scale(&self) -> ArrayView1<'_, f64> {
        self.scale.view()
    }

    /// Number of features (columns) fitted.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Number of samples (rows) fitted.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }
}
