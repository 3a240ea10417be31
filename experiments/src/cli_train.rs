//! `mathnn train` and `mathnn eval`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use nn_core::data::{Dataset, DatasetName, TrainTest};
use nn_core::models::{ModelConfig, ModelKind, parameter_count};
use nn_core::optim::{LrSchedule, OptimizerConfig};
use nn_core::train::{EpochMetrics, Evaluation, TrainConfig, TrainOptions, evaluate, train};
use serde::{Deserialize, Serialize};

use crate::common::{DeviceArg, input_spec, load_data, new_model, progress_bar, write_json};
use crate::common::{OptimizerChoice, choice, count, ensure_memory, schedule_arg};

/// `mathnn eval --split`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Test,
    Train,
}

impl Split {
    /// `"test"` or `"train"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Test => "test",
            Split::Train => "train",
        }
    }
}

/// Arguments of `mathnn train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Data set.
    #[arg(long, default_value = "mnist", value_parser = choice(&DatasetName::ALL))]
    pub dataset: DatasetName,
    /// Model.
    #[arg(long, default_value = "lenet", value_parser = choice(&ModelKind::ALL))]
    pub model: ModelKind,
    /// Number of epochs.
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 3)]
    pub epochs: usize,
    /// Seed of the weights and of the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory (model.safetensors, metrics.json, config.json, checkpoint/).
    #[arg(long)]
    pub out: PathBuf,
    /// Write into --out even if it holds another kind of run or files no mathnn run wrote (files of the
    /// same names are replaced; others are left alone).
    #[arg(long)]
    pub force: bool,
    /// Directory holding the data sets (else MATHNN_DATA, else the cache).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Mini-batch size.
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 64)]
    pub batch_size: usize,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerChoice::Adam)]
    pub optimizer: OptimizerChoice,
    /// Learning rate (default: 1e-3 for Adam, 0.01 for SGD).
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Learning-rate schedule: constant, exp:GAMMA, step:EVERY:GAMMA or cosine.
    #[arg(long, default_value = "constant")]
    pub schedule: String,
    /// Hidden widths of the MLP, comma-separated.
    #[arg(long, default_value = "512,512")]
    pub mlp_widths: String,
    /// Use only the first N training images.
    #[arg(value_parser = count::<1, 100_000_000>, long)]
    pub limit_train: Option<usize>,
    /// Use only the first N test images.
    #[arg(value_parser = count::<1, 100_000_000>, long)]
    pub limit_test: Option<usize>,
    /// Also measure exact training-set accuracy after each epoch.
    #[arg(long)]
    pub eval_train: bool,
    #[command(flatten)]
    pub device: DeviceArg,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

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

/// Hidden widths `W1,W2,…`, each a count in 1 … 65,536 (784 × 65,536 f32 weights is already 205 MB).
pub fn parse_widths(s: &str) -> Result<Vec<usize>> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|w| {
            count::<1, 65_536>(w).map_err(|e| anyhow::anyhow!("invalid --mlp-widths `{s}`: {e}"))
        })
        .collect()
}

/// Builds the training configuration from the CLI arguments.
pub fn train_config(args: &TrainArgs) -> Result<TrainConfig> {
    let optimizer = match args.optimizer {
        OptimizerChoice::Adam => OptimizerConfig::Adam {
            lr: args.lr.unwrap_or(1e-3),
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: args.weight_decay,
        },
        OptimizerChoice::Sgd => OptimizerConfig::Sgd {
            lr: args.lr.unwrap_or(0.01),
            momentum: args.momentum,
            weight_decay: args.weight_decay,
            nesterov: false,
        },
    };
    let mut schedule = schedule_arg(&args.schedule)?;
    if let LrSchedule::Cosine { epochs, .. } = &mut schedule {
        *epochs = args.epochs;
    }
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        optimizer,
        schedule,
        seed: args.seed,
        eval_train: args.eval_train,
        ..TrainConfig::default()
    };
    config.validate()?;
    Ok(config)
}

fn limit(data: TrainTest, train_n: Option<usize>, test_n: Option<usize>) -> Result<TrainTest> {
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

/// Trains as `mathnn train` does on already loaded data; writes everything under `args.out`.
pub fn train_on(args: &TrainArgs, data: TrainTest) -> Result<TrainOutcome> {
    let (kind, dataset) = (args.model, args.dataset);
    let config = train_config(args)?;
    let device = args.device.open()?;
    let data = limit(data, args.limit_train, args.limit_test)?;
    let provenance = data.train.provenance.label().to_string();
    let model_config = ModelConfig {
        mlp_widths: parse_widths(&args.mlp_widths)?,
        ..ModelConfig::new(kind, input_spec(&data))
    };
    if kind == ModelKind::Mlp {
        // Weights, gradients and two Adam moments, f32 (widths ≤ 65,536 keep the count far below 2⁶⁴).
        let parameters = generalization::models::mlp_parameter_count(
            model_config.input.numel(),
            &model_config.mlp_widths,
            model_config.input.num_classes,
        ) as u64;
        ensure_memory(
            &format!("--mlp-widths {}", args.mlp_widths),
            parameters.checked_mul(16),
        )?;
    }
    let (varmap, model) = new_model(&model_config, args.seed, &device)?;
    let _lock = crate::common::lock_run_dir(&args.out, "train", args.force)?;
    let out = args.out.clone();
    let run_config = RunConfig {
        dataset: dataset.to_string(),
        data_provenance: provenance.clone(),
        model: model_config.clone(),
        train: config.clone(),
        limit_train: args.limit_train,
        limit_test: args.limit_test,
    };
    if !args.force {
        refuse_other_model(&out, &run_config)?;
    }
    write_json(&out.join("config.json"), &run_config)?;
    let progress = progress_bar(args.quiet, &format!("{kind} on {dataset}"));
    let options = TrainOptions {
        checkpoint_dir: Some(out.join("checkpoint")),
        progress: Some(progress.clone()),
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
fn refuse_other_model(out: &Path, run: &RunConfig) -> Result<()> {
    let path = out.join("config.json");
    if !path.exists() {
        return Ok(());
    }
    let found: serde_json::Value = nn_core::checkpoint::read_json(&path)?;
    let ours = serde_json::to_value(run)?;
    let mut differing = Vec::new();
    for key in ["dataset", "model"] {
        let (theirs, mine) = (&found[key], &ours[key]);
        match (theirs.as_object(), mine.as_object()) {
            (Some(t), Some(m)) => {
                for (field, value) in m {
                    if t.get(field) != Some(value) {
                        differing.push(format!(
                            "{key}.{field}: directory {}, this run {value}",
                            t.get(field).unwrap_or(&serde_json::Value::Null)
                        ));
                    }
                }
            }
            _ if theirs != mine => {
                differing.push(format!("{key}: directory {theirs}, this run {mine}"))
            }
            _ => {}
        }
    }
    if differing.is_empty() {
        return Ok(());
    }
    bail!(
        "--out {} holds a run of another model ({}); use another directory, or --force to replace it",
        out.display(),
        differing.join("; ")
    )
}

/// `mathnn train`.
pub fn run_train(args: TrainArgs) -> Result<()> {
    train_config(&args)?;
    let data = load_data(args.dataset, args.data_dir.as_deref())?;
    let outcome = train_on(&args, data)?;
    let m = &outcome.metrics;
    for e in &m.epochs {
        println!(
            "epoch {:>3}  loss {:.4}  train acc {:.4}  test acc {}  {:.1} s",
            e.epoch,
            e.train_loss,
            e.train_accuracy.unwrap_or(e.train_accuracy_running),
            e.test_accuracy
                .map(|a| format!("{a:.4}"))
                .unwrap_or_else(|| "-".into()),
            e.train_seconds
        );
    }
    println!(
        "{} on {} ({}): test accuracy {}; wrote {}",
        m.model,
        m.dataset,
        m.data_provenance,
        m.final_test_accuracy
            .map(|a| format!("{:.2}%", 100.0 * a))
            .unwrap_or_else(|| "-".into()),
        args.out.join("model.safetensors").display()
    );
    Ok(())
}

/// Arguments of `mathnn eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Directory written by `mathnn train` (config.json and model.safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Data set to evaluate on (default: the one trained on).
    #[arg(long, value_parser = choice(&DatasetName::ALL))]
    pub dataset: Option<DatasetName>,
    /// Which split.
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Directory holding the data sets.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Use only the first N images.
    #[arg(value_parser = count::<1, 100_000_000>, long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Serialize)]
struct EvalOutput<'a> {
    checkpoint: String,
    dataset: String,
    split: &'a str,
    data_provenance: &'a str,
    #[serde(flatten)]
    evaluation: Evaluation,
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

/// `mathnn eval`.
pub fn run_eval(args: EvalArgs) -> Result<()> {
    let device = args.device.open()?;
    let (config, _varmap, model) = load_trained(&args.checkpoint, &device)?;
    let dataset = match args.dataset {
        Some(d) => d,
        None => config.dataset.parse::<DatasetName>().with_context(|| {
            format!(
                "{}: unknown data set",
                args.checkpoint.join("config.json").display()
            )
        })?,
    };
    let data = load_data(dataset, args.data_dir.as_deref())?;
    let set = match args.split {
        Split::Test => data.test,
        Split::Train => data.train,
    };
    let set = match args.limit {
        Some(n) => set.take(n)?,
        None => set,
    };
    let evaluation = evaluate(model.as_ref(), &set, 500)?;
    let out = EvalOutput {
        checkpoint: args.checkpoint.display().to_string(),
        dataset: dataset.to_string(),
        split: args.split.as_str(),
        data_provenance: set.provenance.label(),
        evaluation,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
