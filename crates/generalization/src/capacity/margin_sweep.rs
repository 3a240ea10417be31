//! The margin complexity of the randomisation tests' networks across label-corruption levels, beside the
//! generalisation gap they measure (Bartlett, Foster and Telgarsky 2017, Figure 1's question at MNIST
//! scale): the same MLP is fitted to 100 % training accuracy on labels of which a fraction `p` was redrawn
//! at random ([`run_condition_trained`], the random-labels experiment's code path and models), and for each
//! fitted network the sweep records the gap (training accuracy − test accuracy) and the spectrally-
//! normalised margin complexity ([`super::margin`]) on the labels it was trained on. The parameter count
//! is the same at every level; the margin complexity grows with the gap.
//!
//! ```
//! use candle_core::Device;
//! use generalization::capacity::margin_sweep::{margin_sweep, MarginSweepParams};
//! use generalization::{FitConfig, FitOptions};
//! use nn_core::data::generated::generated_train_test;
//!
//! let data = generated_train_test(60, 30, 0).unwrap();
//! let params = MarginSweepParams {
//!     levels: vec![0.0, 1.0],
//!     fit: FitConfig { max_epochs: 2, ..FitConfig::default() },
//!     ..MarginSweepParams::default()
//! };
//! let runs = margin_sweep(&data.train, &data.test, &params, &mut |_| FitOptions::default(),
//!                         &Device::Cpu).unwrap();
//! assert_eq!(runs.len(), 2);
//! assert!(runs[1].margin.spectral.complexity > 0.0);
//! ```

use candle_core::Device;
use nn_core::data::Dataset;
use serde::{Deserialize, Serialize};

use super::margin::{MarginComplexity, MarginParams, margin_complexity, mlp_layers};
use super::width_sweep::rows_of;
use crate::corrupt::Corruption;
use crate::fit::{FitConfig, FitOptions};
use crate::models::ZhangModel;
use crate::randomization::run_condition_trained;
use crate::{GenError, Result};

/// What a margin sweep trains.
#[derive(Debug, Clone)]
pub struct MarginSweepParams {
    /// An MLP of the randomisation tests (default MLP 1×512; LeNet is refused: its convolutions are not
    /// dense layers).
    pub model: ZhangModel,
    /// Label-corruption levels `p ∈ [0, 1]` (default 0, 0.2, …, 1).
    pub levels: Vec<f64>,
    /// Training (default: Adam 1e-3, batch 128, ≤ 300 epochs, stop at 100 %, test at the end only).
    pub fit: FitConfig,
    /// Seed of the corruption and the weights (default 0).
    pub seed: u64,
    /// The margin quantile and reference matrices.
    pub margin: MarginParams,
}

impl Default for MarginSweepParams {
    fn default() -> Self {
        Self {
            model: ZhangModel::Mlp1x512,
            levels: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            fit: FitConfig {
                test_every: usize::MAX,
                ..FitConfig::default()
            },
            seed: 0,
            margin: MarginParams::default(),
        }
    }
}

/// One fitted corruption level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarginRun {
    /// `p`, the probability that a label was redrawn.
    pub level: f64,
    /// Fraction of training labels actually changed.
    pub labels_changed: f64,
    /// Epochs trained.
    pub epochs: usize,
    /// True when the run reached 100 % training accuracy.
    pub interpolated: bool,
    /// Training accuracy on the corrupted labels.
    pub train_accuracy: f64,
    /// Test accuracy on the true labels.
    pub test_accuracy: f64,
    /// `train_accuracy − test_accuracy`, the measured generalisation gap.
    pub gap: f64,
    /// The fitted network's margin complexity on its training set.
    pub margin: MarginComplexity,
}

/// Fits `params.model` at every level (in order; `options_for(p)` gives each run its checkpoint folder and
/// progress bar) and measures the gap and the margin complexity.
pub fn margin_sweep(
    train: &Dataset,
    test: &Dataset,
    params: &MarginSweepParams,
    options_for: &mut dyn FnMut(f64) -> FitOptions,
    device: &Device,
) -> Result<Vec<MarginRun>> {
    if params.model == ZhangModel::Lenet {
        return Err(GenError::invalid(
            "model",
            "lenet: the margin complexity is computed for the MLPs (mlp-1x512, mlp-3x512)",
        ));
    }
    if params.levels.is_empty() {
        return Err(GenError::invalid(
            "levels",
            "give at least one corruption level",
        ));
    }
    if let Some(p) = params.levels.iter().find(|p| !(**p >= 0.0 && **p <= 1.0)) {
        return Err(GenError::invalid(
            "levels",
            format!("{p}: expected a probability in [0, 1]"),
        ));
    }
    let mut runs = Vec::with_capacity(params.levels.len());
    for &p in &params.levels {
        let corruption = if p == 0.0 {
            Corruption::TrueLabels
        } else {
            Corruption::PartialLabels { p }
        };
        let options = options_for(p);
        let (result, trained) = run_condition_trained(
            train,
            test,
            corruption,
            params.model,
            params.seed,
            &params.fit,
            &options,
            device,
        )?;
        let x = rows_of(&trained.data.train)?;
        let labels: Vec<usize> = trained
            .data
            .train
            .labels_vec()?
            .into_iter()
            .map(|l| l as usize)
            .collect();
        let margin = margin_complexity(
            &mlp_layers(&trained.varmap)?,
            x.view(),
            &labels,
            &params.margin,
        )?;
        let train_accuracy = result.fit.final_train_accuracy;
        let test_accuracy = result.fit.final_test_accuracy.unwrap_or(f64::NAN);
        runs.push(MarginRun {
            level: p,
            labels_changed: result.corruption.fraction_labels_changed,
            epochs: result.fit.epochs,
            interpolated: result.fit.reached_target,
            train_accuracy,
            test_accuracy,
            gap: train_accuracy - test_accuracy,
            margin,
        });
    }
    Ok(runs)
}
