//! (p,q)-singular vectors by the generalised power method (Boyd 1974), on any [`LinearOperator`] —
//! in particular the stacked hidden-layer Jacobian [`LayerJacobian`] of SV-UAP (Khrulkov & Oseledets,
//! CVPR 2018).
//!
//! Problem: maximise `‖A x‖_q` subject to `‖x‖_p = 1`; the maximum is `‖A‖_{p→q}`, the maximiser the
//! (p,q)-singular vector. With `ψ_r(z) = sign(z)·|z|^{r−1}` element-wise and `p' = p/(p−1)`:
//!
//! ```text
//! x ← uniform(−0.5, 0.5)ⁿ (seeded);  x ← sign(x) if p = ∞ else x/‖x‖_p
//! repeat max_iter times:
//!     a ← A x;  a ← a/‖a‖_∞                      (scale guard: |a|^{q−1} cannot overflow)
//!     s ← Aᵀ ψ_q(a)
//!     x ← sign(s) if p = ∞ else ψ_{p'}(s)/‖ψ_{p'}(s)‖_p
//!     stop when p = ∞ and the sign pattern did not change (exact convergence), or, for finite p,
//!     when ‖x_new − x‖_∞ ≤ tol
//! σ ← ‖A x‖_q / ‖x‖_p
//! ```
//!
//! Each step maximises the linearisation of the convex function `‖A x‖_q^q` over the unit ℓp ball, so
//! `‖A x_k‖_q` never decreases (reported in `history`). For non-negative `A` and `p ≥ q` the fixed point is
//! the global maximum (Boyd 1974; Bhaskara & Vijayaraghavan 2011); for signed Jacobians only a fixed point
//! is guaranteed. `ψ_1 = sign`; `ψ_∞` (p = 1 or q = ∞) is the signed indicator of the largest entry.
//! Sign convention: `x` and `−x` have the same value; the result is oriented so that the entry of `A x`
//! with the largest magnitude is positive.
//!
//! ```
//! use adversarial::norm::Norm;
//! use adversarial::power::{MatrixOperator, PowerConfig, singular_vector};
//! use candle_core::{Device, Tensor};
//!
//! // diag(3, 1): the (2,2)-singular vector is e₁ with value 3.
//! let a = Tensor::new(&[[3f64, 0.], [0., 1.]], &Device::Cpu)?;
//! let r = singular_vector(&MatrixOperator::new(a)?, &PowerConfig { p: Norm::L2, q: Norm::L2, ..Default::default() })?;
//! assert!((r.singular_value - 3.0).abs() < 1e-9);
//! # Ok::<(), adversarial::AdvError>(())
//! ```

use candle_core::{DType, Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{AdvError, Result, check_at_least_one, check_nonneg};
use crate::net::{Linearization, Net};
use crate::norm::{Norm, Perturbation, lp_norm};

/// A linear map given by its action `A x` and its transpose action `Aᵀ y`.
pub trait LinearOperator {
    /// Shape of `x`.
    fn input_shape(&self) -> Vec<usize>;
    /// Shape of `A x`.
    fn output_shape(&self) -> Vec<usize>;
    /// `A x`.
    fn apply(&self, x: &Tensor) -> Result<Tensor>;
    /// `Aᵀ y`.
    fn apply_transpose(&self, y: &Tensor) -> Result<Tensor>;
    /// dtype of the vectors.
    fn dtype(&self) -> DType;
}

/// A dense matrix `[m, n]` as a [`LinearOperator`] on vectors of length n.
pub struct MatrixOperator {
    a: Tensor,
}

impl MatrixOperator {
    /// Wraps a rank-2 tensor.
    pub fn new(a: Tensor) -> Result<Self> {
        a.dims2()
            .map_err(|_| AdvError::shape("matrix operator", "[m, n]", format!("{:?}", a.dims())))?;
        Ok(Self { a })
    }
}

impl LinearOperator for MatrixOperator {
    fn input_shape(&self) -> Vec<usize> {
        vec![self.a.dims()[1]]
    }
    fn output_shape(&self) -> Vec<usize> {
        vec![self.a.dims()[0]]
    }
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.a.matmul(&x.unsqueeze(1)?)?.squeeze(1)?)
    }
    fn apply_transpose(&self, y: &Tensor) -> Result<Tensor> {
        Ok(self.a.t()?.matmul(&y.unsqueeze(1)?)?.squeeze(1)?)
    }
    fn dtype(&self) -> DType {
        self.a.dtype()
    }
}

/// The stacked Jacobian `J = [J_l(x_1); …; J_l(x_b)]` of the map from the input to layer `l` at a batch
/// of images: `J v` (one shared image-shaped `v` → `[b, …]`) by the tangent pass, `Jᵀ u = Σⱼ J_l(xⱼ)ᵀ uⱼ`
/// by the transpose pass summed over the batch; the primal pass (masks) runs once, in [`LayerJacobian::new`].
pub struct LayerJacobian<'a> {
    lin: Linearization<'a>,
    input_shape: Vec<usize>,
    dtype: DType,
}

impl<'a> LayerJacobian<'a> {
    /// The Jacobian of `net` at layer `layer` (an unknown name is an error listing the valid ones) for the
    /// images `[b, C, H, W]`.
    pub fn new(net: &'a Net, images: &Tensor, layer: &str) -> Result<Self> {
        net.check_layer(layer)?;
        match images.dims() {
            [b, rest @ ..] if *b > 0 && rest.len() == 3 => Ok(Self {
                lin: net.linearize(images, layer)?,
                input_shape: rest.to_vec(),
                dtype: net.dtype(),
            }),
            d => Err(AdvError::shape(
                "images",
                "[b, C, H, W] with b ≥ 1",
                format!("{d:?}"),
            )),
        }
    }
}

impl LinearOperator for LayerJacobian<'_> {
    fn input_shape(&self) -> Vec<usize> {
        self.input_shape.clone()
    }
    fn output_shape(&self) -> Vec<usize> {
        self.lin.output().dims().to_vec()
    }
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        self.lin.jvp(x)
    }
    fn apply_transpose(&self, y: &Tensor) -> Result<Tensor> {
        Ok(self.lin.vjp(y)?.sum(0)?)
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
}

/// Parameters of [`singular_vector`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerConfig {
    /// Norm of the perturbation (default ∞).
    pub p: Norm,
    /// Norm of the hidden-layer response (default 5, the reference code's default; its figures use 10).
    pub q: Norm,
    /// Maximum number of iterations (default 30).
    pub max_iter: usize,
    /// Finite p: stop when `‖x_new − x‖_∞ ≤ tol` (default 1e-6). Unused for p = ∞ (exact stop).
    pub tol: f64,
    /// Seed of the starting vector (default 0).
    pub seed: u64,
}

impl Default for PowerConfig {
    fn default() -> Self {
        Self {
            p: Norm::Inf,
            q: Norm::L(5.0),
            max_iter: 30,
            tol: 1e-6,
            seed: 0,
        }
    }
}

impl PowerConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        self.p.validate("p")?;
        self.q.validate("q")?;
        check_at_least_one("max_iter", self.max_iter)?;
        check_nonneg("tol", self.tol)
    }
}

/// The (p,q)-singular vector and value found by [`singular_vector`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PowerResult {
    /// The vector `x` with `‖x‖_p = 1`, shaped like the operator's input.
    pub vector: Perturbation,
    /// `‖A x‖_q / ‖x‖_p`.
    pub singular_value: f64,
    /// Iterations run (each one `A x` and one `Aᵀ y`).
    pub iterations: usize,
    /// True when the stopping test fired before `max_iter`.
    pub converged: bool,
    /// `‖A x_k‖_q / ‖x_k‖_p` for the start and after every iteration (non-decreasing).
    pub history: Vec<f64>,
    pub p: Norm,
    pub q: Norm,
}

/// `ψ_r(z) = sign(z)·|z|^{r−1}`; `r = 1` gives `sign(z)`, `r = ∞` the signed indicator of the entry of
/// largest magnitude (the limit of `ψ_r` after normalisation).
pub fn psi(z: &Tensor, r: Norm) -> Result<Tensor> {
    match r {
        Norm::L(1.0) => Ok(z.sign()?),
        Norm::L(2.0) => Ok(z.clone()),
        Norm::L(r) => Ok((z.abs()?.powf(r - 1.0)? * z.sign()?)?),
        Norm::Inf => {
            let flat = z.flatten_all()?;
            let idx = flat.abs()?.argmax(0)?.to_scalar::<u32>()? as usize;
            let mut onehot = vec![0f64; flat.elem_count()];
            onehot[idx] = 1.0;
            let mask = Tensor::from_vec(onehot, z.shape(), z.device())?.to_dtype(z.dtype())?;
            Ok((mask * z.sign()?)?)
        }
    }
}

/// Scales `z` by `1/‖z‖_∞` (unchanged when zero).
fn scale_by_max(z: &Tensor) -> Result<(Tensor, f64)> {
    let m = lp_norm(z, Norm::Inf)?;
    if m == 0.0 {
        Ok((z.clone(), 0.0))
    } else {
        Ok((z.affine(1.0 / m, 0.0)?, m))
    }
}

/// The maximiser of `⟨s, x⟩` over the unit ℓp ball: `sign(s)` for p = ∞, `ψ_{p'}(s)/‖ψ_{p'}(s)‖_p` else.
fn dual_step(s: &Tensor, p: Norm) -> Result<Tensor> {
    match p {
        Norm::Inf => Ok(s.sign()?),
        _ => {
            let (s, _) = scale_by_max(s)?;
            let x = psi(&s, p.dual())?;
            let n = lp_norm(&x, p)?;
            if n == 0.0 {
                Ok(x)
            } else {
                Ok(x.affine(1.0 / n, 0.0)?)
            }
        }
    }
}

/// The generalised power method for `max ‖A x‖_q` s.t. `‖x‖_p = 1` (see the module header).
pub fn singular_vector(op: &dyn LinearOperator, config: &PowerConfig) -> Result<PowerResult> {
    config.validate()?;
    let shape = op.input_shape();
    let n: usize = shape.iter().product();
    if n == 0 {
        return Err(AdvError::invalid("operator", "input has no elements"));
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let init: Vec<f64> = (0..n).map(|_| rng.random_range(-0.5..0.5)).collect();
    let x0 = Tensor::from_vec(init, shape.as_slice(), &Device::Cpu)?.to_dtype(op.dtype())?;
    let mut x = match config.p {
        Norm::Inf => x0.sign()?,
        p => x0.affine(1.0 / lp_norm(&x0, p)?, 0.0)?,
    };
    let value = |a: &Tensor, x: &Tensor| -> Result<f64> {
        let nx = lp_norm(x, config.p)?;
        Ok(if nx == 0.0 {
            0.0
        } else {
            lp_norm(a, config.q)? / nx
        })
    };
    let mut a = op.apply(&x)?;
    let mut history = vec![value(&a, &x)?];
    let (mut iterations, mut converged) = (0, false);
    for _ in 0..config.max_iter {
        let (a_scaled, amax) = scale_by_max(&a)?;
        if amax == 0.0 {
            converged = true; // A x = 0 and Aᵀ ψ(0) = 0: nothing to improve.
            break;
        }
        let s = op.apply_transpose(&psi(&a_scaled, config.q)?)?;
        if lp_norm(&s, Norm::Inf)? == 0.0 {
            converged = true;
            break;
        }
        let x_new = dual_step(&s, config.p)?;
        iterations += 1;
        let change = lp_norm(&(&x_new - &x)?, Norm::Inf)?;
        let done = match config.p {
            Norm::Inf => change == 0.0,
            _ => change <= config.tol,
        };
        if done && matches!(config.p, Norm::Inf) {
            converged = true;
            break;
        }
        x = x_new;
        a = op.apply(&x)?;
        history.push(value(&a, &x)?);
        if done {
            converged = true;
            break;
        }
    }
    // Orientation: the largest-magnitude entry of A x positive.
    let flat = a.flatten_all()?.to_dtype(DType::F64)?;
    let idx = flat.abs()?.argmax(0)?.to_scalar::<u32>()? as usize;
    if flat.get(idx)?.to_scalar::<f64>()? < 0.0 {
        x = x.neg()?;
    }
    let singular_value = *history.last().unwrap_or(&0.0);
    Ok(PowerResult {
        vector: Perturbation::from_tensor(&x)?,
        singular_value,
        iterations,
        converged,
        history,
        p: config.p,
        q: config.q,
    })
}

/// SV-UAP: the (p,q)-singular vector of the stacked Jacobian of `layer` at `images` (typically 64), with
/// `‖v‖_p = 1`; scale it to the budget ε before use.
pub fn sv_uap(
    net: &Net,
    images: &Tensor,
    layer: &str,
    config: &PowerConfig,
) -> Result<PowerResult> {
    config.validate()?;
    let op = LayerJacobian::new(net, images, layer)?;
    singular_vector(&op, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_matches_hand_values() {
        let z = Tensor::new(&[-2f64, 0.5, 0.0], &Device::Cpu).unwrap();
        let v = |t: Tensor| t.to_vec1::<f64>().unwrap();
        assert_eq!(v(psi(&z, Norm::L(1.0)).unwrap()), vec![-1.0, 1.0, 0.0]);
        assert_eq!(v(psi(&z, Norm::L(3.0)).unwrap()), vec![-4.0, 0.25, 0.0]);
        assert_eq!(v(psi(&z, Norm::Inf).unwrap()), vec![-1.0, 0.0, 0.0]);
    }

    #[test]
    fn invalid_configs_are_errors() {
        let a = Tensor::new(&[[1f64, 0.], [0., 1.]], &Device::Cpu).unwrap();
        let op = MatrixOperator::new(a).unwrap();
        for cfg in [
            PowerConfig {
                p: Norm::L(0.5),
                ..Default::default()
            },
            PowerConfig {
                q: Norm::L(f64::NAN),
                ..Default::default()
            },
            PowerConfig {
                max_iter: 0,
                ..Default::default()
            },
        ] {
            assert!(matches!(
                singular_vector(&op, &cfg),
                Err(AdvError::InvalidArgument { .. })
            ));
        }
    }
}
