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

/// The centred `side × side` crop of the largest square in `image`, resized to `side × side` by area
/// averaging. Upscaling (a side larger than the square) is refused: the prior would see interpolation, not
/// a photograph.
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
    let weights = area_weights(s, side);
    let mut out = vec![0f32; c * side * side];
    let mut rows = vec![0f64; side * s];
    for ch in 0..c {
        let plane = &v[ch * s * s..(ch + 1) * s * s];
        // Rows first: rows[o, x] = Σ_y w(o, y)·plane[y, x].
        rows.iter_mut().for_each(|r| *r = 0.0);
        for (o, taps) in weights.iter().enumerate() {
            for &(y, wt) in taps {
                for x in 0..s {
                    rows[o * s + x] += wt * plane[y * s + x];
                }
            }
        }
        for oy in 0..side {
            for (ox, taps) in weights.iter().enumerate() {
                let value: f64 = taps.iter().map(|&(x, wt)| wt * rows[oy * s + x]).sum();
                out[(ch * side + oy) * side + ox] = value as f32;
            }
        }
    }
    Ok(Tensor::from_vec(out, (c, side, side), &Device::Cpu)?)
}

/// For each of `m` output cells over `n` input cells, the input cells it overlaps and their weights
/// (overlap / cell width, summing to 1).
fn area_weights(n: usize, m: usize) -> Vec<Vec<(usize, f64)>> {
    let scale = n as f64 / m as f64;
    (0..m)
        .map(|o| {
            let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
            let mut taps = Vec::new();
            let mut i = lo.floor() as usize;
            while (i as f64) < hi && i < n {
                let overlap = (hi.min(i as f64 + 1.0) - lo.max(i as f64)).max(0.0);
                if overlap > 0.0 {
                    taps.push((i, overlap / scale));
                }
                i += 1;
            }
            taps
        })
        .collect()
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

    #[test]
    fn area_resize_by_an_integer_factor_is_the_block_mean() -> Result<()> {
        let v: Vec<f32> = (0..36).map(|i| i as f32).collect();
        let img = Tensor::from_vec(v, (1, 6, 6), &Device::Cpu)?;
        let r = square_resize(&img, 3)?.flatten_all()?.to_vec1::<f32>()?;
        // Block (0,0) holds 0, 1, 6, 7 → 3.5.
        assert_eq!(r[0], 3.5);
        assert_eq!(r[8], (28.0 + 29.0 + 34.0 + 35.0) / 4.0);
        Ok(())
    }

    #[test]
    fn fractional_area_weights_sum_to_one_and_crop_is_centred() -> Result<()> {
        for (n, m) in [(7, 3), (10, 4), (5, 5)] {
            for taps in area_weights(n, m) {
                let s: f64 = taps.iter().map(|t| t.1).sum();
                assert!((s - 1.0).abs() < 1e-12);
            }
        }
        // A 2×4 image: the centred 2×2 square is columns 1–2.
        let img = Tensor::new(&[[[0f32, 1., 2., 3.], [4., 5., 6., 7.]]], &Device::Cpu)?;
        let r = square_resize(&img, 2)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(r, vec![1., 2., 5., 6.]);
        assert!(square_resize(&img, 3).is_err());
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
