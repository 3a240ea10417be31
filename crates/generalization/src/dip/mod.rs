//! The deep image prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018): an untrained convolutional network,
//! fitted to one corrupted image, restores it because it fits natural structure before it fits noise —
//! `min_θ E(f_θ(z); x₀)`, with early stopping as the regulariser.
//!
//! * [`net`]: the reference "skip" hourglass ([`SkipNet`]) with exact parameter counts;
//! * [`layers`]: reflection padding, bilinear/nearest ×2 upsampling and LeakyReLU with exact gradients;
//! * [`fit`]: one fit ([`DipFit`]) — denoising or inpainting, Adam, input noise, output averaging,
//!   backtracking, a stopping rule that needs no clean image, checkpoints;
//! * [`image`]: crop/resize, seeded noise and masks; [`metrics`]: PSNR and SSIM as scikit-image;
//! * [`baselines`]: Gaussian filter and TV denoising as scikit-image, to compare with.
//!
//! ```
//! use candle_core::Device;
//! use generalization::dip::{DipFit, DipParams, DipTask, SkipNetParams};
//! use generalization::dip::image::add_gaussian_noise;
//!
//! let clean = candle_core::Tensor::full(0.5f32, (1, 64, 64), &Device::Cpu)?;
//! let noisy = add_gaussian_noise(&clean, 25.0, 0)?;
//! let params = DipParams {
//!     net: SkipNetParams { channels: 4, input_channels: 4, ..DipParams::default().net },
//!     iterations: 3,
//!     ..DipParams::default()
//! };
//! let mut fit = DipFit::new(&params, DipTask::Denoise, &noisy, Some(&clean), &Device::Cpu)?;
//! while !fit.finished() {
//!     fit.step()?;
//! }
//! assert_eq!(fit.history().len(), 3);
//! assert_eq!(fit.restored().unwrap().dims(), &[1, 64, 64]);
//! # Ok::<(), generalization::GenError>(())
//! ```

pub mod baselines;
pub mod fit;
pub mod image;
pub mod layers;
pub mod metrics;
pub mod net;

pub use fit::{DipFit, DipParams, DipRecord, DipSummary, DipTask, StopRule};
pub use net::{SkipNet, SkipNetParams, Upsample};
