//! Experiment `random-labels` (Zhang et al., "Understanding deep learning requires rethinking
//! generalization", ICLR 2017) and the `mathnn random-labels` subcommand: the same networks that
//! generalise on true labels memorise random labels, random pixels and Gaussian noise; time to fit grows
//! with the label-corruption level and test error climbs to chance.
//!
//! Figures (the paper's Figure 1 at MNIST scale): (a) training loss vs step per condition, (b) epochs to
//! 100 % and to 90 % training accuracy vs corruption level, (c) test error at fit vs corruption level.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use candle_core::Device;
use generalization::fit::{FitConfig, FitOptions};
use generalization::{ConditionResult, Corruption, ZhangModel, run_condition};
use nn_core::data::{DatasetName, Provenance, TrainTest};
use serde::{Deserialize, Serialize};

use crate::common::shared_progress;
use crate::common::{ensure_dir, load_data_or_generated, progress_bar};
use crate::report::plot::{Series, curve_chart};
use crate::reproduce::{Context, ExperimentResult, Figure, Profile, Row};

pub const NAME: &str = "random-labels";
pub const TITLE: &str = "networks memorise random labels (Zhang et al. 2017)";
/// The claim the experiment checks, as the report states it.
pub const CLAIM: &str = "The networks that generalise on true labels also fit random labels, scrambled pixels and noise perfectly, with training time only a small factor longer, while test error climbs to chance (Zhang et al., ICLR 2017): capacity alone cannot explain generalisation.";

/// The label-corruption levels of Figure 1b/c.
pub const LEVELS: [f64; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];

/// One group of conditions on one data set and model.
#[derive(Debug, Clone)]
pub struct Plan {
    pub dataset: DatasetName,
    pub model: ZhangModel,
    pub corruptions: Vec<Corruption>,
    pub train_size: usize,
    pub test_size: Option<usize>,
    pub config: FitConfig,
    pub seed: u64,
}

pub fn pixel_conditions() -> [Corruption; 3] {
    [
        Corruption::ShuffledPixels,
        Corruption::RandomPixels,
        Corruption::Gaussian,
    ]
}

pub fn subset(data: TrainTest, train_size: usize, test_size: Option<usize>) -> Result<TrainTest> {
    if train_size == 0 || test_size == Some(0) {
        bail!("--train-size and --test-size must be at least 1");
    }
    Ok(TrainTest {
        train: data.train.take(train_size)?,
        test: match test_size {
            Some(n) => data.test.take(n)?,
            None => data.test,
        },
    })
}

/// The run directory of one condition, e.g. `mnist-1000-mlp-1x512-labels-p0.4-s0`.
pub fn run_name(data_label: &str, plan: &Plan, n: usize, corruption: Corruption) -> String {
    format!(
        "{data_label}-{n}-{}-{}-s{}",
        plan.model, corruption, plan.seed
    )
}

pub fn data_label(dataset: DatasetName, data: &TrainTest) -> String {
    match data.train.provenance {
        Provenance::Generated => "generated".into(),
        Provenance::Real => dataset.to_string(),
        other => other.to_string(),
    }
}

/// Runs every condition of `plan` on `data` (already loaded), checkpointing under `out`.
pub fn run_plan(
    plan: &Plan,
    data: TrainTest,
    out: &Path,
    quiet: bool,
    device: &Device,
) -> Result<Vec<ConditionResult>> {
    let label = data_label(plan.dataset, &data);
    let data = subset(data, plan.train_size, plan.test_size)?;
    let mut results = Vec::new();
    for &corruption in &plan.corruptions {
        let name = run_name(&label, plan, data.train.len(), corruption);
        let progress = progress_bar(quiet, &name);
        let options = FitOptions {
            checkpoint_dir: Some(out.join(&name)),
            checkpoint_every: 25,
            progress: Some(shared_progress(&progress)),
        };
        let started = Instant::now();
        let r = run_condition(
            &data.train,
            &data.test,
            corruption,
            plan.model,
            plan.seed,
            &plan.config,
            &options,
            device,
        )
        .with_context(|| format!("condition {name}"))?;
        progress.finish_and_clear();
        if !quiet {
            eprintln!(
                "   {name}: {} epochs, train {:.2}%, test {}, {:.1} s",
                r.fit.epochs,
                100.0 * r.fit.final_train_accuracy,
                pct(r.fit.final_test_accuracy),
                started.elapsed().as_secs_f64()
            );
        }
        results.push(r);
    }
    Ok(results)
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn pct(a: Option<f64>) -> String {
    a.map_or_else(|| "—".into(), |a| format!("{:.2}%", 100.0 * a))
}

pub fn epochs(e: Option<usize>, cap: usize) -> String {
    e.map_or_else(|| format!("> {cap}"), |e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// The reproduce experiment.

/// A group of runs of the reproduce experiment and what it is for.
struct Group {
    plan: Plan,
    /// Figure 1 sweep (label levels and pixel conditions) of this data set.
    sweep: bool,
}

fn plans(profile: Profile) -> Vec<Group> {
    let adam = |max_epochs: usize, test_every: usize| FitConfig {
        max_epochs,
        test_every,
        ..FitConfig::default()
    };
    let all: Vec<Corruption> = Corruption::label_sweep(&LEVELS)
        .into_iter()
        .chain(pixel_conditions())
        .collect();
    let table = vec![Corruption::TrueLabels, Corruption::RandomLabels];
    let group = |dataset, model, corruptions: &[Corruption], n, test, config, sweep| Group {
        plan: Plan {
            dataset,
            model,
            corruptions: corruptions.to_vec(),
            train_size: n,
            test_size: test,
            config,
            seed: 0,
        },
        sweep,
    };
    use DatasetName::{FashionMnist, Mnist};
    use ZhangModel::{Lenet, Mlp1x512, Mlp3x512};
    match profile {
        Profile::Smoke => vec![
            group(
                Mnist,
                Mlp1x512,
                &Corruption::label_sweep(&[0.0, 0.5, 1.0])
                    .into_iter()
                    .chain([Corruption::RandomPixels])
                    .collect::<Vec<_>>(),
                250,
                Some(1000),
                adam(150, 25),
                true,
            ),
            group(Mnist, Lenet, &table, 100, Some(1000), adam(100, 25), false),
        ],
        Profile::Quick => vec![
            group(Mnist, Mlp1x512, &all, 1000, None, adam(300, 25), true),
            group(Mnist, Mlp3x512, &table, 1000, None, adam(300, 25), false),
            group(Mnist, Lenet, &table, 500, None, adam(300, 25), false),
            group(
                FashionMnist,
                Mlp1x512,
                &Corruption::label_sweep(&LEVELS),
                500,
                None,
                adam(300, 25),
                true,
            ),
            // Generalisation at a larger scale: true labels only, until memorised.
            group(
                Mnist,
                Lenet,
                &[Corruption::TrueLabels],
                5_000,
                None,
                adam(30, 1000),
                false,
            ),
        ],
        Profile::Full => vec![
            group(Mnist, Mlp1x512, &all, 10_000, None, adam(1000, 5), true),
            group(Mnist, Mlp3x512, &table, 10_000, None, adam(1000, 5), false),
            group(Mnist, Lenet, &table, 10_000, None, adam(1000, 5), false),
            group(
                FashionMnist,
                Mlp1x512,
                &all,
                10_000,
                None,
                adam(1000, 5),
                true,
            ),
            group(
                FashionMnist,
                Lenet,
                &table,
                10_000,
                None,
                adam(1000, 5),
                false,
            ),
            group(
                Mnist,
                Lenet,
                &[Corruption::TrueLabels],
                60_000,
                None,
                adam(100, 1),
                false,
            ),
        ],
    }
}

/// The typed `details` of the experiment's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RandomLabelsDetails {
    /// The optimiser every condition was trained with (`adam`).
    pub optimizer: String,
    /// The worker threads the training used.
    pub threads: usize,
    /// Every condition's result, in plan order.
    pub runs: Vec<ConditionResult>,
}

fn dataset_title(d: &str) -> &str {
    match d {
        "mnist" => "MNIST",
        "fashion-mnist" => "Fashion-MNIST",
        _ => "generated digits",
    }
}

/// One finished condition: the label of its data set, whether it belongs to a Figure 1 sweep, and its
/// result.
type Labelled = (String, bool, ConditionResult);

/// Runs every group of the profile's plan in order, loading each data set once.
fn run_groups(ctx: &Context, device: &Device) -> Result<Vec<Labelled>> {
    let runs_dir = ensure_dir(&ctx.out.join("runs"))?;
    let mut loaded: Vec<(DatasetName, TrainTest)> = Vec::new();
    let mut results: Vec<Labelled> = Vec::new();
    for g in plans(ctx.profile) {
        let data = match loaded.iter().find(|(d, _)| *d == g.plan.dataset) {
            Some((_, d)) => d.clone(),
            None => {
                let d = load_data_or_generated(g.plan.dataset, ctx.data_dir.as_deref())?;
                loaded.push((g.plan.dataset, d.clone()));
                d
            }
        };
        let label = data_label(g.plan.dataset, &data);
        for r in run_plan(&g.plan, data, &runs_dir, ctx.quiet, device)? {
            results.push((label.clone(), g.sweep, r));
        }
    }
    Ok(results)
}

/// The figures and rows of the Figure 1 sweeps.
struct SweepReport {
    figures: Vec<Figure>,
    rows: Vec<Row>,
}

/// (a) training loss vs step, (b) time to fit, (c) test error, and the rows, per sweep data set.
fn sweep_report(ctx: &Context, results: &[Labelled]) -> Result<SweepReport> {
    let mut figures = Vec::new();
    let mut rows = Vec::new();
    let mut sweep_sets: Vec<String> = results
        .iter()
        .filter(|(_, s, _)| *s)
        .map(|(l, _, _)| l.clone())
        .collect();
    sweep_sets.dedup();
    let (mut fit_series, mut err_series) = (Vec::new(), Vec::new());
    for set in &sweep_sets {
        let sweep: Vec<&ConditionResult> = results
            .iter()
            .filter(|(l, s, _)| *s && l == set)
            .map(|(_, _, r)| r)
            .collect();
        figures.push(loss_figure(ctx, set, &sweep)?);
        level_series(set, &sweep, &mut fit_series, &mut err_series);
        rows.extend(sweep_rows(set, &sweep));
    }
    if !err_series.is_empty() {
        figures.extend(level_figures(ctx, &fit_series, err_series)?);
    }
    Ok(SweepReport { figures, rows })
}

/// Figure 1a of one sweep data set: training loss per optimiser step, one curve per condition.
fn loss_figure(ctx: &Context, set: &str, sweep: &[&ConditionResult]) -> Result<Figure> {
    let file = format!("loss_vs_step_{set}.svg");
    let curves: Vec<Series> = sweep
        .iter()
        .map(|r| Series {
            name: r.corruption.corruption.name(),
            points: r
                .fit
                .history
                .iter()
                .map(|h| (h.steps as f64, h.train_loss))
                .collect(),
        })
        .collect();
    curve_chart(
        &ctx.out.join(&file),
        &format!(
            "(a) training loss, MLP 1×512 on {} {}",
            sweep[0].fit.train_images,
            dataset_title(set)
        ),
        "optimiser step",
        "mean training loss of the epoch",
        &curves,
    )?;
    Ok(Figure::new(
        file,
        format!(
            "Training loss per optimiser step at each label-corruption level ({}); every curve reaches zero, random labels only later.",
            dataset_title(set)
        ),
    ))
}

/// Appends one sweep data set's series of Figure 1b (epochs to 100 % / 90 %) and 1c (test error) against
/// the label-corruption level.
fn level_series(
    set: &str,
    sweep: &[&ConditionResult],
    fit_series: &mut Vec<Series>,
    err_series: &mut Vec<Series>,
) {
    let levels: Vec<&ConditionResult> = sweep
        .iter()
        .copied()
        .filter(|r| r.corruption.corruption.label_level().is_some())
        .collect();
    let point = |f: fn(&ConditionResult) -> Option<f64>| -> Vec<(f64, f64)> {
        levels
            .iter()
            .filter_map(|r| Some((r.corruption.corruption.label_level()?, f(r)?)))
            .collect()
    };
    fit_series.push(Series {
        name: format!("{}: epochs to 100%", dataset_title(set)),
        points: point(|r| r.fit.epochs_to_100.map(|e| e as f64)),
    });
    fit_series.push(Series {
        name: format!("{}: epochs to 90%", dataset_title(set)),
        points: point(|r| r.fit.epochs_to_90.map(|e| e as f64)),
    });
    err_series.push(Series {
        name: format!("{}: test error at fit", dataset_title(set)),
        points: point(ConditionResult::test_error),
    });
}

/// The rows of one sweep data set: the random-vs-true time-to-fit ratio, then one row per condition.
fn sweep_rows(set: &str, sweep: &[&ConditionResult]) -> Vec<Row> {
    let mut rows = Vec::new();
    let at = |c: Corruption| sweep.iter().find(|r| r.corruption.corruption == c);
    if let (Some(t), Some(r)) = (at(Corruption::TrueLabels), at(Corruption::RandomLabels)) {
        let ratio = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(a), Some(b)) => format!("{b} vs {a} ({:.1}×)", b as f64 / a as f64),
            _ => "not both fitted".into(),
        };
        rows.push(Row {
            quantity: format!(
                "{}: time to fit, random vs true labels (epochs to 100% / to 90%)",
                dataset_title(set)
            ),
            paper: "random labels take longer by a small constant factor (CIFAR-10)".into(),
            ours: format!(
                "{}; {}",
                ratio(t.fit.epochs_to_100, r.fit.epochs_to_100),
                ratio(t.fit.epochs_to_90, r.fit.epochs_to_90)
            ),
            note: "MLP 1×512".into(),
        });
    }
    for r in sweep {
        let f = &r.fit;
        let c = r.corruption.corruption;
        rows.push(Row {
            quantity: format!(
                "{} {}, MLP 1×512, {c}: epochs to 90% / 100%; train / test acc",
                f.train_images,
                dataset_title(set)
            ),
            paper: paper_sweep(c),
            ours: format!(
                "{} / {}; {:.2}% / {}",
                epochs(f.epochs_to_90, f.epochs),
                epochs(f.epochs_to_100, f.epochs),
                100.0 * f.final_train_accuracy,
                pct(f.final_test_accuracy)
            ),
            note: format!(
                "{:.1}% labels changed (expected {:.1}%); {:.2} s/epoch",
                100.0 * r.corruption.fraction_labels_changed,
                100.0 * r.corruption.expected_fraction_changed,
                f.train_seconds / f.epochs.max(1) as f64
            ),
        });
    }
    rows
}

/// Figures 1b and 1c over every sweep data set (the test-error chart gets a chance line).
fn level_figures(
    ctx: &Context,
    fit_series: &[Series],
    mut err_series: Vec<Series>,
) -> Result<[Figure; 2]> {
    err_series.push(Series {
        name: "chance (90%)".into(),
        points: vec![(0.0, 0.9), (1.0, 0.9)],
    });
    curve_chart(
        &ctx.out.join("time_to_fit.svg"),
        "(b) time to fit vs label corruption (MLP 1×512)",
        "label corruption p",
        "epochs",
        fit_series,
    )?;
    curve_chart(
        &ctx.out.join("test_error.svg"),
        "(c) test error at fit vs label corruption (MLP 1×512)",
        "label corruption p",
        "test error (true test labels)",
        &err_series,
    )?;
    Ok([
        Figure::new(
            "time_to_fit.svg",
            "Epochs to fit every training label against the fraction p of random labels, per data set.",
        ),
        Figure::new(
            "test_error.svg",
            "Test error (true labels) of the fitted network against the fraction p of random labels; the flat line is chance, 90 %.",
        ),
    ])
}

/// Table 1 at our scale: true and random labels per model.
fn table1_rows(results: &[Labelled]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (set, _, r) in results.iter().filter(|(_, _, r)| {
        matches!(
            r.corruption.corruption,
            Corruption::TrueLabels | Corruption::RandomLabels
        )
    }) {
        let paper = r.model.paper_table1();
        let random = r.corruption.corruption == Corruption::RandomLabels;
        let (ptrain, ptest) = if random {
            (paper.random_train, paper.random_test)
        } else {
            (paper.true_train, paper.true_test)
        };
        let f = &r.fit;
        rows.push(Row {
            quantity: format!(
                "Table 1: {} ({} params), {} {}, {}: train / test acc",
                r.model.title(),
                thousands(r.parameters),
                f.train_images,
                dataset_title(set),
                r.corruption.corruption
            ),
            paper: format!(
                "{ptrain:.2}% / {ptest:.2}% ({}, CIFAR-10)",
                paper.paper_model
            ),
            ours: format!(
                "{:.2}% / {}",
                100.0 * f.final_train_accuracy,
                pct(f.final_test_accuracy)
            ),
            note: format!(
                "{} in {} epochs{}",
                if f.reached_target {
                    "fitted"
                } else {
                    "cap reached"
                },
                f.epochs,
                if f.reached_target {
                    ""
                } else {
                    " (not memorised)"
                }
            ),
        });
    }
    rows
}

/// The result's data description: real, generated, or a mix (generated as a fallback).
fn data_description(results: &[Labelled]) -> String {
    let provenances: Vec<Provenance> = results.iter().map(|(_, _, r)| r.provenance).collect();
    if provenances.iter().all(|p| *p == Provenance::Real) {
        "real data".to_string()
    } else if provenances.iter().all(|p| *p == Provenance::Generated) {
        "generated data".to_string()
    } else {
        "real data + generated data (fallback for a missing data set)".to_string()
    }
}

/// The notes on the setup and how it differs from the paper's.
fn notes() -> Vec<String> {
    vec![
        "Adam (lr 1e-3, β = (0.9, 0.999), no weight decay), batch 128, constant learning rate, no augmentation, seed 0; the paper uses SGD with momentum 0.9 and lr ×0.95 per epoch, which at a few steps per epoch on small subsets decays before random labels are fitted (`mathnn random-labels --optimizer sgd --schedule exp:0.95` runs it).".into(),
        "Train accuracy is exact (whole training set, eval mode) on the corrupted labels; test accuracy on the true test labels and images (shuffled pixels: the same permutation is applied to the test images, as in the paper). Inputs are pixels in [0, 1], not whitened.".into(),
        "Paper numbers are CIFAR-10 (Table 1, no crop, no weight decay); for LeNet the paper's closest model, the small AlexNet, is shown.".into(),
    ]
}

/// Runs the experiment.
pub fn run(ctx: &Context) -> Result<ExperimentResult> {
    let device = ctx.device.open()?;
    let results = run_groups(ctx, &device)?;
    let SweepReport { figures, mut rows } = sweep_report(ctx, &results)?;
    rows.extend(table1_rows(&results));
    let data = data_description(&results);
    let runs: Vec<ConditionResult> = results.into_iter().map(|(_, _, r)| r).collect();
    let details = RandomLabelsDetails {
        optimizer: "adam".into(),
        threads: nn_core::threads::worker_threads(),
        runs,
    };
    Ok(ExperimentResult {
        name: NAME.into(),
        title: TITLE.into(),
        profile: ctx.profile,
        data,
        rows,
        figures,
        notes: notes(),
        seconds: 0.0,
        details: serde_json::to_value(&details)?,
    })
}

/// The paper's qualitative result for a condition of Figure 1 (CIFAR-10, Inception).
fn paper_sweep(c: Corruption) -> String {
    match c {
        Corruption::TrueLabels => "fits fastest; test error ≈ 14% (Inception)".into(),
        Corruption::PartialLabels { p } => {
            format!("fits, slower as p grows; test error between clean and 90% (p = {p})")
        }
        Corruption::RandomLabels => "fits latest (small constant factor); test error 90%".into(),
        Corruption::ShuffledPixels => "fits about as fast as true labels (Fig. 1a)".into(),
        Corruption::RandomPixels | Corruption::Gaussian => {
            "fits, faster than random labels (Fig. 1a)".into()
        }
        _ => "not in the paper".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_chart_draws_every_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.svg");
        let series: Vec<Series> = (0..11)
            .map(|i| Series {
                name: format!("curve{i}"),
                points: (0..30).map(|x| (x as f64, (i * x) as f64)).collect(),
            })
            .collect();
        curve_chart(&path, "Loss per step", "step", "loss", &series).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("<svg") && text.contains("Loss per step"));
        assert!(text.contains("curve0") && text.contains("curve10"));
    }
}
