//! TT and CP networks: the forward pass is the tensor contraction the spec defines (checked against the
//! TT library), initial outputs are finite and O(1) for long patch sequences, parameter counts match the
//! formulas, and nn-core's training loop trains them.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use ndarray::Array3;
use nn_core::data::generated::generated_digits;
use nn_core::models::{Classifier, InputSpec, SeededVarMap, parameter_count};
use nn_core::train::{TrainConfig, TrainOptions, train};
use tensor_decomp::TensorTrain;
use tensor_decomp::nets::{NetFormat, TensorNet, TensorNetConfig, tensor_net};

fn build(config: &TensorNetConfig, seed: u64, dtype: DType) -> (VarMap, TensorNet) {
    let varmap = VarMap::new();
    let vb = SeededVarMap::var_builder(&varmap, seed, dtype, &Device::Cpu);
    let net = tensor_net(config, vb).unwrap();
    (varmap, net)
}

fn formats() -> [NetFormat; 3] {
    [
        NetFormat::Tt {
            rank: 3,
            shared_cores: false,
        },
        NetFormat::Tt {
            rank: 3,
            shared_cores: true,
        },
        NetFormat::Cp { rank: 5 },
    ]
}

#[test]
fn logits_equal_the_weight_tensor_contracted_with_the_feature_tensor() {
    // 1×4×4 images, 2×2 patches: d = 4 positions, m = 3 features, 3 classes; f64 throughout.
    for format in formats() {
        let config = TensorNetConfig {
            patch: 2,
            features: 3,
            ..TensorNetConfig::new(format, InputSpec::new(1, 4, 4, 3))
        };
        let (_, net) = build(&config, 1, DType::F64);
        let x = Tensor::rand(0f64, 1f64, (2, 1, 4, 4), &Device::Cpu).unwrap();
        let logits = net.forward_t(&x, false).unwrap().to_vec2::<f64>().unwrap();
        let feats = net.features(&x).unwrap().to_vec3::<f64>().unwrap();
        for (b, f) in feats.iter().enumerate() {
            // Φ = f(x_1) ⊗ … ⊗ f(x_4) as a rank-1 TT.
            let phi = TensorTrain::from_cores(
                f.iter()
                    .map(|fk| Array3::from_shape_vec((1, 3, 1), fk.clone()).unwrap())
                    .collect(),
            )
            .unwrap();
            for (y, &logit) in logits[b].iter().enumerate() {
                let w = net.weight_tensor(y).unwrap();
                assert_eq!(w.shape(), vec![3; 4]);
                let score = w.dot(&phi).unwrap();
                assert!(
                    (score - logit).abs() <= 1e-12 * logit.abs().max(1.0),
                    "{format:?}: {score} vs {logit}"
                );
            }
        }
        if let NetFormat::Cp { rank } = format {
            assert!(
                net.weight_tensor(0)
                    .unwrap()
                    .ranks()
                    .iter()
                    .all(|&r| r <= rank)
            );
        }
        assert!(net.weight_tensor(3).is_err());
    }
}

#[test]
fn initial_outputs_are_finite_and_order_one_for_long_sequences() {
    // 28×28 images as 16 patches of 7×7 and as 49 patches of 4×4, in f32.
    let data = generated_digits(64, 3).unwrap();
    for patch in [7, 4] {
        for format in formats() {
            let config = TensorNetConfig {
                patch,
                ..TensorNetConfig::new(format, InputSpec::new(1, 28, 28, 10))
            };
            let (_, net) = build(&config, 0, DType::F32);
            let logits = net.forward_t(&data.images, false).unwrap();
            let v = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(v.iter().all(|x| x.is_finite()), "{format:?} patch {patch}");
            let rms = (v.iter().map(|x| (x * x) as f64).sum::<f64>() / v.len() as f64).sqrt();
            assert!(
                rms > 1e-3 && rms < 1e2,
                "{format:?} patch {patch}: rms logit {rms}"
            );
        }
    }
}

#[test]
fn parameter_counts_match_the_formulas_and_the_varmap() {
    let input = InputSpec::new(1, 28, 28, 10);
    let feature_map = 4 * 49 + 4;
    let cases = [
        (
            NetFormat::Tt {
                rank: 8,
                shared_cores: false,
            },
            4 * 8 + 14 * 8 * 4 * 8 + 8 * 4 * 10,
        ),
        (
            NetFormat::Tt {
                rank: 8,
                shared_cores: true,
            },
            4 * 8 + 8 * 4 * 8 + 8 * 4 * 10,
        ),
        (NetFormat::Cp { rank: 20 }, 20 * 4 * 16 + 20 * 10),
    ];
    for (format, weights) in cases {
        let config = TensorNetConfig::new(format, input);
        let count = config.parameter_count().unwrap();
        assert_eq!(count.weights, weights, "{format:?}");
        assert_eq!(count.feature_map, feature_map);
        let (varmap, _) = build(&config, 0, DType::F32);
        assert_eq!(parameter_count(&varmap), count.total, "{format:?}");
    }
    let bad = TensorNetConfig {
        patch: 5,
        ..TensorNetConfig::new(NetFormat::Cp { rank: 2 }, input)
    };
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("`patch`") && err.contains("28×28"), "{err}");
    let zero = TensorNetConfig::new(NetFormat::Cp { rank: 0 }, input);
    assert!(zero.validate().is_err());
}

#[test]
fn same_seed_same_network_and_training_learns() {
    let data = generated_digits(3000, 1).unwrap();
    let (train_set, test_set) = data.split(0.8, 0).unwrap();
    for format in [
        NetFormat::Tt {
            rank: 4,
            shared_cores: false,
        },
        NetFormat::Cp { rank: 16 },
    ] {
        let config = TensorNetConfig::new(format, InputSpec::new(1, 28, 28, 10));
        let (_, a) = build(&config, 5, DType::F32);
        let (_, b) = build(&config, 5, DType::F32);
        let la = a.forward_t(&test_set.images, false).unwrap();
        let lb = b.forward_t(&test_set.images, false).unwrap();
        assert_eq!(
            la.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            lb.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        let (varmap, net) = build(&config, 5, DType::F32);
        let cfg = TrainConfig {
            epochs: 5,
            batch_size: 32,
            optimizer: nn_core::optim::OptimizerConfig::adam(1e-2),
            ..TrainConfig::default()
        };
        let report = train(
            &net,
            &varmap,
            &train_set,
            Some(&test_set),
            &cfg,
            &TrainOptions::default(),
        )
        .unwrap();
        let first = report.history[0].train_loss;
        let last = report.history.last().unwrap();
        assert!(
            last.train_loss < 0.9 * first,
            "{format:?}: {first} → {}",
            last.train_loss
        );
        let acc = last.test_accuracy.unwrap();
        assert!(acc > 0.2, "{format:?}: test accuracy {acc} (chance 0.1)");
        eprintln!(
            "{format:?}: loss {first:.3} → {:.3}, test accuracy {acc:.3}",
            last.train_loss
        );
    }
}
