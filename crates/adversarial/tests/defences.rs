//! Defences: the BPDA wrapper, Gaussian-noise training and the substitute attack.

use adversarial::defences::{
    Defended, InputTransform, SubstituteConfig, substitute_attack, train_with_gaussian_noise,
};
use adversarial::net::LogitModel;
use candle_core::{DType, Device};
use candle_nn::VarMap;
use nn_core::data::generated_train_test;
use nn_core::models::{InputSpec, ModelConfig, ModelKind, SeededVarMap, build_model};
use nn_core::train::TrainConfig;

fn mlp(widths: &[usize], seed: u64) -> (ModelConfig, VarMap, Box<dyn nn_core::models::Classifier>) {
    let mut config = ModelConfig::new(ModelKind::Mlp, InputSpec::new(1, 28, 28, 10));
    config.mlp_widths = widths.to_vec();
    let varmap = VarMap::new();
    let m = build_model(
        &config,
        SeededVarMap::var_builder(&varmap, seed, DType::F32, &Device::Cpu),
    )
    .unwrap();
    (config, varmap, m)
}

#[test]
fn defended_model_applies_the_transform_forward_and_the_identity_backward() {
    let (_, _, m) = mlp(&[16], 0);
    let x = nn_core::grad::seeded_normal(&[2, 1, 28, 28], DType::F32, &Device::Cpu, 9)
        .unwrap()
        .affine(0.25, 0.5)
        .unwrap();
    let t = InputTransform::BitDepth { bits: 2 };
    let d = Defended {
        model: m.as_ref(),
        transform: t,
    };
    let direct = m.logits(&t.apply(&x).unwrap()).unwrap();
    let diff = (d.logits(&x).unwrap() - &direct)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
    // BPDA: the gradient through the defended model is the model's gradient at T(x).
    let g_def = nn_core::grad::input_gradient(|z| d.logits(z), &x).unwrap();
    let g_raw = nn_core::grad::input_gradient(|z| m.logits(z), &t.apply(&x).unwrap()).unwrap();
    let gd = (g_def - g_raw).unwrap().abs().unwrap().max_all().unwrap();
    assert!(gd.to_scalar::<f32>().unwrap() < 1e-6);
}

#[test]
fn noise_training_is_seeded_and_learns() {
    let data = generated_train_test(256, 128, 0).unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 32,
        ..TrainConfig::default()
    };
    let run = || {
        let (_, varmap, m) = mlp(&[32], 1);
        train_with_gaussian_noise(
            m.as_ref(),
            &varmap,
            &data.train,
            Some(&data.test),
            0.2,
            &cfg,
            None,
        )
        .unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a[1].train_loss, b[1].train_loss, "same seed, same run");
    assert!(a[1].train_loss < a[0].train_loss, "{a:?}");
    assert!(a[1].test_accuracy.unwrap() > 0.2, "{a:?}");
    let (_, varmap, m) = mlp(&[32], 1);
    assert!(
        train_with_gaussian_noise(m.as_ref(), &varmap, &data.train, None, -0.1, &cfg, None)
            .is_err()
    );
}

#[test]
fn substitute_attack_counts_queries_and_reports_transfer() {
    let data = generated_train_test(64, 64, 3).unwrap();
    let (_, _, oracle) = mlp(&[32], 2);
    let (sub_config, _, _) = mlp(&[16], 0);
    let cfg = SubstituteConfig {
        rounds: 3,
        train: TrainConfig {
            epochs: 1,
            batch_size: 16,
            ..TrainConfig::default()
        },
        ..Default::default()
    };
    let seed = data.train.take(10).unwrap();
    let r = substitute_attack(oracle.as_ref(), &seed, &data.test, &sub_config, &cfg).unwrap();
    // S doubles every round: 10 + 20 + 40 labels.
    assert_eq!(r.oracle_queries, 70);
    assert_eq!(
        r.rounds.iter().map(|x| x.set_size).collect::<Vec<_>>(),
        vec![10, 20, 40]
    );
    for v in [
        r.oracle_clean_accuracy,
        r.oracle_adversarial_accuracy,
        r.transfer_rate,
        r.substitute_accuracy,
    ] {
        assert!((0.0..=1.0).contains(&v));
    }
    let again = substitute_attack(oracle.as_ref(), &seed, &data.test, &sub_config, &cfg).unwrap();
    assert_eq!(again.transfer_rate, r.transfer_rate);
}
