//! `mathnn data fetch|verify|info`.

use std::path::PathBuf;

use crate::common::choice;
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use nn_core::data::{DataLocator, DatasetName, mirrors, verify};

/// Arguments of `mathnn data`.
#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Download a data set from its public mirrors and verify its SHA-256 checksums.
    Fetch {
        /// Data set.
        #[arg(value_parser = choice(&DatasetName::ALL))]
        name: DatasetName,
        /// Root directory to download into (default: the cache, ~/.cache/mathnn or MATHNN_CACHE).
        #[arg(long)]
        dest: Option<PathBuf>,
        /// Mirror base URL to try instead of the defaults (repeatable).
        #[arg(long)]
        mirror: Vec<String>,
    },
    /// Check a data set's files against their SHA-256 checksums.
    Verify {
        /// Data set.
        #[arg(value_parser = choice(&DatasetName::ALL))]
        name: DatasetName,
        /// Directory holding the data sets.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Where each data set is found, if anywhere.
    Info {
        /// Directory holding the data sets.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// Runs `mathnn data …`.
pub fn run(args: DataArgs) -> Result<()> {
    match args.command {
        DataCommand::Fetch { name, dest, mirror } => {
            let root = match dest {
                Some(d) => d,
                None => match DataLocator::from_env(None).cache_dir {
                    Some(c) => c,
                    None => bail!("no cache directory (HOME unset); pass --dest"),
                },
            };
            let mirrors = if mirror.is_empty() {
                mirrors(name)
            } else {
                mirror
            };
            let dir = crate::common::fetch_with_bar(name, &root, &mirrors)?;
            println!("{name}: verified files in {}", dir.display());
        }
        DataCommand::Verify { name, data_dir } => {
            let dir = DataLocator::from_env(data_dir).locate(name)?;
            let statuses = verify(&dir, name)?;
            println!("{}", serde_json::to_string_pretty(&statuses)?);
            if let Some(bad) = statuses.iter().find(|s| !s.ok) {
                bail!("{name} in {}: {} {}", dir.display(), bad.name, bad.reason);
            }
        }
        DataCommand::Info { data_dir } => {
            let locator = DataLocator::from_env(data_dir);
            for name in DatasetName::ALL {
                if name == DatasetName::Generated {
                    println!(
                        "{:<14} always available (generated, not real data)",
                        name.as_str()
                    );
                    continue;
                }
                match locator.locate(name) {
                    Ok(dir) => println!("{:<14} {}", name.as_str(), dir.display()),
                    Err(e) => println!("{:<14} not found ({e})", name.as_str()),
                }
            }
        }
    }
    Ok(())
}
