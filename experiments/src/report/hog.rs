//! HOG visualisations as images, for `mathnn hog` and the classical-vs-deep figures.

use std::path::Path;

use anyhow::Result;
use candle_core::{Device, Tensor};
use nn_core::data::image_io::save_image;

/// The visualisation as a grey PNG for people to look at (see [`visualisation_for_display`]).
pub fn write_visualisation_png(vis: &[f64], rows: usize, cols: usize, path: &Path) -> Result<()> {
    let pixels = visualisation_for_display(vis);
    save_image(
        &Tensor::from_vec(pixels, (1, rows, cols), &Device::Cpu)?,
        path,
    )?;
    Ok(())
}

/// Values in `[0, 1]`: divided by the maximum, then square-rooted so that weak edges stay visible (as the
/// rescaled intensities of scikit-image's HOG example); all zero when the visualisation is.
pub fn visualisation_for_display(vis: &[f64]) -> Vec<f32> {
    let max = vis.iter().copied().fold(0.0, f64::max);
    let scale = if max > 0.0 { 1.0 / max } else { 0.0 };
    vis.iter().map(|&v| (v * scale).sqrt() as f32).collect()
}
