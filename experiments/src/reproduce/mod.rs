//! `mathnn reproduce`: the registry of experiments. Each writes `results/<experiment>/result.json` and its
//! figures; `results/REPORT.md` collects a paper-vs-ours table per experiment, and `results/index.html` is
//! the same report as one self-contained page with the figures inlined (`reproduce::html`).
//!
//! Profiles: `smoke` (CI, minutes), `quick` (default; ≤ 30 min on 2 cores), `full` (paper scale; hours on
//! CPU). Training runs keep checkpoints under `results/<experiment>/runs/`, so an interrupted reproduce
//! resumes where it stopped.

pub mod capacity_and_interpolation;
pub mod classical_vs_deep;
pub mod classifier_baseline;
pub mod deep_image_prior;
pub mod expressivity;
pub mod gan_comparison;
pub mod gan_metrics;
pub mod html;
pub mod random_labels;
pub mod universal_perturbations;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use nn_core::data::{DataLocator, DatasetName, mirrors};
use serde::{Deserialize, Serialize};

use crate::common::{DeviceArg, ensure_dir, write_json};

/// What `mathnn reproduce` runs, and where (see its flags in `cli::reproduce`).
#[derive(Debug, Clone)]
pub struct ReproduceOptions {
    /// How much compute the experiments may spend.
    pub profile: Profile,
    /// Directory holding the data sets (else MATHNN_DATA, else the cache; else generated data).
    pub data_dir: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Write into --out even if it holds another kind of run or files no mathnn run wrote (files of the
    /// same names are replaced; others are left alone).
    pub force: bool,
    /// Do not download missing data sets: without this, MNIST and Fashion-MNIST are fetched into the cache
    /// (checksummed) when no data directory holds them, before any experiment falls back to generated data.
    pub offline: bool,
    /// Run only these experiments (repeatable); default all.
    pub only: Vec<String>,
    /// No progress bars.
    pub quiet: bool,
    pub device: DeviceArg,
}

/// How much compute an experiment may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// CI: minutes.
    Smoke,
    /// At most 30 minutes on 2 cores.
    Quick,
    /// Paper scale: hours.
    Full,
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Profile::Smoke => "smoke",
            Profile::Quick => "quick",
            Profile::Full => "full",
        })
    }
}

/// What an experiment gets to run.
pub struct Context {
    pub profile: Profile,
    pub data_dir: Option<PathBuf>,
    /// `results/<experiment>/`.
    pub out: PathBuf,
    pub quiet: bool,
    /// Where networks run (`--device`).
    pub device: DeviceArg,
}

/// One row of a paper-vs-ours table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub quantity: String,
    pub paper: String,
    pub ours: String,
    pub note: String,
}

/// A figure of an experiment: a file in its directory and the caption the reports print under it (what
/// is plotted or tiled, so that a reader needs neither the code nor the file name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// File name relative to the experiment directory.
    pub file: String,
    pub caption: String,
}

impl Figure {
    pub fn new(file: impl Into<String>, caption: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            caption: caption.into(),
        }
    }
}

/// What every experiment returns (and writes as `result.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentResult {
    pub name: String,
    pub title: String,
    pub profile: Profile,
    /// "real data", "generated data", or a mix spelled out.
    pub data: String,
    pub rows: Vec<Row>,
    /// Figures, in report order.
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
    pub seconds: f64,
    /// Experiment-specific details.
    pub details: serde_json::Value,
}

/// A registered experiment.
pub struct Experiment {
    pub name: &'static str,
    pub title: &'static str,
    /// The claim it checks, one paragraph (the HTML report prints it).
    pub claim: &'static str,
    pub run: fn(&Context) -> Result<ExperimentResult>,
}

/// Every experiment, in report order.
pub fn registry() -> Vec<Experiment> {
    vec![
        Experiment {
            name: crate::reproduce::classifier_baseline::NAME,
            title: crate::reproduce::classifier_baseline::TITLE,
            claim: crate::reproduce::classifier_baseline::CLAIM,
            run: crate::reproduce::classifier_baseline::run,
        },
        Experiment {
            name: crate::reproduce::gan_metrics::NAME,
            title: crate::reproduce::gan_metrics::TITLE,
            claim: crate::reproduce::gan_metrics::CLAIM,
            run: crate::reproduce::gan_metrics::run,
        },
        Experiment {
            name: crate::reproduce::gan_comparison::NAME,
            title: crate::reproduce::gan_comparison::TITLE,
            claim: crate::reproduce::gan_comparison::CLAIM,
            run: crate::reproduce::gan_comparison::run,
        },
        Experiment {
            name: crate::reproduce::random_labels::NAME,
            title: crate::reproduce::random_labels::TITLE,
            claim: crate::reproduce::random_labels::CLAIM,
            run: crate::reproduce::random_labels::run,
        },
        Experiment {
            name: crate::reproduce::universal_perturbations::NAME,
            title: crate::reproduce::universal_perturbations::TITLE,
            claim: crate::reproduce::universal_perturbations::CLAIM,
            run: crate::reproduce::universal_perturbations::run,
        },
        Experiment {
            name: crate::reproduce::expressivity::NAME,
            title: crate::reproduce::expressivity::TITLE,
            claim: crate::reproduce::expressivity::CLAIM,
            run: crate::reproduce::expressivity::run,
        },
        Experiment {
            name: crate::reproduce::classical_vs_deep::NAME,
            title: crate::reproduce::classical_vs_deep::TITLE,
            claim: crate::reproduce::classical_vs_deep::CLAIM,
            run: crate::reproduce::classical_vs_deep::run,
        },
        Experiment {
            name: crate::reproduce::capacity_and_interpolation::NAME,
            title: crate::reproduce::capacity_and_interpolation::TITLE,
            claim: crate::reproduce::capacity_and_interpolation::CLAIM,
            run: crate::reproduce::capacity_and_interpolation::run,
        },
        Experiment {
            name: crate::reproduce::deep_image_prior::NAME,
            title: crate::reproduce::deep_image_prior::TITLE,
            claim: crate::reproduce::deep_image_prior::CLAIM,
            run: crate::reproduce::deep_image_prior::run,
        },
    ]
}

/// `mathnn reproduce`.
pub fn run(args: ReproduceOptions) -> Result<()> {
    let profile = args.profile;
    let registry = registry();
    for name in &args.only {
        if !registry.iter().any(|e| e.name == name) {
            let names: Vec<&str> = registry.iter().map(|e| e.name).collect();
            bail!(
                "unknown experiment `{name}` in --only; experiments are: {}",
                names.join(", ")
            );
        }
    }
    // Fail on an unavailable device before any experiment starts.
    args.device.open()?;
    if !args.offline {
        fetch_missing_data(args.data_dir.as_deref());
    }
    let _lock = crate::common::lock_run_dir(&args.out, "reproduce", args.force)?;
    let out = args.out.clone();
    let started = Instant::now();
    let mut results = Vec::new();
    for exp in registry
        .iter()
        .filter(|e| args.only.is_empty() || args.only.iter().any(|n| n == e.name))
    {
        eprintln!("== {} ({}) — profile {:?}", exp.name, exp.title, profile);
        let ctx = Context {
            profile,
            data_dir: args.data_dir.clone(),
            out: ensure_dir(&out.join(exp.name))?,
            quiet: args.quiet,
            device: args.device,
        };
        let t = Instant::now();
        let mut result = (exp.run)(&ctx)?;
        result.seconds = t.elapsed().as_secs_f64();
        write_json(&ctx.out.join("result.json"), &result)?;
        eprintln!("   done in {:.1} s ({})", result.seconds, result.data);
        results.push(result);
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = render_report(&results, profile, seconds);
    nn_core::checkpoint::write_atomic(&out.join("REPORT.md"), report.as_bytes())?;
    let claim_of = |name: &str| registry.iter().find(|e| e.name == name).map(|e| e.claim);
    let meta = crate::reproduce::html::ReportMeta::now(profile, seconds);
    let html = crate::reproduce::html::render_html(&results, claim_of, &out, &meta);
    nn_core::checkpoint::write_atomic(&out.join("index.html"), html.as_bytes())?;
    println!(
        "wrote {} and {}",
        out.join("REPORT.md").display(),
        out.join("index.html").display()
    );
    Ok(())
}

/// A newcomer's first `mathnn reproduce` should run on real data: every downloadable data set (MNIST,
/// Fashion-MNIST) that no data directory holds is fetched into the cache from its mirrors (or
/// `$MATHNN_MIRROR`), checksummed, with a progress bar. A failure (no network, no cache directory) is one
/// warning; the experiments then fall back to generated data as before.
fn fetch_missing_data(data_dir: Option<&Path>) {
    let locator = DataLocator::from_env(data_dir.map(Path::to_path_buf));
    for name in DatasetName::ALL.into_iter().filter(|d| d.is_downloadable()) {
        if locator.locate(name).is_ok() {
            continue;
        }
        let Some(cache) = &locator.cache_dir else {
            eprintln!(
                "warning: {name} not found and no cache directory to fetch it into (set MATHNN_CACHE)"
            );
            continue;
        };
        eprintln!(
            "fetching {name} into {} (checksummed; --offline skips this)",
            cache.display()
        );
        match crate::common::fetch_with_bar(name, cache, &mirrors(name)) {
            Ok(dir) => eprintln!("{name}: verified files in {}", dir.display()),
            Err(e) => eprintln!(
                "warning: could not fetch {name}: {}; experiments that need it use generated data",
                crate::common::one_line_error(&e.into())
            ),
        }
    }
}

fn render_report(results: &[ExperimentResult], profile: Profile, seconds: f64) -> String {
    let mut s = String::new();
    s.push_str("# mathnn reproduction report\n\n");
    s.push_str(&format!(
        "Profile: `{profile:?}`; total wall time {seconds:.0} s.\n\n"
    ));
    for r in results {
        s.push_str(&format!("## {} — {}\n\n", r.name, r.title));
        if r.data.contains("generated") {
            s.push_str("**Made from GENERATED data, not the real data set: numbers are not comparable with the paper.**\n\n");
        }
        s.push_str(&format!("Data: {}. Time: {:.0} s.\n\n", r.data, r.seconds));
        s.push_str("| quantity | paper / reference | ours | note |\n|---|---|---|---|\n");
        for row in &r.rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                row.quantity, row.paper, row.ours, row.note
            ));
        }
        s.push('\n');
        for f in &r.figures {
            s.push_str(&format!(
                "![{}]({}/{})\n\n*{}*\n\n",
                f.file, r.name, f.file, f.caption
            ));
        }
        for n in &r.notes {
            s.push_str(&format!("- {n}\n"));
        }
        s.push('\n');
    }
    s
}

/// `results/<experiment>/runs/<profile>/<run>`: one directory per profile, so that a smoke run's
/// checkpoints are never mistaken for a quick run's.
pub fn run_dir(ctx: &Context, run: &str) -> PathBuf {
    let profile = match ctx.profile {
        Profile::Smoke => "smoke",
        Profile::Quick => "quick",
        Profile::Full => "full",
    };
    ctx.out.join("runs").join(profile).join(run)
}
