//! Fast CPU kernels as candle custom ops: [`conv2d`] (im2col + GEMM, all three products), the fused
//! [`max_pool2d`] and [`relu`], per-channel reductions and [`BatchNorm`] built on them, and the in-place
//! optimiser passes. Each op's backward is built from the module's own ops, so gradients of every order are
//! exact, and each is checked against finite differences and against candle's own op
//! (`tests/ops_fast.rs`). On other devices or dtypes the public entry points fall back to candle.
//!
//! Models reach these through [`crate::layers`]; call them directly only to pick the path explicitly.

mod batch_norm;
mod channel;
mod conv2d;
mod gemm;
mod max_pool;
mod relu;
pub(crate) mod update;

pub use batch_norm::{BatchNorm, batch_norm};
pub use channel::{channel_affine, channel_dot, channel_scale, channel_shift, channel_sum};
pub use conv2d::{
    Conv2d, Conv2dParams, ConvTranspose2d, ConvTranspose2dParams, conv_transpose2d,
    conv_transpose2d_layer, conv2d, conv2d_bias, conv2d_layer, conv2d_layer_no_bias,
    uses_fast_conv2d,
};
pub use max_pool::{max_pool2d, uses_fast_max_pool2d};
pub use relu::{relu, uses_fast_relu};

use candle_core::{Layout, Result, bail};

/// The part of `data` a contiguous `layout` covers, or an error naming `op`.
fn contiguous_slice<'a, T>(data: &'a [T], layout: &Layout, op: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) if end <= data.len() => Ok(&data[start..end]),
        _ => bail!("{op}: operand is not contiguous"),
    }
}
