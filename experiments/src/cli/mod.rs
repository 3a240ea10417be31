//! The command line: clap types only. Each subcommand's arguments live in its module and convert into the
//! library crates' configuration types; `reproduce` and the library crates never import this module.

pub mod adversarial;
pub mod capacity;
pub mod data;
pub mod dip;
pub mod expressivity;
pub mod gan;
pub mod hog;
pub mod interop;
pub mod metrics;
pub mod random_labels;
pub mod reproduce;
pub mod tensor;
pub mod train;

use clap::{Parser, Subcommand};

/// Reproducible experiments from "Mathematics of neural networks".
#[derive(Parser)]
#[command(name = "mathnn", version, about, long_about = None)]
pub struct Cli {
    /// Log level for diagnostics on stderr (error, warn, info, debug).
    #[arg(long, global = true, default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a classifier and write DIR/model.safetensors and DIR/metrics.json (resumes an interrupted run).
    Train(train::TrainArgs),
    /// Evaluate a trained classifier: accuracy, loss and confusion matrix as JSON.
    Eval(train::EvalArgs),
    /// Write a trained classifier as a PyTorch state dict (`--torch`; benches/peers/mathnn_torch.py
    /// builds the module).
    Export(interop::ExportArgs),
    /// Read a PyTorch state dict of a mathnn classifier (`--torch`) into a directory `mathnn eval` reads.
    Import(interop::ImportArgs),
    /// Fetch, verify and locate data sets.
    Data(data::DataArgs),
    /// Run every experiment and write results/<experiment>/ and results/REPORT.md.
    Reproduce(reproduce::ReproduceArgs),
    /// Adversarial attacks: universal perturbations (SV-UAP, UAP, universal PGD), transfer, DeepFool,
    /// defences, the black-box substitute attack.
    #[command(alias = "uap")] // the spelling before 2026-12: hidden, kept for one release
    Attack(adversarial::UapArgs),
    /// FID of two sets, each a feature matrix (.npy, N × D) or statistics (.npz, pytorch-fid's format):
    /// exact symmetric route.
    Fid(metrics::FidArgs),
    /// FID statistics of a feature matrix (.npy → .npz with mu and sigma, pytorch-fid's format).
    FidStats(metrics::FidStatsArgs),
    /// Inception Score of class probabilities (.npy, N × C), 10 contiguous splits.
    InceptionScore(metrics::InceptionScoreArgs),
    /// KID (unbiased MMD², cubic polynomial kernel) of two feature matrices over seeded subsets.
    Kid(metrics::KidArgs),
    /// Mean relative living times of one or two point clouds, and their Geometry Score.
    Gs(metrics::GsArgs),
    /// Relative living times and H1 bars of one witness complex with given landmarks.
    Rlt(metrics::RltArgs),
    /// Zhang et al.'s randomisation tests: fit true, corrupted and random labels, random pixels, Gaussian inputs.
    RandomLabels(random_labels::RandomLabelsArgs),
    /// TT-SVD of a tensor in an .npy file: ranks, relative error, time.
    TtSvd(tensor::TtSvdArgs),
    /// CP-ALS of a tensor in an .npy file: relative error, sweeps, time.
    CpAls(tensor::CpAlsArgs),
    /// TT vs CP expressivity: the matricization-rank table and TT-net vs CP-net accuracy on MNIST.
    Expressivity(expressivity::ExpressivityArgs),
    /// GAN, WGAN and WGAN-GP on MNIST: train (checkpoints, resume), sample, evaluate.
    Gan(gan::GanArgs),
    /// Deep image prior: restore one image (denoise, inpaint) by fitting an untrained network to it.
    Dip(dip::DipArgs),
    /// Capacity and interpolation: random-features double descent, Theorem 1 network, kernel interpolation,
    /// MLP width sweep, margin complexity.
    Capacity(capacity::CapacityArgs),
    /// HOG descriptor of one image, exactly as skimage.feature.hog 0.26 (f64 .npy), and its visualisation.
    Hog(hog::HogArgs),
}

/// Runs one subcommand.
pub fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Train(args) => train::run_train(args),
        Command::Eval(args) => train::run_eval(args),
        Command::Export(args) => interop::run_export(args),
        Command::Import(args) => interop::run_import(args),
        Command::Data(args) => data::run(args),
        Command::Reproduce(args) => crate::reproduce::run(args.into()),
        Command::Attack(args) => adversarial::run(args),
        Command::Fid(args) => metrics::run_fid(args),
        Command::FidStats(args) => metrics::run_fid_stats(args),
        Command::InceptionScore(args) => metrics::run_inception_score(args),
        Command::Kid(args) => metrics::run_kid(args),
        Command::Gs(args) => metrics::run_gs(args),
        Command::Rlt(args) => metrics::run_rlt(args),
        Command::RandomLabels(args) => random_labels::run_cli(args),
        Command::TtSvd(args) => tensor::run_tt_svd(args),
        Command::CpAls(args) => tensor::run_cp_als(args),
        Command::Expressivity(args) => expressivity::run_cli(args),
        Command::Gan(args) => gan::run(args),
        Command::Dip(args) => dip::run(args),
        Command::Hog(args) => hog::run(args),
        Command::Capacity(args) => capacity::run(args),
    }
}
