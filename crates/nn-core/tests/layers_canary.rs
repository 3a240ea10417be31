//! Canary tests: they assert that the **upstream** candle 0.11.1 autograd defects worked around in
//! `nn_core::layers` still exist (pitfalls A1, A2, A3, A5, A6, A7 of `shared/specs/candle-pitfalls.md`).
//!
//! When one of these tests fails after a candle upgrade, candle has fixed (or changed) that bug: the
//! corresponding workaround in `layers.rs` can be reconsidered, and this canary updated or removed.
//! This is the only file besides `src/layers.rs` allowed to call the raw ops (see `layers_lint.rs`).

use candle_core::{DType, Device, Tensor};
use nn_core::grad::{GradCheckOptions, grad_check, input_gradient, seeded_normal};
use nn_core::layers;

fn hand_2x2() -> Tensor {
    Tensor::new(&[[[[1f64, 2.], [3., 4.]]]], &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// A1: candle's `max_pool2d` gives 0.25× the true gradient for a 2×2 window.
/// When this fails, candle fixed the bug and the reshape+max workaround can be reconsidered.
#[test]
fn canary_a1_raw_max_pool2d_gradient_is_quartered() {
    let g = input_gradient(|x| x.max_pool2d(2), &hand_2x2()).unwrap();
    assert_eq!(
        flat(&g),
        vec![0.0, 0.0, 0.0, 0.25],
        "candle's max_pool2d backward changed (A1)"
    );
}

/// A1 seen by the gradient checker: `grad_check` must report the raw candle max pool as wrong (relative
/// error 0.75 = 1 − 1/4), so the checker is able to fail. When this fails because the error became small,
/// candle fixed A1 (see the canary above).
#[test]
fn grad_check_detects_the_raw_max_pool2d_defect() {
    let x = seeded_normal(&[1, 2, 4, 4], DType::F64, &Device::Cpu, 1).unwrap();
    let w = seeded_normal(&[1, 2, 2, 2], DType::F64, &Device::Cpu, 2).unwrap();
    let check = grad_check(
        |x| x.max_pool2d(2)?.mul(&w)?.sum_all(),
        &x,
        GradCheckOptions::default(),
    )
    .unwrap();
    eprintln!("grad_check raw max_pool2d: {check:?}");
    assert!(check.max_rel_error > 0.7, "{check:?}");
    // The workaround on the same input passes.
    let ok = grad_check(
        |x| layers::max_pool2d(x, 2)?.mul(&w)?.sum_all(),
        &x,
        GradCheckOptions::default(),
    )
    .unwrap();
    assert!(ok.max_rel_error < 1e-6, "{ok:?}");
}

/// A2: candle's pools have no backward when kernel ≠ stride (loud error).
/// When this fails, candle added the backward and `max_pool2d_strided`/`avg_pool2d_strided` can be
/// reconsidered.
#[test]
fn canary_a2_pool_with_kernel_ne_stride_has_no_backward() {
    let x = seeded_normal(&[1, 1, 5, 5], DType::F64, &Device::Cpu, 3).unwrap();
    assert!(input_gradient(|x| x.max_pool2d_with_stride(3, 2), &x).is_err());
    assert!(input_gradient(|x| x.avg_pool2d_with_stride(3, 1), &x).is_err());
}

/// A3: candle's `upsample_nearest2d` backward overwrites the input's accumulated gradient: on
/// `upsample(x).sum() + 3·x.sum()` it gives 4 instead of 7. When this fails, candle fixed the bug
/// (upstream PR #3507) and the `x · 1.0` copy in `layers::upsample_nearest2d` can be reconsidered.
#[test]
fn canary_a3_raw_upsample_nearest2d_overwrites_gradient() {
    let g = input_gradient(
        |x| x.upsample_nearest2d(4, 4)?.sum_all()? + (x.sum_all()? * 3.0)?,
        &hand_2x2(),
    )
    .unwrap();
    assert_eq!(
        flat(&g),
        vec![4.0; 4],
        "candle's upsample_nearest2d backward changed (A3)"
    );
}

/// A5: candle's `upsample_bilinear2d` has no backward (loud error). When this fails, candle added it and
/// the matrix form in `layers::upsample_bilinear2d` can be reconsidered.
#[test]
fn canary_a5_raw_upsample_bilinear2d_has_no_backward() {
    let r = input_gradient(|x| x.upsample_bilinear2d(4, 4, false), &hand_2x2());
    assert!(
        r.is_err(),
        "candle's upsample_bilinear2d now has a backward (A5)"
    );
    // The forward agrees with ours (PyTorch align_corners=false).
    let raw = hand_2x2().upsample_bilinear2d(4, 4, false).unwrap();
    let ours = layers::upsample_bilinear2d(&hand_2x2(), 4, 4).unwrap();
    for (a, b) in flat(&raw).iter().zip(flat(&ours)) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}

/// A6: `candle_nn::ops::softmax_last_dim` has no backward and is silently a constant: the input
/// gradient is absent (reported as zeros by `input_gradient`). When this fails, candle added a backward
/// and the ban on `softmax_last_dim` can be reconsidered.
#[test]
fn canary_a6_softmax_last_dim_gradient_is_missing() {
    let x = seeded_normal(&[2, 5], DType::F64, &Device::Cpu, 4).unwrap();
    let w = seeded_normal(&[2, 5], DType::F64, &Device::Cpu, 5).unwrap();
    let raw = input_gradient(|x| candle_nn::ops::softmax_last_dim(x)?.mul(&w), &x).unwrap();
    assert!(
        flat(&raw).iter().all(|&v| v == 0.0),
        "softmax_last_dim now has a gradient (A6)"
    );
    let ours = input_gradient(|x| layers::softmax(x, 1)?.mul(&w), &x).unwrap();
    assert!(flat(&ours).iter().any(|&v| v.abs() > 1e-3));
}

/// A7: `candle_nn::ops::layer_norm` has no backward: a zero input gradient in f32 (and an error in f64).
/// When this fails, candle added a backward and the elementary-op `layers::layer_norm` can be
/// reconsidered.
#[test]
fn canary_a7_fused_layer_norm_has_no_gradient() {
    let x = seeded_normal(&[3, 6], DType::F32, &Device::Cpu, 6).unwrap();
    let w = seeded_normal(&[3, 6], DType::F32, &Device::Cpu, 7).unwrap();
    let gamma = seeded_normal(&[6], DType::F32, &Device::Cpu, 8).unwrap();
    let beta = seeded_normal(&[6], DType::F32, &Device::Cpu, 9).unwrap();
    let raw = input_gradient(
        |x| candle_nn::ops::layer_norm(x, &gamma, &beta, 1e-5)?.mul(&w),
        &x,
    )
    .unwrap();
    assert!(
        flat(&raw).iter().all(|&v| v == 0.0),
        "fused layer_norm now has a gradient (A7)"
    );
    let ours = input_gradient(|x| layers::layer_norm(x, &gamma, &beta, 1e-5)?.mul(&w), &x).unwrap();
    assert!(flat(&ours).iter().any(|&v| v.abs() > 1e-3));
}
