//! Helpers shared by the op tests (`ops_fast.rs`, `ops_fused_layers.rs`).

use candle_core::{DType, Device, Tensor};
use nn_core::grad::seeded_normal;

/// A seeded N(0, 1) tensor on the CPU.
pub fn randn(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
    seeded_normal(shape, dtype, &Device::Cpu, seed).unwrap()
}

/// Every value as f64, flattened.
pub fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// Largest |a − b| relative to the largest |b| (both flattened).
pub fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (flat(a), flat(b));
    let scale = b
        .iter()
        .fold(0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    a.iter()
        .zip(&b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// Max-pool inputs: random planes (odd sizes, batch 1, one channel), exact ties, exact zeros, windows
/// whose maximum is 0 or negative, a constant plane, window sides 1 to 4 (4 has no specialised kernel) and
/// one plane large enough for the parallel path.
pub fn pool_inputs(dtype: DType) -> Vec<(Tensor, usize)> {
    let plane = |v: Vec<f64>| {
        Tensor::from_vec(v, (1, 1, 3, 6), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    };
    let ties = plane(vec![
        1., 1., 2., 0., 1., 1., 2., 2., 3., 0., 5., 5., 0., 3., 5., 5., 7., 7.,
    ]);
    let signs = plane(vec![
        1., 1., 0., 0., -1., -2., 0., 0., -3., 0., -5., -5., -1., -4., -5., -5., 7., 7.,
    ]);
    vec![
        (randn(&[2, 3, 8, 8], dtype, 1), 2),
        (randn(&[1, 1, 7, 9], dtype, 2), 2),
        (randn(&[3, 2, 10, 11], dtype, 3), 3),
        (randn(&[2, 2, 5, 5], dtype, 6), 1),
        (ties.clone(), 2),
        (ties, 3),
        (signs.clone(), 2),
        (signs, 3),
        (Tensor::zeros((2, 2, 4, 4), dtype, &Device::Cpu).unwrap(), 2),
        (randn(&[2, 3, 9, 13], dtype, 4), 4),
        (randn(&[4, 16, 24, 25], dtype, 5), 2),
    ]
}
