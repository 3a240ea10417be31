//! Acceptance 1: the linearised forward is the exact Jacobian.
//! * `⟨J v, u⟩ = ⟨v, Jᵀ u⟩` to 1e-5 relative for every hidden layer of MLP, LeNet, VGG-small and
//!   ResNet-small (random weights, batch-norm statistics made non-trivial), and of reduced torchvision
//!   VGG-16 and ResNet-50 at a few layers;
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
    let mut config = ModelConfig::new(kind, InputSpec::new(1, 28, 28, 10));
    config.mlp_widths = vec![64, 32];
    let varmap = VarMap::new();
    let vb = SeededVarMap::var_builder(&varmap, 3, DType::F32, &Device::Cpu);
    let m = build_model(&config, vb).unwrap();
    if kind == ModelKind::ResnetSmall {
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
    for kind in ModelKind::ALL {
        let (config, varmap, m) = model(kind);
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

/// `⟨J v, u⟩` vs `⟨v, Jᵀ u⟩` at `layer` for the stacked Jacobian (shared v), via `adjoint_check`.
fn stacked_adjoint_error(net: &Net, x: &Tensor, layer: &str, seed: u64) -> f64 {
    let b = x.dim(0).unwrap();
    let out: Vec<usize> = std::iter::once(b)
        .chain(net.layer_shape(layer).unwrap())
        .collect();
    let msg = |e: adversarial::AdvError| candle_core::Error::Msg(e.to_string());
    adjoint_check(
        |v| Ok(net.jvp(x, v, layer).map_err(msg)?.1),
        |u| net.vjp(x, u, layer).map_err(msg)?.sum(0),
        &x.dims()[1..],
        &out,
        net.dtype(),
        seed,
    )
    .unwrap()
}

#[test]
fn adjoint_identity_holds_for_every_hidden_layer_in_f64() {
    // In f64 the identity holds to ~1e-15 relative; random u, v can make ⟨J v, u⟩ small by cancellation,
    // which f64 leaves far below the 1e-5 requirement.
    let x = images(3, 2).to_dtype(DType::F64).unwrap();
    for kind in ModelKind::ALL {
        let (config, varmap, _) = model(kind);
        let net = Net::from_nn_core(&config, &varmap)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        for (i, layer) in net.layer_names().iter().enumerate() {
            let err = stacked_adjoint_error(&net, &x, layer, i as u64);
            assert!(err < 1e-10, "{kind} layer {layer}: adjoint error {err}");
        }
    }
}

#[test]
fn adjoint_identity_holds_for_every_hidden_layer_in_f32() {
    // f32, the dtype models are trained in. u is aligned with J v (uᵢ = sign((J v)ᵢ)·|gᵢ|) so that
    // ⟨J v, u⟩ = Σ |(J v)ᵢ|·|gᵢ| has no cancellation and the relative error measures the Jacobians, not
    // the f32 rounding of a near-zero sum. Any mask mismatch between J v and Jᵀ u still shows.
    let x = images(3, 2);
    let inner = |a: &Tensor, b: &Tensor| {
        (a.to_dtype(DType::F64).unwrap() * b.to_dtype(DType::F64).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    for kind in ModelKind::ALL {
        let (config, varmap, _) = model(kind);
        let net = Net::from_nn_core(&config, &varmap).unwrap();
        for (i, layer) in net.layer_names().iter().enumerate() {
            let v = seeded_normal(&[1, 28, 28], DType::F32, &Device::Cpu, 100 + i as u64).unwrap();
            let (_, jv) = net.jvp(&x, &v, layer).unwrap();
            let g = seeded_normal(jv.dims(), DType::F32, &Device::Cpu, 200 + i as u64).unwrap();
            let u = (jv.sign().unwrap() * g.abs().unwrap()).unwrap();
            let jtu = net.vjp(&x, &u, layer).unwrap().sum(0).unwrap();
            let (lhs, rhs) = (inner(&jv, &u), inner(&v, &jtu));
            let err = (lhs - rhs).abs() / lhs.abs().max(rhs.abs());
            assert!(
                err < 1e-5,
                "{kind} layer {layer}: ⟨Jv,u⟩ = {lhs}, ⟨v,Jᵀu⟩ = {rhs}, error {err}"
            );
        }
    }
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
            let err = stacked_adjoint_error(&net, &x, layer, i as u64);
            assert!(
                err < 1e-10,
                "{} layer {layer}: adjoint error {err}",
                arch.as_str()
            );
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
    for kind in ModelKind::ALL {
        let (config, varmap, _) = model(kind);
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
