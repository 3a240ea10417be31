//! `nn-core`: the ground every mathnn experiment stands on — data sets, models with named activations,
//! a training loop with checkpoints and resume, and autodiff helpers — on [candle](https://github.com/huggingface/candle).
//!
//! candle 0.11 has silently wrong gradients in a few ops (see `../shared/specs/candle-pitfalls.md`); every
//! model here uses the safe replacements in [`layers`], each checked against finite differences.
//!
//! ```
//! use candle_core::{DType, Device};
//! use nn_core::data::generated::generated_digits;
//! use nn_core::models::{build_model, InputSpec, ModelConfig, ModelKind, SeededVarMap};
//! use candle_nn::VarMap;
//!
//! let data = generated_digits(64, 0).unwrap();
//! let varmap = VarMap::new();
//! let vb = SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu);
//! let model = build_model(&ModelConfig::new(ModelKind::Lenet, InputSpec::new(1, 28, 28, 10)), vb).unwrap();
//! let logits = model.forward_t(&data.images, false).unwrap();
//! assert_eq!(logits.dims(), &[64, 10]);
//! ```

pub mod alloc;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod error;
pub mod gan;
pub mod grad;
pub mod layers;
pub mod models;
pub mod ops;
pub mod optim;
pub mod progress;
pub mod run_lock;
pub mod seed;
pub mod stats;
pub mod threads;
pub mod train;

pub use error::{NnError, Result};
