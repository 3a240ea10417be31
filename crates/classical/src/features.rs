//! Feature matrices of an nn-core [`Dataset`]: HOG descriptors (in parallel, one workspace per thread,
//! optionally after a bilinear resize) and raw pixels, one row per image, ready for [`crate::linear`].
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use classical::features::{hog_features, pixel_features};
//! use classical::hog::HogParams;
//! use nn_core::data::{Dataset, Provenance};
//!
//! let images = Tensor::rand(0f32, 1f32, (4, 1, 16, 16), &Device::Cpu)?;
//! let labels = Tensor::new(&[0u32, 1, 0, 1], &Device::Cpu)?;
//! let data = Dataset::new(images, labels, vec!["a".into(), "b".into()], "toy", Provenance::Generated)?;
//! let params = HogParams { pixels_per_cell: (4, 4), cells_per_block: (2, 2), ..HogParams::default() };
//! let hog = hog_features(&data, &params, None)?;
//! assert_eq!(hog.dim(), (4, 3 * 3 * 2 * 2 * 9));
//! // Upsampled to 32×32 first: 8×8 cells of 4 px, 7×7 blocks.
//! let hog32 = hog_features(&data, &params, Some((32, 32)))?;
//! assert_eq!(hog32.dim(), (4, 7 * 7 * 2 * 2 * 9));
//! assert_eq!(pixel_features(&data)?.dim(), (4, 256));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use candle_core::{DType, Device};
use ndarray::Array2;
use nn_core::data::Dataset;
use rayon::prelude::*;

use crate::hog::{HogError, HogImage, HogParams, HogWorkspace};

/// What went wrong while building a feature matrix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureError {
    /// HOG refused an image or the parameters.
    #[error(transparent)]
    Hog(#[from] HogError),
    /// The data set's tensors could not be read.
    #[error("data set `{name}`: {message}")]
    Data {
        /// The data set's name.
        name: String,
        /// What failed.
        message: String,
    },
    /// An invalid resize target.
    #[error("resize target {rows}×{cols}: expected at least 1×1")]
    Resize {
        /// Rows asked for.
        rows: usize,
        /// Columns asked for.
        cols: usize,
    },
}

/// Host pixels of a data set, `[N, C, H, W]` as f32.
fn host_pixels(data: &Dataset) -> Result<Vec<f32>, FeatureError> {
    let error = |e: candle_core::Error| FeatureError::Data {
        name: data.name.clone(),
        message: e.to_string(),
    };
    data.images
        .to_device(&Device::Cpu)
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(error)
}

/// Labels as `usize`, for the classifiers.
pub fn labels(data: &Dataset) -> Result<Vec<usize>, FeatureError> {
    data.labels_vec()
        .map(|v| v.into_iter().map(|l| l as usize).collect())
        .map_err(|e| FeatureError::Data {
            name: data.name.clone(),
            message: e.to_string(),
        })
}

/// Raw pixels, one row of `C·H·W` values (in `[0, 1]`) per image.
pub fn pixel_features(data: &Dataset) -> Result<Array2<f64>, FeatureError> {
    let (c, h, w) = data.image_shape();
    let pixels = host_pixels(data)?;
    let values: Vec<f64> = pixels.iter().map(|&v| f64::from(v)).collect();
    Array2::from_shape_vec((data.len(), c * h * w), values).map_err(|e| FeatureError::Data {
        name: data.name.clone(),
        message: e.to_string(),
    })
}

/// HOG descriptors of every image (pixel values as stored, `[0, 1]`; several channels use the strongest
/// gradient per pixel), one row per image, computed in parallel on the rayon pool; the result does not
/// depend on the thread count. With `resize`, each channel is first resized bilinearly to
/// `(rows, cols)` (see [`resize_bilinear`]).
pub fn hog_features(
    data: &Dataset,
    params: &HogParams,
    resize: Option<(usize, usize)>,
) -> Result<Array2<f64>, FeatureError> {
    let (channels, h, w) = data.image_shape();
    let (rows, cols) = resize.unwrap_or((h, w));
    if rows == 0 || cols == 0 {
        return Err(FeatureError::Resize { rows, cols });
    }
    let len = params.layout(rows, cols)?.descriptor_len();
    let pixels = host_pixels(data)?;
    let n = data.len();
    let mut out = vec![0.0; n * len];
    let workspace = HogWorkspace::new(params)?;
    let image_len = channels * h * w;
    out.par_chunks_mut(len.max(1))
        .enumerate()
        .try_for_each_init(
            || (workspace.clone(), Vec::<f64>::new()),
            |(workspace, scratch), (i, row)| -> Result<(), HogError> {
                let source = &pixels[i * image_len..(i + 1) * image_len];
                scratch.clear();
                match resize {
                    Some(_) => {
                        for ch in 0..channels {
                            resize_bilinear_into(
                                &source[ch * h * w..(ch + 1) * h * w],
                                (h, w),
                                (rows, cols),
                                scratch,
                            );
                        }
                    }
                    None => scratch.extend(source.iter().map(|&v| f64::from(v))),
                }
                workspace.extract_into(
                    &HogImage::channels_first(scratch, channels, rows, cols)?,
                    row,
                )
            },
        )?;
    Array2::from_shape_vec((n, len), out).map_err(|e| FeatureError::Data {
        name: data.name.clone(),
        message: e.to_string(),
    })
}

/// Bilinear resize of one `from.0 × from.1` plane to `to.0 × to.1`, half-pixel centres and replicated
/// edges: output pixel `i` samples input coordinate `(i + 0.5)·from/to − 0.5`, clamped to the image (as
/// `skimage.transform.resize(order=1, mode='edge', anti_aliasing=False)`). Used to upsample small images
/// (8×8 digits) until HOG cells fit; downsampling with it aliases.
pub fn resize_bilinear(plane: &[f32], from: (usize, usize), to: (usize, usize)) -> Vec<f64> {
    let mut out = Vec::with_capacity(to.0 * to.1);
    resize_bilinear_into(plane, from, to, &mut out);
    out
}

/// [`resize_bilinear`] appending to `out`.
fn resize_bilinear_into(
    plane: &[f32],
    from: (usize, usize),
    to: (usize, usize),
    out: &mut Vec<f64>,
) {
    let (row_taps, col_taps) = (
        nn_core::ops::linear_taps(from.0, to.0),
        nn_core::ops::linear_taps(from.1, to.1),
    );
    let at = |r: usize, c: usize| f64::from(plane[r * from.1 + c]);
    for &(r0, r1, wr) in &row_taps {
        for &(c0, c1, wc) in &col_taps {
            let top = at(r0, c0) * (1.0 - wc) + at(r0, c1) * wc;
            let bottom = at(r1, c0) * (1.0 - wc) + at(r1, c1) * wc;
            out.push(top * (1.0 - wr) + bottom * wr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_resize_keeps_constants_and_interpolates_linearly() {
        let constant = vec![0.25f32; 8 * 8];
        assert!(
            resize_bilinear(&constant, (8, 8), (32, 32))
                .iter()
                .all(|&v| (v - 0.25).abs() < 1e-15)
        );
        // A horizontal ramp 0..7 upsampled ×4: interior samples lie on the line x = (j + 0.5)/4 − 0.5.
        let ramp: Vec<f32> = (0..8 * 8).map(|i| (i % 8) as f32).collect();
        let up = resize_bilinear(&ramp, (8, 8), (32, 32));
        for j in 2..30 {
            let expected = (j as f64 + 0.5) / 4.0 - 0.5;
            assert!(
                (up[5 * 32 + j] - expected).abs() < 1e-12,
                "column {j}: {}",
                up[5 * 32 + j]
            );
        }
        // Edges replicate.
        assert_eq!(up[0], 0.0);
        assert_eq!(up[31], 7.0);
        // Same size: the identity.
        assert_eq!(
            resize_bilinear(&ramp, (8, 8), (8, 8)),
            ramp.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()
        );
    }
}
