//! Classical denoisers to set the deep image prior against, computed as scikit-image 0.26 computes them
//! (checked against its values in the tests): a Gaussian filter (`skimage.filters.gaussian`: scipy's
//! `nearest` border, truncated at 4σ), total-variation denoising by Chambolle's projection algorithm
//! (`skimage.restoration.denoise_tv_chambolle`: each channel on its own, stop when the energy changes by
//! less than `eps` times its initial value, at most 200 iterations) and non-local means
//! (`skimage.restoration.denoise_nl_means` in its fast mode, see [`nl_means`]). Images are (C, H, W) f32
//! tensors.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use generalization::dip::baselines::{gaussian_filter, tv_chambolle};
//!
//! let x = Tensor::full(0.5f32, (1, 8, 8), &Device::Cpu)?;
//! // A constant image is a fixed point of both.
//! let g = gaussian_filter(&x, 1.5)?.flatten_all()?.to_vec1::<f32>()?;
//! assert!(g.iter().all(|v| (v - 0.5).abs() < 1e-6));
//! let t = tv_chambolle(&x, 0.1)?.flatten_all()?.to_vec1::<f32>()?;
//! assert!(t.iter().all(|v| (v - 0.5).abs() < 1e-6));
//! # Ok::<(), generalization::GenError>(())
//! ```

use candle_core::{Device, Tensor};

use super::image::{gaussian_weights, mirror, nearest, separable_filter};
use super::metrics::host_values;
use crate::{GenError, Result};

/// Gaussian blur of every channel with standard deviation `sigma` pixels (> 0).
pub fn gaussian_filter(image: &Tensor, sigma: f64) -> Result<Tensor> {
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(GenError::invalid(
            "sigma",
            format!("must be > 0, got {sigma}"),
        ));
    }
    let (c, h, w) = image.dims3()?;
    let v = host_values(image)?;
    let k = gaussian_weights(sigma);
    let mut out = Vec::with_capacity(v.len());
    for ch in 0..c {
        let plane = &v[ch * h * w..(ch + 1) * h * w];
        let filtered = separable_filter(plane, (h, w), &k, nearest);
        out.extend(filtered.into_iter().map(|x| x as f32));
    }
    Ok(Tensor::from_vec(out, (c, h, w), &Device::Cpu)?)
}

/// Total-variation denoising of every channel (Chambolle 2004, as scikit-image), weight > 0 (larger:
/// smoother), `eps = 2e-4`, at most 200 iterations.
pub fn tv_chambolle(image: &Tensor, weight: f64) -> Result<Tensor> {
    if !(weight.is_finite() && weight > 0.0) {
        return Err(GenError::invalid(
            "weight",
            format!("must be > 0, got {weight}"),
        ));
    }
    let (c, h, w) = image.dims3()?;
    let v = host_values(image)?;
    let mut out = Vec::with_capacity(v.len());
    for ch in 0..c {
        let plane = tv_plane(&v[ch * h * w..(ch + 1) * h * w], h, w, weight, 2e-4, 200);
        out.extend(plane.into_iter().map(|x| x as f32));
    }
    Ok(Tensor::from_vec(out, (c, h, w), &Device::Cpu)?)
}

/// One h×w plane: the dual variable p = (p_y, p_x), out = image − div p.
fn tv_plane(image: &[f64], h: usize, w: usize, weight: f64, eps: f64, max_iter: usize) -> Vec<f64> {
    let n = h * w;
    let (mut py, mut px) = (vec![0.0; n], vec![0.0; n]);
    let (mut gy, mut gx) = (vec![0.0; n], vec![0.0; n]);
    let mut d = vec![0.0; n];
    let mut out = image.to_vec();
    let tau = 1.0 / 4.0;
    let (mut e_init, mut e_prev) = (0.0, 0.0);
    for i in 0..max_iter {
        if i > 0 {
            // d = −(p_y + p_x), then d[1:, :] += p_y[:-1, :] and d[:, 1:] += p_x[:, :-1].
            for k in 0..n {
                d[k] = -(py[k] + px[k]);
            }
            for r in 1..h {
                for col in 0..w {
                    d[r * w + col] += py[(r - 1) * w + col];
                }
            }
            for r in 0..h {
                for col in 1..w {
                    d[r * w + col] += px[r * w + col - 1];
                }
            }
            for k in 0..n {
                out[k] = image[k] + d[k];
            }
        }
        let mut e: f64 = d.iter().map(|v| v * v).sum();
        // Forward differences; the last row/column of g keeps its previous value (zero), as in numpy.
        for r in 0..h.saturating_sub(1) {
            for col in 0..w {
                gy[r * w + col] = out[(r + 1) * w + col] - out[r * w + col];
            }
        }
        for r in 0..h {
            for col in 0..w.saturating_sub(1) {
                gx[r * w + col] = out[r * w + col + 1] - out[r * w + col];
            }
        }
        let mut norm_sum = 0.0;
        for k in 0..n {
            let norm = (gy[k] * gy[k] + gx[k] * gx[k]).sqrt();
            norm_sum += norm;
            let scale = 1.0 + norm * (tau / weight);
            py[k] = (py[k] - tau * gy[k]) / scale;
            px[k] = (px[k] - tau * gx[k]) / scale;
        }
        e += weight * norm_sum;
        e /= n as f64;
        if i == 0 {
            e_init = e;
            e_prev = e;
        } else if (e_prev - e).abs() < eps * e_init {
            break;
        } else {
            e_prev = e;
        }
    }
    out
}

/// Parameters of [`nl_means`], with scikit-image's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NlMeansParams {
    /// Side of the compared patches; an even side is raised by one, as scikit-image does. Default 7.
    pub patch_size: usize,
    /// Largest shift, in pixels along each axis, at which similar patches are looked for. Default 11.
    pub patch_distance: usize,
    /// Cut-off distance in grey levels (> 0): the larger, the less similar a patch may be and still
    /// count. Default 0.1.
    pub h: f64,
    /// Standard deviation of the noise when known (≥ 0): its expected contribution is taken off every
    /// patch distance. Default 0.
    pub sigma: f64,
}

impl Default for NlMeansParams {
    fn default() -> Self {
        Self {
            patch_size: 7,
            patch_distance: 11,
            h: 0.1,
            sigma: 0.0,
        }
    }
}

impl NlMeansParams {
    fn validate(&self) -> Result<()> {
        if self.patch_size == 0 {
            return Err(GenError::invalid("patch_size", "must be at least 1"));
        }
        if !(self.h.is_finite() && self.h > 0.0) {
            return Err(GenError::invalid(
                "h",
                format!("must be > 0, got {}", self.h),
            ));
        }
        if !(self.sigma.is_finite() && self.sigma >= 0.0) {
            return Err(GenError::invalid(
                "sigma",
                format!("must be ≥ 0, got {}", self.sigma),
            ));
        }
        Ok(())
    }
}

/// Patch distances above this (in units of h²) give a weight of zero, as in scikit-image.
const NLM_DISTANCE_CUTOFF: f64 = 5.0;

/// Non-local means (Buades et al. 2005) in the fast formulation of Darbon et al. (2008) that scikit-image's
/// `denoise_nl_means(…, fast_mode=True, channel_axis=0)` uses, and with its conventions, so that values
/// agree to rounding (tests): every pixel becomes the weighted mean of the pixels within `patch_distance`,
/// weighted by `exp(−d/(C·h²·s²))` where d is the squared difference of the two patches summed over the
/// channels (less `2σ²` per pixel and channel, floored at zero) and `exp` is Schraudolph's approximation.
/// As in scikit-image, the patch sums are box sums of an integral image over (s−1)×(s−1) pixels, and the
/// image is extended by reflection (`d c b | a b c d`).
pub fn nl_means(image: &Tensor, params: NlMeansParams) -> Result<Tensor> {
    params.validate()?;
    let (c, h, w) = image.dims3()?;
    let v = host_values(image)?;
    let s = params.patch_size | 1;
    let (o, d) = (s / 2, params.patch_distance);
    let pad = o + d + 1;
    let (nr, nc) = (h + 2 * pad, w + 2 * pad);
    let plane = nr * nc;
    // Channel-last like scikit-image, so that the channel sums run in its order.
    let mut padded = vec![0.0; plane * c];
    for r in 0..nr {
        let src_r = mirror(r as isize - pad as isize, h);
        for col in 0..nc {
            let src_c = mirror(col as isize - pad as isize, w);
            for ch in 0..c {
                padded[(r * nc + col) * c + ch] = v[(ch * h + src_r) * w + src_c];
            }
        }
    }
    let mut result = vec![0.0; plane * c];
    let mut weights = vec![0.0; plane];
    let mut integral = vec![0.0; plane];
    let noise = c as f64 * 2.0 * params.sigma * params.sigma;
    let scale = c as f64 * params.h * params.h * (s * s) as f64;
    let (di, ni) = (d as isize, nr as isize);
    let (o_i, nc_i) = (o as isize, nc as isize);
    for tr in -di..=di {
        for tc in 0..=di {
            // Each pair is credited to both of its pixels; with tc = 0 the loop meets the pair from both
            // sides (and the zero shift credits a pixel to itself twice), hence the half weight.
            let alpha = if tc == 0 { 0.5 } else { 1.0 };
            // Integral image of the squared difference between the image and its (tr, tc) shift. Like
            // scikit-image it is not cleared between shifts: the cells that keep older values form a
            // constant border row, which cancels in every box sum below.
            for r in 1.max(-tr)..ni.min(ni - tr) {
                for col in 1..nc_i - tc {
                    let (a, b) = (
                        (r * nc_i + col) as usize,
                        ((r + tr) * nc_i + col + tc) as usize,
                    );
                    let mut dist = 0.0;
                    for ch in 0..c {
                        let t = padded[a * c + ch] - padded[b * c + ch];
                        dist += t * t;
                    }
                    dist -= noise;
                    integral[a] = dist + integral[a - nc] + integral[a - 1] - integral[a - nc - 1];
                }
            }
            let at = |r: isize, col: isize| integral[(r * nc_i + col) as usize];
            for r in o_i.max(o_i - tr)..(ni - o_i).min(ni - o_i - tr) {
                for col in o_i..nc_i - o_i - tc {
                    let box_sum = at(r + o_i, col + o_i) + at(r - o_i, col - o_i)
                        - at(r - o_i, col + o_i)
                        - at(r + o_i, col - o_i);
                    let dist = box_sum.max(0.0) / scale;
                    if dist > NLM_DISTANCE_CUTOFF {
                        continue;
                    }
                    let weight = alpha * schraudolph_exp(-dist);
                    let (a, b) = (
                        (r * nc_i + col) as usize,
                        ((r + tr) * nc_i + col + tc) as usize,
                    );
                    weights[a] += weight;
                    weights[b] += weight;
                    for ch in 0..c {
                        result[a * c + ch] += weight * padded[b * c + ch];
                        result[b * c + ch] += weight * padded[a * c + ch];
                    }
                }
            }
        }
    }
    // The zero shift gives every pixel a positive weight, so no division by zero.
    let mut out = vec![0f32; c * h * w];
    for r in 0..h {
        for col in 0..w {
            let a = (r + pad) * nc + col + pad;
            for ch in 0..c {
                out[(ch * h + r) * w + col] = (result[a * c + ch] / weights[a]) as f32;
            }
        }
    }
    Ok(Tensor::from_vec(out, (c, h, w), &Device::Cpu)?)
}

/// Schraudolph's (1999) approximation of `exp(y)` by writing `y / ln 2` into a double's exponent bits,
/// as scikit-image's non-local means does (≈ 4 % relative error; for y in NLM's range [−5, 0]).
fn schraudolph_exp(y: f64) -> f64 {
    let high = (1_512_775.0 * y + 1_072_632_447.0) as i32;
    f64::from_bits(u64::from(high as u32) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `img = (arange(42).reshape(6, 7) * 29 % 31) / 31` as f64 values in a (1, 6, 7) f32 tensor.
    fn fixture() -> Result<Tensor> {
        let v: Vec<f32> = (0..42)
            .map(|i| ((i * 29 % 31) as f64 / 31.0) as f32)
            .collect();
        Ok(Tensor::from_vec(v, (1, 6, 7), &Device::Cpu)?)
    }

    fn assert_values(got: &Tensor, expected: &[f64]) -> Result<()> {
        let g = host_values(got)?;
        assert_eq!(g.len(), expected.len());
        for (k, (a, b)) in g.iter().zip(expected).enumerate() {
            // f32 input and output: agreement to f32 rounding.
            assert!((a - b).abs() < 2e-6, "value {k}: {a} vs scikit-image {b}");
        }
        Ok(())
    }

    /// scikit-image 0.26: `denoise_tv_chambolle(img, weight=0.1)`.
    #[test]
    fn tv_equals_scikit_image() -> Result<()> {
        assert_values(
            &tv_chambolle(&fixture()?, 0.1)?,
            &[
                0.134083679981,
                0.746891294416,
                0.749260086936,
                0.703426869485,
                0.646143053868,
                0.587061184978,
                0.540672216415,
                0.439120414913,
                0.489144682623,
                0.560832131132,
                0.533222740928,
                0.479796264943,
                0.426586017571,
                0.385798415306,
                0.283055873452,
                0.268492689189,
                0.68163315692,
                0.685820164418,
                0.635152222134,
                0.587428613942,
                0.551569735904,
                0.452439469406,
                0.457920267047,
                0.488949560333,
                0.478932971096,
                0.533466226845,
                0.509462486839,
                0.478376300377,
                0.36952159869,
                0.324889459884,
                0.274239646835,
                0.246794888456,
                0.65548302104,
                0.655176514124,
                0.626980890663,
                0.574367653014,
                0.565848791392,
                0.543082887466,
                0.534078026971,
                0.529853782789,
                0.520732305411,
                0.515824645095,
            ],
        )
    }

    /// scikit-image 0.26: `filters.gaussian(img, sigma=1.3)`.
    #[test]
    fn gaussian_equals_scikit_image() -> Result<()> {
        assert_values(
            &gaussian_filter(&fixture()?, 1.3)?,
            &[
                0.354581359715,
                0.534465418515,
                0.655857989574,
                0.676572672623,
                0.63745836359,
                0.584975950069,
                0.54344864549,
                0.372707405224,
                0.489476675472,
                0.583787891768,
                0.61059608891,
                0.583275737618,
                0.537111513683,
                0.49764708386,
                0.384184440272,
                0.450391665233,
                0.523526420207,
                0.563389817858,
                0.560838283333,
                0.532306957468,
                0.49983127555,
                0.40787366482,
                0.430174356079,
                0.470358229251,
                0.51410992407,
                0.543378903941,
                0.543573462761,
                0.52349011041,
                0.465883747244,
                0.452635319776,
                0.454099785184,
                0.483119974535,
                0.52342801628,
                0.538631796052,
                0.525567961927,
                0.564678819892,
                0.532353271187,
                0.503545755018,
                0.497803604524,
                0.507114784909,
                0.50281547309,
                0.482169290852,
            ],
        )
    }

    #[test]
    fn bad_parameters_are_errors() -> Result<()> {
        let x = fixture()?;
        assert!(gaussian_filter(&x, 0.0).is_err());
        assert!(tv_chambolle(&x, -1.0).is_err());
        Ok(())
    }
}
