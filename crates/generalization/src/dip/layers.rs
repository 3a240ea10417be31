//! The deep image prior's building blocks that candle lacks or gets wrong, each from differentiable candle
//! ops so that gradients are exact (finite-difference tests below): reflection padding, ×2 bilinear
//! upsampling with `align_corners = false` (candle's `upsample_bilinear2d` has no backward), ×2 nearest
//! upsampling by broadcasting (candle's `upsample_nearest2d` backward overwrites gradients,
//! candle-pitfalls.md §2.3), and LeakyReLU.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use generalization::dip::layers::{reflection_pad2d, upsample_bilinear2x};
//!
//! let x = Tensor::new(&[[[[1f32, 2.], [3., 4.]]]], &Device::Cpu)?;
//! // PyTorch's ReflectionPad2d(1): the row above row 0 is row 1.
//! assert_eq!(reflection_pad2d(&x, 1)?.dims(), &[1, 1, 4, 4]);
//! // Bilinear ×2, align_corners = false: the first output column is 0.75·x₀ + 0.25·x₀ (edge clamped).
//! let y = upsample_bilinear2x(&x)?.flatten_all()?.to_vec1::<f32>()?;
//! assert_eq!(&y[..4], &[1.0, 1.25, 1.75, 2.0]);
//! # Ok::<(), candle_core::Error>(())
//! ```

use candle_core::{Result, Tensor, bail};

/// Reflection padding by `p` on both sides of the last two axes of an (N, C, H, W) tensor, as PyTorch's
/// `ReflectionPad2d(p)`: the mirror excludes the edge (`… x₂ x₁ | x₀ x₁ x₂ …`). Needs `p < H` and `p < W`.
pub fn reflection_pad2d(x: &Tensor, p: usize) -> Result<Tensor> {
    if nn_core::ops::uses_fast_resample(x) {
        return nn_core::ops::reflection_pad2d(x, p);
    }
    reflection_pad2d_composed(x, p)
}

/// [`reflection_pad2d`] from `narrow` and `cat` (any device; the fused CPU op is checked against it).
pub fn reflection_pad2d_composed(x: &Tensor, p: usize) -> Result<Tensor> {
    if p == 0 {
        return Ok(x.clone());
    }
    let (_, _, h, w) = x.dims4()?;
    if p >= h || p >= w {
        bail!("reflection_pad2d: padding {p} needs an image larger than {h}×{w}");
    }
    let x = reflect_axis(x, 3, w, p)?;
    reflect_axis(&x, 2, h, p)
}

/// Mirrors `p` entries on both ends of `axis` (of length `n`).
fn reflect_axis(x: &Tensor, axis: usize, n: usize, p: usize) -> Result<Tensor> {
    let mut parts = Vec::with_capacity(n + 2 * p);
    for i in (1..=p).rev() {
        parts.push(x.narrow(axis, i, 1)?);
    }
    parts.push(x.clone());
    for i in 1..=p {
        parts.push(x.narrow(axis, n - 1 - i, 1)?);
    }
    Tensor::cat(&parts, axis)
}

/// ×2 bilinear upsampling of the last two axes of an (N, C, H, W) tensor with `align_corners = false`
/// (PyTorch's `nn.Upsample(scale_factor=2, mode='bilinear')`): output 2i is `0.25·x[i−1] + 0.75·x[i]`,
/// output 2i+1 is `0.75·x[i] + 0.25·x[i+1]`, with the edges clamped. Separable, width then height.
pub fn upsample_bilinear2x(x: &Tensor) -> Result<Tensor> {
    if nn_core::ops::uses_fast_resample(x) {
        return nn_core::ops::upsample_bilinear2x(x);
    }
    upsample_bilinear2x_composed(x)
}

/// [`upsample_bilinear2x`] from `narrow`, `cat` and `stack` (any device; the fused CPU op is checked
/// against it).
pub fn upsample_bilinear2x_composed(x: &Tensor) -> Result<Tensor> {
    let x = bilinear_axis(x, 3)?;
    bilinear_axis(&x, 2)
}

fn bilinear_axis(x: &Tensor, axis: usize) -> Result<Tensor> {
    let n = x.dim(axis)?;
    // The neighbour before and after each entry, edge-replicated.
    let (prev, next) = if n == 1 {
        (x.clone(), x.clone())
    } else {
        (
            Tensor::cat(&[x.narrow(axis, 0, 1)?, x.narrow(axis, 0, n - 1)?], axis)?,
            Tensor::cat(
                &[x.narrow(axis, 1, n - 1)?, x.narrow(axis, n - 1, 1)?],
                axis,
            )?,
        )
    };
    let even = ((&prev * 0.25)? + (x * 0.75)?)?;
    let odd = ((x * 0.75)? + (&next * 0.25)?)?;
    interleave(&even, &odd, axis)
}

/// `[a₀ b₀ a₁ b₁ …]` along `axis`.
fn interleave(a: &Tensor, b: &Tensor, axis: usize) -> Result<Tensor> {
    let mut dims = a.dims().to_vec();
    dims[axis] *= 2;
    Tensor::stack(&[a, b], axis + 1)?.reshape(dims)
}

/// ×2 nearest-neighbour upsampling of the last two axes of an (N, C, H, W) tensor, by broadcasting (its
/// backward sums each 2×2 block, unlike candle's `upsample_nearest2d`).
pub fn upsample_nearest2x(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    x.reshape((n, c, h, 1, w, 1))?
        .broadcast_as((n, c, h, 2, w, 2))?
        .reshape((n, c, 2 * h, 2 * w))
}

/// The reference code's `lanczos2` downsampling kernel for an even `factor` (phase ½): 4·factor taps per
/// axis, `L(d) = 2·sin(πd)·sin(πd/2) / (πd)²` at `d = |i + ½ − c| / factor`, normalised; the 2-D kernel is
/// the outer product of this one with itself.
pub fn lanczos2_kernel(factor: usize) -> Vec<f64> {
    let width = 4 * factor + 1;
    let center = (width + 1) as f64 / 2.0;
    let taps: Vec<f64> = (1..width)
        .map(|i| {
            let d = (i as f64 + 0.5 - center).abs() / factor as f64;
            if d == 0.0 {
                1.0
            } else {
                let pd = std::f64::consts::PI * d;
                2.0 * pd.sin() * (pd / 2.0).sin() / (pd * pd)
            }
        })
        .collect();
    let total: f64 = taps.iter().sum();
    taps.into_iter().map(|t| t / total).collect()
}

/// Downsampling by an even `factor` (2, 4 or 8) as the reference super-resolution code's `Downsampler`
/// (`lanczos2`, phase ½, `preserve_size`): edge-replicate padding of 3·factor/2, then a stride-`factor`
/// convolution of every channel with [`lanczos2_kernel`]'s outer product. (N, C, H, W) → (N, C, H/f, W/f);
/// differentiable in its input.
pub fn lanczos_downsample(x: &Tensor, factor: usize) -> Result<Tensor> {
    if !matches!(factor, 2 | 4 | 8) {
        bail!("lanczos_downsample: factor must be 2, 4 or 8, got {factor}");
    }
    let (n, c, h, w) = x.dims4()?;
    if h % factor != 0 || w % factor != 0 {
        bail!("lanczos_downsample: {h}×{w} is not divisible by the factor {factor}");
    }
    let k = lanczos2_kernel(factor);
    let kk: Vec<f64> = k
        .iter()
        .flat_map(|a| k.iter().map(move |b| a * b))
        .collect();
    let size = k.len();
    let kernel = Tensor::from_vec(kk, (1, 1, size, size), x.device())?.to_dtype(x.dtype())?;
    let pad = 3 * factor / 2;
    let planes = x
        .reshape((n * c, 1, h, w))?
        .pad_with_same(2, pad, pad)?
        .pad_with_same(3, pad, pad)?;
    let params = nn_core::ops::Conv2dParams {
        stride: factor,
        ..Default::default()
    };
    let y = nn_core::ops::conv2d(&planes, &kernel, params)?;
    y.reshape((n, c, h / factor, w / factor))
}

/// `max(x, slope·x)` for 0 < slope < 1, as `(1 − slope)·relu(x) + slope·x` (the fused ReLU, whose
/// gradient at 0 is candle's convention).
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    (nn_core::layers::relu(x)? * (1.0 - slope))? + (x * slope)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    /// Central finite differences of `Σ f(x)·r` against the autograd gradient, in f64.
    fn check_gradient(f: impl Fn(&Tensor) -> Result<Tensor>, shape: &[usize]) -> Result<()> {
        let dev = Device::Cpu;
        let x0 = nn_core::grad::seeded_normal(shape, DType::F64, &dev, 3).unwrap();
        let y0 = f(&x0)?;
        let r = nn_core::grad::seeded_normal(y0.dims(), DType::F64, &dev, 4).unwrap();
        let objective = |x: &Tensor| -> Result<f64> { (f(x)? * &r)?.sum_all()?.to_scalar::<f64>() };
        let xv = Var::from_tensor(&x0)?;
        let grads = (f(xv.as_tensor())? * &r)?.sum_all()?.backward()?;
        let g = grads
            .get(xv.as_tensor())
            .expect("gradient")
            .flatten_all()?
            .to_vec1::<f64>()?;
        let base = x0.flatten_all()?.to_vec1::<f64>()?;
        let h = 1e-6;
        for i in 0..base.len() {
            let mut plus = base.clone();
            plus[i] += h;
            let mut minus = base.clone();
            minus[i] -= h;
            let fp = objective(&Tensor::from_vec(plus, shape, &dev)?)?;
            let fm = objective(&Tensor::from_vec(minus, shape, &dev)?)?;
            let fd = (fp - fm) / (2.0 * h);
            assert!(
                (fd - g[i]).abs() <= 1e-5 * (1.0 + fd.abs()),
                "entry {i}: finite difference {fd}, autograd {}",
                g[i]
            );
        }
        Ok(())
    }

    #[test]
    fn reflection_pad_matches_pytorch_layout() -> Result<()> {
        // PyTorch: F.pad(torch.arange(12.).reshape(1,1,3,4), (2,2,2,2), mode='reflect')[0,0,0]
        // = row 2 of the input mirrored: [10, 9, 8, 9, 10, 11, 10, 9].
        let x = Tensor::arange(0f64, 12., &Device::Cpu)?.reshape((1, 1, 3, 4))?;
        let y = reflection_pad2d(&x, 2)?;
        assert_eq!(y.dims(), &[1, 1, 7, 8]);
        let row0 = y.get(0)?.get(0)?.get(0)?.to_vec1::<f64>()?;
        assert_eq!(row0, vec![10., 9., 8., 9., 10., 11., 10., 9.]);
        let col0 = y
            .get(0)?
            .get(0)?
            .narrow(1, 0, 1)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        assert_eq!(col0, vec![10., 6., 2., 6., 10., 6., 2.]);
        assert!(reflection_pad2d(&x, 3).is_err());
        Ok(())
    }

    #[test]
    fn bilinear_matches_pytorch_values() -> Result<()> {
        // PyTorch: F.interpolate(torch.tensor([[[[1.,2.,4.]]]]), scale_factor=2, mode='bilinear',
        // align_corners=False) on a 1×3 image = rows of [1, 1.25, 1.75, 2.5, 3.5, 4].
        let x = Tensor::new(&[[[[1f64, 2., 4.]]]], &Device::Cpu)?;
        let y = upsample_bilinear2x(&x)?;
        assert_eq!(y.dims(), &[1, 1, 2, 6]);
        for row in 0..2 {
            let v = y.get(0)?.get(0)?.get(row)?.to_vec1::<f64>()?;
            assert_eq!(v, vec![1., 1.25, 1.75, 2.5, 3.5, 4.]);
        }
        Ok(())
    }

    /// Values of the reference code's `get_kernel(4, 'lanczos', 0.5, 17, support=2)` (16×16): entries
    /// (0, 0), (7, 7) and (3, 11) are 1.13504e-6, 0.0574614 and −3.65908e-4; factor 2, entry (3, 3) 0.188619.
    #[test]
    fn lanczos_kernel_matches_the_reference_code() -> Result<()> {
        let k = lanczos2_kernel(4);
        assert_eq!(k.len(), 16);
        let at = |i: usize, j: usize| k[i] * k[j];
        assert!((at(0, 0) - 1.1350403751475116e-06).abs() < 1e-15);
        assert!((at(7, 7) - 0.057461418991842386).abs() < 1e-15);
        assert!((at(3, 11) + 0.00036590780658343465).abs() < 1e-15);
        let k2 = lanczos2_kernel(2);
        assert!((k2[3] * k2[3] - 0.18861933182592736).abs() < 1e-15);
        // A constant image stays constant; sizes divide by the factor.
        let x = Tensor::full(0.3f64, (1, 3, 16, 8), &Device::Cpu)?;
        let y = lanczos_downsample(&x, 4)?;
        assert_eq!(y.dims(), &[1, 3, 4, 2]);
        let v = y.flatten_all()?.to_vec1::<f64>()?;
        assert!(v.iter().all(|p| (p - 0.3).abs() < 1e-12));
        assert!(lanczos_downsample(&x, 3).is_err());
        Ok(())
    }

    #[test]
    fn nearest_repeats_each_pixel() -> Result<()> {
        let x = Tensor::new(&[[[[1f64, 2.], [3., 4.]]]], &Device::Cpu)?;
        let y = upsample_nearest2x(&x)?.flatten_all()?.to_vec1::<f64>()?;
        assert_eq!(
            y,
            vec![
                1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.
            ]
        );
        Ok(())
    }

    /// The fused CPU ops equal the composed ones, values and gradients (f64, random shapes).
    #[test]
    fn fused_ops_equal_the_composed_ones() -> Result<()> {
        let dev = Device::Cpu;
        for (shape, p) in [
            ([2, 3, 5, 7], 1),
            ([1, 2, 4, 4], 3),
            ([1, 1, 1, 1], 0),
            ([3, 1, 2, 9], 1),
        ] {
            let x = nn_core::grad::seeded_normal(&shape, DType::F64, &dev, 5).unwrap();
            type F = fn(&Tensor, usize) -> Result<Tensor>;
            let pairs: [(F, F); 2] = [
                (reflection_pad2d, reflection_pad2d_composed),
                (
                    |x, _| upsample_bilinear2x(x),
                    |x, _| upsample_bilinear2x_composed(x),
                ),
            ];
            for (fast, slow) in pairs {
                if p >= shape[2] || p >= shape[3] {
                    continue;
                }
                let xv = Var::from_tensor(&x)?;
                let (yf, ys) = (fast(xv.as_tensor(), p)?, slow(xv.as_tensor(), p)?);
                let diff = (&yf - &ys)?.abs()?.max_all()?.to_scalar::<f64>()?;
                assert!(diff < 1e-12, "values differ by {diff} for {shape:?}");
                let r = nn_core::grad::seeded_normal(yf.dims(), DType::F64, &dev, 6).unwrap();
                let gf = (yf * &r)?.sum_all()?.backward()?;
                let gs = (ys * &r)?.sum_all()?.backward()?;
                let d = (gf.get(xv.as_tensor()).unwrap() - gs.get(xv.as_tensor()).unwrap())?
                    .abs()?
                    .max_all()?
                    .to_scalar::<f64>()?;
                assert!(d < 1e-12, "gradients differ by {d} for {shape:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn gradients_equal_finite_differences() -> Result<()> {
        check_gradient(|x| reflection_pad2d(x, 1), &[1, 2, 3, 4])?;
        check_gradient(|x| reflection_pad2d_composed(x, 1), &[1, 2, 3, 4])?;
        check_gradient(upsample_bilinear2x_composed, &[1, 2, 3, 4])?;
        // Second order through the fused pair: the gradient of a gradient.
        check_gradient(
            |x| {
                let v = Var::from_tensor(x)?;
                let y = upsample_bilinear2x(&reflection_pad2d(v.as_tensor(), 1)?)?;
                let g = y.sqr()?.sum_all()?.backward()?;
                Ok(g.get(v.as_tensor()).expect("gradient").clone())
            },
            &[1, 1, 3, 3],
        )?;
        check_gradient(|x| reflection_pad2d(x, 2), &[2, 1, 4, 3])?;
        check_gradient(upsample_bilinear2x, &[1, 2, 3, 4])?;
        check_gradient(upsample_bilinear2x, &[1, 1, 1, 3])?;
        check_gradient(upsample_nearest2x, &[2, 1, 2, 3])?;
        check_gradient(|x| leaky_relu(x, 0.2), &[1, 2, 3, 3])?;
        check_gradient(|x| lanczos_downsample(x, 2), &[1, 2, 4, 6])?;
        // Composed, as in the network: the input also feeds a second branch (skip connection).
        check_gradient(
            |x| {
                let up = upsample_nearest2x(&reflection_pad2d(x, 1)?)?;
                up.sum_keepdim(3)?
                    .broadcast_add(&x.sum_keepdim(3)?.sum_keepdim(2)?)
            },
            &[1, 2, 3, 3],
        )
    }
}
