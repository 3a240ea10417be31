//! `mathnn attack …`: universal perturbations and attacks on a model trained with `mathnn train`.
//!
//! ```text
//! mathnn attack layers     --checkpoint runs/lenet
//! mathnn attack sv-uap     --checkpoint runs/lenet --layer fc1 --q 5 --eps 0.2 --out sv.json
//! mathnn attack uap        --checkpoint runs/lenet --xi 0.2 --images 500 --passes 4 --out uap.json
//! mathnn attack pgd        --checkpoint runs/lenet --eps 0.2 --steps 300 --out upgd.json
//! mathnn attack transfer   --checkpoint runs/vgg --perturbation sv.json [--defence median:3]
//! mathnn attack deepfool   --checkpoint runs/lenet --images 500
//! mathnn attack substitute --checkpoint runs/lenet --rounds 6 --seed-images 150   # black box, labels only
//! mathnn attack train-augmented --model resnet-small --dataset fashion-mnist --augment linf:0.2:0.5 --out runs/rs
//! ```
//! Every fooling rate is printed with the clipping used and next to random ±ε signs of the same ℓ∞ norm.

use std::path::{Path, PathBuf};

use adversarial::attacks::{DeepFoolConfig, EVAL_BATCH, deepfool, predict};
use adversarial::defences::{
    Augmentation, Defended, InputTransform, SubstituteConfig, substitute_attack,
    train_with_augmentation,
};
use adversarial::net::{LogitModel, Net};
use adversarial::norm::{Clip, Norm, Perturbation, lp_norm, random_perturbation};
use adversarial::power::{PowerConfig, sv_uap};
use adversarial::torchvision::{TorchArch, TorchOptions, load_torchvision};
use adversarial::universal::{
    FoolingEvaluator, FoolingReport, UapConfig, UniversalPgdConfig, universal_perturbation,
    universal_pgd,
};
use anyhow::{Context as _, Result, bail};
use candle_core::{Device, Tensor};
use clap::{Args, Subcommand};
use nn_core::data::{Dataset, DatasetName};
use nn_core::models::{InputSpec, ModelConfig, ModelKind};
use nn_core::optim::{LrSchedule, OptimizerConfig};
use nn_core::train::TrainConfig;
use serde::{Deserialize, Serialize};

use nn_core::device::DeviceChoice;

use crate::common::Bar;
use crate::common::ForceArg;
use crate::common::choice;
use crate::common::{DeviceArg, load_data, new_model, progress_bar, write_json};
use crate::common::{count, mlp_widths_value, norm_value};
use crate::runs::classifier::{RunConfig, load_trained};

/// Arguments of `mathnn attack`.
#[derive(Args, Debug)]
pub struct UapArgs {
    #[command(subcommand)]
    pub command: UapCommand,
    /// Only `cpu` for now: the attacks' host-side vectors are not yet moved to a GPU.
    #[command(flatten)]
    pub device: DeviceArg,
}

/// The `mathnn attack` subcommands.
#[derive(Subcommand, Debug)]
pub enum UapCommand {
    /// List the model's layers and their shapes (the names `--layer` accepts).
    Layers(Common),
    /// SV-UAP: the (p,q)-singular vector of a hidden layer's Jacobian stacked over training images.
    #[command(name = "sv-uap", alias = "sv")]
    Sv(SvArgs),
    /// SV-UAP on torchvision's VGG-16, VGG-19 or ResNet-50 with real weights, over a folder of photos
    /// (the setting of the slide's table; docs/interop.md shows how to convert the weights).
    #[command(name = "sv-uap-torchvision")]
    SvTorchvision(SvTorchvisionArgs),
    /// UAP (Moosavi-Dezfooli et al. 2017): DeepFool increments projected onto the ℓp ball.
    Uap(UapRunArgs),
    /// Universal PGD: one perturbation maximising the mean cross-entropy.
    Pgd(PgdArgs),
    /// Fooling rate of a saved perturbation on this model (transfer), optionally behind a defence.
    #[command(name = "transfer", alias = "eval")]
    Eval(EvalArgs),
    /// DeepFool on correctly classified test images: flip rate and minimal norms.
    Deepfool(DeepFoolArgs),
    /// Papernot et al.'s black-box substitute attack on the model (labels only), FGSM transfer.
    Substitute(SubstituteArgs),
    /// Train a model with input augmentation (noise / brightness shifts); writes a `--checkpoint` dir.
    #[command(name = "train-augmented", alias = "train")]
    Train(TrainAugArgs),
}

/// `mathnn attack train-augmented`.
#[derive(Args, Debug)]
pub struct TrainAugArgs {
    /// Model.
    #[arg(long, default_value = "resnet-small", value_parser = choice(&ModelKind::ALL))]
    pub model: ModelKind,
    /// Data set.
    #[arg(long, default_value = "fashion-mnist", value_parser = choice(&DatasetName::ALL))]
    pub dataset: DatasetName,
    /// Directory holding the data sets (else MATHNN_DATA, else the cache).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Train on the first N training images.
    #[arg(value_parser = count::<1, 100_000_000>, long, default_value_t = 5000)]
    pub limit_train: usize,
    /// Epochs (Adam, batch 64).
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 3)]
    pub epochs: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Cosine decay of the rate to 0 over the epochs (else constant).
    #[arg(long)]
    pub cosine: bool,
    /// Augmentation: none, gauss:SIGMA or linf:MAX_EPS[:FRACTION].
    #[arg(long, default_value = "linf:0.2:0.5", value_parser = augmentation_value)]
    pub augment: Augmentation,
    /// ResNet-small without batch norm (biased convolutions instead).
    #[arg(long)]
    pub no_batch_norm: bool,
    /// Seed of the weights, batch order and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Test images for the reported accuracy.
    #[arg(value_parser = count::<1, 100_000_000>, long, default_value_t = 1000)]
    pub eval: usize,
    /// Output directory (config.json, model.safetensors, metrics.json).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub force: ForceArg,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `mathnn attack train-augmented`: augmented training, written in the layout `mathnn train` uses.
fn run_train(a: TrainAugArgs) -> Result<()> {
    let kind = a.model;
    if a.no_batch_norm && kind != ModelKind::ResnetSmall {
        bail!("--no-batch-norm applies to resnet-small only (model `{kind}` has no batch norm)");
    }
    let dataset = a.dataset;
    let aug = a.augment;
    if a.limit_train == 0 || a.eval == 0 {
        bail!("--limit-train and --eval must be at least 1");
    }
    let data = load_data(dataset, a.data_dir.as_deref())?;
    let train_set = data.train.take(a.limit_train.min(data.train.len()))?;
    let test = data.test.take(a.eval.min(data.test.len()))?;
    let (c, h, w) = train_set.image_shape();
    let model_config = ModelConfig::new(kind, InputSpec::new(c, h, w, train_set.num_classes()))
        .with_batch_norm(!a.no_batch_norm);
    let config = TrainConfig {
        epochs: a.epochs,
        optimizer: OptimizerConfig::adam(a.lr),
        schedule: if a.cosine {
            LrSchedule::Cosine {
                epochs: a.epochs,
                min_lr: 0.0,
            }
        } else {
            LrSchedule::Constant
        },
        seed: a.seed,
        ..TrainConfig::default()
    };
    let (varmap, model) = new_model(&model_config, a.seed, &Device::Cpu)?;
    let _lock = crate::common::lock_run_dir(&a.out, "attack train-augmented", a.force.enabled)?;
    let bar = progress_bar(
        a.quiet,
        &format!("train {kind} on {dataset} ({})", aug.tag()),
    );
    let started = std::time::Instant::now();
    let epochs = train_with_augmentation(
        model.as_ref(),
        &varmap,
        &train_set,
        Some(&test),
        &aug,
        &config,
        Some(&Bar(bar.clone())),
    )?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let out = a.out.clone();
    let run_config = RunConfig {
        dataset: dataset.to_string(),
        data_provenance: train_set.provenance.label().to_string(),
        model: model_config,
        train: config,
        limit_train: Some(a.limit_train),
        limit_test: Some(a.eval),
    };
    write_json(&out.join("config.json"), &run_config)?;
    nn_core::checkpoint::save_varmap(&varmap, &out.join("model.safetensors"))?;
    let metrics = serde_json::json!({
        "augmentation": aug, "epochs": epochs, "train_seconds": seconds,
    });
    write_json(&out.join("metrics.json"), &metrics)?;
    println!("{}", serde_json::to_string_pretty(&metrics)?);
    Ok(())
}

/// Options shared by every subcommand.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Directory written by `mathnn train` (config.json, model.safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Directory holding the data sets (else MATHNN_DATA, else the cache).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Held-out test images used to measure fooling rates.
    #[arg(value_parser = count::<1, 100_000_000>, long, default_value_t = 1000)]
    pub eval: usize,
    /// Do not clip x + v to [0, 1] (the official UAP / singular-fool code does not clip).
    #[arg(long)]
    pub no_clip: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// `mathnn attack sv-uap`.
#[derive(Args, Debug)]
pub struct SvArgs {
    #[command(flatten)]
    pub common: Common,
    /// Hidden layer (see `mathnn attack layers`).
    #[arg(long)]
    pub layer: String,
    /// Norm of the perturbation: a number ≥ 1 or `inf`.
    #[arg(long, default_value = "inf", value_parser = norm_value)]
    pub p: Norm,
    /// Norm of the layer response: a number ≥ 1 or `inf`.
    #[arg(long, default_value = "5", value_parser = norm_value)]
    pub q: Norm,
    /// Training images the Jacobian is stacked over.
    #[arg(value_parser = count::<1, 100_000_000>, long, default_value_t = 64)]
    pub images: usize,
    /// Power-method iterations.
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 30)]
    pub iters: usize,
    /// Budget: the perturbation is scaled to ‖v‖_p = eps (input units, [0, 1] pixels).
    #[arg(long, default_value_t = 0.2)]
    pub eps: f64,
    /// Seed of the starting vector.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the perturbation (JSON) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `mathnn attack sv-uap-torchvision`.
#[derive(Args, Debug)]
pub struct SvTorchvisionArgs {
    /// The network, in torchvision's layout.
    #[arg(long, value_parser = choice(&TorchArch::ALL))]
    pub torchvision: TorchArch,
    /// Its weights: torchvision's state dict saved as safetensors.
    #[arg(long)]
    pub weights: PathBuf,
    /// Folder of photos (JPEG or PNG, searched recursively, taken in path order), each prepared as
    /// torchvision evaluates ImageNet: shorter side resized to 256, centre crop 224.
    #[arg(long)]
    pub image_dir: PathBuf,
    /// Photos the Jacobian is stacked over: the first ones (the paper uses 64).
    #[arg(value_parser = count::<1, 100_000>, long, default_value_t = 64)]
    pub fit: usize,
    /// Photos after those on which the fooling rate is measured (default: all the others).
    #[arg(value_parser = count::<1, 100_000_000>, long)]
    pub eval: Option<usize>,
    /// Hidden layer (VGG: block1_conv1 … block5_pool, fc1, fc2; ResNet-50: stem, maxpool, layer{s}.{b}).
    #[arg(long, default_value = "block2_pool")]
    pub layer: String,
    /// Norm of the perturbation: a number ≥ 1 or `inf`.
    #[arg(long, default_value = "inf", value_parser = norm_value)]
    pub p: Norm,
    /// Norm of the layer response: a number ≥ 1 or `inf` (the paper's best: 10).
    #[arg(long, default_value = "10", value_parser = norm_value)]
    pub q: Norm,
    /// Power-method iterations.
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 30)]
    pub iters: usize,
    /// Budget ‖v‖_p in [0, 1] pixel units (the paper's ξ = 10 on the 0–255 scale is 0.0392).
    #[arg(long, default_value_t = 10.0 / 255.0)]
    pub eps: f64,
    /// Seed of the starting vector.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Do not clip x + v to [0, 1].
    #[arg(long)]
    pub no_clip: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the perturbation (JSON) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Photos evaluated per batch, so that a large --eval set is never held in memory at once.
const PHOTO_CHUNK: usize = 128;

/// The JPEG and PNG files under `dir`, recursively, in path order.
fn photo_files(dir: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("--image-dir {}: cannot read the folder", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
            {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// `[N, 3, 224, 224]` photos as torchvision's evaluation transform prepares them.
fn load_photos(files: &[PathBuf]) -> Result<Tensor> {
    let images = files
        .iter()
        .map(|f| Ok(nn_core::data::load_photo_center_crop(f, 256, 224)?))
        .collect::<Result<Vec<Tensor>>>()?;
    Ok(Tensor::stack(&images, 0)?)
}

fn run_sv_torchvision(a: SvTorchvisionArgs) -> Result<()> {
    let (p, q) = (a.p, a.q);
    if !(a.eps.is_finite() && a.eps >= 0.0) {
        bail!("invalid --eps {}: must be a finite number >= 0", a.eps);
    }
    let photos = photo_files(&a.image_dir)?;
    if photos.len() <= a.fit {
        bail!(
            "--image-dir {}: {} photos (JPEG or PNG); need more than --fit {}",
            a.image_dir.display(),
            photos.len(),
            a.fit
        );
    }
    let net = load_torchvision(a.torchvision, &a.weights, &TorchOptions::default())?;
    net.check_layer(&a.layer)?;
    let fit = load_photos(&photos[..a.fit])?;
    let cfg = PowerConfig {
        p,
        q,
        max_iter: a.iters,
        seed: a.seed,
        ..PowerConfig::default()
    };
    let r = sv_uap(&net, &fit, &a.layer, &cfg)?;
    drop(fit);
    let v = r.vector.to_tensor(&Device::Cpu)?.affine(a.eps, 0.0)?;
    let clip = clip_of(a.no_clip);
    let rand = random_signs_like(&v)?;
    let eval_files = &photos[a.fit..];
    let eval_files = &eval_files[..a.eval.unwrap_or(eval_files.len()).min(eval_files.len())];
    // No labels: the fooling rate counts changed predictions, as in the paper.
    let (mut total, mut random_fooled): (Option<FoolingReport>, usize) = (None, 0);
    for chunk in eval_files.chunks(PHOTO_CHUNK) {
        let x = load_photos(chunk)?;
        let ev = FoolingEvaluator::new(&net, &x, None)?;
        let rep = ev.evaluate(&net, &v, clip)?;
        random_fooled += ev.evaluate(&net, &rand, clip)?.fooled;
        total = Some(match total {
            None => rep,
            Some(mut t) => {
                t.n += rep.n;
                t.fooled += rep.fooled;
                for (a, b) in t.dominant_labels.iter_mut().zip(&rep.dominant_labels) {
                    *a += b;
                }
                t
            }
        });
    }
    let mut rep = total.context("no photos to evaluate on")?;
    rep.fooling_rate = rep.fooled as f64 / rep.n as f64;
    let model = format!("{} ({})", a.torchvision, a.weights.display());
    let header = serde_json::json!({
        "method": "sv-uap", "model": model, "layer": a.layer, "p": p, "q": q, "images": a.fit,
        "singular_value": r.singular_value, "iterations": r.iterations, "converged": r.converged,
        "eps": a.eps, "image_dir": a.image_dir.display().to_string(),
    });
    print_report(a.json, &header, &rep, random_fooled as f64 / rep.n as f64)?;
    if let Some(path) = &a.out {
        save_perturbation(path, "sv-uap", &model, header, &v)?;
    }
    Ok(())
}

/// `mathnn attack uap`.
#[derive(Args, Debug)]
pub struct UapRunArgs {
    #[command(flatten)]
    pub common: Common,
    /// Radius ξ of the ℓp ball.
    #[arg(long, default_value_t = 0.2)]
    pub xi: f64,
    /// Norm of the ball: 2 or `inf` (other p use radial rescaling).
    #[arg(long, default_value = "inf", value_parser = norm_value)]
    pub p: Norm,
    /// Training images X.
    #[arg(value_parser = count::<1, 100_000_000>, long, default_value_t = 500)]
    pub images: usize,
    /// Maximum passes over X.
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 4)]
    pub passes: usize,
    /// Stop at fooling ≥ 1 − delta on X.
    #[arg(long, default_value_t = 0.2)]
    pub delta: f64,
    /// Images per batched DeepFool call (1 = exact sequential algorithm).
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 1)]
    pub chunk: usize,
    /// Seed of the shuffles.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the perturbation (JSON) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `mathnn attack pgd`.
#[derive(Args, Debug)]
pub struct PgdArgs {
    #[command(flatten)]
    pub common: Common,
    /// ℓ∞ budget ε.
    #[arg(long, default_value_t = 0.2)]
    pub eps: f64,
    /// Steps (step size ε/10).
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 300)]
    pub steps: usize,
    /// Training images.
    #[arg(value_parser = count::<1, 100_000_000>, long, default_value_t = 5000)]
    pub images: usize,
    /// Seed of the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the perturbation (JSON) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `mathnn attack transfer`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub common: Common,
    /// A perturbation written by `mathnn attack sv-uap|uap|pgd --out`.
    #[arg(long)]
    pub perturbation: PathBuf,
    /// Input-transform defence: bits:B, median:W, jpeg:Q or noise:SIGMA (non-adaptive).
    #[arg(long, value_parser = defence_value)]
    pub defence: Option<DefenceArg>,
}

/// `mathnn attack deepfool`.
#[derive(Args, Debug)]
pub struct DeepFoolArgs {
    #[command(flatten)]
    pub common: Common,
    /// Test images to attack (only the correctly classified ones are kept).
    #[arg(value_parser = count::<1, 100_000_000>, long, default_value_t = 500)]
    pub images: usize,
    /// Norm of the minimal perturbation: 2 or `inf`.
    #[arg(long, default_value = "2", value_parser = norm_value)]
    pub p: Norm,
    /// Overshoot η.
    #[arg(long, default_value_t = 0.02)]
    pub overshoot: f64,
}

/// `mathnn attack substitute`.
#[derive(Args, Debug)]
pub struct SubstituteArgs {
    #[command(flatten)]
    pub common: Common,
    /// Substitute architecture: mlp:W1,W2,… (hidden widths), lenet, vgg-small or resnet-small.
    #[arg(long, default_value = "mlp:200,200", value_parser = substitute_value)]
    pub substitute: SubstituteArg,
    /// Seed images S₀: held-out test images after the first --eval ones (the oracle labels them).
    #[arg(long, default_value_t = 150)]
    pub seed_images: usize,
    /// Substitute training rounds ρ_max (ρ_max − 1 Jacobian augmentations).
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 6)]
    pub rounds: usize,
    /// Jacobian augmentation step λ, signed (cleverhans starts with −λ, towards the boundary).
    #[arg(long, default_value_t = -0.1, allow_negative_numbers = true)]
    pub lambda: f64,
    /// Flip the sign of λ every TAU rounds (cleverhans: 3); 0: never.
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 3)]
    pub tau: usize,
    /// Substitute training epochs per round.
    #[arg(value_parser = count::<1, 1_000_000>, long, default_value_t = 10)]
    pub epochs: usize,
    /// FGSM budget ε on the substitute.
    #[arg(long, default_value_t = 0.3)]
    pub fgsm_eps: f64,
    /// Seed of the substitute's weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `--substitute`: an architecture as spelled on the command line (`mlp:200,200`, `lenet`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct SubstituteArg {
    spec: String,
    kind: ModelKind,
    /// Hidden widths of `mlp:W1,W2,…` (the model's defaults otherwise).
    widths: Option<Vec<usize>>,
}

impl SubstituteArg {
    /// The substitute's model config for inputs shaped `input` (the oracle's).
    fn config(&self, input: InputSpec) -> ModelConfig {
        let mut config = ModelConfig::new(self.kind, input);
        if let Some(w) = &self.widths {
            config.mlp_widths = w.clone();
        }
        config
    }
}

impl std::fmt::Display for SubstituteArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec)
    }
}

/// `--substitute` as a clap value parser.
fn substitute_value(s: &str) -> std::result::Result<SubstituteArg, String> {
    let (kind, widths) = match s.split_once(':') {
        Some(("mlp", w)) => {
            let widths = mlp_widths_value(w)
                .map_err(|e| format!("expected mlp:W1,W2,… with widths: {e}"))?
                .0;
            if widths.is_empty() {
                return Err("expected mlp:W1,W2,… with at least one width".into());
            }
            (ModelKind::Mlp, Some(widths))
        }
        _ => (s.parse::<ModelKind>().map_err(|e| e.to_string())?, None),
    };
    Ok(SubstituteArg {
        spec: s.to_string(),
        kind,
        widths,
    })
}

/// What `--out` files hold.
#[derive(Debug, Serialize, Deserialize)]
struct SavedPerturbation {
    method: String,
    model: String,
    details: serde_json::Value,
    perturbation: Perturbation,
}

/// Reads a `--perturbation` file: JSON written by `mathnn attack … --out`, an image-shaped (C × H × W)
/// perturbation of finite values. Every error names the file.
fn read_perturbation(path: &Path) -> Result<(SavedPerturbation, Tensor)> {
    let named = || format!("--perturbation {}", path.display());
    let text = std::fs::read_to_string(path).with_context(named)?;
    let saved: SavedPerturbation = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a file written by `mathnn attack … --out`", named()))?;
    let v = saved
        .perturbation
        .to_tensor(&Device::Cpu)
        .with_context(named)?;
    if v.rank() != 3 || v.dims().contains(&0) {
        bail!(
            "{} has shape {:?}; expected one image, channels × height × width",
            named(),
            v.dims()
        );
    }
    Ok((saved, v))
}

/// The loaded model as a [`Net`] plus its data.
struct Loaded {
    net: Net,
    model_name: String,
    train: Dataset,
    test: Dataset,
    /// The whole test set (`test` is its first `--eval` images).
    all_test: Dataset,
}

fn load(common: &Common) -> Result<Loaded> {
    let (config, varmap, _model) = load_trained(&common.checkpoint, &Device::Cpu)?;
    let net = Net::from_nn_core(&config.model, &varmap)?;
    let dataset: DatasetName = config.dataset.parse()?;
    let data = load_data(dataset, common.data_dir.as_deref())?;
    if common.eval == 0 {
        bail!("--eval must be at least 1");
    }
    Ok(Loaded {
        net,
        model_name: format!("{} on {}", config.model.kind, config.dataset),
        test: data.test.take(common.eval)?,
        train: data.train,
        all_test: data.test,
    })
}

/// The clipping of `--no-clip`.
fn clip_of(no_clip: bool) -> Clip {
    if no_clip { Clip::None } else { Clip::default() }
}

/// Fooling rate of `v` and of random ±‖v‖∞ signs on the held-out images.
fn report(
    l: &Loaded,
    model: &dyn LogitModel,
    v: &Tensor,
    clip: Clip,
) -> Result<(FoolingReport, f64)> {
    let labels = l.test.labels_vec()?;
    let ev = FoolingEvaluator::new(model, &l.test.images, Some(&labels))?;
    let r = ev.evaluate(model, v, clip)?;
    let rr = ev.evaluate(model, &random_signs_like(v)?, clip)?;
    Ok((r, rr.fooling_rate))
}

/// The baseline every fooling rate is printed beside: random ±‖v‖∞ signs (seed 1000).
fn random_signs_like(v: &Tensor) -> Result<Tensor> {
    Ok(random_perturbation(
        v.dims(),
        Norm::Inf,
        lp_norm(v, Norm::Inf)?,
        1000,
    )?)
}

fn print_report(
    json: bool,
    header: &serde_json::Value,
    r: &FoolingReport,
    random: f64,
) -> Result<()> {
    if json {
        let mut out = header.clone();
        out["fooling"] = serde_json::to_value(r)?;
        out["random_fooling_rate"] = serde_json::json!(random);
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", header);
        println!(
            "fooling rate {:.2}% on {} images ({}), random ±ε signs {:.2}%; ‖v‖∞ = {:.4} ({:.1}/255), ‖v‖₂ = {:.3}; accuracy {} → {}",
            100.0 * r.fooling_rate,
            r.n,
            r.clip.label(),
            100.0 * random,
            r.linf,
            255.0 * r.linf,
            r.l2,
            r.clean_accuracy
                .map(|a| format!("{:.2}%", 100.0 * a))
                .unwrap_or_default(),
            r.perturbed_accuracy
                .map(|a| format!("{:.2}%", 100.0 * a))
                .unwrap_or_default(),
        );
    }
    Ok(())
}

/// Reports the fooling rate of the perturbation `v` built by `method` and writes it to `out`.
fn finish(
    l: &Loaded,
    common: &Common,
    header: serde_json::Value,
    method: &str,
    v: &Tensor,
    out: Option<&Path>,
) -> Result<()> {
    let (rep, random) = report(l, &l.net, v, clip_of(common.no_clip))?;
    print_report(common.json, &header, &rep, random)?;
    if let Some(p) = out {
        save_perturbation(p, method, &l.model_name, header, v)?;
    }
    Ok(())
}

/// Writes `v` with what built it as the JSON `--perturbation` reads.
fn save_perturbation(
    path: &Path,
    method: &str,
    model: &str,
    details: serde_json::Value,
    v: &Tensor,
) -> Result<()> {
    let saved = SavedPerturbation {
        method: method.into(),
        model: model.into(),
        details,
        perturbation: Perturbation::from_tensor(v)?,
    };
    write_json(path, &saved)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// `--augment` as a clap value parser (adversarial's parser and validation).
fn augmentation_value(s: &str) -> std::result::Result<Augmentation, String> {
    Augmentation::parse(s).map_err(|e| e.to_string())
}

/// `--defence`: the transform and its spelling on the command line (for the report).
#[derive(Debug, Clone, PartialEq)]
pub struct DefenceArg {
    spec: String,
    transform: InputTransform,
}

/// `--defence` as a clap value parser: the transform, validated (clap's error names the flag and value).
fn defence_value(s: &str) -> std::result::Result<DefenceArg, String> {
    const EXPECTED: &str = "expected bits:B, median:W, jpeg:Q or noise:SIGMA";
    let (kind, val) = s.split_once(':').ok_or(EXPECTED)?;
    let number = |what: &str| format!("`{val}` is not {what}");
    let transform = match kind {
        "bits" => InputTransform::BitDepth {
            bits: val.parse().map_err(|_| number("a bit depth 1 … 16"))?,
        },
        "median" => InputTransform::Median {
            window: val.parse().map_err(|_| number("an odd window size"))?,
        },
        "jpeg" => InputTransform::Jpeg {
            quality: val.parse().map_err(|_| number("a JPEG quality 1 … 100"))?,
        },
        "noise" => InputTransform::GaussianNoise {
            sigma: val.parse().map_err(|_| number("a noise σ ≥ 0"))?,
            seed: 0,
        },
        _ => return Err(EXPECTED.into()),
    };
    transform.validate().map_err(|e| e.to_string())?;
    Ok(DefenceArg {
        spec: s.to_string(),
        transform,
    })
}

/// List the model's layers and their shapes (`mathnn attack layers`).
fn run_layers(c: Common) -> Result<()> {
    let (config, varmap, _) = load_trained(&c.checkpoint, &Device::Cpu)?;
    let net = Net::from_nn_core(&config.model, &varmap)?;
    let layers: Vec<(String, Vec<usize>)> = net
        .layer_names()
        .into_iter()
        .map(|n| {
            let s = net.layer_shape(&n).unwrap_or_default();
            (n, s)
        })
        .collect();
    if c.json {
        println!("{}", serde_json::to_string_pretty(&layers)?);
    } else {
        for (n, s) in layers {
            println!("{n:<16} {s:?}");
        }
    }
    Ok(())
}

/// SV-UAP of a hidden layer, scaled to `--eps` (`mathnn attack sv-uap`).
fn run_sv(a: SvArgs) -> Result<()> {
    let (p, q) = (a.p, a.q);
    let l = load(&a.common)?;
    if !(a.eps.is_finite() && a.eps >= 0.0) {
        bail!("invalid --eps {}: must be a finite number >= 0", a.eps);
    }
    if a.images == 0 || a.images > l.train.len() {
        bail!(
            "--images must be in 1..={}, got {}",
            l.train.len(),
            a.images
        );
    }
    let build = l.train.images.narrow(0, 0, a.images)?;
    let cfg = PowerConfig {
        p,
        q,
        max_iter: a.iters,
        seed: a.seed,
        ..PowerConfig::default()
    };
    let r = sv_uap(&l.net, &build, &a.layer, &cfg)?;
    let v = r.vector.to_tensor(&Device::Cpu)?.affine(a.eps, 0.0)?;
    let header = serde_json::json!({
        "method": "sv-uap", "model": l.model_name, "layer": a.layer, "p": p, "q": q,
        "images": a.images, "singular_value": r.singular_value, "iterations": r.iterations,
        "converged": r.converged, "eps": a.eps,
    });
    finish(&l, &a.common, header, "sv-uap", &v, a.out.as_deref())?;
    Ok(())
}

/// UAP from DeepFool increments (`mathnn attack uap`).
fn run_uap(a: UapRunArgs) -> Result<()> {
    let l = load(&a.common)?;
    let norm: Norm = a.p;
    let x = l.train.images.narrow(0, 0, a.images.min(l.train.len()))?;
    let cfg = UapConfig {
        xi: a.xi,
        norm,
        delta: a.delta,
        max_passes: a.passes,
        chunk: a.chunk,
        seed: a.seed,
        clip: clip_of(a.common.no_clip),
        ..UapConfig::default()
    };
    let bar = progress_bar(a.common.quiet, "UAP");
    let r = universal_perturbation(&l.net, &x, &cfg, Some(&Bar(bar.clone())))?;
    bar.finish_and_clear();
    let v = r.perturbation.to_tensor(&Device::Cpu)?;
    let header = serde_json::json!({
        "method": "uap", "model": l.model_name, "xi": a.xi, "p": norm, "images": x.dim(0)?,
        "best_pass": r.best_pass, "fooling_on_x": r.best_fooling_rate, "history": r.history,
    });
    finish(&l, &a.common, header, "uap", &v, a.out.as_deref())?;
    Ok(())
}

/// Universal PGD perturbation (`mathnn attack pgd`).
fn run_pgd(a: PgdArgs) -> Result<()> {
    let l = load(&a.common)?;
    let x = l.train.images.narrow(0, 0, a.images.min(l.train.len()))?;
    let cfg = UniversalPgdConfig {
        eps: a.eps,
        steps: a.steps,
        seed: a.seed,
        clip: clip_of(a.common.no_clip),
        ..UniversalPgdConfig::default()
    };
    let bar = progress_bar(a.common.quiet, "universal PGD");
    let r = universal_pgd(&l.net, &x, None, &cfg, Some(&Bar(bar.clone())))?;
    bar.finish_and_clear();
    let v = r.perturbation.to_tensor(&Device::Cpu)?;
    let header = serde_json::json!({
        "method": "universal-pgd", "model": l.model_name, "eps": a.eps, "steps": a.steps,
        "images": x.dim(0)?, "loss_history": r.loss_history,
    });
    finish(&l, &a.common, header, "universal-pgd", &v, a.out.as_deref())?;
    Ok(())
}

/// Fooling rate of a saved perturbation, optionally behind a defence (`mathnn attack transfer`).
fn run_eval(a: EvalArgs) -> Result<()> {
    let transform = a.defence.as_ref().map(|d| d.transform);
    // The file first: a damaged perturbation is named before any model or data is loaded.
    let (saved, v) = read_perturbation(&a.perturbation)?;
    let l = load(&a.common)?;
    let input = l.net.input();
    if v.dims() != [input.channels, input.height, input.width] {
        bail!(
            "--perturbation {} has shape {:?}; this model takes {}×{}×{} images",
            a.perturbation.display(),
            v.dims(),
            input.channels,
            input.height,
            input.width
        );
    }
    let header = serde_json::json!({
        "method": saved.method, "built_on": saved.model, "attacked": l.model_name,
        "defence": a.defence.as_ref().map_or("none", |d| d.spec.as_str()),
    });
    let (rep, random) = match transform {
        None => report(&l, &l.net, &v, clip_of(a.common.no_clip))?,
        Some(transform) => {
            let defended = Defended {
                model: &l.net,
                transform,
            };
            report(&l, &defended, &v, clip_of(a.common.no_clip))?
        }
    };
    print_report(a.common.json, &header, &rep, random)?;
    Ok(())
}

/// Black-box substitute attack with FGSM transfer (`mathnn attack substitute`).
fn run_substitute(a: SubstituteArgs) -> Result<()> {
    let l = load(&a.common)?;
    let start = l.test.len();
    if a.seed_images == 0 || start + a.seed_images > l.all_test.len() {
        bail!(
            "--seed-images must be in 1..={} (test images after the first --eval {start}), got {}",
            l.all_test.len().saturating_sub(start),
            a.seed_images
        );
    }
    let idx: Vec<usize> = (start..start + a.seed_images).collect();
    let seed_set = l.all_test.subset(&idx)?;
    let sub = a.substitute.config(l.net.input());
    let cfg = SubstituteConfig {
        rounds: a.rounds,
        lambda: a.lambda,
        tau: (a.tau > 0).then_some(a.tau),
        train: TrainConfig {
            epochs: a.epochs,
            ..SubstituteConfig::default().train
        },
        fgsm_eps: a.fgsm_eps,
        seed: a.seed,
    };
    let r = substitute_attack(&l.net, &seed_set, &l.test, &sub, &cfg)?;
    if a.common.json {
        let mut v = serde_json::to_value(&r)?;
        v["oracle"] = serde_json::json!(l.model_name);
        v["substitute"] = serde_json::json!(a.substitute.spec);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "oracle {} (labels only), substitute {}: {} oracle queries over {} rounds; substitute accuracy {:.2}% (agreement {:.2}%); oracle accuracy {:.2}% → {:.2}% on FGSM ε = {} examples crafted on the substitute ({:.2}% of labels changed)",
            l.model_name,
            a.substitute,
            r.oracle_queries,
            r.rounds.len(),
            100.0 * r.substitute_accuracy,
            100.0 * r.rounds.last().map(|x| x.agreement).unwrap_or(f64::NAN),
            100.0 * r.oracle_clean_accuracy,
            100.0 * r.oracle_adversarial_accuracy,
            r.fgsm_eps,
            100.0 * r.transfer_rate
        );
    }
    Ok(())
}

/// DeepFool on correctly classified test images (`mathnn attack deepfool`).
fn run_deepfool(a: DeepFoolArgs) -> Result<()> {
    let l = load(&a.common)?;
    let head = l.test.take(a.images)?;
    let pred = predict(&l.net, &head.images, EVAL_BATCH)?;
    let truth = head.labels_vec()?;
    let correct: Vec<usize> = (0..pred.len()).filter(|&i| pred[i] == truth[i]).collect();
    if correct.is_empty() {
        bail!(
            "no correctly classified image among the first {} test images",
            a.images
        );
    }
    let set = head.subset(&correct)?;
    let cfg = DeepFoolConfig {
        norm: a.p,
        overshoot: a.overshoot,
        ..DeepFoolConfig::default()
    };
    let r = deepfool(&l.net, &set.images, &cfg)?;
    if a.common.json {
        let mut v = serde_json::to_value(&r.report)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("images");
            o.insert("model".into(), serde_json::json!(l.model_name));
            o.insert("n".into(), serde_json::json!(correct.len()));
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{}: DeepFool (p = {}) flipped {:.2}% of {} correctly classified images; median ‖r‖₂ = {:.4}, ρ_adv = {:.4}",
            l.model_name,
            cfg.norm,
            100.0 * r.report.fooled_fraction,
            correct.len(),
            r.report.median_l2,
            r.report.rho_adv
        );
    }
    Ok(())
}

/// `mathnn attack`.
pub fn run(args: UapArgs) -> Result<()> {
    args.device.open()?;
    if args.device.choice != DeviceChoice::Cpu {
        bail!(
            "--device: `mathnn attack` runs on the CPU only for now (its attacks keep perturbations on the host)"
        );
    }
    match args.command {
        UapCommand::Train(a) => run_train(a)?,
        UapCommand::Layers(c) => run_layers(c)?,
        UapCommand::Sv(a) => run_sv(a)?,
        UapCommand::SvTorchvision(a) => run_sv_torchvision(a)?,
        UapCommand::Uap(a) => run_uap(a)?,
        UapCommand::Pgd(a) => run_pgd(a)?,
        UapCommand::Eval(a) => run_eval(a)?,
        UapCommand::Substitute(a) => run_substitute(a)?,
        UapCommand::Deepfool(a) => run_deepfool(a)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitute_specs_parse_or_fail_naming_the_value() {
        let input = InputSpec::new(1, 28, 28, 10);
        let c = substitute_value("mlp:200,100").unwrap().config(input);
        assert_eq!((c.kind, c.mlp_widths), (ModelKind::Mlp, vec![200, 100]));
        let lenet = substitute_value("lenet").unwrap();
        assert_eq!(
            (lenet.config(input).kind, lenet.to_string()),
            (ModelKind::Lenet, "lenet".to_string())
        );
        let e = substitute_value("mlp:20x").unwrap_err();
        assert!(e.contains("mlp:W1,W2") && e.contains("20x"), "{e}");
        assert!(substitute_value("transformer").is_err());
    }

    #[test]
    fn defences_parse_validated() {
        let d = defence_value("median:3").unwrap();
        assert_eq!(
            (d.spec.as_str(), d.transform),
            ("median:3", InputTransform::Median { window: 3 })
        );
        for (bad, needle) in [
            ("median:4", "odd"),
            ("jpeg:x", "`x` is not a JPEG quality"),
            ("blur:3", "expected bits:B"),
        ] {
            let e = defence_value(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
