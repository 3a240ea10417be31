//! The training loop: mini-batch training of a [`Classifier`] with per-epoch metrics, NaN detection,
//! atomic checkpoints and resume.
//!
//! A run is a function of its seed: weights are initialised by [`crate::models::SeededVarMap`], and
//! epoch `e` visits the training set in the order `permutation(N, epoch_seed(seed, e))`. Checkpoints
//! hold the weights *and* the optimiser state, so a run killed after epoch `k` and started again with the
//! same arguments continues exactly as the uninterrupted run would have.
//!
//! ```
//! use candle_core::{DType, Device};
//! use candle_nn::VarMap;
//! use nn_core::data::generated::generated_digits;
//! use nn_core::models::{build_model, InputSpec, ModelConfig, ModelKind, SeededVarMap};
//! use nn_core::train::{train, TrainConfig, TrainOptions};
//!
//! let data = generated_digits(256, 0).unwrap();
//! let varmap = VarMap::new();
//! let vb = SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu);
//! let model = build_model(&ModelConfig::new(ModelKind::Mlp, InputSpec::new(1, 28, 28, 10)), vb).unwrap();
//! let config = TrainConfig { epochs: 2, ..TrainConfig::default() };
//! let report = train(model.as_ref(), &varmap, &data, Some(&data), &config, &TrainOptions::default()).unwrap();
//! assert_eq!(report.history.len(), 2);
//! ```

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{D, DType, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{RunIdentity, resume_run, save_run};
use crate::data::Dataset;
use crate::layers::cross_entropy;
use crate::models::Classifier;
use crate::optim::{LrSchedule, Optimizer, OptimizerConfig};
use crate::progress::SharedProgress;
use crate::{NnError, Result};

/// Hyper-parameters of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Number of passes over the training set (default 3).
    pub epochs: usize,
    /// Mini-batch size (default 64).
    pub batch_size: usize,
    /// Optimiser (default Adam, lr 1e-3, no weight decay).
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule over epochs (default constant).
    pub schedule: LrSchedule,
    /// Seed of the batch order (the weights' seed is the `SeededVarMap`'s).
    pub seed: u64,
    /// Batch size for evaluation (default 500).
    pub eval_batch_size: usize,
    /// Also measure exact accuracy on the whole training set after each epoch (default false: the
    /// reported training accuracy is then the running accuracy over the epoch's batches).
    pub eval_train: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            batch_size: 64,
            optimizer: OptimizerConfig::adam(1e-3),
            schedule: LrSchedule::Constant,
            seed: 0,
            eval_batch_size: 500,
            eval_train: false,
        }
    }
}

impl TrainConfig {
    /// Checks every field once.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(NnError::invalid("batch_size", "must be at least 1"));
        }
        if self.eval_batch_size == 0 {
            return Err(NnError::invalid("eval_batch_size", "must be at least 1"));
        }
        self.schedule.validate()?;
        self.optimizer.validate()
    }
}

/// Where checkpoints go and how progress is shown.
#[derive(Clone, Default)]
pub struct TrainOptions {
    /// Directory for checkpoints (`state.json` and `weights-epoch<k>.safetensors`); `None`: no checkpoints.
    /// An existing compatible checkpoint there is resumed.
    pub checkpoint_dir: Option<PathBuf>,
    /// Advanced once per batch, with the epoch and loss as message; `None`: not reported.
    pub progress: Option<SharedProgress>,
}

impl std::fmt::Debug for TrainOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainOptions")
            .field("checkpoint_dir", &self.checkpoint_dir)
            .field("progress", &self.progress.as_ref().map(|_| "Progress"))
            .finish()
    }
}

/// Metrics of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Learning rate used in this epoch.
    pub lr: f64,
    /// Mean cross-entropy over the epoch's batches (weighted by batch size).
    pub train_loss: f64,
    /// Accuracy over the epoch's batches as they were trained on.
    pub train_accuracy_running: f64,
    /// Exact accuracy on the whole training set after the epoch (when `eval_train`).
    pub train_accuracy: Option<f64>,
    /// Loss on the test set after the epoch.
    pub test_loss: Option<f64>,
    /// Accuracy on the test set after the epoch.
    pub test_accuracy: Option<f64>,
    /// Wall seconds of the epoch's training steps (evaluation excluded).
    pub train_seconds: f64,
    /// Optimiser steps so far.
    pub steps: u64,
}

/// The outcome of [`train`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    /// Every epoch's metrics, including those restored from a checkpoint.
    pub history: Vec<EpochMetrics>,
    /// The epoch the run resumed after, when it resumed from a checkpoint.
    pub resumed_after_epoch: Option<usize>,
}

/// Accuracy, loss and confusion matrix of a model on a data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Number of images.
    pub n: usize,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
}

/// The seed of epoch `epoch`'s batch order (SplitMix64 of the run seed and the epoch).
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    use crate::seed::{GOLDEN_GAMMA, mix64};
    mix64(seed ^ (epoch as u64).wrapping_mul(GOLDEN_GAMMA))
}

/// Trains `model` (whose variables are `varmap`) on `train_set`, evaluating on `test_set` after every
/// epoch. With a checkpoint directory, saves after every epoch and resumes from a compatible checkpoint;
/// a checkpoint of a different run (model, data or hyper-parameters other than `epochs`) is an error.
pub fn train(
    model: &dyn Classifier,
    varmap: &VarMap,
    train_set: &Dataset,
    test_set: Option<&Dataset>,
    config: &TrainConfig,
    options: &TrainOptions,
) -> Result<TrainReport> {
    config.validate()?;
    check_data_fits(model, train_set, "training set")?;
    if let Some(t) = test_set {
        check_data_fits(model, t, "test set")?;
    }
    if train_set.is_empty() {
        return Err(NnError::invalid(
            "training set",
            format!("`{}` is empty", train_set.name),
        ));
    }
    let device = model.device();
    let train_set = train_set.to_device(&device)?;
    let test_set = test_set.map(|t| t.to_device(&device)).transpose()?;
    let mut optimizer = Optimizer::new(config.optimizer.clone(), varmap)?;
    let fingerprint = train_set.fingerprint()?;

    let mut history = Vec::new();
    let mut resumed_after_epoch = None;
    if let Some(dir) = &options.checkpoint_dir
        && let Some(state) = resume_run::<TrainConfig, EpochMetrics>(
            dir,
            RunIdentity {
                model: model.config(),
                config,
                data: &fingerprint,
            },
            // Only the epoch budget may change between a run and its continuation.
            |saved, now| {
                &TrainConfig {
                    epochs: now.epochs,
                    ..saved.clone()
                } == now
            },
            varmap,
            &mut optimizer,
        )?
    {
        if state.epochs_done > config.epochs {
            return Err(NnError::invalid(
                "epochs",
                format!(
                    "the run in {} has already trained {} epochs; ask for at least {} to continue it, \
                     or use another directory",
                    dir.display(),
                    state.epochs_done,
                    state.epochs_done
                ),
            ));
        }
        resumed_after_epoch = Some(state.epochs_done);
        history = state.history;
        tracing::info!(
            "resuming from {} after epoch {}",
            dir.display(),
            state.epochs_done
        );
    }
    let start_epoch = resumed_after_epoch.unwrap_or(0);
    let batches_per_epoch = train_set.len().div_ceil(config.batch_size);
    let progress = options.progress.as_deref();
    if let Some(p) = progress {
        p.start(
            (config.epochs * batches_per_epoch) as u64,
            (start_epoch.min(config.epochs) * batches_per_epoch) as u64,
        );
    }

    for epoch in start_epoch..config.epochs {
        let lr = config.schedule.lr_at(config.optimizer.lr(), epoch);
        optimizer.set_learning_rate(lr);
        let pass = train_epoch(
            model,
            &mut optimizer,
            &train_set,
            config.batch_size,
            epoch_seed(config.seed, epoch),
            epoch,
            |x, _| Ok::<_, NnError>(x),
            |mean_loss| {
                if let Some(p) = progress {
                    p.advance(1);
                    p.message(&format!(
                        "epoch {}/{} loss {:.4}",
                        epoch + 1,
                        config.epochs,
                        mean_loss
                    ));
                }
            },
        )?;
        let train_accuracy = if config.eval_train {
            Some(evaluate(model, &train_set, config.eval_batch_size)?.accuracy)
        } else {
            None
        };
        let test_eval = test_set
            .as_ref()
            .map(|t| evaluate(model, t, config.eval_batch_size))
            .transpose()?;
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            lr,
            train_loss: pass.loss,
            train_accuracy_running: pass.running_accuracy,
            train_accuracy,
            test_loss: test_eval.as_ref().map(|e| e.loss),
            test_accuracy: test_eval.as_ref().map(|e| e.accuracy),
            train_seconds: pass.seconds,
            steps: optimizer.steps(),
        };
        tracing::info!(?metrics, "epoch done");
        history.push(metrics);
        if let Some(dir) = &options.checkpoint_dir {
            save_run(
                dir,
                RunIdentity {
                    model: model.config(),
                    config,
                    data: &fingerprint,
                },
                varmap,
                &optimizer,
                &history,
            )?;
        }
    }
    Ok(TrainReport {
        history,
        resumed_after_epoch,
    })
}

/// What one training pass over a data set measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPass {
    /// Mean cross-entropy of the pass's mini-batches (weighted by batch size), as trained on.
    pub loss: f64,
    /// Accuracy of the mini-batches as they were trained on.
    pub running_accuracy: f64,
    /// Wall seconds of the pass.
    pub seconds: f64,
}

/// One epoch of mini-batch training with cross-entropy: `data` (on the model's device) in batches of
/// `batch_size` in the order `permutation(N, order_seed)`, each converted to the model's dtype, passed
/// through `transform(x, step)` (0-based step; the identity for plain training, an input augmentation
/// otherwise), then forward, loss, `optimizer` step. A non-finite loss stops the pass with
/// [`NnError::Diverged`] naming `epoch + 1` and the step. `on_step(mean loss so far)` runs after every
/// step (progress bars). The one training loop of [`train`], `generalization::fit` and adversarial's
/// augmented training.
#[allow(clippy::too_many_arguments)]
pub fn train_epoch<E: From<NnError>>(
    model: &dyn Classifier,
    optimizer: &mut Optimizer,
    data: &Dataset,
    batch_size: usize,
    order_seed: u64,
    epoch: usize,
    mut transform: impl FnMut(Tensor, usize) -> std::result::Result<Tensor, E>,
    mut on_step: impl FnMut(f64),
) -> std::result::Result<EpochPass, E> {
    let started = Instant::now();
    let dtype = model.dtype();
    let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0u64, 0usize);
    let batches = data.batches(batch_size, Some(order_seed))?;
    for (step, batch) in batches.enumerate() {
        let (x, y) = batch?;
        let x = transform(x.to_dtype(dtype).map_err(NnError::from)?, step)?;
        let (value, hits) = train_step(model, optimizer, &x, &y, epoch, step)?;
        let n = y.dims()[0];
        loss_sum += value * n as f64;
        correct += hits;
        seen += n;
        on_step(loss_sum / seen as f64);
    }
    let seen = seen.max(1) as f64;
    Ok(EpochPass {
        loss: loss_sum / seen,
        running_accuracy: correct as f64 / seen,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One optimiser step on the batch `(x, y)`: its cross-entropy and the number it classified correctly.
fn train_step(
    model: &dyn Classifier,
    optimizer: &mut Optimizer,
    x: &Tensor,
    y: &Tensor,
    epoch: usize,
    step: usize,
) -> Result<(f64, u64)> {
    let logits = model.forward_t(x, true)?;
    let loss = cross_entropy(&logits, y)?;
    let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    if !value.is_finite() {
        return Err(NnError::Diverged {
            loss: value,
            epoch: epoch + 1,
            step: step + 1,
        });
    }
    optimizer.backward_step(&loss)?;
    Ok((value, count_correct(&logits, y)?))
}

fn check_data_fits(model: &dyn Classifier, data: &Dataset, what: &str) -> Result<()> {
    let input = model.config().input;
    let (c, h, w) = data.image_shape();
    if (c, h, w) != (input.channels, input.height, input.width)
        || data.num_classes() != input.num_classes
    {
        return Err(NnError::Shape {
            context: format!("{what} `{}` for model {}", data.name, model.config().kind),
            expected: format!(
                "{}×{}×{} images, {} classes",
                input.channels, input.height, input.width, input.num_classes
            ),
            got: format!("{c}×{h}×{w} images, {} classes", data.num_classes()),
        });
    }
    Ok(())
}

fn count_correct(logits: &Tensor, labels: &Tensor) -> Result<u64> {
    let pred = logits.argmax(D::Minus1)?;
    Ok(pred
        .eq(labels)?
        .to_dtype(DType::U32)?
        .sum_all()?
        .to_scalar::<u32>()? as u64)
}

/// Predicted labels of `images` in batches of `batch_size` (inference mode).
pub fn predict(model: &dyn Classifier, images: &Tensor, batch_size: usize) -> Result<Vec<u32>> {
    let n = images.dims()[0];
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(batch_size.max(1)) {
        let len = batch_size.min(n - start);
        let x = images
            .narrow(0, start, len)?
            .to_dtype(model.dtype())?
            .to_device(&model.device())?;
        out.extend(
            model
                .forward_t(&x, false)?
                .argmax(D::Minus1)?
                .to_vec1::<u32>()?,
        );
    }
    Ok(out)
}

/// Accuracy, mean loss and confusion matrix of `model` on `data` (inference mode).
pub fn evaluate(model: &dyn Classifier, data: &Dataset, batch_size: usize) -> Result<Evaluation> {
    check_data_fits(model, data, "evaluation set")?;
    let k = data.num_classes();
    let mut confusion = vec![vec![0u64; k]; k];
    let mut loss_sum = 0.0;
    for batch in data.batches(batch_size, None)? {
        let (x, y) = batch?;
        let x = x.to_dtype(model.dtype())?.to_device(&model.device())?;
        let y = y.to_device(&model.device())?;
        let logits = model.forward_t(&x, false)?;
        loss_sum += cross_entropy(&logits, &y)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?
            * y.dims()[0] as f64;
        let pred = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
        for (t, p) in y.to_vec1::<u32>()?.into_iter().zip(pred) {
            confusion[t as usize][p as usize] += 1;
        }
    }
    let n = data.len();
    let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
    Ok(Evaluation {
        n,
        accuracy: if n == 0 {
            0.0
        } else {
            correct as f64 / n as f64
        },
        loss: if n == 0 { 0.0 } else { loss_sum / n as f64 },
        confusion,
    })
}
