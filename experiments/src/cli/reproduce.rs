//! `mathnn reproduce`: its flags, converted into [`ReproduceOptions`].

use std::path::PathBuf;

use clap::Args;

use crate::common::DeviceArg;
use crate::common::ForceArg;
use crate::reproduce::{Profile, ReproduceOptions};

/// Arguments of `mathnn reproduce`.
#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// How much compute the experiments may spend.
    #[arg(long, value_enum, default_value_t = Profile::Quick)]
    pub profile: Profile,
    /// Directory holding the data sets (else MATHNN_DATA, else the cache; else generated data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    #[command(flatten)]
    pub force: ForceArg,
    /// Do not download missing data sets: without this, MNIST and Fashion-MNIST are fetched into the cache
    /// (checksummed) when no data directory holds them, before any experiment falls back to generated data.
    #[arg(long)]
    pub offline: bool,
    /// Run only these experiments (repeatable); default all.
    #[arg(long)]
    pub only: Vec<String>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

impl From<ReproduceArgs> for ReproduceOptions {
    fn from(a: ReproduceArgs) -> Self {
        ReproduceOptions {
            profile: a.profile,
            data_dir: a.data_dir,
            out: a.out,
            force: a.force.enabled,
            offline: a.offline,
            only: a.only,
            quiet: a.quiet,
            device: a.device,
        }
    }
}
