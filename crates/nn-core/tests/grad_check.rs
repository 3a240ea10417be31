//! Tests of the autodiff helpers themselves: `input_gradient`, `vjp`, `grad_check` (including that it
//! can fail) and `adjoint_check`.

use candle_core::{DType, Device, Tensor};
use nn_core::NnError;
use nn_core::grad::{
    GradCheckOptions, adjoint_check, grad_check, input_gradient, seeded_normal, vjp,
};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    seeded_normal(shape, DType::F64, &Device::Cpu, seed).unwrap()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

#[test]
fn input_gradient_hand_values() {
    let x = Tensor::new(&[[1f64, -2.], [0.5, 3.]], &Device::Cpu).unwrap();
    let g = input_gradient(|x| x.sqr(), &x).unwrap();
    assert_eq!(g.dims(), &[2, 2]);
    assert_eq!(flat(&g), vec![2.0, -4.0, 1.0, 6.0]);
    // Output independent of x: zero gradient of the right shape.
    let g = input_gradient(|x| Tensor::ones(3, x.dtype(), x.device()), &x).unwrap();
    assert_eq!(flat(&g), vec![0.0; 4]);
    // A Var passed in is not modified and its gradient is still computed.
    let v = candle_core::Var::from_tensor(&x).unwrap();
    let g = input_gradient(|x| x.sum_all(), v.as_tensor()).unwrap();
    assert_eq!(flat(&g), vec![1.0; 4]);
    // f32 in, f32 out.
    let g = input_gradient(|x| x.sqr(), &x.to_dtype(DType::F32).unwrap()).unwrap();
    assert_eq!(g.dtype(), DType::F32);
}

#[test]
fn vjp_of_a_matrix_is_the_transpose() {
    let a = randn(&[4, 3], 1);
    let x = randn(&[3, 1], 2);
    let u = randn(&[4, 1], 3);
    let got = vjp(|x| a.matmul(x), &x, &u).unwrap();
    let want = a.t().unwrap().matmul(&u).unwrap();
    for (g, w) in flat(&got).iter().zip(flat(&want)) {
        assert!((g - w).abs() < 1e-14);
    }
    let err = vjp(|x| a.matmul(x), &x, &randn(&[3, 1], 4)).unwrap_err();
    assert!(matches!(err, NnError::Shape { .. }), "{err}");
}

#[test]
fn grad_check_passes_on_smooth_functions() {
    let x = randn(&[5, 7], 5);
    let w = randn(&[7, 3], 6);
    let check = grad_check(
        |x| x.matmul(&w)?.tanh()?.exp()?.sqr(),
        &x,
        GradCheckOptions::default(),
    )
    .unwrap();
    eprintln!("grad_check smooth: {check:?}");
    assert_eq!(check.coords_checked, 35);
    assert!(check.max_rel_error < 1e-5, "{check:?}");
    // f32 input is converted to f64 for the check.
    let check = grad_check(
        |x| x.sin(),
        &x.to_dtype(DType::F32).unwrap(),
        GradCheckOptions::default(),
    )
    .unwrap();
    assert!(check.max_rel_error < 1e-7, "{check:?}");
}

#[test]
fn grad_check_samples_coordinates_reproducibly() {
    let x = randn(&[10, 10], 7);
    let opts = GradCheckOptions {
        max_coords: 5,
        seed: 42,
        ..GradCheckOptions::default()
    };
    let a = grad_check(|x| x.powf(3.0), &x, opts).unwrap();
    let b = grad_check(|x| x.powf(3.0), &x, opts).unwrap();
    assert_eq!(a.coords_checked, 5);
    assert_eq!(a.worst, b.worst);
    assert!(a.max_rel_error < 1e-7, "{a:?}");
    let json = serde_json::to_string(&a).unwrap();
    assert!(json.contains("max_rel_error"));
}

#[test]
fn grad_check_fails_on_a_wrong_gradient() {
    let x = randn(&[4, 4], 8);
    // f(x) = x · detach(x): the true derivative is 2x, backprop sees only x.
    let check = grad_check(|x| x.mul(&x.detach()), &x, GradCheckOptions::default()).unwrap();
    eprintln!("grad_check wrong gradient: {check:?}");
    assert!((check.max_rel_error - 0.5).abs() < 1e-6, "{check:?}");
    // f(x) = detach(x)²: backprop sees no dependence at all, relative error 1.
    let check = grad_check(|x| x.detach().sqr(), &x, GradCheckOptions::default()).unwrap();
    assert!((check.max_rel_error - 1.0).abs() < 1e-9, "{check:?}");
    let (i, a, n) = check.worst.unwrap();
    assert!(i < 16 && a == 0.0 && n != 0.0);
}

#[test]
fn grad_check_handles_exact_zero_derivatives() {
    // relu on inputs far from 0: half the derivatives are exactly 0 both ways.
    let x = Tensor::new(&[-1f64, 2., -3., 4., 0.5, -0.5], &Device::Cpu).unwrap();
    let check = grad_check(|x| x.relu()?.sqr(), &x, GradCheckOptions::default()).unwrap();
    assert!(check.max_rel_error < 1e-8, "{check:?}");
    // A constant function: everything zero, no NaN.
    let check = grad_check(|x| x.zeros_like(), &x, GradCheckOptions::default()).unwrap();
    assert_eq!(check.max_rel_error, 0.0);
}

#[test]
fn grad_check_rejects_bad_options() {
    let x = randn(&[3], 9);
    let bad_step = GradCheckOptions {
        step: 0.0,
        ..GradCheckOptions::default()
    };
    assert!(matches!(
        grad_check(|x| x.sqr(), &x, bad_step),
        Err(NnError::InvalidArgument { .. })
    ));
    let bad_coords = GradCheckOptions {
        max_coords: 0,
        ..GradCheckOptions::default()
    };
    assert!(grad_check(|x| x.sqr(), &x, bad_coords).is_err());
}

#[test]
fn adjoint_check_on_a_linear_map_and_a_mismatched_pair() {
    let a = randn(&[6, 4], 10);
    let at = a.t().unwrap().contiguous().unwrap();
    let err = adjoint_check(
        |v| a.matmul(&v.reshape((4, 1))?)?.reshape(6),
        |u| at.matmul(&u.reshape((6, 1))?)?.reshape(4),
        &[4],
        &[6],
        DType::F64,
        11,
    )
    .unwrap();
    eprintln!("adjoint_check linear f64: {err:.3e}");
    assert!(err < 1e-13, "{err}");

    // The same in f32.
    let a32 = a.to_dtype(DType::F32).unwrap();
    let at32 = at.to_dtype(DType::F32).unwrap();
    let err32 = adjoint_check(
        |v| a32.matmul(&v.reshape((4, 1))?)?.reshape(6),
        |u| at32.matmul(&u.reshape((6, 1))?)?.reshape(4),
        &[4],
        &[6],
        DType::F32,
        11,
    )
    .unwrap();
    eprintln!("adjoint_check linear f32: {err32:.3e}");
    assert!(err32 < 1e-5, "{err32}");

    // The vjp obtained by backprop is adjoint to the map.
    let zero = Tensor::zeros(4, DType::F64, &Device::Cpu).unwrap();
    let f = |v: &Tensor| a.matmul(&v.reshape((4, 1))?)?.reshape(6);
    let err = adjoint_check(
        f,
        |u| vjp(f, &zero, u).map_err(candle_core::Error::wrap),
        &[4],
        &[6],
        DType::F64,
        12,
    )
    .unwrap();
    assert!(err < 1e-13, "{err}");

    // Mismatched pair: a square non-symmetric B with B used as its own "transpose".
    let b = randn(&[5, 5], 13);
    let err = adjoint_check(
        |v| b.matmul(&v.reshape((5, 1))?)?.reshape(5),
        |u| b.matmul(&u.reshape((5, 1))?)?.reshape(5),
        &[5],
        &[5],
        DType::F64,
        14,
    )
    .unwrap();
    eprintln!("adjoint_check mismatched: {err:.3e}");
    assert!(err > 1e-2, "{err}");

    // Wrong output shapes are reported.
    let r = adjoint_check(|v| v.sqr(), |u| u.sqr(), &[3], &[4], DType::F64, 0);
    assert!(matches!(r, Err(NnError::Shape { .. })));
}
