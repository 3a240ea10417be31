//! A domain classifier as feature extractor ("domain FID" for MNIST-like data): any nn-core
//! [`Classifier`] (default LeNet), trained with [`nn_core::train::train`]; its penultimate activation
//! (the one just before `"logits"`, e.g. LeNet's 500-d `relu3`) gives FID/KID features and its softmax
//! the class probabilities for the Inception Score ("MNIST score", at most 10).
//!
//! ```
//! use candle_core::Device;
//! use gan_eval::features::DomainClassifier;
//! use nn_core::data::generated::generated_digits;
//! use nn_core::models::{InputSpec, ModelConfig, ModelKind};
//!
//! let data = generated_digits(20, 0).unwrap();
//! let config = ModelConfig::new(ModelKind::Lenet, InputSpec::new(1, 28, 28, 10));
//! let clf = DomainClassifier::new(&config, 0, &Device::Cpu)?;
//! let out = clf.extract(&data.images, 8)?;
//! assert_eq!(out.features.dim(), (20, 500));
//! assert_eq!(out.probs.dim(), (20, 10));
//! # Ok::<(), gan_eval::GanEvalError>(())
//! ```

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarMap;
use ndarray::Array2;
use nn_core::data::Dataset;
use nn_core::models::{Classifier, ModelConfig, SeededVarMap, build_model};
use nn_core::train::{TrainConfig, TrainOptions, TrainReport, train};
use serde::{Deserialize, Serialize};

use crate::{GanEvalError, Result};

/// A classifier whose penultimate layer and softmax serve as features.
pub struct DomainClassifier {
    model: Box<dyn Classifier>,
    varmap: VarMap,
}

/// Features, logits and class probabilities of a batch of images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainOutputs {
    /// Penultimate activations, N × d.
    pub features: Array2<f64>,
    /// Logits, N × C.
    pub logits: Array2<f64>,
    /// Softmax of the logits (`nn_core::layers::softmax`), N × C.
    pub probs: Array2<f64>,
}

impl DomainClassifier {
    /// A freshly initialised classifier (weights from `seed`).
    pub fn new(config: &ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = SeededVarMap::var_builder(&varmap, seed, DType::F32, device);
        let model = build_model(config, vb)?;
        Ok(Self { model, varmap })
    }

    /// Loads weights saved by [`DomainClassifier::save`] into a model built from `config`.
    pub fn load(config: &ModelConfig, path: &Path, device: &Device) -> Result<Self> {
        let clf = Self::new(config, 0, device)?;
        nn_core::checkpoint::load_varmap(&clf.varmap, path)?;
        Ok(clf)
    }

    /// Writes the weights (safetensors).
    pub fn save(&self, path: &Path) -> Result<()> {
        nn_core::checkpoint::save_varmap(&self.varmap, path)?;
        Ok(())
    }

    /// Trains the classifier in place with nn-core's training loop.
    pub fn train(
        &self,
        train_set: &Dataset,
        test_set: Option<&Dataset>,
        config: &TrainConfig,
        options: &TrainOptions,
    ) -> Result<TrainReport> {
        Ok(train(
            self.model.as_ref(),
            &self.varmap,
            train_set,
            test_set,
            config,
            options,
        )?)
    }

    /// The wrapped model.
    pub fn model(&self) -> &dyn Classifier {
        self.model.as_ref()
    }

    /// Name of the feature layer: the activation just before `"logits"`.
    pub fn feature_layer(&self) -> Result<String> {
        let names = self.model.layer_names()?;
        names
            .len()
            .checked_sub(2)
            .map(|i| names[i].clone())
            .ok_or_else(|| GanEvalError::invalid("model", "has no activation before its logits"))
    }

    /// Penultimate features, logits and softmax probabilities of `images` (`[N, C, H, W]`, values as the
    /// classifier was trained on), in batches of `batch_size`.
    pub fn extract(&self, images: &Tensor, batch_size: usize) -> Result<DomainOutputs> {
        if batch_size == 0 {
            return Err(GanEvalError::invalid("batch_size", "must be at least 1"));
        }
        let input = self.model.config().input;
        let dims = images.dims();
        if dims.len() != 4 || dims[1..] != [input.channels, input.height, input.width] {
            return Err(GanEvalError::shape(
                "DomainClassifier::extract images",
                format!("[N, {}, {}, {}]", input.channels, input.height, input.width),
                format!("{dims:?}"),
            ));
        }
        let n = dims[0];
        let (mut feats, mut logits, mut probs) = (Vec::new(), Vec::new(), Vec::new());
        let mut d = 0;
        let mut start = 0;
        while start < n {
            let len = batch_size.min(n - start);
            let x = images
                .narrow(0, start, len)?
                .to_device(&self.model.device())?
                .to_dtype(self.model.dtype())?;
            let acts = self.model.forward_activations(&x, false)?;
            let k = acts.len();
            if k < 2 {
                return Err(GanEvalError::invalid(
                    "model",
                    "has no activation before its logits",
                ));
            }
            let f = acts[k - 2].1.flatten_from(1)?;
            d = f.dims()[1];
            let lg = &acts[k - 1].1;
            let p = nn_core::layers::softmax(lg, D::Minus1)?;
            feats.extend(to_f64(&f)?);
            logits.extend(to_f64(lg)?);
            probs.extend(to_f64(&p)?);
            start += len;
        }
        let c = input.num_classes;
        let shape_err = |e: ndarray::ShapeError| GanEvalError::invalid("features", e.to_string());
        Ok(DomainOutputs {
            features: Array2::from_shape_vec((n, d), feats).map_err(shape_err)?,
            logits: Array2::from_shape_vec((n, c), logits).map_err(shape_err)?,
            probs: Array2::from_shape_vec((n, c), probs).map_err(shape_err)?,
        })
    }
}

/// A tensor's values as f64, row-major.
pub(crate) fn to_f64(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}
