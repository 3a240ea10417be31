//! KID: hand-computed value, full-sample equality, determinism, bad input.

mod common;

use common::gaussianish;
use gan_eval::kid::kid;
use ndarray::{Array2, array};

/// Direct unbiased MMD² with the kernel (xᵀy/d + 1)³, by explicit loops.
fn mmd2_direct(x: &Array2<f64>, y: &Array2<f64>) -> f64 {
    let d = x.ncols() as f64;
    let k =
        |a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>| (a.dot(&b) / d + 1.0).powi(3);
    let (m, n) = (x.nrows() as f64, y.nrows() as f64);
    let mut sxx = 0.0;
    for i in 0..x.nrows() {
        for j in 0..x.nrows() {
            if i != j {
                sxx += k(x.row(i), x.row(j));
            }
        }
    }
    let mut syy = 0.0;
    for i in 0..y.nrows() {
        for j in 0..y.nrows() {
            if i != j {
                syy += k(y.row(i), y.row(j));
            }
        }
    }
    let mut sxy = 0.0;
    for i in 0..x.nrows() {
        for j in 0..y.nrows() {
            sxy += k(x.row(i), y.row(j));
        }
    }
    sxx / (m * (m - 1.0)) + syy / (n * (n - 1.0)) - 2.0 * sxy / (m * n)
}

#[test]
fn hand_computed_one_dimensional_case() {
    // a = {0, 1}, b = {2, 3}, d = 1: k = (xy + 1)³. Kxx: k(0,1) = 1 → 2/2 = 1; Kyy: 7³ = 343;
    // Kxy: 1 + 1 + 27 + 64 = 93 → 2·93/4 = 46.5. MMD² = 1 + 343 − 46.5 = 297.5.
    let a = array![[0.0], [1.0]];
    let b = array![[2.0], [3.0]];
    let r = kid(a.view(), b.view(), 5, 2, 7).unwrap();
    assert_eq!(r.subset_size, 2);
    assert!((r.kid - 297.5).abs() < 1e-12 && r.std < 1e-12, "{r:?}");
}

#[test]
fn one_subset_covering_everything_is_the_full_sample_mmd() {
    let a = gaussianish("kid-a", 60, 5);
    let b = gaussianish("kid-b", 60, 5) * 1.2 + 0.1;
    let r = kid(a.view(), b.view(), 3, 60, 1).unwrap();
    let direct = mmd2_direct(&a, &b);
    for v in &r.values {
        assert!(
            (v - direct).abs() < 1e-10 * direct.abs().max(1.0),
            "{v} vs {direct}"
        );
    }
    // Subset size above n is capped at min(n_a, n_b).
    assert_eq!(kid(a.view(), b.view(), 1, 1000, 1).unwrap().subset_size, 60);
}

#[test]
fn deterministic_in_the_seed_and_sensitive_to_a_shift() {
    let a = gaussianish("kid-c", 400, 8);
    let b = gaussianish("kid-d", 400, 8);
    let r1 = kid(a.view(), b.view(), 20, 100, 42).unwrap();
    let r2 = kid(a.view(), b.view(), 20, 100, 42).unwrap();
    let r3 = kid(a.view(), b.view(), 20, 100, 43).unwrap();
    assert_eq!(r1, r2);
    assert_ne!(r1.values, r3.values);
    // Same distribution: |KID| within a few standard errors of 0; shifted: clearly positive.
    assert!(
        r1.kid.abs() < 4.0 * r1.std / (20f64).sqrt() + 1e-3,
        "{r1:?}"
    );
    let shifted = &b + 1.0;
    let r4 = kid(a.view(), shifted.view(), 20, 100, 42).unwrap();
    assert!(r4.kid > 10.0 * r1.kid.abs() && r4.kid > 0.1, "{r4:?}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let a = gaussianish("kid-e", 10, 3);
    let b = gaussianish("kid-f", 10, 4);
    assert!(
        kid(a.view(), b.view(), 10, 5, 0)
            .unwrap_err()
            .to_string()
            .contains("same feature dimension")
    );
    assert!(
        kid(a.view(), a.view(), 10, 1, 0)
            .unwrap_err()
            .to_string()
            .contains("subset_size")
    );
    assert!(kid(a.view(), a.view(), 0, 5, 0).is_err());
    let mut c = a.clone();
    c[[2, 2]] = f64::NEG_INFINITY;
    assert!(
        kid(c.view(), a.view(), 10, 5, 0)
            .unwrap_err()
            .to_string()
            .contains("row 2")
    );
    let one = array![[1.0, 2.0, 3.0]];
    assert!(kid(one.view(), a.view(), 10, 5, 0).is_err());
}
