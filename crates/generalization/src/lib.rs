//! Generalisation experiments: the randomisation tests of Zhang, Bengio, Hardt, Recht and Vinyals,
//! "Understanding deep learning requires rethinking generalization" (ICLR 2017). The same network that
//! generalises on true labels memorises random labels, so capacity alone cannot explain generalisation.
//!
//! * [`corrupt`]: seeded corruptions of an `nn_core::data::Dataset` — partially or fully random labels,
//!   shuffled pixels, random pixels, Gaussian inputs; the test set keeps its true labels.
//! * [`fit`]: train until the exact training accuracy reaches 100 % (or a cap), recording loss, train and
//!   test accuracy per epoch and the two times to fit (epochs to 100 % and to 90 %), with checkpoints.
//! * [`models`]: MLP 1×512, MLP 3×512 and the small CNN (nn-core's LeNet), with parameter-count formulas
//!   checked against the paper.
//! * [`randomization`]: one condition end to end.
//!
//! ```
//! use candle_core::Device;
//! use generalization::{Corruption, FitConfig, FitOptions, ZhangModel, run_condition};
//! use nn_core::data::generated::generated_train_test;
//!
//! let data = generated_train_test(100, 50, 0).unwrap();
//! let config = FitConfig { max_epochs: 2, ..FitConfig::default() };
//! let r = run_condition(&data.train, &data.test, Corruption::PartialLabels { p: 0.4 },
//!                       ZhangModel::Mlp1x512, 3, &config, &FitOptions::default(), &Device::Cpu).unwrap();
//! assert_eq!(r.fit.history.len(), r.fit.epochs);
//! assert!(r.corruption.labels_changed > 0);
//! ```
//!
//! * [`capacity`]: "why no overfitting?" with exact linear algebra — random-features regression and its
//!   double descent, Zhang et al.'s Theorem 1 network, minimum-norm kernel interpolation.
//! * [`dip`]: the deep image prior (Ulyanov, Vedaldi, Lempitsky 2018) — an untrained network fitted to one
//!   corrupted image restores it; early stopping is the regulariser.

pub mod capacity;
pub mod corrupt;
pub mod dip;
pub mod error;
pub mod fit;
pub mod models;
pub mod randomization;

pub use corrupt::{Corrupted, Corruption, CorruptionSummary, corrupt};
pub use error::{GenError, Result};
pub use fit::{EpochRecord, FitConfig, FitOptions, FitReport, fit};
pub use models::ZhangModel;
pub use randomization::{ConditionResult, run_condition};
