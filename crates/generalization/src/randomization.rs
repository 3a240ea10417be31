//! One condition of the randomisation tests end to end: corrupt the training set, build the model with
//! seeded weights, fit until memorised, and return everything a report needs.
//!
//! `seed` seeds the corruption and the weights (through separate derived streams); the batch order is
//! `config.seed`'s. The same corruption seed gives the same corrupted labels for every model, as in the
//! paper.
//!
//! ```
//! use candle_core::Device;
//! use generalization::corrupt::Corruption;
//! use generalization::fit::{FitConfig, FitOptions};
//! use generalization::models::ZhangModel;
//! use generalization::randomization::run_condition;
//! use nn_core::data::generated::generated_train_test;
//!
//! let data = generated_train_test(64, 32, 0).unwrap();
//! let config = FitConfig { max_epochs: 2, ..FitConfig::default() };
//! let r = run_condition(&data.train, &data.test, Corruption::RandomLabels, ZhangModel::Mlp1x512, 0,
//!                       &config, &FitOptions::default(), &Device::Cpu).unwrap();
//! assert_eq!(r.parameters, 407_050);
//! assert!(r.fit.epochs <= 2);
//! ```

use candle_core::{DType, Device};
use candle_nn::VarMap;
use nn_core::data::{Dataset, Provenance};
use nn_core::models::{Classifier, InputSpec, SeededVarMap, build_model, parameter_count};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::corrupt::{Corrupted, Corruption, CorruptionSummary, corrupt, derive_seed};
use crate::fit::{FitConfig, FitOptions, FitReport, fit};
use crate::models::ZhangModel;

/// Seed stream of the weights (distinct from the corruption streams).
pub(crate) const WEIGHT_STREAM: u64 = 100;

/// Everything one condition produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionResult {
    /// The training set's name before corruption, e.g. `mnist/train`.
    pub dataset: String,
    pub provenance: Provenance,
    pub model: ZhangModel,
    /// Trained parameters of the model as built.
    pub parameters: usize,
    /// The seed of the corruption and the weights.
    pub seed: u64,
    pub corruption: CorruptionSummary,
    pub config: FitConfig,
    pub fit: FitReport,
}

impl ConditionResult {
    /// Test error at the end of the run (at fit when it fitted), `1 − accuracy`.
    pub fn test_error(&self) -> Option<f64> {
        self.fit.final_test_accuracy.map(|a| 1.0 - a)
    }
}

/// A fitted condition's network and data, for measurements after training (e.g. margins).
pub struct TrainedCondition {
    /// The fitted network.
    pub model: Box<dyn Classifier>,
    /// Its parameters, by the names the model gave them (`fc1.weight`, …, `out.bias` for the MLPs).
    pub varmap: VarMap,
    /// The corrupted training set it was fitted to and the test set.
    pub data: Corrupted,
}

/// Corrupts `train` with `corruption` and `seed`, builds `model` on `device` with weights seeded from
/// `seed`, and fits it (see [`fit`]); `test` keeps its true labels.
#[allow(clippy::too_many_arguments)]
pub fn run_condition(
    train: &Dataset,
    test: &Dataset,
    corruption: Corruption,
    model: ZhangModel,
    seed: u64,
    config: &FitConfig,
    options: &FitOptions,
    device: &Device,
) -> Result<ConditionResult> {
    run_condition_trained(
        train, test, corruption, model, seed, config, options, device,
    )
    .map(|(result, _)| result)
}

/// [`run_condition`], also returning the fitted network and the corrupted data.
#[allow(clippy::too_many_arguments)]
pub fn run_condition_trained(
    train: &Dataset,
    test: &Dataset,
    corruption: Corruption,
    model: ZhangModel,
    seed: u64,
    config: &FitConfig,
    options: &FitOptions,
    device: &Device,
) -> Result<(ConditionResult, TrainedCondition)> {
    config.validate()?;
    let data = corrupt(train, test, corruption, seed)?;
    let (c, h, w) = train.image_shape();
    let input = InputSpec::new(c, h, w, train.num_classes());
    let varmap = VarMap::new();
    let vb = SeededVarMap::var_builder(
        &varmap,
        derive_seed(seed, WEIGHT_STREAM),
        DType::F32,
        device,
    );
    let net = build_model(&model.model_config(input), vb)?;
    let report = fit(
        net.as_ref(),
        &varmap,
        &data.train,
        Some(&data.test),
        config,
        options,
    )?;
    let result = ConditionResult {
        dataset: train.name.clone(),
        provenance: train.provenance,
        model,
        parameters: parameter_count(&varmap),
        seed,
        corruption: data.summary.clone(),
        config: config.clone(),
        fit: report,
    };
    Ok((
        result,
        TrainedCondition {
            model: net,
            varmap,
            data,
        },
    ))
}
