//! Test error against the number of parameters: one-hidden-layer ReLU MLPs of growing width trained on a
//! (possibly label-noised) training set to zero training error or a fixed epoch budget — the model-size
//! axis of "deep double descent" (Nakkiran et al. 2019; Belkin et al. 2019 §3, MNIST) and Neyshabur et
//! al.'s (2015) observation that test error keeps falling past the width that fits everything.
//!
//! **Label noise** `η` follows Nakkiran et al.: each training label is, independently with probability
//! `η`, replaced by a uniformly random *wrong* class; labels are drawn once. It is run through the
//! randomisation tests' corruption code as `PartialLabels { p }` with `p = η·k/(k−1)`: a label is redrawn
//! uniformly from all `k` classes with probability `p`, so it changes with probability `p·(k−1)/k = η`
//! and, when it changes, lands on each wrong class alike — the same distribution. The same seed gives
//! nested noise: the labels wrong at η = 0.1 are among those wrong at η = 0.2.
//!
//! Every width starts from weights drawn from the sweep's seed and trains with the same [`FitConfig`]
//! (nn-core's training loop through [`fit`]): it stops at the first epoch with 100 % exact training
//! accuracy on the noisy labels, or at `max_epochs`; with `stop_at_target: false` every width trains the
//! whole budget (Nakkiran et al.'s protocol). Beside the test error each point carries the
//! spectrally-normalised margin complexity of the trained network ([`super::margin`]), a norm-based size
//! measure that grows far more slowly than the parameter count (MNIST, η = 20 %: ×3.7 from width 64 to
//! 1024, where the parameters grow ×16). With a checkpoint root every run checkpoints under its own
//! folder and a second call resumes (finished runs return at once).
//!
//! ```
//! use candle_core::Device;
//! use generalization::capacity::width_sweep::{width_sweep, WidthSweepOptions, WidthSweepParams};
//! use generalization::FitConfig;
//! use nn_core::data::generated::generated_train_test;
//!
//! let data = generated_train_test(100, 50, 0).unwrap();
//! let params = WidthSweepParams {
//!     widths: vec![2, 64],
//!     label_noise: vec![0.0, 0.2],
//!     fit: FitConfig { max_epochs: 3, ..WidthSweepParams::default().fit },
//!     ..WidthSweepParams::default()
//! };
//! let points = width_sweep(&data.train, &data.test, &params, &WidthSweepOptions::default(),
//!                          &mut |_| {}, &Device::Cpu).unwrap();
//! assert_eq!(points.len(), 4);
//! assert_eq!(points[1].parameters, 784 * 64 + 64 + 64 * 10 + 10);
//! assert!(points[3].labels_changed > 0);
//! ```

use std::path::PathBuf;

use candle_core::{DType, Device};
use candle_nn::VarMap;
use ndarray::Array2;
use nn_core::data::Dataset;
use nn_core::models::{
    InputSpec, ModelConfig, ModelKind, SeededVarMap, build_model, parameter_count,
};
use nn_core::progress::SharedProgress;
use serde::{Deserialize, Serialize};

use super::margin::{MarginComplexity, MarginParams, margin_complexity, mlp_layers};
use crate::corrupt::{Corruption, corrupt, derive_seed, pixels_of};
use crate::fit::{FitConfig, FitOptions, fit};
use crate::randomization::WEIGHT_STREAM;
use crate::{GenError, Result};

/// What a width sweep trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WidthSweepParams {
    /// Hidden widths, each ≥ 1 (default 1, 2, 4, …, 4096).
    pub widths: Vec<usize>,
    /// Fractions η of training labels made wrong, each in `[0, (k−1)/k]` (default 0 and 0.2).
    pub label_noise: Vec<f64>,
    /// Training of every width (default: Adam 1e-3, batch 128, at most 200 epochs, stop at 100 % training
    /// accuracy, test set evaluated at the last epoch only).
    pub fit: FitConfig,
    /// Seed of the label noise and the weights (default 0).
    pub seed: u64,
    /// Compute each trained network's margin complexity (default true).
    pub margins: bool,
}

impl Default for WidthSweepParams {
    fn default() -> Self {
        Self {
            widths: (0..=12).map(|k| 1usize << k).collect(),
            label_noise: vec![0.0, 0.2],
            fit: FitConfig {
                max_epochs: 200,
                test_every: usize::MAX,
                ..FitConfig::default()
            },
            seed: 0,
            margins: true,
        }
    }
}

/// Checkpoints and progress of a sweep.
#[derive(Clone, Default)]
pub struct WidthSweepOptions {
    /// Root folder: run `(η, width)` checkpoints in `noise<η>-width<w>/`; `None`: no checkpoints.
    pub checkpoint_root: Option<PathBuf>,
    /// Save every this many epochs (0: the fit default).
    pub checkpoint_every: usize,
    /// Advanced once per epoch of the current run (restarted for each run).
    pub progress: Option<SharedProgress>,
}

impl std::fmt::Debug for WidthSweepOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WidthSweepOptions")
            .field("checkpoint_root", &self.checkpoint_root)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("progress", &self.progress.as_ref().map(|_| "Progress"))
            .finish()
    }
}

/// One trained width at one noise level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WidthPoint {
    /// Hidden units.
    pub width: usize,
    /// Weights and biases.
    pub parameters: usize,
    /// η, the fraction of labels made wrong (asked).
    pub label_noise: f64,
    /// Training labels that were actually changed.
    pub labels_changed: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// True when the last epoch had 100 % training accuracy.
    pub interpolated: bool,
    /// First epoch with 100 % training accuracy.
    pub epochs_to_fit: Option<usize>,
    /// Training error on the noisy labels at the end.
    pub train_error: f64,
    /// Test error (true labels) at the end.
    pub test_error: f64,
    /// Test cross-entropy at the end.
    pub test_loss: f64,
    /// Wall seconds of training.
    pub train_seconds: f64,
    /// The trained network's margin complexity on its (noisy) training set, when asked.
    pub margin: Option<MarginComplexity>,
}

impl WidthSweepParams {
    /// Checks every field against a data set of `classes` classes.
    pub fn validate(&self, classes: usize) -> Result<()> {
        self.fit.validate()?;
        if self.widths.is_empty() {
            return Err(GenError::invalid("widths", "give at least one width"));
        }
        if let Some(w) = self.widths.iter().find(|w| **w == 0) {
            return Err(GenError::invalid(
                "widths",
                format!("{w}: widths must be at least 1"),
            ));
        }
        if self.label_noise.is_empty() {
            return Err(GenError::invalid(
                "label_noise",
                "give at least one noise level",
            ));
        }
        if classes < 2 {
            return Err(GenError::invalid(
                "data",
                "label noise needs at least two classes",
            ));
        }
        let most = (classes - 1) as f64 / classes as f64;
        if let Some(eta) = self
            .label_noise
            .iter()
            .find(|e| !(**e >= 0.0 && **e <= most))
        {
            return Err(GenError::invalid(
                "label_noise",
                format!(
                    "{eta}: expected a fraction in [0, {most}] ((k−1)/k: all labels uniformly random)"
                ),
            ));
        }
        Ok(())
    }
}

/// A data set's images as rows of f64 (for the margin forward pass).
pub(crate) fn rows_of(data: &Dataset) -> Result<Array2<f64>> {
    let (c, h, w) = data.image_shape();
    let values: Vec<f64> = pixels_of(data)?.into_iter().map(f64::from).collect();
    Array2::from_shape_vec((data.len(), c * h * w), values)
        .map_err(|e| GenError::bad_data(data.name.clone(), e.to_string()))
}

/// Trains every width at every noise level (noise outermost, widths in the given order), calling
/// `on_point` after each, and returns the points in that order.
pub fn width_sweep(
    train: &Dataset,
    test: &Dataset,
    params: &WidthSweepParams,
    options: &WidthSweepOptions,
    on_point: &mut dyn FnMut(&WidthPoint),
    device: &Device,
) -> Result<Vec<WidthPoint>> {
    let classes = train.num_classes();
    params.validate(classes)?;
    if train.is_empty() || test.is_empty() {
        return Err(GenError::bad_data(
            if train.is_empty() {
                &train.name
            } else {
                &test.name
            },
            "empty data set",
        ));
    }
    let (c, h, w) = train.image_shape();
    let input = InputSpec::new(c, h, w, classes);
    let k = classes as f64;
    let mut points = Vec::with_capacity(params.widths.len() * params.label_noise.len());
    for &eta in &params.label_noise {
        let corruption = if eta == 0.0 {
            Corruption::TrueLabels
        } else {
            Corruption::PartialLabels {
                p: (eta * k / (k - 1.0)).min(1.0),
            }
        };
        let data = corrupt(train, test, corruption, params.seed)?;
        let x = if params.margins {
            Some(rows_of(&data.train)?)
        } else {
            None
        };
        let labels: Vec<usize> = data
            .train
            .labels_vec()?
            .into_iter()
            .map(|l| l as usize)
            .collect();
        for &width in &params.widths {
            let varmap = VarMap::new();
            let vb = SeededVarMap::var_builder(
                &varmap,
                derive_seed(params.seed, WEIGHT_STREAM),
                DType::F32,
                device,
            );
            let config = ModelConfig {
                mlp_widths: vec![width],
                ..ModelConfig::new(ModelKind::Mlp, input)
            };
            let net = build_model(&config, vb)?;
            let fit_options = FitOptions {
                checkpoint_dir: options
                    .checkpoint_root
                    .as_ref()
                    .map(|root| root.join(format!("noise{eta}-width{width}"))),
                checkpoint_every: if options.checkpoint_every == 0 {
                    FitOptions::default().checkpoint_every
                } else {
                    options.checkpoint_every
                },
                progress: options.progress.clone(),
            };
            let report = fit(
                net.as_ref(),
                &varmap,
                &data.train,
                Some(&data.test),
                &params.fit,
                &fit_options,
            )?;
            let margin = match &x {
                Some(x) => Some(margin_complexity(
                    &mlp_layers(&varmap)?,
                    x.view(),
                    &labels,
                    &MarginParams::default(),
                )?),
                None => None,
            };
            let point = WidthPoint {
                width,
                parameters: parameter_count(&varmap),
                label_noise: eta,
                labels_changed: data.summary.labels_changed,
                epochs: report.epochs,
                interpolated: report.reached_target,
                epochs_to_fit: report.epochs_to_100,
                train_error: 1.0 - report.final_train_accuracy,
                test_error: 1.0 - report.final_test_accuracy.unwrap_or(f64::NAN),
                test_loss: report.final_test_loss.unwrap_or(f64::NAN),
                train_seconds: report.train_seconds,
                margin,
            };
            on_point(&point);
            points.push(point);
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::mlp_parameter_count;
    use nn_core::data::generated::generated_train_test;

    #[test]
    fn parameter_formula_matches_the_built_networks() -> Result<()> {
        let data = generated_train_test(40, 20, 1).map_err(GenError::from)?;
        let params = WidthSweepParams {
            widths: vec![1, 3, 17],
            label_noise: vec![0.0],
            fit: FitConfig {
                max_epochs: 1,
                ..WidthSweepParams::default().fit
            },
            margins: false,
            ..WidthSweepParams::default()
        };
        let points = width_sweep(
            &data.train,
            &data.test,
            &params,
            &WidthSweepOptions::default(),
            &mut |_| {},
            &Device::Cpu,
        )?;
        for p in &points {
            assert_eq!(p.parameters, mlp_parameter_count(784, &[p.width], 10));
            assert!(p.margin.is_none() && p.epochs == 1);
        }
        Ok(())
    }

    #[test]
    fn label_noise_changes_the_asked_fraction_to_wrong_classes() -> Result<()> {
        let data = generated_train_test(2000, 10, 2).map_err(GenError::from)?;
        let k = 10.0;
        let eta = 0.2;
        let c = corrupt(
            &data.train,
            &data.test,
            Corruption::PartialLabels {
                p: eta * k / (k - 1.0),
            },
            0,
        )?;
        let changed = c.summary.labels_changed as f64 / 2000.0;
        // Binomial(2000, 0.2): standard deviation ≈ 0.009.
        assert!((changed - eta).abs() < 0.04, "changed {changed}");
        Ok(())
    }

    #[test]
    fn bad_sweeps_are_refused_with_the_field_named() {
        let bad = |p: WidthSweepParams| p.validate(10).unwrap_err().to_string();
        let d = WidthSweepParams::default;
        assert!(
            bad(WidthSweepParams {
                widths: vec![],
                ..d()
            })
            .contains("widths")
        );
        assert!(
            bad(WidthSweepParams {
                widths: vec![4, 0],
                ..d()
            })
            .contains("widths")
        );
        assert!(
            bad(WidthSweepParams {
                label_noise: vec![0.95],
                ..d()
            })
            .contains("label_noise")
        );
        assert!(
            bad(WidthSweepParams {
                label_noise: vec![f64::NAN],
                ..d()
            })
            .contains("label_noise")
        );
        assert!(d().validate(10).is_ok());
    }
}
