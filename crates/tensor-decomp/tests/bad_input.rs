//! Bad input gives clear one-line errors naming the argument, never a panic (acceptance 6).

use ndarray::{Array2, Array3, ArrayD, IxDyn};
use tensor_decomp::TensorTrain;
use tensor_decomp::cp::{CpInit, cp_als};
use tensor_decomp::expressivity::{delta_pairs_tt, random_tt, theorem_bound};

fn msg<T: std::fmt::Debug>(r: tensor_decomp::Result<T>) -> String {
    let e = r.unwrap_err().to_string();
    assert!(!e.contains('\n'), "multi-line error: {e}");
    e
}

fn cube() -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[3, 4, 5]), |i| (i[0] + 2 * i[1] + 3 * i[2]) as f64)
}

#[test]
fn tt_svd_and_round_reject_bad_arguments() {
    let a = cube();
    assert!(msg(TensorTrain::tt_svd(&a, -1e-3, None)).contains("`eps`"));
    assert!(msg(TensorTrain::tt_svd(&a, f64::NAN, None)).contains("`eps`"));
    assert!(msg(TensorTrain::tt_svd(&a, 1e-3, Some(0))).contains("`max_rank`"));
    let mut nan = a.clone();
    nan[[1, 2, 3]] = f64::NAN;
    let e = msg(TensorTrain::tt_svd(&nan, 1e-3, None));
    assert!(
        e.contains("non-finite") && e.contains(&format!("{}", 20 + 2 * 5 + 3)),
        "{e}"
    );
    let empty = ArrayD::<f64>::zeros(IxDyn(&[3, 0, 2]));
    assert!(msg(TensorTrain::tt_svd(&empty, 1e-3, None)).contains("mode 1 has size 0"));
    let scalar = ArrayD::<f64>::zeros(IxDyn(&[]));
    assert!(msg(TensorTrain::tt_svd(&scalar, 1e-3, None)).contains("at least 1 mode"));
    let tt = TensorTrain::tt_svd(&a, 1e-3, None).unwrap();
    assert!(msg(tt.round(-0.1, None)).contains("`eps`"));
    assert!(msg(tt.round(0.1, Some(0))).contains("`max_rank`"));
    assert!(msg(tt.scale(f64::INFINITY)).contains("scale"));
    let other = TensorTrain::zeros(&[3, 4, 6]).unwrap();
    assert!(msg(tt.add(&other)).contains("shape mismatch"));
    assert!(msg(tt.dot(&other)).contains("shape mismatch"));
    assert!(msg(tt.element(&[0, 0])).contains("`index`"));
    let bad = vec![Array3::<f64>::zeros((2, 3, 1))];
    assert!(msg(TensorTrain::from_cores(bad)).contains("r_0 = 1"));
    let inf = vec![Array3::from_elem((1, 2, 1), f64::INFINITY)];
    assert!(msg(TensorTrain::from_cores(inf)).contains("non-finite"));
}

#[test]
fn cp_als_rejects_bad_arguments() {
    let a = cube();
    assert!(msg(cp_als(&a, 0, 10, CpInit::Svd, 1e-8)).contains("`rank`"));
    let v = ArrayD::from_shape_vec(IxDyn(&[4]), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    assert!(msg(cp_als(&v, 1, 10, CpInit::Svd, 1e-8)).contains("at least 2 mode"));
    let mut nan = a.clone();
    nan[[0, 0, 1]] = f64::NAN;
    assert!(msg(cp_als(&nan, 2, 10, CpInit::Svd, 1e-8)).contains("non-finite"));
    let empty = ArrayD::<f64>::zeros(IxDyn(&[3, 4, 0]));
    assert!(msg(cp_als(&empty, 2, 10, CpInit::Svd, 1e-8)).contains("mode 2 has size 0"));
    let zero = ArrayD::<f64>::zeros(IxDyn(&[3, 4]));
    assert!(msg(cp_als(&zero, 2, 10, CpInit::Svd, 1e-8)).contains("zero"));
    assert!(msg(cp_als(&a, 2, 10, CpInit::Svd, -1.0)).contains("`tol`"));
    let wrong = vec![
        Array2::<f64>::ones((3, 2)),
        Array2::ones((4, 2)),
        Array2::ones((6, 2)),
    ];
    assert!(msg(cp_als(&a, 2, 10, CpInit::Given(wrong), 1e-8)).contains("factor 2"));
    let two = vec![Array2::<f64>::ones((3, 2)), Array2::ones((4, 2))];
    assert!(msg(cp_als(&a, 2, 10, CpInit::Given(two), 1e-8)).contains("3 factor matrices"));
    let cols = vec![
        Array2::<f64>::ones((3, 3)),
        Array2::ones((4, 3)),
        Array2::ones((5, 3)),
    ];
    assert!(msg(cp_als(&a, 2, 10, CpInit::Given(cols), 1e-8)).contains("2 columns"));
}

#[test]
fn expressivity_functions_reject_bad_arguments() {
    assert!(msg(random_tt(4, 3, 0, false, 0)).contains("`r`"));
    assert!(msg(random_tt(1, 3, 2, false, 0)).contains("`d`"));
    assert!(msg(random_tt(4, 0, 2, false, 0)).contains("`n`"));
    assert!(msg(theorem_bound(5, 3, 2)).contains("even"));
    assert!(msg(delta_pairs_tt(4, 2, 3)).contains("`q`"));
}
