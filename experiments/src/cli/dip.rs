//! `mathnn dip denoise|inpaint`: the deep image prior on one image — writes the corrupted input, the
//! restored image, the last raw output, the per-iteration history (JSON) and its PSNR figure, and resumes
//! from DIR/checkpoint when interrupted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use candle_core::Tensor;
use clap::{Args, Subcommand};
use generalization::dip::image::{add_gaussian_noise, random_pixel_mask, square_resize};
use generalization::dip::{DipFit, DipParams, DipTask, SkipNetParams, StopRule, Upsample};
use nn_core::data::image_io::{load_image, save_image};

use crate::common::ForceArg;
use crate::common::choice;
use crate::common::count;
use crate::common::{DeviceArg, progress_bar, write_json};
use crate::runs::dip::{psnr_figure, run_to_end};

/// Arguments of `mathnn dip`.
#[derive(Args, Debug)]
pub struct DipArgs {
    #[command(subcommand)]
    pub command: DipCommand,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// The `mathnn dip` tasks.
#[derive(Subcommand, Debug)]
pub enum DipCommand {
    /// Denoise IMAGE (with --sigma S, IMAGE is clean and seeded noise of std S/255 is added first).
    Denoise(DenoiseArgs),
    /// Inpaint IMAGE: pixels missing by --mask (a PNG, black = missing) or at random (--missing P).
    Inpaint(InpaintArgs),
    /// Super-resolve: IMAGE (after --side) is the clean high-resolution image, downsampled by --factor with
    /// the Lanczos kernel the fit uses; with --low-res IMAGE itself is the low-resolution input.
    Sr(SrArgs),
}

/// `mathnn dip sr`.
#[derive(Args, Debug)]
pub struct SrArgs {
    #[command(flatten)]
    pub common: CommonDipArgs,
    /// Magnification: 2, 4 or 8.
    #[arg(value_parser = count::<1, 64>, long, default_value_t = 4)]
    pub factor: usize,
    /// IMAGE is already the low-resolution input (no clean image to compare with unless --clean).
    #[arg(long)]
    pub low_res: bool,
}

/// Options shared by every task.
#[derive(Args, Debug, Clone)]
pub struct CommonDipArgs {
    /// The image (PNG or JPEG; grey or RGB).
    pub image: PathBuf,
    /// Crop to the centred square and resize (area average) to SIDE × SIDE; a multiple of 32. Default:
    /// the image as it is (its sides must then be multiples of 32).
    #[arg(value_parser = count::<8, 16_384>, long)]
    pub side: Option<usize>,
    /// The clean image, to report PSNR/SSIM (default: IMAGE itself when noise is added with --sigma).
    #[arg(long)]
    pub clean: Option<PathBuf>,
    /// Channels of the network's down and up convolutions (the paper: 128).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub channels: u32,
    /// Channels of the skip branches (0: no skips).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=1024))]
    pub skip_channels: u32,
    /// Upsampling (default: bilinear for denoising, nearest for inpainting).
    #[arg(long, value_parser = choice(&Upsample::ALL))]
    pub upsample: Option<Upsample>,
    /// Iterations in total (a resumed run continues to this count).
    #[arg(long, default_value_t = 2500, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub iters: u32,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.01)]
    pub lr: f64,
    /// σ_p: std of the noise added to the network's input code at each iteration.
    #[arg(long, default_value_t = 1.0 / 30.0)]
    pub input_noise: f64,
    /// Do not restore the parameters when PSNR(output, input) drops by > 5 dB.
    #[arg(long)]
    pub no_backtracking: bool,
    /// Stop by the running-variance rule (needs no clean image) instead of running all iterations.
    #[arg(long)]
    pub stop: bool,
    /// Run the variance rule but only record where it fires (to compare with the PSNR curve).
    #[arg(long, conflicts_with = "stop")]
    pub stop_observe: bool,
    /// The stopping rule's window (iterations).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub stop_window: u32,
    /// The stopping rule's patience (iterations without a new variance minimum).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub stop_patience: u32,
    /// A new variance minimum must be this fraction below the previous one.
    #[arg(long, default_value_t = 0.01)]
    pub stop_min_improvement: f64,
    /// Seed of the noise, the mask, the code z and the initial weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Save a checkpoint every N iterations.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub checkpoint_every: u32,
    /// Output directory (resumes the fit found in DIR/checkpoint).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub force: ForceArg,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `mathnn dip denoise`.
#[derive(Args, Debug)]
pub struct DenoiseArgs {
    #[command(flatten)]
    pub common: CommonDipArgs,
    /// Add seeded Gaussian noise of this std (0–255 scale, e.g. 25) to IMAGE first; 0: IMAGE is already noisy.
    #[arg(long, default_value_t = 0.0)]
    pub sigma: f64,
}

/// `mathnn dip inpaint`.
#[derive(Args, Debug)]
pub struct InpaintArgs {
    #[command(flatten)]
    pub common: CommonDipArgs,
    /// Mask image of IMAGE's size (after --side): white = known pixel, black = missing.
    #[arg(long, conflicts_with = "missing")]
    pub mask: Option<PathBuf>,
    /// Drop this fraction of pixels at random (seeded) instead of --mask.
    #[arg(long)]
    pub missing: Option<f64>,
}

/// `mathnn dip`.
pub fn run(args: DipArgs) -> Result<()> {
    let device = args.device.open()?;
    match args.command {
        DipCommand::Denoise(a) => {
            let clean_in = load(&a.common.image, a.common.side, "IMAGE")?;
            let corrupted =
                add_gaussian_noise(&clean_in, a.sigma, a.common.seed).context("--sigma")?;
            let clean = match &a.common.clean {
                Some(p) => Some(load(p, a.common.side, "--clean")?),
                None if a.sigma > 0.0 => Some(clean_in),
                None => None,
            };
            fit(
                &a.common,
                DipTask::Denoise,
                Upsample::Bilinear,
                corrupted,
                clean,
                &device,
            )
        }
        DipCommand::Inpaint(a) => {
            let image = load(&a.common.image, a.common.side, "IMAGE")?;
            let (_, h, w) = image.dims3()?;
            let mask = match (&a.mask, a.missing) {
                (Some(p), _) => {
                    let m = load(p, a.common.side, "--mask")?.mean_keepdim(0)?.ge(0.5)?;
                    m.to_dtype(candle_core::DType::F32)?
                }
                (None, Some(f)) => {
                    random_pixel_mask(h, w, f, a.common.seed).context("--missing")?
                }
                (None, None) => bail!("inpaint needs --mask MASK.png or --missing FRACTION"),
            };
            let corrupted = image.broadcast_mul(&mask)?;
            let clean = match &a.common.clean {
                Some(p) => Some(load(p, a.common.side, "--clean")?),
                None => a.missing.map(|_| image.clone()),
            };
            fit(
                &a.common,
                DipTask::Inpaint { mask },
                Upsample::Nearest,
                corrupted,
                clean,
                &device,
            )
        }
        DipCommand::Sr(a) => {
            if !matches!(a.factor, 2 | 4 | 8) {
                bail!("invalid --factor {}: expected 2, 4 or 8", a.factor);
            }
            let image = load(&a.common.image, a.common.side, "IMAGE")?;
            let (low, clean) = if a.low_res {
                let clean = a
                    .common
                    .clean
                    .as_ref()
                    .map(|p| load(p, None, "--clean"))
                    .transpose()?;
                (image, clean)
            } else {
                let low =
                    generalization::dip::layers::lanczos_downsample(&image.unsqueeze(0)?, a.factor)
                        .with_context(|| format!("--factor {}", a.factor))?
                        .squeeze(0)?
                        .clamp(0f32, 1f32)?;
                (low, Some(image))
            };
            let task = DipTask::SuperResolution { factor: a.factor };
            fit(&a.common, task, Upsample::Bilinear, low, clean, &device)
        }
    }
}

/// Loads an image and applies `--side`; errors name the argument.
fn load(path: &Path, side: Option<usize>, what: &str) -> Result<Tensor> {
    let img = load_image(path).with_context(|| format!("{what} {}", path.display()))?;
    Ok(match side {
        Some(s) => {
            if s == 0 || s % 32 != 0 {
                bail!(
                    "invalid --side {s}: expected a positive multiple of 32 (the network halves the image 5 times)"
                );
            }
            square_resize(&img, s)
                .with_context(|| format!("--side {s} for {what} {}", path.display()))?
        }
        None => img,
    })
}

fn fit(
    a: &CommonDipArgs,
    task: DipTask,
    default_upsample: Upsample,
    corrupted: Tensor,
    clean: Option<Tensor>,
    device: &candle_core::Device,
) -> Result<()> {
    let upsample = a.upsample.unwrap_or(default_upsample);
    let params = DipParams {
        net: SkipNetParams {
            channels: a.channels as usize,
            skip_channels: a.skip_channels as usize,
            upsample,
            ..SkipNetParams::default()
        },
        iterations: a.iters as usize,
        lr: a.lr,
        input_noise: a.input_noise,
        backtracking: !a.no_backtracking,
        seed: a.seed,
        stop: (a.stop || a.stop_observe).then_some(StopRule {
            window: a.stop_window as usize,
            patience: a.stop_patience as usize,
            min_improvement: a.stop_min_improvement,
            halt: a.stop,
        }),
        ..DipParams::default()
    };
    let (c, h, w) = corrupted.dims3()?;
    let scale = match &task {
        DipTask::SuperResolution { factor } => *factor,
        _ => 1,
    };
    if !(h * scale).is_multiple_of(32) || !(w * scale).is_multiple_of(32) {
        bail!(
            "{}: the restored image would be {}×{}; the network needs sides divisible by 32 — pass --side (e.g. --side 128)",
            a.image.display(),
            h * scale,
            w * scale
        );
    }
    let mut dip = DipFit::new(&params, task, &corrupted, clean.as_ref(), device)?;
    let _lock = crate::common::lock_run_dir(&a.out, "dip", a.force.enabled)?;
    let out = a.out.clone();
    let checkpoint = out.join("checkpoint");
    if dip.resume(&checkpoint)? {
        eprintln!(
            "resuming {} at iteration {}",
            checkpoint.display(),
            dip.iterations_done()
        );
    }
    save_image(&corrupted, &out.join("corrupted.png"))?;
    let bar = progress_bar(a.quiet, &format!("dip {c}×{h}×{w}"));
    let started = Instant::now();
    run_to_end(&mut dip, &checkpoint, a.checkpoint_every as usize, &bar)?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(img) = dip.restored() {
        save_image(&img, &out.join("restored.png"))?;
    }
    if let Some(img) = dip.output() {
        save_image(&img, &out.join("output.png"))?;
    }
    write_json(&out.join("history.json"), &dip.history())?;
    let summary = dip.summary()?;
    write_json(
        &out.join("summary.json"),
        &serde_json::json!({
            "image": a.image,
            "params": dip.params(),
            "summary": summary,
            "seconds_this_run": seconds,
        }),
    )?;
    psnr_figure(&out.join("psnr.svg"), dip.history())?;
    let fmt = |p: Option<f64>| p.map_or("-".into(), |v| format!("{v:.2} dB"));
    println!(
        "{} iterations ({:.1} s this run{}); restored image {}; PSNR of the averaged output {} (peak {}{}); SSIM {}",
        summary.iterations_done,
        seconds,
        summary.stopped_at.map_or(String::new(), |i| format!(
            ", stopped by the variance rule at iteration {i}"
        )),
        out.join("restored.png").display(),
        fmt(summary.final_psnr_ema),
        fmt(summary.peak_psnr_ema.map(|p| p.1)),
        summary
            .peak_psnr_ema
            .map_or(String::new(), |p| format!(" at iteration {}", p.0)),
        summary
            .final_ssim_ema
            .map_or("-".into(), |s| format!("{s:.4}")),
    );
    Ok(())
}
