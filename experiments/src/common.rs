//! Shared CLI plumbing: locating data (with the generated fallback), building models, progress bars,
//! writing JSON results.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use candle_nn::VarMap;
use indicatif::{ProgressBar, ProgressStyle};
use nn_core::data::{DataLocator, DatasetName, TrainTest, load_dataset};
use nn_core::device::{DeviceChoice, open_device};
use nn_core::models::{Classifier, InputSpec, ModelConfig, SeededVarMap, build_model};
use nn_core::progress::{Progress, SharedProgress};

/// `--device cpu|cuda|cuda:N`: the one device argument of every command that runs a network. Data stay
/// on the host until batched; the training and evaluation loops move each batch to the model's device.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct DeviceArg {
    /// Device: cpu, cuda or cuda:N (cuda needs a build with --features cuda: scripts/build-cuda.sh).
    #[arg(long = "device", default_value = "cpu", value_parser = parse_device_choice, global = true)]
    pub choice: DeviceChoice,
}

fn parse_device_choice(s: &str) -> std::result::Result<DeviceChoice, String> {
    s.parse::<DeviceChoice>()
        .map_err(|_| "expected cpu, cuda or cuda:N".to_string())
}

impl DeviceArg {
    /// The CPU.
    pub const CPU: DeviceArg = DeviceArg {
        choice: DeviceChoice::Cpu,
    };

    /// Opens the device; CUDA in a build without the `cuda` feature (or with no such GPU) is an error.
    pub fn open(&self) -> Result<Device> {
        Ok(open_device(self.choice)?)
    }
}

/// `--force` of every command that owns a run directory (see [`lock_run_dir`]).
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct ForceArg {
    /// Write into --out even if it holds another kind of run or files no mathnn run wrote (files of the
    /// same names are replaced; others are left alone).
    #[arg(long = "force")]
    pub enabled: bool,
}

/// `--optimizer`: Adam (β = (0.9, 0.999), ε = 1e-8) or SGD with momentum.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerChoice {
    Adam,
    Sgd,
}

/// A flag with a closed set of values taken from a library type: `--help` lists them
/// (`[possible values: mnist, fashion-mnist, …]`), clap refuses any other value naming the flag and the
/// allowed ones, and the field holds the typed value (`DatasetName`, `ModelKind`, …). The names are the
/// type's own `Display` spellings, so the CLI and the library cannot drift apart.
pub fn choice<T>(values: &[T]) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: std::str::FromStr + std::fmt::Display + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(values.iter().map(|v| PossibleValue::new(v.to_string())))
        .try_map(|s: String| s.parse::<T>().map_err(|e| e.to_string()))
}

/// A count from the command line: a whole number in `[LO, HI]`. Every count that sizes work or memory
/// goes through it, so 0 (meaningless), negative numbers and absurd sizes (`18446744073709551615`) end as a
/// clap error naming the argument instead of a silent empty run or an allocation failure.
pub fn count<const LO: usize, const HI: usize>(s: &str) -> std::result::Result<usize, String> {
    let v: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number (expected {LO} … {HI})"))?;
    if (LO..=HI).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is out of range: expected {LO} … {HI}"))
    }
}

/// `--schedule` as a clap value parser: nn-core's parser and its one validation (clap's error names the
/// flag and the value).
pub fn schedule_value(s: &str) -> std::result::Result<nn_core::optim::LrSchedule, String> {
    s.parse().map_err(|e| match e {
        nn_core::NnError::InvalidArgument { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// A norm flag (`--p`, `--q`) as a clap value parser: a number ≥ 1 or `inf`.
pub fn norm_value(s: &str) -> std::result::Result<adversarial::Norm, String> {
    s.parse()
        .map_err(|_| "expected a norm p ≥ 1 or `inf`".to_string())
}

/// Hidden widths of an MLP, `W1,W2,…` on the command line (`--mlp-widths`); empty: no hidden layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlpWidths(pub Vec<usize>);

/// `--mlp-widths` as a clap value parser: each width a count in 1 … 65,536 (784 × 65,536 f32 weights is
/// already 205 MB).
pub fn mlp_widths_value(s: &str) -> std::result::Result<MlpWidths, String> {
    if s.trim().is_empty() {
        return Ok(MlpWidths(Vec::new()));
    }
    s.split(',')
        .map(count::<1, 65_536>)
        .collect::<std::result::Result<_, _>>()
        .map(MlpWidths)
}

/// Memory the system can still give this process (`MemAvailable` of `/proc/meminfo`), when known.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuses, with one line naming `what` and both sizes, work whose memory (`bytes`; `None`: the size
/// overflowed 64 bits) exceeds what is available — instead of an abort in the allocator. Passes when the
/// available memory is unknown (not Linux).
pub fn ensure_memory(what: &str, bytes: Option<u64>) -> Result<()> {
    let gb = |b: u64| b as f64 / 1e9;
    match (bytes, available_memory()) {
        (None, _) => anyhow::bail!("{what} would need more than 18 EB of memory"),
        (Some(need), Some(free)) if need > free => anyhow::bail!(
            "{what} would need {:.1} GB of memory, {:.1} GB is available",
            gb(need),
            gb(free)
        ),
        _ => Ok(()),
    }
}

/// Loads `name` through `--data-dir`, `MATHNN_DATA` and the cache.
pub fn load_data(name: DatasetName, data_dir: Option<&Path>) -> Result<TrainTest> {
    let locator = DataLocator::from_env(data_dir.map(Path::to_path_buf));
    Ok(load_dataset(name, &locator)?)
}

/// Loads `name`, or — when it cannot be found — the generated data set, with a warning on stderr.
/// Results made from the fallback carry `Provenance::Generated` and are labelled "generated data".
pub fn load_data_or_generated(name: DatasetName, data_dir: Option<&Path>) -> Result<TrainTest> {
    match load_data(name, data_dir) {
        Ok(d) => Ok(d),
        Err(e) => {
            let not_found = e
                .downcast_ref::<nn_core::NnError>()
                .is_some_and(|e| matches!(e, nn_core::NnError::DataNotFound { .. }));
            if !not_found {
                return Err(e);
            }
            eprintln!("warning: {e:#}");
            eprintln!(
                "warning: using GENERATED digit-like data instead of {name}; results are labelled \"generated data\""
            );
            load_data(DatasetName::Generated, None)
        }
    }
}

/// The input specification matching a data set.
pub fn input_spec(data: &TrainTest) -> InputSpec {
    let (c, h, w) = data.train.image_shape();
    InputSpec::new(c, h, w, data.train.num_classes())
}

/// Builds a model with weights initialised from `seed`, returning its variables too.
pub fn new_model(
    config: &ModelConfig,
    seed: u64,
    device: &Device,
) -> Result<(VarMap, Box<dyn Classifier>)> {
    let varmap = VarMap::new();
    let vb = SeededVarMap::var_builder(&varmap, seed, DType::F32, device);
    let model = build_model(config, vb)?;
    Ok((varmap, model))
}

/// A progress bar on stderr (hidden when stderr is not a terminal or `quiet`).
pub fn progress_bar(quiet: bool, prefix: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = styled_bar("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta}) {msg}");
    bar.set_prefix(prefix.to_string());
    bar
}

/// An empty bar drawn with `template` (a static, valid indicatif template).
fn styled_bar(template: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}

/// `nn_core::data::fetch` with a bar counting the bytes of each download (file name, bytes, rate, time
/// left), cleared when it ends.
pub fn fetch_with_bar(
    name: DatasetName,
    dest_root: &Path,
    mirrors: &[String],
) -> nn_core::Result<PathBuf> {
    let bar = styled_bar("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})");
    let fetched = nn_core::data::fetch(name, dest_root, mirrors, Some(&Bar(bar.clone())));
    bar.finish_and_clear();
    fetched
}

/// An indicatif bar as the libraries' [`Progress`] (the binary is the only crate that draws bars).
pub struct Bar(pub ProgressBar);

impl Progress for Bar {
    fn start(&self, total: u64, done: u64) {
        self.0.set_length(total);
        self.0.set_position(done);
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }

    fn message(&self, text: &str) {
        self.0.set_message(text.to_string());
    }
}

/// `bar` (a clone: the caller keeps its own to `finish_and_clear` it) as a [`SharedProgress`] for the
/// libraries' options structs.
pub fn shared_progress(bar: &ProgressBar) -> SharedProgress {
    Arc::new(Bar(bar.clone()))
}

/// Writes pretty JSON atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    nn_core::checkpoint::write_json_atomic(path, value)
        .with_context(|| format!("writing {}", path.display()))
}

/// Creates `dir` (and parents) and locks it for this process for a run of `kind` (see
/// `nn_core::run_lock`): another kind of run, or a folder of files no mathnn run wrote, is refused unless
/// `force` (`--force`). Keep the guard alive for as long as the run writes there.
pub fn lock_run_dir(dir: &Path, kind: &str, force: bool) -> Result<nn_core::run_lock::RunLock> {
    Ok(nn_core::run_lock::RunLock::acquire_for(dir, kind, force)?)
}

/// Creates `dir` (and parents).
pub fn ensure_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// The error and its chain of causes on one line, joined by ": ". A cause whose text already ends the
/// message is skipped: the libraries' `Io` variants print their `io::Error` and also expose it as the
/// source, which `{:#}` would print twice.
pub fn one_line_error(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.ends_with(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    /// `choice` lists `Display` names and parses them back with `FromStr`: the two must round-trip for
    /// every value of every type offered on the command line.
    #[test]
    fn every_choice_round_trips_through_its_name() {
        fn round_trip<T>(all: &[T])
        where
            T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
            T::Err: std::fmt::Debug,
        {
            for v in all {
                assert_eq!(&v.to_string().parse::<T>().unwrap(), v);
            }
        }
        round_trip(&nn_core::data::DatasetName::ALL);
        round_trip(&nn_core::models::ModelKind::ALL);
        round_trip(&nn_core::gan::GanLoss::ALL);
        round_trip(&nn_core::gan::GanArch::ALL);
        round_trip(&gan_eval::FidRoute::ALL);
        round_trip(&generalization::dip::Upsample::ALL);
        assert!("eigen_sqrt".parse::<gan_eval::FidRoute>().is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_in_a_cpu_build_is_one_clear_error() {
        let arg = super::DeviceArg {
            choice: nn_core::device::DeviceChoice::Cuda(0),
        };
        let e = arg.open().unwrap_err().to_string();
        assert!(e.contains("--features cuda") && !e.contains('\n'), "{e}");
        assert!(super::DeviceArg::CPU.open().unwrap().is_cpu());
    }

    use super::*;

    #[test]
    fn error_chains_print_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::from(nn_core::NnError::Io {
            path: "run/config.json".into(),
            source: io,
        });
        assert_eq!(one_line_error(&e), "run/config.json: No such file");
        let e = e.context("loading --checkpoint run");
        assert_eq!(
            one_line_error(&e),
            "loading --checkpoint run: run/config.json: No such file"
        );
        let e = anyhow::anyhow!("line one\nline two").context("outer");
        assert_eq!(one_line_error(&e), "outer: line one line two");
    }
}
