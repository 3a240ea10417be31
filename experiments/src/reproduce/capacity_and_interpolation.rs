//! Experiment `capacity-and-interpolation` (slides 16–19, "why is there no overfitting?"): the random-
//! features double descent on MNIST (minimum norm and ridge), Zhang et al.'s Theorem 1 network on random
//! labels, and minimum-norm kernel interpolation whose RKHS norm grows with label noise while its training
//! error stays zero; one-hidden-layer MLPs of growing width whose test error keeps falling after they fit
//! everything (with 20 % label noise, a bump where the parameter count reaches n·k); and the spectrally-
//! normalised margin complexity of the random-label MLPs, which grows with the generalisation gap while the
//! parameter count stays the same.

use std::path::Path;

use anyhow::Result;
use candle_core::Device;
use classical::features::{labels, pixel_features};
use generalization::capacity::kernel::{KernelFit, KernelParams, kernel_interpolation};
use generalization::capacity::random_features::{
    FeatureMap, RandomFeaturesParams, RidgePoint, random_features_sweep,
};
use ndarray::Array2;
use nn_core::data::{Dataset, DatasetName, TrainTest};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use generalization::capacity::margin_sweep::{MarginRun, MarginSweepParams, margin_sweep};
use generalization::capacity::width_sweep::{
    WidthPoint, WidthSweepOptions, WidthSweepParams, width_sweep,
};
use generalization::fit::FitOptions;
use generalization::models::mlp_parameter_count;
use generalization::{FitConfig, ZhangModel};

use crate::common::shared_progress;
use crate::common::{ensure_dir, load_data_or_generated, progress_bar};
use crate::report::plot::{Series, line_chart};
use crate::reproduce::{Context, ExperimentResult, Figure, Profile, Row};
use crate::runs::capacity::{
    complexity_text, default_feature_counts, theorem1_on_random_labels, width_line,
};

pub const NAME: &str = "capacity-and-interpolation";
pub const TITLE: &str =
    "double descent, Theorem 1 and kernel interpolation: fitting everything need not overfit";
/// The claim the experiment checks, as the report states it.
pub const CLAIM: &str = "Past the interpolation threshold more parameters make interpolating models better, not worse (double descent); a network with 2n + d weights fits any labelling; and a norm, not the parameter count, tracks generalisation.";

/// The typed `details` of the experiment's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityAndInterpolationDetails {
    /// The random-features sweeps, one per feature seed: a point per (feature count, λ).
    pub random_features: Vec<Vec<RidgePoint>>,
    /// The kernel interpolants, one per label-noise level of `noise`.
    pub kernel: Vec<KernelFit>,
    /// The label-noise levels of the kernel interpolation (fractions of random labels).
    pub noise: Vec<f64>,
    /// The width sweeps, one per seed: a point per (hidden width, label noise).
    pub width_sweep: Vec<Vec<WidthPoint>>,
    /// The random-label MLPs of the margin sweep, one per corruption level.
    pub margin: Vec<MarginRun>,
}

struct Plan {
    /// Training images of the random-features sweep.
    rf_train: usize,
    /// Seeds of the feature streams.
    rf_seeds: Vec<u64>,
    /// Training images of Theorem 1.
    theorem1_train: usize,
    /// Training images of kernel interpolation.
    kernel_train: usize,
    /// Test images (the first ones of the test set).
    test: usize,
    /// Training images of the width sweep.
    width_train: usize,
    /// Hidden widths of the sweep.
    widths: Vec<usize>,
    /// Seeds of the width sweep (label noise and weights).
    width_seeds: Vec<u64>,
    /// Epoch budget of each width (stopping at 100 % training accuracy).
    width_epochs: usize,
    /// Training images of the margin sweep (MLP 1×512).
    margin_train: usize,
    /// Label-corruption levels of the margin sweep.
    margin_levels: Vec<f64>,
    /// Epoch budget of each margin run.
    margin_epochs: usize,
}

fn plan(profile: Profile) -> Plan {
    match profile {
        Profile::Smoke => Plan {
            rf_train: 200,
            rf_seeds: vec![0],
            theorem1_train: 200,
            kernel_train: 300,
            test: 300,
            width_train: 200,
            widths: vec![4, 32, 256],
            width_seeds: vec![0],
            width_epochs: 40,
            margin_train: 200,
            margin_levels: vec![0.0, 1.0],
            margin_epochs: 60,
        },
        Profile::Quick => Plan {
            rf_train: 2_000,
            rf_seeds: vec![0, 1, 2],
            theorem1_train: 1_000,
            kernel_train: 5_000,
            test: 2_000,
            width_train: 1_000,
            widths: vec![1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512, 1024],
            width_seeds: vec![0],
            width_epochs: 200,
            margin_train: 1_000,
            margin_levels: MARGIN_LEVELS.to_vec(),
            margin_epochs: 300,
        },
        Profile::Full => Plan {
            rf_train: 5_000,
            rf_seeds: (0..5).collect(),
            theorem1_train: 5_000,
            kernel_train: 10_000,
            test: 10_000,
            width_train: 4_000,
            widths: vec![
                1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096,
            ],
            width_seeds: vec![0, 1, 2],
            width_epochs: 1_000,
            margin_train: 5_000,
            margin_levels: MARGIN_LEVELS.to_vec(),
            margin_epochs: 1_000,
        },
    }
}

/// λ grid of the sweep (0: minimum norm).
const LAMBDAS: [f64; 4] = [0.0, 1e-6, 1e-3, 1e-1];
/// σ of the Fourier features and of the kernel (MNIST pixels in [0, 1]).
const BANDWIDTH: f64 = 5.0;
/// Fractions of training labels replaced by uniformly random ones.
const NOISE: [f64; 5] = [0.0, 0.2, 0.4, 0.6, 1.0];
/// Label noise of the width sweep: fractions of labels made wrong (Nakkiran et al.'s 0 % and 20 %).
const WIDTH_NOISE: [f64; 2] = [0.0, 0.2];
/// Label-corruption levels of the margin sweep (those of the random-labels experiment).
const MARGIN_LEVELS: [f64; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The test images every phase scores on: pixel features, labels and the number of classes.
struct TestSet {
    x: Array2<f64>,
    y: Vec<usize>,
    classes: usize,
}

/// Prints a progress line unless `--quiet`.
fn say(ctx: &Context, what: &str) {
    if !ctx.quiet {
        eprintln!("[{NAME}] {what}");
    }
}

/// Runs the experiment.
pub fn run(ctx: &Context) -> Result<ExperimentResult> {
    let plan = plan(ctx.profile);
    let device = ctx.device.open()?;
    let data = load_data_or_generated(DatasetName::Mnist, ctx.data_dir.as_deref())?;
    let provenance = data.train.provenance.label();
    let real = data.train.provenance == nn_core::data::Provenance::Real;
    let test = data.test.take(plan.test)?;
    let test_set = TestSet {
        x: pixel_features(&test)?,
        y: labels(&test)?,
        classes: data.train.num_classes(),
    };
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // 1. Random-features double descent.
    let sweeps = random_features_double_descent(ctx, &plan, &data, &test_set, &mut rows)?;

    // 2. Theorem 1 on random labels.
    rows.push(theorem1_row(ctx, &plan, &data, &test_set)?);

    // 3. Kernel interpolation across label noise: one Cholesky for every labelling.
    let fits = kernel_interpolation_across_noise(ctx, &plan, &data, &test_set, &mut rows)?;
    notes.push(
        "In the kernel figure the norm ratio is divided by 10 to share the axis with the error."
            .into(),
    );

    // 4. Width sweep: test error against parameters, 0 % and 20 % label noise.
    let w_train = data.train.take(plan.width_train)?;
    let w_test = data.test.take(plan.test)?;
    let runs_dir = ensure_dir(&ctx.out.join("runs"))?;
    let sweeps_w = width_sweeps(ctx, &plan, &w_train, &w_test, &runs_dir, &device)?;
    width_sweep_report(ctx, &plan, &w_train, test_set.classes, &sweeps_w, &mut rows)?;

    // 5. Margin complexity of the random-label MLP across corruption levels.
    let m_train = data.train.take(plan.margin_train)?;
    let margin_runs = margin_sweep_runs(ctx, &plan, &m_train, &w_test, &runs_dir, &device)?;
    margin_report(
        ctx,
        m_train.len(),
        test_set.classes,
        &margin_runs,
        &mut rows,
    )?;

    if !real {
        notes.push("GENERATED data stands in for MNIST: not comparable with the papers.".into());
    }
    let details = CapacityAndInterpolationDetails {
        random_features: sweeps,
        kernel: fits,
        noise: NOISE.to_vec(),
        width_sweep: sweeps_w,
        margin: margin_runs,
    };
    Ok(ExperimentResult {
        name: NAME.into(),
        title: TITLE.into(),
        profile: ctx.profile,
        data: provenance.into(),
        rows,
        figures: figures(),
        notes,
        seconds: 0.0,
        details: serde_json::to_value(&details)?,
    })
}

const FIGURE_RF: &str = "double_descent.svg";
const FIGURE_KERNEL: &str = "kernel_norm_vs_label_noise.svg";
const FIGURE_WIDTH: &str = "width_sweep.svg";
const FIGURE_MARGIN: &str = "margin_vs_gap.svg";

/// The four figures with their captions.
fn figures() -> Vec<Figure> {
    vec![
        Figure::new(
            FIGURE_RF,
            "Double descent of random Fourier features: test loss of the minimum-norm least-squares fit against the number of features N relative to the n training images; it peaks at the interpolation threshold N = n and falls again beyond it.",
        ),
        Figure::new(
            FIGURE_KERNEL,
            "Kernel interpolation at increasing label noise: every fit has zero training error, while its RKHS norm and its test error grow with the fraction of random labels.",
        ),
        Figure::new(
            FIGURE_WIDTH,
            "Width sweep of one-hidden-layer MLPs: train and test error against the parameter count, with and without label noise; the vertical line marks n·k parameters, about where the networks start to fit every label.",
        ),
        Figure::new(
            FIGURE_MARGIN,
            "Margin complexity (Bartlett, Foster & Telgarsky) of the MLP against its generalisation gap, one point per label-corruption level p.",
        ),
    ]
}

/// Phase 1: sweeps random Fourier features once per seed, adds the double-descent rows and draws the figure.
fn random_features_double_descent(
    ctx: &Context,
    plan: &Plan,
    data: &TrainTest,
    test: &TestSet,
    rows: &mut Vec<Row>,
) -> Result<Vec<Vec<RidgePoint>>> {
    let n = plan.rf_train;
    let train = data.train.take(n)?;
    let (x_train, y_train) = (pixel_features(&train)?, labels(&train)?);
    let counts = default_feature_counts(n);
    let mut sweeps: Vec<Vec<RidgePoint>> = Vec::new();
    for &seed in &plan.rf_seeds {
        say(ctx, &format!("random features, n = {n}, seed {seed}"));
        let params = RandomFeaturesParams {
            map: FeatureMap::Fourier {
                bandwidth: BANDWIDTH,
            },
            seed,
            block: 1024,
        };
        sweeps.push(random_features_sweep(
            x_train.view(),
            &y_train,
            test.x.view(),
            &test.y,
            test.classes,
            &counts,
            &LAMBDAS,
            &params,
        )?);
    }
    rows.extend(random_features_rows(n, &counts, &sweeps));
    random_features_figure(ctx, n, &counts, &sweeps)?;
    Ok(sweeps)
}

/// Mean over seeds of `field` at `count` features and ridge `lambda`.
fn averaged(
    sweeps: &[Vec<RidgePoint>],
    count: usize,
    lambda: f64,
    field: fn(&RidgePoint) -> f64,
) -> f64 {
    let v: Vec<f64> = sweeps
        .iter()
        .filter_map(|s| {
            s.iter()
                .find(|p| p.features == count && p.lambda == lambda)
                .map(field)
        })
        .collect();
    mean(&v)
}

/// The random-features rows: the minimum-norm peak against N = 10n and N = n/4, whether the best λ leaves a
/// peak, and the test errors.
fn random_features_rows(n: usize, counts: &[usize], sweeps: &[Vec<RidgePoint>]) -> Vec<Row> {
    let best: Vec<f64> = counts
        .iter()
        .map(|&c| {
            LAMBDAS
                .iter()
                .map(|&l| averaged(sweeps, c, l, |p| p.test_loss))
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    let at = |factor: f64| {
        counts
            .iter()
            .position(|&c| c == ((factor * n as f64).round() as usize).max(1))
    };
    let min_norm = |i: Option<usize>| {
        i.map(|i| averaged(sweeps, counts[i], 0.0, |p| p.test_loss))
            .unwrap_or(f64::NAN)
    };
    let (peak, wide, narrow) = (min_norm(at(1.0)), min_norm(at(10.0)), min_norm(at(0.25)));
    // One sweep per seed of the plan.
    let seeds = sweeps.len();
    let monotone = best.windows(2).all(|w| w[1] <= w[0] * (1.0 + 1e-9));
    let error_at = |i: Option<usize>| {
        i.map(|i| 100.0 * averaged(sweeps, counts[i], 0.0, |p| p.test_error))
            .unwrap_or(f64::NAN)
    };
    vec![
        Row {
            quantity: format!("random features, minimum norm: test loss at N = n = {n} vs N = 10n"),
            paper: "peak at the interpolation threshold N ≈ n, lower risk far past it (Belkin et al. 2019, Fig. 2)".into(),
            ours: format!("{peak:.4} vs {wide:.4} ({:.0}×)", peak / wide),
            note: format!("Fourier features σ = {BANDWIDTH}, mean of {seeds} seeds; acceptance ≥ 3×"),
        },
        Row {
            quantity: "random features, minimum norm: test loss at N = n vs N = n/4".into(),
            paper: "—".into(),
            ours: format!("{peak:.4} vs {narrow:.4} ({:.0}×)", peak / narrow),
            note: "acceptance ≥ 2×".into(),
        },
        Row {
            quantity: "random features, best λ of the grid: interior peak?".into(),
            paper: "regularisation removes the peak".into(),
            ours: if monotone {
                "none: the best-λ test loss only falls with N".into()
            } else {
                "a peak remains".into()
            },
            note: format!(
                "λ ∈ {LAMBDAS:?}; best test loss at N = 20n {:.4}",
                best.last().copied().unwrap_or(f64::NAN)
            ),
        },
        Row {
            quantity: "random features, minimum norm: test error at N = n/4, n, 20n".into(),
            paper: "—".into(),
            ours: format!(
                "{:.2} %, {:.2} %, {:.2} %",
                error_at(at(0.25)),
                error_at(at(1.0)),
                error_at(at(20.0))
            ),
            note: "training error 0 from N = n on".into(),
        },
    ]
}

/// Draws the seed-averaged test loss against N/n for minimum norm and two ridges.
fn random_features_figure(
    ctx: &Context,
    n: usize,
    counts: &[usize],
    sweeps: &[Vec<RidgePoint>],
) -> Result<()> {
    let mut series = Vec::new();
    for (name, lambda) in [
        ("minimum norm (λ = 0)", 0.0),
        ("ridge λ = 1e-3", 1e-3),
        ("ridge λ = 0.1", 0.1),
    ] {
        series.push(Series {
            name: name.into(),
            points: counts
                .iter()
                .map(|&c| {
                    (
                        (c as f64 / n as f64).log10(),
                        averaged(sweeps, c, lambda, |p| p.test_loss).log10(),
                    )
                })
                .collect(),
        });
    }
    line_chart(
        &ctx.out.join(FIGURE_RF),
        &format!("Random Fourier features on MNIST, n = {n}: test loss vs N (threshold at 0)"),
        "log10(N / n)",
        "log10(test squared loss)",
        &series,
    )
}

/// Phase 2: Zhang et al.'s Theorem 1 network fitted to random labels, as one row.
fn theorem1_row(ctx: &Context, plan: &Plan, data: &TrainTest, test: &TestSet) -> Result<Row> {
    say(ctx, "Theorem 1 network");
    let t1_train = data.train.take(plan.theorem1_train)?;
    let x_t1 = pixel_features(&t1_train)?;
    let t1 = theorem1_on_random_labels(&x_t1, &test.x, &test.y, test.classes, 0)?;
    Ok(Row {
        quantity: format!(
            "Theorem 1 network on {} random labels: weights, largest training residual",
            t1_train.len()
        ),
        paper: "2n + d weights represent any labelling (Zhang et al. 2017, Thm. 1)".into(),
        ours: format!(
            "{} weights, residual {:.1e}",
            t1.weights, t1.max_train_residual
        ),
        note: format!(
            "test accuracy {:.2} % (chance {:.0} %), cond(A) {:.2e}",
            100.0 * t1.test_accuracy,
            100.0 / test.classes as f64,
            t1.condition_number
        ),
    })
}

/// Phase 3: minimum-norm kernel interpolation of every noisy labelling, with one row per noise level and
/// the norm-and-error figure.
fn kernel_interpolation_across_noise(
    ctx: &Context,
    plan: &Plan,
    data: &TrainTest,
    test: &TestSet,
    rows: &mut Vec<Row>,
) -> Result<Vec<KernelFit>> {
    say(ctx, "kernel interpolation");
    let k_train = data.train.take(plan.kernel_train)?;
    let (x_k, y_k) = (pixel_features(&k_train)?, labels(&k_train)?);
    let labellings = noisy_labellings(&y_k, test.classes);
    let refs: Vec<&[usize]> = labellings.iter().map(Vec::as_slice).collect();
    let fits = kernel_interpolation(
        x_k.view(),
        &refs,
        test.x.view(),
        &test.y,
        test.classes,
        &KernelParams {
            bandwidth: BANDWIDTH,
        },
    )?;
    for (p, fit) in NOISE.iter().zip(&fits) {
        rows.push(kernel_row(k_train.len(), *p, fit));
    }
    kernel_figure(ctx, k_train.len(), &fits)?;
    Ok(fits)
}

/// One labelling of `y` per NOISE level, each label replaced by a uniformly random class with that
/// probability (one random stream, seed 1, through the levels in order).
fn noisy_labellings(y: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut rng = StdRng::seed_from_u64(1);
    NOISE
        .iter()
        .map(|&p| {
            y.iter()
                .map(|&l| {
                    if rng.random::<f64>() < p {
                        rng.random_range(0..classes)
                    } else {
                        l
                    }
                })
                .collect()
        })
        .collect()
}

/// The row of the kernel interpolant of `n` points at label noise `p`.
fn kernel_row(n: usize, p: f64, fit: &KernelFit) -> Row {
    Row {
        quantity: format!(
            "kernel interpolation, n = {}, {:.0} % random labels",
            n,
            100.0 * p
        ),
        paper: if p == 0.0 {
            "1.2 % test error with all 60,000 (Zhang et al. §5)".into()
        } else {
            "—".into()
        },
        ours: format!(
            "train error {:.2} %, test error {:.2} %, RKHS norm² {:.3e}",
            100.0 * fit.train_error,
            100.0 * fit.test_error,
            fit.rkhs_norm
        ),
        note: format!(
            "σ = {BANDWIDTH}; largest training residual {:.1e}",
            fit.max_train_residual
        ),
    }
}

/// Draws the test error and the RKHS norm² (relative to 0 % noise, divided by 10) against the label noise.
fn kernel_figure(ctx: &Context, n: usize, fits: &[KernelFit]) -> Result<()> {
    line_chart(
        &ctx.out.join(FIGURE_KERNEL),
        &format!(
            "Kernel interpolation, n = {}: zero training error at every noise level",
            n
        ),
        "fraction of random labels",
        "value",
        &[
            Series {
                name: "test error".into(),
                points: NOISE
                    .iter()
                    .zip(fits)
                    .map(|(p, f)| (*p, f.test_error))
                    .collect(),
            },
            Series {
                name: "RKHS norm² / norm² at 0 % noise".into(),
                points: NOISE
                    .iter()
                    .zip(fits)
                    .map(|(p, f)| (*p, f.rkhs_norm / fits[0].rkhs_norm / 10.0))
                    .collect(),
            },
        ],
    )
}

/// Phase 4a: trains every width at both noise levels, once per seed (checkpoints under `runs_dir`).
fn width_sweeps(
    ctx: &Context,
    plan: &Plan,
    w_train: &Dataset,
    w_test: &Dataset,
    runs_dir: &Path,
    device: &Device,
) -> Result<Vec<Vec<WidthPoint>>> {
    let mut sweeps_w: Vec<Vec<WidthPoint>> = Vec::new();
    for &seed in &plan.width_seeds {
        say(
            ctx,
            &format!(
                "width sweep, n = {}, {} widths, seed {seed}",
                w_train.len(),
                plan.widths.len()
            ),
        );
        let bar = progress_bar(ctx.quiet, "width sweep");
        let params = WidthSweepParams {
            widths: plan.widths.clone(),
            label_noise: WIDTH_NOISE.to_vec(),
            fit: FitConfig {
                max_epochs: plan.width_epochs,
                test_every: usize::MAX,
                seed,
                ..FitConfig::default()
            },
            seed,
            margins: true,
        };
        let options = WidthSweepOptions {
            checkpoint_root: Some(
                runs_dir.join(format!("width-sweep-n{}-seed{seed}", w_train.len())),
            ),
            checkpoint_every: 50,
            progress: Some(shared_progress(&bar)),
        };
        let quiet = ctx.quiet;
        sweeps_w.push(width_sweep(
            w_train,
            w_test,
            &params,
            &options,
            &mut |p| {
                if !quiet {
                    bar.suspend(|| eprintln!("   {}", width_line(p)));
                }
            },
            device,
        )?);
        bar.finish_and_clear();
    }
    Ok(sweeps_w)
}

/// Mean over seeds of `field` at label noise `eta` and hidden width `width`.
fn mean_width(
    sweeps_w: &[Vec<WidthPoint>],
    eta: f64,
    width: usize,
    field: fn(&WidthPoint) -> f64,
) -> f64 {
    let v: Vec<f64> = sweeps_w
        .iter()
        .flatten()
        .filter(|p| p.label_noise == eta && p.width == width)
        .map(field)
        .collect();
    mean(&v)
}

/// One noise level of the width sweep: the seed-averaged errors and the parameter count of every width.
struct WidthCurve<'a> {
    plan: &'a Plan,
    /// "0 % noise", "20 % noise".
    label: String,
    test_err: Vec<f64>,
    train_err: Vec<f64>,
    params: Vec<usize>,
}

impl WidthCurve<'_> {
    /// "test error (width, parameters)" of the `i`-th width.
    fn describe(&self, i: usize) -> String {
        format!(
            "{:.2} % (width {}, {} params)",
            100.0 * self.test_err[i],
            self.plan.widths[i],
            self.params[i]
        )
    }
}

/// Phase 4b: two rows per noise level (error past interpolation, a bump near n·k) and the
/// error-vs-parameters figure.
fn width_sweep_report(
    ctx: &Context,
    plan: &Plan,
    w_train: &Dataset,
    classes: usize,
    sweeps_w: &[Vec<WidthPoint>],
    rows: &mut Vec<Row>,
) -> Result<()> {
    let threshold = w_train.len() * classes;
    let inputs = {
        let (c, h, w) = w_train.image_shape();
        c * h * w
    };
    let mut width_series = Vec::new();
    for &eta in &WIDTH_NOISE {
        let errors = |field: fn(&WidthPoint) -> f64| -> Vec<f64> {
            plan.widths
                .iter()
                .map(|&w| mean_width(sweeps_w, eta, w, field))
                .collect()
        };
        let curve = WidthCurve {
            plan,
            label: format!("{:.0} % noise", 100.0 * eta),
            test_err: errors(|p| p.test_error),
            train_err: errors(|p| p.train_error),
            params: plan
                .widths
                .iter()
                .map(|&w| mlp_parameter_count(inputs, &[w], classes))
                .collect(),
        };
        let xs: Vec<f64> = curve.params.iter().map(|&p| (p as f64).log10()).collect();
        for (kind, err) in [("test", &curve.test_err), ("train", &curve.train_err)] {
            width_series.push(Series {
                name: format!("{kind} error, {}", curve.label),
                points: xs.iter().zip(err).map(|(x, e)| (*x, 100.0 * e)).collect(),
            });
        }
        rows.push(width_fit_row(&curve, w_train.len()));
        rows.push(width_bump_row(&curve, eta, threshold));
    }
    width_series.push(Series {
        name: "n·k parameters".into(),
        points: vec![
            ((threshold as f64).log10(), 0.0),
            ((threshold as f64).log10(), 100.0),
        ],
    });
    line_chart(
        &ctx.out.join(FIGURE_WIDTH),
        &format!(
            "One-hidden-layer MLPs on {} MNIST images: error vs parameters",
            w_train.len()
        ),
        "log10(parameters)",
        "error (%)",
        &width_series,
    )
}

/// The row comparing the test error at the first width that fits every label with that at the widest.
fn width_fit_row(curve: &WidthCurve, n: usize) -> Row {
    let plan = curve.plan;
    // The first width whose every seed fits 100 % of the (noisy) labels.
    let fits = curve.train_err.iter().position(|&e| e == 0.0);
    let last = plan.widths.len() - 1;
    Row {
        quantity: format!(
            "width sweep, {}: test error at the first width fitting every label → at the widest",
            curve.label
        ),
        paper: "keeps falling past interpolation (Neyshabur et al. 2015; Nakkiran et al. 2019)"
            .into(),
        ours: match fits {
            Some(i) => format!("{} → {}", curve.describe(i), curve.describe(last)),
            None => format!(
                "no width fitted every label; widest: {}",
                curve.describe(last)
            ),
        },
        note: format!(
            "n = {}, Adam 1e-3, ≤ {} epochs (stop at 100 % training accuracy), {} seed(s)",
            n,
            plan.width_epochs,
            plan.width_seeds.len()
        ),
    }
}

/// The row on a test-error bump near the interpolation threshold n·k at label noise `eta`.
fn width_bump_row(curve: &WidthCurve, eta: f64, threshold: usize) -> Row {
    let plan = curve.plan;
    let (test_err, train_err) = (&curve.test_err, &curve.train_err);
    // An interior peak: the largest rise of the test error from one width to the next, among the widths
    // past the heavily under-fitting start (training error under 10 %); a bump when over one point.
    let rise = |i: usize| test_err[i] - test_err[i - 1];
    let peak = (1..plan.widths.len())
        .filter(|&i| train_err[i] < 0.1)
        .max_by(|&a, &b| rise(a).total_cmp(&rise(b)))
        .filter(|&i| rise(i) > 0.0);
    Row {
        quantity: format!(
            "width sweep, {}: a test-error bump near the threshold n·k = {threshold} parameters?",
            curve.label
        ),
        paper: if eta > 0.0 {
            "peak at the interpolation threshold with label noise (Nakkiran et al. 2019, Fig. 1; Belkin et al. 2019: n·k)".into()
        } else {
            "little or no peak without noise".into()
        },
        ours: match peak {
            Some(i) => format!(
                "{}: width {} ({} params, train error {:.2} %) {:.2} % against {:.2} % at width {}",
                if rise(i) > 0.01 {
                    "yes"
                } else {
                    "none over one point"
                },
                plan.widths[i],
                curve.params[i],
                100.0 * train_err[i],
                100.0 * test_err[i],
                100.0 * test_err[i - 1],
                plan.widths[i - 1]
            ),
            None => "none: the test error only falls with width".into(),
        },
        note: "one seed in the quick profile: a bump of a point or two is within seed noise".into(),
    }
}

/// Phase 5a: fits the MLP 1×512 at every label-corruption level (checkpoints under `runs_dir`).
fn margin_sweep_runs(
    ctx: &Context,
    plan: &Plan,
    m_train: &Dataset,
    test: &Dataset,
    runs_dir: &Path,
    device: &Device,
) -> Result<Vec<MarginRun>> {
    say(
        ctx,
        &format!("margin complexity, MLP 1×512, n = {}", m_train.len()),
    );
    let m_params = MarginSweepParams {
        levels: plan.margin_levels.clone(),
        fit: FitConfig {
            max_epochs: plan.margin_epochs,
            test_every: usize::MAX,
            ..FitConfig::default()
        },
        ..MarginSweepParams::default()
    };
    let m_dir = runs_dir.join(format!("margin-mlp-1x512-n{}", m_train.len()));
    Ok(margin_sweep(
        m_train,
        test,
        &m_params,
        &mut |p| FitOptions {
            checkpoint_dir: Some(m_dir.join(format!("level{p}"))),
            checkpoint_every: 50,
            progress: Some(shared_progress(&progress_bar(
                ctx.quiet,
                &format!("p = {p}"),
            ))),
        },
        device,
    )?)
}

/// Phase 5b: one row per corruption level, the rank correlation of gap and complexity, and the figure
/// (`n` training images).
fn margin_report(
    ctx: &Context,
    n: usize,
    classes: usize,
    margin_runs: &[MarginRun],
    rows: &mut Vec<Row>,
) -> Result<()> {
    rows.extend(margin_runs.iter().map(margin_row));
    let gaps: Vec<f64> = margin_runs.iter().map(|r| r.gap).collect();
    let complexities: Vec<f64> = margin_runs
        .iter()
        .map(|r| r.margin.normalized.unwrap_or(f64::INFINITY))
        .collect();
    rows.push(Row {
        quantity: "margin complexity vs gap: Spearman rank correlation over the levels".into(),
        paper: "in direct correlation".into(),
        ours: format!("{:.3}", nn_core::stats::spearman(&gaps, &complexities)),
        note: format!(
            "parameter count the same at every level ({}); a measure, not a bound (log factors left out)",
            ZhangModel::Mlp1x512.expected_parameters(nn_core::models::InputSpec::new(1, 28, 28, classes))
        ),
    });
    line_chart(
        &ctx.out.join(FIGURE_MARGIN),
        &format!(
            "MLP 1×512 on {} MNIST images, label corruption p = 0 … 1: margin complexity vs gap",
            n
        ),
        "generalisation gap (train − test accuracy, %)",
        "‖X‖·R_A / (γ·n)",
        &[Series {
            name: "spectrally-normalised margin complexity".into(),
            points: margin_runs
                .iter()
                .filter_map(|r| r.margin.normalized.map(|c| (100.0 * r.gap, c)))
                .collect(),
        }],
    )
}

/// The row of one corruption level: gap → margin complexity.
fn margin_row(r: &MarginRun) -> Row {
    Row {
        quantity: format!(
            "margin complexity, MLP 1×512, p = {:.1}: gap → ‖X‖·R_A/(γn)",
            r.level
        ),
        paper: if r.level == 0.0 {
            "grows with the excess risk, true → random labels (Bartlett et al. 2017, Fig. 1–2)"
                .into()
        } else {
            "—".into()
        },
        ours: format!(
            "{:.2} % → {}",
            100.0 * r.gap,
            complexity_text(r.margin.normalized)
        ),
        note: format!(
            "{} epochs, train {:.2} %, R_A {:.3e}, ∏‖A‖σ {:.2}, γ {:.3} (10th percentile)",
            r.epochs,
            100.0 * r.train_accuracy,
            r.margin.spectral.complexity,
            r.margin.spectral.lipschitz,
            r.margin.margin
        ),
    }
}
