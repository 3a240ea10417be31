//! Fooling rate (clipped, label-free), UAP on a two-class linear model (reaches fooling 1 exactly when ξ
//! exceeds the largest distance to the hyperplane; stops at the pass cap otherwise), universal PGD,
//! reproducibility and bad inputs.

use adversarial::attacks::DeepFoolConfig;
use adversarial::net::{Layer, Net};
use adversarial::norm::{Clip, Norm, lp_norm};
use adversarial::universal::{
    FoolingEvaluator, UapConfig, UniversalPgdConfig, fooling_rate, universal_perturbation,
    universal_pgd,
};
use candle_core::{DType, Device, Tensor};
use nn_core::models::InputSpec;

/// Two classes on 1×1×4 images: logits `[0, w·x − c]` — class 1 iff `w·x > c`.
fn two_class(w: [f64; 4], c: f64) -> Net {
    let dev = Device::Cpu;
    let weight = Tensor::new(&[[0f64; 4], w], &dev).unwrap();
    let bias = Tensor::new(&[0.0, -c], &dev).unwrap();
    Net::new(
        "two-class",
        InputSpec::new(1, 1, 4, 2),
        vec![
            Layer::Flatten.into(),
            Layer::linear(weight, Some(bias)).named("logits"),
        ],
    )
    .unwrap()
}

/// Images on the class-1 side at distances `d` from the hyperplane `w·x = c` (‖w‖ = 1).
fn images_at(distances: &[f64]) -> Tensor {
    let w = [0.5, 0.5, 0.5, 0.5];
    let base = [0.3, 0.6, 0.2, 0.5]; // w·base = 0.8
    let vals: Vec<f64> = distances
        .iter()
        .enumerate()
        .flat_map(|(i, &d)| {
            // Move along w to distance d (c = 0.8), plus an orthogonal wiggle per image.
            let o = [1.0, -1.0, 0.0, 0.0].map(|x: f64| 0.05 * x * (i as f64 - 2.0));
            (0..4).map(move |j| base[j] + d * w[j] + o[j])
        })
        .collect();
    Tensor::from_vec(vals, (distances.len(), 1, 1, 4), &Device::Cpu).unwrap()
}

#[test]
fn uap_reaches_full_fooling_iff_xi_exceeds_the_largest_distance() {
    let net = two_class([0.5, 0.5, 0.5, 0.5], 0.8);
    let d = [0.1, 0.25, 0.4, 0.2, 0.3];
    let x = images_at(&d);
    let base = UapConfig {
        norm: Norm::L2,
        delta: 0.0,
        max_passes: 4,
        clip: Clip::None,
        ..Default::default()
    };
    let big = universal_perturbation(&net, &x, &UapConfig { xi: 0.45, ..base }, None).unwrap();
    assert_eq!(big.best_fooling_rate, 1.0);
    assert!(big.reached_target);
    let v = big.perturbation.to_tensor(&Device::Cpu).unwrap();
    assert!(lp_norm(&v, Norm::L2).unwrap() <= 0.45 + 1e-9);
    // Below the largest distance no ℓ2 vector of norm ξ can move that image across: never full fooling.
    let small = universal_perturbation(&net, &x, &UapConfig { xi: 0.35, ..base }, None).unwrap();
    assert!(small.best_fooling_rate < 1.0);
    assert_eq!(small.history.len(), 4, "stops at the pass cap");
    assert!(!small.reached_target);
    // Below the smallest distance nothing is fooled.
    let tiny = universal_perturbation(&net, &x, &UapConfig { xi: 0.05, ..base }, None).unwrap();
    assert_eq!(tiny.best_fooling_rate, 0.0);
    assert_eq!(tiny.best_pass, 0);
    // Batched DeepFool increments reach the same end point here.
    let chunked = universal_perturbation(
        &net,
        &x,
        &UapConfig {
            xi: 0.45,
            chunk: 3,
            ..base
        },
        None,
    )
    .unwrap();
    assert_eq!(chunked.best_fooling_rate, 1.0);
    // Seeds make runs reproducible.
    let again = universal_perturbation(&net, &x, &UapConfig { xi: 0.35, ..base }, None).unwrap();
    assert_eq!(again.perturbation, small.perturbation);
}

#[test]
fn fooling_rate_uses_clipped_inputs_and_no_labels() {
    // Class 1 iff x₁ + x₂ + x₃ + x₄ > 3.5 (w = 1, c = 3.5).
    let net = two_class([1.0; 4], 3.5);
    let x = Tensor::new(
        &[[[[0.95f64, 0.95, 0.95, 0.5]]], [[[0.1, 0.1, 0.1, 0.1]]]],
        &Device::Cpu,
    )
    .unwrap();
    let v = Tensor::new(&[[[0.1f64, 0.1, 0.1, 0.1]]], &Device::Cpu).unwrap();
    // v2 crosses the boundary only without clipping: unclipped x₁ + v2 sums to 3.7 (fooled), clipped
    // to [1, 1, 1, 0.25] it sums to 3.25 (not fooled).
    let v2 = Tensor::new(&[[[0.2f64, 0.2, 0.2, -0.25]]], &Device::Cpu).unwrap();
    let unclipped = fooling_rate(&net, &x, &v2, Clip::None).unwrap();
    let clipped = fooling_rate(&net, &x, &v2, Clip::default()).unwrap();
    assert_eq!(unclipped.fooling_rate, 0.5);
    assert_eq!(clipped.fooling_rate, 0.0);
    assert_eq!(clipped.clip, Clip::default());
    let r = fooling_rate(&net, &x, &v, Clip::default()).unwrap();
    assert_eq!((r.fooled, r.n), (1, 2));
    assert_eq!(r.dominant_labels, vec![0, 1]);
    assert!(r.clean_accuracy.is_none());
    // With labels, accuracies are added; a per-image perturbation works too.
    let ev = FoolingEvaluator::new(&net, &x, Some(&[0, 0])).unwrap();
    let per_image = Tensor::cat(&[&v, &v], 0).unwrap().unsqueeze(1).unwrap();
    let r2 = ev.evaluate(&net, &per_image, Clip::default()).unwrap();
    assert_eq!(r2.clean_accuracy, Some(1.0));
    assert_eq!(r2.perturbed_accuracy, Some(0.5));
    let bad = Tensor::zeros((2, 2), DType::F64, &Device::Cpu).unwrap();
    assert!(ev.evaluate(&net, &bad, Clip::default()).is_err());
}

#[test]
fn universal_pgd_fools_the_linear_model_within_budget() {
    let net = two_class([0.5, 0.5, 0.5, 0.5], 0.8);
    let x = images_at(&[0.1, 0.2, 0.3]);
    let cfg = UniversalPgdConfig {
        eps: 0.2,
        steps: 30,
        batch_size: 2,
        clip: Clip::None,
        ..Default::default()
    };
    let r = universal_pgd(&net, &x, None, &cfg, None).unwrap();
    let v = r.perturbation.to_tensor(&Device::Cpu).unwrap();
    assert!(lp_norm(&v, Norm::Inf).unwrap() <= 0.2 + 1e-6); // stored as f32
    // ℓ∞ ball of 0.2 moves w·x by up to 0.4 > 0.3: everything flips.
    assert_eq!(
        fooling_rate(&net, &x, &v, Clip::None).unwrap().fooling_rate,
        1.0
    );
    let again = universal_pgd(&net, &x, None, &cfg, None).unwrap();
    assert_eq!(again.perturbation, r.perturbation);
}

#[test]
fn bad_universal_inputs_are_errors() {
    let net = two_class([0.5; 4], 0.8);
    let x = images_at(&[0.1, 0.2]);
    let e = universal_perturbation(
        &net,
        &x,
        &UapConfig {
            xi: -1.0,
            ..Default::default()
        },
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("`xi`"), "{e}");
    let e = universal_perturbation(
        &net,
        &x,
        &UapConfig {
            delta: 1.5,
            ..Default::default()
        },
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("`delta`"), "{e}");
    let cfg = UapConfig {
        deepfool: DeepFoolConfig {
            norm: Norm::Inf,
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(universal_perturbation(&net, &x, &cfg, None).is_err());
    let e = universal_pgd(
        &net,
        &x,
        None,
        &UniversalPgdConfig {
            eps: -0.1,
            ..Default::default()
        },
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("`eps`"), "{e}");
    let e = UapConfig {
        norm: Norm::L(0.5),
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("[1, ∞]"), "{e}");
}
