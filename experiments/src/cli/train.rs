//! `mathnn train` and `mathnn eval`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use nn_core::data::DatasetName;
use nn_core::models::ModelKind;
use nn_core::optim::{LrSchedule, OptimizerConfig};
use nn_core::train::{Evaluation, TrainConfig, evaluate};
use serde::Serialize;

use crate::common::ForceArg;
use crate::common::{DeviceArg, load_data};
use crate::common::{MlpWidths, OptimizerChoice, choice, count, mlp_widths_value, schedule_value};
use crate::runs::classifier::{ClassifierRun, load_trained, train_on};

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
    #[command(flatten)]
    pub force: ForceArg,
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
    #[arg(long, default_value = "constant", value_parser = schedule_value)]
    pub schedule: LrSchedule,
    /// Hidden widths of the MLP, comma-separated (each 1 … 65,536).
    #[arg(long, default_value = "512,512", value_parser = mlp_widths_value)]
    pub mlp_widths: MlpWidths,
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
    let mut schedule = args.schedule.clone();
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

impl TrainArgs {
    /// The run these flags describe (flags checked before any data is loaded).
    pub fn classifier_run(&self) -> Result<ClassifierRun> {
        Ok(ClassifierRun {
            dataset: self.dataset,
            model: self.model,
            mlp_widths: self.mlp_widths.0.clone(),
            train: train_config(self)?,
            limit_train: self.limit_train,
            limit_test: self.limit_test,
            out: self.out.clone(),
            force: self.force.enabled,
            device: self.device,
            quiet: self.quiet,
        })
    }
}

/// `mathnn train`.
pub fn run_train(args: TrainArgs) -> Result<()> {
    let run = args.classifier_run()?;
    let data = load_data(args.dataset, args.data_dir.as_deref())?;
    let outcome = train_on(&run, data)?;
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
