//! Adversarial examples and defences on [`nn_core`] models: FGSM, PGD, DeepFool, universal adversarial
//! perturbations (Moosavi-Dezfooli et al., CVPR 2017), universal perturbations from (p,q)-singular vectors
//! of hidden-layer Jacobians (SV-UAP; Khrulkov & Oseledets, CVPR 2018), input-transform and noise-training
//! defences, and the Papernot substitute black-box attack.
//!
//! * [`net`]: [`Net`], a classifier as named layers with an **exact** batched `J v` (frozen-mask linearised
//!   forward) and `Jᵀ u` (backward) for every hidden layer; every nn-core model converts to one.
//! * [`power`]: the generalised power method for (p,q)-singular vectors; [`power::sv_uap`].
//! * [`attacks`]: FGSM, PGD, DeepFool. [`universal`]: fooling rate, UAP, universal PGD.
//! * [`defences`]: bit depth, median, JPEG-style, Gaussian noise, noise training, substitute attack.
//! * [`torchvision`]: VGG-16/19 and ResNet-50 loading torchvision-layout safetensors.
//! * [`norm`]: ℓp norms, projections, clipping, the serialisable [`norm::Perturbation`].
//!
//! Units: ε and ξ are in the model's input units — [0, 1] for nn-core data sets, so the papers' ℓ∞ budget
//! ξ = 10 on 0..255 images is ε = 10/255 ≈ 0.039.
//!
//! ```
//! use adversarial::{net::Net, power::{sv_uap, PowerConfig}, universal::fooling_rate, norm::Clip};
//! use candle_core::{DType, Device};
//! use candle_nn::VarMap;
//! use nn_core::data::generated::generated_digits;
//! use nn_core::models::{build_model, InputSpec, ModelConfig, ModelKind, SeededVarMap};
//!
//! let data = generated_digits(16, 0)?;
//! let config = ModelConfig::new(ModelKind::Lenet, InputSpec::new(1, 28, 28, 10));
//! let varmap = VarMap::new();
//! build_model(&config, SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu))?;
//! let net = Net::from_nn_core(&config, &varmap)?;
//! let r = sv_uap(&net, &data.images.narrow(0, 0, 8)?, "pool2", &PowerConfig { max_iter: 3, ..Default::default() })?;
//! let v = r.vector.to_tensor(&Device::Cpu)?.affine(0.1, 0.0)?; // ‖v‖_∞ = 0.1
//! let report = fooling_rate(&net, &data.images.narrow(0, 8, 8)?, &v, Clip::default())?;
//! assert!(report.fooling_rate >= 0.0 && report.fooling_rate <= 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod attacks;
pub mod defences;
pub mod error;
mod linearize;
pub mod net;
pub mod norm;
pub mod power;
pub mod torchvision;
pub mod universal;

pub use error::{AdvError, Result};
pub use net::{Linearization, LogitModel, Net};
pub use norm::{Clip, Norm, Perturbation};
