//! CP-ALS (acceptance 3, spec §11 item 6) and `cp_to_tt`.

use ndarray::{Array2, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use tensor_decomp::cp::{CpAlsOptions, CpInit, CpTensor, cp_als, cp_als_with, cp_to_tt};
use tensor_decomp::dense::relative_error;

fn random_cp(shape: &[usize], r: usize, seed: u64) -> CpTensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let factors = shape
        .iter()
        .map(|&n| Array2::from_shape_simple_fn((n, r), || StandardNormal.sample(&mut rng)))
        .collect();
    CpTensor::new(vec![1.0; r], factors).unwrap()
}

#[test]
fn recovers_rank_5_tensor_from_random_start() {
    let x = random_cp(&[20, 30, 40], 5, 1).full().unwrap();
    let fit = cp_als(&x, 5, 1000, CpInit::Random { seed: 1 }, 1e-14).unwrap();
    assert!(fit.rel_error <= 1e-8, "dense residual {}", fit.rel_error);
    assert_eq!(fit.errors.len(), fit.iterations);
    assert!(
        fit.converged,
        "stopped by tol after {} sweeps",
        fit.iterations
    );
    // The history is (essentially) non-increasing: ALS never makes the fit worse.
    for w in fit.errors.windows(2) {
        assert!(w[1] <= w[0] * (1.0 + 1e-9) + 1e-13, "{w:?}");
    }
    // The fitted factors are unit columns with the scale in the weights.
    for f in fit.cp.factors() {
        for c in 0..5 {
            let n: f64 = f.column(c).iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-12);
        }
    }
    assert!(fit.iterations < 200, "{}", fit.iterations);
    // SVD start reaches the same accuracy.
    let svd = cp_als(&x, 5, 1000, CpInit::Svd, 1e-14).unwrap();
    assert!(svd.rel_error <= 1e-8, "{}", svd.rel_error);
    // A swamp (spec §8): from seed 0 plain ALS stalls at a relative error of 0.26 for hundreds of
    // sweeps; Bro's line search escapes it and converges.
    let swamp = cp_als(&x, 5, 300, CpInit::Random { seed: 0 }, 1e-14).unwrap();
    assert!(swamp.rel_error > 0.2, "{}", swamp.rel_error);
    let ls = cp_als_with(
        &x,
        5,
        &CpAlsOptions {
            iters: 1000,
            init: CpInit::Random { seed: 0 },
            tol: 1e-14,
            line_search: true,
        },
    )
    .unwrap();
    assert!(ls.rel_error <= 1e-8, "{}", ls.rel_error);
    assert_eq!(ls.errors.len(), ls.iterations);
}

#[test]
fn stops_at_the_noise_floor() {
    let clean = random_cp(&[20, 30, 40], 5, 2).full().unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let noise =
        ArrayD::from_shape_simple_fn(IxDyn(&[20, 30, 40]), || StandardNormal.sample(&mut rng));
    let eta = 1e-3;
    let norm = |a: &ArrayD<f64>| a.iter().map(|v| v * v).sum::<f64>().sqrt();
    let x = &clean + &(&noise * (eta * norm(&clean) / norm(&noise)));
    let fit = cp_als(&x, 5, 1000, CpInit::Random { seed: 0 }, 1e-12).unwrap();
    assert!(fit.converged && fit.iterations < 1000);
    // The best rank-5 fit removes the noise's component in the model's tangent space: a few percent
    // of η² for 5·(20+30+40) parameters in 24,000 entries.
    let rel_to_x = fit.rel_error;
    let eta_x = eta * norm(&clean) / norm(&x);
    assert!(
        rel_to_x <= eta_x && rel_to_x >= 0.97 * eta_x,
        "{rel_to_x} vs η {eta_x}"
    );
}

/// Textbook ALS: explicit Khatri–Rao product, normal equations by Gauss–Jordan inversion, no
/// normalisation, dense error — the reference trajectory.
fn reference_als(x: &ArrayD<f64>, init: &[Array2<f64>], sweeps: usize) -> Vec<f64> {
    let shape = x.shape().to_vec();
    let d = shape.len();
    let r = init[0].ncols();
    let mut f: Vec<Array2<f64>> = init.to_vec();
    let nx = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut errors = Vec::new();
    for _ in 0..sweeps {
        for k in 0..d {
            let unf = tensor_decomp::unfold::unfold(x, &[k]).unwrap();
            let others: Vec<usize> = (0..d).filter(|&j| j != k).collect();
            let q: usize = others.iter().map(|&j| shape[j]).product();
            let mut kr = Array2::<f64>::ones((q, r));
            for row in 0..q {
                let mut rem = row;
                for &j in others.iter().rev() {
                    let i = rem % shape[j];
                    rem /= shape[j];
                    for c in 0..r {
                        kr[[row, c]] *= f[j][[i, c]];
                    }
                }
            }
            let m = unf.dot(&kr);
            let v = kr.t().dot(&kr);
            f[k] = m.dot(&invert(&v));
        }
        let rec = CpTensor::new(vec![1.0; r], f.clone())
            .unwrap()
            .full()
            .unwrap();
        let diff = (x - &rec).iter().map(|v| v * v).sum::<f64>().sqrt();
        errors.push(diff / nx);
    }
    errors
}

fn invert(a: &Array2<f64>) -> Array2<f64> {
    let n = a.nrows();
    let mut m = a.clone();
    let mut inv = Array2::<f64>::eye(n);
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| m[[i, col]].abs().total_cmp(&m[[j, col]].abs()))
            .unwrap();
        for c in 0..n {
            m.swap([col, c], [piv, c]);
            inv.swap([col, c], [piv, c]);
        }
        let p = m[[col, col]];
        for c in 0..n {
            m[[col, c]] /= p;
            inv[[col, c]] /= p;
        }
        for row in 0..n {
            if row != col {
                let factor = m[[row, col]];
                for c in 0..n {
                    m[[row, c]] -= factor * m[[col, c]];
                    inv[[row, c]] -= factor * inv[[col, c]];
                }
            }
        }
    }
    inv
}

#[test]
fn given_init_reproduces_the_reference_trajectory() {
    let mut rng = StdRng::seed_from_u64(5);
    let shape = [6, 7, 8, 5];
    let x = ArrayD::from_shape_simple_fn(IxDyn(&shape), || rng.random::<f64>());
    let init: Vec<Array2<f64>> = shape
        .iter()
        .map(|&n| Array2::from_shape_simple_fn((n, 3), || rng.random::<f64>()))
        .collect();
    let ours = cp_als(&x, 3, 12, CpInit::Given(init.clone()), 0.0).unwrap();
    let reference = reference_als(&x, &init, 12);
    assert_eq!(ours.errors.len(), 12);
    for (k, (a, b)) in ours.errors.iter().zip(&reference).enumerate() {
        assert!((a - b).abs() <= 1e-10 * b, "sweep {k}: {a} vs {b}");
    }
    // Same init, same result; different seeds, different results.
    let again = cp_als(&x, 3, 12, CpInit::Given(init), 0.0).unwrap();
    assert_eq!(again.errors, ours.errors);
    let a = cp_als(&x, 3, 5, CpInit::Random { seed: 9 }, 0.0).unwrap();
    let b = cp_als(&x, 3, 5, CpInit::Random { seed: 9 }, 0.0).unwrap();
    let c = cp_als(&x, 3, 5, CpInit::Random { seed: 10 }, 0.0).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.errors, c.errors);
}

#[test]
fn cp_to_tt_is_exact_with_ranks_at_most_r() {
    let cp = random_cp(&[3, 4, 5, 6], 4, 8);
    let cp = CpTensor::new(vec![1.0, -2.0, 0.5, 3.0], cp.factors().to_vec()).unwrap();
    let tt = cp_to_tt(&cp);
    assert_eq!(tt.ranks(), vec![1, 4, 4, 4, 1]);
    let full = cp.full().unwrap();
    assert!(
        relative_error(
            full.as_slice().unwrap(),
            tt.full().unwrap().as_slice().unwrap()
        ) < 1e-14
    );
    // Hand value: rank-1 CP of [1,2]⊗[3,4] with λ = 2 → A[1,0] = 2·2·3 = 12.
    let one = CpTensor::new(
        vec![2.0],
        vec![
            Array2::from_shape_vec((2, 1), vec![1.0, 2.0]).unwrap(),
            Array2::from_shape_vec((2, 1), vec![3.0, 4.0]).unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(one.full().unwrap()[[1, 0]], 12.0);
    assert_eq!(cp_to_tt(&one).element(&[1, 0]).unwrap(), 12.0);
}
