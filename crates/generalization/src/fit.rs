//! The fit-until-memorised runner: trains a classifier until its **exact** training accuracy (eval mode,
//! whole training set, on the possibly corrupted labels) reaches a target (default 100 %) or an epoch
//! cap, recording per epoch the mean mini-batch loss, the exact training accuracy and the test accuracy.
//!
//! Time to fit, both definitions of the spec: the first epoch whose exact training accuracy is 100 %
//! (Zhang et al.'s) and the first epoch at ≥ 90 %. With `N` images and target `a`, "reached" means
//! `correct ≥ ⌈a·N⌉`, counted in integers.
//!
//! A run is a function of its seeds: the weights come from the caller's `SeededVarMap`, and epoch `e`
//! visits the training set in the order `permutation(N, epoch_seed(config.seed, e))` (nn-core's rule).
//! With a checkpoint directory the runner saves weights, optimiser state and history every
//! `checkpoint_every` epochs (atomically; `state.json` last), and a second call with the same arguments
//! resumes exactly — or returns at once when the run had already finished. Raising `max_epochs`
//! continues a run that stopped at the cap.
//!
//! ```
//! use candle_core::{DType, Device};
//! use candle_nn::VarMap;
//! use generalization::fit::{fit, FitConfig, FitOptions};
//! use nn_core::data::generated::generated_train_test;
//! use nn_core::models::{build_model, InputSpec, ModelConfig, ModelKind, SeededVarMap};
//!
//! let data = generated_train_test(64, 32, 0).unwrap();
//! let varmap = VarMap::new();
//! let vb = SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu);
//! let config = ModelConfig { mlp_widths: vec![32], ..ModelConfig::new(ModelKind::Mlp, InputSpec::new(1, 28, 28, 10)) };
//! let model = build_model(&config, vb).unwrap();
//! let fit_config = FitConfig { max_epochs: 3, ..FitConfig::default() };
//! let report = fit(model.as_ref(), &varmap, &data.train, Some(&data.test), &fit_config, &FitOptions::default()).unwrap();
//! assert!(report.epochs <= 3 && report.history.len() == report.epochs);
//! ```

use std::path::PathBuf;

use candle_core::DType;
use candle_nn::VarMap;
use nn_core::checkpoint::{RunIdentity, resume_run, save_run};
use nn_core::data::Dataset;
use nn_core::models::Classifier;
use nn_core::optim::{LrSchedule, Optimizer, OptimizerConfig};
use nn_core::progress::SharedProgress;
use nn_core::train::{epoch_seed, evaluate, train_epoch};
use serde::{Deserialize, Serialize};

use crate::{GenError, Result};

/// Hyper-parameters of a fit-until-memorised run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// Epoch cap (default 300).
    pub max_epochs: usize,
    /// Stop at the first epoch whose exact training accuracy is ≥ this (default 1.0, in (0, 1]).
    pub target_accuracy: f64,
    /// Mini-batch size (default 128, as in the re-implementations of the paper).
    pub batch_size: usize,
    /// Optimiser (default Adam, lr 1e-3, no weight decay).
    pub optimizer: OptimizerConfig,
    /// Learning rate per epoch (default constant).
    pub schedule: LrSchedule,
    /// Seed of the batch order (default 0).
    pub seed: u64,
    /// Batch size of the evaluation passes (default 500).
    pub eval_batch_size: usize,
    /// Evaluate the test set every this many epochs, and always at the last epoch (default 1).
    pub test_every: usize,
    /// Stop at the first epoch that reaches the target (default true); false: train all `max_epochs`
    /// (a fixed budget, as in Nakkiran et al.'s model-size sweeps) and still record the times to fit.
    #[serde(default = "stop_at_target_default")]
    pub stop_at_target: bool,
}

/// Runs saved before the field existed stopped at the target.
fn stop_at_target_default() -> bool {
    true
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            max_epochs: 300,
            target_accuracy: 1.0,
            batch_size: 128,
            optimizer: OptimizerConfig::adam(1e-3),
            schedule: LrSchedule::Constant,
            seed: 0,
            eval_batch_size: 500,
            test_every: 1,
            stop_at_target: true,
        }
    }
}

impl FitConfig {
    /// Zhang et al.'s optimiser for the MLPs: SGD, momentum 0.9, lr 0.01, ×0.95 every epoch.
    pub fn zhang_sgd() -> Self {
        Self {
            optimizer: OptimizerConfig::sgd(0.01, 0.9),
            schedule: LrSchedule::Exponential { gamma: 0.95 },
            ..Self::default()
        }
    }

    /// Checks every field once.
    pub fn validate(&self) -> Result<()> {
        if self.max_epochs == 0 {
            return Err(GenError::invalid("max_epochs", "must be at least 1"));
        }
        if !(self.target_accuracy > 0.0 && self.target_accuracy <= 1.0) {
            return Err(GenError::invalid(
                "target_accuracy",
                format!("must be in (0, 1], got {}", self.target_accuracy),
            ));
        }
        for (name, v) in [
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("test_every", self.test_every),
        ] {
            if v == 0 {
                return Err(GenError::invalid(name, "must be at least 1"));
            }
        }
        self.schedule.validate()?;
        Ok(self.optimizer.validate()?)
    }
}

/// Where checkpoints go and how progress is shown.
#[derive(Clone)]
pub struct FitOptions {
    /// Directory for `state.json` and `weights-epoch<k>.safetensors`; `None`: no checkpoints.
    pub checkpoint_dir: Option<PathBuf>,
    /// Save every this many epochs, and always at the end (default 10).
    pub checkpoint_every: usize,
    /// Advanced once per epoch, with the loss and accuracy as message; `None`: not reported.
    pub progress: Option<SharedProgress>,
}

impl std::fmt::Debug for FitOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitOptions")
            .field("checkpoint_dir", &self.checkpoint_dir)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("progress", &self.progress.as_ref().map(|_| "Progress"))
            .finish()
    }
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            checkpoint_dir: None,
            checkpoint_every: 10,
            progress: None,
        }
    }
}

/// Metrics of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Optimiser steps at the end of the epoch.
    pub steps: u64,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// Mean cross-entropy of the epoch's mini-batches (weighted by batch size), as trained on.
    pub train_loss: f64,
    /// Cross-entropy on the whole training set after the epoch (eval mode).
    pub train_loss_eval: f64,
    /// Exact training accuracy after the epoch (eval mode, corrupted labels).
    pub train_accuracy: f64,
    /// Correctly classified training images after the epoch.
    pub train_correct: usize,
    /// Test accuracy after the epoch (true labels), on evaluated epochs.
    pub test_accuracy: Option<f64>,
    /// Test cross-entropy after the epoch, on evaluated epochs.
    pub test_loss: Option<f64>,
    /// Wall seconds of the epoch's training steps (evaluation excluded).
    pub train_seconds: f64,
}

/// The outcome of [`fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Every epoch, including those restored from a checkpoint.
    pub history: Vec<EpochRecord>,
    /// Training images `N`.
    pub train_images: usize,
    /// The target accuracy of the run.
    pub target_accuracy: f64,
    /// True when the last epoch reached the target.
    pub reached_target: bool,
    /// Epochs run.
    pub epochs: usize,
    /// First epoch at 100 % exact training accuracy (Zhang et al.'s time to fit).
    pub epochs_to_100: Option<usize>,
    /// First epoch at ≥ 90 % exact training accuracy.
    pub epochs_to_90: Option<usize>,
    /// Optimiser steps at `epochs_to_100`.
    pub steps_to_100: Option<u64>,
    /// Optimiser steps at `epochs_to_90`.
    pub steps_to_90: Option<u64>,
    /// Exact training accuracy at the last epoch.
    pub final_train_accuracy: f64,
    /// Test accuracy at the last epoch.
    pub final_test_accuracy: Option<f64>,
    /// Test loss at the last epoch.
    pub final_test_loss: Option<f64>,
    /// Wall seconds of training steps over all epochs (restored ones included).
    pub train_seconds: f64,
    /// The epoch the run resumed after, when it resumed from a checkpoint.
    pub resumed_after_epoch: Option<usize>,
}

/// `⌈a·N⌉` in integers (with a 1e-9 guard against `0.9·1000 = 900.0000000000001`).
fn needed(n: usize, accuracy: f64) -> usize {
    ((accuracy * n as f64) - 1e-9).ceil().max(0.0) as usize
}

/// The first epoch of `history` whose exact training accuracy on `n` images is at least `accuracy`.
pub fn first_epoch_reaching(
    history: &[EpochRecord],
    n: usize,
    accuracy: f64,
) -> Option<&EpochRecord> {
    let need = needed(n, accuracy);
    history.iter().find(|r| r.train_correct >= need)
}

impl FitReport {
    /// Summarises `history` of a run on `n` training images with `target` accuracy.
    pub fn from_history(
        history: Vec<EpochRecord>,
        n: usize,
        target: f64,
        resumed_after_epoch: Option<usize>,
    ) -> Self {
        let to100 = first_epoch_reaching(&history, n, 1.0);
        let to90 = first_epoch_reaching(&history, n, 0.9);
        let last = history.last();
        Self {
            train_images: n,
            target_accuracy: target,
            reached_target: last.is_some_and(|r| r.train_correct >= needed(n, target)),
            epochs: history.len(),
            epochs_to_100: to100.map(|r| r.epoch),
            epochs_to_90: to90.map(|r| r.epoch),
            steps_to_100: to100.map(|r| r.steps),
            steps_to_90: to90.map(|r| r.steps),
            final_train_accuracy: last.map_or(0.0, |r| r.train_accuracy),
            final_test_accuracy: last.and_then(|r| r.test_accuracy),
            final_test_loss: last.and_then(|r| r.test_loss),
            train_seconds: history.iter().map(|r| r.train_seconds).sum(),
            resumed_after_epoch,
            history,
        }
    }
}

fn check_fits(model: &dyn Classifier, data: &Dataset, what: &str) -> Result<()> {
    let input = model.config().input;
    let (c, h, w) = data.image_shape();
    if (c, h, w) != (input.channels, input.height, input.width)
        || data.num_classes() != input.num_classes
    {
        return Err(GenError::bad_data(
            &data.name,
            format!(
                "{what} has {c}×{h}×{w} images and {} classes; the {} model expects {}×{}×{} and {}",
                data.num_classes(),
                model.config().kind,
                input.channels,
                input.height,
                input.width,
                input.num_classes
            ),
        ));
    }
    let total = data
        .images
        .sum_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    if !total.is_finite() {
        return Err(GenError::bad_data(
            &data.name,
            format!("{what} contains NaN or infinite pixel values"),
        ));
    }
    Ok(())
}

/// Trains `model` (variables `varmap`) on `train` until its exact training accuracy reaches
/// `config.target_accuracy` or `config.max_epochs` epochs have run; evaluates `test` every
/// `config.test_every` epochs and at the last one. See the module header for seeds and checkpoints.
pub fn fit(
    model: &dyn Classifier,
    varmap: &VarMap,
    train: &Dataset,
    test: Option<&Dataset>,
    config: &FitConfig,
    options: &FitOptions,
) -> Result<FitReport> {
    config.validate()?;
    if options.checkpoint_every == 0 {
        return Err(GenError::invalid("checkpoint_every", "must be at least 1"));
    }
    if train.is_empty() {
        return Err(GenError::bad_data(&train.name, "the training set is empty"));
    }
    check_fits(model, train, "the training set")?;
    if let Some(t) = test {
        check_fits(model, t, "the test set")?;
    }
    let device = model.device();
    let train = train.to_device(&device)?;
    let test = test.map(|t| t.to_device(&device)).transpose()?;
    let n = train.len();
    let target = needed(n, config.target_accuracy);
    let mut optimizer = Optimizer::new(config.optimizer.clone(), varmap)?;
    let data_id = match &options.checkpoint_dir {
        Some(_) => train.fingerprint()?,
        None => String::new(),
    };

    let mut history = Vec::new();
    let mut resumed_after_epoch = None;
    if let Some(dir) = &options.checkpoint_dir
        && let Some(state) = resume_run::<FitConfig, EpochRecord>(
            dir,
            RunIdentity {
                model: model.config(),
                config,
                data: &data_id,
            },
            // Only the epoch budget may change between a run and its continuation.
            |saved, now| {
                &FitConfig {
                    max_epochs: now.max_epochs,
                    ..saved.clone()
                } == now
            },
            varmap,
            &mut optimizer,
        )?
    {
        resumed_after_epoch = Some(state.epochs_done);
        history = state.history;
        tracing::info!(
            "resuming {} after epoch {}",
            dir.display(),
            state.epochs_done
        );
    }
    let progress = options.progress.as_deref();
    if let Some(p) = progress {
        p.start(config.max_epochs as u64, history.len() as u64);
    }

    let done = |h: &[EpochRecord]| h.last().is_some_and(|r| r.train_correct >= target);
    let mut unsaved = false;
    while !(config.stop_at_target && done(&history)) && history.len() < config.max_epochs {
        let epoch = history.len();
        let lr = config.schedule.lr_at(config.optimizer.lr(), epoch);
        optimizer.set_learning_rate(lr);
        let pass = train_epoch(
            model,
            &mut optimizer,
            &train,
            config.batch_size,
            epoch_seed(config.seed, epoch),
            epoch,
            |x, _| Ok::<_, GenError>(x),
            |_| {},
        )?;
        let on_train = evaluate(model, &train, config.eval_batch_size)?;
        let correct: usize = (0..on_train.confusion.len())
            .map(|i| on_train.confusion[i][i] as usize)
            .sum();
        let last = (config.stop_at_target && correct >= target) || epoch + 1 == config.max_epochs;
        let on_test = match &test {
            Some(t) if last || (epoch + 1).is_multiple_of(config.test_every) => {
                Some(evaluate(model, t, config.eval_batch_size)?)
            }
            _ => None,
        };
        let record = EpochRecord {
            epoch: epoch + 1,
            steps: optimizer.steps(),
            lr,
            train_loss: pass.loss,
            train_loss_eval: on_train.loss,
            train_accuracy: on_train.accuracy,
            train_correct: correct,
            test_accuracy: on_test.as_ref().map(|e| e.accuracy),
            test_loss: on_test.as_ref().map(|e| e.loss),
            train_seconds: pass.seconds,
        };
        if let Some(p) = progress {
            p.advance(1);
            p.message(&format!(
                "epoch {} loss {:.4} train acc {:.4}",
                record.epoch, record.train_loss, record.train_accuracy
            ));
        }
        tracing::debug!(?record, "epoch done");
        history.push(record);
        unsaved = true;
        if let Some(dir) = &options.checkpoint_dir
            && (last || history.len().is_multiple_of(options.checkpoint_every))
        {
            save_run(
                dir,
                RunIdentity {
                    model: model.config(),
                    config,
                    data: &data_id,
                },
                varmap,
                &optimizer,
                &history,
            )?;
            unsaved = false;
        }
    }
    if unsaved && let Some(dir) = &options.checkpoint_dir {
        save_run(
            dir,
            RunIdentity {
                model: model.config(),
                config,
                data: &data_id,
            },
            varmap,
            &optimizer,
            &history,
        )?;
    }
    Ok(FitReport::from_history(
        history,
        n,
        config.target_accuracy,
        resumed_after_epoch,
    ))
}
