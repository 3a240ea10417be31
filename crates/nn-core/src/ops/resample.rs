//! Reflection padding and ×2 bilinear upsampling of (N, C, H, W) tensors as fused CPU passes — the deep
//! image prior's hourglass runs one of each around almost every convolution. Their compositions of
//! `narrow`/`cat`/`stack` build a zero-padded full tensor per piece in the backward pass; fusing them saved
//! ≈ 3 % of a deep-image-prior step at 128² (docs/performance.md).
//!
//! Each is a linear map A with a custom op for A and one for its adjoint Aᵀ (a scatter-add); the backward
//! of one is the other, so gradients of every order are exact.
//! * [`reflection_pad2d`]: PyTorch's `ReflectionPad2d(p)` (the mirror excludes the edge), `p < H, W`;
//! * [`upsample_bilinear2x`]: PyTorch's `Upsample(scale_factor=2, mode='bilinear', align_corners=False)`:
//!   outputs 2i and 2i+1 are `0.25·x[i−1] + 0.75·x[i]` and `0.75·x[i] + 0.25·x[i+1]`, edges clamped.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use nn_core::ops::{reflection_pad2d, upsample_bilinear2x};
//!
//! let x = Tensor::new(&[[[[1f32, 2., 4.]]]], &Device::Cpu)?;
//! let y = upsample_bilinear2x(&x)?;
//! assert_eq!(y.get(0)?.get(0)?.get(0)?.to_vec1::<f32>()?, vec![1., 1.25, 1.75, 2.5, 3.5, 4.]);
//! let x = Tensor::new(&[[[[1f32, 2., 3.], [4., 5., 6.]]]], &Device::Cpu)?;
//! assert_eq!(reflection_pad2d(&x, 1)?.get(0)?.get(0)?.get(0)?.to_vec1::<f32>()?, vec![5., 4., 5., 6., 5.]);
//! # Ok::<(), candle_core::Error>(())
//! ```

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, WithDType, bail};

use super::{Kernel1, dispatch1, filled_vec, for_each_chunk_mut, on_pool};

/// Linear interpolation weights for resizing one axis of `n` samples to `m`, with half-pixel centres: for
/// each output `o`, the two input samples around `(o + ½)·n/m − ½` (clamped to the axis, so edges
/// replicate) and the weight of the second. The resize of scikit-image's `resize(order=1)` and of PyTorch's
/// `interpolate(mode='bilinear', align_corners=False)` without antialiasing, one axis at a time.
pub fn linear_taps(n: usize, m: usize) -> Vec<(usize, usize, f64)> {
    let scale = n as f64 / m as f64;
    (0..m)
        .map(|o| {
            let x = ((o as f64 + 0.5) * scale - 0.5).clamp(0.0, n.saturating_sub(1) as f64);
            let i0 = x.floor() as usize;
            let i1 = (i0 + 1).min(n.saturating_sub(1));
            (i0, i1, x - i0 as f64)
        })
        .collect()
}

/// Element count above which planes are processed on the rayon pool.
const PARALLEL_MIN: usize = 1 << 15;

/// Whether the fused ops apply: f32 or f64 on the CPU.
pub fn uses_fast_resample(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// Which map of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Adjoint,
}

/// Sizes of the small side: (planes N·C, H, W).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Planes {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
}

impl Planes {
    fn count(&self) -> usize {
        self.n * self.c
    }
}

/// Reflection padding by `p` (or its adjoint).
struct ReflectPad {
    small: Planes,
    p: usize,
    dir: Direction,
}

/// `i − p` reflected into `0..n` (the mirror excludes the edge; needs p < n).
fn reflect(i: usize, p: usize, n: usize) -> usize {
    let k = i as isize - p as isize;
    let n = n as isize;
    let r = if k < 0 {
        -k
    } else if k >= n {
        2 * n - 2 - k
    } else {
        k
    };
    r as usize
}

impl ReflectPad {
    fn big(&self) -> (usize, usize) {
        (self.small.h + 2 * self.p, self.small.w + 2 * self.p)
    }

    fn out_shape(&self) -> Shape {
        let s = self.small;
        match self.dir {
            Direction::Forward => {
                let (hb, wb) = self.big();
                (s.n, s.c, hb, wb).into()
            }
            Direction::Adjoint => (s.n, s.c, s.h, s.w).into(),
        }
    }
}

impl Kernel1 for ReflectPad {
    fn run<T: WithDType>(&self, x: &[T]) -> Result<Vec<T>> {
        let Planes { h, w, .. } = self.small;
        let (hb, wb) = self.big();
        let (small, big) = (h * w, hb * wb);
        let planes = self.small.count();
        let parallel = on_pool(planes * big, PARALLEL_MIN);
        let cols: Vec<usize> = (0..wb).map(|j| reflect(j, self.p, w)).collect();
        Ok(match self.dir {
            // SAFETY: every (i, j) of each output plane is written once.
            Direction::Forward => unsafe {
                filled_vec(planes * big, big, parallel, |k, out| {
                    let src = &x[k * small..(k + 1) * small];
                    for i in 0..hb {
                        let row = &src[reflect(i, self.p, h) * w..][..w];
                        for (o, &cj) in out[i * wb..(i + 1) * wb].iter_mut().zip(&cols) {
                            o.write(row[cj]);
                        }
                    }
                })
            },
            Direction::Adjoint => {
                let mut dx = vec![T::zero(); planes * small];
                for_each_chunk_mut(&mut dx, small, parallel, |k, d| {
                    let g = &x[k * big..(k + 1) * big];
                    for i in 0..hb {
                        let row = &mut d[reflect(i, self.p, h) * w..][..w];
                        for (&gv, &cj) in g[i * wb..(i + 1) * wb].iter().zip(&cols) {
                            row[cj] += gv;
                        }
                    }
                });
                dx
            }
        })
    }
}

impl CustomOp1 for ReflectPad {
    fn name(&self) -> &'static str {
        match self.dir {
            Direction::Forward => "reflection-pad2d",
            Direction::Adjoint => "reflection-pad2d-adjoint",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((dispatch1(self, self.name(), s, l)?, self.out_shape()))
    }

    fn bwd(&self, _x: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let dir = match self.dir {
            Direction::Forward => Direction::Adjoint,
            Direction::Adjoint => Direction::Forward,
        };
        g.contiguous()?
            .apply_op1(ReflectPad {
                small: self.small,
                p: self.p,
                dir,
            })
            .map(Some)
    }
}

/// Reflection padding by `p` of the last two axes of an (N, C, H, W) f32/f64 CPU tensor, as PyTorch's
/// `ReflectionPad2d(p)`; needs `p < H` and `p < W`.
pub fn reflection_pad2d(x: &Tensor, p: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    if p >= h || p >= w {
        bail!("reflection_pad2d: padding {p} needs an image larger than {h}×{w}");
    }
    if !uses_fast_resample(x) {
        bail!(
            "ops::reflection_pad2d: needs an f32 or f64 tensor on the CPU, got {:?} on {:?}",
            x.dtype(),
            x.device().location()
        );
    }
    if p == 0 {
        return Ok(x.clone());
    }
    x.contiguous()?.apply_op1(ReflectPad {
        small: Planes { n, c, h, w },
        p,
        dir: Direction::Forward,
    })
}

/// ×2 bilinear upsampling (or its adjoint).
struct Bilinear2x {
    small: Planes,
    dir: Direction,
}

/// Index clamped into `0..n`.
fn clamp_index(i: isize, n: usize) -> usize {
    i.clamp(0, n as isize - 1) as usize
}

impl Kernel1 for Bilinear2x {
    fn run<T: WithDType>(&self, x: &[T]) -> Result<Vec<T>> {
        let Planes { h, w, .. } = self.small;
        let (small, big) = (h * w, 4 * h * w);
        let planes = self.small.count();
        let parallel = on_pool(planes * big, PARALLEL_MIN);
        let (q, tq) = (T::from_f64(0.25), T::from_f64(0.75));
        let w2 = 2 * w;
        Ok(match self.dir {
            // Width pass into a (h × 2w) scratch, then the height pass into the output.
            // SAFETY: rows 2i and 2i+1 of each output plane are written whole for every i.
            Direction::Forward => unsafe {
                filled_vec(planes * big, big, parallel, |k, out| {
                    let src = &x[k * small..(k + 1) * small];
                    let mut tmp = vec![T::zero(); h * w2];
                    for r in 0..h {
                        let row = &src[r * w..(r + 1) * w];
                        let t = &mut tmp[r * w2..(r + 1) * w2];
                        for j in 0..w {
                            let prev = row[clamp_index(j as isize - 1, w)];
                            let next = row[clamp_index(j as isize + 1, w)];
                            t[2 * j] = q * prev + tq * row[j];
                            t[2 * j + 1] = tq * row[j] + q * next;
                        }
                    }
                    for i in 0..h {
                        let up = &tmp[clamp_index(i as isize - 1, h) * w2..][..w2];
                        let mid = &tmp[i * w2..][..w2];
                        let down = &tmp[clamp_index(i as isize + 1, h) * w2..][..w2];
                        let (even, odd) = out[2 * i * w2..(2 * i + 2) * w2].split_at_mut(w2);
                        for c in 0..w2 {
                            even[c].write(q * up[c] + tq * mid[c]);
                            odd[c].write(tq * mid[c] + q * down[c]);
                        }
                    }
                })
            },
            // The transpose: height adjoint into the scratch, then the width adjoint.
            Direction::Adjoint => {
                let mut dx = vec![T::zero(); planes * small];
                for_each_chunk_mut(&mut dx, small, parallel, |k, d| {
                    let g = &x[k * big..(k + 1) * big];
                    let mut tmp = vec![T::zero(); h * w2];
                    for i in 0..h {
                        let (even, odd) = (&g[2 * i * w2..][..w2], &g[(2 * i + 1) * w2..][..w2]);
                        let (iu, id) = (
                            clamp_index(i as isize - 1, h),
                            clamp_index(i as isize + 1, h),
                        );
                        for c in 0..w2 {
                            tmp[iu * w2 + c] += q * even[c];
                            tmp[i * w2 + c] += tq * even[c] + tq * odd[c];
                            tmp[id * w2 + c] += q * odd[c];
                        }
                    }
                    for r in 0..h {
                        let t = &tmp[r * w2..(r + 1) * w2];
                        let row = &mut d[r * w..(r + 1) * w];
                        for j in 0..w {
                            let (jl, jr) = (
                                clamp_index(j as isize - 1, w),
                                clamp_index(j as isize + 1, w),
                            );
                            row[jl] += q * t[2 * j];
                            row[j] += tq * t[2 * j] + tq * t[2 * j + 1];
                            row[jr] += q * t[2 * j + 1];
                        }
                    }
                });
                dx
            }
        })
    }
}

impl CustomOp1 for Bilinear2x {
    fn name(&self) -> &'static str {
        match self.dir {
            Direction::Forward => "upsample-bilinear2x",
            Direction::Adjoint => "upsample-bilinear2x-adjoint",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let Planes { n, c, h, w } = self.small;
        let shape: Shape = match self.dir {
            Direction::Forward => (n, c, 2 * h, 2 * w).into(),
            Direction::Adjoint => (n, c, h, w).into(),
        };
        Ok((dispatch1(self, self.name(), s, l)?, shape))
    }

    fn bwd(&self, _x: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let dir = match self.dir {
            Direction::Forward => Direction::Adjoint,
            Direction::Adjoint => Direction::Forward,
        };
        g.contiguous()?
            .apply_op1(Bilinear2x {
                small: self.small,
                dir,
            })
            .map(Some)
    }
}

/// ×2 bilinear upsampling (`align_corners = false`) of the last two axes of an (N, C, H, W) f32/f64 CPU
/// tensor.
pub fn upsample_bilinear2x(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    if !uses_fast_resample(x) {
        bail!(
            "ops::upsample_bilinear2x: needs an f32 or f64 tensor on the CPU, got {:?} on {:?}",
            x.dtype(),
            x.device().location()
        );
    }
    if h == 0 || w == 0 {
        bail!("upsample_bilinear2x: empty image {h}×{w}");
    }
    x.contiguous()?.apply_op1(Bilinear2x {
        small: Planes { n, c, h, w },
        dir: Direction::Forward,
    })
}
