//! Experiment `gan-metrics`: how FID, KID, IS and the Geometry Score rank sets of images whose distance
//! from MNIST is known — held-out MNIST (the floor), blurred digits, Fashion-MNIST and uniform noise (the
//! ceiling) — with a domain classifier (a 784-256-10 ReLU MLP, the architecture of the spec's sklearn
//! anchors) as feature extractor ("domain FID"), and the Geometry Score
//! of planar toy clouds with known topology (circle, two circles, figure eight, filled disk), with the
//! MRLT bar charts of the paper and its circle-vs-disk anchor (GS = 1.83 in the reference notebook).

use anyhow::{Context as _, Result};
use candle_core::{Device, Tensor};
use gan_eval::features::DomainClassifier;
use gan_eval::gs::{GsConfig, MeanRlt, mean_rlt_with_progress};
use gan_eval::scorer::{SampleScorer, ScorerParams, uniform_noise_images};
use gan_eval::{geometry_score, toy};
use ndarray::Array2;
use nn_core::data::{DatasetName, Provenance, TrainTest};
use nn_core::models::{InputSpec, ModelConfig, ModelKind};
use nn_core::train::{TrainConfig, TrainOptions};
use serde::{Deserialize, Serialize};

use crate::common::{Bar, shared_progress};
use crate::common::{load_data_or_generated, progress_bar};
use crate::report::plot::{BarGroup, bar_chart};
use crate::reproduce::{Context, ExperimentResult, Figure, Profile, Row, run_dir};

pub const NAME: &str = "gan-metrics";
pub const TITLE: &str = "FID, KID, IS and the Geometry Score on real, degraded and toy data";
/// The claim the experiment checks, as the report states it.
pub const CLAIM: &str = "FID, KID, the Inception Score and the Geometry Score tell image sets apart in the order of their distance from MNIST, and the Geometry Score separates point clouds of different topology (GS(circle, filled circle) = 1.830 in its reference notebook).";

/// Sizes per profile.
struct Plan {
    /// Images per evaluated set (and of the MNIST-test reference).
    n: usize,
    clf_train: usize,
    clf_epochs: usize,
    kid_subsets: usize,
    /// Points (images) per set for the Geometry Score on pixels.
    gs_points: usize,
    gs_draws: usize,
    toy_n: usize,
    toy_draws: usize,
    anchor_seeds: u64,
    anchor_n: usize,
}

fn plan(profile: Profile) -> Plan {
    match profile {
        Profile::Smoke => Plan {
            n: 500,
            clf_train: 5000,
            clf_epochs: 2,
            kid_subsets: 20,
            gs_points: 500,
            gs_draws: 10,
            toy_n: 2000,
            toy_draws: 10,
            anchor_seeds: 2,
            anchor_n: 2000,
        },
        Profile::Quick => Plan {
            n: 5000,
            clf_train: 60000,
            clf_epochs: 5,
            kid_subsets: 50,
            gs_points: 2000,
            gs_draws: 100,
            toy_n: 5000,
            toy_draws: 100,
            anchor_seeds: 3,
            anchor_n: 5000,
        },
        Profile::Full => Plan {
            n: 10000,
            clf_train: 60000,
            clf_epochs: 10,
            kid_subsets: 100,
            gs_points: 5000,
            gs_draws: 1000,
            toy_n: 5000,
            toy_draws: 1000,
            anchor_seeds: 5,
            anchor_n: 5000,
        },
    }
}

/// One 1-D convolution pass of an `h × w` image with kernel `k` (radius `r`, edges replicated), along the
/// rows (`step = 1`) or the columns (`step = w`).
fn blur_pass(src: &[f64], dst: &mut [f64], h: usize, w: usize, k: &[f64], step: usize) {
    let r = (k.len() / 2) as isize;
    let len = if step == 1 { w } else { h } as isize;
    for y in 0..h {
        for x in 0..w {
            let (pos, base) = if step == 1 {
                (x as isize, y * w)
            } else {
                (y as isize, x)
            };
            dst[y * w + x] = k
                .iter()
                .enumerate()
                .map(|(j, kv)| {
                    let p = (pos + j as isize - r).clamp(0, len - 1) as usize;
                    kv * src[base + p * step]
                })
                .sum();
        }
    }
}

/// Separable Gaussian blur (σ in pixels, radius ⌈3σ⌉, edges replicated) of `[N, 1, H, W]` images.
fn blur(images: &Tensor, sigma: f64) -> Result<Tensor> {
    let dims = images.dims().to_vec();
    let (h, w) = (dims[2], dims[3]);
    let r = (3.0 * sigma).ceil() as isize;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let ks: f64 = k.iter().sum();
    let k: Vec<f64> = k.iter().map(|v| v / ks).collect();
    let data = images.flatten_all()?.to_vec1::<f32>()?;
    let mut out = Vec::with_capacity(data.len());
    let (mut a, mut b) = (vec![0f64; h * w], vec![0f64; h * w]);
    for img in data.chunks(h * w) {
        for (t, v) in a.iter_mut().zip(img) {
            *t = f64::from(*v);
        }
        blur_pass(&a, &mut b, h, w, &k, 1);
        blur_pass(&b, &mut a, h, w, &k, w);
        out.extend(a.iter().map(|v| *v as f32));
    }
    Ok(Tensor::from_vec(out, dims, &Device::Cpu)?)
}

/// MRLT with a progress bar.
/// (`quiet`: no bar).
pub fn mrlt(quiet: bool, label: &str, x: &Array2<f64>, cfg: &GsConfig) -> Result<MeanRlt> {
    let bar = progress_bar(quiet, &format!("gs {label}"));
    let m = mean_rlt_with_progress(x.view(), cfg, Some(&Bar(bar.clone())))
        .with_context(|| format!("MRLT of {label}"))?;
    bar.finish_and_clear();
    Ok(m)
}

/// FID, KID, IS and GS of one compared set against MNIST test, with its MRLT.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetMetrics {
    /// The set's name, as in the rows.
    pub name: String,
    /// FID against MNIST test (domain-classifier features).
    pub fid: f64,
    /// KID against MNIST test (mean over the subsets).
    pub kid: f64,
    /// Standard deviation of KID over the subsets.
    pub kid_std: f64,
    /// Inception Score (mean over the splits).
    pub is_mean: f64,
    /// Inception Score's standard deviation over the splits.
    pub is_std: f64,
    /// Geometry Score against MNIST test (raw pixels).
    pub gs: f64,
    /// The set's MRLT.
    pub mrlt: Vec<f64>,
}

/// result.json's details: every measured number, the toy GS matrix and the plan's sizes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GanMetricsDetails {
    /// Images per evaluated set (and of the MNIST-test reference).
    pub n: usize,
    /// The domain classifier's accuracy on MNIST test (NaN, written null, if unknown).
    pub classifier_test_accuracy: f64,
    /// Every compared set's metrics.
    pub sets: Vec<SetMetrics>,
    /// MNIST test's own MRLT.
    pub reference_mrlt: Vec<f64>,
    /// MNIST test's Inception Score: [mean, std].
    pub reference_is: [f64; 2],
    /// Each toy cloud's MRLT.
    pub toy: Vec<ToyMrlt>,
    /// GS of every pair of toy clouds.
    pub toy_gs: Vec<ToyGs>,
    /// GS(circle, disk) per anchor seed.
    pub anchor_gs_per_seed: Vec<f64>,
    /// The profile's sizes.
    pub plan: PlanSizes,
}

/// One toy cloud's MRLT in the details.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToyMrlt {
    /// The cloud ("circle", "two circles", …).
    pub name: String,
    /// Its MRLT.
    pub mrlt: Vec<f64>,
    /// Standard error of each MRLT entry.
    pub std_err: Vec<f64>,
}

/// The Geometry Score of one pair of toy clouds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToyGs {
    /// First cloud.
    pub a: String,
    /// Second cloud.
    pub b: String,
    /// GS(a, b).
    pub gs: f64,
}

/// The plan's sizes recorded in the details.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanSizes {
    /// KID subsets.
    pub kid_subsets: usize,
    /// Points (images) per set for the Geometry Score on pixels.
    pub gs_points: usize,
    /// MRLT draws on pixels.
    pub gs_draws: usize,
    /// Points per toy cloud.
    pub toy_n: usize,
    /// MRLT draws per toy cloud.
    pub toy_draws: usize,
}

/// What the rows say of phase 1's domain classifier.
struct Classifier {
    /// The layer whose activations are the features.
    feature_layer: String,
    /// Images it was trained on.
    train_images: usize,
    /// Its accuracy on MNIST test after the last epoch (NaN if unknown).
    accuracy: f64,
}

/// Phase 2's measurements: the MNIST-test reference and each compared set.
struct SetResults {
    ref_mrlt: Vec<f64>,
    /// (mean, standard deviation).
    ref_is: (f64, f64),
    results: Vec<SetMetrics>,
}

/// Phase 3's measurements: the toy clouds' MRLTs and the circle-vs-disk anchor.
struct ToyResults {
    clouds: Vec<(&'static str, Array2<f64>)>,
    toy_mrlts: Vec<MeanRlt>,
    /// GS(circle, disk) per anchor seed.
    anchor: Vec<f64>,
    anchor_mean: f64,
    anchor_sd: f64,
}

/// Runs the experiment.
pub fn run(ctx: &Context) -> Result<ExperimentResult> {
    let p = plan(ctx.profile);
    let mnist = load_data_or_generated(DatasetName::Mnist, ctx.data_dir.as_deref())?;
    let fashion = load_data_or_generated(DatasetName::FashionMnist, ctx.data_dir.as_deref())?;
    let mut provenance = vec![format!("MNIST: {}", mnist.train.provenance.label())];
    provenance.push(format!(
        "Fashion-MNIST: {}",
        fashion.train.provenance.label()
    ));
    let n = p.n.min(mnist.test.len()).min(mnist.train.len() / 2);

    // 1. The domain classifier: 784-256-10 ReLU MLP; its 256-d hidden layer gives the features.
    let (clf, classifier) = train_classifier(ctx, &p, &mnist)?;
    // 2. The sets compared with MNIST test.
    let sets = measure_sets(ctx, &p, clf, &mnist, &fashion, n)?;
    // 3. Toy clouds and the circle-vs-disk anchor.
    let toys = measure_toys(ctx, &p)?;
    // 4. Figures.
    let figures = mrlt_figures(ctx, &p, n, &sets, &toys)?;

    // 5. Rows.
    let generated = mnist.train.provenance == Provenance::Generated;
    let mut rows = set_rows(&p, n, &classifier, &sets)?;
    let gs_matrix = toy_rows(&p, &toys, &mut rows)?;
    let notes = report_notes(&p, generated);
    let details = details(&p, n, &classifier, &sets, &toys, gs_matrix);
    Ok(ExperimentResult {
        name: NAME.into(),
        title: TITLE.into(),
        profile: ctx.profile,
        data: provenance.join(", "),
        rows,
        figures,
        notes,
        seconds: 0.0,
        details: serde_json::to_value(&details)?,
    })
}

/// Phase 1: trains the 784-256-10 ReLU MLP on MNIST (checkpointed, so a rerun resumes). (LeNet would be
/// the better classifier, but its training grows memory by ~80 MB/s in nn-core today.)
fn train_classifier(
    ctx: &Context,
    p: &Plan,
    mnist: &TrainTest,
) -> Result<(DomainClassifier, Classifier)> {
    let spec = InputSpec::new(1, 28, 28, 10);
    let config = ModelConfig {
        mlp_widths: vec![256],
        ..ModelConfig::new(ModelKind::Mlp, spec)
    };
    let clf = DomainClassifier::new(&config, 0, &Device::Cpu)?;
    let clf_train = mnist.train.take(p.clf_train.min(mnist.train.len()))?;
    let report = clf.train(
        &clf_train,
        Some(&mnist.test),
        &TrainConfig {
            epochs: p.clf_epochs,
            ..TrainConfig::default()
        },
        &TrainOptions {
            checkpoint_dir: Some(run_dir(ctx, "mlp256-classifier")),
            progress: Some(shared_progress(&progress_bar(ctx.quiet, "classifier"))),
        },
    )?;
    let accuracy = report
        .history
        .last()
        .and_then(|e| e.test_accuracy)
        .unwrap_or(f64::NAN);
    let summary = Classifier {
        feature_layer: clf.feature_layer()?,
        train_images: clf_train.len(),
        accuracy,
    };
    Ok((clf, summary))
}

/// Phase 2: FID, KID and IS on the classifier's features and GS on pixels of held-out MNIST, blurred
/// digits, Fashion-MNIST and noise, each against the first `n` MNIST test images.
fn measure_sets(
    ctx: &Context,
    p: &Plan,
    clf: DomainClassifier,
    mnist: &TrainTest,
    fashion: &TrainTest,
    n: usize,
) -> Result<SetResults> {
    let reference = mnist.test.take(n)?;
    let later: Vec<usize> = (n..2 * n).collect();
    let unseen_train = mnist.train.subset(&later)?;
    let sets: Vec<(String, Tensor)> = vec![
        ("MNIST train (floor)".into(), mnist.train.take(n)?.images),
        (
            "MNIST train, blur σ=1".into(),
            blur(&unseen_train.images, 1.0)?,
        ),
        (
            "MNIST train, blur σ=2".into(),
            blur(&unseen_train.images, 2.0)?,
        ),
        (
            "Fashion-MNIST test".into(),
            fashion.test.take(n.min(fashion.test.len()))?.images,
        ),
        (
            "uniform noise (ceiling)".into(),
            uniform_noise_images(n, 7)?,
        ),
    ];
    // The scorer's defaults are this experiment's settings (KID subsets of 1,000, 10 IS splits, the
    // Geometry Score paper's MNIST complex); the profile sets the sizes.
    let defaults = ScorerParams::default();
    let params = ScorerParams {
        kid_subsets: p.kid_subsets,
        gs_points: p.gs_points,
        gs: GsConfig {
            n_draws: p.gs_draws,
            ..defaults.gs
        },
        ..defaults
    };
    let bar = progress_bar(ctx.quiet, "gs MNIST test");
    let scorer = SampleScorer::new(clf, &reference.images, params, Some(&Bar(bar.clone())))
        .context("scoring the reference set, MNIST test")?;
    bar.finish_and_clear();
    let mut results = Vec::new();
    for (name, images) in &sets {
        let bar = progress_bar(ctx.quiet, &format!("gs {name}"));
        let s = scorer.score(name, None, images, Some(&Bar(bar.clone())))?;
        bar.finish_and_clear();
        if let Some(why) = s.gs_undefined {
            anyhow::bail!("MRLT of {name}: {why}");
        }
        results.push(SetMetrics {
            name: s.name,
            fid: s.fid,
            kid: s.kid,
            kid_std: s.kid_std,
            is_mean: s.is_mean,
            is_std: s.is_std,
            gs: s.gs,
            mrlt: s.mrlt,
        });
    }
    let (ref_mrlt, ref_is) = (scorer.reference_mrlt().to_vec(), scorer.reference_is());
    Ok(SetResults {
        ref_mrlt,
        ref_is,
        results,
    })
}

/// Phase 3: MRLTs of the four toy clouds, and GS(circle, disk) over the anchor seeds with its mean and
/// sample standard deviation.
fn measure_toys(ctx: &Context, p: &Plan) -> Result<ToyResults> {
    let toy_cfg = GsConfig {
        landmarks: 32,
        gamma: Some(1.0 / 8.0),
        i_max: 10,
        n_draws: p.toy_draws,
        seed: 0,
    };
    let clouds: Vec<(&str, Array2<f64>)> = vec![
        ("circle", toy::circle(p.toy_n, 0.05, 1)),
        ("two circles", toy::two_circles(p.toy_n, 0.05, 2)),
        ("figure eight", toy::figure_eight(p.toy_n, 0.05, 3)),
        ("filled disk", toy::filled_disk(p.toy_n, 4)),
    ];
    let mut toy_mrlts = Vec::new();
    for (name, x) in &clouds {
        toy_mrlts.push(mrlt(ctx.quiet, name, x, &toy_cfg)?);
    }
    let mut anchor = Vec::new();
    for seed in 0..p.anchor_seeds {
        let cfg = GsConfig {
            n_draws: 100,
            seed,
            ..toy_cfg.clone()
        };
        let c = toy::circle(p.anchor_n, 0.05, 100 + seed);
        let d = toy::filled_disk(p.anchor_n, 200 + seed);
        let a = mrlt(ctx.quiet, "anchor circle", &c, &cfg)?;
        let b = mrlt(ctx.quiet, "anchor disk", &d, &cfg)?;
        anchor.push(geometry_score(&a.mrlt, &b.mrlt)?);
    }
    let anchor_mean = anchor.iter().sum::<f64>() / anchor.len() as f64;
    let anchor_sd = (anchor
        .iter()
        .map(|v| (v - anchor_mean).powi(2))
        .sum::<f64>()
        / (anchor.len().max(2) - 1) as f64)
        .sqrt();
    Ok(ToyResults {
        clouds,
        toy_mrlts,
        anchor,
        anchor_mean,
        anchor_sd,
    })
}

/// Phase 4: the MRLT bar charts of the toy clouds and of the MNIST-like pixel sets.
fn mrlt_figures(
    ctx: &Context,
    p: &Plan,
    n: usize,
    sets: &SetResults,
    toys: &ToyResults,
) -> Result<Vec<Figure>> {
    let shown = 5;
    let toy_fig = "mrlt_toy.svg";
    bar_chart(
        &ctx.out.join(toy_fig),
        &format!(
            "MRLT of toy clouds (N = {}, L0 = 32, γ = 1/8, {} draws)",
            p.toy_n, p.toy_draws
        ),
        "number of 1-dimensional holes i",
        "MRLT(i)",
        &(0..shown).map(|i| i.to_string()).collect::<Vec<_>>(),
        &toys
            .clouds
            .iter()
            .zip(&toys.toy_mrlts)
            .map(|((name, _), m)| BarGroup {
                name: name.to_string(),
                values: m.mrlt[..shown].to_vec(),
            })
            .collect::<Vec<_>>(),
    )?;
    let mnist_fig = "mrlt_mnist.svg";
    let mut groups = vec![BarGroup {
        name: "MNIST test".into(),
        values: sets.ref_mrlt[..8].to_vec(),
    }];
    groups.extend(sets.results.iter().map(|r| BarGroup {
        name: r.name.clone(),
        values: r.mrlt[..8].to_vec(),
    }));
    bar_chart(
        &ctx.out.join(mnist_fig),
        &format!(
            "MRLT of MNIST-like pixel sets (N = {}, L0 = 64, γ = 1/128, {} draws)",
            p.gs_points.min(n),
            p.gs_draws
        ),
        "number of 1-dimensional holes i",
        "MRLT(i)",
        &(0..8).map(|i| i.to_string()).collect::<Vec<_>>(),
        &groups,
    )?;
    Ok(vec![
        Figure::new(
            toy_fig,
            "Mean relative living times (MRLT) of toy point clouds: the probability that the witness complex has i one-dimensional holes; a circle peaks at i = 1, a filled disc at 0.",
        ),
        Figure::new(
            mnist_fig,
            "MRLT of MNIST test images and of the comparison sets (held-out MNIST, blurred, Fashion-MNIST, noise); the Geometry Score is the squared L2 distance between two of these bar profiles.",
        ),
    ])
}

/// The classifier's accuracy, the IS of MNIST test itself, and FID · KID · IS · GS of each compared set.
fn set_rows(p: &Plan, n: usize, classifier: &Classifier, sets: &SetResults) -> Result<Vec<Row>> {
    let mut rows = vec![Row {
        quantity: format!(
            "MLP-256 domain classifier: test accuracy ({} train images, {} epochs)",
            classifier.train_images, p.clf_epochs
        ),
        paper: "98.0% (the spec's sklearn MLP-256 anchor classifier)".into(),
        ours: format!("{:.2}%", 100.0 * classifier.accuracy),
        note: format!("features: `{}` (256-d ReLU)", classifier.feature_layer),
    }];
    rows.push(Row {
        quantity: format!("IS of MNIST test itself ({n} images, 10 splits)"),
        paper: "≤ 10 for a 10-class classifier; 9.43 (10 splits of 200) with an sklearn MLP".into(),
        ours: format!("{:.2} ± {:.2}", sets.ref_is.0, sets.ref_is.1),
        note: "upper reference for the IS column".into(),
    });
    for r in &sets.results {
        let paper = match r.name.as_str() {
            "MNIST train (floor)" => {
                "MLP-256 features: FID 2.62, IS 9.71 (1 split) — other classifier, not comparable"
            }
            "uniform noise (ceiling)" => {
                "MLP-256 features: FID 598.4, IS 2.37 — other classifier, not comparable"
            }
            _ => "— (ordering only: should lie between floor and ceiling)",
        };
        rows.push(Row {
            quantity: format!("{} vs MNIST test: FID · KID×10³ · IS · GS×10³", r.name),
            paper: paper.into(),
            ours: format!(
                "{:.2} · {:.2} ± {:.2} · {:.2} ± {:.2} · {:.2}",
                r.fid,
                1e3 * r.kid,
                1e3 * r.kid_std,
                r.is_mean,
                r.is_std,
                1e3 * r.gs
            ),
            note: format!(
                "{n} vs {n} images; GS on {} pixel vectors",
                p.gs_points.min(n)
            ),
        });
    }
    Ok(rows)
}

/// Appends the circle-vs-disk anchor row and one row per pair of toy clouds; returns the pairs' GS for
/// the details.
fn toy_rows(p: &Plan, toys: &ToyResults, rows: &mut Vec<Row>) -> Result<Vec<ToyGs>> {
    let (anchor_mean, anchor_sd) = (toys.anchor_mean, toys.anchor_sd);
    rows.push(Row {
        quantity: format!(
            "GS(circle, filled disk), N = {}, L0 = 32, γ = 1/8, i_max = 10, 100 draws, {} seeds",
            p.anchor_n, p.anchor_seeds
        ),
        paper: "1.830 (reference examples-basic notebook, raw GS)".into(),
        ours: format!("{anchor_mean:.3} ± {anchor_sd:.3}"),
        note: "our own noisy circle (σ = 0.05) and uniform disk; the reference's generators are not published in its repository snapshot".into(),
    });
    let (clouds, toy_mrlts) = (&toys.clouds, &toys.toy_mrlts);
    let names: Vec<&str> = clouds.iter().map(|c| c.0).collect();
    let mut gs_matrix = Vec::new();
    for i in 0..clouds.len() {
        for j in i + 1..clouds.len() {
            let g = geometry_score(&toy_mrlts[i].mrlt, &toy_mrlts[j].mrlt)?;
            gs_matrix.push(ToyGs {
                a: names[i].into(),
                b: names[j].into(),
                gs: g,
            });
            rows.push(Row {
                quantity: format!("GS({}, {}) ×10³", names[i], names[j]),
                paper: "planar sets of different topology are separated (paper, Fig. 4)".into(),
                ours: format!("{:.1}", 1e3 * g),
                note: format!(
                    "MRLT peaks: {} at {}, {} at {}",
                    names[i],
                    argmax(&toy_mrlts[i].mrlt),
                    names[j],
                    argmax(&toy_mrlts[j].mrlt)
                ),
            });
        }
    }
    Ok(gs_matrix)
}

/// The report's notes: what each metric uses, and warnings for generated data and the smoke anchor.
fn report_notes(p: &Plan, generated: bool) -> Vec<String> {
    let mut notes = vec![
        "FID and KID use the MLP's hidden (256-d ReLU) features; IS its softmax (10 contiguous splits, ddof 0); GS uses raw pixels with the reference MNIST notebook's L0 = 64, γ = 1/128.".into(),
        "Numbers from different feature extractors are not comparable: the paper column quotes other classifiers only to show the expected ordering.".into(),
        "The floor set was seen by the classifier in training; the blurred sets come from later, unseen training images.".into(),
    ];
    if generated {
        notes.push("MNIST was not found: every number is on GENERATED digits.".into());
    }
    if p.anchor_n != 5000 {
        notes.push(format!(
            "Smoke profile: the anchor uses N = {} instead of 5000.",
            p.anchor_n
        ));
    }
    notes
}

/// result.json's details: every measured number, the toy GS matrix and the plan's sizes.
fn details(
    p: &Plan,
    n: usize,
    classifier: &Classifier,
    sets: &SetResults,
    toys: &ToyResults,
    gs_matrix: Vec<ToyGs>,
) -> GanMetricsDetails {
    GanMetricsDetails {
        n,
        classifier_test_accuracy: classifier.accuracy,
        sets: sets.results.clone(),
        reference_mrlt: sets.ref_mrlt.clone(),
        reference_is: [sets.ref_is.0, sets.ref_is.1],
        toy: toys
            .clouds
            .iter()
            .zip(&toys.toy_mrlts)
            .map(|((name, _), m)| ToyMrlt {
                name: (*name).into(),
                mrlt: m.mrlt.clone(),
                std_err: m.std_err.clone(),
            })
            .collect(),
        toy_gs: gs_matrix,
        anchor_gs_per_seed: toys.anchor.clone(),
        plan: PlanSizes {
            kid_subsets: p.kid_subsets,
            gs_points: p.gs_points,
            gs_draws: p.gs_draws,
            toy_n: p.toy_n,
            toy_draws: p.toy_draws,
        },
    }
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_preserves_mass_of_a_centred_dot_and_spreads_it() {
        let mut v = vec![0f32; 28 * 28];
        v[14 * 28 + 14] = 1.0;
        let t = Tensor::from_vec(v, (1, 1, 28, 28), &Device::Cpu).unwrap();
        let b = blur(&t, 1.0)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let total: f32 = b.iter().sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert!(b[14 * 28 + 14] < 0.2 && b[14 * 28 + 15] > 0.05);
        // Symmetric.
        assert!((b[14 * 28 + 13] - b[14 * 28 + 15]).abs() < 1e-7);
    }

    #[test]
    fn bar_chart_writes_an_svg_with_every_group() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.svg");
        bar_chart(
            &path,
            "MRLT",
            "i",
            "MRLT(i)",
            &["0".into(), "1".into()],
            &[
                BarGroup {
                    name: "circle".into(),
                    values: vec![0.1, 0.9],
                },
                BarGroup {
                    name: "disk".into(),
                    values: vec![0.95, 0.05],
                },
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("<svg") && text.contains("circle") && text.contains("disk"));
        assert!(text.matches("<rect").count() >= 5);
    }
}
