//! `mathnn expressivity`: the TT-vs-CP experiment from the command line, with its table printed.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::common::{DeviceArg, ensure_dir};
use crate::reproduce::expressivity::run_parts;
use crate::reproduce::{Context, Profile};

/// Arguments of `mathnn expressivity`.
#[derive(Args, Debug)]
pub struct ExpressivityArgs {
    /// Print the matricization table and the network results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Network budget (as `mathnn reproduce`).
    #[arg(long, value_enum, default_value_t = Profile::Quick)]
    pub profile: Profile,
    /// Only the matricization table (no training).
    #[arg(long)]
    pub no_networks: bool,
    /// Directory holding the data sets (else MATHNN_DATA, else the cache; else generated data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where the figures and result.json go.
    #[arg(long, default_value = "results/expressivity")]
    pub out: PathBuf,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// `mathnn expressivity`.
pub fn run_cli(args: ExpressivityArgs) -> Result<()> {
    let profile = args.profile;
    let ctx = Context {
        profile,
        data_dir: args.data_dir.clone(),
        out: ensure_dir(&args.out)?,
        quiet: args.quiet || args.json,
        device: args.device,
    };
    let started = Instant::now();
    let (mut result, output) = run_parts(&ctx, !args.no_networks)?;
    result.seconds = started.elapsed().as_secs_f64();
    crate::common::write_json(&ctx.out.join("result.json"), &result)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&output)?);
        return Ok(());
    }
    println!(
        "  d  n  r  cores        odd/even  q^(d/2)  n^(d/2-1)·min(n,r)  balanced  construction"
    );
    for r in &output.matricization {
        println!(
            "{:>3} {:>2} {:>2}  {:<11} {:>9} {:>8} {:>19} {:>9} {:>13}",
            r.d,
            r.n,
            r.r,
            if r.shared_cores {
                "shared"
            } else {
                "independent"
            },
            r.odd_even_rank,
            r.theorem_bound,
            r.predicted_odd_even,
            r.balanced_rank,
            r.construction_rank
        );
    }
    if !output.networks.is_empty() {
        println!("\nnetworks on {} ({} profile):", output.data, args.profile);
        println!("  family     rank  parameters  test accuracy");
        for n in &output.networks {
            println!(
                "  {:<9} {:>5} {:>11}  {:.4}",
                n.family, n.rank, n.parameters, n.test_accuracy
            );
        }
    }
    for row in &result.rows {
        if row.quantity.starts_with("smallest") {
            println!("{}: {}", row.quantity, row.ours);
        }
    }
    println!("wrote {}", ctx.out.join("result.json").display());
    Ok(())
}
