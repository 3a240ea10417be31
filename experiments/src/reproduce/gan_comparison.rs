//! Experiment `gan-comparison`: the non-saturating GAN, WGAN (weight clipping) and WGAN-GP trained on
//! MNIST with the same generator/critic pair (MLP in the smoke and quick profiles, the official WGAN-GP
//! convolutional pair in full), each checkpoint scored against MNIST test by domain-classifier FID and
//! KID, the Inception Score of the classifier's softmax ("MNIST score") and the Geometry Score on pixels;
//! next to them the real-data floor, the uniform-noise ceiling and two deliberately broken "generators"
//! (one fixed image; ten memorised training digits) that show what each metric catches.
//!
//! The domain classifier (an nn-core MLP trained on the first 50k training images, cached in the run
//! directory) gives two feature sets: its penultimate layer (FID/KID, the spec's MLP-256 anchors) and its
//! 10 logits (TF-GAN's `mnist_frechet_distance`). GAN runs are checkpointed and resumed by
//! `nn_core::gan::GanTrainer`; their metric history is stored in the checkpoint itself.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};
use candle_core::{Device, Tensor};
use gan_eval::features::DomainClassifier;
use gan_eval::gs::GsConfig;
use gan_eval::scorer::{SampleScorer, ScorerParams, uniform_noise_images};
use nn_core::data::{Dataset, DatasetName, Provenance, TrainTest};
use nn_core::gan::{GanArch, GanConfig, GanLoss, GanTrainer};
use nn_core::models::{InputSpec, ModelConfig, ModelKind};
use nn_core::train::{TrainConfig, TrainOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::common::{Bar, shared_progress};
use crate::common::{load_data_or_generated, progress_bar};
use crate::report::grid::{Captions, save_captioned_grid};
use crate::report::plot::{Series, line_chart};
use crate::reproduce::{Context, ExperimentResult, Figure, Profile, Row, run_dir};

pub const NAME: &str = "gan-comparison";
pub const TITLE: &str =
    "GAN, WGAN and WGAN-GP on MNIST compared by FID, KID, IS and the Geometry Score";
/// The claim the experiment checks, as the report states it.
pub const CLAIM: &str = "Trained on MNIST with the same generator and critic, WGAN-GP gets a slightly better (lower) Geometry Score than WGAN (Khrulkov & Oseledets, ICML 2018), and the metrics rank the GAN objectives alike.";

/// Sizes per profile.
struct Plan {
    arch: GanArch,
    /// Generator iterations of WGAN-GP, GAN, WGAN (training order).
    iterations: [usize; 3],
    checkpoint_every: usize,
    /// Generated images per evaluation, and reference (MNIST test) images.
    n_eval: usize,
    clf_train: usize,
    clf_epochs: usize,
    kid_subsets: usize,
    gs_points: usize,
    gs_draws: usize,
}

fn plan(profile: Profile) -> Plan {
    match profile {
        Profile::Smoke => Plan {
            arch: GanArch::Mlp,
            iterations: [10, 20, 10],
            checkpoint_every: 10,
            n_eval: 500,
            clf_train: 5000,
            clf_epochs: 1,
            kid_subsets: 10,
            gs_points: 300,
            gs_draws: 5,
        },
        Profile::Quick => Plan {
            arch: GanArch::Mlp,
            iterations: [2000, 2000, 1000],
            checkpoint_every: 500,
            n_eval: 10000,
            clf_train: 50000,
            clf_epochs: 3,
            kid_subsets: 50,
            gs_points: 2000,
            gs_draws: 50,
        },
        Profile::Full => Plan {
            arch: GanArch::Dcgan,
            iterations: [10000, 10000, 10000],
            checkpoint_every: 1000,
            n_eval: 10000,
            clf_train: 50000,
            clf_epochs: 10,
            kid_subsets: 100,
            gs_points: 5000,
            gs_draws: 1000,
        },
    }
}

/// The domain-classifier recipe: an MLP 784-256-10 (the architecture of the spec's anchors).
pub fn classifier_config() -> ModelConfig {
    ModelConfig {
        mlp_widths: vec![256],
        ..ModelConfig::new(ModelKind::Mlp, InputSpec::new(1, 28, 28, 10))
    }
}

/// Every score of one image set against MNIST test (gan-eval's [`SampleScorer`]).
pub use gan_eval::scorer::Scores;

/// Scores image sets against MNIST test with one domain classifier: gan-eval's [`SampleScorer`] with
/// the classifier trained (or loaded) here and progress bars.
pub struct Evaluator {
    scorer: SampleScorer,
    /// No progress bars.
    quiet: bool,
    /// Test accuracy of the classifier.
    pub accuracy: f64,
}

impl Evaluator {
    /// Trains (or loads from `clf_dir`) the domain classifier on `train` and computes the reference
    /// statistics of `reference`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        quiet: bool,
        train: &Dataset,
        test: &Dataset,
        reference: &Tensor,
        clf_dir: &Path,
        clf_epochs: usize,
        kid_subsets: usize,
        gs_points: usize,
        gs_draws: usize,
    ) -> Result<Self> {
        let clf = DomainClassifier::new(&classifier_config(), 0, &Device::Cpu)?;
        let report = clf.train(
            train,
            Some(test),
            &TrainConfig {
                epochs: clf_epochs,
                ..TrainConfig::default()
            },
            &TrainOptions {
                checkpoint_dir: Some(clf_dir.to_path_buf()),
                progress: Some(shared_progress(&progress_bar(quiet, "domain classifier"))),
            },
        )?;
        let accuracy = report
            .history
            .last()
            .and_then(|e| e.test_accuracy)
            .unwrap_or(f64::NAN);
        let defaults = ScorerParams::default();
        let params = ScorerParams {
            kid_subsets,
            gs_points,
            gs: GsConfig {
                n_draws: gs_draws,
                ..defaults.gs
            },
            ..defaults
        };
        let bar = progress_bar(quiet, "gs MNIST test");
        let scorer = SampleScorer::new(clf, reference, params, Some(&Bar(bar.clone())))
            .context("MRLT of MNIST test")?;
        bar.finish_and_clear();
        Ok(Self {
            scorer,
            quiet,
            accuracy,
        })
    }

    /// IS (mean, std) of the reference set.
    pub fn ref_is(&self) -> (f64, f64) {
        self.scorer.reference_is()
    }

    /// Scores `images` (`[N, 1, 28, 28]` in `[0, 1]`).
    pub fn score(&self, name: &str, iteration: Option<usize>, images: &Tensor) -> Result<Scores> {
        let bar = progress_bar(self.quiet, &format!("gs {name}"));
        let s = self
            .scorer
            .score(name, iteration, images, Some(&Bar(bar.clone())))?;
        bar.finish_and_clear();
        // A set of identical points has no witness-complex scale (α_max = 0): GS is undefined there.
        if let Some(why) = &s.gs_undefined {
            eprintln!("warning: Geometry Score of `{name}` undefined: MRLT of {name}: {why}");
        }
        Ok(s)
    }
}

/// `n` copies of image `i` of `images`.
fn repeat_image(images: &Tensor, i: usize, n: usize) -> Result<Tensor> {
    Ok(images.narrow(0, i, 1)?.repeat((n, 1, 1, 1))?)
}

/// One training image of each class (the first of each label), repeated to `n` images.
fn memorised_digits(data: &Dataset, n: usize) -> Result<Tensor> {
    let labels = data.labels_vec()?;
    let mut picks = Vec::new();
    for c in 0..data.num_classes() as u32 {
        if let Some(i) = labels.iter().position(|&l| l == c) {
            picks.push(i as u32);
        }
    }
    let idx: Vec<u32> = (0..n).map(|j| picks[j % picks.len()]).collect();
    let idx = Tensor::from_vec(idx, n, &Device::Cpu)?;
    Ok(data.images.index_select(&idx, 0)?)
}

/// `FID · FID(logits) · KID×10³ · IS · GS×10³` of `s`, for tables and the CLI.
pub fn fmt_scores(s: &Scores) -> String {
    format!(
        "{:.2} · {:.2} · {:.2} ± {:.2} · {:.2} ± {:.2} · {:.2}",
        s.fid,
        s.fid_logits,
        1e3 * s.kid,
        1e3 * s.kid_std,
        s.is_mean,
        s.is_std,
        1e3 * s.gs
    )
}

/// The evaluations stored with a trainer's checkpoints (none yet in a fresh run); an unreadable history
/// is an error naming `notes.evals`.
fn evals(trainer: &GanTrainer) -> Result<Vec<Scores>> {
    Ok(trainer.note(EVALS_NOTE)?.unwrap_or_default())
}

/// The key of the evaluation history in a GAN run's checkpoint notes.
const EVALS_NOTE: &str = "evals";

/// One GAN objective's run: its evaluation history, training wall time and iterations trained.
struct GanRun {
    loss: GanLoss,
    evals: Vec<Scores>,
    seconds: f64,
    iterations: usize,
}

/// result.json's details: the setup, the fixed sets' scores and every GAN run's evaluation history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GanComparisonDetails {
    /// GAN architecture (`"mlp"` or `"dcgan"`).
    pub arch: String,
    /// Images per scored set.
    pub n_eval: usize,
    /// The domain classifier's accuracy on MNIST test.
    pub classifier_accuracy: f64,
    /// Inception Score of MNIST test itself: [mean, std].
    pub reference_is: (f64, f64),
    /// Scores of the fixed sets (floor, ceiling, memorised digits, …).
    pub fixed_sets: Vec<Scores>,
    /// One entry per GAN objective.
    pub runs: Vec<GanRunDetails>,
}

/// One GAN run in the details.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GanRunDetails {
    /// The objective (`"wgan-gp"`, `"gan"` or `"wgan"`).
    pub loss: String,
    /// Iterations trained.
    pub iterations: usize,
    /// Training wall time in seconds.
    pub train_seconds: f64,
    /// Scores of every evaluated checkpoint.
    pub evals: Vec<Scores>,
}

/// The data every phase shares: MNIST (or its generated stand-in), the evaluator and the set sizes.
struct Setup {
    mnist: TrainTest,
    /// Images per scored set.
    n: usize,
    /// Training images of the domain classifier.
    clf_n: usize,
    held_out: Dataset,
    eval: Evaluator,
    /// Training the domain classifier and the reference statistics.
    clf_seconds: f64,
}

/// Runs the experiment.
pub fn run(ctx: &Context) -> Result<ExperimentResult> {
    let device = ctx.device.open()?;
    let p = plan(ctx.profile);
    let setup = setup(ctx, &p)?;
    let fixed_sets = score_fixed_sets(&setup)?;
    // Written before the long GAN runs, so that a calibration problem shows early.
    crate::common::write_json(
        &ctx.out.join("calibration.json"),
        &json!({"classifier_accuracy": setup.eval.accuracy, "fixed_sets": &fixed_sets}),
    )?;

    // The three GANs.
    std::fs::create_dir_all(ctx.out.join("samples"))?;
    let losses = [GanLoss::WganGp, GanLoss::Gan, GanLoss::Wgan];
    let mut runs = Vec::new();
    for (loss, &iters) in losses.iter().zip(&p.iterations) {
        runs.push(train_and_score(ctx, &p, &setup, *loss, iters, &device)?);
    }

    let figures = figures(ctx, &p, &runs, &fixed_sets[0])?;
    let (rows, details_runs) = table(&p, &setup, &fixed_sets, &runs);
    let best_fid = runs
        .iter()
        .flat_map(|r| r.evals.iter().filter(|s| s.iteration.is_some()))
        .map(|s| s.fid)
        .fold(f64::INFINITY, f64::min);
    let mut notes = vec![
        format!(
            "Acceptance 2 (quick profile): best model FID {best_fid:.2} (≤ 15?), floor {:.2} (≤ 3?), noise {:.1} (≥ 300?) — same classifier, penultimate features.",
            fixed_sets[0].fid, fixed_sets[1].fid
        ),
        "Iteration counts define the profiles; wall times depend on the machine's load (RAYON_NUM_THREADS=1 recommended on a shared 2-core machine).".into(),
        "Every checkpoint's metrics are stored in its run's state.json (`notes.evals`); a rerun resumes training and skips finished runs.".into(),
    ];
    if setup.mnist.train.provenance == Provenance::Generated {
        notes.push("GENERATED data: the GANs learn the generated digit-like set; numbers are not comparable with MNIST anchors.".into());
    }
    let data = format!("MNIST: {}", setup.mnist.train.provenance.label());
    let details = GanComparisonDetails {
        arch: p.arch.as_str().into(),
        n_eval: setup.n,
        classifier_accuracy: setup.eval.accuracy,
        reference_is: setup.eval.ref_is(),
        fixed_sets,
        runs: details_runs,
    };
    Ok(ExperimentResult {
        name: NAME.into(),
        title: TITLE.into(),
        profile: ctx.profile,
        data,
        rows,
        figures,
        notes,
        seconds: 0.0,
        details: serde_json::to_value(&details)?,
    })
}

/// Loads MNIST, splits off the held-out floor set and the classifier's training images, and builds the
/// evaluator (training its domain classifier or loading it from its run directory).
fn setup(ctx: &Context, p: &Plan) -> Result<Setup> {
    let mnist = load_data_or_generated(DatasetName::Mnist, ctx.data_dir.as_deref())?;
    let n = p.n_eval.min(mnist.test.len());
    let n_floor = n.min(mnist.train.len() / 6);
    let clf_n = p.clf_train.min(mnist.train.len() - n_floor);
    let clf_train = mnist.train.take(clf_n)?;
    let held_out: Vec<usize> = (mnist.train.len() - n_floor..mnist.train.len()).collect();
    let held_out = mnist.train.subset(&held_out)?;
    let reference = mnist.test.take(n)?.images;

    let t0 = Instant::now();
    let eval = Evaluator::new(
        ctx.quiet,
        &clf_train,
        &mnist.test,
        &reference,
        &run_dir(ctx, "domain-classifier"),
        p.clf_epochs,
        p.kid_subsets,
        p.gs_points,
        p.gs_draws,
    )?;
    Ok(Setup {
        mnist,
        n,
        clf_n,
        held_out,
        eval,
        clf_seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The floor (held-out MNIST), the ceiling (uniform noise) and the two broken generators.
fn score_fixed_sets(s: &Setup) -> Result<Vec<Scores>> {
    let (eval, held_out, n) = (&s.eval, &s.held_out, s.n);
    let mut fixed_sets = vec![
        eval.score("MNIST train, held out (floor)", None, &held_out.images)?,
        eval.score(
            "uniform noise (ceiling)",
            None,
            &uniform_noise_images(n, 11)?,
        )?,
        eval.score(
            "broken: one fixed digit (total collapse)",
            None,
            &repeat_image(&held_out.images, 0, n)?,
        )?,
    ];
    fixed_sets.push(eval.score(
        "broken: 10 memorised digits, one per class",
        None,
        &memorised_digits(held_out, n)?,
    )?);
    Ok(fixed_sets)
}

/// Trains (or resumes) one GAN objective for `iters` iterations, scoring and saving a sample grid at
/// every checkpoint; the scores are kept in the trainer's notes, so a resumed run keeps its history.
fn train_and_score(
    ctx: &Context,
    p: &Plan,
    setup: &Setup,
    loss: GanLoss,
    iters: usize,
    device: &Device,
) -> Result<GanRun> {
    let (eval, n) = (&setup.eval, setup.n);
    let config = GanConfig {
        iterations: iters,
        checkpoint_every: p.checkpoint_every,
        ..GanConfig::new(loss, p.arch)
    };
    let dir = run_dir(ctx, &format!("{}-{}", loss.as_str(), p.arch.as_str()));
    let mut trainer = GanTrainer::resume_or_new(config, &setup.mnist.train.images, device, &dir)
        .with_context(|| format!("{} run in {}", loss.as_str(), dir.display()))?;
    let bar = progress_bar(ctx.quiet, loss.as_str());
    let samples_dir = ctx.out.join("samples");
    trainer.train(Some(&dir), Some(&Bar(bar.clone())), |t| -> Result<()> {
        let it = t.iteration();
        // The evaluator's classifier is small and stays on the CPU.
        let images = t.generate(n, 12345)?.to_device(&Device::Cpu)?;
        let s = eval.score(loss.as_str(), Some(it), &images)?;
        let title = format!(
            "{}, {} pair, iteration {it}: FID {:.1}, IS {:.2} (fixed noise)",
            loss.as_str(),
            p.arch.as_str(),
            s.fid,
            s.is_mean
        );
        let mut all = evals(t)?;
        all.retain(|e| e.iteration != Some(it));
        all.push(s);
        t.set_note(EVALS_NOTE, &all)?;
        let samples = t.fixed_samples()?;
        // Tile (row r, column c) is the sample of fixed noise vector z_{8r + c}.
        let cols: Vec<String> = (0..8).map(|k| format!("+{k}")).collect();
        let rows: Vec<String> = (0..samples.dim(0)?.div_ceil(8))
            .map(|r| format!("z{}", 8 * r))
            .collect();
        save_captioned_grid(
            &samples,
            8,
            &Captions { title, rows, cols },
            &samples_dir.join(format!("{}-it{it:05}.png", loss.as_str())),
        )?;
        Ok(())
    })?;
    bar.finish_and_clear();
    let seconds = trainer.train_seconds();
    Ok(GanRun {
        loss,
        evals: evals(&trainer)?,
        seconds,
        iterations: trainer.iteration(),
    })
}

/// Metric-vs-iteration curves (with the real-data floor as a flat line) and the final sample grids.
fn figures(ctx: &Context, p: &Plan, runs: &[GanRun], floor: &Scores) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    type Pick = fn(&Scores) -> f64;
    let curves: [(&str, &str, Pick); 5] = [
        ("fid", "FID (penultimate features)", |s| s.fid),
        ("fid_logits", "FID (10 logits)", |s| s.fid_logits),
        ("kid", "KID ×10³", |s| 1e3 * s.kid),
        ("is", "Inception Score (MNIST score)", |s| s.is_mean),
        ("gs", "Geometry Score ×10³ (pixels)", |s| 1e3 * s.gs),
    ];
    for (file, label, pick) in curves {
        let mut series: Vec<Series> = runs
            .iter()
            .map(|r| Series {
                name: r.loss.as_str().to_string(),
                points: r
                    .evals
                    .iter()
                    .filter_map(|s| s.iteration.map(|i| (i as f64, pick(s))))
                    .collect(),
            })
            .collect();
        let max_it = p.iterations.iter().copied().max().unwrap_or(1) as f64;
        series.push(Series {
            name: "real data (floor)".into(),
            points: vec![(0.0, pick(floor)), (max_it, pick(floor))],
        });
        let name = format!("{file}_vs_iteration.svg");
        line_chart(
            &ctx.out.join(&name),
            &format!("{label} vs MNIST test, {} pair", p.arch.as_str()),
            "generator iteration",
            label,
            &series,
        )?;
        figures.push(Figure::new(
            name,
            format!(
                "{label} of each GAN objective's samples against MNIST test images per generator iteration ({} pair); the flat line is real held-out MNIST, the floor.",
                p.arch.as_str()
            ),
        ));
    }
    for r in runs {
        if let Some(last) = r.evals.iter().filter_map(|s| s.iteration).max() {
            figures.push(Figure::new(
                format!("samples/{}-it{last:05}.png", r.loss.as_str()),
                format!(
                    "Samples of the {} generator at iteration {last} (fixed latent codes).",
                    r.loss.as_str()
                ),
            ));
        }
    }
    Ok(figures)
}

/// The paper-vs-ours rows (classifier, fixed sets, each GAN's best and last checkpoint) and the runs'
/// details for result.json.
fn table(
    p: &Plan,
    setup: &Setup,
    fixed_sets: &[Scores],
    runs: &[GanRun],
) -> (Vec<Row>, Vec<GanRunDetails>) {
    let (eval, n) = (&setup.eval, setup.n);
    let note_n = format!(
        "{n} generated vs {n} MNIST-test images; GS: {} pixel vectors, L0 = 64, γ = 1/128, {} draws",
        p.gs_points.min(n),
        p.gs_draws
    );
    let mut rows = vec![Row {
        quantity: format!(
            "domain classifier MLP 784-256-10: test accuracy ({} train images, {} epochs)",
            setup.clf_n, p.clf_epochs
        ),
        paper: "spec: a ≥ 99 % LeNet recommended; anchors used an sklearn MLP-256 (98.0 %)".into(),
        ours: format!("{:.2}%", 100.0 * eval.accuracy),
        note: format!(
            "{:.0} s incl. reference statistics; IS of MNIST test itself {:.2} ± {:.2}",
            setup.clf_seconds,
            eval.ref_is().0,
            eval.ref_is().1
        ),
    }];
    for s in fixed_sets {
        let paper = match s.name.as_str() {
            n if n.contains("floor") => {
                "spec (MLP-256, 2000 vs 10k): FID 2.62, IS 9.71; acceptance: FID ≤ 3"
            }
            n if n.contains("ceiling") => "spec: FID 598.4, IS 2.37; acceptance: FID ≥ 300",
            n if n.contains("one fixed") => "FID, KID and GS should flag it; IS ≈ 1",
            _ => "IS is fooled (≈ 10: confident and balanced); FID/KID/GS are not",
        };
        rows.push(Row {
            quantity: format!("{}: {SCORES_HEADER}", s.name),
            paper: paper.into(),
            ours: fmt_scores(s),
            note: note_n.clone(),
        });
    }
    let mut details_runs = Vec::new();
    for r in runs {
        rows.extend(run_rows(p, r));
        details_runs.push(GanRunDetails {
            loss: r.loss.as_str().into(),
            iterations: r.iterations,
            train_seconds: r.seconds,
            evals: r.evals.clone(),
        });
    }
    (rows, details_runs)
}

/// The columns of [`fmt_scores`].
const SCORES_HEADER: &str = "FID · FID(logits) · KID×10³ · IS · GS×10³";

/// One GAN's rows: its best-FID checkpoint beside the paper's anchor, and its last checkpoint when that
/// is another one.
fn run_rows(p: &Plan, r: &GanRun) -> Vec<Row> {
    let paper = match r.loss {
        GanLoss::WganGp => {
            "spec anchor (MLP WGAN-GP, MLP-256 features): FID 52.7 / 24.5 / 13.9 after 200 / 500 / 1,199 its; acceptance: best FID ≤ 15"
        }
        GanLoss::Gan => "spec anchor (MLP NS-GAN): FID 91.4 / 66.3 after 1,000 / 1,560 its",
        GanLoss::Wgan => {
            "paper (Geometry Score, MNIST): WGAN slightly worse GS than WGAN-GP; no FID anchor"
        }
        _ => "no anchor",
    };
    let gen_evals: Vec<&Scores> = r.evals.iter().filter(|s| s.iteration.is_some()).collect();
    let best = gen_evals
        .iter()
        .min_by(|a, b| a.fid.total_cmp(&b.fid))
        .copied();
    let last = gen_evals.iter().max_by_key(|s| s.iteration).copied();
    let (Some(best), Some(last)) = (best, last) else {
        return Vec::new();
    };
    let mut rows = vec![Row {
        quantity: format!(
            "{} ({} pair), best FID at it {}: {SCORES_HEADER}",
            r.loss.as_str(),
            p.arch.as_str(),
            best.iteration.unwrap_or(0)
        ),
        paper: paper.into(),
        ours: fmt_scores(best),
        note: format!(
            "{} its trained in {:.0} s (wall, incl. resumes, excl. evaluation)",
            r.iterations, r.seconds
        ),
    }];
    if last.iteration != best.iteration {
        rows.push(Row {
            quantity: format!(
                "{} last checkpoint (it {})",
                r.loss.as_str(),
                last.iteration.unwrap_or(0)
            ),
            paper: "—".into(),
            ours: fmt_scores(last),
            note: String::new(),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_generators_have_the_intended_structure() {
        let data = nn_core::data::generated::generated_digits(50, 0).unwrap();
        let m = memorised_digits(&data, 25).unwrap();
        assert_eq!(m.dims(), &[25, 1, 28, 28]);
        // Image j and j + 10 are the same training digit, image j and j + 1 are different classes.
        let v = |i: usize| {
            m.get(i)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(v(3), v(13));
        assert_ne!(v(3), v(4));
        let r = repeat_image(&data.images, 2, 4).unwrap();
        let first = r
            .get(0)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(
            first,
            r.get(3)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        );
    }
}
