//! Experiment `deep-image-prior` (the talk's slides 20–21; Ulyanov, Vedaldi, Lempitsky 2018): an untrained
//! network fitted to ONE noisy photo restores it before it fits the noise. Denoising of astronaut (RGB) and
//! camera (grey) at σ = 25 with the PSNR-vs-iteration curves (the rise-then-fall of the single output, the
//! averaged output, the fit of the noisy input), where the variance stopping rule lands, the noise
//! impedance (a natural image is fitted much faster than noise or scrambled pixels) and one inpainting
//! example with half the pixels missing. Numbers beside the spec's (generalization.md §2.5–2.6).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};
use candle_core::{Device, Tensor};
use generalization::dip::baselines::{NlMeansParams, gaussian_filter, nl_means, tv_chambolle};
use generalization::dip::image::{
    add_gaussian_noise, permute_pixels, random_pixel_mask, square_resize, uniform_noise_image,
};
use generalization::dip::{
    DipFit, DipParams, DipSummary, DipTask, SkipNetParams, StopRule, Upsample,
};
use nn_core::data::DataLocator;
use nn_core::data::image_io::load_image;
use serde::{Deserialize, Serialize};

use crate::common::{ensure_dir, progress_bar, write_json};
use crate::report::grid::{Captions, save_captioned_grid};
use crate::report::plot::{Series, curve_chart};
use crate::reproduce::{Context, ExperimentResult, Figure, Profile, Row, run_dir};
use crate::runs::dip::{psnr_figure, run_to_end};

pub const NAME: &str = "deep-image-prior";
pub const TITLE: &str =
    "Deep image prior: an untrained network restores one noisy image before it fits the noise";
/// The claim the experiment checks, as the report states it.
pub const CLAIM: &str = "An untrained convolutional network fitted to one corrupted image reproduces its natural structure long before its noise: stopped early it restores the image with no training data (Ulyanov, Vedaldi & Lempitsky, CVPR 2018).";

/// The typed `details` of the experiment's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeepImagePriorDetails {
    /// The denoising runs: astronaut, then camera.
    pub denoise: Vec<DenoiseOutcome>,
    /// The noise-impedance fits, one per target.
    pub impedance: Vec<ImpedanceRun>,
    /// The inpainting run.
    pub inpainting: InpaintOutcome,
}

/// Sizes of one profile.
struct Plan {
    side: usize,
    channels: usize,
    /// Denoising iterations for astronaut and camera.
    iterations: [usize; 2],
    impedance_side: usize,
    impedance_cap: usize,
    inpaint_side: usize,
    inpaint_iterations: usize,
}

fn plan(profile: Profile) -> Plan {
    match profile {
        Profile::Smoke => Plan {
            side: 64,
            channels: 8,
            iterations: [40, 40],
            impedance_side: 64,
            impedance_cap: 40,
            inpaint_side: 64,
            inpaint_iterations: 40,
        },
        Profile::Quick => Plan {
            side: 128,
            channels: 32,
            iterations: [2500, 2500],
            impedance_side: 64,
            impedance_cap: 2000,
            inpaint_side: 128,
            inpaint_iterations: 1500,
        },
        Profile::Full => Plan {
            side: 512,
            channels: 128,
            iterations: [1800, 1800],
            impedance_side: 64,
            impedance_cap: 3000,
            inpaint_side: 512,
            inpaint_iterations: 5000,
        },
    }
}

/// A photo of `skimage-photos/` cropped and resized to `side`, or — when it cannot be found — a generated
/// smooth test image (labelled as such).
fn photo(ctx: &Context, name: &str, side: usize, grey: bool) -> Result<(Tensor, bool)> {
    let locator = DataLocator::from_env(ctx.data_dir.clone());
    match locator.locate_photo(name) {
        Ok(path) => {
            let img = load_image(&path).with_context(|| format!("{}", path.display()))?;
            Ok((square_resize(&img, side)?, true))
        }
        Err(nn_core::NnError::DataNotFound { .. }) => {
            if !ctx.quiet {
                eprintln!(
                    "   warning: skimage-photos/{name} not found; using a GENERATED test image"
                );
            }
            Ok((generated_image(side, if grey { 1 } else { 3 })?, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// A smooth image with edges (discs and gradients), for runs without the photos.
fn generated_image(side: usize, channels: usize) -> Result<Tensor> {
    let s = side as f64;
    let mut v = Vec::with_capacity(channels * side * side);
    for c in 0..channels {
        for i in 0..side {
            for j in 0..side {
                let (y, x) = (i as f64 / s, j as f64 / s);
                let disc = if (x - 0.35).powi(2) + (y - 0.4).powi(2) < 0.05 {
                    0.35
                } else {
                    0.0
                };
                let square = if (0.55..0.85).contains(&x) && (0.5..0.8).contains(&y) {
                    0.25
                } else {
                    0.0
                };
                let wave = 0.15 * ((6.0 + c as f64) * x + 4.0 * y).sin();
                v.push((0.3 + 0.3 * y + disc + square + wave).clamp(0.0, 1.0) as f32);
            }
        }
    }
    Ok(Tensor::from_vec(v, (channels, side, side), &Device::Cpu)?)
}

fn dip_params(p: &Plan, iterations: usize, seed: u64) -> DipParams {
    DipParams {
        net: SkipNetParams {
            channels: p.channels,
            ..SkipNetParams::default()
        },
        iterations,
        seed,
        stop: Some(StopRule {
            halt: false,
            ..StopRule::default()
        }),
        ..DipParams::default()
    }
}

/// Runs (or resumes) one fit to the end, checkpointing in `dir` every 100 iterations; also returns the
/// iterations run by this call.
fn run_fit(ctx: &Context, label: &str, mut fit: DipFit, dir: &Path) -> Result<(DipFit, usize)> {
    let checkpoint = dir.join("checkpoint");
    fit.resume(&checkpoint)?;
    let ran = run_to_end(&mut fit, &checkpoint, 100, &progress_bar(ctx.quiet, label))?;
    Ok((fit, ran))
}

/// One denoising run: the network against the classical denoisers on the same noisy photo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DenoiseOutcome {
    /// The photo's file name.
    pub image: String,
    /// Whether the photo was found (otherwise a generated test image was used).
    pub real_photo: bool,
    /// Side of the square image in pixels.
    pub side: usize,
    /// Channels of the network's layers.
    pub channels: usize,
    /// PSNR of the noisy input against the clean image.
    pub noisy_psnr: f64,
    /// What the fit reports.
    pub summary: DipSummary,
    /// Wall-clock seconds per iteration of the fit.
    pub seconds_per_iteration: f64,
    /// The best Gaussian filter, TV weight and non-local means h (as a multiple of σ) in hindsight on the
    /// same noisy image: (parameter, PSNR).
    pub gaussian_best: (f64, f64),
    /// The best TV weight in hindsight: (parameter, PSNR).
    pub tv_best: (f64, f64),
    /// The best non-local means h in hindsight: (parameter, PSNR).
    pub nlm_best: (f64, f64),
    /// Non-local means at the spec's setting, h = 0.8σ: PSNR.
    pub nlm_spec: f64,
}

/// The best PSNR against `clean` over `params` of a denoiser, and its parameter.
fn best_in_hindsight(
    noisy: &Tensor,
    clean: &Tensor,
    params: impl Iterator<Item = f64>,
    denoise: impl Fn(&Tensor, f64) -> generalization::Result<Tensor>,
) -> Result<(f64, f64)> {
    let mut best = (f64::NAN, f64::NEG_INFINITY);
    for p in params {
        let psnr = generalization::dip::metrics::psnr_tensors(&denoise(noisy, p)?, clean)?;
        if psnr > best.1 {
            best = (p, psnr);
        }
    }
    Ok(best)
}

fn denoise(
    ctx: &Context,
    p: &Plan,
    device: &Device,
    name: &str,
    grey: bool,
    iterations: usize,
) -> Result<DenoiseOutcome> {
    let (clean, real) = photo(ctx, name, p.side, grey)?;
    let noisy = add_gaussian_noise(&clean, 25.0, 0)?;
    let noisy_psnr = generalization::dip::metrics::psnr_tensors(&noisy, &clean)?;
    let stem = name.trim_end_matches(".png");
    let dir = ensure_dir(&run_dir(
        ctx,
        &format!("denoise-{stem}-{}-c{}", p.side, p.channels),
    ))?;
    let fit = DipFit::new(
        &dip_params(p, iterations, 0),
        DipTask::Denoise,
        &noisy,
        Some(&clean),
        device,
    )?;
    let started = Instant::now();
    let (fit, ran) = run_fit(ctx, &format!("dip {stem}"), fit, &dir)?;
    let seconds = started.elapsed().as_secs_f64();
    let ran = ran.max(1);
    psnr_figure(&ctx.out.join(format!("psnr_{stem}.svg")), fit.history())?;
    let restored = fit.restored().context("no output")?;
    let last = fit.output().context("no output")?;
    let (last, restored) = (
        last.to_device(&Device::Cpu)?,
        restored.to_device(&Device::Cpu)?,
    );
    let psnr = |x: &Tensor| generalization::dip::metrics::psnr_tensors(x, &clean);
    let grid = Tensor::stack(&[&clean, &noisy, &last, &restored], 0)?;
    let captions = Captions::columns(
        format!(
            "{stem}, {}², σ = 25, {} channels: PSNR against the clean image",
            p.side, p.channels
        ),
        &[
            "clean",
            &format!("noisy {noisy_psnr:.2} dB"),
            &format!("output {:.2} dB", psnr(&last)?),
            &format!("averaged {:.2} dB", psnr(&restored)?),
        ],
    );
    save_captioned_grid(
        &grid,
        4,
        &captions,
        &ctx.out.join(format!("denoise_{stem}.png")),
    )?;
    write_json(&dir.join("history.json"), &fit.history())?;
    let gaussian_best = best_in_hindsight(
        &noisy,
        &clean,
        (2..=12).map(|k| k as f64 * 0.25),
        gaussian_filter,
    )?;
    let tv_best = best_in_hindsight(
        &noisy,
        &clean,
        (1..=15).map(|k| k as f64 * 0.02),
        tv_chambolle,
    )?;
    // scikit-image's documented setting for σ known: 5×5 patches searched within 6 pixels, h a multiple
    // of σ (benches/peers/denoise.py runs the same grid in scikit-image).
    let sigma = 25.0 / 255.0;
    let nlm = |x: &Tensor, f: f64| {
        nl_means(
            x,
            NlMeansParams {
                patch_size: 5,
                patch_distance: 6,
                h: f * sigma,
                sigma,
            },
        )
    };
    let nlm_best = best_in_hindsight(&noisy, &clean, (4..=14).map(|k| k as f64 * 0.1), nlm)?;
    let nlm_spec = generalization::dip::metrics::psnr_tensors(&nlm(&noisy, 0.8)?, &clean)?;
    Ok(DenoiseOutcome {
        image: name.into(),
        real_photo: real,
        side: p.side,
        channels: p.channels,
        noisy_psnr,
        summary: fit.summary()?,
        seconds_per_iteration: seconds / ran as f64,
        gaussian_best,
        tv_best,
        nlm_best,
        nlm_spec,
    })
}

/// One noise-impedance fit: iterations to fit one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImpedanceRun {
    /// The target: natural image, image + noise, permuted pixels or white noise.
    pub condition: String,
    /// Iterations to reach 25 and 30 dB PSNR(output, target); `None` when not reached within the cap.
    pub to_25db: Option<usize>,
    /// Iterations to reach 30 dB; `None` when not reached within the cap.
    pub to_30db: Option<usize>,
    /// (iteration, PSNR(output, target)) along the fit.
    pub curve: Vec<(usize, f64)>,
}

/// Fits the network (no input noise, no averaging, no backtracking) to four targets and counts the
/// iterations to 25 and 30 dB: the natural image, image + noise (σ = 25), its pixels permuted, white noise.
fn impedance(ctx: &Context, p: &Plan, device: &Device) -> Result<Vec<ImpedanceRun>> {
    let (natural, _) = photo(ctx, "astronaut.png", p.impedance_side, false)?;
    let (c, h, w) = natural.dims3()?;
    let noisy = add_gaussian_noise(&natural, 25.0, 1)?;
    let permuted = permute_pixels(&natural, 2)?;
    let white = uniform_noise_image(c, h, w, 3)?;
    let mut runs = Vec::new();
    for (condition, target) in [
        ("natural image", &natural),
        ("image + noise (σ = 25)", &noisy),
        ("permuted pixels", &permuted),
        ("white noise", &white),
    ] {
        let params = DipParams {
            net: SkipNetParams {
                channels: 32.min(p.channels.max(8)),
                ..SkipNetParams::default()
            },
            iterations: p.impedance_cap,
            input_noise: 0.0,
            backtracking: false,
            seed: 0,
            ..DipParams::default()
        };
        let mut fit = DipFit::new(&params, DipTask::Denoise, target, None, device)?;
        let bar = progress_bar(ctx.quiet, &format!("impedance: {condition}"));
        bar.set_length(p.impedance_cap as u64);
        let (mut to25, mut to30) = (None, None);
        let mut curve = Vec::new();
        while !fit.finished() {
            fit.step()?;
            let r = *fit.history().last().expect("a step ran");
            let it = r.iteration + 1;
            curve.push((it, r.psnr_corrupted));
            if to25.is_none() && r.psnr_corrupted >= 25.0 {
                to25 = Some(it);
            }
            if to30.is_none() && r.psnr_corrupted >= 30.0 {
                to30 = Some(it);
                break;
            }
            bar.set_position(it as u64);
        }
        bar.finish_and_clear();
        runs.push(ImpedanceRun {
            condition: condition.into(),
            to_25db: to25,
            to_30db: to30,
            curve,
        });
    }
    let series: Vec<Series> = runs
        .iter()
        .map(|r| Series {
            name: r.condition.clone(),
            points: r.curve.iter().map(|&(i, p)| (i as f64, p)).collect(),
        })
        .collect();
    curve_chart(
        &ctx.out.join("noise_impedance.svg"),
        &format!("Noise impedance: fitting one {h}×{w} target (PSNR of the output vs the target)"),
        "iteration",
        "PSNR (dB)",
        &series,
    )?;
    Ok(runs)
}

/// The inpainting run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InpaintOutcome {
    /// The photo's file name.
    pub image: String,
    /// Side of the square image in pixels.
    pub side: usize,
    /// Fraction of pixels missing.
    pub missing: f64,
    /// PSNR of the masked input against the clean image.
    pub psnr_masked_input: f64,
    /// What the fit reports.
    pub summary: DipSummary,
}

fn inpaint(ctx: &Context, p: &Plan, device: &Device) -> Result<InpaintOutcome> {
    let (clean, _) = photo(ctx, "camera.png", p.inpaint_side, true)?;
    let (_, h, w) = clean.dims3()?;
    let mask = random_pixel_mask(h, w, 0.5, 0)?;
    let masked = clean.broadcast_mul(&mask)?;
    let psnr_masked_input = generalization::dip::metrics::psnr_tensors(&masked, &clean)?;
    let params = DipParams {
        net: SkipNetParams {
            channels: p.channels,
            upsample: Upsample::Nearest,
            ..SkipNetParams::default()
        },
        iterations: p.inpaint_iterations,
        ..DipParams::default()
    };
    let dir = ensure_dir(&run_dir(
        ctx,
        &format!("inpaint-camera-{}-c{}", p.inpaint_side, p.channels),
    ))?;
    let fit = DipFit::new(
        &params,
        DipTask::Inpaint { mask },
        &masked,
        Some(&clean),
        device,
    )?;
    let (fit, _) = run_fit(ctx, "dip inpaint", fit, &dir)?;
    let restored = fit
        .restored()
        .context("no output")?
        .to_device(&Device::Cpu)?;
    let grid = Tensor::stack(&[&masked, &restored, &clean], 0)?;
    let psnr_restored = generalization::dip::metrics::psnr_tensors(&restored, &clean)?;
    let captions = Captions::columns(
        format!(
            "camera {}², 50 % of the pixels missing: PSNR against the clean image",
            p.inpaint_side
        ),
        &[
            &format!("masked input {psnr_masked_input:.2} dB"),
            &format!("restored {psnr_restored:.2} dB"),
            "clean",
        ],
    );
    save_captioned_grid(&grid, 3, &captions, &ctx.out.join("inpaint_camera.png"))?;
    Ok(InpaintOutcome {
        image: "camera.png".into(),
        side: p.inpaint_side,
        missing: 0.5,
        psnr_masked_input,
        summary: fit.summary()?,
    })
}

fn db(v: Option<f64>) -> String {
    v.map_or("-".into(), |p| format!("{p:.2} dB"))
}

/// The four rows of one denoised photo beside the spec's numbers: noisy input, peak of the averaged
/// output, classical denoisers and where the variance rule stops.
fn denoise_rows(
    o: &DenoiseOutcome,
    paper_peak: &str,
    paper_noisy: &str,
    paper_classical: &str,
) -> [Row; 4] {
    let s = &o.summary;
    let stem = if o.real_photo {
        o.image.trim_end_matches(".png").to_string()
    } else {
        format!("generated stand-in for {}", o.image)
    };
    [
        Row {
            quantity: format!("{stem} {0}² σ = 25: PSNR of the noisy input", o.side),
            paper: format!("{paper_noisy} dB"),
            ours: format!("{:.2} dB", o.noisy_psnr),
            note: "clipped to [0, 1]".into(),
        },
        Row {
            quantity: format!(
                "{stem}: peak PSNR of the averaged output ({} channels)",
                o.channels
            ),
            paper: format!("{paper_peak} dB"),
            ours: s
                .peak_psnr_ema
                .map_or("-".into(), |(i, v)| format!("{v:.2} dB @ {}", i + 1)),
            note: format!(
                "single output peak {}",
                s.peak_psnr_output
                    .map_or("-".into(), |(i, v)| format!("{v:.2} dB @ {}", i + 1))
            ),
        },
        Row {
            quantity: format!("{stem}: classical denoisers, best parameter in hindsight"),
            paper: paper_classical.into(),
            ours: format!(
                "Gaussian {:.2} dB (σ = {}), TV {:.2} dB (weight {:.2}), NLM {:.2} dB at the spec's h = \
                 0.8σ ({:.2} dB at h = {:.1}σ)",
                o.gaussian_best.1,
                o.gaussian_best.0,
                o.tv_best.1,
                o.tv_best.0,
                o.nlm_spec,
                o.nlm_best.1,
                o.nlm_best.0
            ),
            note: "computed as scikit-image 0.26 does (tests compare values)".into(),
        },
        Row {
            quantity: format!("{stem}: PSNR where the variance rule stops (no clean image used)"),
            paper: "— (open question in the paper)".into(),
            ours: match s.stopped_at {
                Some(i) => format!("{} @ {}", db(s.stop_psnr_ema), i + 1),
                None => "did not fire".into(),
            },
            note: format!(
                "final averaged output {} after {} iterations",
                db(s.final_psnr_ema),
                s.iterations_done
            ),
        },
    ]
}

/// The noise-impedance row (natural image vs white noise), when both runs are there.
fn impedance_row(impedance: &[ImpedanceRun]) -> Option<Row> {
    let find = |c: &str| impedance.iter().find(|r| r.condition.starts_with(c));
    let it = |v: Option<usize>| v.map_or("> cap".to_string(), |i| i.to_string());
    let (nat, white) = (find("natural")?, find("white")?);
    Some(Row {
        quantity: "noise impedance: iterations to 25 dB, natural image vs white noise".into(),
        paper: "150 vs 700 (spec §2.6, 64²)".into(),
        ours: format!("{} vs {}", it(nat.to_25db), it(white.to_25db)),
        note: format!(
            "image + noise {}, permuted pixels {}",
            it(find("image").and_then(|r| r.to_25db)),
            it(find("permuted").and_then(|r| r.to_25db))
        ),
    })
}

/// The inpainting row.
fn inpainting_row(inpainting: &InpaintOutcome) -> Row {
    Row {
        quantity: format!(
            "inpainting camera {0}², 50 % of pixels missing: PSNR",
            inpainting.side
        ),
        paper: "29.80 dB (paper, C.man 512²)".into(),
        ours: db(inpainting.summary.final_psnr_ema),
        note: format!("masked input {:.2} dB", inpainting.psnr_masked_input),
    }
}

/// The notes: timing of the astronaut fit, how to read the figures, what is left out.
fn notes(p: &Plan, astronaut: &DenoiseOutcome) -> Vec<String> {
    vec![
        format!(
            "{:.3} s per iteration at {}², {} channels (RAYON_NUM_THREADS={}).",
            astronaut.seconds_per_iteration,
            p.side,
            p.channels,
            std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset: all cores".into())
        ),
        "Each denoising figure shows the rise-then-fall: the single output's PSNR against the clean image peaks, then falls while its PSNR against the noisy input keeps rising (the network starts fitting the noise); the averaged output stays higher and falls later.".into(),
        "×4 super-resolution is in the library and the CLI (`mathnn dip sr`), not in this experiment: no bicubic baseline or Set5/Set14 images here.".into(),
    ]
}

/// The figures the phases wrote, with their captions.
fn figures() -> Vec<Figure> {
    let psnr = |image: &str| {
        format!(
            "Denoising the {image} photo: PSNR of the network's output against the clean image and against the noisy input, and of the running average of outputs, per iteration."
        )
    };
    let grid = |image: &str| {
        format!(
            "Denoising the {image} photo: clean, noisy, the network's output at its best iteration and at the end, and the baselines, each titled with its PSNR."
        )
    };
    vec![
        Figure::new("psnr_astronaut.svg", psnr("astronaut")),
        Figure::new("psnr_camera.svg", psnr("cameraman")),
        Figure::new("denoise_astronaut.png", grid("astronaut")),
        Figure::new("denoise_camera.png", grid("cameraman")),
        Figure::new(
            "noise_impedance.svg",
            "Noise impedance: fitting loss per iteration for a natural image, the same image with scrambled pixels, and pure noise.",
        ),
        Figure::new(
            "inpaint_camera.png",
            "Inpainting: the cameraman photo, its masked version and the network's restoration.",
        ),
    ]
}

/// Runs the experiment.
pub fn run(ctx: &Context) -> Result<ExperimentResult> {
    let p = plan(ctx.profile);
    let device = ctx.device.open()?;
    let astronaut = denoise(ctx, &p, &device, "astronaut.png", false, p.iterations[0])?;
    let camera = denoise(ctx, &p, &device, "camera.png", true, p.iterations[1])?;
    let impedance = impedance(ctx, &p, &device)?;
    let inpainting = inpaint(ctx, &p, &device)?;
    let real = astronaut.real_photo && camera.real_photo;
    let mut rows = Vec::new();
    rows.extend(denoise_rows(
        &astronaut,
        "27.84 @ 1,900 (spec §2.6, XLA); 26.98 @ 2,200 (PyTorch)",
        "20.77",
        "TV 25.62, NLM 26.08, CBM3D 28.57 (spec §2.6)",
    ));
    rows.extend(denoise_rows(
        &camera,
        "28.59 @ 1,100 (spec §2.6, XLA)",
        "20.61",
        "TV 28.21, NLM 28.71, BM3D 30.10 (spec §2.6)",
    ));
    rows.extend(impedance_row(&impedance));
    rows.push(inpainting_row(&inpainting));
    let notes = notes(&p, &astronaut);
    let details = DeepImagePriorDetails {
        denoise: vec![astronaut, camera],
        impedance,
        inpainting,
    };
    Ok(ExperimentResult {
        name: NAME.into(),
        title: TITLE.into(),
        profile: ctx.profile,
        data: if real {
            "real data (scikit-image photos)".into()
        } else {
            "generated data".into()
        },
        rows,
        figures: figures(),
        notes,
        seconds: 0.0,
        details: serde_json::to_value(&details)?,
    })
}
