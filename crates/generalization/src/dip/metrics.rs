//! Image-quality measures of the deep image prior, as scikit-image computes them: PSNR
//! (`peak_signal_noise_ratio` with `data_range`) and SSIM (`structural_similarity` with its defaults:
//! 7×7 uniform window with scipy's `reflect` border, sample covariance, K1 = 0.01, K2 = 0.03, the mean over
//! the map without the 3-pixel border, averaged over channels).
//!
//! ```
//! use generalization::dip::metrics::psnr;
//! // MSE 0.01 in data range 1 → 20 dB.
//! let a = vec![0.5; 4];
//! let b = vec![0.6; 4];
//! assert!((psnr(&a, &b, 1.0).unwrap() - 20.0).abs() < 1e-9);
//! ```

use candle_core::{DType, Device, Tensor};

use crate::{GenError, Result};

/// `10·log10(range² / MSE)` in dB; `+∞` for equal images.
pub fn psnr(a: &[f64], b: &[f64], data_range: f64) -> Result<f64> {
    if a.len() != b.len() || a.is_empty() {
        return Err(GenError::invalid(
            "images",
            format!(
                "PSNR needs two non-empty images of one size, got {} and {} values",
                a.len(),
                b.len()
            ),
        ));
    }
    let mse = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64;
    Ok(10.0 * (data_range * data_range / mse).log10())
}

/// [`psnr`] of two tensors of one shape (any device and float type), data range 1.
pub fn psnr_tensors(a: &Tensor, b: &Tensor) -> Result<f64> {
    if a.dims() != b.dims() {
        return Err(GenError::invalid(
            "images",
            format!("PSNR of shapes {:?} and {:?}", a.dims(), b.dims()),
        ));
    }
    let mse = (a.to_dtype(DType::F64)? - b.to_dtype(DType::F64)?)?
        .sqr()?
        .mean_all()?
        .to_scalar::<f64>()?;
    Ok(-10.0 * mse.log10())
}

/// Host f64 values of a tensor.
pub(crate) fn host_values(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?)
}

/// Side of the SSIM window.
const WIN: usize = 7;

/// scipy.ndimage's `reflect` boundary: `d c b a | a b c d | d c b a`.
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let mut j = i.rem_euclid(period);
    if j >= n {
        j = period - 1 - j;
    }
    j as usize
}

/// The 7×7 mean of an h×w plane (separable, reflect border).
fn uniform_filter(x: &[f64], h: usize, w: usize) -> Vec<f64> {
    let r = (WIN / 2) as isize;
    let mut rows = vec![0.0; h * w];
    for i in 0..h {
        for j in 0..w {
            let s: f64 = (-r..=r)
                .map(|d| x[i * w + reflect(j as isize + d, w)])
                .sum();
            rows[i * w + j] = s / WIN as f64;
        }
    }
    let mut out = vec![0.0; h * w];
    for i in 0..h {
        for j in 0..w {
            let s: f64 = (-r..=r)
                .map(|d| rows[reflect(i as isize + d, h) * w + j])
                .sum();
            out[i * w + j] = s / WIN as f64;
        }
    }
    out
}

/// Mean SSIM of one h×w plane pair.
fn ssim_plane(x: &[f64], y: &[f64], h: usize, w: usize, data_range: f64) -> f64 {
    let ux = uniform_filter(x, h, w);
    let uy = uniform_filter(y, h, w);
    let prod = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).collect::<Vec<_>>();
    let uxx = uniform_filter(&prod(x, x), h, w);
    let uyy = uniform_filter(&prod(y, y), h, w);
    let uxy = uniform_filter(&prod(x, y), h, w);
    let np = (WIN * WIN) as f64;
    let cov_norm = np / (np - 1.0);
    let c1 = (0.01 * data_range).powi(2);
    let c2 = (0.03 * data_range).powi(2);
    let pad = (WIN - 1) / 2;
    let mut sum = 0.0;
    let mut count = 0usize;
    for i in pad..h - pad {
        for j in pad..w - pad {
            let k = i * w + j;
            let vx = cov_norm * (uxx[k] - ux[k] * ux[k]);
            let vy = cov_norm * (uyy[k] - uy[k] * uy[k]);
            let vxy = cov_norm * (uxy[k] - ux[k] * uy[k]);
            let a1 = 2.0 * ux[k] * uy[k] + c1;
            let a2 = 2.0 * vxy + c2;
            let b1 = ux[k] * ux[k] + uy[k] * uy[k] + c1;
            let b2 = vx + vy + c2;
            sum += a1 * a2 / (b1 * b2);
            count += 1;
        }
    }
    sum / count as f64
}

/// SSIM of two (C, H, W) images given as values in C planes of h×w, averaged over the channels; the
/// sides must be at least 7.
pub fn ssim(
    a: &[f64],
    b: &[f64],
    (c, h, w): (usize, usize, usize),
    data_range: f64,
) -> Result<f64> {
    if a.len() != c * h * w || b.len() != c * h * w {
        return Err(GenError::invalid(
            "images",
            format!(
                "SSIM of {c}×{h}×{w} images needs {} values each, got {} and {}",
                c * h * w,
                a.len(),
                b.len()
            ),
        ));
    }
    if h < WIN || w < WIN || c == 0 {
        return Err(GenError::invalid(
            "images",
            format!("SSIM needs images of at least {WIN}×{WIN}, got {h}×{w}"),
        ));
    }
    let plane = h * w;
    let total: f64 = (0..c)
        .map(|k| {
            ssim_plane(
                &a[k * plane..(k + 1) * plane],
                &b[k * plane..(k + 1) * plane],
                h,
                w,
                data_range,
            )
        })
        .sum();
    Ok(total / c as f64)
}

/// [`ssim`] of two (C, H, W) tensors (any device and float type), data range 1.
pub fn ssim_tensors(a: &Tensor, b: &Tensor) -> Result<f64> {
    let dims = a.dims3()?;
    if b.dims() != a.dims() {
        return Err(GenError::invalid(
            "images",
            format!("SSIM of shapes {:?} and {:?}", a.dims(), b.dims()),
        ));
    }
    ssim(&host_values(a)?, &host_values(b)?, dims, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_is_scipys_half_sample_symmetric_border() {
        let idx: Vec<usize> = (-4..8).map(|i| reflect(i, 4)).collect();
        assert_eq!(idx, vec![3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]);
    }

    #[test]
    fn ssim_of_an_image_with_itself_is_one_and_of_a_constant_shift_is_known() -> Result<()> {
        let (h, w) = (9, 10);
        let a: Vec<f64> = (0..h * w).map(|i| ((i * 37) % 17) as f64 / 17.0).collect();
        assert!((ssim(&a, &a, (1, h, w), 1.0)? - 1.0).abs() < 1e-12);
        // A constant shift δ leaves variances and covariance unchanged, so each window's SSIM is the
        // luminance term (2·μx·μy + C1) / (μx² + μy² + C1) with μy = μx + δ.
        let d = 0.1;
        let b: Vec<f64> = a.iter().map(|v| v + d).collect();
        let ux = uniform_filter(&a, h, w);
        let c1 = 1e-4;
        let mut expected = 0.0;
        let mut n = 0.0;
        for i in 3..h - 3 {
            for j in 3..w - 3 {
                let (p, q) = (ux[i * w + j], ux[i * w + j] + d);
                expected += (2.0 * p * q + c1) / (p * p + q * q + c1);
                n += 1.0;
            }
        }
        assert!((ssim(&a, &b, (1, h, w), 1.0)? - expected / n).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(psnr(&[1.0], &[1.0, 2.0], 1.0).is_err());
        assert!(ssim(&[0.0; 36], &[0.0; 36], (1, 6, 6), 1.0).is_err());
    }
}
