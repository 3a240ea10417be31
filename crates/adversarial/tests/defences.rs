//! Defences: the BPDA wrapper, Gaussian-noise training and the substitute attack.

use adversarial::defences::{
    Augmentation, Defended, InputTransform, SubstituteConfig, substitute_attack,
    train_with_augmentation, train_with_gaussian_noise,
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
fn linf_shift_augmentation_is_bounded_seeded_and_mixes_noise_and_brightness() {
    let (n, per) = (400usize, 64usize);
    let x = candle_core::Tensor::full(0.5f32, (n, 1, 8, 8), &Device::Cpu).unwrap();
    let aug = Augmentation::LinfShift {
        max_eps: 0.2,
        fraction: 0.5,
    };
    let y = aug.apply(&x, 7).unwrap();
    assert_eq!(y.dims(), x.dims());
    let d: Vec<f32> = (y - &x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let (mut clean, mut constant, mut signs) = (0, 0, 0);
    for img in d.chunks(per) {
        let m = img.iter().fold(0f32, |a, v| a.max(v.abs()));
        assert!(m <= 0.2 + 1e-6, "ℓ∞ bound: {m}");
        // every pixel is moved by exactly ±δ
        assert!(img.iter().all(|v| (v.abs() - m).abs() < 1e-6));
        if m == 0.0 {
            clean += 1;
        } else if img.iter().all(|v| *v == img[0]) {
            constant += 1;
        } else {
            signs += 1;
        }
    }
    // fraction ½ of the images, half of those each kind (binomial, 400 images: ±4σ bounds)
    assert!((160..=240).contains(&clean), "{clean}");
    assert!(
        (60..=140).contains(&constant) && (60..=140).contains(&signs),
        "{constant} {signs}"
    );
    // clipping to [0, 1] and determinism
    let z = candle_core::Tensor::zeros((n, 1, 8, 8), DType::F32, &Device::Cpu).unwrap();
    let a = aug.apply(&z, 3).unwrap();
    assert!(a.min_all().unwrap().to_scalar::<f32>().unwrap() >= 0.0);
    let b = aug.apply(&z, 3).unwrap();
    let same = (a - b).unwrap().abs().unwrap().max_all().unwrap();
    assert_eq!(same.to_scalar::<f32>().unwrap(), 0.0);
    // parsing and validation
    assert_eq!(Augmentation::parse("linf:0.2").unwrap(), aug);
    assert_eq!(
        Augmentation::parse("gauss:0.1").unwrap(),
        Augmentation::Gaussian { sigma: 0.1 }
    );
    assert!(Augmentation::parse("linf:0.2:1.5").is_err());
    assert!(Augmentation::parse("linf:nan").is_err());
    assert!(Augmentation::parse("blur:3").is_err());
    // the generic loop with no augmentation learns the generated data
    let data = generated_train_test(256, 128, 0).unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 32,
        ..TrainConfig::default()
    };
    let (_, varmap, m) = mlp(&[32], 1);
    let h = train_with_augmentation(
        m.as_ref(),
        &varmap,
        &data.train,
        Some(&data.test),
        &aug,
        &cfg,
        None,
    )
    .unwrap();
    assert!(h[1].train_loss < h[0].train_loss, "{h:?}");
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

#[test]
fn substitute_attack_takes_a_signed_lambda_and_rejects_nan() {
    // λ is signed (cleverhans starts with −λ, the paper with +λ); both run, and the sign matters.
    let data = generated_train_test(64, 64, 3).unwrap();
    let (_, _, oracle) = mlp(&[32], 2);
    let (sub_config, _, _) = mlp(&[16], 0);
    let seed = data.train.take(10).unwrap();
    let cfg = |lambda: f64| SubstituteConfig {
        rounds: 2,
        lambda,
        tau: None,
        train: TrainConfig {
            epochs: 1,
            batch_size: 16,
            ..TrainConfig::default()
        },
        ..Default::default()
    };
    assert_eq!(SubstituteConfig::default().lambda, -0.1);
    let run = |lambda| {
        substitute_attack(
            oracle.as_ref(),
            &seed,
            &data.test,
            &sub_config,
            &cfg(lambda),
        )
    };
    let (neg, pos) = (run(-0.1).unwrap(), run(0.1).unwrap());
    assert_eq!(neg.oracle_queries, 30);
    assert_ne!(
        serde_json::to_string(&neg).unwrap(),
        serde_json::to_string(&pos).unwrap(),
        "opposite augmentation steps should train different substitutes"
    );
    let e = run(f64::NAN).unwrap_err().to_string();
    assert!(e.contains("lambda"), "{e}");
}
