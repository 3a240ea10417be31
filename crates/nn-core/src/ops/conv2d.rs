//! 2-D convolution on the CPU as three batched im2col + GEMM products — forward `y = conv(x, W)`, the
//! input gradient `∂x = convᵀ(∂y, W)` and the kernel gradient `∂W = Σ_b ∂y_b · col(x_b)ᵀ` — each a candle
//! [`CustomOp2`] whose backward is again one of the three, so gradients of every order are exact.
//!
//! Why: candle 0.11 computes conv2d's input gradient with a direct `conv_transpose2d` loop (parallel only
//! over output channels) and its kernel gradient as a second convolution with the batch as channels, and
//! computes the input gradient even when the input is data. That made a LeNet training step ≈ 5× slower
//! than PyTorch's on one core (docs/performance.md). Here every product is one GEMM per image on an
//! im2col buffer that fits in L2, images run in parallel on the rayon pool, and a gradient nobody
//! asked for is not computed.
//!
//! The three products are adjoint to each other: for the bilinear `F(x, W) = conv(x, W)`,
//! `⟨F(x, W), g⟩ = ⟨x, Bᵢ(g, W)⟩ = ⟨W, B_w(x, g)⟩`, so the backward of `Bᵢ` and `B_w` is built from `F`,
//! `Bᵢ` and `B_w` again (see [`Conv2dOp::bwd`]). Only `f32`/`f64` on the CPU with `groups = 1` take this
//! path; anything else (CUDA, f16, grouped convolutions) falls back to candle's own `conv2d`, whose
//! gradients are correct, only slower (candle-pitfalls.md §2.6).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use nn_core::ops::{conv2d, Conv2dParams};
//!
//! let x = Tensor::arange(0f32, 16., &Device::Cpu)?.reshape((1, 1, 4, 4))?;
//! let w = Tensor::ones((1, 1, 2, 2), candle_core::DType::F32, &Device::Cpu)?;
//! let y = conv2d(&x, &w, Conv2dParams { stride: 2, ..Default::default() })?;
//! // Each output is the sum of one 2×2 block: 0+1+4+5, 2+3+6+7, 8+9+12+13, 10+11+14+15.
//! assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![10., 18., 42., 50.]);
//! # Ok::<(), candle_core::Error>(())
//! ```

use candle_core::{
    CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, WithDType, bail,
};
use candle_nn::{Conv2dConfig, Module, VarBuilder};
use rayon::prelude::*;

use super::channel::channel_sum;
use super::gemm::{Mat, matmul};
use super::{Kernel2, Kernel3, dispatch2, dispatch3, grad_for};

/// Stride, symmetric zero padding, dilation and groups of a 2-D convolution (as PyTorch's `Conv2d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between output positions (default 1).
    pub stride: usize,
    /// Zero rows/columns added on every side (default 0).
    pub padding: usize,
    /// Spacing between kernel taps (default 1).
    pub dilation: usize,
    /// Channel groups (default 1; only 1 takes the fast path).
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
    }
}

impl From<Conv2dConfig> for Conv2dParams {
    fn from(c: Conv2dConfig) -> Self {
        Self {
            stride: c.stride,
            padding: c.padding,
            dilation: c.dilation,
            groups: c.groups,
        }
    }
}

/// Number of weight-gradient partial sums (fixed, so the summation order — and with it every bit of the
/// result — does not depend on the thread count).
const WEIGHT_GRAD_GROUPS: usize = 8;

/// One segment of an im2col row: entries reading zero padding, or a run `col[range]` reading
/// `x[x + k·stride]` for k = 0, 1, … of one image.
enum Tap {
    Zero(std::ops::Range<usize>),
    Copy {
        col: std::ops::Range<usize>,
        x: usize,
    },
}

/// Every size of one convolution: input (n, c_in, h, w), kernel (c_out, c_in, kh, kw), output
/// (n, c_out, ho, wo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geometry {
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    ho: usize,
    wo: usize,
}

/// Output length of one axis, or an error naming the sizes.
fn out_len(inp: usize, k: usize, p: &Conv2dParams) -> Result<usize> {
    let span = p.dilation * (k - 1) + 1;
    if inp + 2 * p.padding < span {
        bail!(
            "conv2d: padded input length {} is smaller than the dilated kernel {span}",
            inp + 2 * p.padding
        );
    }
    Ok((inp + 2 * p.padding - span) / p.stride + 1)
}

/// Output positions `o` of one axis whose tap `offset` (= kernel index × dilation) reads inside the input:
/// `0 ≤ o·s + offset − p < inp` ⇔ `o ∈ [lo, hi)`.
fn valid_range(out: usize, inp: usize, offset: usize, s: usize, p: usize) -> (usize, usize) {
    let lo = if offset >= p {
        0
    } else {
        (p - offset).div_ceil(s)
    };
    let hi = if inp + p > offset {
        ((inp + p - offset - 1) / s + 1).min(out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

impl Geometry {
    pub(super) fn new(
        x: (usize, usize, usize, usize),
        k: (usize, usize, usize, usize),
        p: &Conv2dParams,
    ) -> Result<Self> {
        let (n, c_in, h, w) = x;
        let (c_out, k_c, kh, kw) = k;
        if p.stride == 0 || p.dilation == 0 {
            bail!(
                "conv2d: stride ({}) and dilation ({}) must be at least 1",
                p.stride,
                p.dilation
            );
        }
        if kh == 0 || kw == 0 {
            bail!("conv2d: empty kernel {kh}×{kw}");
        }
        if k_c != c_in {
            bail!("conv2d: input has {c_in} channels but the kernel expects {k_c}");
        }
        let ho = out_len(h, kh, p)?;
        let wo = out_len(w, kw, p)?;
        Ok(Self {
            n,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride: p.stride,
            padding: p.padding,
            dilation: p.dilation,
            ho,
            wo,
        })
    }

    /// Rows of the im2col matrix: c_in·kh·kw.
    fn k_len(&self) -> usize {
        self.c_in * self.kh * self.kw
    }
    /// Output pixels per channel: ho·wo.
    fn p_len(&self) -> usize {
        self.ho * self.wo
    }
    fn x_len(&self) -> usize {
        self.c_in * self.h * self.w
    }
    fn y_len(&self) -> usize {
        self.c_out * self.p_len()
    }
    /// A 1×1, stride-1, unpadded convolution: the image itself is its im2col matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.padding == 0
    }
    fn col_len(&self) -> usize {
        if self.pointwise() {
            0
        } else {
            self.k_len() * self.p_len()
        }
    }

    /// Visits every row segment of the im2col matrix: [`Tap::Zero`] for entries that read padding,
    /// [`Tap::Copy`] for a run of valid output columns.
    fn for_each_tap(&self, mut f: impl FnMut(Tap)) {
        let (s, p, d) = (self.stride, self.padding, self.dilation);
        let plen = self.p_len();
        // Most segments have no padding: skip the empty ranges instead of calling `f` with them.
        fn zero(range: std::ops::Range<usize>, f: &mut impl FnMut(Tap)) {
            if !range.is_empty() {
                f(Tap::Zero(range));
            }
        }
        for c in 0..self.c_in {
            for i in 0..self.kh {
                let (oy_lo, oy_hi) = valid_range(self.ho, self.h, i * d, s, p);
                for j in 0..self.kw {
                    let (ox_lo, ox_hi) = valid_range(self.wo, self.w, j * d, s, p);
                    let row = ((c * self.kh + i) * self.kw + j) * plen;
                    zero(row..row + oy_lo * self.wo, &mut f);
                    zero(row + oy_hi * self.wo..row + plen, &mut f);
                    if ox_lo >= ox_hi {
                        zero(row + oy_lo * self.wo..row + oy_hi * self.wo, &mut f);
                        continue;
                    }
                    let x_col = ox_lo * s + j * d - p;
                    for oy in oy_lo..oy_hi {
                        let start = row + oy * self.wo;
                        zero(start..start + ox_lo, &mut f);
                        zero(start + ox_hi..start + self.wo, &mut f);
                        f(Tap::Copy {
                            col: start + ox_lo..start + ox_hi,
                            x: (c * self.h + oy * s + i * d - p) * self.w + x_col,
                        });
                    }
                }
            }
        }
    }

    /// `col[(c, i, j), (oy, ox)] = x[c, oy·s − p + i·d, ox·s − p + j·d]` (0 in the padding), one image.
    fn im2col<T: WithDType>(&self, x: &[T], col: &mut [T]) {
        let s = self.stride;
        self.for_each_tap(|tap| match tap {
            Tap::Zero(range) => col[range].fill(T::zero()),
            Tap::Copy { col: range, x: x0 } => {
                let dst = &mut col[range];
                if s == 1 {
                    dst.copy_from_slice(&x[x0..x0 + dst.len()]);
                } else {
                    for (k, v) in dst.iter_mut().enumerate() {
                        *v = x[x0 + k * s];
                    }
                }
            }
        });
    }

    /// The adjoint of [`Geometry::im2col`]: `x[c, iy, ix] += col[…]` over every tap reading (iy, ix).
    fn col2im<T: WithDType>(&self, col: &[T], x: &mut [T]) {
        let s = self.stride;
        self.for_each_tap(|tap| {
            if let Tap::Copy { col: range, x: x0 } = tap {
                let src = &col[range];
                if s == 1 {
                    for (d, v) in x[x0..x0 + src.len()].iter_mut().zip(src) {
                        *d += *v;
                    }
                } else {
                    for (k, v) in src.iter().enumerate() {
                        x[x0 + k * s] += *v;
                    }
                }
            }
        });
    }

    /// The im2col matrix (K × P) of image `xb`, in `buf` unless the convolution is pointwise.
    fn col<'a, T: WithDType>(&self, xb: &'a [T], buf: &'a mut [T]) -> Mat<'a, T> {
        if self.pointwise() {
            Mat::row_major(xb, self.k_len(), self.p_len())
        } else {
            self.im2col(xb, buf);
            Mat::row_major(buf, self.k_len(), self.p_len())
        }
    }

    /// Runs `per_image(b, out_b, scratch, gemm_threads)` for every image, images in parallel when there
    /// are at least as many as threads, else one after the other with a parallel GEMM.
    fn for_each_image<T: WithDType>(
        &self,
        out: &mut [T],
        out_len: usize,
        scratch_len: usize,
        per_image: impl Fn(usize, &mut [T], &mut [T], usize) + Sync,
    ) {
        let threads = rayon::current_num_threads();
        if threads > 1 && self.n >= threads {
            out.par_chunks_mut(out_len).enumerate().for_each_init(
                || vec![T::zero(); scratch_len],
                |scratch, (b, ob)| per_image(b, ob, scratch, 1),
            );
        } else {
            let mut scratch = vec![T::zero(); scratch_len];
            for (b, ob) in out.chunks_mut(out_len).enumerate() {
                per_image(b, ob, &mut scratch, threads);
            }
        }
    }

    /// `y_b (c_out × P) = W (c_out × K) · col(x_b)`, plus `bias[c]` on every pixel of channel c.
    pub(super) fn forward<T: WithDType>(&self, x: &[T], w: &[T], bias: Option<&[T]>) -> Vec<T> {
        let mut y = vec![T::zero(); self.n * self.y_len()];
        let wm = Mat::row_major(w, self.c_out, self.k_len());
        let plen = self.p_len();
        self.for_each_image(&mut y, self.y_len(), self.col_len(), |b, yb, buf, t| {
            let xb = &x[b * self.x_len()..(b + 1) * self.x_len()];
            matmul(yb, wm, self.col(xb, buf), false, t);
            if let Some(bias) = bias {
                for (row, &bc) in yb.chunks_mut(plen.max(1)).zip(bias) {
                    row.iter_mut().for_each(|v| *v += bc);
                }
            }
        });
        y
    }

    /// `∂x_b = col2im(Wᵀ (K × c_out) · ∂y_b)`.
    fn input_grad<T: WithDType>(&self, gy: &[T], w: &[T]) -> Vec<T> {
        let mut dx = vec![T::zero(); self.n * self.x_len()];
        let wt = Mat::row_major(w, self.c_out, self.k_len()).t();
        self.for_each_image(&mut dx, self.x_len(), self.col_len(), |b, dxb, buf, t| {
            let gyb = Mat::row_major(
                &gy[b * self.y_len()..(b + 1) * self.y_len()],
                self.c_out,
                self.p_len(),
            );
            if self.pointwise() {
                matmul(dxb, wt, gyb, false, t);
            } else {
                matmul(buf, wt, gyb, false, t);
                self.col2im(buf, dxb);
            }
        });
        dx
    }

    /// `∂W = Σ_b ∂y_b (c_out × P) · col(x_b)ᵀ`, as [`WEIGHT_GRAD_GROUPS`] partial sums added in order.
    fn weight_grad<T: WithDType>(&self, x: &[T], gy: &[T]) -> Vec<T> {
        let wlen = self.c_out * self.k_len();
        let groups = self.n.clamp(1, WEIGHT_GRAD_GROUPS);
        let per_group = self.n.div_ceil(groups).max(1);
        let threads = rayon::current_num_threads();
        let inner_threads = if groups >= threads { 1 } else { threads };
        let partial = |gi: usize| {
            let mut part = vec![T::zero(); wlen];
            let mut buf = vec![T::zero(); self.col_len()];
            let images = gi * per_group..((gi + 1) * per_group).min(self.n);
            for (i, b) in images.enumerate() {
                let gyb = Mat::row_major(
                    &gy[b * self.y_len()..(b + 1) * self.y_len()],
                    self.c_out,
                    self.p_len(),
                );
                let xb = &x[b * self.x_len()..(b + 1) * self.x_len()];
                matmul(
                    &mut part,
                    gyb,
                    self.col(xb, &mut buf).t(),
                    i > 0,
                    inner_threads,
                );
            }
            part
        };
        let n_groups = self.n.div_ceil(per_group);
        let parts: Vec<Vec<T>> = if inner_threads == 1 && threads > 1 {
            (0..n_groups).into_par_iter().map(partial).collect()
        } else {
            (0..n_groups).map(partial).collect()
        };
        let mut parts = parts.into_iter();
        let mut dw = parts.next().unwrap_or_else(|| vec![T::zero(); wlen]);
        for p in parts {
            for (a, b) in dw.iter_mut().zip(&p) {
                *a += *b;
            }
        }
        dw
    }
}

/// Which of the three products a [`Conv2dOp`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `(x, W) → y`.
    Forward,
    /// `(∂y, W) → ∂x`.
    InputGrad,
    /// `(x, ∂y) → ∂W`.
    WeightGrad,
}

/// One product of a convolution with fixed geometry, as a candle custom op.
struct Conv2dOp {
    geom: Geometry,
    mode: Mode,
}

impl Conv2dOp {
    fn out_shape(&self) -> Shape {
        let g = &self.geom;
        match self.mode {
            Mode::Forward => (g.n, g.c_out, g.ho, g.wo).into(),
            Mode::InputGrad => (g.n, g.c_in, g.h, g.w).into(),
            Mode::WeightGrad => (g.c_out, g.c_in, g.kh, g.kw).into(),
        }
    }

    fn expected_lens(&self) -> (usize, usize) {
        let g = &self.geom;
        let (xl, yl, wl) = (g.n * g.x_len(), g.n * g.y_len(), g.c_out * g.k_len());
        match self.mode {
            Mode::Forward => (xl, wl),
            Mode::InputGrad => (yl, wl),
            Mode::WeightGrad => (xl, yl),
        }
    }

    /// Applies the `mode` product of this geometry to `(a, b)`.
    fn apply(geom: Geometry, mode: Mode, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        a.contiguous()?
            .apply_op2(&b.contiguous()?, Conv2dOp { geom, mode })
    }
}

impl Kernel2 for Conv2dOp {
    fn run<T: WithDType>(&self, a: &[T], b: &[T]) -> Result<Vec<T>> {
        let (la, lb) = self.expected_lens();
        if a.len() != la || b.len() != lb {
            bail!(
                "{}: operands hold {} and {} values, the geometry needs {la} and {lb}",
                self.name(),
                a.len(),
                b.len()
            );
        }
        Ok(match self.mode {
            Mode::Forward => self.geom.forward(a, b, None),
            Mode::InputGrad => self.geom.input_grad(a, b),
            Mode::WeightGrad => self.geom.weight_grad(a, b),
        })
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        match self.mode {
            Mode::Forward => "conv2d-im2col",
            Mode::InputGrad => "conv2d-input-grad",
            Mode::WeightGrad => "conv2d-weight-grad",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = dispatch2(self, self.name(), (s1, l1), (s2, l2))?;
        Ok((out, self.out_shape()))
    }

    /// With `h` the gradient arriving at this op's output, every product's partial derivatives are the
    /// other products (the adjoint identities of the module docs):
    /// * `y = F(x, W)`: `∂x = Bᵢ(h, W)`, `∂W = B_w(x, h)`;
    /// * `z = Bᵢ(g, W)`: `∂g = F(h, W)`, `∂W = B_w(h, g)`;
    /// * `v = B_w(x, g)`: `∂x = Bᵢ(g, h)`, `∂g = F(x, h)`.
    ///
    /// A gradient is computed only for an operand that takes part in the graph (`track_op`), so the
    /// first layer's input gradient (the data's) costs nothing.
    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        h: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.geom;
        let (da, db) = match self.mode {
            Mode::Forward => (
                grad_for(a, || Self::apply(g, Mode::InputGrad, h, b))?,
                grad_for(b, || Self::apply(g, Mode::WeightGrad, a, h))?,
            ),
            Mode::InputGrad => (
                grad_for(a, || Self::apply(g, Mode::Forward, h, b))?,
                grad_for(b, || Self::apply(g, Mode::WeightGrad, h, a))?,
            ),
            Mode::WeightGrad => (
                grad_for(a, || Self::apply(g, Mode::InputGrad, b, h))?,
                grad_for(b, || Self::apply(g, Mode::Forward, a, h))?,
            ),
        };
        Ok((da, db))
    }
}

/// `y = conv(x, W) + bias` with the bias added inside the forward pass; its backward is the three
/// products of [`Conv2dOp`] and the per-channel sum of `h` for the bias.
struct Conv2dBiasOp(Geometry);

impl Geometry {
    /// An error naming `op` unless `x`, `w` and `b` hold the input's, kernel's and bias's value counts.
    pub(super) fn check_bias_operands(&self, op: &str, x: usize, w: usize, b: usize) -> Result<()> {
        let want = (self.n * self.x_len(), self.c_out * self.k_len(), self.c_out);
        if (x, w, b) != want {
            bail!(
                "{op}: operands hold {x}, {w} and {b} values, the geometry needs {}, {} and {}",
                want.0,
                want.1,
                want.2
            );
        }
        Ok(())
    }

    /// The (N, C_out, H_out, W_out) output shape.
    pub(super) fn out_dims(&self) -> (usize, usize, usize, usize) {
        (self.n, self.c_out, self.ho, self.wo)
    }

    /// The gradients of `conv(x, w) + b` for the operands in the graph, with `h` the gradient at its
    /// output: `∂x = Bᵢ(h, w)`, `∂w = B_w(x, h)`, `∂b = Σ h` per channel.
    pub(super) fn bias_conv_grads(
        self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        h: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = grad_for(x, || Conv2dOp::apply(self, Mode::InputGrad, h, w))?;
        let dw = grad_for(w, || Conv2dOp::apply(self, Mode::WeightGrad, x, h))?;
        let db = grad_for(b, || channel_sum(h))?;
        Ok((dx, dw, db))
    }
}

impl Kernel3 for Conv2dBiasOp {
    fn run<T: WithDType>(&self, x: &[T], w: &[T], b: &[T]) -> Result<Vec<T>> {
        let g = &self.0;
        g.check_bias_operands("conv2d-im2col-bias", x.len(), w.len(), b.len())?;
        Ok(g.forward(x, w, Some(b)))
    }
}

impl CustomOp3 for Conv2dBiasOp {
    fn name(&self) -> &'static str {
        "conv2d-im2col-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = dispatch3(self, self.name(), (s1, l1), (s2, l2), (s3, l3))?;
        Ok((out, self.0.out_dims().into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        h: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.0.bias_conv_grads(x, w, b, h)
    }
}

/// [`conv2d`] plus a bias (C_out,) added to every pixel of its channel, fused into the forward pass on the
/// fast path.
pub fn conv2d_bias(x: &Tensor, w: &Tensor, bias: &Tensor, params: Conv2dParams) -> Result<Tensor> {
    let Some(geom) = fast_bias_geometry(x, w, bias, &params)? else {
        let y = x.conv2d(
            w,
            params.padding,
            params.stride,
            params.dilation,
            params.groups,
        )?;
        return y.broadcast_add(&bias.reshape((1, bias.dims1()?, 1, 1))?);
    };
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &bias.contiguous()?, Conv2dBiasOp(geom))
}

/// The geometry of `conv(x, w) + bias` if it takes the fast path (an error if the bias does not match the
/// kernel), `None` for candle's own convolution.
pub(super) fn fast_bias_geometry(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    params: &Conv2dParams,
) -> Result<Option<Geometry>> {
    if !uses_fast_conv2d(x, w, params) || bias.dtype() != x.dtype() || !bias.device().is_cpu() {
        return Ok(None);
    }
    let geom = Geometry::new(x.dims4()?, w.dims4()?, params)?;
    if bias.dims1()? != geom.c_out {
        bail!(
            "conv2d: bias has {} entries but the kernel has {} output channels",
            bias.dims1()?,
            geom.c_out
        );
    }
    Ok(Some(geom))
}

/// Whether `conv2d(x, w, params)` takes the im2col + GEMM path (CPU, f32 or f64 for both, groups 1).
pub fn uses_fast_conv2d(x: &Tensor, w: &Tensor, params: &Conv2dParams) -> bool {
    x.device().is_cpu()
        && w.device().is_cpu()
        && x.dtype() == w.dtype()
        && matches!(x.dtype(), DType::F32 | DType::F64)
        && params.groups == 1
}

/// 2-D convolution (cross-correlation, as PyTorch's `conv2d`) of `x` (N, C_in, H, W) with the kernel `w`
/// (C_out, C_in, kH, kW), without bias: output (N, C_out, H_out, W_out) with
/// `H_out = ⌊(H + 2p − d(kH − 1) − 1)/s⌋ + 1`.
///
/// On the CPU in f32/f64 with `groups = 1` this is the im2col + GEMM custom op of this module (exact
/// gradients of every order); otherwise candle's own `conv2d`.
pub fn conv2d(x: &Tensor, w: &Tensor, params: Conv2dParams) -> Result<Tensor> {
    if !uses_fast_conv2d(x, w, &params) {
        return x.conv2d(
            w,
            params.padding,
            params.stride,
            params.dilation,
            params.groups,
        );
    }
    let geom = Geometry::new(x.dims4()?, w.dims4()?, &params)?;
    Conv2dOp::apply(geom, Mode::Forward, x, w)
}

/// A convolution layer with an optional bias: `conv2d(x, weight) + bias[None, :, None, None]`.
/// Same parameters, names and initialisation as `candle_nn::Conv2d` (build it with [`conv2d_layer`] or
/// [`Conv2d::new`]); its forward uses [`conv2d`].
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    params: Conv2dParams,
}

impl Conv2d {
    /// A layer from a kernel (C_out, C_in/groups, kH, kW) and an optional bias (C_out,).
    pub fn new(weight: Tensor, bias: Option<Tensor>, params: Conv2dParams) -> Self {
        Self {
            weight,
            bias,
            params,
        }
    }

    /// The kernel.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Stride, padding, dilation and groups.
    pub fn params(&self) -> Conv2dParams {
        self.params
    }

    /// `max_pool2d(relu(self.forward(x)), k)` (`k = 1`: no pool) — one op with a bias on the fast path
    /// ([`super::conv2d_relu_max_pool2d`]), the separate ops otherwise; the same values and gradients.
    pub fn forward_relu_max_pool(&self, x: &Tensor, k: usize) -> Result<Tensor> {
        match &self.bias {
            Some(b) => super::conv2d_relu_max_pool2d(x, &self.weight, b, self.params, k),
            None => crate::layers::max_pool2d(&super::relu(&self.forward(x)?)?, k),
        }
    }
}

impl From<candle_nn::Conv2d> for Conv2d {
    fn from(c: candle_nn::Conv2d) -> Self {
        Self::new(c.weight().clone(), c.bias().cloned(), (*c.config()).into())
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.bias {
            Some(b) => conv2d_bias(x, &self.weight, b, self.params),
            None => conv2d(x, &self.weight, self.params),
        }
    }
}

/// A `c_in → c_out` convolution layer with a `k × k` kernel and a bias, created in `vb` under the names
/// `weight` and `bias` with candle-nn's initialisation (so seeded weights equal `candle_nn::conv2d`'s).
pub fn conv2d_layer(
    c_in: usize,
    c_out: usize,
    k: usize,
    cfg: Conv2dConfig,
    vb: VarBuilder,
) -> Result<Conv2d> {
    candle_nn::conv2d(c_in, c_out, k, cfg, vb).map(Conv2d::from)
}

/// As [`conv2d_layer`] without a bias.
pub fn conv2d_layer_no_bias(
    c_in: usize,
    c_out: usize,
    k: usize,
    cfg: Conv2dConfig,
    vb: VarBuilder,
) -> Result<Conv2d> {
    candle_nn::conv2d_no_bias(c_in, c_out, k, cfg, vb).map(Conv2d::from)
}

/// Stride, padding, output padding and dilation of a transposed convolution (as PyTorch's
/// `ConvTranspose2d`, groups 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose2dParams {
    /// Step between input positions in the output (default 1).
    pub stride: usize,
    /// Rows/columns removed from every side of the full output (default 0).
    pub padding: usize,
    /// Extra rows/columns added at the bottom/right (default 0; must be below stride or dilation).
    pub output_padding: usize,
    /// Spacing between kernel taps (default 1).
    pub dilation: usize,
}

impl Default for ConvTranspose2dParams {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: 0,
            output_padding: 0,
            dilation: 1,
        }
    }
}

impl From<candle_nn::ConvTranspose2dConfig> for ConvTranspose2dParams {
    fn from(c: candle_nn::ConvTranspose2dConfig) -> Self {
        Self {
            stride: c.stride,
            padding: c.padding,
            output_padding: c.output_padding,
            dilation: c.dilation,
        }
    }
}

/// Transposed 2-D convolution of `x` (N, C_in, H, W) with the kernel `w` (C_in, C_out, kH, kW): output
/// (N, C_out, H_out, W_out), `H_out = (H − 1)·s − 2p + d(kH − 1) + output_padding + 1`.
///
/// It is the input gradient of the convolution with kernel `w` that maps (N, C_out, H_out, W_out) to
/// (N, C_in, H, W), so on the CPU in f32/f64 it is that product of the im2col op (exact gradients of
/// every order); elsewhere candle's own `conv_transpose2d`.
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, params: ConvTranspose2dParams) -> Result<Tensor> {
    let p = Conv2dParams {
        stride: params.stride,
        padding: params.padding,
        dilation: params.dilation,
        groups: 1,
    };
    if !uses_fast_conv2d(x, w, &p) {
        return x.conv_transpose2d(
            w,
            params.padding,
            params.output_padding,
            params.stride,
            params.dilation,
        );
    }
    let (n, c_in, h, wd) = x.dims4()?;
    let (k_in, c_out, kh, kw) = w.dims4()?;
    if k_in != c_in {
        bail!("conv_transpose2d: input has {c_in} channels but the kernel expects {k_in}");
    }
    if params.stride == 0 || params.dilation == 0 || kh == 0 || kw == 0 || h == 0 || wd == 0 {
        bail!("conv_transpose2d: stride, dilation, kernel and input sizes must be at least 1");
    }
    if params.output_padding >= params.stride.max(params.dilation) {
        bail!(
            "conv_transpose2d: output_padding ({}) must be smaller than stride ({}) or dilation ({})",
            params.output_padding,
            params.stride,
            params.dilation
        );
    }
    let full = |len: usize, k: usize| {
        (len - 1) * params.stride + params.dilation * (k - 1) + params.output_padding + 1
    };
    let (ho, wo) = (full(h, kh), full(wd, kw));
    if ho <= 2 * params.padding || wo <= 2 * params.padding {
        bail!(
            "conv_transpose2d: padding {} removes the whole {ho}×{wo} output",
            params.padding
        );
    }
    let (ho, wo) = (ho - 2 * params.padding, wo - 2 * params.padding);
    let geom = Geometry::new((n, c_out, ho, wo), (c_in, c_out, kh, kw), &p)?;
    debug_assert_eq!((geom.ho, geom.wo), (h, wd));
    Conv2dOp::apply(geom, Mode::InputGrad, x, w)
}

/// A transposed convolution layer with an optional bias; same parameters, names and initialisation as
/// `candle_nn::ConvTranspose2d` (build it with [`conv_transpose2d_layer`]); its forward uses
/// [`conv_transpose2d`].
#[derive(Debug, Clone)]
pub struct ConvTranspose2d {
    weight: Tensor,
    bias: Option<Tensor>,
    params: ConvTranspose2dParams,
}

impl ConvTranspose2d {
    /// A layer from a kernel (C_in, C_out, kH, kW) and an optional bias (C_out,).
    pub fn new(weight: Tensor, bias: Option<Tensor>, params: ConvTranspose2dParams) -> Self {
        Self {
            weight,
            bias,
            params,
        }
    }

    /// The kernel.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl From<candle_nn::ConvTranspose2d> for ConvTranspose2d {
    fn from(c: candle_nn::ConvTranspose2d) -> Self {
        Self::new(c.weight().clone(), c.bias().cloned(), (*c.config()).into())
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = conv_transpose2d(x, &self.weight, self.params)?;
        match &self.bias {
            Some(b) if y.device().is_cpu() && matches!(y.dtype(), DType::F32 | DType::F64) => {
                super::channel::channel_shift(&y, b)
            }
            Some(b) => y.broadcast_add(&b.reshape((1, b.dims1()?, 1, 1))?),
            None => Ok(y),
        }
    }
}

/// A `c_in → c_out` transposed convolution layer with a `k × k` kernel and a bias, created in `vb` with
/// candle-nn's names and initialisation.
pub fn conv_transpose2d_layer(
    c_in: usize,
    c_out: usize,
    k: usize,
    cfg: candle_nn::ConvTranspose2dConfig,
    vb: VarBuilder,
) -> Result<ConvTranspose2d> {
    candle_nn::conv_transpose2d(c_in, c_out, k, cfg, vb).map(ConvTranspose2d::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_matches_brute_force() {
        for inp in 1..7 {
            for s in 1..4 {
                for p in 0..3 {
                    for offset in 0..6 {
                        let out = 9;
                        let want: Vec<usize> = (0..out)
                            .filter(|&o| {
                                let i = (o * s + offset) as isize - p as isize;
                                i >= 0 && i < inp as isize
                            })
                            .collect();
                        let (lo, hi) = valid_range(out, inp, offset, s, p);
                        let got: Vec<usize> = (lo..hi).collect();
                        // The valid set is an interval, so it must be exactly [lo, hi).
                        assert_eq!(got, want, "inp {inp} s {s} p {p} offset {offset}");
                    }
                }
            }
        }
    }

    #[test]
    fn im2col_and_col2im_are_adjoint() {
        let p = Conv2dParams {
            stride: 2,
            padding: 1,
            dilation: 2,
            groups: 1,
        };
        let g = Geometry::new((1, 2, 7, 6), (3, 2, 3, 2), &p).unwrap();
        let x: Vec<f64> = (0..g.x_len())
            .map(|i| ((i * 7 % 11) as f64) - 5.0)
            .collect();
        let c: Vec<f64> = (0..g.k_len() * g.p_len())
            .map(|i| ((i * 5 % 13) as f64) - 6.0)
            .collect();
        let mut col = vec![0.0; g.k_len() * g.p_len()];
        g.im2col(&x, &mut col);
        let mut back = vec![0.0; g.x_len()];
        g.col2im(&c, &mut back);
        let lhs: f64 = col.iter().zip(&c).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }
}
