//! [`Progress`]: where long work (training loops, attacks, sweeps) reports how far it is. Libraries only
//! call it; the binary implements it (`experiments` wraps indicatif's `ProgressBar`), so no library crate
//! draws to the terminal.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use nn_core::progress::{Progress, SharedProgress};
//!
//! #[derive(Default)]
//! struct Count(AtomicU64);
//! impl Progress for Count {
//!     fn start(&self, _total: u64, done: u64) {
//!         self.0.store(done, Ordering::Relaxed);
//!     }
//!     fn advance(&self, n: u64) {
//!         self.0.fetch_add(n, Ordering::Relaxed);
//!     }
//! }
//!
//! let count = Arc::new(Count::default());
//! let shared: SharedProgress = count.clone();
//! shared.start(10, 4);
//! shared.advance(2);
//! shared.message("halfway"); // ignored by default
//! assert_eq!(count.0.load(Ordering::Relaxed), 6);
//! ```

use std::sync::Arc;

/// Where long work reports how far it is. Implemented by the binary (experiments wraps indicatif's
/// ProgressBar); libraries only call it.
pub trait Progress: Send + Sync {
    /// The amount of work and how much of it is already done (a resumed run starts past 0).
    fn start(&self, total: u64, done: u64);
    /// `n` more units done.
    fn advance(&self, n: u64);
    /// A short status text (losses, the current phase); default: ignored.
    fn message(&self, _text: &str) {}
}

/// A [`Progress`] that options structs can hold and clone.
pub type SharedProgress = Arc<dyn Progress>;

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    use super::*;
    use crate::data::generated_train_test;
    use crate::models::{InputSpec, ModelConfig, ModelKind, SeededVarMap, build_model};
    use crate::train::{TrainConfig, TrainOptions, train};

    /// Records every call.
    #[derive(Default)]
    struct Recorder {
        starts: Mutex<Vec<(u64, u64)>>,
        advanced: Mutex<u64>,
        messages: Mutex<Vec<String>>,
    }

    impl Progress for Recorder {
        fn start(&self, total: u64, done: u64) {
            self.starts.lock().unwrap().push((total, done));
        }
        fn advance(&self, n: u64) {
            *self.advanced.lock().unwrap() += n;
        }
        fn message(&self, text: &str) {
            self.messages.lock().unwrap().push(text.to_string());
        }
    }

    #[test]
    fn the_training_loop_reports_every_step() {
        let d = generated_train_test(200, 50, 1).unwrap();
        let varmap = VarMap::new();
        let vb = SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu);
        let cfg = ModelConfig {
            mlp_widths: vec![16],
            ..ModelConfig::new(ModelKind::Mlp, InputSpec::new(1, 28, 28, 10))
        };
        let model = build_model(&cfg, vb).unwrap();
        let config = TrainConfig {
            epochs: 2,
            batch_size: 64,
            ..TrainConfig::default()
        };
        let recorder = Arc::new(Recorder::default());
        let options = TrainOptions {
            checkpoint_dir: None,
            progress: Some(recorder.clone()),
        };
        let report = train(model.as_ref(), &varmap, &d.train, None, &config, &options).unwrap();

        let steps_per_epoch = 200u64.div_ceil(64);
        assert_eq!(
            *recorder.starts.lock().unwrap(),
            vec![(2 * steps_per_epoch, 0)]
        );
        assert_eq!(*recorder.advanced.lock().unwrap(), 2 * steps_per_epoch);
        assert_eq!(report.history.last().unwrap().steps, 2 * steps_per_epoch);
        let messages = recorder.messages.lock().unwrap();
        assert_eq!(messages.len() as u64, 2 * steps_per_epoch);
        assert!(
            messages[0].starts_with("epoch 1/2 loss "),
            "{}",
            messages[0]
        );
        assert!(messages.last().unwrap().starts_with("epoch 2/2 loss "));
    }
}
