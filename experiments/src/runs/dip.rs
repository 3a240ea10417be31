//! The deep-image-prior loop with checkpoints and its PSNR figure, shared by `mathnn dip` and the
//! deep-image-prior experiment.

use std::path::Path;

use anyhow::Result;
use generalization::dip::{DipFit, DipRecord};

use crate::report::plot::{Series, curve_chart};

/// Steps `dip` until it is finished, saving it to `checkpoint` every `every` iterations and at the end, with
/// the PSNR in `bar`'s message; returns the iterations this call ran.
pub fn run_to_end(
    dip: &mut DipFit,
    checkpoint: &Path,
    every: usize,
    bar: &indicatif::ProgressBar,
) -> Result<usize> {
    let before = dip.iterations_done();
    bar.set_length(dip.params().iterations as u64);
    bar.set_position(before as u64);
    while !dip.finished() {
        dip.step()?;
        let r = *dip.history().last().expect("a step ran");
        bar.set_position(dip.iterations_done() as u64);
        bar.set_message(match r.psnr_ema {
            Some(p) => format!(
                "PSNR {:.2} dB (averaged {p:.2})",
                r.psnr_output.unwrap_or(f64::NAN)
            ),
            None => format!("PSNR vs input {:.2} dB", r.psnr_corrupted),
        });
        if dip.iterations_done().is_multiple_of(every) || dip.finished() {
            dip.save(checkpoint)?;
        }
    }
    bar.finish_and_clear();
    Ok(dip.iterations_done() - before)
}

/// PSNR against the clean image (output and average, when known) and against the corrupted input.
pub fn psnr_figure(path: &Path, history: &[DipRecord]) -> Result<()> {
    let curve = |name: &str, f: &dyn Fn(&DipRecord) -> Option<f64>| Series {
        name: name.to_string(),
        points: history
            .iter()
            .filter_map(|r| f(r).map(|p| ((r.iteration + 1) as f64, p)))
            .collect(),
    };
    let mut series = vec![curve("output vs corrupted input", &|r| {
        Some(r.psnr_corrupted)
    })];
    if history.iter().any(|r| r.psnr_output.is_some()) {
        series.push(curve("output vs clean", &|r| r.psnr_output));
        series.push(curve("averaged output vs clean", &|r| r.psnr_ema));
    }
    curve_chart(
        path,
        "Deep image prior: PSNR per iteration",
        "iteration",
        "PSNR (dB)",
        &series,
    )
}
