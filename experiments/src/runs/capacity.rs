//! Capacity helpers shared by `mathnn capacity` and the capacity-and-interpolation experiment: Theorem 1
//! on random labels, the default feature grid, and the text of width-sweep and margin rows.

use anyhow::Result;
use generalization::capacity::margin_sweep::MarginRun;
use generalization::capacity::theorem1::Theorem1Network;
use generalization::capacity::width_sweep::WidthPoint;
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Draws random labels `0..classes` (as reals) from `seed`, builds the network with projection seed `seed`,
/// and scores it: outputs rounded to the nearest class.
pub fn theorem1_on_random_labels(
    x_train: &Array2<f64>,
    x_test: &Array2<f64>,
    y_test: &[usize],
    classes: usize,
    seed: u64,
) -> Result<Theorem1Summary> {
    let mut rng = StdRng::seed_from_u64(seed);
    let random: Vec<f64> = (0..x_train.nrows())
        .map(|_| rng.random_range(0..classes) as f64)
        .collect();
    let net = Theorem1Network::fit(x_train.view(), &random, seed)?;
    let fitted = net.predict(x_train.view())?;
    let round = |v: f64| v.round().clamp(0.0, (classes - 1) as f64) as usize;
    let fraction = |hits: usize, total: usize| hits as f64 / total.max(1) as f64;
    let predicted = net.predict(x_test.view())?;
    Ok(Theorem1Summary {
        weights: net.weights(),
        max_train_residual: fitted
            .iter()
            .zip(&random)
            .map(|(f, t)| (f - t).abs())
            .fold(0.0, f64::max),
        train_accuracy: fraction(
            fitted
                .iter()
                .zip(&random)
                .filter(|(f, t)| round(**f) == **t as usize)
                .count(),
            random.len(),
        ),
        test_accuracy: fraction(
            predicted
                .iter()
                .zip(y_test)
                .filter(|(f, t)| round(**f) == **t)
                .count(),
            y_test.len(),
        ),
        condition_number: net.condition_number()?,
    })
}

/// A margin complexity, or why there is none.
pub fn complexity_text(normalized: Option<f64>) -> String {
    normalized.map_or_else(|| "undefined (γ ≤ 0)".into(), |c| format!("{c:.3e}"))
}

/// One line of the width sweep's table.
pub fn width_line(p: &WidthPoint) -> String {
    let margin = p
        .margin
        .as_ref()
        .map_or_else(|| "—".into(), |m| complexity_text(m.normalized));
    format!(
        "noise {:>4.0}%  width {:>5}  {:>9} params  {:>4} epochs (fit at {:>4})  train err {:>6.2}%  test err {:>6.2}%  test loss {:>7.4}  margin complexity {margin}",
        100.0 * p.label_noise,
        p.width,
        p.parameters,
        p.epochs,
        p.epochs_to_fit
            .map_or_else(|| "—".into(), |e| e.to_string()),
        100.0 * p.train_error,
        100.0 * p.test_error,
        p.test_loss,
    )
}

/// Header of the margin table.
pub fn margin_header() -> String {
    format!(
        "{:>5} {:>8} {:>7} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10} {:>11}",
        "p", "changed", "epochs", "train", "test", "gap", "∏‖A‖σ", "R_A", "γ", "‖X‖R_A/γn"
    )
}

/// One line of the margin table.
pub fn margin_line(r: &MarginRun) -> String {
    format!(
        "{:>5.2} {:>7.1}% {:>7} {:>7.2}% {:>7.2}% {:>7.2}% {:>10.3e} {:>10.3e} {:>10.3e} {:>11}",
        r.level,
        100.0 * r.labels_changed,
        r.epochs,
        100.0 * r.train_accuracy,
        100.0 * r.test_accuracy,
        100.0 * r.gap,
        r.margin.spectral.lipschitz,
        r.margin.spectral.complexity,
        r.margin.margin,
        complexity_text(r.margin.normalized)
    )
}

/// The default sweep: n/10 … 20n, dense around the threshold N = n.
pub fn default_feature_counts(n: usize) -> Vec<usize> {
    let factors = [
        0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0, 10.0, 20.0,
    ];
    let mut counts: Vec<usize> = factors
        .iter()
        .map(|f| ((f * n as f64).round() as usize).max(1))
        .collect();
    counts.dedup();
    counts
}

/// Zhang et al.'s Theorem 1 network fitted to uniformly random labels of the training points.
#[derive(Debug, Clone, Serialize)]
pub struct Theorem1Summary {
    /// d + 2n.
    pub weights: usize,
    /// Largest `|f(x_i) − y_i|` over the training points, before rounding to a class.
    pub max_train_residual: f64,
    /// Fraction of training points whose rounded output is their random label.
    pub train_accuracy: f64,
    /// Fraction of test points whose rounded output is their true label (chance: 1/classes).
    pub test_accuracy: f64,
    /// cond(A) of the construction's triangular system.
    pub condition_number: f64,
}
