//! DeepFool, FGSM and PGD: closed-form checks on affine classifiers, budgets, reproducibility, and the
//! bad-input errors of acceptance 6.

use adversarial::AdvError;
use adversarial::attacks::{
    DeepFoolConfig, FgsmConfig, PgdConfig, deepfool, deepfool_chunked, fgsm, fgsm_success_rate,
    pgd, predict,
};
use adversarial::net::{Layer, Net};
use adversarial::norm::{Norm, lp_norms_per_row};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use nn_core::grad::seeded_normal;
use nn_core::models::{InputSpec, ModelConfig, ModelKind, SeededVarMap, build_model};

/// An affine classifier `f(x) = W x + b` on 1×2×2 images with 4 classes, and W, b as plain numbers.
fn affine(seed: u64) -> (Net, Vec<f64>, Vec<f64>) {
    let dev = Device::Cpu;
    let w = seeded_normal(&[4, 4], DType::F64, &dev, seed).unwrap();
    let b = seeded_normal(&[4], DType::F64, &dev, seed + 100).unwrap();
    let (wv, bv) = (
        w.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        b.to_vec1::<f64>().unwrap(),
    );
    let net = Net::new(
        "affine",
        InputSpec::new(1, 2, 2, 4),
        vec![
            Layer::Flatten.into(),
            Layer::linear(w, Some(b)).named("logits"),
        ],
    )
    .unwrap();
    (net, wv, bv)
}

#[test]
fn deepfool_on_an_affine_classifier_takes_one_step_to_the_closest_face() {
    for seed in 0..5 {
        let (net, w, b) = affine(seed);
        let x = seeded_normal(&[1, 1, 2, 2], DType::F64, &Device::Cpu, seed + 7).unwrap();
        let xv = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let f: Vec<f64> = (0..4)
            .map(|k| (0..4).map(|j| w[k * 4 + j] * xv[j]).sum::<f64>() + b[k])
            .collect();
        let k0 = (0..4).max_by(|&i, &j| f[i].total_cmp(&f[j])).unwrap();
        // Closed form: l = argmin |f_l − f_k0| / ‖w_l − w_k0‖, r* = |f_l − f_k0|/‖w_l − w_k0‖² (w_l − w_k0).
        let (mut best, mut best_ratio) = (0, f64::INFINITY);
        for l in (0..4).filter(|&l| l != k0) {
            let d: f64 = (0..4)
                .map(|j| (w[l * 4 + j] - w[k0 * 4 + j]).powi(2))
                .sum::<f64>()
                .sqrt();
            let ratio = (f[l] - f[k0]).abs() / d;
            if ratio < best_ratio {
                (best, best_ratio) = (l, ratio);
            }
        }
        let dn2: f64 = (0..4)
            .map(|j| (w[best * 4 + j] - w[k0 * 4 + j]).powi(2))
            .sum();
        let r_star: Vec<f64> = (0..4)
            .map(|j| 1.02 * (f[best] - f[k0]).abs() / dn2 * (w[best * 4 + j] - w[k0 * 4 + j]))
            .collect();
        let exact = DeepFoolConfig {
            min_step: 0.0,
            ..Default::default()
        };
        let out = deepfool(&net, &x, &exact).unwrap();
        let img = &out.report.images[0];
        assert_eq!(img.iterations, 1, "seed {seed}");
        assert!(img.fooled);
        assert_eq!(img.adversarial as usize, best);
        let r = out
            .perturbations
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        for (a, e) in r.iter().zip(&r_star) {
            assert!((a - e).abs() < 1e-10, "seed {seed}: {r:?} vs {r_star:?}");
        }
        assert!((img.l2 - 1.02 * best_ratio).abs() < 1e-10);
    }
}

#[test]
fn deepfool_linf_step_uses_the_sign_of_the_gradient() {
    let (net, _, _) = affine(3);
    let x = seeded_normal(&[1, 1, 2, 2], DType::F64, &Device::Cpu, 1).unwrap();
    let cfg = DeepFoolConfig {
        norm: Norm::Inf,
        min_step: 0.0,
        ..Default::default()
    };
    let out = deepfool(&net, &x, &cfg).unwrap();
    let r = out
        .perturbations
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    // One step of |g|/‖w‖₁ · sign(w), scaled by 1.02: all entries share one magnitude.
    assert!(out.report.images[0].fooled);
    assert!(
        r.iter().all(|v| (v.abs() - r[0].abs()).abs() < 1e-12),
        "{r:?}"
    );
}

fn lenet_and_images(n: usize) -> (Box<dyn nn_core::models::Classifier>, Tensor) {
    let config = ModelConfig::new(ModelKind::Lenet, InputSpec::new(1, 28, 28, 10));
    let varmap = VarMap::new();
    let m = build_model(
        &config,
        SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let data = nn_core::data::generated_digits(n, 1).unwrap();
    (m, data.images)
}

#[test]
fn deepfool_flips_every_image_of_a_cnn_batch() {
    let (m, x) = lenet_and_images(16);
    let out = deepfool(m.as_ref(), &x, &DeepFoolConfig::default()).unwrap();
    assert!(
        out.report.fooled_fraction >= 0.99,
        "{}",
        out.report.fooled_fraction
    );
    assert!(out.report.median_l2 > 0.0 && out.report.median_l2.is_finite());
    // The reported labels are those of x + r.
    let adv = predict(m.as_ref(), &(&x + &out.perturbations).unwrap(), 64).unwrap();
    for (img, a) in out.report.images.iter().zip(adv) {
        assert_eq!(img.adversarial, a);
    }
}

#[test]
fn chunked_attacks_equal_one_call_on_the_whole_batch() {
    let (m, x) = lenet_and_images(7);
    let config = FgsmConfig {
        eps: 0.2,
        ..FgsmConfig::default()
    };
    let whole = fgsm(m.as_ref(), &x, None, &config).unwrap().report;
    for batch in [1, 3, 7, 100] {
        let rate = fgsm_success_rate(m.as_ref(), &x, &config, batch).unwrap();
        assert_eq!(rate, whole.changed as f64 / 7.0, "batch {batch}");
    }
    let one = deepfool(m.as_ref(), &x, &DeepFoolConfig::default())
        .unwrap()
        .report;
    let chunked = deepfool_chunked(m.as_ref(), &x, &DeepFoolConfig::default(), 3).unwrap();
    assert_eq!(chunked.images.len(), 7);
    for (a, b) in one.images.iter().zip(&chunked.images) {
        assert_eq!(
            (a.original, a.adversarial, a.iterations),
            (b.original, b.adversarial, b.iterations)
        );
        assert!(
            (a.l2 - b.l2).abs() <= 1e-4 * a.l2.max(1e-6),
            "{} vs {}",
            a.l2,
            b.l2
        );
    }
    assert_eq!(chunked.fooled_fraction, one.fooled_fraction);
    assert!(fgsm_success_rate(m.as_ref(), &x, &config, 0).is_err());
    assert!(deepfool_chunked(m.as_ref(), &x, &DeepFoolConfig::default(), 0).is_err());
}

#[test]
fn fgsm_and_pgd_respect_the_budget_and_the_clip() {
    let (m, x) = lenet_and_images(8);
    let f = fgsm(
        m.as_ref(),
        &x,
        None,
        &FgsmConfig {
            eps: 0.05,
            ..Default::default()
        },
    )
    .unwrap();
    let delta = (&f.adversarial - &x).unwrap();
    assert!(
        lp_norms_per_row(&delta, Norm::Inf)
            .unwrap()
            .iter()
            .all(|&d| d <= 0.05 + 1e-6)
    );
    let lo = f.adversarial.min_all().unwrap().to_scalar::<f32>().unwrap();
    let hi = f.adversarial.max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(lo >= 0.0 && hi <= 1.0);
    for norm in [Norm::Inf, Norm::L2] {
        let eps = if norm == Norm::Inf { 0.05 } else { 1.0 };
        let cfg = PgdConfig {
            eps,
            norm,
            steps: 5,
            ..Default::default()
        };
        let a = pgd(m.as_ref(), &x, None, &cfg).unwrap();
        let b = pgd(m.as_ref(), &x, None, &cfg).unwrap();
        let d = (&a.adversarial - &x).unwrap();
        assert!(
            lp_norms_per_row(&d, norm)
                .unwrap()
                .iter()
                .all(|&v| v <= eps * (1.0 + 1e-5))
        );
        let same = (&a.adversarial - &b.adversarial)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert_eq!(
            same.to_scalar::<f32>().unwrap(),
            0.0,
            "same seed, same result"
        );
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let (m, x) = lenet_and_images(2);
    let e = fgsm(
        m.as_ref(),
        &x,
        None,
        &FgsmConfig {
            eps: -0.1,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("`eps`"), "{e}");
    let e = pgd(
        m.as_ref(),
        &x,
        None,
        &PgdConfig {
            eps: -1.0,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("`eps`"), "{e}");
    let e = pgd(
        m.as_ref(),
        &x,
        None,
        &PgdConfig {
            norm: Norm::L(3.0),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("`norm`"), "{e}");
    let e = deepfool(
        m.as_ref(),
        &x,
        &DeepFoolConfig {
            norm: Norm::L(1.0),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, AdvError::InvalidArgument { .. }), "{e}");
    let e = deepfool(
        m.as_ref(),
        &x,
        &DeepFoolConfig {
            num_classes: 1,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("num_classes"), "{e}");
    let e = fgsm(
        m.as_ref(),
        &x.flatten_from(1).unwrap(),
        None,
        &FgsmConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(e, AdvError::Shape { .. }), "{e}");
    let e = fgsm(m.as_ref(), &x, Some(&[1]), &FgsmConfig::default()).unwrap_err();
    assert!(e.to_string().contains("labels"), "{e}");
    let e = "0.5".parse::<Norm>().unwrap_err();
    assert!(e.to_string().contains("[1, ∞]"), "{e}");
}

#[test]
#[ignore = "needs MATHNN_DATA"]
fn deepfool_flips_at_least_99_percent_of_correct_mnist_test_images() {
    // Acceptance 4 on real data: a LeNet trained for one epoch on 5,000 MNIST images.
    use nn_core::data::{DataLocator, DatasetName, load_dataset};
    use nn_core::train::{TrainConfig, TrainOptions, train};
    let data = load_dataset(DatasetName::Mnist, &DataLocator::from_env(None)).unwrap();
    let config = ModelConfig::new(ModelKind::Lenet, InputSpec::new(1, 28, 28, 10));
    let varmap = VarMap::new();
    let m = build_model(
        &config,
        SeededVarMap::var_builder(&varmap, 0, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    let train_set = data.train.take(5000).unwrap();
    train(
        m.as_ref(),
        &varmap,
        &train_set,
        None,
        &cfg,
        &TrainOptions::default(),
    )
    .unwrap();
    let net = Net::from_nn_core(&config, &varmap).unwrap();
    let test = data.test.take(300).unwrap();
    let pred = predict(&net, &test.images, 100).unwrap();
    let truth = test.labels_vec().unwrap();
    let correct: Vec<usize> = (0..pred.len()).filter(|&i| pred[i] == truth[i]).collect();
    let out = deepfool(
        &net,
        &test.subset(&correct).unwrap().images,
        &DeepFoolConfig::default(),
    )
    .unwrap();
    let r = &out.report;
    eprintln!(
        "DeepFool on {} images: flipped {:.4}, median ‖r‖₂ {:.3}, ρ_adv {:.3}",
        correct.len(),
        r.fooled_fraction,
        r.median_l2,
        r.rho_adv
    );
    assert!(r.fooled_fraction >= 0.99, "{}", r.fooled_fraction);
    assert!(r.median_l2 > 0.1 && r.median_l2 < 5.0);
}
