//! Optimisers with saveable state — Adam (PyTorch semantics, L2 weight decay 0 by default), SGD with
//! momentum (candle's `SGD` has none) and RMSProp (candle has none; the WGAN paper's optimiser) — and
//! per-epoch learning-rate schedules.
//!
//! Parameters are taken from a [`VarMap`] sorted by name, so state and updates do not depend on hash
//! order. Variables that receive no gradient (batch-norm running statistics) are skipped.
//!
//! Adam:  `g ← ∇θ + λθ;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  θ ← θ − η·m̂/(√v̂ + ε)` with
//! `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`.
//! SGD:   `g ← ∇θ + λθ;  b ← μb + g;  θ ← θ − η·b` (Nesterov: `θ ← θ − η(g + μb)`), dampening 0.
//! RMSProp (PyTorch semantics, not centred, no momentum): `g ← ∇θ + λθ;  v ← αv + (1−α)g²;
//! θ ← θ − η·g/(√v + ε)`.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::ops::update::{self, Pass};
use crate::{NnError, Result};

/// Which optimiser, with its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OptimizerConfig {
    /// Adam (Kingma & Ba 2015).
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
    /// Stochastic gradient descent with (heavy-ball or Nesterov) momentum.
    Sgd {
        lr: f64,
        momentum: f64,
        weight_decay: f64,
        nesterov: bool,
    },
    /// RMSProp (Tieleman & Hinton 2012) as PyTorch's `torch.optim.RMSprop` with `centered=False`,
    /// `momentum=0`.
    RmsProp {
        lr: f64,
        /// Smoothing constant α of the squared-gradient average (PyTorch default 0.99).
        alpha: f64,
        eps: f64,
        weight_decay: f64,
    },
}

impl OptimizerConfig {
    /// Adam with β = (0.9, 0.999), ε = 1e-8 and no weight decay.
    pub fn adam(lr: f64) -> Self {
        OptimizerConfig::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// SGD with heavy-ball `momentum` and no weight decay.
    pub fn sgd(lr: f64, momentum: f64) -> Self {
        OptimizerConfig::Sgd {
            lr,
            momentum,
            weight_decay: 0.0,
            nesterov: false,
        }
    }

    /// RMSProp with PyTorch's defaults α = 0.99, ε = 1e-8 and no weight decay.
    pub fn rmsprop(lr: f64) -> Self {
        OptimizerConfig::RmsProp {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::RmsProp { lr, .. } => *lr,
        }
    }

    /// Checks every hyper-parameter once.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(NnError::invalid(name, format!("must be positive, got {v}")))
            }
        };
        let unit = |name: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(NnError::invalid(
                    name,
                    format!("must be in [0, 1), got {v}"),
                ))
            }
        };
        let non_negative = |name: &str, v: f64| {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(NnError::invalid(name, format!("must be ≥ 0, got {v}")))
            }
        };
        match *self {
            OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                positive("lr", lr)?;
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                positive("eps", eps)?;
                non_negative("weight_decay", weight_decay)
            }
            OptimizerConfig::Sgd {
                lr,
                momentum,
                weight_decay,
                nesterov,
            } => {
                positive("lr", lr)?;
                unit("momentum", momentum)?;
                if nesterov && momentum == 0.0 {
                    return Err(NnError::invalid(
                        "nesterov",
                        "Nesterov momentum needs momentum > 0",
                    ));
                }
                non_negative("weight_decay", weight_decay)
            }
            OptimizerConfig::RmsProp {
                lr,
                alpha,
                eps,
                weight_decay,
            } => {
                positive("lr", lr)?;
                unit("alpha", alpha)?;
                positive("eps", eps)?;
                non_negative("weight_decay", weight_decay)
            }
        }
    }
}

/// Learning rate as a function of the epoch (0-based).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LrSchedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step { every: usize, gamma: f64 },
    /// Multiply by `gamma` every epoch (Zhang et al. use 0.95).
    Exponential { gamma: f64 },
    /// Cosine decay from the base rate to `min_lr` over `epochs` epochs.
    Cosine { epochs: usize, min_lr: f64 },
}

impl LrSchedule {
    /// Checks the schedule once, for every caller: a decay factor `gamma` in `(0, 1]` (a negative one
    /// would flip the sign of the rate every step, 0 would stop learning, > 1 would grow it without
    /// bound), a step period of at least one epoch, a finite `min_lr ≥ 0`. `Cosine { epochs: 0 }` means
    /// "the run's epoch budget", which the caller fills in.
    pub fn validate(&self) -> Result<()> {
        match self.problem() {
            None => Ok(()),
            Some(reason) => Err(NnError::invalid("schedule", reason)),
        }
    }

    /// What is wrong with the schedule, if anything (the reason [`LrSchedule::validate`] reports).
    fn problem(&self) -> Option<String> {
        let decay = |gamma: f64| {
            (!(gamma > 0.0 && gamma <= 1.0))
                .then(|| format!("decay factor {gamma}: expected a number in (0, 1]"))
        };
        match *self {
            LrSchedule::Constant => None,
            LrSchedule::Exponential { gamma } => decay(gamma),
            LrSchedule::Step { every: 0, .. } => {
                Some("step period 0: expected at least 1 epoch".into())
            }
            LrSchedule::Step { gamma, .. } => decay(gamma),
            LrSchedule::Cosine { min_lr, .. } => (!(min_lr.is_finite() && min_lr >= 0.0))
                .then(|| format!("cosine min_lr {min_lr}: expected a finite number ≥ 0")),
        }
    }

    /// The learning rate at `epoch` for base rate `base`.
    pub fn lr_at(&self, base: f64, epoch: usize) -> f64 {
        match *self {
            LrSchedule::Constant => base,
            LrSchedule::Step { every, gamma } => base * gamma.powi((epoch / every.max(1)) as i32),
            LrSchedule::Exponential { gamma } => base * gamma.powi(epoch as i32),
            LrSchedule::Cosine { epochs, min_lr } => {
                let t = (epoch as f64 / epochs.max(1) as f64).min(1.0);
                min_lr + 0.5 * (base - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

/// `constant`, `exp:GAMMA`, `step:EVERY:GAMMA` or `cosine` (to 0 over the run's epochs), validated.
impl std::str::FromStr for LrSchedule {
    type Err = NnError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: String| NnError::invalid("schedule", format!("`{s}`: {why}"));
        let number = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| bad(format!("`{v}` is not a number")))
        };
        let schedule = match s.split(':').collect::<Vec<_>>().as_slice() {
            ["constant"] => LrSchedule::Constant,
            ["exp", g] => LrSchedule::Exponential { gamma: number(g)? },
            ["step", every, g] => LrSchedule::Step {
                every: every
                    .parse()
                    .map_err(|_| bad(format!("`{every}` is not a whole number")))?,
                gamma: number(g)?,
            },
            ["cosine"] => LrSchedule::Cosine {
                epochs: 0,
                min_lr: 0.0,
            },
            _ => {
                return Err(bad(
                    "expected constant, exp:GAMMA, step:EVERY:GAMMA or cosine".into(),
                ));
            }
        };
        match schedule.problem() {
            None => Ok(schedule),
            Some(reason) => Err(bad(reason)),
        }
    }
}

/// `g + λθ` (L2 weight decay added to the gradient), or `g` itself when `λ = 0`.
fn with_weight_decay(grad: &Tensor, theta: &Tensor, weight_decay: f64) -> Result<Tensor> {
    if weight_decay > 0.0 {
        Ok((grad + (theta * weight_decay)?)?)
    } else {
        Ok(grad.clone())
    }
}

/// One update of `theta` in place by the fused CPU passes of [`crate::ops::update`] — the same formulas
/// as the generic tensor path of [`Optimizer::step`], in f64 arithmetic, without temporaries.
fn fused_step(
    config: &OptimizerConfig,
    lr: f64,
    t: i32,
    theta: &Tensor,
    grad: &Tensor,
    s1: &Tensor,
    s2: &Tensor,
) -> Result<()> {
    match *config {
        OptimizerConfig::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
            ..
        } => {
            let moment = |decay: f64, square| Pass::Moment {
                decay,
                weight: 1.0 - decay,
                square,
                weight_decay,
            };
            update::apply(moment(beta1, false), s1, grad, theta)?;
            update::apply(moment(beta2, true), s2, grad, theta)?;
            let pass = Pass::AdamParam {
                lr,
                bc1: 1.0 - beta1.powi(t),
                bc2: 1.0 - beta2.powi(t),
                eps,
            };
            update::apply(pass, theta, s1, s2)?;
        }
        OptimizerConfig::Sgd {
            momentum,
            weight_decay,
            nesterov,
            ..
        } => {
            if momentum > 0.0 {
                let pass = Pass::Moment {
                    decay: momentum,
                    weight: 1.0,
                    square: false,
                    weight_decay,
                };
                update::apply(pass, s1, grad, theta)?;
            }
            let pass = Pass::SgdParam {
                lr,
                momentum,
                nesterov,
                weight_decay,
            };
            update::apply(pass, theta, s1, grad)?;
        }
        OptimizerConfig::RmsProp {
            alpha,
            eps,
            weight_decay,
            ..
        } => {
            let pass = Pass::Moment {
                decay: alpha,
                weight: 1.0 - alpha,
                square: true,
                weight_decay,
            };
            update::apply(pass, s1, grad, theta)?;
            let pass = Pass::RmsParam {
                lr,
                eps,
                weight_decay,
            };
            update::apply(pass, theta, s1, grad)?;
        }
    }
    Ok(())
}

/// A first-order optimiser over the variables of a [`VarMap`], with state that can be saved and restored.
pub struct Optimizer {
    config: OptimizerConfig,
    params: Vec<(String, Var)>,
    /// Adam: first and second moments; SGD: momentum buffer (second entry unused); RMSProp: the
    /// squared-gradient average (first entry).
    state: Vec<(Tensor, Tensor)>,
    steps: u64,
    lr: f64,
    /// Update CPU f32/f64 parameters in place by the fused passes (default true).
    fused: bool,
}

impl Optimizer {
    /// An optimiser for every variable in `varmap` (sorted by name).
    pub fn new(config: OptimizerConfig, varmap: &VarMap) -> Result<Self> {
        config.validate()?;
        let mut params: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .map_err(|_| NnError::invalid("varmap", "lock poisoned"))?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let state = params
            .iter()
            .map(|(_, v)| Ok((v.zeros_like()?, v.zeros_like()?)))
            .collect::<Result<Vec<_>>>()?;
        let lr = config.lr();
        Ok(Self {
            config,
            params,
            state,
            steps: 0,
            lr,
            fused: true,
        })
    }

    /// Chooses between the fused in-place CPU update (the default) and the generic tensor-op path that
    /// runs on every device; both compute the same formulas (the tests compare them).
    pub fn with_fused_updates(mut self, fused: bool) -> Self {
        self.fused = fused;
        self
    }

    /// Back-propagates `loss` and applies one update.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }

    /// Applies one update from `grads`.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.steps += 1;
        let t = self.steps as i32;
        for ((_, var), (s1, s2)) in self.params.iter().zip(self.state.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            // A variable's gradient keeps its backward graph, and through it the step's whole forward
            // graph; optimiser state built from it would chain every step's graph to the next and leak
            // memory linearly in the number of steps. Detach the gradient, the parameter and the state.
            let grad = &grad.detach();
            let theta = &var.as_tensor().detach();
            if self.fused
                && update::updatable(theta)
                && update::updatable(s1)
                && update::updatable(s2)
            {
                fused_step(&self.config, self.lr, t, theta, grad, s1, s2)?;
                continue;
            }
            match self.config {
                OptimizerConfig::Adam {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    ..
                } => {
                    let g = with_weight_decay(grad, theta, weight_decay)?;
                    let m = ((&*s1 * beta1)? + (&g * (1.0 - beta1))?)?;
                    let v = ((&*s2 * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
                    let m_hat = (&m / (1.0 - beta1.powi(t)))?;
                    let v_hat = (&v / (1.0 - beta2.powi(t)))?;
                    let update = (m_hat / (v_hat.sqrt()? + eps)?)?;
                    var.set(&(theta - (update * self.lr)?)?)?;
                    *s1 = m.detach();
                    *s2 = v.detach();
                }
                OptimizerConfig::Sgd {
                    momentum,
                    weight_decay,
                    nesterov,
                    ..
                } => {
                    let g = with_weight_decay(grad, theta, weight_decay)?;
                    let direction = if momentum > 0.0 {
                        let b = ((&*s1 * momentum)? + &g)?;
                        let d = if nesterov {
                            (&g + (&b * momentum)?)?
                        } else {
                            b.clone()
                        };
                        *s1 = b.detach();
                        d
                    } else {
                        g
                    };
                    var.set(&(theta - (direction * self.lr)?)?)?;
                }
                OptimizerConfig::RmsProp {
                    alpha,
                    eps,
                    weight_decay,
                    ..
                } => {
                    let g = with_weight_decay(grad, theta, weight_decay)?;
                    let v = ((&*s1 * alpha)? + (g.sqr()? * (1.0 - alpha))?)?;
                    let update = (&g / (v.sqrt()? + eps)?)?;
                    var.set(&(theta - (update * self.lr)?)?)?;
                    *s1 = v.detach();
                }
            }
        }
        Ok(())
    }

    /// The current learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate (schedules call this once per epoch).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Number of updates applied so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// The optimiser state as named tensors (`optim.m.<param>`, `optim.v.<param>`), for checkpoints.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for ((name, _), (s1, s2)) in self.params.iter().zip(&self.state) {
            out.insert(format!("optim.m.{name}"), s1.clone());
            out.insert(format!("optim.v.{name}"), s2.clone());
        }
        out
    }

    /// Restores what [`Optimizer::state_tensors`] saved, after `steps` updates.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        for ((name, var), (s1, s2)) in self.params.iter().zip(self.state.iter_mut()) {
            for (slot, key) in [
                (&mut *s1, format!("optim.m.{name}")),
                (&mut *s2, format!("optim.v.{name}")),
            ] {
                let t = tensors.get(&key).ok_or_else(|| {
                    NnError::invalid("optimizer state", format!("missing `{key}`"))
                })?;
                if t.dims() != var.dims() {
                    return Err(NnError::Shape {
                        context: format!("optimizer state `{key}`"),
                        expected: format!("{:?}", var.dims()),
                        got: format!("{:?}", t.dims()),
                    });
                }
                *slot = t.to_dtype(var.dtype())?.to_device(var.device())?;
            }
        }
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    fn scalar_varmap(value: f64) -> (VarMap, Var) {
        let varmap = VarMap::new();
        let t = varmap
            .get(
                1,
                "w",
                candle_nn::Init::Const(value),
                DType::F64,
                &Device::Cpu,
            )
            .unwrap();
        let var = varmap.data().lock().unwrap().get("w").unwrap().clone();
        assert_eq!(t.to_vec1::<f64>().unwrap(), vec![value]);
        (varmap, var)
    }

    fn value(var: &Var) -> f64 {
        var.as_tensor().to_vec1::<f64>().unwrap()[0]
    }

    #[test]
    fn adam_matches_hand_computation() {
        // loss = w², w₀ = 1: g₁ = 2, m₁ = 0.2, v₁ = 0.004, m̂ = 2, v̂ = 4 → w₁ = 1 − 0.1·2/(2+1e-8).
        let (varmap, w) = scalar_varmap(1.0);
        let mut opt = Optimizer::new(OptimizerConfig::adam(0.1), &varmap).unwrap();
        opt.backward_step(&w.as_tensor().sqr().unwrap().sum_all().unwrap())
            .unwrap();
        let w1 = 1.0 - 0.1 * 2.0 / (2.0 + 1e-8);
        assert!((value(&w) - w1).abs() < 1e-12);
        // Step 2: g₂ = 2w₁; m₂ = 0.9·0.2 + 0.1·g₂; v₂ = 0.999·0.004 + 0.001·g₂².
        opt.backward_step(&w.as_tensor().sqr().unwrap().sum_all().unwrap())
            .unwrap();
        let g2 = 2.0 * w1;
        let m2 = 0.9 * 0.2 + 0.1 * g2;
        let v2 = 0.999 * 0.004 + 0.001 * g2 * g2;
        let w2 = w1 - 0.1 * (m2 / (1.0 - 0.81)) / ((v2 / (1.0 - 0.999f64.powi(2))).sqrt() + 1e-8);
        assert!((value(&w) - w2).abs() < 1e-12, "{} vs {w2}", value(&w));
    }

    #[test]
    fn sgd_momentum_matches_hand_computation() {
        // loss = 3w, g = 3 always: b₁ = 3, w₁ = 1 − 0.3; b₂ = 0.9·3 + 3 = 5.7, w₂ = w₁ − 0.57.
        let (varmap, w) = scalar_varmap(1.0);
        let mut opt = Optimizer::new(OptimizerConfig::sgd(0.1, 0.9), &varmap).unwrap();
        for _ in 0..2 {
            opt.backward_step(&(w.as_tensor() * 3.0).unwrap().sum_all().unwrap())
                .unwrap();
        }
        assert!((value(&w) - (1.0 - 0.3 - 0.57)).abs() < 1e-12);
        // Weight decay 0.5 on loss = w: g = 1 + 0.5·w = 2.
        let (varmap, w) = scalar_varmap(2.0);
        let cfg = OptimizerConfig::Sgd {
            lr: 0.1,
            momentum: 0.0,
            weight_decay: 0.5,
            nesterov: false,
        };
        let mut opt = Optimizer::new(cfg, &varmap).unwrap();
        opt.backward_step(&w.as_tensor().sum_all().unwrap())
            .unwrap();
        assert!(
            (value(&w) - (2.0 - 0.1 * 2.0)).abs() < 1e-12,
            "{}",
            value(&w)
        );
    }

    #[test]
    fn rmsprop_matches_hand_computation() {
        // loss = w², w₀ = 1, α = 0.9: g₁ = 2, v₁ = 0.1·4 = 0.4, w₁ = 1 − 0.01·2/(√0.4 + 1e-8);
        // g₂ = 2w₁, v₂ = 0.9·0.4 + 0.1·g₂², w₂ = w₁ − 0.01·g₂/(√v₂ + 1e-8).
        let (varmap, w) = scalar_varmap(1.0);
        let cfg = OptimizerConfig::RmsProp {
            lr: 0.01,
            alpha: 0.9,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        let mut opt = Optimizer::new(cfg, &varmap).unwrap();
        let w1 = 1.0 - 0.01 * 2.0 / (0.4f64.sqrt() + 1e-8);
        let g2 = 2.0 * w1;
        let v2 = 0.9 * 0.4 + 0.1 * g2 * g2;
        let w2 = w1 - 0.01 * g2 / (v2.sqrt() + 1e-8);
        for expected in [w1, w2] {
            opt.backward_step(&w.as_tensor().sqr().unwrap().sum_all().unwrap())
                .unwrap();
            assert!(
                (value(&w) - expected).abs() < 1e-14,
                "{} vs {expected}",
                value(&w)
            );
        }
        // The state round-trips like the others'.
        let st = opt.state_tensors();
        assert!((st["optim.m.w"].to_vec1::<f64>().unwrap()[0] - v2).abs() < 1e-14);
        let err = OptimizerConfig::RmsProp {
            lr: 0.01,
            alpha: 1.0,
            eps: 1e-8,
            weight_decay: 0.0,
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("alpha"), "{err}");
    }

    #[test]
    fn restored_state_continues_identically() {
        let run = |split: Option<usize>| {
            let (varmap, w) = scalar_varmap(1.5);
            let mut opt = Optimizer::new(OptimizerConfig::adam(0.05), &varmap).unwrap();
            for i in 0..6 {
                if Some(i) == split {
                    let saved = opt.state_tensors();
                    let steps = opt.steps();
                    let mut fresh = Optimizer::new(OptimizerConfig::adam(0.05), &varmap).unwrap();
                    fresh.load_state(&saved, steps).unwrap();
                    opt = fresh;
                }
                opt.backward_step(&w.as_tensor().powf(4.0).unwrap().sum_all().unwrap())
                    .unwrap();
            }
            value(&w)
        };
        assert_eq!(run(None), run(Some(3)));
        // Without the state the continuation differs: the test can fail.
        let (varmap, w) = scalar_varmap(1.5);
        let mut opt = Optimizer::new(OptimizerConfig::adam(0.05), &varmap).unwrap();
        for i in 0..6 {
            if i == 3 {
                opt = Optimizer::new(OptimizerConfig::adam(0.05), &varmap).unwrap();
            }
            opt.backward_step(&w.as_tensor().powf(4.0).unwrap().sum_all().unwrap())
                .unwrap();
        }
        assert_ne!(value(&w), run(None));
    }

    #[test]
    fn state_and_parameters_do_not_keep_the_step_graph() {
        // Regression: optimiser state built from undetached gradients chained every step's forward
        // graph to the next (LeNet grew by ~13 MB per step and was OOM-killed on a 60k epoch).
        for config in [OptimizerConfig::adam(0.1), OptimizerConfig::sgd(0.1, 0.9)] {
            let varmap = VarMap::new();
            let dev = &Device::Cpu;
            let w1 = varmap
                .get((3, 4), "w1", candle_nn::Init::Const(0.5), DType::F64, dev)
                .unwrap();
            let w2 = varmap
                .get((1, 3), "w2", candle_nn::Init::Const(0.25), DType::F64, dev)
                .unwrap();
            let mut opt = Optimizer::new(config, &varmap).unwrap();
            let x = Tensor::ones((4, 2), DType::F64, dev).unwrap();
            for _ in 0..3 {
                let h = w1.matmul(&x).unwrap().tanh().unwrap();
                let loss = w2.matmul(&h).unwrap().sqr().unwrap().sum_all().unwrap();
                opt.backward_step(&loss).unwrap();
            }
            for (name, t) in opt.state_tensors() {
                assert!(!t.track_op(), "{name} keeps a computation graph");
            }
            for (name, v) in varmap.data().lock().unwrap().iter() {
                assert!(v.is_variable(), "{name} is no longer a variable");
            }
        }
    }

    #[test]
    fn fused_updates_equal_the_generic_tensor_path() {
        let configs = [
            OptimizerConfig::Adam {
                lr: 0.01,
                beta1: 0.8,
                beta2: 0.99,
                eps: 1e-6,
                weight_decay: 0.1,
            },
            OptimizerConfig::Sgd {
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 0.01,
                nesterov: true,
            },
            OptimizerConfig::Sgd {
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 0.0,
                nesterov: false,
            },
            OptimizerConfig::sgd(0.05, 0.0),
            OptimizerConfig::RmsProp {
                lr: 0.01,
                alpha: 0.9,
                eps: 1e-8,
                weight_decay: 0.2,
            },
        ];
        let dev = &Device::Cpu;
        for config in configs {
            let run = |fused: bool| {
                let varmap = VarMap::new();
                // (3, 4) from a transposed view: the gradient of w.t() is not contiguous.
                let w = varmap
                    .get((4, 3), "w", candle_nn::Init::Const(0.0), DType::F64, dev)
                    .unwrap();
                let init = crate::grad::seeded_normal(&[4, 3], DType::F64, dev, 7).unwrap();
                varmap.data().lock().unwrap()["w"].set(&init).unwrap();
                let mut opt = Optimizer::new(config.clone(), &varmap)
                    .unwrap()
                    .with_fused_updates(fused);
                let x = Tensor::arange(0f64, 6.0, dev)
                    .unwrap()
                    .reshape((2, 3))
                    .unwrap();
                let w0 = w.flatten_all().unwrap().to_vec1::<f64>().unwrap();
                for _ in 0..5 {
                    let loss = x
                        .matmul(&w.t().unwrap())
                        .unwrap()
                        .tanh()
                        .unwrap()
                        .sum_all()
                        .unwrap();
                    opt.backward_step(&loss).unwrap();
                }
                (
                    w0,
                    w.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
                    opt.state_tensors(),
                )
            };
            let (w0a, fused, sa) = run(true);
            let (w0b, generic, sb) = run(false);
            assert_eq!(w0a, w0b);
            assert_ne!(fused, w0a, "{config:?}: no update happened");
            for (a, b) in fused.iter().zip(&generic) {
                assert!(
                    (a - b).abs() <= 1e-13 * b.abs().max(1.0),
                    "{config:?}: {a} vs {b}"
                );
            }
            for (k, t) in &sa {
                let (a, b) = (
                    t.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
                    sb[k].flatten_all().unwrap().to_vec1::<f64>().unwrap(),
                );
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() <= 1e-13 * y.abs().max(1.0), "{config:?} {k}");
                }
            }
        }
    }

    #[test]
    fn schedules_and_validation() {
        assert_eq!(
            LrSchedule::Step {
                every: 2,
                gamma: 0.5
            }
            .lr_at(1.0, 5),
            0.25
        );
        assert!(
            (LrSchedule::Exponential { gamma: 0.95 }.lr_at(0.1, 2) - 0.1 * 0.9025).abs() < 1e-15
        );
        let cos = LrSchedule::Cosine {
            epochs: 10,
            min_lr: 0.0,
        };
        assert_eq!(cos.lr_at(1.0, 0), 1.0);
        assert!((cos.lr_at(1.0, 5) - 0.5).abs() < 1e-12);
        assert!(cos.lr_at(1.0, 10).abs() < 1e-12);
        let err = OptimizerConfig::sgd(0.1, 1.5).validate().unwrap_err();
        assert!(err.to_string().contains("momentum"), "{err}");
        assert!(OptimizerConfig::adam(-1.0).validate().is_err());
    }
}
