//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ndarray::Array2;

/// FNV-1a 64 of a name.
pub fn fnv1a(name: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// `u_i ∈ [−1, 1)`: SplitMix64 of `fnv1a(name) + (i + 1)·golden`, top 53 bits — the same formula as
/// `crates/gan-eval/scripts/make_inception_reference.py` (`uniform`).
pub fn uniform(name: &str, n: usize) -> Vec<f64> {
    let h = fnv1a(name);
    (0..n as u64)
        .map(|i| {
            let mut z = h.wrapping_add((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 * 2f64.powi(-53) * 2.0 - 1.0
        })
        .collect()
}

/// An `n × d` matrix of [`uniform`] values.
pub fn uniform_matrix(name: &str, n: usize, d: usize) -> Array2<f64> {
    Array2::from_shape_vec((n, d), uniform(name, n * d)).unwrap()
}

/// Standard-normal-ish matrix (sum of 3 uniforms, scaled): deterministic, full rank.
pub fn gaussianish(name: &str, n: usize, d: usize) -> Array2<f64> {
    let a = uniform_matrix(&format!("{name}/1"), n, d);
    let b = uniform_matrix(&format!("{name}/2"), n, d);
    let c = uniform_matrix(&format!("{name}/3"), n, d);
    (a + b + c) * 1.0
}
