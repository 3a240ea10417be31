//! Adversarial kernels on MNIST-sized inputs with random weights: one SV-UAP power iteration (one exact
//! `J v` by the linearised forward plus one `Jᵀ u` by backward, stacked over 64 images) at a hidden layer
//! of LeNet and VGG-small, and one batched DeepFool call (64 images, 10 candidate classes, ≤ 50 steps) on
//! LeNet; and `Jᵀ u` by the hand-written transpose pass against candle's autograd. Run with
//! `cargo bench -p benches --bench adversarial`; record `RAYON_NUM_THREADS` with the numbers.

use adversarial::attacks::{DeepFoolConfig, deepfool};
use adversarial::net::Net;
use adversarial::norm::Norm;
use adversarial::power::{LayerJacobian, LinearOperator, psi};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use criterion::{Criterion, criterion_group, criterion_main};
use nn_core::models::{InputSpec, ModelConfig, ModelKind, SeededVarMap, build_model};

fn net(kind: ModelKind) -> Net {
    let config = ModelConfig::new(kind, InputSpec::new(1, 28, 28, 10));
    let varmap = VarMap::new();
    build_model(
        &config,
        SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu),
    )
    .unwrap();
    Net::from_nn_core(&config, &varmap).unwrap()
}

fn images(n: usize) -> Tensor {
    nn_core::grad::seeded_normal(&[n, 1, 28, 28], DType::F32, &Device::Cpu, 1)
        .unwrap()
        .affine(0.3, 0.3)
        .unwrap()
        .clamp(0.0, 1.0)
        .unwrap()
}

fn bench_power_iteration(c: &mut Criterion) {
    let x = images(64);
    let mut group = c.benchmark_group("sv_uap_power_iteration_64_images");
    group.sample_size(10);
    for (kind, layer) in [
        (ModelKind::Lenet, "pool2"),
        (ModelKind::VggSmall, "block2_pool"),
    ] {
        let net = net(kind);
        let op = LayerJacobian::new(&net, &x, layer).unwrap();
        let v = nn_core::grad::seeded_normal(&[1, 28, 28], DType::F32, &Device::Cpu, 2)
            .unwrap()
            .sign()
            .unwrap();
        group.bench_function(format!("{kind}/{layer}"), |b| {
            b.iter(|| {
                // One iteration of the generalised power method (p = ∞, q = 5).
                let a = op.apply(&v).unwrap();
                let s = op.apply_transpose(&psi(&a, Norm::L(5.0)).unwrap()).unwrap();
                s.sign().unwrap()
            })
        });
    }
    group.finish();
}

/// `Jᵀ u` at a hidden layer for 64 images: the hand-written transpose pass (what every attack on a `Net`
/// uses) against candle's autograd (`nn_core::grad::vjp`, the reference in the tests), primal pass included.
fn bench_vjp(c: &mut Criterion) {
    let x = images(64);
    let mut group = c.benchmark_group("vjp_64_images");
    group.sample_size(10);
    for (kind, layer) in [
        (ModelKind::Lenet, "logits"),
        (ModelKind::VggSmall, "logits"),
    ] {
        let net = net(kind);
        let shape: Vec<usize> = std::iter::once(64)
            .chain(net.layer_shape(layer).unwrap())
            .collect();
        let u = nn_core::grad::seeded_normal(&shape, DType::F32, &Device::Cpu, 3).unwrap();
        group.bench_function(format!("{kind}/{layer}/transpose-pass"), |b| {
            b.iter(|| net.linearize(&x, layer).unwrap().vjp(&u).unwrap())
        });
        group.bench_function(format!("{kind}/{layer}/candle-autograd"), |b| {
            b.iter(|| net.vjp(&x, &u, layer).unwrap())
        });
    }
    group.finish();
}

fn bench_deepfool(c: &mut Criterion) {
    let x = images(64);
    let net = net(ModelKind::Lenet);
    let mut group = c.benchmark_group("deepfool_64_images");
    group.sample_size(10);
    group.bench_function("lenet", |b| {
        b.iter(|| deepfool(&net, &x, &DeepFoolConfig::default()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_power_iteration, bench_vjp, bench_deepfool);
criterion_main!(benches);
