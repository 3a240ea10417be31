//! Fast CPU kernels as candle custom ops: [`conv2d`] (im2col + GEMM, all three products), the fused
//! [`max_pool2d`] and [`relu`], a whole convolution block ([`conv2d_relu_max_pool2d`]), a dense layer ([`linear`]), per-channel reductions and [`BatchNorm`] built on them, and the in-place
//! optimiser passes. Each op's backward is built from the module's own ops, so gradients of every order are
//! exact, and each is checked against finite differences and against candle's own op
//! (`tests/ops_fast.rs`). On other devices or dtypes the public entry points fall back to candle.
//!
//! Models reach these through [`crate::layers`]; call them directly only to pick the path explicitly.

mod batch_norm;
mod channel;
mod conv2d;
mod conv_block;
mod gemm;
mod linear;
mod max_pool;
mod relu;
mod resample;
pub(crate) mod update;

pub use batch_norm::{BatchNorm, batch_norm};
pub use channel::{channel_affine, channel_dot, channel_scale, channel_shift, channel_sum};
pub use conv_block::conv2d_relu_max_pool2d;
pub use conv2d::{
    Conv2d, Conv2dParams, ConvTranspose2d, ConvTranspose2dParams, conv_transpose2d,
    conv_transpose2d_layer, conv2d, conv2d_bias, conv2d_layer, conv2d_layer_no_bias,
    uses_fast_conv2d,
};
pub use linear::{Linear, linear, linear_layer};
pub use max_pool::{max_pool2d, relu_max_pool2d, uses_fast_max_pool2d};
pub use relu::{relu, uses_fast_relu};
pub use resample::{linear_taps, reflection_pad2d, upsample_bilinear2x, uses_fast_resample};

use std::mem::MaybeUninit;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Result, Tensor, WithDType, bail};
use rayon::prelude::*;

/// Whether work on `len` elements (at least `min`) goes to the rayon pool. A one-thread pool keeps it on
/// the calling thread: handing it to the pool's only thread and waiting for it costs two wake-ups per op
/// and gains nothing (≈ 4 % of a one-thread ResNet-small step went to them).
fn on_pool(len: usize, min: usize) -> bool {
    len >= min && rayon::current_num_threads() > 1
}

/// Runs `f(index, chunk)` on the consecutive chunks of `chunk` elements of `out` (the last may be shorter),
/// on the rayon pool when `parallel`.
fn for_each_chunk_mut<T: Send>(
    out: &mut [T],
    chunk: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let chunk = chunk.max(1);
    if parallel {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    } else {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// A vector of `len` values written in consecutive chunks of `chunk` values (the last may be shorter) by
/// `fill(index, chunk)`, the chunks on the rayon pool when `parallel`. The buffer is not zeroed first: for
/// op outputs that are written whole, zeroing them was a separate full pass over memory (≈ 5 % of a
/// ResNet-small step).
///
/// # Safety
/// `fill` must write every element of every chunk it is handed.
unsafe fn filled_vec<T: Send>(
    len: usize,
    chunk: usize,
    parallel: bool,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    for_each_chunk_mut(&mut v.spare_capacity_mut()[..len], chunk, parallel, fill);
    // SAFETY: the first `len` elements are allocated and, by the caller's contract, all written.
    unsafe { v.set_len(len) };
    v
}

/// The part of `data` a contiguous `layout` covers, or an error naming `op`.
fn contiguous_slice<'a, T>(data: &'a [T], layout: &Layout, op: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) if end <= data.len() => Ok(&data[start..end]),
        _ => bail!("{op}: operand is not contiguous"),
    }
}

/// The gradient `grad()` for `operand` if it takes part in the graph (`track_op`), else `None` — so a
/// backward pass computes nothing for data. Every op's `bwd` goes through this.
fn grad_for(operand: &Tensor, grad: impl FnOnce() -> Result<Tensor>) -> Result<Option<Tensor>> {
    if operand.track_op() {
        grad().map(Some)
    } else {
        Ok(None)
    }
}

/// An error naming `op` unless both operands have one shape.
fn same_shape(op: &str, l1: &Layout, l2: &Layout) -> Result<()> {
    if l1.shape() != l2.shape() {
        bail!("{op}: shapes {:?} and {:?} differ", l1.shape(), l2.shape());
    }
    Ok(())
}

/// A CPU kernel over one contiguous operand of a float type (f32 or f64).
trait Kernel1 {
    fn run<T: WithDType>(&self, a: &[T]) -> Result<Vec<T>>;
}

/// A CPU kernel over two contiguous operands of one float type.
trait Kernel2 {
    fn run<T: WithDType>(&self, a: &[T], b: &[T]) -> Result<Vec<T>>;
}

/// A CPU kernel over three contiguous operands of one float type.
trait Kernel3 {
    fn run<T: WithDType>(&self, a: &[T], b: &[T], c: &[T]) -> Result<Vec<T>>;
}

/// Runs `k` on the contiguous f32 or f64 data of `s`; other dtypes are an error naming `op`.
fn dispatch1(k: &impl Kernel1, op: &str, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
    Ok(match s {
        CpuStorage::F32(a) => CpuStorage::F32(k.run(contiguous_slice(a, l, op)?)?),
        CpuStorage::F64(a) => CpuStorage::F64(k.run(contiguous_slice(a, l, op)?)?),
        _ => bail!("{op}: only f32 and f64, got {:?}", s.dtype()),
    })
}

/// As [`dispatch1`] for two operands, which must share the dtype.
fn dispatch2(
    k: &impl Kernel2,
    op: &str,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> Result<CpuStorage> {
    Ok(match (s1, s2) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => {
            CpuStorage::F32(k.run(contiguous_slice(a, l1, op)?, contiguous_slice(b, l2, op)?)?)
        }
        (CpuStorage::F64(a), CpuStorage::F64(b)) => {
            CpuStorage::F64(k.run(contiguous_slice(a, l1, op)?, contiguous_slice(b, l2, op)?)?)
        }
        _ => bail!(
            "{op}: both operands must be f32 or both f64, got {:?} and {:?}",
            s1.dtype(),
            s2.dtype()
        ),
    })
}

/// As [`dispatch1`] for three operands, which must share the dtype.
fn dispatch3(
    k: &impl Kernel3,
    op: &str,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
) -> Result<CpuStorage> {
    Ok(match (s1, s2, s3) {
        (CpuStorage::F32(a), CpuStorage::F32(b), CpuStorage::F32(c)) => CpuStorage::F32(k.run(
            contiguous_slice(a, l1, op)?,
            contiguous_slice(b, l2, op)?,
            contiguous_slice(c, l3, op)?,
        )?),
        (CpuStorage::F64(a), CpuStorage::F64(b), CpuStorage::F64(c)) => CpuStorage::F64(k.run(
            contiguous_slice(a, l1, op)?,
            contiguous_slice(b, l2, op)?,
            contiguous_slice(c, l3, op)?,
        )?),
        _ => bail!(
            "{op}: all operands must be f32 or all f64, got {:?}, {:?} and {:?}",
            s1.dtype(),
            s2.dtype(),
            s3.dtype()
        ),
    })
}
