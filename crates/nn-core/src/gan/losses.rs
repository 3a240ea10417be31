//! The three GAN objectives and their pieces, as functions of critic scores.
//!
//! With critic scores `r = D(x)` on real images and `f = D(G(z))` on generated ones (batch means `E`):
//!
//! * non-saturating GAN (Goodfellow et al. 2014), binary cross-entropy with logits:
//!   critic `E softplus(−r) + E softplus(f)` (= `−E log σ(r) − E log(1 − σ(f))`), generator
//!   `E softplus(−f)` (= `−E log σ(f)`), with the stable `softplus(x) = max(x, 0) + log(1 + e^{−|x|})`;
//! * WGAN (Arjovsky et al. 2017): critic `E f − E r`, generator `−E f`, critic weights clipped to
//!   `[−c, c]` after each critic update ([`clip_weights`]);
//! * WGAN-GP (Gulrajani et al. 2017): the WGAN losses plus `λ·E (‖∇_x̂ D(x̂)‖₂ − 1)²` on the critic, with
//!   `x̂ = εx + (1 − ε)x̃`, `ε ~ U[0, 1]` per sample ([`gradient_penalty`]; needs second-order gradients).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use nn_core::gan::losses::{ns_critic_loss, wgan_critic_loss};
//!
//! let r = Tensor::new(&[0f64, 0.], &Device::Cpu)?;
//! let f = Tensor::new(&[0f64, 0.], &Device::Cpu)?;
//! // σ(0) = 1/2 on both sides: 2·ln 2.
//! let l = ns_critic_loss(&r, &f)?.to_scalar::<f64>()?;
//! assert!((l - 2.0 * 2f64.ln()).abs() < 1e-15);
//! assert_eq!(wgan_critic_loss(&r, &f)?.to_scalar::<f64>()?, 0.0);
//! # Ok::<(), nn_core::NnError>(())
//! ```

use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::gan::models::Critic;
use crate::{NnError, Result};

/// Which objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum GanLoss {
    /// Non-saturating GAN (binary cross-entropy with logits).
    Gan,
    /// Wasserstein GAN with weight clipping.
    Wgan,
    /// Wasserstein GAN with gradient penalty.
    WganGp,
}

impl GanLoss {
    /// Every loss, in the order the CLI lists them.
    pub const ALL: [GanLoss; 3] = [GanLoss::Gan, GanLoss::Wgan, GanLoss::WganGp];

    /// `"gan"`, `"wgan"` or `"wgan-gp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            GanLoss::Gan => "gan",
            GanLoss::Wgan => "wgan",
            GanLoss::WganGp => "wgan-gp",
        }
    }
}

impl std::fmt::Display for GanLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for GanLoss {
    type Err = NnError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gan" => Ok(GanLoss::Gan),
            "wgan" => Ok(GanLoss::Wgan),
            "wgan-gp" => Ok(GanLoss::WganGp),
            _ => Err(NnError::invalid(
                "loss",
                format!("expected gan, wgan or wgan-gp, got `{s}`"),
            )),
        }
    }
}

/// `softplus(x) = log(1 + eˣ) = max(x, 0) + log(1 + e^{−|x|})`, elementwise, finite for every finite x.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok((x.relu()? + tail)?)
}

fn check_scores(name: &str, x: &Tensor) -> Result<()> {
    if x.rank() != 1 || x.dims()[0] == 0 {
        return Err(NnError::Shape {
            context: format!("critic scores `{name}`"),
            expected: "[N] with N ≥ 1".into(),
            got: format!("{:?}", x.dims()),
        });
    }
    Ok(())
}

/// Non-saturating GAN critic loss `E softplus(−r) + E softplus(f)` (scalar).
pub fn ns_critic_loss(real: &Tensor, fake: &Tensor) -> Result<Tensor> {
    check_scores("real", real)?;
    check_scores("fake", fake)?;
    Ok((softplus(&real.neg()?)?.mean_all()? + softplus(fake)?.mean_all()?)?)
}

/// Non-saturating generator loss `E softplus(−f)` (scalar).
pub fn ns_generator_loss(fake: &Tensor) -> Result<Tensor> {
    check_scores("fake", fake)?;
    Ok(softplus(&fake.neg()?)?.mean_all()?)
}

/// Wasserstein critic loss `E f − E r` (scalar); its negative estimates the Wasserstein-1 distance.
pub fn wgan_critic_loss(real: &Tensor, fake: &Tensor) -> Result<Tensor> {
    check_scores("real", real)?;
    check_scores("fake", fake)?;
    Ok((fake.mean_all()? - real.mean_all()?)?)
}

/// Wasserstein generator loss `−E f` (scalar).
pub fn wgan_generator_loss(fake: &Tensor) -> Result<Tensor> {
    check_scores("fake", fake)?;
    Ok(fake.mean_all()?.neg()?)
}

/// The WGAN-GP penalty `E (‖∇_x̂ D(x̂)‖₂ − 1)²` with `x̂ = εx + (1 − ε)x̃` (per-sample `eps`, shape `[N]`
/// with values in `[0, 1]`), the norm over all input dimensions of a sample. Returns a scalar whose
/// gradient with respect to the critic's parameters is exact (double backward).
///
/// Fails with an error naming `CANDLE_GRAD_DO_NOT_DETACH` when second-order gradients are disabled in
/// the calling thread ([`crate::grad::require_second_order`]): candle would otherwise silently drop part
/// of the penalty's gradient.
pub fn gradient_penalty(
    critic: &Critic,
    real: &Tensor,
    fake: &Tensor,
    eps: &Tensor,
) -> Result<Tensor> {
    crate::grad::require_second_order()?;
    if real.dims() != fake.dims() {
        return Err(NnError::Shape {
            context: "gradient penalty: fake images".into(),
            expected: format!("{:?} (the real batch's shape)", real.dims()),
            got: format!("{:?}", fake.dims()),
        });
    }
    let n = real.dims().first().copied().unwrap_or(0);
    if eps.dims() != [n] {
        return Err(NnError::Shape {
            context: "gradient penalty: eps".into(),
            expected: format!("[{n}]"),
            got: format!("{:?}", eps.dims()),
        });
    }
    let mut bshape = vec![n];
    bshape.extend(std::iter::repeat_n(1, real.rank() - 1));
    let e = eps.reshape(bshape)?.to_dtype(real.dtype())?;
    let mixed = (real.detach().broadcast_mul(&e)? + fake.detach().broadcast_mul(&(1.0 - &e)?)?)?;
    let x_hat = Var::from_tensor(&mixed)?;
    let grads = critic.forward(x_hat.as_tensor())?.sum_all()?.backward()?;
    let g = grads.get(x_hat.as_tensor()).ok_or_else(|| {
        NnError::invalid("critic", "the critic's score does not depend on its input")
    })?;
    let norm = g.flatten_from(1)?.sqr()?.sum(1)?.sqrt()?;
    Ok((norm - 1.0)?.sqr()?.mean_all()?)
}

/// Clamps every variable of `varmap` to `[−c, c]` (WGAN's Lipschitz constraint); `c` must be > 0.
pub fn clip_weights(varmap: &VarMap, c: f64) -> Result<()> {
    if !(c > 0.0 && c.is_finite()) {
        return Err(NnError::invalid(
            "clip",
            format!("must be a finite number > 0, got {c}"),
        ));
    }
    let data = varmap
        .data()
        .lock()
        .map_err(|_| NnError::invalid("varmap", "lock poisoned"))?;
    for var in data.values() {
        var.set(&var.as_tensor().detach().clamp(-c, c)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    fn t(v: &[f64]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    fn s(x: Result<Tensor>) -> f64 {
        x.unwrap().to_scalar::<f64>().unwrap()
    }

    #[test]
    fn losses_on_hand_computed_cases() {
        let sp = |x: f64| (1.0 + x.exp()).ln();
        // r = (2, −1), f = (0.5, −3).
        let (r, f) = (t(&[2.0, -1.0]), t(&[0.5, -3.0]));
        let want = 0.5 * (sp(-2.0) + sp(1.0)) + 0.5 * (sp(0.5) + sp(-3.0));
        assert!((s(ns_critic_loss(&r, &f)) - want).abs() < 1e-15);
        let want = 0.5 * (sp(-0.5) + sp(3.0));
        assert!((s(ns_generator_loss(&f)) - want).abs() < 1e-15);
        assert!((s(wgan_critic_loss(&r, &f)) - (-1.25 - 0.5)).abs() < 1e-15);
        assert!((s(wgan_generator_loss(&f)) - 1.25).abs() < 1e-15);
        // softplus is stable where log(1 + eˣ) overflows or loses everything.
        let v = softplus(&t(&[800.0, -800.0, 0.0]))
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        assert_eq!(v[0], 800.0);
        assert_eq!(v[1], 0.0);
        assert!((v[2] - 2f64.ln()).abs() < 1e-16);
        // Bad shapes are errors naming the argument.
        let err = wgan_critic_loss(&t(&[]), &f).unwrap_err().to_string();
        assert!(err.contains("real"), "{err}");
        let err = ns_generator_loss(&Tensor::zeros((2, 1), DType::F64, &Device::Cpu).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("fake"), "{err}");
    }

    #[test]
    fn clip_weights_clamps_and_validates() {
        let varmap = VarMap::new();
        varmap
            .get(
                3,
                "w",
                candle_nn::Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
                DType::F64,
                &Device::Cpu,
            )
            .unwrap();
        let var = varmap.data().lock().unwrap()["w"].clone();
        var.set(&t(&[0.5, -0.002, -3.0])).unwrap();
        clip_weights(&varmap, 0.01).unwrap();
        assert_eq!(
            var.as_tensor().to_vec1::<f64>().unwrap(),
            vec![0.01, -0.002, -0.01]
        );
        assert!(clip_weights(&varmap, 0.0).is_err());
        assert!(clip_weights(&varmap, f64::NAN).is_err());
        assert!("wgan-gp".parse::<GanLoss>().unwrap() == GanLoss::WganGp);
        assert!("lsgan".parse::<GanLoss>().is_err());
    }
}
