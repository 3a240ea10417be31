//! Inception Score (Salimans et al. 2016) with the original protocol (openai/improved-gan):
//!
//! `IS = exp( E_x KL(p(y|x) ‖ p(y)) )`, computed on `splits` contiguous parts — part i is rows
//! `[i·N/splits, (i+1)·N/splits)` (integer division, no shuffling) — each with its own marginal
//! `p(y)` = mean of the part's rows; reported as the mean and the standard deviation (ddof 0) of the
//! per-part scores. `0·log 0 = 0`. Range [1, C]: uniform predictions give 1, confident balanced ones C.
//!
//! ```
//! use gan_eval::inception_score::inception_score;
//! use ndarray::Array2;
//!
//! // 20 confident predictions, 10 classes, balanced: IS = 10 with one split.
//! let probs = Array2::from_shape_fn((20, 10), |(i, j)| if i % 10 == j { 1.0 } else { 0.0 });
//! let is = inception_score(probs.view(), 1)?;
//! assert!((is.mean - 10.0).abs() < 1e-12);
//! # Ok::<(), gan_eval::GanEvalError>(())
//! ```

use ndarray::{ArrayView2, Axis, s};
use serde::{Deserialize, Serialize};

use crate::util::{check_finite, check_rows};
use crate::{GanEvalError, Result};

/// The reference protocol's number of splits.
pub const DEFAULT_SPLITS: usize = 10;

/// Rows of a probability matrix may deviate from summing to 1 by at most this much (f32 softmax
/// outputs are within ~1e-6).
pub const ROW_SUM_TOLERANCE: f64 = 1e-3;

/// Inception Score and its per-split values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InceptionScore {
    /// Mean of the per-split scores.
    pub mean: f64,
    /// Standard deviation (ddof 0) of the per-split scores.
    pub std: f64,
    /// Per-split scores `exp(mean KL)`.
    pub split_scores: Vec<f64>,
    /// Number of samples.
    pub n: usize,
}

/// Inception Score of the class probabilities `probs` (N × C, rows summing to 1 within
/// [`ROW_SUM_TOLERANCE`], entries in [0, 1]) over `splits` contiguous parts (1 ≤ splits ≤ N).
pub fn inception_score(probs: ArrayView2<'_, f64>, splits: usize) -> Result<InceptionScore> {
    check_rows(probs, "probs", 1)?;
    check_finite(probs, "probs")?;
    let (n, _c) = probs.dim();
    if splits == 0 || splits > n {
        return Err(GanEvalError::invalid(
            "splits",
            format!("must be between 1 and the number of samples ({n}), got {splits}"),
        ));
    }
    for (i, row) in probs.axis_iter(Axis(0)).enumerate() {
        if let Some((j, &v)) = row
            .iter()
            .enumerate()
            .find(|(_, v)| !(0.0..=1.0).contains(*v))
        {
            return Err(GanEvalError::invalid(
                "probs",
                format!("entry ({i}, {j}) = {v} is not a probability in [0, 1]"),
            ));
        }
        let sum: f64 = row.sum();
        if (sum - 1.0).abs() > ROW_SUM_TOLERANCE {
            return Err(GanEvalError::invalid(
                "probs",
                format!(
                    "row {i} sums to {sum}, not 1 (tolerance {ROW_SUM_TOLERANCE}); pass softmax probabilities, not logits"
                ),
            ));
        }
    }
    let split_scores: Vec<f64> = (0..splits)
        .map(|k| {
            let part = probs.slice(s![k * n / splits..(k + 1) * n / splits, ..]);
            let py = part.mean_axis(Axis(0)).expect("non-empty part");
            let kl_mean = part
                .axis_iter(Axis(0))
                .map(|row| {
                    row.iter()
                        .zip(py.iter())
                        .filter(|(p, _)| **p > 0.0)
                        .map(|(&p, &q)| p * (p.ln() - q.ln()))
                        .sum::<f64>()
                })
                .sum::<f64>()
                / part.nrows() as f64;
            kl_mean.exp()
        })
        .collect();
    let mean = split_scores.iter().sum::<f64>() / splits as f64;
    let var = split_scores
        .iter()
        .map(|s| (s - mean) * (s - mean))
        .sum::<f64>()
        / splits as f64;
    Ok(InceptionScore {
        mean,
        std: var.sqrt(),
        split_scores,
        n,
    })
}
