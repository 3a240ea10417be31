//! Safe replacements for candle 0.11 ops whose gradients are wrong, missing or silently constant.
//!
//! Every function here takes `&Tensor` and returns [`candle_core::Result`], so it can be used inside a
//! candle `Module` implementation. The defects are numbered as in `shared/specs/candle-pitfalls.md`
//! (A1 … A7); each replacement is built only from elementary ops whose backward is correct, and each has a
//! finite-difference gradient test in `crates/nn-core/tests/layers_grad.rs`. Canary tests in
//! `tests/layers_canary.rs` assert that the upstream defects still exist, and `tests/layers_lint.rs` fails if
//! the raw candle ops are called anywhere else in the workspace.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use nn_core::layers;
//!
//! // A1 hand example: the gradient of sum(max_pool2d(x, 2)) is 1 at the maximum.
//! let x = Var::new(&[[[[1f64, 2.], [3., 4.]]]], &Device::Cpu)?;
//! let y = layers::max_pool2d(x.as_tensor(), 2)?;
//! assert_eq!(y.flatten_all()?.to_vec1::<f64>()?, vec![4.0]);
//! let grads = y.sum_all()?.backward()?;
//! let g = grads.get(x.as_tensor()).unwrap().flatten_all()?.to_vec1::<f64>()?;
//! assert_eq!(g, vec![0.0, 0.0, 0.0, 1.0]);
//!
//! // Bilinear upsampling (PyTorch `align_corners=false`) with a working backward (A5).
//! let up = layers::upsample_bilinear2d(x.as_tensor(), 4, 4)?;
//! assert_eq!(up.dims(), &[1, 1, 4, 4]);
//! # Ok::<(), candle_core::Error>(())
//! ```

use candle_core::shape::Dim;
use candle_core::{D, DType, Result, Tensor};

/// Checks that `k` and `stride` are at least 1 and returns the four dimensions of `x`.
fn dims4_checked(
    x: &Tensor,
    what: &str,
    k: usize,
    stride: usize,
) -> Result<(usize, usize, usize, usize)> {
    if k == 0 || stride == 0 {
        candle_core::bail!("{what}: kernel size ({k}) and stride ({stride}) must be at least 1");
    }
    let dims = x.dims4()?;
    Ok(dims)
}

/// Crops `x` (N, C, H, W) to `(H/k)·k × (W/k)·k` (PyTorch floor mode); errors if H or W < k.
fn crop_to_multiple(x: &Tensor, k: usize, what: &str) -> Result<Tensor> {
    let (_n, _c, h, w) = x.dims4()?;
    if h < k || w < k {
        candle_core::bail!("{what}: input {h}x{w} is smaller than the {k}x{k} kernel");
    }
    let (h2, w2) = ((h / k) * k, (w / k) * k);
    let mut x = x.clone();
    if h2 != h {
        x = x.narrow(2, 0, h2)?;
    }
    if w2 != w {
        x = x.narrow(3, 0, w2)?;
    }
    Ok(x)
}

/// Max pool with a k×k window and stride k, PyTorch floor mode (rows/columns that do not fill a window
/// are dropped). Input (N, C, H, W), output (N, C, ⌊H/k⌋, ⌊W/k⌋).
///
/// Why (A1): candle's `max_pool2d` backward multiplies the gradient by (#maxima in window)/k², i.e. gives
/// 0.25× the true gradient for 2×2 windows, silently. Here `y = max over axes (3, 5) of
/// x.reshape(N, C, H/k, k, W/k, k)`, whose backward is that of the `max` reduction: the full upstream
/// gradient goes to the window maximum. Tie convention (§2.1): on exact ties every tied element receives
/// the full gradient (not split, not one picked), which matters only for constant windows.
///
/// On the CPU in f32/f64 this runs the fused kernel [`crate::ops::max_pool2d`] (same values, gradients and
/// tie convention, one pass); elsewhere the reshape form.
pub fn max_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    dims4_checked(x, "max_pool2d", k, k)?;
    if k == 1 {
        return Ok(x.clone());
    }
    if crate::ops::uses_fast_max_pool2d(x) {
        return crate::ops::max_pool2d(x, k);
    }
    max_pool2d_reshape(x, k)
}

/// The reshape + `max` form of [`max_pool2d`] on any device and dtype (the reference the fused kernel is
/// tested against).
pub fn max_pool2d_reshape(x: &Tensor, k: usize) -> Result<Tensor> {
    dims4_checked(x, "max_pool2d", k, k)?;
    if k == 1 {
        return Ok(x.clone());
    }
    let x = crop_to_multiple(x, k, "max_pool2d")?;
    let (n, c, h, w) = x.dims4()?;
    x.reshape((n, c, h / k, k, w / k, k))?.max(5)?.max(3)
}

/// Pads (N, C, H, W) by `top`, `bottom` rows and `left`, `right` columns filled with the constant
/// `value` (any dtype; −∞ stays −∞ in float types). Built from `cat`, so the gradient is the crop.
fn pad2d_const(
    x: &Tensor,
    top: usize,
    bottom: usize,
    left: usize,
    right: usize,
    value: f64,
) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let full = |shape: (usize, usize, usize, usize)| -> Result<Tensor> {
        Tensor::full(value, shape, x.device())?.to_dtype(x.dtype())
    };
    let mut rows: Vec<Tensor> = Vec::with_capacity(3);
    if top > 0 {
        rows.push(full((n, c, top, w))?);
    }
    rows.push(x.clone());
    if bottom > 0 {
        rows.push(full((n, c, bottom, w))?);
    }
    let x = if rows.len() > 1 {
        Tensor::cat(&rows, 2)?
    } else {
        x.clone()
    };
    let hp = h + top + bottom;
    let mut cols: Vec<Tensor> = Vec::with_capacity(3);
    if left > 0 {
        cols.push(full((n, c, hp, left))?);
    }
    cols.push(x.clone());
    if right > 0 {
        cols.push(full((n, c, hp, right))?);
    }
    if cols.len() > 1 {
        Tensor::cat(&cols, 3)
    } else {
        Ok(x)
    }
}

/// The k² shifted, strided views of a padded input, stacked on a new axis 2:
/// output (N, C, k², H_out, W_out) with `out[.., di·k + dj, i, j] = xp[.., di + i·s, dj + j·s]`.
/// `xp` must have been padded on the bottom/right by `s − 1` extra cells (never selected) so that every
/// view can be subsampled by a reshape to (…, H_out, s) and keeping index 0.
fn strided_views(xp: &Tensor, k: usize, s: usize, h_out: usize, w_out: usize) -> Result<Tensor> {
    let (n, c, _, _) = xp.dims4()?;
    let mut views = Vec::with_capacity(k * k);
    for di in 0..k {
        for dj in 0..k {
            let v = xp.narrow(2, di, h_out * s)?.narrow(3, dj, w_out * s)?;
            let v = if s == 1 {
                v
            } else {
                v.reshape((n, c, h_out, s, w_out, s))?
                    .narrow(5, 0, 1)?
                    .narrow(3, 0, 1)?
                    .reshape((n, c, h_out, w_out))?
            };
            views.push(v);
        }
    }
    Tensor::stack(&views, 2)
}

/// Output size of a pool with kernel k, stride s and symmetric padding p (PyTorch floor mode).
fn pooled_len(len: usize, k: usize, s: usize, p: usize, what: &str) -> Result<usize> {
    if len + 2 * p < k {
        candle_core::bail!(
            "{what}: padded input length {} is smaller than the kernel {k}",
            len + 2 * p
        );
    }
    Ok((len + 2 * p - k) / s + 1)
}

/// Overlapping max pool: k×k window, stride `stride`, symmetric padding `padding` (padded cells hold −∞
/// and never win), PyTorch floor mode. Output
/// (N, C, ⌊(H + 2p − k)/s⌋ + 1, ⌊(W + 2p − k)/s⌋ + 1). Requires `padding ≤ k/2` (as PyTorch does), so
/// that no window lies entirely in the padding.
///
/// Why (A2): candle's pools have no backward when kernel ≠ stride (ResNet stem 3×3/s2). Here
/// `y = max over the k² shifted strided views of the padded input` (§2.2), built from `cat`, `narrow`,
/// `reshape`, `stack` and the `max` reduction, all with correct backward. Padding uses −∞ rather than
/// replicated edge values: a replicated copy would tie with the original edge element, and the `max`
/// backward gives the full gradient to every tie, so the edge would receive it twice.
pub fn max_pool2d_strided(x: &Tensor, k: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let (_n, _c, h, w) = dims4_checked(x, "max_pool2d_strided", k, stride)?;
    if padding > k / 2 {
        candle_core::bail!(
            "max_pool2d_strided: padding {padding} must be at most half the kernel size {k}"
        );
    }
    let h_out = pooled_len(h, k, stride, padding, "max_pool2d_strided")?;
    let w_out = pooled_len(w, k, stride, padding, "max_pool2d_strided")?;
    let extra = stride - 1;
    let xp = pad2d_const(
        x,
        padding,
        padding + extra,
        padding,
        padding + extra,
        f64::NEG_INFINITY,
    )?;
    strided_views(&xp, k, stride, h_out, w_out)?.max(2)
}

/// Average pool with a k×k window and stride k, PyTorch floor mode. Input (N, C, H, W), output
/// (N, C, ⌊H/k⌋, ⌊W/k⌋), `y = mean over axes (3, 5) of x.reshape(N, C, H/k, k, W/k, k)`.
///
/// candle's own `avg_pool2d` has a correct first-order backward for kernel = stride, but only when k
/// divides H and W (its backward upsamples to the uncropped size), and its backward is itself an
/// `upsample_nearest2d` (A3) when second-order gradients are taken. The reshape form has neither issue
/// and mirrors [`max_pool2d`].
pub fn avg_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    dims4_checked(x, "avg_pool2d", k, k)?;
    if k == 1 {
        return Ok(x.clone());
    }
    let x = crop_to_multiple(x, k, "avg_pool2d")?;
    let (n, c, h, w) = x.dims4()?;
    x.reshape((n, c, h / k, k, w / k, k))?.mean(5)?.mean(3)
}

/// Overlapping average pool: k×k window, stride `stride`, symmetric zero padding `padding`, floor mode.
/// With `count_include_pad = true` (PyTorch's default) every window is divided by k²; with `false`
/// (TensorFlow/Keras "same" pooling, Inception) by the number of non-padded cells in the window.
///
/// Why (A2): candle's `avg_pool2d_with_stride` has no backward when kernel ≠ stride (Inception's 3×3/s1).
/// Here `y = (sum of the k² shifted strided views of the zero-padded input) / divisor` (§2.2), where the
/// divisor is a constant (k², or the same pooled sum of a padded ones-mask).
pub fn avg_pool2d_strided(
    x: &Tensor,
    k: usize,
    stride: usize,
    padding: usize,
    count_include_pad: bool,
) -> Result<Tensor> {
    let (_n, _c, h, w) = dims4_checked(x, "avg_pool2d_strided", k, stride)?;
    if padding > k / 2 {
        candle_core::bail!(
            "avg_pool2d_strided: padding {padding} must be at most half the kernel size {k}"
        );
    }
    let h_out = pooled_len(h, k, stride, padding, "avg_pool2d_strided")?;
    let w_out = pooled_len(w, k, stride, padding, "avg_pool2d_strided")?;
    let extra = stride - 1;
    let xp = pad2d_const(x, padding, padding + extra, padding, padding + extra, 0.0)?;
    let sum = strided_views(&xp, k, stride, h_out, w_out)?.sum(2)?;
    if count_include_pad || padding == 0 {
        sum.affine(1.0 / (k * k) as f64, 0.0)
    } else {
        let ones = Tensor::ones((1, 1, h, w), x.dtype(), x.device())?;
        let op = pad2d_const(
            &ones,
            padding,
            padding + extra,
            padding,
            padding + extra,
            0.0,
        )?;
        let count = strided_views(&op, k, stride, h_out, w_out)?.sum(2)?;
        sum.broadcast_div(&count)
    }
}

/// Global average pool: (N, C, H, W) → (N, C), `y[n, c] = mean over (h, w) of x[n, c, h, w]`.
/// (Plain `mean((2, 3))`, verified correct; wrapped so models have one place to look.)
pub fn global_avg_pool2d(x: &Tensor) -> Result<Tensor> {
    x.dims4()?;
    x.mean((2, 3))
}

/// Nearest-neighbour upsampling by an integer factor `scale` on both axes: (N, C, H, W) →
/// (N, C, scale·H, scale·W), `y[.., i, j] = x[.., ⌊i/scale⌋, ⌊j/scale⌋]`.
///
/// Why (A3, A4): candle's `upsample_nearest2d` backward **overwrites** the input's accumulated gradient
/// instead of adding to it, which is silently wrong as soon as the input has another consumer (U-Net skip
/// connections); and non-integer or non-uniform factors have no backward. Here the raw op is applied to
/// a fresh copy `x · 1.0` (§2.3): the overwrite then only hits the copy's own single gradient, and the
/// copy's `affine` backward adds into `x`. Only integer uniform factors are offered.
pub fn upsample_nearest2d(x: &Tensor, scale: usize) -> Result<Tensor> {
    let (_n, _c, h, w) = x.dims4()?;
    if scale == 0 {
        candle_core::bail!("upsample_nearest2d: scale must be at least 1");
    }
    if scale == 1 {
        return Ok(x.clone());
    }
    // `affine(1, 0)` is a separate graph node (candle does not short-cut it), see the doc comment.
    x.affine(1.0, 0.0)?.upsample_nearest2d(h * scale, w * scale)
}

/// The (out × in) linear-interpolation matrix of PyTorch's `align_corners=false` rule:
/// `src = (dst + 0.5)·in/out − 0.5`, clamped at 0; weight `1 − λ` on `⌊src⌋` and `λ = src − ⌊src⌋` on
/// `min(⌊src⌋ + 1, in − 1)`.
pub fn bilinear_matrix(n_in: usize, n_out: usize) -> Vec<f64> {
    let mut m = vec![0.0; n_out * n_in];
    let scale = n_in as f64 / n_out as f64;
    for dst in 0..n_out {
        let src = ((dst as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(n_in - 1);
        let i1 = (i0 + 1).min(n_in - 1);
        let lambda = src - i0 as f64;
        m[dst * n_in + i0] += 1.0 - lambda;
        m[dst * n_in + i1] += lambda;
    }
    m
}

/// Bilinear resize of (N, C, H, W) to (N, C, out_h, out_w) with PyTorch's `align_corners=false`
/// (half-pixel) convention, i.e. `F.interpolate(x, size=(out_h, out_w), mode="bilinear")`.
///
/// Why (A5): candle's `upsample_bilinear2d` has no backward. Here `Y = A · X · Bᵀ` per channel with fixed
/// interpolation matrices A (out_h × H) and B (out_w × W) from [`bilinear_matrix`] (§2.4), so the
/// backward is that of two matmuls. Works for down-sampling too (as PyTorch without antialias).
pub fn upsample_bilinear2d(x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    if h == 0 || w == 0 || out_h == 0 || out_w == 0 {
        candle_core::bail!("upsample_bilinear2d: empty input {h}x{w} or output {out_h}x{out_w}");
    }
    let dev = x.device();
    let a = Tensor::from_vec(bilinear_matrix(h, out_h), (out_h, h), dev)?.to_dtype(x.dtype())?;
    // Bᵀ directly as a contiguous (W × out_w) matrix.
    let b = bilinear_matrix(w, out_w);
    let mut bt = vec![0.0; w * out_w];
    for o in 0..out_w {
        for i in 0..w {
            bt[i * out_w + o] = b[o * w + i];
        }
    }
    let bt = Tensor::from_vec(bt, (w, out_w), dev)?.to_dtype(x.dtype())?;
    // X·Bᵀ: (N·C·H, W) × (W, out_w).
    let xb = x
        .contiguous()?
        .reshape((n * c * h, w))?
        .matmul(&bt)?
        .reshape((n * c, h, out_w))?;
    // A·(X·Bᵀ): (out_h, H) × (N·C, H, out_w), A broadcast over the batch.
    a.broadcast_matmul(&xb)?.reshape((n, c, out_h, out_w))
}

/// Softmax along `dim`: `exp(x − max) / sum(exp(x − max))`.
///
/// Why (A6): `candle_nn::ops::softmax_last_dim` has no backward and is silently treated as a constant.
/// This is `candle_nn::ops::softmax`, built from elementary ops (verified).
pub fn softmax<Dm: Dim>(x: &Tensor, dim: Dm) -> Result<Tensor> {
    candle_nn::ops::softmax(x, dim)
}

/// Log-softmax along `dim`: `(x − max) − log(sum(exp(x − max)))` (A6; `candle_nn::ops::log_softmax`,
/// verified).
pub fn log_softmax<Dm: Dim>(x: &Tensor, dim: Dm) -> Result<Tensor> {
    candle_nn::ops::log_softmax(x, dim)
}

/// Layer normalisation over the last dimension with biased variance (as PyTorch):
/// `y = (x − μ) / sqrt(σ² + eps) · gamma + beta`, μ and σ² the mean and mean squared deviation of the
/// last axis; `gamma`, `beta` of shape (D,).
///
/// Why (A7): `candle_nn::ops::layer_norm` (hence `LayerNorm::forward` on contiguous input) has no
/// backward: silently constant in f32, an error in f64. Built here from elementary ops.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    if gamma.dims1()? != d || beta.dims1()? != d {
        candle_core::bail!(
            "layer_norm: gamma {:?} and beta {:?} must both have shape ({d},)",
            gamma.dims(),
            beta.dims()
        );
    }
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = xc.broadcast_div(&var.affine(1.0, eps)?.sqrt()?)?;
    xn.broadcast_mul(gamma)?.broadcast_add(beta)
}

/// RMS normalisation over the last dimension: `y = x / sqrt(mean(x²) + eps) · alpha`, `alpha` of shape
/// (D,).
///
/// Why (A7): `candle_nn::ops::rms_norm` (hence `RmsNorm::forward`) has no backward. Elementary ops here.
pub fn rms_norm(x: &Tensor, alpha: &Tensor, eps: f64) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    if alpha.dims1()? != d {
        candle_core::bail!("rms_norm: alpha {:?} must have shape ({d},)", alpha.dims());
    }
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&ms.affine(1.0, eps)?.sqrt()?)?
        .broadcast_mul(alpha)
}

/// Reflection index map of one axis of length `len` padded by `p` on both sides (PyTorch
/// `ReflectionPad`: the edge is not repeated), e.g. len 4, p 2 → [2, 1, 0, 1, 2, 3, 2, 1].
fn reflect_indices(len: usize, p: usize) -> Vec<u32> {
    let mut idx = Vec::with_capacity(len + 2 * p);
    idx.extend((1..=p).rev().map(|i| i as u32));
    idx.extend((0..len).map(|i| i as u32));
    idx.extend((0..p).map(|i| (len - 2 - i) as u32));
    idx
}

/// Reflection padding of (N, C, H, W) by `p` on all four sides (PyTorch `ReflectionPad2d(p)`), output
/// (N, C, H + 2p, W + 2p); requires `p < H` and `p < W`.
///
/// candle has no reflection padding (§4). Built from `index_select` on each axis, whose backward
/// (`index_add`) accumulates the gradient of every reflected copy.
pub fn reflection_pad2d(x: &Tensor, p: usize) -> Result<Tensor> {
    let (_n, _c, h, w) = x.dims4()?;
    if p == 0 {
        return Ok(x.clone());
    }
    if p >= h || p >= w {
        candle_core::bail!(
            "reflection_pad2d: padding {p} must be smaller than the input size {h}x{w}"
        );
    }
    let dev = x.device();
    let ih = Tensor::new(reflect_indices(h, p).as_slice(), dev)?;
    let iw = Tensor::new(reflect_indices(w, p).as_slice(), dev)?;
    x.index_select(&ih, 2)?.index_select(&iw, 3)
}

/// Mean cross-entropy over the batch: `−(1/N) Σ_n log_softmax(logits)[n, labels[n]]`, logits (N, K),
/// labels (N,) of dtype u32. Wraps `candle_nn::loss::cross_entropy`, which uses `log_softmax` and is
/// therefore safe (A6 does not apply).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    if labels.dtype() != DType::U32 {
        candle_core::bail!(
            "cross_entropy: labels must be u32, got {:?}",
            labels.dtype()
        );
    }
    candle_nn::loss::cross_entropy(logits, labels)
}

/// ReLU, `max(x, 0)`; the gradient mask is `x ≥ 0` (gradient 1 at exactly 0, candle's convention). On the
/// CPU in f32/f64 the fused [`crate::ops::relu`] (one pass each way), elsewhere candle's `relu`.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    crate::ops::relu(x)
}

/// Flattens everything after the batch axis: (N, …) → (N, ∏ …).
pub fn flatten(x: &Tensor) -> Result<Tensor> {
    x.flatten_from(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_indices_follow_pytorch() {
        assert_eq!(reflect_indices(4, 2), vec![2, 1, 0, 1, 2, 3, 2, 1]);
        assert_eq!(reflect_indices(3, 1), vec![1, 0, 1, 2, 1]);
        assert_eq!(reflect_indices(2, 0), vec![0, 1]);
    }

    #[test]
    fn bilinear_rows_sum_to_one_and_match_hand_values() {
        for (n_in, n_out) in [(2, 4), (3, 7), (6, 4), (1, 3), (5, 5)] {
            let m = bilinear_matrix(n_in, n_out);
            for row in m.chunks(n_in) {
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-15);
                assert!(row.iter().all(|&v| v >= 0.0));
            }
        }
        assert_eq!(
            bilinear_matrix(2, 4),
            vec![1.0, 0.0, 0.75, 0.25, 0.25, 0.75, 0.0, 1.0]
        );
        // Same size: identity.
        assert_eq!(
            bilinear_matrix(3, 3),
            vec![1., 0., 0., 0., 1., 0., 0., 0., 1.]
        );
    }

    #[test]
    fn invalid_arguments_are_errors() {
        let x = Tensor::zeros((1, 1, 4, 4), DType::F32, &candle_core::Device::Cpu).unwrap();
        assert!(max_pool2d(&x, 0).is_err());
        assert!(max_pool2d(&x, 5).is_err());
        assert!(max_pool2d_strided(&x, 3, 0, 1).is_err());
        assert!(max_pool2d_strided(&x, 3, 2, 2).is_err());
        assert!(avg_pool2d_strided(&x, 2, 1, 2, true).is_err());
        assert!(upsample_nearest2d(&x, 0).is_err());
        assert!(upsample_bilinear2d(&x, 0, 3).is_err());
        assert!(reflection_pad2d(&x, 4).is_err());
        assert!(max_pool2d(&x.flatten_all().unwrap(), 2).is_err());
    }
}
