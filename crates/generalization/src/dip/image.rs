//! Preparing images for the deep image prior: a centred square crop and an area-average resize (an
//! anti-aliased downscale: each output pixel is the mean of the input area it covers), seeded Gaussian
//! noise with clipping as the reference notebooks add it, and seeded random pixel masks for inpainting.
//! Images are (C, H, W) f32 tensors in [0, 1] on the CPU, as `nn_core::data::image_io::load_image` gives.

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::metrics::host_values;
use crate::{GenError, Result};

/// The centred crop of the largest square in `image`, resized to `side × side` as scikit-image's
/// `resize(..., anti_aliasing=True)` does (the spec's CPU-scale numbers were measured on such images): a
/// Gaussian pre-filter of σ = (factor − 1)/2 per axis (scipy's `mirror` border, truncated at 4σ), linear
/// interpolation at the centres of the output pixels, and a clip to the input's range. Upscaling (a side
/// larger than the square) is refused: the prior would see interpolation, not a photograph.
pub fn square_resize(image: &Tensor, side: usize) -> Result<Tensor> {
    let (c, h, w) = image.dims3()?;
    let s = h.min(w);
    if side == 0 || side > s {
        return Err(GenError::invalid(
            "side",
            format!(
                "must be between 1 and the image's smaller side {s} (the image is {h}×{w}), got {side}"
            ),
        ));
    }
    let cropped = image.narrow(1, (h - s) / 2, s)?.narrow(2, (w - s) / 2, s)?;
    let v = host_values(&cropped)?;
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let kernel = gaussian_kernel(s as f64 / side as f64);
    let taps = nn_core::ops::linear_taps(s, side);
    let mut out = vec![0f32; c * side * side];
    for ch in 0..c {
        let plane = &v[ch * s * s..(ch + 1) * s * s];
        // Filter rows, then columns, then interpolate rows, then columns (all separable).
        let filtered = separable_filter(plane, (s, s), &kernel, mirror);
        for (oy, &(y0, y1, fy)) in taps.iter().enumerate() {
            for (ox, &(x0, x1, fx)) in taps.iter().enumerate() {
                let at = |y: usize, x: usize| filtered[y * s + x];
                let top = (1.0 - fx) * at(y0, x0) + fx * at(y0, x1);
                let bottom = (1.0 - fx) * at(y1, x0) + fx * at(y1, x1);
                let value = ((1.0 - fy) * top + fy * bottom).clamp(lo, hi);
                out[(ch * side + oy) * side + ox] = value as f32;
            }
        }
    }
    Ok(Tensor::from_vec(out, (c, side, side), &Device::Cpu)?)
}

/// scipy's `gaussian_filter1d` weights: radius ⌊4σ + ½⌋, normalised (σ > 0).
pub(crate) fn gaussian_weights(sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as isize;
    let w: Vec<f64> = (-radius..=radius)
        .map(|x| (-0.5 * (x * x) as f64 / (sigma * sigma)).exp())
        .collect();
    let total: f64 = w.iter().sum();
    w.into_iter().map(|x| x / total).collect()
}

/// The anti-aliasing kernel of a downscale by `factor`: σ = max(0, (factor − 1)/2) (scikit-image).
fn gaussian_kernel(factor: f64) -> Vec<f64> {
    let sigma = ((factor - 1.0) / 2.0).max(0.0);
    if sigma == 0.0 {
        vec![1.0]
    } else {
        gaussian_weights(sigma)
    }
}

/// scipy's `mirror` border: `d c b | a b c d | c b a` (reflection about the edge pixel's centre).
pub(crate) fn mirror(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let j = i.rem_euclid(period);
    (if j >= n as isize { period - j } else { j }) as usize
}

/// scipy's `nearest` border: the edge value repeats.
pub(crate) fn nearest(i: isize, n: usize) -> usize {
    i.clamp(0, n as isize - 1) as usize
}

/// The same odd-length kernel `k` along axis 0 (rows), then axis 1, of an h×w plane, as scipy's separable
/// filters; `border(i, n)` maps an index outside `0..n` inside.
pub(crate) fn separable_filter(
    x: &[f64],
    (h, w): (usize, usize),
    k: &[f64],
    border: fn(isize, usize) -> usize,
) -> Vec<f64> {
    let r = (k.len() / 2) as isize;
    let tap = |i: usize, t: usize| i as isize + t as isize - r;
    let mut a = vec![0.0; h * w];
    for i in 0..h {
        for j in 0..w {
            a[i * w + j] = k
                .iter()
                .enumerate()
                .map(|(t, &wt)| wt * x[border(tap(i, t), h) * w + j])
                .sum();
        }
    }
    let mut out = vec![0.0; h * w];
    for i in 0..h {
        for j in 0..w {
            out[i * w + j] = k
                .iter()
                .enumerate()
                .map(|(t, &wt)| wt * a[i * w + border(tap(j, t), w)])
                .sum();
        }
    }
    out
}

/// `clip(x + N(0, (σ/255)²), 0, 1)` with noise drawn from `seed` (σ on the 0–255 scale, as the paper
/// states it). σ = 0 returns the image unchanged.
pub fn add_gaussian_noise(image: &Tensor, sigma: f64, seed: u64) -> Result<Tensor> {
    if !(sigma.is_finite() && sigma >= 0.0) {
        return Err(GenError::invalid(
            "sigma",
            format!("must be a finite number ≥ 0 (on the 0–255 scale), got {sigma}"),
        ));
    }
    let v = host_values(image)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let std = sigma / 255.0;
    let noisy: Vec<f32> = v
        .iter()
        .map(|&x| {
            let n: f64 = rng.sample(StandardNormal);
            (x + std * n).clamp(0.0, 1.0) as f32
        })
        .collect();
    Ok(Tensor::from_vec(noisy, image.dims(), &Device::Cpu)?)
}

/// A (1, H, W) mask of ones (known pixels) and zeros (missing), each pixel missing with probability
/// `missing`, drawn from `seed`.
pub fn random_pixel_mask(h: usize, w: usize, missing: f64, seed: u64) -> Result<Tensor> {
    if !(0.0..1.0).contains(&missing) {
        return Err(GenError::invalid(
            "missing",
            format!("the fraction of missing pixels must be in [0, 1), got {missing}"),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let m: Vec<f32> = (0..h * w)
        .map(|_| {
            if rng.random::<f64>() < missing {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    Ok(Tensor::from_vec(m, (1, h, w), &Device::Cpu)?)
}

/// A (C, H, W) image of i.i.d. U(0, 1) pixels drawn from `seed` (the white-noise target of the noise
/// impedance experiment).
pub fn uniform_noise_image(c: usize, h: usize, w: usize, seed: u64) -> Result<Tensor> {
    let mut rng = StdRng::seed_from_u64(seed);
    let v: Vec<f32> = (0..c * h * w).map(|_| rng.random::<f32>()).collect();
    Ok(Tensor::from_vec(v, (c, h, w), &Device::Cpu)?)
}

/// `image` with its pixel positions permuted by a permutation drawn from `seed` (the same for every
/// channel): the same values, no spatial structure.
pub fn permute_pixels(image: &Tensor, seed: u64) -> Result<Tensor> {
    let (c, h, w) = image.dims3()?;
    let order: Vec<u32> = nn_core::data::permutation(h * w, seed)
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let idx = Tensor::from_vec(order, h * w, image.device())?;
    Ok(image
        .reshape((c, h * w))?
        .index_select(&idx, 1)?
        .reshape((c, h, w))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scikit-image 0.26: `resize(img, (3, 3), anti_aliasing=True)` of
    /// `img = (arange(144).reshape(12, 12) * 37 % 101) / 101`, and of a 10×10 image to 4×4 (factor 2.5).
    #[test]
    fn resize_equals_scikit_image() -> Result<()> {
        let check =
            |n: usize, m: usize, mult: usize, modulus: usize, expected: &[f64]| -> Result<()> {
                let v: Vec<f32> = (0..n * n)
                    .map(|i| ((i * mult % modulus) as f64 / modulus as f64) as f32)
                    .collect();
                let img = Tensor::from_vec(v, (1, n, n), &Device::Cpu)?;
                let r = host_values(&square_resize(&img, m)?)?;
                for (k, (a, b)) in r.iter().zip(expected).enumerate() {
                    // f32 input and output: agreement to f32 rounding.
                    assert!((a - b).abs() < 1e-6, "pixel {k}: {a} vs scikit-image {b}");
                }
                Ok(())
            };
        check(
            12,
            3,
            37,
            101,
            &[
                0.490673728442,
                0.533505251654,
                0.463849822502,
                0.515977322779,
                0.501067140138,
                0.46124518224,
                0.514106725627,
                0.463224554353,
                0.507039092559,
            ],
        )?;
        check(
            10,
            4,
            53,
            89,
            &[
                0.519768510192,
                0.535651505141,
                0.575303002403,
                0.499140126916,
                0.514253481796,
                0.441758518605,
                0.531169316013,
                0.456446063063,
                0.549612704907,
                0.473764279654,
                0.524405551896,
                0.452148288383,
                0.455978779687,
                0.467974000871,
                0.439024526034,
                0.435287669583,
            ],
        )
    }

    #[test]
    fn crop_is_centred_and_upscaling_refused() -> Result<()> {
        // A 2×4 image: the centred 2×2 square is columns 1–2 (no filtering at factor 1).
        let img = Tensor::new(&[[[0f32, 1., 2., 3.], [4., 5., 6., 7.]]], &Device::Cpu)?;
        let r = square_resize(&img, 2)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(r, vec![1., 2., 5., 6.]);
        assert!(square_resize(&img, 3).is_err());
        assert_eq!(mirror(-2, 4), 2);
        assert_eq!(mirror(5, 4), 1);
        Ok(())
    }

    #[test]
    fn noise_is_seeded_clipped_and_has_the_asked_scale() -> Result<()> {
        let img = Tensor::full(0.5f32, (1, 64, 64), &Device::Cpu)?;
        let a = add_gaussian_noise(&img, 25.0, 1)?;
        let b = add_gaussian_noise(&img, 25.0, 1)?;
        assert_eq!(a.to_vec3::<f32>()?, b.to_vec3::<f32>()?);
        let v = host_values(&a)?;
        let var = v.iter().map(|x| (x - 0.5) * (x - 0.5)).sum::<f64>() / v.len() as f64;
        let expected = (25.0f64 / 255.0).powi(2);
        assert!(
            (var / expected - 1.0).abs() < 0.1,
            "variance {var} vs {expected}"
        );
        let saturated = add_gaussian_noise(
            &Tensor::ones((1, 8, 8), candle_core::DType::F32, &Device::Cpu)?,
            200.0,
            0,
        )?;
        assert!(
            host_values(&saturated)?
                .iter()
                .all(|&x| (0.0..=1.0).contains(&x))
        );
        assert!(add_gaussian_noise(&img, -1.0, 0).is_err());
        Ok(())
    }

    #[test]
    fn permuted_pixels_keep_the_values() -> Result<()> {
        let img = uniform_noise_image(2, 4, 5, 1)?;
        let p = permute_pixels(&img, 7)?;
        let mut a = host_values(&img)?;
        let mut b = host_values(&p)?;
        assert_ne!(a, b);
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        assert_eq!(a, b);
        Ok(())
    }

    #[test]
    fn mask_drops_about_the_asked_fraction() -> Result<()> {
        let m = host_values(&random_pixel_mask(100, 100, 0.5, 3)?)?;
        let missing = m.iter().filter(|&&x| x == 0.0).count() as f64 / m.len() as f64;
        assert!((missing - 0.5).abs() < 0.03);
        assert!(random_pixel_mask(4, 4, 1.0, 0).is_err());
        Ok(())
    }
}
