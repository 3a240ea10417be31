//! TT-SVD, rounding and TT arithmetic against dense computations (spec §11 items 1–4, acceptance 1).

use ndarray::{Array3, ArrayD, Dimension, IxDyn};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use tensor_decomp::TensorTrain;
use tensor_decomp::dense::relative_error;

fn gaussian_tensor(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || StandardNormal.sample(&mut rng))
}

fn random_tt(shape: &[usize], ranks: &[usize], seed: u64) -> TensorTrain {
    let mut rng = StdRng::seed_from_u64(seed);
    let cores = shape
        .iter()
        .enumerate()
        .map(|(k, &n)| {
            Array3::from_shape_simple_fn((ranks[k], n, ranks[k + 1]), || {
                StandardNormal.sample(&mut rng)
            })
        })
        .collect();
    TensorTrain::from_cores(cores).unwrap()
}

fn dense_err(a: &ArrayD<f64>, tt: &TensorTrain) -> f64 {
    relative_error(
        a.as_slice().unwrap(),
        tt.full().unwrap().as_slice().unwrap(),
    )
}

/// Checks `rel_err ≤ ε` (dense) and that the report's error matches the dense one.
fn check_accuracy(a: &ArrayD<f64>, eps: f64) -> TensorTrain {
    let (tt, report) = TensorTrain::tt_svd_report(a, eps, None).unwrap();
    let err = dense_err(a, &tt);
    assert!(err <= eps, "ε = {eps}: error {err}, ranks {:?}", tt.ranks());
    assert!(
        (err - report.rel_error).abs() <= 1e-12 + 1e-6 * err,
        "reported {} vs dense {err}",
        report.rel_error
    );
    assert!(report.capped_bonds.is_empty());
    tt
}

#[test]
fn reconstruction_error_within_eps_for_random_tensors() {
    let a = gaussian_tensor(&[4, 5, 6, 7], 1);
    let mut prev_params = 0;
    for eps in [0.5, 0.3, 1e-1, 1e-2, 1e-8, 1e-13] {
        let tt = check_accuracy(&a, eps);
        // Smaller ε never stores fewer numbers.
        assert!(tt.num_params() >= prev_params, "ε = {eps}");
        prev_params = tt.num_params();
    }
    // ε = 0: exact ranks [1, 4, 20, 7, 1] (full ranks of the unfoldings), error at round-off level.
    let tt = TensorTrain::tt_svd(&a, 0.0, None).unwrap();
    assert_eq!(tt.ranks(), vec![1, 4, 20, 7, 1]);
    assert!(dense_err(&a, &tt) < 1e-13);
}

#[test]
fn reconstruction_error_within_eps_for_smooth_tensors() {
    // 1/(1 + Σx) on an 8^6 grid, x ∈ [0, 1].
    let a = ArrayD::from_shape_fn(IxDyn(&[8; 6]), |i| {
        1.0 / (1.0 + (0..6).map(|k| i[k] as f64 / 7.0).sum::<f64>())
    });
    let mut prev: Vec<usize> = vec![0; 7];
    for eps in [1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12] {
        let tt = check_accuracy(&a, eps);
        // Smaller ε never gives smaller ranks; smooth means small ranks.
        assert!(tt.ranks().iter().zip(&prev).all(|(r, p)| r >= p));
        assert!(tt.ranks().iter().all(|&r| r <= 12), "{:?}", tt.ranks());
        prev = tt.ranks();
    }
    // sin(10 t) on a 2^16 binary (QTT) grid: exact TT ranks 2.
    let a = ArrayD::from_shape_fn(IxDyn(&[2; 16]), |i| {
        let t: f64 = (0..16)
            .map(|k| i[k] as f64 * 0.5f64.powi(k as i32 + 1))
            .sum();
        (10.0 * t).sin()
    });
    for eps in [1e-6, 1e-10, 1e-13] {
        let tt = check_accuracy(&a, eps);
        let mut expect = vec![2; 17];
        expect[0] = 1;
        expect[16] = 1;
        assert_eq!(tt.ranks(), expect, "ε = {eps}");
    }
}

#[test]
fn known_ranks_recovered_exactly_and_noise_handled() {
    let shape = [4, 5, 6, 5, 4];
    let ranks = [1, 3, 5, 5, 3, 1];
    let truth = random_tt(&shape, &ranks, 7);
    let a = truth.full().unwrap();
    for eps in [0.0, 1e-14, 1e-10, 1e-6] {
        for cap in [None, Some(10), Some(5)] {
            let (tt, report) = TensorTrain::tt_svd_report(&a, eps, cap).unwrap();
            assert_eq!(tt.ranks(), ranks.to_vec(), "ε = {eps}, cap {cap:?}");
            assert!(report.capped_bonds.is_empty());
            assert!(dense_err(&a, &tt) < 1e-12);
        }
    }
    // A cap below the true ranks is reported, and the error is what was achieved.
    let (tt, report) = TensorTrain::tt_svd_report(&a, 1e-10, Some(2)).unwrap();
    assert_eq!(tt.ranks(), vec![1, 2, 2, 2, 2, 1]);
    assert_eq!(report.capped_bonds, vec![1, 2, 3, 4]);
    let err = dense_err(&a, &tt);
    assert!(
        err > 1e-3 && (err - report.rel_error).abs() < 1e-10,
        "{err}"
    );

    // Noise of relative norm η: ε ≥ 10η gives the clean ranks with error ≈ η; ε < η keeps the noise.
    let eta = 1e-6;
    let noise = gaussian_tensor(&shape, 8);
    let scale = eta * a.iter().map(|x| x * x).sum::<f64>().sqrt()
        / noise.iter().map(|x| x * x).sum::<f64>().sqrt();
    let noisy = &a + &(noise * scale);
    for eps in [1e-5, 1e-4] {
        let tt = TensorTrain::tt_svd(&noisy, eps, None).unwrap();
        assert_eq!(tt.ranks(), ranks.to_vec());
        let err = dense_err(&noisy, &tt);
        assert!(err > 0.5 * eta && err < 1.5 * eta, "{err}");
    }
    let tt = TensorTrain::tt_svd(&noisy, 1e-8, None).unwrap();
    assert!(tt.ranks()[2] > 5 && tt.ranks()[3] > 5, "{:?}", tt.ranks());
    assert!(dense_err(&noisy, &tt) <= 1e-8);
}

#[test]
fn arithmetic_agrees_with_the_full_tensor() {
    let shape = [3, 4, 5, 4, 3];
    let a = random_tt(&shape, &[1, 2, 3, 3, 2, 1], 11);
    let b = random_tt(&shape, &[1, 3, 2, 4, 2, 1], 12);
    let fa = a.full().unwrap();
    let fb = b.full().unwrap();
    let dense_dot: f64 = fa.iter().zip(fb.iter()).map(|(x, y)| x * y).sum();
    let dot = a.dot(&b).unwrap();
    assert!((dot - dense_dot).abs() <= 1e-12 * dense_dot.abs().max(1.0));
    let dense_norm = fa.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((a.norm() - dense_norm).abs() <= 1e-12 * dense_norm);
    assert!((a.dot(&a).unwrap().sqrt() - dense_norm).abs() <= 1e-12 * dense_norm);
    for (idx, v) in fa.indexed_iter() {
        let e = a.element(idx.slice()).unwrap();
        assert!((e - v).abs() <= 1e-12 * dense_norm);
    }
    let sum = a.add(&b).unwrap();
    assert_eq!(sum.ranks(), vec![1, 5, 5, 7, 4, 1]);
    assert!(
        relative_error(
            (&fa + &fb).as_slice().unwrap(),
            sum.full().unwrap().as_slice().unwrap()
        ) < 1e-13
    );
    let prod = a.hadamard(&b).unwrap();
    assert_eq!(prod.ranks(), vec![1, 6, 6, 12, 4, 1]);
    assert!(
        relative_error(
            (&fa * &fb).as_slice().unwrap(),
            prod.full().unwrap().as_slice().unwrap()
        ) < 1e-13
    );
    let scaled = a.scale(-2.5).unwrap();
    assert!(
        relative_error(
            (&fa * -2.5).as_slice().unwrap(),
            scaled.full().unwrap().as_slice().unwrap()
        ) < 1e-14
    );
    assert!(a.distance(&a).unwrap() <= 1e-13 * dense_norm);
}

#[test]
fn rounding_a_sum_reproduces_it() {
    let shape = [4, 5, 6, 5, 4];
    let a = random_tt(&shape, &[1, 3, 5, 5, 3, 1], 21);
    // round(A + A) = 2A with A's ranks.
    let two_a = a.add(&a).unwrap();
    assert_eq!(two_a.ranks(), vec![1, 6, 10, 10, 6, 1]);
    let rounded = two_a.round(1e-12, None).unwrap();
    assert_eq!(rounded.ranks(), a.ranks());
    let dist = rounded.distance(&a.scale(2.0).unwrap()).unwrap();
    assert!(dist <= 1e-12 * 2.0 * a.norm(), "{dist}");

    // A genuine truncation of a non-orthogonal sum meets ε (dense check).
    let x = random_tt(&shape, &[1, 4, 6, 6, 4, 1], 22);
    let y = random_tt(&shape, &[1, 4, 6, 6, 4, 1], 23);
    let s = x.add(&y).unwrap();
    let fs = s.full().unwrap();
    for eps in [0.3, 0.1, 1e-2, 1e-6] {
        let (r, report) = s.round_report(eps, None).unwrap();
        let err = dense_err(&fs, &r);
        assert!(err <= eps, "ε = {eps}: {err}");
        assert!((err - report.rel_error).abs() <= 1e-10 + 1e-6 * err);
        // Rounding the orthogonalised sum is TT-SVD of the full tensor: same ranks, same error.
        let (direct, direct_report) = TensorTrain::tt_svd_report(&fs, eps, None).unwrap();
        assert_eq!(r.ranks(), direct.ranks(), "ε = {eps}");
        assert!((direct_report.rel_error - report.rel_error).abs() < 1e-10);
    }
}

#[test]
fn rounding_long_trains_keeps_rank_control() {
    // d = 400, n = 10, r = 5: ‖A‖ ≈ 10^300 or beyond, where ttpy's round stops controlling ranks.
    let d = 400;
    let shape = vec![10; d];
    let mut ranks = vec![5; d + 1];
    ranks[0] = 1;
    ranks[d] = 1;
    let a = random_tt(&shape, &ranks, 31);
    let log_norm = a.log_norm();
    assert!(log_norm.is_finite() && log_norm > 300.0, "{log_norm}");
    let rounded = a.add(&a).unwrap().round(1e-10, None).unwrap();
    rounded.check_finite().unwrap();
    assert!(
        rounded.ranks().iter().all(|&r| r <= 5),
        "{:?}",
        rounded.ranks()
    );
    assert!(((rounded.log_norm() - log_norm) - 2f64.ln()).abs() < 1e-9);
    // ‖round(A + A) − 2A‖ / ‖2A‖ through log-norms (the norms themselves overflow f64).
    let diff = rounded.add(&a.scale(-2.0).unwrap()).unwrap();
    let rel = (diff.log_norm() - (log_norm + 2f64.ln())).exp();
    assert!(rel < 1e-9, "{rel}");
}

#[test]
fn one_mode_and_zero_tensors() {
    let v = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0, 2.0, 3.0]).unwrap();
    let tt = TensorTrain::tt_svd(&v, 0.1, None).unwrap();
    assert_eq!(tt.ranks(), vec![1, 1]);
    assert_eq!(tt.full().unwrap(), v);
    let z = ArrayD::<f64>::zeros(IxDyn(&[2, 3, 4]));
    let tt = TensorTrain::tt_svd(&z, 1e-3, None).unwrap();
    assert_eq!(tt.ranks(), vec![1, 1, 1, 1]);
    assert_eq!(tt.norm(), 0.0);
    assert_eq!(tt.round(1e-3, None).unwrap().ranks(), vec![1, 1, 1, 1]);
}
