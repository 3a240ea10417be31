//! Acceptance 2: the generalised power method.
//! * On a tiny linear network `f(x) = A x` with a known SVD, SV-UAP with p = q = 2 returns the top right
//!   singular vector and `σ = √b · σ₁` for a batch of b images (the stacked Jacobian is `[A; …; A]`).
//! * On non-negative matrices with p = ∞ ≥ q the value equals the brute-force maximum over all sign vectors.
//! * `‖A x_k‖_q` never decreases; runs are reproducible from the seed.

use adversarial::net::{Layer, Net};
use adversarial::norm::Norm;
use adversarial::power::{MatrixOperator, PowerConfig, singular_vector, sv_uap};
use candle_core::{DType, Device, Tensor};
use nn_core::grad::seeded_normal;
use nn_core::models::InputSpec;

/// `A = Σ H` with H the Householder reflection `I − 2wwᵀ/‖w‖²` (symmetric orthogonal): the right singular
/// vectors are the columns of H, the singular values the diagonal of Σ.
fn known_svd() -> (Vec<f64>, Vec<f64>, f64) {
    let n = 6;
    let w = [1.0, -2.0, 0.5, 3.0, -1.0, 2.0];
    let ww: f64 = w.iter().map(|x| x * x).sum();
    let h: Vec<f64> = (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            f64::from(u8::from(i == j)) - 2.0 * w[i] * w[j] / ww
        })
        .collect();
    let sigma = [5.0, 3.0, 2.0, 1.0];
    let a: Vec<f64> = (0..4 * n)
        .map(|k| sigma[k / n] * h[(k / n) * n + k % n])
        .collect();
    let v1: Vec<f64> = (0..n).map(|i| h[i * n]).collect(); // first column of H
    (a, v1, sigma[0])
}

#[test]
fn linear_network_gives_the_top_singular_vector() {
    let (a, v1, s1) = known_svd();
    let dev = Device::Cpu;
    let net = Net::new(
        "linear",
        InputSpec::new(1, 2, 3, 4),
        vec![
            Layer::Flatten.into(),
            Layer::linear(Tensor::from_vec(a, (4, 6), &dev).unwrap(), None).named("logits"),
        ],
    )
    .unwrap();
    let b = 3;
    let x = seeded_normal(&[b, 1, 2, 3], DType::F64, &dev, 0).unwrap();
    let cfg = PowerConfig {
        p: Norm::L2,
        q: Norm::L2,
        max_iter: 500,
        tol: 1e-13,
        seed: 4,
    };
    let r = sv_uap(&net, &x, "logits", &cfg).unwrap();
    assert!(r.converged);
    let got = r.vector.values.iter().map(|&v| v as f64);
    let dot: f64 = got.zip(&v1).map(|(a, b)| a * b).sum();
    assert!((dot.abs() - 1.0).abs() < 1e-6, "|⟨x, v₁⟩| = {}", dot.abs());
    let expected = (b as f64).sqrt() * s1;
    assert!(
        (r.singular_value - expected).abs() < 1e-5 * expected,
        "{} vs {expected}",
        r.singular_value
    );
}

/// `max over x ∈ {−1, 1}ⁿ of ‖A x‖_q` by enumeration.
fn brute_force(a: &[f64], m: usize, n: usize, q: f64) -> f64 {
    let mut best = 0.0f64;
    for mask in 0..(1u32 << n) {
        let x: Vec<f64> = (0..n)
            .map(|j| if mask >> j & 1 == 1 { 1.0 } else { -1.0 })
            .collect();
        let s: f64 = (0..m)
            .map(|i| {
                (0..n)
                    .map(|j| a[i * n + j] * x[j])
                    .sum::<f64>()
                    .abs()
                    .powf(q)
            })
            .sum();
        best = best.max(s.powf(1.0 / q));
    }
    best
}

fn matrix(m: usize, n: usize, seed: u64, nonneg: bool) -> Vec<f64> {
    let t = seeded_normal(&[m * n], DType::F64, &Device::Cpu, seed).unwrap();
    let t = if nonneg { t.abs().unwrap() } else { t };
    t.to_vec1::<f64>().unwrap()
}

#[test]
fn non_negative_matrices_reach_the_brute_force_maximum() {
    let (m, n) = (5, 9);
    for (seed, q) in [(1, 1.0), (2, 2.0), (3, 3.0), (4, 5.0)] {
        let a = matrix(m, n, seed, true);
        let op = MatrixOperator::new(Tensor::from_vec(a.clone(), (m, n), &Device::Cpu).unwrap())
            .unwrap();
        let cfg = PowerConfig {
            p: Norm::Inf,
            q: Norm::L(q),
            seed,
            ..Default::default()
        };
        let r = singular_vector(&op, &cfg).unwrap();
        let bf = brute_force(&a, m, n, q);
        assert!(r.converged, "q = {q}");
        assert!(
            (r.singular_value - bf).abs() < 1e-9 * bf,
            "q = {q}: {} vs brute force {bf}",
            r.singular_value
        );
    }
}

#[test]
fn signed_matrices_reach_a_fixed_point_below_the_maximum_with_monotone_values() {
    let (m, n) = (6, 10);
    for seed in 0..4 {
        let a = matrix(m, n, 10 + seed, false);
        let op = MatrixOperator::new(Tensor::from_vec(a.clone(), (m, n), &Device::Cpu).unwrap())
            .unwrap();
        let cfg = PowerConfig {
            p: Norm::Inf,
            q: Norm::L(5.0),
            seed,
            ..Default::default()
        };
        let r = singular_vector(&op, &cfg).unwrap();
        assert!(r.singular_value <= brute_force(&a, m, n, 5.0) * (1.0 + 1e-12));
        for w in r.history.windows(2) {
            assert!(
                w[1] >= w[0] * (1.0 - 1e-12),
                "history decreased: {:?}",
                r.history
            );
        }
        // Every entry of a p = ∞ result is ±1 (or 0 where the gradient vanished).
        assert!(r.vector.values.iter().all(|v| v.abs() == 1.0 || *v == 0.0));
        let again = singular_vector(&op, &cfg).unwrap();
        assert_eq!(again.vector, r.vector);
    }
}

#[test]
fn finite_p_results_have_unit_norm_and_monotone_values() {
    let (m, n) = (7, 5);
    let a = matrix(m, n, 21, false);
    let op = MatrixOperator::new(Tensor::from_vec(a, (m, n), &Device::Cpu).unwrap()).unwrap();
    for (p, q) in [(3.0, 2.0), (1.5, 4.0), (1.0, 2.0)] {
        let cfg = PowerConfig {
            p: Norm::L(p),
            q: Norm::L(q),
            max_iter: 200,
            ..Default::default()
        };
        let r = singular_vector(&op, &cfg).unwrap();
        let norm = r.vector.norm(Norm::L(p)).unwrap();
        assert!((norm - 1.0).abs() < 1e-5, "p = {p}: ‖x‖_p = {norm}");
        for w in r.history.windows(2) {
            assert!(
                w[1] >= w[0] * (1.0 - 1e-6),
                "p = {p}, q = {q}: {:?}",
                r.history
            );
        }
    }
}
