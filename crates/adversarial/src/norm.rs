//! ℓp norms, projections onto ℓp balls, the clipping convention and the serialisable [`Perturbation`].
//!
//! * [`Norm`]: `p ∈ [1, ∞)` or `∞`; parsed from `"2"`, `"inf"`, `"∞"`; `p < 1`, NaN and non-numbers are
//!   errors.
//! * [`project`]: Euclidean projection onto `{v : ‖v‖_p ≤ ξ}` for p = 1 (Duchi et al. 2008), 2
//!   (`v · min(1, ξ/‖v‖₂)`) and ∞ (clamp to `[−ξ, ξ]`); for other p the radial rescaling
//!   `v · min(1, ξ/‖v‖_p)` (feasible, but not the nearest point — documented in the result).
//! * [`Clip`]: whether perturbed images are clipped to the valid pixel range (default `[0, 1]`).
//!
//! ```
//! use adversarial::norm::{Norm, project, lp_norm};
//! use candle_core::{Device, Tensor};
//!
//! let p: Norm = "inf".parse()?;
//! let v = Tensor::new(&[0.5f32, -2.0, 0.1], &Device::Cpu)?;
//! let w = project(&v, p, 0.3)?;
//! assert_eq!(w.to_vec1::<f32>()?, vec![0.3, -0.3, 0.1]);
//! assert!((lp_norm(&w, Norm::L(2.0))? - (0.09f64 + 0.09 + 0.01).sqrt()).abs() < 1e-6);
//! # Ok::<(), adversarial::AdvError>(())
//! ```

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{AdvError, Result, check_nonneg};

/// An ℓp norm: `L(p)` with `1 ≤ p < ∞`, or `Inf`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum Norm {
    /// `‖x‖_p = (Σ |xᵢ|^p)^{1/p}`, `1 ≤ p < ∞`.
    L(f64),
    /// `‖x‖_∞ = max |xᵢ|`.
    Inf,
}

impl Norm {
    /// ℓ2.
    pub const L2: Norm = Norm::L(2.0);

    /// Validates `p ∈ [1, ∞]` (∞ given as `f64::INFINITY`).
    pub fn new(p: f64) -> Result<Norm> {
        if p == f64::INFINITY {
            return Ok(Norm::Inf);
        }
        if !(p.is_finite() && p >= 1.0) {
            return Err(AdvError::invalid(
                "p",
                format!("must be in [1, ∞] (a number >= 1 or `inf`), got {p}"),
            ));
        }
        Ok(Norm::L(p))
    }

    /// Checks a hand-built `Norm::L(p)` (p must be finite and ≥ 1), naming `name` otherwise.
    pub fn validate(&self, name: &str) -> Result<()> {
        match *self {
            Norm::Inf => Ok(()),
            Norm::L(p) if p.is_finite() && p >= 1.0 => Ok(()),
            Norm::L(p) => Err(AdvError::invalid(
                name,
                format!("p must be in [1, ∞], got {p}"),
            )),
        }
    }

    /// p as a number (∞ for `Inf`).
    pub fn p(&self) -> f64 {
        match *self {
            Norm::L(p) => p,
            Norm::Inf => f64::INFINITY,
        }
    }

    /// The dual exponent `p' = p/(p−1)` (1 ↔ ∞).
    pub fn dual(&self) -> Norm {
        match *self {
            Norm::Inf => Norm::L(1.0),
            Norm::L(1.0) => Norm::Inf,
            Norm::L(p) => Norm::L(p / (p - 1.0)),
        }
    }
}

impl std::fmt::Display for Norm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Norm::Inf => f.write_str("inf"),
            Norm::L(p) => write!(f, "{p}"),
        }
    }
}

impl std::str::FromStr for Norm {
    type Err = AdvError;

    fn from_str(s: &str) -> Result<Norm> {
        let t = s.trim().to_ascii_lowercase();
        if matches!(t.as_str(), "inf" | "infinity" | "∞" | "linf") {
            return Ok(Norm::Inf);
        }
        let t = t.strip_prefix('l').unwrap_or(&t);
        let p: f64 = t.parse().map_err(|_| {
            AdvError::invalid(
                "p",
                format!("`{s}` is not a norm; expected a number >= 1 or `inf`"),
            )
        })?;
        Norm::new(p)
    }
}

impl TryFrom<String> for Norm {
    type Error = AdvError;
    fn try_from(s: String) -> Result<Norm> {
        s.parse()
    }
}

impl From<Norm> for String {
    fn from(n: Norm) -> String {
        n.to_string()
    }
}

/// `‖x‖_p` of all elements of `x`, accumulated in f64. Large p is computed as
/// `‖x‖_∞ · ‖x/‖x‖_∞‖_p` so that `|x|^p` cannot overflow.
pub fn lp_norm(x: &Tensor, p: Norm) -> Result<f64> {
    let x = x.to_dtype(DType::F64)?.flatten_all()?.abs()?;
    if x.elem_count() == 0 {
        return Ok(0.0);
    }
    let max = x.max(0)?.to_scalar::<f64>()?;
    if !max.is_finite() {
        return Err(AdvError::invalid(
            "tensor",
            format!("norm of a tensor holding {max} (NaN or infinite values)"),
        ));
    }
    Ok(match p {
        Norm::Inf => max,
        _ if max == 0.0 => 0.0,
        Norm::L(1.0) => x.sum_all()?.to_scalar::<f64>()?,
        Norm::L(2.0) => x.sqr()?.sum_all()?.to_scalar::<f64>()?.sqrt(),
        Norm::L(p) => {
            let s = (x / max)?.powf(p)?.sum_all()?.to_scalar::<f64>()?;
            max * s.powf(1.0 / p)
        }
    })
}

/// Per-row `‖x[i]‖_p` of a batch `(N, …)`, in f64.
pub fn lp_norms_per_row(x: &Tensor, p: Norm) -> Result<Vec<f64>> {
    let n = x.dim(0)?;
    (0..n).map(|i| lp_norm(&x.get(i)?, p)).collect()
}

/// Projection onto the ℓp ball of radius `xi` (`xi ≥ 0`). Exact Euclidean projection for p ∈ {1, 2, ∞};
/// radial rescaling `v·min(1, ξ/‖v‖_p)` for other p (see the module header).
pub fn project(v: &Tensor, p: Norm, xi: f64) -> Result<Tensor> {
    check_nonneg("xi", xi)?;
    p.validate("p")?;
    match p {
        Norm::Inf => Ok(v.clamp(-xi, xi)?),
        Norm::L(1.0) => project_l1(v, xi),
        Norm::L(_) => {
            let n = lp_norm(v, p)?;
            if n <= xi {
                Ok(v.clone())
            } else {
                Ok(v.affine(xi / n, 0.0)?)
            }
        }
    }
}

/// Euclidean projection onto the ℓ1 ball (Duchi, Shalev-Shwartz, Singer, Chandra 2008): soft-threshold
/// `|v|` at the θ for which `Σ max(|vᵢ| − θ, 0) = ξ`.
fn project_l1(v: &Tensor, xi: f64) -> Result<Tensor> {
    let n1 = lp_norm(v, Norm::L(1.0))?;
    if n1 <= xi {
        return Ok(v.clone());
    }
    let mut mags: Vec<f64> = v
        .to_dtype(DType::F64)?
        .flatten_all()?
        .abs()?
        .to_vec1::<f64>()?;
    mags.sort_by(|a, b| b.total_cmp(a));
    let (mut cum, mut theta) = (0.0, 0.0);
    for (k, &m) in mags.iter().enumerate() {
        cum += m;
        let t = (cum - xi) / (k + 1) as f64;
        if m > t {
            theta = t;
        } else {
            break;
        }
    }
    let shrunk = (v.abs()?.affine(1.0, -theta)?.relu()? * v.sign()?)?;
    Ok(shrunk)
}

/// Whether perturbed inputs are clipped to the valid pixel range before they reach the model.
///
/// The official UAP and singular-fool code do **not** clip; ART and the NIPS'17 competition do. On MNIST-like
/// data clipping roughly halves universal fooling rates, so every number this crate reports carries the
/// clipping used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Clip {
    /// No clipping: `x + v` is fed as is.
    None,
    /// Clip every value of `x + v` to `[lo, hi]`.
    Range { lo: f64, hi: f64 },
}

impl Default for Clip {
    /// `[0, 1]`, the range of `nn_core` data sets.
    fn default() -> Self {
        Clip::Range { lo: 0.0, hi: 1.0 }
    }
}

impl Clip {
    /// Applies the clipping to `x`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match *self {
            Clip::None => Ok(x.clone()),
            Clip::Range { lo, hi } => Ok(x.clamp(lo, hi)?),
        }
    }

    /// Checks `lo < hi`, both finite.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Clip::None => Ok(()),
            Clip::Range { lo, hi } if lo.is_finite() && hi.is_finite() && lo < hi => Ok(()),
            Clip::Range { lo, hi } => Err(AdvError::invalid(
                "clip",
                format!("range must satisfy lo < hi (finite), got [{lo}, {hi}]"),
            )),
        }
    }

    /// A short label for reports: `clipped to [0, 1]` or `unclipped`.
    pub fn label(&self) -> String {
        match *self {
            Clip::None => "unclipped".into(),
            Clip::Range { lo, hi } => format!("clipped to [{lo}, {hi}]"),
        }
    }
}

/// A perturbation as plain data: its shape (one image `[C, H, W]` for universal perturbations) and values
/// in row-major order. Serialisable, so results carry the perturbation itself, not only its effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Perturbation {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl Perturbation {
    /// Copies a tensor (any float dtype) into a `Perturbation`.
    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        Ok(Perturbation {
            shape: t.dims().to_vec(),
            values: t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
        })
    }

    /// The values as an f32 tensor on `device`. Refused: a shape whose size does not match the values
    /// (or overflows), and non-finite values (a perturbation read from a damaged file).
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        let n = self
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if n != Some(self.values.len()) {
            return Err(AdvError::shape(
                "perturbation values",
                match n {
                    Some(n) => format!("{n} values for shape {:?}", self.shape),
                    None => format!("a shape of addressable size, not {:?}", self.shape),
                },
                format!("{} values", self.values.len()),
            ));
        }
        if let Some(i) = self.values.iter().position(|v| !v.is_finite()) {
            return Err(AdvError::invalid(
                "perturbation values",
                format!("value {i} is {}; expected finite numbers", self.values[i]),
            ));
        }
        Ok(Tensor::from_vec(
            self.values.clone(),
            self.shape.as_slice(),
            device,
        )?)
    }

    /// `‖v‖_p`.
    pub fn norm(&self, p: Norm) -> Result<f64> {
        lp_norm(&self.to_tensor(&Device::Cpu)?, p)
    }
}

/// Random perturbation of exactly `‖v‖_p = eps` with the given shape, seeded: for p = ∞ independent
/// random signs times ε (the baseline of the UAP and SV-UAP papers); for finite p a Gaussian direction
/// rescaled to ℓp norm ε.
pub fn random_perturbation(shape: &[usize], p: Norm, eps: f64, seed: u64) -> Result<Tensor> {
    check_nonneg("eps", eps)?;
    p.validate("p")?;
    let g = nn_core::grad::seeded_normal(shape, DType::F32, &Device::Cpu, seed)?;
    match p {
        Norm::Inf => Ok(g.sign()?.affine(eps, 0.0)?),
        Norm::L(_) => {
            let n = lp_norm(&g, p)?;
            if n == 0.0 {
                return Ok(g);
            }
            Ok(g.affine(eps / n, 0.0)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    #[test]
    fn parses_norms_and_rejects_bad_p() {
        assert_eq!("inf".parse::<Norm>().unwrap(), Norm::Inf);
        assert_eq!("∞".parse::<Norm>().unwrap(), Norm::Inf);
        assert_eq!("2".parse::<Norm>().unwrap(), Norm::L2);
        assert_eq!("l1".parse::<Norm>().unwrap(), Norm::L(1.0));
        for bad in ["0.5", "0", "-1", "nan", "two", ""] {
            let e = bad.parse::<Norm>().unwrap_err().to_string();
            assert!(e.contains("`p`"), "{bad}: {e}");
        }
        assert!(Norm::L(0.9).validate("q").is_err());
        assert_eq!(Norm::Inf.dual(), Norm::L(1.0));
        assert_eq!(Norm::L(1.0).dual(), Norm::Inf);
        assert_eq!(Norm::L(4.0).dual(), Norm::L(4.0 / 3.0));
        let json = serde_json::to_string(&Norm::Inf).unwrap();
        assert_eq!(json, "\"inf\"");
        assert_eq!(serde_json::from_str::<Norm>("\"5\"").unwrap(), Norm::L(5.0));
    }

    #[test]
    fn norms_match_hand_values() {
        let x = t(&[3.0, -4.0, 0.0]);
        assert_eq!(lp_norm(&x, Norm::L(1.0)).unwrap(), 7.0);
        assert!((lp_norm(&x, Norm::L2).unwrap() - 5.0).abs() < 1e-12);
        assert_eq!(lp_norm(&x, Norm::Inf).unwrap(), 4.0);
        let l3 = (27.0f64 + 64.0).powf(1.0 / 3.0);
        assert!((lp_norm(&x, Norm::L(3.0)).unwrap() - l3).abs() < 1e-9);
        // p = 200 must not overflow: value close to the max.
        let big = t(&[1e30, 1e30]);
        let n = lp_norm(&big, Norm::L(200.0)).unwrap();
        assert!((n / 1e30 - 2f64.powf(1.0 / 200.0)).abs() < 1e-5, "{n}");
        assert!(lp_norm(&t(&[f32::NAN]), Norm::L2).is_err());
    }

    #[test]
    fn projections_are_idempotent_feasible_and_non_expansive() {
        let a = nn_core::grad::seeded_normal(&[50], DType::F32, &Device::Cpu, 1).unwrap();
        let b = nn_core::grad::seeded_normal(&[50], DType::F32, &Device::Cpu, 2).unwrap();
        for (p, xi) in [
            (Norm::Inf, 0.5),
            (Norm::L2, 2.0),
            (Norm::L(1.0), 3.0),
            (Norm::L(3.0), 1.0),
        ] {
            let pa = project(&a, p, xi).unwrap();
            assert!(lp_norm(&pa, p).unwrap() <= xi * (1.0 + 1e-5), "{p}");
            let ppa = project(&pa, p, xi).unwrap();
            let diff = lp_norm(&(&ppa - &pa).unwrap(), Norm::Inf).unwrap();
            assert!(diff < 1e-5, "{p} not idempotent: {diff}");
            if matches!(p, Norm::Inf | Norm::L(1.0) | Norm::L(2.0)) {
                // Euclidean projections onto convex sets are non-expansive in ℓ2.
                let pb = project(&b, p, xi).unwrap();
                let d_in = lp_norm(&(&a - &b).unwrap(), Norm::L2).unwrap();
                let d_out = lp_norm(&(&pa - &pb).unwrap(), Norm::L2).unwrap();
                assert!(d_out <= d_in * (1.0 + 1e-6), "{p}: {d_out} > {d_in}");
            }
        }
        // Hand example for ℓ1: [3, 1] onto radius 2 → [2, 0].
        let l1 = project(&t(&[3.0, -1.0]), Norm::L(1.0), 2.0).unwrap();
        assert_eq!(l1.to_vec1::<f32>().unwrap(), vec![2.0, 0.0]);
        assert!(project(&a, Norm::Inf, -1.0).is_err());
    }

    #[test]
    fn random_perturbations_have_the_requested_norm_and_are_seeded() {
        let v = random_perturbation(&[1, 4, 4], Norm::Inf, 0.1, 3).unwrap();
        let vals = v.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(vals.iter().all(|x| (x.abs() - 0.1).abs() < 1e-7));
        let w = random_perturbation(&[1, 4, 4], Norm::Inf, 0.1, 3).unwrap();
        assert_eq!(vals, w.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let g = random_perturbation(&[30], Norm::L2, 2.0, 3).unwrap();
        assert!((lp_norm(&g, Norm::L2).unwrap() - 2.0).abs() < 1e-5);
    }

    #[test]
    fn clip_and_perturbation_round_trip() {
        let x = t(&[-0.5, 0.5, 1.5]);
        assert_eq!(
            Clip::default().apply(&x).unwrap().to_vec1::<f32>().unwrap(),
            vec![0.0, 0.5, 1.0]
        );
        assert!(Clip::Range { lo: 1.0, hi: 0.0 }.validate().is_err());
        let p = Perturbation::from_tensor(&x).unwrap();
        let back = p.to_tensor(&Device::Cpu).unwrap();
        assert_eq!(back.to_vec1::<f32>().unwrap(), vec![-0.5, 0.5, 1.5]);
        assert_eq!(p.norm(Norm::Inf).unwrap(), 1.5);
        // From a damaged file: an overflowing shape, a mismatched one, a non-finite value.
        let bad = |shape: Vec<usize>, values: Vec<f32>| {
            Perturbation { shape, values }
                .to_tensor(&Device::Cpu)
                .unwrap_err()
                .to_string()
        };
        assert!(bad(vec![1 << 40, 1 << 40], vec![0.0]).contains("addressable"));
        assert!(bad(vec![2, 2], vec![0.0; 3]).contains("4 values for shape [2, 2]"));
        assert!(bad(vec![2], vec![0.0, f32::NAN]).contains("value 1 is NaN"));
    }
}
