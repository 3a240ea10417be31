//! `mathnn tt-svd` and `mathnn cp-als`: decompose a tensor stored as `.npy` (f32 or f64, C or Fortran
//! order, any number of dimensions).

use std::path::PathBuf;
use std::time::Instant;

use crate::common::count;
use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use tensor_decomp::TensorTrain;
use tensor_decomp::cp::{CpAlsOptions, CpInit, cp_als_with};
use tensor_decomp::dense::relative_error;
use tensor_decomp::io::{NpyDtype, read_npy_tensor, read_npz_factors};

/// Arguments of `mathnn tt-svd`.
#[derive(Args, Debug)]
pub struct TtSvdArgs {
    /// Tensor file (.npy: f32 or f64, C or Fortran order, any number of dimensions).
    pub tensor: PathBuf,
    /// Relative accuracy ε: the result satisfies ‖A − TT‖_F ≤ ε‖A‖_F unless --max-rank cuts a bond.
    #[arg(long, default_value_t = 1e-8)]
    pub eps: f64,
    /// Cap on every TT rank (default: none).
    #[arg(value_parser = count::<1, 100_000>, long)]
    pub max_rank: Option<usize>,
    /// Print {"ranks", "rel_error", "seconds"} as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct TtSvdJson {
    ranks: Vec<usize>,
    rel_error: f64,
    seconds: f64,
}

fn dtype_name(d: NpyDtype) -> &'static str {
    match d {
        NpyDtype::F64 => "float64",
        NpyDtype::F32 => "float32",
        _ => "another float type",
    }
}

/// `mathnn tt-svd`.
pub fn run_tt_svd(args: TtSvdArgs) -> Result<()> {
    let (tensor, dtype) = read_npy_tensor(&args.tensor)?;
    let started = Instant::now();
    let (tt, report) = TensorTrain::tt_svd_report(&tensor, args.eps, args.max_rank)
        .with_context(|| format!("TT-SVD of {}", args.tensor.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    // The error against the input itself (dense), not only the algorithm's own account of it.
    let full = tt.full()?;
    let data = tensor.as_standard_layout();
    let rel_error = relative_error(
        data.as_slice().expect("standard layout"),
        full.as_slice().expect("standard layout"),
    );
    if args.json {
        let out = TtSvdJson {
            ranks: tt.ranks(),
            rel_error,
            seconds,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let n = tensor.len();
    println!(
        "{}: {} tensor of shape {:?} ({n} entries)",
        args.tensor.display(),
        dtype_name(dtype),
        tensor.shape()
    );
    println!("TT ranks      {:?}", tt.ranks());
    println!(
        "parameters    {} ({:.1}× compression)",
        tt.num_params(),
        n as f64 / tt.num_params() as f64
    );
    println!(
        "rel. error    {rel_error:.3e} (requested ε = {:e})",
        args.eps
    );
    if !report.capped_bonds.is_empty() {
        println!(
            "capped bonds  {:?}: --max-rank {} cut them below what ε needs; the error above is what was achieved",
            report.capped_bonds,
            args.max_rank.unwrap_or(0)
        );
    }
    if dtype == NpyDtype::F32 && args.eps < 1e-7 {
        println!(
            "note          the input is float32 (relative precision ≈ 6e-8); ε below that fits its rounding noise"
        );
    }
    println!("time          {seconds:.3} s");
    Ok(())
}

/// Arguments of `mathnn cp-als`.
#[derive(Args, Debug)]
pub struct CpAlsArgs {
    /// Tensor file (.npy: f32 or f64, C or Fortran order, at least 2 dimensions).
    pub tensor: PathBuf,
    /// CP rank R.
    #[arg(value_parser = count::<1, 100_000>, long)]
    pub rank: usize,
    /// Maximum number of ALS sweeps.
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 100)]
    pub iters: usize,
    /// Seed of the uniform [0, 1) random start (ignored with --init).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Start from these factors: an .npz holding A0, A1, … (n_k × R each).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Stop when the relative error changes by less than this between sweeps.
    #[arg(long, default_value_t = 1e-10)]
    pub tol: f64,
    /// Bro's line search (extrapolation every second sweep after the fifth), as TensorLy.
    #[arg(long)]
    pub line_search: bool,
    /// Print {"rel_error", "iterations", "seconds"} as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct CpAlsJson {
    rel_error: f64,
    iterations: usize,
    seconds: f64,
}

/// `mathnn cp-als`.
pub fn run_cp_als(args: CpAlsArgs) -> Result<()> {
    let (tensor, dtype) = read_npy_tensor(&args.tensor)?;
    crate::common::ensure_memory(
        &format!("--rank {}", args.rank),
        tensor_decomp::cp::cp_als_memory_bytes(tensor.shape(), args.rank),
    )?;
    let init = match &args.init {
        Some(path) => CpInit::Given(read_npz_factors(path)?),
        None => CpInit::Random { seed: args.seed },
    };
    let options = CpAlsOptions {
        iters: args.iters,
        init,
        tol: args.tol,
        line_search: args.line_search,
    };
    let started = Instant::now();
    let fit = cp_als_with(&tensor, args.rank, &options)
        .with_context(|| format!("CP-ALS of {}", args.tensor.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let out = CpAlsJson {
            rel_error: fit.rel_error,
            iterations: fit.iterations,
            seconds,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}: {} tensor of shape {:?}, CP rank {}",
        args.tensor.display(),
        dtype_name(dtype),
        tensor.shape(),
        args.rank
    );
    println!(
        "sweeps        {} ({})",
        fit.iterations,
        if fit.converged {
            format!("converged: error changed by < {:e}", args.tol)
        } else {
            "sweep limit reached".to_string()
        }
    );
    println!("rel. error    {:.3e} (dense residual)", fit.rel_error);
    let tail: Vec<String> = fit
        .errors
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(|e| format!("{e:.3e}"))
        .collect();
    println!("last errors   {}", tail.join(", "));
    println!(
        "time          {seconds:.3} s ({:.2} ms/sweep)",
        1e3 * seconds / fit.iterations.max(1) as f64
    );
    Ok(())
}
