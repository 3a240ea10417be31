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
