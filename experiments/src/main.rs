//! `mathnn`: one command-line tool for every experiment of the talk "Mathematics of neural networks"
//! (Oseledets, Skoltech). Libraries compute; this binary prints, plots and writes files.

use std::process::ExitCode;

use clap::Parser;
use experiments::{cli, common};

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
    let cli = cli::Cli::try_parse().unwrap_or_else(|e| exit_on_bad_arguments(e));
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = cli::dispatch(cli.command);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", common::one_line_error(&e));
            ExitCode::FAILURE
        }
    }
}
