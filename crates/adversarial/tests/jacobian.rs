//! Acceptance 1: the linearised forward is the exact Jacobian.
//! * `⟨J v, u⟩ = ⟨v, Jᵀ u⟩` for every hidden layer of MLP, LeNet, VGG-small and ResNet-small (with and
//!   without batch norm; random weights, batch-norm statistics made non-trivial, random u and v,
//!   hand-written and autograd transposes): in f64 to < 1e-10 relative to the inner products; in f32
//!   to < 1e-5 relative to ‖J v‖·‖u‖ (the measures are defined at [`AdjointErrors`]); and of reduced
//!   torchvision VGG-16 and ResNet-50 at a few layers;
//! * `Net` reproduces the nn-core model's activations at every tap;
//! * `J v` equals the central finite difference on a smooth tanh network in f64 to 1e-6.

use adversarial::net::{Layer, Net};
use adversarial::torchvision::{TorchArch, TorchOptions, random_weights, torchvision_net};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use nn_core::grad::{adjoint_check, seeded_normal};
use nn_core::models::{Classifier, InputSpec, ModelConfig, ModelKind, SeededVarMap, build_model};

fn images(n: usize, seed: u64) -> Tensor {
    // Values in [0, 1] with some exact zeros (saturated background, as in MNIST).
    seeded_normal(&[n, 1, 28, 28], DType::F32, &Device::Cpu, seed)
        .unwrap()
        .affine(0.5, 0.2)
        .unwrap()
        .clamp(0.0, 1.0)
        .unwrap()
}

fn model(kind: ModelKind) -> (ModelConfig, VarMap, Box<dyn Classifier>) {
    model_of(ModelConfig::new(kind, InputSpec::new(1, 28, 28, 10)))
}

/// Every nn-core model kind, plus ResNet-small without batch norm, each with a label for messages.
fn every_model() -> Vec<(String, ModelConfig)> {
    let input = InputSpec::new(1, 28, 28, 10);
    let mut cases: Vec<(String, ModelConfig)> = ModelKind::ALL
        .iter()
        .map(|&k| (k.to_string(), ModelConfig::new(k, input)))
        .collect();
    cases.push((
        "resnet-small (no BN)".into(),
        ModelConfig::new(ModelKind::ResnetSmall, input).with_batch_norm(false),
    ));
    cases
}

fn model_of(mut config: ModelConfig) -> (ModelConfig, VarMap, Box<dyn Classifier>) {
    config.mlp_widths = vec![64, 32];
    let varmap = VarMap::new();
    let vb = SeededVarMap::var_builder(&varmap, 3, DType::F32, &Device::Cpu);
    let m = build_model(&config, vb).unwrap();
    if config.kind == ModelKind::ResnetSmall && config.batch_norm {
        // One training-mode pass moves the running statistics away from (0, 1).
        for _ in 0..3 {
            m.forward_t(&images(16, 9), true).unwrap();
        }
    }
    (config, varmap, m)
}

fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let d = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
    let s = b
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
    d / s.max(1e-12)
}

#[test]
fn net_reproduces_every_nn_core_activation() {
    let x = images(4, 1);
    for (kind, config) in every_model() {
        let (config, varmap, m) = model_of(config);
        let net = Net::from_nn_core(&config, &varmap).unwrap();
        let theirs = m.forward_activations(&x, false).unwrap();
        let ours = net.forward_activations(&x).unwrap();
        let names: Vec<&str> = theirs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(net.layer_names(), names, "{kind}");
        for ((n, a), (_, b)) in ours.iter().zip(&theirs) {
            let e = max_rel_diff(a, b);
            assert!(e < 1e-6, "{kind} layer {n}: relative difference {e}");
        }
    }
}

/// How `Jᵀ u` is computed in an adjoint test.
#[derive(Clone, Copy, Debug)]
enum Transpose {
    /// The hand-written transpose pass ([`adversarial::Linearization::vjp`]) used by the power method
    /// and every attack on a `Net`.
    Manual,
    /// candle's autograd through the `Net`'s forward pass ([`Net::vjp`]).
    Autograd,
}

/// The two measures of one adjoint test `⟨J v, u⟩ = ⟨v, Jᵀ u⟩` (inner products accumulated in f64):
/// * `rel_inner = |⟨J v, u⟩ − ⟨v, Jᵀ u⟩| / max(|⟨J v, u⟩|, |⟨v, Jᵀ u⟩|)` — relative to the inner products
///   themselves; with random `u` these can be near zero by cancellation, and then f32 rounding alone
///   makes this large;
/// * `rel_scale = |⟨J v, u⟩ − ⟨v, Jᵀ u⟩| / (‖J v‖₂·‖u‖₂)` — relative to the Cauchy–Schwarz bound of the
///   inner product, the standard normalisation of adjoint tests in floating point: rounding makes it
///   ≈ the unit round-off times a modest factor whatever the cancellation, while a wrong mask, tie rule
///   or missing term gives O(1).
#[derive(Clone, Copy, Debug, Default)]
struct AdjointErrors {
    rel_inner: f64,
    rel_scale: f64,
}

impl AdjointErrors {
    fn max(self, o: AdjointErrors) -> AdjointErrors {
        AdjointErrors {
            rel_inner: self.rel_inner.max(o.rel_inner),
            rel_scale: self.rel_scale.max(o.rel_scale),
        }
    }
}

fn inner64(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_dtype(DType::F64).unwrap() * b.to_dtype(DType::F64).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// Adjoint test of the **stacked** Jacobian of `layer` over the images `x` (one `v` shared by all
/// images, `Jᵀ u = Σⱼ Jⱼᵀ uⱼ`) with seeded standard-normal `v` and `u` in the net's dtype.
fn stacked_adjoint_errors(
    net: &Net,
    x: &Tensor,
    layer: &str,
    seed: u64,
    transpose: Transpose,
) -> AdjointErrors {
    let dt = net.dtype();
    let lin = net.linearize(x, layer).unwrap();
    let v = seeded_normal(&x.dims()[1..], dt, &Device::Cpu, seed).unwrap();
    let u = seeded_normal(lin.output().dims(), dt, &Device::Cpu, seed + 7919).unwrap();
    let jv = lin.jvp(&v).unwrap();
    assert_eq!(jv.dims(), u.dims(), "{layer}");
    let jtu = match transpose {
        Transpose::Manual => lin.vjp(&u).unwrap(),
        Transpose::Autograd => net.vjp(x, &u, layer).unwrap(),
    }
    .sum(0)
    .unwrap();
    let (lhs, rhs) = (inner64(&jv, &u), inner64(&v, &jtu));
    let diff = (lhs - rhs).abs();
    let scale = inner64(&jv, &jv).sqrt() * inner64(&u, &u).sqrt();
    let tiny = f64::MIN_POSITIVE;
    AdjointErrors {
        rel_inner: diff / lhs.abs().max(rhs.abs()).max(tiny),
        rel_scale: diff / scale.max(tiny),
    }
}

/// Worst adjoint errors of every hidden layer of every nn-core model (3 images, 3 seeds of (u, v) per
/// layer), per model, in `dtype`; printed (run with `--nocapture` to see them).
fn worst_adjoint_errors(dtype: DType) -> Vec<(String, usize, AdjointErrors)> {
    let x = images(3, 2).to_dtype(dtype).unwrap();
    let mut out = Vec::new();
    for (kind, config) in every_model() {
        let (config, varmap, _) = model_of(config);
        let net = Net::from_nn_core(&config, &varmap)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let layers = net.layer_names();
        let mut worst = AdjointErrors::default();
        for (i, layer) in layers.iter().enumerate() {
            for s in 0..3 {
                for t in [Transpose::Manual, Transpose::Autograd] {
                    let e = stacked_adjoint_errors(&net, &x, layer, (10 * i + s) as u64, t);
                    assert!(
                        e.rel_scale.is_finite() && e.rel_inner.is_finite(),
                        "{kind} {layer} {t:?}: {e:?}"
                    );
                    worst = worst.max(e);
                }
            }
        }
        eprintln!(
            "{dtype:?} {kind}: {} layers, worst rel_inner {:.2e}, worst rel_scale {:.2e}",
            layers.len(),
            worst.rel_inner,
            worst.rel_scale
        );
        out.push((kind, layers.len(), worst));
    }
    out
}

#[test]
fn adjoint_identity_holds_for_every_hidden_layer_in_f64() {
    // Acceptance 1: ⟨J v, u⟩ = ⟨v, Jᵀ u⟩ to 1e-5 relative for every hidden layer of LeNet, VGG-small and
    // ResNet-small (and the MLP), with random u and v, for both transposes. In f64 rounding is ~1e-16, so
    // even the cancellation-prone measure stays far below 1e-5; we assert much tighter bounds.
    for (kind, n, e) in worst_adjoint_errors(DType::F64) {
        assert!(n >= 4, "{kind}: only {n} layers");
        assert!(e.rel_inner < 1e-10, "{kind}: {e:?}");
        assert!(e.rel_scale < 1e-13, "{kind}: {e:?}");
    }
}

#[test]
fn adjoint_identity_holds_for_every_hidden_layer_in_f32() {
    // f32, the dtype models are trained in, random u and v: measured relative to ‖J v‖·‖u‖ (see
    // `AdjointErrors`), the identity holds to f32 rounding at every layer. The inner-product-relative
    // measure is printed but not asserted: ⟨J v, u⟩ can be ~1e-3 of ‖J v‖·‖u‖ by cancellation, and
    // rounding alone then gives ~1e-4.
    for (kind, _, e) in worst_adjoint_errors(DType::F32) {
        assert!(e.rel_scale < 1e-5, "{kind}: {e:?}");
    }
}

#[test]
fn adjoint_measure_detects_a_wrong_transpose() {
    // The scale-relative measure is not vacuous: Jᵀ u taken at another layer (a different linear map of
    // the same shapes would do too) fails by orders of magnitude.
    let x = images(3, 2);
    let (config, varmap, _) = model(ModelKind::Lenet);
    let net = Net::from_nn_core(&config, &varmap).unwrap();
    let lin = net.linearize(&x, "fc1").unwrap();
    let v = seeded_normal(&[1, 28, 28], DType::F32, &Device::Cpu, 1).unwrap();
    let u = seeded_normal(lin.output().dims(), DType::F32, &Device::Cpu, 2).unwrap();
    let jv = lin.jvp(&v).unwrap();
    // Jᵀ u with the ReLU masks of other images: the masks no longer match J v's.
    let other = net.linearize(&images(3, 77), "fc1").unwrap();
    let wrong = other.vjp(&u).unwrap().sum(0).unwrap();
    let diff = (inner64(&jv, &u) - inner64(&v, &wrong)).abs();
    let scale = inner64(&jv, &jv).sqrt() * inner64(&u, &u).sqrt();
    assert!(diff / scale > 1e-3, "{}", diff / scale);
}

#[test]
fn adjoint_identity_holds_per_image_tangents() {
    // v of shape [b, C, H, W]: J v per image against the per-image vjp.
    let x = images(2, 4).to_dtype(DType::F64).unwrap();
    let (config, varmap, _) = model(ModelKind::Lenet);
    let net = Net::from_nn_core(&config, &varmap)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let out: Vec<usize> = std::iter::once(2)
        .chain(net.layer_shape("pool2").unwrap())
        .collect();
    let err = adjoint_check(
        |v| {
            Ok(net
                .jvp(&x, v, "pool2")
                .map_err(|e| candle_core::Error::Msg(e.to_string()))?
                .1)
        },
        |u| {
            net.vjp(&x, u, "pool2")
                .map_err(|e| candle_core::Error::Msg(e.to_string()))
        },
        &[2, 1, 28, 28],
        &out,
        DType::F64,
        11,
    )
    .unwrap();
    assert!(err < 1e-10, "{err}");
}

/// Options of a torchvision net with widths / 16 at `side`×`side` inputs, and two such images (f64).
fn reduced_torchvision(side: usize, seed: u64) -> (TorchOptions, Tensor) {
    let opts = TorchOptions {
        height: side,
        width: side,
        num_classes: 10,
        width_divisor: 16,
        fc_width: 32,
        ..Default::default()
    };
    let x = seeded_normal(&[2, 3, side, side], DType::F64, &Device::Cpu, seed)
        .unwrap()
        .affine(0.25, 0.5)
        .unwrap()
        .clamp(0.0, 1.0)
        .unwrap();
    (opts, x)
}

#[test]
fn adjoint_identity_holds_for_reduced_torchvision_nets() {
    let (opts, x) = reduced_torchvision(32, 5);
    for (arch, layers) in [
        (TorchArch::Vgg16, vec!["block2_pool", "avgpool", "logits"]),
        (
            TorchArch::Resnet50,
            vec!["stem", "maxpool", "layer2.0", "logits"],
        ),
    ] {
        let w = random_weights(arch, &opts, 1).unwrap();
        let net = torchvision_net(arch, &w, &opts, "random")
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        for (i, layer) in layers.into_iter().enumerate() {
            for t in [Transpose::Manual, Transpose::Autograd] {
                let e = stacked_adjoint_errors(&net, &x, layer, i as u64, t);
                assert!(
                    e.rel_inner < 1e-10 && e.rel_scale < 1e-13,
                    "{} layer {layer} {t:?}: {e:?}",
                    arch.as_str()
                );
            }
        }
    }
}

#[test]
fn jvp_matches_finite_differences_on_a_smooth_network() {
    let dev = Device::Cpu;
    let w = |shape: &[usize], seed: u64, scale: f64| {
        seeded_normal(shape, DType::F64, &dev, seed)
            .unwrap()
            .affine(scale, 0.0)
            .unwrap()
    };
    let net = Net::new(
        "tanh",
        InputSpec::new(2, 6, 6, 3),
        vec![
            Layer::conv2d(w(&[4, 2, 3, 3], 1, 0.4), Some(w(&[4], 2, 0.1)), 1, 1).named("conv"),
            Layer::Tanh.named("tanh1"),
            Layer::GlobalAvgPool.named("gap"),
            Layer::linear(w(&[5, 4], 3, 0.8), Some(w(&[5], 4, 0.1))).named("fc"),
            Layer::Tanh.named("tanh2"),
            Layer::linear(w(&[3, 5], 5, 0.8), None).named("logits"),
        ],
    )
    .unwrap();
    let x = w(&[2, 2, 6, 6], 6, 1.0);
    let v = w(&[2, 6, 6], 7, 1.0);
    let h = 1e-5;
    for layer in net.layer_names() {
        let (_, jv) = net.jvp(&x, &v, &layer).unwrap();
        let shift = v
            .unsqueeze(0)
            .unwrap()
            .broadcast_as(x.dims())
            .unwrap()
            .affine(h, 0.0)
            .unwrap();
        let fp = net.forward_to(&(&x + &shift).unwrap(), &layer).unwrap();
        let fm = net.forward_to(&(&x - &shift).unwrap(), &layer).unwrap();
        let fd = ((fp - fm).unwrap() / (2.0 * h)).unwrap();
        let diff = (&jv - &fd)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let scale = fd
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(
            diff / scale < 1e-6,
            "layer {layer}: relative error {}",
            diff / scale
        );
    }
}

#[test]
fn unknown_layer_names_list_the_valid_ones() {
    let (config, varmap, _) = model(ModelKind::Lenet);
    let net = Net::from_nn_core(&config, &varmap).unwrap();
    let x = images(1, 0);
    let e = net
        .jvp(&x, &x.get(0).unwrap(), "block9")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("block9") && e.contains("conv1, relu1, pool1"),
        "{e}"
    );
    let e = adversarial::power::sv_uap(&net, &x, "fc7", &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("valid layers are") && e.contains("logits"),
        "{e}"
    );
}

/// `max |a − b| / max |b|`.
fn rel_max(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_dtype(DType::F64).unwrap();
    let b = b.to_dtype(DType::F64).unwrap();
    let d = (&a - &b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    d / b
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
        .max(1e-300)
}

#[test]
fn transpose_pass_equals_candle_autograd_at_every_layer() {
    // The hand-written Jᵀ u (used by every attack on a Net) against nn_core::grad::vjp, in f64.
    let x = images(2, 5).to_dtype(DType::F64).unwrap();
    for (kind, config) in every_model() {
        let (config, varmap, _) = model_of(config);
        let net = Net::from_nn_core(&config, &varmap)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        for (i, layer) in net.layer_names().iter().enumerate() {
            let lin = net.linearize(&x, layer).unwrap();
            let u = seeded_normal(lin.output().dims(), DType::F64, &Device::Cpu, 50 + i as u64)
                .unwrap();
            let manual = lin.vjp(&u).unwrap();
            let autograd = net.vjp(&x, &u, layer).unwrap();
            let e = rel_max(&manual, &autograd);
            assert!(
                e < 1e-10,
                "{kind} layer {layer}: transpose pass differs from autograd by {e}"
            );
        }
    }
    let (opts, x) = reduced_torchvision(40, 6);
    for (arch, layers) in [
        (TorchArch::Vgg19, vec!["block1_pool", "avgpool", "logits"]),
        (
            TorchArch::Resnet50,
            vec!["stem", "maxpool", "layer2.0", "layer4.2", "logits"],
        ),
    ] {
        let w = random_weights(arch, &opts, 2).unwrap();
        let net = torchvision_net(arch, &w, &opts, "random")
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        for (i, layer) in layers.into_iter().enumerate() {
            let lin = net.linearize(&x, layer).unwrap();
            let u = seeded_normal(lin.output().dims(), DType::F64, &Device::Cpu, 70 + i as u64)
                .unwrap();
            let e = rel_max(&lin.vjp(&u).unwrap(), &net.vjp(&x, &u, layer).unwrap());
            assert!(
                e < 1e-10,
                "{} layer {layer}: transpose pass differs from autograd by {e}",
                arch.as_str()
            );
        }
    }
}

#[test]
fn layer_jacobian_operator_is_adjoint() {
    use adversarial::power::{LayerJacobian, LinearOperator};
    let x = images(4, 8).to_dtype(DType::F64).unwrap();
    let (config, varmap, _) = model(ModelKind::ResnetSmall);
    let net = Net::from_nn_core(&config, &varmap)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let op = LayerJacobian::new(&net, &x, "stage2").unwrap();
    let msg = |e: adversarial::AdvError| candle_core::Error::Msg(e.to_string());
    let err = adjoint_check(
        |v| op.apply(v).map_err(msg),
        |u| op.apply_transpose(u).map_err(msg),
        &op.input_shape(),
        &op.output_shape(),
        DType::F64,
        3,
    )
    .unwrap();
    assert!(err < 1e-10, "{err}");
}

#[test]
fn net_records_no_autograd_graph_and_sees_later_training() {
    // The Net's weights are the VarMap's storage, detached: products computed from them record no
    // autograd graph (an iterative attack would otherwise keep every iterate alive through it) ...
    let (config, varmap, _) = model(ModelKind::Lenet);
    let net = Net::from_nn_core(&config, &varmap).unwrap();
    let x = images(2, 3);
    let lin = net.linearize(&x, "fc1").unwrap();
    let v = seeded_normal(&[1, 28, 28], DType::F32, &Device::Cpu, 4).unwrap();
    let jv = lin.jvp(&v).unwrap();
    assert!(!lin.output().track_op() && !jv.track_op());
    assert!(!lin.vjp(&jv).unwrap().track_op());
    // ... and still share it: a change of a variable (as an optimiser step makes) shows in the Net.
    let before = net.forward_activations(&x).unwrap().pop().unwrap().1;
    let w = varmap.data().lock().unwrap()["fc2.weight"].clone();
    w.set(&w.as_tensor().affine(2.0, 0.0).unwrap()).unwrap();
    let after = net.forward_activations(&x).unwrap().pop().unwrap().1;
    assert!(max_rel_diff(&after, &before) > 1e-3);
}
