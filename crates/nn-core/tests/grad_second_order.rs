//! Second-order gradients (pitfall A10): the probe `second_order_enabled`, the error of
//! `require_second_order`, and a WGAN-GP-style gradient penalty checked against finite differences.
//!
//! candle reads `CANDLE_GRAD_DO_NOT_DETACH` once per thread, lazily, at the thread's first backward.
//! This file holds a single `#[test]` so that nothing else runs in this process while the environment
//! is modified; each scenario runs in its own fresh thread, one after the other. (The workspace
//! `.cargo/config.toml` also sets the variable for every process cargo runs.)

use candle_core::{DType, Device, Tensor};
use nn_core::NnError;
use nn_core::grad::{
    GradCheckOptions, grad_check, input_gradient, require_second_order, second_order_enabled,
    seeded_normal,
};

const VAR: &str = "CANDLE_GRAD_DO_NOT_DETACH";

fn randn(shape: &[usize], seed: u64) -> Tensor {
    seeded_normal(shape, DType::F64, &Device::Cpu, seed).unwrap()
}

/// Gradient penalty of a two-layer critic `c(x) = sum(tanh(x·W1)·w2)`: `P = ||∇ₓ c||²` summed over the
/// batch, as a function of W1 and w2 (needs the gradient of a gradient).
fn penalty(x: &Tensor, w1: &Tensor, w2: &Tensor) -> candle_core::Result<Tensor> {
    let gx = input_gradient(|x| x.matmul(w1)?.tanh()?.broadcast_mul(w2), x)
        .map_err(candle_core::Error::wrap)?;
    gx.sqr()?.sum_all()
}

fn second_order_scenarios() {
    // At the very start of this fresh thread, before any backward in it.
    unsafe { std::env::set_var(VAR, "1") };
    assert!(second_order_enabled(), "probe failed with {VAR}=1");
    require_second_order().unwrap();

    let x = randn(&[3, 4], 1);
    let w1 = randn(&[4, 5], 2);
    let w2 = randn(&[5], 3);
    let opts = GradCheckOptions::default();
    let c1 = grad_check(|w1| penalty(&x, w1, &w2), &w1, opts).unwrap();
    eprintln!("grad_check gradient penalty wrt W1: {c1:?}");
    assert!(c1.max_rel_error < 1e-5, "{c1:?}");
    // The last layer must receive a gradient too (it silently did not when detaching).
    let c2 = grad_check(|w2| penalty(&x, &w1, w2), &w2, opts).unwrap();
    eprintln!("grad_check gradient penalty wrt w2: {c2:?}");
    assert!(c2.max_rel_error < 1e-5, "{c2:?}");
}

fn detached_scenario() {
    // At the very start of this fresh thread, before any backward in it.
    unsafe { std::env::remove_var(VAR) };
    assert!(
        !second_order_enabled(),
        "probe reports second order without {VAR}"
    );
    match require_second_order() {
        Err(NnError::InvalidArgument { name, reason }) => {
            assert_eq!(name, VAR);
            assert!(reason.contains("CANDLE_GRAD_DO_NOT_DETACH=1"), "{reason}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    // And the gradient penalty is indeed wrong then: the checker sees it.
    let x = randn(&[3, 4], 1);
    let w1 = randn(&[4, 5], 2);
    let w2 = randn(&[5], 3);
    let c = grad_check(|w2| penalty(&x, &w1, w2), &w2, GradCheckOptions::default()).unwrap();
    eprintln!("grad_check gradient penalty wrt w2, detached: {c:?}");
    assert!(c.max_rel_error > 0.1, "{c:?}");
}

#[test]
fn second_order_probe_and_gradient_penalty() {
    let original = std::env::var_os(VAR);
    let r1 = std::thread::spawn(detached_scenario).join();
    let r2 = std::thread::spawn(second_order_scenarios).join();
    // Restore the environment (no other thread is running candle code now).
    match original {
        Some(v) => unsafe { std::env::set_var(VAR, v) },
        None => unsafe { std::env::remove_var(VAR) },
    }
    if let Err(e) = r1 {
        std::panic::resume_unwind(e);
    }
    if let Err(e) = r2 {
        std::panic::resume_unwind(e);
    }
}
