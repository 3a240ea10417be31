//! Small statistics shared by the experiments' reports: ranks with ties and Spearman's correlation.
//!
//! ```
//! use nn_core::stats::{average_ranks, spearman};
//!
//! assert_eq!(average_ranks(&[5.0, 5.0, 7.0]), vec![0.5, 0.5, 2.0]);
//! assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-15);
//! ```

/// 0-based ranks of `v`, ties sharing the mean of the ranks they span (`scipy.stats.rankdata(v) − 1`).
/// NaNs sort last (`f64::total_cmp`).
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut ranks = vec![0.0; v.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && v[order[end + 1]] == v[order[start]] {
            end += 1;
        }
        for &k in &order[start..=end] {
            ranks[k] = (start + end) as f64 / 2.0;
        }
        start = end + 1;
    }
    ranks
}

/// Spearman's rank correlation of two equally long samples: Pearson's correlation of their average
/// ranks (`scipy.stats.spearmanr`). NaN when fewer than two pairs, or when one sample is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "spearman: samples of different lengths");
    if a.len() < 2 {
        return f64::NAN;
    }
    let (ra, rb) = (average_ranks(a), average_ranks(b));
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    let (ma, mb) = (mean(&ra), mean(&rb));
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_matches_hand_worked_and_scipy_values() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 25.0, 100.0]) - 1.0).abs() < 1e-15);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-15);
        // Ranks (0, 1, 2, 3) against (0, 2, 1, 3): 1 − 6·2/(4·15) = 0.8.
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]) - 0.8).abs() < 1e-12);
        // Ties share the mean rank: (0.5, 0.5, 2) against (0, 1, 2) → √3/2. Ranking ties by position
        // (0, 1, 2) would have said 1.
        let r = spearman(&[5.0, 5.0, 7.0], &[1.0, 2.0, 3.0]);
        assert!((r - 3f64.sqrt() / 2.0).abs() < 1e-12, "{r}");
        // scipy.stats.spearmanr([1, 2, 2, 3, 5], [2, 1, 4, 4, 3]).statistic = 0.39473684210526316.
        let r = spearman(&[1.0, 2.0, 2.0, 3.0, 5.0], &[2.0, 1.0, 4.0, 4.0, 3.0]);
        assert!((r - 0.394_736_842_105_263_16).abs() < 1e-12, "{r}");
        assert!(spearman(&[1.0], &[2.0]).is_nan());
        assert!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
    }
}
