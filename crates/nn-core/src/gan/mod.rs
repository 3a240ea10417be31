//! GANs on 28×28 images: generator/critic pairs ([`models`]), the non-saturating GAN, WGAN and WGAN-GP
//! objectives ([`losses`]) and a seeded, checkpointed, exactly resumable trainer ([`trainer`]).
//!
//! WGAN-GP differentiates a gradient: candle 0.11 silently drops second-order terms unless the
//! environment variable `CANDLE_GRAD_DO_NOT_DETACH=1` is set before the calling thread's first backward
//! pass; [`losses::gradient_penalty`] checks this with [`crate::grad::require_second_order`] and fails
//! with an error naming the variable instead of training on a partial gradient.
//!
//! ```
//! use candle_core::Device;
//! use nn_core::data::generated::generated_digits;
//! use nn_core::gan::{GanArch, GanConfig, GanLoss, GanTrainer};
//!
//! let data = generated_digits(32, 0).unwrap();
//! let config = GanConfig { batch_size: 8, n_critic: 2, ..GanConfig::new(GanLoss::Wgan, GanArch::Mlp) };
//! let mut trainer = GanTrainer::new(config, &data.images, &Device::Cpu)?;
//! let log = trainer.step()?;
//! assert!(log.wasserstein.is_some() && log.penalty.is_none());
//! # Ok::<(), nn_core::NnError>(())
//! ```

pub mod losses;
pub mod models;
pub mod trainer;

pub use losses::GanLoss;
pub use models::{Critic, GanArch, Generator};
pub use trainer::{GanConfig, GanLog, GanTrainer, generate, load_generator};

#[cfg(test)]
mod tests;
