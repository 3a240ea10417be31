//! `mathnn random-labels`: Zhang et al.'s randomisation tests on chosen conditions (the experiment itself is
//! `reproduce::random_labels`).

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use generalization::fit::FitConfig;
use generalization::{Corruption, ZhangModel};
use nn_core::data::DatasetName;
use nn_core::optim::{LrSchedule, OptimizerConfig};

use crate::common::ForceArg;
use crate::common::{DeviceArg, load_data, write_json};
use crate::common::{OptimizerChoice, choice, count, schedule_value};
use crate::reproduce::random_labels::{LEVELS, Plan, epochs, pct, pixel_conditions, run_plan};

/// Arguments of `mathnn random-labels`.
#[derive(Args, Debug, Clone)]
pub struct RandomLabelsArgs {
    /// Data set (28×28, 10 classes).
    #[arg(long, default_value = "mnist", value_parser = choice(&RANDOM_LABELS_DATASETS))]
    pub dataset: DatasetName,
    /// Models, comma-separated.
    #[arg(long, default_value = "mlp-1x512", value_delimiter = ',', value_parser = choice(&ZhangModel::ALL))]
    pub model: Vec<ZhangModel>,
    /// Conditions, comma-separated: true-labels, labels-pP (P in [0, 1]), random-labels,
    /// shuffled-pixels, random-pixels, gaussian; or `sweep` (six label levels) or `all` (sweep + pixels).
    #[arg(long, default_value = "all", value_parser = corruptions_value)]
    pub corruption: Conditions,
    /// Training images (the first N of the training set).
    #[arg(value_parser = count::<1, 100_000_000>, long, default_value_t = 1000)]
    pub train_size: usize,
    /// Test images (the first N of the test set; default all).
    #[arg(value_parser = count::<1, 100_000_000>, long)]
    pub test_size: Option<usize>,
    /// Epoch cap.
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 300)]
    pub max_epochs: usize,
    /// Stop at this exact training accuracy (in (0, 1]).
    #[arg(long, default_value_t = 1.0)]
    pub target: f64,
    /// Seed of the corruption and of the weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerChoice::Adam)]
    pub optimizer: OptimizerChoice,
    /// Learning rate (default 1e-3 for Adam, 0.01 for SGD).
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Learning-rate schedule: constant, exp:GAMMA (Zhang et al.: exp:0.95 with SGD), step:EVERY:GAMMA or
    /// cosine.
    #[arg(long, default_value = "constant", value_parser = schedule_value)]
    pub schedule: LrSchedule,
    /// Mini-batch size.
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 128)]
    pub batch_size: usize,
    /// Evaluate the test set every K epochs (and at the last).
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 1)]
    pub test_every: usize,
    /// Output directory: one checkpointed run per condition, and results.json.
    #[arg(long, default_value = "runs/random-labels")]
    pub out: PathBuf,
    #[command(flatten)]
    pub force: ForceArg,
    /// Directory holding the data sets (else MATHNN_DATA, else the cache).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// The conditions of `--corruption`, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Conditions(pub Vec<Corruption>);

/// `--corruption` as a clap value parser (clap's error names the flag and the value).
fn corruptions_value(s: &str) -> std::result::Result<Conditions, String> {
    // clap's message already names the flag and the value: the innermost reason is enough.
    parse_corruptions(s)
        .map(Conditions)
        .map_err(|e| e.root_cause().to_string())
}

pub fn parse_corruptions(s: &str) -> Result<Vec<Corruption>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "sweep" => out.extend(Corruption::label_sweep(&LEVELS)),
            "all" => {
                out.extend(Corruption::label_sweep(&LEVELS));
                out.extend(pixel_conditions());
            }
            _ => out.push(
                part.parse()
                    .with_context(|| format!("--corruption `{s}`"))?,
            ),
        }
    }
    if out.is_empty() {
        bail!("--corruption is empty: name at least one condition");
    }
    Ok(out)
}

/// The data sets `--dataset` accepts: 28 × 28 grey images of 10 classes.
pub const RANDOM_LABELS_DATASETS: [DatasetName; 3] = [
    DatasetName::Mnist,
    DatasetName::FashionMnist,
    DatasetName::Generated,
];

pub fn fit_config(args: &RandomLabelsArgs) -> Result<FitConfig> {
    let optimizer = match args.optimizer {
        OptimizerChoice::Adam => OptimizerConfig::adam(args.lr.unwrap_or(1e-3)),
        OptimizerChoice::Sgd => OptimizerConfig::sgd(args.lr.unwrap_or(0.01), args.momentum),
    };
    let mut schedule = args.schedule.clone();
    if let LrSchedule::Cosine { epochs, .. } = &mut schedule {
        *epochs = args.max_epochs;
    }
    let config = FitConfig {
        max_epochs: args.max_epochs,
        target_accuracy: args.target,
        batch_size: args.batch_size,
        optimizer,
        schedule,
        test_every: args.test_every,
        ..FitConfig::default()
    };
    config.validate()?;
    Ok(config)
}

/// `mathnn random-labels`.
pub fn run_cli(args: RandomLabelsArgs) -> Result<()> {
    let device = args.device.open()?;
    let dataset = args.dataset;
    if !RANDOM_LABELS_DATASETS.contains(&dataset) {
        bail!(
            "--dataset {dataset}: expected mnist, fashion-mnist or generated (28×28, 10 classes)"
        );
    }
    let config = fit_config(&args)?;
    let corruptions = args.corruption.0.clone();
    let models = args.model.clone();
    let data = load_data(dataset, args.data_dir.as_deref())?;
    let _lock = crate::common::lock_run_dir(&args.out, "random-labels", args.force.enabled)?;
    let out = args.out.clone();
    let mut all = Vec::new();
    for model in models {
        let plan = Plan {
            dataset,
            model,
            corruptions: corruptions.clone(),
            train_size: args.train_size,
            test_size: args.test_size,
            config: FitConfig {
                seed: args.seed,
                ..config.clone()
            },
            seed: args.seed,
        };
        all.extend(run_plan(&plan, data.clone(), &out, args.quiet, &device)?);
    }
    write_json(&out.join("results.json"), &all)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    println!(
        "{:<10} {:<16} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "model", "condition", "changed", "to 90%", "to 100%", "train", "test", "s/epoch"
    );
    for r in &all {
        let f = &r.fit;
        println!(
            "{:<10} {:<16} {:>7.1}% {:>9} {:>9} {:>8.2}% {:>9} {:>8.2}",
            r.model.as_str(),
            r.corruption.corruption.name(),
            100.0 * r.corruption.fraction_labels_changed,
            epochs(f.epochs_to_90, f.epochs),
            epochs(f.epochs_to_100, f.epochs),
            100.0 * f.final_train_accuracy,
            pct(f.final_test_accuracy),
            f.train_seconds / f.epochs.max(1) as f64
        );
    }
    println!("wrote {}", out.join("results.json").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reproduce::random_labels::thousands;

    #[test]
    fn parses_condition_lists_and_settings() {
        let all = parse_corruptions("all").unwrap();
        assert_eq!(all.len(), 9);
        assert_eq!(all[0], Corruption::TrueLabels);
        assert_eq!(all[5], Corruption::RandomLabels);
        assert_eq!(
            parse_corruptions("true, labels-p0.3,gaussian").unwrap(),
            vec![
                Corruption::TrueLabels,
                Corruption::PartialLabels { p: 0.3 },
                Corruption::Gaussian
            ]
        );
        assert_eq!(thousands(407_050), "407,050");
        assert_eq!(thousands(1_209_866), "1,209,866");
        assert_eq!(thousands(12), "12");
        let err = format!("{:#}", parse_corruptions("labels-p2").unwrap_err());
        assert!(err.contains("[0, 1]"), "{err}");
        assert!(parse_corruptions(" , ").is_err());
        let mut args = RandomLabelsArgs {
            dataset: DatasetName::Mnist,
            model: vec![ZhangModel::Mlp1x512],
            corruption: corruptions_value("all").unwrap(),
            train_size: 10,
            test_size: None,
            max_epochs: 5,
            target: 1.0,
            seed: 0,
            optimizer: OptimizerChoice::Sgd,
            lr: None,
            momentum: 0.9,
            schedule: schedule_value("exp:0.95").unwrap(),
            batch_size: 128,
            test_every: 1,
            out: "x".into(),
            force: ForceArg::default(),
            data_dir: None,
            json: false,
            quiet: true,
            device: DeviceArg::CPU,
        };
        let c = fit_config(&args).unwrap();
        assert_eq!(c.optimizer, OptimizerConfig::sgd(0.01, 0.9));
        assert_eq!(c.schedule, LrSchedule::Exponential { gamma: 0.95 });
        // Cosine decays over the epoch cap.
        args.schedule = schedule_value("cosine").unwrap();
        assert_eq!(
            fit_config(&args).unwrap().schedule,
            LrSchedule::Cosine {
                epochs: 5,
                min_lr: 0.0
            }
        );
        // An invalid decay is refused by the flag's parser, which clap reports naming `--schedule`.
        let err = schedule_value("exp:-0.5").unwrap_err();
        assert!(err.contains("decay factor"), "{err}");
        args.schedule = LrSchedule::Constant;
        args.target = 1.5;
        let err = fit_config(&args).unwrap_err().to_string();
        assert!(err.contains("target_accuracy"), "{err}");
    }
}
