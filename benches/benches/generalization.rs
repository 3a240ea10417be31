//! One epoch of the randomisation tests' MLP 1×512 (784-512-10, Adam, batch 128) on 5,000 MNIST-sized
//! images with random labels: 40 optimiser steps, the unit of every time-to-fit figure in
//! `docs/experiments/random-labels.md`. The exact-accuracy pass over the training set that the runner
//! adds after each epoch is measured separately. Run with `cargo bench -p benches --bench generalization`;
//! record the thread count (`RAYON_NUM_THREADS`) with the numbers.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use criterion::{Criterion, criterion_group, criterion_main};
use generalization::fit::{FitConfig, FitOptions, fit};
use generalization::{Corruption, ZhangModel, corrupt};
use nn_core::data::{Dataset, Provenance};
use nn_core::models::{InputSpec, SeededVarMap, build_model};
use nn_core::train::evaluate;

fn bench_epoch(c: &mut Criterion) {
    let device = Device::Cpu;
    let n = 5_000;
    let images = Tensor::rand(0f32, 1f32, (n, 1, 28, 28), &device).unwrap();
    let labels = Tensor::zeros(n, DType::U32, &device).unwrap();
    let classes = (0..10).map(|i| i.to_string()).collect();
    let data = Dataset::new(images, labels, classes, "bench", Provenance::Generated).unwrap();
    let train = corrupt(&data, &data, Corruption::RandomLabels, 0)
        .unwrap()
        .train;
    let input = InputSpec::new(1, 28, 28, 10);
    let varmap = VarMap::new();
    let vb = SeededVarMap::var_builder(&varmap, 0, DType::F32, &device);
    let model = build_model(&ZhangModel::Mlp1x512.model_config(input), vb).unwrap();
    // One epoch with the target out of reach: exactly one pass of 40 steps plus one evaluation pass.
    let config = FitConfig {
        max_epochs: 1,
        ..FitConfig::default()
    };
    let mut group = c.benchmark_group("random_labels_mlp1x512_5k");
    group.sample_size(10);
    group.bench_function("epoch_with_exact_train_accuracy", |b| {
        b.iter(|| {
            fit(
                model.as_ref(),
                &varmap,
                &train,
                None,
                &config,
                &FitOptions::default(),
            )
            .unwrap()
        })
    });
    group.bench_function("exact_train_accuracy_pass", |b| {
        b.iter(|| evaluate(model.as_ref(), &train, config.eval_batch_size).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_epoch);
criterion_main!(benches);
