//! VGG-16, VGG-19 and ResNet-50 as [`Net`]s that load **torchvision-layout** weights from a safetensors
//! file (the networks of the talk's transfer table). Weights are never downloaded: convert a torchvision
//! `state_dict` with `safetensors.torch.save_file(model.state_dict(), "vgg16.safetensors")`.
//!
//! * Batchable, every layer named, logits **without** ReLU (unlike candle-transformers' VGG).
//! * VGG: `features.{i}` convolutions (3×3, pad 1) with `block{b}_conv{i}`, `block{b}_relu{i}`,
//!   `block{b}_pool` taps (the Keras names the SV-UAP paper uses, e.g. `block2_pool`), adaptive average
//!   pool to 7×7 (`avgpool`), `classifier.{0,3,6}` as `fc1`, `relu_fc1`, `fc2`, `relu_fc2`, `logits`
//!   (dropout is the identity in evaluation).
//! * ResNet-50 (torchvision v1.5: stride on the 3×3 convolution): `conv1`/`bn1` → `stem` (after ReLU),
//!   `maxpool` (3×3/s2/p1), bottleneck blocks tapped `layer{s}.{b}`, `avgpool`, `fc` → `logits`;
//!   batch norm in evaluation mode with eps 1e-5.
//! * Inputs are images in [0, 1]; with `normalize` (default) the ImageNet mean/std normalisation is the
//!   first layer, so ε budgets stay in pixel units (ε = 10/255 is the papers' ξ = 10).
//!
//! [`TorchOptions`] can shrink widths (`width_divisor`, `fc_width`) for tests with random weights; real
//! weights need the defaults (a mismatch is an error naming the tensor and both shapes).
//!
//! ```
//! use adversarial::torchvision::{TorchArch, TorchOptions, random_weights, torchvision_net};
//!
//! let opts = TorchOptions { height: 32, width: 32, width_divisor: 16, fc_width: 32, num_classes: 10, ..Default::default() };
//! let w = random_weights(TorchArch::Vgg16, &opts, 0)?;
//! let net = torchvision_net(TorchArch::Vgg16, &w, &opts, "random")?;
//! assert!(net.layer_names().contains(&"block2_pool".to_string()));
//! # Ok::<(), adversarial::AdvError>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use nn_core::models::InputSpec;
use serde::{Deserialize, Serialize};

use crate::error::{AdvError, Result};
use crate::net::{Layer, Net, Node, Weights};

/// The torchvision architectures offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TorchArch {
    Vgg16,
    Vgg19,
    Resnet50,
}

impl TorchArch {
    /// Every architecture.
    pub const ALL: [TorchArch; 3] = [TorchArch::Vgg16, TorchArch::Vgg19, TorchArch::Resnet50];

    /// CLI name.
    pub fn as_str(&self) -> &'static str {
        match self {
            TorchArch::Vgg16 => "vgg16",
            TorchArch::Vgg19 => "vgg19",
            TorchArch::Resnet50 => "resnet50",
        }
    }
}

impl std::fmt::Display for TorchArch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TorchArch {
    type Err = AdvError;
    fn from_str(s: &str) -> Result<Self> {
        TorchArch::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                AdvError::invalid(
                    "arch",
                    format!("unknown architecture `{s}`; expected vgg16, vgg19 or resnet50"),
                )
            })
    }
}

/// Shape options (defaults: ImageNet, 224×224, 1000 classes, full widths, normalisation on).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TorchOptions {
    pub num_classes: usize,
    pub height: usize,
    pub width: usize,
    /// ImageNet mean/std normalisation as the first layer (inputs in [0, 1]).
    pub normalize: bool,
    /// Divide every convolution width by this (tests with random weights; 1 for real weights).
    pub width_divisor: usize,
    /// Hidden width of the VGG classifier (4096 for real weights).
    pub fc_width: usize,
}

impl Default for TorchOptions {
    fn default() -> Self {
        Self {
            num_classes: 1000,
            height: 224,
            width: 224,
            normalize: true,
            width_divisor: 1,
            fc_width: 4096,
        }
    }
}

const VGG16: [usize; 5] = [2, 2, 3, 3, 3];
const VGG19: [usize; 5] = [2, 2, 4, 4, 4];
const VGG_WIDTHS: [usize; 5] = [64, 128, 256, 512, 512];
const RESNET50_BLOCKS: [usize; 4] = [3, 4, 6, 3];
const RESNET_WIDTHS: [usize; 4] = [64, 128, 256, 512];

impl TorchOptions {
    fn validate(&self) -> Result<()> {
        if self.width_divisor == 0 || self.fc_width == 0 || self.num_classes < 2 {
            return Err(AdvError::invalid(
                "options",
                format!("width_divisor, fc_width must be ≥ 1 and num_classes ≥ 2, got {self:?}"),
            ));
        }
        if self.height < 32 || self.width < 32 {
            return Err(AdvError::invalid(
                "options",
                format!(
                    "inputs must be at least 32×32 (five 2× poolings), got {}×{}",
                    self.height, self.width
                ),
            ));
        }
        Ok(())
    }

    fn w(&self, c: usize) -> usize {
        (c / self.width_divisor).max(1)
    }
}

/// `(name, shape)` of every tensor the architecture needs, in torchvision's naming. BatchNorm's
/// `num_batches_tracked` is not needed (and ignored when present).
pub fn weight_shapes(arch: TorchArch, opts: &TorchOptions) -> Result<Vec<(String, Vec<usize>)>> {
    opts.validate()?;
    let mut out = Vec::new();
    match arch {
        TorchArch::Vgg16 | TorchArch::Vgg19 => {
            let convs = if arch == TorchArch::Vgg16 {
                VGG16
            } else {
                VGG19
            };
            let (mut idx, mut c_in) = (0, 3);
            for (b, &n) in convs.iter().enumerate() {
                let c = opts.w(VGG_WIDTHS[b]);
                for _ in 0..n {
                    out.push((format!("features.{idx}.weight"), vec![c, c_in, 3, 3]));
                    out.push((format!("features.{idx}.bias"), vec![c]));
                    idx += 2;
                    c_in = c;
                }
                idx += 1;
            }
            let f = opts.fc_width;
            for (i, (o, inp)) in [(f, c_in * 49), (f, f), (opts.num_classes, f)]
                .into_iter()
                .enumerate()
            {
                out.push((format!("classifier.{}.weight", 3 * i), vec![o, inp]));
                out.push((format!("classifier.{}.bias", 3 * i), vec![o]));
            }
        }
        TorchArch::Resnet50 => {
            let bn = |out: &mut Vec<(String, Vec<usize>)>, p: &str, c: usize| {
                for s in ["weight", "bias", "running_mean", "running_var"] {
                    out.push((format!("{p}.{s}"), vec![c]));
                }
            };
            let stem = opts.w(64);
            out.push(("conv1.weight".into(), vec![stem, 3, 7, 7]));
            bn(&mut out, "bn1", stem);
            let mut c_in = stem;
            for (s, &blocks) in RESNET50_BLOCKS.iter().enumerate() {
                let width = opts.w(RESNET_WIDTHS[s]);
                let c_out = 4 * width;
                for b in 0..blocks {
                    let p = format!("layer{}.{b}", s + 1);
                    out.push((format!("{p}.conv1.weight"), vec![width, c_in, 1, 1]));
                    bn(&mut out, &format!("{p}.bn1"), width);
                    out.push((format!("{p}.conv2.weight"), vec![width, width, 3, 3]));
                    bn(&mut out, &format!("{p}.bn2"), width);
                    out.push((format!("{p}.conv3.weight"), vec![c_out, width, 1, 1]));
                    bn(&mut out, &format!("{p}.bn3"), c_out);
                    if b == 0 {
                        out.push((format!("{p}.downsample.0.weight"), vec![c_out, c_in, 1, 1]));
                        bn(&mut out, &format!("{p}.downsample.1"), c_out);
                    }
                    c_in = c_out;
                }
            }
            out.push(("fc.weight".into(), vec![opts.num_classes, c_in]));
            out.push(("fc.bias".into(), vec![opts.num_classes]));
        }
    }
    Ok(out)
}

/// Number of trained parameters (running statistics excluded) of the architecture.
pub fn parameter_count(arch: TorchArch, opts: &TorchOptions) -> Result<usize> {
    Ok(weight_shapes(arch, opts)?
        .iter()
        .filter(|(n, _)| !n.contains("running_"))
        .map(|(_, s)| s.iter().product::<usize>())
        .sum())
}

/// Random weights of the right names and shapes (He-normal convolutions and linear layers, small random
/// batch-norm statistics), f32 on the CPU, seeded.
pub fn random_weights(
    arch: TorchArch,
    opts: &TorchOptions,
    seed: u64,
) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for (i, (name, shape)) in weight_shapes(arch, opts)?.into_iter().enumerate() {
        let s = seed.wrapping_mul(0x9E37_79B9).wrapping_add(i as u64);
        let g = nn_core::grad::seeded_normal(&shape, DType::F32, &Device::Cpu, s)?;
        let t = if name.ends_with("running_var") {
            g.abs()?.affine(0.1, 1.0)?
        } else if name.ends_with("running_mean") || name.ends_with(".bias") {
            g.affine(0.1, 0.0)?
        } else if shape.len() == 1 {
            g.affine(0.1, 1.0)? // batch-norm weight
        } else {
            let fan_in: usize = shape[1..].iter().product();
            g.affine((2.0 / fan_in as f64).sqrt(), 0.0)?
        };
        out.insert(name, t);
    }
    Ok(out)
}

/// Builds the network from torchvision-named `weights` (checked by name and shape; `source` names the
/// origin in errors).
pub fn torchvision_net(
    arch: TorchArch,
    weights: &HashMap<String, Tensor>,
    opts: &TorchOptions,
    source: &str,
) -> Result<Net> {
    for (name, shape) in weight_shapes(arch, opts)? {
        match weights.get(&name) {
            None => {
                return Err(AdvError::Weights {
                    path: source.into(),
                    reason: format!(
                        "missing tensor `{name}` of shape {shape:?} for {}",
                        arch.as_str()
                    ),
                });
            }
            Some(t) if t.dims() != shape.as_slice() => {
                return Err(AdvError::Weights {
                    path: source.into(),
                    reason: format!(
                        "tensor `{name}` has shape {:?}, {} needs {shape:?} (check width/fc options)",
                        t.dims(),
                        arch.as_str()
                    ),
                });
            }
            Some(_) => {}
        }
    }
    let weights: HashMap<String, Tensor> = weights
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_dtype(DType::F32)?)))
        .collect::<Result<_>>()?;
    let w = Weights {
        map: &weights,
        source: source.to_string(),
    };
    let mut nodes: Vec<Node> = Vec::new();
    if opts.normalize {
        nodes.push(
            Layer::Normalize {
                mean: Tensor::new(&[0.485f32, 0.456, 0.406], &Device::Cpu)?,
                std: Tensor::new(&[0.229f32, 0.224, 0.225], &Device::Cpu)?,
            }
            .into(),
        );
    }
    match arch {
        TorchArch::Vgg16 | TorchArch::Vgg19 => {
            let convs = if arch == TorchArch::Vgg16 {
                VGG16
            } else {
                VGG19
            };
            let mut idx = 0;
            for (b, &n) in convs.iter().enumerate() {
                for i in 1..=n {
                    nodes.push(
                        w.conv(&format!("features.{idx}"), 1, 1)?
                            .named(format!("block{}_conv{i}", b + 1)),
                    );
                    nodes.push(Layer::Relu.named(format!("block{}_relu{i}", b + 1)));
                    idx += 2;
                }
                nodes.push(Layer::MaxPool { k: 2 }.named(format!("block{}_pool", b + 1)));
                idx += 1;
            }
            nodes.push(Layer::AdaptiveAvgPool { out_h: 7, out_w: 7 }.named("avgpool"));
            nodes.push(Layer::Flatten.into());
            nodes.push(w.linear("classifier.0")?.named("fc1"));
            nodes.push(Layer::Relu.named("relu_fc1"));
            nodes.push(w.linear("classifier.3")?.named("fc2"));
            nodes.push(Layer::Relu.named("relu_fc2"));
            nodes.push(w.linear("classifier.6")?.named("logits"));
        }
        TorchArch::Resnet50 => {
            nodes.push(w.conv("conv1", 2, 3)?.into());
            nodes.push(w.batch_norm("bn1", 1e-5)?.into());
            nodes.push(Layer::Relu.named("stem"));
            nodes.push(
                Layer::MaxPoolStrided {
                    k: 3,
                    stride: 2,
                    padding: 1,
                }
                .named("maxpool"),
            );
            for (s, &blocks) in RESNET50_BLOCKS.iter().enumerate() {
                for b in 0..blocks {
                    let p = format!("layer{}.{b}", s + 1);
                    let stride = if b == 0 && s > 0 { 2 } else { 1 };
                    let main = vec![
                        w.conv(&format!("{p}.conv1"), 1, 0)?.into(),
                        w.batch_norm(&format!("{p}.bn1"), 1e-5)?.into(),
                        Layer::Relu.into(),
                        w.conv(&format!("{p}.conv2"), stride, 1)?.into(),
                        w.batch_norm(&format!("{p}.bn2"), 1e-5)?.into(),
                        Layer::Relu.into(),
                        w.conv(&format!("{p}.conv3"), 1, 0)?.into(),
                        w.batch_norm(&format!("{p}.bn3"), 1e-5)?.into(),
                    ];
                    let shortcut = if b == 0 {
                        vec![
                            w.conv(&format!("{p}.downsample.0"), stride, 0)?.into(),
                            w.batch_norm(&format!("{p}.downsample.1"), 1e-5)?.into(),
                        ]
                    } else {
                        Vec::new()
                    };
                    nodes.push(Layer::residual(main, shortcut).into());
                    nodes.push(Layer::Relu.named(p));
                }
            }
            nodes.push(Layer::GlobalAvgPool.named("avgpool"));
            nodes.push(w.linear("fc")?.named("logits"));
        }
    }
    Net::new(
        arch.as_str(),
        InputSpec::new(3, opts.height, opts.width, opts.num_classes),
        nodes,
    )
}

/// Loads `path` (safetensors with torchvision names) and builds the network.
pub fn load_torchvision(arch: TorchArch, path: &Path, opts: &TorchOptions) -> Result<Net> {
    let weights =
        candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| AdvError::Weights {
            path: path.to_path_buf(),
            reason: format!("cannot read safetensors: {e}"),
        })?;
    torchvision_net(arch, &weights, opts, &path.display().to_string())
}
