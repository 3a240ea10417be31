//! A classifier's run directory, shared by `mathnn train`, `mathnn eval`, `mathnn attack` and the
//! classifier-baseline experiment: [`train_on`] trains a [`ClassifierRun`] into it (resuming its checkpoint),
//! [`load_trained`] reads it back.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use nn_core::data::{Dataset, DatasetName, TrainTest};
use nn_core::models::{ModelConfig, ModelKind, parameter_count};
use nn_core::train::{EpochMetrics, TrainConfig, TrainOptions, train};
use serde::{Deserialize, Serialize};

use crate::common::shared_progress;
use crate::common::{DeviceArg, ensure_memory, input_spec, new_model, progress_bar, write_json};
/// What `DIR/config.json` records: enough to rebuild and evaluate the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    pub dataset: String,
    pub data_provenance: String,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
}

/// What `DIR/metrics.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMetrics {
    pub dataset: String,
    pub data_provenance: String,
    pub model: String,
    pub parameters: usize,
    pub train_images: usize,
    pub test_images: usize,
    pub epochs: Vec<EpochMetrics>,
    pub final_test_accuracy: Option<f64>,
    pub mean_train_seconds_per_epoch: f64,
    pub resumed_after_epoch: Option<usize>,
    pub threads: usize,
}

pub fn limit(data: TrainTest, train_n: Option<usize>, test_n: Option<usize>) -> Result<TrainTest> {
    let cut = |d: Dataset, n: Option<usize>| -> Result<Dataset> {
        match n {
            Some(0) => bail!("--limit-train/--limit-test must be at least 1"),
            Some(n) => Ok(d.take(n)?),
            None => Ok(d),
        }
    };
    Ok(TrainTest {
        train: cut(data.train, train_n)?,
        test: cut(data.test, test_n)?,
    })
}

/// The outcome of one training run, as `mathnn reproduce` uses it.
pub struct TrainOutcome {
    pub metrics: RunMetrics,
}

/// One classifier training run as `mathnn train` makes it: what to train, how, on which data (limits) and
/// where its directory is. `mathnn train` builds it from its flags; experiments build it directly.
#[derive(Debug, Clone)]
pub struct ClassifierRun {
    /// The data set's name as recorded in `config.json` (`generated` for the fallback).
    pub dataset: DatasetName,
    pub model: ModelKind,
    /// Hidden widths of the MLP (ignored by the other kinds).
    pub mlp_widths: Vec<usize>,
    /// Epochs, batch size, optimiser, schedule and the seed of the weights and of the batch order.
    pub train: TrainConfig,
    /// Use only the first N training / test images.
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
    /// The run directory (model.safetensors, metrics.json, config.json, checkpoint/).
    pub out: PathBuf,
    /// Write into `out` even if it holds another kind of run, another model or foreign files.
    pub force: bool,
    pub device: DeviceArg,
    pub quiet: bool,
}

/// Trains as `mathnn train` does on already loaded data; writes everything under `run.out`.
pub fn train_on(run: &ClassifierRun, data: TrainTest) -> Result<TrainOutcome> {
    let (kind, dataset) = (run.model, run.dataset);
    let config = run.train.clone();
    config.validate()?;
    let device = run.device.open()?;
    let data = limit(data, run.limit_train, run.limit_test)?;
    let provenance = data.train.provenance.label().to_string();
    let model_config = ModelConfig {
        mlp_widths: run.mlp_widths.clone(),
        ..ModelConfig::new(kind, input_spec(&data))
    };
    if kind == ModelKind::Mlp {
        // Weights, gradients and two Adam moments, f32 (widths ≤ 65,536 keep the count far below 2⁶⁴).
        let parameters = generalization::models::mlp_parameter_count(
            model_config.input.numel(),
            &model_config.mlp_widths,
            model_config.input.num_classes,
        ) as u64;
        let widths: Vec<String> = run.mlp_widths.iter().map(|w| w.to_string()).collect();
        ensure_memory(
            &format!("--mlp-widths {}", widths.join(",")),
            parameters.checked_mul(16),
        )?;
    }
    let (varmap, model) = new_model(&model_config, config.seed, &device)?;
    let _lock = crate::common::lock_run_dir(&run.out, "train", run.force)?;
    let out = run.out.clone();
    let run_config = RunConfig {
        dataset: dataset.to_string(),
        data_provenance: provenance.clone(),
        model: model_config.clone(),
        train: config.clone(),
        limit_train: run.limit_train,
        limit_test: run.limit_test,
    };
    if !run.force {
        refuse_other_model(&out, &run_config)?;
    }
    write_json(&out.join("config.json"), &run_config)?;
    let progress = progress_bar(run.quiet, &format!("{kind} on {dataset}"));
    let options = TrainOptions {
        checkpoint_dir: Some(out.join("checkpoint")),
        progress: Some(shared_progress(&progress)),
    };
    let started = Instant::now();
    let report = train(
        model.as_ref(),
        &varmap,
        &data.train,
        Some(&data.test),
        &config,
        &options,
    )?;
    progress.finish_and_clear();
    if let Some(e) = report.resumed_after_epoch {
        eprintln!(
            "resumed from {} after epoch {e}",
            out.join("checkpoint").display()
        );
    }
    tracing::info!("trained in {:.1} s", started.elapsed().as_secs_f64());
    nn_core::checkpoint::save_varmap(&varmap, &out.join("model.safetensors"))?;
    let all_seconds: Vec<f64> = report.history.iter().map(|m| m.train_seconds).collect();
    let metrics = RunMetrics {
        dataset: dataset.to_string(),
        data_provenance: provenance,
        model: kind.to_string(),
        parameters: parameter_count(&varmap),
        train_images: data.train.len(),
        test_images: data.test.len(),
        final_test_accuracy: report.history.last().and_then(|m| m.test_accuracy),
        mean_train_seconds_per_epoch: all_seconds.iter().sum::<f64>()
            / all_seconds.len().max(1) as f64,
        epochs: report.history,
        resumed_after_epoch: report.resumed_after_epoch,
        threads: nn_core::threads::worker_threads(),
    };
    write_json(&out.join("metrics.json"), &metrics)?;
    Ok(TrainOutcome { metrics })
}

/// Refuses a run directory whose `config.json` describes another model or data set: its model (finished,
/// perhaps without a checkpoint folder) would be replaced. The checkpoint's own check catches the rest.
pub fn refuse_other_model(out: &Path, run: &RunConfig) -> Result<()> {
    let path = out.join("config.json");
    if !path.exists() {
        return Ok(());
    }
    let found: serde_json::Value = nn_core::checkpoint::read_json(&path)?;
    let ours = serde_json::to_value(run)?;
    // Only what identifies the model; settings such as epochs may change between runs.
    let identity =
        |v: &serde_json::Value| serde_json::json!({ "dataset": v["dataset"], "model": v["model"] });
    let differing =
        nn_core::checkpoint::differing_fields(&identity(&found), &identity(&ours), "directory");
    if differing.is_empty() {
        return Ok(());
    }
    bail!(
        "--out {} holds a run of another model ({}); use another directory, or --force to replace it",
        out.display(),
        differing.join("; ")
    )
}

/// Loads the model saved in `dir` by `mathnn train`.
pub fn load_trained(
    dir: &Path,
    device: &candle_core::Device,
) -> Result<(
    RunConfig,
    candle_nn::VarMap,
    Box<dyn nn_core::models::Classifier>,
)> {
    if !dir.is_dir() {
        bail!("--checkpoint {}: no such directory", dir.display());
    }
    let config: RunConfig = nn_core::checkpoint::read_json(&dir.join("config.json"))?;
    let (varmap, model) = new_model(&config.model, 0, device)?;
    nn_core::checkpoint::load_varmap(&varmap, &dir.join("model.safetensors"))?;
    Ok((config, varmap, model))
}
