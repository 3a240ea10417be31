//! The three passes over a [`Net`](crate::net::Net)'s layers: the primal forward, the tangent
//! (`J v`, frozen masks) and the hand-written transpose (`Jᵀ u`, the same masks).
//!
//! The transpose pass is what every gradient of this crate uses on a `Net`: it computes only the input
//! gradients, never the kernel gradients a backward pass would. A convolution's `Jᵀ u` is nn-core's
//! im2col input-gradient product (`nn_core::ops::conv_transpose2d`). Conventions follow candle's backward (ReLU mask
//! `x ≥ 0`; max-pool ties each receive the full cotangent), so the transpose pass equals candle's input
//! gradient and `⟨J v, u⟩ = ⟨v, Jᵀ u⟩` holds to rounding; both are tested against candle's autograd.

use candle_core::{Module, Tensor};
use candle_nn::ModuleT;
use nn_core::layers::{global_avg_pool2d, max_pool2d, max_pool2d_strided};

use crate::net::{Layer, Node};

/// What the tangent and transpose passes need from the primal pass at one layer.
pub(crate) struct Lin {
    in_dims: Vec<usize>,
    data: LinData,
}

enum LinData {
    /// The layer is linear (or affine): nothing recorded.
    None,
    /// ReLU mask `[x ≥ 0]` or tanh derivative `1 − y²`, elementwise.
    Elementwise(Tensor),
    /// Max pool k×k/stride k: `[x == window max]`, shaped `(N, C, H/k, k, W/k, k)`.
    Pool(Tensor),
    /// Overlapping max pool: one mask `(N, C, H_out, W_out)` per window cell `(di, dj)`.
    StridedPool(Vec<Tensor>),
    /// Residual block: the two branches.
    Residual(Vec<Lin>, Vec<Lin>),
}

/// The primal forward of `nodes`, calling `tap` for every named output and stopping after the node
/// named `stop`. Returns the last output and whether it stopped there.
pub(crate) fn forward_nodes(
    nodes: &[Node],
    x: &Tensor,
    stop: Option<&str>,
    tap: &mut dyn FnMut(&str, &Tensor),
) -> candle_core::Result<(Tensor, bool)> {
    let mut x = x.clone();
    for node in nodes {
        x = forward_layer(&node.layer, &x)?;
        if let Some(name) = &node.name {
            tap(name, &x);
            if stop == Some(name.as_str()) {
                return Ok((x, true));
            }
        }
    }
    Ok((x, false))
}

fn forward_layer(layer: &Layer, x: &Tensor) -> candle_core::Result<Tensor> {
    match layer {
        Layer::Normalize { mean, std } => {
            let (m, s) = channel_params(mean, std)?;
            x.broadcast_sub(&m)?.broadcast_div(&s)
        }
        Layer::Conv2d { conv, .. } => conv.forward(x),
        Layer::Linear { linear, .. } => linear.forward(x),
        Layer::BatchNorm { bn, .. } => bn.forward_t(x, false),
        Layer::Relu => nn_core::ops::relu(x),
        Layer::Tanh => x.tanh(),
        Layer::MaxPool { k } => max_pool2d(x, *k),
        Layer::MaxPoolStrided { k, stride, padding } => {
            max_pool2d_strided(x, *k, *stride, *padding)
        }
        Layer::GlobalAvgPool => global_avg_pool2d(x),
        Layer::AdaptiveAvgPool { out_h, out_w } => adaptive_avg_pool2d(x, *out_h, *out_w),
        Layer::Flatten => x.flatten_from(1),
        Layer::Residual { main, shortcut } => {
            let m = forward_nodes(main, x, None, &mut |_, _| {})?.0;
            let s = forward_nodes(shortcut, x, None, &mut |_, _| {})?.0;
            m + s
        }
    }
}

fn channel_params(mean: &Tensor, std: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let c = mean.dims1()?;
    Ok((mean.reshape((1, c, 1, 1))?, std.reshape((1, c, 1, 1))?))
}

/// The primal forward up to `stop`, recording what the tangent and transpose passes need.
pub(crate) fn linearize_nodes(
    nodes: &[Node],
    x: &Tensor,
    stop: Option<&str>,
) -> candle_core::Result<(Tensor, Vec<Lin>)> {
    let mut x = x.clone();
    let mut lins = Vec::new();
    for node in nodes {
        let (y, lin) = linearize_layer(&node.layer, &x)?;
        x = y;
        lins.push(lin);
        if stop.is_some() && node.name.as_deref() == stop {
            break;
        }
    }
    Ok((x, lins))
}

fn linearize_layer(layer: &Layer, x: &Tensor) -> candle_core::Result<(Tensor, Lin)> {
    let in_dims = x.dims().to_vec();
    let (y, data) = match layer {
        Layer::Relu => (
            x.relu()?,
            LinData::Elementwise(x.ge(0.0)?.to_dtype(x.dtype())?),
        ),
        Layer::Tanh => {
            let y = x.tanh()?;
            let d = y.sqr()?.affine(-1.0, 1.0)?;
            (y, LinData::Elementwise(d))
        }
        Layer::MaxPool { k } if *k > 1 => {
            let y = max_pool2d(x, *k)?;
            let (n, c, h, w) = x.dims4()?;
            let (ho, wo) = (h / k, w / k);
            let mask = window_view(x, *k, ho, wo)?
                .broadcast_eq(&y.reshape((n, c, ho, 1, wo, 1))?)?
                .to_dtype(x.dtype())?;
            (y, LinData::Pool(mask))
        }
        Layer::MaxPoolStrided { k, stride, padding } => {
            let y = max_pool2d_strided(x, *k, *stride, *padding)?;
            let (_, _, ho, wo) = y.dims4()?;
            let xp = pad_const(x, *padding, *padding, f64::NEG_INFINITY)?;
            let mut masks = Vec::with_capacity(k * k);
            for di in 0..*k {
                for dj in 0..*k {
                    let cell = window_cell(&xp, di, dj, *stride, ho, wo)?;
                    masks.push(cell.eq(&y)?.to_dtype(x.dtype())?);
                }
            }
            (y, LinData::StridedPool(masks))
        }
        Layer::Residual { main, shortcut } => {
            let (m, lm) = linearize_nodes(main, x, None)?;
            let (s, ls) = linearize_nodes(shortcut, x, None)?;
            ((m + s)?, LinData::Residual(lm, ls))
        }
        other => (forward_layer(other, x)?, LinData::None),
    };
    Ok((y, Lin { in_dims, data }))
}

/// `x` cropped to `(ho·k, wo·k)` and viewed as `(N, C, ho, k, wo, k)`.
fn window_view(x: &Tensor, k: usize, ho: usize, wo: usize) -> candle_core::Result<Tensor> {
    let (n, c, _, _) = x.dims4()?;
    x.narrow(2, 0, ho * k)?
        .narrow(3, 0, wo * k)?
        .reshape((n, c, ho, k, wo, k))
}

/// The tangent pass through the first `lins.len()` nodes.
pub(crate) fn tangent_nodes(
    nodes: &[Node],
    lins: &[Lin],
    t: &Tensor,
) -> candle_core::Result<Tensor> {
    let mut t = t.clone();
    for (node, lin) in nodes.iter().zip(lins) {
        t = tangent_layer(&node.layer, lin, &t)?;
    }
    Ok(t)
}

fn tangent_layer(layer: &Layer, lin: &Lin, t: &Tensor) -> candle_core::Result<Tensor> {
    match (layer, &lin.data) {
        (Layer::Normalize { mean, std }, _) => t.broadcast_div(&channel_params(mean, std)?.1),
        (Layer::Conv2d { linear_part, .. }, _) => linear_part.forward(t),
        (Layer::Linear { linear_part, .. }, _) => linear_part.forward(t),
        (Layer::BatchNorm { scale, .. }, _) => t.broadcast_mul(scale),
        (_, LinData::Elementwise(d)) => t * d,
        (Layer::MaxPool { k }, LinData::Pool(mask)) => {
            let (ho, wo) = (mask.dim(2)?, mask.dim(4)?);
            (window_view(t, *k, ho, wo)? * mask)?.sum(5)?.sum(3)
        }
        (Layer::MaxPoolStrided { k, stride, padding }, LinData::StridedPool(masks)) => {
            let (_, _, ho, wo) = masks[0].dims4()?;
            let tp = pad_const(t, *padding, *padding, 0.0)?;
            let mut out: Option<Tensor> = None;
            for (i, mask) in masks.iter().enumerate() {
                let term = (window_cell(&tp, i / k, i % k, *stride, ho, wo)? * mask)?;
                out = Some(match out {
                    Some(o) => (o + term)?,
                    None => term,
                });
            }
            out.ok_or_else(|| candle_core::Error::Msg("max pool with an empty window".into()))
        }
        (Layer::Residual { main, shortcut }, LinData::Residual(lm, ls)) => {
            tangent_nodes(main, lm, t)? + tangent_nodes(shortcut, ls, t)?
        }
        // Linear layers without parameters (k = 1 pools, global/adaptive pools, flatten).
        (other, _) => forward_layer(other, t),
    }
}

/// The transpose pass: the cotangent `u` at the output of node `lins.len() − 1` pulled back to the input.
pub(crate) fn adjoint_nodes(
    nodes: &[Node],
    lins: &[Lin],
    u: &Tensor,
) -> candle_core::Result<Tensor> {
    let mut u = u.clone();
    for (node, lin) in nodes.iter().zip(lins).rev() {
        u = adjoint_layer(&node.layer, lin, &u)?;
    }
    Ok(u)
}

fn adjoint_layer(layer: &Layer, lin: &Lin, u: &Tensor) -> candle_core::Result<Tensor> {
    let in_dims = lin.in_dims.as_slice();
    match (layer, &lin.data) {
        (Layer::Normalize { mean, std }, _) => u.broadcast_div(&channel_params(mean, std)?.1),
        (Layer::Conv2d { conv, .. }, _) => {
            // Jᵀ u of a convolution is its input gradient: the transposed convolution with the output
            // padding that restores the input size (nn-core's im2col product on the CPU).
            let cfg = conv.params();
            let w = conv.weight();
            let kh = w.dim(2)?;
            let out = (u.dim(2)? - 1) * cfg.stride + cfg.dilation * (kh - 1) + 1 - 2 * cfg.padding;
            let params = nn_core::ops::ConvTranspose2dParams {
                stride: cfg.stride,
                padding: cfg.padding,
                output_padding: in_dims[2] - out,
                dilation: cfg.dilation,
            };
            nn_core::ops::conv_transpose2d(u, w, params)
        }
        (Layer::Linear { linear, .. }, _) => u.matmul(linear.weight()),
        (Layer::BatchNorm { scale, .. }, _) => u.broadcast_mul(scale),
        (_, LinData::Elementwise(d)) => u * d,
        (Layer::MaxPool { .. }, LinData::Pool(mask)) => {
            let &[n, c, ho, k, wo, _] = mask.dims() else {
                candle_core::bail!("max-pool mask must have rank 6, got {:?}", mask.dims())
            };
            let full = mask
                .broadcast_mul(&u.reshape((n, c, ho, 1, wo, 1))?)?
                .reshape((n, c, ho * k, wo * k))?;
            full.pad_with_zeros(2, 0, in_dims[2] - ho * k)?
                .pad_with_zeros(3, 0, in_dims[3] - wo * k)
        }
        (Layer::MaxPoolStrided { k, stride, padding }, LinData::StridedPool(masks)) => {
            let (n, c, ho, wo) = masks[0].dims4()?;
            let (hp, wp) = (in_dims[2] + 2 * padding, in_dims[3] + 2 * padding);
            let dev = u.device();
            let mut acc = Tensor::zeros((n, c, hp, wp), u.dtype(), dev)?;
            for (i, mask) in masks.iter().enumerate() {
                let (di, dj) = (i / k, i % k);
                let rows: Vec<u32> = (0..ho).map(|r| (di + r * stride) as u32).collect();
                let cols: Vec<u32> = (0..wo).map(|q| (dj + q * stride) as u32).collect();
                let part = (u * mask)?;
                let spread_cols = Tensor::zeros((n, c, ho, wp), u.dtype(), dev)?.index_add(
                    &Tensor::new(cols.as_slice(), dev)?,
                    &part,
                    3,
                )?;
                acc = acc.index_add(&Tensor::new(rows.as_slice(), dev)?, &spread_cols, 2)?;
            }
            acc.narrow(2, *padding, in_dims[2])?
                .narrow(3, *padding, in_dims[3])
        }
        (Layer::GlobalAvgPool, _) => {
            let (n, c, h, w) = (in_dims[0], in_dims[1], in_dims[2], in_dims[3]);
            u.reshape((n, c, 1, 1))?
                .broadcast_as((n, c, h, w))?
                .affine(1.0 / (h * w) as f64, 0.0)
        }
        (Layer::AdaptiveAvgPool { out_h, out_w }, _) => {
            let (n, c, h, w) = (in_dims[0], in_dims[1], in_dims[2], in_dims[3]);
            if (h, w) == (*out_h, *out_w) {
                return Ok(u.clone());
            }
            let (a, b) = adaptive_matrices(h, w, *out_h, *out_w, u)?;
            // X̄ = Aᵀ Ū B.
            let ub = u
                .contiguous()?
                .reshape((n * c * out_h, *out_w))?
                .matmul(&b)?
                .reshape((n * c, *out_h, w))?;
            a.t()?
                .contiguous()?
                .broadcast_matmul(&ub)?
                .reshape((n, c, h, w))
        }
        (Layer::Flatten, _) => u.reshape(in_dims),
        (Layer::MaxPool { .. }, _) => Ok(u.clone()), // k = 1
        (Layer::Residual { main, shortcut }, LinData::Residual(lm, ls)) => {
            adjoint_nodes(main, lm, u)? + adjoint_nodes(shortcut, ls, u)?
        }
        (other, _) => candle_core::bail!("no transpose pass for layer {other:?}"),
    }
}

/// Pads `[N, C, H, W]` by `before`/`after` cells on both spatial axes with the constant `value`.
fn pad_const(x: &Tensor, before: usize, after: usize, value: f64) -> candle_core::Result<Tensor> {
    if before == 0 && after == 0 {
        return Ok(x.clone());
    }
    let (n, c, h, w) = x.dims4()?;
    let fill =
        |s: (usize, usize, usize, usize)| Tensor::full(value, s, x.device())?.to_dtype(x.dtype());
    let mut rows = Vec::with_capacity(3);
    if before > 0 {
        rows.push(fill((n, c, before, w))?);
    }
    rows.push(x.clone());
    if after > 0 {
        rows.push(fill((n, c, after, w))?);
    }
    let x = Tensor::cat(&rows, 2)?;
    let hp = h + before + after;
    let mut cols = Vec::with_capacity(3);
    if before > 0 {
        cols.push(fill((n, c, hp, before))?);
    }
    cols.push(x);
    if after > 0 {
        cols.push(fill((n, c, hp, after))?);
    }
    Tensor::cat(&cols, 3)
}

/// The window cell `(di, dj)` of every output position of a pool with stride `s` on the padded input.
fn window_cell(
    xp: &Tensor,
    di: usize,
    dj: usize,
    s: usize,
    ho: usize,
    wo: usize,
) -> candle_core::Result<Tensor> {
    let dev = xp.device();
    let rows: Vec<u32> = (0..ho).map(|i| (di + i * s) as u32).collect();
    let cols: Vec<u32> = (0..wo).map(|j| (dj + j * s) as u32).collect();
    xp.index_select(&Tensor::new(rows.as_slice(), dev)?, 2)?
        .index_select(&Tensor::new(cols.as_slice(), dev)?, 3)
}

/// The `(out × in)` averaging matrix of PyTorch's adaptive average pooling on one axis: bin `i` averages
/// `⌊i·in/out⌋ … ⌈(i+1)·in/out⌉ − 1`.
pub(crate) fn adaptive_matrix(n_in: usize, n_out: usize) -> Vec<f64> {
    let mut m = vec![0.0; n_out * n_in];
    for i in 0..n_out {
        let start = i * n_in / n_out;
        let end = ((i + 1) * n_in).div_ceil(n_out);
        for j in start..end {
            m[i * n_in + j] = 1.0 / (end - start) as f64;
        }
    }
    m
}

fn adaptive_matrices(
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
    like: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    let dev = like.device();
    let a = Tensor::from_vec(adaptive_matrix(h, out_h), (out_h, h), dev)?.to_dtype(like.dtype())?;
    let b = Tensor::from_vec(adaptive_matrix(w, out_w), (out_w, w), dev)?.to_dtype(like.dtype())?;
    Ok((a, b))
}

/// Adaptive average pooling `[N, C, H, W] → [N, C, out_h, out_w]` as `A · X · Bᵀ` (identity when the
/// size already matches).
fn adaptive_avg_pool2d(x: &Tensor, out_h: usize, out_w: usize) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    if (h, w) == (out_h, out_w) {
        return Ok(x.clone());
    }
    let (a, b) = adaptive_matrices(h, w, out_h, out_w, x)?;
    let xb = x
        .contiguous()?
        .reshape((n * c * h, w))?
        .matmul(&b.t()?)?
        .reshape((n * c, h, out_w))?;
    a.broadcast_matmul(&xb)?.reshape((n, c, out_h, out_w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adaptive_matrix_matches_pytorch_bins() {
        // 5 → 3: bins [0,2), [1,4), [3,5).
        let (h, t) = (0.5, 1.0 / 3.0);
        assert_eq!(
            adaptive_matrix(5, 3),
            vec![h, h, 0.0, 0.0, 0.0, 0.0, t, t, t, 0.0, 0.0, 0.0, 0.0, h, h]
        );
        assert!(adaptive_matrix(1, 7).iter().all(|&v| v == 1.0));
    }

    #[test]
    fn max_pool_tangent_and_transpose_follow_the_tie_convention() {
        let dev = Device::Cpu;
        // One window with two tied maxima (positions 1 and 3): tangent t1 + t3; transpose gives the full
        // cotangent to both.
        let x = Tensor::new(&[[[[0f64, 5.], [1., 5.]]]], &dev).unwrap();
        let t = Tensor::new(&[[[[10f64, 1.], [100., 2.]]]], &dev).unwrap();
        for layer in [
            Layer::MaxPool { k: 2 },
            Layer::MaxPoolStrided {
                k: 2,
                stride: 2,
                padding: 0,
            },
        ] {
            let (_, lin) = linearize_layer(&layer, &x).unwrap();
            let ty = tangent_layer(&layer, &lin, &t).unwrap();
            assert_eq!(
                ty.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
                vec![3.0]
            );
            let u = Tensor::new(&[[[[7f64]]]], &dev).unwrap();
            let xu = adjoint_layer(&layer, &lin, &u).unwrap();
            assert_eq!(
                xu.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
                vec![0.0, 7.0, 0.0, 7.0]
            );
        }
    }
}
