//! Input gradients, finite-difference gradient checks, adjoint checks and the second-order probe.
//!
//! * [`input_gradient`] / [`vjp`]: reverse-mode gradients with respect to an input tensor.
//! * [`grad_check`]: backprop against central finite differences in f64 (the gate for every workaround
//!   in [`crate::layers`]).
//! * [`adjoint_check`]: `⟨J v, u⟩ = ⟨v, Jᵀ u⟩` on random vectors, for hand-written JVPs.
//! * [`second_order_enabled`] / [`require_second_order`]: whether candle keeps the backward graph
//!   (`CANDLE_GRAD_DO_NOT_DETACH`, pitfall A10).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use nn_core::grad::{grad_check, input_gradient, GradCheckOptions};
//!
//! let x = Tensor::new(&[0.5f64, -1.0, 2.0], &Device::Cpu)?;
//! // d/dx sum(x^3) = 3x^2
//! let g = input_gradient(|x| x.powf(3.0), &x)?;
//! assert_eq!(g.to_vec1::<f64>()?, vec![0.75, 3.0, 12.0]);
//! let check = grad_check(|x| x.tanh()?.sqr(), &x, GradCheckOptions::default())?;
//! assert!(check.max_rel_error < 1e-6, "{check:?}");
//! # Ok::<(), nn_core::NnError>(())
//! ```

use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Serialize;

use crate::{NnError, Result};

/// Gradient of the scalar `loss(x)` w.r.t. a fresh leaf copy of `x`; zeros where `x` does not reach the
/// loss through tracked ops (this includes ops candle silently treats as constants, A6/A7).
fn grad_of_scalar<L>(loss: L, x: &Tensor) -> Result<Tensor>
where
    L: Fn(&Tensor) -> Result<Tensor>,
{
    // `detach` first so that the variable is always a new leaf, even if `x` is a Var or part of a graph.
    let var = Var::from_tensor(&x.detach())?;
    let y = loss(var.as_tensor())?;
    if y.elem_count() != 1 {
        return Err(NnError::Shape {
            context: "gradient of a scalar".into(),
            expected: "one element".into(),
            got: format!("{:?}", y.dims()),
        });
    }
    let grads = y.sum_all()?.backward()?;
    match grads.get(var.as_tensor()) {
        Some(g) => Ok(g.clone()),
        None => Ok(var.as_tensor().zeros_like()?),
    }
}

/// Gradient of `f(x).sum_all()` with respect to `x`, same shape and dtype as `x`.
///
/// `x` is copied into a fresh candle [`Var`] internally, so any tensor can be passed. If the output does
/// not depend on `x` through ops that candle tracks, the gradient is all zeros. When second-order
/// gradients are enabled ([`second_order_enabled`]), the result stays differentiable with respect to
/// variables used inside `f` (e.g. model weights: gradient penalties).
pub fn input_gradient<F>(f: F, x: &Tensor) -> Result<Tensor>
where
    F: Fn(&Tensor) -> candle_core::Result<Tensor>,
{
    grad_of_scalar(|x| Ok(f(x)?.sum_all()?), x)
}

/// Vector–Jacobian product `Jᵀ u`: the gradient of `⟨f(x), u⟩` with respect to `x`. `u` must have the
/// shape of `f(x)`; it is converted to the dtype of `f(x)`.
pub fn vjp<F>(f: F, x: &Tensor, u: &Tensor) -> Result<Tensor>
where
    F: Fn(&Tensor) -> candle_core::Result<Tensor>,
{
    grad_of_scalar(
        |x| {
            let y = f(x)?;
            if y.dims() != u.dims() {
                return Err(NnError::Shape {
                    context: "vjp: f(x) and u".into(),
                    expected: format!("{:?}", y.dims()),
                    got: format!("{:?}", u.dims()),
                });
            }
            let u = u.to_dtype(y.dtype())?;
            Ok((y * u)?.sum_all()?)
        },
        x,
    )
}

/// Options of [`grad_check`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GradCheckOptions {
    /// Central-difference step h (default 1e-6, in f64).
    pub step: f64,
    /// At most this many flat coordinates are checked (default 40); all of them if the input is smaller.
    pub max_coords: usize,
    /// Seed of the coordinate sample (default 0).
    pub seed: u64,
}

impl Default for GradCheckOptions {
    fn default() -> Self {
        GradCheckOptions {
            step: 1e-6,
            max_coords: 40,
            seed: 0,
        }
    }
}

/// Result of [`grad_check`].
#[derive(Debug, Clone, Serialize)]
pub struct GradCheck {
    /// Largest relative error over the checked coordinates (NaN/∞ reported as ∞).
    pub max_rel_error: f64,
    /// Number of flat coordinates compared.
    pub coords_checked: usize,
    /// The worst coordinate: (flat index, analytic derivative, numeric derivative).
    pub worst: Option<(usize, f64, f64)>,
}

/// Checks the backprop gradient of `sum(f(x))` against central finite differences.
///
/// `x` is converted to f64 (so `f` must accept f64 input); the analytic gradient comes from one backward
/// pass, the numeric one from `(S(x + h eᵢ) − S(x − h eᵢ)) / 2h` with `S = sum(f(·))` in f64, on a seeded
/// sample of at most `opts.max_coords` flat coordinates (all of them if there are fewer).
///
/// Relative error of coordinate i: `|aᵢ − nᵢ| / max(|aᵢ|, |nᵢ|, scale)` with
/// `scale = 1e-3 · maxⱼ |nⱼ|` over the checked coordinates. The floor is there because many correct
/// derivatives are exactly zero (inputs that are not a pool maximum, ReLUs below 0, constant outputs):
/// there the analytic value is 0 and the numeric one is rounding noise of order ε·|S|/h, and a pure
/// relative error would be 0/0 or noise/noise ≈ 1. With the floor, coordinates whose derivative is
/// below a thousandth of the largest one are judged by their absolute error relative to that thousandth,
/// while a wrong zero gradient (analytic 0, numeric comparable to the others) still scores 1.
///
/// Tip: `sum(f(x))` often has a trivial gradient (softmax, layer norm); check `sum(f(x) · w)` with a fixed
/// random `w` instead.
pub fn grad_check<F>(f: F, x: &Tensor, opts: GradCheckOptions) -> Result<GradCheck>
where
    F: Fn(&Tensor) -> candle_core::Result<Tensor>,
{
    if !(opts.step > 0.0 && opts.step.is_finite()) {
        return Err(NnError::invalid(
            "step",
            format!("must be positive and finite, got {}", opts.step),
        ));
    }
    if opts.max_coords == 0 {
        return Err(NnError::invalid("max_coords", "must be at least 1"));
    }
    let x64 = x.to_dtype(DType::F64)?.detach();
    let shape = x64.shape().clone();
    let device = x64.device().clone();
    let n = shape.elem_count();
    if n == 0 {
        return Ok(GradCheck {
            max_rel_error: 0.0,
            coords_checked: 0,
            worst: None,
        });
    }
    let analytic = input_gradient(&f, &x64)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;

    let coords: Vec<usize> = if n <= opts.max_coords {
        (0..n).collect()
    } else {
        let mut rng = StdRng::seed_from_u64(opts.seed);
        let mut v = rand::seq::index::sample(&mut rng, n, opts.max_coords).into_vec();
        v.sort_unstable();
        v
    };

    let mut values = x64.flatten_all()?.to_vec1::<f64>()?;
    let eval = |values: &[f64]| -> Result<f64> {
        let t = Tensor::from_vec(values.to_vec(), shape.clone(), &device)?;
        Ok(f(&t)?.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?)
    };
    let h = opts.step;
    let mut numeric = Vec::with_capacity(coords.len());
    for &i in &coords {
        let x0 = values[i];
        values[i] = x0 + h;
        let fp = eval(&values)?;
        values[i] = x0 - h;
        let fm = eval(&values)?;
        values[i] = x0;
        numeric.push((fp - fm) / (2.0 * h));
    }

    // Floor of the denominator, see the doc comment: a thousandth of the largest numeric derivative.
    let scale = 1e-3 * numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut max_rel_error = 0.0f64;
    let mut worst = None;
    for (&i, &num) in coords.iter().zip(&numeric) {
        let a = analytic[i];
        let denom = a.abs().max(num.abs()).max(scale);
        let err = if denom == 0.0 {
            0.0 // both exactly zero and all numeric derivatives zero
        } else {
            (a - num).abs() / denom
        };
        let err = if err.is_finite() { err } else { f64::INFINITY };
        if worst.is_none() || err > max_rel_error {
            max_rel_error = err;
            worst = Some((i, a, num));
        }
    }
    Ok(GradCheck {
        max_rel_error,
        coords_checked: coords.len(),
        worst,
    })
}

/// A tensor of independent standard normal values from a seeded generator (reproducible across runs and
/// devices, unlike `Tensor::randn`), drawn in f64 and converted to `dtype`.
pub fn seeded_normal(shape: &[usize], dtype: DType, device: &Device, seed: u64) -> Result<Tensor> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    Ok(Tensor::from_vec(v, shape, device)?.to_dtype(dtype)?)
}

/// `⟨a, b⟩` in f64.
fn inner(a: &Tensor, b: &Tensor) -> Result<f64> {
    let p = (a.to_dtype(DType::F64)? * b.to_dtype(DType::F64)?)?;
    Ok(p.sum_all()?.to_scalar::<f64>()?)
}

/// Adjoint test of a hand-written Jacobian–vector product against a vector–Jacobian product.
///
/// `jvp` maps an input-shaped `v` to the output-shaped `J v`, `vjp` maps an output-shaped `u` to the
/// input-shaped `Jᵀ u`. Draws seeded standard-normal `v` and `u` of dtype `dtype` on the CPU and returns
/// `|⟨J v, u⟩ − ⟨v, Jᵀ u⟩| / max(|⟨J v, u⟩|, |⟨v, Jᵀ u⟩|, f64::MIN_POSITIVE)`, which is at rounding level
/// (≈1e-15 in f64, ≈1e-7 in f32) when the two are adjoint. Inner products are accumulated in f64.
pub fn adjoint_check<J, V>(
    jvp: J,
    vjp: V,
    input_shape: &[usize],
    output_shape: &[usize],
    dtype: DType,
    seed: u64,
) -> Result<f64>
where
    J: Fn(&Tensor) -> candle_core::Result<Tensor>,
    V: Fn(&Tensor) -> candle_core::Result<Tensor>,
{
    let dev = Device::Cpu;
    let v = seeded_normal(input_shape, dtype, &dev, seed)?;
    let u = seeded_normal(
        output_shape,
        dtype,
        &dev,
        seed.wrapping_add(crate::seed::GOLDEN_GAMMA),
    )?;
    let jv = jvp(&v)?;
    if jv.dims() != output_shape {
        return Err(NnError::Shape {
            context: "adjoint_check: jvp output".into(),
            expected: format!("{output_shape:?}"),
            got: format!("{:?}", jv.dims()),
        });
    }
    let jtu = vjp(&u)?;
    if jtu.dims() != input_shape {
        return Err(NnError::Shape {
            context: "adjoint_check: vjp output".into(),
            expected: format!("{input_shape:?}"),
            got: format!("{:?}", jtu.dims()),
        });
    }
    let lhs = inner(&jv, &u)?;
    let rhs = inner(&v, &jtu)?;
    let denom = lhs.abs().max(rhs.abs()).max(f64::MIN_POSITIVE);
    let err = (lhs - rhs).abs() / denom;
    Ok(if err.is_finite() { err } else { f64::INFINITY })
}

/// The probe of pitfall A10: computes `g = d(z²)/dx` with `z = 1·x` by one backward, then differentiates
/// `g` again, expecting 2. The intermediate `z` matters: candle detaches the gradients of intermediate
/// nodes only, so with `y = x²` directly the first gradient `2x` would stay attached even when detaching.
fn second_order_probe() -> Result<bool> {
    let x = Var::new(&[3.0f64], &Device::Cpu)?;
    let z = x.as_tensor().affine(1.0, 0.0)?;
    let y = z.sqr()?.sum_all()?;
    let grads = y.backward()?;
    let Some(g) = grads.get(x.as_tensor()) else {
        return Ok(false);
    };
    let grads2 = g.sum_all()?.backward()?;
    let Some(h) = grads2.get(x.as_tensor()) else {
        return Ok(false);
    };
    let h = h.to_vec1::<f64>()?[0];
    Ok((h - 2.0).abs() < 1e-12)
}

/// Whether second-order gradients work in the **calling thread**: candle reads
/// `CANDLE_GRAD_DO_NOT_DETACH` once per thread, at that thread's first backward, and otherwise detaches
/// every intermediate gradient, so double backward (gradient penalties, Hessian-vector products, JVP by
/// the transpose trick) silently loses terms (A10). Runs a one-element probe.
pub fn second_order_enabled() -> bool {
    second_order_probe().unwrap_or(false)
}

/// `Ok(())` if [`second_order_enabled`], otherwise an [`NnError::InvalidArgument`] naming
/// `CANDLE_GRAD_DO_NOT_DETACH` and how to set it. Call it first in any function that differentiates a
/// gradient.
pub fn require_second_order() -> Result<()> {
    if second_order_enabled() {
        Ok(())
    } else {
        Err(NnError::InvalidArgument {
            name: "CANDLE_GRAD_DO_NOT_DETACH".into(),
            reason: "second-order gradients are disabled in this thread (candle detaches intermediate \
                     gradients); set the environment variable CANDLE_GRAD_DO_NOT_DETACH=1 before the \
                     program starts (the workspace .cargo/config.toml does so for cargo runs), or at the \
                     start of the thread before its first backward pass"
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_normal_is_reproducible() {
        let a = seeded_normal(&[3, 4], DType::F64, &Device::Cpu, 7).unwrap();
        let b = seeded_normal(&[3, 4], DType::F32, &Device::Cpu, 7).unwrap();
        let c = seeded_normal(&[3, 4], DType::F64, &Device::Cpu, 8).unwrap();
        let (a, b, c) = (
            a.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            b.to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap(),
            c.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        );
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6));
        assert_ne!(a, c);
    }

    #[test]
    fn grad_of_scalar_rejects_non_scalar_losses() {
        let x = Tensor::new(&[1f64, 2.], &Device::Cpu).unwrap();
        assert!(matches!(
            grad_of_scalar(|x| Ok(x.sqr()?), &x),
            Err(NnError::Shape { .. })
        ));
    }

    #[test]
    fn empty_input_checks_nothing() {
        let x = Tensor::zeros(0, DType::F64, &Device::Cpu).unwrap();
        let c = grad_check(|x| x.sqr(), &x, GradCheckOptions::default()).unwrap();
        assert_eq!(c.coords_checked, 0);
        assert!(c.worst.is_none());
    }
}
