//! `mathnn`: one command-line tool for every experiment of the talk "Mathematics of neural networks"
//! (Oseledets, Skoltech). Libraries compute; this binary prints, plots and writes files.

mod capacity_and_interpolation;
mod classical_vs_deep;
mod classifier_baseline;
mod cli_adversarial;
mod cli_capacity;
mod cli_data;
mod cli_dip;
mod cli_gan;
mod cli_hog;
mod cli_metrics;
mod cli_tensor;
mod cli_train;
mod common;
mod deep_image_prior;
mod expressivity;
mod gan_comparison;
mod gan_metrics;
mod plot;
mod random_labels;
mod reproduce;
mod universal_perturbations;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Reproducible experiments from "Mathematics of neural networks".
#[derive(Parser)]
#[command(name = "mathnn", version, about, long_about = None)]
struct Cli {
    /// Log level for diagnostics on stderr (error, warn, info, debug).
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a classifier and write DIR/model.safetensors and DIR/metrics.json (resumes an interrupted run).
    Train(cli_train::TrainArgs),
    /// Evaluate a trained classifier: accuracy, loss and confusion matrix as JSON.
    Eval(cli_train::EvalArgs),
    /// Fetch, verify and locate data sets.
    Data(cli_data::DataArgs),
    /// Run every experiment and write results/<experiment>/ and results/REPORT.md.
    Reproduce(reproduce::ReproduceArgs),
    /// Adversarial attacks: universal perturbations (SV-UAP, UAP, universal PGD), transfer, DeepFool,
    /// defences, the black-box substitute attack.
    #[command(alias = "uap")] // the spelling before 2026-12: hidden, kept for one release
    Attack(cli_adversarial::UapArgs),
    /// FID of two feature matrices (.npy, N × D): exact symmetric route.
    Fid(cli_metrics::FidArgs),
    /// Inception Score of class probabilities (.npy, N × C), 10 contiguous splits.
    InceptionScore(cli_metrics::InceptionScoreArgs),
    /// KID (unbiased MMD², cubic polynomial kernel) of two feature matrices over seeded subsets.
    Kid(cli_metrics::KidArgs),
    /// Mean relative living times of one or two point clouds, and their Geometry Score.
    Gs(cli_metrics::GsArgs),
    /// Relative living times and H1 bars of one witness complex with given landmarks.
    Rlt(cli_metrics::RltArgs),
    /// Zhang et al.'s randomisation tests: fit true, corrupted and random labels, random pixels, Gaussian inputs.
    RandomLabels(random_labels::RandomLabelsArgs),
    /// TT-SVD of a tensor in an .npy file: ranks, relative error, time.
    TtSvd(cli_tensor::TtSvdArgs),
    /// CP-ALS of a tensor in an .npy file: relative error, sweeps, time.
    CpAls(cli_tensor::CpAlsArgs),
    /// TT vs CP expressivity: the matricization-rank table and TT-net vs CP-net accuracy on MNIST.
    Expressivity(expressivity::ExpressivityArgs),
    /// GAN, WGAN and WGAN-GP on MNIST: train (checkpoints, resume), sample, evaluate.
    Gan(cli_gan::GanArgs),
    /// Deep image prior: restore one image (denoise, inpaint) by fitting an untrained network to it.
    Dip(cli_dip::DipArgs),
    /// Capacity and interpolation: random-features double descent, Theorem 1 network, kernel interpolation,
    /// MLP width sweep, margin complexity.
    Capacity(cli_capacity::CapacityArgs),
    /// HOG descriptor of one image, exactly as skimage.feature.hog 0.26 (f64 .npy), and its visualisation.
    Hog(cli_hog::HogArgs),
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`mathnn … | head`) makes `println!` panic.
/// Restoring the default action ends the process quietly there, as other command-line tools do.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any thread exists; `signal` with SIG_DFL only resets
    // the disposition of SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Prints clap's error with its message on one line (`error: invalid value 'x' for '--model <MODEL>'
/// [possible values: …]`: clap puts the allowed values and tips on lines of their own) and exits with
/// clap's code. Help, version and "which subcommand?" screens are printed as clap prints them.
fn exit_on_bad_arguments(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if !e.use_stderr() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        e.exit();
    }
    let text = e.render().to_string();
    let (message, rest) = match text
        .find("\n\nUsage:")
        .or_else(|| text.find("\n\nFor more"))
    {
        Some(i) => text.split_at(i),
        None => (text.as_str(), ""),
    };
    let one_line: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    eprintln!("{}{rest}", one_line.join(" "));
    std::process::exit(e.exit_code());
}

fn main() -> ExitCode {
    // candle reads this once per thread at its first backward pass; without it second-order gradients
    // (the WGAN-GP penalty) are silently partial. SAFETY: set before any other thread exists.
    unsafe { std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1") };
    // Training steps free and reallocate the same buffers every step; keep them in the heap instead of
    // page-faulting them in again (a quarter of a LeNet step otherwise; docs/performance.md).
    nn_core::alloc::retain_freed_memory();
    // candle's elementwise workers would otherwise spin between jobs, holding cores that the rayon pool
    // needs (2-thread steps 10–30 % slower). SAFETY: no other thread exists yet.
    unsafe { nn_core::threads::park_idle_candle_workers() };
    restore_default_sigpipe();
    let cli = Cli::try_parse().unwrap_or_else(|e| exit_on_bad_arguments(e));
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Train(args) => cli_train::run_train(args),
        Command::Eval(args) => cli_train::run_eval(args),
        Command::Data(args) => cli_data::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Attack(args) => cli_adversarial::run(args),
        Command::Fid(args) => cli_metrics::run_fid(args),
        Command::InceptionScore(args) => cli_metrics::run_inception_score(args),
        Command::Kid(args) => cli_metrics::run_kid(args),
        Command::Gs(args) => cli_metrics::run_gs(args),
        Command::Rlt(args) => cli_metrics::run_rlt(args),
        Command::RandomLabels(args) => random_labels::run_cli(args),
        Command::TtSvd(args) => cli_tensor::run_tt_svd(args),
        Command::CpAls(args) => cli_tensor::run_cp_als(args),
        Command::Expressivity(args) => expressivity::run_cli(args),
        Command::Gan(args) => cli_gan::run(args),
        Command::Dip(args) => cli_dip::run(args),
        Command::Hog(args) => cli_hog::run(args),
        Command::Capacity(args) => cli_capacity::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", common::one_line_error(&e));
            ExitCode::FAILURE
        }
    }
}
