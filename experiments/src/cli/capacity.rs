//! `mathnn capacity`: the exact capacity experiments of `generalization::capacity` on MNIST (or, without it,
//! the generated digits, labelled as such): random-features regression over a sweep of feature counts
//! (double descent), Zhang et al.'s Theorem 1 network, and minimum-norm kernel interpolation with true and
//! random labels.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use classical::features::{labels, pixel_features};
use generalization::FitConfig;
use generalization::capacity::kernel::{KernelParams, kernel_interpolation, median_distance};
use generalization::capacity::margin::MarginParams;
use generalization::capacity::margin_sweep::{MarginSweepParams, margin_sweep};
use generalization::capacity::random_features::{
    FeatureMap, RandomFeaturesParams, random_features_sweep,
};
use generalization::capacity::width_sweep::{WidthSweepOptions, WidthSweepParams, width_sweep};
use generalization::fit::FitOptions;
use ndarray::Array2;
use nn_core::data::{Dataset, DatasetName};
use nn_core::optim::OptimizerConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::common::ForceArg;
use crate::common::choice;
use crate::common::count;
use crate::common::shared_progress;
use crate::common::{DeviceArg, load_data_or_generated, progress_bar, write_json};
use crate::runs::capacity::{
    default_feature_counts, margin_header, margin_line, theorem1_on_random_labels, width_line,
};

/// Arguments of `mathnn capacity`.
#[derive(Args, Debug)]
pub struct CapacityArgs {
    #[command(subcommand)]
    pub command: CapacityCommand,
}

/// The data every capacity command reads.
#[derive(Args, Debug, Clone)]
pub struct CapacityData {
    /// Data set (pixels in [0, 1], flattened).
    #[arg(long, default_value = "mnist", value_parser = choice(&[DatasetName::Mnist, DatasetName::FashionMnist]))]
    pub dataset: DatasetName,
    /// Training images (the first n of the training set).
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 2000)]
    pub n: usize,
    /// Test images (the first ones of the test set).
    #[arg(value_parser = count::<1, 10_000_000>, long, default_value_t = 2000)]
    pub test: usize,
    /// Data directory (else MATHNN_DATA, the cache; generated data as a labelled fallback).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seed of the random features / projection / random labels.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Training of the width sweep and the margin runs (Adam, stop at 100 % training accuracy).
#[derive(Args, Debug, Clone)]
pub struct CapacityTraining {
    /// Epoch budget per run.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_epochs: u32,
    /// Mini-batch size.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: u32,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Train every run for the whole budget instead of stopping at 100 % training accuracy.
    #[arg(long)]
    pub fixed_budget: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub force: ForceArg,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl CapacityTraining {
    /// The fit configuration: Adam at `lr`, test set at the last epoch only, batch order from `seed`.
    pub fn fit_config(&self, seed: u64) -> Result<FitConfig> {
        let config = FitConfig {
            max_epochs: self.max_epochs as usize,
            batch_size: self.batch_size as usize,
            optimizer: OptimizerConfig::adam(self.lr),
            test_every: usize::MAX,
            stop_at_target: !self.fixed_budget,
            seed,
            ..FitConfig::default()
        };
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("--lr {}: {e}", self.lr))?;
        Ok(config)
    }
}

/// `mathnn capacity` subcommands.
#[derive(Subcommand, Debug)]
pub enum CapacityCommand {
    /// Random-features regression: test error against the number of features N (ridge and minimum norm).
    RandomFeatures {
        #[command(flatten)]
        data: CapacityData,
        /// Feature counts, increasing (default: n/10 … 20n, 13 values around the threshold N = n).
        #[arg(long, value_delimiter = ',', value_parser = count::<1, 10_000_000>)]
        features: Vec<usize>,
        /// Ridge values λ ≥ 0 (0 = minimum-norm solution).
        #[arg(long, value_delimiter = ',', default_value = "0,1e-3,1e-1")]
        lambdas: Vec<f64>,
        /// Feature map.
        #[arg(long, value_enum, default_value_t = MapChoice::Fourier)]
        map: MapChoice,
        /// σ of the Fourier features (pixels in [0, 1]): a number > 0, or `auto` = the median distance
        /// between training images.
        #[arg(long, default_value = "5", allow_negative_numbers = true, value_parser = bandwidth_value)]
        bandwidth: Bandwidth,
    },
    /// Width sweep: one-hidden-layer MLPs trained to zero training error (or the epoch budget), with and
    /// without label noise; test error and margin complexity against the parameter count.
    WidthSweep {
        #[command(flatten)]
        data: CapacityData,
        /// Hidden widths (default 1, 2, 4, …, 4096).
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        widths: Vec<u32>,
        /// Fractions of training labels made wrong (each label, with this probability, becomes a uniformly
        /// random wrong class).
        #[arg(long, value_delimiter = ',', default_value = "0,0.2")]
        noise: Vec<f64>,
        #[command(flatten)]
        training: CapacityTraining,
        /// Checkpoint folder: one run per (noise, width); a second call resumes.
        #[arg(long, default_value = "runs/width-sweep")]
        out: PathBuf,
    },
    /// Margin complexity (Bartlett et al. 2017) of the random-label MLPs across label-corruption levels,
    /// beside their measured generalisation gap.
    Margin {
        #[command(flatten)]
        data: CapacityData,
        /// Model (dense layers only: the margin complexity is defined for them).
        #[arg(long, default_value = "mlp-1x512", value_parser = choice(&MARGIN_MODELS))]
        model: generalization::ZhangModel,
        /// Label-corruption levels p (each label redrawn uniformly with probability p).
        #[arg(long, value_delimiter = ',', default_value = "0,0.2,0.4,0.6,0.8,1")]
        levels: Vec<f64>,
        /// Quantile of the training margins taken as γ, in [0, 1).
        #[arg(long, default_value_t = 0.1)]
        quantile: f64,
        #[command(flatten)]
        training: CapacityTraining,
        /// Checkpoint folder: one run per level; a second call resumes.
        #[arg(long, default_value = "runs/margin")]
        out: PathBuf,
    },
    /// Zhang et al.'s Theorem 1: a 2n + d weight ReLU network fitted to random labels of n images.
    Theorem1 {
        #[command(flatten)]
        data: CapacityData,
    },
    /// Minimum-norm Gaussian-kernel interpolation with true and random labels: errors and RKHS norms.
    Kernel {
        #[command(flatten)]
        data: CapacityData,
        /// σ of the kernel (pixels in [0, 1]): a number > 0, or `auto` = the median distance between
        /// training images (≈ 10 on MNIST, smoother than interpolation wants; σ = 5 gives 2.66 % test
        /// error at n = 10,000).
        #[arg(long, default_value = "5", allow_negative_numbers = true, value_parser = bandwidth_value)]
        bandwidth: Bandwidth,
    },
}

/// Training and test pixels and labels.
struct Loaded {
    x_train: Array2<f64>,
    y_train: Vec<usize>,
    x_test: Array2<f64>,
    y_test: Vec<usize>,
    classes: usize,
    provenance: &'static str,
}

/// The first `--n` training and `--test` test images.
fn load_sets(data: &CapacityData) -> Result<(Dataset, Dataset)> {
    let name = data.dataset;
    if data.n == 0 || data.test == 0 {
        bail!("--n and --test must be at least 1");
    }
    let all = load_data_or_generated(name, data.data_dir.as_deref())?;
    let (train, test) = (all.train.take(data.n)?, all.test.take(data.test)?);
    if train.len() < data.n {
        bail!(
            "--n {}: the training set has only {} images",
            data.n,
            train.len()
        );
    }
    Ok((train, test))
}

fn load(data: &CapacityData) -> Result<Loaded> {
    let (train, test) = load_sets(data)?;
    Ok(Loaded {
        x_train: pixel_features(&train)?,
        y_train: labels(&train)?,
        x_test: pixel_features(&test)?,
        y_test: labels(&test)?,
        classes: train.num_classes(),
        provenance: train.provenance.label(),
    })
}

/// `--map` of `capacity random-features`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapChoice {
    /// Random Fourier features cos(w·x + b), w ~ N(0, I/σ²), b ~ U(0, 2π).
    Fourier,
    /// Random ReLU features max(0, w·x), w ~ N(0, I/d).
    Relu,
}

/// `--model` of `capacity margin`: the dense models of the random-label experiment.
const MARGIN_MODELS: [generalization::ZhangModel; 2] = [
    generalization::ZhangModel::Mlp1x512,
    generalization::ZhangModel::Mlp3x512,
];

/// `--bandwidth`: a fixed σ or the median heuristic on the training images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bandwidth {
    Auto,
    Sigma(f64),
}

/// `--bandwidth` as a clap value parser.
fn bandwidth_value(s: &str) -> std::result::Result<Bandwidth, String> {
    if s == "auto" {
        return Ok(Bandwidth::Auto);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Bandwidth::Sigma(v)),
        _ => Err("expected `auto` or a number > 0".into()),
    }
}

impl Bandwidth {
    /// σ for the training pixels `x`.
    fn sigma(self, x: &Array2<f64>) -> f64 {
        match self {
            Bandwidth::Auto => median_distance(x.view(), 1000),
            Bandwidth::Sigma(v) => v,
        }
    }
}

#[derive(Serialize)]
struct Output<T: Serialize> {
    dataset: String,
    data: &'static str,
    n: usize,
    test: usize,
    seed: u64,
    seconds: f64,
    result: T,
}

fn emit<T: Serialize>(
    data: &CapacityData,
    provenance: &'static str,
    seconds: f64,
    result: T,
) -> Result<()> {
    let out = Output {
        dataset: data.dataset.to_string(),
        data: provenance,
        n: data.n,
        test: data.test,
        seed: data.seed,
        seconds,
        result,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Random-features regression over the feature counts (`mathnn capacity random-features`).
fn run_random_features(
    data: CapacityData,
    features: Vec<usize>,
    lambdas: Vec<f64>,
    map: MapChoice,
    bw: Bandwidth,
) -> Result<()> {
    let d = load(&data)?;
    let map = match map {
        MapChoice::Fourier => FeatureMap::Fourier {
            bandwidth: bw.sigma(&d.x_train),
        },
        MapChoice::Relu => FeatureMap::Relu,
    };
    let counts = if features.is_empty() {
        default_feature_counts(data.n)
    } else {
        features
    };
    let params = RandomFeaturesParams {
        map,
        seed: data.seed,
        block: 512,
    };
    let started = Instant::now();
    let points = random_features_sweep(
        d.x_train.view(),
        &d.y_train,
        d.x_test.view(),
        &d.y_test,
        d.classes,
        &counts,
        &lambdas,
        &params,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    if data.json {
        return emit(&data, d.provenance, seconds, (&params, &points));
    }
    println!(
        "random features ({map:?}) on {} ({}), n = {}, {} test images, {seconds:.1} s",
        data.dataset, d.provenance, data.n, data.test
    );
    println!(
        "{:>8} {:>9} {:>11} {:>11} {:>9} {:>9}",
        "N", "λ", "train loss", "test loss", "train err", "test err"
    );
    for p in &points {
        println!(
            "{:>8} {:>9.0e} {:>11.4} {:>11.4} {:>8.2}% {:>8.2}%",
            p.features,
            p.lambda,
            p.train_loss,
            p.test_loss,
            100.0 * p.train_error,
            100.0 * p.test_error
        );
    }
    Ok(())
}

/// Width sweep of one-hidden-layer MLPs (`mathnn capacity width-sweep`).
fn run_width_sweep(
    data: CapacityData,
    widths: Vec<u32>,
    noise: Vec<f64>,
    training: CapacityTraining,
    out: PathBuf,
) -> Result<()> {
    let (train, test) = load_sets(&data)?;
    let classes = train.num_classes();
    let most = (classes - 1) as f64 / classes as f64;
    if let Some(eta) = noise.iter().find(|e| !(**e >= 0.0 && **e <= most)) {
        bail!("--noise {eta}: expected fractions in [0, {most}] (all labels random at {most})");
    }
    let params = WidthSweepParams {
        widths: if widths.is_empty() {
            WidthSweepParams::default().widths
        } else {
            widths.into_iter().map(|w| w as usize).collect()
        },
        label_noise: noise,
        fit: training.fit_config(data.seed)?,
        seed: data.seed,
        margins: true,
    };
    if let Some(&widest) = params.widths.iter().max() {
        // Weights, gradients and two Adam moments of the widest network, f32.
        let (c, h, w) = train.image_shape();
        let parameters =
            generalization::models::mlp_parameter_count(c * h * w, &[widest], classes) as u64;
        crate::common::ensure_memory(&format!("--widths {widest}"), parameters.checked_mul(16))?;
    }
    let device = training.device.open()?;
    let _lock = crate::common::lock_run_dir(&out, "capacity width-sweep", training.force.enabled)?;
    let quiet = training.quiet || data.json;
    let bar = progress_bar(quiet, "width sweep");
    let options = WidthSweepOptions {
        checkpoint_root: Some(out.clone()),
        checkpoint_every: 25,
        progress: Some(shared_progress(&bar)),
    };
    let started = Instant::now();
    let points = width_sweep(
        &train,
        &test,
        &params,
        &options,
        &mut |p| {
            if !quiet {
                bar.suspend(|| eprintln!("{}", width_line(p)));
            }
        },
        &device,
    )?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    write_json(&out.join("results.json"), &points)?;
    let provenance = train.provenance.label();
    if data.json {
        return emit(&data, provenance, seconds, &points);
    }
    println!(
        "width sweep on {} ({provenance}), n = {}, {} test images, ≤ {} epochs each, {seconds:.1} s",
        data.dataset, data.n, data.test, params.fit.max_epochs
    );
    for p in &points {
        println!("{}", width_line(p));
    }
    println!("wrote {}", out.join("results.json").display());
    Ok(())
}

/// Margin complexity across label-corruption levels (`mathnn capacity margin`).
fn run_margin(
    data: CapacityData,
    model: generalization::ZhangModel,
    levels: Vec<f64>,
    quantile: f64,
    training: CapacityTraining,
    out: PathBuf,
) -> Result<()> {
    if let Some(p) = levels.iter().find(|p| !(**p >= 0.0 && **p <= 1.0)) {
        bail!("--levels {p}: expected probabilities in [0, 1]");
    }
    if !(0.0..1.0).contains(&quantile) {
        bail!("--quantile {quantile}: expected a value in [0, 1)");
    }
    let (train, test) = load_sets(&data)?;
    let params = MarginSweepParams {
        model,
        levels,
        fit: training.fit_config(data.seed)?,
        seed: data.seed,
        margin: MarginParams {
            quantile,
            ..MarginParams::default()
        },
    };
    let device = training.device.open()?;
    let _lock = crate::common::lock_run_dir(&out, "capacity margin", training.force.enabled)?;
    let quiet = training.quiet || data.json;
    let started = Instant::now();
    let runs = margin_sweep(
        &train,
        &test,
        &params,
        &mut |p| FitOptions {
            checkpoint_dir: Some(out.join(format!("{}-level{p}", model.as_str()))),
            checkpoint_every: 25,
            progress: Some(shared_progress(&progress_bar(quiet, &format!("p = {p}")))),
        },
        &device,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    write_json(&out.join("results.json"), &runs)?;
    let provenance = train.provenance.label();
    if data.json {
        return emit(&data, provenance, seconds, &runs);
    }
    println!(
        "margin complexity of {} on {} ({provenance}), n = {}, γ = {}th percentile margin, {seconds:.1} s",
        model.title(),
        data.dataset,
        data.n,
        100.0 * quantile
    );
    println!("{}", margin_header());
    for r in &runs {
        println!("{}", margin_line(r));
    }
    println!("wrote {}", out.join("results.json").display());
    Ok(())
}

/// Zhang et al.'s Theorem 1 network on random labels (`mathnn capacity theorem1`).
fn run_theorem1(data: CapacityData) -> Result<()> {
    let d = load(&data)?;
    let started = Instant::now();
    let result = theorem1_on_random_labels(&d.x_train, &d.x_test, &d.y_test, d.classes, data.seed)?;
    let seconds = started.elapsed().as_secs_f64();
    if data.json {
        return emit(&data, d.provenance, seconds, result);
    }
    println!(
        "Theorem 1 network on {} random labels of {} ({}): {} weights (2n + d), max residual {:.2e}, train accuracy {:.2}%, test accuracy {:.2}% (chance {:.0}%), cond(A) {:.3e}, {seconds:.1} s",
        data.n,
        data.dataset,
        d.provenance,
        result.weights,
        result.max_train_residual,
        100.0 * result.train_accuracy,
        100.0 * result.test_accuracy,
        100.0 / d.classes as f64,
        result.condition_number
    );
    Ok(())
}

/// Minimum-norm Gaussian-kernel interpolation, true and random labels (`mathnn capacity kernel`).
fn run_kernel(data: CapacityData, bw: Bandwidth) -> Result<()> {
    let d = load(&data)?;
    let sigma = bw.sigma(&d.x_train);
    let mut rng = StdRng::seed_from_u64(data.seed);
    let random: Vec<usize> = (0..data.n)
        .map(|_| rng.random_range(0..d.classes))
        .collect();
    let started = Instant::now();
    let fits = kernel_interpolation(
        d.x_train.view(),
        &[&d.y_train, &random],
        d.x_test.view(),
        &d.y_test,
        d.classes,
        &KernelParams { bandwidth: sigma },
    )?;
    let seconds = started.elapsed().as_secs_f64();
    if data.json {
        return emit(&data, d.provenance, seconds, (sigma, &fits));
    }
    println!(
        "Gaussian-kernel interpolation, σ = {sigma:.3}, n = {} ({}), {seconds:.1} s",
        data.n, d.provenance
    );
    for (name, fit) in ["true labels", "random labels"].iter().zip(&fits) {
        println!(
            "{name:>14}: train error {:.2}% (max residual {:.1e}), test error {:.2}%, RKHS norm² {:.4e}",
            100.0 * fit.train_error,
            fit.max_train_residual,
            100.0 * fit.test_error,
            fit.rkhs_norm
        );
    }
    Ok(())
}

/// `mathnn capacity`.
pub fn run(args: CapacityArgs) -> Result<()> {
    match args.command {
        CapacityCommand::RandomFeatures {
            data,
            features,
            lambdas,
            map,
            bandwidth: bw,
        } => run_random_features(data, features, lambdas, map, bw),
        CapacityCommand::WidthSweep {
            data,
            widths,
            noise,
            training,
            out,
        } => run_width_sweep(data, widths, noise, training, out),
        CapacityCommand::Margin {
            data,
            model,
            levels,
            quantile,
            training,
            out,
        } => run_margin(data, model, levels, quantile, training, out),
        CapacityCommand::Theorem1 { data } => run_theorem1(data),
        CapacityCommand::Kernel {
            data,
            bandwidth: bw,
        } => run_kernel(data, bw),
    }
}
