//! Image classifiers that can return their named intermediate activations: [`Mlp`], [`LeNet`],
//! [`VggSmall`] and [`ResNetSmall`], for 28×28 greyscale and 32/64-px colour inputs.
//!
//! Every model implements [`Classifier`]; attacks and Jacobian code read hidden layers through
//! [`Classifier::forward_activations`]. Pools and softmax come from [`crate::layers`] (candle's raw
//! max-pool has a wrong gradient).

mod init;
mod lenet;
mod mlp;
mod resnet;
mod vgg;

use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

pub use init::SeededVarMap;
pub use lenet::{LeNet, lenet};
pub use mlp::{Mlp, mlp};
pub use resnet::{ResNetSmall, resnet_small};
pub use vgg::{VggSmall, vgg_small};

use crate::{NnError, Result};

/// The input a model is built for: `channels × height × width` images and `num_classes` outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub num_classes: usize,
}

impl InputSpec {
    /// `channels × height × width` inputs, `num_classes` classes.
    pub fn new(channels: usize, height: usize, width: usize, num_classes: usize) -> Self {
        Self {
            channels,
            height,
            width,
            num_classes,
        }
    }

    /// Number of input values per image.
    pub fn numel(&self) -> usize {
        self.channels * self.height * self.width
    }

    fn validate(&self) -> Result<()> {
        if self.channels == 0 || self.height == 0 || self.width == 0 {
            return Err(NnError::invalid(
                "input",
                format!("image shape must be positive, got {self:?}"),
            ));
        }
        if self.num_classes < 2 {
            return Err(NnError::invalid(
                "num_classes",
                format!("need at least 2, got {}", self.num_classes),
            ));
        }
        Ok(())
    }
}

/// The model families nn-core builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ModelKind {
    /// Fully connected ReLU network (default widths 512-512).
    Mlp,
    /// LeNet-style CNN (Caffe's LeNet: conv5×5·20, pool, conv5×5·50, pool, fc 500).
    Lenet,
    /// VGG-style CNN: three blocks of two 3×3 convolutions and a 2×2 max-pool.
    VggSmall,
    /// Small ResNet: 3×3 stem and three stages of one basic block each, batch norm (optional), global
    /// average pool.
    ResnetSmall,
}

impl ModelKind {
    /// Every kind, in CLI order.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Mlp,
        ModelKind::Lenet,
        ModelKind::VggSmall,
        ModelKind::ResnetSmall,
    ];

    /// The CLI name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Lenet => "lenet",
            ModelKind::VggSmall => "vgg-small",
            ModelKind::ResnetSmall => "resnet-small",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ModelKind {
    type Err = NnError;

    fn from_str(s: &str) -> Result<Self> {
        ModelKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ModelKind::ALL.iter().map(|k| k.as_str()).collect();
                NnError::invalid(
                    "model",
                    format!("unknown model `{s}`; expected one of {}", names.join(", ")),
                )
            })
    }
}

/// Everything needed to rebuild a model: saved beside its weights in checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub kind: ModelKind,
    pub input: InputSpec,
    /// Hidden widths of the MLP (ignored by the other kinds).
    #[serde(default = "default_mlp_widths")]
    pub mlp_widths: Vec<usize>,
    /// Batch norm after every convolution of ResNet-small (default `true`, as He et al.); `false` gives
    /// convolutions with biases and no normalisation. Ignored by the other kinds, which have none.
    #[serde(default = "default_batch_norm")]
    pub batch_norm: bool,
}

fn default_batch_norm() -> bool {
    true
}

fn default_mlp_widths() -> Vec<usize> {
    vec![512, 512]
}

impl ModelConfig {
    /// `kind` for `input`, with default widths.
    pub fn new(kind: ModelKind, input: InputSpec) -> Self {
        Self {
            kind,
            input,
            mlp_widths: default_mlp_widths(),
            batch_norm: default_batch_norm(),
        }
    }

    /// The same configuration with ResNet-small's batch norm switched on or off.
    pub fn with_batch_norm(self, batch_norm: bool) -> Self {
        Self { batch_norm, ..self }
    }
}

/// What every [`Classifier`] carries besides its layers: the configuration it was built from and where
/// its parameters live.
#[derive(Debug, Clone)]
pub struct ModelMeta {
    pub config: ModelConfig,
    pub dtype: candle_core::DType,
    pub device: candle_core::Device,
}

impl ModelMeta {
    /// `config`, with the dtype and device of the variables `vb` creates.
    pub fn new(config: ModelConfig, vb: &VarBuilder) -> Self {
        Self {
            config,
            dtype: vb.dtype(),
            device: vb.device().clone(),
        }
    }
}

/// Receives `(name, activation)` pairs during a forward pass.
pub type Tap<'a> = &'a mut dyn FnMut(&str, &Tensor);

/// An image classifier with named intermediate activations.
pub trait Classifier: Send + Sync {
    /// Runs the model on `x` (`[N, C, H, W]`), calling `tap` with every named activation in order; the last
    /// one is `"logits"`. `train` switches batch norm to batch statistics (and updates running statistics).
    fn forward_tapped(&self, x: &Tensor, train: bool, tap: Tap<'_>) -> candle_core::Result<Tensor>;

    /// The model's configuration, parameter dtype and device.
    fn meta(&self) -> &ModelMeta;

    /// The model's configuration.
    fn config(&self) -> &ModelConfig {
        &self.meta().config
    }

    /// Logits `[N, num_classes]`.
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward_tapped(x, train, &mut |_, _| {})
    }

    /// Every named activation, in forward order, ending with `"logits"`.
    fn forward_activations(
        &self,
        x: &Tensor,
        train: bool,
    ) -> candle_core::Result<Vec<(String, Tensor)>> {
        let mut acts = Vec::new();
        self.forward_tapped(x, train, &mut |name, t| {
            acts.push((name.to_string(), t.clone()))
        })?;
        Ok(acts)
    }

    /// The activation called `layer` (see [`Classifier::layer_names`]).
    fn forward_to(&self, x: &Tensor, layer: &str, train: bool) -> Result<Tensor> {
        let acts = self.forward_activations(x, train)?;
        let names: Vec<&str> = acts.iter().map(|(n, _)| n.as_str()).collect();
        let names = names.join(", ");
        acts.into_iter()
            .find(|(n, _)| n == layer)
            .map(|(_, t)| t)
            .ok_or_else(|| {
                NnError::invalid(
                    "layer",
                    format!("model has no layer `{layer}`; layers are: {names}"),
                )
            })
    }

    /// Names of the activations [`Classifier::forward_activations`] returns, in order.
    fn layer_names(&self) -> Result<Vec<String>> {
        let cfg = self.config().input;
        let x = Tensor::zeros(
            (1, cfg.channels, cfg.height, cfg.width),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        )?;
        let mut names = Vec::new();
        let x = x.to_dtype(self.dtype())?.to_device(&self.device())?;
        self.forward_tapped(&x, false, &mut |name, _| names.push(name.to_string()))?;
        Ok(names)
    }

    /// Parameter dtype.
    fn dtype(&self) -> candle_core::DType {
        self.meta().dtype
    }

    /// Parameter device.
    fn device(&self) -> candle_core::Device {
        self.meta().device.clone()
    }
}

/// Builds the model `config` describes, creating its variables through `vb`.
pub fn build_model(config: &ModelConfig, vb: VarBuilder) -> Result<Box<dyn Classifier>> {
    config.input.validate()?;
    Ok(match config.kind {
        ModelKind::Mlp => Box::new(mlp(config.input, &config.mlp_widths, vb)?),
        ModelKind::Lenet => Box::new(lenet(config.input, vb)?),
        ModelKind::VggSmall => Box::new(vgg_small(config.input, vb)?),
        ModelKind::ResnetSmall => Box::new(resnet_small(config.input, config.batch_norm, vb)?),
    })
}

/// Number of scalar parameters in `varmap` that are trained (batch-norm running statistics excluded).
pub fn parameter_count(varmap: &candle_nn::VarMap) -> usize {
    let data = varmap.data().lock().expect("varmap lock poisoned");
    data.iter()
        .filter(|(name, _)| !name.contains("running_"))
        .map(|(_, v)| v.elem_count())
        .sum()
}

#[cfg(test)]
mod tests;
