//! `mathnn gan train|sample|evaluate`: train a GAN / WGAN / WGAN-GP on MNIST with checkpoints and
//! resume, draw samples from a checkpoint (PNG grid or .npy), and score a checkpoint against MNIST test
//! with domain-classifier FID/KID, the MNIST Inception Score and the Geometry Score.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use candle_core::Device;
use clap::{Args, Subcommand};
use ndarray::Array4;
use nn_core::data::{DatasetName, save_image_grid};
use nn_core::gan::{GanArch, GanConfig, GanLoss, GanTrainer, generate, load_generator};

use crate::common::Bar;
use crate::common::ForceArg;
use crate::common::{DeviceArg, load_data_or_generated, progress_bar};
use crate::common::{choice, count, ensure_memory};
use crate::reproduce::gan_comparison::{Evaluator, fmt_scores};

/// Arguments of `mathnn gan`.
#[derive(Args, Debug)]
pub struct GanArgs {
    #[command(subcommand)]
    pub command: GanCommand,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// The `gan` subcommands.
#[derive(Subcommand, Debug)]
pub enum GanCommand {
    /// Train (or resume, when DIR holds a checkpoint) a GAN on MNIST; fixed-noise grids DIR/samples-it*.png.
    Train(TrainArgs),
    /// Draw N images from a checkpoint into a PNG grid or an .npy file (N × 1 × 28 × 28, f32).
    Sample(SampleArgs),
    /// Score a checkpoint against MNIST test: domain-classifier FID/KID, MNIST score, Geometry Score.
    Evaluate(EvaluateArgs),
}

/// `mathnn gan train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// gan (non-saturating), wgan (weight clipping) or wgan-gp.
    #[arg(long, default_value = "wgan-gp", value_parser = choice(&GanLoss::ALL))]
    pub loss: GanLoss,
    /// Generator and critic: fully connected (mlp) or convolutional (dcgan).
    #[arg(long, default_value = "mlp", value_parser = choice(&GanArch::ALL))]
    pub arch: GanArch,
    /// Generator iterations in total (a resumed run continues to this count).
    #[arg(value_parser = count::<1, 100_000_000>, long, default_value_t = 1000)]
    pub iters: usize,
    /// Checkpoint (and sample grid) every K iterations.
    #[arg(value_parser = count::<1, 100_000_000>, long, default_value_t = 200)]
    pub checkpoint_every: usize,
    /// Checkpoint directory.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub force: ForceArg,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Batch-normalise the MLP generator (default: on for --loss gan with --arch mlp, whose recipe it is
    /// and which collapses without it; off otherwise).
    #[arg(long)]
    pub generator_batch_norm: Option<bool>,
    /// Data directory (else MATHNN_DATA, the cache, or generated data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `mathnn gan sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Checkpoint directory written by `mathnn gan train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(value_parser = count::<1, 10_000_000>, long, default_value_t = 64)]
    pub n: usize,
    /// Output: *.png (grid) or *.npy.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the latent codes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `mathnn gan evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Checkpoint directory written by `mathnn gan train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Generated images (and MNIST-test images) compared.
    #[arg(value_parser = count::<1, 10_000_000>, long, default_value_t = 10000)]
    pub n: usize,
    /// Domain-classifier directory: trained there on first use (3 epochs, 50k MNIST images), then reused.
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// Landmark draws of the Geometry Score (2000 pixel vectors, L0 = 64, γ = 1/128).
    #[arg(value_parser = count::<1, 100_000>, long, default_value_t = 100)]
    pub gs_draws: usize,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub quiet: bool,
}

/// `mathnn gan …`.
pub fn run(args: GanArgs) -> Result<()> {
    let device = args.device.open()?;
    match args.command {
        GanCommand::Train(a) => run_train(a, &device),
        GanCommand::Sample(a) => run_sample(a, &device),
        GanCommand::Evaluate(a) => run_evaluate(a, &device),
    }
}

fn run_train(a: TrainArgs, device: &Device) -> Result<()> {
    let (loss, arch) = (a.loss, a.arch);
    let recipe = GanConfig::new(loss, arch);
    let config = GanConfig {
        iterations: a.iters,
        checkpoint_every: a.checkpoint_every,
        seed: a.seed,
        generator_batch_norm: a
            .generator_batch_norm
            .unwrap_or(recipe.generator_batch_norm),
        ..recipe
    };
    let data = load_data_or_generated(DatasetName::Mnist, a.data_dir.as_deref())?;
    let _lock = crate::common::lock_run_dir(&a.out, "gan train", a.force.enabled)?;
    let mut trainer = GanTrainer::resume_or_new(config, &data.train.images, device, &a.out)?;
    if trainer.iteration() > 0 {
        eprintln!(
            "resuming {} at iteration {}",
            a.out.display(),
            trainer.iteration()
        );
    }
    let bar = progress_bar(a.quiet, &format!("{} {}", loss.as_str(), arch.as_str()));
    let out = a.out.clone();
    trainer.train(Some(&a.out), Some(&Bar(bar.clone())), |t| -> Result<()> {
        let path = out.join(format!("samples-it{:07}.png", t.iteration()));
        save_image_grid(&t.fixed_samples()?, 8, &path)?;
        Ok(())
    })?;
    bar.finish_and_clear();
    let last = trainer.history().last();
    println!(
        "{} {} on {} ({}): {} iterations, {:.0} s of training; last losses D {} G {}; checkpoint {}",
        loss.as_str(),
        arch.as_str(),
        data.train.name,
        data.train.provenance.label(),
        trainer.iteration(),
        trainer.train_seconds(),
        last.map_or("-".into(), |l| format!("{:.4}", l.critic_loss)),
        last.map_or("-".into(), |l| format!("{:.4}", l.generator_loss)),
        a.out.display()
    );
    Ok(())
}

fn run_sample(a: SampleArgs, device: &Device) -> Result<()> {
    // The images (f32), a host copy and, for .npy, the array written: three 28×28 copies per image.
    ensure_memory(
        &format!("--n {}", a.n),
        (a.n as u64).checked_mul(3 * 28 * 28 * 4),
    )?;
    let (_, generator, it) = load_generator(&a.checkpoint, device)?;
    let images = generate(&generator, a.n, a.seed)?.to_device(&Device::Cpu)?;
    match a.out.extension().and_then(|e| e.to_str()) {
        Some("png") => {
            let cols = (a.n as f64).sqrt().ceil() as usize;
            save_image_grid(&images, cols, &a.out)?;
        }
        Some("npy") => {
            let v = images.flatten_all()?.to_vec1::<f32>()?;
            let arr = Array4::from_shape_vec((a.n, 1, 28, 28), v)?;
            let tmp = a.out.with_extension("npy.tmp");
            ndarray_npy::write_npy(&tmp, &arr)
                .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &a.out)
                .with_context(|| format!("writing {}", a.out.display()))?;
        }
        _ => bail!(
            "invalid --out {}: expected a .png (grid) or .npy file name",
            a.out.display()
        ),
    }
    println!(
        "wrote {} images of iteration {it} to {}",
        a.n,
        a.out.display()
    );
    Ok(())
}

fn run_evaluate(a: EvaluateArgs, device: &Device) -> Result<()> {
    if a.n < 20 {
        bail!("invalid --n {}: expected at least 20 images", a.n);
    }
    let (_, generator, it) = load_generator(&a.checkpoint, device)?;
    let mnist = load_data_or_generated(DatasetName::Mnist, a.data_dir.as_deref())?;
    let n = a.n.min(mnist.test.len());
    let clf_train = mnist.train.take(50000.min(mnist.train.len()))?;
    let eval = Evaluator::new(
        a.quiet,
        &clf_train,
        &mnist.test,
        &mnist.test.take(n)?.images,
        &a.classifier
            .clone()
            .unwrap_or_else(|| a.checkpoint.join("domain-classifier")),
        3,
        50,
        2000.min(n),
        a.gs_draws.max(1),
    )?;
    // The evaluator's classifier is small and stays on the CPU.
    let images = generate(&generator, n, 12345)?.to_device(&Device::Cpu)?;
    let s = eval.score("generator", Some(it), &images)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "checkpoint": a.checkpoint,
                "data": mnist.test.provenance.label(),
                "classifier_accuracy": eval.accuracy,
                "scores": s,
            }))?
        );
    } else {
        println!(
            "iteration {it}: FID · FID(logits) · KID×10³ · IS · GS×10³ = {} ({n} images vs MNIST test, {}; classifier accuracy {:.2}%)",
            fmt_scores(&s),
            mnist.test.provenance.label(),
            100.0 * eval.accuracy
        );
    }
    Ok(())
}
