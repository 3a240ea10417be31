//! Experiment `classical-vs-deep`: the talk's opening story. Before deep learning, vision was the art of
//! building features — HOG, the slide's "input image → gradient image" — fed to a linear classifier
//! (Asirra, Golle 2008: SVM on colour and texture features, 82.7 % per image on cats vs dogs); convolutional
//! networks that learn their features won Kaggle's "Dogs vs. Cats" with 98.9 %.
//!
//! Here: HOG (exactly as scikit-image) and raw pixels, each with logistic regression and a linear SVM,
//! against CNNs trained from scratch, on scikit-learn's digits, MNIST, Fashion-MNIST and the 370 cat/dog
//! photos; accuracy against training-set size on MNIST (where do learned features overtake HOG?); seeded
//! stratified splits of the photos, mean ± std over seeds; training and feature times; and a gallery of
//! photos beside their HOG gradient images.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};
use candle_core::{DType, Device, Tensor};
use classical::features::{hog_features, labels, pixel_features};
use classical::hog::{HogImage, HogParams, hog_full, hog_visualisation};
use classical::linear::{LinearSvcParams, LogisticRegressionParams, Standardizer};
use ndarray::Array2;
use nn_core::data::{DataLocator, Dataset, DatasetName, Provenance, load_sklearn_digits};
use nn_core::models::{InputSpec, ModelConfig, ModelKind};
use nn_core::train::{TrainConfig, TrainOptions, evaluate, train};
use serde::{Deserialize, Serialize};

use crate::common::{load_data_or_generated, new_model};
use crate::report::grid::{Captions, save_captioned_grid};
use crate::report::plot::{Series, line_chart};
use crate::reproduce::{Context, ExperimentResult, Figure, Profile, Row, run_dir};

pub const NAME: &str = "classical-vs-deep";
pub const TITLE: &str = "hand-made features (HOG + linear models) vs learned features (CNNs)";
/// The claim the experiment checks, as the report states it.
pub const CLAIM: &str = "Hand-made features (histograms of oriented gradients with a linear classifier, 82.7 % on Asirra cats and dogs) lost to convolutional networks that learn their features (98.9 % on Kaggle's Dogs vs. Cats), and the gap opens as training data grow.";

/// The typed `details` of the experiment's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassicalVsDeepDetails {
    /// Every measured (data set, training size, seed, method) cell, in the order measured.
    pub outcomes: Vec<Outcome>,
}

/// Number of cat and dog photos (`oxford-pets/`).
const PHOTOS: usize = 370;

/// Sizes, seeds and models of one profile.
struct Plan {
    /// Seeds of the digits' stratified 75/25 splits.
    digits_seeds: Vec<u64>,
    /// MNIST training-set sizes of the accuracy-vs-size curve (nested subsets of one shuffle).
    mnist_sizes: Vec<usize>,
    /// Fashion-MNIST training-set sizes.
    fashion_sizes: Vec<usize>,
    /// Test images of MNIST and Fashion-MNIST (the first ones of the official test sets).
    test_images: usize,
    /// Seeds of the photos' stratified 80/20 splits.
    pets_seeds: Vec<u64>,
    /// CNNs on the photos, with their epochs.
    pets_cnns: Vec<(ModelKind, usize)>,
    /// Image-steps (images × epochs) a CNN gets on MNIST/Fashion; epochs = budget / size, clamped.
    cnn_image_steps: usize,
    /// Epoch bounds of those CNNs.
    cnn_epochs: (usize, usize),
    /// Deeper CNNs trained (besides LeNet) at the largest MNIST/Fashion-MNIST size.
    deeper_cnns: Vec<ModelKind>,
}

fn plan(profile: Profile) -> Plan {
    match profile {
        Profile::Smoke => Plan {
            digits_seeds: vec![0],
            mnist_sizes: vec![100, 400],
            fashion_sizes: vec![],
            test_images: 500,
            pets_seeds: vec![0],
            pets_cnns: vec![(ModelKind::Lenet, 2)],
            cnn_image_steps: 800,
            cnn_epochs: (1, 4),
            deeper_cnns: vec![],
        },
        Profile::Quick => Plan {
            digits_seeds: vec![0, 1, 2, 3, 4],
            mnist_sizes: vec![100, 300, 1_000, 3_000, 10_000],
            fashion_sizes: vec![1_000, 10_000],
            test_images: 2_000,
            pets_seeds: vec![0, 1, 2, 3, 4],
            pets_cnns: vec![
                (ModelKind::Lenet, 30),
                (ModelKind::VggSmall, 15),
                (ModelKind::ResnetSmall, 15),
            ],
            cnn_image_steps: 30_000,
            cnn_epochs: (3, 100),
            deeper_cnns: vec![ModelKind::VggSmall, ModelKind::ResnetSmall],
        },
        Profile::Full => Plan {
            digits_seeds: (0..10).collect(),
            mnist_sizes: vec![100, 300, 1_000, 3_000, 10_000, 30_000, 60_000],
            fashion_sizes: vec![300, 1_000, 3_000, 10_000, 60_000],
            test_images: 10_000,
            pets_seeds: (0..5).collect(),
            pets_cnns: vec![
                (ModelKind::Lenet, 40),
                (ModelKind::VggSmall, 30),
                (ModelKind::ResnetSmall, 30),
            ],
            cnn_image_steps: 120_000,
            cnn_epochs: (5, 200),
            deeper_cnns: vec![ModelKind::VggSmall, ModelKind::ResnetSmall],
        },
    }
}

/// One classifier of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
enum Method {
    HogLogistic,
    HogSvm,
    PixelsLogistic,
    PixelsSvm,
    Cnn(ModelKind),
}

impl Method {
    fn label(self) -> String {
        match self {
            Method::HogLogistic => "HOG + logistic regression".into(),
            Method::HogSvm => "HOG + linear SVM".into(),
            Method::PixelsLogistic => "pixels + logistic regression".into(),
            Method::PixelsSvm => "pixels + linear SVM".into(),
            Method::Cnn(kind) => format!("{kind} (CNN, learned features)"),
        }
    }
}

/// One measured cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// The data set's name.
    pub dataset: String,
    /// Training images used.
    pub train_images: usize,
    /// Test images scored.
    pub test_images: usize,
    /// Seed of the split (and of the classifier).
    pub seed: u64,
    /// The classifier, as the report labels it.
    pub method: String,
    /// Test accuracy.
    pub accuracy: f64,
    /// Seconds to fit the classifier (CNN: its training steps).
    pub train_seconds: f64,
    /// Seconds to compute the features of train and test images (0 for CNNs and pixels).
    pub feature_seconds: f64,
}

/// Logistic regression as scikit-learn's defaults but with enough iterations to converge on raw pixels.
fn logistic() -> LogisticRegressionParams {
    LogisticRegressionParams {
        max_iter: 500,
        ..LogisticRegressionParams::default()
    }
}

/// Linear SVM with Dalal & Triggs' C = 0.01 (their HOG detector's value; it also converges in a few
/// passes where C = 1 needs hundreds on 10,000 images).
fn svm(seed: u64) -> LinearSvcParams {
    LinearSvcParams {
        c: 0.01,
        seed,
        ..LinearSvcParams::default()
    }
}

/// Standardises with the training set's statistics, fits, and scores on the test set.
fn linear_accuracy(
    method: Method,
    (train_x, train_y): (&Array2<f64>, &[usize]),
    (test_x, test_y): (&Array2<f64>, &[usize]),
    seed: u64,
) -> Result<(f64, f64)> {
    let started = Instant::now();
    let (scaler, train_z) = Standardizer::fit_transform(train_x.view())?;
    let test_z = scaler.transform(test_x.view())?;
    let predicted = match method {
        Method::HogLogistic | Method::PixelsLogistic => {
            let model = logistic().fit(train_z.view(), train_y)?;
            let seconds = started.elapsed().as_secs_f64();
            (model.predict(test_z.view())?, seconds)
        }
        Method::HogSvm | Method::PixelsSvm => {
            let model = svm(seed).fit(train_z.view(), train_y)?;
            let seconds = started.elapsed().as_secs_f64();
            (model.predict(test_z.view())?, seconds)
        }
        Method::Cnn(_) => unreachable!("CNNs are trained by cnn_accuracy"),
    };
    let correct = predicted
        .0
        .iter()
        .zip(test_y)
        .filter(|(p, t)| p == t)
        .count();
    Ok((correct as f64 / test_y.len().max(1) as f64, predicted.1))
}

/// Trains a CNN from scratch (Adam 1e-3, batch 64; checkpointed under `dir`, so a rerun resumes) and
/// returns its test accuracy and training seconds.
fn cnn_accuracy(
    ctx: &Context,
    kind: ModelKind,
    train_set: &Dataset,
    test_set: &Dataset,
    epochs: usize,
    seed: u64,
    dir: &Path,
) -> Result<(f64, f64)> {
    let device = ctx.device.open()?;
    let (c, h, w) = train_set.image_shape();
    let config = ModelConfig::new(kind, InputSpec::new(c, h, w, train_set.num_classes()));
    let (varmap, model) = new_model(&config, seed, &device)?;
    let train_config = TrainConfig {
        epochs,
        seed,
        ..TrainConfig::default()
    };
    let options = TrainOptions {
        checkpoint_dir: Some(dir.to_path_buf()),
        progress: None,
    };
    let report = train(
        model.as_ref(),
        &varmap,
        train_set,
        None,
        &train_config,
        &options,
    )
    .with_context(|| format!("training {kind} on {}", train_set.name))?;
    let seconds = report.history.iter().map(|m| m.train_seconds).sum();
    let accuracy = evaluate(model.as_ref(), &test_set.to_device(&device)?, 500)?.accuracy;
    Ok((accuracy, seconds))
}

/// Features of one kind for a train/test pair, with the seconds they took.
struct FeaturePair {
    train: Array2<f64>,
    test: Array2<f64>,
    seconds: f64,
}

fn features(
    train: &Dataset,
    test: &Dataset,
    hog: Option<(&HogParams, Option<(usize, usize)>)>,
) -> Result<FeaturePair> {
    let started = Instant::now();
    let (train_x, test_x) = match hog {
        Some((params, resize)) => (
            hog_features(train, params, resize)?,
            hog_features(test, params, resize)?,
        ),
        None => (pixel_features(train)?, pixel_features(test)?),
    };
    let seconds = if hog.is_some() {
        started.elapsed().as_secs_f64()
    } else {
        0.0
    };
    Ok(FeaturePair {
        train: train_x,
        test: test_x,
        seconds,
    })
}

/// The four linear methods on one train/test pair.
fn linear_outcomes(
    dataset: &str,
    train: &Dataset,
    test: &Dataset,
    hog: (&HogParams, Option<(usize, usize)>),
    seed: u64,
) -> Result<Vec<Outcome>> {
    let (train_y, test_y) = (labels(train)?, labels(test)?);
    let mut out = Vec::new();
    for (feature_kind, methods) in [
        (Some(hog), [Method::HogLogistic, Method::HogSvm]),
        (None, [Method::PixelsLogistic, Method::PixelsSvm]),
    ] {
        let pair = features(train, test, feature_kind)?;
        for method in methods {
            let (accuracy, train_seconds) =
                linear_accuracy(method, (&pair.train, &train_y), (&pair.test, &test_y), seed)?;
            out.push(Outcome {
                dataset: dataset.into(),
                train_images: train.len(),
                test_images: test.len(),
                seed,
                method: method.label(),
                accuracy,
                train_seconds,
                feature_seconds: pair.seconds,
            });
        }
    }
    Ok(out)
}

/// Concatenates two data sets of one image shape and classes.
fn concat(a: &Dataset, b: &Dataset, name: &str) -> Result<Dataset> {
    Ok(Dataset::new(
        Tensor::cat(&[&a.images, &b.images], 0)?,
        Tensor::cat(&[&a.labels, &b.labels], 0)?,
        a.classes.clone(),
        name,
        a.provenance,
    )?)
}

/// Mean and sample standard deviation.
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// `97.12 ± 0.40 %` (or `97.12 %` for one value).
fn percent(values: &[f64]) -> String {
    let (mean, std) = mean_std(values);
    if values.len() > 1 {
        format!("{:.2} ± {:.2} %", 100.0 * mean, 100.0 * std)
    } else {
        format!("{:.2} %", 100.0 * mean)
    }
}

fn accuracies<'a>(
    outcomes: &'a [Outcome],
    dataset: &'a str,
    method: &'a str,
    train_images: Option<usize>,
) -> Vec<f64> {
    outcomes
        .iter()
        .filter(|o| {
            o.dataset == dataset
                && o.method == method
                && train_images.is_none_or(|n| o.train_images == n)
        })
        .map(|o| o.accuracy)
        .collect()
}

fn mean_of<'a>(
    outcomes: impl Iterator<Item = &'a Outcome>,
    field: impl Fn(&Outcome) -> f64,
) -> f64 {
    let values: Vec<f64> = outcomes.map(field).collect();
    mean_std(&values).0
}

/// What the phases accumulate, in order: measured cells, report rows, notes and data provenances.
#[derive(Default)]
struct Tally {
    outcomes: Vec<Outcome>,
    rows: Vec<Row>,
    notes: Vec<String>,
    provenances: Vec<&'static str>,
}

/// The cat and dog photos of phase 3, kept for the rows and the gallery.
struct Pets {
    /// "cats vs dogs", or "pets (generated)" for the stand-in.
    label: &'static str,
    /// Whether these are the real photos (the paper column quotes numbers only then).
    real: bool,
    /// All 64×64 photos (at most `PHOTOS`).
    all64: Dataset,
    /// HOG parameters of the 64×64 photos.
    hog: HogParams,
}

/// Prints a progress line unless the context is quiet.
fn progress(ctx: &Context, what: &str) {
    if !ctx.quiet {
        eprintln!("[{NAME}] {what}");
    }
}

/// The outcome of a CNN trained on `train` and tested on `test`.
fn cnn_outcome(
    dataset: &str,
    train: &Dataset,
    test: &Dataset,
    seed: u64,
    kind: ModelKind,
    (accuracy, train_seconds): (f64, f64),
) -> Outcome {
    Outcome {
        dataset: dataset.into(),
        train_images: train.len(),
        test_images: test.len(),
        seed,
        method: Method::Cnn(kind).label(),
        accuracy,
        train_seconds,
        feature_seconds: 0.0,
    }
}

/// Runs the experiment.
pub fn run(ctx: &Context) -> Result<ExperimentResult> {
    let plan = plan(ctx.profile);
    let locator = DataLocator::from_env(ctx.data_dir.clone());
    let mut tally = Tally::default();

    // 1. scikit-learn's digits: HOG after upsampling to 32×32 (4-px cells, 2×2 blocks) as in the spec table.
    digits_phase(ctx, &plan, &locator, &mut tally)?;
    // 2. MNIST: accuracy against training-set size, HOG (4-px cells, 2×2 blocks: 1,296 values) vs pixels
    //    vs LeNet.
    curves_phase(ctx, &plan, &mut tally)?;
    // 3. Cats vs dogs: 370 photos, seeded stratified 80/20 splits; HOG on the 64×64 colour photos (8-px
    //    cells, 2×2 blocks, strongest channel: 1,764 values), CNNs on 32×32 (4× cheaper per step).
    let pets = pets_phase(ctx, &plan, &mut tally)?;

    // Rows: the slide's history beside ours, then each data set's comparison.
    let history = pets_rows(&plan, &pets, &tally.outcomes);
    tally.rows.extend(history);
    let series = curve_rows(&plan, pets.label, &mut tally);
    let curve = "accuracy_vs_training_size.svg";
    line_chart(
        &ctx.out.join(curve),
        "MNIST: test accuracy against training-set size",
        "log10(training images)",
        "test accuracy",
        &series,
    )?;
    let mut figures = vec![Figure::new(
        curve,
        "MNIST: test accuracy of HOG + linear classifiers and of LeNet against the number of training images.",
    )];
    if let Some(gallery) = gallery(ctx, &pets.all64, &locator, &pets.hog)? {
        figures.extend(gallery);
    }

    // Times per image: HOG features and the classifiers.
    let timing = timing_notes(&tally.outcomes);
    tally.notes.extend(timing);
    let Tally {
        outcomes,
        rows,
        notes,
        mut provenances,
    } = tally;
    provenances.sort();
    provenances.dedup();
    let details = ClassicalVsDeepDetails { outcomes };
    Ok(ExperimentResult {
        name: NAME.into(),
        title: TITLE.into(),
        profile: ctx.profile,
        data: provenances.join(" + "),
        rows,
        figures,
        notes,
        seconds: 0.0,
        details: serde_json::to_value(&details)?,
    })
}

/// Phase 1: the four linear methods on scikit-learn's digits over the seeded 75/25 splits, and their rows
/// beside the spec table (a note instead when the digits are missing).
fn digits_phase(
    ctx: &Context,
    plan: &Plan,
    locator: &DataLocator,
    tally: &mut Tally,
) -> Result<()> {
    let digits_hog = HogParams {
        pixels_per_cell: (4, 4),
        cells_per_block: (2, 2),
        ..HogParams::default()
    };
    match locator
        .locate_sklearn_digits()
        .and_then(|p| load_sklearn_digits(&p))
    {
        Ok(digits) => {
            tally.provenances.push("real data");
            for &seed in &plan.digits_seeds {
                progress(ctx, &format!("digits, split seed {seed}"));
                let (train_set, test_set) = digits.split(0.75, seed)?;
                tally.outcomes.extend(linear_outcomes(
                    "digits",
                    &train_set,
                    &test_set,
                    (&digits_hog, Some((32, 32))),
                    seed,
                )?);
            }
            let rows = digits_rows(&tally.outcomes);
            tally.rows.extend(rows);
        }
        Err(e) => tally.notes.push(format!("digits skipped: {e}")),
    }
    Ok(())
}

/// The digits' rows: HOG + LR, pixels + LR and HOG + SVM beside the spec table's sklearn numbers.
fn digits_rows(outcomes: &[Outcome]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (method, paper) in [
        (
            Method::HogLogistic,
            "99.33 % test, 99.05 ± 0.42 % 5-fold CV (spec table, sklearn)",
        ),
        (
            Method::PixelsLogistic,
            "96.89 % test, 96.94 ± 0.99 % 5-fold CV (spec table, sklearn)",
        ),
        (
            Method::HogSvm,
            "96.89 % test, 97.72 ± 0.74 % CV with LinearSVC C = 1 (spec table; ours C = 0.01)",
        ),
    ] {
        let values = accuracies(outcomes, "digits", &method.label(), None);
        let setting = if method == Method::PixelsLogistic {
            "8×8"
        } else {
            "HOG of the 32×32 upsampled image, 4-px cells, 2×2 blocks"
        };
        rows.push(Row {
            quantity: format!("digits, {} ({setting})", method.label()),
            paper: paper.into(),
            ours: percent(&values),
            note: format!(
                "mean ± std over {} stratified 75/25 splits (1,348 / 449)",
                values.len()
            ),
        });
    }
    rows
}

/// Phase 2: MNIST (and Fashion-MNIST) at each training-set size of the plan: the linear methods, LeNet,
/// and at the largest size the deeper CNNs.
fn curves_phase(ctx: &Context, plan: &Plan, tally: &mut Tally) -> Result<()> {
    let mnist_hog = HogParams {
        pixels_per_cell: (4, 4),
        cells_per_block: (2, 2),
        ..HogParams::default()
    };
    let mut curve_datasets = vec![(DatasetName::Mnist, plan.mnist_sizes.clone())];
    if !plan.fashion_sizes.is_empty() {
        curve_datasets.push((DatasetName::FashionMnist, plan.fashion_sizes.clone()));
    }
    for (name, sizes) in curve_datasets {
        let data = load_data_or_generated(name, ctx.data_dir.as_deref())?;
        tally.provenances.push(data.train.provenance.label());
        let label = if data.train.provenance == Provenance::Generated {
            format!("{name} (generated)")
        } else {
            name.to_string()
        };
        let shuffled = data.train.shuffle(0)?;
        let test_set = data.test.take(plan.test_images)?;
        for &size in &sizes {
            progress(ctx, &format!("{label}, {size} training images"));
            let train_set = shuffled.take(size)?;
            tally.outcomes.extend(linear_outcomes(
                &label,
                &train_set,
                &test_set,
                (&mnist_hog, None),
                0,
            )?);
            let epochs =
                (plan.cnn_image_steps / size.max(1)).clamp(plan.cnn_epochs.0, plan.cnn_epochs.1);
            let largest = Some(&size) == sizes.last();
            let deeper = plan.deeper_cnns.iter().copied().filter(|_| largest);
            for kind in std::iter::once(ModelKind::Lenet).chain(deeper) {
                let dir = run_dir(ctx, &format!("{}-{kind}-{size}", name.as_str()));
                let measured = cnn_accuracy(ctx, kind, &train_set, &test_set, epochs, 0, &dir)?;
                tally.outcomes.push(cnn_outcome(
                    &label, &train_set, &test_set, 0, kind, measured,
                ));
            }
        }
    }
    Ok(())
}

/// Phase 3: the cat and dog photos, rejoined and split per seed; the linear methods on 64×64 and the
/// plan's CNNs on 32×32.
fn pets_phase(ctx: &Context, plan: &Plan, tally: &mut Tally) -> Result<Pets> {
    let pets_hog = HogParams {
        pixels_per_cell: (8, 8),
        cells_per_block: (2, 2),
        ..HogParams::default()
    };
    let pets64 = load_data_or_generated(DatasetName::Pets64, ctx.data_dir.as_deref())?;
    let pets32 = load_data_or_generated(DatasetName::Pets32, ctx.data_dir.as_deref())?;
    tally.provenances.push(pets64.train.provenance.label());
    let pets_label = if pets64.train.provenance == Provenance::Generated {
        "pets (generated)"
    } else {
        "cats vs dogs"
    };
    // The loader's own split is seed 0 of `Dataset::split`; rejoin and split again per seed.
    // The generated stand-in has 12,000 images: keep as many as there are photos.
    let as_many_as_photos = |d: Dataset| -> Result<Dataset> {
        Ok(if d.len() > PHOTOS {
            d.shuffle(0)?.take(PHOTOS)?
        } else {
            d
        })
    };
    let all64 = as_many_as_photos(concat(&pets64.train, &pets64.test, "pets64")?)?;
    let all32 = as_many_as_photos(concat(&pets32.train, &pets32.test, "pets32")?)?;
    for &seed in &plan.pets_seeds {
        progress(ctx, &format!("{pets_label}, split seed {seed}"));
        let (train64, test64) = all64.split(0.8, seed)?;
        tally.outcomes.extend(linear_outcomes(
            pets_label,
            &train64,
            &test64,
            (&pets_hog, None),
            seed,
        )?);
        let (train32, test32) = all32.split(0.8, seed)?;
        for &(kind, epochs) in &plan.pets_cnns {
            let dir = run_dir(ctx, &format!("pets32-{kind}-seed{seed}"));
            let measured = cnn_accuracy(ctx, kind, &train32, &test32, epochs, seed, &dir)?;
            tally.outcomes.push(cnn_outcome(
                pets_label, &train32, &test32, seed, kind, measured,
            ));
        }
    }
    Ok(Pets {
        label: pets_label,
        real: pets64.train.provenance == Provenance::Real,
        all64,
        hog: pets_hog,
    })
}

/// The slide's history beside ours: hand-made features + linear models and CNNs on the photos.
fn pets_rows(plan: &Plan, pets: &Pets, outcomes: &[Outcome]) -> Vec<Row> {
    let pets_label = pets.label;
    let pets_values = |m: Method| accuracies(outcomes, pets_label, &m.label(), None);
    let paper = |text: &str| {
        if pets.real {
            text.to_string()
        } else {
            "— (generated data)".to_string()
        }
    };
    let n_seeds = plan.pets_seeds.len();
    let mut rows = vec![
        Row {
            quantity: format!("{pets_label}, hand-made features + linear SVM"),
            paper: paper(
                "82.7 % per image: SVM on colour and texture features, 13,000 Asirra images (Golle 2008)",
            ),
            ours: percent(&pets_values(Method::HogSvm)),
            note: format!(
                "HOG 64×64 + linear SVM (C 0.01), 296 training photos, {n_seeds} seeded splits"
            ),
        },
        Row {
            quantity: format!("{pets_label}, hand-made features + logistic regression"),
            paper: "—".into(),
            ours: percent(&pets_values(Method::HogLogistic)),
            note: "HOG 64×64 + logistic regression".into(),
        },
        Row {
            quantity: format!("{pets_label}, raw pixels + logistic regression"),
            paper: "—".into(),
            ours: percent(&pets_values(Method::PixelsLogistic)),
            note: "64×64×3 = 12,288 pixel values".into(),
        },
    ];
    for &(kind, epochs) in &plan.pets_cnns {
        rows.push(Row {
            quantity: format!("{pets_label}, {kind} trained from scratch"),
            paper: paper("98.9 %: Kaggle winner, OverFeat features learned on ImageNet, 25,000 training images (2014)"),
            ours: percent(&pets_values(Method::Cnn(kind))),
            note: format!("32×32 photos, {epochs} epochs, Adam 1e-3; no pre-training, 296 images"),
        });
    }
    rows
}

/// Rows and crossover notes of each accuracy-vs-size data set (not the digits, not the photos); returns
/// the MNIST curves.
fn curve_rows(plan: &Plan, pets_label: &str, tally: &mut Tally) -> Vec<Series> {
    let mut series = Vec::new();
    for dataset in tally
        .outcomes
        .iter()
        .map(|o| o.dataset.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if dataset == "digits" || dataset == pets_label {
            continue;
        }
        let note = dataset_curve(
            plan,
            &dataset,
            &tally.outcomes,
            &mut tally.rows,
            &mut series,
        );
        tally.notes.push(note);
    }
    series
}

/// One data set's accuracy-vs-size rows (LeNet and HOG + LR at every size, all methods at the largest),
/// its curves when it is MNIST, and the note saying where LeNet overtakes HOG.
fn dataset_curve(
    plan: &Plan,
    dataset: &str,
    outcomes: &[Outcome],
    rows: &mut Vec<Row>,
    series: &mut Vec<Series>,
) -> String {
    let sizes: std::collections::BTreeSet<usize> = outcomes
        .iter()
        .filter(|o| o.dataset == dataset)
        .map(|o| o.train_images)
        .collect();
    let methods = [
        Method::HogLogistic,
        Method::HogSvm,
        Method::PixelsLogistic,
        Method::Cnn(ModelKind::Lenet),
    ]
    .into_iter()
    .chain(plan.deeper_cnns.iter().map(|&k| Method::Cnn(k)));
    for method in methods {
        let points: Vec<(f64, f64)> = sizes
            .iter()
            .filter_map(|&n| {
                let v = accuracies(outcomes, dataset, &method.label(), Some(n));
                (!v.is_empty()).then(|| ((n as f64).log10(), mean_std(&v).0))
            })
            .collect();
        if dataset.starts_with("mnist") {
            series.push(Series {
                name: method.label(),
                points: points.clone(),
            });
        }
        for &(x, acc) in &points {
            let n = 10f64.powf(x).round() as usize;
            if method == Method::Cnn(ModelKind::Lenet)
                || method == Method::HogLogistic
                || n == *sizes.iter().last().unwrap_or(&0)
            {
                rows.push(Row {
                    quantity: format!("{dataset}, {n} training images, {}", method.label()),
                    paper: "—".into(),
                    ours: format!("{:.2} %", 100.0 * acc),
                    note: format!("test on the first {} test images", plan.test_images),
                });
            }
        }
    }
    // Where learned features overtake HOG: the smallest size at which LeNet beats HOG + LR.
    let crossover = sizes.iter().find(|&&n| {
        let cnn = accuracies(
            outcomes,
            dataset,
            &Method::Cnn(ModelKind::Lenet).label(),
            Some(n),
        );
        let hog = accuracies(outcomes, dataset, &Method::HogLogistic.label(), Some(n));
        !cnn.is_empty() && !hog.is_empty() && mean_std(&cnn).0 > mean_std(&hog).0
    });
    match crossover {
        Some(n) => format!(
            "{dataset}: LeNet overtakes HOG + logistic regression from {n} training images on."
        ),
        None => {
            format!(
                "{dataset}: HOG + logistic regression stays ahead of LeNet at every size tried."
            )
        }
    }
}

/// The closing notes: HOG time per image, and how the models were fitted.
fn timing_notes(outcomes: &[Outcome]) -> Vec<String> {
    let hog_rows: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.feature_seconds > 0.0)
        .collect();
    let per_image_us = mean_of(hog_rows.iter().copied(), |o| {
        o.feature_seconds / (o.train_images + o.test_images) as f64 * 1e6
    });
    vec![
        format!(
            "HOG features took {per_image_us:.1} µs per image on average over all data sets ({} threads); fitting times per model are in result.json.",
            nn_core::threads::worker_threads()
        ),
        "Linear models are fitted on standardised features (statistics of the training split): logistic regression as scikit-learn's defaults but 500 L-BFGS iterations; linear SVM one-vs-rest with C = 0.01 (Dalal & Triggs' value). CNNs: Adam 1e-3, batch 64, no augmentation, trained from scratch.".into(),
    ]
}

/// Photos beside their HOG gradient images: eight test photos (PNG grid: photo, gradient image, …) and,
/// when scikit-image's astronaut photo is available, the slide's "input image → gradient image".
fn gallery(
    ctx: &Context,
    photos: &Dataset,
    locator: &DataLocator,
    params: &HogParams,
) -> Result<Option<Vec<Figure>>> {
    let (c, h, w) = photos.image_shape();
    let n = photos.len().min(8);
    if n == 0 || c != 3 {
        return Ok(None);
    }
    let pixels = photos
        .images
        .narrow(0, 0, n)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mut tiles: Vec<f32> = Vec::with_capacity(2 * n * 3 * h * w);
    for i in 0..n {
        let image = &pixels[i * 3 * h * w..(i + 1) * 3 * h * w];
        tiles.extend_from_slice(image);
        let features = hog_full(&HogImage::channels_first(image, 3, h, w)?, params)?;
        let shown =
            crate::report::hog::visualisation_for_display(&hog_visualisation(&features, params)?);
        for _ in 0..3 {
            tiles.extend_from_slice(&shown);
        }
    }
    let grid = Tensor::from_vec(tiles, (2 * n, 3, h, w), &Device::Cpu)?;
    let file = "photos_and_gradient_images.png";
    let captions = Captions {
        title: format!(
            "Test photos ({h}×{w}) and their HOG gradient images ({}×{}-pixel cells)",
            params.pixels_per_cell.0, params.pixels_per_cell.1
        ),
        rows: (0..n.div_ceil(2))
            .map(|r| format!("photos {}–{}", 2 * r + 1, (2 * r + 2).min(n)))
            .collect(),
        cols: ["photo", "HOG gradients", "photo", "HOG gradients"][..(2 * n).min(4)]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    save_captioned_grid(&grid, 4, &captions, &ctx.out.join(file))?;
    let mut figures = vec![Figure::new(
        file,
        format!(
            "{}: each photo beside the histogram-of-oriented-gradients picture a linear classifier sees.",
            captions.title
        ),
    )];
    if let Ok(path) = locator.locate_photo("astronaut.png") {
        // The slide: the photo and its gradient image side by side.
        let raw = nn_core::data::image_io::load_image_u8(&path)?;
        let slide = HogParams {
            pixels_per_cell: (16, 16),
            cells_per_block: (1, 1),
            ..HogParams::default()
        };
        let image = HogImage::channels_last(&raw.pixels, raw.rows, raw.cols, raw.channels)?;
        let shown = crate::report::hog::visualisation_for_display(&hog_visualisation(
            &hog_full(&image, &slide)?,
            &slide,
        )?);
        let photo = nn_core::data::image_io::load_image(&path)?;
        let vis =
            Tensor::from_vec(shown, (1, raw.rows, raw.cols), &Device::Cpu)?.repeat((3, 1, 1))?;
        let pair = Tensor::stack(&[&photo, &vis], 0)?;
        let name = "astronaut_and_gradient_image.png".to_string();
        let captions = Captions::columns(
            "The slide: input image → gradient image",
            &["astronaut (scikit-image)", "HOG, 16×16-pixel cells"],
        );
        save_captioned_grid(&pair, 2, &captions, &ctx.out.join(&name))?;
        figures.push(Figure::new(
            name,
            "The talk's slide redone: the astronaut photo and its HOG gradient image (16×16-pixel cells).",
        ));
    }
    Ok(Some(figures))
}
