//! `mathnn`: one command-line tool for every experiment of the talk "Mathematics of neural networks"
//! (Oseledets, Skoltech). Libraries compute; this binary prints, plots and writes files.

mod classifier_baseline;
mod cli_data;
mod cli_train;
mod common;
mod plot;
mod reproduce;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes joined by ": ".
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
