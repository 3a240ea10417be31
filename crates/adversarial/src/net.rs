//! [`Net`]: an image classifier written as a list of named layers, with an **exact** Jacobian–vector
//! product (frozen-mask linearised forward) next to the usual reverse-mode vector–Jacobian product.
//!
//! candle has no forward-mode AD, and finite differences are far too inaccurate for `J v` on ReLU/max-pool
//! networks (`shared/specs/candle-pitfalls.md` §3.3). A `Net` runs the primal forward and, layer by layer,
//! pushes a tangent through the *same* layers linearised at the primal point:
//!
//! | layer | primal `y = f(x)` | tangent `ẏ = f'(x) ẋ` |
//! |---|---|---|
//! | conv / linear | `W ∗ x + b` | `W ∗ ẋ` (no bias) |
//! | batch norm (eval) | `(x − μ)/√(σ²+ε) · γ + β` | `ẋ/√(σ²+ε) · γ` |
//! | ReLU | `max(x, 0)` | `ẋ · [x ≥ 0]` (candle's backward mask, so that the adjoint identity is exact) |
//! | tanh | `tanh x` | `ẋ · (1 − y²)` |
//! | max pool | window maximum | `Σ` of `ẋ` over the window positions equal to the maximum (ties summed, the adjoint of candle's `max` backward) |
//! | avg pools, flatten, normalisation | linear | the same linear map |
//! | residual block | `main(x) + shortcut(x)` | `main'(x)ẋ + shortcut'(x)ẋ` |
//!
//! `J v` therefore costs about two forward passes and satisfies `⟨J v, u⟩ = ⟨v, Jᵀ u⟩` to rounding error,
//! where `Jᵀ u` comes from candle's backward through the primal forward ([`nn_core::grad::vjp`]).
//!
//! Every nn-core model (MLP, LeNet, VGG-small, ResNet-small) converts to a `Net` with
//! [`Net::from_nn_core`], reading its weights from the `VarMap` by name; the torchvision VGG-16/19 and
//! ResNet-50 of [`crate::torchvision`] are `Net`s too. Layer names are those of the nn-core model
//! (`conv1`, `relu1`, `pool1`, …, `logits`).
//!
//! ```
//! use adversarial::net::{Layer, Net};
//! use candle_core::{Device, Tensor};
//! use nn_core::models::InputSpec;
//!
//! // f(x) = relu(W x) on 1×1×2 "images": J = diag([x ≥ 0]) W.
//! let w = Tensor::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu)?;
//! let net = Net::new("toy", InputSpec::new(1, 1, 2, 2), vec![
//!     Layer::Flatten.into(),
//!     Layer::linear(w, None).named("fc"),
//!     Layer::Relu.named("logits"),
//! ])?;
//! let x = Tensor::new(&[[[[1f32, 1.]]], [[[-1., -1.]]]], &Device::Cpu)?;
//! let v = Tensor::new(&[[[1f32, 0.]]], &Device::Cpu)?; // shared by both images
//! let (_, jv) = net.jvp(&x, &v, "logits")?;
//! assert_eq!(jv.to_vec2::<f32>()?, vec![vec![1., 3.], vec![0., 0.]]);
//! # Ok::<(), adversarial::AdvError>(())
//! ```

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{BatchNorm, Linear, VarMap};
use nn_core::models::{Classifier, InputSpec, ModelConfig, ModelKind};
use nn_core::ops::{Conv2d, Conv2dParams};

use crate::error::{AdvError, Result};
use crate::linearize::{Lin, adjoint_nodes, forward_nodes, linearize_nodes, tangent_nodes};

/// Pulls a cotangent on the logits `[N, K]` back to the input: `u ↦ (Jᵢᵀ uᵢ)ᵢ`, `[N, C, H, W]`.
pub type Pullback<'a> = Box<dyn Fn(&Tensor) -> Result<Tensor> + 'a>;

/// A model that maps images `[N, C, H, W]` to logits `[N, K]`: what the attacks need.
///
/// Implemented for every [`nn_core::models::Classifier`] (evaluation mode, gradients by candle's
/// autograd) and for [`Net`] (gradients by its hand-written transpose pass).
pub trait LogitModel: Send + Sync {
    /// Logits `[N, K]` of `x` in evaluation mode (batch norm uses running statistics).
    fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor>;
    /// The parameter dtype; inputs are converted to it.
    fn dtype(&self) -> DType;
    /// The logits of `x` and the pullback `u ↦ ∇ₓ⟨logits(x), u⟩` (per image), sharing one forward
    /// pass between any number of pullbacks. Default: candle's autograd on a retained graph.
    fn linearize_logits(&self, x: &Tensor) -> Result<(Tensor, Pullback<'_>)> {
        let var = Var::from_tensor(&x.detach())?;
        let y = self.logits(var.as_tensor())?;
        let out = y.detach();
        let pullback = move |u: &Tensor| -> Result<Tensor> {
            let grads = (&y * u.to_dtype(y.dtype())?)?.sum_all()?.backward()?;
            Ok(match grads.get(var.as_tensor()) {
                Some(g) => g.clone(),
                None => var.as_tensor().zeros_like()?,
            })
        };
        Ok((out, Box::new(pullback)))
    }
}

impl<T: Classifier + ?Sized> LogitModel for T {
    fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_t(x, false)
    }
    fn dtype(&self) -> DType {
        Classifier::dtype(self)
    }
}

/// A [`Net`] linearised at a batch of images up to one layer: the layer's output, and exact `J v`
/// (tangent pass) and `Jᵀ u` (transpose pass) with the masks frozen at those images — one primal pass
/// shared by any number of products.
pub struct Linearization<'a> {
    net: &'a Net,
    lins: Vec<Lin>,
    output: Tensor,
    input_dims: Vec<usize>,
}

impl Linearization<'_> {
    /// The layer's output `[b, …]` at the images.
    pub fn output(&self) -> &Tensor {
        &self.output
    }

    /// `J v`, `[b, …]`: `v` is one image `[C, H, W]` shared by all images or `[b, C, H, W]`.
    pub fn jvp(&self, v: &Tensor) -> Result<Tensor> {
        let v = broadcast_tangent(&self.input_dims, self.net.dtype, v)?;
        Ok(tangent_nodes(&self.net.nodes, &self.lins, &v)?)
    }

    /// `Jᵢᵀ uᵢ` per image, `[b, C, H, W]`, for `u` of the output's shape.
    pub fn vjp(&self, u: &Tensor) -> Result<Tensor> {
        if u.dims() != self.output.dims() {
            return Err(AdvError::shape(
                "vjp cotangent u",
                format!("{:?}", self.output.dims()),
                format!("{:?}", u.dims()),
            ));
        }
        let u = u.to_dtype(self.net.dtype)?;
        Ok(adjoint_nodes(&self.net.nodes, &self.lins, &u)?)
    }
}

fn broadcast_tangent(dims: &[usize], dtype: DType, v: &Tensor) -> Result<Tensor> {
    let v = v.to_dtype(dtype)?;
    if v.dims() == &dims[1..] {
        Ok(v.unsqueeze(0)?.broadcast_as(dims)?.contiguous()?)
    } else if v.dims() == dims {
        Ok(v)
    } else {
        Err(AdvError::shape(
            "jvp tangent v",
            format!("{:?} (shared) or {:?} (per image)", &dims[1..], dims),
            format!("{:?}", v.dims()),
        ))
    }
}

/// One layer of a [`Net`]. Build the weighted ones with [`Layer::conv2d`], [`Layer::linear`],
/// [`Layer::batch_norm`], [`Layer::residual`]; name a layer's output with [`Layer::named`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Layer {
    /// `(x − mean[c]) / std[c]` per channel (ImageNet input normalisation).
    Normalize { mean: Tensor, std: Tensor },
    /// 2-d convolution `W ∗ x + b`.
    Conv2d { conv: Conv2d, linear_part: Conv2d },
    /// Affine map `x Wᵀ + b` on `[N, D]`.
    Linear { linear: Linear, linear_part: Linear },
    /// Batch normalisation with running statistics (evaluation mode).
    BatchNorm { bn: BatchNorm, scale: Tensor },
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)` (smooth networks for finite-difference tests).
    Tanh,
    /// k×k max pool with stride k, floor mode (`nn_core::layers::max_pool2d`).
    MaxPool { k: usize },
    /// k×k max pool with stride `stride` and padding `padding` (`nn_core::layers::max_pool2d_strided`).
    MaxPoolStrided {
        k: usize,
        stride: usize,
        padding: usize,
    },
    /// Mean over the spatial axes: `[N, C, H, W] → [N, C]`.
    GlobalAvgPool,
    /// PyTorch `AdaptiveAvgPool2d((out_h, out_w))`: bin `i` averages rows `⌊i·H/out_h⌋ … ⌈(i+1)·H/out_h⌉ − 1`.
    AdaptiveAvgPool { out_h: usize, out_w: usize },
    /// `[N, …] → [N, ∏ …]`.
    Flatten,
    /// `main(x) + shortcut(x)`; an empty shortcut is the identity.
    Residual {
        main: Vec<Node>,
        shortcut: Vec<Node>,
    },
}

/// A layer and, optionally, the name under which its output is tapped.
#[derive(Clone, Debug)]
pub struct Node {
    pub layer: Layer,
    pub name: Option<String>,
}

impl From<Layer> for Node {
    fn from(layer: Layer) -> Node {
        Node { layer, name: None }
    }
}

impl Layer {
    /// Convolution with `weight` `[C_out, C_in, k, k]`, optional `bias` `[C_out]`.
    pub fn conv2d(weight: Tensor, bias: Option<Tensor>, stride: usize, padding: usize) -> Layer {
        let cfg = Conv2dParams {
            padding,
            stride,
            ..Default::default()
        };
        Layer::Conv2d {
            linear_part: Conv2d::new(weight.clone(), None, cfg),
            conv: Conv2d::new(weight, bias, cfg),
        }
    }

    /// Affine layer with `weight` `[out, in]`, optional `bias` `[out]`.
    pub fn linear(weight: Tensor, bias: Option<Tensor>) -> Layer {
        Layer::Linear {
            linear_part: Linear::new(weight.clone(), None),
            linear: Linear::new(weight, bias),
        }
    }

    /// Batch norm in evaluation mode: `(x − running_mean)/√(running_var + eps) · weight + bias`.
    pub fn batch_norm(
        weight: Tensor,
        bias: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        eps: f64,
    ) -> Result<Layer> {
        let c = weight.dims1()?;
        let shape = (1, c, 1, 1);
        // The tangent factor, with candle's own order of operations: ẋ / √(σ² + ε) · γ.
        let denom = (running_var.reshape(shape)? + eps)?.sqrt()?;
        let scale = Tensor::ones(shape, weight.dtype(), weight.device())?
            .broadcast_div(&denom)?
            .broadcast_mul(&weight.reshape(shape)?)?;
        let bn = BatchNorm::new(c, running_mean, running_var, weight, bias, eps)?;
        Ok(Layer::BatchNorm { bn, scale })
    }

    /// A residual block `main(x) + shortcut(x)`.
    pub fn residual(main: Vec<Node>, shortcut: Vec<Node>) -> Layer {
        Layer::Residual { main, shortcut }
    }

    /// This layer with its output tapped as `name`.
    pub fn named(self, name: impl Into<String>) -> Node {
        Node {
            layer: self,
            name: Some(name.into()),
        }
    }
}

/// A classifier as a list of (optionally named) layers, with exact `J v` and `Jᵀ u` for every named layer.
#[derive(Clone, Debug)]
pub struct Net {
    name: String,
    input: InputSpec,
    nodes: Vec<Node>,
    layers: Vec<(String, Vec<usize>)>,
    dtype: DType,
    device: Device,
}

impl Net {
    /// Builds a network for `input`; the last node must be named `logits` and produce `[N, num_classes]`,
    /// names must be unique. Runs one forward pass on a zero image to check the shapes.
    pub fn new(name: &str, input: InputSpec, nodes: Vec<Node>) -> Result<Net> {
        let Some(last) = nodes.last() else {
            return Err(AdvError::invalid(
                "nodes",
                "a network needs at least one layer",
            ));
        };
        if last.name.as_deref() != Some("logits") {
            return Err(AdvError::invalid(
                "nodes",
                format!("the last layer must be named `logits`, got {:?}", last.name),
            ));
        }
        let (dtype, device) = first_weight(&nodes)
            .map(|w| (w.dtype(), w.device().clone()))
            .unwrap_or((DType::F32, Device::Cpu));
        let mut net = Net {
            name: name.to_string(),
            input,
            nodes,
            layers: Vec::new(),
            dtype,
            device,
        };
        let x = Tensor::zeros(
            (1, input.channels, input.height, input.width),
            dtype,
            &net.device,
        )?;
        let mut layers: Vec<(String, Vec<usize>)> = Vec::new();
        let logits = forward_nodes(&net.nodes, &x, None, &mut |n, t| {
            layers.push((n.to_string(), t.dims()[1..].to_vec()))
        })
        .map_err(|e| {
            AdvError::invalid(
                "nodes",
                format!("network `{name}` does not run on {input:?}: {e}"),
            )
        })?
        .0;
        let mut seen = std::collections::HashSet::new();
        if let Some((dup, _)) = layers.iter().find(|(n, _)| !seen.insert(n.clone())) {
            return Err(AdvError::invalid(
                "nodes",
                format!("layer name `{dup}` is used twice"),
            ));
        }
        if logits.dims() != [1, input.num_classes] {
            return Err(AdvError::shape(
                format!("logits of network `{name}`"),
                format!("[N, {}]", input.num_classes),
                format!("{:?}", logits.dims()),
            ));
        }
        net.layers = layers;
        Ok(net)
    }

    /// The `Net` equivalent of an nn-core model (`Mlp`, `LeNet`, `VggSmall`, `ResNetSmall`) whose variables
    /// are in `varmap` under the names the nn-core constructors use. The tensors are shared with the
    /// `VarMap`, so later training is visible. Layer names equal the model's activation names.
    pub fn from_nn_core(config: &ModelConfig, varmap: &VarMap) -> Result<Net> {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| AdvError::invalid("varmap", "lock poisoned"))?;
        // Detached: the same storage, but not a variable, so the attacks' tensor arithmetic records no
        // autograd graph. With the variables themselves every result kept its inputs alive, and an
        // iterative attack (x_{k+1} from J x_k) chained all its iterations in memory (1.9 GB for 12
        // power-method iterations on ResNet-small).
        let vars: HashMap<String, Tensor> = data
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect();
        drop(data);
        let w = Weights {
            map: &vars,
            source: format!("VarMap of a {} model", config.kind),
        };
        let nodes = match config.kind {
            ModelKind::Mlp => {
                let mut nodes = vec![Node::from(Layer::Flatten)];
                for i in 1..=config.mlp_widths.len() {
                    nodes.push(w.linear(&format!("fc{i}"))?.named(format!("fc{i}")));
                    nodes.push(Layer::Relu.named(format!("relu{i}")));
                }
                nodes.push(w.linear("out")?.named("logits"));
                nodes
            }
            ModelKind::Lenet => vec![
                w.conv("conv1", 1, 0)?.named("conv1"),
                Layer::Relu.named("relu1"),
                Layer::MaxPool { k: 2 }.named("pool1"),
                w.conv("conv2", 1, 0)?.named("conv2"),
                Layer::Relu.named("relu2"),
                Layer::MaxPool { k: 2 }.named("pool2"),
                Layer::Flatten.into(),
                w.linear("fc1")?.named("fc1"),
                Layer::Relu.named("relu3"),
                w.linear("fc2")?.named("logits"),
            ],
            ModelKind::VggSmall => {
                let mut nodes = Vec::new();
                for b in 1..=3 {
                    for i in 1..=2 {
                        nodes.push(
                            w.conv(&format!("block{b}.conv{i}"), 1, 1)?
                                .named(format!("block{b}_conv{i}")),
                        );
                        nodes.push(Layer::Relu.named(format!("block{b}_relu{i}")));
                    }
                    nodes.push(Layer::MaxPool { k: 2 }.named(format!("block{b}_pool")));
                }
                nodes.push(Layer::Flatten.into());
                nodes.push(w.linear("fc1")?.named("fc1"));
                nodes.push(Layer::Relu.named("relu_fc1"));
                nodes.push(w.linear("fc2")?.named("logits"));
                nodes
            }
            ModelKind::ResnetSmall => {
                // `conv → BN`, or a biased conv for the variant without batch norm.
                let conv_bn = |p: &str, stride: usize, pad: usize| -> Result<Vec<Node>> {
                    let mut layers = vec![w.conv(&format!("{p}.conv"), stride, pad)?.into()];
                    if config.batch_norm {
                        layers.push(w.batch_norm(&format!("{p}.bn"), 1e-5)?.into());
                    }
                    Ok(layers)
                };
                let mut nodes = conv_bn("stem", 1, 1)?;
                nodes.push(Layer::Relu.named("stem"));
                for s in 1..=3 {
                    let stride = if s == 1 { 1 } else { 2 };
                    let p = format!("stage{s}");
                    let mut main = conv_bn(&format!("{p}.a"), stride, 1)?;
                    main.push(Layer::Relu.into());
                    main.extend(conv_bn(&format!("{p}.b"), 1, 1)?);
                    let shortcut = if w.has(&format!("{p}.shortcut.conv.weight")) {
                        conv_bn(&format!("{p}.shortcut"), stride, 0)?
                    } else {
                        Vec::new()
                    };
                    nodes.push(Layer::residual(main, shortcut).into());
                    nodes.push(Layer::Relu.named(p));
                }
                nodes.push(Layer::GlobalAvgPool.named("pool"));
                nodes.push(w.linear("fc")?.named("logits"));
                nodes
            }
            other => {
                return Err(AdvError::invalid(
                    "model",
                    format!("no Net layout for model kind `{other}` yet"),
                ));
            }
        };
        Net::new(config.kind.as_str(), config.input, nodes)
    }

    /// A copy of the network with every parameter converted to `dtype` (e.g. f64 for precise Jacobian
    /// analysis); the copy no longer shares storage with a `VarMap`.
    pub fn to_dtype(&self, dtype: DType) -> Result<Net> {
        let nodes = convert_nodes(&self.nodes, dtype)?;
        Net::new(&self.name, self.input, nodes)
    }

    /// The network's name (e.g. `lenet`, `vgg16`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The input images it takes and its number of classes.
    pub fn input(&self) -> InputSpec {
        self.input
    }

    /// Names of the tapped layers in forward order (the last is `logits`).
    pub fn layer_names(&self) -> Vec<String> {
        self.layers.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Shape of one image's activation at `layer` (without the batch axis).
    pub fn layer_shape(&self, layer: &str) -> Result<Vec<usize>> {
        self.check_layer(layer)?;
        Ok(self
            .layers
            .iter()
            .find(|(n, _)| n == layer)
            .map(|(_, s)| s.clone())
            .unwrap_or_default())
    }

    /// `Ok` if `layer` exists, otherwise [`AdvError::UnknownLayer`] listing the valid names.
    pub fn check_layer(&self, layer: &str) -> Result<()> {
        if self.layers.iter().any(|(n, _)| n == layer) {
            Ok(())
        } else {
            Err(AdvError::UnknownLayer {
                layer: layer.to_string(),
                valid: self.layer_names().join(", "),
            })
        }
    }

    /// Parameter dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Parameter device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn check_images(&self, x: &Tensor, what: &str) -> Result<()> {
        let i = self.input;
        match x.dims() {
            [_, c, h, w] if (*c, *h, *w) == (i.channels, i.height, i.width) => Ok(()),
            d => Err(AdvError::shape(
                format!("{what} for network `{}`", self.name),
                format!("[N, {}, {}, {}]", i.channels, i.height, i.width),
                format!("{d:?}"),
            )),
        }
    }

    /// Every named activation of `x`, in forward order.
    pub fn forward_activations(&self, x: &Tensor) -> Result<Vec<(String, Tensor)>> {
        self.check_images(x, "images")?;
        let x = x.to_dtype(self.dtype)?;
        let mut acts = Vec::new();
        forward_nodes(&self.nodes, &x, None, &mut |n, t| {
            acts.push((n.to_string(), t.clone()))
        })?;
        Ok(acts)
    }

    /// The activation `layer` of `x` (`[N, …]`), running the network only up to that layer.
    pub fn forward_to(&self, x: &Tensor, layer: &str) -> Result<Tensor> {
        self.check_layer(layer)?;
        self.check_images(x, "images")?;
        Ok(self.forward_to_unchecked(&x.to_dtype(self.dtype)?, layer)?)
    }

    fn forward_to_unchecked(&self, x: &Tensor, layer: &str) -> candle_core::Result<Tensor> {
        Ok(forward_nodes(&self.nodes, x, Some(layer), &mut |_, _| {})?.0)
    }

    /// Exact Jacobian–vector product of the map `x ↦ layer(x)` at each image of `x` (`[b, C, H, W]`):
    /// returns `(layer(x), J v)`, both `[b, …]`. `v` is one image `[C, H, W]` shared by all images (the
    /// stacked Jacobian of SV-UAP) or one tangent per image `[b, C, H, W]`.
    pub fn jvp(&self, x: &Tensor, v: &Tensor, layer: &str) -> Result<(Tensor, Tensor)> {
        let lin = self.linearize(x, layer)?;
        let jv = lin.jvp(v)?;
        Ok((lin.output, jv))
    }

    /// Runs the primal pass of `x` (`[b, C, H, W]`) up to `layer`, recording the ReLU / max-pool masks,
    /// for any number of exact `J v` and `Jᵀ u` products at those images.
    pub fn linearize(&self, x: &Tensor, layer: &str) -> Result<Linearization<'_>> {
        self.check_layer(layer)?;
        self.check_images(x, "images")?;
        let x = x.to_dtype(self.dtype)?;
        let (output, lins) = linearize_nodes(&self.nodes, &x, Some(layer))?;
        Ok(Linearization {
            net: self,
            lins,
            output,
            input_dims: x.dims().to_vec(),
        })
    }

    /// Vector–Jacobian product per image: `Jᵢᵀ uᵢ` for each image `xᵢ` of `x` (`[b, C, H, W]`), with `u`
    /// of the layer's batched shape `[b, …]`, by candle's autograd through the primal forward
    /// ([`nn_core::grad::vjp`]) — the independent reference for the faster [`Linearization::vjp`].
    /// Summing over the batch gives the stacked `Jᵀ u` of SV-UAP.
    pub fn vjp(&self, x: &Tensor, u: &Tensor, layer: &str) -> Result<Tensor> {
        self.check_layer(layer)?;
        self.check_images(x, "images")?;
        let x = x.to_dtype(self.dtype)?;
        let expected: Vec<usize> = std::iter::once(x.dim(0)?)
            .chain(self.layer_shape(layer)?)
            .collect();
        if u.dims() != expected.as_slice() {
            return Err(AdvError::shape(
                format!("vjp cotangent u at layer `{layer}`"),
                format!("{expected:?}"),
                format!("{:?}", u.dims()),
            ));
        }
        Ok(nn_core::grad::vjp(
            |z| self.forward_to_unchecked(z, layer),
            &x,
            u,
        )?)
    }
}

fn convert_nodes(nodes: &[Node], dt: DType) -> Result<Vec<Node>> {
    nodes
        .iter()
        .map(|n| {
            let layer = match &n.layer {
                Layer::Normalize { mean, std } => Layer::Normalize {
                    mean: mean.to_dtype(dt)?,
                    std: std.to_dtype(dt)?,
                },
                Layer::Conv2d { conv, .. } => {
                    let c = conv.params();
                    Layer::conv2d(
                        conv.weight().to_dtype(dt)?,
                        conv.bias().map(|b| b.to_dtype(dt)).transpose()?,
                        c.stride,
                        c.padding,
                    )
                }
                Layer::Linear { linear, .. } => Layer::linear(
                    linear.weight().to_dtype(dt)?,
                    linear.bias().map(|b| b.to_dtype(dt)).transpose()?,
                ),
                Layer::BatchNorm { bn, .. } => {
                    let (w, b) = bn.weight_and_bias().ok_or_else(|| {
                        AdvError::invalid("batch_norm", "batch norm without weight and bias")
                    })?;
                    Layer::batch_norm(
                        w.to_dtype(dt)?,
                        b.to_dtype(dt)?,
                        bn.running_mean().to_dtype(dt)?,
                        bn.running_var().to_dtype(dt)?,
                        bn.eps(),
                    )?
                }
                Layer::Residual { main, shortcut } => {
                    Layer::residual(convert_nodes(main, dt)?, convert_nodes(shortcut, dt)?)
                }
                other => other.clone(),
            };
            Ok(Node {
                layer,
                name: n.name.clone(),
            })
        })
        .collect()
}

fn first_weight(nodes: &[Node]) -> Option<Tensor> {
    nodes.iter().find_map(|n| match &n.layer {
        Layer::Conv2d { conv, .. } => Some(conv.weight().clone()),
        Layer::Linear { linear, .. } => Some(linear.weight().clone()),
        Layer::Residual { main, .. } => first_weight(main),
        _ => None,
    })
}

impl LogitModel for Net {
    fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Ok(forward_nodes(&self.nodes, &x.to_dtype(self.dtype)?, None, &mut |_, _| {})?.0)
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    /// One linearised forward; every pullback is a hand-written transpose pass (no autograd graph).
    fn linearize_logits(&self, x: &Tensor) -> Result<(Tensor, Pullback<'_>)> {
        let lin = self.linearize(x, "logits")?;
        let out = lin.output.clone();
        Ok((out, Box::new(move |u: &Tensor| lin.vjp(u))))
    }
}

/// Named tensors with shape-checked access, naming the source in every error.
pub(crate) struct Weights<'a> {
    pub(crate) map: &'a HashMap<String, Tensor>,
    pub(crate) source: String,
}

impl Weights<'_> {
    pub(crate) fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    pub(crate) fn get(&self, name: &str) -> Result<Tensor> {
        self.map.get(name).cloned().ok_or_else(|| {
            let prefix = name.split('.').next().unwrap_or(name);
            let mut near: Vec<&str> = self
                .map
                .keys()
                .filter(|k| k.starts_with(prefix))
                .map(String::as_str)
                .collect();
            near.sort_unstable();
            AdvError::invalid(
                "weights",
                format!(
                    "{} has no tensor `{name}` (tensors starting with `{prefix}`: {})",
                    self.source,
                    if near.is_empty() {
                        "none".to_string()
                    } else {
                        near.join(", ")
                    }
                ),
            )
        })
    }

    pub(crate) fn conv(&self, prefix: &str, stride: usize, padding: usize) -> Result<Layer> {
        let weight = self.get(&format!("{prefix}.weight"))?;
        weight.dims4().map_err(|_| {
            AdvError::shape(
                format!("{} tensor `{prefix}.weight`", self.source),
                "[C_out, C_in, k, k]",
                format!("{:?}", weight.dims()),
            )
        })?;
        let bias = self.map.get(&format!("{prefix}.bias")).cloned();
        Ok(Layer::conv2d(weight, bias, stride, padding))
    }

    pub(crate) fn linear(&self, prefix: &str) -> Result<Layer> {
        let weight = self.get(&format!("{prefix}.weight"))?;
        let bias = self.map.get(&format!("{prefix}.bias")).cloned();
        Ok(Layer::linear(weight, bias))
    }

    pub(crate) fn batch_norm(&self, prefix: &str, eps: f64) -> Result<Layer> {
        Layer::batch_norm(
            self.get(&format!("{prefix}.weight"))?,
            self.get(&format!("{prefix}.bias"))?,
            self.get(&format!("{prefix}.running_mean"))?,
            self.get(&format!("{prefix}.running_var"))?,
            eps,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_layers_list_the_valid_ones() {
        let dev = Device::Cpu;
        let w = Tensor::ones((3, 4), DType::F32, &dev).unwrap();
        let net = Net::new(
            "t",
            InputSpec::new(1, 2, 2, 3),
            vec![
                Layer::Flatten.named("flat"),
                Layer::linear(w, None).named("logits"),
            ],
        )
        .unwrap();
        let e = net.check_layer("conv9").unwrap_err().to_string();
        assert!(e.contains("conv9") && e.contains("flat, logits"), "{e}");
        let x = Tensor::zeros((2, 1, 3, 3), DType::F32, &dev).unwrap();
        assert!(matches!(
            net.forward_to(&x, "logits"),
            Err(AdvError::Shape { .. })
        ));
        // Duplicate names and a missing `logits` are rejected.
        let w = Tensor::ones((3, 4), DType::F32, &dev).unwrap();
        assert!(
            Net::new(
                "t",
                InputSpec::new(1, 2, 2, 3),
                vec![Layer::Flatten.named("a"), Layer::linear(w, None).named("a")],
            )
            .is_err()
        );
    }
}
