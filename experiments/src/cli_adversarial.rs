//! `mathnn uap …`: universal perturbations and attacks on a model trained with `mathnn train`.
//!
//! ```text
//! mathnn uap layers   --checkpoint runs/lenet
//! mathnn uap sv       --checkpoint runs/lenet --layer fc1 --q 5 --eps 0.2 --out sv.json
//! mathnn uap uap      --checkpoint runs/lenet --xi 0.2 --images 500 --passes 4 --out uap.json
//! mathnn uap pgd      --checkpoint runs/lenet --eps 0.2 --steps 300 --out upgd.json
//! mathnn uap eval     --checkpoint runs/vgg --perturbation sv.json [--defence median:3]   # transfer
//! mathnn uap deepfool --checkpoint runs/lenet --images 500
//! ```
//! Every fooling rate is printed with the clipping used and next to random ±ε signs of the same ℓ∞ norm.

use std::path::{Path, PathBuf};

use adversarial::attacks::{DeepFoolConfig, EVAL_BATCH, deepfool, predict};
use adversarial::defences::{Defended, InputTransform};
use adversarial::net::{LogitModel, Net};
use adversarial::norm::{Clip, Norm, Perturbation, lp_norm, random_perturbation};
use adversarial::power::{PowerConfig, sv_uap};
use adversarial::universal::{
    FoolingEvaluator, FoolingReport, UapConfig, UniversalPgdConfig, universal_perturbation,
    universal_pgd,
};
use anyhow::{Context as _, Result, bail};
use candle_core::{Device, Tensor};
use clap::{Args, Subcommand};
use nn_core::data::{Dataset, DatasetName};
use serde::{Deserialize, Serialize};

use crate::cli_train::load_trained;
use crate::common::{load_data, progress_bar, write_json};

/// Arguments of `mathnn uap`.
#[derive(Args, Debug)]
pub struct UapArgs {
    #[command(subcommand)]
    pub command: UapCommand,
}

/// The `mathnn uap` subcommands.
#[derive(Subcommand, Debug)]
pub enum UapCommand {
    /// List the model's layers and their shapes (the names `--layer` accepts).
    Layers(Common),
    /// SV-UAP: the (p,q)-singular vector of a hidden layer's Jacobian stacked over training images.
    Sv(SvArgs),
    /// UAP (Moosavi-Dezfooli et al. 2017): DeepFool increments projected onto the ℓp ball.
    Uap(UapRunArgs),
    /// Universal PGD: one perturbation maximising the mean cross-entropy.
    Pgd(PgdArgs),
    /// Fooling rate of a saved perturbation on this model (transfer), optionally behind a defence.
    Eval(EvalArgs),
    /// DeepFool on correctly classified test images: flip rate and minimal norms.
    Deepfool(DeepFoolArgs),
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
    #[arg(long, default_value_t = 1000)]
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

/// `mathnn uap sv`.
#[derive(Args, Debug)]
pub struct SvArgs {
    #[command(flatten)]
    pub common: Common,
    /// Hidden layer (see `mathnn uap layers`).
    #[arg(long)]
    pub layer: String,
    /// Norm of the perturbation: a number ≥ 1 or `inf`.
    #[arg(long, default_value = "inf")]
    pub p: String,
    /// Norm of the layer response: a number ≥ 1 or `inf`.
    #[arg(long, default_value = "5")]
    pub q: String,
    /// Training images the Jacobian is stacked over.
    #[arg(long, default_value_t = 64)]
    pub images: usize,
    /// Power-method iterations.
    #[arg(long, default_value_t = 30)]
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

/// `mathnn uap uap`.
#[derive(Args, Debug)]
pub struct UapRunArgs {
    #[command(flatten)]
    pub common: Common,
    /// Radius ξ of the ℓp ball.
    #[arg(long, default_value_t = 0.2)]
    pub xi: f64,
    /// Norm of the ball: 2 or `inf` (other p use radial rescaling).
    #[arg(long, default_value = "inf")]
    pub p: String,
    /// Training images X.
    #[arg(long, default_value_t = 500)]
    pub images: usize,
    /// Maximum passes over X.
    #[arg(long, default_value_t = 4)]
    pub passes: usize,
    /// Stop at fooling ≥ 1 − delta on X.
    #[arg(long, default_value_t = 0.2)]
    pub delta: f64,
    /// Images per batched DeepFool call (1 = exact sequential algorithm).
    #[arg(long, default_value_t = 1)]
    pub chunk: usize,
    /// Seed of the shuffles.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the perturbation (JSON) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `mathnn uap pgd`.
#[derive(Args, Debug)]
pub struct PgdArgs {
    #[command(flatten)]
    pub common: Common,
    /// ℓ∞ budget ε.
    #[arg(long, default_value_t = 0.2)]
    pub eps: f64,
    /// Steps (step size ε/10).
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// Training images.
    #[arg(long, default_value_t = 5000)]
    pub images: usize,
    /// Seed of the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the perturbation (JSON) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `mathnn uap eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub common: Common,
    /// A perturbation written by `mathnn uap sv|uap|pgd --out`.
    #[arg(long)]
    pub perturbation: PathBuf,
    /// Input-transform defence: bits:B, median:W, jpeg:Q or noise:SIGMA (non-adaptive).
    #[arg(long)]
    pub defence: Option<String>,
}

/// `mathnn uap deepfool`.
#[derive(Args, Debug)]
pub struct DeepFoolArgs {
    #[command(flatten)]
    pub common: Common,
    /// Test images to attack (only the correctly classified ones are kept).
    #[arg(long, default_value_t = 500)]
    pub images: usize,
    /// Norm of the minimal perturbation: 2 or `inf`.
    #[arg(long, default_value = "2")]
    pub p: String,
    /// Overshoot η.
    #[arg(long, default_value_t = 0.02)]
    pub overshoot: f64,
}

/// What `--out` files hold.
#[derive(Debug, Serialize, Deserialize)]
struct SavedPerturbation {
    method: String,
    model: String,
    details: serde_json::Value,
    perturbation: Perturbation,
}

/// The loaded model as a [`Net`] plus its data.
struct Loaded {
    net: Net,
    model_name: String,
    train: Dataset,
    test: Dataset,
}

fn load(common: &Common) -> Result<Loaded> {
    let (config, varmap, _model) = load_trained(&common.checkpoint)?;
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
    })
}

fn clip_of(common: &Common) -> Clip {
    if common.no_clip {
        Clip::None
    } else {
        Clip::default()
    }
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
    let rand = random_perturbation(v.dims(), Norm::Inf, lp_norm(v, Norm::Inf)?, 1000)?;
    let rr = ev.evaluate(model, &rand, clip)?;
    Ok((r, rr.fooling_rate))
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
    let (rep, random) = report(l, &l.net, v, clip_of(common))?;
    print_report(common.json, &header, &rep, random)?;
    if let Some(p) = out {
        let saved = SavedPerturbation {
            method: method.into(),
            model: l.model_name.clone(),
            details: header,
            perturbation: Perturbation::from_tensor(v)?,
        };
        write_json(p, &saved)?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

fn parse_defence(s: &str) -> Result<InputTransform> {
    let (kind, val) = s.split_once(':').with_context(|| {
        format!("invalid --defence `{s}`: expected bits:B, median:W, jpeg:Q or noise:SIGMA")
    })?;
    let t = match kind {
        "bits" => InputTransform::BitDepth { bits: val.parse()? },
        "median" => InputTransform::Median {
            window: val.parse()?,
        },
        "jpeg" => InputTransform::Jpeg {
            quality: val.parse()?,
        },
        "noise" => InputTransform::GaussianNoise {
            sigma: val.parse()?,
            seed: 0,
        },
        _ => bail!("invalid --defence `{s}`: expected bits:B, median:W, jpeg:Q or noise:SIGMA"),
    };
    t.validate()?;
    Ok(t)
}

/// `mathnn uap`.
pub fn run(args: UapArgs) -> Result<()> {
    match args.command {
        UapCommand::Layers(c) => {
            let (config, varmap, _) = load_trained(&c.checkpoint)?;
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
        }
        UapCommand::Sv(a) => {
            let l = load(&a.common)?;
            let (p, q): (Norm, Norm) = (a.p.parse()?, a.q.parse()?);
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
        }
        UapCommand::Uap(a) => {
            let l = load(&a.common)?;
            let norm: Norm = a.p.parse()?;
            let x = l.train.images.narrow(0, 0, a.images.min(l.train.len()))?;
            let cfg = UapConfig {
                xi: a.xi,
                norm,
                delta: a.delta,
                max_passes: a.passes,
                chunk: a.chunk,
                seed: a.seed,
                clip: clip_of(&a.common),
                ..UapConfig::default()
            };
            let bar = progress_bar(a.common.quiet, "UAP");
            let r = universal_perturbation(&l.net, &x, &cfg, Some(&bar))?;
            bar.finish_and_clear();
            let v = r.perturbation.to_tensor(&Device::Cpu)?;
            let header = serde_json::json!({
                "method": "uap", "model": l.model_name, "xi": a.xi, "p": norm, "images": x.dim(0)?,
                "best_pass": r.best_pass, "fooling_on_x": r.best_fooling_rate, "history": r.history,
            });
            finish(&l, &a.common, header, "uap", &v, a.out.as_deref())?;
        }
        UapCommand::Pgd(a) => {
            let l = load(&a.common)?;
            let x = l.train.images.narrow(0, 0, a.images.min(l.train.len()))?;
            let cfg = UniversalPgdConfig {
                eps: a.eps,
                steps: a.steps,
                seed: a.seed,
                clip: clip_of(&a.common),
                ..UniversalPgdConfig::default()
            };
            let bar = progress_bar(a.common.quiet, "universal PGD");
            let r = universal_pgd(&l.net, &x, None, &cfg, Some(&bar))?;
            bar.finish_and_clear();
            let v = r.perturbation.to_tensor(&Device::Cpu)?;
            let header = serde_json::json!({
                "method": "universal-pgd", "model": l.model_name, "eps": a.eps, "steps": a.steps,
                "images": x.dim(0)?, "loss_history": r.loss_history,
            });
            finish(&l, &a.common, header, "universal-pgd", &v, a.out.as_deref())?;
        }
        UapCommand::Eval(a) => {
            let l = load(&a.common)?;
            let text = std::fs::read_to_string(&a.perturbation)
                .with_context(|| format!("--perturbation {}", a.perturbation.display()))?;
            let saved: SavedPerturbation = serde_json::from_str(&text).with_context(|| {
                format!(
                    "--perturbation {}: not a file written by `mathnn uap … --out`",
                    a.perturbation.display()
                )
            })?;
            let v = saved.perturbation.to_tensor(&Device::Cpu)?;
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
                "defence": a.defence.clone().unwrap_or_else(|| "none".into()),
            });
            let (rep, random) = match a.defence.as_deref() {
                None => report(&l, &l.net, &v, clip_of(&a.common))?,
                Some(d) => {
                    let defended = Defended {
                        model: &l.net,
                        transform: parse_defence(d)?,
                    };
                    report(&l, &defended, &v, clip_of(&a.common))?
                }
            };
            print_report(a.common.json, &header, &rep, random)?;
        }
        UapCommand::Deepfool(a) => {
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
                norm: a.p.parse()?,
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
        }
    }
    Ok(())
}
