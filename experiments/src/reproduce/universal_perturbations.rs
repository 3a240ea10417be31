//! Experiment `universal-perturbations` (Moosavi-Dezfooli et al. CVPR 2017; Khrulkov & Oseledets CVPR 2018):
//! one perturbation, built from 64 images as the (p,q)-singular vector of a hidden layer's stacked
//! Jacobian, fools many images and transfers across networks.
//!
//! For Fashion-MNIST and MNIST, three architectures (LeNet, VGG-small, ResNet-small) are trained; then for
//! each: SV-UAP (p = ∞) at several hidden layers and q values from 64 training images, the UAP of the 2017
//! paper (DeepFool increments, ℓ∞ projection), universal PGD, random ±ε signs of the same norm, and
//! per-image FGSM and DeepFool as references. Fooling rates are measured on held-out test images, clipped
//! to [0, 1] (unclipped numbers at the reference ε too). Then the 3×3 transfer table, the (p,q)-singular
//! value against the fooling rate across layers, the input-transform defences, Gaussian-noise training,
//! and the Papernot substitute black-box attack (in the paper's setting and in the reduced setting of
//! cleverhans' old test). ResNet-small is used **without batch norm** and trained with a larger,
//! cosine-decayed rate and light ℓ∞ input augmentation ([`RESNET_AUGMENTATION`]): with batch norm and
//! plain training it is fooled by random ±0.2 signs and by a constant +0.1 brightness shift on 64–86 % of
//! the images, so no universal attack could be told from noise on it; with batch norm and the
//! augmentation it resisted every universal attack on MNIST (SV-UAP 1.8× noise); without batch norm and
//! with the augmentation noise fools 3–11 % and SV-UAP 5–11× that
//! (docs/experiments/universal-perturbations.md).

use std::time::Instant;

use adversarial::attacks::{
    DeepFoolConfig, EVAL_BATCH, FgsmConfig, deepfool_chunked, fgsm_success_rate, predict,
};
use adversarial::defences::{
    Augmentation, Defended, InputTransform, SubstituteConfig, SubstituteReport, accuracy,
    substitute_attack, train_with_augmentation, train_with_gaussian_noise,
};
use adversarial::net::Net;
use adversarial::norm::{Clip, Norm, random_perturbation};
use adversarial::power::{PowerConfig, sv_uap};
use adversarial::universal::{
    FoolingEvaluator, FoolingReport, UapConfig, UapResult, UniversalPgdConfig,
    universal_perturbation, universal_pgd,
};
use anyhow::Result;
use candle_core::{Device, Tensor};
use nn_core::data::{Dataset, DatasetName, Provenance};
use nn_core::models::{Classifier, InputSpec, ModelConfig, ModelKind};
use nn_core::optim::{LrSchedule, OptimizerConfig};
use nn_core::train::{TrainConfig, TrainOptions, evaluate, train};
use serde::{Deserialize, Serialize};

use crate::common::{Bar, shared_progress};
use crate::common::{load_data_or_generated, new_model, progress_bar};
use crate::report::grid::{Captions, save_captioned_grid};
use crate::report::plot::{Series, curve_chart, scatter_chart};
use crate::reproduce::{Context, ExperimentResult, Figure, Profile, Row, run_dir};

pub const NAME: &str = "universal-perturbations";
pub const TITLE: &str =
    "universal perturbations: SV-UAP from 64 images vs UAP, random noise, transfer, defences";
/// The claim the experiment checks, as the report states it.
pub const CLAIM: &str = "One image-agnostic perturbation of small ℓ∞ norm fools most images of a classifier and transfers between networks; built from only 64 images as the (p, q)-singular vector of a hidden layer's stacked Jacobian (SV-UAP, Khrulkov & Oseledets, CVPR 2018) it rivals the UAP loop run on thousands.";

const ARCHS: [ModelKind; 3] = [
    ModelKind::Lenet,
    ModelKind::VggSmall,
    ModelKind::ResnetSmall,
];

/// The talk's 3×3 table (SV-UAP, ‖ε‖∞ = 10/255, 64 images, ImageNet; rows: source, columns: target).
const PAPER_TRANSFER: [[f64; 3]; 3] = [[0.52, 0.60, 0.39], [0.48, 0.60, 0.38], [0.41, 0.47, 0.44]];
const PAPER_NETS: [&str; 3] = ["VGG-16", "VGG-19", "ResNet50"];

/// Augmentation of ResNet-small's training batches: half of each batch gets `clip(x + δ·s)`, `δ ~ U[0, 0.2]`,
/// `s` random ±1 signs or one ±1 brightness offset. Plain training leaves ResNet-small fooled by random
/// ±0.2 signs on 71–86 % (batch norm) / 35 % (without, MNIST) of the images; this makes random noise a
/// meaningful baseline without training on any attack (see docs/experiments/universal-perturbations.md).
const RESNET_AUGMENTATION: Augmentation = Augmentation::LinfShift {
    max_eps: 0.2,
    fraction: 0.5,
};

/// How one architecture is trained: Adam with base rate `lr`, batch 64, on the first `images` training
/// images for `epochs` epochs; `cosine`: cosine decay of the rate to 0 over the epochs, else constant;
/// `augment`: input augmentation of every batch (none by default); `batch_norm`: ResNet-small's batch
/// norm (default on; ignored by the other architectures).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recipe {
    images: usize,
    epochs: usize,
    lr: f64,
    cosine: bool,
    augment: Option<Augmentation>,
    batch_norm: bool,
}

impl Recipe {
    const fn constant(images: usize, epochs: usize) -> Self {
        Self {
            images,
            epochs,
            lr: 1e-3,
            cosine: false,
            augment: None,
            batch_norm: true,
        }
    }

    /// Base rate `lr` with cosine decay to 0 (used for the batch-norm ResNet-small).
    const fn decaying(images: usize, epochs: usize, lr: f64) -> Self {
        Self {
            images,
            epochs,
            lr,
            cosine: true,
            augment: None,
            batch_norm: true,
        }
    }

    /// The same recipe with input augmentation.
    const fn augmented(self, augment: Augmentation) -> Self {
        Self {
            augment: Some(augment),
            ..self
        }
    }

    /// The same recipe for ResNet-small without batch norm.
    const fn without_batch_norm(self) -> Self {
        Self {
            batch_norm: false,
            ..self
        }
    }

    /// The experiment's ResNet-small: this recipe without batch norm and with [`RESNET_AUGMENTATION`]
    /// (every profile; the reasons are in the module header).
    const fn resnet_variant(self) -> Self {
        self.augmented(RESNET_AUGMENTATION).without_batch_norm()
    }

    fn train_config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            optimizer: OptimizerConfig::adam(self.lr),
            schedule: if self.cosine {
                LrSchedule::Cosine {
                    epochs: self.epochs,
                    min_lr: 0.0,
                }
            } else {
                LrSchedule::Constant
            },
            ..TrainConfig::default()
        }
    }

    /// Name of the checkpoint directory: a different recipe never resumes another's checkpoint.
    fn tag(&self) -> String {
        format!(
            "n{}-lr{}{}{}{}",
            self.images,
            self.lr,
            if self.cosine { "-cos" } else { "" },
            if self.batch_norm { "" } else { "-nobn" },
            self.augment
                .map(|a| format!("-aug-{}", a.tag()))
                .unwrap_or_default()
        )
    }

    fn label(&self) -> String {
        format!(
            "{}Adam {}{}, batch 64, {} epochs on {} images{}",
            if self.batch_norm {
                ""
            } else {
                "no batch norm; "
            },
            self.lr,
            if self.cosine { " cosine-decayed" } else { "" },
            self.epochs,
            self.images,
            match self.augment {
                Some(Augmentation::LinfShift { max_eps, fraction }) => format!(
                    ", {:.0} % of each batch shifted by δ·(±1 signs or ±1 brightness), δ ~ U[0, {max_eps}]",
                    100.0 * fraction
                ),
                Some(Augmentation::Gaussian { sigma }) =>
                    format!(", Gaussian input noise σ = {sigma}"),
                Some(other) => format!(", augmentation {other:?}"),
                None => String::new(),
            }
        )
    }
}

struct Plan {
    datasets: Vec<DatasetName>,
    /// Training recipe per architecture (LeNet, VGG-small, ResNet-small).
    train: [Recipe; 3],
    eval_images: usize,
    build_images: usize,
    power_iters: usize,
    /// Layers of the sweep per architecture.
    layers: [&'static [&'static str]; 3],
    /// q of the layer sweep, and the extra q values tried at every layer on the first data set.
    layer_q: f64,
    extra_q: Vec<f64>,
    /// The extra q values are tried at this many of the last layers of each sweep.
    extra_q_layers: usize,
    /// Held-out images for the FGSM reference and for the defences (the first of the eval set).
    fgsm_images: usize,
    defence_images: usize,
    eps_grid: Vec<f64>,
    eps_ref: f64,
    uap_images: usize,
    uap_passes: usize,
    uap_chunk: usize,
    upgd_images: usize,
    upgd_steps: usize,
    upgd_batch: usize,
    deepfool_images: usize,
    random_seeds: u64,
    noise_sigma: f64,
    noise_epochs: usize,
    /// Substitute-attack settings: (seed images, rounds, epochs per round).
    substitute: Vec<(usize, usize, usize)>,
}

fn plan(profile: Profile) -> Plan {
    let layers: [&'static [&'static str]; 3] = [
        &["conv1", "pool1", "pool2", "fc1", "logits"],
        &["block1_pool", "block2_pool", "block3_pool", "fc1", "logits"],
        &["stem", "stage1", "stage2", "stage3", "logits"],
    ];
    let eps_grid = vec![10.0 / 255.0, 0.05, 0.1, 0.15, 0.2, 0.3];
    match profile {
        Profile::Smoke => Plan {
            datasets: vec![DatasetName::FashionMnist, DatasetName::Mnist],
            train: [
                Recipe::constant(500, 1),
                Recipe::constant(300, 1),
                Recipe::constant(300, 1).resnet_variant(),
            ],
            eval_images: 200,
            build_images: 16,
            power_iters: 3,
            layers: [
                &["pool2", "logits"],
                &["block2_pool", "logits"],
                &["stage2", "logits"],
            ],
            layer_q: 5.0,
            extra_q: vec![],
            extra_q_layers: 0,
            fgsm_images: 100,
            defence_images: 100,
            eps_grid: vec![0.2],
            eps_ref: 0.2,
            uap_images: 20,
            uap_passes: 1,
            uap_chunk: 20,
            upgd_images: 128,
            upgd_steps: 5,
            upgd_batch: 64,
            deepfool_images: 20,
            random_seeds: 1,
            noise_sigma: 0.2,
            noise_epochs: 1,
            substitute: vec![(50, 2, 1)],
        },
        Profile::Quick => Plan {
            datasets: vec![DatasetName::FashionMnist, DatasetName::Mnist],
            // ResNet-small (batch norm) needs a larger, decaying rate and more steps: with Adam 1e-3 for 2
            // epochs on 2,000 images it reached only 66–70 % test accuracy.
            train: [
                Recipe::constant(6000, 2),
                Recipe::constant(2000, 2),
                Recipe::decaying(5000, 3, 3e-3).resnet_variant(),
            ],
            eval_images: 500,
            build_images: 64,
            power_iters: 20,
            layers,
            layer_q: 5.0,
            extra_q: vec![2.0, 10.0],
            extra_q_layers: 2,
            fgsm_images: 250,
            defence_images: 250,
            eps_grid,
            eps_ref: 0.2,
            uap_images: 200,
            uap_passes: 2,
            uap_chunk: 32,
            upgd_images: 2000,
            upgd_steps: 60,
            upgd_batch: 64,
            deepfool_images: 100,
            random_seeds: 2,
            noise_sigma: 0.2,
            noise_epochs: 2,
            // The paper's / cleverhans tutorial's setting (150 seeds, ρ_max = 6), and the reduced run
            // of cleverhans' old test (1,000 seeds, no augmentation, 6 epochs) that the spec quotes.
            substitute: vec![(150, 6, 10), (1000, 1, 6)],
        },
        Profile::Full => Plan {
            datasets: vec![DatasetName::FashionMnist, DatasetName::Mnist],
            train: [
                Recipe::constant(60000, 5),
                Recipe::constant(60000, 5),
                Recipe::decaying(60000, 5, 3e-3).resnet_variant(),
            ],
            eval_images: 10000,
            build_images: 64,
            power_iters: 30,
            layers,
            layer_q: 5.0,
            extra_q: vec![2.0, 10.0],
            extra_q_layers: 2,
            fgsm_images: 2000,
            defence_images: 2000,
            eps_grid,
            eps_ref: 0.2,
            uap_images: 2000,
            uap_passes: 6,
            uap_chunk: 1,
            upgd_images: 10000,
            upgd_steps: 300,
            upgd_batch: 128,
            deepfool_images: 1000,
            random_seeds: 5,
            noise_sigma: 0.2,
            noise_epochs: 5,
            substitute: vec![(150, 6, 10), (1000, 1, 6)],
        },
    }
}

/// One (layer, q) singular vector of a model and its fooling rates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SvRecord {
    layer: String,
    q: f64,
    singular_value: f64,
    iterations: usize,
    converged: bool,
    seconds: f64,
    /// Sign chosen by the fooling rate on the 64 build images at ε_ref (v and −v have the same σ).
    sign: f64,
    build_fooling: f64,
    /// Fooling rate at ε_ref on the held-out images, clipped.
    fooling_ref: f64,
    /// (ε, fooling rate on the held-out images, clipped) over the ε grid — for the selected vector only.
    fooling: Vec<(f64, f64)>,
    fooling_unclipped_ref: f64,
}

/// One trained model and the results of every attack on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    dataset: String,
    arch: String,
    train_images: usize,
    epochs: usize,
    test_accuracy: f64,
    train_seconds: f64,
    sv: Vec<SvRecord>,
    /// Index into `sv` of the perturbation used for transfer and defences.
    best_sv: usize,
    random: Vec<(f64, f64)>,
    /// Fooling rate at ε_ref of the constant perturbation +ε_ref/2 (clipped).
    shift_fooling: f64,
    fgsm: Vec<(f64, f64)>,
    uap_xi: f64,
    uap_fooling_on_x: f64,
    uap_fooling: f64,
    uap_fooling_unclipped: f64,
    uap_passes: Vec<(usize, f64)>,
    uap_seconds: f64,
    upgd_fooling: f64,
    upgd_fooling_unclipped: f64,
    upgd_seconds: f64,
    deepfool_correct: usize,
    deepfool_fooled_fraction: f64,
    deepfool_median_l2: f64,
    deepfool_median_linf: f64,
    deepfool_rho: f64,
    deepfool_mean_iterations: f64,
    deepfool_seconds: f64,
    /// Wall seconds of the random-noise and FGSM evaluations over the ε grid.
    baseline_seconds: f64,
    /// Spearman rank correlation of σ and fooling at ε_ref over the layer sweep (q = layer_q).
    sigma_fooling_spearman: f64,
}

/// A trained model and the unit-norm perturbations computed for it.
struct Trained {
    net: Net,
    sv: Vec<Tensor>,
    uap: Tensor,
    upgd: Tensor,
    record: ModelRecord,
}

/// One model's accuracies under one input-transform defence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DefenceRow {
    dataset: String,
    arch: String,
    defence: String,
    clean_accuracy: f64,
    sv_accuracy: f64,
    upgd_accuracy: f64,
    random_accuracy: f64,
}

/// The typed `details` of the experiment's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UniversalPerturbationsDetails {
    /// Every trained model and its attacks, data set by data set.
    pub models: Vec<ModelRecord>,
    /// The transfer tables at ε_ref, one per data set.
    pub transfer: Vec<TransferTable>,
    /// Accuracies under the input-transform defences (first data set).
    pub defences: Vec<DefenceRow>,
    /// Gaussian-noise training of LeNet (first data set); `null` if not run.
    pub noise_training: Option<NoiseTraining>,
    /// The Papernot substitute attacks; `null` if not run.
    pub substitute: Option<SubstituteAttacks>,
    /// The ℓ∞ budgets ε of the fooling-rate curves.
    pub eps_grid: Vec<f64>,
    /// The reference budget ε of the tables.
    pub eps_ref: f64,
    /// Wall seconds of each phase, in the order run.
    pub phase_seconds: Vec<(String, f64)>,
}

/// Transfer tables of one data set at ε_ref: rows = source network, columns = target network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferTable {
    /// The data set's label.
    pub dataset: String,
    /// The ℓ∞ budget of the perturbations.
    pub eps: f64,
    /// The networks, in row and column order.
    pub archs: Vec<String>,
    /// Fooling rates of each source's best SV-UAP on each target.
    pub sv_uap: Vec<Vec<f64>>,
    /// Fooling rates of each source's universal PGD perturbation on each target.
    pub universal_pgd: Vec<Vec<f64>>,
}

/// Gaussian-noise training of LeNet and the white-box attacks on it, beside the undefended model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoiseTraining {
    /// Standard deviation of the training noise.
    pub sigma: f64,
    /// Training epochs.
    pub epochs: usize,
    /// Wall seconds of the training.
    pub train_seconds: f64,
    /// Clean test accuracy of the noise-trained model.
    pub clean_accuracy: f64,
    /// Clean test accuracy of the undefended model.
    pub undefended_clean_accuracy: f64,
    /// Layer of the SV-UAP.
    pub sv_layer: String,
    /// q of the SV-UAP.
    pub sv_q: f64,
    /// Fooling rate of the SV-UAP rebuilt on the noise-trained model.
    pub sv_fooling: f64,
    /// Fooling rate of the undefended model's SV-UAP on it.
    pub undefended_sv_fooling: f64,
    /// Fooling rate of universal PGD rebuilt on the noise-trained model.
    pub upgd_fooling: f64,
    /// Fooling rate of universal PGD on the undefended model.
    pub undefended_upgd_fooling: f64,
    /// Accuracy of the noise-trained model under its universal PGD perturbation.
    pub upgd_accuracy: Option<f64>,
}

/// The substitute black-box attacks on one data set's LeNet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubstituteAttacks {
    /// The data set's label.
    pub dataset: String,
    /// One entry per planned setting that had seed images.
    pub runs: Vec<SubstituteRun>,
}

/// One setting of the substitute attack and its report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubstituteRun {
    /// Seed images labelled by the oracle.
    pub seed_images: usize,
    /// Jacobian augmentation rounds.
    pub rounds: usize,
    /// Substitute training epochs per round.
    pub epochs: usize,
    /// Jacobian augmentation step λ.
    pub lambda: f64,
    /// Wall seconds of the attack.
    pub seconds: f64,
    /// The attack's outcome.
    pub report: SubstituteReport,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn train_model(
    ctx: &Context,
    ds_label: &str,
    kind: ModelKind,
    train_set: &Dataset,
    test: &Dataset,
    recipe: &Recipe,
    sigma: Option<f64>,
) -> Result<(Net, Box<dyn Classifier>, f64, f64)> {
    let (c, h, w) = train_set.image_shape();
    let config = ModelConfig::new(kind, InputSpec::new(c, h, w, train_set.num_classes()))
        .with_batch_norm(recipe.batch_norm);
    let (varmap, model) = new_model(&config, 0, &Device::Cpu)?;
    let tc = recipe.train_config();
    let bar = progress_bar(ctx.quiet, &format!("train {kind} on {ds_label}"));
    let started = Instant::now();
    match (sigma, recipe.augment) {
        (None, Some(aug)) => {
            // The augmented loop has no resumable checkpoint: the finished weights are cached instead.
            let dir = run_dir(ctx, &format!("{ds_label}-{kind}-{}", recipe.tag()));
            let file = dir.join("model.safetensors");
            if file.is_file() {
                nn_core::checkpoint::load_varmap(&varmap, &file)?;
            } else {
                train_with_augmentation(
                    model.as_ref(),
                    &varmap,
                    train_set,
                    None,
                    &aug,
                    &tc,
                    Some(&Bar(bar.clone())),
                )?;
                std::fs::create_dir_all(&dir)?;
                nn_core::checkpoint::save_varmap(&varmap, &file)?;
            }
        }
        (None, None) => {
            let options = TrainOptions {
                checkpoint_dir: Some(run_dir(ctx, &format!("{ds_label}-{kind}-{}", recipe.tag()))),
                progress: Some(shared_progress(&bar)),
            };
            train(model.as_ref(), &varmap, train_set, None, &tc, &options)?;
        }
        (Some(s), _) => {
            train_with_gaussian_noise(
                model.as_ref(),
                &varmap,
                train_set,
                None,
                s,
                &tc,
                Some(&Bar(bar.clone())),
            )?;
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let acc = evaluate(model.as_ref(), test, EVAL_BATCH)?.accuracy;
    let net = Net::from_nn_core(&config, &varmap)?;
    Ok((net, model, acc, seconds))
}

/// Mean fooling rate of random ±ε sign vectors over `seeds` seeds.
fn random_fooling(
    net: &Net,
    ev: &FoolingEvaluator,
    eps: f64,
    seeds: u64,
    clip: Clip,
) -> Result<f64> {
    let (c, h, w) = {
        let i = net.input();
        (i.channels, i.height, i.width)
    };
    let mut sum = 0.0;
    for s in 0..seeds {
        let v = random_perturbation(&[c, h, w], Norm::Inf, eps, 1000 + s)?;
        sum += ev.evaluate(net, &v, clip)?.fooling_rate;
    }
    Ok(sum / seeds as f64)
}

/// A trained network with its fooling evaluators: on the held-out images (with labels) and on the
/// SV-UAP build images.
struct Target<'a> {
    net: &'a Net,
    ev: FoolingEvaluator,
    build: Tensor,
    build_ev: FoolingEvaluator,
}

impl<'a> Target<'a> {
    /// Evaluators of `net` on `eval` and on the first `build_images` training images.
    fn new(p: &Plan, net: &'a Net, train_set: &Dataset, eval: &Dataset) -> Result<Self> {
        let eval_labels = eval.labels_vec()?;
        let ev = FoolingEvaluator::new(net, &eval.images, Some(&eval_labels))?;
        let build = train_set
            .images
            .narrow(0, 0, p.build_images.min(train_set.len()))?;
        let build_ev = FoolingEvaluator::new(net, &build, None)?;
        Ok(Self {
            net,
            ev,
            build,
            build_ev,
        })
    }
}

/// Random-sign, FGSM and constant-shift references of one model.
struct Baselines {
    random: Vec<(f64, f64)>,
    fgsm: Vec<(f64, f64)>,
    shift_fooling: f64,
    seconds: f64,
}

/// Per-image DeepFool on the correctly classified held-out images of one model.
struct DeepFoolSummary {
    correct: usize,
    fooled_fraction: f64,
    median_l2: f64,
    median_linf: f64,
    rho: f64,
    mean_iterations: f64,
    seconds: f64,
}

/// (layer, q) pairs of the SV-UAP sweep: `layer_q` at every layer, and `extra_q` too at the last
/// `extra_q_layers` layers.
fn sv_uap_runs(p: &Plan, layers: &[&'static str], extra_q: &[f64]) -> Vec<(&'static str, f64)> {
    layers
        .iter()
        .enumerate()
        .flat_map(|(i, &layer)| {
            let extra: &[f64] = if i + p.extra_q_layers >= layers.len() {
                extra_q
            } else {
                &[]
            };
            std::iter::once((layer, p.layer_q)).chain(extra.iter().map(move |&q| (layer, q)))
        })
        .collect()
}

/// One SV-UAP of `layer` at `q`, its sign chosen on the build images: its record and signed unit vector.
fn sv_uap_at(p: &Plan, tg: &Target, layer: &str, q: f64) -> Result<(SvRecord, Tensor)> {
    let clip = Clip::default();
    let net = tg.net;
    let t = Instant::now();
    let cfg = PowerConfig {
        p: Norm::Inf,
        q: Norm::L(q),
        max_iter: p.power_iters,
        ..PowerConfig::default()
    };
    let r = sv_uap(net, &tg.build, layer, &cfg)?;
    let seconds = t.elapsed().as_secs_f64();
    let unit = r.vector.to_tensor(&Device::Cpu)?;
    let plus = tg
        .build_ev
        .evaluate(net, &unit.affine(p.eps_ref, 0.0)?, clip)?
        .fooling_rate;
    let minus = tg
        .build_ev
        .evaluate(net, &unit.affine(-p.eps_ref, 0.0)?, clip)?
        .fooling_rate;
    let (sign, build_fooling) = if minus > plus {
        (-1.0, minus)
    } else {
        (1.0, plus)
    };
    let unit = unit.affine(sign, 0.0)?;
    let fooling_ref = tg
        .ev
        .evaluate(net, &unit.affine(p.eps_ref, 0.0)?, clip)?
        .fooling_rate;
    let fooling_unclipped_ref = tg
        .ev
        .evaluate(net, &unit.affine(p.eps_ref, 0.0)?, Clip::None)?
        .fooling_rate;
    let record = SvRecord {
        layer: layer.to_string(),
        q,
        singular_value: r.singular_value,
        iterations: r.iterations,
        converged: r.converged,
        seconds,
        sign,
        build_fooling,
        fooling_ref,
        fooling: Vec::new(),
        fooling_unclipped_ref,
    };
    Ok((record, unit))
}

/// The SV-UAP sweep over `runs`, in order: the records and the signed unit vectors.
fn sv_uap_sweep(
    ctx: &Context,
    p: &Plan,
    who: &str,
    tg: &Target,
    runs: &[(&str, f64)],
) -> Result<(Vec<SvRecord>, Vec<Tensor>)> {
    let mut sv_records = Vec::new();
    let mut sv_vectors = Vec::new();
    let bar = progress_bar(ctx.quiet, &format!("SV-UAP {who}"));
    bar.set_length(runs.len() as u64);
    for &(layer, q) in runs {
        let (record, unit) = sv_uap_at(p, tg, layer, q)?;
        sv_records.push(record);
        sv_vectors.push(unit);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((sv_records, sv_vectors))
}

/// Picks the SV-UAP for transfer and defences and fills its fooling over the ε grid; returns its index
/// and the Spearman correlation of σ and fooling at ε_ref over the layer sweep.
fn select_best_sv(
    p: &Plan,
    tg: &Target,
    sv_records: &mut [SvRecord],
    sv_vectors: &[Tensor],
) -> Result<(usize, f64)> {
    // The perturbation for transfer and defences: best fooling on the 64 build images (not the test set).
    let best_sv = (0..sv_records.len())
        .max_by(|&a, &b| {
            sv_records[a]
                .build_fooling
                .total_cmp(&sv_records[b].build_fooling)
        })
        .unwrap_or(0);
    let mut fooling = Vec::new();
    for &eps in &p.eps_grid {
        let v = sv_vectors[best_sv].affine(eps, 0.0)?;
        fooling.push((
            eps,
            tg.ev.evaluate(tg.net, &v, Clip::default())?.fooling_rate,
        ));
    }
    sv_records[best_sv].fooling = fooling;
    let layer_sweep: Vec<&SvRecord> = sv_records.iter().filter(|r| r.q == p.layer_q).collect();
    let sigma_fooling_spearman = nn_core::stats::spearman(
        &layer_sweep
            .iter()
            .map(|r| r.singular_value)
            .collect::<Vec<_>>(),
        &layer_sweep
            .iter()
            .map(|r| r.fooling_ref)
            .collect::<Vec<_>>(),
    );
    Ok((best_sv, sigma_fooling_spearman))
}

/// Random ±ε signs and per-image FGSM over the ε grid, and the constant +ε_ref/2 shift.
fn baselines(p: &Plan, tg: &Target, eval: &Dataset) -> Result<Baselines> {
    let clip = Clip::default();
    let net = tg.net;
    let t = Instant::now();
    let mut random = Vec::new();
    let mut fgsm_rates = Vec::new();
    for &eps in &p.eps_grid {
        random.push((eps, random_fooling(net, &tg.ev, eps, p.random_seeds, clip)?));
        let head = eval.images.narrow(0, 0, p.fgsm_images.min(eval.len()))?;
        fgsm_rates.push((
            eps,
            fgsm_success_rate(
                net,
                &head,
                &FgsmConfig {
                    eps,
                    ..FgsmConfig::default()
                },
                EVAL_BATCH,
            )?,
        ));
    }
    // Diagnostic: a constant brightness shift of +ε/2, the mean that clipping leaves of random ±ε signs
    // on a black background.
    let (c, h, w) = eval.image_shape();
    let shift = Tensor::full((p.eps_ref / 2.0) as f32, (c, h, w), &Device::Cpu)?;
    let shift_fooling = tg.ev.evaluate(net, &shift, clip)?.fooling_rate;
    Ok(Baselines {
        random,
        fgsm: fgsm_rates,
        shift_fooling,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// UAP (Moosavi-Dezfooli et al.) at ξ = ε_ref: the result, its perturbation and wall seconds.
fn uap_attack(
    ctx: &Context,
    p: &Plan,
    who: &str,
    net: &Net,
    train_set: &Dataset,
) -> Result<(UapResult, Tensor, f64)> {
    let t = Instant::now();
    let uap_x = train_set
        .images
        .narrow(0, 0, p.uap_images.min(train_set.len()))?;
    let bar = progress_bar(ctx.quiet, &format!("UAP {who}"));
    let uap_cfg = UapConfig {
        xi: p.eps_ref,
        max_passes: p.uap_passes,
        chunk: p.uap_chunk,
        ..UapConfig::default()
    };
    let uap = universal_perturbation(net, &uap_x, &uap_cfg, Some(&Bar(bar.clone())))?;
    bar.finish_and_clear();
    let uap_seconds = t.elapsed().as_secs_f64();
    let uap_v = uap.perturbation.to_tensor(&Device::Cpu)?;
    Ok((uap, uap_v, uap_seconds))
}

/// Universal PGD settings at ε_ref.
fn upgd_config(p: &Plan) -> UniversalPgdConfig {
    UniversalPgdConfig {
        eps: p.eps_ref,
        steps: p.upgd_steps,
        batch_size: p.upgd_batch,
        ..UniversalPgdConfig::default()
    }
}

/// Universal PGD at ε_ref: its perturbation and wall seconds.
fn universal_pgd_attack(
    ctx: &Context,
    p: &Plan,
    who: &str,
    net: &Net,
    train_set: &Dataset,
) -> Result<(Tensor, f64)> {
    let t = Instant::now();
    let upgd_x = train_set
        .images
        .narrow(0, 0, p.upgd_images.min(train_set.len()))?;
    let bar = progress_bar(ctx.quiet, &format!("universal PGD {who}"));
    let upgd = universal_pgd(net, &upgd_x, None, &upgd_config(p), Some(&Bar(bar.clone())))?;
    bar.finish_and_clear();
    let upgd_seconds = t.elapsed().as_secs_f64();
    let upgd_v = upgd.perturbation.to_tensor(&Device::Cpu)?;
    Ok((upgd_v, upgd_seconds))
}

/// DeepFool on the correctly classified images among the first `deepfool_images` held-out ones.
fn deepfool_reference(p: &Plan, net: &Net, eval: &Dataset) -> Result<DeepFoolSummary> {
    let t = Instant::now();
    let head = eval.take(p.deepfool_images)?;
    let pred = predict(net, &head.images, EVAL_BATCH)?;
    let truth = head.labels_vec()?;
    let correct: Vec<usize> = (0..pred.len()).filter(|&i| pred[i] == truth[i]).collect();
    let df_set = head.subset(&correct)?;
    // Chunks of 50: the candidate gradients replicate each image once per class.
    let df = deepfool_chunked(net, &df_set.images, &DeepFoolConfig::default(), 50)?;
    let deepfool_seconds = t.elapsed().as_secs_f64();
    let mut linf: Vec<f64> = df
        .images
        .iter()
        .filter(|i| i.fooled)
        .map(|i| i.linf)
        .collect();
    linf.sort_by(f64::total_cmp);
    let median_linf = linf.get(linf.len() / 2).copied().unwrap_or(f64::NAN);
    let mean_iter =
        df.images.iter().map(|i| i.iterations as f64).sum::<f64>() / df.images.len().max(1) as f64;
    Ok(DeepFoolSummary {
        correct: correct.len(),
        fooled_fraction: df.fooled_fraction,
        median_l2: df.median_l2,
        median_linf,
        rho: df.rho_adv,
        mean_iterations: mean_iter,
        seconds: deepfool_seconds,
    })
}

/// All attacks on one trained model: the SV-UAP sweep, the baselines, UAP, universal PGD and DeepFool.
#[allow(clippy::too_many_arguments)]
fn attack_model(
    ctx: &Context,
    p: &Plan,
    ds_label: &str,
    kind: ModelKind,
    net: Net,
    acc: f64,
    train_seconds: f64,
    train_set: &Dataset,
    eval: &Dataset,
    extra_q: &[f64],
) -> Result<Trained> {
    let clip = Clip::default();
    let tg = Target::new(p, &net, train_set, eval)?;
    let arch_idx = ARCHS.iter().position(|k| *k == kind).unwrap_or(0);
    let who = format!("{kind} {ds_label}");

    // SV-UAP over layers and q.
    let runs = sv_uap_runs(p, p.layers[arch_idx], extra_q);
    let (mut sv_records, sv_vectors) = sv_uap_sweep(ctx, p, &who, &tg, &runs)?;
    let (best_sv, sigma_fooling_spearman) = select_best_sv(p, &tg, &mut sv_records, &sv_vectors)?;
    let base = baselines(p, &tg, eval)?;
    let (uap, uap_v, uap_seconds) = uap_attack(ctx, p, &who, &net, train_set)?;
    let (upgd_v, upgd_seconds) = universal_pgd_attack(ctx, p, &who, &net, train_set)?;
    let df = deepfool_reference(p, &net, eval)?;

    let ev = &tg.ev;
    let record = ModelRecord {
        dataset: ds_label.to_string(),
        arch: kind.to_string(),
        train_images: train_set.len(),
        epochs: p.train[arch_idx].epochs,
        test_accuracy: acc,
        train_seconds,
        best_sv,
        sigma_fooling_spearman,
        random: base.random,
        shift_fooling: base.shift_fooling,
        fgsm: base.fgsm,
        uap_xi: p.eps_ref,
        uap_fooling_on_x: uap.best_fooling_rate,
        uap_fooling: ev.evaluate(&net, &uap_v, clip)?.fooling_rate,
        uap_fooling_unclipped: ev.evaluate(&net, &uap_v, Clip::None)?.fooling_rate,
        uap_passes: uap
            .history
            .iter()
            .map(|h| (h.pass, h.fooling_rate))
            .collect(),
        uap_seconds,
        upgd_fooling: ev.evaluate(&net, &upgd_v, clip)?.fooling_rate,
        upgd_fooling_unclipped: ev.evaluate(&net, &upgd_v, Clip::None)?.fooling_rate,
        upgd_seconds,
        deepfool_correct: df.correct,
        deepfool_fooled_fraction: df.fooled_fraction,
        deepfool_median_l2: df.median_l2,
        deepfool_median_linf: df.median_linf,
        deepfool_rho: df.rho,
        deepfool_mean_iterations: df.mean_iterations,
        deepfool_seconds: df.seconds,
        baseline_seconds: base.seconds,
        sv: sv_records,
    };
    Ok(Trained {
        net,
        sv: sv_vectors,
        uap: uap_v,
        upgd: upgd_v,
        record,
    })
}

/// `[N, C, H, W]` display of perturbations: 0.5 + v/(2ε) (grey = 0).
fn display(vs: &[Tensor], eps: f64) -> Result<Tensor> {
    let shown: Vec<Tensor> = vs
        .iter()
        .map(|v| v.affine(0.5 / eps.max(1e-12), 0.5)?.clamp(0.0, 1.0))
        .collect::<candle_core::Result<_>>()?;
    Ok(Tensor::stack(&shown, 0)?)
}

/// Wall seconds of the experiment's phases, each measured from the end of the previous one.
struct PhaseClock {
    phases: Vec<(String, f64)>,
    clock: Instant,
}

impl PhaseClock {
    /// A clock whose first phase starts now.
    fn start() -> Self {
        Self {
            phases: Vec::new(),
            clock: Instant::now(),
        }
    }

    /// Ends the current phase as `label` and starts the next.
    fn mark(&mut self, label: String) {
        let secs = self.clock.elapsed().as_secs_f64();
        tracing::info!(phase = %label, secs, "phase done");
        self.phases.push((label, secs));
        self.clock = Instant::now();
    }
}

/// What the data sets contribute to the result, in the order they were run.
struct Collected {
    records: Vec<ModelRecord>,
    transfer: Vec<TransferTable>,
    defence_rows: Vec<DefenceRow>,
    figures: Vec<Figure>,
    rows: Vec<Row>,
    provenances: Vec<&'static str>,
    noise_training: Option<NoiseTraining>,
    substitute: Option<SubstituteAttacks>,
    clock: PhaseClock,
}

impl Collected {
    /// Nothing collected yet; the phase clock starts now.
    fn start() -> Self {
        Self {
            records: Vec::new(),
            transfer: Vec::new(),
            defence_rows: Vec::new(),
            figures: Vec::new(),
            rows: Vec::new(),
            provenances: Vec::new(),
            noise_training: None,
            substitute: None,
            clock: PhaseClock::start(),
        }
    }
}

/// Trains and attacks the three architectures on data set number `d`, marking one phase per network.
fn train_and_attack_all(
    ctx: &Context,
    p: &Plan,
    d: usize,
    ds_label: &str,
    train_full: &Dataset,
    eval: &Dataset,
    clock: &mut PhaseClock,
) -> Result<Vec<Trained>> {
    let mut trained: Vec<Trained> = Vec::new();
    for (a, &kind) in ARCHS.iter().enumerate() {
        let train_set = train_full.take(p.train[a].images)?;
        let (net, _model, acc, secs) =
            train_model(ctx, ds_label, kind, &train_set, eval, &p.train[a], None)?;
        let extra: &[f64] = if d == 0 { &p.extra_q } else { &[] };
        let t = attack_model(
            ctx, p, ds_label, kind, net, acc, secs, &train_set, eval, extra,
        )?;
        clock.mark(format!("{ds_label} {kind}: training and attacks"));
        trained.push(t);
    }
    Ok(trained)
}

/// Transfer tables at ε_ref: rows = source (perturbation built on), columns = target; the JSON record and
/// one row per source network.
fn transfer_tables(
    p: &Plan,
    ds_label: &str,
    provenance: &str,
    trained: &[Trained],
    eval: &Dataset,
) -> Result<(TransferTable, Vec<Row>)> {
    let clip = Clip::default();
    let evs: Vec<FoolingEvaluator> = trained
        .iter()
        .map(|t| FoolingEvaluator::new(&t.net, &eval.images, None))
        .collect::<adversarial::Result<_>>()?;
    let mut table_sv = vec![vec![0.0; 3]; 3];
    let mut table_upgd = vec![vec![0.0; 3]; 3];
    for (s, src) in trained.iter().enumerate() {
        let v_sv = src.sv[src.record.best_sv].affine(p.eps_ref, 0.0)?;
        for (t, tgt) in trained.iter().enumerate() {
            table_sv[s][t] = evs[t].evaluate(&tgt.net, &v_sv, clip)?.fooling_rate;
            table_upgd[s][t] = evs[t].evaluate(&tgt.net, &src.upgd, clip)?.fooling_rate;
        }
    }
    let mut rows = Vec::new();
    for s in 0..3 {
        rows.push(Row {
            quantity: format!(
                "{ds_label}: SV-UAP transfer from {} to [lenet, vgg-small, resnet-small], ε = {}",
                ARCHS[s], p.eps_ref
            ),
            paper: format!(
                "{} → [VGG-16, VGG-19, ResNet50]: {}",
                PAPER_NETS[s],
                PAPER_TRANSFER[s].map(pct).join(", ")
            ),
            ours: table_sv[s]
                .iter()
                .map(|&x| pct(x))
                .collect::<Vec<_>>()
                .join(", "),
            note: format!(
                "{provenance}; paper: ImageNet, ε = 10/255; universal PGD row: {}",
                table_upgd[s]
                    .iter()
                    .map(|&x| pct(x))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let table = TransferTable {
        dataset: ds_label.to_string(),
        eps: p.eps_ref,
        archs: ARCHS.iter().map(|k| k.to_string()).collect(),
        sv_uap: table_sv,
        universal_pgd: table_upgd,
    };
    Ok((table, rows))
}

/// Figure: fooling rate against ε of each network's best SV-UAP and of random ±ε signs.
fn fooling_vs_eps_figure(ctx: &Context, ds_label: &str, trained: &[Trained]) -> Result<Figure> {
    let mut series = Vec::new();
    for t in trained {
        let r = &t.record;
        let b = &r.sv[r.best_sv];
        series.push(Series {
            name: format!("{} SV-UAP {} q={}", r.arch, b.layer, b.q),
            points: b.fooling.clone(),
        });
        series.push(Series {
            name: format!("{} random ±ε", r.arch),
            points: r.random.clone(),
        });
    }
    let fig = format!("fooling_vs_eps_{ds_label}.svg");
    curve_chart(
        &ctx.out.join(&fig),
        &format!("{ds_label}: fooling rate vs ℓ∞ ε (held-out, clipped)"),
        "ε (ℓ∞, [0, 1] pixels)",
        "fooling rate",
        &series,
    )?;
    Ok(Figure::new(
        fig,
        format!(
            "{ds_label}: share of held-out images whose predicted class changes under the perturbation, against its ℓ∞ budget ε — for each network the best SV-UAP layer and random ±ε signs of the same norm."
        ),
    ))
}

/// Figure: each layer's (∞, q)-singular value against the fooling rate of its SV-UAP at ε_ref.
fn sigma_vs_fooling_figure(
    ctx: &Context,
    p: &Plan,
    ds_label: &str,
    trained: &[Trained],
) -> Result<Figure> {
    let scatter: Vec<Series> = trained
        .iter()
        .map(|t| Series {
            name: t.record.arch.clone(),
            points: t
                .record
                .sv
                .iter()
                .filter(|s| s.q == p.layer_q)
                .map(|s| (s.singular_value.max(1e-30).log10(), s.fooling_ref))
                .collect(),
        })
        .collect();
    let fig = format!("sigma_vs_fooling_{ds_label}.svg");
    scatter_chart(
        &ctx.out.join(&fig),
        &format!(
            "{ds_label}: (∞,{})-singular value vs fooling at ε = {}, one point per layer",
            p.layer_q, p.eps_ref
        ),
        "log10 σ (stacked Jacobian of the layer, 64 images)",
        "fooling rate",
        &scatter,
    )?;
    Ok(Figure::new(
        fig,
        format!(
            "{ds_label}: the (∞,{})-singular value of each hidden layer's stacked Jacobian against the fooling rate of its SV-UAP at ε = {} (one point per layer and network).",
            p.layer_q, p.eps_ref
        ),
    ))
}

/// Figure: the perturbations themselves, one row per network (SV-UAP per layer, UAP, universal PGD).
fn perturbations_figure(
    ctx: &Context,
    p: &Plan,
    ds_label: &str,
    trained: &[Trained],
) -> Result<Figure> {
    let mut tiles = Vec::new();
    for t in trained {
        for (i, s) in t.record.sv.iter().enumerate() {
            if s.q == p.layer_q {
                tiles.push(t.sv[i].affine(p.eps_ref, 0.0)?);
            }
        }
        tiles.push(t.uap.clone());
        tiles.push(t.upgd.clone());
    }
    let ncols = p.layers[0].len() + 2;
    let fig = format!("perturbations_{ds_label}.png");
    // Rows: LeNet, VGG-small, ResNet-small; columns: SV-UAP per layer (q = layer_q), UAP, universal
    // PGD; grey = 0, white = +ε, black = −ε; enlarged ×4.
    let grid = nn_core::layers::upsample_nearest2d(&display(&tiles, p.eps_ref)?, 4)?;
    let mut cols: Vec<String> = (1..=ncols - 2).map(|k| format!("SV-UAP L{k}")).collect();
    cols.extend(["UAP".to_string(), "universal PGD".to_string()]);
    let row_captions: Vec<String> = trained
        .iter()
        .map(|t| {
            let layers: Vec<&str> = t
                .record
                .sv
                .iter()
                .filter(|s| s.q == p.layer_q)
                .map(|s| s.layer.as_str())
                .collect();
            format!("{} (L: {})", t.record.arch, layers.join(", "))
        })
        .collect();
    let captions = Captions {
        title: format!(
            "{ds_label}: perturbations at ε = {}, SV-UAP q = {} (grey 0, white +ε, black −ε)",
            p.eps_ref, p.layer_q
        ),
        rows: row_captions,
        cols,
    };
    save_captioned_grid(&grid, ncols, &captions, &ctx.out.join(&fig))?;
    Ok(Figure::new(
        fig,
        format!(
            "{}. Rows: the network the perturbation was computed on; columns: SV-UAP of each layer, UAP, universal PGD.",
            captions.title
        ),
    ))
}

/// Figure: eight held-out images without and with LeNet's best SV-UAP.
fn examples_figure(
    ctx: &Context,
    p: &Plan,
    ds_label: &str,
    trained: &[Trained],
    eval: &Dataset,
) -> Result<Figure> {
    let examples = eval.images.narrow(0, 8, 8)?;
    let best = &trained[0];
    let best_sv = &best.record.sv[best.record.best_sv];
    let v = best.sv[best.record.best_sv].affine(p.eps_ref, 0.0)?;
    let perturbed = Clip::default().apply(&examples.broadcast_add(&v)?)?;
    let fig = format!("examples_{ds_label}.png");
    let grid = Tensor::cat(&[&examples, &perturbed], 0)?;
    let captions = Captions {
        title: format!(
            "{ds_label}, {}: held-out images without and with the SV-UAP of layer {} (q = {}, ε = {})",
            best.record.arch, best_sv.layer, best_sv.q, p.eps_ref
        ),
        rows: vec!["clean".into(), "+ SV-UAP".into()],
        cols: (9..=16).map(|k| format!("test #{k}")).collect(),
    };
    save_captioned_grid(&grid, 8, &captions, &ctx.out.join(&fig))?;
    Ok(Figure::new(fig, format!("{}.", captions.title)))
}

/// The data set's figures: fooling vs ε; σ vs fooling; perturbation pictures.
fn dataset_figures(
    ctx: &Context,
    p: &Plan,
    ds_label: &str,
    trained: &[Trained],
    eval: &Dataset,
) -> Result<Vec<Figure>> {
    Ok(vec![
        fooling_vs_eps_figure(ctx, ds_label, trained)?,
        sigma_vs_fooling_figure(ctx, p, ds_label, trained)?,
        perturbations_figure(ctx, p, ds_label, trained)?,
        examples_figure(ctx, p, ds_label, trained, eval)?,
    ])
}

/// Input-transform defences (non-adaptive: perturbations built on the bare model): accuracy of each
/// network under each transform, clean and with its SV-UAP, universal PGD and random signs.
fn input_transform_defences(
    p: &Plan,
    ds_label: &str,
    trained: &[Trained],
    eval: &Dataset,
) -> Result<Vec<DefenceRow>> {
    let clip = Clip::default();
    let mut defence_rows = Vec::new();
    let dset = eval.take(p.defence_images)?;
    let labels = dset.labels_vec()?;
    let (c, h, w) = eval.image_shape();
    let rand_v = random_perturbation(&[c, h, w], Norm::Inf, p.eps_ref, 7)?;
    let transforms = [
        None,
        Some(InputTransform::BitDepth { bits: 2 }),
        Some(InputTransform::Median { window: 3 }),
        Some(InputTransform::Jpeg { quality: 50 }),
        Some(InputTransform::GaussianNoise {
            sigma: 0.1,
            seed: 3,
        }),
    ];
    for t in trained {
        let sv_v = t.sv[t.record.best_sv].affine(p.eps_ref, 0.0)?;
        for tr in transforms {
            let on = |v: Option<&Tensor>| -> Result<f64> {
                let x = match v {
                    Some(v) => clip.apply(&dset.images.broadcast_add(v)?)?,
                    None => dset.images.clone(),
                };
                Ok(match tr {
                    None => accuracy(&t.net, &x, &labels)?,
                    Some(tr) => accuracy(
                        &Defended {
                            model: &t.net,
                            transform: tr,
                        },
                        &x,
                        &labels,
                    )?,
                })
            };
            defence_rows.push(DefenceRow {
                dataset: ds_label.to_string(),
                arch: t.record.arch.clone(),
                defence: tr.map(|t| t.label()).unwrap_or_else(|| "none".into()),
                clean_accuracy: on(None)?,
                sv_accuracy: on(Some(&sv_v))?,
                upgd_accuracy: on(Some(&t.upgd))?,
                random_accuracy: on(Some(&rand_v))?,
            });
        }
    }
    Ok(defence_rows)
}

/// White-box attacks on the noise-trained LeNet: SV-UAP of `best`'s layer and q (sign chosen on the
/// build images) and universal PGD, both at ε_ref on the held-out images.
fn attack_noisy_net(
    p: &Plan,
    noisy_net: &Net,
    best: &SvRecord,
    train_set: &Dataset,
    eval: &Dataset,
) -> Result<(FoolingReport, FoolingReport)> {
    let clip = Clip::default();
    let eval_labels = eval.labels_vec()?;
    let ev = FoolingEvaluator::new(noisy_net, &eval.images, Some(&eval_labels))?;
    let build = train_set.images.narrow(0, 0, p.build_images)?;
    let r = sv_uap(
        noisy_net,
        &build,
        &best.layer,
        &PowerConfig {
            q: Norm::L(best.q),
            max_iter: p.power_iters,
            ..PowerConfig::default()
        },
    )?;
    let unit = r.vector.to_tensor(&Device::Cpu)?;
    let bev = FoolingEvaluator::new(noisy_net, &build, None)?;
    let plus = bev
        .evaluate(noisy_net, &unit.affine(p.eps_ref, 0.0)?, clip)?
        .fooling_rate;
    let minus = bev
        .evaluate(noisy_net, &unit.affine(-p.eps_ref, 0.0)?, clip)?
        .fooling_rate;
    let unit = if minus > plus { unit.neg()? } else { unit };
    let sv_rep = ev.evaluate(noisy_net, &unit.affine(p.eps_ref, 0.0)?, clip)?;
    let upgd = universal_pgd(
        noisy_net,
        &train_set
            .images
            .narrow(0, 0, p.upgd_images.min(train_set.len()))?,
        None,
        &upgd_config(p),
        None,
    )?;
    let upgd_rep = ev.evaluate(noisy_net, &upgd.perturbation.to_tensor(&Device::Cpu)?, clip)?;
    Ok((sv_rep, upgd_rep))
}

/// Gaussian-noise training of LeNet; white-box SV-UAP (same layer and q) and universal PGD: the JSON
/// record and its row.
fn gaussian_noise_training(
    ctx: &Context,
    p: &Plan,
    ds_label: &str,
    train_full: &Dataset,
    eval: &Dataset,
    lenet: &ModelRecord,
) -> Result<(NoiseTraining, Row)> {
    let best = &lenet.sv[lenet.best_sv];
    let train_set = train_full.take(p.train[0].images)?;
    let (noisy_net, _m, acc, secs) = train_model(
        ctx,
        ds_label,
        ModelKind::Lenet,
        &train_set,
        eval,
        &Recipe {
            epochs: p.noise_epochs,
            ..p.train[0]
        },
        Some(p.noise_sigma),
    )?;
    let (sv_rep, upgd_rep) = attack_noisy_net(p, &noisy_net, best, &train_set, eval)?;
    let base_ref = best.fooling_ref;
    let record = NoiseTraining {
        sigma: p.noise_sigma,
        epochs: p.noise_epochs,
        train_seconds: secs,
        clean_accuracy: acc,
        undefended_clean_accuracy: lenet.test_accuracy,
        sv_layer: best.layer.clone(),
        sv_q: best.q,
        sv_fooling: sv_rep.fooling_rate,
        undefended_sv_fooling: base_ref,
        upgd_fooling: upgd_rep.fooling_rate,
        undefended_upgd_fooling: lenet.upgd_fooling,
        upgd_accuracy: upgd_rep.perturbed_accuracy,
    };
    let row = Row {
        quantity: format!(
            "{ds_label} LeNet trained with Gaussian noise σ = {}: clean acc / white-box SV-UAP / universal PGD fooling at ε = {}",
            p.noise_sigma, p.eps_ref
        ),
        paper: "spec calibration (F-MNIST CNN, σ = 0.2): 86.7% clean (vs 89.5%); universal PGD at ε = 0.2: 58.4% (vs 73.0%)".into(),
        ours: format!(
            "{} (vs {}); SV-UAP {} (vs {}); universal PGD {} (vs {})",
            pct(acc), pct(lenet.test_accuracy), pct(sv_rep.fooling_rate), pct(base_ref),
            pct(upgd_rep.fooling_rate), pct(lenet.upgd_fooling)
        ),
        note: "white-box: perturbations rebuilt on the noise-trained model".into(),
    };
    Ok((record, row))
}

/// Papernot substitute attack on `oracle` (the LeNet), in each planned setting, with seed images from the
/// test images after the evaluation set: the JSON record and one row per setting.
fn substitute_attacks(
    p: &Plan,
    ds_label: &str,
    provenance: &str,
    test: &Dataset,
    eval: &Dataset,
    oracle: &Net,
) -> Result<(SubstituteAttacks, Vec<Row>)> {
    let mut rows = Vec::new();
    let mut runs = Vec::new();
    for &(seeds, rounds, epochs) in &p.substitute {
        let held_out = test.len().saturating_sub(p.eval_images).min(seeds);
        if held_out == 0 {
            continue;
        }
        let seed_set = slice_set(test, p.eval_images, held_out)?;
        let mut sub_cfg = ModelConfig::new(ModelKind::Mlp, oracle.input());
        sub_cfg.mlp_widths = vec![200, 200];
        let cfg = SubstituteConfig {
            rounds,
            train: TrainConfig {
                epochs,
                batch_size: 32,
                ..TrainConfig::default()
            },
            ..SubstituteConfig::default()
        };
        let t = Instant::now();
        let rep = substitute_attack(oracle, &seed_set, eval, &sub_cfg, &cfg)?;
        rows.push(Row {
            quantity: format!(
                "{ds_label}: substitute black-box attack on LeNet (MLP 200-200 substitute, {held_out} seed images, {rounds} rounds of {epochs} epochs, λ = {}, FGSM ε = {})",
                cfg.lambda, cfg.fgsm_eps
            ),
            paper: "Papernot et al.: 84.24% of MetaMind's adversarial examples misclassified after 6,400 queries; cleverhans tests: oracle accuracy on transferred examples < 20% (1,000 seeds, 1 round, weak 2-epoch oracle) and < 70% (400 seeds, 2 rounds); spec: < 30%".into(),
            ours: format!(
                "oracle accuracy clean {} → transferred {} ({} queries); substitute accuracy {}",
                pct(rep.oracle_clean_accuracy), pct(rep.oracle_adversarial_accuracy),
                rep.oracle_queries, pct(rep.substitute_accuracy)
            ),
            note: format!("{provenance}; labels only from the oracle; {:.1} s", t.elapsed().as_secs_f64()),
        });
        runs.push(SubstituteRun {
            seed_images: held_out,
            rounds,
            epochs,
            lambda: cfg.lambda,
            seconds: t.elapsed().as_secs_f64(),
            report: rep,
        });
    }
    Ok((
        SubstituteAttacks {
            dataset: ds_label.to_string(),
            runs,
        },
        rows,
    ))
}

/// Everything done on data set number `d`: training and attacks, transfer tables, figures, (first data set)
/// defences and Gaussian-noise training, (MNIST) the substitute attack.
fn run_dataset(
    ctx: &Context,
    p: &Plan,
    d: usize,
    ds: DatasetName,
    out: &mut Collected,
) -> Result<()> {
    let data = load_data_or_generated(ds, ctx.data_dir.as_deref())?;
    let provenance = data.train.provenance.label();
    out.provenances.push(provenance);
    let ds_label = if data.train.provenance == Provenance::Generated {
        "generated".to_string()
    } else {
        ds.as_str().to_string()
    };
    let eval = data.test.take(p.eval_images)?;
    let trained = train_and_attack_all(ctx, p, d, &ds_label, &data.train, &eval, &mut out.clock)?;

    let (transfer, rows) = transfer_tables(p, &ds_label, provenance, &trained, &eval)?;
    out.transfer.push(transfer);
    out.rows.extend(rows);
    out.clock.mark(format!("{ds_label}: transfer tables"));

    out.figures
        .extend(dataset_figures(ctx, p, &ds_label, &trained, &eval)?);
    out.clock.mark(format!("{ds_label}: figures"));

    if d == 0 {
        out.defence_rows
            .extend(input_transform_defences(p, &ds_label, &trained, &eval)?);
        out.clock
            .mark(format!("{ds_label}: input-transform defences"));
        let (noise, row) =
            gaussian_noise_training(ctx, p, &ds_label, &data.train, &eval, &trained[0].record)?;
        out.noise_training = Some(noise);
        out.rows.push(row);
        out.clock
            .mark(format!("{ds_label}: Gaussian-noise training"));
    }

    // Papernot substitute attack on the MNIST LeNet, in each planned setting.
    if ds == DatasetName::Mnist || (d + 1 == p.datasets.len() && out.substitute.is_none()) {
        let (substitute, rows) =
            substitute_attacks(p, &ds_label, provenance, &data.test, &eval, &trained[0].net)?;
        out.substitute = Some(substitute);
        out.rows.extend(rows);
    }
    out.clock.mark(format!("{ds_label}: substitute attack"));
    out.records.extend(trained.into_iter().map(|t| t.record));
    Ok(())
}

/// The value at `eps` of an (ε, value) curve, NaN when `eps` is not on it.
fn at_eps(v: &[(f64, f64)], eps: f64) -> f64 {
    v.iter()
        .find(|(e, _)| (e - eps).abs() < 1e-12)
        .map(|x| x.1)
        .unwrap_or(f64::NAN)
}

/// Row: one model's fooling rates at ε_ref, every universal attack and the references.
fn fooling_row(p: &Plan, r: &ModelRecord) -> Row {
    let b = &r.sv[r.best_sv];
    Row {
        quantity: format!(
            "{} {} ({} train images, {} epochs, test acc {}): fooling at ℓ∞ ε = {} (clipped)",
            r.dataset,
            r.arch,
            r.train_images,
            r.epochs,
            pct(r.test_accuracy),
            p.eps_ref
        ),
        paper: "ImageNet, ε = 10/255: SV-UAP 44–60% (VGG/ResNet), UAP 78–93%, random ≈ 10%".into(),
        ours: format!(
            "SV-UAP {} ({} q={}); random {}; constant +ε/2 {}; UAP {}; universal PGD {}; FGSM (per image) {}",
            pct(at_eps(&b.fooling, p.eps_ref)),
            b.layer,
            b.q,
            pct(at_eps(&r.random, p.eps_ref)),
            pct(r.shift_fooling),
            pct(r.uap_fooling),
            pct(r.upgd_fooling),
            pct(at_eps(&r.fgsm, p.eps_ref))
        ),
        note: format!(
            "unclipped: SV-UAP {}, UAP {}, universal PGD {}{}",
            pct(b.fooling_unclipped_ref),
            pct(r.uap_fooling_unclipped),
            pct(r.upgd_fooling_unclipped),
            if p.eps_grid.iter().any(|&e| (e - 10.0 / 255.0).abs() < 1e-12) {
                format!(
                    "; at the papers' ε = 10/255: SV-UAP {} vs random {}",
                    pct(at_eps(&b.fooling, 10.0 / 255.0)),
                    pct(at_eps(&r.random, 10.0 / 255.0))
                )
            } else {
                String::new()
            }
        ),
    }
}

/// Row: one model's per-image DeepFool reference.
fn deepfool_row(r: &ModelRecord) -> Row {
    Row {
        quantity: format!(
            "{} {}: DeepFool (ℓ2, overshoot 0.02, 10 classes) on {} correctly classified test images",
            r.dataset, r.arch, r.deepfool_correct
        ),
        paper: "LeNet MNIST: ρ_adv = 0.20; flips ~100%".into(),
        ours: format!(
            "flipped {}, median ‖r‖₂ {:.3}, median ‖r‖∞ {:.3}, ρ_adv {:.3}, {:.1} iterations",
            pct(r.deepfool_fooled_fraction),
            r.deepfool_median_l2,
            r.deepfool_median_linf,
            r.deepfool_rho,
            r.deepfool_mean_iterations
        ),
        note: format!("{:.1} s", r.deepfool_seconds),
    }
}

/// Row: one model's Spearman correlation of σ and fooling over the layer sweep, with the sweep itself.
fn spearman_row(p: &Plan, r: &ModelRecord) -> Row {
    Row {
        quantity: format!(
            "{} {}: Spearman correlation of σ and fooling across {} layers (q = {})",
            r.dataset,
            r.arch,
            p.layers[ARCHS.iter().position(|k| k.as_str() == r.arch).unwrap_or(0)].len(),
            p.layer_q
        ),
        paper: "positive (VGG-19 on ImageNet)".into(),
        ours: format!("{:.2}", r.sigma_fooling_spearman),
        note: r
            .sv
            .iter()
            .filter(|s| s.q == p.layer_q)
            .map(|s| {
                format!(
                    "{} σ={:.3e} {}",
                    s.layer,
                    s.singular_value,
                    pct(s.fooling_ref)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// One row per attacked model and data set: accuracy under each input-transform defence.
fn defence_summary_rows(p: &Plan, defence_rows: &[DefenceRow]) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut seen_defended: Vec<(String, String)> = Vec::new();
    for dr in defence_rows {
        let key = (dr.dataset.clone(), dr.arch.clone());
        if seen_defended.contains(&key) {
            continue;
        }
        let of_model: Vec<&DefenceRow> = defence_rows
            .iter()
            .filter(|r| r.dataset == key.0 && r.arch == key.1)
            .collect();
        rows.push(Row {
            quantity: format!(
                "{} {}: input-transform defences (non-adaptive), accuracy clean / SV-UAP / universal PGD at ε = {} on {} test images",
                key.0, key.1, p.eps_ref, p.defence_images
            ),
            paper: "spec calibration (F-MNIST CNN, universal PGD at ε = 0.1): undefended 65.1%; 3×3 median 66.8% (clean 86.8%); 2-bit 75.9% (clean 88.8%)".into(),
            ours: of_model
                .iter()
                .map(|r| format!("{}: {} / {} / {}", r.defence, pct(r.clean_accuracy), pct(r.sv_accuracy), pct(r.upgd_accuracy)))
                .collect::<Vec<_>>()
                .join("; "),
            note: "perturbations built on the undefended model (the defences are not attacked adaptively)".into(),
        });
        seen_defended.push(key);
    }
    rows
}

/// The notes on the methods and settings of the run.
fn method_notes(p: &Plan, threads: &str) -> Vec<String> {
    vec![
        format!(
            "SV-UAP: p = ∞, q as listed, power method ≤ {} iterations on {} training images; the sign of ±v is chosen by the fooling rate on those build images; fooling rates on {} held-out test images, clipped to [0, 1] unless marked; random baseline = mean over {} seeds of random ±ε sign vectors.",
            p.power_iters, p.build_images, p.eval_images, p.random_seeds
        ),
        format!(
            "UAP: ξ = {} (ℓ∞), {} training images, ≤ {} passes, DeepFool batched in chunks of {} against the same v (chunk 1 = the exact sequential algorithm); universal PGD: {} steps of ε/10 on batches of {} from {} training images.",
            p.eps_ref, p.uap_images, p.uap_passes, p.uap_chunk, p.upgd_steps, p.upgd_batch, p.upgd_images
        ),
        format!(
            "Training (first training images, batch 64): LeNet {}; VGG-small {}; ResNet-small {}; RAYON_NUM_THREADS = {threads}.",
            p.train[0].label(), p.train[1].label(), p.train[2].label()
        ),
        "Transfer tables: rows = the network the perturbation was built on, columns = the network attacked (the UAP paper's convention). The paper's numbers are ImageNet VGG/ResNet at ε = 10/255; ours are 28×28 grey images at a larger ε, where the same ε fools far less.".into(),
    ]
}

/// Runs the experiment.
pub fn run(ctx: &Context) -> Result<ExperimentResult> {
    let p = plan(ctx.profile);
    let mut notes = Vec::new();
    if ctx.device.choice != nn_core::device::DeviceChoice::Cpu {
        let note = "runs on the CPU whatever --device says: the attacks keep perturbations on the host (issue 13)";
        if !ctx.quiet {
            eprintln!("   note: universal perturbations {note}");
        }
        notes.push(format!("This experiment {note}."));
    }
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
    let mut out = Collected::start();
    for (d, &ds) in p.datasets.iter().enumerate() {
        run_dataset(ctx, &p, d, ds, &mut out)?;
    }

    let mut rows = out.rows;
    for r in &out.records {
        rows.extend([fooling_row(&p, r), deepfool_row(r), spearman_row(&p, r)]);
    }
    rows.extend(defence_summary_rows(&p, &out.defence_rows));
    notes.extend(method_notes(&p, &threads));
    let mut provenances = out.provenances;
    if provenances.iter().any(|p| p.contains("generated")) {
        notes.push("Some numbers come from GENERATED data (real data not found): not comparable with the papers.".into());
    }
    provenances.sort();
    provenances.dedup();
    let details = UniversalPerturbationsDetails {
        models: out.records,
        transfer: out.transfer,
        defences: out.defence_rows,
        noise_training: out.noise_training,
        substitute: out.substitute,
        eps_grid: p.eps_grid.clone(),
        eps_ref: p.eps_ref,
        phase_seconds: out.clock.phases,
    };
    Ok(ExperimentResult {
        name: NAME.into(),
        title: TITLE.into(),
        profile: ctx.profile,
        data: provenances.join(" + "),
        rows,
        figures: out.figures,
        notes,
        seconds: 0.0,
        details: serde_json::to_value(&details)?,
    })
}

/// Images `start .. start + len` of `ds`.
fn slice_set(ds: &Dataset, start: usize, len: usize) -> Result<Dataset> {
    let idx: Vec<usize> = (start..start + len).collect();
    Ok(ds.subset(&idx)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_name_their_checkpoints_and_set_the_schedule() {
        let (a, b) = (Recipe::constant(6000, 2), Recipe::decaying(5000, 3, 3e-3));
        // Different recipes never share a checkpoint directory (a mismatched resume is an error).
        assert_eq!(a.tag(), "n6000-lr0.001");
        assert_eq!(b.tag(), "n5000-lr0.003-cos");
        assert_eq!(
            b.augmented(RESNET_AUGMENTATION).tag(),
            "n5000-lr0.003-cos-aug-linf0.2x0.5"
        );
        assert_eq!(
            b.resnet_variant().tag(),
            "n5000-lr0.003-cos-nobn-aug-linf0.2x0.5"
        );
        let (ca, cb) = (a.train_config(), b.train_config());
        assert_eq!((ca.epochs, ca.optimizer.lr()), (2, 1e-3));
        assert!(matches!(ca.schedule, LrSchedule::Constant));
        assert!(matches!(cb.schedule, LrSchedule::Cosine { epochs: 3, min_lr } if min_lr == 0.0));
        // Cosine: the base rate in the first epoch, less in each later one.
        let lrs: Vec<f64> = (0..3)
            .map(|e| cb.schedule.lr_at(cb.optimizer.lr(), e))
            .collect();
        assert_eq!(lrs[0], 3e-3);
        assert!(
            lrs[1] < lrs[0] && lrs[2] < lrs[1] && lrs[2] > 0.0,
            "{lrs:?}"
        );
    }

    #[test]
    fn every_profile_plans_three_architectures_and_includes_the_reference_eps() {
        for profile in [Profile::Smoke, Profile::Quick, Profile::Full] {
            let p = plan(profile);
            assert!(p.eps_grid.iter().any(|&e| (e - p.eps_ref).abs() < 1e-12));
            assert!(p.layers.iter().all(|l| l.last() == Some(&"logits")));
            assert!(p.build_images >= 1 && p.eval_images >= 16);
            // Only ResNet-small is trained with augmentation, at the reference budget.
            assert!(p.train[0].augment.is_none() && p.train[1].augment.is_none());
            assert!(matches!(
                p.train[2].augment,
                Some(Augmentation::LinfShift { max_eps, .. }) if max_eps == p.eps_ref
            ));
            assert!(!p.train[2].batch_norm);
        }
    }
}
