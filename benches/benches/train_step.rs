//! One training step (forward, cross-entropy, backward, Adam update) of each nn-core classifier — MLP
//! 784-512-512-10, LeNet, VGG-small, ResNet-small (batch norm) — on a batch of 64 MNIST-sized images.
//! Run with `cargo bench -p benches --bench train_step`; record the thread count (`RAYON_NUM_THREADS`)
//! with the numbers. `benches/peers/compare_train_step.py` runs it interleaved with the PyTorch peer
//! (`benches/peers/train_step.py`) and prints the ratios.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use criterion::{Criterion, criterion_group, criterion_main};
use nn_core::layers::cross_entropy;
use nn_core::models::{InputSpec, ModelConfig, ModelKind, SeededVarMap, build_model};
use nn_core::optim::{Optimizer, OptimizerConfig};

fn bench_train_step(c: &mut Criterion) {
    // As `mathnn` does in main: freed tensor buffers are reused instead of page-faulted in every step.
    nn_core::alloc::retain_freed_memory();
    // As `mathnn` does (docs/performance.md). SAFETY: criterion runs benchmarks on this thread and has
    // started no other; no candle op has run yet.
    unsafe { nn_core::threads::park_idle_candle_workers() };
    let device = Device::Cpu;
    let x = Tensor::rand(0f32, 1f32, (64, 1, 28, 28), &device).unwrap();
    let y = Tensor::from_vec((0..64u32).map(|i| i % 10).collect::<Vec<_>>(), 64, &device).unwrap();
    let mut group = c.benchmark_group("train_step_batch64");
    group.sample_size(20);
    for kind in ModelKind::ALL {
        let varmap = VarMap::new();
        let vb = SeededVarMap::var_builder(&varmap, 0, DType::F32, &device);
        let model =
            build_model(&ModelConfig::new(kind, InputSpec::new(1, 28, 28, 10)), vb).unwrap();
        let mut opt = Optimizer::new(OptimizerConfig::adam(1e-3), &varmap).unwrap();
        group.bench_function(kind.as_str(), |b| {
            b.iter(|| {
                let logits = model.forward_t(&x, true).unwrap();
                let loss = cross_entropy(&logits, &y).unwrap();
                opt.backward_step(&loss).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_train_step);
criterion_main!(benches);
