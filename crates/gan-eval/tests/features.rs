//! Feature extractors: the FID-Inception port against an independent numpy forward pass (same formula
//! weights), its shapes at 299×299 with random weights, loading errors, and the domain classifier.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use common::uniform;
use gan_eval::features::{DomainClassifier, FidInceptionV3, InceptionInput};
use ndarray::Array2;
use ndarray_npy::read_npy;
use nn_core::data::generated::generated_digits;
use nn_core::models::{InputSpec, ModelConfig, ModelKind};
use nn_core::train::{TrainConfig, TrainOptions};

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The weight formula of `scripts/make_inception_reference.py` (`param`).
fn formula(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let u = uniform(name, n);
    let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
    u.iter()
        .map(|&u| {
            (if name.ends_with("conv.weight") {
                u * (6.0 / fan_in as f64).sqrt()
            } else if name.ends_with("bn.weight") {
                1.0 + 0.1 * u
            } else if name.ends_with("bn.running_var") {
                1.0 + 0.25 * (u + 1.0)
            } else if name == "fc.weight" {
                u * (3.0 / shape[1] as f64).sqrt()
            } else {
                0.1 * u
            }) as f32
        })
        .collect()
}

#[test]
fn port_matches_an_independent_numpy_forward_pass() {
    // Parameter names and shapes equal those of the reference implementation (torchvision's keys).
    let shapes = FidInceptionV3::parameter_shapes().unwrap();
    let reference: Vec<(String, Vec<usize>)> =
        serde_json::from_str(&std::fs::read_to_string(data("inception_ref_params.json")).unwrap())
            .unwrap();
    assert_eq!(shapes.len(), 472);
    assert_eq!(shapes, reference);

    let dev = Device::Cpu;
    let tensors: HashMap<String, Tensor> = shapes
        .iter()
        .map(|(name, shape)| {
            let t = Tensor::from_vec(formula(name, shape), shape.as_slice(), &dev).unwrap();
            (name.clone(), t)
        })
        .collect();
    let net = FidInceptionV3::from_var_builder(VarBuilder::from_tensors(tensors, DType::F32, &dev))
        .unwrap();
    let pixels: Vec<f32> = uniform("input", 2 * 28 * 28)
        .iter()
        .map(|u| (0.5 + 0.5 * u) as f32)
        .collect();
    let images = Tensor::from_vec(pixels, (2, 1, 28, 28), &dev).unwrap();
    let input = InceptionInput {
        resize_to: Some(75),
        normalize: true,
    };
    let out = net.extract(&images, &input, 2).unwrap();
    let pool3: Array2<f32> = read_npy(data("inception_ref_pool3.npy")).unwrap();
    let logits: Array2<f32> = read_npy(data("inception_ref_logits.npy")).unwrap();
    for (ours, theirs, what) in [
        (&out.pool3, &pool3, "pool3"),
        (&out.logits_unbiased, &logits, "logits"),
    ] {
        let theirs = theirs.mapv(f64::from);
        let scale = theirs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = (ours - &theirs).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            err <= 1e-4 * scale,
            "{what}: max error {err} (scale {scale})"
        );
    }
    // The two images differ and so do their features (the check is not vacuous).
    let diff = (&out.pool3.row(0) - &out.pool3.row(1)).mapv(f64::abs).sum();
    assert!(diff > 0.5, "{diff}");
}

#[test]
fn random_weights_give_the_documented_shapes_at_299() {
    let net = FidInceptionV3::random(0, &Device::Cpu).unwrap();
    let x = Tensor::rand(0f32, 1f32, (1, 3, 299, 299), &Device::Cpu).unwrap();
    let out = net.extract(&x, &InceptionInput::default(), 1).unwrap();
    assert_eq!(out.pool3.dim(), (1, 2048));
    assert_eq!(out.logits_unbiased.dim(), (1, 1008));
    assert!(out.pool3.iter().all(|v| v.is_finite() && *v >= 0.0));
    let x2 = Tensor::rand(0f32, 1f32, (1, 2, 64, 64), &Device::Cpu).unwrap();
    assert!(net.extract(&x2, &InceptionInput::default(), 1).is_err());
    let small = InceptionInput {
        resize_to: None,
        normalize: true,
    };
    let x3 = Tensor::rand(0f32, 1f32, (1, 3, 40, 40), &Device::Cpu).unwrap();
    assert!(
        net.extract(&x3, &small, 1)
            .unwrap_err()
            .to_string()
            .contains("75")
    );
}

#[test]
fn loading_reports_the_file_and_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.safetensors");
    let e = FidInceptionV3::load(&missing, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("nope.safetensors") && e.contains("convert"),
        "{e}"
    );
    let partial = dir.path().join("partial.safetensors");
    let t = Tensor::zeros((32, 3, 3, 3), DType::F32, &Device::Cpu).unwrap();
    candle_core::safetensors::save(
        &HashMap::from([("Conv2d_1a_3x3.conv.weight".to_string(), t)]),
        &partial,
    )
    .unwrap();
    let e = FidInceptionV3::load(&partial, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("partial.safetensors") && e.contains("bn"), "{e}");
}

#[test]
fn domain_classifier_trains_and_gives_penultimate_features() {
    let train = generated_digits(1000, 0).unwrap();
    let test = generated_digits(200, 1).unwrap();
    let config = ModelConfig {
        mlp_widths: vec![64],
        ..ModelConfig::new(ModelKind::Mlp, InputSpec::new(1, 28, 28, 10))
    };
    let clf = DomainClassifier::new(&config, 0, &Device::Cpu).unwrap();
    assert_eq!(clf.feature_layer().unwrap(), "relu1");
    let report = clf
        .train(
            &train,
            Some(&test),
            &TrainConfig {
                epochs: 4,
                ..TrainConfig::default()
            },
            &TrainOptions::default(),
        )
        .unwrap();
    let acc = report.history.last().unwrap().test_accuracy.unwrap();
    assert!(acc > 0.5, "test accuracy {acc}");
    let out = clf.extract(&test.images, 64).unwrap();
    assert_eq!(out.features.dim(), (200, 64));
    assert!(out.features.iter().all(|v| *v >= 0.0)); // ReLU features
    for row in out.probs.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-5);
    }
    // Round trip through a file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clf.safetensors");
    clf.save(&path).unwrap();
    let back = DomainClassifier::load(&config, &path, &Device::Cpu).unwrap();
    let out2 = back.extract(&test.images, 200).unwrap();
    let err = (&out.features - &out2.features)
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(err < 1e-4, "{err}");
    let bad = Tensor::zeros((2, 3, 28, 28), DType::F32, &Device::Cpu).unwrap();
    assert!(clf.extract(&bad, 8).is_err());
}
