//! Metrics for generative models: Fréchet (Inception) Distance, Inception Score, Kernel Inception
//! Distance and the Geometry Score (Khrulkov & Oseledets, "Geometry Score: A Method For Comparing
//! Generative Adversarial Networks", ICML 2018), with candle feature extractors.
//!
//! * [`frechet`]: [`FrechetStats`] (streaming, f64, two-pass accurate) and the exact symmetric-route
//!   [`fid`] (also exact when n ≤ d).
//! * [`inception_score`]: IS with the original 10 contiguous splits, mean ± std (ddof 0).
//! * [`kid`]: unbiased MMD² with the kernel `(xᵀy/d + 1)³` over seeded subsets.
//! * [`stats_file`]: FID statistics as pytorch-fid's `.npz` files (`mu`, `sigma`), read and written.
//! * [`gs`]: relative living times of witness complexes, MRLT and the Geometry Score, as the reference code.
//! * [`features`]: a trainable domain classifier (MNIST/Fashion "domain FID") and the FID-Inception-v3
//!   network of pytorch-fid loading converted weights.
//! * [`scorer`]: [`scorer::SampleScorer`], every metric of an image set against a fixed reference set
//!   with one domain classifier, as a GAN experiment scores each checkpoint.
//! * [`toy`]: seeded planar clouds with known H1.
//!
//! All inputs are rows = samples, f64. Bad input (NaN/∞, one sample, mismatched dimensions, rows that are
//! not probabilities, landmarks > N) is an error naming the argument, never a silently wrong number.
//!
//! ```
//! use gan_eval::{fid, kid, FrechetStats};
//! use ndarray::Array2;
//!
//! let a = Array2::from_shape_fn((200, 3), |(i, j)| ((i * 13 + j * 7) % 17) as f64);
//! let b = &a + 1.0; // shifted by 1 in every coordinate
//! let d = fid(&FrechetStats::from_features(a.view())?, &FrechetStats::from_features(b.view())?)?;
//! assert!((d - 3.0).abs() < 1e-9); // ‖Δμ‖² = 3, same covariance
//! let k = kid(a.view(), b.view(), 10, 100, 0)?;
//! assert!(k.kid > 0.0);
//! # Ok::<(), gan_eval::GanEvalError>(())
//! ```

pub mod error;
pub mod features;
pub mod frechet;
pub mod gs;
pub mod inception_score;
pub mod kid;
pub mod scorer;
pub mod stats_file;
mod symmetric_eigen;
pub mod toy;
mod util;

pub use error::{GanEvalError, Result};
pub use frechet::{
    FidRoute, FrechetAccumulator, FrechetStats, fid, fid_from_features, fid_with_route,
};
pub use gs::{
    GsConfig, MeanRlt, Rlt, geometry_score, landmark_draw, mean_rlt, relative_living_times,
};
pub use inception_score::{InceptionScore, inception_score};
pub use kid::{Kid, kid};
pub use util::stream_seed;
